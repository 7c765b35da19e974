//! Audit bundles: every message behind one decision, in one self-contained
//! file that an auditor re-verifies offline with [`verify_bundle`].
//!
//! A bundle holds the proposal, its policy, every message referring to it
//! (responses, human decisions, outcome reports, receipts) and the trust
//! inputs its weights read: the earlier proposals of the domain that have
//! outcome reports or equivocations, with their policies, responses and
//! reports, and the domain's lineage policies from the genesis. Verification
//! decodes and checks every message like a node would, rebuilds the set with
//! the bundle's genesis as its trust anchor, resolves the proposal, and
//! reports its certificate: which organizations' attestors signed which
//! result, and whether the bundle's own messages recompute the certified
//! digest. Receipts by keys that attest for no organization count for
//! nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, MAX_CONTAINER_BYTES};
use crate::id::ContentId;
use crate::lineage::{Membership, membership};
use crate::message::{Body, Rejection, Timestamp, decode_message};
use crate::resolve::{Reason, Resolution, resolve};
use crate::set::MessageSet;

/// Version byte of the bundle format.
pub const BUNDLE_VERSION: u8 = 2;

/// The file format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBundle {
    /// [`BUNDLE_VERSION`].
    pub version: u8,
    /// The proposal audited.
    pub proposal: ContentId,
    /// The genesis policy of the proposal's domain: the trust anchor the
    /// bundle is verified under (an auditor compares it with their own).
    pub genesis: ContentId,
    /// Canonical message bytes, sorted by content id.
    pub messages: Vec<Vec<u8>>,
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file is not a canonical bundle.
    #[error("not a canonical bundle: {0}")]
    Codec(#[from] CodecError),
    /// Unknown bundle version.
    #[error("unsupported bundle version {0}")]
    Version(u8),
    /// A message in the bundle is invalid (tampered, forged, malformed).
    #[error("message {index} is invalid: {rejection}")]
    Message {
        /// Position in the bundle.
        index: usize,
        /// Why.
        rejection: Rejection,
    },
    /// The same message appears twice, or messages are out of order.
    #[error("messages must be sorted by id without duplicates (at {0})")]
    Order(usize),
    /// The audited proposal is not in the bundle.
    #[error("the audited proposal {0} is not in the bundle")]
    MissingProposal(ContentId),
    /// The audited proposal's policy is not the lineage policy in force
    /// from the bundle's genesis (or the lineage is incomplete).
    #[error("the proposal's policy is not in force under genesis {0}")]
    NotInLineage(ContentId),
}

/// What a verified bundle shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// The proposal.
    pub proposal: ContentId,
    /// Number of messages checked.
    pub messages: usize,
    /// The resolution recomputed from the bundle (final), with its
    /// finality: the certificate and every attestation.
    pub resolution: Resolution,
    /// Certified, and the bundle's messages recompute exactly the certified
    /// digest. False for a certified proposal means messages the certificate
    /// did not count (late, backdated, equivocating) are in the bundle; the
    /// certified result stands.
    pub recomputed_matches_certificate: bool,
    /// Receipts on the proposal that no attestation counts: by keys that
    /// attest for no organization, with a non-binding status, or extra
    /// copies of a result an organization already signed.
    pub receipts_ignored: usize,
}

impl AuditBundle {
    /// Collect the bundle of `proposal` from a set (which must hold a trust
    /// anchor for its domain).
    pub fn collect(set: &MessageSet, proposal: &ContentId) -> Option<Self> {
        let p = set.proposal(proposal)?;
        let genesis = set.anchor(&p.domain)?;
        let mut ids: BTreeSet<ContentId> = BTreeSet::new();
        // The lineage from the genesis to the proposal's policy.
        let mut policy = Some(p.policy);
        while let Some(id) = policy {
            if !ids.insert(id) {
                break;
            }
            policy = set.policy(&id).and_then(|p| p.supersedes);
        }
        ids.extend(crate::lineage::lineage(set, &p.domain).chain);
        let add_proposal = |q: &ContentId, ids: &mut BTreeSet<ContentId>| {
            ids.insert(*q);
            if let Some(qp) = set.proposal(q) {
                ids.insert(qp.policy);
            }
            if let Some(refs) = set.refs(q) {
                ids.extend(refs.responses().map(|(_, id, _)| *id));
                ids.extend(&refs.decisions);
                ids.extend(&refs.reports);
            }
        };
        add_proposal(proposal, &mut ids);
        if let Some(refs) = set.refs(proposal) {
            ids.extend(&refs.receipts);
        }
        // Trust inputs: reported or equivocated earlier proposals of the domain.
        let reported: Vec<ContentId> = set
            .reports_before(&p.domain, p.created_at)
            .filter_map(|r| set.get(&r)?.body().proposal_ref().copied())
            .collect();
        let equivocated: Vec<ContentId> = set.equivocated_proposals().copied().collect();
        for q in reported.iter().chain(&equivocated) {
            if set.proposal(q).is_some_and(|qp| qp.domain == p.domain) {
                add_proposal(q, &mut ids);
            }
        }
        ids.retain(|id| set.contains(id));
        Some(Self {
            version: BUNDLE_VERSION,
            proposal: *proposal,
            genesis,
            messages: ids
                .iter()
                .filter_map(|id| set.get(id).map(|m| m.bytes.clone()))
                .collect(),
        })
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_large(self)
    }
}

/// Verify a bundle file: every message, the order, the lineage from the
/// bundle's genesis, the resolution and its certificate.
pub fn verify_bundle(bytes: &[u8]) -> Result<BundleReport, BundleError> {
    // As with messages, the leading version byte decides the layout: a
    // bundle of another version is refused by it, not misread.
    if let Some(&v) = bytes.first()
        && v != BUNDLE_VERSION
    {
        return Err(BundleError::Version(v));
    }
    let bundle: AuditBundle = codec::decode_large(bytes, MAX_CONTAINER_BYTES)?;
    let mut set = MessageSet::new();
    let mut last: Option<ContentId> = None;
    for (index, m) in bundle.messages.iter().enumerate() {
        let msg =
            decode_message(m).map_err(|rejection| BundleError::Message { index, rejection })?;
        if last.is_some_and(|l| l >= msg.id) {
            return Err(BundleError::Order(index));
        }
        last = Some(msg.id);
        set.insert(msg);
    }
    let p = set
        .proposal(&bundle.proposal)
        .ok_or(BundleError::MissingProposal(bundle.proposal))?;
    set.set_anchor(&p.domain.clone(), bundle.genesis);
    let p = set
        .proposal(&bundle.proposal)
        .ok_or(BundleError::MissingProposal(bundle.proposal))?;
    if membership(&set, &p.policy) != Membership::In {
        return Err(BundleError::NotInLineage(bundle.genesis));
    }
    let resolution = resolve(&set, &bundle.proposal, Timestamp(u64::MAX))
        .map_err(|_| BundleError::MissingProposal(bundle.proposal))?;
    if resolution.reasons.iter().any(|r| {
        matches!(
            r,
            Reason::PolicyNotInForce | Reason::PolicyMissing | Reason::NoTrustAnchor
        )
    }) {
        return Err(BundleError::NotInLineage(bundle.genesis));
    }
    let digest = resolution.digest();
    let recomputed_matches_certificate = resolution
        .finality
        .certificate
        .as_ref()
        .is_some_and(|c| resolution.finality.is_certified() && c.result.resolution == digest);
    let counted: usize = resolution
        .finality
        .attestations
        .iter()
        .map(|a| a.receipts.len())
        .sum();
    let receipts = set.refs(&bundle.proposal).map_or(0, |r| {
        r.receipts
            .iter()
            .filter(|id| matches!(set.get(id).map(|m| m.body()), Some(Body::Receipt(_))))
            .count()
    });
    Ok(BundleReport {
        proposal: bundle.proposal,
        messages: bundle.messages.len(),
        resolution,
        recomputed_matches_certificate,
        receipts_ignored: receipts.saturating_sub(counted),
    })
}
