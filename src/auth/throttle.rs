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
}
