//! Which chain a peer is on, from what it tells identify: every protocol of this network is
//! named `/taiko/<chain id>/…` (req/resp: `/taiko/<id>/preconf/1/get_head`, …), so the chain
//! ids in a peer's protocol list are the chains it serves. A peer that lists only other chains
//! than ours (a `--chain-id` typo on either side) stays connected but can exchange nothing with
//! us: its topics and protocols are not ours. [`OtherChainWarnings`] names each such peer once
//! in a WARN.

use std::num::NonZeroUsize;

use libp2p::{PeerId, StreamProtocol};
use lru::LruCache;

/// The distinct chain ids in `protocols` (`/taiko/<id>/…`), ascending; empty when the peer
/// lists no protocol of this network.
pub fn chain_ids<'a>(protocols: impl IntoIterator<Item = &'a StreamProtocol>) -> Vec<u64> {
    let mut ids: Vec<u64> = protocols
        .into_iter()
        .filter_map(|p| p.as_ref().strip_prefix("/taiko/"))
        .filter_map(|rest| rest.split('/').next()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Whether a peer serving `peer_chains` is on another chain than `ours`: it names at least one
/// chain, and not ours. (A peer that names none is not identified as anything.)
pub fn on_other_chain(peer_chains: &[u64], ours: u64) -> bool {
    !peer_chains.is_empty() && !peer_chains.contains(&ours)
}

/// Peers already named in an "another chain" WARN, so each is named once however often it
/// reconnects or identify repeats itself. Bounded: beyond `capacity` the oldest is forgotten
/// (and would be named again should it come back).
#[derive(Debug)]
pub(crate) struct OtherChainWarnings {
    /// Never promoted on a repeat (`contains`), so the least recently used is the oldest.
    warned: LruCache<PeerId, ()>,
}

impl OtherChainWarnings {
    /// At most `capacity` peers remembered (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            warned: LruCache::sparse(NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Records `peer`; `true` the first time (warn now), `false` after.
    pub(crate) fn first_time(&mut self, peer: PeerId) -> bool {
        if self.warned.contains(&peer) {
            return false;
        }
        self.warned.put(peer, ());
        true
    }

    /// Peers remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.warned.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocols(names: &[&'static str]) -> Vec<StreamProtocol> {
        names.iter().map(|n| StreamProtocol::new(n)).collect()
    }

    #[test]
    fn chain_ids_come_from_taiko_protocols_only() {
        let list = protocols(&[
            "/ipfs/id/1.0.0",
            "/meshsub/1.1.0",
            "/taiko/167001/preconf/1/get_head",
            "/taiko/167001/preconf/1/get_raw_txlist",
            "/taiko/5/preconf/1/get_head",
            "/taiko/preconf/1.0.0",
            "/taiko/notanumber/x",
        ]);
        assert_eq!(chain_ids(&list), vec![5, 167_001]);
        assert!(chain_ids(&protocols(&["/ipfs/ping/1.0.0"])).is_empty());
    }

    #[test]
    fn another_chain_is_one_named_and_not_ours() {
        assert!(on_other_chain(&[167_000], 167_001));
        assert!(!on_other_chain(&[167_000, 167_001], 167_001));
        assert!(
            !on_other_chain(&[], 167_001),
            "unidentified is not another chain"
        );
    }

    #[test]
    fn each_peer_is_warned_once_and_the_memory_is_bounded() {
        let mut w = OtherChainWarnings::new(2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        assert!(w.first_time(a));
        assert!(!w.first_time(a));
        assert!(w.first_time(b));
        assert!(w.first_time(c));
        assert_eq!(w.len(), 2);
        assert!(w.first_time(a), "the oldest was forgotten");
        assert!(!w.first_time(c));
    }
}
