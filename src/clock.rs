//! The time every rule reads (session lifetimes, scheduled archives, budget months).
//!
//! Real time plus an offset that only tests move, so a test of "after 31 minutes the session
//! has ended" advances the clock instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// Cheap to clone; clones share one offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    // The one wall-clock read (clippy.toml disallows it everywhere else).
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every clone) forward. For tests and rehearsals.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_a_clone_moves_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        let before = clock.now();
        other.advance(std::time::Duration::from_secs(3600));
        assert!(clock.now() - before >= Duration::minutes(59));
    }
}
