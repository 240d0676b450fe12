//! The baseline network of `bench propagation`: N bare rust-libp2p gossipsub swarms with the
//! SDK's meshes (the same per-topic mesh degrees and frame caps, message id and signing), over
//! the same transport (TCP, noise, yamux), forwarding every message at once (no application
//! validation) and scoring nobody.
//!
//! Each swarm runs as the SDK's network does by default: on a thread of its own with a
//! one-thread runtime, here named [`BARE_THREAD`], so the bench reads the baseline's CPU time
//! by thread name.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};
use p2p::P2pSdkConfig;
use preconfirmation_net::gossip::{mesh_config_builder, per_topic_settings, Topics};
use preconfirmation_net::{Keypair, NetworkConfig};
use preconfirmation_types::{ChainSpec, GossipTopicKind, RawTxListGossip, WireMessage};
use tokio::sync::{mpsc, oneshot};

use super::deliveries::{dial_targets, Seen, Sent, PEER_TIMEOUT};
use super::failed;
use super::util::GeneratedBlock;
use crate::error::ToolError;
use crate::loopback;

/// Name of each bare swarm's thread.
pub(crate) const BARE_THREAD: &str = "bare-net";

/// Commands to a bare swarm's thread.
enum BareCommand {
    Publish(GossipTopicKind, Vec<u8>),
    Dial(Multiaddr),
}

/// The bare gossipsub behaviour: the SDK's meshes (global and per topic), frame caps, message
/// id and signed messages; no manual validation, no scoring. Subscribed to both topics.
fn bare_gossipsub(
    net: &NetworkConfig,
    topics: &Topics,
    keypair: &Keypair,
) -> Result<gossipsub::Behaviour, ToolError> {
    let mut builder = mesh_config_builder(&net.gossip, net.gossip.max_transmit_size);
    per_topic_settings(&mut builder, net, topics);
    builder.validation_mode(ValidationMode::Strict);
    let config = builder
        .build()
        .map_err(|e| failed("propagation", format!("gossipsub config: {e}")))?;
    let mut behaviour =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), config)
            .map_err(|e| failed("propagation", format!("gossipsub: {e}")))?;
    for kind in GossipTopicKind::ALL {
        behaviour
            .subscribe(topics.topic(kind))
            .map_err(|e| failed("propagation", format!("subscribe: {e}")))?;
    }
    Ok(behaviour)
}

/// The bare network: each swarm's command channel and thread (or the runtime they share),
/// and when each saw each message.
#[derive(Default)]
pub(crate) struct BareNetwork {
    handles: Vec<mpsc::UnboundedSender<BareCommand>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    shared: Option<tokio::runtime::Runtime>,
    /// When each swarm first had each message.
    pub(crate) seen: Seen,
}

impl BareNetwork {
    /// Starts `nodes` bare swarms dialled in the bench topology, each on a thread of its own
    /// or (`shared`) all on one runtime of [`BARE_THREAD`] threads, as many as cores.
    pub(crate) async fn start(
        &mut self,
        nodes: usize,
        chain: ChainSpec,
        shared: bool,
    ) -> Result<(), ToolError> {
        let net = P2pSdkConfig::new(chain).effective_network();
        let topics = Topics::new(chain.chain_id);
        if shared {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name(BARE_THREAD)
                .enable_all()
                .build()
                .map_err(|e| failed("propagation", format!("runtime: {e}")))?;
            self.shared = Some(runtime);
        }
        let mut addrs: Vec<Multiaddr> = Vec::with_capacity(nodes);
        for index in 0..nodes {
            let keypair = Keypair::generate_secp256k1();
            let behaviour = bare_gossipsub(&net, &topics, &keypair)?;
            let (tx, rx) = mpsc::unbounded_channel::<BareCommand>();
            let (addr_tx, addr_rx) = oneshot::channel();
            let swarm = BareSwarm {
                index,
                keypair,
                behaviour,
                topics: topics.clone(),
                seen: self.seen.clone(),
            };
            match &self.shared {
                Some(runtime) => drop(runtime.spawn(swarm.run(rx, addr_tx))),
                None => self.threads.push(swarm.spawn_thread(rx, addr_tx)?),
            }
            let addr = addr_rx
                .await
                .map_err(|_| failed("propagation", "bare swarm thread ended"))??;
            for target in dial_targets(index) {
                let _ = tx.send(BareCommand::Dial(addrs[target].clone()));
            }
            self.handles.push(tx);
            addrs.push(addr);
        }
        // The SDK nodes waited for gossip peers; bare swarms report none: give their dials
        // the same second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }

    /// Publishes `block`'s payload from `publisher`; the key every other swarm must get.
    pub(crate) fn publish(
        &self,
        publisher: usize,
        block: &GeneratedBlock,
    ) -> Result<Sent, ToolError> {
        let (kind, data) = match &block.txlist {
            Some(t) => (
                GossipTopicKind::RawTxLists,
                RawTxListGossip::new(t.clone())
                    .map_err(|e| failed("propagation", e))?
                    .to_ssz(),
            ),
            None => (GossipTopicKind::Commitments, block.commitment.to_ssz()),
        };
        let key = message_key(&data);
        let sent = Sent::now(key, None);
        let _ = self.handles[publisher].send(BareCommand::Publish(kind, data));
        Ok(sent)
    }

    /// Stops every swarm and waits for its thread.
    pub(crate) async fn stop(&mut self) {
        self.handles.clear();
        if let Some(runtime) = self.shared.take() {
            runtime.shutdown_background();
        }
        let threads: Vec<_> = self.threads.drain(..).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for BareNetwork {
    fn drop(&mut self) {
        // A runtime may not be dropped on an async thread: it is let go in the background.
        if let Some(runtime) = self.shared.take() {
            runtime.shutdown_background();
        }
    }
}

/// What one bare swarm's thread needs to build and run it.
struct BareSwarm {
    index: usize,
    keypair: Keypair,
    behaviour: gossipsub::Behaviour,
    topics: Topics,
    seen: Seen,
}

impl BareSwarm {
    /// Runs the swarm on a thread of its own ([`BARE_THREAD`]) with a one-thread runtime.
    fn spawn_thread(
        self,
        commands: mpsc::UnboundedReceiver<BareCommand>,
        addr_tx: oneshot::Sender<Result<Multiaddr, ToolError>>,
    ) -> Result<std::thread::JoinHandle<()>, ToolError> {
        std::thread::Builder::new()
            .name(BARE_THREAD.into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(self.run(commands, addr_tx)),
                    Err(e) => {
                        let _ = addr_tx.send(Err(failed("propagation", e)));
                    }
                }
            })
            .map_err(|e| failed("propagation", e))
    }

    /// Builds the swarm on the current (its own) runtime and reports its listen address, then
    /// publishes and dials as told and records each message it gets, keyed by its gossipsub
    /// message id ([`message_key`]), until its command channel closes.
    async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<BareCommand>,
        addr_tx: oneshot::Sender<Result<Multiaddr, ToolError>>,
    ) {
        let Self {
            index,
            keypair,
            behaviour,
            topics,
            seen,
        } = self;
        let built = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| failed("propagation", e))
            .and_then(|b| {
                b.with_behaviour(|_| behaviour)
                    .map_err(|e| failed("propagation", e))
            });
        let mut swarm = match built {
            Ok(b) => b
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build(),
            Err(e) => {
                let _ = addr_tx.send(Err(e));
                return;
            }
        };
        if let Err(e) = swarm.listen_on(loopback::listen_addr()) {
            let _ = addr_tx.send(Err(failed("propagation", e)));
            return;
        }
        let addr = tokio::time::timeout(PEER_TIMEOUT, async {
            loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    return address;
                }
            }
        })
        .await;
        let Ok(addr) = addr else {
            let _ = addr_tx.send(Err(failed("propagation", "bare swarm did not listen")));
            return;
        };
        if addr_tx.send(Ok(addr)).is_err() {
            return;
        }
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(BareCommand::Publish(kind, data)) => {
                        let _ = swarm.behaviour_mut().publish(topics.topic(kind).clone(), data);
                    }
                    Some(BareCommand::Dial(addr)) => {
                        let _ = swarm.dial(addr);
                    }
                    None => return,
                },
                event = swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(gossipsub::Event::Message { message_id, .. }) = event
                    {
                        seen.record(index, message_key_of_id(&message_id.0));
                    }
                }
            }
        }
    }
}

/// The key under which the bench waits for a bare payload: its gossipsub message id
/// ([`preconfirmation_net::message_id`]), which every swarm computes on delivery anyway.
fn message_key(payload: &[u8]) -> preconfirmation_types::B256 {
    message_key_of_id(&preconfirmation_net::message_id(payload).0)
}

/// The key of a message whose gossipsub message id is `id` (see [`message_key`]).
fn message_key_of_id(id: &[u8]) -> preconfirmation_types::B256 {
    let mut key = [0u8; 32];
    let len = id.len().min(32);
    key[..len].copy_from_slice(&id[..len]);
    preconfirmation_types::B256::from(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_payload_and_its_delivery_share_a_key() {
        let payload = b"a payload".to_vec();
        let id = preconfirmation_net::message_id(&payload);
        assert_eq!(message_key(&payload), message_key_of_id(&id.0));
        assert_ne!(message_key(b"another"), message_key(&payload));
    }
}
