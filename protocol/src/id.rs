//! Content ids: the multihash of a message's canonical signed bytes.
//!
//! BLAKE3 was chosen over SHA-256 after measuring both on ACP's message sizes
//! (see `docs/BENCHMARKS.md`); the multihash prefix leaves room to move.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Multicodec code of BLAKE3-256 in the multihash table.
pub const MULTIHASH_BLAKE3: u8 = 0x1e;
/// Digest length in bytes.
pub const DIGEST_LEN: usize = 32;

/// A content id: `0x1e 0x20` followed by the 32-byte BLAKE3 digest.
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
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Hash several byte strings as if concatenated.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut h = blake3::Hasher::new();
        for p in parts {
            h.update(p);
        }
        Self(*h.finalize().as_bytes())
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// The full multihash bytes (`0x1e 0x20 digest`).
    pub fn to_multihash(&self) -> [u8; DIGEST_LEN + 2] {
        let mut out = [0u8; DIGEST_LEN + 2];
        out[0] = MULTIHASH_BLAKE3;
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
    #[error("content id must be 68 hex digits starting with 1e20 (BLAKE3 multihash)")]
    WrongPrefix,
}

impl FromStr for ContentId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| ParseIdError::NotHex)?;
        if bytes.len() != DIGEST_LEN + 2
            || bytes[0] != MULTIHASH_BLAKE3
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
        assert!(s.starts_with("1e20"));
        assert_eq!(s.parse::<ContentId>(), Ok(id));
        assert_eq!("zz".parse::<ContentId>(), Err(ParseIdError::NotHex));
        assert_eq!(s[2..].parse::<ContentId>(), Err(ParseIdError::WrongPrefix));
    }

    #[test]
    fn parts_equal_concatenation() {
        assert_eq!(ContentId::of_parts(&[b"ab", b"c"]), ContentId::of(b"abc"));
    }
}
