//! Keys for the scenarios' agents (the messages are signed with the
//! `acp_protocol::build` helpers).

use acp_protocol::Keypair;

/// A fresh key from the operating system's random source.
pub fn fresh_key() -> anyhow::Result<Keypair> {
    Ok(Keypair::from_seed(acp_node::keys::random_seed()?))
}
