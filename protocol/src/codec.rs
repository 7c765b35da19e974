//! The canonical codec: bincode 2.0.1 with one fixed configuration.
//!
//! Little-endian, fixed-width integers, lengths as `u64`, enum tags as `u32`,
//! `Option` as a `0`/`1` byte. Every decode is bounded twice: the input length
//! is checked before decoding starts, and bincode's claim limit stops any
//! length prefix from allocating beyond it. A decode is accepted only if it
//! consumed every byte and re-encoding gives the same bytes. Nothing else in
//! the workspace calls bincode.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest encoded message accepted at all (a policy with many members).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The largest container (sync batch, audit bundle) accepted at all.
pub const MAX_CONTAINER_BYTES: usize = 256 << 20;

type Config = Configuration<LittleEndian, Fixint, Limit<MAX_MESSAGE_BYTES>>;
type LargeConfig = Configuration<LittleEndian, Fixint, Limit<MAX_CONTAINER_BYTES>>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_MESSAGE_BYTES>();

// The same layout; only the allocation bound differs.
const LARGE_CONFIG: LargeConfig = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_CONTAINER_BYTES>();

/// Why bytes could not be decoded canonically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than the limit for what is being decoded.
    #[error("{len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// bincode could not decode the input.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// Bytes were left over after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The value decoded, but re-encoding it gives different bytes.
    #[error("encoding is not canonical")]
    NonCanonical,
    /// The value could not be encoded (only for values over the limit).
    #[error("value cannot be encoded: {0}")]
    Encode(String),
}

impl CodecError {
    /// A stable machine-readable code (used in test vectors and API errors).
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::TooLarge { .. } => "too_large",
            CodecError::Malformed(_) => "malformed",
            CodecError::TrailingBytes(_) => "trailing_bytes",
            CodecError::NonCanonical => "non_canonical",
            CodecError::Encode(_) => "encode",
        }
    }
}

/// Encode a value canonically.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Encode a container (sync batch, audit bundle) canonically.
pub fn encode_large<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, LARGE_CONFIG)
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decode `bytes` as a `T`, accepting only the canonical encoding of at most
/// `max` bytes (and never more than [`MAX_MESSAGE_BYTES`]).
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    check_len(bytes, max.min(MAX_MESSAGE_BYTES))?;
    let decoded = bincode::serde::decode_from_slice(bytes, CONFIG);
    canonical(bytes, decoded, encode)
}

/// [`decode`] for containers of up to [`MAX_CONTAINER_BYTES`].
pub fn decode_large<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max: usize,
) -> Result<T, CodecError> {
    check_len(bytes, max.min(MAX_CONTAINER_BYTES))?;
    let decoded = bincode::serde::decode_from_slice(bytes, LARGE_CONFIG);
    canonical(bytes, decoded, encode_large)
}

fn check_len(bytes: &[u8], max: usize) -> Result<(), CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

fn canonical<T>(
    bytes: &[u8],
    decoded: Result<(T, usize), bincode::error::DecodeError>,
    reencode: fn(&T) -> Result<Vec<u8>, CodecError>,
) -> Result<T, CodecError> {
    let (value, read) = decoded.map_err(|e| CodecError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - read));
    }
    if reencode(&value)? != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Probe {
        flag: bool,
        n: u32,
        text: String,
        list: Vec<u16>,
        opt: Option<u8>,
    }

    fn probe() -> Probe {
        Probe {
            flag: true,
            n: 0x0102_0304,
            text: "hé".into(),
            list: vec![1, 2],
            opt: None,
        }
    }

    #[test]
    fn layout_is_fixed_little_endian() {
        let bytes = encode(&probe()).expect("encode");
        let mut want = vec![1u8, 4, 3, 2, 1];
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice("hé".as_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&[1, 0, 2, 0, 0]);
        assert_eq!(bytes, want);
        assert_eq!(decode::<Probe>(&bytes, 100), Ok(probe()));
    }

    #[test]
    fn rejects_oversize_trailing_and_bad_tags() {
        let bytes = encode(&probe()).expect("encode");
        assert!(matches!(
            decode::<Probe>(&bytes, 4),
            Err(CodecError::TooLarge { .. })
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode::<Probe>(&trailing, 100),
            Err(CodecError::TrailingBytes(1))
        );
        let mut bad_bool = bytes.clone();
        bad_bool[0] = 2;
        assert!(matches!(
            decode::<Probe>(&bad_bool, 100),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        let mut bytes = vec![0u8, 0, 0, 0, 0];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Probe>(&bytes, 100),
            Err(CodecError::Malformed(_))
        ));
    }
}
