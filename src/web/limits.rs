//! Limits (`/limits`): Anthropic's monthly spend limits for the organization and each
//! workspace, with this month's spend beside them, and each workspace's rate limits
//! (`/limits/workspaces/{id}`). Unlike Orgkeeper's budgets, which only alert, these stop traffic
//! at Anthropic. Changes go through `service::limits`.

use std::collections::BTreeMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::present::Pager;
use super::usage::{names, Opt};
use super::Ctx;
use crate::anthropic::{ApiError, SpendLimit, SpendLimitScope, Workspace};
use crate::auth::Permission;
use crate::money::dollars;
use crate::service::budgets::{month, settled_before, Spend};
use crate::service::limits::{self as service, LimitScope, RateLimitTarget, CONSOLE_LIMITS_URL};
use crate::service::ServiceError;
use crate::usage_store::{self as store, ORG_SCOPE};
use crate::web::extract::{Form, Path};
use crate::web::page::{failure_status, render};

/// One scope's row: Anthropic's limit and Orgkeeper's budget side by side.
pub struct LimitRow {
    /// `organization` or the workspace id (form value).
    pub key: String,
    pub name: String,
    pub workspace_id: Option<String>,
    pub limit: Option<String>,
    /// The limit as typed in the form (dollars, no sign).
    pub limit_plain: String,
    pub spend: String,
    pub percent: Option<String>,
    pub reached: bool,
    pub budget: Option<String>,
}

#[derive(Default)]
pub struct SpendForm {
    pub scope: String,
    pub amount: String,
}

#[derive(Default)]
pub struct RequestForm {
    pub workspace: String,
    pub amount: String,
    pub reason: String,
}

/// What the forms of the page hold: as typed, with the error that sent them back.
#[derive(Default)]
pub struct Forms {
    pub spend: SpendForm,
    pub spend_error: Option<String>,
    pub request: RequestForm,
    pub request_error: Option<String>,
    /// A decision sent back: (request id, reason typed, error).
    pub decision: Option<(i64, String, String)>,
    /// A spend limit that needs a confirmation before it is saved.
    pub question: Option<SpendQuestion>,
    /// The page of the limits table asked for (the first when 0).
    pub page: usize,
}

/// The confirmation a spend limit needs, as the page asks it.
pub struct SpendQuestion {
    pub scope: String,
    pub name: String,
    pub amount: String,
    /// The amount in cents, which the confirmation sends back.
    pub amount_cents: String,
    pub spent: String,
    pub before: Option<String>,
    pub reasons: Vec<String>,
}

/// A limit request as the page shows it.
pub struct RequestView {
    pub id: i64,
    pub workspace_name: String,
    pub amount: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    pub state: String,
    pub decided_by: String,
    pub decided_at: String,
    pub note: String,
    /// The workspace's spend limit now, for the approver.
    pub current: Option<String>,
    /// A deny reason sent back with its error.
    pub typed: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "limits/index.html")]
struct LimitsPage {
    layout: Layout,
    rows: Vec<LimitRow>,
    pager: Pager,
    /// Above `MOST_CHOICES` workspaces, the spend form's place is typed (a name, an id or
    /// "organization"), holding the current one.
    scope_typed: Option<String>,
    /// Anthropic's own cap from the usage tier, when listed.
    usage_tier: Option<String>,
    /// Set when the organization cannot use spend limits through the Admin API.
    no_access: Option<&'static str>,
    /// Any other failure to read the limits, in plain words with its request id.
    load_error: Option<String>,
    /// Set when this month's spend is stored data or could not be fetched.
    spend_note: Option<String>,
    console_url: &'static str,
    can_manage: bool,
    scopes: Vec<Opt>,
    form: SpendForm,
    form_error: Option<String>,
    question: Option<SpendQuestion>,
    /// People who cannot set limits ask for a higher one on a workspace they can see.
    can_request: bool,
    request_scopes: Vec<Opt>,
    request_form: RequestForm,
    request_error: Option<String>,
    pending: Vec<RequestView>,
    mine: Vec<RequestView>,
}

fn plain(cents: Decimal) -> String {
    (cents / Decimal::from(100)).normalize().to_string()
}

/// The workspaces this person may see, not archived, default first as the API lists them.
async fn visible_workspaces(ctx: &Ctx) -> Result<Vec<Workspace>, ApiError> {
    let list = ctx.state.org.workspaces().await?;
    Ok(list
        .iter()
        .filter(|w| !w.is_archived() && ctx.may_read_workspace(&w.id))
        .cloned()
        .collect())
}

async fn render_page(ctx: &Ctx, forms: Forms) -> AppResult<Response> {
    let Forms {
        spend: form,
        spend_error: form_error,
        request: request_form,
        request_error,
        decision,
        question,
        page: requested_page,
    } = forms;
    let workspaces = visible_workspaces(ctx).await?;
    let org_visible = ctx.workspace_scope().is_none();
    let (limits, no_access, load_error) = match service::spend_limits(&ctx.state).await {
        Ok(limits) => (limits, None, None),
        Err(e) => match service::access_refusal(&e) {
            Some(why) => (Vec::new(), Some(why), None),
            None => (
                Vec::new(),
                None,
                Some(format!(
                    "Anthropic's spend limits could not be loaded. {}",
                    e.user_message()
                )),
            ),
        },
    };
    // This month's spend, from the local cost store brought up to date as the cost page does.
    let now = ctx.state.clock.now();
    let spend_note = super::usage::refresh_or_stale(&ctx.state, store::Kind::CostDay, now)
        .await
        .unwrap_or_else(|e| {
            Some(format!(
                "This month's spend could not be loaded, so it reads $0.00. {}",
                match e {
                    AppError::Upstream(e) => e.user_message(),
                    other => other.to_string(),
                }
            ))
        });
    let names = names(&ctx.state);
    let start = store::month_start(now.date_naive());
    let m = month(&ctx.state, start, None).await?;
    let settled = settled_before(&ctx.state, now);
    let budgets = ctx.state.usage.budgets().await?;
    let mut scopes_list: Vec<(LimitScope, String)> = Vec::new();
    if org_visible {
        scopes_list.push((LimitScope::Organization, ORG_SCOPE.to_owned()));
    }
    for w in &workspaces {
        scopes_list.push((
            LimitScope::Workspace {
                id: w.id.clone(),
                name: w.name.clone(),
            },
            names.stored_ws(&w.id),
        ));
    }
    // Above `MOST_CHOICES` places the spend form's place is typed, not chosen from a list.
    let typed_place = scopes_list.len() > crate::web::present::MOST_CHOICES;
    let mut rows = Vec::new();
    let mut scopes = Vec::new();
    for (scope, stored) in scopes_list {
        let spend = Spend::of(&m, &stored, settled, now.date_naive()).total;
        let limit = service::limit_of(&limits, &scope).and_then(SpendLimit::amount_cents);
        let percent = limit
            .and_then(|l| crate::service::budgets::percent_of(spend, l))
            .map(crate::money::percent);
        let name = match &scope {
            LimitScope::Organization => "Whole organization".to_owned(),
            LimitScope::Workspace { name, .. } => name.clone(),
        };
        if !typed_place {
            scopes.push(Opt {
                value: scope.key().to_owned(),
                label: format!(
                    "{name} — spent {} this month, {}",
                    dollars(spend),
                    match limit {
                        Some(l) => format!("limit {}", dollars(l)),
                        None => "no limit".to_owned(),
                    }
                ),
                selected: form.scope == scope.key(),
            });
        }
        rows.push(LimitRow {
            key: scope.key().to_owned(),
            workspace_id: match &scope {
                LimitScope::Workspace { id, .. } => Some(id.clone()),
                LimitScope::Organization => None,
            },
            name,
            limit: limit.map(dollars),
            limit_plain: limit.map(plain).unwrap_or_default(),
            spend: dollars(spend),
            percent,
            reached: limit.is_some_and(|l| spend >= l),
            budget: budgets
                .iter()
                .find(|b| b.scope == stored)
                .map(|b| dollars(b.amount_cents)),
        });
    }
    let usage_tier = limits
        .iter()
        .find(|l| l.scope == SpendLimitScope::UsageTier)
        .and_then(SpendLimit::amount_cents)
        .filter(|_| org_visible)
        .map(dollars);
    let can_manage = ctx.can(Permission::ManageOrganization);
    let current_of = |workspace_id: &str| {
        rows.iter()
            .find(|r| r.workspace_id.as_deref() == Some(workspace_id))
            .and_then(|r| r.limit.clone())
    };
    let view = |r: crate::service::limits::LimitRequest| {
        let (typed, error) = match &decision {
            Some((id, typed, error)) if *id == r.id => (typed.clone(), Some(error.clone())),
            _ => (String::new(), None),
        };
        RequestView {
            current: current_of(&r.workspace_id),
            id: r.id,
            amount: dollars(r.amount()),
            workspace_name: r.workspace_name,
            reason: r.reason,
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            state: r.state,
            decided_by: r.decided_by.unwrap_or_default(),
            decided_at: r.decided_at.unwrap_or_default(),
            note: r.decision_note.unwrap_or_default(),
            typed,
            error,
        }
    };
    let pending = if can_manage {
        service::pending_requests(&ctx.state)
            .await?
            .into_iter()
            .map(view)
            .collect()
    } else {
        Vec::new()
    };
    let mine = service::requests_of(&ctx.state, ctx.account.id)
        .await?
        .into_iter()
        .map(view)
        .collect();
    let request_scopes = workspaces
        .iter()
        .map(|w| Opt {
            value: w.id.clone(),
            label: w.name.clone(),
            selected: request_form.workspace == w.id,
        })
        .collect();
    // A large organization's limits are pages of the table, and its spend-limit form takes a
    // typed workspace instead of a choice among every one of them.
    let pager = Pager::new(rows.len(), requested_page, |page| {
        crate::web::present::link("/limits", &[("page", &page.to_string())])
    });
    let rows: Vec<LimitRow> = rows.drain(pager.range()).collect();
    let scope_typed = typed_place.then(|| form.scope.clone());
    let status = if form_error.is_some() || request_error.is_some() || decision.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = LimitsPage {
        can_request: !can_manage && !workspaces.is_empty(),
        request_scopes,
        request_form,
        request_error,
        pending,
        mine,
        layout: ctx.layout("Limits", "limits").await,
        rows,
        pager,
        scope_typed,
        usage_tier,
        no_access,
        load_error,
        spend_note,
        console_url: CONSOLE_LIMITS_URL,
        can_manage,
        scopes,
        form,
        form_error,
        question,
    };
    render(status, &page)
}

pub async fn index(
    ctx: Ctx,
    axum::extract::Query(params): axum::extract::Query<BTreeMap<String, String>>,
) -> AppResult<Response> {
    render_page(
        &ctx,
        Forms {
            spend: SpendForm {
                scope: "organization".into(),
                ..Default::default()
            },
            page: params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1),
            ..Default::default()
        },
    )
    .await
}

/// The page again with the spend form as typed and why it was sent back.
async fn spend_again(ctx: &Ctx, spend: SpendForm, error: String) -> AppResult<Response> {
    render_page(
        ctx,
        Forms {
            spend,
            spend_error: Some(error),
            ..Default::default()
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct SpendInput {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    amount: String,
    /// The amount in cents the person confirmed after seeing what is at stake.
    #[serde(default)]
    confirm: String,
}

/// The scope a form names, if it is the organization or a workspace this person may see.
async fn scope_from(ctx: &Ctx, key: &str) -> AppResult<Option<LimitScope>> {
    if key == "organization" || key.trim().eq_ignore_ascii_case("whole organization") {
        return Ok(ctx
            .workspace_scope()
            .is_none()
            .then_some(LimitScope::Organization));
    }
    // Where the workspace is typed (too many to list), its name is as good as its id.
    let key = key.trim();
    Ok(visible_workspaces(ctx)
        .await?
        .into_iter()
        .find(|w| w.id == key || w.name.eq_ignore_ascii_case(key))
        .map(|w| LimitScope::Workspace {
            id: w.id,
            name: w.name,
        }))
}

/// The limit currently set for `scope`; `Err` is a message for the person.
async fn current(ctx: &Ctx, scope: &LimitScope) -> Result<Option<SpendLimit>, String> {
    match service::spend_limits(&ctx.state).await {
        Ok(list) => Ok(service::limit_of(&list, scope).cloned()),
        Err(e) => Err(failure(&e, "Nothing was changed.")),
    }
}

/// An Admin API failure in plain words: the access notice, or the error with its request id.
fn failure(e: &ApiError, outcome: &str) -> String {
    match service::access_refusal(e) {
        Some(why) => format!("{outcome} {why}"),
        None => format!("{outcome} {}", e.user_message()),
    }
}

pub async fn set(ctx: Ctx, Form(input): Form<SpendInput>) -> AppResult<Response> {
    let form = SpendForm {
        scope: input.scope.clone(),
        amount: input.amount.clone(),
    };
    let Some(scope) = scope_from(&ctx, &input.scope).await? else {
        return spend_again(&ctx, form, "Choose the organization or a workspace.".into()).await;
    };
    let amount = match crate::money::parse_dollars(&input.amount, "the monthly limit") {
        Ok(a) => a,
        Err(e) => return spend_again(&ctx, form, e).await,
    };
    let before = match current(&ctx, &scope).await {
        Ok(b) => b,
        Err(e) => return spend_again(&ctx, form, e).await,
    };
    let confirmed = input.confirm.trim().parse::<Decimal>().ok();
    let result = match service::save_spend_limit(
        &ctx.state,
        &ctx.caller(),
        &scope,
        before.as_ref(),
        amount,
        confirmed,
    )
    .await?
    {
        service::SpendLimitSave::Done(result) => result,
        service::SpendLimitSave::Confirm(stakes) => {
            let name = match &scope {
                LimitScope::Organization => "The whole organization".to_owned(),
                LimitScope::Workspace { name, .. } => name.clone(),
            };
            let question = SpendQuestion {
                scope: scope.key().to_owned(),
                name,
                amount: dollars(amount),
                amount_cents: amount.normalize().to_string(),
                spent: dollars(stakes.spent_cents),
                before: stakes.before_cents.map(dollars),
                reasons: stakes.reasons,
            };
            return render_page(
                &ctx,
                Forms {
                    spend: form,
                    question: Some(question),
                    ..Default::default()
                },
            )
            .await;
        }
    };
    match result {
        Ok(_) => {
            let what = if before.is_some() { "changed" } else { "set" };
            ctx.flash(
                "success",
                format!(
                    "Spend limit for {} {what} to {} a month. Anthropic stops requests once this month's spend reaches it.",
                    scope.name(),
                    dollars(amount)
                ),
            )
            .await;
            Ok(Redirect::to("/limits").into_response())
        }
        Err(e) => {
            let message = failure(&e, "The spend limit was not changed.");
            let mut response = spend_again(&ctx, form, message).await?;
            *response.status_mut() = failure_status(&e);
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
pub struct RemoveInput {
    #[serde(default)]
    scope: String,
}

pub async fn remove(ctx: Ctx, Form(input): Form<RemoveInput>) -> AppResult<Response> {
    let Some(scope) = scope_from(&ctx, &input.scope).await? else {
        return Err(AppError::NotFound);
    };
    let limit = match current(&ctx, &scope).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            ctx.flash("info", format!("{} has no spend limit.", scope.name()))
                .await;
            return Ok(Redirect::to("/limits").into_response());
        }
        Err(e) => {
            return spend_again(&ctx, SpendForm::default(), e).await;
        }
    };
    match service::remove_spend_limit(&ctx.state, &ctx.caller(), &scope, &limit).await? {
        Ok(_) => {
            ctx.flash(
                "success",
                format!(
                    "Spend limit for {} removed. Its spend is now capped only by the other limits that apply.",
                    scope.name()
                ),
            )
            .await;
            Ok(Redirect::to("/limits").into_response())
        }
        Err(e) => {
            let message = failure(&e, "The spend limit was not removed.");
            let mut response = spend_again(&ctx, SpendForm::default(), message).await?;
            *response.status_mut() = failure_status(&e);
            Ok(response)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests for a higher limit

#[derive(Deserialize)]
pub struct RequestInput {
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

pub async fn request(ctx: Ctx, Form(input): Form<RequestInput>) -> AppResult<Response> {
    let form = RequestForm {
        workspace: input.workspace.clone(),
        amount: input.amount.clone(),
        reason: input.reason.clone(),
    };
    let again = |form: RequestForm, error: String| async {
        render_page(
            &ctx,
            Forms {
                request: form,
                request_error: Some(error),
                ..Default::default()
            },
        )
        .await
    };
    let Some(w) = visible_workspaces(&ctx)
        .await?
        .into_iter()
        .find(|w| w.id == input.workspace)
    else {
        return again(form, "Choose one of your workspaces.".into()).await;
    };
    let amount = match crate::money::parse_dollars(&input.amount, "the monthly limit") {
        Ok(a) => a,
        Err(e) => return again(form, e).await,
    };
    let asked = service::request_increase(
        &ctx.state,
        &ctx.caller(),
        &w.id,
        &w.name,
        amount,
        &input.reason,
    )
    .await;
    let asked = match asked {
        Err(ServiceError::Invalid(message)) => return again(form, message).await,
        other => other?,
    };
    match asked {
        Ok(r) => {
            ctx.flash(
                "success",
                format!(
                    "Your request for a {} monthly limit on {} was sent to the organization's owners and admins. Its decision will show here.",
                    dollars(r.amount()),
                    r.workspace_name
                ),
            )
            .await;
            Ok(Redirect::to("/limits").into_response())
        }
        Err(refusal) => again(form, format!("The request was not sent: {refusal}.")).await,
    }
}

async fn pending_request(ctx: &Ctx, id: i64) -> AppResult<service::LimitRequest> {
    service::find_request(&ctx.state, id)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
pub struct DecisionInput {
    #[serde(default)]
    reason: String,
}

fn decided(ctx: &Ctx, message: String) -> impl std::future::Future<Output = ()> + '_ {
    ctx.flash("success", message)
}

pub async fn approve(ctx: Ctx, Path(id): Path<i64>) -> AppResult<Response> {
    let r = pending_request(&ctx, id).await?;
    match service::approve_request(&ctx.state, &ctx.caller(), &r, None).await? {
        service::Decision::Done(r) => {
            decided(
                &ctx,
                format!(
                    "Approved: {} now has a monthly spend limit of {}. {} sees the decision on the Limits page.",
                    r.workspace_name,
                    dollars(r.amount()),
                    r.requested_by
                ),
            )
            .await;
            Ok(Redirect::to("/limits").into_response())
        }
        service::Decision::Refused(refusal) => {
            ctx.flash("error", format!("Nothing was changed: {refusal}."))
                .await;
            Ok(Redirect::to("/limits").into_response())
        }
        service::Decision::Upstream(e) => {
            let message = failure(
                &e,
                "The request was not approved and stays open: the spend limit could not be set.",
            );
            let mut response = render_page(
                &ctx,
                Forms {
                    decision: Some((r.id, String::new(), message)),
                    ..Default::default()
                },
            )
            .await?;
            *response.status_mut() = failure_status(&e);
            Ok(response)
        }
    }
}

pub async fn deny(
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(input): Form<DecisionInput>,
) -> AppResult<Response> {
    let r = pending_request(&ctx, id).await?;
    let denied = match service::deny_request(&ctx.state, &ctx.caller(), &r, &input.reason).await {
        Err(ServiceError::Invalid(error)) => {
            return render_page(
                &ctx,
                Forms {
                    decision: Some((r.id, input.reason.clone(), error)),
                    ..Default::default()
                },
            )
            .await;
        }
        other => other?,
    };
    match denied {
        service::Decision::Done(r) => {
            decided(
                &ctx,
                format!(
                    "Denied {}'s request for {}. They see your reason on the Limits page.",
                    r.requested_by, r.workspace_name
                ),
            )
            .await;
        }
        service::Decision::Refused(refusal) => {
            ctx.flash("error", format!("Nothing was changed: {refusal}."))
                .await;
        }
        service::Decision::Upstream(e) => {
            ctx.flash("error", e.user_message()).await;
        }
    }
    Ok(Redirect::to("/limits").into_response())
}

// ---------------------------------------------------------------------------------------------
// Workspace rate limits

/// One limiter of one group: the organization's value, the override, and what applies.
pub struct RateRow {
    pub rate_limit_id: String,
    pub group: String,
    pub kind: String,
    pub label: String,
    pub org_value: Option<String>,
    pub override_value: Option<String>,
    pub override_plain: String,
    pub applies: String,
    /// The override is above the organization's value, so it has no effect.
    pub override_ignored: bool,
    /// This row's form: the value typed and its error.
    pub typed: Option<String>,
    pub error: Option<String>,
    /// A value that needs a confirmation before it is saved, and why.
    pub warning: Option<String>,
}

#[derive(Template)]
#[template(path = "limits/rate.html")]
struct RatePage {
    layout: Layout,
    workspace: Workspace,
    rows: Vec<RateRow>,
    load_error: Option<String>,
    can_manage: bool,
}

fn number(n: u64) -> String {
    super::usage::thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The workspace, if this person may read it (else 404, as for any workspace page).
async fn workspace(ctx: &Ctx, id: &str) -> AppResult<Workspace> {
    let list = ctx.state.org.workspaces().await?;
    list.iter()
        .find(|w| w.id == id && ctx.may_read_workspace(&w.id))
        .cloned()
        .ok_or(AppError::NotFound)
}

async fn rate_rows(ctx: &Ctx, workspace_id: &str) -> Result<Vec<RateRow>, ApiError> {
    let entries = service::workspace_rate_limits(&ctx.state, workspace_id).await?;
    let mut rows = Vec::new();
    for e in entries {
        let group = e.group.label();
        for l in &e.limits {
            let override_value = l.override_value();
            let applies = match (l.org_limit, override_value) {
                (Some(org), Some(o)) if o < org => format!("{} (this workspace's)", number(o)),
                (Some(org), _) => format!("{} (the organization's)", number(org)),
                (None, Some(o)) => format!("{} (this workspace's)", number(o)),
                (None, None) => "no limit".into(),
            };
            rows.push(RateRow {
                rate_limit_id: e.rate_limit_id.clone(),
                group: group.clone(),
                kind: l.kind.clone(),
                label: crate::labels::limiter(&l.kind),
                org_value: l.org_limit.map(number),
                override_value: override_value.map(number),
                override_plain: override_value.map(|v| v.to_string()).unwrap_or_default(),
                applies,
                override_ignored: matches!((l.org_limit, override_value), (Some(org), Some(o)) if o > org),
                typed: None,
                error: None,
                warning: None,
            });
        }
    }
    Ok(rows)
}

async fn render_rate(
    ctx: &Ctx,
    workspace: Workspace,
    typed: Option<(&str, &str, String, String)>,
    status: StatusCode,
) -> AppResult<Response> {
    let (mut rows, load_error) = match rate_rows(ctx, &workspace.id).await {
        Ok(rows) => (rows, None),
        Err(e) => (
            Vec::new(),
            Some(format!(
                "The rate limits could not be loaded. {}",
                e.user_message()
            )),
        ),
    };
    if let Some((rid, kind, value, message)) = typed {
        if let Some(row) = rows
            .iter_mut()
            .find(|r| r.rate_limit_id == rid && r.kind == kind)
        {
            row.typed = Some(value);
            if status == StatusCode::OK {
                row.warning = Some(message);
            } else {
                row.error = Some(message);
            }
        }
    }
    let page = RatePage {
        layout: ctx.layout("Rate limits", "limits").await,
        workspace,
        rows,
        load_error,
        can_manage: ctx.can(Permission::ManageOrganization),
    };
    render(status, &page)
}

pub async fn rate_page(ctx: Ctx, Path(id): Path<String>) -> AppResult<Response> {
    let w = workspace(&ctx, &id).await?;
    render_rate(&ctx, w, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct RateInput {
    #[serde(default)]
    rate_limit_id: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    value: String,
    /// Present when the "Use the organization's" button was pressed.
    #[serde(default)]
    clear: Option<String>,
    /// Present when the person confirmed a value above the organization's.
    #[serde(default)]
    confirm: Option<String>,
}

/// A whole number from 0 to 2^53 − 1 (thousands separators allowed), or why not.
pub fn parse_rate(raw: &str) -> Result<u64, String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '_' && !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return Err("Enter a whole number, or use the organization's value.".into());
    }
    match cleaned.parse::<u64>() {
        Ok(n) if n <= service::MAX_RATE_LIMIT => Ok(n),
        Ok(_) => Err(format!(
            "That is above the largest value Anthropic accepts ({}).",
            number(service::MAX_RATE_LIMIT)
        )),
        Err(_) => Err(format!(
            "\"{}\" is not a whole number from 0 to {}.",
            raw.trim(),
            number(service::MAX_RATE_LIMIT)
        )),
    }
}

pub async fn rate_set(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(input): Form<RateInput>,
) -> AppResult<Response> {
    let w = workspace(&ctx, &id).await?;
    let rows = match rate_rows(&ctx, &w.id).await {
        Ok(rows) => rows,
        Err(e) => {
            ctx.flash(
                "error",
                format!("Nothing was changed. {}", e.user_message()),
            )
            .await;
            return Ok(Redirect::to(&format!("/limits/workspaces/{}", w.id)).into_response());
        }
    };
    let Some(row) = rows
        .iter()
        .find(|r| r.rate_limit_id == input.rate_limit_id && r.kind == input.kind)
    else {
        return Err(AppError::BadRequest(
            "That rate limit is not listed for this workspace.".into(),
        ));
    };
    let value = if input.clear.is_some() {
        None
    } else {
        match parse_rate(&input.value) {
            Ok(v) => Some(v),
            Err(e) => {
                let typed = (
                    input.rate_limit_id.as_str(),
                    input.kind.as_str(),
                    input.value.clone(),
                    e,
                );
                return render_rate(&ctx, w, Some(typed), StatusCode::UNPROCESSABLE_ENTITY).await;
            }
        }
    };
    let target = RateLimitTarget {
        workspace_id: &w.id,
        workspace_name: &w.name,
        rate_limit_id: &row.rate_limit_id,
        group: &row.group,
        kind: &row.kind,
        before: row.override_plain.parse().ok(),
    };
    let saved = service::save_workspace_rate_limit(
        &ctx.state,
        &ctx.caller(),
        &target,
        value,
        input.confirm.is_some(),
    )
    .await?;
    let result = match saved {
        service::RateLimitSave::Done(result) => result,
        service::RateLimitSave::Confirm(warning) => {
            let typed = (
                input.rate_limit_id.as_str(),
                input.kind.as_str(),
                input.value.clone(),
                warning,
            );
            return render_rate(&ctx, w, Some(typed), StatusCode::OK).await;
        }
    };
    match result {
        Ok(_) => {
            let what = match value {
                Some(v) => format!("set to {} for {}", number(v), w.name),
                None => format!("back to the organization's value for {}", w.name),
            };
            ctx.flash(
                "success",
                format!(
                    "{} ({}) {what}. Anthropic can take up to an hour to apply it.",
                    row.label, row.group
                ),
            )
            .await;
            Ok(Redirect::to(&format!("/limits/workspaces/{}", w.id)).into_response())
        }
        Err(e) => {
            let typed = (
                input.rate_limit_id.as_str(),
                input.kind.as_str(),
                input.value.clone(),
                format!("The rate limit was not changed. {}", e.user_message()),
            );
            render_rate(&ctx, w, Some(typed), failure_status(&e)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_whole_numbers_in_range() {
        assert_eq!(parse_rate("1,000"), Ok(1000));
        assert_eq!(parse_rate("0"), Ok(0));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("9007199254740992").is_err());
        assert!(parse_rate("").is_err());
    }
}
