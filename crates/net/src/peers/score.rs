//! The application-specific score of one peer (§7.1), kept by the peer manager from the SDK's
//! verdicts and pushed to gossipsub.

use std::time::Instant;

use crate::config::ScoringConfig;

/// The application-specific score of one peer (§7.1): −penalty per failure with at most
/// `max_penalties_per_window` per window, +reward per accepted message, multiplicative decay,
/// clamped to `[min, max]`.
#[derive(Debug, Clone)]
pub(crate) struct AppScore {
    score: f64,
    window_start: Instant,
    penalties_in_window: u32,
    last_decay: Instant,
}

impl AppScore {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            score: 0.0,
            window_start: now,
            penalties_in_window: 0,
            last_decay: now,
        }
    }

    pub(crate) fn value(&self) -> f64 {
        self.score
    }

    /// Applies one penalty unless the window's cap is reached; returns whether it counted.
    pub(crate) fn penalize(&mut self, cfg: &ScoringConfig, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= cfg.app_penalty_window {
            self.window_start = now;
            self.penalties_in_window = 0;
        }
        if self.penalties_in_window >= cfg.app_max_penalties_per_window {
            return false;
        }
        self.penalties_in_window += 1;
        self.score = (self.score - cfg.app_penalty).clamp(cfg.app_score_min, cfg.app_score_max);
        true
    }

    pub(crate) fn reward(&mut self, cfg: &ScoringConfig) {
        self.score = (self.score + cfg.app_reward).clamp(cfg.app_score_min, cfg.app_score_max);
    }

    /// Decays by `app_decay` per `app_decay_interval`, pro rata of the elapsed time.
    pub(crate) fn decay(&mut self, cfg: &ScoringConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_decay);
        self.last_decay = now;
        let intervals =
            elapsed.as_secs_f64() / cfg.app_decay_interval.as_secs_f64().max(f64::EPSILON);
        self.score *= cfg.app_decay.powf(intervals);
        if self.score.abs() < 1e-3 {
            self.score = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn app_score_penalties_are_capped_per_window_and_clamped() {
        let cfg = ScoringConfig::default();
        let t0 = Instant::now();
        let mut s = AppScore::new(t0);
        let counted = (0..10).filter(|_| s.penalize(&cfg, t0)).count();
        assert_eq!(counted, 4);
        assert_eq!(s.value(), -4.0);
        let t1 = t0 + Duration::from_secs(10);
        for _ in 0..4 {
            s.penalize(&cfg, t1);
        }
        let t2 = t1 + Duration::from_secs(10);
        for _ in 0..4 {
            s.penalize(&cfg, t2);
        }
        assert_eq!(s.value(), -10.0, "clamped at the minimum");
    }

    #[test]
    fn app_score_rewards_are_capped_and_decay() {
        let cfg = ScoringConfig::default();
        let t0 = Instant::now();
        let mut s = AppScore::new(t0);
        s.reward(&cfg);
        assert!((s.value() - 0.05).abs() < 1e-12);
        for _ in 0..1000 {
            s.reward(&cfg);
        }
        assert_eq!(s.value(), 10.0);
        s.decay(&cfg, t0 + Duration::from_secs(10));
        assert!((s.value() - 9.0).abs() < 1e-9);
        s.decay(&cfg, t0 + Duration::from_secs(20));
        assert!((s.value() - 8.1).abs() < 1e-9);
    }
}
