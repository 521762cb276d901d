//! Intents a crash left without an outcome: resolved at the next start from the state the
//! simulator (or Orgkeeper's own tables) shows, and shown plainly on the audit page.
//!
//! A crash between the intent and the outcome is reproduced by appending the intent record
//! directly and making (or not making) the change on the simulator, exactly what a process
//! killed at that moment leaves behind.

use orgkeeper::anthropic::{AdminKey, CreateInvite, OrgRole, UpdateApiKey, User};
use orgkeeper::audit::{
    Actor, AuditError, Filter, NewEntry, Outcome, Record, Resolution, Source, Target,
    RECOVERY_ACTOR,
};
use orgkeeper::auth::accounts::Account;
use orgkeeper::auth::Role;
use orgkeeper::config::Upstream;
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, TestApp, ADMIN_KEY};

fn person(account: &Account) -> Actor {
    Actor::account(account.id, &account.username, "owner")
}

/// Appends an intent record with no outcome, as a process killed mid-change leaves it.
async fn orphan(app: &TestApp, actor: &Actor, action: &str, target: Target, details: Value) -> i64 {
    app.state
        .audit
        .append(
            NewEntry::new(actor.clone(), Source::default(), action, Outcome::Pending)
                .target(target)
                .details(details),
        )
        .await
        .unwrap()
}

/// Members whose role the Admin API can change (not admins), that are `user` today.
async fn plain_users(app: &TestApp) -> Vec<User> {
    app.state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.role == OrgRole::User)
        .collect()
}

async fn restart(app: TestApp) -> TestApp {
    let (simulator, dir, config) = app.stop().await;
    spawn_app_with(config, simulator, Some(dir)).await
}

async fn unresolved(app: &TestApp) -> Vec<i64> {
    app.audit_records(Filter {
        outcome: Some(Outcome::Pending),
        ..Default::default()
    })
    .await
    .into_iter()
    .map(|r| r.seq)
    .collect()
}

async fn outcome_of(app: &TestApp, intent: i64) -> Record {
    app.state
        .audit
        .outcomes_of(&[intent])
        .await
        .unwrap()
        .remove(&intent)
        .unwrap_or_else(|| panic!("intent {intent} has no outcome"))
}

#[tokio::test]
async fn intents_a_crash_left_open_are_resolved_from_what_the_organization_shows() {
    // Arrange: one crash's worth of open intents, some applied upstream, some not.
    let app = spawn_app().await;
    let owner = app.create_account("olga", Role::Owner, &[]).await;
    let olga = person(&owner);
    let api = app.state.org.api().clone();
    let users = plain_users(&app).await;
    let (applied_user, skipped_user, normal_user) = (&users[0], &users[1], &users[2]);

    api.update_user_role(&applied_user.id, OrgRole::Developer)
        .await
        .unwrap();
    let role_applied = orphan(
        &app,
        &olga,
        "member.role_changed",
        Target::new("member", &applied_user.id).with_label(&applied_user.email),
        json!({ "before": "user", "after": "developer", "email": applied_user.email }),
    )
    .await;
    let role_not_applied = orphan(
        &app,
        &olga,
        "member.role_changed",
        Target::new("member", &skipped_user.id).with_label(&skipped_user.email),
        json!({ "before": "user", "after": "developer", "email": skipped_user.email }),
    )
    .await;

    let key = api
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.status.as_str() == "active")
        .expect("an active key");
    let update = UpdateApiKey {
        name: Some("renamed during the crash".into()),
        status: None,
    };
    api.update_api_key(&key.id, &update).await.unwrap();
    let rename_applied = orphan(
        &app,
        &olga,
        "key.renamed",
        Target::new("api_key", &key.id).with_label(&key.name),
        json!({ "before": { "name": key.name }, "after": { "name": "renamed during the crash" } }),
    )
    .await;

    let email = "crash-invite@example.com";
    api.create_invite(&CreateInvite {
        email: email.into(),
        role: OrgRole::Developer,
        rbac_group_ids: Vec::new(),
    })
    .await
    .unwrap();
    let invite_applied = orphan(
        &app,
        &olga,
        "invite.created",
        Target::new("invite", email).with_label(email),
        json!({ "email": email, "role": "developer" }),
    )
    .await;
    let workspace_not_applied = orphan(
        &app,
        &olga,
        "workspace.created",
        Target::new("workspace", "(new)").with_label("Never made it"),
        json!({ "after": { "name": "Never made it", "display_color": null } }),
    )
    .await;
    let account_applied = orphan(
        &app,
        &olga,
        "account.created",
        Target::new("account", "olga").with_label("olga"),
        json!({ "username": "olga", "role": "owner", "workspaces": [] }),
    )
    .await;
    let cannot_tell = orphan(
        &app,
        &olga,
        "account.password_reset",
        Target::new("account", owner.id.to_string()).with_label("olga"),
        json!({}),
    )
    .await;
    let orphans = [
        role_applied,
        role_not_applied,
        rename_applied,
        invite_applied,
        workspace_not_applied,
        account_applied,
        cannot_tell,
    ];

    // A change that finished normally: its intent has an outcome and is not pending.
    let session = app.login_as("olga").await;
    let response = session
        .post(
            &format!("/members/{}/role", normal_user.id),
            &[("role", "developer")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let normal_intent = app
        .audit_records(Filter {
            action: Some("member.role_changed".into()),
            target: Some(normal_user.id.clone()),
            ..Default::default()
        })
        .await
        .into_iter()
        .find(|r| r.outcome == Outcome::Pending)
        .expect("the intent of the normal change")
        .seq;

    // The pending filter shows exactly the open intents, not every intent ever written.
    let mut open = unresolved(&app).await;
    open.sort();
    assert_eq!(open, orphans.to_vec());
    let (_, page) = session.get_text("/audit?outcome=pending").await;
    assert!(
        page.contains(&format!("{} matching records", orphans.len())),
        "{page}"
    );
    assert!(!page.contains(&format!("href=\"/audit/{normal_intent}\"")));
    assert!(page.contains("no outcome yet"));

    // Act
    let app = restart(app).await;

    // Assert: each open intent has one outcome, written by the recovery, saying what it found.
    let expect = [
        (role_applied, Resolution::Applied, Outcome::Ok),
        (role_not_applied, Resolution::NotApplied, Outcome::Failed),
        (rename_applied, Resolution::Applied, Outcome::Ok),
        (invite_applied, Resolution::Applied, Outcome::Ok),
        (
            workspace_not_applied,
            Resolution::NotApplied,
            Outcome::Failed,
        ),
        (account_applied, Resolution::Applied, Outcome::Ok),
        (cannot_tell, Resolution::Unknown, Outcome::Failed),
    ];
    for (intent, resolution, outcome) in expect {
        let record = outcome_of(&app, intent).await;
        assert_eq!(
            record.resolution(),
            Some(resolution),
            "intent {intent}: {record:?}"
        );
        assert_eq!(record.outcome, outcome, "intent {intent}");
        assert_eq!(record.actor_name, RECOVERY_ACTOR);
        assert_eq!(record.details["reconciled_after_restart"], true);
        assert_eq!(record.details["intent_actor"], "olga");
        assert!(!record.details["reason"].as_str().unwrap().is_empty());
        let intent_record = app.state.audit.get(intent).await.unwrap().unwrap();
        assert_eq!(record.action, intent_record.action);
        assert_eq!(record.target_id, intent_record.target_id);
    }
    let normal = outcome_of(&app, normal_intent).await;
    assert_eq!(normal.resolution(), None, "a finished change is left alone");
    assert_eq!(normal.actor_name, "olga");
    assert!(unresolved(&app).await.is_empty());
    assert!(app.state.audit.verify().await.unwrap().is_intact());

    // The audit page says plainly what happened.
    let session = app.login_as("olga").await;
    let (_, page) = session.get_text("/audit?outcome=pending").await;
    assert!(page.contains("0 matching records"), "{page}");
    let (_, page) = session.get_text("/audit").await;
    for label in ["applied", "not applied", "unknown"] {
        assert!(
            page.contains(&format!("interrupted — resolved after restart: {label}<")),
            "{label}: {page}"
        );
    }
    let shown = outcome_of(&app, role_not_applied).await.seq;
    let (_, page) = session.get_text(&format!("/audit/{shown}")).await;
    assert!(page.contains("Interrupted — resolved after restart: not applied."));
    assert!(page.contains("The member has the role user, not developer."));
    let (_, page) = session.get_text(&format!("/audit/{role_applied}")).await;
    assert!(
        page.contains("interrupted — resolved after restart: applied"),
        "{page}"
    );

    // A second start finds nothing left to do.
    let records = app.audit_records(Filter::default()).await.len();
    let app = restart(app).await;
    let after: Vec<Record> = app.audit_records(Filter::default()).await;
    assert_eq!(
        after
            .iter()
            .filter(|r| r.actor_name == RECOVERY_ACTOR)
            .count(),
        orphans.len()
    );
    assert_eq!(after.len(), records);
}

#[tokio::test]
async fn when_the_admin_api_cannot_be_reached_an_interrupted_change_is_resolved_as_unknown() {
    // Arrange
    let app = spawn_app().await;
    let owner = app.create_account("olga", Role::Owner, &[]).await;
    let users = plain_users(&app).await;
    let mut intents = Vec::new();
    for user in &users[..2] {
        intents.push(
            orphan(
                &app,
                &person(&owner),
                "member.role_changed",
                Target::new("member", &user.id),
                json!({ "before": "user", "after": "developer" }),
            )
            .await,
        );
    }
    let (simulator, dir, mut config) = app.stop().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    config.upstream = Upstream::Live {
        base_url: nowhere,
        key: AdminKey::new(ADMIN_KEY.to_owned()),
    };
    config.api_deadline = std::time::Duration::from_secs(2);

    // Act
    let started = std::time::Instant::now();
    let app = spawn_app_with(config, simulator, Some(dir)).await;

    // Assert: resolved, bounded, and not guessed.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    for intent in intents {
        let record = outcome_of(&app, intent).await;
        assert_eq!(record.resolution(), Some(Resolution::Unknown));
        assert_eq!(record.outcome, Outcome::Failed);
        assert_eq!(record.details["resolution"], "unknown");
        let reason = record.details["reason"].as_str().unwrap();
        assert!(reason.contains("could not read"), "{reason}");
    }
    assert!(app.state.audit.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn an_intent_gets_one_outcome_and_a_newer_intent_is_left_to_its_own_process() {
    let app = spawn_app().await;
    let owner = app.create_account("olga", Role::Owner, &[]).await;
    let users = plain_users(&app).await;
    let before_start = chrono::Utc::now();
    let newer = orphan(
        &app,
        &person(&owner),
        "member.role_changed",
        Target::new("member", &users[0].id),
        json!({ "before": "user", "after": "developer" }),
    )
    .await;

    // The recovery of a process that started before this intent was written leaves it alone.
    let resolved = orgkeeper::service::reconcile::run(&app.state, before_start)
        .await
        .unwrap();
    assert!(resolved.is_empty());
    assert_eq!(unresolved(&app).await, vec![newer]);

    // Its own outcome goes in; a second one for the same intent is refused.
    let done = NewEntry::new(
        person(&owner),
        Source::default(),
        "member.role_changed",
        Outcome::Ok,
    )
    .intent(newer);
    app.state.audit.append(done.clone()).await.unwrap();
    let again = app.state.audit.append(done).await;
    assert!(
        matches!(again, Err(AuditError::AlreadyResolved { intent, .. }) if intent == newer),
        "{again:?}"
    );
    assert!(unresolved(&app).await.is_empty());
    assert!(app.state.audit.verify().await.unwrap().is_intact());
}

/// A crash during a token or SCIM change leaves intents that the next start resolves from
/// Orgkeeper's own tables: a token that exists was created, one still live was not revoked, a
/// person SCIM still holds was not deleted.
#[tokio::test]
async fn interrupted_token_and_scim_changes_are_resolved_from_orgkeepers_tables() {
    use orgkeeper::auth::tokens::TokenKind;
    use orgkeeper::service::tokens::{self, NewToken};
    let app = spawn_app().await;
    let olga = app.create_account("olga", Role::Owner, &[]).await;
    let actor = person(&olga);
    let made = tokens::create(
        &app.state,
        &crate::support::TEST_CALLER,
        NewToken {
            name: "deploy".into(),
            kind: TokenKind::Api,
            account: Some(olga.clone()),
            read_only: true,
            workspaces: vec![],
            expires_in_days: Some(30),
        },
    )
    .await
    .unwrap();
    let token_created = orphan(
        &app,
        &actor,
        "token.created",
        Target::new("token", "new").with_label("deploy"),
        json!({ "kind": "api" }),
    )
    .await;
    let token_never_made = orphan(
        &app,
        &actor,
        "token.created",
        Target::new("token", "new").with_label("never-made"),
        json!({ "kind": "api" }),
    )
    .await;
    let revoke_not_done = orphan(
        &app,
        &actor,
        "token.revoked",
        Target::new("token", made.token.id.to_string()).with_label("deploy"),
        json!({ "kind": "api" }),
    )
    .await;
    let scim_delete_not_done = orphan(
        &app,
        &actor,
        "scim.user_deleted",
        Target::new("scim_user", "no-such-person").with_label("gone@example.com"),
        json!({ "email": "gone@example.com" }),
    )
    .await;

    let app = restart(app).await;
    for (intent, resolution, reason) in [
        (
            token_created,
            Resolution::Applied,
            "A token named deploy exists.",
        ),
        (
            token_never_made,
            Resolution::NotApplied,
            "No live token is named never-made.",
        ),
        (
            revoke_not_done,
            Resolution::NotApplied,
            "The token is not revoked.",
        ),
        (
            scim_delete_not_done,
            Resolution::Applied,
            "SCIM no longer holds the person.",
        ),
    ] {
        let record = outcome_of(&app, intent).await;
        assert_eq!(
            record.resolution(),
            Some(resolution),
            "{intent}: {record:?}"
        );
        assert_eq!(record.details["reason"], reason, "{intent}");
    }
    assert!(unresolved(&app).await.is_empty());
}
