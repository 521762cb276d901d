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
    assert!(found.iter().any(
        |r| r.target_id.as_deref() == Some(member.user_id.as_str()) && r.outcome == Outcome::Ok
    ));
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
