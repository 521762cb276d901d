//! The tamper-evident audit log.
//!
//! Modelled on Vault's audit devices (fail closed: if the record cannot be written, the action
//! is refused) and Keycloak's admin events (who, what, before → after, from where, secrets
//! stripped, filterable by actor, action, target and date).
//!
//! # Records
//!
//! Every record has a contiguous `seq` (1, 2, 3, … continuing from the anchor after pruning),
//! a UTC time with microseconds, the actor, the source, a stable dotted action code
//! (`auth.login`, `member.role_changed`, …), an optional target, JSON details and an outcome.
//! An organization action is written twice: an intent record (`pending`) *before* the upstream
//! call, and an outcome record (`ok`/`failed`/`denied`) whose `intent_seq` points at the intent.
//! An intent has at most one outcome. An intent a crash left without one is resolved at the
//! next start by `service::reconcile`, which appends its outcome marked as a [`Resolution`].
//!
//! # Hash chain
//!
//! `hash = hex(SHA-256(prev_hash || canonical))` where `prev_hash` is the 64 lowercase hex
//! characters (as ASCII bytes) of the previous record's hash — or of the anchor for the first
//! record: 64 zeros until the first pruning, then the hash of the last pruned record.
//!
//! `canonical` is a compact JSON array, no whitespace, in this fixed order:
//!
//! ```text
//! [seq, time, actor_id, actor_name, actor_role, source_ip, user_agent, action,
//!  target_type, target_id, target_label, details, outcome, upstream_status,
//!  upstream_request_id, intent_seq]
//! ```
//!
//! Absent values are `null`; `time` is the stored RFC 3339 string
//! (`2025-01-02T03:04:05.123456Z`); `details` is embedded as a JSON value serialized with
//! object keys sorted by their UTF-8 bytes at every depth, no whitespace (exactly the text
//! stored in the `details` column). Strings use serde_json's escaping. Anyone holding an
//! export can recompute the chain with these rules.
//!
//! `verify` walks the chain in seq order and names the first bad record: an edited row (hash
//! mismatch), a deleted row (seq gap, or a prev_hash that does not match), an inserted row
//! (prev_hash/hash mismatch or a repeated seq), records cut off the end (`sqlite_sequence`
//! remembers a higher seq), or an anchor that no `audit.pruned` record vouches for.
//!
//! What a plain hash chain cannot do: someone with write access to the file who recomputes
//! every hash after their edit produces a chain that verifies. Keep the `hash` of the last
//! record (shown by `verify`) somewhere else — a ticket, a log shipper — to close that gap.
//!
//! # In the database
//!
//! Triggers make `audit_log` and `audit_anchor` append-only; rows of `audit_log` can only be
//! deleted inside the pruning transaction, which sets the one-row `audit_prune_guard` flag.

mod action;
mod export;
mod query;
mod record;
mod sentence;
mod verify;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use sqlx::SqlitePool;
use tokio::sync::Mutex;

pub use action::Action;
pub use query::MAX_PAGE;
pub use record::redact_secrets;

/// Every way the audit log can fail. Callers treat any of them as "refuse the action".
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be read or written (closed pool, disk full, busy, trigger).
    #[error("audit database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The entry is malformed (a programming error in the caller): bad action code, an
    /// `intent_seq` that names no pending record, …
    #[error("invalid audit entry: {0}")]
    Invalid(String),
    /// The intent already has an outcome record (`outcome`); an intent gets only one.
    #[error("intent record {intent} already has an outcome (record {outcome})")]
    AlreadyResolved { intent: i64, outcome: i64 },
    /// A stored row cannot be decoded (bad time, bad JSON, unknown outcome).
    #[error("audit record {seq} is unreadable: {reason}")]
    Corrupt { seq: i64, reason: String },
    /// Pruning refused: the chain does not verify, and deleting records could destroy the
    /// evidence. Someone must look at `verify` first.
    #[error("audit chain is broken at record {seq}: {reason}")]
    ChainBroken { seq: i64, reason: String },
    /// Writing an export failed.
    #[error("audit export could not be written: {0}")]
    Io(#[from] std::io::Error),
}

/// A string that is not one of the accepted spellings (`Outcome`, `ExportFormat`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what}: {value:?}")]
pub struct ParseError {
    what: &'static str,
    value: String,
}

/// Who acted. An unknown username at a failed login is recorded by name with no id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub account_id: Option<i64>,
    pub name: String,
    pub role: Option<String>,
}

/// The actor of every change seen in the organization that Orgkeeper did not make.
pub const OBSERVER: &str = "outside Orgkeeper";
/// Its role column: what the audit page's "observed" filter looks for.
pub const OBSERVED: &str = "observed";

impl Actor {
    /// Whoever made a change Orgkeeper only saw (`outside Orgkeeper`, role `observed`).
    pub fn observer() -> Self {
        Self {
            account_id: None,
            name: OBSERVER.to_owned(),
            role: Some(OBSERVED.to_owned()),
        }
    }

    /// Background jobs and the command line.
    pub fn system() -> Self {
        Self {
            account_id: None,
            name: "system".to_owned(),
            role: None,
        }
    }

    /// A signed-in dashboard account.
    pub fn account(id: i64, name: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            account_id: Some(id),
            name: name.into(),
            role: Some(role.into()),
        }
    }

    /// Someone known only by the name they typed (failed login, unknown user).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            account_id: None,
            name: name.into(),
            role: None,
        }
    }
}

/// Where the request came from. `Default` is "unknown" (CLI, background job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What was acted on: `kind` like `member`, `api_key`, `workspace`, `account`; `id` the
/// upstream or local id; `label` something a human recognises (an email, a key name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub kind: String,
    pub id: String,
    pub label: Option<String>,
}

impl Target {
    pub fn new(kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            id: id.into(),
            label: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// `Pending` marks an intent record written before an upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pending,
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Outcome::Pending),
            "ok" => Ok(Outcome::Ok),
            "denied" => Ok(Outcome::Denied),
            "failed" => Ok(Outcome::Failed),
            _ => Err(ParseError {
                what: "outcome",
                value: s.to_owned(),
            }),
        }
    }
}

/// The actor of the records that resolve intents a crash left without an outcome.
pub const RECOVERY_ACTOR: &str = "system (recovery)";

/// How an intent a crash interrupted was resolved after the restart, stored in the outcome
/// record's details as `"resolution"` next to `"reconciled_after_restart": true`.
///
/// `Unknown` is stored with outcome `failed`, not a new outcome value: every release and every
/// export reader knows the four outcomes, and "not confirmed" must read as "look at this".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The change is visible in the organization now.
    Applied,
    /// The change is visibly not there.
    NotApplied,
    /// Orgkeeper could not tell (the Admin API did not answer, or it cannot check this kind).
    Unknown,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Applied => "applied",
            Resolution::NotApplied => "not_applied",
            Resolution::Unknown => "unknown",
        }
    }

    /// Plain words for the audit page.
    pub fn label(self) -> &'static str {
        match self {
            Resolution::Applied => "applied",
            Resolution::NotApplied => "not applied",
            Resolution::Unknown => "unknown",
        }
    }

    /// The outcome the resolution record carries.
    pub fn outcome(self) -> Outcome {
        match self {
            Resolution::Applied => Outcome::Ok,
            Resolution::NotApplied | Resolution::Unknown => Outcome::Failed,
        }
    }

    fn parse(s: &str) -> Option<Resolution> {
        [
            Resolution::Applied,
            Resolution::NotApplied,
            Resolution::Unknown,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A record to append. `details` holds before/after where known; secrets are stripped by
/// `append` (see [`redact_secrets`]) but callers should not put them there in the first place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub actor: Actor,
    pub source: Source,
    pub action: String,
    pub target: Option<Target>,
    pub details: serde_json::Value,
    pub outcome: Outcome,
    pub upstream_status: Option<u16>,
    pub upstream_request_id: Option<String>,
    pub intent_seq: Option<i64>,
}

impl NewEntry {
    /// An entry with no target, empty details (`{}`) and no upstream information.
    pub fn new(actor: Actor, source: Source, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            actor,
            source,
            action: action.into(),
            target: None,
            details: serde_json::Value::Object(Default::default()),
            outcome,
            upstream_status: None,
            upstream_request_id: None,
            intent_seq: None,
        }
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn upstream(mut self, status: Option<u16>, request_id: Option<String>) -> Self {
        self.upstream_status = status;
        self.upstream_request_id = request_id;
        self
    }

    /// Marks this as the outcome of the intent record `seq`.
    pub fn intent(mut self, seq: i64) -> Self {
        self.intent_seq = Some(seq);
        self
    }
}

/// One stored record, every column. Serializes with `time` as RFC 3339 with microseconds and
/// `outcome` lowercase, in column order (the JSONL export is exactly this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    #[serde(serialize_with = "serialize_time")]
    pub time: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub actor_role: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub details: serde_json::Value,
    pub outcome: Outcome,
    pub upstream_status: Option<u16>,
    pub upstream_request_id: Option<String>,
    pub intent_seq: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

impl Record {
    /// A change Orgkeeper observed in the organization (no local account made it).
    pub fn is_observed(&self) -> bool {
        self.actor_id.is_none() && self.actor_role.as_deref() == Some(OBSERVED)
    }

    /// Set when this record resolves an intent that a crash left without an outcome.
    pub fn resolution(&self) -> Option<Resolution> {
        if self.intent_seq.is_none() || self.details["reconciled_after_restart"] != true {
            return None;
        }
        self.details["resolution"]
            .as_str()
            .and_then(Resolution::parse)
    }
}

/// The stored time format: RFC 3339, UTC, always six fractional digits, `Z`.
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn serialize_time<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(time))
}

/// Which records to list or export. Every field is optional; all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Actor name (case-insensitive, exact) or, if it is a number, also the account id.
    pub actor: Option<String>,
    /// An exact action code, or a prefix: `member` and `member.` both match `member.*`
    /// (dot-separated, so `auth.login` does not match `auth.login_failed`).
    pub action: Option<String>,
    /// Target type (`member`) or target id (`user_01…`).
    pub target: Option<String>,
    /// `Pending` means "no outcome yet": intent records that no outcome record points at.
    /// (Every intent keeps its stored `pending` forever; one whose change finished is not
    /// pending in any sense a reader means.)
    pub outcome: Option<Outcome>,
    /// Inclusive lower bound.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub until: Option<DateTime<Utc>>,
    /// Case-insensitive substring of actor name, action, target label/id or details.
    pub text: Option<String>,
    /// `Some(true)`: only changes observed outside Orgkeeper; `Some(false)`: only the rest.
    pub observed: Option<bool>,
}

/// Export formats: CSV (header row, RFC 4180 quoting, CRLF) or JSON Lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    /// For a `Content-Type` header.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }

    /// For a download file name.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::Jsonl),
            _ => Err(ParseError {
                what: "export format",
                value: s.to_owned(),
            }),
        }
    }
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainReport {
    /// Every record links to the one before it, starting from the anchor.
    Intact {
        records: u64,
        last_seq: Option<i64>,
        last_time: Option<DateTime<Utc>>,
    },
    /// The first record (by seq) where the chain does not hold, and why.
    Broken { seq: i64, reason: String },
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        matches!(self, ChainReport::Intact { .. })
    }
}

/// The audit log. Cheap to clone; all clones share one append lock, so appends from one
/// process are serialized (the chain needs each record to see the previous hash).
#[derive(Clone)]
pub struct AuditLog {
    pool: SqlitePool,
    append_lock: Arc<Mutex<()>>,
    /// The log's own clock, which nothing moves: a record carries the time it was written,
    /// even while a test moves the dashboard's clock to exercise a rule.
    clock: crate::clock::Clock,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn new(pool: SqlitePool) -> Self {
        Self::with_clock(pool, crate::clock::Clock::default())
    }

    /// A log whose records take their time from `clock` (tests that need records an exact
    /// time apart move it instead of sleeping).
    pub fn with_clock(pool: SqlitePool, clock: crate::clock::Clock) -> Self {
        Self {
            pool,
            append_lock: Arc::new(Mutex::new(())),
            clock,
        }
    }
}
