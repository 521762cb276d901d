//! The Compliance API's Activity Feed names who made observed changes, and chosen kinds of
//! observed change alert the webhook once each: the real server, the simulator over HTTP
//! (Console changes made through its Console helpers), a real SQLite file, a real receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orgkeeper::anthropic::{OrgRole, User};
use orgkeeper::audit::{ChainReport, Filter};
use orgkeeper::auth::Role;
use orgkeeper::config::ObservedAlert;

use crate::support::{spawn_app, spawn_app_configured, spawn_app_with, TestApp};

const ADDRESS: &str = "203.0.113.9";

/// Plain members (the Admin API may change them), in model order.
fn members(app: &TestApp) -> Vec<User> {
    app.state
        .org
        .snapshot()
        .users
        .iter()
        .filter(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        .cloned()
        .collect()
}

fn workspace(app: &TestApp) -> String {
    let snapshot = app.state.org.snapshot();
    snapshot
        .workspaces
        .iter()
        .find(|w| !w.is_archived() && Some(&w.id) != snapshot.default_workspace_id.as_ref())
        .unwrap()
        .id
        .clone()
}

async fn stored_cursor(app: &TestApp) -> Option<String> {
    sqlx::query_scalar("SELECT cursor FROM activity_feed WHERE id = 1")
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten()
}

#[tokio::test]
async fn a_console_change_is_one_observed_record_that_names_the_console_user_and_address() {
    let app = spawn_app().await;
    let people = members(&app);
    let (ada, promoted) = (&people[0], &people[1]);
    let ws = workspace(&app);
    let console = app.simulator.console(&ada.id, ADDRESS);
    let key = console.create_key("made-in-console", &ws);
    assert!(console.set_role(&promoted.id, "admin"));
    // A script with another admin key: named as such.
    app.state
        .org
        .api()
        .update_workspace(&ws, Some("Renamed by a script"), None)
        .await
        .unwrap();

    app.sync().await;

    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1, "{created:?}");
    let seen = &created[0].details["seen_in_feed"];
    assert_eq!(created[0].target_id.as_deref(), Some(key.as_str()));
    assert_eq!(seen["actor"], ada.email.as_str());
    assert_eq!(seen["ip"], ADDRESS);
    assert_eq!(seen["actor_type"], "user_actor");
    assert_eq!(seen["activity_type"], "platform_api_key_created");
    let role = app.observed("member.role_changed").await;
    assert_eq!(role.len(), 1);
    assert_eq!(role[0].details["after"], "admin");
    assert_eq!(role[0].details["seen_in_feed"]["actor"], ada.email.as_str());
    let renamed = app.observed("workspace.updated").await;
    assert_eq!(renamed.len(), 1);
    assert_eq!(
        renamed[0].details["seen_in_feed"]["actor_type"],
        "admin_api_key_actor"
    );
    assert!(renamed[0].details["seen_in_feed"]["actor"]
        .as_str()
        .unwrap()
        .starts_with("an Admin API key apikey_"));

    // The audit page's sentence and the record's page say who, from where.
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let (status, page) = auditor.get_text("/audit?source=observed").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "Seen outside Orgkeeper: Key created — made-in-console, by {} from {ADDRESS}",
            ada.email
        )),
        "{page}"
    );
    assert!(!page.contains("feed-notice"), "the feed is readable");
    let (status, record) = auditor
        .get_text(&format!("/audit/{}", created[0].seq))
        .await;
    assert_eq!(status, 200);
    assert!(record.contains("id=\"seen-in-feed\""), "{record}");
    assert!(record.contains(&format!("{} from {ADDRESS}", ada.email)));
    assert!(matches!(
        app.state.audit.verify().await.unwrap(),
        ChainReport::Intact { .. }
    ));
}

#[tokio::test]
async fn an_activity_that_reaches_the_feed_after_its_change_was_recorded_names_the_maker_once() {
    let app = spawn_app().await;
    // As the real feed: an activity shows up about a minute after the change.
    app.simulator.set_activity_delay(Duration::from_secs(60));
    let people = members(&app);
    let ws = workspace(&app);
    let ada = &people[0];
    let key = app
        .simulator
        .console(&ada.id, ADDRESS)
        .create_key("late-in-the-feed", &ws);

    app.sync().await;
    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1);
    assert!(
        created[0].details.get("seen_in_feed").is_none(),
        "the feed has nothing yet"
    );
    assert!(app.observed("observed.attributed").await.is_empty());

    app.state.clock.advance(Duration::from_secs(61));
    app.simulator.advance_clock(Duration::from_secs(61));
    app.sync().await;
    let later = app.observed("observed.attributed").await;
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0].details["record"], created[0].seq);
    assert_eq!(later[0].details["action"], "key.created");
    assert_eq!(later[0].target_id.as_deref(), Some(key.as_str()));
    assert_eq!(
        later[0].details["seen_in_feed"]["actor"],
        ada.email.as_str()
    );
    assert_eq!(later[0].details["seen_in_feed"]["ip"], ADDRESS);

    // Read again from scratch (no cursor): neither the record nor the activity is named twice.
    sqlx::query("DELETE FROM activity_feed")
        .execute(&app.db)
        .await
        .unwrap();
    app.sync().await;
    app.sync().await;
    assert_eq!(app.observed("observed.attributed").await.len(), 1);
    assert_eq!(app.observed("key.created").await.len(), 1);

    // The audit page says who made it, and the first record's page points at the later one.
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let (_, page) = auditor.get_text("/audit?source=observed").await;
    assert!(
        page.contains(&format!(
            "Activity Feed: record {} (Key created — late-in-the-feed) was made, by {} from {ADDRESS}",
            created[0].seq, ada.email
        )),
        "{page}"
    );
    let (_, first) = auditor
        .get_text(&format!("/audit/{}", created[0].seq))
        .await;
    assert!(first.contains("id=\"seen-in-feed\""), "{first}");
    assert!(
        first.contains(&format!("{} from {ADDRESS}", ada.email)),
        "{first}"
    );
    assert!(
        first.contains(&format!("href=\"/audit/{}\"", later[0].seq)),
        "{first}"
    );
    let (_, second) = auditor.get_text(&format!("/audit/{}", later[0].seq)).await;
    assert!(
        second.contains(&format!("href=\"/audit/{}\"", created[0].seq)),
        "{second}"
    );
    assert!(matches!(
        app.state.audit.verify().await.unwrap(),
        ChainReport::Intact { .. }
    ));
}

#[tokio::test]
async fn with_the_feed_refused_the_audit_page_says_so_once_and_observed_records_are_still_written()
{
    let app = spawn_app().await;
    app.simulator.set_activity_feed(false);
    let people = members(&app);
    let ws = workspace(&app);
    let key = app
        .simulator
        .console(&people[0].id, ADDRESS)
        .create_key("while-refused", &ws);
    let reads = app.simulator.feed_requests().len();

    app.sync().await;

    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].target_id.as_deref(), Some(key.as_str()));
    assert!(created[0].details.get("seen_in_feed").is_none());
    assert_eq!(app.simulator.feed_requests().len(), reads + 1);
    let (_, admin) = app.signed_in(Role::Admin).await;
    let (_, page) = admin.get_text("/audit").await;
    assert_eq!(page.matches("id=\"feed-notice\"").count(), 1, "{page}");
    assert!(page.contains("Settings → Security"), "{page}");
    assert!(page.contains("create a new admin key"), "{page}");
    assert!(page.contains("req_"), "the refusal's request id: {page}");

    // Further syncs within the hour do not ask again, and the page still says it once.
    app.sync().await;
    app.sync().await;
    assert_eq!(app.simulator.feed_requests().len(), reads + 1);
    let (_, page) = admin.get_text("/audit").await;
    assert_eq!(page.matches("id=\"feed-notice\"").count(), 1);

    // An hour later it is asked again; readable now, the notice goes.
    app.simulator.set_activity_feed(true);
    app.state.clock.advance(Duration::from_secs(61 * 60));
    app.simulator.advance_clock(Duration::from_secs(61 * 60));
    app.sync().await;
    assert_eq!(app.simulator.feed_requests().len(), reads + 2);
    let (_, page) = admin.get_text("/audit").await;
    assert!(!page.contains("feed-notice"), "{page}");
}

#[tokio::test]
async fn the_feed_cursor_survives_a_restart_without_rereading_or_attributing_twice() {
    let app = spawn_app().await;
    let people = members(&app);
    let ws = workspace(&app);
    let first = app
        .simulator
        .console(&people[0].id, ADDRESS)
        .create_key("before-restart", &ws);
    app.sync().await;
    let cursor = stored_cursor(&app).await.expect("a cursor is stored");

    let (simulator, dir, config) = app.stop().await;
    let requests_before = simulator.feed_requests().len();
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    // The sync at start-up went on from the stored cursor.
    let after_restart = &app.simulator.feed_requests()[requests_before];
    assert!(
        after_restart.contains(&format!("after_id={cursor}")),
        "{after_restart}"
    );
    assert!(!after_restart.contains("created_at.gte"), "{after_restart}");

    let second = app
        .simulator
        .console(&people[1].id, "198.51.100.7")
        .create_key("after-restart", &ws);
    app.sync().await;

    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 2, "{created:?}");
    let by_key = |id: &str| {
        created
            .iter()
            .find(|r| r.target_id.as_deref() == Some(id))
            .unwrap()
    };
    assert_eq!(
        by_key(&first).details["seen_in_feed"]["actor"],
        people[0].email.as_str()
    );
    assert_eq!(
        by_key(&second).details["seen_in_feed"]["actor"],
        people[1].email.as_str()
    );
    assert_eq!(
        by_key(&second).details["seen_in_feed"]["ip"],
        "198.51.100.7"
    );
    // Each activity explains one record only.
    let all = app.audit_records(Filter::default()).await;
    let ids: Vec<&str> = all
        .iter()
        .filter_map(|r| r.details["seen_in_feed"]["activity_id"].as_str())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
}

#[tokio::test]
async fn a_feed_longer_than_one_page_is_followed() {
    let app = spawn_app().await;
    let people = members(&app);
    let ws = workspace(&app);
    let console = app.simulator.console(&people[0].id, ADDRESS);
    let n = orgkeeper::service::activity::PAGE_SIZE as usize + 30;
    let keys: Vec<String> = (0..n)
        .map(|i| console.create_key(&format!("bulk-{i}"), &ws))
        .collect();
    let reads = app.simulator.feed_requests().len();

    app.sync().await;

    assert!(
        app.simulator.feed_requests().len() >= reads + 2,
        "more than one page was asked for"
    );
    let created = app.observed("key.created").await;
    assert_eq!(created.len(), n);
    for key in &keys {
        let record = created
            .iter()
            .find(|r| r.target_id.as_deref() == Some(key.as_str()))
            .unwrap();
        assert_eq!(
            record.details["seen_in_feed"]["actor"],
            people[0].email.as_str(),
            "{key}"
        );
    }
}

/// A webhook receiver on loopback: every posted body, in order.
async fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let b = b.clone();
            async move {
                b.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

/// The posted texts once at least `n` arrived (polls the receiver; the posts are spawned).
async fn posted(bodies: &Mutex<Vec<String>>, n: usize) -> Vec<String> {
    for _ in 0..400 {
        if bodies.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn chosen_kinds_of_observed_change_are_posted_to_the_webhook_once_each() {
    let (url, bodies) = webhook().await;
    let app = spawn_app_configured(Default::default(), |config| {
        config.alert_webhook_url = Some(url);
        config.public_url = Some("https://orgkeeper.example.com".into());
        config.alert_observed = vec![
            ObservedAlert::NewAdmin,
            ObservedAlert::KeyWithoutExpiry,
            ObservedAlert::MemberRemoved,
        ];
    })
    .await;
    let people = members(&app);
    let ws = workspace(&app);
    let console = app.simulator.console(&people[0].id, ADDRESS);
    console.create_key("no-expiry", &ws);
    assert!(console.set_role(&people[1].id, "admin"));
    assert!(console.remove_member(&people[2].id));
    // Not a chosen kind: no message.
    app.state
        .org
        .api()
        .update_workspace(&ws, Some("Renamed, not alerted"), None)
        .await
        .unwrap();

    app.sync().await;
    let texts = posted(&bodies, 3).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    let one = |needle: &str| {
        let found: Vec<&String> = texts.iter().filter(|t| t.contains(needle)).collect();
        assert_eq!(found.len(), 1, "{needle}: {texts:?}");
        found[0].clone()
    };
    let key = one("“no-expiry” was created with no expiry date");
    assert!(
        key.contains(&format!("by {} from {ADDRESS}", people[0].email)),
        "{key}"
    );
    assert!(
        key.contains("https://orgkeeper.example.com/audit/"),
        "{key}"
    );
    one(&format!(
        "{} was made an organization admin",
        people[1].email
    ));
    one(&format!(
        "{} was removed from the organization",
        people[2].email
    ));
    assert!(!texts.iter().any(|t| t.contains("Renamed")));
    let record_link = key.rsplit(' ').next().unwrap().trim_end_matches('.');
    let seq: i64 = record_link.rsplit('/').next().unwrap().parse().unwrap();
    let record = app.state.audit.get(seq).await.unwrap().unwrap();
    assert_eq!(record.action, "key.created");

    // Nothing is sent again: not at the next sync, not after a restart. A new change is.
    app.sync().await;
    let (simulator, dir, config) = app.stop().await;
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    app.simulator
        .console(&people[0].id, ADDRESS)
        .create_key("after-restart", &ws);
    app.sync().await;
    let texts = posted(&bodies, 4).await;
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts[3].contains("“after-restart” was created with no expiry date"));
}

#[tokio::test]
async fn the_simulated_feed_pages_newest_first_filters_and_refuses_like_the_reference() {
    let app = spawn_app().await;
    let people = members(&app);
    let ws = workspace(&app);
    let console = app.simulator.console(&people[0].id, ADDRESS);
    let keys: Vec<String> = (0..5)
        .map(|i| console.create_key(&format!("k{i}"), &ws))
        .collect();
    let http = reqwest::Client::new();
    let get = |query: &str| {
        let request = http
            .get(format!(
                "{}/v1/compliance/activities{query}",
                app.simulator.base_url()
            ))
            .header("x-api-key", crate::support::ADMIN_KEY);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let types = "?activity_types[]=platform_api_key_created";
    // Newest first by default; `after_id = last_id` goes on to older ones.
    let (status, first) = get(&format!("{types}&limit=2")).await;
    assert_eq!(status, 200, "{first}");
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["api_key_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first), vec![keys[4].clone(), keys[3].clone()]);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"][0]["actor"]["type"], "user_actor");
    assert_eq!(first["data"][0]["actor"]["ip_address"], ADDRESS);
    let last = first["last_id"].as_str().unwrap();
    let (_, next) = get(&format!("{types}&limit=2&after_id={last}")).await;
    assert_eq!(ids(&next), vec![keys[2].clone(), keys[1].clone()]);
    let back = next["first_id"].as_str().unwrap();
    let (_, previous) = get(&format!("{types}&limit=2&before_id={back}")).await;
    assert_eq!(ids(&previous), ids(&first));
    let (_, ascending) = get(&format!("{types}&order=asc&limit=1")).await;
    assert_eq!(ids(&ascending), vec![keys[0].clone()]);
    // Refusals.
    let (status, body) = get("?limit=5001").await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    let (status, body) = get("?created_at.gte=yesterday").await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("created_at.gte"));
    app.simulator.set_activity_feed(false);
    let (status, body) = get("").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["type"], "permission_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("read:compliance_activities"));
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
}
