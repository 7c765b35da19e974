// ACP escalation page: reads the API token from the URL fragment (#token=...),
// keeps it in sessionStorage (this tab only), and talks to the node's /v1 API.
"use strict";

const KEY = "acp-token";
const SVGNS = "http://www.w3.org/2000/svg";
const REASONS = {
  no_margin: "Neither side beat the other by the quorum margin (a tie never does).",
  low_participation: "Too little of the eligible weight responded before the close.",
  low_confidence: "The weighted mean confidence of the decisive votes is below the policy's floor.",
  high_stakes: "The stakes are at or above the policy's high-stakes threshold: a human decides.",
  equivocation: "An eligible agent signed two different responses; both were excluded.",
  policy_missing: "The pinned policy is not known to this node.",
  policy_domain_mismatch: "The pinned policy governs another domain.",
  window_out_of_bounds: "The response window is outside the policy's bounds.",
  policy_not_in_force: "The pinned policy is not the domain's policy in force when the proposal was made.",
  no_trust_anchor: "This node has no trust anchor (genesis policy) for the domain.",
  contested: "The organizations' attestors signed different results: none of the votes' results can be certified.",
};

let token = null;
let current = null;
let status = null;
// Re-reads the open proposal until its result is certified (a decision is
// final only once the attestors of enough organizations sign it).
let follow = null;

function takeToken() {
  const m = /(?:^#|&)token=([0-9a-fA-F]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, m[1]);
    // Drop the token from the address bar and from history.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/v1" + path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = data.error || { code: "http_" + r.status, message: r.statusText };
    throw new Error(e.code + ": " + e.message);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const short = (k) => (k ? k.slice(0, 8) + "…" + k.slice(-4) : "?");
const pct = (bps) => (bps / 100).toFixed(bps % 100 === 0 ? 0 : 2) + "%";
const time = (ms) => new Date(ms).toLocaleString();
const num = (n) => Number(n).toLocaleString("en-US");

function showError(e) {
  document.getElementById("error").textContent = e ? String(e.message || e) : "";
}

async function loadList() {
  showError(null);
  const ul = document.getElementById("escalations");
  try {
    const data = await api("GET", "/proposals?status=escalated");
    ul.replaceChildren();
    document.getElementById("list-empty").hidden = data.proposals.length > 0;
    for (const p of data.proposals) {
      const li = el("li", { "data-id": p.id },
        el("strong", {}, p.kind), " in ", el("code", {}, p.domain),
        " — ", p.responses, " responses, closed ", time(p.closes_at),
        el("br"), el("code", {}, p.id));
      if (current === p.id) li.classList.add("selected");
      li.addEventListener("click", () => loadDetail(p.id));
      ul.append(li);
    }
  } catch (e) { showError(e); }
}

function tallyChart(tally, rules) {
  const m = rules ? rules.quorum_margin_bps : 0;
  const E = tally.endorse, C = tally.challenge;
  // beats(X, Y) <=> 10000 X > 10000 Y + m (X + Y) <=> X (10000 - m) > Y (10000 + m)
  const needE = m >= 10000 ? Infinity : (C * (10000 + m)) / (10000 - m);
  const needC = m >= 10000 ? Infinity : (E * (10000 + m)) / (10000 - m);
  const max = Math.max(E, C, isFinite(needE) ? needE : 0, isFinite(needC) ? needC : 0, 1);
  const W = 620, X0 = 110, BW = W - X0 - 20;
  const s = svg("svg", { viewBox: `0 0 ${W} 120`, width: "100%", role: "img", id: "tally-svg",
    "aria-label": `endorse ${E}, challenge ${C}, margin ${m} bps` });
  const row = (y, label, v, need, color) => {
    s.append(svg("text", { x: 0, y: y + 15 }, label));
    s.append(svg("rect", { x: X0, y, width: BW, height: 22, fill: "#eef0f4" }));
    s.append(svg("rect", { x: X0, y, width: (BW * v) / max, height: 22, fill: color, class: "bar" }));
    if (isFinite(need)) {
      const x = X0 + (BW * need) / max;
      s.append(svg("line", { x1: x, x2: x, y1: y - 4, y2: y + 26, stroke: "#1d2330", "stroke-width": 2, "stroke-dasharray": "4 2" }));
    }
  };
  row(10, "endorse E", E, needE, "#2f9e57");
  row(50, "challenge C", C, needC, "#d64541");
  s.append(svg("text", { x: X0, y: 100 },
    `E = ${num(E)}, C = ${num(C)}. Dashed line: what a side must exceed to beat the other by the ${pct(m)} margin.`));
  const part = tally.total_potential ? (10000 * tally.responded_potential) / tally.total_potential : 0;
  const need = rules ? rules.min_participation_bps : 0;
  const p = el("p", { id: "participation" },
    `Participation ${pct(Math.floor(part))} of the eligible weight (policy minimum ${pct(need)}).`);
  return [s, p];
}

function histogramChart(bins) {
  const W = 620, H = 150, X0 = 30, BW = (W - X0) / 10;
  const max = Math.max(1, ...bins.map((b) => b.endorse + b.challenge + b.abstain));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H + 30}`, width: "100%", role: "img", id: "histogram-svg",
    "aria-label": "confidence distribution" });
  bins.forEach((b, i) => {
    let y = H;
    for (const [n, color] of [[b.endorse, "#2f9e57"], [b.challenge, "#d64541"], [b.abstain, "#98a2b3"]]) {
      const h = ((H - 10) * n) / max;
      y -= h;
      if (n > 0) s.append(svg("rect", { x: X0 + i * BW + 4, y, width: BW - 8, height: h, fill: color, class: "bin" }));
    }
    s.append(svg("text", { x: X0 + i * BW + 6, y: H + 16 }, (b.from_bps / 100) + "%"));
  });
  s.append(svg("line", { x1: X0, x2: W, y1: H, y2: H, stroke: "#667085" }));
  s.append(svg("text", { x: X0, y: H + 29 }, "green endorse · red challenge · grey abstain, by confidence"));
  return s;
}

async function loadDetail(id) {
  showError(null);
  current = id;
  document.querySelectorAll("#escalations li").forEach((li) =>
    li.classList.toggle("selected", li.dataset.id === id));
  let d;
  try { d = await api("GET", "/proposals/" + id); } catch (e) { showError(e); return; }
  const pkg = d.package, p = pkg.proposal, rules = pkg.policy ? pkg.policy.rules : null;
  const sec = document.getElementById("detail");
  sec.hidden = false;
  sec.dataset.id = id;
  const badge = document.getElementById("d-status");
  badge.textContent = d.status;
  badge.className = "badge " + d.status;
  const f = d.finality;
  const line = document.getElementById("d-finality");
  line.dataset.state = f.state;
  line.textContent = f.state === "certified"
    ? `certified by ${f.certified_by} of ${f.organizations} organizations: ${f.status}`
    : f.state === "contested" ? "contested: no result of the votes can be certified; a human decides"
    : f.state === "escalated" ? `escalation certified by ${f.certified_by} of ${f.organizations} organizations: awaiting certificate of a human decision`
    : "awaiting certificate";
  clearTimeout(follow);
  if (f.state !== "certified") follow = setTimeout(() => { if (current === id) loadDetail(id); }, 1500);
  const dl = document.getElementById("d-proposal");
  dl.replaceChildren();
  const add = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
  add("id", el("code", {}, id));
  add("action", el("strong", {}, p.action.kind));
  add("payload", el("code", {}, p.action.payload));
  add("domain", p.domain);
  add("proposer", el("code", { title: p.proposer }, short(p.proposer)));
  add("proposer confidence", pct(p.confidence_bps));
  add("stakes", num(p.stakes));
  add("evidence", p.evidence.length ? p.evidence.join(", ") : "—");
  add("window", time(p.created_at) + " → " + time(p.closes_at));
  add("resolution", el("code", {}, d.resolution));
  const reasons = document.getElementById("d-reasons");
  reasons.replaceChildren(...(d.reasons.length ? d.reasons : ["none"]).map((r) =>
    el("li", { "data-reason": r }, el("strong", {}, r), " — ", REASONS[r] || "")));
  document.getElementById("d-tally").replaceChildren(...tallyChart(d.tally, rules));
  document.getElementById("d-histogram").replaceChildren(histogramChart(pkg.resolution.confidence_histogram));
  const tbody = document.querySelector("#d-votes tbody");
  tbody.replaceChildren(...pkg.counted.map((c) => {
    const v = c.vote;
    return el("tr", { "data-agent": v.responder },
      el("td", {}, el("code", { title: v.responder }, short(v.responder))),
      el("td", {}, pkg.policy && pkg.policy.organizations[v.organization] ? pkg.policy.organizations[v.organization].name : v.organization),
      el("td", { class: v.stance }, v.stance),
      el("td", {}, pct(v.confidence_bps)),
      el("td", {}, pct(v.authority_bps)),
      el("td", {}, pct(v.trust_bps)),
      el("td", { title: "authority × confidence × trust" }, num(v.weight)),
      el("td", {}, c.response.reasoning || "—"));
  }));
  const ex = document.getElementById("d-excluded");
  ex.replaceChildren();
  if (pkg.excluded.length) {
    ex.append(el("h3", {}, "Responses that do not count"),
      el("ul", {}, ...pkg.excluded.map((x) => el("li", {}, el("code", {}, short(x.response.responder)),
        " ", x.response.stance, " — ", x.reason, ": ", x.response.reasoning))));
  }
  const hd = document.getElementById("d-humans");
  hd.replaceChildren();
  if (pkg.human_decisions.length) {
    hd.append(el("h3", {}, "Human decisions"),
      el("ul", {}, ...pkg.human_decisions.map(([hid, h]) => el("li", { "data-decision": hid },
        el("strong", {}, h.verdict), " by ", el("code", {}, short(h.human)), " — ", h.rationale))));
  }
  const after = document.getElementById("d-after");
  after.replaceChildren();
  if (f.after_certification.length) {
    after.append(el("h3", {}, "Messages after certification"),
      el("p", { class: "muted" }, "Kept as evidence; they cannot change the certified result."),
      el("ul", {}, ...f.after_certification.map((m) => el("li", {}, el("code", {}, m)))));
  }
  const form = document.getElementById("decide");
  form.hidden = d.status !== "escalated";
}

async function decide(verdict) {
  showError(null);
  const rationale = document.getElementById("rationale").value.trim();
  if (!rationale) { showError("Write a rationale first."); return; }
  const buttons = document.querySelectorAll("#decide button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const r = await api("POST", "/proposals/" + current + "/decision", { verdict, rationale });
    const result = document.getElementById("result");
    result.textContent = `Signed ${verdict} decision ${r.id}`;
    result.dataset.decision = r.id;
    document.getElementById("rationale").value = "";
    await loadDetail(current);
    await loadList();
  } catch (e) { showError(e); } finally { buttons.forEach((b) => (b.disabled = false)); }
}

async function main() {
  token = takeToken();
  if (!token) {
    document.getElementById("auth-missing").hidden = false;
    document.getElementById("list-section").hidden = true;
    return;
  }
  try {
    status = await api("GET", "/status");
    document.getElementById("node").textContent =
      `node ${short(status.peer_id)} · agent ${short(status.agent)} · ${status.peers.length} peers`;
    document.getElementById("human-key").textContent = status.human || "(none: decisions will be refused)";
  } catch (e) { showError(e); }
  document.getElementById("refresh").addEventListener("click", loadList);
  document.getElementById("approve").addEventListener("click", () => decide("approve"));
  document.getElementById("reject").addEventListener("click", () => decide("reject"));
  await loadList();
  // New escalations appear without a reload.
  setInterval(loadList, 5000);
  document.body.dataset.ready = "1";
}

main();
