//! The audit log for owners, admins and auditors: filter, read a record, export.

use crate::web::extract::{Path, Query};
use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::Ctx;
use crate::audit::{Action, ChainReport, ExportFormat, Filter, Outcome, Record, Resolution};
use crate::auth::Permission;

const PAGE_SIZE: u32 = 50;

#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    q: String,
    /// `observed` (changes seen outside Orgkeeper) or `orgkeeper` (everything else).
    #[serde(default)]
    source: String,
    #[serde(default)]
    page: u32,
    #[serde(default)]
    format: String,
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A date from the filter form: `since` is the start of that day, `until` the start of the
/// next one (the filter's upper bound is exclusive).
fn day(value: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(value) = non_empty(value) else {
        return Ok(None);
    };
    let date = NaiveDate::parse_from_str(&value, "%Y-%m-%d")
        .map_err(|_| AppError::BadRequest(format!("{value:?} is not a date (use YYYY-MM-DD).")))?;
    let date = if end_of_day {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, AppError> {
        Ok(Filter {
            actor: non_empty(&self.actor),
            action: non_empty(&self.action),
            target: non_empty(&self.target),
            outcome: match non_empty(&self.outcome) {
                Some(outcome) => Some(outcome.parse::<Outcome>().map_err(|_| {
                    AppError::BadRequest(format!("{outcome:?} is not an outcome."))
                })?),
                None => None,
            },
            since: day(&self.since, false)?,
            until: day(&self.until, true)?,
            text: non_empty(&self.q),
            observed: match self.source.trim() {
                "" => None,
                "observed" => Some(true),
                "orgkeeper" => Some(false),
                other => {
                    return Err(AppError::BadRequest(format!(
                        "{other:?} is not a source (use observed or orgkeeper)."
                    )))
                }
            },
        })
    }

    /// The current filters as a query string, for paging and export links.
    fn query_string(&self, page: Option<u32>, format: Option<&str>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
            ("source", &self.source),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(key, value.trim());
            }
        }
        if let Some(page) = page {
            out.append_pair("page", &page.to_string());
        }
        if let Some(format) = format {
            out.append_pair("format", format);
        }
        out.finish()
    }
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct IndexPage {
    layout: Layout,
    query: AuditQuery,
    records: Vec<Record>,
    /// The outcome record of each intent on the page that has one.
    outcomes: HashMap<i64, Record>,
    total: u64,
    page: u32,
    pages: u32,
    previous_link: Option<String>,
    next_link: Option<String>,
    csv_link: String,
    jsonl_link: String,
    chain: crate::service::chain::ChainCheck,
    can_acknowledge: bool,
}

impl IndexPage {
    fn outcome_of(&self, intent: &i64) -> Option<&Record> {
        self.outcomes.get(intent)
    }
}

pub async fn index(ctx: Ctx, Query(query): Query<AuditQuery>) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let filter = query.filter()?;
    let page = query.page.max(1);
    let (records, total) = ctx
        .state
        .audit
        .query(&filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
    let pending: Vec<i64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Pending)
        .map(|r| r.seq)
        .collect();
    let outcomes = ctx.state.audit.outcomes_of(&pending).await?;
    let pages = (total as u32).div_ceil(PAGE_SIZE).max(1);
    // The last scheduled or on-demand check; the first visit after start-up checks now.
    let chain = match ctx.state.chain.last() {
        Some(check) => check,
        None => ctx.state.chain.check(&ctx.state.audit).await?,
    };
    let page_view = IndexPage {
        layout: ctx.layout("Audit log", "audit").await,
        previous_link: (page > 1)
            .then(|| format!("/audit?{}", query.query_string(Some(page - 1), None))),
        next_link: (page < pages)
            .then(|| format!("/audit?{}", query.query_string(Some(page + 1), None))),
        csv_link: format!("/audit/export?{}", query.query_string(None, Some("csv"))),
        jsonl_link: format!("/audit/export?{}", query.query_string(None, Some("jsonl"))),
        query,
        records,
        outcomes,
        total,
        page,
        pages,
        can_acknowledge: matches!(chain.report, ChainReport::Broken { .. })
            && page_view_alert(&ctx).await,
        chain,
    };
    Ok(Html(page_view.render().map_err(anyhow::Error::from)?).into_response())
}

/// Whether the current break is still unacknowledged (so the page offers to acknowledge it).
async fn page_view_alert(ctx: &Ctx) -> bool {
    crate::service::chain::unacknowledged_break(&ctx.state)
        .await
        .is_some()
}

/// One line of the before/after comparison on a record's page.
pub struct DiffRow {
    pub field: String,
    pub before: String,
    pub after: String,
    pub changed: bool,
}

fn show_value(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => "—".to_owned(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Before and after side by side, field by field when both are objects.
fn diff_rows(details: &serde_json::Value) -> Vec<DiffRow> {
    let (before, after) = (details.get("before"), details.get("after"));
    if before.is_none() && after.is_none() {
        return Vec::new();
    }
    match (before, after) {
        (Some(serde_json::Value::Object(b)), Some(serde_json::Value::Object(a))) => {
            let mut fields: Vec<&String> = b.keys().chain(a.keys()).collect();
            fields.sort();
            fields.dedup();
            fields
                .into_iter()
                .map(|field| DiffRow {
                    field: field.clone(),
                    before: show_value(b.get(field)),
                    after: show_value(a.get(field)),
                    changed: b.get(field) != a.get(field),
                })
                .collect()
        }
        _ => vec![DiffRow {
            field: "value".into(),
            before: show_value(before),
            after: show_value(after),
            changed: before != after,
        }],
    }
}

#[derive(Template)]
#[template(path = "audit/show.html")]
struct ShowPage {
    layout: Layout,
    record: Record,
    /// For an intent: its outcome record, if it has one.
    outcome: Option<Record>,
    details: String,
    diff: Vec<DiffRow>,
}

pub async fn show(ctx: Ctx, Path(seq): Path<i64>) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let record = ctx.state.audit.get(seq).await?.ok_or(AppError::NotFound)?;
    let details = serde_json::to_string_pretty(&record.details).unwrap_or_default();
    let outcome = if record.outcome == Outcome::Pending {
        ctx.state.audit.outcomes_of(&[seq]).await?.remove(&seq)
    } else {
        None
    };
    let page = ShowPage {
        outcome,
        layout: ctx.layout(format!("Audit record {seq}"), "audit").await,
        diff: diff_rows(&record.details),
        record,
        details,
    };
    Ok(Html(page.render().map_err(anyhow::Error::from)?).into_response())
}

/// Streams the filtered records; the export itself is audited.
pub async fn export(ctx: Ctx, Query(query): Query<AuditQuery>) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let filter = query.filter()?;
    let (format, content_type, extension) = match query.format.as_str() {
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8", "csv"),
        _ => (ExportFormat::Jsonl, "application/x-ndjson", "jsonl"),
    };
    ctx.audit(
        Action::AuditExported,
        None,
        json!({ "format": extension, "filter": query.query_string(None, None) }),
        Outcome::Ok,
    )
    .await?;
    let stream = ctx.state.audit.export_stream(filter, format);
    let filename = format!(
        "attachment; filename=\"orgkeeper-audit-{}.{extension}\"",
        Utc::now().format("%Y%m%d-%H%M%S")
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Re-checks the whole chain now.
pub async fn verify_now(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let check = ctx.state.chain.check(&ctx.state.audit).await?;
    let (outcome, message) = match &check.report {
        ChainReport::Intact { records, .. } => (
            Outcome::Ok,
            format!("The chain is intact: {records} records verified."),
        ),
        ChainReport::Broken { seq, reason } => (
            Outcome::Failed,
            format!("The chain is broken at record {seq}: {reason}."),
        ),
    };
    ctx.audit(
        Action::AuditVerified,
        None,
        json!({ "result": message }),
        outcome,
    )
    .await?;
    ctx.flash(
        if outcome == Outcome::Ok {
            "success"
        } else {
            "error"
        },
        message,
    )
    .await;
    Ok(axum::response::Redirect::to("/audit").into_response())
}

/// Acknowledges the current break so the banner stops; the acknowledgement is audited.
pub async fn acknowledge(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let Some((seq, reason)) = crate::service::chain::unacknowledged_break(&ctx.state).await else {
        return Err(AppError::BadRequest(
            "There is no unacknowledged break in the audit chain.".into(),
        ));
    };
    ctx.audit(
        Action::AuditBreakAcknowledged,
        None,
        json!({ "broken_seq": seq, "reason": reason }),
        Outcome::Ok,
    )
    .await?;
    crate::service::chain::acknowledge(&ctx.state.db, seq, &reason, ctx.account.id).await?;
    ctx.flash(
        "success",
        format!("The break at record {seq} is acknowledged; the banner is gone for everyone."),
    )
    .await;
    Ok(axum::response::Redirect::to("/audit").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_and_after_objects_are_compared_field_by_field() {
        let rows = diff_rows(
            &json!({ "before": { "role": "user", "name": "A" }, "after": { "role": "developer", "name": "A" } }),
        );
        let changed: Vec<_> = rows
            .iter()
            .filter(|r| r.changed)
            .map(|r| r.field.as_str())
            .collect();
        assert_eq!(changed, vec!["role"]);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn plain_before_and_after_values_make_one_row() {
        let rows = diff_rows(&json!({ "before": "viewer", "after": "admin" }));
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].before.as_str(), rows[0].after.as_str()),
            ("viewer", "admin")
        );
    }
}
