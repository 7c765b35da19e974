#!/usr/bin/env python3
"""An ACP agent in Python.

It follows its node's event stream (server-sent events) and answers every new
proposal of its domain through the node's sidecar HTTP API; the node signs the
response with its agent key. The decision rule here is a toy (a loan amount
limit); replace `judge` with your model.

It uses the `acp_client` package (`pip install ./clients/python`; found in
this repository's clients/python/src too) when `httpx` is installed, and
falls back to a few lines of standard library otherwise.

    python3 examples/python/acp_agent.py --url http://127.0.0.1:7421 \
        --token-file <data-dir>/api.token --domain loans.retail

Options: --max-amount (default 100000), --count N (stop after N responses).

The node admits a response only from a member of the proposal's pinned
policy; proposals this agent may not answer are reported and skipped.
"""

import argparse
import json
import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                             "clients", "python", "src"))
try:
    from acp_client import AcpError, Client
except ImportError:  # no httpx: the standard-library subset this agent needs
    import http.client
    import urllib.parse
    import urllib.request

    class AcpError(Exception):
        def __init__(self, message, code):
            super().__init__(f"{message} ({code})")
            self.code = code

    class Client:
        def __init__(self, url, token):
            self.url, self.token = url.rstrip("/"), token

        def _call(self, method, path, body=None):
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(self.url + "/v1" + path, data=data, method=method)
            req.add_header("Authorization", "Bearer " + self.token)
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return json.load(r)
            except urllib.error.HTTPError as e:
                err = json.load(e).get("error", {})
                raise AcpError(err.get("message"), err.get("code")) from None

        def status(self):
            return self._call("GET", "/status")

        def proposal(self, pid):
            return self._call("GET", "/proposals/" + pid)

        def respond(self, pid, stance, confidence, reasoning=""):
            return self._call("POST", f"/proposals/{pid}/responses",
                              {"stance": stance, "confidence": confidence, "reasoning": reasoning})

        def events(self):
            u = urllib.parse.urlsplit(self.url)
            conn = http.client.HTTPConnection(u.hostname, u.port or 80)
            conn.request("GET", "/v1/events", headers={"Authorization": "Bearer " + self.token})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"event stream: HTTP {resp.status}")
            return self._read(resp)  # subscribed now, read lazily

        @staticmethod
        def _read(resp):
            name, data = "message", []
            for line in iter(resp.readline, b""):
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    yield argparse.Namespace(name=name, data=json.loads("\n".join(data)))
                    name, data = "message", []


def judge(proposal, max_amount):
    """(stance, confidence in [0, 1], reasoning) for a proposal."""
    try:
        payload = json.loads(proposal["action"]["payload"] or "{}")
    except ValueError:
        return "abstain", 0.5, "payload is not JSON; no opinion"
    amount = payload.get("amount_eur", payload.get("amount"))
    if not isinstance(amount, (int, float)):
        return "abstain", 0.5, "no amount in the payload"
    if amount <= max_amount:
        return "endorse", 0.8, f"amount {amount} within the limit {max_amount}"
    return "challenge", 0.7, f"amount {amount} above the limit {max_amount}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("ACP_URL", "http://127.0.0.1:7421"))
    ap.add_argument("--token-file")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--max-amount", type=float, default=100000)
    ap.add_argument("--count", type=int, default=0, help="stop after this many responses")
    a = ap.parse_args()
    token = os.environ.get("ACP_TOKEN")
    if a.token_file:
        with open(a.token_file) as f:
            token = f.read().strip()
    if not token:
        sys.exit("acp_agent: pass --token-file <data-dir>/api.token or set ACP_TOKEN")
    node = Client(a.url, token)
    me = node.status()["agent"]
    stream = node.events()
    print(f"agent {me} watching {a.domain} at {a.url}", flush=True)
    answered = 0
    for ev in stream:
        p = ev.data
        if ev.name != "proposal" or p.get("domain") != a.domain or p.get("proposer") == me:
            continue
        pkg = node.proposal(p["id"])["package"]
        stance, confidence, why = judge(pkg["proposal"], a.max_amount)
        try:
            r = node.respond(p["id"], stance, confidence, reasoning=why)
        except AcpError as e:
            if e.code != "not_authorized":
                raise
            print(f"skip {p['id']}: {e}", flush=True)
            continue
        print(f"{stance} {p['id']} ({why}) -> response {r['id']}", flush=True)
        answered += 1
        if a.count and answered >= a.count:
            return


if __name__ == "__main__":
    main()
