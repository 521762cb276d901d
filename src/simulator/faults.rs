//! Fault injection for the simulator: latency, random 500s, one-shot rules, and scripted
//! faults (a kind of fault on a path prefix at a rate) that `orgkeeper simulate --fault` and
//! its `/_faults` control endpoint set from outside the process.
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
    /// 302 to `location`, as a misconfigured proxy or base URL would answer.
    Redirect { location: String },
    /// 400 whose `request-id` header, body `request_id`, `error.type`, `error_code` and
    /// message all repeat the credential the request carried, as a faulty proxy or upstream
    /// that echoes what it was sent would.
    EchoCredential,
    /// 200 with an empty page that says there is more, under a new cursor every time: a list
    /// or report whose pagination never ends.
    Endless,
}

/// A fault applied to requests whose path starts with `path_prefix` (and whose method is
/// `method`, when set), each with probability `rate`, at most `times` times when set.
///
/// Written `KIND[:key=value]…` on the command line and in the control endpoint, where KIND is
/// `429`, `529`, `500`, `hang`, `malformed`, `redirect`, `echo` or `endless`, and the keys are `path-prefix`,
/// `method`, `rate` (0 to 1, default 1), `times`, `retry-after` (seconds, 429 only) and
/// `location` (redirect only; it must come last, as a URL contains colons). For example
/// `429:path-prefix=/v1/organizations/users:retry-after=30:rate=0.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub kind: FaultKind,
    pub method: Option<String>,
    pub path_prefix: Option<String>,
    pub rate: f64,
    pub times: Option<u32>,
}

impl std::str::FromStr for FaultSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, mut rest) = text.trim().split_once(':').unwrap_or((text.trim(), ""));
        let mut spec = FaultSpec {
            kind: FaultKind::ServerError,
            method: None,
            path_prefix: None,
            rate: 1.0,
            times: None,
        };
        let mut retry_after_secs = None;
        let mut location = None;
        while !rest.is_empty() {
            let (part, next) = if rest.starts_with("location=") {
                (rest, "")
            } else {
                rest.split_once(':').unwrap_or((rest, ""))
            };
            rest = next;
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            let number = |what: &str| format!("{key}: {value:?} is not {what}");
            match key {
                "path-prefix" => spec.path_prefix = Some(value.to_owned()),
                "method" => spec.method = Some(value.to_ascii_uppercase()),
                "rate" => {
                    spec.rate = value
                        .parse()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| number("a number from 0 to 1"))?
                }
                "times" => spec.times = Some(value.parse().map_err(|_| number("a count"))?),
                "retry-after" => {
                    retry_after_secs = Some(value.parse().map_err(|_| number("whole seconds"))?)
                }
                "location" => location = Some(value.to_owned()),
                other => return Err(format!("unknown fault setting {other:?}")),
            }
        }
        spec.kind = match kind {
            "429" => FaultKind::RateLimited { retry_after_secs },
            "529" => FaultKind::Overloaded,
            "500" => FaultKind::ServerError,
            "hang" => FaultKind::Hang,
            "malformed" => FaultKind::Malformed,
            "echo" => FaultKind::EchoCredential,
            "endless" => FaultKind::Endless,
            "redirect" => FaultKind::Redirect {
                location: location
                    .clone()
                    .ok_or("redirect: location=URL is required")?,
            },
            other => {
                return Err(format!(
                    "unknown fault {other:?} (expected 429, 529, 500, hang, malformed, redirect, echo or endless)"
                ))
            }
        };
        if retry_after_secs.is_some() && !matches!(spec.kind, FaultKind::RateLimited { .. }) {
            return Err("retry-after applies to 429 only".into());
        }
        if location.is_some() && !matches!(spec.kind, FaultKind::Redirect { .. }) {
            return Err("location applies to redirect only".into());
        }
        Ok(spec)
    }
}

impl FaultSpec {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
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
    scripted: Vec<FaultSpec>,
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
                scripted: Vec::new(),
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

    /// Adds a scripted fault; it applies after one-shot rules, before the failure rate.
    pub fn add(&self, spec: FaultSpec) {
        self.lock().scripted.push(spec);
    }

    /// The scripted faults still in force.
    pub fn scripted(&self) -> Vec<FaultSpec> {
        self.lock().scripted.clone()
    }

    /// Removes latency, failure rate, every pending rule and every scripted fault.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.latency = Duration::ZERO;
        inner.failure_rate = 0.0;
        inner.rules.clear();
        inner.scripted.clear();
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
        let Inner { scripted, rng, .. } = &mut *inner;
        if let Some(spec) = scripted
            .iter_mut()
            .find(|s| s.matches(method, path) && rng.gen_bool(s.rate))
        {
            if let Some(times) = &mut spec.times {
                *times -= 1;
            }
            let fault = Some(spec.kind.clone());
            scripted.retain(|s| s.times != Some(0));
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
    fn fault_specs_read_like_the_command_line_documents() {
        let spec: FaultSpec = "429:path-prefix=/v1/organizations/users:retry-after=30:rate=0.5"
            .parse()
            .unwrap();
        assert_eq!(
            spec,
            FaultSpec {
                kind: FaultKind::RateLimited {
                    retry_after_secs: Some(30)
                },
                method: None,
                path_prefix: Some("/v1/organizations/users".into()),
                rate: 0.5,
                times: None,
            }
        );
        let spec: FaultSpec = "redirect:method=get:location=http://127.0.0.1:9/x?a=b"
            .parse()
            .unwrap();
        assert_eq!(
            spec.kind,
            FaultKind::Redirect {
                location: "http://127.0.0.1:9/x?a=b".into()
            }
        );
        assert_eq!(spec.method.as_deref(), Some("GET"));
        for (text, kind) in [
            ("529", FaultKind::Overloaded),
            ("500:times=2", FaultKind::ServerError),
            ("hang", FaultKind::Hang),
            ("malformed", FaultKind::Malformed),
        ] {
            assert_eq!(text.parse::<FaultSpec>().unwrap().kind, kind, "{text}");
        }
        for bad in [
            "418",
            "429:rate=2",
            "redirect",
            "500:retry-after=3",
            "hang:colour=red",
        ] {
            assert!(bad.parse::<FaultSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scripted_fault_applies_to_its_prefix_and_runs_out_after_its_times() {
        let faults = Faults::new(1);
        faults.add(
            "529:path-prefix=/v1/organizations/users:times=2"
                .parse()
                .unwrap(),
        );
        assert_eq!(faults.decide("GET", "/v1/organizations/me").fault, None);
        assert_eq!(
            faults.decide("GET", "/x/v1/organizations/users").fault,
            None
        );
        for _ in 0..2 {
            assert_eq!(
                faults.decide("POST", "/v1/organizations/users/u").fault,
                Some(FaultKind::Overloaded)
            );
        }
        assert_eq!(faults.decide("GET", "/v1/organizations/users").fault, None);
        assert!(faults.scripted().is_empty());
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
