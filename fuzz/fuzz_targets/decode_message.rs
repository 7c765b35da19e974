#![no_main]
//! Arbitrary bytes into the message decoder. Whatever it accepts must be
//! canonical (re-encoding gives the input) and carry the id of its body.

use acp_protocol::{codec, decode_message, message::decode_unverified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every check but the signatures: lets mutated messages reach the field
    // validation that the signature check would otherwise stand in front of.
    if let Ok((envelope, id)) = decode_unverified(data) {
        let again = codec::encode(&envelope).expect("a decoded envelope encodes");
        assert_eq!(
            again, data,
            "decode_unverified accepted non-canonical bytes"
        );
        let body_id = envelope.body.content_id().expect("a decoded body encodes");
        assert_eq!(id, body_id, "id from the prefix differs from the body's id");
    }
    if let Ok(msg) = decode_message(data) {
        assert_eq!(msg.bytes, data);
        let again = codec::encode(&msg.envelope).expect("a decoded envelope encodes");
        assert_eq!(again, data, "decode_message accepted non-canonical bytes");
        let body_id = msg.body().content_id().expect("a decoded body encodes");
        assert_eq!(msg.id, body_id, "id differs from the body's content id");
    }
});
