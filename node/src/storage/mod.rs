//! The durable message set: sled behind the [`store::Store`] trait, and
//! [`commit::GroupCommit`], which acknowledges a write only after a flush
//! that began after it.

pub mod commit;
pub mod store;
