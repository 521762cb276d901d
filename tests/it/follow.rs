//! The organization is followed through the Activity Feed, and swept slice by slice at a
//! flat pace: the real server's services, the simulator over HTTP (changes made through its
//! Console helpers or with its Admin API), a real SQLite file, and clocks that tests move.

use std::time::Duration;

use orgkeeper::anthropic::{OrgRole, User};
use orgkeeper::audit::{ChainReport, Filter, Record};
use orgkeeper::auth::Role;
use orgkeeper::org::Touched;
use orgkeeper::service::{follow, sweep};

use crate::support::{live_config, spawn_app, spawn_app_with, TestApp, TEST_CALLER};

const ADDRESS: &str = "203.0.113.7";

fn plain_member(app: &TestApp) -> User {
    app.state
        .org
        .snapshot()
        .users
        .iter()
        .find(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        .cloned()
        .unwrap()
}

/// Both clocks: Orgkeeper's and the simulator's (whose feed shows activities after a delay).
fn advance(app: &TestApp, by: Duration) {
    app.state.clock.advance(by);
    app.simulator.advance_clock(by);
}

/// A server whose sweep covers the organization in `minutes`.
async fn app_sweeping_in(minutes: u64) -> TestApp {
    let simulator = orgkeeper::simulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        orgkeeper::simulator::SimulatorOptions::default(),
    )
    .await
    .unwrap();
    let mut config = live_config(&simulator);
    config.sweep_period = Duration::from_secs(minutes * 60);
    config.sync_interval = Duration::from_secs(5 * 60);
    spawn_app_with(config, simulator, None).await
}

/// Runs sweep rounds a minute apart until a pass completes; returns each round.
async fn sweep_a_pass(app: &TestApp) -> Vec<sweep::Round> {
    let mut rounds = Vec::new();
    for _ in 0..200 {
        let round = sweep::round(&app.state).await.unwrap();
        let done = round.finished.is_some();
        rounds.push(round);
        if done {
            return rounds;
        }
        advance(app, Duration::from_secs(60));
    }
    panic!("the sweep did not finish a pass in 200 minutes");
}

#[tokio::test]
async fn a_change_the_feed_announces_is_reread_alone_and_recorded_once_named_by_the_feed() {
    let app = spawn_app().await;
    // As the real feed: an activity shows up a minute after its change.
    app.simulator.set_activity_delay(Duration::from_secs(60));
    let person = plain_member(&app);
    let workspace = app.first_workspace_id().await;
    let console = app.simulator.console(&person.id, ADDRESS);
    let key = console.create_key("made-in-console", &workspace);

    let round = follow::round(&app.state).await.unwrap();
    assert!(
        round.reread.is_empty(),
        "the feed has nothing yet: {round:?}"
    );
    assert!(app.observed("key.created").await.is_empty());
    assert!(!app.state.org.snapshot().keys.iter().any(|k| k.id == key));

    advance(&app, Duration::from_secs(61));
    let before = app.simulator.request_count();
    let round = follow::round(&app.state).await.unwrap();
    let calls = app.simulator.request_count() - before;
    assert_eq!(round.reread, [Touched::Key(key.clone())]);
    // One read of the feed, one of the key: nothing else of the organization.
    assert_eq!(calls, 2, "{round:?}");
    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].target_id.as_deref(), Some(key.as_str()));
    let seen = &created[0].details["seen_in_feed"];
    assert_eq!(seen["actor"], person.email.as_str());
    assert_eq!(seen["ip"], ADDRESS);
    assert_eq!(seen["activity_type"], "platform_api_key_created");
    assert!(created[0].details.get("found_by").is_none());
    assert!(app.state.org.snapshot().keys.iter().any(|k| k.id == key));

    // Read again: the cursor moved, and the model holds the change: nothing twice.
    let round = follow::round(&app.state).await.unwrap();
    assert!(round.reread.is_empty(), "{round:?}");
    sqlx::query("DELETE FROM activity_feed")
        .execute(&app.db)
        .await
        .unwrap();
    follow::round(&app.state).await.unwrap();
    assert_eq!(app.observed("key.created").await.len(), 1);
    assert!(app.observed("observed.attributed").await.is_empty());
    assert!(matches!(
        app.state.audit.verify().await.unwrap(),
        ChainReport::Intact { .. }
    ));
}

#[tokio::test]
async fn a_cursor_the_feed_no_longer_knows_is_dropped_and_the_last_hour_read_again() {
    let app = spawn_app().await;
    let person = plain_member(&app);
    let workspace = app.first_workspace_id().await;
    // Orgkeeper's place in the feed, as a feed of another organization (the admin key was
    // replaced) would not know it: 400 "Invalid cursor" on every read.
    sqlx::query(
        "INSERT INTO activity_feed (id, cursor) VALUES (1, 'activity_0unknown') \
         ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let key = app
        .simulator
        .console(&person.id, ADDRESS)
        .create_key("made-while-lost", &workspace);

    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(round.failed, None, "{round:?}");
    assert!(
        round.reread.contains(&Touched::Key(key.clone())),
        "{round:?}"
    );
    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(
        created[0].details["seen_in_feed"]["activity_type"],
        "platform_api_key_created"
    );
    let cursor: Option<String> = sqlx::query_scalar("SELECT cursor FROM activity_feed")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        cursor.as_deref().is_some_and(|c| c != "activity_0unknown"),
        "{cursor:?}"
    );
    // The next round goes on from the new place.
    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(round.failed, None);
    assert!(round.reread.is_empty(), "{round:?}");
}

/// An app whose first workspace has a live key that Orgkeeper has just renamed.
async fn app_with_a_key_renamed_through_orgkeeper() -> (TestApp, orgkeeper::anthropic::ApiKey) {
    let app = spawn_app().await;
    let key = app.live_key_in(&app.first_workspace_id().await);
    orgkeeper::service::keys::rename(&app.state, &TEST_CALLER, &key, "renamed through Orgkeeper")
        .await
        .unwrap()
        .unwrap();
    (app, key)
}

#[tokio::test]
async fn orgkeepers_own_change_announced_by_the_feed_is_not_recorded_again() {
    let (app, key) = app_with_a_key_renamed_through_orgkeeper().await;
    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(round.reread, [Touched::Key(key.id.clone())]);
    assert_eq!(round.observed, 0);
    assert!(app.observed("key.renamed").await.is_empty());
    let ours: Vec<Record> = app
        .audit_records(Filter::default())
        .await
        .into_iter()
        .filter(|r| r.action == "key.renamed")
        .collect();
    assert_eq!(
        ours.len(),
        2,
        "Orgkeeper's own intent and outcome only: {ours:?}"
    );
    assert!(ours.iter().all(|r| r.actor_name == "system (test setup)"));
}

#[tokio::test]
async fn what_a_script_changes_is_reread_by_what_the_feed_names_and_recorded_like_a_full_sync() {
    let app = spawn_app().await;
    let person = plain_member(&app);
    let workspace = app.first_workspace_id().await;
    let api = app.state.org.api().clone();
    // A script with the admin key: a member's role and a workspace's name.
    let new_role = if person.role == OrgRole::Developer {
        OrgRole::User
    } else {
        OrgRole::Developer
    };
    api.update_user_role(&person.id, new_role).await.unwrap();
    api.update_workspace(&workspace, Some("Renamed by a script"), None)
        .await
        .unwrap();
    let before = app.simulator.request_count();
    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(
        round.reread,
        [
            Touched::User(person.id.clone()),
            Touched::Workspace(workspace.clone())
        ]
    );
    assert_eq!(app.simulator.request_count() - before, 3);
    let role = app.observed("member.role_changed").await;
    assert_eq!(role.len(), 1, "{role:?}");
    assert_eq!(role[0].details["before"], person.role.as_str());
    assert_eq!(
        role[0].details["seen_in_feed"]["activity_type"],
        "claude_user_role_updated"
    );
    let renamed = app.observed("workspace.updated").await;
    assert_eq!(renamed.len(), 1);
    assert_eq!(renamed[0].details["after"]["name"], "Renamed by a script");
    let snapshot = app.state.org.snapshot();
    assert!(snapshot
        .workspaces
        .iter()
        .any(|w| w.id == workspace && w.name == "Renamed by a script"));

    // The audit page reads them as any observed change, with who made them.
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let (_, page) = auditor.get_text("/audit?source=observed").await;
    assert!(
        page.contains("Seen outside Orgkeeper: Workspace renamed or recoloured — Renamed by a script, by an Admin API key apikey_"),
        "{page}"
    );
}

#[tokio::test]
async fn a_change_the_feed_misses_is_found_by_the_sweep_at_a_flat_pace_and_said_so() {
    let app = app_sweeping_in(10).await;
    let workspace = app.first_workspace_id().await;
    // A gap in the feed: the change happens, no activity names it.
    app.simulator.record_activities(false);
    app.state
        .org
        .api()
        .update_workspace(&workspace, Some("Missed by the feed"), None)
        .await
        .unwrap();
    app.simulator.record_activities(true);
    let round = follow::round(&app.state).await.unwrap();
    assert!(round.reread.is_empty());
    assert!(app.observed("workspace.updated").await.is_empty());

    let rounds = sweep_a_pass(&app).await;
    let pass = rounds.last().unwrap().finished.clone().unwrap();
    assert_eq!(pass.observed, 1, "{pass:?}");
    let found = app.observed("workspace.updated").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].details["after"]["name"], "Missed by the feed");
    assert_eq!(found[0].details["found_by"], "sweep");
    assert_eq!(found[0].details["announced_by_feed"], false);

    // Flat: the pass's calls spread over its period, a minute's worth per round at most
    // (plus the one slice that may overdraw it).
    let per_minute = rounds[0].per_minute;
    assert!(
        (pass.estimate as f64 / 10.0 - per_minute).abs() < 1e-9,
        "{per_minute} for {pass:?}"
    );
    let longest = rounds.iter().map(|r| r.calls).max().unwrap();
    assert!(
        rounds.len() >= 8,
        "{} rounds for {} calls at {per_minute} a minute",
        rounds.len(),
        pass.calls
    );
    assert!(
        longest as f64 <= per_minute.max(1.0) + 5.0,
        "a round made {longest} calls at {per_minute} a minute"
    );
    // Without time passing, what was earned runs out and nothing more is called.
    for _ in 0..3 {
        sweep::round(&app.state).await.unwrap();
    }
    let before = app.simulator.request_count();
    let round = sweep::round(&app.state).await.unwrap();
    assert_eq!((round.calls, app.simulator.request_count()), (0, before));

    // The audit page says the periodic check found it.
    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let (_, page) = auditor.get_text("/audit?source=observed").await;
    assert!(
        page.contains("Seen outside Orgkeeper: Workspace renamed or recoloured — Missed by the feed (found by Orgkeeper&#39;s periodic check; the Activity Feed had not announced it)"),
        "{page}"
    );

    // A second pass finds nothing new.
    advance(&app, Duration::from_secs(60));
    let again = sweep_a_pass(&app).await;
    assert_eq!(again.last().unwrap().finished.as_ref().unwrap().observed, 0);
    assert_eq!(app.observed("workspace.updated").await.len(), 1);
}

#[tokio::test]
async fn a_change_the_sweep_found_first_is_named_when_its_activity_arrives() {
    let app = app_sweeping_in(10).await;
    app.simulator
        .set_activity_delay(Duration::from_secs(30 * 60));
    let person = plain_member(&app);
    let workspace = app.first_workspace_id().await;
    let key = app
        .simulator
        .console(&person.id, ADDRESS)
        .create_key("swept-before-announced", &workspace);
    sweep_a_pass(&app).await;
    let created = app.observed("key.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].details["found_by"], "sweep");

    advance(&app, Duration::from_secs(30 * 60));
    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(round.reread, [Touched::Key(key.clone())]);
    assert_eq!(round.observed, 0, "the model already holds it");
    let named = app.observed("observed.attributed").await;
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0].details["record"], created[0].seq);
    assert_eq!(
        named[0].details["seen_in_feed"]["actor"],
        person.email.as_str()
    );
    assert_eq!(app.observed("key.created").await.len(), 1);
}

#[tokio::test]
async fn without_the_feed_the_sweep_rereads_everything_over_the_sync_interval() {
    let app = app_sweeping_in(60).await;
    app.simulator.set_activity_feed(false);
    let round = follow::round(&app.state).await.unwrap();
    assert!(round.refused);
    let workspace = app.first_workspace_id().await;
    app.state
        .org
        .api()
        .update_workspace(&workspace, Some("Renamed without a feed"), None)
        .await
        .unwrap();
    let rounds = sweep_a_pass(&app).await;
    let pass = rounds.last().unwrap().finished.clone().unwrap();
    // The sync interval (5 minutes here), not the hour the sweep takes beside the feed.
    assert!(
        (rounds[0].per_minute - pass.estimate as f64 / 5.0).abs() < 1e-9,
        "{} for {pass:?}",
        rounds[0].per_minute
    );
    let found = app.observed("workspace.updated").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].details["found_by"], "sweep");
    assert!(found[0].details.get("announced_by_feed").is_none());
    // Pages say how current the model is: as of the pass's start, not the first read.
    assert_eq!(
        app.state.org.freshness().synced_at,
        Some(pass.started_at),
        "{pass:?}"
    );
}

#[tokio::test]
async fn the_sweep_leaves_the_admin_apis_budget_to_others_beyond_its_share() {
    let app = app_sweeping_in(1).await;
    // 20 requests a minute, half of them for Orgkeeper's background reads.
    app.simulator.set_rate_limit(20);
    // Others spend the budget: the answers say only 5 are left.
    for _ in 0..15 {
        app.state.org.api().get_organization().await.unwrap();
    }
    let before = app.simulator.request_count();
    let round = sweep::round(&app.state).await.unwrap();
    assert!(round.yielded, "{round:?}");
    assert_eq!(app.simulator.request_count(), before);
    // Its pace is capped at its share of the announced budget.
    assert!(round.per_minute <= 10.0, "{round:?}");
}

#[test]
fn the_pace_is_the_pass_over_its_period_within_the_budget_share() {
    use orgkeeper::anthropic::RateLimitStatus;
    let hour = Duration::from_secs(3600);
    assert_eq!(sweep::pace(240, hour, None, 0.5), 4.0);
    let budget = RateLimitStatus {
        limit: 4,
        remaining: 4,
        reset: None,
    };
    assert_eq!(sweep::pace(240, hour, Some(&budget), 0.5), 2.0);
    assert_eq!(sweep::pace(60, Duration::from_secs(30), None, 0.5), 120.0);
}

#[tokio::test]
async fn a_sweep_over_an_unchanged_organization_keeps_the_model_pages_derived_from() {
    let app = app_sweeping_in(10).await;
    // Pages derive their lists from the snapshot once; a new snapshot would rebuild them all.
    let before = app.state.org.snapshot();
    let pass = sweep_a_pass(&app).await;
    assert_eq!(pass.last().unwrap().finished.as_ref().unwrap().observed, 0);
    assert!(
        std::sync::Arc::ptr_eq(&before, &app.state.org.snapshot()),
        "an unchanged organization replaced the model"
    );
}

#[tokio::test]
async fn an_outside_change_after_orgkeepers_own_change_to_the_same_key_is_still_recorded() {
    let (app, key) = app_with_a_key_renamed_through_orgkeeper().await;
    follow::round(&app.state).await.unwrap();
    assert!(app.observed("key.renamed").await.is_empty());

    // Later, a script renames the same key: that one is not Orgkeeper's.
    app.state
        .org
        .api()
        .update_api_key(
            &key.id,
            &orgkeeper::anthropic::UpdateApiKey {
                name: Some("renamed by a script".into()),
                status: None,
            },
        )
        .await
        .unwrap();
    let round = follow::round(&app.state).await.unwrap();
    assert_eq!(round.observed, 1, "{round:?}");
    let renamed = app.observed("key.renamed").await;
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    assert_eq!(renamed[0].details["after"]["name"], "renamed by a script");
}
