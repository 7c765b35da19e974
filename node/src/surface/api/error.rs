//! The API's errors: one [`ApiError`] type, its mapping from the node's
//! errors to stable codes and HTTP statuses, and the JSON body extractor
//! whose every failure is one of them.

use acp_protocol::IngestError;
use acp_protocol::admission::Refusal;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use serde::de::DeserializeOwned;

use super::types::{ErrorBody, ErrorDetail};
use super::{ConfidenceError, MAX_BODY_BYTES};
use crate::config::ConfigError;
use crate::service::{self, AnchorError, SubmitError};

/// A typed API error (the codes are listed in the [`super`] module documentation).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    reason: Option<String>,
    missing: Option<String>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl std::fmt::Display,
    ) -> Self {
        Self {
            status,
            code,
            message: message.to_string().replace('\n', " "),
            reason: None,
            missing: None,
        }
    }
    /// 403: the lineage does not admit the message.
    pub(super) fn not_admitted(refusal: Refusal, message: impl std::fmt::Display) -> Self {
        Self {
            reason: Some(refusal.code().to_owned()),
            ..Self::new(StatusCode::FORBIDDEN, "not_authorized", message)
        }
    }
    pub(super) fn bad(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(super) fn not_found(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub(super) fn conflict(code: &'static str, message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub(super) fn stopped() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the node has stopped",
        )
    }
    pub(super) fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<ConfidenceError> for ApiError {
    fn from(e: ConfidenceError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_confidence", e)
    }
}

impl From<service::NodeError> for ApiError {
    fn from(_: service::NodeError) -> Self {
        Self::stopped()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Ingest(IngestError::NotAdmitted(r)) => {
                Self::not_admitted(r, format!("not admitted: {r} ({})", refusal_hint(r)))
            }
            SubmitError::Ingest(IngestError::Pending { needs }) => Self {
                missing: Some(needs.to_string()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "depends_on_unknown",
                    format!(
                        "the message depends on {needs}, which this node does not hold; \
                         submit that first"
                    ),
                )
            },
            SubmitError::Ingest(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", e),
            SubmitError::Stopped => Self::stopped(),
            other => Self::internal(other),
        }
    }
}

/// What an operator can do about a refusal.
pub(super) fn refusal_hint(r: Refusal) -> &'static str {
    match r {
        Refusal::NoAnchor => {
            "the node trusts no genesis policy for the domain yet: add one with \
             `acp anchor add --domain D --genesis ID` or POST /v1/anchors"
        }
        Refusal::NotInLineage => {
            "the policy is neither the domain's genesis nor a valid amendment of a policy in its lineage"
        }
        Refusal::PolicyNotInLineage => "the pinned policy is not in the domain's lineage",
        Refusal::WrongDomain => "the message names another domain than its proposal",
        Refusal::NotAuthorized => "the signer has no role for this kind of message in the policy",
        _ => "the domain's lineage does not authorize it",
    }
}

impl From<AnchorError> for ApiError {
    fn from(e: AnchorError) -> Self {
        match e {
            AnchorError::NotJoined(_) => Self::conflict("domain_not_joined", e),
            AnchorError::Conflict { .. } => Self::conflict("anchor_exists", e),
            AnchorError::Config(ConfigError::Invalid(m)) => Self::bad(m),
            AnchorError::Stopped => Self::stopped(),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                reason: self.reason,
                missing: self.missing,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose every failure is a typed [`ApiError`].
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad(format!("request body: {e}")))
    }
}

pub(super) async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body over {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::bad(e.body_text())
        }
    })
}
