//! Anthropic's limits: monthly spend limits (which stop traffic, unlike Orgkeeper's budgets,
//! which only alert) and workspace rate-limit overrides. One function per change, each through
//! [`Services::org_change`]; the reads the Limits pages need, bounded like every Admin API call.

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{target, Caller, Change, OrgChange, ServiceError, Services};
use crate::anthropic::OrgRateLimit;
use crate::anthropic::{
    ApiError, OrgRateLimitParams, RateLimitChange, SetSpendLimit, SpendLimit, SpendLimitDeleted,
    SpendLimitFilter, SpendLimitScope, UpdateWorkspaceRateLimit, WorkspaceRateLimit,
    WorkspaceRateLimitParams,
};
use crate::audit::{Action, Target};
use crate::org::{Diff, Touched};

/// Where the organization may change spend limits itself: the Console's Limits tab.
pub const CONSOLE_LIMITS_URL: &str = "https://console.anthropic.com/settings/limits";

/// The largest rate-limit value the Admin API takes (2^53 − 1).
pub const MAX_RATE_LIMIT: u64 = (1 << 53) - 1;

/// A spend limit Orgkeeper can set: the organization's or one workspace's (monthly).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitScope {
    Organization,
    Workspace { id: String, name: String },
}

impl LimitScope {
    /// The id in audit records and forms: `organization` or the workspace id.
    pub fn key(&self) -> &str {
        match self {
            LimitScope::Organization => "organization",
            LimitScope::Workspace { id, .. } => id,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            LimitScope::Organization => "the organization",
            LimitScope::Workspace { name, .. } => name,
        }
    }

    fn api(&self) -> SpendLimitScope {
        match self {
            LimitScope::Organization => SpendLimitScope::Organization,
            LimitScope::Workspace { id, .. } => SpendLimitScope::Workspace {
                workspace_id: id.clone(),
            },
        }
    }

    fn workspace(&self) -> Option<String> {
        match self {
            LimitScope::Organization => None,
            LimitScope::Workspace { id, .. } => Some(id.clone()),
        }
    }

    fn target(&self) -> Option<Target> {
        target("spend_limit", self.key(), Some(self.name().to_owned()))
    }
}

/// Why the organization cannot use spend limits through the Admin API, if that is the error.
pub fn access_refusal(error: &ApiError) -> Option<&'static str> {
    match error.error_code() {
        Some("spend_limits_admin_api_writes_not_enabled") => Some(
            "This organization cannot manage spend limits through the Admin API yet: Anthropic offers it as an early-access preview (ask your Anthropic account team). Until then, set spend limits in the Console.",
        ),
        Some("organization_type_not_supported") => Some(
            "Anthropic does not offer spend limits through the Admin API for this kind of organization. Set them in the Console instead.",
        ),
        _ => None,
    }
}

/// Every spend limit of the organization (the usage-tier cap included).
/// The spend limits from the model (or, before a sync has read them, from the API).
pub async fn spend_limits(services: &Services) -> Result<Vec<SpendLimit>, ApiError> {
    if let Some(read) = &services.org.snapshot().spend_limits {
        return (**read).clone();
    }
    services
        .org
        .api()
        .list_spend_limits(&SpendLimitFilter::default())
        .await
}

/// The limit of `scope` among `limits`, if one is set.
pub fn limit_of<'a>(limits: &'a [SpendLimit], scope: &LimitScope) -> Option<&'a SpendLimit> {
    let wanted = scope.api();
    limits
        .iter()
        .find(|l| l.scope == wanted && l.period == "monthly")
}

fn cents_json(limit: Option<&SpendLimit>) -> Value {
    match limit.and_then(SpendLimit::amount_cents) {
        Some(c) => json!({ "amount_cents": c.normalize().to_string() }),
        None => Value::Null,
    }
}

/// The audit record of a spend limit changed outside Orgkeeper (in the Console), in the shape
/// of Orgkeeper's own `spend_limit.set` and `spend_limit.removed`, so one filter finds both.
/// `None` when nothing a person would call a change differs (only `updated_at`, say).
pub fn observed_spend_limit(
    d: &Diff<SpendLimit>,
    workspace_name: impl Fn(&str) -> Option<String>,
) -> Option<(Action, Option<Target>, Value)> {
    let limit = d.after.as_ref().or(d.before.as_ref())?;
    let same = |a: &SpendLimit, b: &SpendLimit| {
        a.amount_cents() == b.amount_cents() && a.is_enabled == b.is_enabled && a.period == b.period
    };
    if let (Some(before), Some(after)) = (&d.before, &d.after) {
        if same(before, after) {
            return None;
        }
    }
    let (key, label) = match &limit.scope {
        SpendLimitScope::Organization => {
            let scope = LimitScope::Organization;
            (scope.key().to_owned(), scope.name().to_owned())
        }
        SpendLimitScope::Workspace { workspace_id } => (
            workspace_id.clone(),
            workspace_name(workspace_id).unwrap_or_else(|| workspace_id.clone()),
        ),
        // Scopes Orgkeeper does not set (the usage tier's cap, per-member limits): by the
        // API's own name for the scope.
        other => (
            limit.id.clone(),
            serde_json::to_value(other).ok()?["type"]
                .as_str()
                .unwrap_or("other")
                .replace('_', " "),
        ),
    };
    let enabled = |l: Option<&SpendLimit>| l.map(|l| l.is_enabled);
    let action = if d.after.is_some() {
        Action::SpendLimitSet
    } else {
        Action::SpendLimitRemoved
    };
    let details = json!({
        "scope": key,
        "spend_limit_id": limit.id,
        "period": limit.period,
        "before": cents_json(d.before.as_ref()),
        "after": cents_json(d.after.as_ref()),
        "enabled": { "before": enabled(d.before.as_ref()), "after": enabled(d.after.as_ref()) },
    });
    Some((action, target("spend_limit", key, Some(label)), details))
}

/// Sets (or changes) the monthly spend limit of `scope` to `amount_cents`. `before` is the
/// limit as last read, for the audit record.
pub async fn set_spend_limit(
    services: &Services,
    caller: &Caller,
    scope: &LimitScope,
    before: Option<&SpendLimit>,
    amount_cents: Decimal,
    context: Value,
) -> Change<SpendLimit> {
    let body = SetSpendLimit {
        amount: Some(amount_cents.normalize().to_string()),
        scope: scope.api(),
        period: Some("monthly".into()),
    };
    let details = super::with_context(
        json!({
            "scope": scope.key(),
            "before": cents_json(before),
            "after": { "amount_cents": amount_cents.normalize().to_string() },
        }),
        context,
    );
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::SpendLimitSet,
                target: scope.target(),
                details,
                workspace: scope.workspace(),
                touches: vec![Touched::SpendLimits],
            },
            services.org.api().set_spend_limit(&body),
        )
        .await
}

/// What saving a spend limit puts at stake, decided before anything is changed: this month's
/// spend of the scope and, when the new limit would stop traffic at once or cut the limit by
/// more than half, the reasons the person must confirm it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendLimitStakes {
    /// This month's spend of the scope so far, in cents.
    pub spent_cents: Decimal,
    /// The limit now, in cents (`None`: no limit).
    pub before_cents: Option<Decimal>,
    /// The limit asked for, in cents.
    pub amount_cents: Decimal,
    /// Why the person must confirm, in plain words (empty: nothing out of the ordinary).
    pub reasons: Vec<String>,
}

impl SpendLimitStakes {
    /// The rule: a limit at or below this month's spend stops the scope's traffic at once; a
    /// limit below half of the current one is a cut worth a second look.
    pub fn of(
        scope: &LimitScope,
        before_cents: Option<Decimal>,
        amount_cents: Decimal,
        spent_cents: Decimal,
    ) -> SpendLimitStakes {
        use crate::money::dollars;
        let mut reasons = Vec::new();
        if amount_cents <= spent_cents {
            reasons.push(format!(
                "{} has already spent {} this month, so a limit of {} is reached at once: Anthropic refuses its requests from the moment it is saved until the next month or a higher limit.",
                capitalized(scope.name()),
                dollars(spent_cents),
                dollars(amount_cents)
            ));
        }
        if let Some(before) = before_cents {
            if amount_cents * Decimal::from(2) < before {
                reasons.push(format!(
                    "{} is less than half of the limit now, {}.",
                    dollars(amount_cents),
                    dollars(before)
                ));
            }
        }
        SpendLimitStakes {
            spent_cents,
            before_cents,
            amount_cents,
            reasons,
        }
    }

    pub fn needs_confirmation(&self) -> bool {
        !self.reasons.is_empty()
    }
}

fn capitalized(name: &str) -> String {
    let mut out = name.to_owned();
    if let Some(first) = out.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// This month's spend of `scope` so far, in cents, from the local cost store (the figure the
/// Limits page shows beside each limit), brought up to date first.
pub async fn month_spend(services: &Services, scope: &LimitScope) -> Result<Decimal, sqlx::Error> {
    refresh_costs(services).await;
    stored_month_spend(services, scope).await
}

/// Brings the cost store up to date (if Anthropic cannot be reached, the stored days decide).
async fn refresh_costs(services: &Services) {
    let now = services.clock.now();
    if let Err(error) =
        super::usage::refresh_or_stale(services, crate::usage_store::Kind::CostDay, now).await
    {
        tracing::warn!(%error, "this month's spend could not be brought up to date");
    }
}

async fn stored_month_spend(
    services: &Services,
    scope: &LimitScope,
) -> Result<Decimal, sqlx::Error> {
    use super::budgets::{month, settled_before, Spend};
    let now = services.clock.now();
    let names = crate::org::names::ReportNames::of(&services.org.snapshot());
    let stored = match scope {
        LimitScope::Organization => crate::usage_store::ORG_SCOPE.to_owned(),
        LimitScope::Workspace { id, .. } => names.stored_ws(id),
    };
    let start = crate::usage_store::month_start(now.date_naive());
    let m = month(services, start, None).await?;
    Ok(Spend::of(&m, &stored, settled_before(services, now), now.date_naive()).total)
}

/// The spend limits already reached this month (spend at or above the limit), among the
/// organization's and the workspaces' in `workspaces` (ids): Anthropic refuses their
/// requests now. Read from the model and the local cost store.
pub async fn reached_limits(
    services: &Services,
    workspaces: Option<&[String]>,
) -> Result<Vec<(LimitScope, Decimal, Decimal)>, ServiceError> {
    // Only what the model and the cost store hold: the overview makes no Admin API call.
    let snapshot = services.org.snapshot();
    let Some(Ok(limits)) = snapshot.spend_limits.as_deref() else {
        return Ok(Vec::new());
    };
    let mut spends = Vec::new();
    for limit in limits {
        let (scope, Some(amount)) = (&limit.scope, limit.amount_cents()) else {
            continue;
        };
        if limit.period != "monthly" || !limit.is_enabled {
            continue;
        }
        let scope = match scope {
            SpendLimitScope::Organization if workspaces.is_none() => LimitScope::Organization,
            SpendLimitScope::Workspace { workspace_id }
                if workspaces.is_none_or(|ids| ids.contains(workspace_id)) =>
            {
                let name = snapshot
                    .workspaces
                    .iter()
                    .find(|w| &w.id == workspace_id)
                    .map_or_else(|| workspace_id.clone(), |w| w.name.clone());
                LimitScope::Workspace {
                    id: workspace_id.clone(),
                    name,
                }
            }
            _ => continue,
        };
        let spent = stored_month_spend(services, &scope).await?;
        spends.push((scope, spent, amount));
    }
    let reached = crate::org::counts::reached(&spends);
    Ok(spends
        .into_iter()
        .filter(|(scope, _, _)| reached.contains(scope))
        .collect())
}

/// The answer to a spend limit saved from a page.
pub enum SpendLimitSave {
    /// Nothing was changed: the person must first confirm what is at stake.
    Confirm(SpendLimitStakes),
    /// The change was made (or the Admin API refused it).
    Done(Result<SpendLimit, ApiError>),
}

/// Sets the monthly spend limit of `scope` as a person asked on a page: when the new limit
/// would stop traffic at once or cut the limit by more than half, nothing is changed unless
/// `confirmed` names this very amount (in cents) — the person saw the stakes and said yes.
pub async fn save_spend_limit(
    services: &Services,
    caller: &Caller,
    scope: &LimitScope,
    before: Option<&SpendLimit>,
    amount_cents: Decimal,
    confirmed: Option<Decimal>,
) -> Result<SpendLimitSave, ServiceError> {
    let spent = month_spend(services, scope).await?;
    let stakes = SpendLimitStakes::of(
        scope,
        before.and_then(SpendLimit::amount_cents),
        amount_cents,
        spent,
    );
    if stakes.needs_confirmation() && confirmed != Some(amount_cents) {
        return Ok(SpendLimitSave::Confirm(stakes));
    }
    let context = if stakes.needs_confirmation() {
        json!({ "confirmed": { "spent_cents": spent.normalize().to_string() } })
    } else {
        json!({})
    };
    set_spend_limit(services, caller, scope, before, amount_cents, context)
        .await
        .map(SpendLimitSave::Done)
}

/// Removes the spend limit of `scope` (traffic is then capped only by the other limits).
pub async fn remove_spend_limit(
    services: &Services,
    caller: &Caller,
    scope: &LimitScope,
    limit: &SpendLimit,
) -> Change<SpendLimitDeleted> {
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::SpendLimitRemoved,
                target: scope.target(),
                details: json!({
                    "scope": scope.key(),
                    "spend_limit_id": limit.id,
                    "before": cents_json(Some(limit)),
                    "after": null,
                }),
                workspace: scope.workspace(),
                touches: vec![Touched::SpendLimits],
            },
            services.org.api().delete_spend_limit(&limit.id),
        )
        .await
}

/// The organization's rate limits.
pub async fn org_rate_limits(services: &Services) -> Result<Vec<OrgRateLimit>, ApiError> {
    if let Some(read) = &services.org.snapshot().org_rate_limits {
        return (**read).clone();
    }
    services.org.api().all(&OrgRateLimitParams::default()).await
}

/// A workspace's rate limits, inherited values included.
pub async fn workspace_rate_limits(
    services: &Services,
    workspace_id: &str,
) -> Result<Vec<WorkspaceRateLimit>, ApiError> {
    if let Some(Ok(read)) = services.org.snapshot().rate_limits.get(workspace_id) {
        return Ok(read.clone());
    }
    services
        .org
        .api()
        .all(&(
            workspace_id,
            &WorkspaceRateLimitParams {
                include_inherited: true,
                ..Default::default()
            },
        ))
        .await
}

/// One limiter of a workspace's rate limit, as a change names it.
pub struct RateLimitTarget<'a> {
    pub workspace_id: &'a str,
    pub workspace_name: &'a str,
    pub rate_limit_id: &'a str,
    /// The group as people read it ("Claude Sonnet 4.x", "batch").
    pub group: &'a str,
    /// The limiter type (`requests_per_minute`).
    pub kind: &'a str,
    /// The workspace override before the change (`None`: the organization's value applied).
    pub before: Option<u64>,
}

/// The details of a `rate_limit.workspace_changed` record, ours or observed.
pub fn rate_limit_details(
    rate_limit_id: &str,
    group: &str,
    kind: &str,
    before: Option<u64>,
    after: Option<u64>,
) -> Value {
    json!({
        "rate_limit_id": rate_limit_id,
        "group": group,
        "limit_type": kind,
        "before": { "override": before },
        "after": { "override": after },
    })
}

/// Sets (`Some`) or clears (`None`) a workspace's override of one limiter. The lower of the
/// override and the organization's value is enforced; Anthropic applies it within an hour.
pub async fn set_workspace_rate_limit(
    services: &Services,
    caller: &Caller,
    t: &RateLimitTarget<'_>,
    value: Option<u64>,
) -> Change<WorkspaceRateLimit> {
    let body = UpdateWorkspaceRateLimit {
        limits: vec![RateLimitChange {
            kind: t.kind.to_owned(),
            value,
        }],
    };
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::WorkspaceRateLimitChanged,
                target: target(
                    "workspace",
                    t.workspace_id,
                    Some(t.workspace_name.to_owned()),
                ),
                details: rate_limit_details(t.rate_limit_id, t.group, t.kind, t.before, value),
                workspace: Some(t.workspace_id.to_owned()),
                touches: vec![Touched::RateLimitsOf(t.workspace_id.to_owned())],
            },
            services
                .org
                .api()
                .update_workspace_rate_limit(t.workspace_id, t.rate_limit_id, &body),
        )
        .await
}

/// Why a workspace value for one limiter needs a confirmation, if it does: a value above the
/// organization's has no effect (the lower one is enforced).
pub fn rate_limit_stakes(org_value: Option<u64>, value: Option<u64>) -> Option<String> {
    let (org, value) = (org_value?, value?);
    (value > org).then(|| {
        format!(
            "{} is above the organization's {}, and the lower of the two is enforced: this workspace would keep the organization's {}. To give it more, the organization's limit must be raised (by Anthropic).",
            thousands(value),
            thousands(org),
            thousands(org)
        )
    })
}

fn thousands(n: u64) -> String {
    crate::money::group_digits(&n.to_string())
}

/// The answer to a workspace rate limit saved from a page.
pub enum RateLimitSave {
    /// Nothing was changed: the person must first confirm the warning.
    Confirm(String),
    Done(Result<WorkspaceRateLimit, ApiError>),
}

/// Sets or clears a workspace's override as a person asked on a page: a value above the
/// organization's (which would have no effect) is saved only once `confirmed`.
pub async fn save_workspace_rate_limit(
    services: &Services,
    caller: &Caller,
    t: &RateLimitTarget<'_>,
    value: Option<u64>,
    confirmed: bool,
) -> Result<RateLimitSave, ServiceError> {
    let org_value = workspace_rate_limits(services, t.workspace_id)
        .await?
        .iter()
        .filter(|e| e.rate_limit_id == t.rate_limit_id)
        .flat_map(|e| e.limits.iter())
        .find(|l| l.kind == t.kind)
        .and_then(|l| l.org_limit);
    if let Some(warning) = rate_limit_stakes(org_value, value).filter(|_| !confirmed) {
        return Ok(RateLimitSave::Confirm(warning));
    }
    set_workspace_rate_limit(services, caller, t, value)
        .await
        .map(RateLimitSave::Done)
}

// ---------------------------------------------------------------------------------------------
// Requests for a higher spend limit (kept by Orgkeeper; Anthropic's own increase requests
// exist only for Claude Enterprise organizations)

/// A request for a higher monthly spend limit on one workspace.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LimitRequest {
    pub id: i64,
    pub workspace_id: String,
    pub workspace_name: String,
    pub amount_cents: String,
    pub reason: String,
    pub requested_by_id: i64,
    pub requested_by: String,
    pub requested_at: String,
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
}

impl LimitRequest {
    pub fn amount(&self) -> Decimal {
        self.amount_cents.parse().unwrap_or_default()
    }
}

/// Why a request could not be made or decided (recorded as `denied`).
#[derive(Debug, thiserror::Error)]
pub enum RequestRefusal {
    #[error("{0} already has an open request; it must be decided first")]
    AlreadyOpen(String),
    #[error("the request was already {0}")]
    AlreadyDecided(String),
    /// Approving would not raise the limit (it was raised meanwhile): nothing is lowered.
    #[error("the workspace's spend limit is already {0}, so approving would not raise it; deny the request instead")]
    NotHigher(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl super::LocalRefusal for RequestRefusal {
    fn outcome(&self) -> crate::audit::Outcome {
        match self {
            RequestRefusal::Database(_) => crate::audit::Outcome::Failed,
            _ => crate::audit::Outcome::Denied,
        }
    }
}

/// The requests `condition` selects (SQL after WHERE, with one `?` for `value` if given).
async fn requests_where(
    services: &Services,
    condition: &str,
    value: Option<i64>,
) -> Result<Vec<LimitRequest>, sqlx::Error> {
    let sql = format!(
        "SELECT id, workspace_id, workspace_name, amount_cents, reason, requested_by_id, requested_by, \
         requested_at, state, decided_by, decided_at, decision_note FROM limit_requests WHERE {condition}"
    );
    let mut query = sqlx::query_as(&sql);
    if let Some(value) = value {
        query = query.bind(value);
    }
    query.fetch_all(&services.db).await
}

pub async fn find_request(
    services: &Services,
    id: i64,
) -> Result<Option<LimitRequest>, sqlx::Error> {
    Ok(requests_where(services, "id = ?", Some(id)).await?.pop())
}

/// Open requests, oldest first (the order to decide them in).
pub async fn pending_requests(services: &Services) -> Result<Vec<LimitRequest>, sqlx::Error> {
    requests_where(services, "state = 'pending' ORDER BY id", None).await
}

/// One account's requests, newest first, with their decisions.
pub async fn requests_of(
    services: &Services,
    account_id: i64,
) -> Result<Vec<LimitRequest>, sqlx::Error> {
    requests_where(
        services,
        "requested_by_id = ? ORDER BY id DESC LIMIT 50",
        Some(account_id),
    )
    .await
}

fn request_target(r_id: i64, workspace_name: &str) -> Option<Target> {
    target(
        "limit_request",
        r_id.to_string(),
        Some(workspace_name.to_owned()),
    )
}

/// The longest reason a request may give.
pub const MAX_REASON: usize = 2000;

/// Asks for a monthly spend limit of `amount_cents` on a workspace the caller may see: more
/// than its current limit (approving a lower one would cut the workspace's traffic), with a
/// reason for the person deciding. Audited; the alert webhook is told.
pub async fn request_increase(
    services: &Services,
    caller: &Caller,
    workspace_id: &str,
    workspace_name: &str,
    amount_cents: Decimal,
    reason: &str,
) -> Result<Result<LimitRequest, RequestRefusal>, ServiceError> {
    services
        .require(caller, crate::auth::Permission::ViewUsage, None)
        .await?;
    let Caller::Person { account, .. } = caller else {
        return Err(ServiceError::Forbidden);
    };
    if !caller.may_touch_workspace(workspace_id) {
        let target = target("workspace", workspace_id, Some(workspace_name.to_owned()));
        return Err(services
            .out_of_scope(caller, target, Some(workspace_id))
            .await);
    }
    let scope = LimitScope::Workspace {
        id: workspace_id.to_owned(),
        name: workspace_name.to_owned(),
    };
    if let Ok(list) = spend_limits(services).await {
        if let Some(cents) = limit_of(&list, &scope)
            .and_then(SpendLimit::amount_cents)
            .filter(|c| amount_cents <= *c)
        {
            return Err(ServiceError::Invalid(format!(
                "{workspace_name} already has a monthly spend limit of {}: ask for more than that.",
                crate::money::dollars(cents)
            )));
        }
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::Invalid(
            "Say why the workspace needs a higher limit, so the person deciding can judge it."
                .into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ServiceError::Invalid(format!(
            "Keep the reason under {MAX_REASON} characters."
        )));
    }
    let now = crate::db::ts(services.clock.now());
    let amount = amount_cents.normalize().to_string();
    let insert = async {
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM limit_requests WHERE workspace_id = ? AND state = 'pending'",
        )
        .bind(workspace_id)
        .fetch_optional(&services.db)
        .await?;
        if open.is_some() {
            return Err(RequestRefusal::AlreadyOpen(workspace_name.to_owned()));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO limit_requests (workspace_id, workspace_name, amount_cents, reason, requested_by_id, requested_by, requested_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(workspace_id)
        .bind(workspace_name)
        .bind(&amount)
        .bind(reason)
        .bind(account.id)
        .bind(&account.username)
        .bind(&now)
        .fetch_one(&services.db)
        .await
        .map_err(|e| match &e {
            // The partial unique index: someone else asked at the same moment.
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                RequestRefusal::AlreadyOpen(workspace_name.to_owned())
            }
            _ => RequestRefusal::Database(e),
        })?;
        Ok(find_request(services, id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?)
    };
    let result = services
        .local_change(
            caller,
            Action::LimitRequestCreated,
            target("workspace", workspace_id, Some(workspace_name.to_owned())),
            json!({
                "workspace_id": workspace_id,
                "amount_cents": amount,
                "reason": reason,
            }),
            insert,
            |r: &LimitRequest| request_target(r.id, &r.workspace_name),
        )
        .await?;
    if let Ok(r) = &result {
        services.alerts.send(format!(
            "Orgkeeper: {} asks for a monthly spend limit of {} on {}: {}",
            r.requested_by,
            crate::money::dollars(amount_cents),
            r.workspace_name,
            r.reason
        ));
    }
    Ok(result)
}

/// How a decision went.
pub enum Decision {
    Done(LimitRequest),
    /// The request could not be decided (already decided).
    Refused(RequestRefusal),
    /// Approving: the Admin API did not set the limit; the request stays open.
    Upstream(ApiError),
}

async fn mark(
    services: &Services,
    id: i64,
    state: &str,
    by: &str,
    note: Option<&str>,
) -> Result<LimitRequest, RequestRefusal> {
    let done = sqlx::query(
        "UPDATE limit_requests SET state = ?, decided_by = ?, decided_at = ?, decision_note = ? WHERE id = ? AND state = 'pending'",
    )
    .bind(state)
    .bind(by)
    .bind(crate::db::ts(services.clock.now()))
    .bind(note)
    .bind(id)
    .execute(&services.db)
    .await?;
    let now = find_request(services, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if done.rows_affected() == 0 {
        return Err(RequestRefusal::AlreadyDecided(now.state));
    }
    Ok(now)
}

/// Approves a request: sets the workspace's spend limit to the amount asked for through the
/// Admin API (audited as `spend_limit.set`), then marks the request approved (audited as
/// `limit_request.approved`). If the API refuses, the request stays open.
pub async fn approve_request(
    services: &Services,
    caller: &Caller,
    request: &LimitRequest,
    note: Option<&str>,
) -> Result<Decision, ServiceError> {
    services
        .require(
            caller,
            crate::auth::Permission::ManageOrganization,
            request_target(request.id, &request.workspace_name),
        )
        .await?;
    if request.state != "pending" {
        return Ok(Decision::Refused(RequestRefusal::AlreadyDecided(
            request.state.clone(),
        )));
    }
    let scope = LimitScope::Workspace {
        id: request.workspace_id.clone(),
        name: request.workspace_name.clone(),
    };
    let before = match spend_limits(services).await {
        Ok(list) => limit_of(&list, &scope).cloned(),
        Err(e) => return Ok(Decision::Upstream(e)),
    };
    if let Some(now) = before
        .as_ref()
        .and_then(SpendLimit::amount_cents)
        .filter(|now| *now >= request.amount())
    {
        return Ok(Decision::Refused(RequestRefusal::NotHigher(
            crate::money::dollars(now),
        )));
    }
    let set = set_spend_limit(
        services,
        caller,
        &scope,
        before.as_ref(),
        request.amount(),
        json!({ "limit_request": request.id }),
    )
    .await?;
    if let Err(e) = set {
        return Ok(Decision::Upstream(e));
    }
    let by = caller.name();
    let result = services
        .local_change(
            caller,
            Action::LimitRequestApproved,
            request_target(request.id, &request.workspace_name),
            json!({
                "workspace_id": request.workspace_id,
                "amount_cents": request.amount_cents,
                "requested_by": request.requested_by,
                "note": note,
            }),
            mark(services, request.id, "approved", &by, note),
            |_| None,
        )
        .await?;
    Ok(match result {
        Ok(r) => {
            services.alerts.send(format!(
                "Orgkeeper: {by} approved {}'s request; {} now has a monthly spend limit of {}.",
                r.requested_by,
                r.workspace_name,
                crate::money::dollars(r.amount())
            ));
            Decision::Done(r)
        }
        Err(refusal) => Decision::Refused(refusal),
    })
}

/// Denies a request with a reason the requester will read.
pub async fn deny_request(
    services: &Services,
    caller: &Caller,
    request: &LimitRequest,
    reason: &str,
) -> Result<Decision, ServiceError> {
    services
        .require(
            caller,
            crate::auth::Permission::ManageOrganization,
            request_target(request.id, &request.workspace_name),
        )
        .await?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::Invalid(
            "Give a reason: the person who asked will read it.".into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ServiceError::Invalid(format!(
            "Keep the reason under {MAX_REASON} characters."
        )));
    }
    let by = caller.name();
    let result = services
        .local_change(
            caller,
            Action::LimitRequestDenied,
            request_target(request.id, &request.workspace_name),
            json!({
                "workspace_id": request.workspace_id,
                "amount_cents": request.amount_cents,
                "requested_by": request.requested_by,
                "reason": reason,
            }),
            mark(services, request.id, "denied", &by, Some(reason)),
            |_| None,
        )
        .await?;
    Ok(match result {
        Ok(r) => {
            services.alerts.send(format!(
                "Orgkeeper: {by} denied {}'s request for a {} monthly spend limit on {}: {reason}",
                r.requested_by,
                crate::money::dollars(r.amount()),
                r.workspace_name
            ));
            Decision::Done(r)
        }
        Err(refusal) => Decision::Refused(refusal),
    })
}
