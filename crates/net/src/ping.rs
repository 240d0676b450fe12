//! Liveness pings on `/ipfs/ping/1.0.0` that answer the remote's pings on every connection,
//! whatever becomes of ours.
//!
//! Why not `libp2p::ping`: in libp2p-ping 0.48, once a remote refuses our outbound ping
//! protocol the connection handler turns `Inactive` and its `poll` returns `Pending` before it
//! polls the inbound ping, so from then on the remote's pings are accepted but never answered.
//! A js-libp2p 2.x node started without `@libp2p/ping` refuses our ping yet its connection
//! monitor pings us every 10 s and aborts the connection when a ping goes unanswered, so such
//! peers were dropped every 10–15 s.
//!
//! Here every connection handler always polls its inbound pings first, then its outbound one:
//!
//! - **Inbound**: each `/ipfs/ping/1.0.0` stream is echoed byte for byte as bytes arrive, in
//!   reads of at most [`PING_SIZE`] bytes into a fixed buffer, until the remote closes it
//!   (one ping per stream as js-libp2p does, or many on one stream as rust- and go-libp2p do).
//!   At most [`NetworkConfig::ping_max_inbound_streams_per_peer`] streams per peer and
//!   [`NetworkConfig::ping_max_inbound_streams`] in all are open at once (a stream beyond
//!   either is dropped at once); a stream that delivers nothing, or does not take our echo,
//!   within [`NetworkConfig::ping_inbound_timeout`] is closed.
//! - **Outbound**: a fresh stream per ping, every [`NetworkConfig::ping_interval`] (the first
//!   as soon as the connection is up): 32 random bytes out, the same 32 back within
//!   [`NetworkConfig::ping_timeout`]; the RTT is reported. If the remote refuses the protocol
//!   we stop pinging on that connection, report it once, and go on answering its pings.
//!
//! Ping streams do not keep a connection alive (as in libp2p-ping), and a failed ping never
//! closes a connection.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::ReadyUpgrade;
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use tokio::time::Sleep;
use tracing::debug;

use crate::config::NetworkConfig;
use crate::metrics;

/// The libp2p ping protocol id.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");

/// Bytes of one ping (the libp2p ping spec's payload size).
pub(crate) const PING_SIZE: usize = 32;

/// Events a behaviour holds for the swarm before dropping new ones (the driver drains them
/// continuously; a handful per connection per interval is the norm).
const MAX_QUEUED_EVENTS: usize = 1024;

/// Events one connection handler holds for its behaviour (at most an outcome and the
/// "unsupported" notice are ever pending).
const MAX_HANDLER_EVENTS: usize = 4;

/// The limits and timings of the ping protocol, taken from [`NetworkConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) inbound_timeout: Duration,
    pub(crate) max_inbound_per_peer: usize,
    pub(crate) max_inbound: usize,
}

impl Config {
    pub(crate) fn from_network(c: &NetworkConfig) -> Self {
        Self {
            interval: c.ping_interval,
            timeout: c.ping_timeout,
            inbound_timeout: c.ping_inbound_timeout,
            max_inbound_per_peer: c.ping_max_inbound_streams_per_peer,
            max_inbound: c.ping_max_inbound_streams,
        }
    }
}

/// Why an outbound ping failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PingError {
    /// No complete answer (or no stream) within the ping timeout.
    #[error("ping timed out")]
    Timeout,
    /// The remote answered with other bytes than ours.
    #[error("ping answered with different bytes")]
    Mismatch,
    /// The stream failed.
    #[error("ping stream failed: {0}")]
    Io(#[from] io::Error),
}

impl PingError {
    /// Metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            PingError::Timeout => "timeout",
            PingError::Mismatch => "mismatch",
            PingError::Io(_) => "error",
        }
    }
}

/// What a connection's handler reports.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// An outbound ping was answered after this round-trip time.
    Rtt(Duration),
    /// The remote refused our ping protocol; it is not pinged again on this connection
    /// (its pings are still answered). Reported once per connection.
    Unsupported,
    /// An outbound ping failed; the next one goes out after the interval.
    Failure(PingError),
}

/// A handler's [`Outcome`] with the peer and connection it concerns.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) peer: PeerId,
    pub(crate) connection: ConnectionId,
    pub(crate) outcome: Outcome,
}

// ---- inbound bounds ----------------------------------------------------------------------

/// Which cap refused an inbound ping stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundLimit {
    /// [`NetworkConfig::ping_max_inbound_streams_per_peer`].
    PerPeer,
    /// [`NetworkConfig::ping_max_inbound_streams`].
    Total,
}

impl InboundLimit {
    /// Metric label (reason of `preconf_net_rejections_total`).
    pub(crate) fn label(self) -> &'static str {
        match self {
            InboundLimit::PerPeer => "ping_streams_per_peer",
            InboundLimit::Total => "ping_streams_total",
        }
    }
}

/// Open inbound ping streams, per peer and in all, shared by every connection handler of a
/// behaviour. The map holds only peers with an open stream, so it is bounded by `max_total`.
#[derive(Debug)]
pub(crate) struct InboundSlots {
    max_per_peer: usize,
    max_total: usize,
    total: usize,
    per_peer: HashMap<PeerId, usize>,
}

impl InboundSlots {
    pub(crate) fn new(max_per_peer: usize, max_total: usize) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            max_per_peer,
            max_total,
            total: 0,
            per_peer: HashMap::new(),
        }))
    }

    fn lock(slots: &Mutex<Self>) -> MutexGuard<'_, Self> {
        // The counters stay consistent under every operation, so a poisoned lock is usable.
        slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for one more inbound stream of `peer`, released when the slot drops.
    pub(crate) fn try_acquire(
        slots: &Arc<Mutex<Self>>,
        peer: PeerId,
    ) -> Result<InboundSlot, InboundLimit> {
        let mut s = Self::lock(slots);
        if s.total >= s.max_total {
            return Err(InboundLimit::Total);
        }
        let max_per_peer = s.max_per_peer;
        let open = s.per_peer.entry(peer).or_insert(0);
        if *open >= max_per_peer {
            return Err(InboundLimit::PerPeer);
        }
        *open += 1;
        s.total += 1;
        Ok(InboundSlot {
            slots: slots.clone(),
            peer,
        })
    }

    fn release(&mut self, peer: &PeerId) {
        if let Some(open) = self.per_peer.get_mut(peer) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                self.per_peer.remove(peer);
            }
            self.total = self.total.saturating_sub(1);
        }
    }

    /// Open streams of `peer`.
    #[cfg(test)]
    fn open(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }
}

/// One open inbound ping stream's place in [`InboundSlots`]; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct InboundSlot {
    slots: Arc<Mutex<InboundSlots>>,
    peer: PeerId,
}

impl Drop for InboundSlot {
    fn drop(&mut self) {
        InboundSlots::lock(&self.slots).release(&self.peer);
    }
}

// ---- the two directions of the protocol --------------------------------------------------

/// Echoes `stream` byte for byte until the remote closes it. Each wait for bytes, and each
/// echo, is bounded by `timeout`; the buffer is [`PING_SIZE`] bytes whatever the peer sends.
/// Returns the bytes echoed. `_slot` is held for as long as the stream is open.
async fn echo(mut stream: Stream, timeout: Duration, _slot: InboundSlot) -> io::Result<u64> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "inbound ping timed out");
    let mut buf = [0u8; PING_SIZE];
    let mut echoed = 0u64;
    loop {
        let n = tokio::time::timeout(timeout, stream.read(&mut buf))
            .await
            .map_err(|_| timed_out())??;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            // End of stream (or a reader breaking its contract): close our side too.
            let _ = tokio::time::timeout(timeout, stream.close()).await;
            return Ok(echoed);
        };
        tokio::time::timeout(timeout, async {
            stream.write_all(chunk).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| timed_out())??;
        echoed = echoed.saturating_add(n as u64);
    }
}

/// One outbound ping on a fresh stream: [`PING_SIZE`] random bytes out, the same back.
async fn ping(mut stream: Stream, timeout: Duration) -> Result<Duration, PingError> {
    let payload: [u8; PING_SIZE] = rand::random();
    let rtt = tokio::time::timeout(timeout, async {
        let start = Instant::now();
        stream.write_all(&payload).await?;
        stream.flush().await?;
        let mut answer = [0u8; PING_SIZE];
        stream.read_exact(&mut answer).await?;
        let rtt = start.elapsed();
        if answer != payload {
            return Err(PingError::Mismatch);
        }
        Ok(rtt)
    })
    .await
    .map_err(|_| PingError::Timeout)??;
    let _ = tokio::time::timeout(timeout, stream.close()).await;
    Ok(rtt)
}

// ---- connection handler ------------------------------------------------------------------

/// Where a connection's outbound pinging stands.
enum Outbound {
    /// Waiting for the next ping.
    Idle(Pin<Box<Sleep>>),
    /// A stream has been requested from the connection.
    Opening,
    /// A ping is in flight.
    Pinging(BoxFuture<'static, Result<Duration, PingError>>),
    /// The remote refused the protocol: no more pings on this connection.
    Unsupported,
}

/// The ping protocol on one connection.
pub(crate) struct Handler {
    peer: PeerId,
    config: Config,
    slots: Arc<Mutex<InboundSlots>>,
    /// Streams being echoed; bounded by the slots.
    inbound: FuturesUnordered<BoxFuture<'static, io::Result<u64>>>,
    outbound: Outbound,
    events: VecDeque<Outcome>,
}

impl Handler {
    fn new(peer: PeerId, config: Config, slots: Arc<Mutex<InboundSlots>>) -> Self {
        Self {
            peer,
            config,
            slots,
            inbound: FuturesUnordered::new(),
            // The first ping goes out as soon as the connection is up.
            outbound: Outbound::Idle(Box::pin(tokio::time::sleep(Duration::ZERO))),
            events: VecDeque::new(),
        }
    }

    fn report(&mut self, outcome: Outcome) {
        if self.events.len() < MAX_HANDLER_EVENTS {
            self.events.push_back(outcome);
        }
    }

    fn next_ping_later(&mut self) {
        self.outbound = Outbound::Idle(Box::pin(tokio::time::sleep(self.config.interval)));
    }

    fn on_inbound(&mut self, mut stream: Stream) {
        stream.ignore_for_keep_alive();
        match InboundSlots::try_acquire(&self.slots, self.peer) {
            Ok(slot) => self
                .inbound
                .push(echo(stream, self.config.inbound_timeout, slot).boxed()),
            Err(limit) => {
                debug!(peer = %self.peer, limit = limit.label(), "inbound ping stream refused");
                metrics::rejection(limit.label());
                drop(stream);
            }
        }
    }

    fn on_dial_upgrade_error(&mut self, error: StreamUpgradeError<Infallible>) {
        match error {
            StreamUpgradeError::NegotiationFailed => {
                self.outbound = Outbound::Unsupported;
                self.report(Outcome::Unsupported);
            }
            StreamUpgradeError::Timeout => {
                self.next_ping_later();
                self.report(Outcome::Failure(PingError::Timeout));
            }
            StreamUpgradeError::Io(e) => {
                self.next_ping_later();
                self.report(Outcome::Failure(PingError::Io(e)));
            }
            StreamUpgradeError::Apply(never) => match never {},
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Outcome;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        // Inbound first and always: the remote's pings are answered whatever became of ours.
        while let Poll::Ready(Some(result)) = self.inbound.poll_next_unpin(cx) {
            match result {
                Ok(bytes) => debug!(peer = %self.peer, bytes, "inbound ping stream done"),
                Err(error) => debug!(peer = %self.peer, %error, "inbound ping stream failed"),
            }
        }
        if let Some(outcome) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(outcome));
        }
        match &mut self.outbound {
            Outbound::Idle(next) => {
                if next.poll_unpin(cx).is_ready() {
                    self.outbound = Outbound::Opening;
                    let protocol = SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL), ())
                        .with_timeout(self.config.timeout);
                    return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                        protocol,
                    });
                }
            }
            Outbound::Pinging(ping) => {
                if let Poll::Ready(result) = ping.poll_unpin(cx) {
                    self.next_ping_later();
                    let outcome = match result {
                        Ok(rtt) => Outcome::Rtt(rtt),
                        Err(e) => Outcome::Failure(e),
                    };
                    return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(outcome));
                }
            }
            Outbound::Opening | Outbound::Unsupported => {}
        }
        Poll::Pending
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<'_, Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.on_inbound(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                if matches!(self.outbound, Outbound::Opening) {
                    self.outbound = Outbound::Pinging(ping(stream, self.config.timeout).boxed());
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                self.on_dial_upgrade_error(error)
            }
            _ => {}
        }
    }
}

// ---- behaviour ---------------------------------------------------------------------------

/// The ping protocol on every connection; see the module docs.
pub(crate) struct Behaviour {
    config: Config,
    slots: Arc<Mutex<InboundSlots>>,
    events: VecDeque<Event>,
}

impl Behaviour {
    pub(crate) fn new(config: Config) -> Self {
        let slots = InboundSlots::new(config.max_inbound_per_peer, config.max_inbound);
        Self {
            config,
            slots,
            events: VecDeque::new(),
        }
    }

    fn handler(&self, peer: PeerId) -> Handler {
        Handler::new(peer, self.config.clone(), self.slots.clone())
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler(peer))
    }

    fn on_swarm_event(&mut self, _: FromSwarm<'_>) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        outcome: THandlerOutEvent<Self>,
    ) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            debug!(%peer, "ping event queue full, dropping an outcome");
            return;
        }
        self.events.push_back(Event {
            peer,
            connection,
            outcome,
        });
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(ToSwarm::GenerateEvent(event)),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_slots_cap_each_peer_and_the_total_and_free_on_drop() {
        let slots = InboundSlots::new(2, 3);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());

        let a1 = InboundSlots::try_acquire(&slots, a).expect("a 1");
        let a2 = InboundSlots::try_acquire(&slots, a).expect("a 2");
        assert_eq!(
            InboundSlots::try_acquire(&slots, a).err(),
            Some(InboundLimit::PerPeer),
            "a third stream of one peer is refused"
        );
        let b1 = InboundSlots::try_acquire(&slots, b).expect("b 1");
        assert_eq!(
            InboundSlots::try_acquire(&slots, c).err(),
            Some(InboundLimit::Total),
            "no stream beyond the total, even for a peer with none"
        );

        drop(a1);
        assert_eq!(InboundSlots::lock(&slots).open(&a), 1);
        let c1 = InboundSlots::try_acquire(&slots, c).expect("a freed slot is reusable");
        drop((a2, b1, c1));
        let s = InboundSlots::lock(&slots);
        assert_eq!(s.total, 0);
        assert!(s.per_peer.is_empty(), "peers without streams are forgotten");
    }

    #[test]
    fn a_refused_acquire_takes_nothing() {
        let slots = InboundSlots::new(1, 10);
        let a = PeerId::random();
        let _held = InboundSlots::try_acquire(&slots, a).expect("first");
        for _ in 0..100 {
            assert!(InboundSlots::try_acquire(&slots, a).is_err());
        }
        let s = InboundSlots::lock(&slots);
        assert_eq!((s.total, s.open(&a)), (1, 1));
    }

    #[test]
    fn config_comes_from_the_network_config() {
        let n = NetworkConfig::default();
        let c = Config::from_network(&n);
        assert_eq!(c.interval, Duration::from_secs(15));
        assert_eq!(c.timeout, Duration::from_secs(20));
        assert_eq!(c.inbound_timeout, n.ping_inbound_timeout);
        assert_eq!(c.max_inbound_per_peer, n.ping_max_inbound_streams_per_peer);
        assert_eq!(c.max_inbound, n.ping_max_inbound_streams);
    }
}
