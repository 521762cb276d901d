//! Webhook alerts for the kinds of observed change an administrator chose
//! (`ORGKEEPER_ALERT_OBSERVED`): one plain message per matching record, through the same
//! webhook as budget alerts.
//!
//! Each record is considered once: a high-water mark (the last audit seq considered) is kept in
//! SQLite and claimed before the messages go out, so neither the next sync nor a restart sends
//! one again, and two syncs at once cannot both send it. The mark starts at the log's end when
//! alerts are first turned on: history is not replayed.

use serde_json::Value;
use sqlx::Row;

use super::Services;
use crate::audit::{Action, Record};
use crate::config::ObservedAlert;

/// Messages sent one by one per sync; past that, one summary.
const MAX_MESSAGES: usize = 20;

fn wanted(services: &Services) -> &[ObservedAlert] {
    &services.config.alert_observed
}

/// Starts the mark at the log's end the first time alerts are on (before a sync writes).
pub async fn prepare(services: &Services) {
    if wanted(services).is_empty() {
        return;
    }
    let result = sqlx::query(
        "INSERT OR IGNORE INTO observed_alerts (id, through_seq) \
         SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log",
    )
    .execute(&services.db)
    .await;
    if let Err(error) = result {
        tracing::warn!(%error, "observed-change alerts could not be prepared");
    }
}

/// Sends what the records written since the mark call for.
pub async fn send(services: &Services) {
    if wanted(services).is_empty() {
        return;
    }
    if let Err(error) = send_inner(services).await {
        tracing::warn!(%error, "observed-change alerts could not be sent; they are tried at the next sync");
    }
}

async fn send_inner(services: &Services) -> anyhow::Result<()> {
    let db = &services.db;
    let Some(through): Option<i64> =
        sqlx::query_scalar("SELECT through_seq FROM observed_alerts WHERE id = 1")
            .fetch_optional(db)
            .await?
    else {
        return Ok(());
    };
    let rows = sqlx::query(
        "SELECT seq FROM audit_log WHERE seq > ? AND actor_id IS NULL AND actor_role = ? \
         ORDER BY seq",
    )
    .bind(through)
    .bind(crate::audit::OBSERVED)
    .fetch_all(db)
    .await?;
    let seqs: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>("seq")).collect();
    let Some(&last) = seqs.last() else {
        return Ok(());
    };
    // Claim the range first: whoever moves the mark sends, nobody else.
    let claimed =
        sqlx::query("UPDATE observed_alerts SET through_seq = ? WHERE id = 1 AND through_seq = ?")
            .bind(last)
            .bind(through)
            .execute(db)
            .await?;
    if claimed.rows_affected() != 1 {
        return Ok(());
    }
    let mut messages = Vec::new();
    for seq in seqs {
        if let Some(record) = services.audit.get(seq).await? {
            if let Some(text) = message(&record, wanted(services), link(services, seq)) {
                messages.push(text);
            }
        }
    }
    let extra = messages.len().saturating_sub(MAX_MESSAGES);
    for text in messages.into_iter().take(MAX_MESSAGES) {
        services.alerts.send(text);
    }
    if extra > 0 {
        let audit = services
            .config
            .public_url
            .as_ref()
            .map(|base| format!(" {}/audit?source=observed", base.trim_end_matches('/')))
            .unwrap_or_default();
        services.alerts.send(format!(
            "Seen outside Orgkeeper: {extra} more changes you asked to be alerted about. See the audit log.{audit}"
        ));
    }
    Ok(())
}

fn link(services: &Services, seq: i64) -> Option<String> {
    services
        .config
        .public_url
        .as_ref()
        .map(|base| format!("{}/audit/{seq}", base.trim_end_matches('/')))
}

/// " by ada@example.com from 203.0.113.9", from the Activity Feed's attribution.
fn by(details: &Value) -> String {
    let seen = &details["seen_in_feed"];
    let Some(actor) = seen["actor"].as_str() else {
        return " (who did it is not known)".to_owned();
    };
    match seen["ip"].as_str() {
        Some(ip) => format!(" by {actor} from {ip}"),
        None => format!(" by {actor}"),
    }
}

/// The message for one observed record, if it is of a kind that was asked for.
pub fn message(record: &Record, wanted: &[ObservedAlert], link: Option<String>) -> Option<String> {
    use ObservedAlert as K;
    let d = &record.details;
    let who = record
        .target_label
        .clone()
        .or_else(|| record.target_id.clone())
        .unwrap_or_default();
    let text = match Action::from_code(&record.action)? {
        Action::MemberRoleChanged if wanted.contains(&K::NewAdmin) && d["after"] == "admin" => {
            format!("{who} was made an organization admin")
        }
        Action::MemberJoined if wanted.contains(&K::NewAdmin) && d["after"]["role"] == "admin" => {
            format!("{who} joined the organization as an admin")
        }
        Action::KeyCreated => {
            let no_expiry = d["expires_at"].is_null();
            let name = d["name"].as_str().unwrap_or(&who);
            if no_expiry && wanted.contains(&K::KeyWithoutExpiry) {
                format!("API key “{name}” was created with no expiry date")
            } else if wanted.contains(&K::KeyCreated) {
                format!("API key “{name}” was created")
            } else {
                return None;
            }
        }
        Action::MemberRemoved if wanted.contains(&K::MemberRemoved) => {
            format!("{who} was removed from the organization")
        }
        _ => return None,
    };
    let link = link.map(|l| format!(" {l}")).unwrap_or_default();
    Some(format!("Seen outside Orgkeeper: {text}{}.{link}", by(d)))
}
