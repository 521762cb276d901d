//! The audit log against a real SQLite file: chain integrity, tamper detection, the
//! append-only triggers, retention, filters, exports, redaction, concurrency, failing closed.

use chrono::{Duration, Utc};
use futures_util::TryStreamExt;
use orgkeeper::audit::{
    Actor, AuditError, AuditLog, ChainReport, ExportFormat, Filter, NewEntry, Outcome, Source,
    Target,
};
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tempfile::TempDir;

struct TestDb {
    _dir: TempDir,
    pool: SqlitePool,
    log: AuditLog,
    /// The log's clock: tests move it to put records apart in time.
    clock: orgkeeper::clock::Clock,
}

async fn test_db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = orgkeeper::db::connect(&dir.path().join("orgkeeper.db"))
        .await
        .expect("database opens and migrates");
    let clock = orgkeeper::clock::Clock::default();
    let log = AuditLog::with_clock(pool.clone(), clock.clone());
    TestDb {
        _dir: dir,
        pool,
        log,
        clock,
    }
}

fn alice() -> Actor {
    Actor::account(1, "alice", "owner")
}

fn browser() -> Source {
    Source {
        ip: Some("192.0.2.10".into()),
        user_agent: Some("Mozilla/5.0".into()),
    }
}

fn entry(action: &str) -> NewEntry {
    NewEntry::new(alice(), browser(), action, Outcome::Ok)
}

/// Appends `n` simple records and returns their seqs.
async fn append_many(log: &AuditLog, n: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    for i in 0..n {
        let seq = log
            .append(entry("auth.login").details(json!({"i": i})))
            .await
            .expect("append");
        seqs.push(seq);
    }
    seqs
}

/// What an attacker with the file does first.
async fn drop_triggers(pool: &SqlitePool) {
    for trigger in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {trigger}"))
            .execute(pool)
            .await
            .expect("drop trigger");
    }
}

fn broken_at(report: &ChainReport) -> i64 {
    match report {
        ChainReport::Broken { seq, .. } => *seq,
        intact => panic!("expected a broken chain, got {intact:?}"),
    }
}

#[tokio::test]
async fn appended_records_form_an_intact_chain_with_contiguous_seqs() {
    // Arrange
    let db = test_db().await;

    // Act
    let seqs = append_many(&db.log, 5).await;
    let report = db.log.verify().await.unwrap();

    // Assert
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    match report {
        ChainReport::Intact {
            records,
            last_seq,
            last_time,
        } => {
            assert_eq!(records, 5);
            assert_eq!(last_seq, Some(5));
            assert!(last_time.unwrap() <= Utc::now());
        }
        broken => panic!("chain should be intact: {broken:?}"),
    }
    let first = db.log.get(1).await.unwrap().unwrap();
    let second = db.log.get(2).await.unwrap().unwrap();
    assert_eq!(first.prev_hash, "0".repeat(64));
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(first.hash.len(), 64);
}

#[tokio::test]
async fn an_empty_log_verifies_as_intact() {
    let db = test_db().await;

    let report = db.log.verify().await.unwrap();

    assert_eq!(
        report,
        ChainReport::Intact {
            records: 0,
            last_seq: None,
            last_time: None
        }
    );
}

#[tokio::test]
async fn a_record_stores_every_field_and_the_time_with_microseconds() {
    // Arrange
    let db = test_db().await;
    let intent = db
        .log
        .append(
            NewEntry::new(alice(), browser(), "member.role_changed", Outcome::Pending)
                .target(Target::new("member", "user_01").with_label("bob@example.com"))
                .details(json!({"before": {"role": "user"}, "after": {"role": "developer"}})),
        )
        .await
        .unwrap();

    // Act
    let outcome = db
        .log
        .append(
            NewEntry::new(alice(), browser(), "member.role_changed", Outcome::Ok)
                .target(Target::new("member", "user_01"))
                .upstream(Some(200), Some("req_123".into()))
                .intent(intent),
        )
        .await
        .unwrap();
    let record = db.log.get(outcome).await.unwrap().unwrap();

    // Assert
    assert_eq!(record.intent_seq, Some(intent));
    assert_eq!(record.upstream_status, Some(200));
    assert_eq!(record.upstream_request_id.as_deref(), Some("req_123"));
    assert_eq!(record.actor_role.as_deref(), Some("owner"));
    assert_eq!(record.source_ip.as_deref(), Some("192.0.2.10"));
    let intent_record = db.log.get(intent).await.unwrap().unwrap();
    assert_eq!(intent_record.outcome, Outcome::Pending);
    assert_eq!(
        intent_record.target_label.as_deref(),
        Some("bob@example.com")
    );
    assert_eq!(intent_record.details["after"]["role"], "developer");
    let stored: String = sqlx::query_scalar("SELECT time FROM audit_log WHERE seq = ?")
        .bind(outcome)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        "2025-01-02T03:04:05.123456Z".len(),
        "{stored}"
    );
    assert!(stored.ends_with('Z'));
    assert!(db.log.get(99).await.unwrap().is_none());
}

#[tokio::test]
async fn a_failed_login_is_recorded_by_name_without_an_account_id() {
    let db = test_db().await;

    let seq = db
        .log
        .append(NewEntry::new(
            Actor::named("mallory"),
            browser(),
            "auth.login_failed",
            Outcome::Denied,
        ))
        .await
        .unwrap();

    let record = db.log.get(seq).await.unwrap().unwrap();
    assert_eq!(record.actor_id, None);
    assert_eq!(record.actor_name, "mallory");
    assert_eq!(record.outcome, Outcome::Denied);
}

#[tokio::test]
async fn malformed_entries_are_refused() {
    let db = test_db().await;
    let done = db.log.append(entry("auth.login")).await.unwrap();

    let bad_action = db.log.append(entry("Login")).await;
    let intent_not_pending = db.log.append(entry("auth.logout").intent(done)).await;
    let pending_outcome = db
        .log
        .append(NewEntry::new(alice(), browser(), "key.deactivated", Outcome::Pending).intent(done))
        .await;

    assert!(matches!(bad_action, Err(AuditError::Invalid(_))));
    assert!(matches!(intent_not_pending, Err(AuditError::Invalid(_))));
    assert!(matches!(pending_outcome, Err(AuditError::Invalid(_))));
    assert!(db.log.verify().await.unwrap().is_intact());
}

/// Each way of altering the log by hand, on a fresh log of `records` records: the first
/// record verification names.
#[tokio::test]
async fn verify_names_the_first_altered_record_whatever_was_done() {
    let cases: &[(&str, usize, &str, i64)] = &[
        (
            "an edited field",
            5,
            "UPDATE audit_log SET actor_name = 'bob' WHERE seq = 3",
            3,
        ),
        (
            "reformatted details",
            3,
            "UPDATE audit_log SET details = '{ \"i\": 1 }' WHERE seq = 2",
            2,
        ),
        (
            "a deleted record",
            6,
            "DELETE FROM audit_log WHERE seq = 4",
            4,
        ),
        (
            "records cut off the end",
            5,
            "DELETE FROM audit_log WHERE seq >= 4",
            4,
        ),
        (
            "a deleted first record",
            3,
            "DELETE FROM audit_log WHERE seq = 1",
            1,
        ),
        (
            "a changed hash",
            4,
            "UPDATE audit_log SET hash = prev_hash WHERE seq = 2",
            2,
        ),
        (
            "a changed outcome",
            4,
            "UPDATE audit_log SET outcome = 'failed' WHERE seq = 4",
            4,
        ),
    ];
    for (what, records, tamper, broken) in cases {
        let db = test_db().await;
        append_many(&db.log, *records).await;
        drop_triggers(&db.pool).await;
        sqlx::query(tamper).execute(&db.pool).await.unwrap();
        let report = db.log.verify().await.unwrap();
        assert_eq!(broken_at(&report), *broken, "{what}: {report:?}");
    }
}

#[tokio::test]
async fn verify_names_a_record_inserted_into_the_middle() {
    // Arrange: shift records 3.. up by one and splice a forged copy of record 3 into the gap.
    let db = test_db().await;
    append_many(&db.log, 5).await;
    drop_triggers(&db.pool).await;
    sqlx::query("UPDATE audit_log SET seq = -seq WHERE seq >= 3")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0")
        .execute(&db.pool)
        .await
        .unwrap();

    // Act
    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor_id, actor_name, actor_role, source_ip, \
         user_agent, action, target_type, target_id, target_label, details, outcome, \
         upstream_status, upstream_request_id, intent_seq, prev_hash, hash) \
         SELECT 3, time, actor_id, 'mallory', actor_role, source_ip, user_agent, \
         'account.created', target_type, target_id, target_label, details, outcome, \
         upstream_status, upstream_request_id, intent_seq, prev_hash, hash \
         FROM audit_log WHERE seq = 4",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let report = db.log.verify().await.unwrap();

    // Assert
    assert_eq!(broken_at(&report), 3, "{report:?}");
}

#[tokio::test]
async fn verify_names_a_record_appended_by_hand() {
    let db = test_db().await;
    append_many(&db.log, 2).await;

    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor_name, action, details, outcome, prev_hash, hash) \
         SELECT 3, time, 'mallory', 'account.created', '{}', 'ok', hash, hash \
         FROM audit_log WHERE seq = 2",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let report = db.log.verify().await.unwrap();

    assert_eq!(broken_at(&report), 3, "{report:?}");
}

#[tokio::test]
async fn the_database_refuses_updates_and_deletes() {
    // Arrange: a pruning first, so that there is an anchor row too.
    let db = test_db().await;
    append_many(&db.log, 2).await;
    db.log
        .prune_before(Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    append_many(&db.log, 2).await;

    // Act
    let update = sqlx::query("UPDATE audit_log SET actor_name = 'bob' WHERE seq = 4")
        .execute(&db.pool)
        .await;
    let delete = sqlx::query("DELETE FROM audit_log WHERE seq = 5")
        .execute(&db.pool)
        .await;
    let anchor_update = sqlx::query("UPDATE audit_anchor SET seq = 0")
        .execute(&db.pool)
        .await;
    let anchor_delete = sqlx::query("DELETE FROM audit_anchor")
        .execute(&db.pool)
        .await;

    // Assert
    for (what, result) in [
        ("update", update),
        ("delete", delete),
        ("anchor update", anchor_update),
        ("anchor delete", anchor_delete),
    ] {
        let error = result.expect_err(what).to_string();
        assert!(error.contains("append-only"), "{what}: {error}");
    }
    assert!(db.log.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn pruning_removes_old_records_and_the_chain_still_verifies() {
    // Arrange
    let db = test_db().await;
    append_many(&db.log, 4).await;
    db.clock.advance(std::time::Duration::from_secs(1));
    let cutoff = db.clock.now();
    db.clock.advance(std::time::Duration::from_secs(1));
    append_many(&db.log, 2).await;

    // Act
    let deleted = db.log.prune_before(cutoff).await.unwrap();
    let report = db.log.verify().await.unwrap();

    // Assert
    assert_eq!(deleted, 4);
    for seq in 1..=4 {
        assert!(db.log.get(seq).await.unwrap().is_none(), "record {seq}");
    }
    match report {
        ChainReport::Intact {
            records, last_seq, ..
        } => {
            assert_eq!(records, 3, "two kept and the audit.pruned record");
            assert_eq!(last_seq, Some(7));
        }
        broken => panic!("chain should verify after pruning: {broken:?}"),
    }
    let pruned = db.log.get(7).await.unwrap().unwrap();
    assert_eq!(pruned.action, "audit.pruned");
    assert_eq!(pruned.actor_name, "system");
    assert_eq!(pruned.details["deleted"], 4);
    assert_eq!(pruned.details["anchor_seq"], 4);
    // Appending and pruning again keep working from the new anchor.
    assert_eq!(db.log.append(entry("auth.logout")).await.unwrap(), 8);
    assert_eq!(
        db.log
            .prune_before(db.clock.now() + Duration::hours(1))
            .await
            .unwrap(),
        4
    );
    assert!(db.log.verify().await.unwrap().is_intact());
    assert_eq!(db.log.prune_before(cutoff).await.unwrap(), 0);
}

#[tokio::test]
async fn pruning_is_refused_when_the_chain_is_broken() {
    let db = test_db().await;
    append_many(&db.log, 3).await;
    drop_triggers(&db.pool).await;
    sqlx::query("UPDATE audit_log SET action = 'auth.logout' WHERE seq = 2")
        .execute(&db.pool)
        .await
        .unwrap();

    let result = db.log.prune_before(Utc::now() + Duration::hours(1)).await;

    assert!(
        matches!(result, Err(AuditError::ChainBroken { seq: 2, .. })),
        "{result:?}"
    );
    assert!(db.log.get(1).await.unwrap().is_some());
}

#[tokio::test]
async fn verify_notices_a_forged_anchor_after_pruning() {
    // Arrange: prune legitimately, then delete the first remaining records and forge an anchor.
    let db = test_db().await;
    append_many(&db.log, 2).await;
    db.log
        .prune_before(Utc::now() + Duration::hours(1))
        .await
        .unwrap();
    append_many(&db.log, 3).await;
    drop_triggers(&db.pool).await;

    // Act
    sqlx::query("DELETE FROM audit_log WHERE seq <= 4")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_anchor (seq, hash, cutoff, deleted, created_at) \
         SELECT 4, prev_hash, time, 4, time FROM audit_log WHERE seq = 5",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let report = db.log.verify().await.unwrap();

    // Assert
    assert_eq!(broken_at(&report), 5, "{report:?}");
}

/// Seeds a small varied log for the filter tests.
async fn seed_varied(log: &AuditLog) {
    let bob = Actor::account(2, "Bob", "admin");
    let entries = vec![
        NewEntry::new(alice(), browser(), "auth.login", Outcome::Ok),
        NewEntry::new(
            Actor::named("mallory"),
            browser(),
            "auth.login_failed",
            Outcome::Denied,
        ),
        NewEntry::new(bob.clone(), browser(), "member.role_changed", Outcome::Ok)
            .target(Target::new("member", "user_01").with_label("carol@example.com"))
            .details(json!({"before": {"role": "user"}, "after": {"role": "developer"}})),
        NewEntry::new(bob.clone(), browser(), "member.removed", Outcome::Failed)
            .target(Target::new("member", "user_02").with_label("dave@example.com"))
            .upstream(Some(500), Some("req_9".into())),
        NewEntry::new(alice(), browser(), "key.deactivated", Outcome::Ok)
            .target(Target::new("api_key", "apikey_01").with_label("CI deploy key")),
        NewEntry::new(bob, browser(), "access.denied", Outcome::Denied)
            .details(json!({"path": "/accounts"})),
    ];
    for e in entries {
        log.append(e).await.unwrap();
    }
}

async fn seqs_matching(log: &AuditLog, filter: Filter) -> Vec<i64> {
    let (records, total) = log.query(&filter, 100, 0).await.unwrap();
    assert_eq!(total as usize, records.len());
    records.into_iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn filters_select_by_actor_action_target_outcome_and_text() {
    // Arrange
    let db = test_db().await;
    seed_varied(&db.log).await;
    let by = |f: fn(&mut Filter)| {
        let mut filter = Filter::default();
        f(&mut filter);
        filter
    };

    // Act + Assert: newest first.
    assert_eq!(
        seqs_matching(&db.log, Filter::default()).await,
        vec![6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.actor = Some("bob".into()))).await,
        vec![6, 4, 3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.actor = Some("1".into()))).await,
        vec![5, 1]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.action = Some("member.".into()))).await,
        vec![4, 3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.action = Some("member".into()))).await,
        vec![4, 3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.action = Some("auth.login".into()))).await,
        vec![1],
        "an exact code is not a prefix of auth.login_failed"
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.target = Some("member".into()))).await,
        vec![4, 3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.target = Some("apikey_01".into()))).await,
        vec![5]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.outcome = Some(Outcome::Denied))).await,
        vec![6, 2]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.text = Some("CAROL@".into()))).await,
        vec![3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.text = Some("developer".into()))).await,
        vec![3]
    );
    assert_eq!(
        seqs_matching(&db.log, by(|f| f.text = Some("50%".into()))).await,
        Vec::<i64>::new()
    );
    assert_eq!(
        seqs_matching(
            &db.log,
            by(|f| {
                f.outcome = Some(Outcome::Ok);
                f.actor = Some("  ".into());
            })
        )
        .await,
        vec![5, 3, 1],
        "a blank field is no filter"
    );
}

#[tokio::test]
async fn filters_select_a_time_range_and_pages_report_the_total() {
    // Arrange
    let db = test_db().await;
    append_many(&db.log, 3).await;
    db.clock.advance(std::time::Duration::from_secs(1));
    let middle = db.clock.now();
    db.clock.advance(std::time::Duration::from_secs(1));
    append_many(&db.log, 4).await;

    // Act
    let since = seqs_matching(
        &db.log,
        Filter {
            since: Some(middle),
            ..Filter::default()
        },
    )
    .await;
    let until = seqs_matching(
        &db.log,
        Filter {
            until: Some(middle),
            ..Filter::default()
        },
    )
    .await;
    let (page, total) = db.log.query(&Filter::default(), 2, 2).await.unwrap();

    // Assert
    assert_eq!(since, vec![7, 6, 5, 4]);
    assert_eq!(until, vec![3, 2, 1]);
    assert_eq!(total, 7);
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 4]);
}

/// A minimal RFC 4180 reader, to check the export parses back.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

fn awkward_entry() -> NewEntry {
    NewEntry::new(
        Actor::named("O'Brien, \"Pat\""),
        Source {
            ip: None,
            user_agent: Some("=HYPERLINK(\"http://evil\")".into()),
        },
        "account.created",
        Outcome::Ok,
    )
    .target(Target::new("account", "7").with_label("line one\nline two, with comma"))
    .details(json!({"note": "a \"quoted\", multi\r\nline value"}))
}

#[tokio::test]
async fn csv_export_has_a_header_and_quotes_commas_quotes_and_newlines() {
    // Arrange
    let db = test_db().await;
    db.log.append(entry("auth.login")).await.unwrap();
    db.log.append(awkward_entry()).await.unwrap();

    // Act
    let mut out = Vec::new();
    let written = db
        .log
        .export(&Filter::default(), ExportFormat::Csv, &mut out)
        .await
        .unwrap();

    // Assert
    assert_eq!(written, 2);
    let text = String::from_utf8(out).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 3);
    let header = &rows[0];
    assert_eq!(header[0], "seq");
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = &rows[2];
    assert_eq!(row[col("seq")], "2");
    assert_eq!(row[col("actor_name")], "O'Brien, \"Pat\"");
    assert_eq!(row[col("target_label")], "line one\nline two, with comma");
    assert_eq!(row[col("source_ip")], "");
    assert_eq!(
        row[col("user_agent")],
        "'=HYPERLINK(\"http://evil\")",
        "formulas are neutralized"
    );
    let details: Value = serde_json::from_str(&row[col("details")]).unwrap();
    assert_eq!(details["note"], "a \"quoted\", multi\r\nline value");
    let record = db.log.get(2).await.unwrap().unwrap();
    assert_eq!(
        row[col("time")],
        record
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    );
    assert_eq!(row[col("hash")], record.hash);
}

#[tokio::test]
async fn jsonl_export_parses_back_into_the_records() {
    // Arrange
    let db = test_db().await;
    seed_varied(&db.log).await;
    db.log.append(awkward_entry()).await.unwrap();

    // Act
    let mut out = Vec::new();
    let written = db
        .log
        .export(
            &Filter {
                action: Some("member".into()),
                ..Filter::default()
            },
            ExportFormat::Jsonl,
            &mut out,
        )
        .await
        .unwrap();
    let mut all = Vec::new();
    db.log
        .export(&Filter::default(), ExportFormat::Jsonl, &mut all)
        .await
        .unwrap();

    // Assert: oldest first, one object per line, equal to what `get` returns.
    assert_eq!(written, 2);
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], 3);
    assert_eq!(lines[1]["seq"], 4);
    assert_eq!(lines[1]["upstream_status"], 500);
    assert_eq!(lines[1]["outcome"], "failed");
    let all = String::from_utf8(all).unwrap();
    assert_eq!(all.lines().count(), 7);
    let last: orgkeeper::audit::Record = serde_json::from_str(all.lines().last().unwrap()).unwrap();
    assert_eq!(last, db.log.get(7).await.unwrap().unwrap());
}

#[tokio::test]
async fn export_stream_yields_the_same_bytes_as_export() {
    // Arrange
    let db = test_db().await;
    append_many(&db.log, 50).await;
    db.log.append(awkward_entry()).await.unwrap();

    // Act
    let mut direct = Vec::new();
    db.log
        .export(&Filter::default(), ExportFormat::Csv, &mut direct)
        .await
        .unwrap();
    let chunks: Vec<Vec<u8>> = db
        .log
        .export_stream(Filter::default(), ExportFormat::Csv)
        .try_collect()
        .await
        .unwrap();
    let empty: Vec<Vec<u8>> = db
        .log
        .export_stream(
            Filter {
                action: Some("nothing.here".into()),
                ..Filter::default()
            },
            ExportFormat::Csv,
        )
        .try_collect()
        .await
        .unwrap();

    // Assert
    assert_eq!(chunks.concat(), direct);
    assert!(String::from_utf8(empty.concat())
        .unwrap()
        .starts_with("seq,time,"));
    assert_eq!(
        parse_csv(&String::from_utf8(empty.concat()).unwrap()).len(),
        1
    );
}

#[tokio::test]
async fn secrets_in_details_are_redacted_but_identifiers_are_kept() {
    // Arrange
    let db = test_db().await;
    let details = json!({
        "password": "hunter2",
        "New_Password": "hunter3",
        "form": {"_csrf": "tok", "X-Api-Key": "sk-ant-admin01-abc", "name": "deploy"},
        "keys": [{"api_key": "sk-ant-api03-xyz", "api_key_id": "apikey_01",
                  "partial_key_hint": "sk-ant-api03-R2D...igAA"}],
        "token": {"nested": "object"},
    });

    // Act
    let seq = db
        .log
        .append(entry("account.created").details(details))
        .await
        .unwrap();
    let record = db.log.get(seq).await.unwrap().unwrap();

    // Assert
    assert_eq!(
        record.details,
        json!({
            "password": "[redacted]",
            "New_Password": "[redacted]",
            "form": {"_csrf": "[redacted]", "X-Api-Key": "[redacted]", "name": "deploy"},
            "keys": [{"api_key": "[redacted]", "api_key_id": "apikey_01",
                      "partial_key_hint": "sk-ant-api03-R2D...igAA"}],
            "token": "[redacted]",
        })
    );
    let raw: String = sqlx::query_scalar("SELECT details FROM audit_log WHERE seq = ?")
        .bind(seq)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(
        !raw.contains("hunter") && !raw.contains("sk-ant-admin01"),
        "{raw}"
    );
}

#[tokio::test]
async fn concurrent_appends_keep_a_valid_contiguous_chain() {
    // Arrange
    let db = test_db().await;

    // Act
    let tasks: Vec<_> = (0..40)
        .map(|t| {
            let log = db.log.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..5 {
                    seqs.push(
                        log.append(entry("auth.login").details(json!({"task": t, "i": i})))
                            .await
                            .unwrap(),
                    );
                }
                seqs
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    let report = db.log.verify().await.unwrap();

    // Assert
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    assert_eq!(
        report,
        ChainReport::Intact {
            records: 200,
            last_seq: Some(200),
            last_time: db.log.get(200).await.unwrap().map(|r| r.time),
        }
    );
}

#[tokio::test]
async fn append_fails_closed_when_the_database_is_unavailable() {
    // Arrange
    let db = test_db().await;
    db.log.append(entry("auth.login")).await.unwrap();

    // Act
    db.pool.close().await;
    let result = db.log.append(entry("member.removed")).await;

    // Assert
    assert!(matches!(result, Err(AuditError::Database(_))), "{result:?}");
}

/// An independent implementation of the documented canonical form.
fn canonical(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        scalar => scalar.to_string(),
    }
}

#[tokio::test]
async fn a_jsonl_export_can_be_verified_with_the_documented_rules_alone() {
    // Arrange
    let db = test_db().await;
    seed_varied(&db.log).await;
    db.log.append(awkward_entry()).await.unwrap();
    let mut out = Vec::new();
    db.log
        .export(&Filter::default(), ExportFormat::Jsonl, &mut out)
        .await
        .unwrap();

    // Act: hash = hex(SHA-256(prev_hash || [fields in fixed order])).
    let mut prev = "0".repeat(64);
    for line in String::from_utf8(out).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let fields = [
            "seq",
            "time",
            "actor_id",
            "actor_name",
            "actor_role",
            "source_ip",
            "user_agent",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "details",
            "outcome",
            "upstream_status",
            "upstream_request_id",
            "intent_seq",
        ];
        let content = format!(
            "[{}]",
            fields
                .iter()
                .map(|f| canonical(&r[*f]))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut hasher, prev.as_bytes());
        sha2::Digest::update(&mut hasher, content.as_bytes());
        let hash = hex::encode(sha2::Digest::finalize(hasher));

        // Assert
        assert_eq!(r["prev_hash"], prev.as_str(), "record {}", r["seq"]);
        assert_eq!(r["hash"], hash.as_str(), "record {}", r["seq"]);
        prev = hash;
    }
}
