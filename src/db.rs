//! The SQLite database: one pool, WAL, foreign keys, migrations embedded in the binary.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Fixed-width RFC 3339 to the second for local tables, so text order is time order in SQLite.
pub fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A transaction that writes: it takes SQLite's write lock when it begins (`BEGIN IMMEDIATE`),
/// waiting up to the busy timeout for it. A deferred transaction that reads first would instead
/// fail at its first write with "database is locked" (SQLITE_BUSY_SNAPSHOT, no waiting) whenever
/// another writer committed in between — as the usage and cost syncs did beside the sync of
/// a large organization.
pub async fn write_tx(
    db: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    db.begin_with("BEGIN IMMEDIATE").await
}

/// The statement of one chunk of a bulk insert. It is kept in the connection's statement cache
/// only when the chunk is full (`rows == full`): every full chunk shares its text, while each
/// shorter last chunk has its own, and sqlx's cache (100 statements per connection) kept those
/// one-off programs, 24 MB of them on `xlarge`.
pub fn bulk<'q, 'args>(
    insert: &'q mut sqlx::QueryBuilder<'args, sqlx::Sqlite>,
    rows: usize,
    full: usize,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'args>> {
    insert.build().persistent(rows == full)
}

/// Opens (creating if needed) the database file and applies every pending migration.
pub async fn connect(path: &Path) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL is durable across application crashes in WAL mode; only power loss can drop
        // the last transactions, which is the usual trade-off for a dashboard.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // A writer waits for the one before it rather than failing: the first save of a
        // 250,000-object organization holds the write lock for several seconds, and a usage
        // sync that gave up after 5 s ("database is locked") lost its whole pass.
        .busy_timeout(Duration::from_secs(30))
        // Each of the pool's connections keeps its own page cache (2 MB by default, 16 MB for
        // the pool); reads come from the operating system's file cache just the same.
        .pragma("cache_size", "-1024");
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::migrate!().run(&pool).await?;
    Ok(pool)
}
