//! Serde for fixed-size byte arrays: raw bytes in the binary codec (a tuple of
//! `N` bytes, no length prefix), lowercase hex in human-readable formats.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&hex::encode(bytes))
    } else {
        let mut t = s.serialize_tuple(N)?;
        for b in bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    if d.is_human_readable() {
        let s: String = serde::Deserialize::deserialize(d)?;
        let v = hex::decode(&s).map_err(de::Error::custom)?;
        v.try_into()
            .map_err(|_| de::Error::invalid_length(s.len() / 2, &"fixed-size hex string"))
    } else {
        d.deserialize_tuple(N, ArrayVisitor::<N>(PhantomData))
    }
}

struct ArrayVisitor<const N: usize>(PhantomData<[u8; N]>);

impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
    type Value = [u8; N];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        Ok(out)
    }
}
