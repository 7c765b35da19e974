//! Equivocation evidence: two different signed responses by one agent to one
//! proposal. Self-certifying — anyone can check it without the rest of the
//! set — so it can be handed to the agent's organization or an auditor.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::crypto::AgentId;
use crate::id::ContentId;
use crate::message::{Body, Rejection, SignedMessage, decode_message};
use crate::set::MessageSet;

/// The canonical bytes of two (or more) conflicting responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationEvidence {
    /// Canonical response bytes, at least two, sorted by content id.
    pub responses: Vec<Vec<u8>>,
}

/// What verified evidence proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The agent that signed conflicting responses.
    pub agent: AgentId,
    /// The proposal they answer.
    pub proposal: ContentId,
    /// The distinct response ids.
    pub responses: Vec<ContentId>,
}

/// Why evidence does not prove an equivocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// A response is not a valid signed message.
    #[error("response {index} is invalid: {rejection}")]
    Invalid {
        /// Position.
        index: usize,
        /// Why.
        rejection: Rejection,
    },
    /// A message is not a response.
    #[error("message {0} is not a response")]
    NotAResponse(usize),
    /// Fewer than two distinct responses, or not sorted by id.
    #[error("evidence needs two or more distinct responses sorted by id")]
    TooFew,
    /// The responses are by different agents or to different proposals.
    #[error("responses are by different agents or to different proposals")]
    Unrelated,
    /// The container is not canonical.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl EquivocationEvidence {
    /// Collect the evidence against `agent` on `proposal` from a set, if any.
    pub fn collect(set: &MessageSet, proposal: &ContentId, agent: &AgentId) -> Option<Self> {
        let refs = set.refs(proposal)?;
        let responses: Vec<Vec<u8>> = refs
            .responses_of(agent)
            .filter_map(|id| set.get(&id).map(|m| m.bytes.clone()))
            .collect();
        (responses.len() > 1).then_some(Self { responses })
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode_large(self)
    }

    /// Decode canonical bytes and verify.
    pub fn verify_bytes(bytes: &[u8]) -> Result<Equivocation, EvidenceError> {
        let ev: Self = codec::decode_large(bytes, 2 * crate::limits::MAX_OTHER_BYTES * 16)?;
        ev.verify()
    }

    /// Check every signature and that the responses conflict.
    pub fn verify(&self) -> Result<Equivocation, EvidenceError> {
        let msgs: Vec<SignedMessage> = self
            .responses
            .iter()
            .enumerate()
            .map(|(index, b)| {
                decode_message(b).map_err(|rejection| EvidenceError::Invalid { index, rejection })
            })
            .collect::<Result<_, _>>()?;
        if msgs.len() < 2 || msgs.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(EvidenceError::TooFew);
        }
        let mut key = None;
        for (i, m) in msgs.iter().enumerate() {
            let Body::Response(r) = m.body() else {
                return Err(EvidenceError::NotAResponse(i));
            };
            match key {
                None => key = Some((r.responder, r.proposal)),
                Some(k) if k != (r.responder, r.proposal) => return Err(EvidenceError::Unrelated),
                Some(_) => {}
            }
        }
        let (agent, proposal) = key.ok_or(EvidenceError::TooFew)?;
        Ok(Equivocation {
            agent,
            proposal,
            responses: msgs.iter().map(|m| m.id).collect(),
        })
    }
}
