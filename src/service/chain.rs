//! Watching the audit chain: the last verification result, re-checked on a schedule and on
//! demand, and a banner on every page for owners, admins and auditors while a break is
//! unacknowledged (only owners and admins acknowledge one). Retention pruning runs on the same
//! schedule (`crate::jobs`). Re-checking, acknowledging and exporting are recorded in the log.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;

use super::{Caller, ServiceError, Services};
use crate::audit::{Action, AuditError, AuditLog, ChainReport, Outcome};
use crate::auth::Permission;

/// How often the chain is re-verified (and old records pruned when retention is set).
pub const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct ChainCheck {
    pub report: ChainReport,
    pub checked_at: DateTime<Utc>,
}

/// The last verification result, shared by every page.
#[derive(Default)]
pub struct ChainMonitor {
    last: Mutex<Option<ChainCheck>>,
}

impl ChainMonitor {
    pub fn last(&self) -> Option<ChainCheck> {
        self.last.lock().expect("chain lock").clone()
    }

    /// Verifies the whole chain now and remembers the result.
    pub async fn check(
        &self,
        audit: &AuditLog,
        now: DateTime<Utc>,
    ) -> Result<ChainCheck, AuditError> {
        let check = ChainCheck {
            report: audit.verify().await?,
            checked_at: now,
        };
        *self.last.lock().expect("chain lock") = Some(check.clone());
        Ok(check)
    }
}

/// The break to warn about, unless someone already acknowledged exactly this break.
pub async fn unacknowledged_break(state: &Services) -> Option<(i64, String)> {
    let ChainReport::Broken { seq, reason } = state.chain.last()?.report else {
        return None;
    };
    acknowledged(&state.db, seq, &reason)
        .await
        .ok()
        .filter(|done| !done)
        .map(|_| (seq, reason))
}

pub async fn acknowledged(db: &SqlitePool, seq: i64, reason: &str) -> Result<bool, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_chain_acknowledgements WHERE broken_seq = ? AND reason = ?",
    )
    .bind(seq)
    .bind(reason)
    .fetch_one(db)
    .await?;
    Ok(count > 0)
}

pub async fn acknowledge(
    db: &SqlitePool,
    seq: i64,
    reason: &str,
    account_id: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_chain_acknowledgements (broken_seq, reason, account_id, acknowledged_at) VALUES (?, ?, ?, ?)")
        .bind(seq)
        .bind(reason)
        .bind(account_id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// One round of the schedule at `now`: prune past the retention period, then verify.
pub async fn run_once(state: &Services, now: DateTime<Utc>) {
    if let Some(days) = state.config.audit_retention_days {
        let cutoff = now - chrono::Duration::days(i64::from(days));
        match state.audit.prune_before(cutoff).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(
                pruned,
                days,
                "pruned audit records past the retention period"
            ),
            Err(error) => tracing::error!(%error, "audit retention pruning failed"),
        }
    }
    match state.chain.check(&state.audit, now).await {
        Ok(ChainCheck {
            report: ChainReport::Broken { seq, reason },
            ..
        }) => {
            tracing::error!(seq, %reason, "the audit chain is broken");
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "could not verify the audit chain"),
    }
}

/// Re-checks the whole chain now for a reviewer, and records that it was checked and what
/// was found. Returns the result in words.
pub async fn verify_now(
    services: &Services,
    caller: &Caller,
) -> Result<(bool, String), ServiceError> {
    services
        .require(caller, Permission::ViewAudit, None)
        .await?;
    let check = services
        .chain
        .check(&services.audit, services.clock.now())
        .await?;
    let (intact, message) = match &check.report {
        ChainReport::Intact { records, .. } => (
            true,
            format!("The chain is intact: {records} records verified."),
        ),
        ChainReport::Broken { seq, reason } => (
            false,
            format!("The chain is broken at record {seq}: {reason}."),
        ),
    };
    let outcome = if intact { Outcome::Ok } else { Outcome::Failed };
    services
        .record(
            caller,
            Action::AuditVerified,
            None,
            serde_json::json!({ "result": message }),
            outcome,
        )
        .await?;
    Ok((intact, message))
}

/// Acknowledges the current break so the banner stops, for everyone; recorded. Owners and
/// admins only: an auditor cannot silence the banner for the people who must act on it.
pub async fn acknowledge_break(services: &Services, caller: &Caller) -> Result<i64, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let Some((seq, reason)) = unacknowledged_break(services).await else {
        return Err(ServiceError::Invalid(
            "There is no unacknowledged break in the audit chain.".into(),
        ));
    };
    services
        .record(
            caller,
            Action::AuditBreakAcknowledged,
            None,
            serde_json::json!({ "broken_seq": seq, "reason": reason }),
            Outcome::Ok,
        )
        .await?;
    let Caller::Person { account, .. } = caller else {
        return Err(ServiceError::Forbidden);
    };
    acknowledge(&services.db, seq, &reason, account.id, services.clock.now()).await?;
    Ok(seq)
}

/// Records that a reviewer exported the log (`filter`: the query string they used).
pub async fn record_export(
    services: &Services,
    caller: &Caller,
    format: &str,
    filter: String,
) -> Result<(), ServiceError> {
    services
        .require(caller, Permission::ViewAudit, None)
        .await?;
    services
        .record(
            caller,
            Action::AuditExported,
            None,
            serde_json::json!({ "format": format, "filter": filter }),
            Outcome::Ok,
        )
        .await?;
    Ok(())
}

/// The Activity Feed's notice for the audit page, if the feed cannot be read.
pub async fn feed_notice(services: &Services) -> Option<String> {
    super::activity::notice(&services.db).await
}
