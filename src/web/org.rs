//! The organization model's own pages: "Refresh now", and the access review built from its
//! history ("who could use workspace X, with which role, and which keys were active, on D").

use askama::Template;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Deserialize;

use super::context::{Ctx, Layout};
use super::error::{AppError, AppResult};
use super::extract::Query;
use super::page::render;
use super::routes::{Access, Routes};
use crate::auth::Permission;
use crate::org::store::Held;
use crate::service::sync;

pub fn routes() -> Routes {
    Routes::new()
        .post(
            "/sync",
            Access::Needs(Permission::ManageOrganization),
            refresh,
        )
        .get(
            "/access-review",
            Access::Needs(Permission::ViewAudit),
            review,
        )
        .get(
            "/access-review.csv",
            Access::Needs(Permission::ViewAudit),
            review_csv,
        )
}

/// Reads the whole organization now (bounded like every sync) and goes back to the page.
async fn refresh(ctx: Ctx, headers: HeaderMap) -> AppResult<Response> {
    match sync::run(&ctx.state).await {
        Ok(report) if report.observed > 0 => {
            let n = report.observed;
            let s = if n == 1 { "" } else { "s" };
            ctx.flash("success", format!("Refreshed. {n} change{s} made outside Orgkeeper were found and recorded in the audit log.")).await;
        }
        Ok(_) => {
            ctx.flash("success", "Refreshed: the organization data is current.")
                .await
        }
        Err(sync::SyncError::Api(error)) => {
            ctx.flash(
                "error",
                format!(
                    "The refresh failed, so pages still show the earlier data. {}",
                    error.user_message()
                ),
            )
            .await
        }
        Err(sync::SyncError::Service(error)) => return Err(error.into()),
    }
    // Back to the page the button was on: only its path, so never to another site.
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        })
        .unwrap_or_else(|| "/".to_owned());
    Ok(Redirect::to(&back).into_response())
}

#[derive(Deserialize, Default)]
pub struct ReviewQuery {
    #[serde(default)]
    workspace: String,
    /// A day (`2026-11-30`, meaning its end) or a moment (`2026-11-30T14:00`), UTC.
    #[serde(default)]
    at: String,
}

/// One person who could use the workspace.
pub struct Holder {
    pub name: String,
    pub email: String,
    pub removed: bool,
    /// Role codes, as the CSV gives them (`workspace_developer`).
    pub workspace_role: String,
    pub org_role: String,
    /// As stored (RFC 3339), for the CSV.
    pub since: String,
    pub held_since: Since,
}

impl Holder {
    /// The roles in plain words, as the page shows them ("Workspace developer").
    pub fn workspace_role_label(&self) -> String {
        crate::labels::code(&self.workspace_role)
    }

    pub fn org_role_label(&self) -> String {
        if self.org_role.is_empty() {
            String::new()
        } else {
            crate::labels::code(&self.org_role)
        }
    }
}

pub struct ActiveKey {
    pub id: String,
    pub name: String,
    pub since: String,
    pub held_since: Since,
}

/// Since when a role or key status held, as the page says it.
pub enum Since {
    /// A moment after Orgkeeper's history began.
    At(DateTime<Utc>),
    /// Held when the history began: since then at least, before then nobody knows.
    HistoryStart(DateTime<Utc>),
    /// A stored value that is not a moment (shown as stored).
    Text(String),
}

impl Since {
    fn read(stored: &str, baseline: Option<DateTime<Utc>>) -> Self {
        match DateTime::parse_from_rfc3339(stored) {
            Ok(at) => {
                let at = at.with_timezone(&Utc);
                match baseline {
                    Some(start) if at <= start => Since::HistoryStart(start),
                    _ => Since::At(at),
                }
            }
            Err(_) => Since::Text(stored.to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "org/access_review.html")]
struct ReviewPage {
    layout: Layout,
    workspaces: Vec<(String, String)>,
    workspace: String,
    workspace_name: String,
    at_input: String,
    /// The moment reviewed.
    at: Option<DateTime<Utc>>,
    error: Option<String>,
    /// When Orgkeeper's history starts, if the moment reviewed is before it.
    before_baseline: Option<DateTime<Utc>>,
    people: Vec<Holder>,
    keys: Vec<ActiveKey>,
    csv_query: String,
}

/// The moment a review asks about: the end of a day, or an exact time.
fn parse_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(now);
    }
    if NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        let day = crate::web::present::day(text, "review")?;
        let end = NaiveDateTime::new(day, NaiveTime::from_hms_opt(23, 59, 59).expect("valid"));
        return Ok(end.and_utc().min(now));
    }
    if let Some(at) = crate::web::present::moment(text, "review") {
        return Ok(at?.and_utc());
    }
    Err(format!(
        "\"{text}\" is not a date. Use a day such as 2026-11-30, or a moment such as 2026-11-30T14:00 (UTC)."
    ))
}

struct Review {
    at: DateTime<Utc>,
    people: Vec<Holder>,
    keys: Vec<ActiveKey>,
}

async fn build(ctx: &Ctx, workspace: &str, at: DateTime<Utc>) -> AppResult<Review> {
    let held = ctx.state.org.held_at(workspace, at).await?;
    let baseline = ctx.state.org.baseline_at().await?;
    let snapshot = ctx.state.org.snapshot();
    let org_role = |user: &str| {
        held.iter()
            .find(|h| h.kind == "org_role" && h.subject == user)
            .map(|h| h.value.clone())
            .unwrap_or_default()
    };
    let mut people: Vec<Holder> = held
        .iter()
        .filter(|h| h.kind == "workspace_role" && h.scope == workspace)
        .map(|h: &Held| {
            let (name, email, removed) = match snapshot.person(&h.subject) {
                Some((user, present)) => (user.name.clone(), user.email.clone(), !present),
                None => (String::new(), h.subject.clone(), false),
            };
            Holder {
                name,
                email,
                removed,
                workspace_role: h.value.clone(),
                org_role: org_role(&h.subject),
                since: h.since.clone(),
                held_since: Since::read(&h.since, baseline),
            }
        })
        .collect();
    people.sort_by(|a, b| a.email.cmp(&b.email));
    let mut keys: Vec<ActiveKey> = held
        .iter()
        .filter(|h| h.kind == "key_status" && h.scope == workspace && h.value == "active")
        .map(|h| ActiveKey {
            name: snapshot
                .key(&h.subject)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
            id: h.subject.clone(),
            since: h.since.clone(),
            held_since: Since::read(&h.since, baseline),
        })
        .collect();
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Review { at, people, keys })
}

async fn review(ctx: Ctx, Query(query): Query<ReviewQuery>) -> AppResult<Response> {
    let snapshot = ctx.state.org.snapshot();
    let workspaces: Vec<(String, String)> = snapshot
        .workspaces
        .iter()
        .map(|w| (w.id.clone(), w.name.clone()))
        .collect();
    let workspace = if query.workspace.is_empty() {
        workspaces.first().map(|w| w.0.clone()).unwrap_or_default()
    } else {
        query.workspace.clone()
    };
    let workspace_name = workspaces
        .iter()
        .find(|w| w.0 == workspace)
        .map(|w| w.1.clone())
        .unwrap_or_else(|| workspace.clone());
    let now = ctx.state.clock.now();
    let (review, error) = match parse_at(&query.at, now) {
        Ok(at) => (Some(build(&ctx, &workspace, at).await?), None),
        Err(message) => (None, Some(message)),
    };
    let baseline = ctx.state.org.baseline_at().await?;
    let before_baseline = match (&review, baseline) {
        (Some(r), Some(b)) if r.at < b => Some(b),
        _ => None,
    };
    let at = review.as_ref().map(|r| r.at);
    let csv_query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("workspace", &workspace)
        .append_pair("at", &query.at)
        .finish();
    let (people, keys) = review.map(|r| (r.people, r.keys)).unwrap_or_default();
    let page = ReviewPage {
        layout: ctx.layout("Access review", "audit").await,
        workspaces,
        workspace,
        workspace_name,
        at_input: query.at.clone(),
        at,
        error,
        before_baseline,
        people,
        keys,
        csv_query,
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(status, &page)
}

async fn review_csv(ctx: Ctx, Query(query): Query<ReviewQuery>) -> AppResult<Response> {
    let at = parse_at(&query.at, ctx.state.clock.now()).map_err(AppError::BadRequest)?;
    let review = build(&ctx, &query.workspace, at).await?;
    let at_text = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut out =
        String::from("as_of,workspace_id,kind,id,name,email,role,org_role,removed,since\n");
    let cell = |s: &str| crate::csv::text(s);
    for p in &review.people {
        out.push_str(&format!(
            "{at_text},{},person,,{},{},{},{},{},{}\n",
            cell(&query.workspace),
            cell(&p.name),
            cell(&p.email),
            cell(&p.workspace_role),
            cell(&p.org_role),
            p.removed,
            cell(&p.since),
        ));
    }
    for k in &review.keys {
        out.push_str(&format!(
            "{at_text},{},api_key,{},{},,active,,,{}\n",
            cell(&query.workspace),
            cell(&k.id),
            cell(&k.name),
            cell(&k.since),
        ));
    }
    let filename = format!(
        "attachment; filename=\"orgkeeper-access-review-{}.csv\"",
        at.format("%Y%m%d-%H%M")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        out,
    )
        .into_response())
}
