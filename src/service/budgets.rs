//! Monthly budgets: the spend arithmetic every page shares, and the threshold check the
//! usage job runs after each sync (one audit record, banner and alert per budget, threshold
//! and month).
//!
//! Amounts stay exact decimal cents. Projection method: settled spend so far + the average
//! settled day × the days that remain in the month.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::{target, Caller, ServiceError, Services};
use crate::audit::{Action, Outcome};
use crate::money::{dollars, month_key};
use crate::usage_store::{self as store, ORG_SCOPE};

/// One month of cost for some scopes: (day, stored workspace id, description, cents).
pub struct Month {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub lines: Vec<(NaiveDate, String, String, Decimal)>,
}

pub async fn month(
    services: &Services,
    start: NaiveDate,
    scope: Option<&[String]>,
) -> Result<Month, sqlx::Error> {
    let end = store::next_month(start);
    let lines = store::cost_lines(&services.db, start, end, scope).await?;
    Ok(Month { start, end, lines })
}

/// Spend of one budget scope in a month, with what the projection needs.
pub struct Spend {
    pub total: Decimal,
    pub settled: Decimal,
    pub settled_days: i64,
    pub days_in_month: i64,
}

impl Spend {
    pub fn of(m: &Month, scope: &str, settled_before: NaiveDate) -> Spend {
        let mut s = Spend {
            total: Decimal::ZERO,
            settled: Decimal::ZERO,
            settled_days: (settled_before.min(m.end) - m.start).num_days().max(0),
            days_in_month: (m.end - m.start).num_days(),
        };
        for (day, ws, _, amount) in &m.lines {
            if scope == ORG_SCOPE || scope == ws {
                s.total += amount;
                if *day < settled_before {
                    s.settled += amount;
                }
            }
        }
        s
    }

    /// The average settled day, if any day has settled.
    fn daily_average(&self) -> Option<Decimal> {
        (self.settled_days > 0).then(|| self.settled / Decimal::from(self.settled_days))
    }

    /// Settled spend + average settled day × days remaining.
    pub fn projected(&self) -> Option<Decimal> {
        let avg = self.daily_average()?;
        Some(self.settled + avg * Decimal::from(self.days_in_month - self.settled_days))
    }

    /// The first day on which the projection reaches `budget`.
    pub fn crossing(&self, start: NaiveDate, budget: Decimal) -> Option<NaiveDate> {
        if self.total >= budget {
            return None;
        }
        let avg = self.daily_average().filter(|a| *a > Decimal::ZERO)?;
        let k = ((budget - self.settled) / avg).ceil();
        let k = i64::try_from(k.mantissa() / 10i128.pow(k.scale())).ok()?;
        let day = start + chrono::Duration::days(self.settled_days + k - 1);
        (day < store::next_month(start)).then_some(day)
    }
}

/// Days before this one are settled (no longer change upstream).
pub fn settled_before(services: &Services, now: DateTime<Utc>) -> NaiveDate {
    let settle = chrono::Duration::from_std(services.config.usage_settle)
        .unwrap_or(chrono::Duration::hours(2));
    (now - settle).date_naive()
}

/// A budget scope as people read it: the organization, or a workspace's name.
async fn scope_name(services: &Services, scope: &str) -> String {
    if scope == ORG_SCOPE {
        return store::ORG_SCOPE_LABEL.to_owned();
    }
    if scope.is_empty() {
        return store::DEFAULT_WORKSPACE.to_owned();
    }
    services
        .org
        .workspaces()
        .await
        .ok()
        .and_then(|list| list.iter().find(|w| w.id == scope).map(|w| w.name.clone()))
        .unwrap_or_else(|| scope.to_owned())
}

/// Records and announces every newly crossed threshold of this month: one audit record, one
/// banner and one webhook post per budget, threshold and month (a unique row makes sure).
pub async fn check_thresholds(
    services: &Services,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let budgets = store::budgets(&services.db).await?;
    if budgets.is_empty() {
        return Ok(0);
    }
    let start = store::month_start(now.date_naive());
    let m = month(services, start, None).await?;
    let settled = settled_before(services, now);
    let key = month_key(start);
    let mut raised = 0;
    for b in &budgets {
        let spend = Spend::of(&m, &b.scope, settled);
        for &t in &b.thresholds {
            if b.amount_cents <= Decimal::ZERO
                || spend.total * Decimal::from(100) < b.amount_cents * Decimal::from(t)
            {
                continue;
            }
            if !store::record_alert(&services.db, &b.scope, &key, t, spend.total, now).await? {
                continue;
            }
            raised += 1;
            let name = scope_name(services, &b.scope).await;
            services
                .record(
                    &Caller::BUDGETS,
                    Action::BudgetThresholdCrossed,
                    target("budget", b.scope.clone(), Some(name.clone())),
                    json!({
                        "month": key,
                        "threshold_percent": t,
                        "budget_cents": b.amount_cents.normalize().to_string(),
                        "spend_cents": spend.total.normalize().to_string(),
                    }),
                    Outcome::Ok,
                )
                .await?;
            services.alerts.send(format!(
                "Orgkeeper: {name} reached {t}% of its {key} budget ({} of {}).",
                dollars(spend.total),
                dollars(b.amount_cents)
            ));
        }
    }
    Ok(raised)
}
