//! Reading records: one by seq, filtered pages (newest first), and the filter SQL shared with
//! the export.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::{format_time, Action, AuditError, AuditLog, Filter, Outcome, Record};

/// The largest page `query` returns; use the export for more.
pub const MAX_PAGE: u32 = 1000;

pub(crate) const SELECT_RECORDS: &str = "SELECT seq, time, actor_id, actor_name, actor_role, \
     source_ip, user_agent, action, target_type, target_id, target_label, details, outcome, \
     upstream_status, upstream_request_id, intent_seq, prev_hash, hash FROM audit_log";

/// A filter value as typed in a form: trimmed, and empty means "not given".
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Appends ` WHERE …` for `filter` (always valid SQL, `WHERE 1 = 1` at least). Every value
/// is bound, never spliced. `instr`/`substr` instead of `LIKE`, because action codes are full
/// of `_`, which `LIKE` treats as a wildcard.
pub(crate) fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &Filter) {
    qb.push(" WHERE 1 = 1");
    if let Some(actor) = given(&filter.actor) {
        qb.push(" AND (actor_name = ");
        qb.push_bind(actor.clone());
        qb.push(" COLLATE NOCASE");
        if let Ok(id) = actor.parse::<i64>() {
            qb.push(" OR actor_id = ");
            qb.push_bind(id);
        }
        qb.push(")");
    }
    if let Some(action) = given(&filter.action) {
        let action = action.trim_end_matches('.').to_owned();
        let prefix = format!("{action}.");
        // Older records of the same action under a twin code are the same action.
        let legacy: Vec<&str> = Action::ALL
            .iter()
            .filter(|a| a.code() == action || a.code().starts_with(&prefix))
            .flat_map(|a| a.legacy_codes().iter().copied())
            .collect();
        qb.push(" AND (action = ");
        qb.push_bind(action);
        qb.push(" OR substr(action, 1, ");
        qb.push_bind(prefix.chars().count() as i64);
        qb.push(") = ");
        qb.push_bind(prefix);
        for code in legacy {
            qb.push(" OR action = ");
            qb.push_bind(code);
        }
        qb.push(")");
    }
    if let Some(target) = given(&filter.target) {
        qb.push(" AND (target_type = ");
        qb.push_bind(target.clone());
        qb.push(" OR target_id = ");
        qb.push_bind(target);
        qb.push(")");
    }
    // Observed changes are the ones the organization sync recorded (`service::sync`).
    match filter.observed {
        Some(true) => {
            qb.push(" AND actor_id IS NULL AND actor_role = 'observed'");
        }
        Some(false) => {
            qb.push(" AND NOT (actor_id IS NULL AND actor_role IS 'observed')");
        }
        None => {}
    }
    if let Some(outcome) = filter.outcome {
        qb.push(" AND outcome = ");
        qb.push_bind(outcome.as_str());
        if outcome == Outcome::Pending {
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM audit_log AS o WHERE o.intent_seq = audit_log.seq)",
            );
        }
    }
    // Stored times are fixed-width RFC 3339 UTC, so text order is time order.
    if let Some(since) = filter.since {
        qb.push(" AND time >= ");
        qb.push_bind(format_time(&since));
    }
    if let Some(until) = filter.until {
        qb.push(" AND time < ");
        qb.push_bind(format_time(&until));
    }
    if let Some(text) = given(&filter.text) {
        let needle = text.to_lowercase();
        qb.push(" AND (");
        let columns = [
            "target_label",
            "target_id",
            "actor_name",
            "action",
            "details",
        ];
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push(format!("instr(lower(coalesce({column}, '')), "));
            qb.push_bind(needle.clone());
            qb.push(") > 0");
        }
        qb.push(")");
    }
}

fn corrupt(seq: i64, reason: impl std::fmt::Display) -> AuditError {
    AuditError::Corrupt {
        seq,
        reason: reason.to_string(),
    }
}

/// Decodes one row of `SELECT_RECORDS`.
pub(crate) fn record_from_row(row: &SqliteRow) -> Result<Record, AuditError> {
    let seq: i64 = row.try_get("seq")?;
    let get = |e: sqlx::Error| corrupt(seq, e);
    let time: String = row.try_get("time").map_err(get)?;
    let details: String = row.try_get("details").map_err(get)?;
    let outcome: String = row.try_get("outcome").map_err(get)?;
    let upstream_status: Option<i64> = row.try_get("upstream_status").map_err(get)?;
    Ok(Record {
        seq,
        time: DateTime::parse_from_rfc3339(&time)
            .map_err(|e| corrupt(seq, format!("time {time:?}: {e}")))?
            .with_timezone(&Utc),
        actor_id: row.try_get("actor_id").map_err(get)?,
        actor_name: row.try_get("actor_name").map_err(get)?,
        actor_role: row.try_get("actor_role").map_err(get)?,
        source_ip: row.try_get("source_ip").map_err(get)?,
        user_agent: row.try_get("user_agent").map_err(get)?,
        action: row.try_get("action").map_err(get)?,
        target_type: row.try_get("target_type").map_err(get)?,
        target_id: row.try_get("target_id").map_err(get)?,
        target_label: row.try_get("target_label").map_err(get)?,
        details: serde_json::from_str(&details)
            .map_err(|e| corrupt(seq, format!("details: {e}")))?,
        outcome: outcome.parse::<Outcome>().map_err(|e| corrupt(seq, e))?,
        upstream_status: upstream_status
            .map(u16::try_from)
            .transpose()
            .map_err(|e| corrupt(seq, format!("upstream_status: {e}")))?,
        upstream_request_id: row.try_get("upstream_request_id").map_err(get)?,
        intent_seq: row.try_get("intent_seq").map_err(get)?,
        prev_hash: row.try_get("prev_hash").map_err(get)?,
        hash: row.try_get("hash").map_err(get)?,
    })
}

impl AuditLog {
    /// One record by seq.
    pub async fn get(&self, seq: i64) -> Result<Option<Record>, AuditError> {
        let row = sqlx::query(&format!("{SELECT_RECORDS} WHERE seq = ?"))
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The records of changes observed outside Orgkeeper written since `since`, oldest first.
    pub async fn observed_since(&self, since: DateTime<Utc>) -> Result<Vec<Record>, AuditError> {
        let rows = sqlx::query(&format!(
            "{SELECT_RECORDS} WHERE actor_id IS NULL AND actor_role = ? AND time >= ? ORDER BY seq"
        ))
        .bind(super::OBSERVED)
        .bind(format_time(&since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The record that named, later, who made the observed change `seq` (see
    /// `service::activity::attribute_late`).
    pub async fn attribution_of(&self, seq: i64) -> Result<Option<Record>, AuditError> {
        let row = sqlx::query(&format!(
            "{SELECT_RECORDS} WHERE action = ? AND json_extract(details, '$.record') = ? ORDER BY seq LIMIT 1"
        ))
        .bind(super::Action::ObservedAttributed.code())
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Intent records written before `before` that no outcome record points at, oldest first.
    pub async fn unresolved_intents(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<Record>, AuditError> {
        let rows = sqlx::query(&format!(
            "{SELECT_RECORDS} WHERE outcome = 'pending' AND time < ? AND NOT EXISTS \
             (SELECT 1 FROM audit_log AS o WHERE o.intent_seq = audit_log.seq) ORDER BY seq"
        ))
        .bind(format_time(&before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The outcome records of these intents, by intent seq (intents without one are absent).
    pub async fn outcomes_of(&self, intents: &[i64]) -> Result<HashMap<i64, Record>, AuditError> {
        if intents.is_empty() {
            return Ok(HashMap::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(SELECT_RECORDS);
        qb.push(" WHERE intent_seq IN (");
        let mut list = qb.separated(", ");
        for seq in intents {
            list.push_bind(*seq);
        }
        qb.push(")");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let record = record_from_row(row)?;
                Ok((record.intent_seq.unwrap_or_default(), record))
            })
            .collect()
    }

    /// A page of matching records, newest first, and how many match in all. `limit` is capped
    /// at [`MAX_PAGE`]. Page and total come from one snapshot.
    pub async fn query(
        &self,
        filter: &Filter,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Record>, u64), AuditError> {
        let mut tx = self.pool.begin().await?;

        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM audit_log");
        push_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *tx).await?;

        let mut page = QueryBuilder::<Sqlite>::new(SELECT_RECORDS);
        push_filter(&mut page, filter);
        page.push(" ORDER BY seq DESC LIMIT ");
        page.push_bind(i64::from(limit.min(MAX_PAGE)));
        page.push(" OFFSET ");
        page.push_bind(i64::from(offset));
        let rows = page.build().fetch_all(&mut *tx).await?;
        tx.commit().await?;

        let records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, total as u64))
    }
}
