//! The escalation page end to end in headless Chromium: the page reads the
//! token from the URL fragment, lists the open escalation, shows its
//! decision package (stances, reasoning, weights, tally and confidence
//! pictures, why it escalated), and signs an approval with the node's human
//! key. Driven over the DevTools protocol (a WebSocket) from this test.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it; see `harness::require`).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;
use acp_protocol::{Keypair, Stance, Verdict};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Page {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Page {
    /// Evaluates a JS expression (promises awaited) and returns its value.
    /// The DevTools protocol is not the node's: its messages are read raw.
    fn eval(&mut self, expr: &str) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expr, "returnByValue": true, "awaitPromise": true}});
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let m = self.ws.read().unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                assert!(
                    v["result"]["exceptionDetails"].is_null(),
                    "JS error in {expr}: {v}"
                );
                return v["result"]["result"]["value"].clone();
            }
        }
    }

    /// Polls `expr` until it is truthy.
    fn wait(&mut self, secs: u64, expr: &str) -> Value {
        wait_until(secs, expr, || {
            let v = self.eval(expr);
            (!(v.is_null() || v == false || v == 0 || v == "")).then_some(v)
        })
    }
}

fn launch(bin: &str, url: &str) -> (Browser, Page) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("ws://") {
                let _ = tx.send(line[i..].trim().to_owned());
            }
        }
    });
    let browser = Browser {
        child,
        _profile: profile,
    };
    let ws_url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("chromium did not print its DevTools address");
    // ws://127.0.0.1:PORT/devtools/browser/<id> -> the page target's socket.
    let hostport = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let page_ws = wait_until(20, "the page target", || {
        let list: Value = reqwest::blocking::get(format!("http://{hostport}/json/list"))
            .ok()?
            .json()
            .ok()?;
        list.as_array()?
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
    });
    let (ws, _) = tungstenite::connect(page_ws.as_str()).unwrap();
    (browser, Page { ws, next: 0 })
}

#[test]
fn escalation_page_in_headless_chromium() {
    if !require(
        "chromium",
        "the escalation page is driven in a headless browser",
    ) {
        return;
    }
    let bin = chromium().unwrap();
    let dir = DataDir::new();
    let node = dir.start(&[]);
    let human = dir.key("human.key");
    let (k1, k2) = (Keypair::from_seed([21; 32]), Keypair::from_seed([22; 32]));
    let org = Keypair::from_seed([9; 32]);
    let policy = acme_policy(
        &org,
        &dir.agent.public(),
        &[&k1.public(), &k2.public()],
        Some(&human.public()),
        None,
    );
    node.anchor(policy.id);
    node.post_message(&policy.bytes);
    // k1 proposes, k2 endorses, the node's agent challenges: a tie.
    let (pid, bytes) = proposal(&k1, policy.id, 1200);
    node.post_message(&bytes);
    let (_, r) = response(&k2, pid, Stance::Endorse);
    node.post_message(&r);
    let _: SubmittedBody = node.post_as(
        &format!("/proposals/{pid}/responses"),
        json!({"stance": "challenge", "confidence": 0.9, "reasoning": "income not verified"}),
    );
    wait_until(15, "the escalation to be certified", || {
        let v = node.proposal(pid);
        (v.finality.state == State::Escalated).then_some(())
    });

    let (_browser, mut page) = launch(bin, &node.page);
    let id = pid.to_string();
    page.wait(20, "document.body && document.body.dataset.ready === '1'");
    // The token left the address bar and lives in this tab's sessionStorage.
    assert_eq!(page.eval("location.hash"), "");
    assert_eq!(
        page.eval("sessionStorage.getItem('acp-token')"),
        node.token.as_str()
    );
    let listed = page.wait(
        10,
        "[...document.querySelectorAll('#escalations li')].map(l => l.dataset.id).join(',')",
    );
    assert_eq!(listed, id.as_str());
    page.eval(&format!(
        "document.querySelector('#escalations li[data-id=\"{id}\"]').click(); true"
    ));
    page.wait(
        10,
        &format!(
            "!document.getElementById('detail').hidden && document.getElementById('detail').dataset.id === '{id}' \
             && document.querySelectorAll('#d-votes tbody tr').length === 2"
        ),
    );
    let text = page
        .eval("document.getElementById('detail').innerText")
        .to_string();
    for want in [
        "income not verified",
        "looks right",
        "no_margin",
        "escalated",
        "loan.approve",
        "escalation certified by 1 of 1 organizations",
    ] {
        assert!(text.contains(want), "{want:?} not on the page:\n{text}");
    }
    assert_eq!(
        page.eval("document.querySelectorAll('#tally-svg rect.bar').length"),
        2
    );
    assert!(
        page.eval("document.querySelectorAll('#histogram-svg rect.bin').length")
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(page.eval("!document.getElementById('decide').hidden") == true);
    assert_eq!(
        page.eval("document.getElementById('human-key').textContent"),
        human.public().to_string().as_str()
    );
    page.eval(
        "document.getElementById('rationale').value = 'approved after a call with the applicant'; \
         document.getElementById('approve').click(); true",
    );
    let result = page.wait(
        15,
        "document.getElementById('result').dataset.decision || ''",
    );
    // The page follows the proposal until the node's receipt certifies the
    // human's decision: approved, the form gone, the list empty.
    page.wait(
        15,
        "document.getElementById('d-status').textContent === 'approved'",
    );
    assert_eq!(
        page.eval("document.getElementById('d-finality').textContent"),
        "certified by 1 of 1 organizations: approved"
    );
    page.wait(
        10,
        "document.querySelectorAll('#escalations li').length === 0",
    );

    // The node holds the decision, signed by its human key.
    let v = node.proposal(pid);
    assert_eq!(v.status, Status::Approved);
    let (id, d) = &v.package.human_decisions[0];
    assert_eq!(result, id.to_string().as_str());
    assert_eq!(d.human, human.public());
    assert_eq!(d.verdict, Verdict::Approve);
    assert_eq!(d.rationale, "approved after a call with the applicant");
}
