//! Audit bundles: every message behind one decision, in one self-contained
//! file that an auditor re-verifies offline with [`verify_bundle`].
//!
//! A bundle holds the proposal, its policy, every message referring to it
//! (responses, human decisions, outcome reports, receipts) and the trust
//! inputs its weights read: the earlier proposals of the domain that have
//! outcome reports or equivocations, with their policies, responses and
//! reports. Verification decodes and checks every message like a node would,
//! rebuilds the set, resolves the proposal, and compares the result with
//! every receipt in the bundle.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, MAX_CONTAINER_BYTES};
use crate::crypto::PublicKey;
use crate::id::ContentId;
use crate::message::{Body, Receipt, Rejection, Timestamp, decode_message};
use crate::resolve::{Resolution, resolve};
use crate::set::MessageSet;

/// Version byte of the bundle format.
pub const BUNDLE_VERSION: u8 = 1;

/// The file format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBundle {
    /// [`BUNDLE_VERSION`].
    pub version: u8,
    /// The proposal audited.
    pub proposal: ContentId,
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
    /// A receipt disagrees with the resolution recomputed from the bundle.
    #[error(
        "no receipt by {node} matches the resolution recomputed from the bundle ({ours}); e.g. {receipt}"
    )]
    ReceiptMismatch {
        /// One of the node's receipts.
        receipt: ContentId,
        /// Its signer.
        node: PublicKey,
        /// The resolution digest recomputed from the bundle.
        ours: ContentId,
    },
}

/// What a verified bundle shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// The proposal.
    pub proposal: ContentId,
    /// Number of messages checked.
    pub messages: usize,
    /// The resolution recomputed from the bundle (final).
    pub resolution: Resolution,
    /// The nodes whose newest receipts matched it.
    pub receipts_matched: Vec<PublicKey>,
    /// Earlier receipts that a later one of the same node superseded.
    pub receipts_superseded: usize,
}

impl AuditBundle {
    /// Collect the bundle of `proposal` from a set.
    pub fn collect(set: &MessageSet, proposal: &ContentId) -> Option<Self> {
        let p = set.proposal(proposal)?;
        let mut ids: BTreeSet<ContentId> = BTreeSet::new();
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

/// Verify a bundle file: every message, the order, the resolution, and
/// every receipt for the audited proposal.
pub fn verify_bundle(bytes: &[u8]) -> Result<BundleReport, BundleError> {
    let bundle: AuditBundle = codec::decode_large(bytes, MAX_CONTAINER_BYTES)?;
    if bundle.version != BUNDLE_VERSION {
        return Err(BundleError::Version(bundle.version));
    }
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
    let resolution = resolve(&set, &bundle.proposal, Timestamp(u64::MAX))
        .map_err(|_| BundleError::MissingProposal(bundle.proposal))?;
    let ours = resolution.digest();
    // A node re-signs when a later message changed its resolution; only the
    // newest receipt of each node (superseded by none) must match.
    let receipts: Vec<(ContentId, Receipt)> = set
        .refs(&bundle.proposal)
        .map(|r| r.receipts.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|rid| match set.get(&rid).map(|m| m.body()) {
            Some(Body::Receipt(r)) => Some((rid, r.clone())),
            _ => None,
        })
        .collect();
    let superseded: BTreeSet<(PublicKey, ContentId)> = receipts
        .iter()
        .filter_map(|(_, r)| r.supersedes.map(|s| (r.node, s)))
        .collect();
    let mut receipts_matched = Vec::new();
    for (rid, r) in &receipts {
        if superseded.contains(&(r.node, *rid)) {
            continue;
        }
        if r.resolution != ours {
            return Err(BundleError::ReceiptMismatch {
                receipt: *rid,
                node: r.node,
                ours,
            });
        }
        receipts_matched.push(r.node);
    }
    let receipts_superseded = receipts.len() - receipts_matched.len();
    Ok(BundleReport {
        proposal: bundle.proposal,
        messages: bundle.messages.len(),
        resolution,
        receipts_matched,
        receipts_superseded,
    })
}
