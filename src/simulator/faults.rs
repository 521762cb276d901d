//! Fault injection for the simulator: latency, random 500s and one-shot rules.
//!
//! Everything is behind a `Mutex` so tests can change faults while the simulator serves.
//! Randomness comes from a seeded ChaCha PRNG so a failure rate gives the same sequence of
//! failures on every run.

use std::sync::Mutex;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What an injected fault does to the matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// 429 `rate_limit_error`, with a `retry-after` header when `retry_after_secs` is set.
    RateLimited { retry_after_secs: Option<u64> },
    /// 529 `overloaded_error`.
    Overloaded,
    /// 500 `api_error`.
    ServerError,
    /// Never answers (the handler sleeps for an hour).
    Hang,
    /// 200 with a body that is not valid JSON.
    Malformed,
}

/// A fault applied to the next `times` requests matching `method` and `path_contains`
/// (`None` matches anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    pub kind: FaultKind,
    pub times: u32,
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

#[derive(Debug)]
struct Inner {
    latency: Duration,
    failure_rate: f64,
    rules: Vec<FaultRule>,
    rng: ChaCha8Rng,
}

/// Faults shared between the serving task and the test that drives it.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<Inner>,
}

/// What the request pipeline must do for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub latency: Duration,
    pub fault: Option<FaultKind>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            inner: Mutex::new(Inner {
                latency: Duration::ZERO,
                failure_rate: 0.0,
                rules: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFA17_FA17_FA17_FA17),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Latency added before every response.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Fraction (0.0..=1.0) of requests answered 500 `api_error`, drawn from a seeded PRNG.
    pub fn set_failure_rate(&self, rate: f64) {
        self.lock().failure_rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
    }

    /// The next `rule.times` requests matching the rule get its fault (rules are tried in the
    /// order they were injected).
    pub fn inject(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Removes latency, failure rate and every pending rule.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.latency = Duration::ZERO;
        inner.failure_rate = 0.0;
        inner.rules.clear();
    }

    /// Consumes one matching rule (if any) and rolls the failure rate.
    pub(crate) fn decide(&self, method: &str, path: &str) -> Decision {
        let mut inner = self.lock();
        let latency = inner.latency;
        if let Some(rule) = inner.rules.iter_mut().find(|r| r.matches(method, path)) {
            rule.times -= 1;
            let fault = Some(rule.kind.clone());
            inner.rules.retain(|r| r.times > 0);
            return Decision { latency, fault };
        }
        let rate = inner.failure_rate;
        let fault = if rate > 0.0 && inner.rng.gen_bool(rate) {
            Some(FaultKind::ServerError)
        } else {
            None
        };
        Decision { latency, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_applies_only_the_given_number_of_times_to_matching_requests() {
        let faults = Faults::new(1);
        faults.inject(FaultRule {
            method: Some("GET".into()),
            path_contains: Some("/users".into()),
            kind: FaultKind::Overloaded,
            times: 2,
        });
        assert_eq!(faults.decide("POST", "/v1/organizations/users").fault, None);
        assert_eq!(faults.decide("GET", "/v1/organizations/me").fault, None);
        assert_eq!(
            faults.decide("GET", "/v1/organizations/users").fault,
            Some(FaultKind::Overloaded)
        );
        assert_eq!(
            faults.decide("get", "/v1/organizations/users/x").fault,
            Some(FaultKind::Overloaded)
        );
        assert_eq!(faults.decide("GET", "/v1/organizations/users").fault, None);
    }

    #[test]
    fn the_failure_rate_is_deterministic_for_a_seed() {
        let run = || {
            let faults = Faults::new(7);
            faults.set_failure_rate(0.3);
            (0..200)
                .map(|_| faults.decide("GET", "/").fault.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let failures = a.iter().filter(|f| **f).count();
        assert!((30..=90).contains(&failures), "{failures}");
    }
}
