//! Anthropic's spend limits and workspace rate limits through the Limits pages: the real
//! server, the simulator over HTTP, the changes checked in the simulated organization and the
//! audit log; and the browser flow of setting a spend limit.

use std::time::Duration;

use futures_util::FutureExt;
use orgkeeper::anthropic::{
    ApiKey, ApiKeyStatus, KeyKind, OrgRateLimitParams, OrgRole, SetSpendLimit, SpendLimitFilter,
    SpendLimitScope, WorkspaceRateLimitParams,
};
use orgkeeper::audit::{Filter, Outcome};
use orgkeeper::auth::Role;
use orgkeeper::simulator::SpendLimitsAccess;

use crate::support::webdriver::Browser;
use crate::support::*;

/// The workspace limit the simulator seeds (on the first named workspace), in cents.
const SEEDED_CENTS: &str = "150000";

async fn limit_cents(app: &TestApp, scope: &SpendLimitScope) -> Option<String> {
    app.state
        .org
        .api()
        .list_spend_limits(&SpendLimitFilter::default())
        .await
        .unwrap()
        .into_iter()
        .find(|l| &l.scope == scope)
        .and_then(|l| l.amount)
}

fn workspace_scope(id: &str) -> SpendLimitScope {
    SpendLimitScope::Workspace {
        workspace_id: id.to_owned(),
    }
}

async fn records(app: &TestApp, action: &str) -> Vec<orgkeeper::audit::Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn the_limits_page_shows_each_spend_limit_beside_this_months_spend_and_the_budget() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    admin
        .post(
            "/budgets",
            &[("scope", &ws), ("amount", "900"), ("thresholds", "80")],
        )
        .await;
    let (status, html) = admin.get_text("/limits").await;
    assert_eq!(status, 200);
    let row = html
        .split(&format!("data-scope=\"{ws}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("a row for the workspace");
    assert!(row.contains("$1,500.00 a month"), "{row}");
    assert!(
        row.contains("$900.00"),
        "the budget beside the limit: {row}"
    );
    assert!(row.contains(&format!("/limits/workspaces/{ws}")), "{row}");
    assert!(html.contains("Whole organization"));
    assert!(html.contains("stop traffic"), "explains what a limit does");
    assert!(
        html.contains("$5,000.00 a month from its usage tier"),
        "Anthropic's own cap"
    );
    let (_, budgets) = admin.get_text("/budgets").await;
    assert!(
        budgets.contains("only alert") && budgets.contains("href=\"/limits\""),
        "the budgets page explains the difference"
    );
    assert!(
        budgets.contains("$1,500.00"),
        "the budgets page shows the spend limit beside the budget"
    );
}

#[tokio::test]
async fn an_admin_sets_changes_and_removes_a_spend_limit_with_before_and_after_audited() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;

    let changed = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "$2,000.50")])
        .await;
    assert_eq!(changed.status(), 303);
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("200050")
    );
    let set = admin
        .post(
            "/limits/spend",
            &[("scope", "organization"), ("amount", "10000")],
        )
        .await;
    assert_eq!(set.status(), 303);
    assert_eq!(
        limit_cents(&app, &SpendLimitScope::Organization)
            .await
            .as_deref(),
        Some("1000000")
    );
    let (_, page) = admin.get_text("/limits").await;
    assert!(page.contains("Spend limit for the organization set to $10,000.00"));

    let audit = records(&app, "spend_limit.set").await;
    let done: Vec<_> = audit.iter().filter(|r| r.outcome == Outcome::Ok).collect();
    assert_eq!(done.len(), 2, "{audit:?}");
    let ws_change = done
        .iter()
        .find(|r| r.target_id.as_deref() == Some(&ws))
        .unwrap();
    assert_eq!(ws_change.details["before"]["amount_cents"], SEEDED_CENTS);
    assert_eq!(ws_change.details["after"]["amount_cents"], "200050");
    assert!(
        ws_change.intent_seq.is_some(),
        "the intent was recorded first"
    );
    let org_change = done
        .iter()
        .find(|r| r.target_id.as_deref() == Some("organization"))
        .unwrap();
    assert!(org_change.details["before"].is_null());

    let removed = admin.post("/limits/spend/remove", &[("scope", &ws)]).await;
    assert_eq!(removed.status(), 303);
    assert_eq!(limit_cents(&app, &workspace_scope(&ws)).await, None);
    let audit = records(&app, "spend_limit.removed").await;
    let done = audit.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(done.details["before"]["amount_cents"], "200050");
    assert!(done.details["after"].is_null());
}

#[tokio::test]
async fn an_amount_that_is_not_dollars_and_cents_is_explained_and_kept() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Owner).await;
    for (typed, says) in [
        ("12.345", "at most two decimals"),
        ("lots", "is not an amount of dollars"),
        ("0", "more than $0"),
        ("-20", "is not an amount of dollars"),
    ] {
        let response = admin
            .post("/limits/spend", &[("scope", &ws), ("amount", typed)])
            .await;
        assert_eq!(response.status(), 422, "{typed}");
        let html = response.text().await.unwrap();
        assert!(html.contains(says), "{typed}: {html}");
        assert!(
            html.contains(&format!(
                "name=\"amount\" inputmode=\"decimal\" required value=\"{typed}\""
            )),
            "{typed} is kept"
        );
    }
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(SEEDED_CENTS),
        "nothing changed"
    );
    assert!(records(&app, "spend_limit.set").await.is_empty());
}

#[tokio::test]
async fn without_access_the_page_says_so_once_links_the_console_and_keeps_working() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    for (access, says) in [
        (SpendLimitsAccess::WritesNotEnabled, "early-access preview"),
        (
            SpendLimitsAccess::OrgTypeNotSupported,
            "for this kind of organization",
        ),
    ] {
        app.simulator.set_spend_limits_access(access);
        // The page reads the model: the next sync learns of the refusal.
        app.sync().await;
        let (status, html) = admin.get_text("/limits").await;
        assert_eq!(status, 200, "{access:?}");
        assert_eq!(html.matches(says).count(), 1, "{access:?}: said once");
        assert_eq!(
            html.matches("https://console.anthropic.com/settings/limits")
                .count(),
            1
        );
        assert!(
            html.contains(&format!("data-scope=\"{ws}\"")),
            "rows still shown"
        );
        assert!(html.contains("Spent this month"));
        assert!(
            !html.contains("Save spend limit"),
            "no form that cannot work"
        );
        let refused = admin
            .post("/limits/spend", &[("scope", &ws), ("amount", "10")])
            .await;
        assert_eq!(refused.status(), 422);
        let text = refused.text().await.unwrap();
        assert!(text.contains("Nothing was changed.") && text.contains(says));
    }
    app.simulator
        .set_spend_limits_access(SpendLimitsAccess::Preview);
    app.sync().await;
    let (_, html) = admin.get_text("/limits").await;
    assert!(html.contains("Save spend limit"));
}

#[tokio::test]
async fn an_upstream_failure_is_explained_with_its_request_id_and_audited() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    app.simulator.faults().add(
        "500:method=POST:path-prefix=/v1/organizations/spend_limits"
            .parse()
            .unwrap(),
    );
    let response = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "2000")])
        .await;
    assert_eq!(response.status(), 502);
    let html = response.text().await.unwrap();
    assert!(html.contains("The spend limit was not changed."), "{html}");
    let failed = records(&app, "spend_limit.set")
        .await
        .into_iter()
        .find(|r| r.outcome == Outcome::Failed)
        .expect("the failure is audited");
    let request_id = failed.upstream_request_id.clone().unwrap();
    assert!(request_id.starts_with("req_"));
    assert!(html.contains(&request_id), "the page quotes the request id");
    assert!(html.contains("value=\"2000\""), "what was typed is kept");
}

#[tokio::test]
async fn viewers_read_limits_and_team_leads_only_their_workspaces() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (status, html) = viewer.get_text("/limits").await;
    assert_eq!(status, 200);
    assert!(html.contains("Whole organization") && !html.contains("Save spend limit"));
    let refused = viewer
        .post("/limits/spend", &[("scope", &ws), ("amount", "10")])
        .await;
    assert_eq!(refused.status(), 403);

    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let (status, html) = lead.get_text("/limits").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("data-scope=\"{ws}\"")));
    assert!(!html.contains("Whole organization"), "not the organization");
    assert_eq!(
        html.matches("data-scope=").count(),
        1,
        "only the lead's workspace"
    );
    assert!(!html.contains("usage tier"));
}

// ---------------------------------------------------------------------------------------------
// Workspace rate limits

async fn overrides(app: &TestApp, ws: &str) -> Vec<(String, String, u64)> {
    app.state
        .org
        .api()
        .all(&(ws, &WorkspaceRateLimitParams::default()))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|e| {
            let id = e.rate_limit_id.clone();
            e.limits
                .into_iter()
                .map(move |l| (id.clone(), l.kind, l.value))
        })
        .collect()
}

#[tokio::test]
async fn an_admin_sets_and_clears_a_workspace_rate_limit_and_learns_it_takes_up_to_an_hour() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let (status, page) = admin.get_text(&format!("/limits/workspaces/{ws}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("the lower one is enforced"));
    let entries = app
        .state
        .org
        .api()
        .all(&OrgRateLimitParams::default())
        .await
        .unwrap();
    let batch = entries.iter().find(|e| e.group.kind == "batch").unwrap();
    let org_value = batch.limits[0].value;
    assert!(page.contains(&format!("data-limit=\"{}:requests_per_minute\"", batch.id)));

    let path = format!("/limits/workspaces/{ws}");
    let set = admin
        .post(
            &path,
            &[
                ("rate_limit_id", &batch.id),
                ("type", "requests_per_minute"),
                ("value", "1,000"),
            ],
        )
        .await;
    assert_eq!(set.status(), 303);
    assert!(overrides(&app, &ws).await.contains(&(
        batch.id.clone(),
        "requests_per_minute".into(),
        1000
    )));
    let (_, page) = admin.get_text(&path).await;
    assert!(
        page.contains("Anthropic can take up to an hour to apply it."),
        "the flash says when it applies"
    );
    let row = page
        .split(&format!("data-limit=\"{}:requests_per_minute\"", batch.id))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap();
    assert!(row.contains("1,000 (this workspace"), "{row}");

    let cleared = admin
        .post(
            &path,
            &[
                ("rate_limit_id", &batch.id),
                ("type", "requests_per_minute"),
                ("value", "1000"),
                ("clear", "1"),
            ],
        )
        .await;
    assert_eq!(cleared.status(), 303);
    assert!(!overrides(&app, &ws)
        .await
        .iter()
        .any(|(id, _, _)| *id == batch.id));
    let (_, page) = admin.get_text(&path).await;
    let row = page
        .split(&format!("data-limit=\"{}:requests_per_minute\"", batch.id))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap();
    assert!(row.contains("(the organization"), "{row}");
    assert!(row.contains(&orgkeeper::web::usage::thousands(org_value as i64)));

    // Later syncs do not take Orgkeeper's own changes for outside ones.
    app.sync().await;
    app.sync().await;
    let audit = records(&app, "rate_limit.workspace_changed").await;
    assert!(
        audit
            .iter()
            .all(|r| r.actor_role.as_deref() != Some("observed")),
        "{audit:?}"
    );
    let done: Vec<_> = audit.iter().filter(|r| r.outcome == Outcome::Ok).collect();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].details["before"]["override"], 1000);
    assert!(done[0].details["after"]["override"].is_null());
    assert!(done[1].details["before"]["override"].is_null());
    assert_eq!(done[1].details["after"]["override"], 1000);
}

#[tokio::test]
async fn an_out_of_range_rate_limit_is_explained_and_the_form_keeps_it() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Owner).await;
    let entries = app
        .state
        .org
        .api()
        .all(&OrgRateLimitParams::default())
        .await
        .unwrap();
    let batch = entries.iter().find(|e| e.group.kind == "batch").unwrap();
    let before = overrides(&app, &ws).await;
    for typed in ["-5", "1.5", "9007199254740992"] {
        let response = admin
            .post(
                &format!("/limits/workspaces/{ws}"),
                &[
                    ("rate_limit_id", &batch.id),
                    ("type", "requests_per_minute"),
                    ("value", typed),
                ],
            )
            .await;
        assert_eq!(response.status(), 422, "{typed}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("whole number") || html.contains("largest value"),
            "{typed}: {html}"
        );
        assert!(html.contains(&format!("value=\"{typed}\"")), "{typed} kept");
    }
    assert_eq!(overrides(&app, &ws).await, before, "nothing changed");
}

// ---------------------------------------------------------------------------------------------
// Requests for a higher limit

/// A webhook receiver on loopback: every posted body, in order.
async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
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

async fn posted(bodies: &std::sync::Mutex<Vec<String>>, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if bodies.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bodies.lock().unwrap().clone()
}

async fn spawn_with_webhook() -> (TestApp, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let (url, bodies) = webhook().await;
    let app = spawn_app_configured(Default::default(), |config| {
        config.alert_webhook_url = Some(url);
    })
    .await;
    (app, bodies)
}

/// The id of the only open request.
async fn open_request(app: &TestApp) -> i64 {
    let ids = orgkeeper::service::limits::pending_requests(&app.state)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].id
}

#[tokio::test]
async fn a_team_lead_asks_for_more_and_an_admin_approval_sets_the_limit_through_the_api() {
    let (app, hook) = spawn_with_webhook().await;
    let ws = app.first_workspace_id().await;
    let (lead_account, lead) = app.signed_in(Role::TeamLead).await;
    let (_, page) = lead.get_text("/limits").await;
    assert!(page.contains("Ask for a higher limit"));

    let asked = lead
        .post(
            "/limits/requests",
            &[
                ("workspace", &ws),
                ("amount", "4,000"),
                ("reason", "Launch week <traffic>"),
            ],
        )
        .await;
    assert_eq!(asked.status(), 303);
    let again = lead
        .post(
            "/limits/requests",
            &[("workspace", &ws), ("amount", "5000"), ("reason", "more")],
        )
        .await;
    assert_eq!(again.status(), 422);
    let text = again.text().await.unwrap();
    assert!(text.contains("already has an open request"), "{text}");
    assert!(text.contains(">more</textarea>"), "the reason is kept");
    let id = open_request(&app).await;

    let (_, admin) = app.signed_in(Role::Admin).await;
    let (_, page) = admin.get_text("/limits").await;
    assert!(page.contains("Requests waiting for a decision"));
    assert!(
        page.contains("Launch week &#60;traffic&#62;")
            || page.contains("Launch week &lt;traffic&gt;"),
        "the reason is escaped"
    );
    let approved = admin
        .post(&format!("/limits/requests/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), 303);
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("400000"),
        "approving set the spend limit upstream"
    );

    let set = records(&app, "spend_limit.set").await;
    let set = set.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(set.details["limit_request"], id);
    assert_eq!(set.details["before"]["amount_cents"], SEEDED_CENTS);
    let created = records(&app, "limit_request.created").await;
    assert_eq!(
        created.iter().filter(|r| r.outcome == Outcome::Ok).count(),
        1
    );
    assert_eq!(
        created
            .iter()
            .filter(|r| r.outcome == Outcome::Denied)
            .count(),
        1,
        "the second request is on record as refused"
    );
    assert_eq!(created[0].actor_id, Some(lead_account.id));
    let decided = records(&app, "limit_request.approved").await;
    assert!(decided.iter().any(
        |r| r.outcome == Outcome::Ok && r.target_id.as_deref() == Some(id.to_string().as_str())
    ));

    let (_, page) = lead.get_text("/limits").await;
    let mine = page.split("id=\"my-requests\"").nth(1).unwrap();
    assert!(
        mine.contains("Approved by"),
        "the requester sees the decision"
    );

    let posts = posted(&hook, 2).await;
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[0].contains("asks for a monthly spend limit of $4,000.00"));
    assert!(posts[1].contains("approved"));
}

#[tokio::test]
async fn a_denial_needs_a_reason_which_the_requester_then_reads() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    lead.post(
        "/limits/requests",
        &[
            ("workspace", &ws),
            ("amount", "9000"),
            ("reason", "bigger model"),
        ],
    )
    .await;
    let id = open_request(&app).await;
    let (_, owner) = app.signed_in(Role::Owner).await;

    let blank = owner
        .post(&format!("/limits/requests/{id}/deny"), &[("reason", "  ")])
        .await;
    assert_eq!(blank.status(), 422);
    assert!(blank.text().await.unwrap().contains("Give a reason"));
    let denied = owner
        .post(
            &format!("/limits/requests/{id}/deny"),
            &[("reason", "Use Haiku for the batch jobs")],
        )
        .await;
    assert_eq!(denied.status(), 303);
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(SEEDED_CENTS),
        "a denial changes nothing upstream"
    );
    let (_, page) = lead.get_text("/limits").await;
    assert!(page.contains("Use Haiku for the batch jobs"));

    let late = owner
        .post(&format!("/limits/requests/{id}/approve"), &[])
        .await;
    assert_eq!(late.status(), 303);
    let (_, page) = owner.get_text("/limits").await;
    assert!(page.contains("the request was already denied"), "{page}");
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(SEEDED_CENTS)
    );
    let denied = records(&app, "limit_request.denied").await;
    let done = denied.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(done.details["reason"], "Use Haiku for the batch jobs");
}

#[tokio::test]
async fn a_request_must_ask_for_more_and_approving_never_lowers_a_limit() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let lower = lead
        .post(
            "/limits/requests",
            &[("workspace", &ws), ("amount", "1000"), ("reason", "less")],
        )
        .await;
    assert_eq!(lower.status(), 422);
    assert!(lower
        .text()
        .await
        .unwrap()
        .contains("already has a monthly spend limit of $1,500.00"));
    lead.post(
        "/limits/requests",
        &[("workspace", &ws), ("amount", "2000"), ("reason", "more")],
    )
    .await;
    let id = open_request(&app).await;
    // Meanwhile someone raises the limit above what was asked.
    let (_, admin) = app.signed_in(Role::Admin).await;
    admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "3000")])
        .await;
    let approved = admin
        .post(&format!("/limits/requests/{id}/approve"), &[])
        .await;
    assert_eq!(approved.status(), 303);
    let (_, page) = admin.get_text("/limits").await;
    assert!(page.contains("approving would not raise it"), "{page}");
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("300000"),
        "not lowered"
    );
    assert_eq!(open_request(&app).await, id, "left for a denial");
}

#[tokio::test]
async fn approving_without_api_access_keeps_the_request_open_and_says_why() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    lead.post(
        "/limits/requests",
        &[
            ("workspace", &ws),
            ("amount", "2000"),
            ("reason", "demo day"),
        ],
    )
    .await;
    let id = open_request(&app).await;
    app.simulator
        .set_spend_limits_access(SpendLimitsAccess::WritesNotEnabled);
    let (_, admin) = app.signed_in(Role::Admin).await;
    let response = admin
        .post(&format!("/limits/requests/{id}/approve"), &[])
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("stays open") && html.contains("early-access preview"),
        "{html}"
    );
    assert_eq!(open_request(&app).await, id, "still pending");
    assert!(records(&app, "limit_request.approved").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Interrupted changes

#[tokio::test]
async fn spend_and_rate_limit_changes_a_crash_interrupted_are_resolved_after_the_restart() {
    use orgkeeper::audit::{Actor, NewEntry, Resolution, Source, Target};
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let actor = Actor::named("olga");
    let orphan = |action: &'static str, target_id: String, details: serde_json::Value| {
        let app = &app;
        let actor = actor.clone();
        async move {
            app.state
                .audit
                .append(
                    NewEntry::new(actor, Source::default(), action, Outcome::Pending)
                        .target(Target {
                            kind: "spend_limit".into(),
                            id: target_id,
                            label: None,
                        })
                        .details(details),
                )
                .await
                .unwrap()
        }
    };
    // The seeded workspace limit is what one intent asked for; another asked for a value
    // that never arrived; a rate-limit change that did not happen either.
    let applied = orphan(
        "spend_limit.set",
        ws.clone(),
        serde_json::json!({ "after": { "amount_cents": SEEDED_CENTS } }),
    )
    .await;
    let lost = orphan(
        "spend_limit.set",
        "organization".into(),
        serde_json::json!({ "after": { "amount_cents": "100" } }),
    )
    .await;
    let rate = orphan(
        "rate_limit.workspace_changed",
        ws.clone(),
        serde_json::json!({ "rate_limit_id": "ratelimit_x", "limit_type": "requests_per_minute", "after": { "override": 5 } }),
    )
    .await;
    let (simulator, dir, config) = app.stop().await;
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    let outcomes = app
        .state
        .audit
        .outcomes_of(&[applied, lost, rate])
        .await
        .unwrap();
    assert_eq!(outcomes[&applied].resolution(), Some(Resolution::Applied));
    assert_eq!(outcomes[&lost].resolution(), Some(Resolution::NotApplied));
    assert_eq!(outcomes[&rate].resolution(), Some(Resolution::NotApplied));
}

// ---------------------------------------------------------------------------------------------
// Key types (§5.6)

async fn all_keys(app: &TestApp) -> Vec<ApiKey> {
    app.state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
}

fn live(key: &ApiKey) -> bool {
    matches!(key.status, ApiKeyStatus::Active | ApiKeyStatus::Inactive)
}

#[tokio::test]
async fn the_key_pages_say_whose_each_key_is() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let keys = all_keys(&app).await;
    let users = app
        .state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap();
    let find = |pred: &dyn Fn(&ApiKey) -> bool| keys.iter().find(|k| pred(k)).expect("seeded");
    let personal = find(&|k| {
        matches!(k.kind(), KeyKind::Personal { .. }) && !k.is_organization_scoped() && live(k)
    });
    let org_scoped = find(&|k| k.is_organization_scoped() && live(k));
    let service = find(&|k| matches!(k.kind(), KeyKind::ServiceAccount { .. }));
    let legacy = find(&|k| k.kind() == KeyKind::Workspace);
    let expired = find(&|k| k.status == ApiKeyStatus::Expired);

    let whose = |html: &str| {
        html.split("id=\"key-whose\">")
            .nth(1)
            .and_then(|r| r.split("</dd>").next())
            .unwrap_or_default()
            .to_owned()
    };
    let person = users
        .iter()
        .find(|u| Some(u.id.as_str()) == personal.principal_user_id())
        .unwrap();
    let (_, html) = viewer.get_text(&format!("/keys/{}", personal.id)).await;
    assert_eq!(whose(&html), format!("Personal key of {}", person.name));
    let (_, html) = viewer.get_text(&format!("/keys/{}", org_scoped.id)).await;
    assert!(
        whose(&html).ends_with(", all their workspaces"),
        "{}",
        whose(&html)
    );
    let (_, html) = viewer.get_text(&format!("/keys/{}", service.id)).await;
    assert!(
        whose(&html).starts_with("Key of a service account"),
        "{}",
        whose(&html)
    );
    let (_, html) = viewer.get_text(&format!("/keys/{}", legacy.id)).await;
    assert!(
        whose(&html).starts_with("Workspace key (nobody"),
        "{}",
        whose(&html)
    );
    let (_, html) = viewer.get_text(&format!("/keys/{}", expired.id)).await;
    assert!(
        html.contains("class=\"Label Label--secondary\" id=\"key-status\">expired<"),
        "the expired status is shown"
    );
    let (_, list) = viewer.get_text("/keys?status=expired").await;
    assert!(list.contains(&expired.id) && list.contains("key-whose"));
}

#[tokio::test]
async fn offboarding_leaves_personal_keys_to_anthropic_and_stops_the_workspace_keys() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let keys = all_keys(&app).await;
    let users = app
        .state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap();
    // A developer with a live personal key and a live workspace key they created.
    let (user, personal, workspace_key) = users
        .iter()
        .filter(|u| u.role == OrgRole::Developer)
        .find_map(|u| {
            let personal = keys.iter().find(|k| {
                live(k) && matches!(k.kind(), KeyKind::Personal { user_id } if user_id == u.id)
            })?;
            let ws = keys.iter().find(|k| {
                k.status == ApiKeyStatus::Active
                    && k.kind() == KeyKind::Workspace
                    && k.created_by.as_ref().is_some_and(|c| *c.id == *u.id)
            })?;
            Some((u.clone(), personal.clone(), ws.clone()))
        })
        .expect("the demo data has such a member");
    let base = format!("/members/{}/offboard", user.id);
    let (_, plan) = admin.get_text(&base).await;
    let row = |id: &str| {
        plan.split(&format!("data-key=\"{id}\""))
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap()
            .to_owned()
    };
    let p = row(&personal.id);
    assert!(p.contains("archives it when they are removed"), "{p}");
    assert!(p.contains("value=\"leave\" selected"), "{p}");
    let w = row(&workspace_key.id);
    assert!(w.contains("keeps working after they leave"), "{w}");
    assert!(w.contains("value=\"deactivate\" selected"), "{w}");

    // The plan as preselected: leave the personal key, deactivate the workspace key, remove.
    let personal_field = format!("key:{}", personal.id);
    let workspace_field = format!("key:{}", workspace_key.id);
    let preview = admin
        .post(
            &base,
            &[
                (personal_field.as_str(), "leave"),
                (workspace_field.as_str(), "deactivate"),
                ("remove_member", "1"),
            ],
        )
        .await;
    assert_eq!(preview.status(), 200);
    let preview = preview.text().await.unwrap();
    let auto = preview
        .split("id=\"offboard-auto\"")
        .nth(1)
        .and_then(|r| r.split("</p>").next())
        .expect("the preview names the keys that stop by themselves");
    assert!(auto.contains(&personal.name), "{auto}");
    assert!(
        !preview.contains(&format!("|{}\"", personal.id)),
        "no step for the personal key"
    );
    let steps: Vec<String> = preview
        .match_indices("name=\"step\" value=\"")
        .map(|(i, m)| {
            let rest = &preview[i + m.len()..];
            rest[..rest.find('"').unwrap()].replace("&#124;", "|")
        })
        .collect();
    let fields: Vec<(&str, &str)> = steps.iter().map(|s| ("step", s.as_str())).collect();
    let started = admin.post(&format!("{base}/start"), &fields).await;
    assert_eq!(started.status(), 303);
    let (_, run) = admin.get_text(&location(&started)).await;
    assert!(run.contains("data-state=\"completed\""), "{run}");
    let status = |id: String| {
        let app = &app;
        async move { app.state.org.api().get_api_key(&id).await.unwrap().status }
    };
    assert_eq!(
        status(personal.id.clone()).await,
        ApiKeyStatus::Archived,
        "Anthropic archived the personal key with the member"
    );
    assert_eq!(
        status(workspace_key.id.clone()).await,
        ApiKeyStatus::Inactive
    );
}

// ---------------------------------------------------------------------------------------------
// Browser

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn in_the_browser_an_admin_sets_a_spend_limit_from_the_limits_page() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("limits-admin", Role::Admin, &[]).await;
    let browser = Browser::launch()
        .await
        .unwrap_or_else(|message| panic!("{message}"));
    let result = std::panic::AssertUnwindSafe(async {
        browser.goto(&app.url("/login")).await;
        browser
            .find("input[name=username]")
            .await
            .send_keys("limits-admin")
            .await;
        browser
            .find("input[name=password]")
            .await
            .send_keys(PASSWORD)
            .await;
        browser.find("form button[type=submit]").await.click().await;
        browser.wait_for("header .user", WAIT).await;
        browser
            .find("header nav a[href='/limits']")
            .await
            .click()
            .await;
        browser.wait_for_text("main h1", "Limits", WAIT).await;
        browser
            .execute(
                "document.querySelector('#set-limit select[name=scope]').value = arguments[0];",
                vec![serde_json::json!(ws)],
            )
            .await;
        browser
            .find("#set-limit input[name=amount]")
            .await
            .send_keys("3,250")
            .await;
        browser
            .find("#set-limit button[type=submit]")
            .await
            .click()
            .await;
        browser
            .wait_for_text("#flash", "to $3,250.00 a month", WAIT)
            .await;
        let row = browser
            .find(&format!("tr[data-scope='{ws}']"))
            .await
            .text()
            .await;
        assert!(row.contains("$3,250.00 a month"), "{row}");
        browser.save_screenshot("limits_set_spend_limit").await;
    })
    .catch_unwind()
    .await;
    if let Err(panic) = result {
        let path = browser
            .save_screenshot("limits_set_spend_limit_failed")
            .await;
        eprintln!("screenshot of the failure: {}", path.display());
        std::panic::resume_unwind(panic);
    }
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("325000")
    );
}

async fn browser_sign_in(browser: &Browser, app: &TestApp, username: &str) {
    browser.goto(&app.url("/login")).await;
    browser
        .find("input[name=username]")
        .await
        .send_keys(username)
        .await;
    browser
        .find("input[name=password]")
        .await
        .send_keys(PASSWORD)
        .await;
    browser.find("form button[type=submit]").await.click().await;
    browser.wait_for("header .user", WAIT).await;
}

#[tokio::test]
async fn in_the_browser_a_team_lead_asks_and_an_admin_approves_the_request() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("limits-lead", Role::TeamLead, &[ws.as_str()])
        .await;
    app.create_account("limits-approver", Role::Admin, &[])
        .await;
    let browser = Browser::launch()
        .await
        .unwrap_or_else(|message| panic!("{message}"));
    let result = std::panic::AssertUnwindSafe(async {
        browser_sign_in(&browser, &app, "limits-lead").await;
        browser.goto(&app.url("/limits")).await;
        browser
            .find("#ask-limit input[name=amount]")
            .await
            .send_keys("6000")
            .await;
        browser
            .find("#ask-limit textarea[name=reason]")
            .await
            .send_keys("Customer pilot in March")
            .await;
        browser
            .find("#ask-limit button[type=submit]")
            .await
            .click()
            .await;
        browser
            .wait_for_text(
                "#flash",
                "was sent to the organization's owners and admins",
                WAIT,
            )
            .await;
        browser.save_screenshot("limits_request_sent").await;

        browser.delete_cookies().await;
        browser_sign_in(&browser, &app, "limits-approver").await;
        browser.goto(&app.url("/limits")).await;
        let row = browser.find("#requests tbody tr").await.text().await;
        assert!(
            row.contains("Customer pilot in March") && row.contains("$6,000.00"),
            "{row}"
        );
        browser
            .find("#requests form.approve button")
            .await
            .click()
            .await;
        browser.wait_for_text("#flash", "Approved:", WAIT).await;
        let row = browser
            .find(&format!("tr[data-scope='{ws}']"))
            .await
            .text()
            .await;
        assert!(row.contains("$6,000.00 a month"), "{row}");
        assert!(
            browser.try_find("#requests").await.is_none(),
            "nothing left to decide"
        );
        browser.save_screenshot("limits_request_approved").await;

        browser.delete_cookies().await;
        browser_sign_in(&browser, &app, "limits-lead").await;
        browser.goto(&app.url("/limits")).await;
        browser
            .wait_for_text("#my-requests", "Approved by limits-approver", WAIT)
            .await;
    })
    .catch_unwind()
    .await;
    if let Err(panic) = result {
        let path = browser.save_screenshot("limits_request_flow_failed").await;
        eprintln!("screenshot of the failure: {}", path.display());
        std::panic::resume_unwind(panic);
    }
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("600000")
    );
}

#[tokio::test]
async fn limits_pages_read_the_model_and_a_change_shows_at_once() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    // The first view may bring the cost store up to date; the second reads only local data.
    let _ = admin.get_text("/limits").await;
    let _ = admin.get_text(&format!("/limits/workspaces/{ws}")).await;
    app.simulator.reset_request_count();
    let (status, page) = admin.get_text("/limits").await;
    assert_eq!(status, 200);
    let (status, _) = admin.get_text(&format!("/limits/workspaces/{ws}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.simulator.request_count(),
        0,
        "spend and rate limits come from the model"
    );
    assert!(page.contains("Save spend limit"));

    let saved = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "1234.56")])
        .await;
    assert!(saved.status().is_redirection(), "{}", saved.status());
    app.simulator.reset_request_count();
    let (_, page) = admin.get_text("/limits").await;
    assert!(
        page.contains("$1,234.56"),
        "the new limit shows without a sync"
    );
    assert_eq!(app.simulator.request_count(), 0);
}

#[tokio::test]
async fn a_spend_limit_changed_outside_orgkeeper_is_recorded_once_and_ours_is_not() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let name = app
        .state
        .org
        .snapshot()
        .workspaces
        .iter()
        .find(|w| w.id == ws)
        .map(|w| w.name.clone())
        .unwrap();
    let observed = |records: Vec<orgkeeper::audit::Record>| -> Vec<orgkeeper::audit::Record> {
        records
            .into_iter()
            .filter(|r| r.actor_role.as_deref() == Some("observed"))
            .filter(|r| r.action.starts_with("spend_limit."))
            .collect()
    };
    let api = app.state.org.api().clone();
    let set = |cents: &str| SetSpendLimit {
        amount: Some(cents.to_owned()),
        scope: SpendLimitScope::Workspace {
            workspace_id: ws.clone(),
        },
        period: Some("monthly".into()),
    };

    let limit_in_model = |app: &TestApp| {
        app.state
            .org
            .snapshot()
            .spend_limits
            .as_deref()
            .and_then(|r| r.as_ref().ok())
            .and_then(|all| all.iter().find(|l| l.scope == set("0").scope).cloned())
    };
    let first = limit_in_model(&app).and_then(|l| l.amount);

    // Set with another admin key (as a script or the Console would): seen by the next sync.
    api.set_spend_limit(&set("50000")).await.unwrap();
    app.sync().await;
    let seen = observed(app.audit_records(Filter::default()).await);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, "spend_limit.set");
    assert_eq!(seen[0].target_id.as_deref(), Some(ws.as_str()));
    assert_eq!(seen[0].target_label.as_deref(), Some(name.as_str()));
    assert_eq!(
        seen[0].details["before"]["amount_cents"].as_str(),
        first.as_deref()
    );
    assert_eq!(seen[0].details["after"]["amount_cents"], "50000");
    assert_eq!(
        seen[0].details["seen_in_feed"]["actor_type"], "admin_api_key_actor",
        "the Activity Feed names who: {:?}",
        seen[0].details
    );

    // Changed, then removed, outside: one record each, with before and after.
    api.set_spend_limit(&set("70000")).await.unwrap();
    app.sync().await;
    let limit = limit_in_model(&app).expect("the model has the workspace's limit");
    api.delete_spend_limit(&limit.id).await.unwrap();
    app.sync().await;
    app.sync().await;
    let mut seen = observed(app.audit_records(Filter::default()).await);
    seen.sort_by_key(|r| r.seq);
    let actions: Vec<(&str, &serde_json::Value, &serde_json::Value)> = seen
        .iter()
        .map(|r| (r.action.as_str(), &r.details["before"], &r.details["after"]))
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert_eq!(actions[1].0, "spend_limit.set");
    assert_eq!(actions[1].1["amount_cents"], "50000");
    assert_eq!(actions[1].2["amount_cents"], "70000");
    assert_eq!(actions[2].0, "spend_limit.removed", "{actions:?}");
    assert_eq!(actions[2].1["amount_cents"], "70000");

    // Set through Orgkeeper: its own record only, nothing observed by later syncs.
    let (_, admin) = app.signed_in(Role::Admin).await;
    let saved = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "1234.56")])
        .await;
    assert!(saved.status().is_redirection(), "{}", saved.status());
    app.sync().await;
    app.sync().await;
    assert_eq!(
        observed(app.audit_records(Filter::default()).await).len(),
        3
    );
}

#[tokio::test]
async fn a_workspace_rate_limit_changed_outside_orgkeeper_is_recorded_once_with_before_and_after() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let api = app.state.org.api().clone();
    let batch = api
        .all(&OrgRateLimitParams::default())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.group.kind == "batch")
        .unwrap();
    let set = |value: Option<u64>| orgkeeper::anthropic::UpdateWorkspaceRateLimit {
        limits: vec![orgkeeper::anthropic::RateLimitChange {
            kind: "requests_per_minute".into(),
            value,
        }],
    };
    let observed = |records: Vec<orgkeeper::audit::Record>| -> Vec<orgkeeper::audit::Record> {
        let mut out: Vec<_> = records
            .into_iter()
            .filter(|r| r.actor_role.as_deref() == Some("observed"))
            .filter(|r| r.action == "rate_limit.workspace_changed")
            .collect();
        out.sort_by_key(|r| r.seq);
        out
    };

    api.update_workspace_rate_limit(&ws, &batch.id, &set(Some(700)))
        .await
        .unwrap();
    app.sync().await;
    api.update_workspace_rate_limit(&ws, &batch.id, &set(None))
        .await
        .unwrap();
    app.sync().await;
    app.sync().await;

    let seen = observed(app.audit_records(Filter::default()).await);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen
        .iter()
        .all(|r| r.target_id.as_deref() == Some(ws.as_str())));
    assert_eq!(seen[0].details["rate_limit_id"], batch.id.as_str());
    assert_eq!(seen[0].details["limit_type"], "requests_per_minute");
    assert!(seen[0].details["before"]["override"].is_null());
    assert_eq!(seen[0].details["after"]["override"], 700);
    assert_eq!(seen[1].details["before"]["override"], 700);
    assert!(seen[1].details["after"]["override"].is_null());
    for r in &seen {
        assert_eq!(
            r.details["seen_in_feed"]["activity_type"], "platform_workspace_rate_limit_updated",
            "{:?}",
            r.details
        );
    }
}

#[tokio::test]
async fn a_spend_limit_that_stops_traffic_at_once_or_halves_the_limit_is_saved_only_once_confirmed()
{
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let name = app
        .state
        .org
        .workspaces()
        .await
        .unwrap()
        .iter()
        .find(|w| w.id == ws)
        .unwrap()
        .name
        .clone();
    let scope = orgkeeper::service::limits::LimitScope::Workspace {
        id: ws.clone(),
        name: name.clone(),
    };
    let (_, admin) = app.signed_in(Role::Admin).await;
    // The page brings the cost store up to date, as a person's first look does.
    let _ = admin.get_text("/limits").await;
    let spent = orgkeeper::service::limits::month_spend(&app.state, &scope)
        .await
        .unwrap();
    assert!(spent > rust_decimal::Decimal::ZERO, "the demo has spent");
    let spent_text = orgkeeper::money::dollars(spent);

    // Before saving, the form shows this month's spend beside each scope.
    let (_, page) = admin.get_text("/limits").await;
    assert!(
        page.contains(&format!("{name} — spent {spent_text} this month")),
        "the spend beside the choice"
    );

    // At this month's spend: nothing changes, the page asks with the spend beside the amount.
    let at_spend = (spent / rust_decimal::Decimal::from(100)).floor();
    let asked = admin
        .post(
            "/limits/spend",
            &[("scope", &ws), ("amount", &at_spend.to_string())],
        )
        .await;
    assert_eq!(asked.status(), 200);
    let page = asked.text().await.unwrap();
    let question = page
        .split("id=\"confirm-limit\"")
        .nth(1)
        .and_then(|q| q.split("</section>").next())
        .expect("a confirmation");
    assert!(question.contains(&spent_text), "{question}");
    assert!(question.contains("refuses its requests"), "{question}");
    assert!(question.contains("name=\"confirm\""), "{question}");
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(SEEDED_CENTS),
        "nothing changed before the confirmation"
    );

    // A confirmation of another amount does not count.
    let other = admin
        .post(
            "/limits/spend",
            &[
                ("scope", &ws),
                ("amount", &at_spend.to_string()),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(other.status(), 200);
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(SEEDED_CENTS)
    );

    // Confirmed: saved, and the audit record says it was confirmed against the spend.
    let cents = (at_spend * rust_decimal::Decimal::from(100))
        .normalize()
        .to_string();
    let confirmed = admin
        .post(
            "/limits/spend",
            &[
                ("scope", &ws),
                ("amount", &at_spend.to_string()),
                ("confirm", &cents),
            ],
        )
        .await;
    assert_eq!(confirmed.status(), 303);
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some(cents.as_str())
    );
    let audit = records(&app, "spend_limit.set").await;
    let done = audit.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert!(
        done.details["confirmed"]["spent_cents"].is_string(),
        "{done:?}"
    );

    // Raising it is ordinary; then cutting it by more than half asks again.
    let raised = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "1000000")])
        .await;
    assert_eq!(raised.status(), 303);
    let cut = admin
        .post("/limits/spend", &[("scope", &ws), ("amount", "400000")])
        .await;
    assert_eq!(cut.status(), 200);
    let page = cut.text().await.unwrap();
    assert!(
        page.contains("less than half of the limit now, $1,000,000.00"),
        "says why"
    );
    assert_eq!(
        limit_cents(&app, &workspace_scope(&ws)).await.as_deref(),
        Some("100000000")
    );
}

#[tokio::test]
async fn a_rate_limit_above_the_organizations_is_warned_about_before_it_is_saved() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let entries = app
        .state
        .org
        .api()
        .all(&OrgRateLimitParams::default())
        .await
        .unwrap();
    let batch = entries.iter().find(|e| e.group.kind == "batch").unwrap();
    let above = (batch.limits[0].value + 1).to_string();
    let path = format!("/limits/workspaces/{ws}");
    let fields = [
        ("rate_limit_id", batch.id.as_str()),
        ("type", "requests_per_minute"),
        ("value", above.as_str()),
    ];
    let warned = admin.post(&path, &fields).await;
    assert_eq!(warned.status(), 200);
    let page = warned.text().await.unwrap();
    assert!(page.contains("Not saved yet."), "warns before saving");
    assert!(page.contains("is above the organization"));
    assert!(
        !overrides(&app, &ws)
            .await
            .iter()
            .any(|(id, _, _)| *id == batch.id),
        "nothing was saved"
    );
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm", "1"));
    let saved = admin.post(&path, &confirmed).await;
    assert_eq!(saved.status(), 303);
    assert!(overrides(&app, &ws)
        .await
        .iter()
        .any(|(id, _, v)| *id == batch.id && v.to_string() == above));
}

/// A large organization's limits are pages of fifty, every workspace on one of them, and a
/// spend limit's place may be typed by the workspace's name.
#[tokio::test]
async fn a_large_organizations_limits_come_in_pages_and_a_workspace_may_be_named() {
    let app = spawn_large_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let workspaces: Vec<(String, String)> = app
        .state
        .org
        .snapshot()
        .workspaces
        .iter()
        .filter(|w| !w.is_archived())
        .map(|w| (w.id.clone(), w.name.clone()))
        .collect();
    let rows = workspaces.len() + 1; // and the whole organization
    assert!(rows > 50, "more rows than a page: {rows}");

    let mut seen = 0;
    let mut page = 1;
    loop {
        let (status, html) = admin.get_text(&format!("/limits?page={page}")).await;
        assert_eq!(status, 200);
        let here = html.matches("<tr data-scope=").count();
        assert!(here <= 50, "page {page}: {here} rows");
        seen += here;
        if !html.contains("rel=\"next\"") {
            assert!(html.contains(&format!("of {rows}")), "page {page}");
            break;
        }
        page += 1;
    }
    assert_eq!(seen, rows, "every workspace is on one page");

    // The form accepts a workspace by its name, as it is typed when there are too many to list.
    let (_, name) = &workspaces[workspaces.len() / 2];
    let typed = name.to_uppercase();
    let response = admin
        .post(
            "/limits/spend",
            &[("scope", typed.as_str()), ("amount", "123456")],
        )
        .await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status == 303 || !body.contains("Choose the organization or a workspace."),
        "the name is understood: {body}"
    );
    let response = admin
        .post(
            "/limits/spend",
            &[("scope", "no such workspace"), ("amount", "123456")],
        )
        .await;
    let body = response.text().await.unwrap();
    assert!(body.contains("Choose the organization or a workspace."));
}
