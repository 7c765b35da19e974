//! Shared by the fuzz targets and the seed-corpus generator: the input
//! format of the `engine_ingest` target.
//!
//! An `engine_ingest` input is an 8-byte little-endian start time followed
//! by records, each `[flags: u8][dt_ms: u32 LE][len: u16 LE][len bytes]`.
//! The engine's logical time advances by `dt_ms` before the record's bytes
//! are ingested with `Origin::Peer`. A short or truncated tail is ignored.

/// Ingest through `Engine::ingest` (full decode, signatures verified).
pub const MODE_VERIFIED: u8 = 0;
/// `decode_unverified` then `Engine::ingest_decoded`: skips only the
/// signature check, so mutated messages still reach the engine's logic.
/// Anyone can sign a message with a key of their own, so a panic reached
/// this way is reachable by a real peer too.
pub const MODE_UNVERIFIED: u8 = 1;
/// `Engine::ingest_batch` with a batch of one.
pub const MODE_BATCH: u8 = 2;
/// Low two bits of `flags`: the mode (3 is treated as `MODE_VERIFIED`).
pub const MODE_MASK: u8 = 0b11;
/// Call `Engine::tick` after this record.
pub const FLAG_TICK: u8 = 0b100;
/// Query the engine after this record (resolve, sync answers, bundles).
pub const FLAG_QUERY: u8 = 0b1000;

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Flags byte.
    pub flags: u8,
    /// Milliseconds to advance the logical clock by first.
    pub dt_ms: u32,
    /// The message bytes.
    pub bytes: &'a [u8],
}

/// Split an input into its start time and records.
pub fn parse(data: &[u8]) -> (u64, Vec<Record<'_>>) {
    let Some((head, mut rest)) = data.split_first_chunk::<8>() else {
        return (0, Vec::new());
    };
    let start = u64::from_le_bytes(*head);
    let mut out = Vec::new();
    while let Some((hdr, tail)) = rest.split_first_chunk::<7>() {
        let flags = hdr[0];
        let dt_ms = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
        let len = usize::from(u16::from_le_bytes([hdr[5], hdr[6]]));
        let len = len.min(tail.len());
        let (bytes, next) = tail.split_at(len);
        out.push(Record {
            flags,
            dt_ms,
            bytes,
        });
        rest = next;
    }
    (start, out)
}

/// Encode a start time and records (used to write seeds).
pub fn encode(start: u64, records: &[(u8, u32, &[u8])]) -> Vec<u8> {
    let mut out = start.to_le_bytes().to_vec();
    for (flags, dt, bytes) in records {
        let len = u16::try_from(bytes.len()).expect("record under 64 KiB");
        out.push(*flags);
        out.extend_from_slice(&dt.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}
