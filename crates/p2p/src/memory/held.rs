//! Gossip verdicts held back while a message waits (for its commitment, its parent or its
//! schedule), and released once due.

use std::time::Instant;

use libp2p::PeerId;
use preconfirmation_net::{GossipVerdict, MessageId as GossipMessageId};

/// A gossip verdict the SDK holds back while its message waits: a tx list for a commitment that
/// references it, a commitment for its parent or its schedule (gossipsub validates
/// asynchronously: the message is neither forwarded nor dropped until the verdict is reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldVerdict {
    /// The gossipsub message.
    pub(crate) message_id: GossipMessageId,
    /// Its propagation source.
    pub(crate) peer: PeerId,
    /// When it arrived.
    pub(crate) since: Instant,
}

/// A verdict now due: report it to gossipsub.
pub(crate) type ReleasedVerdict = (GossipMessageId, PeerId, GossipVerdict);
