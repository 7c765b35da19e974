//! Typed views of a proposal's finality and receipts, shared by the HTTP API,
//! the control channel and (through them) the CLI, the MCP tools and the
//! escalation page, so that every surface says the same thing about
//! certification.
//!
//! The status to act on is [`Resolution::final_status`]: the certified one,
//! `escalated` while a human must decide, else the provisional result of the
//! votes. `finality` says why, with the certificate ("certified by 3 of 3
//! organizations"), every attestation, attestor equivocations and the
//! messages that arrived after certification (evidence that cannot change
//! the result).

use acp_protocol::finality::{Attestation, Finality, State};
use acp_protocol::{Body, ContentId, DomainPolicy, MessageSet, Resolution, Status};

use crate::surface::api::types::{
    AttestationView, EquivocationView, FinalityView, OrganizationRef, ReceiptView,
};

/// The lowercase name of a status.
pub fn status_str(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Approved => "approved",
        Status::Rejected => "rejected",
        Status::Escalated => "escalated",
        Status::Invalid => "invalid",
    }
}

/// The lowercase name of a finality state.
pub fn state_str(s: State) -> &'static str {
    match s {
        State::Provisional => "provisional",
        State::Escalated => "escalated",
        State::Contested => "contested",
        State::Certified => "certified",
    }
}

/// One line for people: "certified by 3 of 3 organizations: approved",
/// "contested: …", "awaiting certificate: …".
pub fn summary(f: &Finality) -> String {
    let signed = f.certificate.as_ref().map_or(0, |c| c.organizations.len());
    let n = f.organizations;
    match f.state {
        State::Certified => {
            let by_human = f.certificate.as_ref().is_some_and(|c| c.result.is_human());
            format!(
                "certified by {signed} of {n} organizations: {}{}",
                status_str(f.status),
                if by_human {
                    " (settled by a human)"
                } else {
                    ""
                }
            )
        }
        State::Escalated => format!(
            "escalation certified by {signed} of {n} organizations: awaiting a human decision"
        ),
        State::Contested => {
            "contested: no result of the votes can be certified; a human decides".to_owned()
        }
        State::Provisional if f.quorum == 0 => {
            "awaiting certificate: the policy is not in this node's lineage".to_owned()
        }
        State::Provisional => {
            let best = f
                .attestations
                .iter()
                .map(|a| a.organizations.len())
                .max()
                .unwrap_or(0);
            format!(
                "awaiting certificate: {best} of the {} organizations needed signed one result",
                f.quorum
            )
        }
    }
}

fn organization(policy: Option<&DomainPolicy>, index: u16) -> OrganizationRef {
    let name = policy
        .and_then(|p| p.organizations.get(usize::from(index)))
        .map(|o| o.name.clone());
    OrganizationRef { index, name }
}

fn attestation(policy: Option<&DomainPolicy>, a: &Attestation) -> AttestationView {
    AttestationView {
        round: u8::from(a.result.is_human()),
        human_decision: a.result.human_decision,
        status: a.result.status,
        resolution: a.result.resolution,
        counted_root: a.result.counted_root,
        organizations: a
            .organizations
            .iter()
            .map(|i| organization(policy, *i))
            .collect(),
        receipts: a.receipts.clone(),
    }
}

/// The `finality` object of a proposal: its state, the status to act on,
/// the certificate and every attestation, with organization names from the
/// pinned policy, and the messages that arrived after certification.
pub fn finality(
    r: &Resolution,
    policy: Option<&DomainPolicy>,
    after: &[ContentId],
) -> FinalityView {
    let f = &r.finality;
    FinalityView {
        state: f.state,
        status: f.status,
        summary: summary(f),
        quorum: f.quorum,
        organizations: f.organizations,
        certified_by: f.certificate.as_ref().map_or(0, |c| c.organizations.len()),
        certificate: f.certificate.as_ref().map(|c| attestation(policy, c)),
        // Late or equivocating messages can move this node's own digest
        // away from the certified one; the certified result stands either
        // way, and this says whether it happened.
        matches_certificate: f
            .certificate
            .as_ref()
            .is_some_and(|c| c.result.resolution == r.digest()),
        contested: f.contested,
        human_round_open: f.human_round_open,
        attestations: f
            .attestations
            .iter()
            .map(|a| attestation(policy, a))
            .collect(),
        equivocations: f
            .equivocations
            .iter()
            .map(|e| EquivocationView {
                organization: organization(policy, e.organization),
                round: u8::from(e.human_round),
                receipts: e.receipts.clone(),
            })
            .collect(),
        conflicting: f
            .conflicting
            .iter()
            .map(|a| attestation(policy, a))
            .collect(),
        after_certification: after.to_vec(),
    }
}

/// Every receipt held for `proposal`, with the organization it counts for
/// (`None`: signed by a member that attests for no organization).
pub fn receipts(set: &MessageSet, proposal: &ContentId) -> Vec<ReceiptView> {
    let policy = set.proposal(proposal).and_then(|p| set.policy(&p.policy));
    let Some(refs) = set.refs(proposal) else {
        return Vec::new();
    };
    refs.receipts
        .iter()
        .filter_map(|rid| match set.get(rid).map(|m| m.body()) {
            Some(Body::Receipt(rc)) => Some(ReceiptView {
                id: *rid,
                node: rc.node,
                round: u8::from(rc.human_decision.is_some()),
                human_decision: rc.human_decision,
                status: rc.status,
                resolution: rc.resolution,
                counted_root: rc.counted_root,
                organization: policy
                    .and_then(|p| p.attestor_of(&rc.node))
                    .map(|i| organization(policy, i)),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use acp_protocol::finality::Attested;

    fn cert(orgs: &[u16], status: Status, human: bool) -> Attestation {
        Attestation {
            result: Attested {
                human_decision: human.then(|| ContentId::of(b"h")),
                status,
                resolution: ContentId::of(b"r"),
                counted_root: ContentId::of(b"c"),
            },
            organizations: orgs.to_vec(),
            receipts: orgs.iter().map(|i| ContentId::of(&[*i as u8])).collect(),
        }
    }

    #[test]
    fn summaries_say_who_certified_what() {
        let mut f = Finality::none(Status::Approved);
        f.quorum = 2;
        f.organizations = 3;
        f.attestations = vec![cert(&[1], Status::Approved, false)];
        assert_eq!(
            summary(&f),
            "awaiting certificate: 1 of the 2 organizations needed signed one result"
        );
        f.state = State::Certified;
        f.certificate = Some(cert(&[0, 1, 2], Status::Approved, false));
        assert_eq!(summary(&f), "certified by 3 of 3 organizations: approved");
        f.certificate = Some(cert(&[0, 2], Status::Rejected, true));
        f.status = Status::Rejected;
        assert_eq!(
            summary(&f),
            "certified by 2 of 3 organizations: rejected (settled by a human)"
        );
        f.state = State::Contested;
        assert!(summary(&f).starts_with("contested"));
        assert!(summary(&Finality::none(Status::Pending)).contains("not in this node's lineage"));
    }
}
