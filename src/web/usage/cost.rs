//! Cost (`/cost`) and budgets (`/budgets`): daily cost stacked by workspace or description,
//! month to date, a projection, monthly budgets with thresholds, and one alert per crossing.
//!
//! Amounts stay exact decimal cents until they are displayed. The projection is
//! `service::budgets::Spend` (settled average, or today's pace before any day settles).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::web::extract::Form;
use crate::web::extract::Query;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{chart, dollars, dollars_plain, link, month_key, names, Names, Opt, OTHER};
use super::{AppState, Ctx};
use crate::auth::Permission;
use crate::service::budgets::{self, scope_name};
use crate::service::budgets::{check_thresholds, month, settled_before, Basis, Month, Spend};
use crate::service::ServiceError;
use crate::usage_store::{self as store, Kind, ORG_SCOPE};
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};

pub struct BudgetSummary {
    pub scope: String,
    pub name: String,
    pub budget: String,
    pub spend: String,
    pub percent: String,
    pub projected: Option<String>,
    pub crossing: String,
    /// The projection continues today's pace (no settled day yet): a rough estimate.
    pub estimate: bool,
    pub thresholds: String,
    pub crossed: Vec<u32>,
    /// For the remove form: the scope as a query value.
    pub scope_param: String,
    /// This month's spend is above the budget.
    pub exceeded: bool,
}

/// This month's spend against each budget a person may see. `workspace_scope` is
/// `ctx.workspace_scope()`: `None` = everything (the organization budget included), else the
/// team lead's workspace ids. The overview page can call this.
pub async fn budget_summaries(
    state: &AppState,
    workspace_scope: Option<&[String]>,
) -> AppResult<Vec<BudgetSummary>> {
    let now = state.clock.now();
    let names = names(state);
    let stored: Option<Vec<String>> =
        workspace_scope.map(|ids| ids.iter().map(|id| names.stored_ws(id)).collect());
    let scope = stored.as_deref();
    let start = store::month_start(now.date_naive());
    let m = month(state, start, scope).await?;
    let settled = settled_before(state, now);
    let alerts = state.usage.alerts_of_month(&month_key(start)).await?;
    let mut out = Vec::new();
    for b in state.usage.budgets().await? {
        let visible = match scope {
            None => true,
            Some(s) => b.scope != ORG_SCOPE && s.contains(&b.scope),
        };
        if !visible {
            continue;
        }
        let spend = Spend::of(&m, &b.scope, settled, now.date_naive());
        let percent = crate::service::budgets::percent_of(spend.total, b.amount_cents)
            .unwrap_or(Decimal::ZERO);
        let crossing = spend.crossing(start, b.amount_cents).describe();
        let estimate = matches!(spend.basis(), Basis::Pace(_));
        out.push(BudgetSummary {
            name: scope_name(&names, &b.scope),
            budget: dollars(b.amount_cents),
            spend: dollars(spend.total),
            percent: crate::money::percent(percent),
            projected: spend.projected().map(dollars),
            crossing,
            estimate,
            thresholds: b
                .thresholds
                .iter()
                .map(|t| format!("{t}%"))
                .collect::<Vec<_>>()
                .join(", "),
            crossed: alerts
                .iter()
                .filter(|(s, _, _)| *s == b.scope)
                .map(|(_, t, _)| *t)
                .collect(),
            scope_param: scope_param(&b.scope),
            exceeded: spend.total > b.amount_cents,
            scope: b.scope,
        });
    }
    Ok(out)
}

/// Month-to-date spend of what the person may see (a team lead: their workspaces), and its
/// projection, for the overview: (spent, projected, projection is a rough estimate).
pub async fn month_to_date(
    state: &AppState,
    workspace_scope: Option<&[String]>,
) -> AppResult<(String, Option<String>, bool)> {
    let now = state.clock.now();
    let names = names(state);
    let stored: Option<Vec<String>> =
        workspace_scope.map(|ids| ids.iter().map(|id| names.stored_ws(id)).collect());
    let start = store::month_start(now.date_naive());
    let m = month(state, start, stored.as_deref()).await?;
    // A scoped month holds only those workspaces' lines, so ORG_SCOPE sums exactly them.
    let spend = Spend::of(&m, ORG_SCOPE, settled_before(state, now), now.date_naive());
    Ok((
        dollars(spend.total),
        spend.projected().map(dollars),
        matches!(spend.basis(), Basis::Pace(_)),
    ))
}

/// The form/query value of a scope ('' = default workspace travels as `default`).
fn scope_param(scope: &str) -> String {
    if scope.is_empty() {
        "default".into()
    } else {
        scope.to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The cost page

pub struct CostRow {
    pub day: String,
    pub cells: Vec<String>,
    pub total: String,
}

#[derive(Template)]
#[template(path = "usage/cost.html")]
struct CostPage {
    layout: Layout,
    chart: chart::ChartView,
    group_by: String,
    months: Vec<Opt>,
    month_label: String,
    current_month: bool,
    series: Vec<String>,
    rows: Vec<CostRow>,
    total: String,
    previous_total: String,
    previous_same_days: Option<String>,
    projection: Option<String>,
    projection_method: String,
    projection_estimate: bool,
    budgets: Vec<BudgetSummary>,
    banners: Vec<(String, bool)>,
    stale: Option<String>,
    csv_href: String,
    can_manage: bool,
    scoped: bool,
}

struct CostData {
    month_start: NaiveDate,
    days: Vec<NaiveDate>,
    labels: Vec<String>,
    values: Vec<Vec<Decimal>>,
    stale: Option<String>,
    current: Arc<Month>,
    previous: Arc<Month>,
}

async fn load_cost(
    ctx: &Ctx,
    names: &Names,
    params: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> AppResult<CostData> {
    let stale = super::refresh_or_stale(&ctx.state, Kind::CostDay, now).await?;
    let today = now.date_naive();
    let this_month = store::month_start(today);
    let month_start = match params.get("month").filter(|m| !m.is_empty()) {
        Some(m) => crate::web::present::month(m).map_err(AppError::BadRequest)?,
        None => this_month,
    };
    let by_desc = params.get("group_by").is_some_and(|g| g == "description");
    let scope = super::scope(ctx, names);
    let current = month(&ctx.state, month_start, scope.as_deref()).await?;
    let prev_start = store::month_start(month_start.pred_opt().unwrap_or(month_start));
    let previous = month(&ctx.state, prev_start, scope.as_deref()).await?;
    let last = if month_start == this_month {
        today
    } else {
        current.end.pred_opt().unwrap_or(current.end)
    };
    let days: Vec<NaiveDate> = month_start.iter_days().take_while(|d| *d <= last).collect();
    // The series are computed once per store version; their labels follow the model's names.
    let key = format!("cost {month_start} {last} {by_desc} {scope:?}");
    let series = ctx
        .state
        .reports
        .get(&ctx.state.usage, store::Reads::Cost, key, || async {
            Ok::<_, sqlx::Error>(cost_series(&current, month_start, days.len(), by_desc))
        })
        .await?;
    let (keys, values) = (&series.0, series.1.clone());
    let labels = keys
        .iter()
        .map(|k| {
            if k == OTHER {
                OTHER.to_owned()
            } else if by_desc {
                if k.is_empty() {
                    "(no description)".into()
                } else {
                    k.clone()
                }
            } else {
                names.workspace(k)
            }
        })
        .collect();
    Ok(CostData {
        month_start,
        days,
        labels,
        values,
        stale,
        current,
        previous,
    })
}

/// The month's spend per day for its largest groups (workspaces, or descriptions), "Other"
/// last: (group keys, `values[group][day]`).
fn cost_series(
    current: &Month,
    month_start: NaiveDate,
    days: usize,
    by_desc: bool,
) -> (Vec<String>, Vec<Vec<Decimal>>) {
    let mut sums: HashMap<&str, Decimal> = HashMap::new();
    for (_, ws, desc, amount) in &current.lines {
        *sums.entry(if by_desc { desc } else { ws }).or_default() += amount;
    }
    let mut by: Vec<(String, Decimal)> = sums
        .into_iter()
        .map(|(group, sum)| (group.to_owned(), sum))
        .collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keys = super::series_keys(
        &by.iter()
            .map(|(k, _)| (k.clone(), 0i64))
            .collect::<Vec<_>>(),
    );
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut values = vec![vec![Decimal::ZERO; days]; keys.len()];
    for (day, ws, desc, amount) in &current.lines {
        let g = if by_desc { desc } else { ws };
        let s = index.get(&**g).or_else(|| index.get(OTHER)).copied();
        let d = day.signed_duration_since(month_start).num_days() as usize;
        if let Some(s) = s {
            if d < days {
                values[s][d] += amount;
            }
        }
    }
    (keys, values)
}

pub async fn page(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let now = ctx.state.clock.now();
    let names = names(&ctx.state);
    if params.get("format").is_some_and(|f| f == "csv") {
        return csv(&ctx, &names, &params, now).await;
    }
    let data = load_cost(&ctx, &names, &params, now).await?;
    check_thresholds(&ctx.state, now).await?;
    let scope = super::scope(&ctx, &names);
    let settled = settled_before(&ctx.state, now);
    // A team lead's months hold only their workspaces' lines, so ORG_SCOPE sums exactly those.
    let today = now.date_naive();
    let total_spend = Spend::of(&data.current, ORG_SCOPE, settled, today);
    let prev_spend = Spend::of(&data.previous, ORG_SCOPE, settled, today);
    let this_month = store::month_start(now.date_naive()) == data.month_start;
    let today_idx = now.date_naive().day();
    let previous_same_days = this_month.then(|| {
        let cutoff = data.previous.start + chrono::Duration::days(today_idx as i64);
        dollars(data.previous.spent_before(ORG_SCOPE, cutoff))
    });
    let projection = this_month
        .then(|| total_spend.projected().map(dollars))
        .flatten();
    let projection_method = total_spend.method(ctx.state.config.usage_settle.as_secs() / 60);
    let projection_estimate = matches!(total_spend.basis(), Basis::Pace(_));
    let budgets = if this_month {
        budget_summaries(&ctx.state, ctx.workspace_scope()).await?
    } else {
        Vec::new()
    };
    // The banner states where spend is now (335.9 %), not the highest alert threshold it
    // crossed (100 %), which understates an overrun.
    let banners = budgets
        .iter()
        .filter(|b| !b.crossed.is_empty())
        .map(|b| {
            let text = format!(
                "{} has used {} of its monthly budget: {} spent of {}.",
                b.name, b.percent, b.spend, b.budget
            );
            (text, b.exceeded)
        })
        .collect();
    // The chart spans the whole month (days still to come are empty), so the 1st is one
    // narrow bar among 31, not one bar filling the width.
    let day_labels: Vec<String> = data
        .month_start
        .iter_days()
        .take_while(|d| *d < data.current.end)
        .map(|d| d.to_string())
        .collect();
    // By workspace (not by description), each series in its workspace's colour.
    let by_workspace = params.get("group_by").is_none_or(|g| g != "description");
    let snapshot = ctx.state.org.snapshot();
    let series: Vec<chart::Series> = data
        .labels
        .iter()
        .zip(&data.values)
        .map(|(name, vals)| chart::Series {
            color: crate::web::workspaces::chart_color(
                snapshot
                    .workspaces
                    .iter()
                    .find(|w| by_workspace && &w.name == name),
            ),
            name: name.clone(),
            values: vals
                .iter()
                .map(|v| v.to_string().parse::<f64>().unwrap_or(0.0) / 100.0)
                .collect(),
            labels: (0..day_labels.len())
                .map(|i| vals.get(i).map_or_else(|| "—".to_owned(), |v| dollars(*v)))
                .collect(),
        })
        .collect();
    let group_by = if params.get("group_by").is_some_and(|g| g == "description") {
        "description"
    } else {
        "workspace"
    };
    let mut chart = chart::build(
        &format!(
            "Daily cost by {group_by}, {}",
            data.month_start.format("%B %Y")
        ),
        &day_labels,
        &series,
        |v| format!("${}", super::compact(v)),
    );
    chart.unit = "US dollars".into();
    let rows = data
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| CostRow {
            day: crate::labels::calendar_day(*d),
            cells: data.values.iter().map(|s| dollars(s[i])).collect(),
            total: dollars(data.values.iter().map(|s| s[i]).sum()),
        })
        .collect();
    let mut months = Vec::new();
    let mut m = store::month_start(now.date_naive());
    for _ in 0..4 {
        months.push(Opt {
            value: month_key(m),
            label: m.format("%B %Y").to_string(),
            selected: m == data.month_start,
        });
        m = store::month_start(m.pred_opt().unwrap_or(m));
    }
    let page = CostPage {
        layout: ctx.layout("Cost", "cost").await,
        chart,
        group_by: group_by.to_owned(),
        months,
        month_label: data.month_start.format("%B %Y").to_string(),
        current_month: this_month,
        series: data.labels.clone(),
        rows,
        total: dollars(total_spend.total),
        previous_total: dollars(prev_spend.total),
        previous_same_days,
        projection,
        projection_method,
        projection_estimate,
        budgets,
        banners,
        stale: data.stale,
        csv_href: link("/cost.csv", &params, &[]),
        can_manage: ctx.can(Permission::ManageOrganization),
        scoped: scope.is_some(),
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

pub async fn csv_export(
    ctx: Ctx,
    Query(params): Query<BTreeMap<String, String>>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let names = names(&ctx.state);
    csv(&ctx, &names, &params, ctx.state.clock.now()).await
}

async fn csv(
    ctx: &Ctx,
    names: &Names,
    params: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> AppResult<Response> {
    let data = load_cost(ctx, names, params, now).await?;
    let (tx, rx) = mpsc::channel::<String>(64);
    let filename = format!("cost-{}.csv", month_key(data.month_start));
    tokio::spawn(async move {
        let mut head = vec!["day".to_owned()];
        head.extend(data.labels.iter().map(|l| crate::csv::text(l)));
        head.push("total_usd".into());
        if tx.send(head.join(",") + "\n").await.is_err() {
            return;
        }
        for (i, d) in data.days.iter().enumerate() {
            let mut cols = vec![d.to_string()];
            cols.extend(data.values.iter().map(|s| dollars_plain(s[i])));
            cols.push(dollars_plain(data.values.iter().map(|s| s[i]).sum()));
            if tx.send(cols.join(",") + "\n").await.is_err() {
                return;
            }
        }
    });
    Ok(super::csv::response(filename, rx))
}

// ---------------------------------------------------------------------------------------------
// Budgets

#[derive(Default)]
pub struct BudgetForm {
    pub scope: String,
    pub amount: String,
    pub thresholds: String,
}

#[derive(Template)]
#[template(path = "usage/budgets.html")]
struct BudgetsPage {
    layout: Layout,
    /// Each budget with Anthropic's spend limit of the same scope, where one is set.
    budgets: Vec<(BudgetSummary, Option<String>)>,
    scopes: Vec<Opt>,
    can_manage: bool,
    /// The cost views' navigation offers cost centers (as the cost page does: not when scoped).
    can_see_centers: bool,
    form: BudgetForm,
    form_error: Option<String>,
}

async fn render_budgets(
    ctx: &Ctx,
    form: BudgetForm,
    form_error: Option<String>,
) -> AppResult<Response> {
    let names = names(&ctx.state);
    let scope = super::scope(ctx, &names);
    // Anthropic's limits beside the budgets; if they cannot be read the Limits page says why.
    let limits = crate::service::limits::spend_limits(&ctx.state)
        .await
        .unwrap_or_default();
    let budgets = budget_summaries(&ctx.state, ctx.workspace_scope())
        .await?
        .into_iter()
        .map(|b| {
            let scope = if b.scope == ORG_SCOPE {
                Some(crate::anthropic::SpendLimitScope::Organization)
            } else {
                names.real_ws(&b.scope).map(|workspace_id| {
                    crate::anthropic::SpendLimitScope::Workspace { workspace_id }
                })
            };
            let limit = limits
                .iter()
                .find(|l| Some(&l.scope) == scope.as_ref() && l.period == "monthly")
                .and_then(crate::anthropic::SpendLimit::amount_cents)
                .map(dollars);
            (b, limit)
        })
        .collect();
    let mut scopes = Vec::new();
    if scope.is_none() {
        scopes.push(Opt {
            value: ORG_SCOPE.into(),
            label: store::ORG_SCOPE_LABEL.into(),
            selected: form.scope == ORG_SCOPE,
        });
    }
    if let Ok(list) = ctx.state.org.workspaces().await {
        for w in list.iter().filter(|w| !w.is_archived()) {
            let stored = names.stored_ws(&w.id);
            if scope.as_ref().is_some_and(|s| !s.contains(&stored)) {
                continue;
            }
            let value = scope_param(&stored);
            scopes.push(Opt {
                selected: form.scope == value,
                value,
                label: w.name.clone(),
            });
        }
    }
    let status = if form_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = BudgetsPage {
        layout: ctx.layout("Budgets", "cost").await,
        budgets,
        scopes,
        can_manage: ctx.can(Permission::ManageOrganization),
        can_see_centers: scope.is_none(),
        form,
        form_error,
    };
    crate::web::page::render(status, &page)
}

pub async fn budgets_page(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    render_budgets(
        &ctx,
        BudgetForm {
            scope: ORG_SCOPE.into(),
            thresholds: "50, 80, 100".into(),
            ..Default::default()
        },
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct BudgetInput {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    thresholds: String,
}

pub async fn set_budget(ctx: Ctx, Form(input): Form<BudgetInput>) -> AppResult<Response> {
    let form = BudgetForm {
        scope: input.scope.clone(),
        amount: input.amount.clone(),
        thresholds: input.thresholds.clone(),
    };
    let amount = match crate::money::parse_dollars(&input.amount, "the budget") {
        Ok(a) => a,
        Err(e) => return render_budgets(&ctx, form, Some(e)).await,
    };
    let set = match budgets::parse_thresholds(&input.thresholds) {
        Ok(thresholds) => {
            budgets::set(&ctx.state, &ctx.caller(), &input.scope, amount, thresholds).await
        }
        Err(refusal) => Err(refusal),
    };
    let name = match set {
        Ok(name) => name,
        Err(ServiceError::Invalid(message)) => {
            return render_budgets(&ctx, form, Some(message)).await
        }
        Err(other) => return Err(other.into()),
    };
    ctx.flash(
        "success",
        format!("Budget for {name} set to {} a month.", dollars(amount)),
    )
    .await;
    Ok(Redirect::to("/budgets").into_response())
}

#[derive(Deserialize)]
pub struct RemoveInput {
    #[serde(default)]
    scope: String,
}

pub async fn remove_budget(ctx: Ctx, Form(input): Form<RemoveInput>) -> AppResult<Response> {
    let name = budgets::remove(&ctx.state, &ctx.caller(), &input.scope).await?;
    ctx.flash(
        "success",
        format!("Budget for {name} removed. Its past alerts stay in the audit log."),
    )
    .await;
    Ok(Redirect::to("/budgets").into_response())
}
