//! What the core remembers between messages, all of it bounded: the chain near the head
//! ([`ChainState`]), the pending buffer of commitments that cannot be judged yet
//! ([`pending::PendingBuffer`]), the holding area of tx lists waiting for their commitment
//! ([`orphans::OrphanTxLists`]) and the dedupe sets ([`dedupe`]). Crate-private: only the core
//! (`core`) writes it.

mod chain;
mod dedupe;
mod held;
mod orphans;
mod pending;

#[cfg_attr(not(feature = "test-utils"), allow(unreachable_pub))]
pub use chain::ChainState;
pub(crate) use held::HeldVerdict;
pub(crate) use pending::PendingEntry;
