//! What anonymous traffic may cost: sign-in throttling, and flood control of the audit
//! records that refused requests leave. Both are kept in memory, bounded in size, and read the
//! dashboard's clock (tests move it instead of sleeping).
//!
//! Sign-in failures are counted per client address, and per username for names that have no
//! account (real accounts keep their count in the database so that an owner can see and clear
//! a lockout). Both answer the same way, so a locked name does not reveal whether it exists.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The slot that stands for every address (or name) beyond the tracked maximum.
pub const OVERFLOW: &str = "(other addresses)";

/// Failures per key in fixed windows. At most `max_keys` keys are tracked; failures of
/// further keys share one [`OVERFLOW`] slot with the same allowance, so a flood from many
/// addresses is throttled as one instead of growing the map or escaping the count.
pub struct LoginThrottle {
    window: Duration,
    max_per_ip: u32,
    max_per_name: u32,
    max_keys: usize,
    failures: Mutex<HashMap<String, Count>>,
    /// Passwords checked by the sign-in form: what sign-in attempts cost in hashing.
    checks: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy)]
struct Count {
    since: DateTime<Utc>,
    failures: u32,
}

impl LoginThrottle {
    pub fn new(window: Duration, max_per_ip: u32, max_per_name: u32, max_keys: usize) -> Self {
        Self {
            window,
            max_per_ip,
            max_per_name,
            max_keys,
            failures: Mutex::new(HashMap::new()),
            checks: Default::default(),
        }
    }

    /// Counts one password check (argon2), so that what throttled addresses cost is visible.
    pub fn count_check(&self) {
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key_ip(ip: &str) -> String {
        format!("ip:{ip}")
    }

    fn key_name(name: &str) -> String {
        format!("name:{}", name.to_lowercase())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Count>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self, count: &Count, now: DateTime<Utc>) -> bool {
        (now - count.since)
            .to_std()
            .is_ok_and(|age| age < self.window)
    }

    /// The failures counted for `key` in its current window (the overflow slot's, for a key
    /// that is not tracked while the map is full).
    fn recent(&self, key: &str, now: DateTime<Utc>) -> u32 {
        let failures = self.lock();
        let count = failures
            .get(key)
            .or_else(|| (failures.len() >= self.max_keys).then(|| failures.get(OVERFLOW))?);
        count
            .filter(|c| self.current(c, now))
            .map_or(0, |c| c.failures)
    }

    fn push(&self, key: String, now: DateTime<Utc>) {
        let mut failures = self.lock();
        if failures.len() >= self.max_keys && !failures.contains_key(&key) {
            failures.retain(|_, count| self.current(count, now));
        }
        let key = if failures.contains_key(&key) || failures.len() < self.max_keys {
            key
        } else {
            OVERFLOW.to_owned()
        };
        let count = failures.entry(key).or_insert(Count {
            since: now,
            failures: 0,
        });
        if !self.current(count, now) {
            *count = Count {
                since: now,
                failures: 0,
            };
        }
        count.failures = count.failures.saturating_add(1);
    }

    pub fn ip_blocked(&self, ip: &str, now: DateTime<Utc>) -> bool {
        self.recent(&Self::key_ip(ip), now) >= self.max_per_ip
    }

    pub fn unknown_name_blocked(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.recent(&Self::key_name(name), now) >= self.max_per_name
    }

    pub fn record_failure(&self, ip: &str, unknown_name: Option<&str>, now: DateTime<Utc>) {
        self.push(Self::key_ip(ip), now);
        if let Some(name) = unknown_name {
            self.push(Self::key_name(name), now);
        }
    }

    /// Keys tracked now (bounded by `max_keys` plus the overflow slot).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Keeps the audit records of refused requests (CSRF failures, untrusted identity headers,
/// failed sign-ins) to a trickle, so anyone on the network can leave a signal but not grow
/// the log without limit.
///
/// Time runs in fixed windows. In each, an address has its first `per_address` refusals
/// recorded one by one, and no more than `per_window` are recorded from all addresses
/// together; the rest are only counted. When a window is over, its count comes back as one
/// [`Summary`] at the next refusal from any address. Until then it lives in memory only, so
/// a restart can lose at most one window's count. At most `max_addresses` addresses are
/// tracked; refusals from further addresses share one [`OVERFLOW`] slot, so memory stays
/// bounded and nothing goes uncounted.
pub struct FloodGate {
    window: Duration,
    per_address: u64,
    per_window: u64,
    max_addresses: usize,
    state: Mutex<GateWindow>,
}

#[derive(Default)]
struct GateWindow {
    started: Option<DateTime<Utc>>,
    recorded: u64,
    addresses: HashMap<String, Slot>,
}

#[derive(Default)]
struct Slot {
    seen: u64,
    recorded: u64,
}

/// How many summaries name their addresses: the ones with the most refusals.
const SUMMARY_TOP: usize = 10;

/// Refusals counted but not recorded in a window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Refusals that have no record of their own.
    pub suppressed: u64,
    /// Addresses they came from (the overflow slot counts as one).
    pub addresses: usize,
    /// The addresses with the most suppressed refusals, most first: (address, count).
    pub top: Vec<(String, u64)>,
    pub window: Duration,
}

impl Summary {
    /// The one address the refusals came from, when there was one.
    pub fn only_address(&self) -> Option<&str> {
        match self.top.as_slice() {
            [(address, _)] if self.addresses == 1 && address != OVERFLOW => Some(address),
            _ => None,
        }
    }

    /// What the summary record stores.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "summary": true,
            "suppressed": self.suppressed,
            "addresses": self.addresses,
            "top": self.top.iter().map(|(address, count)| serde_json::json!({
                "address": address, "suppressed": count,
            })).collect::<Vec<_>>(),
            "window_seconds": self.window.as_secs(),
        })
    }
}

/// What to write for one refusal.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Record this refusal itself.
    pub record: bool,
    /// The summary of the window that ended before it, to record first.
    pub summary: Option<Summary>,
}

impl FloodGate {
    pub fn new(window: Duration, per_address: u64, per_window: u64, max_addresses: usize) -> Self {
        Self {
            window,
            per_address,
            per_window,
            max_addresses,
            state: Mutex::new(GateWindow::default()),
        }
    }

    pub fn admit(&self, address: &str, now: DateTime<Utc>) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let ended = state.started.is_some_and(|started| {
            (now - started)
                .to_std()
                .map_or(true, |age| age >= self.window)
        });
        let summary = if ended {
            let summary = self.summary_of(&state);
            *state = GateWindow::default();
            summary
        } else {
            None
        };
        state.started.get_or_insert(now);
        let key = if state.addresses.contains_key(address)
            || state.addresses.len() < self.max_addresses
        {
            address
        } else {
            OVERFLOW
        };
        let under_cap = state.recorded < self.per_window;
        let slot = state.addresses.entry(key.to_owned()).or_default();
        slot.seen += 1;
        let record = under_cap && slot.recorded < self.per_address;
        if record {
            slot.recorded += 1;
            state.recorded += 1;
        }
        Verdict { record, summary }
    }

    fn summary_of(&self, state: &GateWindow) -> Option<Summary> {
        let mut counted: Vec<(String, u64)> = state
            .addresses
            .iter()
            .filter(|(_, slot)| slot.seen > slot.recorded)
            .map(|(address, slot)| (address.clone(), slot.seen - slot.recorded))
            .collect();
        if counted.is_empty() {
            return None;
        }
        counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let suppressed = counted.iter().map(|(_, n)| n).sum();
        let addresses = counted.len();
        counted.truncate(SUMMARY_TOP);
        Some(Summary {
            suppressed,
            addresses,
            top: counted,
            window: self.window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn an_address_is_blocked_after_its_allowance_of_failures() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 3, 5, 100);
        for _ in 0..2 {
            throttle.record_failure("10.0.0.1", None, at(0));
        }
        assert!(!throttle.ip_blocked("10.0.0.1", at(1)));
        throttle.record_failure("10.0.0.1", None, at(1));
        assert!(throttle.ip_blocked("10.0.0.1", at(2)));
        assert!(!throttle.ip_blocked("10.0.0.2", at(2)));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let throttle = LoginThrottle::new(Duration::from_secs(60), 1, 1, 100);
        throttle.record_failure("10.0.0.1", Some("ghost"), at(0));
        assert!(throttle.ip_blocked("10.0.0.1", at(59)));
        assert!(throttle.unknown_name_blocked("ghost", at(59)));
        assert!(!throttle.ip_blocked("10.0.0.1", at(60)));
        assert!(!throttle.unknown_name_blocked("ghost", at(60)));
    }

    #[test]
    fn the_throttle_tracks_a_bounded_number_of_addresses_and_throttles_the_rest_together() {
        let throttle = LoginThrottle::new(Duration::from_secs(900), 3, 5, 10);
        for i in 0..1000 {
            throttle.record_failure(&format!("10.1.{}.{}", i / 256, i % 256), None, at(0));
        }
        assert!(throttle.tracked() <= 11, "{}", throttle.tracked());
        // The tracked ones keep their own count; the untracked ones are throttled as one.
        assert!(!throttle.ip_blocked("10.1.0.0", at(1)));
        assert!(throttle.ip_blocked("10.9.9.9", at(1)));
        // Once the window is over, quiet entries make room again.
        throttle.record_failure("10.2.0.1", None, at(901));
        assert!(!throttle.ip_blocked("10.2.0.1", at(902)));
    }

    #[test]
    fn a_flood_is_recorded_a_few_times_then_summarised_when_its_window_ends() {
        let gate = FloodGate::new(Duration::from_secs(60), 5, 100, 100);
        let recorded = (0..200)
            .filter(|_| {
                let verdict = gate.admit("10.0.0.1", at(1));
                assert!(verdict.summary.is_none());
                verdict.record
            })
            .count();
        assert_eq!(recorded, 5);

        // The next refusal, a window later, brings the summary of the last one.
        let verdict = gate.admit("10.0.0.1", at(61));
        assert!(verdict.record);
        let summary = verdict.summary.unwrap();
        assert_eq!(summary.suppressed, 195);
        assert_eq!(summary.only_address(), Some("10.0.0.1"));
        assert_eq!(summary.details()["suppressed"], 195);
    }

    #[test]
    fn many_addresses_are_capped_together_and_summed_up_in_one_record() {
        let gate = FloodGate::new(Duration::from_secs(60), 5, 50, 4096);
        let mut recorded = 0;
        for address in 0..200 {
            for _ in 0..5 {
                if gate.admit(&format!("10.0.{address}.1"), at(0)).record {
                    recorded += 1;
                }
            }
        }
        assert_eq!(recorded, 50, "the global cap holds across addresses");
        let summary = gate.admit("10.9.9.9", at(60)).summary.unwrap();
        assert_eq!(summary.suppressed, 950);
        assert_eq!(summary.addresses, 190);
        assert_eq!(summary.top.len(), SUMMARY_TOP);
        assert_eq!(summary.only_address(), None);
        // Nothing is reported twice.
        assert!(gate.admit("10.0.0.1", at(61)).summary.is_none());
    }

    #[test]
    fn addresses_beyond_the_cap_share_one_counted_slot() {
        let gate = FloodGate::new(Duration::from_secs(60), 1, 1000, 2);
        let recorded = (0..50)
            .filter(|i| gate.admit(&format!("10.0.1.{i}"), at(0)).record)
            .count();
        // Two tracked addresses plus the first refusal of the shared slot.
        assert_eq!(recorded, 3);
        assert!(gate.state.lock().unwrap().addresses.len() <= 3);
        let summary = gate.admit("10.0.2.1", at(60)).summary.unwrap();
        assert_eq!(summary.top, vec![(OVERFLOW.to_owned(), 47)]);
        assert_eq!(summary.only_address(), None);
    }
}
