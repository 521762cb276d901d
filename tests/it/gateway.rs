//! Orgkeeper's Admin API for tokens (issue 22), over real HTTP against the real server and the
//! simulator behind it: the contract a script sees, the scope a token carries, the audit record
//! a change through a token leaves, and the refusals.

use orgkeeper::audit::{Filter, Outcome};
use orgkeeper::auth::accounts::Account;
use orgkeeper::auth::tokens::TokenKind;
use orgkeeper::auth::Role;
use orgkeeper::service::tokens::{self, NewToken};
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_configured, TestApp, ADMIN_KEY, TEST_CALLER};

/// A token for `account`, made through the service as the command line makes one.
pub async fn token_for(
    app: &TestApp,
    account: &Account,
    name: &str,
    read_only: bool,
    workspaces: &[String],
) -> String {
    let created = tokens::create(
        &app.state,
        &TEST_CALLER,
        NewToken {
            name: name.to_owned(),
            kind: TokenKind::Api,
            account: Some(account.clone()),
            read_only,
            workspaces: workspaces.to_vec(),
            expires_in_days: Some(30),
        },
    )
    .await
    .unwrap();
    created.secret.expose().to_owned()
}

/// One Admin API request with a token in `x-api-key`: (status, request-id header, body).
async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new()
        .request(method, app.url(path))
        .header("x-api-key", token)
        .header("anthropic-version", "2023-06-01");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(!text.contains(ADMIN_KEY), "the admin key leaked: {text}");
    (
        status,
        id,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = call(app, token, reqwest::Method::GET, path, None).await;
    (status, body)
}

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_token_pages_through_members_and_keys_as_the_admin_api_does_without_calling_anthropic() {
    let app = spawn_app().await;
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let token = token_for(&app, &admin, "reporting", true, &[]).await;
    app.simulator.reset_request_count();

    // Members, five at a time, forwards with after_id: the model's list, in its order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => format!("/v1/organizations/users?limit=5&after_id={id}"),
            None => "/v1/organizations/users?limit=5".to_owned(),
        };
        let (status, request_id, page) =
            call(&app, &token, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        assert!(request_id.starts_with("req_"), "{request_id}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 5);
        seen.extend(data.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        assert_eq!(
            page["last_id"],
            data.last().map_or(Value::Null, |u| u["id"].clone())
        );
        if page["has_more"] != true {
            break;
        }
        after = page["last_id"].as_str().map(str::to_owned);
    }
    let model: Vec<String> = app
        .state
        .org
        .snapshot()
        .users
        .iter()
        .map(|u| u.id.clone())
        .collect();
    assert_eq!(seen, model);

    // Keys, filtered as the API filters them.
    let snapshot = app.state.org.snapshot();
    let workspace = snapshot
        .keys
        .iter()
        .find_map(|k| k.workspace_id())
        .unwrap()
        .to_owned();
    let (status, page) = get(
        &app,
        &token,
        &format!("/v1/organizations/api_keys?limit=1000&status=active&workspace_id={workspace}"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let expected: Vec<&str> = snapshot
        .keys
        .iter()
        .filter(|k| k.status.as_str() == "active" && k.workspace_id() == Some(workspace.as_str()))
        .map(|k| k.id.as_str())
        .collect();
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert!(!expected.is_empty());

    // One object, and the organization.
    let (status, user) = get(
        &app,
        &token,
        &format!("/v1/organizations/users/{}", model[0]),
    )
    .await;
    assert_eq!((status, user["type"].as_str()), (200, Some("user")));
    let (status, me) = get(&app, &token, "/v1/organizations/me").await;
    assert_eq!((status, me["type"].as_str()), (200, Some("organization")));

    // Bearer works like x-api-key.
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/workspaces"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    assert_eq!(
        app.simulator.request_count(),
        0,
        "reads must come from the model"
    );
}

#[tokio::test]
async fn a_rename_through_a_token_reaches_the_organization_and_the_audit_log_names_the_token() {
    let app = spawn_app().await;
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let token = token_for(&app, &admin, "ci-rotation", false, &[]).await;
    let key = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .find(|k| k.status.as_str() == "active")
        .cloned()
        .unwrap();

    let (status, _, body) = call(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/organizations/api_keys/{}", key.id),
        Some(json!({ "name": "renamed by the pipeline" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "renamed by the pipeline");
    // Upstream changed, and the model with it.
    let upstream = app.state.org.api().get_api_key(&key.id).await.unwrap();
    assert_eq!(upstream.name, "renamed by the pipeline");
    let model_name = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .find(|k| k.id == key.id)
        .unwrap()
        .name
        .clone();
    assert_eq!(model_name, "renamed by the pipeline");

    let records = app
        .audit_records(Filter {
            action: Some("key.renamed".into()),
            ..Default::default()
        })
        .await;
    let outcome = records
        .iter()
        .find(|r| r.outcome == Outcome::Ok)
        .expect("an outcome record");
    assert_eq!(outcome.actor_name, "ada");
    assert_eq!(outcome.details["via"], "token ci-rotation");
    assert!(outcome
        .sentence(Outcome::Ok, false)
        .starts_with("ada (with the token ci-rotation) renamed the key"));
    // Never the secret.
    for r in app.audit_records(Filter::default()).await {
        assert!(
            !r.details.to_string().contains(&token[5..]),
            "{:?}",
            r.details
        );
    }
}

#[tokio::test]
async fn read_only_team_lead_narrowed_revoked_and_expired_tokens_get_the_admin_api_refusals() {
    let app = spawn_app().await;
    let snapshot = app.state.org.snapshot();
    let mine = app.first_workspace_id().await;
    let other = snapshot
        .workspaces
        .iter()
        .find(|w| w.id != mine && !w.is_archived())
        .unwrap()
        .id
        .clone();
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let lead = app.create_account("lee", Role::TeamLead, &[&mine]).await;

    // Read-only: reads work, a change is 403 permission_error and nothing changes.
    let read_only = token_for(&app, &admin, "dashboards", true, &[]).await;
    let key = snapshot
        .keys
        .iter()
        .find(|k| k.status.as_str() == "active")
        .unwrap();
    let (status, _, body) = call(
        &app,
        &read_only,
        reqwest::Method::POST,
        &format!("/v1/organizations/api_keys/{}", key.id),
        Some(json!({ "status": "inactive" })),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (403, "permission_error"),
        "{body}"
    );
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(
        app.state
            .org
            .api()
            .get_api_key(&key.id)
            .await
            .unwrap()
            .status
            .as_str(),
        "active"
    );

    // A team lead's token: their workspaces only; the rest does not exist for it.
    let lead_token = token_for(&app, &lead, "lee-scripts", false, &[]).await;
    let (status, page) = get(&app, &lead_token, "/v1/organizations/workspaces?limit=1000").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str()]);
    let (status, body) = get(
        &app,
        &lead_token,
        &format!("/v1/organizations/workspaces/{other}"),
    )
    .await;
    assert_eq!((status, error_type(&body)), (404, "not_found_error"));
    let (status, page) = get(&app, &lead_token, "/v1/organizations/api_keys?limit=1000").await;
    assert_eq!(status, 200);
    for k in page["data"].as_array().unwrap() {
        assert_eq!(k["scope"]["workspace_id"], mine.as_str(), "{k}");
    }
    let (status, body) = get(&app, &lead_token, "/v1/organizations/users").await;
    assert_eq!((status, error_type(&body)), (403, "permission_error"));

    // An admin's token narrowed to one workspace changes nothing outside it.
    let narrowed = token_for(
        &app,
        &admin,
        "one-workspace",
        false,
        std::slice::from_ref(&mine),
    )
    .await;
    let outside = snapshot
        .keys
        .iter()
        .find(|k| k.workspace_id() == Some(other.as_str()) && k.status.as_str() == "active")
        .unwrap();
    let (status, _, body) = call(
        &app,
        &narrowed,
        reqwest::Method::POST,
        &format!("/v1/organizations/api_keys/{}", outside.id),
        Some(json!({ "name": "nope" })),
    )
    .await;
    assert_eq!((status, error_type(&body)), (404, "not_found_error"));
    let (status, _, body) = call(
        &app,
        &narrowed,
        reqwest::Method::POST,
        "/v1/organizations/invites",
        Some(json!({ "email": "new@example.com", "role": "user" })),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (403, "permission_error"),
        "{body}"
    );

    // Demoting the account narrows its tokens at once; disabling it stops them.
    let writer = token_for(&app, &admin, "writer", false, &[]).await;
    orgkeeper::service::accounts::change_role(&app.state, &TEST_CALLER, &admin, Role::Viewer)
        .await
        .unwrap();
    let (status, _, body) = call(
        &app,
        &writer,
        reqwest::Method::POST,
        &format!("/v1/organizations/api_keys/{}", key.id),
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!((status, error_type(&body)), (403, "permission_error"));
    let admin = orgkeeper::service::accounts::find(&app.state, admin.id)
        .await
        .unwrap();
    orgkeeper::service::accounts::set_disabled(&app.state, &TEST_CALLER, &admin, true)
        .await
        .unwrap();
    let (status, body) = get(&app, &writer, "/v1/organizations/workspaces").await;
    assert_eq!((status, error_type(&body)), (401, "authentication_error"));

    // Revoked, expired, unknown: 401, and each refusal is on record.
    let lead_row = tokens::find_by_name(&app.state, "lee-scripts")
        .await
        .unwrap();
    tokens::revoke(&app.state, &TEST_CALLER, &lead_row)
        .await
        .unwrap();
    let (status, body) = get(&app, &lead_token, "/v1/organizations/workspaces").await;
    assert_eq!((status, error_type(&body)), (401, "authentication_error"));
    assert_eq!(body["error"]["message"], "This token has been revoked.");
    let (status, body) = get(&app, "orgk_not-a-real-token", "/v1/organizations/me").await;
    assert_eq!((status, error_type(&body)), (401, "authentication_error"));
    let short = token_for(&app, &lead, "short-lived", false, &[]).await;
    app.state
        .clock
        .advance(std::time::Duration::from_secs(31 * 86_400));
    let (status, body) = get(&app, &short, "/v1/organizations/workspaces").await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (401, Some("This token has expired."))
    );
    let rejected = app
        .audit_records(Filter {
            action: Some("token.rejected".into()),
            ..Default::default()
        })
        .await;
    assert!(rejected.len() >= 4, "{rejected:?}");
    // The expiry itself is recorded once, by the scheduler.
    let now = app.state.clock.now();
    assert!(tokens::record_expired(&app.state, now).await.unwrap() >= 1);
    assert_eq!(tokens::record_expired(&app.state, now).await.unwrap(), 0);
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_until_the_minute_passes() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.token_rate_limit = 3;
    })
    .await;
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let token = token_for(&app, &admin, "busy", true, &[]).await;
    for _ in 0..3 {
        assert_eq!(get(&app, &token, "/v1/organizations/me").await.0, 200);
    }
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/me"))
        .header("x-api-key", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_type(&body), "rate_limit_error");
    app.state.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(get(&app, &token, "/v1/organizations/me").await.0, 200);
}

#[tokio::test]
async fn what_the_admin_api_cannot_do_answers_as_it_does() {
    let app = spawn_app().await;
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let token = token_for(&app, &admin, "t", false, &[]).await;
    // No key creation, no key deletion: not found, in the Admin API's envelope.
    let (status, _, body) = call(
        &app,
        &token,
        reqwest::Method::POST,
        "/v1/organizations/api_keys",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (404, "not_found_error"),
        "{body}"
    );
    let (status, _, body) = call(
        &app,
        &token,
        reqwest::Method::DELETE,
        "/v1/organizations/api_keys/apikey_x",
        None,
    )
    .await;
    assert_eq!((status, error_type(&body)), (404, "not_found_error"));
    // Unknown fields and values are refused before anything is asked of Anthropic.
    let (status, _, body) = call(
        &app,
        &token,
        reqwest::Method::POST,
        "/v1/organizations/invites",
        Some(json!({"email": "a@example.com", "role": "admin"})),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (400, "invalid_request_error"),
        "{body}"
    );
    let (status, body) = get(&app, &token, "/v1/organizations/users?limit=0").await;
    assert_eq!((status, error_type(&body)), (400, "invalid_request_error"));
    // No token at all.
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_usage_and_cost_reports_come_from_the_store_and_add_up_to_the_pages_numbers() {
    let app = spawn_app().await;
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let token = token_for(&app, &admin, "finance", true, &[]).await;
    let now = app.state.clock.now();
    orgkeeper::service::usage::sync(&app.state, now, std::time::Duration::from_secs(30)).await;
    app.simulator.reset_request_count();
    let start = (now - chrono::Duration::days(7)).date_naive();
    let path = format!(
        "/v1/organizations/cost_report?starting_at={start}T00:00:00Z&limit=31&group_by[]=workspace_id"
    );
    let (status, report) = get(&app, &token, &path).await;
    assert_eq!(status, 200, "{report}");
    let total: rust_decimal::Decimal = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap().iter())
        .map(|r| {
            r["amount"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    let expected: rust_decimal::Decimal = app
        .state
        .usage
        .cost_lines(start, now.date_naive() + chrono::Duration::days(1), None)
        .await
        .unwrap()
        .iter()
        .map(|l| l.3)
        .sum();
    assert_eq!(total, expected);
    assert!(total > rust_decimal::Decimal::ZERO);

    let path = format!(
        "/v1/organizations/usage_report/messages?starting_at={start}T00:00:00Z&bucket_width=1d&limit=3&group_by[]=model"
    );
    let (status, first) = get(&app, &token, &path).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    assert_eq!(first["has_more"], true);
    let next = first["next_page"].as_str().unwrap();
    let (status, second) = get(&app, &token, &format!("{path}&page={next}")).await;
    assert_eq!(status, 200);
    assert_ne!(
        first["data"][0]["starting_at"],
        second["data"][0]["starting_at"]
    );
    assert!(first["data"][0]["results"][0]["model"].is_string());
    let (status, body) = get(&app, &token, &format!("{path}&speeds[]=fast")).await;
    assert_eq!((status, error_type(&body)), (400, "invalid_request_error"));
    assert_eq!(app.simulator.request_count(), 0);
}

/// The official Python SDK, as a script would use it, with tokens instead of the admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_unchanged_with_a_token() {
    let python = tokio::task::spawn_blocking(crate::sdk_compat::sdk_python)
        .await
        .unwrap()
        .unwrap_or_else(|msg| panic!("no Python with the official SDK:\n{msg}"));
    let app = spawn_app().await;
    let snapshot = app.state.org.snapshot();
    let mine = app.first_workspace_id().await;
    let other = snapshot
        .workspaces
        .iter()
        .find(|w| w.id != mine && !w.is_archived())
        .unwrap()
        .id
        .clone();
    let key = snapshot
        .keys
        .iter()
        .find(|k| k.status.as_str() == "active")
        .unwrap()
        .clone();
    let admin = app.create_account("ada", Role::Admin, &[]).await;
    let lead = app.create_account("lee", Role::TeamLead, &[&mine]).await;
    let write = token_for(&app, &admin, "terraform", false, &[]).await;
    let read_only = token_for(&app, &admin, "dashboards", true, &[]).await;
    let lead_token = token_for(&app, &lead, "team-report", true, &[]).await;
    let revoked = token_for(&app, &admin, "old-script", true, &[]).await;
    let row = tokens::find_by_name(&app.state, "old-script")
        .await
        .unwrap();
    tokens::revoke(&app.state, &TEST_CALLER, &row)
        .await
        .unwrap();
    let expired = tokens::create(
        &app.state,
        &TEST_CALLER,
        NewToken {
            name: "one-day".into(),
            kind: TokenKind::Api,
            account: Some(admin.clone()),
            read_only: true,
            workspaces: vec![],
            expires_in_days: Some(1),
        },
    )
    .await
    .unwrap()
    .secret
    .expose()
    .to_owned();
    app.state
        .clock
        .advance(std::time::Duration::from_secs(2 * 86_400));
    app.simulator.reset_request_count();

    let mut script = std::process::Command::new(python);
    script
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/gateway.py"))
        .env("ORGKEEPER_URL", &app.address)
        .env("TOKEN_ADMIN", &write)
        .env("TOKEN_READ_ONLY", &read_only)
        .env("TOKEN_TEAM_LEAD", &lead_token)
        .env("TOKEN_REVOKED", &revoked)
        .env("TOKEN_EXPIRED", &expired)
        .env("RENAME_KEY", &key.id)
        .env("NEW_NAME", "renamed by terraform")
        .env("OTHER_WORKSPACE", &other);
    crate::sdk_compat::without_sdk_settings(&mut script);
    let timeout = std::time::Duration::from_secs(90);
    let ran =
        tokio::task::spawn_blocking(move || crate::support::python::run_bounded(script, timeout))
            .await
            .unwrap();
    assert!(ran.succeeded(), "{}", ran.output("gateway.py", timeout));
    let seen: Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();

    // Auto-pagination over small pages gives exactly the model's lists.
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let users: Vec<String> = snapshot.users.iter().map(|u| u.id.clone()).collect();
    assert_eq!(ids(&seen["users"]), users);
    let keys: Vec<String> = snapshot.keys.iter().map(|k| k.id.clone()).collect();
    assert_eq!(ids(&seen["keys"]), keys);
    assert_eq!(seen["read_only_lists"], users.len());
    assert_eq!(ids(&seen["lead_workspaces"]), vec![mine.clone()]);

    // The rename reached the organization, and the audit log names the account and the token.
    assert_eq!(seen["renamed"]["name"], "renamed by terraform");
    // Reads never went upstream: the only calls were the rename's.
    assert_eq!(app.simulator.request_count(), RENAME_CALLS);
    let upstream = app.state.org.api().get_api_key(&key.id).await.unwrap();
    assert_eq!(upstream.name, "renamed by terraform");
    let rename = app
        .audit_records(Filter {
            action: Some("key.renamed".into()),
            ..Default::default()
        })
        .await
        .into_iter()
        .find(|r| r.outcome == Outcome::Ok)
        .expect("the rename is audited");
    assert_eq!(rename.actor_name, "ada");
    assert_eq!(rename.details["via"], "token terraform");

    // Each refusal is the SDK's own exception class, with a request id.
    for (case, class, status) in [
        ("read_only_write", "PermissionDeniedError", 403),
        ("lead_other_workspace", "NotFoundError", 404),
        ("revoked", "AuthenticationError", 401),
        ("expired", "AuthenticationError", 401),
    ] {
        assert_eq!(seen[case]["class"], class, "{case}: {seen}");
        assert_eq!(seen[case]["status"], status, "{case}");
        assert!(
            seen[case]["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("req_")),
            "{case}: {seen}"
        );
    }
    let audited = app
        .audit_records(Filter::default())
        .await
        .iter()
        .filter(|r| r.action == "key.renamed" && r.details["via"] == "token dashboards")
        .map(|r| r.outcome)
        .collect::<Vec<_>>();
    assert!(
        audited.iter().all(|o| *o == Outcome::Denied),
        "the read-only token's rename changed nothing: {audited:?}"
    );
}

/// Upstream calls a key rename makes, through a page or a token alike: the update, then the
/// re-read of the key it touched (how the model learns the change at once).
const RENAME_CALLS: u64 = 2;
