//! Request budgets per minute, as Anthropic's APIs announce them: every answer carries
//! `anthropic-ratelimit-requests-limit`, `-remaining` and `-reset` (RFC 3339, when the window
//! ends), and a request over the budget gets 429 `rate_limit_error` with `retry-after` in
//! seconds (§8.5; the Admin API's own budget is not documented, so its size here is a setting,
//! off unless set). Two budgets: the Admin API's (`/v1/organizations/…`) and the Compliance
//! API's (600 a minute, shared by every key of the organization). Both count by the
//! simulator's clock, so a test moves past a window with `advance_clock` instead of sleeping.

use chrono::{DateTime, Duration, TimeZone, Utc};

/// The Compliance API's documented budget.
pub const COMPLIANCE_PER_MINUTE: u32 = 600;
/// Which budget a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Admin,
    Compliance,
}

#[derive(Debug)]
struct Window {
    /// The minute (Unix seconds / 60) the count is for.
    minute: i64,
    used: u32,
}

/// The budgets and what was spent of them in the current minute.
#[derive(Debug)]
pub struct RateLimits {
    /// Requests a minute to the Admin API; 0 (the default): unlimited, and no headers.
    pub admin_per_minute: u32,
    admin: Window,
    compliance: Window,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            admin_per_minute: 0,
            admin: Window { minute: 0, used: 0 },
            compliance: Window { minute: 0, used: 0 },
        }
    }
}

/// What a request learns of its budget: the headers to send, and whether it is refused.
pub struct Spent {
    pub limit: u32,
    pub remaining: u32,
    pub reset: DateTime<Utc>,
    /// Seconds to wait when over the budget.
    pub retry_after: Option<u64>,
}

impl RateLimits {
    /// Spends one request of `bucket` at `now`; `None` when that budget is unlimited.
    pub fn spend(&mut self, bucket: Bucket, now: DateTime<Utc>) -> Option<Spent> {
        let (limit, window) = match bucket {
            Bucket::Admin if self.admin_per_minute == 0 => return None,
            Bucket::Admin => (self.admin_per_minute, &mut self.admin),
            Bucket::Compliance => (COMPLIANCE_PER_MINUTE, &mut self.compliance),
        };
        let minute = now.timestamp().div_euclid(60);
        if window.minute != minute {
            *window = Window { minute, used: 0 };
        }
        let reset = Utc
            .timestamp_opt((minute + 1) * 60, 0)
            .single()
            .unwrap_or(now + Duration::seconds(60));
        if window.used >= limit {
            let wait = (reset - now).num_milliseconds().max(0) as u64;
            return Some(Spent {
                limit,
                remaining: 0,
                reset,
                retry_after: Some(wait.div_ceil(1000).max(1)),
            });
        }
        window.used += 1;
        Some(Spent {
            limit,
            remaining: limit - window.used,
            reset,
            retry_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_spent_per_minute_and_refuses_until_the_window_ends() {
        let mut limits = RateLimits {
            admin_per_minute: 2,
            ..RateLimits::default()
        };
        let t = Utc.timestamp_opt(1_800_000_010, 0).unwrap();
        let first = limits.spend(Bucket::Admin, t).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(first.reset.timestamp(), 1_800_000_060);
        assert!(limits
            .spend(Bucket::Admin, t)
            .unwrap()
            .retry_after
            .is_none());
        let refused = limits.spend(Bucket::Admin, t).unwrap();
        assert_eq!(refused.retry_after, Some(50));
        // The Compliance API's budget is its own.
        assert!(limits
            .spend(Bucket::Compliance, t)
            .unwrap()
            .retry_after
            .is_none());
        let next = limits
            .spend(Bucket::Admin, t + Duration::seconds(50))
            .unwrap();
        assert_eq!(next.remaining, 1);
        limits.admin_per_minute = 0;
        assert!(limits.spend(Bucket::Admin, t).is_none());
    }
}
