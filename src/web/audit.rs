//! The audit log for owners, admins and auditors: filter, read a record, export.

use crate::web::extract::{Path, Query};
use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::present;
use super::Ctx;
use crate::audit::{Action, ChainReport, ExportFormat, Filter, Outcome, Record, Resolution};

use crate::auth::Permission;
use crate::service::chain;

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
    let field = if end_of_day { "until" } else { "since" };
    let date = crate::web::present::day(&value, field).map_err(AppError::BadRequest)?;
    let date = if end_of_day {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

/// What the action filter was given: a known code or area (`member`, `auth.`), passed on as
/// it is, or words that matched the codes and labels of these actions.
#[derive(Debug, PartialEq)]
pub enum ActionChoice {
    Any,
    Exact(String),
    /// Typed words matching several actions: the page offers them to choose from.
    Several(Vec<Action>),
    /// Typed words matching nothing.
    Unknown(String),
}

/// Reads the action filter. Codes and dotted areas keep the log's own prefix match; anything
/// else is looked for *inside* every code and plain label ("leak" finds
/// `key.leak_reported`, "role" the three role changes).
pub fn resolve_action(typed: &str) -> ActionChoice {
    let Some(typed) = non_empty(typed) else {
        return ActionChoice::Any;
    };
    let area = typed.trim_end_matches('.');
    let known = Action::ALL.iter().any(|a| {
        a.all_codes()
            .iter()
            .any(|c| *c == area || c.starts_with(&format!("{area}.")))
    });
    if known {
        return ActionChoice::Exact(typed);
    }
    let needle = typed.to_lowercase();
    let found: Vec<Action> = Action::ALL
        .iter()
        .copied()
        .filter(|a| {
            a.all_codes().iter().any(|c| c.contains(&needle))
                || a.label().to_lowercase().contains(&needle)
        })
        .collect();
    match found.as_slice() {
        [] => ActionChoice::Unknown(typed),
        [one] => ActionChoice::Exact(one.code().to_owned()),
        _ => ActionChoice::Several(found),
    }
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, AppError> {
        let action = match resolve_action(&self.action) {
            ActionChoice::Exact(code) => Some(code),
            // Several or none: list nothing rather than everything, and say why on the page.
            ActionChoice::Several(_) | ActionChoice::Unknown(_) => Some("(no such action)".into()),
            ActionChoice::Any => None,
        };
        Ok(Filter {
            actor: non_empty(&self.actor),
            action,
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
        let page = page.map(|p| p.to_string()).unwrap_or_default();
        crate::web::present::query_string(&[
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
            ("source", &self.source),
            ("page", &page),
            ("format", format.unwrap_or_default()),
        ])
    }
}

/// One action as the list shows it: an intent and its outcome are one row.
pub struct AuditRow {
    /// The record the row opens (the intent, when there is one).
    pub seq: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub actor_role: Option<String>,
    pub sentence: String,
    pub code: String,
    /// The final outcome: the outcome record's, or the record's own.
    pub outcome: &'static str,
    pub upstream_status: Option<u16>,
    /// The intent's outcome is not on record yet.
    pub no_outcome_yet: bool,
    /// Set when a crash interrupted the change and the restart resolved it.
    pub interrupted: Option<&'static str>,
    /// The other record of the pair, for the "2 records" link.
    pub pair: Option<i64>,
    pub source_ip: Option<String>,
}

/// The actions of one area, for the picker.
pub struct ActionGroup {
    pub name: &'static str,
    pub actions: Vec<(&'static str, &'static str)>,
}

fn action_groups() -> Vec<ActionGroup> {
    let mut groups: Vec<ActionGroup> = Vec::new();
    for a in Action::ALL {
        match groups.iter_mut().find(|g| g.name == a.group()) {
            Some(g) => g.actions.push((a.code(), a.label())),
            None => groups.push(ActionGroup {
                name: a.group(),
                actions: vec![(a.code(), a.label())],
            }),
        }
    }
    groups
}

/// Folds intents and outcomes into one row per action, newest first. An outcome whose
/// intent is on the same page is shown in the intent's row; one whose intent is not (an
/// outcome filter, or the page edge) is shown on its own, linked to its intent.
fn fold_rows(records: &[Record], outcomes: &HashMap<i64, Record>) -> Vec<AuditRow> {
    let on_page: std::collections::HashSet<i64> = records.iter().map(|r| r.seq).collect();
    let mut rows = Vec::new();
    for r in records {
        if r.intent_seq.is_some_and(|i| on_page.contains(&i)) {
            continue;
        }
        let outcome = if r.outcome == Outcome::Pending {
            outcomes.get(&r.seq)
        } else {
            None
        };
        let final_record = outcome.unwrap_or(r);
        let no_outcome_yet = r.outcome == Outcome::Pending && outcome.is_none();
        rows.push(AuditRow {
            seq: r.intent_seq.unwrap_or(r.seq),
            time: r.time,
            actor: r.actor_name.clone(),
            actor_role: r.actor_role.as_deref().map(crate::labels::code),
            sentence: r.sentence(final_record.outcome, no_outcome_yet),
            code: r.action.clone(),
            outcome: if no_outcome_yet {
                "no outcome yet"
            } else {
                final_record.outcome.as_str()
            },
            upstream_status: final_record.upstream_status.or(r.upstream_status),
            no_outcome_yet,
            interrupted: final_record.resolution().map(Resolution::label),
            pair: outcome.map(|o| o.seq).or(r.intent_seq.map(|_| r.seq)),
            source_ip: r.source_ip.clone(),
        });
    }
    rows
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct IndexPage {
    layout: Layout,
    query: AuditQuery,
    rows: Vec<AuditRow>,
    action_groups: Vec<ActionGroup>,
    /// The typed action was free text: what it matched, for the notice above the list.
    action_choices: Option<Vec<(&'static str, &'static str)>>,
    action_unknown: bool,
    /// The action filter holds something that is not one of the picker's codes (an area
    /// such as `auth.` from a link, or typed words): it stays selected as it was given.
    action_custom: bool,
    /// The picker's value: the code the filter uses, or what was given.
    action_selected: String,
    /// Records newer than the last chain check (not covered by "verified").
    unverified: u64,
    newest_seq: Option<i64>,
    total: u64,
    page: u32,
    pages: u32,
    previous_link: Option<String>,
    next_link: Option<String>,
    csv_link: String,
    jsonl_link: String,
    chain: crate::service::chain::ChainCheck,
    can_acknowledge: bool,
    /// Why observed changes carry no names (the Activity Feed is refused), once.
    feed_notice: Option<String>,
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
        None => {
            ctx.state
                .chain
                .check(&ctx.state.audit, ctx.state.clock.now())
                .await?
        }
    };
    // "Verified" covers records up to the check; say how many came after it.
    let (newest, _) = ctx.state.audit.query(&Filter::default(), 1, 0).await?;
    let newest_seq = newest.first().map(|r| r.seq);
    let verified_up_to = match &chain.report {
        ChainReport::Intact { last_seq, .. } => last_seq.unwrap_or(0),
        ChainReport::Broken { .. } => 0,
    };
    // Seqs are contiguous (no deletes; pruning takes only the oldest), so this is a count. The
    // record a re-check writes of itself comes right after what it verified: not news.
    let only_the_check_itself = newest.first().is_some_and(|r| {
        r.seq == verified_up_to + 1 && r.action == crate::audit::Action::AuditVerified.code()
    });
    let unverified = match (&chain.report, newest_seq) {
        (ChainReport::Intact { .. }, _) if only_the_check_itself => 0,
        (ChainReport::Intact { .. }, Some(n)) => n.saturating_sub(verified_up_to).max(0) as u64,
        _ => 0,
    };
    // Typed words that found one action select it in the picker.
    let action_selected = match resolve_action(&query.action) {
        ActionChoice::Exact(code) => code,
        _ => query.action.trim().to_owned(),
    };
    let (action_choices, action_unknown) = match resolve_action(&query.action) {
        ActionChoice::Several(list) => (
            Some(list.iter().map(|a| (a.code(), a.label())).collect()),
            false,
        ),
        ActionChoice::Unknown(_) => (None, true),
        _ => (None, false),
    };
    let page_view = IndexPage {
        layout: ctx.layout("Audit log", "audit").await,
        previous_link: (page > 1)
            .then(|| format!("/audit?{}", query.query_string(Some(page - 1), None))),
        next_link: (page < pages)
            .then(|| format!("/audit?{}", query.query_string(Some(page + 1), None))),
        csv_link: format!("/audit/export?{}", query.query_string(None, Some("csv"))),
        jsonl_link: format!("/audit/export?{}", query.query_string(None, Some("jsonl"))),
        rows: fold_rows(&records, &outcomes),
        action_custom: !action_selected.is_empty()
            && Action::ALL.iter().all(|a| a.code() != action_selected),
        action_selected,
        action_groups: action_groups(),
        action_choices,
        action_unknown,
        unverified,
        newest_seq,
        query,
        total,
        page,
        pages,
        // Auditors review the log; whether a break is dealt with is for owners and admins.
        can_acknowledge: matches!(chain.report, ChainReport::Broken { .. })
            && ctx.can(Permission::ManageOrganization)
            && page_view_alert(&ctx).await,
        feed_notice: chain::feed_notice(&ctx.state).await,
        chain,
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page_view)
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

/// Before and after side by side in plain words (`amount_cents 150000 → 40000` reads
/// "Amount $1,500.00 → $400.00"), field by field when either is an object.
/// `action` names a lone value: a role change's before and after are roles.
fn diff_rows(details: &serde_json::Value, action: &str) -> Vec<DiffRow> {
    use serde_json::{Map, Value};
    let (before, after) = (details.get("before"), details.get("after"));
    if before.is_none() && after.is_none() {
        return Vec::new();
    }
    let empty = Map::new();
    fn object<'a>(
        v: Option<&'a Value>,
        empty: &'a Map<String, Value>,
    ) -> Option<&'a Map<String, Value>> {
        match v {
            Some(Value::Object(o)) => Some(o),
            None | Some(Value::Null) => Some(empty),
            Some(_) => None,
        }
    }
    match (object(before, &empty), object(after, &empty)) {
        (Some(b), Some(a)) if !(b.is_empty() && a.is_empty()) => {
            let mut fields: Vec<&String> = b.keys().chain(a.keys()).collect();
            fields.sort();
            fields.dedup();
            fields
                .into_iter()
                .map(|field| DiffRow {
                    field: present::field_name(field),
                    before: present::field_value(field, b.get(field)),
                    after: present::field_value(field, a.get(field)),
                    changed: b.get(field) != a.get(field),
                })
                .collect()
        }
        _ => {
            let field = if action.ends_with("role_changed") {
                "role"
            } else {
                "value"
            };
            vec![DiffRow {
                field: present::field_name(field),
                before: present::field_value(field, before),
                after: present::field_value(field, after),
                changed: before != after,
            }]
        }
    }
}

#[derive(Template)]
#[template(path = "audit/show.html")]
struct ShowPage {
    layout: Layout,
    record: Record,
    /// The action and the actor's role in plain words.
    action_label: String,
    actor_role: Option<String>,
    /// For an intent: its outcome record, if it has one.
    outcome: Option<Record>,
    details: String,
    diff: Vec<DiffRow>,
    /// Who made an observed change, from the Activity Feed.
    seen_in_feed: Option<SeenInFeed>,
    /// The later record that named who made it (the activity arrived after this record).
    attributed_in: Option<i64>,
    /// For an attribution record: the observed record it names the maker of.
    attributes: Option<i64>,
}

/// The Activity Feed's word on an observed change.
pub struct SeenInFeed {
    pub actor: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub at: String,
    pub activity_type: String,
}

fn seen_in_feed(details: &serde_json::Value) -> Option<SeenInFeed> {
    let seen = details.get("seen_in_feed")?;
    let text = |f: &str| seen[f].as_str().map(str::to_owned);
    Some(SeenInFeed {
        actor: text("actor")?,
        ip: text("ip"),
        user_agent: text("user_agent"),
        at: text("at").unwrap_or_default(),
        activity_type: text("activity_type").unwrap_or_default(),
    })
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
    let mut seen = seen_in_feed(&record.details);
    let mut attributed_in = None;
    if record.is_observed() && seen.is_none() {
        if let Some(later) = ctx.state.audit.attribution_of(seq).await? {
            seen = seen_in_feed(&later.details);
            attributed_in = Some(later.seq);
        }
    }
    let attributes = (record.action == Action::ObservedAttributed.code())
        .then(|| record.details["record"].as_i64())
        .flatten();
    let page = ShowPage {
        action_label: crate::labels::action(&record.action),
        actor_role: record.actor_role.as_deref().map(crate::labels::code),
        outcome,
        layout: ctx.layout(format!("Audit record {seq}"), "audit").await,
        diff: diff_rows(&record.details, &record.action),
        seen_in_feed: seen,
        attributed_in,
        attributes,
        record,
        details,
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

/// Streams the filtered records; the export itself is audited.
pub async fn export(ctx: Ctx, Query(query): Query<AuditQuery>) -> AppResult<Response> {
    ctx.require(Permission::ViewAudit).await?;
    let filter = query.filter()?;
    let (format, content_type, extension) = match query.format.as_str() {
        "csv" => (ExportFormat::Csv, "text/csv; charset=utf-8", "csv"),
        _ => (ExportFormat::Jsonl, "application/x-ndjson", "jsonl"),
    };
    chain::record_export(
        &ctx.state,
        &ctx.caller(),
        extension,
        query.query_string(None, None),
    )
    .await?;
    let stream = ctx.state.audit.export_stream(filter, format);
    let filename = format!(
        "attachment; filename=\"orgkeeper-audit-{}.{extension}\"",
        ctx.state.clock.now().format("%Y%m%d-%H%M%S")
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
    let (intact, message) = chain::verify_now(&ctx.state, &ctx.caller()).await?;
    ctx.flash(if intact { "success" } else { "error" }, message)
        .await;
    Ok(axum::response::Redirect::to("/audit").into_response())
}

/// Acknowledges the current break so the banner stops for everyone (owners and admins).
pub async fn acknowledge(ctx: Ctx) -> AppResult<Response> {
    let seq = chain::acknowledge_break(&ctx.state, &ctx.caller()).await?;
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
    use serde_json::json;

    #[test]
    fn before_and_after_objects_are_compared_field_by_field() {
        let rows = diff_rows(
            &json!({ "before": { "role": "user", "name": "A" }, "after": { "role": "developer", "name": "A" } }),
            "member.role_changed",
        );
        let changed: Vec<_> = rows
            .iter()
            .filter(|r| r.changed)
            .map(|r| r.field.as_str())
            .collect();
        assert_eq!(changed, vec!["Role"]);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn a_spend_limit_reads_in_dollars_even_when_there_was_none_before() {
        let rows = diff_rows(
            &json!({ "before": null, "after": { "amount_cents": "40000" } }),
            "spend_limit.set",
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].field.as_str(),
                rows[0].before.as_str(),
                rows[0].after.as_str()
            ),
            ("Amount", "—", "$400.00")
        );
        let rows = diff_rows(
            &json!({ "before": { "amount_cents": "150000" }, "after": { "amount_cents": "40000" } }),
            "spend_limit.set",
        );
        assert_eq!(
            (rows[0].before.as_str(), rows[0].after.as_str()),
            ("$1,500.00", "$400.00")
        );
    }

    #[test]
    fn plain_before_and_after_values_make_one_row() {
        let rows = diff_rows(
            &json!({ "before": "viewer", "after": "admin" }),
            "account.role_changed",
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].field.as_str(),
                rows[0].before.as_str(),
                rows[0].after.as_str()
            ),
            ("Role", "Viewer", "Admin")
        );
        let rows = diff_rows(
            &json!({ "before": "old name", "after": "new name" }),
            "key.renamed",
        );
        assert_eq!(rows[0].after, "new name");
    }
}
