//! The JSON form of a rejection in `docs/test-vectors/rejections.json`: one
//! definition, included by the generator (`examples/gen_vectors.rs`) and the
//! test that checks the vectors (`tests/vectors.rs`), so the two cannot
//! drift apart.

use acp_protocol::Rejection;
use serde_json::{Value, json};

/// The rejection's code and the fields a conforming decoder must report.
pub fn rejection_json(r: &Rejection) -> Value {
    let mut v = json!({"rejection": r.code()});
    match r {
        Rejection::UnsupportedVersion(version) => v["version"] = json!(version),
        Rejection::TooLargeForKind { kind, max, .. } => {
            v["kind"] = json!(kind);
            v["max"] = json!(max);
        }
        Rejection::InvalidField { field, .. } => v["field"] = json!(field),
        Rejection::BadSignature { signer, error } => {
            v["signer"] = json!(signer.to_string());
            v["error"] = json!(error.code());
        }
        _ => {}
    }
    v
}
