//! The sidecar HTTP API (axum) and the escalation page.
//!
//! Served by `acp node` on `http_addr` (loopback by default). Every route
//! under `/v1` except `GET /v1/health` needs `Authorization: Bearer <token>`,
//! the token `acp init` writes to `<data-dir>/api.token` (mode 0600). The
//! OpenAPI document is `GET /v1/openapi.json`. `GET /metrics` serves
//! Prometheus text ([`crate::surface::metrics`]) and needs the same bearer token.
//! The escalation page (`/ui/`)
//! is static HTML, JS and CSS compiled into the binary; it holds no data and
//! calls the API with the token it reads from the URL fragment.
//!
//! JSON in, JSON out. Every error is
//! `{"error": {"code": "<stable code>", "message": "<one line>"}}` with one of
//! these codes:
//!
//! | code | HTTP | meaning |
//! |---|---|---|
//! | `unauthorized` | 401 | missing or wrong bearer token |
//! | `bad_request` | 400 | malformed JSON, query or id; a missing or invalid field |
//! | `invalid_confidence` | 400 | confidence not a number in `[0, 1]` |
//! | `payload_too_large` | 413 | body over [`MAX_BODY_BYTES`] |
//! | `not_authorized` | 403 | the domain's lineage does not admit the message; `reason` holds the refusal code (`no_anchor`, `not_in_lineage`, `policy_not_in_lineage`, `wrong_domain`, `not_authorized`) |
//! | `not_found` | 404 | no such proposal (on this node) or route |
//! | `method_not_allowed` | 405 | the route exists, not with that method |
//! | `no_policy` | 409 | no policy given and none known for the domain |
//! | `not_escalated` | 409 | a human decision on a proposal that is not escalated |
//! | `no_human_key` | 409 | this node has no human key (`human.key`) |
//! | `no_reporter_key` | 409 | this node has no reporter key (`reporter.key`) |
//! | `domain_not_joined` | 409 | an anchor for a domain this node does not join |
//! | `anchor_exists` | 409 | the domain already has another genesis (change it in config.toml and restart) |
//! | `rejected` | 422 | the engine refused the signed message (reason in the message) |
//! | `depends_on_unknown` | 422 | the message refers to a policy or proposal this node does not hold; `missing` names it |
//! | `rate_limited` | 429 | over the API's request rate ([`RateLimit`]); retry after a second |
//! | `unavailable` | 503 | the node core has stopped |
//! | `internal` | 500 | anything else |
//!
//! Confidence crosses the API as a JSON number in `[0, 1]` and is converted
//! to basis points by [`confidence_to_bps`] (SPEC section 1).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use acp_protocol::admission::Refusal;
use acp_protocol::bundle::AuditBundle;
use acp_protocol::{
    Action, Body, ContentId, HumanDecision, Keypair, OutcomeReport, Proposal, Response, Status,
};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::OpenApi;

use crate::service::{self, NodeHandle};
use crate::surface::view::{self, status_str};

mod error;
mod events;
pub mod types;

pub use error::ApiError;
use error::{ApiResult, JsonBody, body_bytes, refusal_hint};
pub use events::stream_event;

pub use types::{
    AnchorAdded, AnchorBody, AnchorList, AnchorView, DecisionSubmitted, ErrorBody, ErrorDetail,
    Health, ListQuery, NewDecision, NewOutcome, NewProposal, NewResponse, ProposalDetail,
    ProposalItem, ProposalList, StatusBody, StreamEvent, SubmittedBody, TrustEntry, TrustQuery,
    TrustTable,
};

/// Largest request body: one message of the largest kind, hex or JSON, with room.
pub const MAX_BODY_BYTES: usize = 2 * acp_protocol::codec::MAX_MESSAGE_BYTES + 64 * 1024;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const APP_JS: &str = include_str!("../../../web/app.js");
const STYLE_CSS: &str = include_str!("../../../web/style.css");

/// Why a confidence was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfidenceError {
    /// NaN or infinite.
    #[error("confidence must be a finite number in [0, 1]")]
    NotFinite,
    /// Below 0 or above 1.
    #[error("confidence {0} is outside [0, 1]")]
    OutOfRange(f64),
}

/// The one rule from API confidence to basis points: round half away from
/// zero, `bps = floor(x * 10000 + 0.5)` in IEEE-754 double arithmetic, for
/// `x` in `[0, 1]`; NaN, infinities and values outside `[0, 1]` are refused.
pub fn confidence_to_bps(x: f64) -> Result<u16, ConfidenceError> {
    if !x.is_finite() {
        return Err(ConfidenceError::NotFinite);
    }
    if !(0.0..=1.0).contains(&x) {
        return Err(ConfidenceError::OutOfRange(x));
    }
    let bps = (x * 10_000.0 + 0.5).floor();
    // In range by the check above: 0 <= bps <= 10000.
    Ok(bps.clamp(0.0, 10_000.0) as u16)
}

/// Basis points back to the API's `[0, 1]` (exact for display).
pub fn bps_to_confidence(bps: u16) -> f64 {
    f64::from(bps) / 10_000.0
}

/// Keys the API signs with on the node's behalf.
#[derive(Clone)]
pub struct ApiKeys {
    /// The agent key: proposals and responses.
    pub agent: Keypair,
    /// The human key: decisions on escalations (`None`: decisions refused).
    pub human: Option<Keypair>,
    /// The reporter key: outcome reports (`None`: reports refused).
    pub reporter: Option<Keypair>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("agent", &self.agent.public())
            .field("human", &self.human.as_ref().map(Keypair::public))
            .field("reporter", &self.reporter.as_ref().map(Keypair::public))
            .finish()
    }
}

/// The API's request rate limit: one token bucket for the whole process,
/// checked before authentication so that token guessing is throttled too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second refilled into the bucket; 0 disables the limit.
    pub per_sec: u32,
    /// Bucket size: requests allowed at once after an idle period.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_sec: DEFAULT_RATE_PER_SEC,
            burst: DEFAULT_RATE_BURST,
        }
    }
}

/// Default of [`RateLimit::per_sec`] (`api_rate_per_sec` in `config.toml`).
pub const DEFAULT_RATE_PER_SEC: u32 = 100;
/// Default of [`RateLimit::burst`] (`api_rate_burst` in `config.toml`).
pub const DEFAULT_RATE_BURST: u32 = 200;

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes one token; `false` when the bucket is empty.
    fn take(&mut self, now: Instant) -> bool {
        if self.limit.per_sec == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap = f64::from(self.limit.burst.max(1));
        self.tokens = (self.tokens + elapsed * f64::from(self.limit.per_sec)).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Inner {
    handle: NodeHandle,
    token: String,
    keys: ApiKeys,
    bucket: Mutex<Bucket>,
}

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("keys", &self.0.keys)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for a node handle, its bearer token and its keys, with the
    /// default [`RateLimit`].
    pub fn new(handle: NodeHandle, token: String, keys: ApiKeys) -> Self {
        Self::with_rate_limit(handle, token, keys, RateLimit::default())
    }

    /// State with an explicit request rate limit.
    pub fn with_rate_limit(
        handle: NodeHandle,
        token: String,
        keys: ApiKeys,
        limit: RateLimit,
    ) -> Self {
        Self(Arc::new(Inner {
            handle,
            token,
            keys,
            bucket: Mutex::new(Bucket::new(limit)),
        }))
    }
}

/// The whole HTTP surface: `/v1` (API), `/ui/` (page), `/` (redirect).
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/status", get(status))
        .route("/proposals", post(create_proposal).get(list_proposals))
        .route("/proposals/{id}", get(get_proposal))
        .route("/proposals/{id}/responses", post(respond))
        .route("/proposals/{id}/decision", post(decide))
        .route("/proposals/{id}/outcome", post(report_outcome))
        .route("/proposals/{id}/audit", get(audit_bundle))
        .route("/messages", post(submit_message))
        .route("/anchors", post(add_anchor).get(list_anchors))
        .route("/trust", get(trust))
        .route("/events", get(events::events))
        .route("/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .route("/health", get(health))
        .method_not_allowed_fallback(method_not_allowed);
    let scrape = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .nest("/v1", v1)
        .merge(scrape)
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(page_index))
        .route("/ui/app.js", get(page_js))
        .route("/ui/style.css", get(page_css))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

async fn rate_limit(State(st): State<ApiState>, req: Request, next: Next) -> HttpResponse {
    // A poisoned lock only means another request panicked mid-update; the
    // bucket is still a valid pair of numbers.
    let allowed = match st.0.bucket.lock() {
        Ok(mut b) => b.take(Instant::now()),
        Err(poisoned) => poisoned.into_inner().take(Instant::now()),
    };
    if allowed {
        next.run(req).await
    } else {
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "over the API request rate limit (api_rate_per_sec, api_rate_burst); retry later",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Serves [`router`] on a bound listener until it fails.
pub async fn serve(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// Compares without an early exit on the first differing byte.
fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(st): State<ApiState>, req: Request, next: Next) -> HttpResponse {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same_token(t.trim().as_bytes(), st.0.token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (see <data-dir>/api.token)",
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

fn parse_id(s: &str) -> ApiResult<ContentId> {
    s.parse()
        .map_err(|e| ApiError::bad(format!("{s:?} is not a content id: {e}")))
}

/// Parses a query string, every failure a typed error.
fn parse_query<T: DeserializeOwned + Default>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad(e.body_text()))
}

// ---------------------------------------------------------------- handlers

#[utoipa::path(get, path = "/v1/health",
    responses((status = 200, body = Health, description = "The node answers")))]
async fn health() -> Json<Health> {
    Json(Health { ok: true })
}

#[utoipa::path(get, path = "/v1/status", security(("bearer" = [])),
    responses((status = 200, body = StatusBody,
               description = "Peer id, agent key, counts, peers, listen addresses, counters"),
              (status = 401, body = ErrorBody)))]
async fn status(State(st): State<ApiState>) -> ApiResult<Json<StatusBody>> {
    let node = st.0.handle.status().await?;
    Ok(Json(StatusBody {
        node,
        human: st.0.keys.human.as_ref().map(Keypair::public),
        reporter: st.0.keys.reporter.as_ref().map(Keypair::public),
    }))
}

/// Prometheus text exposition format 0.0.4.
async fn metrics(State(st): State<ApiState>) -> ApiResult<HttpResponse> {
    let figures =
        st.0.handle
            .with_engine(crate::surface::metrics::engine_figures)
            .await?;
    let text = crate::surface::metrics::render(st.0.handle.metrics(), &figures);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

async fn submit(st: &ApiState, bytes: Vec<u8>) -> ApiResult<(StatusCode, Json<SubmittedBody>)> {
    let s = st.0.handle.submit(bytes).await?;
    let code = if s.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(SubmittedBody {
            id: s.id,
            new: s.new,
        }),
    ))
}

fn sign(body: Body, key: &Keypair) -> ApiResult<Vec<u8>> {
    body.sign(&[key])
        .map(|m| m.bytes)
        .map_err(|e| ApiError::bad(format!("message cannot be encoded: {e}")))
}

#[utoipa::path(post, path = "/v1/proposals", request_body = NewProposal, security(("bearer" = [])),
    responses((status = 201, body = SubmittedBody), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_proposal(
    State(st): State<ApiState>,
    JsonBody(p): JsonBody<NewProposal>,
) -> ApiResult<(StatusCode, Json<SubmittedBody>)> {
    let confidence_bps = confidence_to_bps(p.confidence)?;
    let policy = match p.policy.as_deref() {
        Some(s) => parse_id(s)?,
        None => {
            let d = p.domain.clone();
            let (anchored, latest) =
                st.0.handle
                    .with_engine(move |e| (e.set().anchor(&d).is_some(), e.set().latest_policy(&d)))
                    .await?;
            if !anchored {
                return Err(ApiError::not_admitted(
                    Refusal::NoAnchor,
                    format!(
                        "no trust anchor for domain {:?}: {}",
                        p.domain,
                        refusal_hint(Refusal::NoAnchor)
                    ),
                ));
            }
            latest.ok_or_else(|| {
                ApiError::conflict(
                    "no_policy",
                    format!(
                        "the genesis policy of domain {:?} has not reached this node yet; \
                         submit it, or pass \"policy\"",
                        p.domain
                    ),
                )
            })?
        }
    };
    let supersedes = p.supersedes.as_deref().map(parse_id).transpose()?;
    let payload = match p.payload {
        Value::String(s) => s,
        Value::Null => "{}".to_owned(),
        v => v.to_string(),
    };
    let created_at = service::now();
    let body = Body::Proposal(Proposal {
        proposer: st.0.keys.agent.public(),
        domain: p.domain,
        policy,
        action: Action {
            kind: p.kind,
            payload,
        },
        confidence_bps,
        stakes: p.stakes,
        evidence: p.evidence,
        created_at,
        closes_at: created_at.plus_ms(p.closes_in_ms),
        supersedes,
    });
    let bytes = sign(body, &st.0.keys.agent)?;
    submit(&st, bytes).await
}

/// The domain of a held proposal, or `not_found`.
async fn proposal_domain(st: &ApiState, id: ContentId) -> ApiResult<String> {
    st.0.handle
        .with_engine(move |e| e.set().proposal(&id).map(|p| p.domain.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no proposal {id} on this node")))
}

#[utoipa::path(post, path = "/v1/proposals/{id}/responses", request_body = NewResponse,
    params(("id" = String, Path, description = "Proposal id")), security(("bearer" = [])),
    responses((status = 201, body = SubmittedBody), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn respond(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(r): JsonBody<NewResponse>,
) -> ApiResult<(StatusCode, Json<SubmittedBody>)> {
    let id = parse_id(&id)?;
    let confidence_bps = confidence_to_bps(r.confidence)?;
    let domain = proposal_domain(&st, id).await?;
    let body = Body::Response(Response {
        responder: st.0.keys.agent.public(),
        domain,
        proposal: id,
        stance: r.stance,
        confidence_bps,
        reasoning: r.reasoning,
        evidence: r.evidence,
        issued_at: service::now(),
    });
    let bytes = sign(body, &st.0.keys.agent)?;
    submit(&st, bytes).await
}

#[utoipa::path(post, path = "/v1/proposals/{id}/decision", request_body = NewDecision,
    params(("id" = String, Path, description = "Proposal id")), security(("bearer" = [])),
    responses((status = 201, body = DecisionSubmitted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn decide(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<NewDecision>,
) -> ApiResult<(StatusCode, Json<DecisionSubmitted>)> {
    let id = parse_id(&id)?;
    let Some(human) = st.0.keys.human.clone() else {
        return Err(ApiError::conflict(
            "no_human_key",
            "this node has no human key (human.key in its data directory)",
        ));
    };
    let domain = proposal_domain(&st, id).await?;
    // Escalated to act on: certified escalation, contested, or (before the
    // receipts are in) escalated by the votes. A decision counts once the
    // receipts open the human round.
    let status =
        st.0.handle
            .with_engine(move |e| {
                e.resolve(&id, service::now())
                    .map(|r| r.final_status())
                    .ok()
            })
            .await?;
    if status != Some(Status::Escalated) {
        return Err(ApiError::conflict(
            "not_escalated",
            format!(
                "proposal {id} is {}, not escalated",
                status.map_or("unknown", status_str)
            ),
        ));
    }
    let body = Body::HumanDecision(HumanDecision {
        human: human.public(),
        domain,
        proposal: id,
        verdict: d.verdict,
        rationale: d.rationale,
        decided_at: service::now(),
    });
    let bytes = sign(body, &human)?;
    let (code, Json(submitted)) = submit(&st, bytes).await?;
    let (status, finality) =
        st.0.handle
            .with_engine(move |e| {
                let pkg = e.decision_package(&id, service::now()).ok()?;
                let r = &pkg.resolution;
                Some((
                    r.final_status(),
                    view::finality(r, pkg.policy.as_ref(), &pkg.after_certification),
                ))
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no proposal {id} on this node")))?;
    Ok((
        code,
        Json(DecisionSubmitted {
            id: submitted.id,
            new: submitted.new,
            status,
            finality,
        }),
    ))
}

#[utoipa::path(post, path = "/v1/proposals/{id}/outcome", request_body = NewOutcome,
    params(("id" = String, Path, description = "Proposal id")), security(("bearer" = [])),
    responses((status = 201, body = SubmittedBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report_outcome(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    JsonBody(o): JsonBody<NewOutcome>,
) -> ApiResult<(StatusCode, Json<SubmittedBody>)> {
    let id = parse_id(&id)?;
    let Some(reporter) = st.0.keys.reporter.clone() else {
        return Err(ApiError::conflict(
            "no_reporter_key",
            "this node has no reporter key (reporter.key in its data directory)",
        ));
    };
    let domain = proposal_domain(&st, id).await?;
    let body = Body::OutcomeReport(OutcomeReport {
        reporter: reporter.public(),
        domain,
        proposal: id,
        outcome: o.outcome,
        note: o.note,
        reported_at: service::now(),
    });
    let bytes = sign(body, &reporter)?;
    submit(&st, bytes).await
}

#[utoipa::path(post, path = "/v1/messages", security(("bearer" = [])),
    request_body(content = types::MessageBytes, content_type = "application/octet-stream",
                 description = "Canonical bytes of a signed message (any kind)"),
    responses((status = 201, body = SubmittedBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_message(
    State(st): State<ApiState>,
    req: Request,
) -> ApiResult<(StatusCode, Json<SubmittedBody>)> {
    let bytes = body_bytes(req, &()).await?;
    submit(&st, bytes.to_vec()).await
}

#[utoipa::path(get, path = "/v1/proposals", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = ProposalList, description = "Oldest first; each with `status` (the status to \
        act on), `finality` (its state) and `certificate` (the one-line summary)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_proposals(
    State(st): State<ApiState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ProposalList>> {
    let q = parse_query(q)?;
    if let Some(s) = q.status.as_deref()
        && !["pending", "approved", "rejected", "escalated", "invalid"].contains(&s)
    {
        return Err(ApiError::bad(format!("unknown status {s:?}")));
    }
    let list =
        st.0.handle
            .with_engine(move |e| {
                let t = service::now();
                let domains: Vec<String> = match q.domain {
                    Some(d) => vec![d],
                    None => {
                        let mut ds: Vec<String> = e
                            .set()
                            .iter()
                            .filter_map(|m| match m.body() {
                                Body::Proposal(p) => Some(p.domain.clone()),
                                _ => None,
                            })
                            .collect();
                        ds.sort();
                        ds.dedup();
                        ds
                    }
                };
                let mut out = Vec::new();
                for d in domains {
                    let ids: Vec<ContentId> = e.set().proposals_in(&d).map(|(_, id)| id).collect();
                    for id in ids {
                        let Ok(r) = e.resolve(&id, t) else { continue };
                        let s = r.final_status();
                        if q.status
                            .as_deref()
                            .is_some_and(|want| want != status_str(s))
                        {
                            continue;
                        }
                        let set = e.set();
                        let Some(p) = set.proposal(&id) else { continue };
                        out.push(ProposalItem {
                            id,
                            domain: p.domain.clone(),
                            kind: p.action.kind.clone(),
                            payload: p.action.payload.clone(),
                            proposer: p.proposer,
                            stakes: p.stakes,
                            created_at: p.created_at.0,
                            closes_at: p.closes_at.0,
                            status: s,
                            finality: r.finality.state,
                            certificate: view::summary(&r.finality),
                            responses: set.refs(&id).map_or(0, |r| r.response_count()),
                        });
                    }
                }
                out
            })
            .await?;
    Ok(Json(ProposalList { proposals: list }))
}

#[utoipa::path(get, path = "/v1/proposals/{id}", params(("id" = String, Path, description = "Proposal id")),
    security(("bearer" = [])),
    responses((status = 200, description = "`status`: the status to act on (certified, escalated to a human, or \
        provisional); `computed_status`; `finality` {state (provisional, escalated, contested, certified), status, \
        summary, quorum, organizations, certified_by, certificate {round, human_decision, status, resolution, \
        counted_root, organizations, receipts}, matches_certificate, contested, human_round_open, attestations, \
        equivocations, conflicting, after_certification}; live tally, resolution digest, decision package, receipts",
               body = ProposalDetail),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_proposal(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ProposalDetail>> {
    let id = parse_id(&id)?;
    let (pkg, receipts) =
        st.0.handle
            .with_engine(move |e| {
                let pkg = e.decision_package(&id, service::now()).ok()?;
                Some((pkg, view::receipts(e.set(), &id)))
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no proposal {id} on this node")))?;
    let r = &pkg.resolution;
    let detail = ProposalDetail {
        id,
        status: r.final_status(),
        computed_status: r.status,
        is_final: r.is_final,
        early: r.early,
        reasons: r.reasons.clone(),
        resolution: r.digest(),
        tally: r.tally.clone(),
        finality: view::finality(r, pkg.policy.as_ref(), &pkg.after_certification),
        receipts,
        package: pkg,
    };
    Ok(Json(detail))
}

#[utoipa::path(get, path = "/v1/proposals/{id}/audit", params(("id" = String, Path, description = "Proposal id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The audit bundle (binary); verify offline with `acp audit verify \
                   --genesis <your anchor>`, which recomputes the certificate",
               content_type = "application/octet-stream",
               headers(("x-acp-status" = String, description = "The status to act on, as this node holds it"),
                       ("x-acp-finality" = String, description = "provisional, escalated, contested or certified"),
                       ("x-acp-genesis" = String, description = "The genesis policy the bundle is verified under"))),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn audit_bundle(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_id(&id)?;
    let (bundle, status, state) =
        st.0.handle
            .with_engine(move |e| {
                let bundle = AuditBundle::collect(e.set(), &id)?;
                let r = e.resolve(&id, service::now()).ok()?;
                Some((
                    bundle,
                    status_str(r.final_status()),
                    view::state_str(r.finality.state),
                ))
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no proposal {id} on this node")))?;
    let bytes = bundle.to_bytes().map_err(ApiError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("x-acp-status", HeaderValue::from_static(status));
    headers.insert("x-acp-finality", HeaderValue::from_static(state));
    if let Ok(v) = HeaderValue::from_str(&bundle.genesis.to_string()) {
        headers.insert("x-acp-genesis", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.acpbundle\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok((headers, bytes).into_response())
}

#[utoipa::path(post, path = "/v1/anchors", request_body = AnchorBody, security(("bearer" = [])),
    responses((status = 201, body = AnchorAdded, description = "Added: written to config.toml, then taken by the \
                   engine; a sync round for the domain follows"),
              (status = 200, body = AnchorAdded, description = "The domain already had this anchor"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "domain_not_joined, or anchor_exists (another \
                   genesis: change it in config.toml and restart)")))]
async fn add_anchor(
    State(st): State<ApiState>,
    JsonBody(a): JsonBody<AnchorBody>,
) -> ApiResult<(StatusCode, Json<AnchorAdded>)> {
    let genesis = parse_id(&a.genesis)?;
    let new = st.0.handle.add_anchor(a.domain.clone(), genesis).await?;
    let code = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(AnchorAdded {
            domain: a.domain,
            genesis,
            new,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/anchors", security(("bearer" = [])),
    responses((status = 200, body = AnchorList, description = "Every anchor with its lineage's newest policy \
        (null while the genesis has not arrived)"),
              (status = 401, body = ErrorBody)))]
async fn list_anchors(State(st): State<ApiState>) -> ApiResult<Json<AnchorList>> {
    let anchors =
        st.0.handle
            .with_engine(|e| {
                e.set()
                    .anchors()
                    .iter()
                    .map(|(d, g)| AnchorView {
                        domain: d.clone(),
                        genesis: *g,
                        current: e.set().latest_policy(d),
                    })
                    .collect::<Vec<_>>()
            })
            .await?;
    Ok(Json(AnchorList { anchors }))
}

#[utoipa::path(get, path = "/v1/trust", params(TrustQuery), security(("bearer" = [])),
    responses((status = 200, body = TrustTable, description = "Agents with a trust history in the domain"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn trust(
    State(st): State<ApiState>,
    q: Result<Query<TrustQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<TrustTable>> {
    let q = parse_query(q)?;
    let Some(domain) = q.domain else {
        return Err(ApiError::bad("trust needs ?domain="));
    };
    let d = domain.clone();
    let (policy, table) =
        st.0.handle
            .with_engine(move |e| {
                let policy = e.set().latest_policy(&d);
                (policy, e.trust_table(&d, service::now()))
            })
            .await?;
    let agents = table
        .iter()
        .map(|(k, bps)| TrustEntry {
            agent: *k,
            trust_bps: *bps,
            trust: bps_to_confidence(*bps),
        })
        .collect();
    Ok(Json(TrustTable {
        domain,
        policy,
        agents,
    }))
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the `/v1` routes.
#[derive(OpenApi)]
#[openapi(
    info(title = "ACP node sidecar API", version = "1",
         description = "Agents talk to their own ACP node. Confidence is a number in [0, 1]; \
                        bps = floor(x * 10000 + 0.5). Errors: {\"error\": {\"code\", \"message\"}}."),
    paths(health, status, create_proposal, list_proposals, get_proposal, respond, decide,
          report_outcome, audit_bundle, submit_message, add_anchor, list_anchors, trust,
          events::events),
    components(schemas(ErrorBody, ErrorDetail, Health, StatusBody, types::NodeStatus, SubmittedBody,
                       NewProposal, NewResponse, NewDecision, DecisionSubmitted, NewOutcome,
                       ProposalList, ProposalItem, ProposalDetail, types::FinalityView,
                       types::AttestationView, types::EquivocationView, types::OrganizationRef,
                       types::ReceiptView, AnchorBody, AnchorAdded, AnchorList, AnchorView,
                       TrustTable, TrustEntry, StreamEvent, types::MessageBytes,
                       types::ControlRequest, types::ControlSubmitted, types::ControlOk,
                       types::ControlRefusal, types::IdList, types::Held,
                       types::ResolutionAnswer, types::AuditVerified)),
    modifiers(&SecurityAddon)
)]
#[derive(Debug)]
pub struct ApiDoc;

async fn openapi() -> HttpResponse {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn page(content_type: &'static str, body: &'static str) -> HttpResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page_index() -> HttpResponse {
    page("text/html; charset=utf-8", INDEX_HTML)
}
async fn page_js() -> HttpResponse {
    page("text/javascript; charset=utf-8", APP_JS)
}
async fn page_css() -> HttpResponse {
    page("text/css; charset=utf-8", STYLE_CSS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(RateLimit {
            per_sec: 10,
            burst: 5,
        });
        b.last = t0;
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        let t1 = t0 + std::time::Duration::from_millis(300);
        assert_eq!((0..8).filter(|_| b.take(t1)).count(), 3);
        let mut off = Bucket::new(RateLimit {
            per_sec: 0,
            burst: 1,
        });
        assert!((0..1000).all(|_| off.take(t0)));
    }

    #[test]
    fn confidence_rule_rounds_half_away_from_zero_and_refuses_bad_values() {
        assert_eq!(confidence_to_bps(0.0).unwrap(), 0);
        assert_eq!(confidence_to_bps(1.0).unwrap(), 10_000);
        assert_eq!(confidence_to_bps(0.9).unwrap(), 9_000);
        assert_eq!(confidence_to_bps(0.12345).unwrap(), 1_235);
        assert_eq!(confidence_to_bps(0.00004).unwrap(), 0);
        assert_eq!(confidence_to_bps(0.00006).unwrap(), 1);
        assert_eq!(confidence_to_bps(0.99996).unwrap(), 10_000);
        assert!(matches!(
            confidence_to_bps(f64::NAN),
            Err(ConfidenceError::NotFinite)
        ));
        assert!(confidence_to_bps(f64::INFINITY).is_err());
        assert!(confidence_to_bps(-0.0001).is_err());
        assert!(confidence_to_bps(1.0001).is_err());
    }

    #[test]
    fn openapi_document_lists_the_routes() {
        let doc = ApiDoc::openapi().to_json().unwrap();
        for p in [
            "/v1/proposals",
            "/v1/proposals/{id}/decision",
            "/v1/events",
            "/v1/trust",
            "/v1/anchors",
        ] {
            assert!(doc.contains(p), "{p} missing");
        }
    }

    #[test]
    fn openapi_components_come_from_the_types() {
        let doc: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap();
        for name in [
            "ProposalDetail",
            "ProposalList",
            "FinalityView",
            "ReceiptView",
            "StatusBody",
            "TrustTable",
            "AnchorList",
            "StreamEvent",
            "ResolutionAnswer",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        let statuses = doc.pointer("/components/schemas/Status/enum").unwrap();
        assert_eq!(
            statuses,
            &serde_json::json!(["pending", "approved", "rejected", "escalated", "invalid"])
        );
        let trust = doc
            .pointer("/paths/~1v1~1trust/get/parameters/0/in")
            .unwrap();
        assert_eq!(trust, "query");
    }

    #[test]
    fn stream_events_travel_as_name_and_data() {
        let ev = StreamEvent::Lagged(types::LaggedEvent { missed: 3 });
        assert_eq!(ev.name(), "lagged");
        assert_eq!(ev.data_json().unwrap(), r#"{"missed":3}"#);
        let back = StreamEvent::parse("lagged", r#"{"missed":3}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::json!({"event": "lagged", "data": {"missed": 3}})
        );
        assert!(StreamEvent::parse("no_such_event", "{}").is_err());
    }
}
