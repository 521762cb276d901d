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
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::context::Layout;
use super::cost_people::{csv_download, months, refresh, Directory};
use super::error::{AppError, AppResult};
use super::extract::{Form, Query};
use super::members::render;
use super::routes::{Access::Needs, Routes};
use super::usage::{dollars_plain, month_key, Names};
use super::Ctx;
use crate::analytics_store::{self as analytics, Access, Select};
use crate::auth::Permission;
use crate::money::dollars;
use crate::service::budgets::{settled_before, Month, Spend};
use crate::service::cost_centers::{self as centers, Center, CenterError, Rule, RuleKind, Rules};
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

/// The key of what no center took, in [`Month`] scopes.
const UNALLOCATED: &str = "unallocated";

/// One cost line as attribution sees it.
struct CostLine {
    day: NaiveDate,
    workspace_id: String,
    api_key_id: String,
    /// The user it is attributed to, if a person.
    person: Option<String>,
    amount: Decimal,
}

/// Where the lines came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Per key and person (the analytics store).
    Analytics,
    /// Per workspace only (the cost report), where analytics cannot be read.
    Workspaces,
}

/// The month's cost lines: from the analytics store, or from the cost report when the
/// organization cannot read analytics.
async fn lines(
    ctx: &Ctx,
    from: NaiveDate,
    to: NaiveDate,
    source: Source,
) -> AppResult<Vec<CostLine>> {
    Ok(match source {
        Source::Analytics => analytics::lines(
            &ctx.state.db,
            &Select {
                from,
                to,
                actor_id: None,
                workspaces: None,
            },
        )
        .await?
        .into_iter()
        .map(|l| CostLine {
            day: l.day,
            person: (l.actor_type == "user_actor").then_some(l.actor_id),
            workspace_id: l.workspace_id,
            api_key_id: l.api_key_id,
            amount: l.amount,
        })
        .collect(),
        Source::Workspaces => {
            let names = Names::load(&ctx.state).await;
            crate::usage_store::cost_lines(&ctx.state.db, from, to, None)
                .await?
                .into_iter()
                .map(|(day, ws, _, amount)| CostLine {
                    day,
                    workspace_id: names.real_ws(&ws).unwrap_or(ws),
                    api_key_id: String::new(),
                    person: None,
                    amount,
                })
                .collect()
        }
    })
}

/// Each center's (and the unallocated) share of a month, as a [`Month`] whose scopes are
/// center ids (and [`UNALLOCATED`]), so budgets' projection applies unchanged. Computed once
/// per store version and set of rules; only the per-center days are kept, not the lines.
async fn attributed(
    ctx: &Ctx,
    start: NaiveDate,
    source: Source,
    rules: &[Rule],
) -> AppResult<Arc<Month>> {
    let key = format!("centers {start} {} {rules:?}", source == Source::Analytics);
    let index = Rules::new(rules);
    ctx.state
        .reports
        .get(&ctx.state.db, key, || async move {
            let end = next_month(start);
            let mut days: BTreeMap<(NaiveDate, String), Decimal> = BTreeMap::new();
            for l in lines(ctx, start, end, source).await? {
                let scope = index
                    .attribute(&l.api_key_id, &l.workspace_id, l.person.as_deref())
                    .map_or(UNALLOCATED.to_owned(), |(c, _)| c.to_string());
                *days.entry((l.day, scope)).or_default() += l.amount;
            }
            let lines = days
                .into_iter()
                .map(|((day, scope), amount)| (day, scope, String::new(), amount))
                .collect();
            Ok::<_, AppError>(Month::new(start, end, lines))
        })
        .await
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

/// Which lines to use, and the page's note when only workspaces can be used.
async fn source(ctx: &Ctx, refused: Option<String>) -> AppResult<(Source, Option<String>)> {
    let refused = match refused {
        Some(m) => Some(m),
        None => match analytics::access(&ctx.state.db).await? {
            Access::Unavailable(m) => Some(m),
            _ => None,
        },
    };
    Ok(match refused {
        Some(m) => (
            Source::Workspaces,
            Some(format!(
                "Anthropic does not let this organization read cost per person and API key (it answered: “{m}”), so only workspace assignments count here: every workspace's cost goes to its center or is unallocated."
            )),
        ),
        None => (Source::Analytics, None),
    })
}

async fn render_page(
    ctx: &Ctx,
    params: &BTreeMap<String, String>,
    typed: Typed,
) -> AppResult<Response> {
    let now: DateTime<Utc> = ctx.state.clock.now();
    let today = now.date_naive();
    let month = parse_month(params, today)?;
    let (stale, refused) = refresh(ctx, now).await?;
    let (source, workspace_only) = source(ctx, refused).await?;
    let list = centers::centers(&ctx.state.db).await?;
    let rule_list = centers::rules(&ctx.state.db).await?;
    let current = month == month_start(today);
    // This month (or the chosen one) and the three before it.
    let mut starts = vec![month];
    for _ in 0..3 {
        let last = *starts.last().unwrap_or(&month);
        starts.push(month_start(last.pred_opt().unwrap_or(last)));
    }
    let mut by_month = Vec::new();
    for start in &starts {
        by_month.push(attributed(ctx, *start, source, &rule_list).await?);
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
            .map(|l| (l.0, "all".to_owned(), String::new(), l.3))
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
        workspace_only,
        stale,
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
    let (_, refused) = refresh(&ctx, now).await?;
    let (source, _) = source(&ctx, refused).await?;
    let list = centers::centers(&ctx.state.db).await?;
    let rules = Rules::new(&centers::rules(&ctx.state.db).await?);
    let names: HashMap<i64, String> = list.into_iter().map(|c: Center| (c.id, c.name)).collect();
    let dir = Directory::of(&ctx.state.org.snapshot());
    type RowKey = (String, &'static str, &'static str, String);
    let mut rows: BTreeMap<RowKey, Decimal> = BTreeMap::new();
    for l in lines(&ctx, month, next_month(month), source).await? {
        let key: RowKey = match rules.attribute(&l.api_key_id, &l.workspace_id, l.person.as_deref())
        {
            Some((center, kind)) => {
                let matched = match kind {
                    RuleKind::Key => l.api_key_id.clone(),
                    RuleKind::Workspace => l.workspace_id.clone(),
                    RuleKind::Person => l.person.clone().unwrap_or_default(),
                };
                let name = names.get(&center).cloned().unwrap_or_default();
                (name, kind.as_str(), kind.as_str(), matched)
            }
            None => (
                String::new(),
                "unallocated",
                "workspace",
                l.workspace_id.clone(),
            ),
        };
        *rows.entry(key).or_default() += l.amount;
    }
    let key = month_key(month);
    let filename = format!("chargeback-{key}.csv");
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let head =
            "month,cost_center,rule,matched_type,matched_id,matched_name,cost_usd,amount_cents\n";
        if tx.send(head.to_owned()).await.is_err() {
            return;
        }
        // Centers by name, unallocated last.
        let mut ordered: Vec<_> = rows.into_iter().collect();
        ordered.sort_by(|a, b| {
            (a.0 .0.is_empty(), &a.0 .0, a.0 .1, b.1).cmp(&(
                b.0 .0.is_empty(),
                &b.0 .0,
                b.0 .1,
                a.1,
            ))
        });
        for ((center, rule, matched_type, matched), amount) in ordered {
            let kind = RuleKind::parse(matched_type).unwrap_or(RuleKind::Workspace);
            let line = format!(
                "{key},{},{rule},{matched_type},{},{},{},{}\n",
                crate::csv::text(&center),
                crate::csv::text(&matched),
                crate::csv::text(&target_name(&dir, kind, &matched)),
                dollars_plain(amount),
                amount.normalize()
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
                    error: capitalised(&refusal.to_string()),
                    ..typed
                },
            )
            .await
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
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
