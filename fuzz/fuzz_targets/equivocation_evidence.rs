#![no_main]
//! Equivocation evidence verification must never panic; what verifies
//! names at least two distinct, sorted responses.

use acp_protocol::evidence::EquivocationEvidence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(eq) = EquivocationEvidence::verify_bytes(data) {
        assert!(eq.responses.len() >= 2);
        assert!(eq.responses.windows(2).all(|w| w[0] < w[1]));
    }
});
