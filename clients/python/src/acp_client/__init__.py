"""Python client of an ACP (Agent Consensus Protocol) node's sidecar HTTP API."""

from .client import DEFAULT_URL, Client, Event, EventStream, default_data_dir
from .errors import (
    ERRORS,
    AcpError,
    AnchorExists,
    BadRequest,
    Conflict,
    DependsOnUnknown,
    DomainNotJoined,
    Internal,
    InvalidConfidence,
    MethodNotAllowed,
    NoHumanKey,
    NoPolicy,
    NoReporterKey,
    NotAuthorized,
    NotEscalated,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Rejected,
    TransportError,
    Unauthorized,
    Unavailable,
    error_for,
)

__all__ = [
    "DEFAULT_URL", "Client", "Event", "EventStream", "default_data_dir",
    "ERRORS", "AcpError", "AnchorExists", "BadRequest", "Conflict", "DependsOnUnknown",
    "DomainNotJoined", "Internal", "InvalidConfidence", "MethodNotAllowed", "NoHumanKey",
    "NoPolicy", "NoReporterKey", "NotAuthorized", "NotEscalated", "NotFound",
    "PayloadTooLarge", "RateLimited", "Rejected", "TransportError", "Unauthorized",
    "Unavailable", "error_for",
]
__version__ = "0.1.0"
