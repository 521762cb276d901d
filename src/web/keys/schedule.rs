//! "Deactivate now, archive after a grace period": schedules kept in SQLite so they survive
//! restarts, run by the background job (or a test) through [`run_due_schedules`].

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;

use super::{
    change_status, is_live, key_target, load_key, render, render_show, status_details, visible,
};
use crate::anthropic::{ApiKey, ApiKeyStatus, UpdateApiKey};
use crate::audit::{Actor, NewEntry, Outcome, Source, Target};
use crate::auth::Permission;
use crate::org;
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::{AppState, Ctx};

const DEFAULT_GRACE_DAYS: i64 = 7;
const MAX_GRACE_DAYS: i64 = 90;

/// Fixed-width RFC 3339, so text order is time order in SQLite.
pub(crate) fn ts(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Schedule {
    pub id: i64,
    pub api_key_id: String,
    pub key_name: String,
    pub run_at: String,
    pub created_at: String,
    pub created_by: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_request_id: Option<String>,
    pub finished_at: Option<String>,
    pub cancelled_by: Option<String>,
}

impl Schedule {
    /// The run time as people read it.
    pub fn run_at_label(&self) -> String {
        parse_ts(&self.run_at)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| self.run_at.clone())
    }
}

const COLUMNS: &str = "id, api_key_id, key_name, run_at, created_at, created_by, state, attempts, last_error, last_request_id, finished_at, cancelled_by";

pub async fn pending_for(db: &SqlitePool, key_id: &str) -> Result<Option<Schedule>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE api_key_id = ? AND state = 'pending'"
    ))
    .bind(key_id)
    .fetch_optional(db)
    .await
}

/// The key was archived by hand: its schedule has nothing left to do.
pub async fn complete_for_key(db: &SqlitePool, key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE key_archive_schedules SET state = 'done', finished_at = ? WHERE api_key_id = ? AND state = 'pending'",
    )
    .bind(ts(&Utc::now()))
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(())
}

async fn mark_cancelled(db: &SqlitePool, id: i64, by: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE key_archive_schedules SET state = 'cancelled', finished_at = ?, cancelled_by = ? WHERE id = ? AND state = 'pending'",
    )
    .bind(ts(&Utc::now()))
    .bind(by)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn schedule_target(schedule: &Schedule) -> Option<Target> {
    crate::web::context::target(
        "api_key",
        schedule.api_key_id.clone(),
        Some(schedule.key_name.clone()),
    )
}

/// Cancels the key's pending schedule, if any, audited with the reason.
pub(crate) async fn cancel_for_key(ctx: &Ctx, key: &ApiKey, reason: &str) -> AppResult<bool> {
    let Some(schedule) = pending_for(&ctx.state.db, &key.id).await? else {
        return Ok(false);
    };
    cancel_one(ctx, &schedule, reason).await
}

async fn cancel_one(ctx: &Ctx, schedule: &Schedule, reason: &str) -> AppResult<bool> {
    let details = json!({ "schedule": schedule.id, "run_at": schedule.run_at, "reason": reason });
    // Intent first: a cancellation is never made without a trace.
    let intent = ctx
        .audit(
            "key.archive_schedule_cancelled",
            schedule_target(schedule),
            details.clone(),
            Outcome::Pending,
        )
        .await?;
    let cancelled = mark_cancelled(&ctx.state.db, schedule.id, &ctx.account.username).await?;
    let mut entry = ctx.entry(
        "key.archive_schedule_cancelled",
        schedule_target(schedule),
        details,
        if cancelled {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
    );
    entry.intent_seq = Some(intent);
    ctx.state.audit.append(entry).await?;
    Ok(cancelled)
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    grace_days: Option<String>,
}

/// Deactivates the key now (if it is active) and archives it after the grace period.
pub async fn schedule_archive(
    ctx: Ctx,
    Path(key_id): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let key = load_key(&ctx, &key_id).await?;
    let grace_days = match form.grace_days.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_GRACE_DAYS,
        Some(text) => match text.parse::<i64>() {
            Ok(days) if (1..=MAX_GRACE_DAYS).contains(&days) => days,
            _ => {
                return render_show(
                    &ctx,
                    &key,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(format!(
                        "The grace period must be a whole number of days from 1 to {MAX_GRACE_DAYS}; nothing was changed."
                    )),
                    None,
                )
                .await
            }
        },
    };
    if !is_live(&key) {
        return render_show(
            &ctx,
            &key,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(format!(
                "The key is {}: there is nothing to schedule.",
                key.status
            )),
            None,
        )
        .await;
    }
    if let Some(existing) = pending_for(&ctx.state.db, &key.id).await? {
        ctx.flash(
            "info",
            format!(
                "{} is already scheduled to be archived on {}.",
                key.name,
                existing.run_at_label()
            ),
        )
        .await;
        return Ok(Redirect::to(&format!("/keys/{}", key.id)).into_response());
    }
    if key.status == ApiKeyStatus::Active {
        let to = ApiKeyStatus::Inactive;
        let mut details = status_details(&key, &to);
        details["reason"] = json!("deactivated before a scheduled archive");
        if let Err(error) = change_status(&ctx, &key, to, "key.deactivated", details).await? {
            let status = super::failure_status(&error);
            let message = format!(
                "The key could not be deactivated, so no archive was scheduled. {}",
                error.user_message()
            );
            return render_show(&ctx, &key, status, Some(message), None).await;
        }
    }
    let run_at = Utc::now() + Duration::days(grace_days);
    let details = json!({ "run_at": ts(&run_at), "grace_days": grace_days });
    let intent = ctx
        .audit(
            "key.archive_scheduled",
            key_target(&key),
            details.clone(),
            Outcome::Pending,
        )
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO key_archive_schedules (api_key_id, key_name, run_at, created_at, created_by, state) VALUES (?, ?, ?, ?, ?, 'pending')",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(ts(&run_at))
    .bind(ts(&Utc::now()))
    .bind(&ctx.account.username)
    .execute(&ctx.state.db)
    .await;
    let mut entry = ctx.entry(
        "key.archive_scheduled",
        key_target(&key),
        details,
        if inserted.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
    );
    entry.intent_seq = Some(intent);
    ctx.state.audit.append(entry).await?;
    inserted?;
    ctx.flash(
        "success",
        format!(
            "{} is deactivated and will be archived on {}. You can cancel this on the scheduled archives page.",
            key.name,
            run_at.format("%Y-%m-%d %H:%M UTC")
        ),
    )
    .await;
    Ok(Redirect::to(&format!("/keys/{}", key.id)).into_response())
}

#[derive(Template)]
#[template(path = "keys/schedules.html")]
struct SchedulesPage {
    layout: Layout,
    pending: Vec<Schedule>,
    finished: Vec<Schedule>,
    can_manage: bool,
}

pub async fn index(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    let keys = ctx.state.org.api_keys().await?;
    // Team leads see schedules of their workspaces' keys only.
    let may_see = |schedule: &Schedule| match keys.iter().find(|k| k.id == schedule.api_key_id) {
        Some(key) => visible(&ctx, key),
        None => ctx.workspace_scope().is_none(),
    };
    let pending: Vec<Schedule> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state = 'pending' ORDER BY run_at"
    ))
    .fetch_all(&ctx.state.db)
    .await?;
    let finished: Vec<Schedule> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state != 'pending' ORDER BY id DESC LIMIT 50"
    ))
    .fetch_all(&ctx.state.db)
    .await?;
    let page = SchedulesPage {
        layout: ctx.layout("Scheduled key archives", "keys").await,
        pending: pending.into_iter().filter(|s| may_see(s)).collect(),
        finished: finished.into_iter().filter(|s| may_see(s)).collect(),
        can_manage: ctx.can(Permission::ManageOrganization),
    };
    render(StatusCode::OK, &page)
}

pub async fn cancel(ctx: Ctx, Path(schedule_id): Path<i64>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let schedule: Schedule = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE id = ?"
    ))
    .bind(schedule_id)
    .fetch_optional(&ctx.state.db)
    .await?
    .ok_or(AppError::NotFound)?;
    if schedule.state != "pending" {
        ctx.flash(
            "info",
            format!("The archive of {} is no longer pending.", schedule.key_name),
        )
        .await;
    } else if cancel_one(&ctx, &schedule, "cancelled by an administrator").await? {
        ctx.flash(
            "success",
            format!(
                "The archive of {} is cancelled. The key stays inactive until someone reactivates it.",
                schedule.key_name
            ),
        )
        .await;
    }
    Ok(Redirect::to("/keys/schedules").into_response())
}

/// What happened to one due schedule.
#[derive(Debug, Clone)]
pub struct ScheduleOutcome {
    pub schedule_id: i64,
    pub api_key_id: String,
    /// The plain-language failure (with its request id), kept on the schedule for a retry.
    pub result: Result<(), String>,
}

/// The scheduler acts as itself in the audit log.
fn scheduler() -> Actor {
    Actor {
        name: "system (scheduler)".into(),
        ..Actor::system()
    }
}

/// Archives every key whose schedule is due at `now`. Each schedule is claimed first (its
/// time moves forward) so two runners never archive the same key twice. A failure keeps the
/// schedule pending with the error and retries later, sooner at first.
pub async fn run_due_schedules(
    state: &AppState,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ScheduleOutcome>> {
    let due: Vec<Schedule> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state = 'pending' AND run_at <= ? ORDER BY run_at"
    ))
    .bind(ts(&now))
    .fetch_all(&state.db)
    .await?;
    let mut outcomes = Vec::new();
    for schedule in due {
        let retry_minutes = (5 * (schedule.attempts + 1)).min(60);
        let claimed = sqlx::query(
            "UPDATE key_archive_schedules SET run_at = ?, attempts = attempts + 1 WHERE id = ? AND state = 'pending' AND run_at = ?",
        )
        .bind(ts(&(now + Duration::minutes(retry_minutes))))
        .bind(schedule.id)
        .bind(&schedule.run_at)
        .execute(&state.db)
        .await?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        let result = archive_as_scheduler(state, &schedule).await?;
        match &result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE key_archive_schedules SET state = 'done', finished_at = ?, last_error = NULL, last_request_id = NULL WHERE id = ?",
                )
                .bind(ts(&now))
                .bind(schedule.id)
                .execute(&state.db)
                .await?;
            }
            Err((message, request_id)) => {
                sqlx::query(
                    "UPDATE key_archive_schedules SET last_error = ?, last_request_id = ? WHERE id = ?",
                )
                .bind(message)
                .bind(request_id)
                .bind(schedule.id)
                .execute(&state.db)
                .await?;
            }
        }
        outcomes.push(ScheduleOutcome {
            schedule_id: schedule.id,
            api_key_id: schedule.api_key_id.clone(),
            result: result.map_err(|(message, _)| message),
        });
    }
    Ok(outcomes)
}

/// The archive call between an intent and an outcome record, like `Ctx::org_action` but with
/// the scheduler as the actor. `Err` from the outer result: the audit log refused (fail
/// closed, nothing was called).
async fn archive_as_scheduler(
    state: &AppState,
    schedule: &Schedule,
) -> anyhow::Result<Result<(), (String, Option<String>)>> {
    let target =
        Target::new("api_key", schedule.api_key_id.clone()).with_label(schedule.key_name.clone());
    let details = json!({
        "schedule": schedule.id,
        "after": { "status": "archived" },
        "attempt": schedule.attempts + 1,
    });
    let intent = state
        .audit
        .append(
            NewEntry::new(
                scheduler(),
                Source::default(),
                "key.archived",
                Outcome::Pending,
            )
            .target(target.clone())
            .details(details.clone()),
        )
        .await?;
    let update = UpdateApiKey {
        name: None,
        status: Some(ApiKeyStatus::Archived),
    };
    let result = state
        .org
        .api()
        .update_api_key(&schedule.api_key_id, &update)
        .await;
    state.org.invalidate(&[org::keys::API_KEYS]);
    let entry = match &result {
        Ok(_) => NewEntry::new(scheduler(), Source::default(), "key.archived", Outcome::Ok)
            .target(target)
            .details(details),
        Err(error) => {
            let mut details = details;
            details["error"] = json!(error.message());
            NewEntry::new(
                scheduler(),
                Source::default(),
                "key.archived",
                Outcome::Failed,
            )
            .target(target)
            .details(details)
            .upstream(error.status(), error.request_id().map(str::to_owned))
        }
    };
    state.audit.append(entry.intent(intent)).await?;
    Ok(result
        .map(|_| ())
        .map_err(|e| (e.user_message(), e.request_id().map(str::to_owned))))
}
