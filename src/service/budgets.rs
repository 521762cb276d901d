//! Monthly budgets: the spend arithmetic every page shares, and the threshold check the
//! usage job runs after each sync (one audit record, banner and alert per budget, threshold
//! and month).
//!
//! Amounts stay exact decimal cents. Projection method: settled spend so far + the average
//! settled day × the days that remain in the month. Before any day of the month has settled
//! (the 1st, or the 2nd before the settling time), the month is projected from the pace of
//! the spend seen so far, and said to be a rough estimate; with no spend seen at all there is
//! "not enough data yet" — never an all-clear without data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::{target, Caller, ServiceError, Services};
use crate::audit::{Action, Outcome};
use crate::auth::Permission;
use crate::money::{dollars, month_key};
use crate::org::names::ReportNames;
use crate::usage_store::{self as store, ORG_SCOPE};

/// One month of cost for some scopes: (day, stored workspace id, description, cents).
pub struct Month {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub lines: Vec<store::CostRow>,
    /// Each scope's spend per day (`ORG_SCOPE`: all the lines), in day order: a budget's
    /// spend is a sum over at most 31 days, not over every line.
    daily: HashMap<String, Vec<(NaiveDate, Decimal)>>,
}

impl Month {
    pub fn new(start: NaiveDate, end: NaiveDate, lines: Vec<store::CostRow>) -> Self {
        let mut by_day: HashMap<&str, BTreeMap<NaiveDate, Decimal>> = HashMap::new();
        for (day, ws, _, amount) in &lines {
            for scope in [ORG_SCOPE, ws] {
                *by_day.entry(scope).or_default().entry(*day).or_default() += amount;
            }
        }
        let daily = by_day
            .into_iter()
            .map(|(scope, days)| (scope.to_owned(), days.into_iter().collect()))
            .collect();
        Month {
            start,
            end,
            lines,
            daily,
        }
    }

    /// The spend of `scope` on the days before `before`.
    pub fn spent_before(&self, scope: &str, before: NaiveDate) -> Decimal {
        self.days(scope)
            .iter()
            .take_while(|(day, _)| *day < before)
            .map(|(_, amount)| *amount)
            .sum()
    }

    fn days(&self, scope: &str) -> &[(NaiveDate, Decimal)] {
        self.daily.get(scope).map_or(&[], Vec::as_slice)
    }
}

/// One month of cost lines, read once per store version (every budget, page and job shares
/// it).
pub async fn month(
    services: &Services,
    start: NaiveDate,
    scope: Option<&[String]>,
) -> Result<Arc<Month>, sqlx::Error> {
    let key = format!("month {start} {scope:?}");
    services
        .reports
        .get(&services.usage, store::Reads::Cost, key, || async {
            let end = store::next_month(start);
            let lines = store::cost_lines(&services.db, start, end, scope).await?;
            Ok::<_, sqlx::Error>(Month::new(start, end, lines))
        })
        .await
}

/// Spend of one budget scope in a month, with what the projection needs.
pub struct Spend {
    pub total: Decimal,
    pub settled: Decimal,
    pub settled_days: i64,
    /// Days of the month seen so far, today included (the whole month for a past one).
    pub elapsed_days: i64,
    pub days_in_month: i64,
}

/// What a projection is based on, so pages can say how far to trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The average of this many settled days.
    Settled(i64),
    /// No day has settled yet: the pace of the (still changing) spend over this many days.
    Pace(i64),
    /// No settled day and no spend seen: nothing to project from.
    NotEnoughData,
}

/// Where a budget stands against the projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    AlreadyReached,
    On(NaiveDate),
    NotThisMonth,
    /// Nothing to project from yet.
    Unknown,
}

impl Crossing {
    /// The sentence the budget tables show.
    pub fn describe(self) -> String {
        match self {
            Crossing::AlreadyReached => "already reached".into(),
            Crossing::On(day) => format!("projected on {}", day.format("%-d %b")),
            Crossing::NotThisMonth => "not projected this month".into(),
            Crossing::Unknown => "not enough data yet".into(),
        }
    }
}

impl Spend {
    /// `today` is the reader's current UTC day: it bounds the days seen so far.
    pub fn of(m: &Month, scope: &str, settled_before: NaiveDate, today: NaiveDate) -> Spend {
        let days_in_month = (m.end - m.start).num_days();
        let mut s = Spend {
            total: Decimal::ZERO,
            settled: Decimal::ZERO,
            settled_days: (settled_before.min(m.end) - m.start).num_days().max(0),
            elapsed_days: ((today - m.start).num_days() + 1).clamp(0, days_in_month),
            days_in_month,
        };
        for (day, amount) in m.days(scope) {
            s.total += amount;
            if *day < settled_before {
                s.settled += amount;
            }
        }
        s
    }

    pub fn basis(&self) -> Basis {
        if self.settled_days > 0 {
            Basis::Settled(self.settled_days)
        } else if self.total > Decimal::ZERO && self.elapsed_days > 0 {
            Basis::Pace(self.elapsed_days)
        } else {
            Basis::NotEnoughData
        }
    }

    /// Spend of an average day, and the spend it continues from after `days` days.
    fn pace(&self) -> Option<(Decimal, Decimal, i64)> {
        match self.basis() {
            Basis::Settled(days) => Some((self.settled / Decimal::from(days), self.settled, days)),
            Basis::Pace(days) => Some((self.total / Decimal::from(days), self.total, days)),
            Basis::NotEnoughData => None,
        }
    }

    /// The month's projected total; `None` when there is nothing to project from.
    pub fn projected(&self) -> Option<Decimal> {
        let (avg, base, days) = self.pace()?;
        let projected = base + avg * Decimal::from((self.days_in_month - days).max(0));
        // Unsettled spend already seen is spend: a projection never goes below it.
        Some(projected.max(self.total))
    }

    /// The day on which the projection reaches `budget`.
    pub fn crossing(&self, start: NaiveDate, budget: Decimal) -> Crossing {
        if self.total >= budget {
            return Crossing::AlreadyReached;
        }
        let Some((avg, base, days)) = self.pace() else {
            return Crossing::Unknown;
        };
        if avg <= Decimal::ZERO {
            return Crossing::NotThisMonth;
        }
        let Some(k) = (budget - base).checked_div(avg) else {
            return Crossing::NotThisMonth;
        };
        let k = k.ceil().max(Decimal::ONE);
        // Beyond two months away it is not this month, and too far to add to a date safely.
        let k = match i64::try_from(k.mantissa() / 10i128.pow(k.scale())) {
            Ok(k) if k <= 62 => k,
            _ => return Crossing::NotThisMonth,
        };
        let day = start + chrono::Duration::days(days + k - 1);
        if day < store::next_month(start) {
            Crossing::On(day)
        } else {
            Crossing::NotThisMonth
        }
    }

    /// How the projection was made, in a sentence for the cost page.
    pub fn method(&self, settle_minutes: u64) -> String {
        match self.basis() {
            Basis::Settled(days) => format!(
                "Projected from the average of the {days} settled day{} so far ({} a day). Today's spend is not averaged until it settles ({settle_minutes} minutes), because it can still change.",
                if days == 1 { "" } else { "s" },
                dollars(self.settled / Decimal::from(days))
            ),
            Basis::Pace(days) => format!(
                "A rough estimate: no day of this month has settled yet, so this continues the pace of the spend seen {} ({} so far). It firms up once a day settles ({settle_minutes} minutes after it ends).",
                if days == 1 { "today".to_owned() } else { format!("in the first {days} days") },
                dollars(self.total)
            ),
            Basis::NotEnoughData => "Not enough data yet: no spend has been reported for this month, so there is nothing to project from.".into(),
        }
    }
}

/// Days before this one are settled (no longer change upstream).
pub fn settled_before(services: &Services, now: DateTime<Utc>) -> NaiveDate {
    let settle = chrono::Duration::from_std(services.config.usage_settle)
        .unwrap_or(chrono::Duration::hours(2));
    (now - settle).date_naive()
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
        let spend = Spend::of(&m, &b.scope, settled, now.date_naive());
        for &t in &b.thresholds {
            if percent_of(spend.total, b.amount_cents).is_none_or(|p| p < Decimal::from(t)) {
                continue;
            }
            if !store::record_alert(&services.db, &b.scope, &key, t, spend.total, now).await? {
                continue;
            }
            raised += 1;
            let name = scope_name(&ReportNames::of(&services.org.snapshot()), &b.scope);
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

// ---------------------------------------------------------------------------------------------
// Setting and removing budgets (owners and admins)

/// The budget's scope as a form or link names it (`org`, a workspace id, `default` for the
/// default workspace) → as the store keeps it ('' for the default workspace).
pub fn scope_from_param(param: &str) -> String {
    if param == "default" {
        String::new()
    } else {
        param.to_owned()
    }
}

/// A stored scope in words.
pub fn scope_name(names: &ReportNames, scope: &str) -> String {
    if scope == ORG_SCOPE {
        store::ORG_SCOPE_LABEL.to_owned()
    } else {
        names.workspace(scope)
    }
}

/// Alert thresholds as typed ("50, 80%, 100"): whole percentages from 1 to 1000, sorted, each
/// once, at least one.
pub fn parse_thresholds(raw: &str) -> Result<Vec<u32>, ServiceError> {
    let mut out = Vec::new();
    for part in raw
        .split(',')
        .map(|p| p.trim().trim_end_matches('%').trim())
    {
        if part.is_empty() {
            continue;
        }
        match part.parse::<u32>() {
            Ok(t) if (1..=1000).contains(&t) => out.push(t),
            _ => {
                return Err(ServiceError::Invalid(format!(
                    "\"{part}\" is not a threshold: use whole percentages between 1 and 1000, separated by commas."
                )))
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(ServiceError::Invalid(
            "Give at least one threshold, for example 50, 80, 100.".into(),
        ));
    }
    Ok(out)
}

fn budget_json(b: &store::Budget) -> serde_json::Value {
    json!({
        "amount_cents": b.amount_cents.normalize().to_string(),
        "thresholds": b.thresholds,
    })
}

pub async fn list(services: &Services) -> Result<Vec<store::Budget>, ServiceError> {
    Ok(store::budgets(&services.db).await?)
}

/// Sets (or replaces) the monthly budget of the organization or a workspace. Returns the
/// scope's name.
pub async fn set(
    services: &Services,
    caller: &Caller,
    scope_param: &str,
    amount_cents: Decimal,
    thresholds: Vec<u32>,
) -> Result<String, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let names = ReportNames::of(&services.org.snapshot());
    // The default workspace may arrive by its real id; budgets keep the report's '' for it.
    let scope = match scope_from_param(scope_param) {
        s if s == ORG_SCOPE => s,
        s => names.stored_ws(&s),
    };
    let known = scope == ORG_SCOPE
        || names
            .real_ws(&scope)
            .is_some_and(|w| names.workspaces.contains_key(&w));
    if !known {
        return Err(ServiceError::Invalid(
            "Choose the organization or a workspace.".into(),
        ));
    }
    let max_cents = Decimal::from(crate::money::MAX_DOLLARS) * Decimal::ONE_HUNDRED;
    if amount_cents <= Decimal::ZERO || amount_cents > max_cents {
        return Err(ServiceError::Invalid(format!(
            "The budget must be more than $0 and at most {}.",
            dollars(max_cents)
        )));
    }
    let before = list(services).await?.into_iter().find(|b| b.scope == scope);
    let after = store::Budget {
        scope: scope.clone(),
        amount_cents,
        thresholds,
    };
    let name = scope_name(&names, &scope);
    let details = json!({
        "scope": scope,
        "before": before.as_ref().map(budget_json),
        "after": budget_json(&after),
    });
    let now = services.clock.now();
    services
        .local_change(
            caller,
            Action::BudgetSet,
            target("budget", scope.clone(), Some(name.clone())),
            details,
            store::set_budget(&services.db, &after, now),
            |_| None,
        )
        .await??;
    Ok(name)
}

/// Removes a budget; its past alerts stay in the audit log. Returns the scope's name.
pub async fn remove(
    services: &Services,
    caller: &Caller,
    scope_param: &str,
) -> Result<String, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let scope = scope_from_param(scope_param);
    let before = list(services)
        .await?
        .into_iter()
        .find(|b| b.scope == scope)
        .ok_or(ServiceError::NotFound)?;
    let names = ReportNames::of(&services.org.snapshot());
    let name = scope_name(&names, &scope);
    let details = json!({ "scope": scope, "before": budget_json(&before), "after": null });
    services
        .local_change(
            caller,
            Action::BudgetRemoved,
            target("budget", scope.clone(), Some(name.clone())),
            details,
            store::remove_budget(&services.db, &scope),
            |_| None,
        )
        .await??;
    Ok(name)
}

/// `spend` as a percentage of `amount`; `None` for no amount, or when it cannot be computed
/// (checked: a budget stored before amounts were bounded may be beyond any arithmetic).
pub fn percent_of(spend: Decimal, amount: Decimal) -> Option<Decimal> {
    if amount <= Decimal::ZERO {
        return None;
    }
    spend.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_sorted_and_checked() {
        assert_eq!(parse_thresholds("100, 50%, 80").unwrap(), vec![50, 80, 100]);
        assert!(parse_thresholds("").is_err());
        assert!(parse_thresholds("0").is_err());
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    /// December 2026 with these (day, cents) lines, all in one workspace.
    fn december(lines: &[(u32, i64)]) -> Month {
        Month::new(
            day(1),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            lines
                .iter()
                .map(|&(d, c)| (day(d), "ws".into(), "".into(), Decimal::from(c)))
                .collect(),
        )
    }

    #[test]
    fn on_the_first_with_no_settled_day_the_month_is_projected_from_todays_pace() {
        // 75 % of a $300 budget spent on the 1st; nothing has settled yet.
        let m = december(&[(1, 22_500)]);
        let spend = Spend::of(&m, ORG_SCOPE, day(1), day(1));

        assert_eq!(spend.settled_days, 0);
        assert_eq!(spend.basis(), Basis::Pace(1));
        assert_eq!(spend.projected(), Some(Decimal::from(22_500 * 31)));
        assert_eq!(
            spend.crossing(day(1), Decimal::from(30_000)),
            Crossing::On(day(2))
        );
        assert!(
            spend.method(120).contains("rough estimate"),
            "{}",
            spend.method(120)
        );
        assert!(!spend.method(120).contains("0 settled days"));
    }

    #[test]
    fn with_no_settled_day_and_no_spend_there_is_not_enough_data_not_an_all_clear() {
        let m = december(&[]);
        let spend = Spend::of(&m, ORG_SCOPE, day(1), day(1));

        assert_eq!(spend.basis(), Basis::NotEnoughData);
        assert_eq!(spend.projected(), None);
        let crossing = spend.crossing(day(1), Decimal::from(30_000));
        assert_eq!(crossing, Crossing::Unknown);
        assert_eq!(crossing.describe(), "not enough data yet");
    }

    #[test]
    fn settled_days_are_averaged_and_todays_spend_is_not() {
        // Two settled days of $10, and $50 so far today (not settled).
        let m = december(&[(1, 1_000), (2, 1_000), (3, 5_000)]);
        let spend = Spend::of(&m, ORG_SCOPE, day(3), day(3));

        assert_eq!(spend.basis(), Basis::Settled(2));
        // $20 settled + $10 × 29 days left = $310.
        assert_eq!(spend.projected(), Some(Decimal::from(31_000)));
        // $20 + $10 a day reaches $100 on day 2 + 8 = the 10th.
        assert_eq!(
            spend.crossing(day(1), Decimal::from(10_000)),
            Crossing::On(day(10))
        );
        assert_eq!(
            spend.crossing(day(1), Decimal::from(6_000)),
            Crossing::AlreadyReached
        );
        assert_eq!(
            spend.crossing(day(1), Decimal::from(1_000_000)),
            Crossing::NotThisMonth
        );
    }

    #[test]
    fn a_projection_never_falls_below_what_is_already_spent() {
        // One quiet settled day, then a burst today.
        let m = december(&[(1, 0), (2, 50_000)]);
        let spend = Spend::of(&m, ORG_SCOPE, day(2), day(2));

        assert_eq!(spend.basis(), Basis::Settled(1));
        assert_eq!(spend.projected(), Some(Decimal::from(50_000)));
    }
}
