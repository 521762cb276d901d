//! API keys over real HTTP against the simulator: inventory filters and hygiene flags, the
//! lifecycle actions, bulk changes with a failure in the middle, scheduled archives across a
//! restart, the leaked-key response, member offboarding with a resume, and the role limits.

use std::collections::HashSet;

use crate::support::*;
use chrono::{Duration, Utc};
use orgkeeper::anthropic::{ApiKey, ApiKeyStatus, OrgRole, UserFilter, WorkspaceFilter};
use orgkeeper::audit::{Filter, Outcome, Record};
use orgkeeper::auth::Role;
use orgkeeper::simulator::{FaultKind, FaultRule};

async fn all_keys(app: &TestApp) -> Vec<ApiKey> {
    app.state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
}

async fn key_status(app: &TestApp, id: &str) -> ApiKeyStatus {
    app.state.org.api().get_api_key(id).await.unwrap().status
}

/// "N of M key(s) match." → N
fn total(body: &str) -> usize {
    let marker = "id=\"key-total\">";
    let start = body.find(marker).expect("the list shows its total") + marker.len();
    body[start..]
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

fn flag_count(body: &str, code: &str) -> usize {
    let marker = format!("id=\"flag-count-{code}\">");
    let start = body.find(&marker).expect("the flag is counted") + marker.len();
    body[start..].split('<').next().unwrap().parse().unwrap()
}

async fn records(app: &TestApp, action: &str) -> Vec<Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

fn live(key: &ApiKey) -> bool {
    matches!(key.status, ApiKeyStatus::Active | ApiKeyStatus::Inactive)
}

#[tokio::test]
async fn the_inventory_filters_by_status_workspace_creator_flag_and_search() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;

    let (status, body) = admin.get_text("/keys").await;
    assert_eq!(status, 200);
    assert_eq!(total(&body), keys.len());
    assert!(body.contains("https://console.anthropic.com/settings/keys"));

    for wanted in ["active", "inactive", "archived", "expired"] {
        let expected = keys.iter().filter(|k| k.status.as_str() == wanted).count();
        let (_, body) = admin.get_text(&format!("/keys?status={wanted}")).await;
        assert_eq!(total(&body), expected, "status {wanted}");
    }

    let workspace = keys
        .iter()
        .find_map(|k| k.workspace_id())
        .unwrap()
        .to_owned();
    let expected = keys
        .iter()
        .filter(|k| k.workspace_id() == Some(workspace.as_str()))
        .count();
    let (_, body) = admin
        .get_text(&format!("/keys?workspace={workspace}"))
        .await;
    assert_eq!(total(&body), expected);
    let org_scoped = keys.iter().filter(|k| k.workspace_id().is_none()).count();
    let (_, body) = admin.get_text("/keys?workspace=organization").await;
    assert_eq!(total(&body), org_scoped);

    let creator = keys
        .iter()
        .find_map(|k| k.created_by.as_ref())
        .unwrap()
        .id
        .clone();
    let expected = keys
        .iter()
        .filter(|k| k.created_by.as_ref().is_some_and(|c| c.id == creator))
        .count();
    let (_, body) = admin.get_text(&format!("/keys?creator={creator}")).await;
    assert_eq!(total(&body), expected);

    // Search over the hint's tail (case-insensitive) and over a name.
    let hint = keys[5].partial_key_hint.clone().unwrap();
    let tail = hint.rsplit("...").next().unwrap().to_lowercase();
    let expected = keys
        .iter()
        .filter(|k| {
            k.name.to_lowercase().contains(&tail)
                || k.partial_key_hint
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&tail)
        })
        .count();
    let (_, body) = admin.get_text(&format!("/keys?q={tail}")).await;
    assert_eq!(total(&body), expected);
    assert!(body.contains(&keys[5].id));
    let name = keys[0].name.clone();
    let (_, body) = admin
        .get_text(&format!("/keys?q={}", name.replace(' ', "+")))
        .await;
    assert!(total(&body) >= 1 && body.contains(&keys[0].id));

    // The flag filter lists as many keys as the flag's count says.
    let (_, all) = admin.get_text("/keys").await;
    let (_, flagged) = admin.get_text("/keys?flag=no_expiry").await;
    assert_eq!(total(&flagged), flag_count(&all, "no_expiry"));

    // Paging: 50 per page, the second page starts where the first ended.
    let (_, page2) = admin.get_text("/keys?page=2").await;
    assert!(page2.contains("Page 2 of"));
    assert_eq!(
        page2.matches("<tr data-key=").count(),
        30.min(keys.len() - 50)
    );

    // htmx gets only the results.
    let partial = admin
        .http
        .get(app.url("/keys?status=inactive"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(partial.contains("id=\"key-total\"") && !partial.contains("<html"));
}

#[tokio::test]
async fn each_hygiene_flag_counts_what_the_simulator_data_says() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;
    let members: HashSet<String> = app
        .state
        .org
        .api()
        .list_all_users(&UserFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    let archived: HashSet<String> = app
        .state
        .org
        .api()
        .list_all_workspaces(&WorkspaceFilter {
            include_archived: true,
            include_default: true,
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|w| w.archived_at.is_some())
        .map(|w| w.id)
        .collect();

    // Usage store: one key used yesterday, one 40 days ago.
    let live_keys: Vec<&ApiKey> = keys.iter().filter(|k| live(k)).collect();
    let today = Utc::now().date_naive();
    for (key, days_ago) in [(live_keys[0], 1), (live_keys[1], 40)] {
        let start = format!("{}T00:00:00Z", today - Duration::days(days_ago));
        sqlx::query(
            "INSERT INTO usage_buckets VALUES ('1d', ?, 'claude-sonnet-4', '', ?, 'standard', '0-200k', 10, 0, 0, 0, 5, 0)",
        )
        .bind(start)
        .bind(&key.id)
        .execute(&app.db)
        .await
        .unwrap();
    }
    let last_used = orgkeeper::usage_store::key_last_used(&app.db)
        .await
        .unwrap();

    let now = Utc::now();
    let count = |pred: &dyn Fn(&ApiKey) -> bool| keys.iter().filter(|k| live(k) && pred(k)).count();
    let no_expiry = count(&|k| k.expires_at.is_none());
    let expiring = count(&|k| {
        k.expires_at
            .is_some_and(|e| e > now && e <= now + Duration::days(14))
    });
    let rotation = count(&|k| k.created_at < now - Duration::days(90));
    let gone = count(&|k| {
        k.created_by
            .as_ref()
            .is_some_and(|c| !members.contains(&*c.id))
    });
    assert_eq!(last_used.len(), 2, "the store knows the two keys' last use");
    let cutoff = today - Duration::days(30);
    let unused = count(&|k| match last_used.get(&k.id) {
        Some(day) => *day < cutoff,
        None => k.created_at.date_naive() < cutoff,
    });
    let in_archived = count(&|k| k.workspace_id().is_some_and(|w| archived.contains(w)));

    let (_, body) = admin.get_text("/keys").await;
    assert_eq!(flag_count(&body, "no_expiry"), no_expiry);
    assert_eq!(flag_count(&body, "expiring_soon"), expiring);
    assert_eq!(flag_count(&body, "rotation_due"), rotation);
    assert_eq!(flag_count(&body, "creator_gone"), gone);
    assert_eq!(flag_count(&body, "unused"), unused);
    assert_eq!(flag_count(&body, "archived_workspace"), in_archived);
    // The simulator's data has these at least once, so the checks can fail. (Few demo keys
    // expire within two weeks, and none is live in an archived workspace; unit tests in
    // src/web/keys cover those two flags on constructed keys.)
    assert!(
        no_expiry > 0 && rotation > 0 && gone > 0 && unused > 0,
        "{no_expiry} {rotation} {gone} {unused}"
    );
    // Each flag explains itself on hover.
    assert!(body.contains("title=\"The key never expires"));
    assert!(body.contains("no longer a member"));
}

#[tokio::test]
async fn renaming_deactivating_reactivating_and_archiving_a_key_are_audited() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    let path = format!("/keys/{}", key.id);

    let response = admin
        .post(&format!("{path}/rename"), &[("name", "Renamed by test")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.state.org.api().get_api_key(&key.id).await.unwrap().name,
        "Renamed by test"
    );
    let empty = admin
        .post(&format!("{path}/rename"), &[("name", "  ")])
        .await;
    assert_eq!(empty.status(), 422);

    assert_eq!(
        admin
            .post(&format!("{path}/deactivate"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);
    assert_eq!(
        admin
            .post(&format!("{path}/reactivate"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Active);

    let (status, confirm) = admin.get_text(&format!("{path}/archive")).await;
    assert_eq!(status, 200);
    assert!(confirm.contains("permanent") && confirm.contains("Renamed by test"));
    let wrong = admin
        .post(
            &format!("{path}/archive"),
            &[("confirm_name", "renamed by test")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("value=\"renamed by test\""));
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Active);
    let right = admin
        .post(
            &format!("{path}/archive"),
            &[("confirm_name", "Renamed by test")],
        )
        .await;
    assert_eq!(right.status(), 303);
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Archived);

    let renamed = records(&app, "key.renamed").await;
    let done = renamed.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(done.details["before"]["name"], key.name.as_str());
    assert_eq!(done.details["after"]["name"], "Renamed by test");
    for action in ["key.deactivated", "key.reactivated", "key.archived"] {
        let list = records(&app, action).await;
        assert!(
            list.iter()
                .any(|r| r.outcome == Outcome::Ok && r.target_id.as_deref() == Some(&key.id)),
            "{action} audited"
        );
    }
    assert_eq!(
        records(&app, "key.archived").await.len(),
        2,
        "one intent, one outcome"
    );

    // The key page: details, 30-day usage table (from the usage store) and its history.
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let (status, page) = admin.get_text(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"key-usage\"") && page.contains("id=\"key-history\""));
    assert!(page.contains("Key renamed") && page.contains("archived"));
    assert!(
        !page.contains("key.renamed"),
        "the action by its label, not its code"
    );
}

#[tokio::test]
async fn bulk_deactivation_reports_the_one_failure_and_changes_the_others() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;
    let active: Vec<&ApiKey> = keys
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active)
        .take(3)
        .collect();
    let inactive = keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Inactive)
        .unwrap();

    let query = format!(
        "/keys/bulk?action=deactivate&key={}&key={}&key={}&key={}",
        active[0].id, active[1].id, active[2].id, inactive.id
    );
    let (status, preview) = admin.get_text(&query).await;
    assert_eq!(status, 200);
    assert!(preview.contains("Deactivate 3 keys"));
    assert!(preview.contains("already inactive"));
    for key in &active {
        assert_eq!(
            key_status(&app, &key.id).await,
            ApiKeyStatus::Active,
            "preview changes nothing"
        );
    }

    app.simulator.faults().inject(FaultRule {
        method: Some("POST".into()),
        path_contains: Some(active[1].id.clone()),
        kind: FaultKind::ServerError,
        times: 10,
    });
    let response = admin
        .post(
            "/keys/bulk",
            &[
                ("action", "deactivate"),
                ("key", &active[0].id),
                ("key", &active[1].id),
                ("key", &active[2].id),
                ("key", &inactive.id),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    app.simulator.faults().clear();

    assert!(body.contains("2 keys changed, 1 failed, 1 left alone"));
    assert!(body.contains(&format!(
        "data-key=\"{}\" data-outcome=\"failed\"",
        active[1].id
    )));
    assert!(
        body.contains("request id req_"),
        "the failure carries its request id"
    );
    assert_eq!(
        key_status(&app, &active[0].id).await,
        ApiKeyStatus::Inactive
    );
    assert_eq!(key_status(&app, &active[1].id).await, ApiKeyStatus::Active);
    assert_eq!(
        key_status(&app, &active[2].id).await,
        ApiKeyStatus::Inactive
    );
    let audited = records(&app, "key.deactivated").await;
    let failed: Vec<_> = audited
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].target_id.as_deref(), Some(active[1].id.as_str()));
    assert!(failed[0].upstream_request_id.is_some());
    assert_eq!(
        audited.iter().filter(|r| r.outcome == Outcome::Ok).count(),
        2
    );
}

#[tokio::test]
async fn bulk_archive_needs_the_number_of_keys_typed() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;
    let two: Vec<&ApiKey> = keys.iter().filter(|k| live(k)).take(2).collect();
    let fields = |count: &'static str| {
        vec![
            ("action", "archive"),
            ("key", two[0].id.as_str()),
            ("key", two[1].id.as_str()),
            ("confirm_count", count),
        ]
    };
    let wrong = admin.post("/keys/bulk", &fields("3")).await;
    assert_eq!(wrong.status(), 422);
    assert_eq!(key_status(&app, &two[0].id).await, two[0].status);
    let right = admin.post("/keys/bulk", &fields("2")).await;
    assert_eq!(right.status(), 200);
    assert_eq!(key_status(&app, &two[0].id).await, ApiKeyStatus::Archived);
    assert_eq!(key_status(&app, &two[1].id).await, ApiKeyStatus::Archived);
}

#[tokio::test]
async fn a_scheduled_archive_survives_a_restart_retries_after_a_failure_and_runs_when_due() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();

    let response = admin
        .post(
            &format!("/keys/{}/schedule-archive", key.id),
            &[("grace_days", "7")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);
    let scheduled = records(&app, "key.archive_scheduled").await;
    assert!(scheduled.iter().any(|r| r.outcome == Outcome::Ok));

    // Restart on the same database.
    let (simulator, dir, config) = app.stop().await;
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    let admin = app.login_as(&admin_name(&app).await).await;
    let (_, page) = admin.get_text("/keys/schedules").await;
    assert!(page.contains(&key.id));

    // Not due yet: nothing happens.
    let outcomes = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    assert!(outcomes.is_empty());

    // Due, but the Admin API fails: kept for retry with the error shown.
    app.simulator.faults().inject(FaultRule {
        method: Some("POST".into()),
        path_contains: Some(key.id.clone()),
        kind: FaultKind::ServerError,
        times: 10,
    });
    app.state.clock.advance(days(8));
    let outcomes = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    app.simulator.faults().clear();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_err());
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);
    // Eight days on, the old session has long timed out.
    let admin = app.login_as(&admin_name(&app).await).await;
    let (_, page) = admin.get_text("/keys/schedules").await;
    assert!(page.contains("Label--danger\">failed<") && page.contains("req_"));

    app.state
        .clock
        .advance(std::time::Duration::from_secs(3600));
    let outcomes = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok());
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Archived);
    let archived = records(&app, "key.archived").await;
    assert!(archived
        .iter()
        .all(|r| r.actor_name == "system (scheduler)"));
    assert!(archived.iter().any(|r| r.outcome == Outcome::Failed));
    assert!(archived.iter().any(|r| r.outcome == Outcome::Ok));
    // Done: it never runs again.
    app.state.clock.advance(days(30));
    let again = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    assert!(again.is_empty());
}

fn days(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n * 24 * 3600)
}

/// The admin account created by `signed_in` before a restart.
async fn admin_name(app: &TestApp) -> String {
    orgkeeper::auth::accounts::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.role == Role::Admin)
        .unwrap()
        .username
}

#[tokio::test]
async fn a_cancelled_schedule_never_runs() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Inactive)
        .unwrap();
    admin
        .post(&format!("/keys/{}/schedule-archive", key.id), &[])
        .await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM key_archive_schedules WHERE api_key_id = ?")
        .bind(&key.id)
        .fetch_one(&app.db)
        .await
        .unwrap();

    let response = admin
        .post(&format!("/keys/schedules/{id}/cancel"), &[])
        .await;
    assert_eq!(response.status(), 303);
    app.state.clock.advance(days(30));
    let outcomes = orgkeeper::jobs::run_schedules(&app.state).await.unwrap();
    assert!(outcomes.is_empty());
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);
    let cancelled = records(&app, "key.archive_schedule_cancelled").await;
    assert!(cancelled.iter().any(|r| r.outcome == Outcome::Ok));
}

#[tokio::test]
async fn the_leaked_key_flow_finds_deactivates_and_records_an_incident() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    let hint = key.partial_key_hint.clone().unwrap();
    let (head, tail) = hint.split_once("...").unwrap();
    let pasted = format!("{head}SECRETMIDDLEPART0123456789{tail}");

    let (status, form) = admin.get_text("/keys/leaked").await;
    assert_eq!(status, 200);
    assert!(form.contains("id=\"leak-search\""));
    let found = admin.post("/keys/leaked", &[("q", &pasted)]).await;
    assert_eq!(found.status(), 200);
    let found = found.text().await.unwrap();
    assert!(found.contains(&format!("/keys/leaked/{}", key.id)));

    let (_, confirm) = admin.get_text(&format!("/keys/leaked/{}", key.id)).await;
    assert!(confirm.contains("name=\"deactivate\"") && confirm.contains(&hint));
    let response = admin
        .post(
            &format!("/keys/leaked/{}", key.id),
            &[
                ("deactivate", "1"),
                ("note", "found in a public repository"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("/keys/leaked/{}/next", key.id));
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);

    let (_, next) = admin
        .get_text(&format!("/keys/leaked/{}/next", key.id))
        .await;
    assert!(next.contains("console.anthropic.com/settings/keys"));
    assert!(next.contains(&format!("/keys/{}/archive", key.id)));
    assert!(next.contains(&format!("/keys/{}/schedule-archive", key.id)));

    let reported = records(&app, "key.leak_reported").await;
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].details["note"], "found in a public repository");
    let deactivated = records(&app, "key.deactivated").await;
    let ok = deactivated
        .iter()
        .find(|r| r.outcome == Outcome::Ok)
        .unwrap();
    assert_eq!(ok.details["reason"], "leaked");
    assert_eq!(ok.details["incident"], reported[0].seq);
    // What was pasted is never stored.
    let everything = app.audit_records(Filter::default()).await;
    assert!(everything
        .iter()
        .all(|r| !r.details.to_string().contains("SECRETMIDDLEPART")));
}

#[tokio::test]
async fn offboarding_stops_at_a_failed_step_and_a_resume_completes_it() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;
    let users = app
        .state
        .org
        .api()
        .list_all_users(&UserFilter::default())
        .await
        .unwrap();
    let workspaces = app
        .state
        .org
        .api()
        .list_all_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap();
    // A developer with live keys and at least one workspace membership.
    let mut chosen = None;
    for user in users.iter().filter(|u| u.role == OrgRole::Developer) {
        let user_keys: Vec<&ApiKey> = keys
            .iter()
            .filter(|k| live(k) && k.created_by.as_ref().is_some_and(|c| *c.id == *user.id))
            .collect();
        if user_keys.is_empty() {
            continue;
        }
        let mut memberships = Vec::new();
        for w in &workspaces {
            let members = app
                .state
                .org
                .api()
                .list_all_workspace_members(&w.id)
                .await
                .unwrap();
            if members.iter().any(|m| *m.user_id == *user.id) {
                memberships.push(w.id.clone());
            }
        }
        if !memberships.is_empty() {
            chosen = Some((user.clone(), user_keys, memberships));
            break;
        }
    }
    let (user, user_keys, memberships) = chosen.expect("the demo data has such a member");
    let base = format!("/members/{}/offboard", user.id);

    let (status, plan) = admin.get_text(&base).await;
    assert_eq!(status, 200);
    for key in &user_keys {
        assert!(plan.contains(&key.id));
    }
    let mut fields: Vec<(String, String)> = user_keys
        .iter()
        .map(|k| (format!("key:{}", k.id), "deactivate".to_owned()))
        .collect();
    fields.extend(
        memberships
            .iter()
            .map(|w| ("membership".to_owned(), w.clone())),
    );
    fields.push(("remove_member".into(), "1".into()));
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let preview = admin.post(&base, &refs).await;
    assert_eq!(preview.status(), 200);
    let preview = preview.text().await.unwrap();
    let first_member_step = preview.find("remove_membership|").unwrap();
    assert!(preview.find("deactivate_key|").unwrap() < first_member_step);
    assert!(first_member_step < preview.find("remove_member|").unwrap());
    let steps: Vec<String> = preview
        .match_indices("name=\"step\" value=\"")
        .map(|(i, m)| {
            let rest = &preview[i + m.len()..];
            rest[..rest.find('"').unwrap()].replace("&#124;", "|")
        })
        .collect();
    assert_eq!(steps.len(), user_keys.len() + memberships.len() + 1);

    // The first workspace removal fails once (removals are never retried by the client).
    app.simulator.faults().inject(FaultRule {
        method: Some("DELETE".into()),
        path_contains: Some(format!("members/{}", user.id)),
        kind: FaultKind::ServerError,
        times: 1,
    });
    let step_fields: Vec<(&str, &str)> = steps.iter().map(|s| ("step", s.as_str())).collect();
    let started = admin.post(&format!("{base}/start"), &step_fields).await;
    assert_eq!(started.status(), 303);
    let run_path = location(&started);
    let (_, run) = admin.get_text(&run_path).await;
    assert!(run.contains("data-state=\"incomplete\""));
    assert!(run.contains("data-kind=\"remove_membership\" data-state=\"failed\""));
    assert!(run.contains("req_"), "the failure shows its request id");
    assert!(
        users_now(&app).await.contains(&user.id),
        "the member was not removed yet"
    );
    for key in &user_keys {
        assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Inactive);
    }

    let resumed = admin.post(&format!("{run_path}/resume"), &[]).await;
    assert_eq!(resumed.status(), 303);
    let (_, run) = admin.get_text(&run_path).await;
    assert!(run.contains("data-state=\"completed\""), "{run}");
    assert!(!users_now(&app).await.contains(&user.id));

    assert_eq!(records(&app, "offboarding.started").await.len(), 1);
    assert_eq!(records(&app, "offboarding.completed").await.len(), 1);
    let removals = records(&app, "workspace_member.removed").await;
    assert_eq!(
        removals
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .count(),
        1
    );
    assert_eq!(
        removals.iter().filter(|r| r.outcome == Outcome::Ok).count(),
        memberships.len()
    );
    assert!(records(&app, "member.removed")
        .await
        .iter()
        .any(|r| r.outcome == Outcome::Ok));
    // Keys were deactivated once each: the resume did not repeat finished steps.
    let deactivations = records(&app, "key.deactivated").await;
    assert_eq!(
        deactivations
            .iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .count(),
        user_keys.len()
    );
}

async fn users_now(app: &TestApp) -> Vec<String> {
    app.state
        .org
        .api()
        .list_all_users(&UserFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect()
}

#[tokio::test]
async fn offboarding_an_admin_explains_the_refusal() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let admin_user = app
        .state
        .org
        .api()
        .list_all_users(&UserFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == OrgRole::Admin)
        .unwrap();
    let base = format!("/members/{}/offboard", admin_user.id);
    let (_, plan) = owner.get_text(&base).await;
    assert!(plan.contains("does not let the Admin API remove admins"));
    let started = owner
        .post(
            &format!("{base}/start"),
            &[("step", &format!("remove_member|{}", admin_user.id))],
        )
        .await;
    let (_, run) = owner.get_text(&location(&started)).await;
    assert!(run.contains("data-state=\"failed\""));
    assert!(run.contains("Remove this person in the Console"));
}

#[tokio::test]
async fn a_team_lead_sees_only_their_workspaces_keys_and_is_refused_another_by_url() {
    let app = spawn_app().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let workspace = app.first_workspace_id().await;
    let keys = all_keys(&app).await;
    let own = keys
        .iter()
        .filter(|k| k.workspace_id() == Some(workspace.as_str()))
        .count();
    let other = keys
        .iter()
        .find(|k| k.workspace_id() != Some(workspace.as_str()))
        .unwrap();

    let (status, body) = lead.get_text("/keys").await;
    assert_eq!(status, 200);
    assert_eq!(total(&body), own);
    assert!(!body.contains(&other.id));
    let (status, _) = lead.get_text(&format!("/keys/{}", other.id)).await;
    assert_eq!(status, 403);
    let denied = records(&app, "access.denied").await;
    assert!(denied
        .iter()
        .any(|r| r.target_id.as_deref() == Some(other.id.as_str())));
}

#[tokio::test]
async fn the_created_by_filter_searches_people_by_name_instead_of_listing_everyone() {
    let app = spawn_app().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let snapshot = app.state.org.snapshot();
    let (key, maker) = snapshot
        .keys
        .iter()
        .filter_map(|k| {
            let by = k.created_by.as_ref()?;
            let user = snapshot
                .users
                .iter()
                .find(|u| *u.id == *by.id && !u.name.is_empty())?;
            Some((k.clone(), user.clone()))
        })
        .next()
        .expect("a key made by a named member");

    let (_, lead_page) = lead.get_text("/keys").await;
    let (_, admin_page) = admin.get_text("/keys").await;
    for page in [&lead_page, &admin_page] {
        assert!(
            !page.contains("<option value=\"user_"),
            "no page lists every person who made a key"
        );
    }
    // Part of a name, in any case, finds the keys that person made.
    let part = maker.name.split(' ').next().unwrap().to_uppercase();
    let (status, found) = admin
        .get_text(&format!("/keys?creator={}", urlencoding(&part)))
        .await;
    assert_eq!(status, 200);
    assert!(
        found.contains(&format!("/keys/{}\"", key.id)),
        "{part} did not find {}",
        key.id
    );
    let (_, none) = admin.get_text("/keys?creator=nobody-by-this-name").await;
    assert!(!none.contains(&format!("/keys/{}\"", key.id)));
    // An exact id still works (member pages link to it).
    let (_, by_id) = admin.get_text(&format!("/keys?creator={}", maker.id)).await;
    assert!(by_id.contains(&format!("/keys/{}\"", key.id)));
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_viewer_reads_keys_but_every_change_is_refused() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    assert_eq!(viewer.get_text("/keys").await.0, 200);
    assert_eq!(viewer.get_text(&format!("/keys/{}", key.id)).await.0, 200);
    let id = key.id.as_str();
    let posts = [
        format!("/keys/{id}/rename"),
        format!("/keys/{id}/deactivate"),
        format!("/keys/{id}/reactivate"),
        format!("/keys/{id}/archive"),
        format!("/keys/{id}/schedule-archive"),
        "/keys/bulk".to_owned(),
        "/keys/schedules/1/cancel".to_owned(),
        "/keys/leaked".to_owned(),
        format!("/keys/leaked/{id}"),
        "/members/user_x/offboard".to_owned(),
        "/members/user_x/offboard/start".to_owned(),
        "/members/user_x/offboard/runs/1/resume".to_owned(),
    ];
    for path in &posts {
        let response = viewer
            .post(
                path,
                &[
                    ("name", "x"),
                    ("confirm_name", &key.name),
                    ("action", "deactivate"),
                    ("key", id),
                ],
            )
            .await;
        assert_eq!(response.status(), 403, "{path}");
    }
    assert_eq!(key_status(&app, &key.id).await, ApiKeyStatus::Active);
    let (_, page) = viewer.get_text(&format!("/keys/{}", key.id)).await;
    assert!(
        !page.contains("/deactivate\""),
        "no change buttons for viewers"
    );
    let denied = records(&app, "access.denied").await;
    assert!(denied.len() >= posts.len());
}

#[tokio::test]
async fn the_inventory_of_the_large_organization_is_fast_once_cached() {
    let app = spawn_large_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;

    let (status, first) = admin.get_text("/keys").await;
    assert_eq!(status, 200);
    assert_eq!(total(&first), 20_000);
    let requests = app.simulator.request_count();
    let started = std::time::Instant::now();
    let (_, filtered) = admin
        .get_text("/keys?status=active&flag=no_expiry&page=3")
        .await;
    let elapsed = started.elapsed();
    assert_eq!(
        app.simulator.request_count(),
        requests,
        "served from the cache"
    );
    assert!(filtered.contains("Page 3 of"));
    eprintln!("large profile, cached filtered page: {elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn every_confirmation_that_stops_a_key_shows_its_recent_use_highlighted_when_recent() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let today = app.state.clock.now().date_naive();
    let last_used = orgkeeper::usage_store::key_last_used(&app.db)
        .await
        .unwrap();
    let tokens = app
        .state
        .usage
        .key_tokens_since(today - Duration::days(6))
        .await
        .unwrap();
    let members: HashSet<String> = app
        .state
        .org
        .users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.id.clone())
        .collect();
    let keys = all_keys(&app).await;
    let busy = keys
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active)
        .filter(|k| {
            last_used
                .get(&k.id)
                .is_some_and(|d| (today - *d).num_days() <= 1)
        })
        .find(|k| {
            k.created_by
                .as_ref()
                .is_some_and(|c| members.contains(&*c.id))
        })
        .expect("the demo has a key used today or yesterday, created by a member");
    let idle = keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active && !last_used.contains_key(&k.id))
        .expect("an active key with no use");
    let amount = orgkeeper::web::usage::thousands(tokens[&busy.id]);
    assert!(tokens[&busy.id] > 0);
    let shown = |page: &str, id: &str| -> String {
        page.split(&format!("data-key-use=\"{id}\""))
            .next()
            .and_then(|before| before.rsplit("<p class=\"").next())
            .map(|class| class.to_owned())
            .unwrap_or_default()
            + page
                .split(&format!("data-key-use=\"{id}\""))
                .nth(1)
                .and_then(|s| s.split("</p>").next())
                .unwrap_or_else(|| panic!("the recent use of {id} is shown"))
    };
    let check = |page: &str, what: &str| {
        let busy_use = shown(page, &busy.id);
        assert!(busy_use.contains("key-use-recent"), "{what}: {busy_use}");
        assert!(
            busy_use.contains("Last used today") || busy_use.contains("Last used yesterday"),
            "{what}: {busy_use}"
        );
        assert!(
            busy_use.contains(&format!("{amount} tokens in the last 7 days")),
            "{what}: {busy_use}"
        );
    };
    let (_, page) = admin.get_text(&format!("/keys/{}", busy.id)).await;
    check(&page, "key page");
    assert!(
        page.contains(&format!(
            "{amount} tokens in the last 7 days. Requests using it"
        )),
        "the deactivation question says it too"
    );
    let (_, page) = admin.get_text(&format!("/keys/{}/archive", busy.id)).await;
    check(&page, "archive confirmation");
    let (_, page) = admin
        .get_text(&format!(
            "/keys/bulk?action=archive&key={}&key={}",
            busy.id, idle.id
        ))
        .await;
    check(&page, "bulk preview");
    let idle_use = shown(&page, &idle.id);
    assert!(
        !idle_use.contains("key-use-recent") && idle_use.contains("Not used"),
        "{idle_use}"
    );
    let creator = &busy.created_by.as_ref().unwrap().id;
    let (_, page) = admin
        .get_text(&format!("/members/{creator}/offboard"))
        .await;
    check(&page, "offboarding key choices");
    // Workspace roles in plain words, not their codes (issue 21, item 9).
    assert!(
        !page.contains("(workspace_"),
        "role codes on the offboarding plan"
    );
}

#[tokio::test]
async fn a_keys_history_shows_each_change_once_by_its_outcome() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let key = all_keys(&app)
        .await
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    let off = admin
        .post(&format!("/keys/{}/deactivate", key.id), &[])
        .await;
    assert!(off.status().is_redirection(), "{}", off.status());
    assert_eq!(
        records(&app, "key.deactivated").await.len(),
        2,
        "the audit log keeps the intent and the outcome"
    );
    let (_, page) = admin.get_text(&format!("/keys/{}", key.id)).await;
    let history = page
        .split("id=\"key-history\"")
        .nth(1)
        .and_then(|h| h.split("</table>").next())
        .unwrap();
    assert_eq!(
        history.matches("Key deactivated").count(),
        1,
        "one row for the one change: {history}"
    );
    assert!(history.contains("Label--success\">ok<"), "{history}");
    assert!(!history.contains(">pending<"), "{history}");
}
