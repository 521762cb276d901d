//! The pages of "deactivate now, archive after a grace period"; the schedules themselves and
//! the job that carries them out are `service::schedules` and `jobs::run_schedules`.

use crate::web::extract::Form;
use crate::web::extract::Path;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{load_key, render, render_show, visible};
use crate::auth::Permission;
use crate::service::schedules::{self, Schedule, Scheduled};
use crate::service::ServiceError;
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::Ctx;

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
    let key = load_key(&ctx, &key_id).await?;
    let refuse = |message: String| {
        render_show(
            &ctx,
            &key,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
            None,
        )
    };
    let scheduled = match schedules::grace_days(form.grace_days.as_deref()) {
        Ok(days) => schedules::schedule_archive(&ctx.state, &ctx.caller(), &key, days).await,
        Err(refusal) => Err(refusal),
    };
    let scheduled = match scheduled {
        Err(ServiceError::Invalid(message)) => return refuse(message).await,
        other => other?,
    };
    match scheduled {
        Ok(Scheduled::AlreadyPending(existing)) => {
            ctx.flash(
                "info",
                format!(
                    "{} is already scheduled to be archived on {}.",
                    key.name,
                    existing.run_at_label()
                ),
            )
            .await;
        }
        Ok(Scheduled::Created { run_at }) => {
            ctx.flash(
                "success",
                format!(
                    "{} is deactivated and will be archived on {}. You can cancel this on the scheduled archives page.",
                    key.name,
                    crate::labels::moment_label(&run_at)
                ),
            )
            .await;
        }
        Err(error) => {
            let status = super::failure_status(&error);
            let message = format!(
                "The key could not be deactivated, so no archive was scheduled. {}",
                error.user_message()
            );
            return render_show(&ctx, &key, status, Some(message), None).await;
        }
    }
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
    let keys = ctx.state.org.api_keys().await?;
    // Team leads see schedules of their workspaces' keys only.
    let may_see = |schedule: &Schedule| match keys.iter().find(|k| k.id == schedule.api_key_id) {
        Some(key) => visible(&ctx, key),
        None => ctx.workspace_scope().is_none(),
    };
    let (pending, finished) = schedules::list(&ctx.state).await?;
    let page = SchedulesPage {
        layout: ctx.layout("Scheduled key archives", "keys").await,
        pending: pending.into_iter().filter(|s| may_see(s)).collect(),
        finished: finished.into_iter().filter(|s| may_see(s)).collect(),
        can_manage: ctx.can(Permission::ManageOrganization),
    };
    render(StatusCode::OK, &page)
}

pub async fn cancel(ctx: Ctx, Path(schedule_id): Path<i64>) -> AppResult<Response> {
    let schedule = schedules::find(&ctx.state, schedule_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if schedule.state != "pending" {
        ctx.flash(
            "info",
            format!("The archive of {} is no longer pending.", schedule.key_name),
        )
        .await;
    } else if schedules::cancel(
        &ctx.state,
        &ctx.caller(),
        &schedule,
        "cancelled by an administrator",
    )
    .await?
    {
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
