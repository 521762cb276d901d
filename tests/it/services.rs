//! The service layer's promises: one implementation per change, so the rules hold on every
//! path (pages, bulk, wizards, jobs), and one audit code per action.

use std::time::Duration;

use orgkeeper::anthropic::ApiKeyStatus;
use orgkeeper::audit::{Actor, Filter, NewEntry, Outcome, Source, Target};
use orgkeeper::auth::Role;

use crate::support::*;

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 24 * 3600)
}

async fn records(app: &TestApp, action: &str) -> Vec<orgkeeper::audit::Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn archiving_a_workspace_completes_its_keys_schedules_so_nothing_is_archived_twice() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let api = app.state.org.api();
    let keys = api.list_all_api_keys(&Default::default()).await.unwrap();
    let workspaces = api.list_all_workspaces(&Default::default()).await.unwrap();
    let (workspace, key) = workspaces
        .iter()
        .filter(|w| w.archived_at.is_none())
        .find_map(|w| {
            keys.iter()
                .find(|k| {
                    k.status == ApiKeyStatus::Active && k.workspace_id() == Some(w.id.as_str())
                })
                .map(|k| (w.clone(), k.clone()))
        })
        .expect("a live workspace with an active key");

    let scheduled = admin
        .post(&format!("/keys/{}/schedule-archive", key.id), &[])
        .await;
    assert_eq!(scheduled.status(), 303);
    let archived = admin
        .post(
            &format!("/workspaces/{}/archive", workspace.id),
            &[("confirm", workspace.name.as_str())],
        )
        .await;
    assert_eq!(archived.status(), 303);
    assert_eq!(
        api.get_api_key(&key.id).await.unwrap().status,
        ApiKeyStatus::Archived,
        "Anthropic archives a workspace's keys with it"
    );

    let state: String =
        sqlx::query_scalar("SELECT state FROM key_archive_schedules WHERE api_key_id = ?")
            .bind(&key.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(state, "done", "the schedule has nothing left to do");
    app.state.clock.advance(days(8));
    let outcomes = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    assert!(outcomes.is_empty(), "the scheduler archives nothing again");
    assert!(
        records(&app, "key.archived")
            .await
            .iter()
            .all(|r| r.actor_name != "system (scheduler)"),
        "no second key.archived from the scheduler"
    );
}

#[tokio::test]
async fn removing_someone_from_a_workspace_has_one_code_and_the_filter_finds_older_twins() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let workspace = app.first_workspace_id().await;
    let members = app
        .state
        .org
        .api()
        .list_all_workspace_members(&workspace)
        .await
        .unwrap();
    let member = members
        .iter()
        .find(|m| m.workspace_role.as_str() == "workspace_developer")
        .or_else(|| members.first())
        .expect("the workspace has members")
        .clone();
    // A record as an older release wrote it from offboarding.
    app.state
        .audit
        .append(
            NewEntry::new(
                Actor::named("old-release"),
                Source::default(),
                "workspace.member_removed",
                Outcome::Ok,
            )
            .target(Target::new("workspace_member", "wrkspc_old/user_old")),
        )
        .await
        .unwrap();

    let removed = admin
        .post(
            &format!("/workspaces/{workspace}/members/{}/remove", member.user_id),
            &[],
        )
        .await;
    assert_eq!(removed.status(), 303);

    let found = records(&app, "workspace_member.removed").await;
    let codes: Vec<&str> = found.iter().map(|r| r.action.as_str()).collect();
    assert!(codes.contains(&"workspace_member.removed"), "{codes:?}");
    assert!(codes.contains(&"workspace.member_removed"), "{codes:?}");
    assert!(found
        .iter()
        .any(|r| r.target_id.as_deref() == Some(&*member.user_id) && r.outcome == Outcome::Ok));
    // The same on the audit page, and the area prefix finds both too.
    for action in ["workspace_member.removed", "workspace_member"] {
        let (status, page) = admin.get_text(&format!("/audit?action={action}")).await;
        assert_eq!(status, 200);
        assert!(page.contains("wrkspc_old/user_old"), "{action}");
        assert!(page.contains("workspace.member_removed"), "{action}");
        assert!(page.contains("workspace_member.removed"), "{action}");
    }
    assert!(app.state.audit.verify().await.unwrap().is_intact());
}

#[tokio::test]
async fn malformed_addresses_and_oversized_forms_get_the_applications_own_pages() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;

    for (path, status, title) in [
        ("/accounts/abc", 404, "Not found"),
        ("/audit/not-a-number", 404, "Not found"),
        ("/audit?page=-1", 400, "Cannot do that"),
        ("/audit?page=two", 400, "Cannot do that"),
    ] {
        let response = owner.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains(title), "{path}: {html}");
        assert!(
            html.contains("<!doctype html") || html.contains("<!DOCTYPE html"),
            "{path}"
        );
    }

    // Bytes that are not text never reach the Admin API as replacement characters.
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    let token = admin.csrf().await;
    let upstream_before = app.simulator.request_count();
    let response = admin
        .http
        .post(app.url(&format!("/keys/{}/rename", key.id)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={token}&name=caf%FF%FE"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("not text (not UTF-8)"));
    assert_eq!(app.simulator.request_count(), upstream_before);
    let now = app.state.org.api().get_api_key(&key.id).await.unwrap();
    assert_eq!(now.name, key.name);

    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let token = viewer.csrf().await;
    let huge = "a".repeat(1024 * 1024 + 10);
    let response = viewer
        .post_raw(
            "/account/password",
            &[("_csrf", token.as_str()), ("new_password", huge.as_str())],
        )
        .await;
    assert_eq!(response.status(), 413);
    let html = response.text().await.unwrap();
    assert!(html.contains("larger than 1 MB"), "{html}");
    assert!(
        records(&app, "security.csrf_rejected").await.is_empty(),
        "a large form is not mistaken for a forged one"
    );
}

// ---------------------------------------------------------------------------------------------
// Each change's rules, called directly: the same for a page, the API, SCIM or a job.

use orgkeeper::service::{self, ServiceError};

fn invalid(result: Result<impl std::fmt::Debug, ServiceError>) -> String {
    match result {
        Err(ServiceError::Invalid(message)) => message,
        other => panic!("expected a refusal by a rule, got {other:?}"),
    }
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted_or_disabled_and_the_refusal_is_on_record() {
    let app = spawn_app().await;
    let owner = app.create_account("only-owner", Role::Owner, &[]).await;
    let caller = app.caller(&owner);
    let message =
        invalid(service::accounts::change_role(&app.state, &caller, &owner, Role::Viewer).await);
    assert!(message.contains("without an active owner"), "{message}");
    invalid(service::accounts::set_disabled(&app.state, &caller, &owner, true).await);
    let refused = records(&app, "account.role_changed").await;
    assert!(refused.iter().any(|r| r.outcome == Outcome::Denied));
    let viewer = app.create_account("plain-viewer", Role::Viewer, &[]).await;
    let forbidden =
        service::accounts::change_role(&app.state, &app.caller(&viewer), &owner, Role::Viewer)
            .await;
    assert!(matches!(forbidden, Err(ServiceError::Forbidden)));
}

#[tokio::test]
async fn a_team_lead_needs_real_workspaces_whoever_creates_or_maps_it() {
    let app = spawn_app().await;
    let new = |workspaces: Vec<String>| service::accounts::NewAccount {
        username: "lead".into(),
        role: Some(Role::TeamLead),
        password: PASSWORD.into(),
        workspaces,
    };
    let none = invalid(service::accounts::create(&app.state, &TEST_CALLER, new(vec![])).await);
    assert!(none.contains("at least one workspace"), "{none}");
    let unknown = invalid(
        service::accounts::create(&app.state, &TEST_CALLER, new(vec!["wrkspc_nope".into()])).await,
    );
    assert!(unknown.contains("no workspace wrkspc_nope"), "{unknown}");
    let mapped =
        service::sso::add_mapping(&app.state, &TEST_CALLER, "leads", Role::TeamLead, vec![]).await;
    assert!(invalid(mapped).contains("at least one workspace"));
    assert!(
        records(&app, "account.created").await.is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_key_outside_the_callers_workspaces_is_refused_with_one_recorded_reason() {
    let app = spawn_app().await;
    let mine = app.first_workspace_id().await;
    let theirs = app.other_workspace(&mine);
    let key = app.live_key_in(&theirs);
    let lead = app
        .create_account("scoped-lead", Role::TeamLead, &[&mine])
        .await;
    let found = service::keys::find(&app.state, &app.caller(&lead), &key.id).await;
    assert!(matches!(found, Err(ServiceError::Forbidden)));
    let denied = records(&app, "access.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0].details["reason"],
        "outside the caller's workspaces"
    );
    assert_eq!(denied[0].details["workspace_id"], theirs.as_str());
    // The same rule refuses it in a bulk selection.
    let selection = service::keys::selection(
        &app.state,
        &app.caller(&lead),
        std::slice::from_ref(&key.id),
    )
    .await;
    assert!(matches!(selection, Err(ServiceError::Forbidden)));
}

#[tokio::test]
async fn a_rename_outside_the_bounds_is_refused_before_anything_is_sent() {
    let app = spawn_app().await;
    let key = app.live_key_in(&app.first_workspace_id().await);
    let before = app.simulator.request_count();
    for name in ["   ", &"k".repeat(501)] {
        let message = invalid(service::keys::rename(&app.state, &TEST_CALLER, &key, name).await);
        assert!(message.contains("at most 500 characters"), "{message}");
    }
    assert_eq!(
        app.simulator.request_count(),
        before,
        "nothing reached the Admin API"
    );
}

#[tokio::test]
async fn a_leak_is_recorded_first_then_a_working_key_is_deactivated() {
    let app = spawn_app().await;
    let key = app.live_key_in(&app.first_workspace_id().await);
    let response = service::keys::report_leak(&app.state, &TEST_CALLER, &key, " posted in a chat ")
        .await
        .unwrap();
    assert!(matches!(response, service::keys::LeakResponse::Deactivated));
    let incident = records(&app, "key.leak_reported").await;
    assert_eq!(incident.len(), 1);
    assert_eq!(incident[0].details["note"], "posted in a chat");
    let deactivated = records(&app, "key.deactivated").await;
    let done = deactivated
        .iter()
        .find(|r| r.outcome == Outcome::Ok)
        .unwrap();
    assert_eq!(done.details["incident"], incident[0].seq);
    assert!(
        incident[0].seq < done.seq,
        "the incident is on record before the change"
    );
    // Reported again, the key no longer works: the leak is recorded, nothing else is sent.
    let key = service::keys::find(&app.state, &TEST_CALLER, &key.id)
        .await
        .unwrap();
    let again = service::keys::report_leak(&app.state, &TEST_CALLER, &key, "")
        .await
        .unwrap();
    assert!(matches!(
        again,
        service::keys::LeakResponse::AlreadyUnusable
    ));
    assert_eq!(records(&app, "key.leak_reported").await.len(), 2);
}

#[tokio::test]
async fn a_bulk_change_skips_what_it_cannot_change_and_changes_the_rest_one_by_one() {
    use service::keys::{BulkAction, BulkResult};
    let app = spawn_app().await;
    let workspace = app.first_workspace_id().await;
    let keys: Vec<_> = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .filter(|k| k.workspace_id() == Some(workspace.as_str()))
        .take(6)
        .cloned()
        .collect();
    let results = service::keys::bulk(&app.state, &TEST_CALLER, BulkAction::Deactivate, &keys)
        .await
        .unwrap();
    for (key, result) in keys.iter().zip(&results) {
        match (&key.status, result) {
            (ApiKeyStatus::Active, BulkResult::Done) => {}
            (status, BulkResult::Skipped(_)) if *status != ApiKeyStatus::Active => {}
            (status, _) => panic!("{} ({status}) got the wrong result", key.id),
        }
    }
    let done = results
        .iter()
        .filter(|r| matches!(r, BulkResult::Done))
        .count();
    let recorded = records(&app, "key.deactivated").await;
    assert_eq!(
        recorded
            .iter()
            .filter(|r| r.outcome == Outcome::Ok && r.details["bulk"] == true)
            .count(),
        done
    );
}

#[tokio::test]
async fn grace_periods_are_whole_days_from_one_to_ninety() {
    use service::schedules::grace_days;
    assert_eq!(grace_days(None).unwrap(), 7);
    assert_eq!(grace_days(Some(" ")).unwrap(), 7);
    assert_eq!(grace_days(Some("90")).unwrap(), 90);
    for bad in ["0", "91", "1.5", "-3", "ninety"] {
        assert!(
            invalid(grace_days(Some(bad))).contains("from 1 to 90"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn an_offboarding_runs_only_what_the_member_holds_in_order_and_removes_them_last() {
    use service::offboarding::StepKind;
    let app = spawn_app().await;
    let member = app.member_with_role("developer");
    let holdings = service::offboarding::holdings(&app.state, &TEST_CALLER, &member.id)
        .await
        .unwrap();
    let mut wanted = vec![
        (StepKind::RemoveMember, member.id.clone()),
        (StepKind::DeactivateKey, "apikey_someone_elses".to_owned()),
    ];
    wanted.extend(
        holdings
            .memberships
            .iter()
            .map(|m| (StepKind::RemoveMembership, m.0.clone())),
    );
    let plan = service::offboarding::plan(&member.id, &holdings, &wanted);
    assert!(
        plan.iter().all(|s| s.target_id != "apikey_someone_elses"),
        "a forged step is dropped"
    );
    assert_eq!(
        plan.last().unwrap().kind,
        "remove_member",
        "the removal comes last"
    );
    let run = service::offboarding::start(&app.state, &TEST_CALLER, &member.id, &wanted)
        .await
        .unwrap();
    let steps = service::offboarding::steps_of(&app.state, run)
        .await
        .unwrap();
    assert!(
        steps.iter().all(|s| s.state == "done"),
        "{:?}",
        steps.iter().map(|s| &s.state).collect::<Vec<_>>()
    );
    assert!(app
        .state
        .org
        .api()
        .get_user(&member.id)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(records(&app, "offboarding.completed").await.len(), 1);
}

#[tokio::test]
async fn invites_keep_their_rules_for_every_caller() {
    use orgkeeper::anthropic::OrgRole;
    use service::invites::{create_many, Invited};
    let app = spawn_app().await;
    let admin = invalid(
        create_many(
            &app.state,
            &TEST_CALLER,
            &["a@example.com".into()],
            &OrgRole::Admin,
        )
        .await,
    );
    assert!(
        admin.contains("only be given in the Anthropic Console"),
        "{admin}"
    );
    let many: Vec<String> = (0..101).map(|i| format!("p{i}@example.com")).collect();
    assert!(
        invalid(create_many(&app.state, &TEST_CALLER, &many, &OrgRole::User).await)
            .contains("at most 100")
    );
    assert!(
        records(&app, "invite.created").await.is_empty(),
        "nothing was sent"
    );
    let list = [
        "new.person@example.com",
        "not-an-address",
        "NEW.person@example.com",
    ]
    .map(String::from);
    let results = create_many(&app.state, &TEST_CALLER, &list, &OrgRole::Developer)
        .await
        .unwrap();
    assert!(matches!(results[0], Invited::Sent(_)));
    assert!(matches!(results[1], Invited::Invalid));
    assert!(matches!(results[2], Invited::Repeated));
    let sent = records(&app, "invite.created").await;
    assert_eq!(sent.iter().filter(|r| r.outcome == Outcome::Ok).count(), 1);
}

#[tokio::test]
async fn a_limit_request_is_for_more_than_the_current_limit_with_a_reason() {
    let app = spawn_app().await;
    let workspace = app.first_workspace_id().await;
    let name = "the workspace";
    let lead = app
        .create_account("asking-lead", Role::TeamLead, &[&workspace])
        .await;
    let caller = app.caller(&lead);
    let cents = |dollars: i64| rust_decimal::Decimal::from(dollars * 100);
    let no_reason = service::limits::request_increase(
        &app.state,
        &caller,
        &workspace,
        name,
        cents(1_000_000),
        "  ",
    )
    .await;
    assert!(invalid(no_reason).contains("Say why"));
    let current = service::limits::spend_limits(&app.state).await.unwrap();
    let scope = service::limits::LimitScope::Workspace {
        id: workspace.clone(),
        name: name.into(),
    };
    if let Some(limit) = service::limits::limit_of(&current, &scope).and_then(|l| l.amount_cents())
    {
        let lower =
            service::limits::request_increase(&app.state, &caller, &workspace, name, limit, "more")
                .await;
        assert!(invalid(lower).contains("ask for more than that"));
    }
    let asked = service::limits::request_increase(
        &app.state,
        &caller,
        &workspace,
        name,
        cents(1_000_000),
        "launch",
    )
    .await
    .unwrap();
    assert!(asked.is_ok());
}

#[tokio::test]
async fn a_budget_is_for_the_organization_or_a_known_workspace_within_the_range() {
    let app = spawn_app().await;
    let cents = rust_decimal::Decimal::from(150_000);
    let unknown =
        service::budgets::set(&app.state, &TEST_CALLER, "wrkspc_nope", cents, vec![50]).await;
    assert!(invalid(unknown).contains("Choose the organization or a workspace"));
    let huge = rust_decimal::Decimal::from(100_000_000_001i64);
    assert!(
        invalid(service::budgets::set(&app.state, &TEST_CALLER, "org", huge, vec![50]).await)
            .contains("at most")
    );
    let name = service::budgets::set(&app.state, &TEST_CALLER, "org", cents, vec![80, 50])
        .await
        .unwrap();
    assert_eq!(name, "Whole organization");
    let stored = service::budgets::list(&app.state).await.unwrap();
    assert_eq!(stored[0].thresholds, vec![80, 50]);
    assert!(matches!(
        service::budgets::remove(&app.state, &TEST_CALLER, "wrkspc_nope").await,
        Err(ServiceError::NotFound)
    ));
}

#[tokio::test]
async fn only_owners_and_admins_acknowledge_a_broken_chain() {
    let app = spawn_app().await;
    let auditor = app.create_account("reviewer", Role::Auditor, &[]).await;
    let refused = service::chain::acknowledge_break(&app.state, &app.caller(&auditor)).await;
    assert!(matches!(refused, Err(ServiceError::Forbidden)));
    let admin = app.create_account("deciding-admin", Role::Admin, &[]).await;
    let nothing = service::chain::acknowledge_break(&app.state, &app.caller(&admin)).await;
    assert!(invalid(nothing).contains("no unacknowledged break"));
}
