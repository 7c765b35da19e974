"""Error mapping and event parsing, without a node (httpx's mock transport)."""


import httpx
import pytest

import acp_client
from acp_client import Client


def mock(status, body, headers=None):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers or {})

    return Client("http://node.invalid", "t", transport=httpx.MockTransport(handler))


CASES = [
    (401, "unauthorized", acp_client.Unauthorized),
    (400, "bad_request", acp_client.BadRequest),
    (400, "invalid_confidence", acp_client.InvalidConfidence),
    (413, "payload_too_large", acp_client.PayloadTooLarge),
    (403, "not_authorized", acp_client.NotAuthorized),
    (404, "not_found", acp_client.NotFound),
    (405, "method_not_allowed", acp_client.MethodNotAllowed),
    (409, "no_policy", acp_client.NoPolicy),
    (409, "not_escalated", acp_client.NotEscalated),
    (409, "no_human_key", acp_client.NoHumanKey),
    (409, "no_reporter_key", acp_client.NoReporterKey),
    (409, "domain_not_joined", acp_client.DomainNotJoined),
    (409, "anchor_exists", acp_client.AnchorExists),
    (422, "rejected", acp_client.Rejected),
    (422, "depends_on_unknown", acp_client.DependsOnUnknown),
    (429, "rate_limited", acp_client.RateLimited),
    (503, "unavailable", acp_client.Unavailable),
    (500, "internal", acp_client.Internal),
]


@pytest.mark.parametrize("status,code,cls", CASES)
def test_every_code_has_its_exception(status, code, cls):
    c = mock(status, {"error": {"code": code, "message": "m"}}, {"Retry-After": "1"})
    with pytest.raises(cls) as e:
        c.status()
    assert e.value.code == code
    assert e.value.status == status
    assert e.value.message == "m"
    assert isinstance(e.value, acp_client.AcpError)
    if cls is acp_client.RateLimited:
        assert e.value.retry_after == 1.0


def test_every_code_of_the_api_is_mapped():
    assert sorted(acp_client.ERRORS) == sorted(code for _, code, _ in CASES)


def test_unknown_code_and_non_json_body():
    c = mock(418, {"error": {"code": "teapot", "message": "short and stout"}})
    with pytest.raises(acp_client.AcpError) as e:
        c.status()
    assert type(e.value) is acp_client.AcpError and e.value.code == "teapot"

    def handler(request):
        return httpx.Response(502, text="bad gateway")

    c = Client("http://node.invalid", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(acp_client.AcpError) as e:
        c.status()
    assert e.value.code == "http_502" and e.value.status == 502


def test_transport_failure():
    c = Client("http://127.0.0.1:9", "t", timeout=2)
    with pytest.raises(acp_client.TransportError):
        c.status()


def test_event_stream_parsing():
    body = (
        b": keep-alive\n\n"
        b"event: proposal\ndata: {\"id\": \"a\", \"domain\": \"d\"}\n\n"
        b"event: lagged\r\ndata: {\"missed\": 3}\r\n\r\n"
        b"data: not json\n\n"
    )

    def handler(request):
        assert request.headers["authorization"] == "Bearer t"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    c = Client("http://node.invalid", "t", transport=httpx.MockTransport(handler))
    with c.events() as s:
        got = list(s)
    assert [(e.name, e.data) for e in got] == [
        ("proposal", {"id": "a", "domain": "d"}),
        ("lagged", {"missed": 3}),
        ("message", "not json"),
    ]


def test_discovery_from_a_data_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("ACP_URL", raising=False)
    monkeypatch.delenv("ACP_TOKEN", raising=False)
    (tmp_path / "config.toml").write_text('listen = []\nhttp_addr = "127.0.0.1:7999"\n')
    (tmp_path / "api.token").write_text("abc\n")
    c = Client(data_dir=tmp_path)
    assert c.url == "http://127.0.0.1:7999" and c.token == "abc"
    monkeypatch.setenv("ACP_DATA_DIR", str(tmp_path))
    c = Client()
    assert c.url == "http://127.0.0.1:7999" and c.token == "abc"
    monkeypatch.setenv("ACP_URL", "http://h:1/")
    monkeypatch.setenv("ACP_TOKEN", "xyz")
    c = Client()
    assert c.url == "http://h:1" and c.token == "xyz"
    with pytest.raises(acp_client.AcpError) as e:
        Client(url="http://h:1", data_dir=tmp_path / "missing")
    assert e.value.code == "no_token"
