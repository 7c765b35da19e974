//! The server-sent event stream: engine events as typed [`StreamEvent`]s.

use std::convert::Infallible;

use acp_protocol::Event;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::types::{
    AfterCertificationEvent, AttestorEquivocationEvent, CertifiedEvent, ContestedEvent,
    DecidedEvent, DivergenceEvent, EquivocationEvent, ErrorBody, EscalatedEvent, FinalizedEvent,
    LaggedEvent, MessageSeen, PolicyForkEvent, ProposalSeen, ReceiptMismatchEvent, ResponseSeen,
    StreamEvent,
};
use crate::surface::view;

/// One engine event as a server-sent event.
pub fn stream_event(ev: &Event) -> StreamEvent {
    match ev {
        Event::ProposalSeen {
            id,
            domain,
            proposer,
        } => StreamEvent::Proposal(ProposalSeen {
            id: *id,
            domain: domain.clone(),
            proposer: *proposer,
        }),
        Event::ResponseSeen {
            id,
            proposal,
            responder,
            stance,
        } => StreamEvent::Response(ResponseSeen {
            id: *id,
            proposal: *proposal,
            responder: *responder,
            stance: *stance,
        }),
        Event::MessageSeen { id, kind, domain } => StreamEvent::Message(MessageSeen {
            id: *id,
            kind: *kind,
            domain: domain.clone(),
        }),
        Event::Decided { resolution: r } => StreamEvent::Decided(DecidedEvent {
            proposal: r.proposal,
            status: r.status,
            early: r.early,
            resolution: r.digest(),
        }),
        Event::Escalated { resolution: r } => StreamEvent::Escalated(EscalatedEvent {
            proposal: r.proposal,
            reasons: r.reasons.clone(),
            resolution: r.digest(),
        }),
        Event::Finalized {
            resolution: r,
            receipt,
        } => StreamEvent::Finalized(FinalizedEvent {
            proposal: r.proposal,
            status: r.status,
            resolution: r.digest(),
            receipt: *receipt,
        }),
        Event::Equivocation {
            proposal,
            agent,
            responses,
        } => StreamEvent::Equivocation(EquivocationEvent {
            proposal: *proposal,
            agent: *agent,
            responses: responses.clone(),
        }),
        Event::Divergence {
            proposal,
            previous,
            current,
        } => StreamEvent::Divergence(DivergenceEvent {
            proposal: *proposal,
            previous: previous.0,
            previous_status: previous.1,
            current: current.digest(),
            status: current.status,
        }),
        Event::ReceiptMismatch {
            proposal,
            node,
            theirs,
            ours,
        } => StreamEvent::ReceiptMismatch(ReceiptMismatchEvent {
            proposal: *proposal,
            node: *node,
            theirs: *theirs,
            ours: *ours,
        }),
        Event::Certified { resolution: r } => StreamEvent::Certified(CertifiedEvent {
            proposal: r.proposal,
            status: r.final_status(),
            summary: view::summary(&r.finality),
            certificate: view::finality(r, None, &[]).certificate,
        }),
        Event::Contested { resolution: r } => StreamEvent::Contested(ContestedEvent {
            proposal: r.proposal,
            summary: view::summary(&r.finality),
            attestations: view::finality(r, None, &[]).attestations,
        }),
        Event::AttestorEquivocation {
            proposal,
            organization,
            receipts,
        } => StreamEvent::AttestorEquivocation(AttestorEquivocationEvent {
            proposal: *proposal,
            organization: *organization,
            receipts: receipts.clone(),
        }),
        Event::PolicyFork { domain, fork } => StreamEvent::PolicyFork(PolicyForkEvent {
            domain: domain.clone(),
            parent: fork.parent,
            successors: fork.successors.clone(),
        }),
        Event::AfterCertification { proposal, id, kind } => {
            StreamEvent::AfterCertification(AfterCertificationEvent {
                proposal: *proposal,
                id: *id,
                kind: *kind,
            })
        }
    }
}

#[utoipa::path(get, path = "/v1/events", security(("bearer" = [])),
    responses((status = 401, body = ErrorBody),
              (status = 200, content_type = "text/event-stream", body = StreamEvent,
               description = "Server-sent events (the SSE event name is `event`, the SSE data is `data`): proposal, response, message, decided, escalated, finalized, \
                              certified, contested, attestor_equivocation, policy_fork, after_certification, \
                              equivocation, divergence, receipt_mismatch; `lagged` when this client fell behind")))]
pub(super) async fn events(
    State(st): State<ApiState>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = st.0.handle.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let ev = match rx.recv().await {
            Ok(ev) => stream_event(&ev),
            Err(RecvError::Lagged(missed)) => StreamEvent::Lagged(LaggedEvent { missed }),
            Err(RecvError::Closed) => return None,
        };
        // The payloads are plain fields: serializing them does not fail.
        let data = ev.data_json().unwrap_or_else(|_| "{}".to_owned());
        Some((Ok(SseEvent::default().event(ev.name()).data(data)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
