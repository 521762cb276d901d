//! Appending records: validation, secret stripping, canonical form, hashing, and retention
//! pruning (which moves the chain's anchor).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection};

use super::verify::walk_chain;
use super::{format_time, Actor, AuditError, AuditLog, ChainReport, NewEntry, Outcome, Source};

/// The anchor before any pruning: the first record's `prev_hash`.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Keys whose values never reach the log (compared case-insensitively, at any depth).
/// `api_key_id` and `partial_key_hint` are deliberately absent: they identify, not unlock.
const SECRET_KEYS: &[&str] = &[
    "password",
    "new_password",
    "current_password",
    "token",
    "secret",
    "admin_key",
    "api_key",
    "x-api-key",
    "csrf",
    "_csrf",
];

const REDACTED: &str = "[redacted]";

/// User agents and the names typed at a failed login are attacker-controlled; keep enough to
/// recognise them, no more.
const MAX_USER_AGENT_CHARS: usize = 512;
const MAX_ACTOR_NAME_CHARS: usize = 256;

fn truncate_chars(text: &mut String, max: usize) {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
}

/// Replaces the value of every secret-named key (see the list above), at any depth, with
/// `"[redacted]"`. `append` calls this on every entry's details.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s)) {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact_secrets(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

/// Serializes `value` with object keys sorted by their UTF-8 bytes at every depth and no
/// whitespace. Independent of serde_json's `preserve_order` feature.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(key));
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        // Scalars: serde_json's own rendering is deterministic.
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn json_opt_str(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_string)
}

fn json_opt_int(n: Option<i64>) -> String {
    n.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// Every hashed field of a record, as stored. Used by `append` and by `verify`, so both
/// hash exactly the same bytes.
pub(crate) struct ChainContent<'a> {
    pub seq: i64,
    pub time: &'a str,
    pub actor_id: Option<i64>,
    pub actor_name: &'a str,
    pub actor_role: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_label: Option<&'a str>,
    /// The stored (canonical) JSON text, embedded verbatim.
    pub details: &'a str,
    pub outcome: &'a str,
    pub upstream_status: Option<i64>,
    pub upstream_request_id: Option<&'a str>,
    pub intent_seq: Option<i64>,
}

impl ChainContent<'_> {
    /// The documented canonical form (see the module docs of `audit`).
    pub(crate) fn canonical(&self) -> String {
        let fields = [
            self.seq.to_string(),
            json_string(self.time),
            json_opt_int(self.actor_id),
            json_string(self.actor_name),
            json_opt_str(self.actor_role),
            json_opt_str(self.source_ip),
            json_opt_str(self.user_agent),
            json_string(self.action),
            json_opt_str(self.target_type),
            json_opt_str(self.target_id),
            json_opt_str(self.target_label),
            self.details.to_owned(),
            json_string(self.outcome),
            json_opt_int(self.upstream_status),
            json_opt_str(self.upstream_request_id),
            json_opt_int(self.intent_seq),
        ];
        format!("[{}]", fields.join(","))
    }

    /// `hex(SHA-256(prev_hash || canonical))`, lowercase.
    pub(crate) fn hash(&self, prev_hash: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// A validated entry, details redacted and canonicalized, ready to be chained.
struct Prepared {
    entry: NewEntry,
    details: String,
}

fn prepare(mut entry: NewEntry) -> Result<Prepared, AuditError> {
    if !is_action_code(&entry.action) {
        return Err(AuditError::Invalid(format!(
            "action code {:?} is not a dotted lowercase code like \"member.role_changed\"",
            entry.action
        )));
    }
    if let Some(intent) = entry.intent_seq {
        if entry.outcome == Outcome::Pending {
            return Err(AuditError::Invalid(format!(
                "a pending record cannot be the outcome of intent {intent}"
            )));
        }
    }
    if let Some(ua) = entry.source.user_agent.as_mut() {
        truncate_chars(ua, MAX_USER_AGENT_CHARS);
    }
    truncate_chars(&mut entry.actor.name, MAX_ACTOR_NAME_CHARS);
    redact_secrets(&mut entry.details);
    let details = canonical_json(&entry.details);
    Ok(Prepared { entry, details })
}

/// `segment(.segment)+`, segments of `[a-z0-9_]`.
fn is_action_code(action: &str) -> bool {
    let mut segments = 0;
    for segment in action.split('.') {
        if segment.is_empty()
            || !segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

/// The seq and hash the next record chains from: the last record, else the anchor.
async fn chain_head(conn: &mut SqliteConnection) -> Result<(i64, String), AuditError> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    match last {
        Some(row) => Ok((row.try_get("seq")?, row.try_get("hash")?)),
        None => current_anchor(conn).await,
    }
}

/// The seq and hash the stored chain starts from (seq 0 and 64 zeros before any pruning).
pub(crate) async fn current_anchor(
    conn: &mut SqliteConnection,
) -> Result<(i64, String), AuditError> {
    let anchor = sqlx::query("SELECT seq, hash FROM audit_anchor ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    match anchor {
        Some(row) => Ok((row.try_get("seq")?, row.try_get("hash")?)),
        None => Ok((0, GENESIS_HASH.to_owned())),
    }
}

/// Chains and inserts one record. The caller holds the append lock and an IMMEDIATE
/// transaction, so nothing can slip in between reading the head and inserting.
async fn insert_prepared(
    conn: &mut SqliteConnection,
    prepared: Prepared,
    now: DateTime<Utc>,
) -> Result<i64, AuditError> {
    let Prepared { entry, details } = prepared;

    if let Some(intent) = entry.intent_seq {
        let outcome: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM audit_log WHERE seq = ?")
                .bind(intent)
                .fetch_optional(&mut *conn)
                .await?;
        if outcome.as_deref() != Some(Outcome::Pending.as_str()) {
            return Err(AuditError::Invalid(format!(
                "intent_seq {intent} does not name a pending intent record"
            )));
        }
        // One intent, one outcome: a late outcome must not contradict the recovery's (or the
        // other way round). Checked inside the write transaction, so two writers cannot both pass.
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_log WHERE intent_seq = ? LIMIT 1")
                .bind(intent)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(existing) = existing {
            return Err(AuditError::AlreadyResolved {
                intent,
                outcome: existing,
            });
        }
    }

    let (head_seq, prev_hash) = chain_head(conn).await?;
    let seq = head_seq + 1;
    let time = format_time(&now);
    let target = entry.target.as_ref();
    let content = ChainContent {
        seq,
        time: &time,
        actor_id: entry.actor.account_id,
        actor_name: &entry.actor.name,
        actor_role: entry.actor.role.as_deref(),
        source_ip: entry.source.ip.as_deref(),
        user_agent: entry.source.user_agent.as_deref(),
        action: &entry.action,
        target_type: target.map(|t| t.kind.as_str()),
        target_id: target.map(|t| t.id.as_str()),
        target_label: target.and_then(|t| t.label.as_deref()),
        details: &details,
        outcome: entry.outcome.as_str(),
        upstream_status: entry.upstream_status.map(i64::from),
        upstream_request_id: entry.upstream_request_id.as_deref(),
        intent_seq: entry.intent_seq,
    };
    let hash = content.hash(&prev_hash);

    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor_id, actor_name, actor_role, source_ip, \
         user_agent, action, target_type, target_id, target_label, details, outcome, \
         upstream_status, upstream_request_id, intent_seq, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(content.seq)
    .bind(content.time)
    .bind(content.actor_id)
    .bind(content.actor_name)
    .bind(content.actor_role)
    .bind(content.source_ip)
    .bind(content.user_agent)
    .bind(content.action)
    .bind(content.target_type)
    .bind(content.target_id)
    .bind(content.target_label)
    .bind(content.details)
    .bind(content.outcome)
    .bind(content.upstream_status)
    .bind(content.upstream_request_id)
    .bind(content.intent_seq)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(seq)
}

impl AuditLog {
    /// Appends one record and returns its seq. Fail closed: on any error nothing is written
    /// and the caller must refuse the action it was about to take (or report it as failed).
    pub async fn append(&self, entry: NewEntry) -> Result<i64, AuditError> {
        let action = entry.action.clone();
        let result = self.append_inner(entry).await;
        if let Err(error) = &result {
            tracing::error!(%action, %error, "audit record not written; the action is refused");
        }
        result
    }

    async fn append_inner(&self, entry: NewEntry) -> Result<i64, AuditError> {
        let prepared = prepare(entry)?;
        let _serialized = self.append_lock.lock().await;
        // IMMEDIATE takes the write lock up front (waiting out busy_timeout), so the read of
        // the chain head can never be invalidated by another connection's write.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let seq = insert_prepared(&mut tx, prepared, self.clock.now()).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Appends several records in one transaction: all of them or none (observed changes of
    /// one sync are recorded together, so a failure leaves them all to the next sync).
    pub async fn append_all(&self, entries: Vec<NewEntry>) -> Result<(), AuditError> {
        let prepared = entries
            .into_iter()
            .map(prepare)
            .collect::<Result<Vec<_>, _>>()?;
        let _serialized = self.append_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for entry in prepared {
            insert_prepared(&mut tx, entry, self.clock.now()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Retention: deletes every record older than `cutoff`, recorded as done by the system.
    /// See [`AuditLog::prune_before_by`].
    pub async fn prune_before(&self, cutoff: DateTime<Utc>) -> Result<u64, AuditError> {
        self.prune_before_by(cutoff, Actor::system(), Source::default())
            .await
    }

    /// Retention: deletes the records older than `cutoff` and returns how many.
    ///
    /// Only a prefix of the chain is ever removed (up to the first record at or after
    /// `cutoff`, so a clock that stepped back cannot punch a hole in the chain). In one
    /// transaction it checks the whole chain (refusing to destroy evidence of tampering:
    /// [`AuditError::ChainBroken`]), deletes, stores the new anchor (seq and hash of the last
    /// deleted record) and appends an `audit.pruned` record naming that anchor. Nothing is
    /// written when there is nothing to delete.
    pub async fn prune_before_by(
        &self,
        cutoff: DateTime<Utc>,
        actor: Actor,
        source: Source,
    ) -> Result<u64, AuditError> {
        let _serialized = self.append_lock.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;

        if let ChainReport::Broken { seq, reason } = walk_chain(&mut tx).await? {
            return Err(AuditError::ChainBroken { seq, reason });
        }

        let cutoff_text = format_time(&cutoff);
        let first_kept: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM audit_log WHERE time >= ?")
                .bind(&cutoff_text)
                .fetch_one(&mut *tx)
                .await?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
            .fetch_one(&mut *tx)
            .await?;
        let (anchor_seq, _) = current_anchor(&mut tx).await?;
        let boundary = match (first_kept, last) {
            (Some(kept), _) => kept - 1,
            (None, Some(last)) => last,
            (None, None) => anchor_seq,
        };
        if boundary <= anchor_seq {
            return Ok(0);
        }

        let anchor_hash: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
            .bind(boundary)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE audit_prune_guard SET active = 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= ?")
            .bind(boundary)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE audit_prune_guard SET active = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_anchor (seq, hash, cutoff, deleted, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(boundary)
        .bind(&anchor_hash)
        .bind(&cutoff_text)
        .bind(deleted as i64)
        .bind(format_time(&self.clock.now()))
        .execute(&mut *tx)
        .await?;

        let entry = NewEntry::new(actor, source, "audit.pruned", Outcome::Ok).details(json!({
            "cutoff": cutoff_text,
            "deleted": deleted,
            "first_deleted_seq": anchor_seq + 1,
            "anchor_seq": boundary,
            "anchor_hash": anchor_hash,
        }));
        insert_prepared(&mut tx, prepare(entry)?, self.clock.now()).await?;
        tx.commit().await?;
        tracing::info!(deleted, anchor_seq = boundary, "audit log pruned");
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
        let value = json!({"b": 1, "a": {"z": [true, null, {"y": "x", "c": 2.5}], "m": "é\"q"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"m":"é\"q","z":[true,null,{"c":2.5,"y":"x"}]},"b":1}"#
        );
    }

    #[test]
    fn redaction_spares_identifiers_and_hints() {
        let mut value = json!({
            "Password": "hunter2",
            "nested": [{"X-API-Key": "sk-ant-admin01-secret", "api_key_id": "apikey_01"}],
            "partial_key_hint": "sk-ant-api03-abc...xyz",
            "_csrf": "t",
        });
        redact_secrets(&mut value);
        assert_eq!(
            value,
            json!({
                "Password": "[redacted]",
                "nested": [{"X-API-Key": "[redacted]", "api_key_id": "apikey_01"}],
                "partial_key_hint": "sk-ant-api03-abc...xyz",
                "_csrf": "[redacted]",
            })
        );
    }

    #[test]
    fn long_attacker_controlled_fields_are_cut_at_a_char_boundary() {
        let mut entry = NewEntry::new(
            Actor::named("é".repeat(1000)),
            Source {
                ip: None,
                user_agent: Some("ü".repeat(1000)),
            },
            "auth.login_failed",
            Outcome::Denied,
        );
        entry = prepare(entry).unwrap().entry;
        assert_eq!(entry.actor.name.chars().count(), MAX_ACTOR_NAME_CHARS);
        assert_eq!(
            entry.source.user_agent.unwrap().chars().count(),
            MAX_USER_AGENT_CHARS
        );
    }

    #[test]
    fn action_codes_are_dotted_lowercase() {
        assert!(is_action_code("auth.login_failed"));
        assert!(is_action_code("member.role_changed"));
        assert!(!is_action_code("login"));
        assert!(!is_action_code("Auth.Login"));
        assert!(!is_action_code("auth..login"));
        assert!(!is_action_code("auth.login."));
        assert!(!is_action_code(""));
    }
}
