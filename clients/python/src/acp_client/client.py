"""A synchronous client of one ACP node's sidecar HTTP API (``/v1``)."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import httpx

from .errors import AcpError, TransportError, error_for

#: The node's default ``http_addr``.
DEFAULT_URL = "http://127.0.0.1:7421"
#: The token file ``acp init`` writes into the data directory.
TOKEN_FILE = "api.token"

Json = Dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]


def default_data_dir() -> Path:
    """``ACP_DATA_DIR``, else the user data directory's ``acp`` (as the node resolves it)."""
    env = os.environ.get("ACP_DATA_DIR")
    if env:
        return Path(env)
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "acp"


def _http_addr(data_dir: Path) -> Optional[str]:
    """``http_addr`` from ``<data_dir>/config.toml``, as a URL, if present."""
    try:
        text = (data_dir / "config.toml").read_text()
    except OSError:
        return None
    m = re.search(r'^\s*http_addr\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return f"http://{m.group(1)}" if m else None


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name (``proposal``, ``response``, ``decided``,
    ``escalated``, ``finalized``, ``lagged``, ...) and its JSON data."""

    name: str
    data: Any


class EventStream:
    """The node's event stream (``GET /v1/events``) as an iterator of :class:`Event`.

    Use as a context manager (or call :meth:`close`) to release the connection.
    Iteration ends when the node closes the stream.
    """

    def __init__(self, response: httpx.Response):
        self._response = response
        self._lines = response.iter_lines()

    def __iter__(self) -> "EventStream":
        return self

    def __next__(self) -> Event:
        name, data = "message", []  # type: str, List[str]
        try:
            for line in self._lines:
                line = line.rstrip("\r\n")
                if line.startswith(":"):
                    continue  # keep-alive comment
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line == "":
                    if data:
                        text = "\n".join(data)
                        try:
                            value: Any = json.loads(text)
                        except ValueError:
                            value = text
                        return Event(name, value)
                    name, data = "message", []
        except httpx.HTTPError as e:
            self.close()
            raise TransportError(f"event stream: {e}") from e
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Closes the connection."""
        self._response.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """A client of one node's ``/v1`` API.

    ``url`` defaults to ``ACP_URL``, else the data directory's ``config.toml``
    ``http_addr``, else ``http://127.0.0.1:7421``; ``token`` defaults to
    ``ACP_TOKEN``, else ``<data_dir>/api.token``. ``data_dir`` defaults to
    ``ACP_DATA_DIR``, else the user data directory's ``acp``.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, *,
                 data_dir: Optional[PathLike] = None, timeout: float = 30.0,
                 transport: Optional[httpx.BaseTransport] = None):
        ddir = Path(data_dir) if data_dir is not None else None
        if url is None:
            url = os.environ.get("ACP_URL")
        if url is None:
            url = _http_addr(ddir or default_data_dir()) or DEFAULT_URL
        if token is None:
            token = os.environ.get("ACP_TOKEN") if ddir is None else None
        if token is None:
            p = (ddir or default_data_dir()) / TOKEN_FILE
            try:
                token = p.read_text()
            except OSError as e:
                raise AcpError(f"no API token: pass token=, set ACP_TOKEN, or read {p}: {e}",
                               code="no_token") from e
        self.url = url.rstrip("/")
        self.token = token.strip()
        self._http = httpx.Client(
            base_url=self.url + "/v1",
            headers={"Authorization": "Bearer " + self.token},
            timeout=timeout,
            transport=transport,
        )

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _raise_for(r: httpx.Response) -> None:
        if r.is_success:
            return
        code = message = reason = missing = None
        try:
            err = r.json().get("error", {})
            code, message = err.get("code"), err.get("message")
            reason, missing = err.get("reason"), err.get("missing")
        except (ValueError, AttributeError):
            pass
        retry: Optional[float] = None
        try:
            retry = float(r.headers["retry-after"])
        except (KeyError, ValueError):
            pass
        raise error_for(r.status_code, code, message, retry, reason=reason, missing=missing)

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise TransportError(f"node API {self.url}: {e}") from e
        self._raise_for(r)
        return r

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._request(method, path, **kw).json()

    # ------------------------------------------------------------ routes

    def health(self) -> bool:
        """``GET /v1/health`` (no token needed): True when the node answers."""
        return bool(self._json("GET", "/health").get("ok"))

    def status(self) -> Json:
        """``GET /v1/status``: peer id, agent/human/reporter keys, counts, peers, listen addresses."""
        return self._json("GET", "/status")

    def openapi(self) -> Json:
        """``GET /v1/openapi.json``: the API's OpenAPI document."""
        return self._json("GET", "/openapi.json")

    def propose(self, domain: str, kind: str, payload: Any = None, *, confidence: float = 1.0,
                stakes: int = 0, evidence: Sequence[str] = (), closes_in_ms: int = 60_000,
                policy: Optional[str] = None, supersedes: Optional[str] = None) -> Json:
        """``POST /v1/proposals``, signed by the node's agent key.

        ``payload``: any JSON value (a string is used verbatim). ``policy``
        defaults to the newest one the node holds for the domain. Returns
        ``{"id", "new"}``.
        """
        body: Json = {"domain": domain, "kind": kind, "payload": payload,
                      "confidence": confidence, "stakes": stakes, "evidence": list(evidence),
                      "closes_in_ms": closes_in_ms}
        if policy is not None:
            body["policy"] = policy
        if supersedes is not None:
            body["supersedes"] = supersedes
        return self._json("POST", "/proposals", json=body)

    def respond(self, proposal: str, stance: str, confidence: float, reasoning: str = "",
                evidence: Sequence[str] = ()) -> Json:
        """``POST /v1/proposals/{id}/responses``: ``stance`` is ``endorse``,
        ``challenge`` or ``abstain``; signed by the node's agent key."""
        return self._json("POST", f"/proposals/{proposal}/responses",
                          json={"stance": stance, "confidence": confidence,
                                "reasoning": reasoning, "evidence": list(evidence)})

    def proposals(self, domain: Optional[str] = None, status: Optional[str] = None) -> List[Json]:
        """``GET /v1/proposals``, oldest first; ``status`` one of pending,
        approved, rejected, escalated, invalid."""
        params = {k: v for k, v in (("domain", domain), ("status", status)) if v is not None}
        return self._json("GET", "/proposals", params=params)["proposals"]

    def proposal(self, proposal: str) -> Json:
        """``GET /v1/proposals/{id}``: ``status`` (the status to act on),
        ``computed_status``, ``finality`` (``state``: provisional, escalated,
        contested or certified; ``summary``; the ``certificate``;
        ``after_certification``), final, early, reasons, resolution, tally, the
        decision ``package`` and ``receipts``. Act on ``status`` once
        ``finality["state"]`` is ``certified``."""
        return self._json("GET", f"/proposals/{proposal}")

    def decide(self, proposal: str, verdict: str, rationale: str = "") -> Json:
        """``POST /v1/proposals/{id}/decision``: ``verdict`` ``approve`` or
        ``reject``, signed by the node's human key; only on an escalated proposal."""
        return self._json("POST", f"/proposals/{proposal}/decision",
                          json={"verdict": verdict, "rationale": rationale})

    def report_outcome(self, proposal: str, outcome: str, note: str = "") -> Json:
        """``POST /v1/proposals/{id}/outcome``: ``outcome`` ``succeeded`` or
        ``failed``, signed by the node's reporter key."""
        return self._json("POST", f"/proposals/{proposal}/outcome",
                          json={"outcome": outcome, "note": note})

    def audit_bundle(self, proposal: str) -> bytes:
        """``GET /v1/proposals/{id}/audit``: the audit bundle's bytes (verify
        offline with ``acp audit verify``)."""
        return self._request("GET", f"/proposals/{proposal}/audit").content

    def save_audit_bundle(self, proposal: str, path: PathLike) -> Path:
        """Downloads the audit bundle to ``path``."""
        p = Path(path)
        p.write_bytes(self.audit_bundle(proposal))
        return p

    def submit_message(self, message: bytes) -> Json:
        """``POST /v1/messages``: any signed message, raw canonical bytes.
        ``new`` is False when the node already held it."""
        return self._json("POST", "/messages", content=message,
                          headers={"Content-Type": "application/octet-stream"})

    def anchors(self) -> List[Json]:
        """``GET /v1/anchors``: ``[{"domain", "genesis", "current"}]``, the trust
        anchors (genesis policy per domain) and each lineage's newest policy."""
        return self._json("GET", "/anchors")["anchors"]

    def add_anchor(self, domain: str, genesis: str) -> Json:
        """``POST /v1/anchors``: trust ``genesis`` as the genesis policy of
        ``domain`` (kept in the node's config.toml). ``new`` is False when it
        was already the anchor."""
        return self._json("POST", "/anchors", json={"domain": domain, "genesis": genesis})

    def trust(self, domain: str) -> Json:
        """``GET /v1/trust?domain=``: ``{"domain", "policy", "agents": [{"agent",
        "trust_bps", "trust"}]}``."""
        return self._json("GET", "/trust", params={"domain": domain})

    def events(self, read_timeout: Optional[float] = None) -> EventStream:
        """``GET /v1/events``: the event stream as an iterator of :class:`Event`.

        ``read_timeout``: seconds without any bytes (the node sends a keep-alive
        comment every 15 s) before iteration raises :class:`TransportError`;
        ``None`` waits forever.
        """
        req = self._http.build_request(
            "GET", "/events",
            timeout=httpx.Timeout(self._http.timeout.connect, read=read_timeout))
        try:
            r = self._http.send(req, stream=True)
        except httpx.HTTPError as e:
            raise TransportError(f"event stream {self.url}: {e}") from e
        if not r.is_success:
            r.read()
            r.close()
            self._raise_for(r)
        return EventStream(r)
