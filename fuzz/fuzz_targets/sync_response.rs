#![no_main]
//! Anti-entropy responses: whatever decodes re-encodes to the same bytes.

use acp_protocol::sync::SyncResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = SyncResponse::from_bytes(data) {
        let again = resp.to_bytes().expect("a decoded response encodes");
        assert_eq!(again, data, "SyncResponse round trip differs");
    }
});
