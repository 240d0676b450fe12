//! The `static` schedule source: the round robin of `lookahead.preconfers`
//! ([`RotatingLookahead`]), for devnets. Known for every slot at once; nothing runs to keep it.

use std::sync::Arc;

use p2p::{Lookahead, RotatingLookahead};
use preconfirmation_types::U256;

use super::config::{L1Config, LookaheadConfig};
use super::{ScheduleStatus, Source, SourceKind};
use crate::error::NodeError;

/// `lookahead.source = "static"`: the `[lookahead]` table is the whole schedule.
#[derive(Debug)]
pub(super) struct StaticRotation;

impl SourceKind for StaticRotation {
    fn name(&self) -> &'static str {
        "static"
    }

    fn validate(&self, lookahead: &LookaheadConfig, _l1: &L1Config) -> Result<(), NodeError> {
        if lookahead.preconfers.is_empty() {
            return Err(NodeError::config(
                "lookahead.preconfers",
                "no preconfer addresses: set the schedule's addresses (rotation order)",
            ));
        }
        if lookahead.slots_per_window == 0 {
            return Err(NodeError::config(
                "lookahead.slots_per_window",
                "must be positive",
            ));
        }
        Ok(())
    }

    fn summary(&self, lookahead: &LookaheadConfig, _l1: &L1Config) -> String {
        format!(
            "static, {} preconfer(s), {} slot(s) of {} s per window",
            lookahead.preconfers.len(),
            lookahead.slots_per_window,
            lookahead.slot_duration_secs
        )
    }

    fn build(
        &self,
        lookahead: &LookaheadConfig,
        _l1: &L1Config,
    ) -> Result<Arc<dyn Source>, NodeError> {
        RotatingLookahead::new(
            lookahead.preconfers.clone(),
            lookahead.slots_per_window,
            lookahead.genesis_timestamp,
            lookahead.slot_duration_secs,
        )
        .map(|l| Arc::new(Rotation(Arc::new(l))) as Arc<dyn Source>)
        .ok_or_else(|| NodeError::Config {
            key: "lookahead".into(),
            reason: "empty schedule".into(),
        })
    }
}

/// The running `static` source.
#[derive(Debug)]
pub struct Rotation(Arc<RotatingLookahead>);

impl Source for Rotation {
    fn lookahead(&self) -> Arc<dyn Lookahead> {
        self.0.clone()
    }

    fn status(&self, now: u64) -> ScheduleStatus {
        let l = &self.0;
        let window_len = l.slots_per_window().saturating_mul(l.slot_duration());
        let at = |offset: u64| {
            let t = now.saturating_add(offset.saturating_mul(window_len));
            l.slot_at(U256::from(t)).and_then(|s| l.signer_for_slot(s))
        };
        ScheduleStatus {
            source: StaticRotation.name(),
            current_window: now
                .checked_sub(l.genesis())
                .and_then(|s| s.checked_div(window_len)),
            current_preconfer: at(0),
            next_preconfer: at(1),
            current_window_end: l
                .slot_at(U256::from(now))
                .and_then(|s| l.window_end_for_slot(s))
                .and_then(|end| u64::try_from(end).ok()),
            current_is_fallback: None,
            l1_head: None,
            l1_head_timestamp: None,
            last_error: None,
        }
    }
}
