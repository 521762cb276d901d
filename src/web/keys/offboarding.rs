//! The offboarding wizard's pages: what the member holds and each key's fate, the ticked
//! choices previewed step by step, and the run. The plan, its rules and the runs are
//! `service::offboarding`; this module turns the form into wanted steps and renders.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::{names, render};
use crate::anthropic::Invite;
use crate::auth::Permission;
use crate::org::keys::is_live;
use crate::service::offboarding::{
    self, PlannedStep, Resumed, RunSummary, StepKind, StoredStep, Wanted,
};
use crate::service::ServiceError;
use crate::web::context::Layout;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{FormBody, Path};
use crate::web::routes::{Access::Needs, Routes};
use crate::web::Ctx;

pub fn routes() -> Routes {
    let manage = Needs(Permission::ManageOrganization);
    Routes::new()
        .get("/members/{user_id}/offboard", manage, plan)
        .post("/members/{user_id}/offboard", manage, preview)
        .post("/members/{user_id}/offboard/start", manage, start)
        .get(
            "/members/{user_id}/offboard/runs/{run_id}",
            manage,
            show_run,
        )
        .post(
            "/members/{user_id}/offboard/runs/{run_id}/resume",
            manage,
            resume,
        )
}

/// The ticked choices (`key:{id}` = deactivate|archive, `membership`, `invite`,
/// `remove_member`) or the preview's `step` fields (`kind|target`), as wanted steps.
fn wanted(user_id: &str, body: &str) -> Vec<Wanted> {
    url::form_urlencoded::parse(body.as_bytes())
        .filter_map(|(name, value)| {
            if let Some(key_id) = name.strip_prefix("key:") {
                return match value.as_ref() {
                    "deactivate" => Some((StepKind::DeactivateKey, key_id.to_owned())),
                    "archive" => Some((StepKind::ArchiveKey, key_id.to_owned())),
                    _ => None,
                };
            }
            match name.as_ref() {
                "membership" => Some((StepKind::RemoveMembership, value.into_owned())),
                "invite" => Some((StepKind::DeleteInvite, value.into_owned())),
                "remove_member" if value == "1" => {
                    Some((StepKind::RemoveMember, user_id.to_owned()))
                }
                "step" => value.split_once('|').and_then(|(kind, target)| {
                    StepKind::parse(kind).map(|k| (k, target.to_owned()))
                }),
                _ => None,
            }
        })
        .collect()
}

pub struct KeyChoice {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub workspace: String,
    pub status: String,
    pub live: bool,
    pub whose: String,
    /// What happens to the key when the member leaves, in plain words.
    pub fate: &'static str,
    /// The choice preselected.
    pub default: &'static str,
    /// Its recent use, so nobody stops a key that was busy yesterday without seeing it.
    pub key_use: super::KeyUse,
}

#[derive(Template)]
#[template(path = "offboarding/plan.html")]
struct PlanPage {
    layout: Layout,
    user_id: String,
    user_label: String,
    is_member: bool,
    is_admin: bool,
    keys: Vec<KeyChoice>,
    memberships: Vec<(String, String, String)>,
    invites: Vec<Invite>,
    runs: Vec<RunSummary>,
    error: Option<String>,
}

async fn render_plan(
    ctx: &Ctx,
    user_id: &str,
    status: StatusCode,
    error: Option<String>,
) -> AppResult<Response> {
    let holdings = offboarding::holdings(&ctx.state, &ctx.caller(), user_id).await?;
    let runs = offboarding::runs_of(&ctx.state, user_id).await?;
    if holdings.user.is_none() && holdings.keys.is_empty() && runs.is_empty() {
        return Err(AppError::NotFound);
    }
    let names = names(&ctx.state);
    let recent = super::RecentUse::read(
        &ctx.state,
        &holdings
            .keys
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
    )
    .await;
    let removable = holdings.removable();
    let page = PlanPage {
        layout: ctx
            .layout(format!("Offboard {}", holdings.label(user_id)), "members")
            .await,
        user_id: user_id.to_owned(),
        user_label: holdings.label(user_id),
        is_member: holdings.user.is_some(),
        is_admin: holdings.is_admin(),
        keys: holdings
            .keys
            .iter()
            .map(|k| {
                let (fate, default) = offboarding::key_fate(k, user_id, removable);
                KeyChoice {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    hint: k.partial_key_hint.clone().unwrap_or_default(),
                    workspace: names.workspace(k),
                    status: k.status.as_str().to_owned(),
                    live: is_live(k),
                    whose: names.whose(k),
                    fate,
                    default,
                    key_use: recent.of(&k.id),
                }
            })
            .collect(),
        memberships: holdings.memberships,
        invites: holdings.invites,
        runs,
        error,
    };
    render(status, &page)
}

pub async fn plan(ctx: Ctx, Path(user_id): Path<String>) -> AppResult<Response> {
    render_plan(&ctx, &user_id, StatusCode::OK, None).await
}

#[derive(Template)]
#[template(path = "offboarding/preview.html")]
struct PreviewPage {
    layout: Layout,
    user_id: String,
    user_label: String,
    steps: Vec<PlannedStep>,
    stop_by_themselves: Vec<String>,
    keep_working: Vec<String>,
    unchecked: Option<String>,
    dropped: Vec<String>,
}

/// A refusal of the plan shown on the plan page (422; 409 when it changed meanwhile).
async fn replan(ctx: &Ctx, user_id: &str, error: ServiceError) -> AppResult<Response> {
    let (status, message) = match error {
        ServiceError::Invalid(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        ServiceError::Conflict(message) => (StatusCode::CONFLICT, message),
        other => return Err(other.into()),
    };
    render_plan(ctx, user_id, status, Some(message)).await
}

/// `POST /members/{id}/offboard`: the ticked choices become an ordered list of steps, each
/// target re-read first (see `service::offboarding::preview`).
pub async fn preview(
    ctx: Ctx,
    Path(user_id): Path<String>,
    FormBody(body): FormBody,
) -> AppResult<Response> {
    let wanted = wanted(&user_id, &body);
    let preview = match offboarding::preview(&ctx.state, &ctx.caller(), &user_id, &wanted).await {
        Ok(preview) => preview,
        Err(error) => return replan(&ctx, &user_id, error).await,
    };
    let page = PreviewPage {
        layout: ctx
            .layout(
                format!("Offboard {}: check the steps", preview.label),
                "members",
            )
            .await,
        user_label: preview.label,
        user_id,
        steps: preview.steps,
        stop_by_themselves: preview.stop_by_themselves,
        keep_working: preview.keep_working,
        unchecked: preview.unchecked,
        dropped: preview.dropped,
    };
    render(StatusCode::OK, &page)
}

/// `POST /members/{id}/offboard/start`: stores the run and its steps, then runs them.
pub async fn start(
    ctx: Ctx,
    Path(user_id): Path<String>,
    FormBody(body): FormBody,
) -> AppResult<Response> {
    let wanted = wanted(&user_id, &body);
    let run_id = match offboarding::start(&ctx.state, &ctx.caller(), &user_id, &wanted).await {
        Ok(run_id) => run_id,
        Err(error) => return replan(&ctx, &user_id, error).await,
    };
    Ok(Redirect::to(&format!("/members/{user_id}/offboard/runs/{run_id}")).into_response())
}

/// `POST …/runs/{run}/resume`: retries only the unfinished steps.
pub async fn resume(ctx: Ctx, Path((user_id, run_id)): Path<(String, i64)>) -> AppResult<Response> {
    match offboarding::resume(&ctx.state, &ctx.caller(), &user_id, run_id).await? {
        Resumed::Ran => {}
        Resumed::AlreadyComplete => {
            ctx.flash("info", "This offboarding is already complete.")
                .await
        }
        Resumed::Running => {
            ctx.flash(
                "info",
                "This offboarding is running right now; reload the page in a moment.",
            )
            .await
        }
    }
    Ok(Redirect::to(&format!("/members/{user_id}/offboard/runs/{run_id}")).into_response())
}

#[derive(Template)]
#[template(path = "offboarding/run.html")]
struct RunPage {
    layout: Layout,
    user_id: String,
    run_id: i64,
    user_label: String,
    created_at: String,
    created_by: String,
    state: String,
    steps: Vec<StoredStep>,
}

pub async fn show_run(
    ctx: Ctx,
    Path((user_id, run_id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let run = offboarding::run(&ctx.state, &user_id, run_id).await?;
    let steps = offboarding::steps_of(&ctx.state, run.id).await?;
    let page = RunPage {
        layout: ctx
            .layout(format!("Offboarding {}", run.user_label), "members")
            .await,
        user_id: run.user_id,
        run_id: run.id,
        user_label: run.user_label,
        created_at: run.created_at,
        created_by: run.created_by,
        state: run.state,
        steps,
    };
    render(StatusCode::OK, &page)
}
