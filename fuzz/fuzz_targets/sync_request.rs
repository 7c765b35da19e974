#![no_main]
//! Anti-entropy requests: whatever decodes re-encodes to the same bytes.

use acp_protocol::sync::SyncRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = SyncRequest::from_bytes(data) {
        let again = req.to_bytes().expect("a decoded request encodes");
        assert_eq!(again, data, "SyncRequest round trip differs");
    }
});
