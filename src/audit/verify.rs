//! Walking the hash chain.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::record::{current_anchor, ChainContent};
use super::{AuditError, AuditLog, ChainReport};

impl AuditLog {
    /// Walks the whole chain in seq order, from the anchor, and reports the first record
    /// where it does not hold. Reads inside one transaction (a consistent snapshot, so a
    /// concurrent append or prune cannot cause a false alarm) and streams the rows.
    pub async fn verify(&self) -> Result<ChainReport, AuditError> {
        let mut tx = self.pool.begin().await?;
        let report = walk_chain(&mut tx).await?;
        tx.commit().await?;
        if let ChainReport::Broken { seq, reason } = &report {
            tracing::error!(seq, %reason, "audit chain is broken");
        }
        Ok(report)
    }
}

/// The raw stored columns of one record, as hashed.
struct RawRow {
    seq: i64,
    time: String,
    actor_id: Option<i64>,
    actor_name: String,
    actor_role: Option<String>,
    source_ip: Option<String>,
    user_agent: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    target_label: Option<String>,
    details: String,
    outcome: String,
    upstream_status: Option<i64>,
    upstream_request_id: Option<String>,
    intent_seq: Option<i64>,
    prev_hash: String,
    hash: String,
}

impl RawRow {
    fn decode(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: row.try_get("seq")?,
            time: row.try_get("time")?,
            actor_id: row.try_get("actor_id")?,
            actor_name: row.try_get("actor_name")?,
            actor_role: row.try_get("actor_role")?,
            source_ip: row.try_get("source_ip")?,
            user_agent: row.try_get("user_agent")?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            target_label: row.try_get("target_label")?,
            details: row.try_get("details")?,
            outcome: row.try_get("outcome")?,
            upstream_status: row.try_get("upstream_status")?,
            upstream_request_id: row.try_get("upstream_request_id")?,
            intent_seq: row.try_get("intent_seq")?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        })
    }

    fn content(&self) -> ChainContent<'_> {
        ChainContent {
            seq: self.seq,
            time: &self.time,
            actor_id: self.actor_id,
            actor_name: &self.actor_name,
            actor_role: self.actor_role.as_deref(),
            source_ip: self.source_ip.as_deref(),
            user_agent: self.user_agent.as_deref(),
            action: &self.action,
            target_type: self.target_type.as_deref(),
            target_id: self.target_id.as_deref(),
            target_label: self.target_label.as_deref(),
            details: &self.details,
            outcome: &self.outcome,
            upstream_status: self.upstream_status,
            upstream_request_id: self.upstream_request_id.as_deref(),
            intent_seq: self.intent_seq,
        }
    }

    /// Whether this is the `audit.pruned` record that set the anchor (seq, hash).
    fn vouches_for(&self, anchor_seq: i64, anchor_hash: &str) -> bool {
        if self.action != "audit.pruned" {
            return false;
        }
        let Ok(details) = serde_json::from_str::<serde_json::Value>(&self.details) else {
            return false;
        };
        details.get("anchor_seq").and_then(|v| v.as_i64()) == Some(anchor_seq)
            && details.get("anchor_hash").and_then(|v| v.as_str()) == Some(anchor_hash)
    }
}

fn broken(seq: i64, reason: impl Into<String>) -> ChainReport {
    ChainReport::Broken {
        seq,
        reason: reason.into(),
    }
}

/// The walk itself, on a connection the caller has put in a transaction.
pub(crate) async fn walk_chain(conn: &mut SqliteConnection) -> Result<ChainReport, AuditError> {
    let (anchor_seq, anchor_hash) = current_anchor(conn).await?;

    let mut expected_seq = anchor_seq + 1;
    let mut prev_hash = anchor_hash.clone();
    let mut records: u64 = 0;
    let mut last_time: Option<String> = None;
    // Before any pruning there is nothing to vouch for.
    let mut anchor_vouched = anchor_seq == 0;

    {
        let mut rows = sqlx::query(
            "SELECT seq, time, actor_id, actor_name, actor_role, source_ip, user_agent, action, \
             target_type, target_id, target_label, details, outcome, upstream_status, \
             upstream_request_id, intent_seq, prev_hash, hash \
             FROM audit_log ORDER BY seq",
        )
        .fetch(&mut *conn);

        while let Some(row) = rows.try_next().await? {
            let seq: i64 = row.try_get("seq")?;
            if seq < expected_seq {
                return Ok(broken(
                    seq,
                    format!("record {seq} is repeated or out of order (expected {expected_seq})"),
                ));
            }
            if seq > expected_seq {
                let reason = if seq == expected_seq + 1 {
                    format!("record {expected_seq} is missing (deleted?); the next record is {seq}")
                } else {
                    format!(
                        "records {expected_seq} to {} are missing (deleted?); the next record \
                         is {seq}",
                        seq - 1
                    )
                };
                return Ok(broken(expected_seq, reason));
            }
            let raw = match RawRow::decode(&row) {
                Ok(raw) => raw,
                Err(e) => return Ok(broken(seq, format!("record is unreadable: {e}"))),
            };
            if raw.prev_hash != prev_hash {
                let what = if seq == anchor_seq + 1 {
                    "the chain's anchor".to_owned()
                } else {
                    format!("record {}", seq - 1)
                };
                return Ok(broken(
                    seq,
                    format!(
                        "prev_hash does not match the hash of {what} (record inserted or removed?)"
                    ),
                ));
            }
            if raw.content().hash(&raw.prev_hash) != raw.hash {
                return Ok(broken(
                    seq,
                    "content does not match its hash (record edited?)",
                ));
            }
            if !anchor_vouched && raw.vouches_for(anchor_seq, &anchor_hash) {
                anchor_vouched = true;
            }
            records += 1;
            expected_seq = seq + 1;
            prev_hash = raw.hash;
            last_time = Some(raw.time);
        }
    }

    // sqlite_sequence remembers the highest seq ever inserted (AUTOINCREMENT): records cut
    // off the end leave it ahead of the chain.
    let highest: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'")
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(highest) = highest {
        if highest >= expected_seq {
            return Ok(broken(
                expected_seq,
                format!("records {expected_seq} to {highest} were removed from the end of the log"),
            ));
        }
    }

    if !anchor_vouched {
        return Ok(broken(
            anchor_seq + 1,
            format!(
                "the chain starts after record {anchor_seq}, but no audit.pruned record vouches \
                 for that anchor (records removed from the start?)"
            ),
        ));
    }

    let last_time = match last_time {
        Some(text) => match DateTime::parse_from_rfc3339(&text) {
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(e) => {
                return Ok(broken(
                    expected_seq - 1,
                    format!("time {text:?} is unreadable: {e}"),
                ))
            }
        },
        None => None,
    };
    Ok(ChainReport::Intact {
        records,
        last_seq: (records > 0).then_some(expected_seq - 1),
        last_time,
    })
}
