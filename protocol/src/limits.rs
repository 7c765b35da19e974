//! Size limits, all checked before anything is allocated or stored.

/// Largest encoded policy envelope.
pub const MAX_POLICY_BYTES: usize = crate::codec::MAX_MESSAGE_BYTES;
/// Largest encoded envelope of any other kind.
pub const MAX_OTHER_BYTES: usize = 64 * 1024;
/// Domain name length.
pub const MAX_DOMAIN_BYTES: usize = 128;
/// Names: organization names, action kinds.
pub const MAX_NAME_BYTES: usize = 128;
/// Action payload (JSON text).
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
/// Reasoning, rationale and note text.
pub const MAX_REASONING_BYTES: usize = 8 * 1024;
/// Evidence references per message.
pub const MAX_EVIDENCE_ITEMS: usize = 32;
/// Length of one evidence reference.
pub const MAX_EVIDENCE_BYTES: usize = 512;
/// Organizations in one policy.
pub const MAX_ORGANIZATIONS: usize = 256;
/// Members in one policy.
pub const MAX_MEMBERS: usize = 20_000;
/// Human or reporter keys in one policy.
pub const MAX_KEY_LIST: usize = 256;
