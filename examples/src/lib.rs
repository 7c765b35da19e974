//! `acp-examples`: scenarios (loan approval, supply chain, spend, fraud) built
//! on the ACP crates. It holds no protocol logic of its own.
