//! "Deactivate now, archive after a grace period": schedules kept in SQLite so they survive
//! restarts, carried out by the scheduler job through [`run_due`] as [`Caller::SCHEDULER`].

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::keys::{self, key_target, KeyRef};
use super::{Caller, Change, ServiceError, Services};
use crate::anthropic::{ApiError, ApiKey, ApiKeyStatus};
use crate::audit::Action;
use crate::auth::Permission;
use crate::db::ts;

pub const DEFAULT_GRACE_DAYS: i64 = 7;
pub const MAX_GRACE_DAYS: i64 = 90;

pub fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
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
            .map(|t| crate::labels::moment_label(&t))
            .unwrap_or_else(|| self.run_at.clone())
    }
}

const COLUMNS: &str = "id, api_key_id, key_name, run_at, created_at, created_by, state, attempts, last_error, last_request_id, finished_at, cancelled_by";

pub async fn pending_for(
    services: &Services,
    key_id: &str,
) -> Result<Option<Schedule>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE api_key_id = ? AND state = 'pending'"
    ))
    .bind(key_id)
    .fetch_optional(&services.db)
    .await
}

pub async fn find(services: &Services, id: i64) -> Result<Option<Schedule>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&services.db)
    .await
}

/// Pending schedules by run time, and the latest 50 finished ones.
pub async fn list(services: &Services) -> Result<(Vec<Schedule>, Vec<Schedule>), sqlx::Error> {
    let pending = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state = 'pending' ORDER BY run_at"
    ))
    .fetch_all(&services.db)
    .await?;
    let finished = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state != 'pending' ORDER BY id DESC LIMIT 50"
    ))
    .fetch_all(&services.db)
    .await?;
    Ok((pending, finished))
}

/// The key was archived (by hand, in bulk, with its workspace): nothing is left to archive.
pub(crate) async fn complete_for_key(services: &Services, key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE key_archive_schedules SET state = 'done', finished_at = ? WHERE api_key_id = ? AND state = 'pending'",
    )
    .bind(ts(services.clock.now()))
    .bind(key_id)
    .execute(&services.db)
    .await?;
    Ok(())
}

/// Cancels the key's pending schedule, if any, audited with the reason.
pub(crate) async fn cancel_for_key(
    services: &Services,
    caller: &Caller,
    key_id: &str,
    reason: &str,
) -> Result<bool, ServiceError> {
    let Some(schedule) = pending_for(services, key_id).await? else {
        return Ok(false);
    };
    cancel(services, caller, &schedule, reason).await
}

/// Cancels one pending schedule; `false` when it was no longer pending.
pub async fn cancel(
    services: &Services,
    caller: &Caller,
    schedule: &Schedule,
    reason: &str,
) -> Result<bool, ServiceError> {
    let target = key_target(&schedule.api_key_id, &schedule.key_name);
    services
        .require(caller, Permission::ManageOrganization, target.clone())
        .await?;
    let details = json!({ "schedule": schedule.id, "run_at": schedule.run_at, "reason": reason });
    let by = caller.name();
    let cancelled = services
        .local_change(
            caller,
            Action::KeyArchiveScheduleCancelled,
            target,
            details,
            async {
                let done = sqlx::query(
                    "UPDATE key_archive_schedules SET state = 'cancelled', finished_at = ?, cancelled_by = ? WHERE id = ? AND state = 'pending'",
                )
                .bind(ts(services.clock.now()))
                .bind(&by)
                .bind(schedule.id)
                .execute(&services.db)
                .await?;
                if done.rows_affected() == 1 {
                    Ok(())
                } else {
                    Err(ScheduleRefusal::NotPending)
                }
            },
            |_| None,
        )
        .await?;
    Ok(cancelled.is_ok())
}

#[derive(Debug, thiserror::Error)]
enum ScheduleRefusal {
    #[error("the schedule was no longer pending")]
    NotPending,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl super::LocalRefusal for ScheduleRefusal {}

/// What [`schedule_archive`] did.
pub enum Scheduled {
    /// Deactivated (if it was active) and scheduled.
    Created { run_at: DateTime<Utc> },
    /// A schedule already existed; nothing changed.
    AlreadyPending(Box<Schedule>),
}

/// The grace period as typed: empty means the default; otherwise whole days from 1 to
/// [`MAX_GRACE_DAYS`].
pub fn grace_days(typed: Option<&str>) -> Result<i64, ServiceError> {
    match typed.map(str::trim) {
        None | Some("") => Ok(DEFAULT_GRACE_DAYS),
        Some(text) => match text.parse::<i64>() {
            Ok(days) if (1..=MAX_GRACE_DAYS).contains(&days) => Ok(days),
            _ => Err(ServiceError::Invalid(format!(
                "The grace period must be a whole number of days from 1 to {MAX_GRACE_DAYS}; nothing was changed."
            ))),
        },
    }
}

/// Deactivates the key now (if it is active) and archives it after `grace_days`. Only a key
/// that works or can work again (active or inactive) can be scheduled. An upstream refusal to
/// deactivate leaves nothing scheduled.
pub async fn schedule_archive(
    services: &Services,
    caller: &Caller,
    key: &ApiKey,
    grace_days: i64,
) -> Change<Scheduled> {
    services
        .require(
            caller,
            Permission::ManageOrganization,
            key_target(&key.id, &key.name),
        )
        .await?;
    if !(1..=MAX_GRACE_DAYS).contains(&grace_days) {
        return Err(ServiceError::Invalid(format!(
            "The grace period must be a whole number of days from 1 to {MAX_GRACE_DAYS}; nothing was changed."
        )));
    }
    if !crate::org::keys::is_live(key) {
        return Err(ServiceError::Invalid(format!(
            "The key is {}: there is nothing to schedule.",
            key.status
        )));
    }
    if let Some(existing) = pending_for(services, &key.id).await? {
        return Ok(Ok(Scheduled::AlreadyPending(Box::new(existing))));
    }
    if key.status == ApiKeyStatus::Active {
        let context = json!({ "reason": "deactivated before a scheduled archive" });
        if let Err(error) = keys::set_status(
            services,
            caller,
            key.into(),
            ApiKeyStatus::Inactive,
            context,
        )
        .await?
        {
            return Ok(Err(error));
        }
    }
    let now = services.clock.now();
    let run_at = now + Duration::days(grace_days);
    let details = json!({ "run_at": ts(run_at), "grace_days": grace_days });
    let by = caller.name();
    let inserted = services
        .local_change(
            caller,
            Action::KeyArchiveScheduled,
            key_target(&key.id, &key.name),
            details,
            async {
                sqlx::query(
                    "INSERT INTO key_archive_schedules (api_key_id, key_name, run_at, created_at, created_by, state) VALUES (?, ?, ?, ?, ?, 'pending')",
                )
                .bind(&key.id)
                .bind(&key.name)
                .bind(ts(run_at))
                .bind(ts(now))
                .bind(&by)
                .execute(&services.db)
                .await
            },
            |_| None,
        )
        .await?;
    inserted?;
    Ok(Ok(Scheduled::Created { run_at }))
}

/// What happened to one due schedule.
#[derive(Debug, Clone)]
pub struct ScheduleOutcome {
    pub schedule_id: i64,
    pub api_key_id: String,
    /// The plain-language failure (with its request id), kept on the schedule for a retry.
    pub result: Result<(), String>,
}

/// Archives every key whose schedule is due at `now`, as the scheduler. Each schedule is
/// claimed first (its time moves forward) so two runners never archive the same key twice. A
/// failure keeps the schedule pending with the error and retries later, sooner at first.
pub async fn run_due(
    services: &Services,
    now: DateTime<Utc>,
) -> Result<Vec<ScheduleOutcome>, ServiceError> {
    let due: Vec<Schedule> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM key_archive_schedules WHERE state = 'pending' AND run_at <= ? ORDER BY run_at"
    ))
    .bind(ts(now))
    .fetch_all(&services.db)
    .await?;
    let mut outcomes = Vec::new();
    for schedule in due {
        let retry_minutes = (5 * (schedule.attempts + 1)).min(60);
        let claimed = sqlx::query(
            "UPDATE key_archive_schedules SET run_at = ?, attempts = attempts + 1 WHERE id = ? AND state = 'pending' AND run_at = ?",
        )
        .bind(ts(now + Duration::minutes(retry_minutes)))
        .bind(schedule.id)
        .bind(&schedule.run_at)
        .execute(&services.db)
        .await?;
        if claimed.rows_affected() != 1 {
            continue;
        }
        let key = KeyRef {
            id: &schedule.api_key_id,
            name: &schedule.key_name,
            status: None,
            workspace_id: None,
        };
        let context = json!({ "schedule": schedule.id, "attempt": schedule.attempts + 1 });
        let result: Result<(), ApiError> = keys::set_status(
            services,
            &Caller::SCHEDULER,
            key,
            ApiKeyStatus::Archived,
            context,
        )
        .await?
        .map(|_| ());
        match &result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE key_archive_schedules SET state = 'done', finished_at = ?, last_error = NULL, last_request_id = NULL WHERE id = ?",
                )
                .bind(ts(now))
                .bind(schedule.id)
                .execute(&services.db)
                .await?;
            }
            Err(error) => {
                sqlx::query(
                    "UPDATE key_archive_schedules SET last_error = ?, last_request_id = ? WHERE id = ?",
                )
                .bind(error.user_message())
                .bind(error.request_id())
                .bind(schedule.id)
                .execute(&services.db)
                .await?;
            }
        }
        outcomes.push(ScheduleOutcome {
            schedule_id: schedule.id,
            api_key_id: schedule.api_key_id.clone(),
            result: result.map_err(|e| e.user_message()),
        });
    }
    Ok(outcomes)
}

/// Marks the pending schedules of these keys done: they were archived with their workspace.
pub(crate) async fn complete_for_keys(
    services: &Services,
    key_ids: &[String],
) -> Result<(), sqlx::Error> {
    for id in key_ids {
        complete_for_key(services, id).await?;
    }
    Ok(())
}
