"""One exception class per stable error code of the sidecar API.

Every error the node returns is ``{"error": {"code": "...", "message": "..."}}``;
:func:`error_for` turns it into the matching subclass of :class:`AcpError`.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class AcpError(Exception):
    """An error answered by the node (or a transport failure, code ``transport``).

    Attributes: ``code`` (the stable code), ``message`` (one line),
    ``status`` (the HTTP status, ``None`` for transport failures).
    """

    code: str = "unknown"

    def __init__(self, message: str, *, code: Optional[str] = None, status: Optional[int] = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class TransportError(AcpError):
    """The node could not be reached, or the connection failed."""

    code = "transport"


class Unauthorized(AcpError):
    """401: missing or wrong bearer token."""

    code = "unauthorized"


class BadRequest(AcpError):
    """400: malformed JSON, query or id; a missing or invalid field."""

    code = "bad_request"


class InvalidConfidence(BadRequest):
    """400: confidence not a number in [0, 1]."""

    code = "invalid_confidence"


class PayloadTooLarge(AcpError):
    """413: request body over the node's limit."""

    code = "payload_too_large"


class NotAuthorized(AcpError):
    """403: the domain's lineage does not admit the message; ``reason`` is the
    refusal code (``no_anchor``, ``not_in_lineage``, ``policy_not_in_lineage``,
    ``wrong_domain``, ``not_authorized``)."""

    code = "not_authorized"

    def __init__(self, message: str, *, code: Optional[str] = None, status: Optional[int] = None,
                 reason: Optional[str] = None):
        super().__init__(message, code=code, status=status)
        self.reason = reason


class NotFound(AcpError):
    """404: no such proposal (on this node) or route."""

    code = "not_found"


class MethodNotAllowed(AcpError):
    """405: the route exists, not with that method."""

    code = "method_not_allowed"


class Conflict(AcpError):
    """409: base of the conflict codes."""

    code = "conflict"


class NoPolicy(Conflict):
    """409: no policy given and none known for the domain."""

    code = "no_policy"


class NotEscalated(Conflict):
    """409: a human decision on a proposal that is not escalated."""

    code = "not_escalated"


class NoHumanKey(Conflict):
    """409: the node has no human key."""

    code = "no_human_key"


class NoReporterKey(Conflict):
    """409: the node has no reporter key."""

    code = "no_reporter_key"


class DomainNotJoined(Conflict):
    """409: a trust anchor for a domain the node does not join."""

    code = "domain_not_joined"


class AnchorExists(Conflict):
    """409: the domain already has another genesis (changed in config.toml, with a restart)."""

    code = "anchor_exists"


class Rejected(AcpError):
    """422: the engine refused the signed message (reason in the message)."""

    code = "rejected"


class DependsOnUnknown(AcpError):
    """422: the message refers to a policy or proposal the node does not hold;
    ``missing`` is its id."""

    code = "depends_on_unknown"

    def __init__(self, message: str, *, code: Optional[str] = None, status: Optional[int] = None,
                 missing: Optional[str] = None):
        super().__init__(message, code=code, status=status)
        self.missing = missing


class RateLimited(AcpError):
    """429: over the API's request rate; ``retry_after`` in seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, code: Optional[str] = None, status: Optional[int] = None,
                 retry_after: Optional[float] = None):
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class Unavailable(AcpError):
    """503: the node core has stopped."""

    code = "unavailable"


class Internal(AcpError):
    """500: anything else."""

    code = "internal"


ERRORS: Dict[str, Type[AcpError]] = {
    cls.code: cls
    for cls in (
        Unauthorized, BadRequest, InvalidConfidence, PayloadTooLarge, NotAuthorized, NotFound,
        MethodNotAllowed, NoPolicy, NotEscalated, NoHumanKey, NoReporterKey, DomainNotJoined,
        AnchorExists, Rejected, DependsOnUnknown, RateLimited, Unavailable, Internal,
    )
}


def error_for(status: int, code: Optional[str], message: Optional[str],
              retry_after: Optional[float] = None, reason: Optional[str] = None,
              missing: Optional[str] = None) -> AcpError:
    """The exception for an error answer; unknown codes give a plain :class:`AcpError`."""
    msg = message or f"node API answered HTTP {status}"
    cls = ERRORS.get(code or "")
    if cls is RateLimited:
        return RateLimited(msg, status=status, retry_after=retry_after)
    if cls is NotAuthorized:
        return NotAuthorized(msg, status=status, reason=reason)
    if cls is DependsOnUnknown:
        return DependsOnUnknown(msg, status=status, missing=missing)
    if cls is not None:
        return cls(msg, status=status)
    return AcpError(msg, code=code or f"http_{status}", status=status)
