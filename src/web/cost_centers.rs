//! Cost centers and chargeback (`/cost/centers`, `/cost/centers.csv`): each center's month to
//! date, projection and previous months, plus what no center took; owners and admins define
//! centers and assign API keys, workspaces and people to them.
//!
//! Attribution is `service::cost_centers::Rules::attribute` (key, then workspace, then
//! person) over the analytics store's daily lines. Where the organization cannot read cost
//! per person, the cost report's workspace lines are used and only workspace assignments
//! count; the page says so. Centers are organization-wide, so the pages are for those who
//! read the whole organization (not team leads).

use std::borrow::Borrow;
use std::collections::BTreeMap;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::context::Layout;
use super::cost_people::{csv_download, months};
use super::error::{AppError, AppResult};
use super::extract::{Form, Query};
use super::page::render;
use super::routes::{Access::Needs, Routes};
use super::usage::{dollars_plain, month_key};
use super::Ctx;
use crate::analytics_store as analytics;
use crate::auth::Permission;
use crate::money::dollars;
use crate::org::names::Directory;
use crate::service::budgets::{settled_before, Month, Spend};
use crate::service::cost;
use crate::service::cost_centers::{
    self as centers, CenterError, Rule, RuleKind, Source, UNALLOCATED,
};
use crate::usage_store::{month_start, next_month};

pub fn routes() -> Routes {
    use Permission::*;
    Routes::new()
        .get("/cost/centers", Needs(ViewDirectory), page)
        .get("/cost/centers.csv", Needs(ViewDirectory), csv)
        .post("/cost/centers", Needs(ManageOrganization), create)
        .post(
            "/cost/centers/{id}/rename",
            Needs(ManageOrganization),
            rename,
        )
        .post(
            "/cost/centers/{id}/delete",
            Needs(ManageOrganization),
            delete,
        )
        .post(
            "/cost/centers/{id}/assign",
            Needs(ManageOrganization),
            assign,
        )
        .post(
            "/cost/centers/unassign",
            Needs(ManageOrganization),
            unassign,
        )
}

pub struct CenterRow {
    pub id: Option<i64>,
    pub name: String,
    pub total: String,
    pub share: String,
    pub projected: Option<String>,
    pub previous: Vec<String>,
    pub assignments: Vec<Assignment>,
}

pub struct Assignment {
    pub kind: &'static str,
    pub kind_value: &'static str,
    pub target_id: String,
    pub name: String,
}

/// A form to show again as typed, with why it was refused.
#[derive(Default)]
pub struct Typed {
    /// The center the form belongs to (`None`: the create form).
    pub center: Option<i64>,
    pub action: &'static str,
    pub kind: String,
    pub value: String,
    pub error: String,
}

impl Typed {
    /// Whether this is the form `action` of center `center` (`None`: the create form).
    /// (Templates pass a center's id by reference, the create form `None` by value.)
    pub fn is(&self, action: &str, center: impl Borrow<Option<i64>>) -> bool {
        self.action == action && self.center == *center.borrow()
    }

    /// Whether the assign form of `center` was sent with this kind chosen.
    pub fn chose(&self, center: impl Borrow<Option<i64>>, kind: &str) -> bool {
        self.is("assign", center) && self.kind == kind
    }

    /// What was typed there, or `default`.
    pub fn value_or<'a>(
        &'a self,
        action: &str,
        center: impl Borrow<Option<i64>>,
        default: &'a str,
    ) -> &'a str {
        if self.is(action, center) {
            &self.value
        } else {
            default
        }
    }
}

#[derive(Template)]
#[template(path = "cost/centers.html")]
struct CentersPage {
    layout: Layout,
    months: Vec<super::usage::Opt>,
    month_label: String,
    current: bool,
    previous_labels: Vec<String>,
    rows: Vec<CenterRow>,
    unallocated: CenterRow,
    total: String,
    total_projected: Option<String>,
    total_previous: Vec<String>,
    workspace_only: Option<String>,
    stale: Option<String>,
    csv_href: String,
    can_manage: bool,
    can_see_centers: bool,
    workspaces: Vec<String>,
    typed: Typed,
}

fn parse_month(params: &BTreeMap<String, String>, today: NaiveDate) -> AppResult<NaiveDate> {
    let this_month = month_start(today);
    let m = match params
        .get("month")
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
    {
        None => return Ok(this_month),
        Some(m) => crate::web::present::month(m).map_err(AppError::BadRequest)?,
    };
    if m < analytics::epoch() || m > this_month {
        return Err(AppError::BadRequest(format!(
            "Choose a month between {} and {}.",
            analytics::epoch().format("%B %Y"),
            this_month.format("%B %Y")
        )));
    }
    Ok(m)
}

/// The page's note when only workspaces can be used.
fn workspace_only(source: &Source) -> Option<String> {
    match source {
        Source::Analytics => None,
        Source::Workspaces { refused } => Some(format!(
            "Anthropic does not let this organization read cost per person and API key (it answered: “{refused}”), so only workspace assignments count here: every workspace's cost goes to its center or is unallocated."
        )),
    }
}

async fn render_page(
    ctx: &Ctx,
    params: &BTreeMap<String, String>,
    typed: Typed,
) -> AppResult<Response> {
    let now: DateTime<Utc> = ctx.state.clock.now();
    let today = now.date_naive();
    let month = parse_month(params, today)?;
    let fresh = cost::refresh(&ctx.state, now).await?;
    let source = centers::source(&ctx.state, fresh.refused).await?;
    let list = centers::centers(&ctx.state).await?;
    let rule_list = centers::rules(&ctx.state).await?;
    let current = month == month_start(today);
    // This month (or the chosen one) and the three before it.
    let mut starts = vec![month];
    for _ in 0..3 {
        let last = *starts.last().unwrap_or(&month);
        starts.push(month_start(last.pred_opt().unwrap_or(last)));
    }
    let mut by_month = Vec::new();
    for start in &starts {
        by_month.push(centers::attributed(&ctx.state, *start, &source, &rule_list).await?);
    }
    let attributed = by_month;
    let settled = settled_before(&ctx.state, now);
    let spend = |m: &Month, scope: &str| Spend::of(m, scope, settled, today);
    let month_total = |m: &Month| -> Decimal { m.lines.iter().map(|l| l.3).sum() };
    let total = month_total(&attributed[0]);
    let dir = Directory::of(&ctx.state.org.snapshot());
    let row = |id: Option<i64>, name: String, scope: &str, assignments: Vec<Assignment>| {
        let s = spend(&attributed[0], scope);
        CenterRow {
            id,
            name,
            total: dollars(s.total),
            share: share(s.total, total),
            projected: current.then(|| s.projected().map(dollars)).flatten(),
            previous: attributed[1..]
                .iter()
                .map(|m| dollars(spend(m, scope).total))
                .collect(),
            assignments,
        }
    };
    let rows = list
        .iter()
        .map(|c| {
            let assignments = rule_list
                .iter()
                .filter(|r| r.center_id == c.id)
                .map(|r| assignment(&dir, r))
                .collect();
            row(Some(c.id), c.name.clone(), &c.id.to_string(), assignments)
        })
        .collect();
    let unallocated = row(None, "Unallocated".into(), UNALLOCATED, Vec::new());
    let whole = Month::new(
        month,
        next_month(month),
        attributed[0]
            .lines
            .iter()
            .map(|l| (l.0, "all".into(), "".into(), l.3))
            .collect(),
    );
    let total_projected = current
        .then(|| spend(&whole, "all").projected().map(dollars))
        .flatten();
    let status = if typed.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut workspaces: Vec<String> = ctx
        .state
        .org
        .snapshot()
        .workspaces
        .iter()
        .filter(|w| w.archived_at.is_none())
        .map(|w| w.name.clone())
        .collect();
    workspaces.sort();
    let page = CentersPage {
        layout: ctx.layout("Cost centers", "cost").await,
        months: months(today, Some(month)),
        month_label: if current {
            format!("{} to date", month.format("%B %Y"))
        } else {
            month.format("%B %Y").to_string()
        },
        current,
        previous_labels: starts[1..]
            .iter()
            .map(|m| m.format("%B %Y").to_string())
            .collect(),
        rows,
        unallocated,
        total: dollars(total),
        total_projected,
        total_previous: attributed[1..]
            .iter()
            .map(|m| dollars(month_total(m)))
            .collect(),
        workspace_only: workspace_only(&source),
        stale: fresh.stale,
        csv_href: format!("/cost/centers.csv?month={}", month_key(month)),
        can_manage: ctx.can(Permission::ManageOrganization),
        can_see_centers: true,
        workspaces,
        typed,
    };
    render(status, &page)
}

fn share(part: Decimal, total: Decimal) -> String {
    if total.is_zero() {
        return "—".into();
    }
    format!("{}%", (part * Decimal::from(100) / total).round_dp(1))
}

fn assignment(dir: &Directory, r: &Rule) -> Assignment {
    Assignment {
        kind: r.kind.label(),
        kind_value: r.kind.as_str(),
        name: target_name(dir, r.kind, &r.target_id),
        target_id: r.target_id.clone(),
    }
}

fn target_name(dir: &Directory, kind: RuleKind, id: &str) -> String {
    match kind {
        RuleKind::Key => dir.key(id),
        RuleKind::Workspace => dir.workspace(id),
        RuleKind::Person => match dir.person(id) {
            Some((name, email, _)) if !name.trim().is_empty() => format!("{name} ({email})"),
            Some((_, email, _)) => email.to_owned(),
            None => id.to_owned(),
        },
    }
}

pub async fn page(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    render_page(&ctx, &params, Typed::default()).await
}

/// `/cost/centers.csv?month=YYYY-MM`: the month's chargeback, one row per center, rule and
/// what the rule matched (unallocated cost by workspace), with the exact amount in cents.
pub async fn csv(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    let now = ctx.state.clock.now();
    let month = parse_month(&params, now.date_naive())?;
    let fresh = cost::refresh(&ctx.state, now).await?;
    let source = centers::source(&ctx.state, fresh.refused).await?;
    let charges = centers::chargeback(&ctx.state, month, &source).await?;
    let dir = Directory::of(&ctx.state.org.snapshot());
    let key = month_key(month);
    let filename = format!("chargeback-{key}.csv");
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let head =
            "month,cost_center,rule,matched_type,matched_id,matched_name,cost_usd,amount_cents\n";
        if tx.send(head.to_owned()).await.is_err() {
            return;
        }
        for charge in charges {
            let (kind, matched) = &charge.matched;
            let line = format!(
                "{key},{},{},{},{},{},{},{}\n",
                crate::csv::text(charge.center.as_deref().unwrap_or_default()),
                charge.rule.map_or("unallocated", RuleKind::as_str),
                kind.as_str(),
                crate::csv::text(matched),
                crate::csv::text(&target_name(&dir, *kind, matched)),
                dollars_plain(charge.amount),
                charge.amount.normalize()
            );
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(csv_download(filename, rx))
}

// ---------------------------------------------------------------------------------------------
// Changes

#[derive(Deserialize)]
pub struct NameInput {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub struct AssignInput {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    target: String,
}

#[derive(Deserialize)]
pub struct UnassignInput {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    target_id: String,
}

/// The page again, with the form as typed and why it was refused (422).
async fn refuse(ctx: &Ctx, typed: Typed) -> AppResult<Response> {
    render_page(ctx, &BTreeMap::new(), typed).await
}

fn done(message: String) -> (String, Response) {
    (message, Redirect::to("/cost/centers").into_response())
}

async fn finish(
    ctx: &Ctx,
    outcome: Result<(), CenterError>,
    ok: String,
    typed: Typed,
) -> AppResult<Response> {
    match outcome {
        Ok(()) => {
            let (message, response) = done(ok);
            ctx.flash("success", message).await;
            Ok(response)
        }
        Err(CenterError::Database(e)) => Err(e.into()),
        Err(refusal) => {
            refuse(
                ctx,
                Typed {
                    error: crate::labels::capitalised(&refusal.to_string()) + ".",
                    ..typed
                },
            )
            .await
        }
    }
}

pub async fn create(ctx: Ctx, Form(input): Form<NameInput>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let typed = Typed {
        center: None,
        action: "create",
        value: input.name.clone(),
        ..Default::default()
    };
    let name = match centers::check_name(&input.name) {
        Ok(n) => n,
        Err(error) => return refuse(&ctx, Typed { error, ..typed }).await,
    };
    let outcome = centers::create(&ctx.state, &ctx.caller(), &name).await?;
    finish(
        &ctx,
        outcome.map(|_| ()),
        format!("Cost center {name} created. Assign workspaces, API keys or people to it."),
        typed,
    )
    .await
}

pub async fn rename(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(input): Form<NameInput>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let typed = Typed {
        center: Some(id),
        action: "rename",
        value: input.name.clone(),
        ..Default::default()
    };
    let name = match centers::check_name(&input.name) {
        Ok(n) => n,
        Err(error) => return refuse(&ctx, Typed { error, ..typed }).await,
    };
    let outcome = centers::rename(&ctx.state, &ctx.caller(), id, &name).await?;
    finish(
        &ctx,
        outcome,
        format!("Cost center renamed to {name}."),
        typed,
    )
    .await
}

pub async fn delete(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let outcome = centers::delete(&ctx.state, &ctx.caller(), id).await?;
    finish(
        &ctx,
        outcome,
        "Cost center deleted. What it covered is unallocated now, unless another rule takes it."
            .into(),
        Typed::default(),
    )
    .await
}

pub async fn assign(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(input): Form<AssignInput>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let typed = Typed {
        center: Some(id),
        action: "assign",
        kind: input.kind.clone(),
        value: input.target.clone(),
        ..Default::default()
    };
    let Some(kind) = RuleKind::parse(&input.kind) else {
        let error = "Choose what to assign: a workspace, an API key or a person.".to_owned();
        return refuse(&ctx, Typed { error, ..typed }).await;
    };
    let target = match centers::resolve(&ctx.state, kind, &input.target) {
        Ok(t) => t,
        Err(error) => return refuse(&ctx, Typed { error, ..typed }).await,
    };
    let outcome = centers::assign(&ctx.state, &ctx.caller(), id, &target).await?;
    let message = format!("{} {} assigned.", kind.label(), target.label);
    finish(&ctx, outcome, message, typed).await
}

pub async fn unassign(ctx: Ctx, Form(input): Form<UnassignInput>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let kind = RuleKind::parse(&input.kind).ok_or(AppError::NotFound)?;
    let dir = Directory::of(&ctx.state.org.snapshot());
    let label = target_name(&dir, kind, &input.target_id);
    let outcome =
        centers::unassign(&ctx.state, &ctx.caller(), kind, &input.target_id, &label).await?;
    finish(
        &ctx,
        outcome,
        format!("{} {label} taken out of its cost center.", kind.label()),
        Typed::default(),
    )
    .await
}
