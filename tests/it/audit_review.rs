//! The audit review pages: chain state, re-check, the broken-chain banner and its
//! acknowledgement, a record's before/after, filtered exports, retention.

use crate::support::*;
use orgkeeper::audit::{Filter, Outcome};
use orgkeeper::auth::Role;

/// An attacker with file access: drop the append-only triggers and edit a record.
async fn tamper_with_record(app: &TestApp, seq: i64) {
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    for trigger in triggers {
        sqlx::query(&format!("DROP TRIGGER {trigger}"))
            .execute(&app.db)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit_log SET actor_name = 'nobody' WHERE seq = ?")
        .bind(seq)
        .execute(&app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_broken_chain_shows_a_banner_to_reviewers_until_acknowledged() {
    let app = spawn_app().await;
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    tamper_with_record(&app, 1).await;

    let recheck = auditor.post("/audit/verify", &[]).await;
    assert_eq!(recheck.status(), 303);

    let (_, owner_page) = owner.get_text("/").await;
    assert!(
        owner_page.contains("hash chain is broken at record 1"),
        "owners see the banner"
    );
    let (_, viewer_page) = viewer.get_text("/").await;
    assert!(
        !viewer_page.contains("hash chain is broken"),
        "viewers cannot read the audit log, so no banner"
    );
    // Auditors review; only owners and admins may silence the banner for everyone.
    let (_, audit_page) = auditor.get_text("/audit").await;
    assert!(audit_page.contains("hash chain is broken at record 1"));
    assert!(!audit_page.contains("Acknowledge the break"));
    let refused = auditor.post("/audit/acknowledge", &[]).await;
    assert_eq!(refused.status(), 403);
    let (_, owner_still) = owner.get_text("/").await;
    assert!(owner_still.contains("hash chain is broken at record 1"));
    let (_, owner_audit) = owner.get_text("/audit").await;
    assert!(owner_audit.contains("Acknowledge the break"));

    let acknowledged = owner.post("/audit/acknowledge", &[]).await;

    assert_eq!(acknowledged.status(), 303);
    let (_, owner_after) = owner.get_text("/").await;
    assert!(
        !owner_after.contains("hash chain is broken"),
        "the banner is gone for everyone"
    );
    let records = app
        .audit_records(Filter {
            action: Some("audit.break_acknowledged".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].details["broken_seq"], 1);
    let checks = app
        .audit_records(Filter {
            action: Some("audit.verified".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(checks[0].outcome, Outcome::Failed);
}

#[tokio::test]
async fn the_audit_page_says_up_to_which_record_the_chain_is_verified() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    admin.post("/audit/verify", &[]).await;
    let newest = app.audit_records(Filter::default()).await[0].seq;

    let (status, page) = admin.get_text("/audit").await;

    assert_eq!(status, 200);
    assert!(page.contains("Chain verified"), "{page}");
    assert!(
        page.contains(&format!("up to record {}", newest - 1))
            || page.contains(&format!("up to record {newest}"))
    );
}

#[tokio::test]
async fn a_record_page_shows_before_and_after_side_by_side() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let target = app.create_account("subject", Role::Viewer, &[]).await;
    owner
        .post(
            &format!("/accounts/{}/role", target.id),
            &[("role", "auditor")],
        )
        .await;
    let change = app
        .audit_records(Filter {
            action: Some("account.role_changed".into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        })
        .await
        .remove(0);

    let (_, page) = owner.get_text(&format!("/audit/{}", change.seq)).await;

    assert!(page.contains("Before and after"));
    let diff = page.split("class=\"table diff\"").nth(1).unwrap();
    assert!(
        diff.contains("Viewer") && diff.contains("Auditor"),
        "roles by their labels: {diff}"
    );
    assert!(
        page.contains("<h1 class=\"Subhead-heading Subhead-heading--large\">Record")
            && page.contains("Account role changed</h1>"),
        "titled by what happened, not its code"
    );
    assert!(
        page.contains(&format!("/audit/{}", change.intent_seq.unwrap())),
        "links to its intent record"
    );
}

#[tokio::test]
async fn the_export_contains_exactly_the_filtered_records() {
    let app = spawn_app().await;
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    app.client()
        .login("nobody-at-all", "wrong password here")
        .await;

    let response = auditor
        .get("/audit/export?format=csv&action=auth.login_failed")
        .await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".csv"));
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("seq,"), "header row: {}", lines[0]);
    assert_eq!(lines.len(), 2, "one failed sign-in: {body}");
    assert!(lines[1].contains("nobody-at-all"));
}

#[tokio::test]
async fn retention_prunes_old_records_and_keeps_the_chain_verifiable() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.audit_retention_days = Some(30);
    })
    .await;
    app.signed_in(Role::Viewer).await;
    let before = app.audit_records(Filter::default()).await;
    assert!(!before.is_empty());

    // Nothing is 30 days old today; 31 days from now, everything written so far is.
    orgkeeper::jobs::run_chain_check(&app.state).await;
    assert_eq!(
        app.audit_records(Filter::default()).await.len(),
        before.len()
    );
    app.state
        .clock
        .advance(std::time::Duration::from_secs(31 * 24 * 3600));
    orgkeeper::jobs::run_chain_check(&app.state).await;

    let after = app.audit_records(Filter::default()).await;
    assert!(
        after.iter().all(|r| r.seq > before[0].seq),
        "the old records are gone"
    );
    assert_eq!(
        after.iter().filter(|r| r.action == "audit.pruned").count(),
        1
    );
    let check = app.state.chain.last().unwrap();
    assert!(
        matches!(check.report, orgkeeper::audit::ChainReport::Intact { .. }),
        "the pruned chain still verifies"
    );
}

/// The normal state is calm: right after a re-check, the audit page says the chain is verified
/// and nothing about newer records (the re-check's own record is not news); records written
/// later are mentioned plainly, not as a warning.
#[tokio::test]
async fn right_after_a_recheck_the_audit_page_is_calm() {
    let app = spawn_app().await;
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let recheck = auditor.post("/audit/verify", &[]).await;
    assert_eq!(recheck.status(), 303);
    let (_, page) = auditor.get_text("/audit").await;
    assert!(page.contains("Chain verified"), "{page}");
    assert!(!page.contains("id=\"chain-newer\""), "{page}");

    app.create_account("later", Role::Viewer, &[]).await;
    let (_, page) = auditor.get_text("/audit").await;
    assert!(page.contains("id=\"chain-newer\""), "{page}");
    assert!(page.contains("written since"));
    assert!(!page.contains("not verified"));
}
