//! The local usage store (being built): settled usage and cost buckets kept in SQLite.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::SqlitePool;

/// Each API key's last day with any usage, from the local store (empty until it has synced).
pub async fn key_last_used(_db: &SqlitePool) -> Result<HashMap<String, NaiveDate>, sqlx::Error> {
    Ok(HashMap::new())
}
