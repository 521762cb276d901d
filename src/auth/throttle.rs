//! Sign-in throttling kept in memory: failures per client address, and per username for
//! names that have no account (real accounts keep their count in the database so that an
//! owner can see and clear a lockout). Both answer the same way, so a locked name does not
//! reveal whether it exists.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginThrottle {
    window: Duration,
    max_per_ip: u32,
    max_per_name: u32,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginThrottle {
    pub fn new(window: Duration, max_per_ip: u32, max_per_name: u32) -> Self {
        Self {
            window,
            max_per_ip,
            max_per_name,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key_ip(ip: &str) -> String {
        format!("ip:{ip}")
    }

    fn key_name(name: &str) -> String {
        format!("name:{}", name.to_lowercase())
    }

    fn recent(&self, key: &str, now: Instant) -> u32 {
        let mut failures = self.failures.lock().expect("throttle lock");
        let entries = failures.entry(key.to_owned()).or_default();
        entries.retain(|at| now.duration_since(*at) < self.window);
        entries.len() as u32
    }

    fn push(&self, key: String, now: Instant) {
        let mut failures = self.failures.lock().expect("throttle lock");
        // Bound the map: forget quiet entries when it grows large.
        if failures.len() > 10_000 {
            failures.retain(|_, entries| {
                entries
                    .iter()
                    .any(|at| now.duration_since(*at) < self.window)
            });
        }
        failures.entry(key).or_default().push(now);
    }

    pub fn ip_blocked(&self, ip: &str) -> bool {
        self.recent(&Self::key_ip(ip), Instant::now()) >= self.max_per_ip
    }

    pub fn unknown_name_blocked(&self, name: &str) -> bool {
        self.recent(&Self::key_name(name), Instant::now()) >= self.max_per_name
    }

    pub fn record_failure(&self, ip: &str, unknown_name: Option<&str>) {
        let now = Instant::now();
        self.push(Self::key_ip(ip), now);
        if let Some(name) = unknown_name {
            self.push(Self::key_name(name), now);
        }
    }
}

/// Keeps the audit records of refused requests (CSRF failures) to a trickle per client
/// address, so anyone on the network can leave a signal but not grow the log without limit.
///
/// Per address and window, the first `per_window` refusals are recorded one by one; the rest
/// are only counted. A window's count is handed back as a [`Suppressed`] summary once the
/// window is over, at the next refusal from any address (every call closes all ended windows).
/// Until then it lives in memory only, so a restart can lose at most one window's count.
/// At most `max_addresses` addresses are tracked; refusals from further addresses share one
/// [`OVERFLOW`] slot, so memory stays bounded and nothing goes uncounted.
pub struct FloodGate {
    window: Duration,
    per_window: u64,
    max_addresses: usize,
    slots: Mutex<HashMap<String, Slot>>,
}

struct Slot {
    started: Instant,
    seen: u64,
}

/// The slot that stands for every address beyond the tracked maximum.
pub const OVERFLOW: &str = "(other addresses)";

/// Refusals from `address` that were counted but not recorded, in a window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub address: String,
    pub count: u64,
    pub window: Duration,
}

/// What to write for one refusal.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Record this refusal itself.
    pub record: bool,
    /// Summaries of windows that ended before it, to record first.
    pub summaries: Vec<Suppressed>,
}

impl FloodGate {
    pub fn new(window: Duration, per_window: u64, max_addresses: usize) -> Self {
        Self {
            window,
            per_window,
            max_addresses,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn admit(&self, address: &str, now: Instant) -> Verdict {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut summaries = Vec::new();
        slots.retain(|address, slot| {
            if now.saturating_duration_since(slot.started) < self.window {
                return true;
            }
            if slot.seen > self.per_window {
                summaries.push(Suppressed {
                    address: address.clone(),
                    count: slot.seen - self.per_window,
                    window: self.window,
                });
            }
            false
        });
        let key = if slots.contains_key(address) || slots.len() < self.max_addresses {
            address
        } else {
            OVERFLOW
        };
        let slot = slots.entry(key.to_owned()).or_insert(Slot {
            started: now,
            seen: 0,
        });
        slot.seen += 1;
        Verdict {
            record: slot.seen <= self.per_window,
            summaries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_allowance_of_failures() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 3, 5);
        for _ in 0..2 {
            throttle.record_failure("10.0.0.1", None);
        }
        assert!(!throttle.ip_blocked("10.0.0.1"));
        throttle.record_failure("10.0.0.1", None);
        assert!(throttle.ip_blocked("10.0.0.1"));
        assert!(!throttle.ip_blocked("10.0.0.2"));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let throttle = LoginThrottle::new(Duration::from_millis(0), 1, 1);
        throttle.record_failure("10.0.0.1", Some("ghost"));
        assert!(!throttle.ip_blocked("10.0.0.1"));
        assert!(!throttle.unknown_name_blocked("ghost"));
    }

    #[test]
    fn a_flood_is_recorded_a_few_times_then_summarised_when_its_window_ends() {
        let gate = FloodGate::new(Duration::from_secs(60), 5, 100);
        let start = Instant::now();
        let recorded = (0..200)
            .filter(|i| {
                let verdict = gate.admit("10.0.0.1", start + Duration::from_millis(*i));
                assert!(verdict.summaries.is_empty());
                verdict.record
            })
            .count();
        assert_eq!(recorded, 5);

        // The address's next refusal, a window later, brings the summary of the last one.
        let verdict = gate.admit("10.0.0.1", start + Duration::from_secs(61));
        assert!(verdict.record);
        assert_eq!(
            verdict.summaries,
            vec![Suppressed {
                address: "10.0.0.1".into(),
                count: 195,
                window: Duration::from_secs(60),
            }]
        );
    }

    #[test]
    fn another_address_closes_ended_windows_so_a_count_is_not_held_back() {
        let gate = FloodGate::new(Duration::from_secs(60), 1, 100);
        let start = Instant::now();
        for _ in 0..3 {
            gate.admit("10.0.0.1", start);
        }
        gate.admit("10.0.0.2", start);
        let verdict = gate.admit("10.0.0.3", start + Duration::from_secs(60));
        assert_eq!(verdict.summaries.len(), 1, "10.0.0.2 hid nothing");
        assert_eq!(verdict.summaries[0].address, "10.0.0.1");
        assert_eq!(verdict.summaries[0].count, 2);
        // Nothing is reported twice.
        assert!(gate
            .admit("10.0.0.1", start + Duration::from_secs(61))
            .summaries
            .is_empty());
    }

    #[test]
    fn addresses_beyond_the_cap_share_one_counted_slot() {
        let gate = FloodGate::new(Duration::from_secs(60), 1, 2);
        let start = Instant::now();
        let recorded = (0..50)
            .filter(|i| gate.admit(&format!("10.0.1.{i}"), start).record)
            .count();
        // Two tracked addresses plus the first refusal of the shared slot.
        assert_eq!(recorded, 3);
        assert!(gate.slots.lock().unwrap().len() <= 3);
        let verdict = gate.admit("10.0.2.1", start + Duration::from_secs(60));
        assert_eq!(
            verdict.summaries,
            vec![Suppressed {
                address: OVERFLOW.into(),
                count: 47,
                window: Duration::from_secs(60),
            }]
        );
    }
}
