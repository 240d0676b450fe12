//! Where the node's preconfer schedule comes from (`lookahead.source`), and what `/status`
//! shows of it.
//!
//! Each source is one file: its [`SourceKind`] checks and describes its settings and builds
//! the running [`Source`], which gives the SDK its [`Lookahead`], may run a task that keeps the
//! schedule current, and reports a [`ScheduleStatus`].
//!
//! | `lookahead.source` | file | schedule |
//! |---|---|---|
//! | `static` | `static_rotation.rs` | the round robin of `lookahead.preconfers` (devnets) |
//! | `l1_whitelist` | `l1_whitelist.rs` | Taiko's `PreconfWhitelist` contract on L1, one window per epoch |
//! | `l1_lookahead` | `l1_lookahead/` | Taiko's permissionless `LookaheadStore` on L1: variable windows, whitelist fallback |
//!
//! `lookahead_window` computes the windows of a `LookaheadStore` list (pure arithmetic) and
//! `lookahead_l1` decodes and verifies a posted list; `l1_lookahead` reads L1 with them.
//!
//! A new source is a new file implementing both traits, a variant of [`ScheduleSource`] and
//! its arm in [`ScheduleSource::kind`], the one place sources are registered.

mod config;
pub mod l1_lookahead;
mod l1_whitelist;
pub mod lookahead_l1;
pub mod lookahead_window;
mod static_rotation;

pub use config::{L1Config, LookaheadConfig, ScheduleSource, MAINNET_BEACON_GENESIS_TIMESTAMP};
pub use l1_whitelist::{
    L1Schedule, WhitelistRead, METRIC_L1_CALL_ERRORS, METRIC_L1_CALL_SECONDS,
    METRIC_L1_SCHEDULE_HEAD, PAST_EPOCH_BLOCK_STEPS,
};
pub use static_rotation::Rotation;

use std::any::Any;
use std::sync::Arc;

use p2p::{Lookahead, P2pSdk};
use preconfirmation_types::Address;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;

/// A running source of the preconfer schedule.
pub trait Source: Any + std::fmt::Debug + Send + Sync {
    /// The lookahead the SDK validates with.
    fn lookahead(&self) -> Arc<dyn Lookahead>;

    /// Starts what keeps the schedule current (the L1 reader); `None` when nothing needs to
    /// run. Called once, when the node starts.
    fn spawn(
        self: Arc<Self>,
        _sdk: P2pSdk,
        _shutdown: CancellationToken,
    ) -> Option<JoinHandle<()>> {
        None
    }

    /// What `/status` shows, at unix second `now`.
    fn status(&self, now: u64) -> ScheduleStatus;
}

/// One kind of source, as `lookahead.source` names it.
pub trait SourceKind: std::fmt::Debug + Sync {
    /// Its `lookahead.source` spelling.
    fn name(&self) -> &'static str;

    /// Refuses settings that parse but cannot work for this source, naming the key.
    fn validate(&self, lookahead: &LookaheadConfig, l1: &L1Config) -> Result<(), NodeError>;

    /// What it would run with, one line (`config check`).
    fn summary(&self, lookahead: &LookaheadConfig, l1: &L1Config) -> String;

    /// The source, from valid settings; no I/O yet (a reader starts with [`Source::spawn`]).
    fn build(
        &self,
        lookahead: &LookaheadConfig,
        l1: &L1Config,
    ) -> Result<Arc<dyn Source>, NodeError>;
}

impl ScheduleSource {
    /// The registry: each `lookahead.source` and the file that implements it.
    pub fn kind(self) -> &'static dyn SourceKind {
        match self {
            Self::Static => &static_rotation::StaticRotation,
            Self::L1Whitelist => &l1_whitelist::L1Whitelist,
            Self::L1Lookahead => &l1_lookahead::L1LookaheadKind,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        self.kind().name()
    }
}

/// Refuses schedule settings that parse but cannot work, naming the key.
pub fn validate(lookahead: &LookaheadConfig, l1: &L1Config) -> Result<(), NodeError> {
    if lookahead.slot_duration_secs == 0 {
        return Err(NodeError::Config {
            key: "lookahead.slot_duration_secs".into(),
            reason: "must be positive".into(),
        });
    }
    lookahead.source.kind().validate(lookahead, l1)
}

/// The schedule a configuration runs, one line (`config check`).
pub fn summary(lookahead: &LookaheadConfig, l1: &L1Config) -> String {
    lookahead.source.kind().summary(lookahead, l1)
}

/// The node's schedule: the configured [`Source`], running.
#[derive(Debug, Clone)]
pub struct NodeSchedule(Arc<dyn Source>);

impl NodeSchedule {
    /// Builds the configured source (no L1 call yet: a reader starts with [`Self::spawn`]).
    pub fn from_config(lookahead: &LookaheadConfig, l1: &L1Config) -> Result<Self, NodeError> {
        lookahead.source.kind().build(lookahead, l1).map(Self)
    }

    /// The lookahead to give the SDK.
    pub fn lookahead(&self) -> Arc<dyn Lookahead> {
        self.0.lookahead()
    }

    /// Starts what keeps the schedule current (nothing for `static`).
    pub fn spawn(&self, sdk: P2pSdk, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        self.0.clone().spawn(sdk, shutdown)
    }

    /// What `/status` shows, at unix second `now`.
    pub fn status(&self, now: u64) -> ScheduleStatus {
        self.0.status(now)
    }

    /// The source as its own type (`L1Schedule` for `l1_whitelist`), when it is one.
    pub fn source<S: Source>(&self) -> Option<&S> {
        let source: &dyn Any = self.0.as_ref();
        source.downcast_ref()
    }
}

/// The schedule as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleStatus {
    /// `static`, `l1_whitelist` or `l1_lookahead`.
    pub source: &'static str,
    /// The window containing now: for `static` its number, for `l1_whitelist` the L1 epoch's
    /// number, for `l1_lookahead` the L1 epoch's first second.
    pub current_window: Option<u64>,
    /// Who signs the current window; `null` when not known (yet).
    pub current_preconfer: Option<Address>,
    /// Who signs the next window; `null` when not known (yet).
    pub next_preconfer: Option<Address>,
    /// The current window's end (its `submissionWindowEnd`); `null` when not known (yet).
    pub current_window_end: Option<u64>,
    /// `l1_lookahead`: whether the whitelist's fallback preconfer signs the current window
    /// (an epoch without opted-in operators, a tail before an empty list, a blacklisted
    /// owner); `null` for the other sources or when not known.
    pub current_is_fallback: Option<bool>,
    /// L1 sources: the L1 block the schedule was last read at.
    pub l1_head: Option<u64>,
    /// L1 sources: that block's timestamp.
    pub l1_head_timestamp: Option<u64>,
    /// L1 sources: the last read's error while reads fail, else `null`.
    pub last_error: Option<String>,
}
