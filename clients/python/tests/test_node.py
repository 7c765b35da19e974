"""The whole sidecar API against a real node (see conftest.py)."""

import os
import subprocess
import threading
import time

import pytest

import acp_client
from acp_client import Client

from conftest import env


def wait_for(what, f, secs=40):
    deadline = time.monotonic() + secs
    while True:
        v = f()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {secs}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def escalated(client):
    """The proposal the test harness prepared (k1 proposed, k2 endorsed),
    challenged here by the node's agent: a tie, escalated at the close."""
    pid = env("ACP_TEST_ESCALATE")
    r = client.respond(pid, "challenge", 0.9, reasoning="income not verified",
                       evidence=["doc:payslip"])
    assert r["new"] is True and r["id"].startswith("1220")
    return pid


def test_escalation_decision_outcome_trust_and_audit(client, domain, escalated, tmp_path):
    v = wait_for("escalation", lambda: (
        lambda v: v if v["status"] == "escalated" and v["receipts"] else None)(
            client.proposal(escalated)))
    assert v["reasons"] == ["no_margin"] and v["final"] is True
    assert [p["id"] for p in client.proposals(domain=domain, status="escalated")] == [escalated]
    counted = v["package"]["counted"]
    mine = [c for c in counted if c["response"]["reasoning"] == "income not verified"]
    assert mine and mine[0]["vote"]["stance"] == "challenge"
    assert mine[0]["vote"]["confidence_bps"] == 9000

    d = client.decide(escalated, "approve", rationale="verified by phone")
    assert d["new"] is True
    v = wait_for("human approval", lambda: (
        lambda v: v if v["status"] == "approved" else None)(client.proposal(escalated)))
    assert v["package"]["human_decisions"], v

    o = client.report_outcome(escalated, "succeeded", note="repaid")
    assert o["new"] is True

    t = client.trust(domain)
    assert t["domain"] == domain and t["policy"] == env("ACP_TEST_POLICY")
    assert isinstance(t["agents"], list)
    for a in t["agents"]:
        assert 0 <= a["trust"] <= 1 and a["trust_bps"] == round(a["trust"] * 10000)

    bundle = client.audit_bundle(escalated)
    assert len(bundle) > 0
    path = client.save_audit_bundle(escalated, tmp_path / "b.acpbundle")
    assert path.read_bytes() == bundle
    acp = os.environ.get("ACP_BIN")
    if acp:
        out = subprocess.run([acp, "audit", "verify", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


def test_health_needs_no_token_and_everything_else_does(client):
    bad = Client(client.url, "0" * 64)
    assert bad.health() is True
    with pytest.raises(acp_client.Unauthorized) as e:
        bad.status()
    assert e.value.status == 401 and e.value.code == "unauthorized"
    with pytest.raises(acp_client.Unauthorized):
        bad.events()
    bad.close()


def test_anchors(client, domain):
    anchors = client.anchors()
    mine = [a for a in anchors if a["domain"] == domain]
    assert mine == [{"domain": domain, "genesis": env("ACP_TEST_POLICY"),
                     "current": env("ACP_TEST_POLICY")}]
    again = client.add_anchor(domain, env("ACP_TEST_POLICY"))
    assert again["new"] is False
    with pytest.raises(acp_client.AnchorExists):
        client.add_anchor(domain, "1220" + "ab" * 32)


def test_status_and_openapi(client):
    s = client.status()
    assert s["agent"] and s["human"] and s["reporter"]
    assert "/v1/proposals" in client.openapi()["paths"]


def test_propose_list_get_and_the_event_stream(client, domain):
    got = []
    me = client.status()["agent"]
    with client.events(read_timeout=30) as stream:
        ready = threading.Event()

        def follow():
            ready.set()
            for ev in stream:
                got.append(ev)
                if ev.name == "proposal" and ev.data["domain"] == domain and \
                        ev.data["proposer"] == me:
                    return

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        ready.wait()
        time.sleep(0.3)
        p = client.propose(domain, "loan.approve", {"amount": 100}, confidence=0.12345,
                           stakes=7, evidence=["doc:1"], closes_in_ms=60_000)
        t.join(20)
    assert not t.is_alive(), f"no proposal event; got {got}"
    assert got[-1].data["id"] == p["id"]
    assert p["new"] is True

    listed = client.proposals(domain=domain, status="pending")
    mine = [x for x in listed if x["id"] == p["id"]]
    assert mine and mine[0]["kind"] == "loan.approve" and mine[0]["stakes"] == 7
    assert mine[0]["payload"] == '{"amount":100}'
    v = client.proposal(p["id"])
    assert v["status"] == "pending" and v["final"] is False
    assert v["package"]["proposal"]["confidence_bps"] == 1235
    assert v["package"]["proposal"]["evidence"] == ["doc:1"]

    with pytest.raises(acp_client.NotEscalated):
        client.decide(p["id"], "approve")


def test_typed_errors_from_the_node(client, domain):
    with pytest.raises(acp_client.InvalidConfidence) as e:
        client.propose(domain, "loan.approve", {}, confidence=1.5)
    assert e.value.status == 400
    with pytest.raises(acp_client.BadRequest):  # InvalidConfidence is a BadRequest too
        client.respond(env("ACP_TEST_ESCALATE"), "endorse", -0.1)
    with pytest.raises(acp_client.NotAuthorized) as e:
        client.propose("no.such.domain", "x", {})
    assert e.value.status == 403 and e.value.reason == "no_anchor"
    with pytest.raises(acp_client.DomainNotJoined):
        client.add_anchor("no.such.domain", env("ACP_TEST_POLICY"))
    with pytest.raises(acp_client.NotFound):
        client.proposal("1220" + "00" * 32)
    with pytest.raises(acp_client.NotFound):
        client.audit_bundle("1220" + "00" * 32)
    with pytest.raises(acp_client.BadRequest) as e:
        client.proposal("not-an-id")
    assert type(e.value) is acp_client.BadRequest
    with pytest.raises(acp_client.BadRequest):
        client.proposals(status="bogus")
    with pytest.raises(acp_client.BadRequest):
        client.respond(env("ACP_TEST_ESCALATE"), "maybe", 0.5)
    with pytest.raises(acp_client.Rejected):
        client.submit_message(b"\x00not a message")


def test_submit_raw_message(client):
    raw = open(env("ACP_TEST_RAW"), "rb").read()
    first = client.submit_message(raw)
    assert first == {"id": env("ACP_TEST_RAW_ID"), "new": True}
    again = client.submit_message(raw)
    assert again == {"id": env("ACP_TEST_RAW_ID"), "new": False}


def test_token_discovery_from_the_data_directory(client):
    ddir = env("ACP_DATA_DIR")
    c = Client(url=client.url, data_dir=ddir)
    assert c.token == client.token
    assert c.status()["agent"] == client.status()["agent"]
    c.close()
