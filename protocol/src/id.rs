//! Content ids: the multihash of a message's canonical signed bytes.
//!
//! SHA-256, chosen over BLAKE3 after measuring both on ACP's message sizes
//! (`docs/BENCHMARKS.md`): with SHA extensions it is faster below ~2 KiB,
//! where nearly all ACP messages fall; hashing is under 1% of ingest either
//! way; and every language's standard library (and the browser's WebCrypto)
//! has SHA-256, so independent implementations and auditors need nothing
//! extra. The multihash prefix leaves room to move.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Multicodec code of SHA2-256 in the multihash table.
pub const MULTIHASH_SHA2_256: u8 = 0x12;
/// Digest length in bytes.
pub const DIGEST_LEN: usize = 32;

/// A content id: `0x12 0x20` followed by the 32-byte SHA-256 digest.
///
/// Encoded on the wire as the 32 digest bytes only; the two prefix bytes are
/// implied by protocol version 1 and appear in the textual form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; DIGEST_LEN]);

impl Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            crate::bytes::serialize(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            crate::bytes::deserialize(d).map(Self)
        }
    }
}

impl ContentId {
    /// Hash `bytes` into a content id.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Hash several byte strings as if concatenated.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Self(h.finalize().into())
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// The full multihash bytes (`0x12 0x20 digest`).
    pub fn to_multihash(&self) -> [u8; DIGEST_LEN + 2] {
        let mut out = [0u8; DIGEST_LEN + 2];
        out[0] = MULTIHASH_SHA2_256;
        out[1] = DIGEST_LEN as u8;
        out[2..].copy_from_slice(&self.0);
        out
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_multihash()))
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({})", &self.to_string()[4..16])
    }
}

/// Why a textual content id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// Not hexadecimal.
    #[error("content id is not hex")]
    NotHex,
    /// Wrong length or multihash prefix.
    #[error("content id must be 68 hex digits starting with 1220 (SHA-256 multihash)")]
    WrongPrefix,
}

impl FromStr for ContentId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| ParseIdError::NotHex)?;
        if bytes.len() != DIGEST_LEN + 2
            || bytes[0] != MULTIHASH_SHA2_256
            || bytes[1] != DIGEST_LEN as u8
        {
            return Err(ParseIdError::WrongPrefix);
        }
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(&bytes[2..]);
        Ok(Self(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let id = ContentId::of(b"acp");
        let s = id.to_string();
        assert!(s.starts_with("1220"));
        assert_eq!(s.parse::<ContentId>(), Ok(id));
        assert_eq!("zz".parse::<ContentId>(), Err(ParseIdError::NotHex));
        assert_eq!(s[2..].parse::<ContentId>(), Err(ParseIdError::WrongPrefix));
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(ContentId::of_parts(&[b"ab", b"c"]), ContentId::of(b"abc"));
    }
}
