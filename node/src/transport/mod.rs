//! How signed messages travel between nodes: libp2p gossipsub and the sync
//! protocol ([`p2p`]), the anti-entropy rounds driven over it ([`sync`]),
//! and Redis Streams as a second transport ([`redis`]). Every transport
//! hands what it receives to the core task unchanged; none of them decides
//! what is valid.

pub mod p2p;
pub mod redis;
pub mod sync;
