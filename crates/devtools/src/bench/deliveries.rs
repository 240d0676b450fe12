//! What both networks of `bench propagation` share: the topology, when each node first had
//! each message (a wait woken by each delivery, not polled), and a published message whose
//! deliveries a round waits for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use preconfirmation_types::B256;
use tokio::sync::Notify;

/// Longest wait for one message to reach every node.
pub(crate) const ROUND_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for a node to see gossip peers at start-up.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Dial offsets: node `i` dials `i − d` for each `d`.
pub(crate) const DIAL_OFFSETS: [usize; 5] = [1, 2, 4, 8, 16];

/// When each node of a network first had each message, and a wake-up for whoever waits on it.
#[derive(Clone, Default)]
pub(crate) struct Seen {
    inner: Arc<SeenInner>,
}

#[derive(Default)]
struct SeenInner {
    at: Mutex<HashMap<(usize, B256), Instant>>,
    changed: Notify,
}

impl Seen {
    /// Node `node` has the message `key` now (a later copy changes nothing).
    pub(crate) fn record(&self, node: usize, key: B256) {
        self.inner
            .at
            .lock()
            .entry((node, key))
            .or_insert_with(Instant::now);
        self.inner.changed.notify_waiters();
    }

    /// Waits (at most [`ROUND_TIMEOUT`] from `t0`) until every node but `publisher` has `key`;
    /// the latencies in ms from `t0`, and how many nodes were still missing it.
    async fn wait(
        &self,
        nodes: usize,
        publisher: usize,
        key: B256,
        t0: Instant,
    ) -> (Vec<f64>, usize) {
        let deadline = tokio::time::Instant::from_std(t0 + ROUND_TIMEOUT);
        loop {
            // Registered before the look, so a record in between still wakes this wait.
            let changed = self.inner.changed.notified();
            let (lat, missing) = {
                let at = self.inner.at.lock();
                let lat: Vec<f64> = (0..nodes)
                    .filter(|i| *i != publisher)
                    .filter_map(|i| at.get(&(i, key)))
                    .map(|seen| seen.saturating_duration_since(t0).as_secs_f64() * 1e3)
                    .collect();
                let missing = nodes - 1 - lat.len();
                (lat, missing)
            };
            if missing == 0 || tokio::time::timeout_at(deadline, changed).await.is_err() {
                return (lat, missing);
            }
        }
    }
}

/// The nodes node `index` dials.
pub(crate) fn dial_targets(index: usize) -> impl Iterator<Item = usize> {
    DIAL_OFFSETS
        .iter()
        .filter_map(move |d| index.checked_sub(*d))
}

/// One published message: the key whose arrival times are the round's latencies, a key that
/// must arrive too before the round ends, and when it was published.
pub(crate) struct Sent {
    key: B256,
    then: Option<B256>,
    t0: Instant,
}

impl Sent {
    /// A message published now.
    pub(crate) fn now(key: B256, then: Option<B256>) -> Self {
        Self {
            key,
            then,
            t0: Instant::now(),
        }
    }

    /// Waits for the message at every node but `publisher`: its latencies in ms, and how
    /// many nodes were still missing it at [`ROUND_TIMEOUT`].
    pub(crate) async fn delivered(
        self,
        seen: &Seen,
        nodes: usize,
        publisher: usize,
    ) -> (Vec<f64>, usize) {
        let delivered = seen.wait(nodes, publisher, self.key, self.t0).await;
        if let Some(then) = self.then {
            let _ = seen.wait(nodes, publisher, then, self.t0).await;
        }
        delivered
    }
}
