//! `orgkeeper backup FILE`: a consistent copy of the live database, taken while the server
//! runs, syncs and writes the audit log.
//!
//! SQLite's `VACUUM INTO` copies the database as one read transaction sees it, so the copy
//! holds every table as of one moment: the audit log up to the newest record committed then,
//! with its chain whole. It is written beside the target and renamed into place only once
//! complete, then opened and its chain verified, so a file at the target is always a usable
//! backup.

use std::path::{Path, PathBuf};

use sqlx::SqlitePool;

use crate::audit::{AuditLog, ChainReport};

/// What a backup holds.
#[derive(Debug)]
pub struct Backup {
    pub path: PathBuf,
    /// The copy's own chain check.
    pub chain: ChainReport,
    /// The newest audit record in the copy, and its hash.
    pub newest: Option<(i64, String)>,
}

/// Copies the database behind `pool` to `to`, which must not exist yet.
pub async fn backup(pool: &SqlitePool, to: &Path) -> anyhow::Result<Backup> {
    if to.exists() {
        anyhow::bail!(
            "{} already exists; choose a new file (a backup never overwrites one)",
            to.display()
        );
    }
    let partial = partial_path(to);
    // A leftover of an interrupted backup is ours to replace.
    let _ = std::fs::remove_file(&partial);
    sqlx::query("VACUUM INTO ?")
        .bind(partial.to_string_lossy().into_owned())
        .execute(pool)
        .await
        .map_err(|e| anyhow::anyhow!("copying the database to {}: {e}", partial.display()))?;
    std::fs::rename(&partial, to)
        .map_err(|e| anyhow::anyhow!("moving the copy to {}: {e}", to.display()))?;

    let copy = crate::db::connect(to).await?;
    let chain = AuditLog::new(copy.clone()).verify().await?;
    let newest: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&copy)
            .await?;
    copy.close().await;
    Ok(Backup {
        path: to.to_owned(),
        chain,
        newest,
    })
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}
