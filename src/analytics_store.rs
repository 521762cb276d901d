//! Usage and cost per actor — person, service account, cloud identity or API key — from the
//! Usage and Cost Analytics API (admin-api.md §8.6.1), kept in SQLite
//! (migrations/0011_analytics.sql) the way [`crate::usage_store`] keeps the other reports.
//!
//! One row per UTC day, actor, workspace and key: enough for the people page, a person's own
//! history and cost-center attribution (key, then workspace, then person), all answered
//! locally. Days that ended before `now - settle` never change upstream, so a sync fetches
//! from where final data ends (the `analytics_1d` row of `usage_sync`, which also makes every
//! page memo of the store see the change) up to now, 31 days per request as the API allows.
//! A restart resumes from there; history is never fetched twice.
//!
//! An organization that may not read the API (403, or 404 where it does not exist) is not an
//! error: the refusal is kept in `analytics_access` for pages to explain, and asked again at
//! the next sync.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::anthropic::{
    AnalyticsActor, AnalyticsCostRow, AnalyticsGroup, AnalyticsGroupBy, AnalyticsParams,
    AnalyticsUsageRow, ApiError, BucketWidth, Client, CostByActor, UsageByActor,
};
use crate::db::ts;
use crate::usage_store::{lock_unless_reading, parse_ts, progress_of, sync_lock, SyncError};

/// The progress row in `usage_sync`.
pub(crate) const PROGRESS: &str = "analytics_1d";
/// How often the usage job reads cost per person: it settles by the day, and each read is
/// several calls (minutes on a large organization).
pub const REFRESH_EVERY: chrono::Duration = chrono::Duration::minutes(5);
/// A page reads cost per person itself only when the job's last read is older than this (the
/// job is late, or failed): with the usage reports' 150 s, views between the job's reads
/// started reads of their own, up to 3 s each on `xlarge`.
const PAGE_REFRESH_AFTER: chrono::Duration = chrono::Duration::seconds(5 * 60 + 150);
/// How long a page waits for its own read of cost per person before it shows what is stored
/// (or says the first read is running); the read goes on. Long enough for a small
/// organization's read, short enough that a large one's (minutes) does not hold the page.
const PAGE_READ_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
/// The longest range one request may cover.
const WINDOW_DAYS: i64 = 31;
/// Rows per statement of the staging and storing inserts (13 values each, within SQLite's
/// limit on bound values).
const BULK_ROWS: usize = 400;

/// The first day the analytics API reports.
pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
}

/// The first day the API will still answer for: 2026-01-01, or 364 days ago.
pub fn first_day(now: DateTime<Utc>) -> NaiveDate {
    epoch().max(now.date_naive() - chrono::Duration::days(364))
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// What a sync found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// Rows fetched.
    Fetched(usize),
    /// Refreshed less than [`PAGE_REFRESH_AFTER`] ago: nothing asked.
    Fresh,
    /// The organization may not read the API; the API's words.
    Unavailable(String),
}

/// Whether the analytics API answered at the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Never synced yet.
    Unknown,
    Available,
    /// Refused, with the API's message.
    Unavailable(String),
}

/// A refusal that means "this organization cannot read analytics", not a failure.
fn refused(e: &ApiError) -> bool {
    matches!(e.status(), Some(403) | Some(404))
}

pub async fn access(db: &SqlitePool) -> Result<Access, sqlx::Error> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT available, message FROM analytics_access WHERE id = 1")
            .fetch_optional(db)
            .await?;
    Ok(match row {
        None => Access::Unknown,
        Some((1, _)) => Access::Available,
        Some((_, message)) => Access::Unavailable(message),
    })
}

async fn set_access(
    db: &SqlitePool,
    available: bool,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO analytics_access (id, available, message, checked_at) VALUES (1, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET available = excluded.available, message = excluded.message, checked_at = excluded.checked_at",
    )
    .bind(available)
    .bind(message)
    .bind(ts(now))
    .execute(db)
    .await?;
    Ok(())
}

/// `(settled_until, refreshed_at)`, if ever synced.
pub async fn progress(
    db: &SqlitePool,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    progress_of(db, PROGRESS).await
}

/// Brings the store up to `now` (the usage job, and tests).
pub async fn sync(
    api: &Client,
    db: &SqlitePool,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Synced, SyncError> {
    let lock = sync_lock(db, "analytics");
    let _guard = lock.lock().await;
    sync_locked(api, db, settle, now).await
}

/// Like [`sync`], unless the store was refreshed (or refused) less than
/// [`PAGE_REFRESH_AFTER`] ago: pages call this, and normally ask nothing upstream.
pub async fn refresh(
    api: &Client,
    db: &SqlitePool,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Synced, SyncError> {
    // A page never waits long for a read: one takes minutes on a large organization (the
    // job's first after a restart, say), so the page shows what is stored (or says the first
    // read is running) at once when another read is running, and waits for its own at most
    // PAGE_READ_PATIENCE.
    let stored = progress(db).await?;
    let guard = lock_unless_reading(sync_lock(db, "analytics"), stored.is_some()).await?;
    let checked: Option<(i64, String)> =
        sqlx::query_as("SELECT available, checked_at FROM analytics_access WHERE id = 1")
            .fetch_optional(db)
            .await?;
    let recent = |at: DateTime<Utc>| now - at < PAGE_REFRESH_AFTER && at <= now;
    match checked {
        Some((0, at)) if recent(parse_ts(&at)) => {
            return Ok(match access(db).await? {
                Access::Unavailable(m) => Synced::Unavailable(m),
                _ => Synced::Fresh,
            })
        }
        _ => {}
    }
    // Again: where the lock was waited for (the job, tests), the read before it stored them.
    if let Some((_, refreshed_at)) = progress(db).await? {
        if recent(refreshed_at) {
            return Ok(Synced::Fresh);
        }
    }
    // The read goes on when the page stops waiting for it: a first read of a large
    // organization takes minutes, longer than any page waits, and one cut off at the page's
    // deadline would keep nothing (it is stored when complete). Its calls keep their own
    // per-call deadline.
    let (api, db) = (api.clone(), db.clone());
    let read = tokio::spawn(async move {
        let _guard = guard;
        sync_locked(&api, &db, settle, now).await
    });
    let joined = match crate::anthropic::scope_deadline() {
        None => read.await,
        Some(end) => {
            let end = end.min(tokio::time::Instant::now() + PAGE_READ_PATIENCE);
            tokio::time::timeout_at(end, read)
                .await
                .map_err(|_| SyncError::Busy)?
        }
    };
    joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

async fn sync_locked(
    api: &Client,
    db: &SqlitePool,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Synced, SyncError> {
    let oldest = first_day(now);
    let from = match progress(db).await? {
        Some((settled_until, _)) => settled_until.date_naive().max(oldest),
        None => oldest,
    };
    let today = now.date_naive();
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::hours(2));
    // Days that ended before `now - settle` are final.
    let settled = (now - settle).date_naive().max(from);
    sqlx::query("DELETE FROM analytics_staging")
        .execute(db)
        .await?;
    let mut count = 0usize;
    let mut window = from;
    while window <= today {
        let end =
            (window + chrono::Duration::days(WINDOW_DAYS)).min(today + chrono::Duration::days(1));
        let mut params = AnalyticsParams::new(day_start(window));
        params.ending_at = Some(day_start(end));
        params.time_bucket_width = Some(BucketWidth::Day);
        params.limit = Some(1000);
        params.group_by = vec![
            AnalyticsGroupBy::Actor,
            AnalyticsGroupBy::WorkspaceId,
            AnalyticsGroupBy::ApiKeyId,
        ];
        let fetched = async {
            api.pages(&UsageByActor(&params), |rows| {
                count += rows.len();
                stage_usage(db, rows, now)
            })
            .await?;
            api.pages(&CostByActor(&params), |rows| stage_cost(db, rows))
                .await
        };
        match fetched.await {
            Ok(()) => {}
            Err(SyncError::Api(e)) if refused(&e) => {
                sqlx::query("DELETE FROM analytics_staging")
                    .execute(db)
                    .await?;
                set_access(db, false, e.message(), now).await?;
                return Ok(Synced::Unavailable(e.message().to_owned()));
            }
            Err(e) => return Err(e),
        }
        window = end;
    }
    // Each day moves in its own transaction (the first sync is a year of days), the last one
    // with the progress: a sync stopped half-way is redone from the old progress.
    let mut day = from;
    while day < today {
        let mut tx = crate::db::write_tx(db).await?;
        move_day(&mut tx, day).await?;
        tx.commit().await?;
        day = day.succ_opt().unwrap_or(today);
    }
    let mut tx = crate::db::write_tx(db).await?;
    move_day(&mut tx, today).await?;
    sqlx::query(
        "INSERT INTO usage_sync (kind, settled_until, refreshed_at) VALUES (?, ?, ?) \
         ON CONFLICT (kind) DO UPDATE SET settled_until = excluded.settled_until, refreshed_at = excluded.refreshed_at",
    )
    .bind(PROGRESS)
    .bind(ts(day_start(settled)))
    .bind(ts(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    set_access(db, true, "", now).await?;
    Ok(Synced::Fetched(count))
}

/// The store's key of a row's actor: `('', '')` when the API could not attribute it.
fn actor_key(actor: Option<&AnalyticsActor>) -> (String, String) {
    match actor {
        None | Some(AnalyticsActor::Unknown) => (String::new(), String::new()),
        Some(a) => (a.kind().to_owned(), a.id()),
    }
}

type StagedRow = (String, String, String, String, String, [i64; 6], String);

fn staged(
    report: &str,
    day: DateTime<Utc>,
    g: &AnalyticsGroup,
    m: [i64; 6],
    amount: String,
) -> (String, StagedRow) {
    let (kind, id) = actor_key(g.actor.as_ref());
    (
        report.to_owned(),
        (
            ts(day),
            kind,
            id,
            g.workspace_id.clone().unwrap_or_default(),
            g.api_key_id.clone().unwrap_or_default(),
            m,
            amount,
        ),
    )
}

async fn insert_staged(db: &SqlitePool, rows: Vec<(String, StagedRow)>) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::write_tx(db).await?;
    for chunk in rows.chunks(BULK_ROWS) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO analytics_staging (report, day, actor_type, actor_id, workspace_id, api_key_id, \
             uncached, cache_read, cache_write, output, web_search, requests, amount) ",
        );
        qb.push_values(
            chunk,
            |mut b, (report, (day, kind, id, ws, key, m, amount))| {
                b.push_bind(report.clone())
                    .push_bind(day.clone())
                    .push_bind(kind.clone())
                    .push_bind(id.clone())
                    .push_bind(ws.clone())
                    .push_bind(key.clone());
                for v in m {
                    b.push_bind(*v);
                }
                b.push_bind(amount.clone());
            },
        );
        crate::db::bulk(&mut qb, chunk.len(), BULK_ROWS)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// One page of usage rows into staging, and the names of their actors.
async fn stage_usage(
    db: &SqlitePool,
    rows: Vec<AnalyticsUsageRow>,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    // How the API names each person on this page (the last row wins).
    let mut people: HashMap<String, Named> = HashMap::new();
    let staged_rows = rows
        .iter()
        .map(|r| {
            if let Some(AnalyticsActor::UserActor {
                user_id,
                email_address,
                name,
                deleted,
            }) = &r.group.actor
            {
                people.insert(
                    user_id.clone(),
                    Named {
                        name: name.clone(),
                        email: email_address.clone(),
                        deleted: *deleted,
                    },
                );
            }
            let u = &r.usage;
            let m = [
                u.uncached_input_tokens as i64,
                u.cache_read_input_tokens as i64,
                (u.cache_creation.ephemeral_1h_input_tokens
                    + u.cache_creation.ephemeral_5m_input_tokens) as i64,
                u.output_tokens as i64,
                u.server_tool_use.web_search_requests as i64,
                u.requests.unwrap_or(0) as i64,
            ];
            staged("usage", r.starting_at, &r.group, m, "0".into())
        })
        .collect();
    insert_staged(db, staged_rows).await?;
    for (
        id,
        Named {
            name,
            email,
            deleted,
        },
    ) in people
    {
        sqlx::query(
            "INSERT INTO analytics_actors (actor_type, actor_id, name, email, deleted, seen_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (actor_type, actor_id) DO UPDATE SET name = excluded.name, \
             email = COALESCE(excluded.email, analytics_actors.email), deleted = excluded.deleted, seen_at = excluded.seen_at",
        )
        .bind("user_actor")
        .bind(id)
        .bind(name)
        .bind(email)
        .bind(deleted)
        .bind(ts(now))
        .execute(db)
        .await?;
    }
    Ok(())
}

/// One page of cost rows into staging.
async fn stage_cost(db: &SqlitePool, rows: Vec<AnalyticsCostRow>) -> Result<(), SyncError> {
    let staged_rows = rows
        .iter()
        .map(|r| {
            staged(
                "cost",
                r.starting_at,
                &r.group,
                [0; 6],
                r.cost.amount.normalize().to_string(),
            )
        })
        .collect();
    insert_staged(db, staged_rows).await?;
    Ok(())
}

/// Replaces one stored day with its staged rows, added up exactly.
async fn move_day(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    let key = ts(day_start(day));
    let staged = sqlx::query(
        "SELECT report, actor_type, actor_id, workspace_id, api_key_id, uncached, cache_read, cache_write, \
         output, web_search, requests, amount FROM analytics_staging WHERE day = ?",
    )
    .bind(&key)
    .fetch_all(&mut **tx)
    .await?;
    type Acc = ([i64; 6], Decimal);
    let mut sums: HashMap<(String, String, String, String), Acc> = HashMap::new();
    for r in &staged {
        let acc = sums
            .entry((r.get(1), r.get(2), r.get(3), r.get(4)))
            .or_insert(([0; 6], Decimal::ZERO));
        if r.get::<&str, _>(0) == "usage" {
            for (i, v) in acc.0.iter_mut().enumerate() {
                *v += r.get::<i64, _>(5 + i);
            }
        } else {
            acc.1 += r.get::<&str, _>(11).parse::<Decimal>().unwrap_or_default();
        }
    }
    sqlx::query("DELETE FROM analytics_days WHERE day = ?")
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    let rows: Vec<_> = sums.into_iter().collect();
    for chunk in rows.chunks(BULK_ROWS) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO analytics_days (day, actor_type, actor_id, workspace_id, api_key_id, \
             uncached, cache_read, cache_write, output, web_search, requests, amount) ",
        );
        qb.push_values(chunk, |mut b, ((kind, id, ws, api_key), (m, amount))| {
            b.push_bind(key.clone())
                .push_bind(kind.clone())
                .push_bind(id.clone())
                .push_bind(ws.clone())
                .push_bind(api_key.clone());
            for v in m {
                b.push_bind(*v);
            }
            b.push_bind(amount.normalize().to_string());
        });
        crate::db::bulk(&mut qb, chunk.len(), BULK_ROWS)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DELETE FROM analytics_staging WHERE day = ?")
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading

/// What pages read of the store, through the service layer: reads only (the syncs belong to
/// `crate::service::usage` and the page refresh to `crate::service::cost`).
#[derive(Clone)]
pub struct Store {
    db: SqlitePool,
}

impl Store {
    pub fn new(db: SqlitePool) -> Store {
        Store { db }
    }

    pub async fn lines(&self, select: &Select<'_>) -> Result<Vec<Line>, sqlx::Error> {
        lines(&self.db, select).await
    }

    pub async fn people(&self) -> Result<HashMap<String, Named>, sqlx::Error> {
        people(&self.db).await
    }

    pub async fn access(&self) -> Result<Access, sqlx::Error> {
        access(&self.db).await
    }

    pub async fn progress(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
        progress(&self.db).await
    }
}

/// One stored row: a day's usage and cost of one actor in one workspace with one key.
#[derive(Clone, Debug)]
pub struct Line {
    pub day: NaiveDate,
    /// `user_actor`, …; '' when not attributed.
    pub actor_type: String,
    pub actor_id: String,
    pub workspace_id: String,
    /// '' = no key.
    pub api_key_id: String,
    /// Input (uncached, cache reads and writes) and output tokens.
    pub tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub requests: i64,
    /// Cents, exact.
    pub amount: Decimal,
}

/// Which rows to read: days `[from, to)`, optionally one actor, optionally only some
/// workspaces (a team lead's, by real id; an empty list reads nothing).
#[derive(Clone, Debug)]
pub struct Select<'a> {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub actor_id: Option<&'a str>,
    pub workspaces: Option<&'a [String]>,
}

pub async fn lines(db: &SqlitePool, s: &Select<'_>) -> Result<Vec<Line>, sqlx::Error> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT day, actor_type, actor_id, workspace_id, api_key_id, uncached + cache_read + cache_write, \
         output, requests, amount FROM analytics_days WHERE day >= ",
    );
    qb.push_bind(ts(day_start(s.from)));
    qb.push(" AND day < ");
    qb.push_bind(ts(day_start(s.to)));
    if let Some(actor) = s.actor_id {
        qb.push(" AND actor_id = ");
        qb.push_bind(actor.to_owned());
    }
    if let Some(ws) = s.workspaces {
        if ws.is_empty() {
            qb.push(" AND 0");
        } else {
            qb.push(" AND workspace_id IN (");
            let mut sep = qb.separated(", ");
            for w in ws {
                sep.push_bind(w.clone());
            }
            qb.push(")");
        }
    }
    qb.push(" ORDER BY day");
    // Row by row, as `usage_store::cost_lines`: not every raw row of a month at once.
    let mut rows = qb.build().fetch(db);
    let mut lines = Vec::new();
    while let Some(r) = rows.try_next().await? {
        let input: i64 = r.get(5);
        let output: i64 = r.get(6);
        lines.push(Line {
            day: parse_ts(r.get::<&str, _>(0)).date_naive(),
            actor_type: r.get(1),
            actor_id: r.get(2),
            workspace_id: r.get(3),
            api_key_id: r.get(4),
            tokens: input + output,
            input_tokens: input,
            output_tokens: output,
            requests: r.get(7),
            amount: r.get::<&str, _>(8).parse().unwrap_or_default(),
        });
    }
    Ok(lines)
}

/// How the API last named a person: (name, email, no longer a member).
#[derive(Clone, Debug, Default)]
pub struct Named {
    pub name: Option<String>,
    pub email: Option<String>,
    pub deleted: bool,
}

/// Every person the API named, by user id.
pub async fn people(db: &SqlitePool) -> Result<HashMap<String, Named>, sqlx::Error> {
    let rows: Vec<(String, Option<String>, Option<String>, bool)> = sqlx::query_as(
        "SELECT actor_id, name, email, deleted FROM analytics_actors WHERE actor_type = 'user_actor'",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email, deleted)| {
            (
                id,
                Named {
                    name,
                    email,
                    deleted,
                },
            )
        })
        .collect())
}

/// The days held: the first and the last, if any.
pub async fn span(db: &SqlitePool) -> Result<Option<(NaiveDate, NaiveDate)>, sqlx::Error> {
    let row: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT MIN(day), MAX(day) FROM analytics_days")
            .fetch_one(db)
            .await?;
    Ok(match row {
        (Some(a), Some(b)) => Some((parse_ts(&a).date_naive(), parse_ts(&b).date_naive())),
        _ => None,
    })
}
