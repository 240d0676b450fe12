//! Typed errors of the network layer.

use std::io;

/// Errors of the network service as a whole (start-up, commands, publishing).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The configuration is inconsistent (a cap above the protocol maximum, a bad bootnode…).
    #[error("invalid network configuration: {0}")]
    Config(String),
    /// Building the libp2p transport or behaviours failed.
    #[error("transport set-up failed: {0}")]
    Transport(String),
    /// Listening on the configured address failed.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// A p2p TCP or discv5 UDP address is already taken by another socket (another node on
    /// this host?). The node never shares a port: libp2p's listeners set `SO_REUSEPORT`, so the
    /// address is checked before it binds.
    #[error(
        "{protocol} address {addr} is already in use (another node on this port?); choose \
         another port (`--listen-addr`, `sdk.network.discv5_port`)"
    )]
    AddrInUse {
        /// `"p2p TCP"` or `"discv5 UDP"`.
        protocol: &'static str,
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
    },
    /// Starting discv5 failed.
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// A payload exceeds the gossip cap of its topic (§2); nothing was sent.
    #[error("payload of {len} bytes exceeds the {cap}-byte cap of the topic")]
    Oversize {
        /// Payload length.
        len: usize,
        /// Cap in force.
        cap: usize,
    },
    /// Gossipsub has no peer subscribed to the topic yet; nothing was sent.
    #[error("no peer is subscribed to the topic")]
    NoPeers,
    /// The same payload was published before (same message id).
    #[error("duplicate message")]
    Duplicate,
    /// Gossipsub refused the publication for another reason.
    #[error("publish failed: {0}")]
    Publish(String),
    /// Dialling failed immediately.
    #[error("dial failed: {0}")]
    Dial(String),
    /// The command queue to the driver is full; try again later.
    #[error("network command queue is full")]
    Busy,
    /// The network driver has stopped.
    #[error("network service is shut down")]
    Shutdown,
}

/// Why an outbound request (§10–§11) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No response within the request timeout (default 10 s).
    #[error("request timed out")]
    Timeout,
    /// The peer reset or closed the stream without a response (rate limited, busy,
    /// protocol unsupported, or it had nothing to say).
    #[error("request refused by the peer: {0}")]
    Refused(String),
    /// The response's length prefix is above the cap of the protocol; nothing was read.
    #[error("response of {len} bytes exceeds the {cap}-byte cap")]
    Oversize {
        /// Announced length.
        len: u64,
        /// Cap in force.
        cap: usize,
    },
    /// The response is not valid SSZ for the protocol.
    #[error("malformed response: {0}")]
    Decode(String),
    /// Not connected to the peer, or the connection closed before the response.
    #[error("peer disconnected")]
    Disconnected,
    /// The network service has shut down.
    #[error("network service is shut down")]
    Shutdown,
    /// Not sent: the peer would refuse it now (its rate limit or concurrency, as
    /// [`crate::reqresp::self_limiter`] assumes them). A retry fits after the given time; or ask
    /// another peer. Not the peer's fault.
    #[error("held back to respect the peer's limits; retry in {0:?}")]
    Throttled(std::time::Duration),
}

/// Framing errors of the req/resp codec, carried inside `io::Error` through libp2p.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The length prefix exceeds the cap; the body was not read.
    #[error("length prefix {len} exceeds the cap of {cap} bytes")]
    Oversize {
        /// Announced length.
        len: u64,
        /// Cap in force.
        cap: usize,
    },
    /// The length prefix is not a valid unsigned varint.
    #[error("invalid length prefix: {0}")]
    Varint(String),
    /// The body is not a valid SSZ encoding of the expected container.
    #[error("invalid body: {0}")]
    Decode(String),
    /// The whole request (prefix and body) did not arrive within the read timeout
    /// ([`crate::NetworkConfig::request_read_timeout`]): a silent or trickling stream.
    #[error("request not fully read within {timeout_ms} ms ({read} bytes arrived)")]
    ReadTimeout {
        /// The read timeout in force, in milliseconds.
        timeout_ms: u64,
        /// Bytes that had arrived when it expired.
        read: u64,
    },
}

impl CodecError {
    /// Wraps the error into an `io::Error` of kind `InvalidData`.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// Recovers a codec error from an `io::Error` produced by [`Self::into_io`].
    pub(crate) fn from_io(e: &io::Error) -> Option<&CodecError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<CodecError>())
    }
}

impl From<CodecError> for RequestError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Oversize { len, cap } => RequestError::Oversize { len, cap },
            CodecError::Varint(s) | CodecError::Decode(s) => RequestError::Decode(s),
            CodecError::ReadTimeout { .. } => RequestError::Timeout,
        }
    }
}
