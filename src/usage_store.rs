//! The local usage store: usage and cost buckets kept in SQLite (migrations/0004_usage.sql).
//!
//! Upstream buckets older than the settling time never change, so each is fetched once. Per
//! report (`usage_1d`, `usage_1h`, `cost_1d`) `usage_sync.settled_until` marks where final data
//! ends; a sync fetches from there to now, replaces everything from there on, and moves the mark
//! to `now - settle`. A restart therefore resumes where the last sync stopped, and a page needs
//! at most the one request that covers the recent, unsettled part. Usage is stored grouped by
//! every dimension the pages offer, so any grouping or filter is answered locally.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::anthropic::shared::{Interner, Shared};
use crate::anthropic::{
    ApiError, BucketWidth, ClaudeCodeRecord, ClaudeCodeUsageParams, Client, CostGroupBy,
    CostReportParams, UsageGroupBy, UsageReportParams,
};
use crate::db::ts;

/// How far back the first sync reaches (the API keeps about 90 days; a little more covers "last
/// month" and the comparison range of "30 days").
pub const HISTORY_DAYS: i64 = 100;
/// Days of usage the Admin API is known to keep; older comparisons are not shown.
pub const API_HISTORY_DAYS: i64 = 90;
/// A page refreshes a report itself only when the store is older than this: the background job
/// refreshes every report once a minute (the API's polling guidance), so pages normally read
/// only the store and wait on nothing.
pub const PAGE_REFRESH_AFTER: chrono::Duration = chrono::Duration::seconds(150);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A page's refresh found another sync of the store running (the job's first read of a
    /// large organization takes minutes) and did not wait past the page's deadline.
    #[error("another sync of the store is running")]
    Busy,
}

/// One stored report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    UsageDay,
    UsageHour,
    CostDay,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::UsageDay, Kind::UsageHour, Kind::CostDay];

    fn name(self) -> &'static str {
        match self {
            Kind::UsageDay => "usage_1d",
            Kind::UsageHour => "usage_1h",
            Kind::CostDay => "cost_1d",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Kind::UsageHour => 3600,
            _ => 86_400,
        }
    }
}

pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub fn floor(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t.timestamp().div_euclid(secs) * secs, 0)
        .single()
        .unwrap_or(t)
}

/// What one sync did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Reports refreshed (others were skipped as fresh enough).
    pub refreshed: Vec<&'static str>,
    pub buckets: usize,
}

/// Each memoized result by its query key, with the reports it reads and their version when it
/// was computed, and the keys being built now.
#[derive(Default)]
struct MemoEntries {
    done: HashMap<String, (Reads, String, Arc<dyn Any + Send + Sync>)>,
    building: std::collections::HashSet<String>,
}

/// Results pages compute from the store, kept until the reports they read change. Each is
/// tagged with those reports' version — every sync's transaction rewrites its `usage_sync` row —
/// so a result is never older than the data, also when another process wrote the store, and a
/// read of one report (cost per person's, every 5 minutes) does not discard results built from
/// the others (the usage page's and the cost pages' figures), with one exception: while
/// one caller builds a key's result for a newer version (the usage job does, right after each
/// round), others get the result of the version before instead of building it a second time.
/// On `xlarge` that build reads a month of cost rows (1.5 s), once a minute. Looking one up
/// costs one small query instead of an aggregation over thousands of rows.
#[derive(Default)]
pub struct Memo {
    entries: std::sync::Mutex<MemoEntries>,
}

/// Enough for every page's default view and a few filters per person; beyond it, results
/// older than their reports go first, then everything.
const MEMO_ENTRIES: usize = 256;
/// Rows per statement of the staging insert: one statement per row is slow for 90 days of
/// hours.
const BULK_ROWS: usize = 500;

/// Clears a key's "being built" mark however its build ends (also when the request that
/// started it is dropped).
struct Building<'a> {
    memo: &'a Memo,
    key: String,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        self.memo.lock().building.remove(&self.key);
    }
}

impl Memo {
    /// The value `build` makes from the `reads` reports for `key` at their current version (or
    /// the previous version's, while someone else builds this one).
    pub async fn get<T, E, Fut>(
        &self,
        store: &Store,
        reads: Reads,
        key: String,
        build: impl FnOnce() -> Fut,
    ) -> Result<Arc<T>, E>
    where
        T: Any + Send + Sync,
        E: From<sqlx::Error>,
        Fut: Future<Output = Result<T, E>>,
    {
        let versions = Versions::read(&store.db).await?;
        let version = versions.of(reads);
        let building = {
            let mut entries = self.lock();
            if let Some((_, at, value)) = entries.done.get(&key) {
                let current = *at == version;
                if current || entries.building.contains(&key) {
                    if let Ok(value) = value.clone().downcast::<T>() {
                        return Ok(value);
                    }
                }
            }
            entries.building.insert(key.clone());
            Building {
                memo: self,
                key: key.clone(),
            }
        };
        // Built from data at least as new as `version`: at worst the next request rebuilds.
        let value = Arc::new(build().await?);
        drop(building);
        let replaced = {
            let mut entries = self.lock();
            if entries.done.len() >= MEMO_ENTRIES {
                entries
                    .done
                    .retain(|_, (of, at, _)| *at == versions.of(*of));
                if entries.done.len() >= MEMO_ENTRIES {
                    entries.done.clear();
                }
            }
            let stored: Arc<dyn Any + Send + Sync> = value.clone();
            entries.done.insert(key, (reads, version, stored))
        };
        // A build reads thousands of rows, and replaces the result of the version before: give
        // back what both freed at once (the cost pages' figures of `xlarge` left about 100 MB
        // until the next sync's release).
        drop(replaced);
        crate::memory::release();
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoEntries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What pages read from the store: usage, cost, budgets and their alerts — and nothing else.
/// Writes (syncs, budgets) belong to `crate::service` and `crate::jobs`, which hold the pool.
#[derive(Clone)]
pub struct Store {
    db: SqlitePool,
}

impl Store {
    pub fn new(db: SqlitePool) -> Store {
        Store { db }
    }

    /// `(settled_until, refreshed_at)` of a report, if it was ever synced.
    pub async fn progress(
        &self,
        kind: Kind,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
        progress(&self.db, kind).await
    }

    /// Every key's tokens (input and output) since `since`, by key id: one query for a page
    /// that shows the recent use of many keys.
    pub async fn key_tokens_since(
        &self,
        since: NaiveDate,
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT api_key_id, \
                    SUM(uncached + cache_read + cache_write_5m + cache_write_1h + output) \
             FROM usage_buckets WHERE width = '1d' AND api_key_id <> '' AND start >= ? \
             GROUP BY api_key_id",
        )
        .bind(since.format("%Y-%m-%d").to_string())
        .fetch_all(&self.db)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// One key's daily input and output tokens since `since`, oldest first.
    pub async fn key_days(
        &self,
        key_id: &str,
        since: NaiveDate,
    ) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
        key_days(&self.db, key_id, since).await
    }

    pub async fn usage_series(
        &self,
        series: &Series<'_>,
    ) -> Result<Vec<(DateTime<Utc>, String, i64)>, sqlx::Error> {
        usage_series(&self.db, series).await
    }

    /// The rows of `query` ([`series_query`]), streamed in order (for exports of any length).
    pub fn stream<'q>(
        &'q self,
        query: &'q mut QueryBuilder<'static, Sqlite>,
    ) -> futures_util::stream::BoxStream<'q, Result<sqlx::sqlite::SqliteRow, sqlx::Error>> {
        query.build().fetch(&self.db)
    }

    pub async fn usage_totals(
        &self,
        width: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        filter: &UsageFilter,
    ) -> Result<[i64; 5], sqlx::Error> {
        usage_totals(&self.db, width, from, to, filter).await
    }

    pub async fn report_rows(
        &self,
        width: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: &[Dim],
        filter: &UsageFilter,
    ) -> Result<Vec<ReportRow>, sqlx::Error> {
        report_rows(&self.db, width, from, to, group, filter).await
    }

    pub async fn cost_lines(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        workspaces: Option<&[String]>,
    ) -> Result<Vec<CostRow>, sqlx::Error> {
        cost_lines(&self.db, from, to, workspaces).await
    }

    pub async fn group_totals(
        &self,
        series: &Series<'_>,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        group_totals(&self.db, series).await
    }

    pub async fn dim_values(&self, dim: Dim) -> Result<Vec<String>, sqlx::Error> {
        dim_values(&self.db, dim).await
    }

    pub async fn budgets(&self) -> Result<Vec<Budget>, sqlx::Error> {
        budgets(&self.db).await
    }

    pub async fn alerts_of_month(
        &self,
        month: &str,
    ) -> Result<Vec<(String, u32, String)>, sqlx::Error> {
        alerts_of_month(&self.db, month).await
    }
}

/// The reports a memoized result is built from (see [`Memo`]).
#[derive(Clone, Copy, Debug)]
pub enum Reads {
    /// The usage report, daily and hourly.
    Usage,
    /// The cost report.
    Cost,
    /// Cost per person (`crate::analytics_store`).
    People,
}

impl Reads {
    fn rows(self) -> &'static [&'static str] {
        match self {
            Reads::Usage => &["usage_1d", "usage_1h"],
            Reads::Cost => &["cost_1d"],
            Reads::People => &[crate::analytics_store::PROGRESS],
        }
    }
}

/// Every report's progress, as [`Memo`] tags its results with.
struct Versions(Vec<(String, String, String)>);

impl Versions {
    async fn read(db: &SqlitePool) -> Result<Versions, sqlx::Error> {
        sqlx::query_as("SELECT kind, settled_until, refreshed_at FROM usage_sync ORDER BY kind")
            .fetch_all(db)
            .await
            .map(Versions)
    }

    /// Changes whenever one of `reads`' reports is synced.
    fn of(&self, reads: Reads) -> String {
        self.0
            .iter()
            .filter(|(kind, _, _)| reads.rows().contains(&kind.as_str()))
            .map(|(kind, settled, refreshed)| format!("{kind} {settled} {refreshed}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Brings every report up to `now`, whatever the last refresh time: used by the background job
/// and by tests.
pub async fn sync(
    api: &Client,
    db: &SqlitePool,
    settle: Duration,
    hourly_days: u32,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    for kind in Kind::ALL {
        report.buckets += sync_kind(api, db, kind, settle, hourly_days, now).await?;
        report.refreshed.push(kind.name());
    }
    Ok(report)
}

/// Refreshes one report unless the store is recent enough ([`PAGE_REFRESH_AFTER`]); returns
/// whether an upstream request was made. Pages call this before reading the store.
pub async fn refresh(
    api: &Client,
    db: &SqlitePool,
    kind: Kind,
    settle: Duration,
    hourly_days: u32,
    now: DateTime<Utc>,
) -> Result<bool, SyncError> {
    let recent = |at: DateTime<Utc>| now - at < PAGE_REFRESH_AFTER && at <= now;
    let stored = progress(db, kind).await?;
    if stored.is_some_and(|(_, at)| recent(at)) {
        return Ok(false);
    }
    let _guard = lock_unless_reading(sync_lock(db, "usage"), stored.is_some()).await?;
    if progress(db, kind).await?.is_some_and(|(_, at)| recent(at)) {
        return Ok(false);
    }
    sync_kind_locked(api, db, kind, settle, hourly_days, now).await?;
    Ok(true)
}

/// The store's sync lock for a page's refresh, unless another read holds it: a page never
/// waits for another read (the job's once a minute, or its first, minutes long on a large
/// organization) but shows what is stored, or says the first read is running. Without a
/// deadline (the job, tests) and with nothing stored, it waits.
pub(crate) async fn lock_unless_reading(
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    stored: bool,
) -> Result<tokio::sync::OwnedMutexGuard<()>, SyncError> {
    match lock.clone().try_lock_owned() {
        Ok(guard) => Ok(guard),
        Err(_) if stored || crate::anthropic::scope_deadline().is_some() => Err(SyncError::Busy),
        Err(_) => Ok(lock.lock_owned().await),
    }
}

/// One sync at a time per database file and store (`"usage"`, `"analytics"`): two pages
/// opened together, or a page and the job, must not fetch twice.
pub(crate) fn sync_lock(
    db: &SqlitePool,
    store: &'static str,
) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    type Locks = std::sync::Mutex<
        HashMap<(std::path::PathBuf, &'static str), std::sync::Arc<tokio::sync::Mutex<()>>>,
    >;
    static LOCKS: std::sync::OnceLock<Locks> = std::sync::OnceLock::new();
    let file = db.connect_options().get_filename().to_path_buf();
    LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((file, store))
        .or_default()
        .clone()
}

/// `(settled_until, refreshed_at)` of a report, if it was ever synced.
pub async fn progress(
    db: &SqlitePool,
    kind: Kind,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    progress_of(db, kind.name()).await
}

/// The `usage_sync` row named `report` (this store's reports, and the analytics store's).
pub(crate) async fn progress_of(
    db: &SqlitePool,
    report: &str,
) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT settled_until, refreshed_at FROM usage_sync WHERE kind = ?")
            .bind(report)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(s, r)| (parse_ts(&s), parse_ts(&r))))
}

async fn sync_kind(
    api: &Client,
    db: &SqlitePool,
    kind: Kind,
    settle: Duration,
    hourly_days: u32,
    now: DateTime<Utc>,
) -> Result<usize, SyncError> {
    let lock = sync_lock(db, "usage");
    let _guard = lock.lock().await;
    sync_kind_locked(api, db, kind, settle, hourly_days, now).await
}

async fn sync_kind_locked(
    api: &Client,
    db: &SqlitePool,
    kind: Kind,
    settle: Duration,
    hourly_days: u32,
    now: DateTime<Utc>,
) -> Result<usize, SyncError> {
    let secs = kind.secs();
    // Hourly rows are kept for `hourly_days` only (daily rows for the whole history): hours
    // are what makes the store large, and the usage page asks for them over short ranges.
    let history = match kind {
        Kind::UsageHour => i64::from(hourly_days),
        _ => HISTORY_DAYS,
    };
    let oldest = floor(now - chrono::Duration::days(history), 86_400);
    let from = match progress(db, kind).await? {
        Some((settled_until, _)) => settled_until.max(oldest),
        None => oldest,
    };
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::hours(2));
    // Buckets that ended before `now - settle` are final.
    let settled = floor(now - settle, secs).max(from);
    // Each page is staged in its own small transaction as it arrives (so about one page is
    // held in memory), and only the final transaction replaces the range: a failed fetch
    // changes nothing, and no write lock is held while waiting for the API. Leftovers of a
    // sync that stopped half-way are cleared first.
    let mut count = 0;
    let mut tx;
    match kind {
        Kind::UsageDay | Kind::UsageHour => {
            let width = if kind == Kind::UsageDay { "1d" } else { "1h" };
            let mut params = UsageReportParams::new(from);
            params.bucket_width = Some(if kind == Kind::UsageDay {
                BucketWidth::Day
            } else {
                BucketWidth::Hour
            });
            // A page holds every group of each of its buckets: on `xlarge` (3,000 series) a
            // week of hours was 375,000 rows, 170 MB live while it was staged, so a page is a
            // day of hours or a week of days (more calls only on the first sync).
            params.limit = Some(if kind == Kind::UsageDay { 7 } else { 24 });
            params.group_by = vec![
                UsageGroupBy::Model,
                UsageGroupBy::WorkspaceId,
                UsageGroupBy::ApiKeyId,
                UsageGroupBy::ServiceTier,
                UsageGroupBy::ContextWindow,
            ];
            sqlx::query("DELETE FROM usage_staging WHERE width = ?")
                .bind(width)
                .execute(db)
                .await?;
            api.pages(&params, |buckets| {
                count += buckets.len();
                stage_usage(db, width, buckets)
            })
            .await?;
            // The range moves in one-day transactions, the last with the sync's progress: the
            // first sync of a large organization is hundreds of thousands of rows, and one
            // transaction that long would keep every other writer (the audit log) waiting
            // past its busy timeout. A sync stopped half-way is redone from the old progress.
            let mut day = from;
            let today = floor(now, 86_400);
            while day < today {
                let next = floor(day, 86_400) + chrono::Duration::days(1);
                let mut chunk = crate::db::write_tx(db).await?;
                move_staged(&mut chunk, width, day, Some(next)).await?;
                chunk.commit().await?;
                day = next;
            }
            tx = crate::db::write_tx(db).await?;
            move_staged(&mut tx, width, day, None).await?;
        }
        Kind::CostDay => {
            let mut params = CostReportParams::new(from);
            params.bucket_width = Some(BucketWidth::Day);
            params.limit = Some(7); // a week of days a page, as for usage (see above)
            params.group_by = vec![CostGroupBy::WorkspaceId, CostGroupBy::Description];
            sqlx::query("DELETE FROM cost_staging").execute(db).await?;
            api.pages(&params, |buckets| {
                count += buckets.len();
                stage_cost(db, buckets)
            })
            .await?;
            tx = crate::db::write_tx(db).await?;
            sqlx::query("DELETE FROM cost_buckets WHERE day >= ?")
                .bind(ts(from))
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO cost_buckets SELECT day, workspace_id, description, amount FROM cost_staging")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cost_staging")
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO usage_sync (kind, settled_until, refreshed_at) VALUES (?, ?, ?) \
         ON CONFLICT (kind) DO UPDATE SET settled_until = excluded.settled_until, refreshed_at = excluded.refreshed_at",
    )
    .bind(kind.name())
    .bind(ts(settled))
    .bind(ts(now))
    .execute(&mut *tx)
    .await?;
    if kind == Kind::UsageHour {
        sqlx::query("DELETE FROM usage_buckets WHERE width = '1h' AND start < ?")
            .bind(ts(oldest))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(count)
}

/// Replaces the stored buckets of `width` in `[from, to)` with the staged ones.
async fn move_staged(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    width: &str,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    // Far past any bucket: an open end.
    let to = to.map_or_else(|| "9999".to_owned(), ts);
    sqlx::query("DELETE FROM usage_buckets WHERE width = ? AND start >= ? AND start < ?")
        .bind(width)
        .bind(ts(from))
        .bind(&to)
        .execute(&mut **tx)
        .await?;
    if width == "1d" {
        // The filters' values (migrations/0016_usage_values.sql), from a day's rows at most.
        for dim in Dim::ALL {
            sqlx::query(&format!(
                "INSERT OR IGNORE INTO usage_values (dim, value) SELECT DISTINCT '{col}', {col} \
                 FROM usage_staging WHERE width = '1d' AND start >= ? AND start < ?",
                col = dim.column()
            ))
            .bind(ts(from))
            .bind(&to)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO usage_buckets SELECT width, start, model, workspace_id, api_key_id, service_tier, context_window, \
         uncached, cache_read, cache_write_5m, cache_write_1h, output, web_search FROM usage_staging \
         WHERE width = ? AND start >= ? AND start < ?",
    )
    .bind(width)
    .bind(ts(from))
    .bind(&to)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM usage_staging WHERE width = ? AND start >= ? AND start < ?")
        .bind(width)
        .bind(ts(from))
        .bind(&to)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes one page of the usage report into the staging table, in one small transaction.
async fn stage_usage(
    db: &SqlitePool,
    width: &'static str,
    buckets: Vec<crate::anthropic::UsageBucket>,
) -> Result<(), SyncError> {
    let rows: Vec<(String, crate::anthropic::UsageResult)> = buckets
        .into_iter()
        .flat_map(|b| {
            let start = ts(b.starting_at);
            b.results.into_iter().map(move |r| (start.clone(), r))
        })
        .collect();
    let mut tx = crate::db::write_tx(db).await?;
    for chunk in rows.chunks(BULK_ROWS) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO usage_staging (width, start, model, workspace_id, api_key_id, service_tier, context_window, uncached, cache_read, cache_write_5m, cache_write_1h, output, web_search) ",
        );
        qb.push_values(chunk, |mut row, (start, r)| {
            row.push_bind(width)
                .push_bind(start.clone())
                .push_bind(r.model.clone().unwrap_or_default())
                .push_bind(r.workspace_id.clone().unwrap_or_default())
                .push_bind(r.api_key_id.clone().unwrap_or_default())
                .push_bind(r.service_tier.clone().unwrap_or_default())
                .push_bind(r.context_window.clone().unwrap_or_default())
                .push_bind(r.uncached_input_tokens as i64)
                .push_bind(r.cache_read_input_tokens as i64)
                .push_bind(r.cache_creation.ephemeral_5m_input_tokens as i64)
                .push_bind(r.cache_creation.ephemeral_1h_input_tokens as i64)
                .push_bind(r.output_tokens as i64)
                .push_bind(r.server_tool_use.web_search_requests as i64);
        });
        // Newer, ungrouped dimensions (geo, speed) can split a group: add them up.
        qb.push(
            " ON CONFLICT DO UPDATE SET uncached = uncached + excluded.uncached, cache_read = cache_read + excluded.cache_read, \
             cache_write_5m = cache_write_5m + excluded.cache_write_5m, cache_write_1h = cache_write_1h + excluded.cache_write_1h, \
             output = output + excluded.output, web_search = web_search + excluded.web_search",
        );
        crate::db::bulk(&mut qb, chunk.len(), BULK_ROWS)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Writes one page of the cost report into the staging table, in one small transaction.
async fn stage_cost(
    db: &SqlitePool,
    buckets: Vec<crate::anthropic::CostBucket>,
) -> Result<(), SyncError> {
    let mut tx = crate::db::write_tx(db).await?;
    for b in buckets {
        // Lines of one day and group are added up exactly before they are stored.
        let mut lines: HashMap<(String, String), Decimal> = HashMap::new();
        for r in b.results {
            *lines
                .entry((
                    r.workspace_id.unwrap_or_default(),
                    r.description.unwrap_or_default(),
                ))
                .or_default() += r.amount;
        }
        for ((ws, desc), amount) in lines {
            sqlx::query("INSERT INTO cost_staging (day, workspace_id, description, amount) VALUES (?, ?, ?, ?)")
                .bind(ts(b.starting_at))
                .bind(ws)
                .bind(desc)
                .bind(amount.normalize().to_string())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// One key's daily input and output tokens since `since` (a day, `YYYY-MM-DD`), oldest first.
pub async fn key_days(
    db: &SqlitePool,
    key_id: &str,
    since: NaiveDate,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT substr(start, 1, 10), \
                SUM(uncached + cache_read + cache_write_5m + cache_write_1h), SUM(output) \
         FROM usage_buckets WHERE width = '1d' AND api_key_id = ? AND start >= ? \
         GROUP BY start ORDER BY start",
    )
    .bind(key_id)
    .bind(since.format("%Y-%m-%d").to_string())
    .fetch_all(db)
    .await
}

/// Each API key's last day with any usage, from the local store (empty until it has synced).
pub async fn key_last_used(db: &SqlitePool) -> Result<HashMap<String, NaiveDate>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT api_key_id, MAX(start) FROM usage_buckets \
         WHERE width = '1d' AND api_key_id <> '' \
           AND (uncached + cache_read + cache_write_5m + cache_write_1h + output + web_search) > 0 \
         GROUP BY api_key_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, start)| (k, parse_ts(&start).date_naive()))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Reading usage

/// A dimension usage can be grouped or filtered by; the names are the store's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Model,
    Workspace,
    ApiKey,
    ServiceTier,
    ContextWindow,
}

impl Dim {
    pub const ALL: [Dim; 5] = [
        Dim::Model,
        Dim::Workspace,
        Dim::ApiKey,
        Dim::ServiceTier,
        Dim::ContextWindow,
    ];

    pub fn column(self) -> &'static str {
        match self {
            Dim::Model => "model",
            Dim::Workspace => "workspace_id",
            Dim::ApiKey => "api_key_id",
            Dim::ServiceTier => "service_tier",
            Dim::ContextWindow => "context_window",
        }
    }

    /// The query parameter (`workspace=ID` is linked from other pages).
    pub fn param(self) -> &'static str {
        match self {
            Dim::Model => "model",
            Dim::Workspace => "workspace",
            Dim::ApiKey => "api_key",
            Dim::ServiceTier => "service_tier",
            Dim::ContextWindow => "context_window",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Dim::Model => "Model",
            Dim::Workspace => "Workspace",
            Dim::ApiKey => "API key",
            Dim::ServiceTier => "Service tier",
            Dim::ContextWindow => "Context window",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.param() == s)
    }
}

/// A token or request count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    Uncached,
    Output,
    CacheRead,
    CacheWrite,
    WebSearch,
}

impl Measure {
    pub const ALL: [Measure; 5] = [
        Measure::Uncached,
        Measure::Output,
        Measure::CacheRead,
        Measure::CacheWrite,
        Measure::WebSearch,
    ];

    pub fn sql(self) -> &'static str {
        match self {
            Measure::Uncached => "uncached",
            Measure::Output => "output",
            Measure::CacheRead => "cache_read",
            Measure::CacheWrite => "cache_write_5m + cache_write_1h",
            Measure::WebSearch => "web_search",
        }
    }

    pub fn param(self) -> &'static str {
        match self {
            Measure::Uncached => "input",
            Measure::Output => "output",
            Measure::CacheRead => "cache_read",
            Measure::CacheWrite => "cache_write",
            Measure::WebSearch => "web_search",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Measure::Uncached => "Input tokens (uncached)",
            Measure::Output => "Output tokens",
            Measure::CacheRead => "Cache read tokens",
            Measure::CacheWrite => "Cache write tokens",
            Measure::WebSearch => "Web search requests",
        }
    }

    pub fn parse(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.param() == s)
    }
}

/// Which stored rows count. `None` lists mean "any"; an empty `Some` matches nothing (a team
/// lead without workspaces). Ids are stored ids: '' for the default workspace / Console usage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageFilter {
    pub by: Vec<(Dim, Vec<String>)>,
    /// Team-lead scope, applied on top of the filters.
    pub workspaces: Option<Vec<String>>,
}

fn push_filters(qb: &mut QueryBuilder<'_, Sqlite>, f: &UsageFilter) {
    let in_list = |qb: &mut QueryBuilder<'_, Sqlite>, col: &str, values: &[String]| {
        if values.is_empty() {
            qb.push(" AND 0");
            return;
        }
        qb.push(format!(" AND {col} IN ("));
        let mut sep = qb.separated(", ");
        for v in values {
            sep.push_bind(v.clone());
        }
        qb.push(")");
    };
    for (dim, values) in &f.by {
        in_list(qb, dim.column(), values);
    }
    if let Some(ws) = &f.workspaces {
        in_list(qb, "workspace_id", ws);
    }
}

/// `(bucket start, group value, sum)` for buckets of `width` in `[from, to)`, ordered by time.
/// `group` `None` gives one series with the group value ''.
/// One usage series: bucket width (`1h`/`1d`), range `[from, to)`, grouping, measure, filter.
#[derive(Clone, Copy)]
pub struct Series<'a> {
    pub width: &'a str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group: Option<Dim>,
    pub measure: Measure,
    pub filter: &'a UsageFilter,
}

pub async fn usage_series(
    db: &SqlitePool,
    series: &Series<'_>,
) -> Result<Vec<(DateTime<Utc>, String, i64)>, sqlx::Error> {
    let mut qb = series_query(series);
    let rows = qb.build().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                parse_ts(r.get::<&str, _>(0)),
                r.get::<String, _>(1),
                r.get::<i64, _>(2),
            )
        })
        .collect())
}

/// `FROM usage_buckets WHERE` one width, `[from, to)` and the filters: the part every usage
/// read shares.
fn push_bucket_range(
    qb: &mut QueryBuilder<'static, Sqlite>,
    width: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &UsageFilter,
) {
    qb.push(" FROM usage_buckets WHERE width = ");
    qb.push_bind(width.to_owned());
    qb.push(" AND start >= ");
    qb.push_bind(ts(from));
    qb.push(" AND start < ");
    qb.push_bind(ts(to));
    push_filters(qb, filter);
}

/// The query behind [`usage_series`], for streaming exports.
pub fn series_query(series: &Series<'_>) -> QueryBuilder<'static, Sqlite> {
    let mut qb = select_sum(series, "start, ", "");
    qb.push(" GROUP BY start, grp ORDER BY start, grp");
    qb
}

/// `SELECT {before}grp, SUM(measure){after}` over the series' buckets and filter.
fn select_sum(series: &Series<'_>, before: &str, after: &str) -> QueryBuilder<'static, Sqlite> {
    let grp = series.group.map_or("''", Dim::column);
    let mut qb = QueryBuilder::new(format!(
        "SELECT {before}{grp} AS grp, CAST(SUM({}) AS INTEGER){after}",
        series.measure.sql()
    ));
    push_bucket_range(&mut qb, series.width, series.from, series.to, series.filter);
    qb
}

/// Totals of every measure over `[from, to)` (read from the daily buckets when the range is
/// whole days, else the hourly ones).
pub async fn usage_totals(
    db: &SqlitePool,
    width: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &UsageFilter,
) -> Result<[i64; 5], sqlx::Error> {
    let mut qb = QueryBuilder::new("SELECT ");
    for (i, m) in Measure::ALL.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push(format!("CAST(COALESCE(SUM({}), 0) AS INTEGER)", m.sql()));
    }
    push_bucket_range(&mut qb, width, from, to, filter);
    let row = qb.build().fetch_one(db).await?;
    let mut out = [0i64; 5];
    for (i, o) in out.iter_mut().enumerate() {
        *o = row.get::<i64, _>(i);
    }
    Ok(out)
}

/// One row of the usage report as the Admin API groups it: a bucket's start, the values of
/// the grouped dimensions (in the order asked; '' for null), and every token count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportRow {
    pub start: DateTime<Utc>,
    pub groups: Vec<String>,
    pub uncached: i64,
    pub cache_read: i64,
    pub cache_write_5m: i64,
    pub cache_write_1h: i64,
    pub output: i64,
    pub web_search: i64,
}

/// The usage report's rows over `[from, to)`, grouped by bucket and `group`, ordered by time.
pub async fn report_rows(
    db: &SqlitePool,
    width: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group: &[Dim],
    filter: &UsageFilter,
) -> Result<Vec<ReportRow>, sqlx::Error> {
    let columns: String = group.iter().map(|d| format!("{}, ", d.column())).collect();
    let mut qb = QueryBuilder::new(format!(
        "SELECT start, {columns}CAST(SUM(uncached) AS INTEGER), CAST(SUM(cache_read) AS INTEGER), \
         CAST(SUM(cache_write_5m) AS INTEGER), CAST(SUM(cache_write_1h) AS INTEGER), \
         CAST(SUM(output) AS INTEGER), CAST(SUM(web_search) AS INTEGER)"
    ));
    push_bucket_range(&mut qb, width, from, to, filter);
    qb.push(format!(
        " GROUP BY start{}",
        group
            .iter()
            .map(|d| format!(", {}", d.column()))
            .collect::<String>()
    ));
    qb.push(" ORDER BY start");
    let rows = qb.build().fetch_all(db).await?;
    let n = group.len();
    Ok(rows
        .into_iter()
        .map(|r| ReportRow {
            start: parse_ts(r.get::<&str, _>(0)),
            groups: (0..n).map(|i| r.get::<String, _>(1 + i)).collect(),
            uncached: r.get(1 + n),
            cache_read: r.get(2 + n),
            cache_write_5m: r.get(3 + n),
            cache_write_1h: r.get(4 + n),
            output: r.get(5 + n),
            web_search: r.get(6 + n),
        })
        .collect())
}

/// Distinct values of a dimension seen in the store (for the filter menus).
pub async fn dim_values(db: &SqlitePool, dim: Dim) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM usage_values WHERE dim = ? ORDER BY value")
        .bind(dim.column())
        .fetch_all(db)
        .await
}

// ---------------------------------------------------------------------------------------------
// Reading cost

/// A day's cost of one workspace and description: (day, workspace id as stored ('' = default
/// workspace), description, exact cents). The ids and descriptions repeat on every day, so
/// each is one shared copy (a month of `xlarge` is 170,000 lines).
pub type CostRow = (NaiveDate, Shared, Shared, Decimal);

/// Daily cost lines in `[from, to)`. `workspaces` limits them (team leads).
pub async fn cost_lines(
    db: &SqlitePool,
    from: NaiveDate,
    to: NaiveDate,
    workspaces: Option<&[String]>,
) -> Result<Vec<CostRow>, sqlx::Error> {
    let day = |d: NaiveDate| ts(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default()));
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT day, workspace_id, description, amount FROM cost_buckets WHERE day >= ",
    );
    qb.push_bind(day(from));
    qb.push(" AND day < ");
    qb.push_bind(day(to));
    push_filters(
        &mut qb,
        &UsageFilter {
            by: Vec::new(),
            workspaces: workspaces.map(<[String]>::to_vec),
        },
    );
    qb.push(" ORDER BY day");
    // Row by row: a month of `xlarge` is 170,000 rows, and all of them fetched at once held
    // about 100 MB of raw rows beside the lines made from them.
    let mut rows = qb.build().fetch(db);
    let mut shared = Interner::default();
    let mut lines = Vec::new();
    while let Some(r) = rows.try_next().await? {
        lines.push((
            parse_ts(r.get::<&str, _>(0)).date_naive(),
            shared.get(r.get::<&str, _>(1)),
            shared.get(r.get::<&str, _>(2)),
            r.get::<&str, _>(3).parse::<Decimal>().unwrap_or_default(),
        ));
    }
    Ok(lines)
}

/// The first day of the month of `d`.
pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The first day of the next month.
pub fn next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(d)
}

// ---------------------------------------------------------------------------------------------
// Claude Code

/// Claude Code records of each day in `[from, to]`. Days the API will no longer change (ended
/// more than an hour plus the settling time ago) are kept; others are fetched every time.
pub async fn claude_code_days(
    api: &Client,
    db: &SqlitePool,
    from: NaiveDate,
    to: NaiveDate,
    settle: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<ClaudeCodeRecord>, SyncError> {
    let settle = chrono::Duration::from_std(settle).unwrap_or(chrono::Duration::hours(2));
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        let key = d.to_string();
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT records FROM claude_code_days WHERE day = ?")
                .bind(&key)
                .fetch_optional(db)
                .await?;
        if let Some((json,)) = stored {
            out.extend(serde_json::from_str::<Vec<ClaudeCodeRecord>>(&json).unwrap_or_default());
        } else {
            let day_end = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
                + chrono::Duration::days(1);
            if day_end + chrono::Duration::hours(1) <= now {
                // The most the API gives a page (its default is 20): a day of a large
                // organization is then a few calls, not hundreds.
                let params = ClaudeCodeUsageParams {
                    limit: Some(1000),
                    ..ClaudeCodeUsageParams::new(d)
                };
                let records = api.all(&params).await?;
                if day_end + chrono::Duration::hours(1) + settle <= now {
                    sqlx::query("INSERT OR REPLACE INTO claude_code_days (day, records, fetched_at) VALUES (?, ?, ?)")
                        .bind(&key)
                        .bind(serde_json::to_string(&records).unwrap_or_else(|_| "[]".into()))
                        .bind(ts(now))
                        .execute(db)
                        .await?;
                }
                out.extend(records);
            }
        }
        d = d.succ_opt().unwrap_or(d);
        if d == NaiveDate::MAX {
            break;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Budgets

#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    /// `org` or a stored workspace id ('' = default workspace).
    pub scope: String,
    pub amount_cents: Decimal,
    pub thresholds: Vec<u32>,
}

pub const ORG_SCOPE: &str = "org";
/// How people read the organization scope and the default workspace ('' in the store).
pub const ORG_SCOPE_LABEL: &str = "Whole organization";
pub const DEFAULT_WORKSPACE: &str = "Default Workspace";

pub async fn budgets(db: &SqlitePool) -> Result<Vec<Budget>, sqlx::Error> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT scope, amount_cents, thresholds FROM budgets ORDER BY scope")
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(scope, amount, thresholds)| Budget {
            scope,
            amount_cents: amount.parse().unwrap_or_default(),
            thresholds: thresholds
                .split(',')
                .filter_map(|t| t.trim().parse().ok())
                .collect(),
        })
        .collect())
}

pub async fn set_budget(
    db: &SqlitePool,
    b: &Budget,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let thresholds: Vec<String> = b.thresholds.iter().map(u32::to_string).collect();
    sqlx::query(
        "INSERT INTO budgets (scope, amount_cents, thresholds, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (scope) DO UPDATE SET amount_cents = excluded.amount_cents, thresholds = excluded.thresholds, updated_at = excluded.updated_at",
    )
    .bind(&b.scope)
    .bind(b.amount_cents.normalize().to_string())
    .bind(thresholds.join(","))
    .bind(ts(now))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn remove_budget(db: &SqlitePool, scope: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM budgets WHERE scope = ?")
        .bind(scope)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// Records a crossed threshold; `true` only the first time for this budget, month and threshold.
pub async fn record_alert(
    db: &SqlitePool,
    scope: &str,
    month: &str,
    threshold: u32,
    spend_cents: Decimal,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT OR IGNORE INTO budget_alerts (scope, month, threshold, crossed_at, spend_cents) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(scope)
    .bind(month)
    .bind(threshold as i64)
    .bind(ts(now))
    .bind(spend_cents.normalize().to_string())
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}

/// Thresholds crossed this month, per scope: `(scope, threshold, crossed_at)`.
pub async fn alerts_of_month(
    db: &SqlitePool,
    month: &str,
) -> Result<Vec<(String, u32, String)>, sqlx::Error> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT scope, threshold, crossed_at FROM budget_alerts WHERE month = ? ORDER BY scope, threshold",
    )
    .bind(month)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(s, t, c)| (s, t as u32, c)).collect())
}

/// The sum of `measure` per group over `[from, to)`, largest first.
pub async fn group_totals(
    db: &SqlitePool,
    series: &Series<'_>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut qb = select_sum(series, "", " AS total");
    qb.push(" GROUP BY grp ORDER BY total DESC, grp");
    let rows = qb.build().fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
        .collect())
}
