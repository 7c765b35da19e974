#![no_main]
//! Audit bundle verification must never panic, whatever the file holds.

use acp_protocol::bundle::verify_bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verify_bundle(data);
});
