//! API tokens as people and scripts manage them (issue 22): the `/tokens` page, the tokens
//! section of an account's page, the `orgkeeper token` commands on the server's own database
//! file, and the expiry record — each checked against the gateway the token opens.

use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;

use crate::support::{captured_logs, location, spawn_app, TestApp};

/// The secret in a page that has just created a token.
fn secret_in(page: &str) -> String {
    let start = page
        .find("value=\"orgk_")
        .expect("the page shows the new token")
        + "value=\"".len();
    let end = page[start..].find('"').unwrap();
    page[start..start + end].to_owned()
}

/// `GET /v1/organizations/users` with a token: (status, error type).
async fn list_users(app: &TestApp, token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/users?limit=2"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let kind = body["error"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if status == 200 {
        assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    }
    (status, kind)
}

/// Everything the audit log holds, as text (to look for what must not be there).
async fn audit_text(app: &TestApp) -> String {
    app.audit_records(Filter::default())
        .await
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The id in a token row's revoke form.
fn revoke_path(page: &str, name: &str) -> String {
    let row = page.find(&format!("<strong>{name}</strong>")).unwrap();
    let start = row + page[row..].find("action=\"/tokens/").unwrap() + "action=\"".len();
    let end = page[start..].find('"').unwrap();
    page[start..start + end].to_owned()
}

#[tokio::test]
async fn a_person_creates_a_token_sees_it_once_uses_it_and_revokes_it() {
    let app = spawn_app().await;
    let (viewer, session) = app.signed_in(Role::Viewer).await;

    // A refused form keeps what was typed and says why.
    let refused = session
        .post(
            "/tokens",
            &[("name", "nightly report"), ("lifetime", "never")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("tokens may never expire: choose a number of days"),
        "{page}"
    );
    assert!(page.contains("value=\"nightly report\""));
    assert!(!page.contains("value=\"orgk_"));

    let created = session
        .post(
            "/tokens",
            &[
                ("name", "nightly report"),
                ("lifetime", "30"),
                ("read_only", "on"),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let page = created.text().await.unwrap();
    let secret = secret_in(&page);
    assert!(secret.starts_with("orgk_") && secret.len() > 40, "{secret}");
    assert!(page.contains("shown only this once"));

    // It works at once, as the viewer, read only.
    assert_eq!(list_users(&app, &secret).await, (200, String::new()));

    // Listed afterwards with its use and scope, but never shown again.
    let (status, listed) = session.get_text("/tokens").await;
    assert_eq!(status, 200);
    assert!(!listed.contains(&secret));
    assert!(listed.contains("nightly report"));
    assert!(listed.contains("Read only"));
    let last_used = listed
        .split("<strong>nightly report</strong>")
        .nth(1)
        .unwrap();
    assert!(!last_used[..last_used.find("</tr>").unwrap()].contains(">never<"));

    // The audit log names the creation by the person, and holds no secret.
    let audit = audit_text(&app).await;
    assert!(audit.contains("token.created"));
    assert!(audit.contains(&viewer.username));
    assert!(!audit.contains(&secret));
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).to_string();
    assert!(!logs.contains(&secret));

    // Revoked: the next request is refused as the Admin API refuses a bad key.
    let revoke = session
        .post(&revoke_path(&listed, "nightly report"), &[])
        .await;
    assert_eq!(revoke.status(), 303);
    assert_eq!(location(&revoke), "/tokens");
    assert_eq!(
        list_users(&app, &secret).await,
        (401, "authentication_error".to_owned())
    );
    let (_, after) = session.get_text("/tokens").await;
    assert!(after.contains("Revoked"));
    assert!(after.contains("is revoked: its next request is refused"));
}

#[tokio::test]
async fn owners_make_and_revoke_tokens_for_others_on_their_page_and_nobody_else_can() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let workspace = app.first_workspace_id().await;
    let lead = app
        .create_account("lead-tokens", Role::TeamLead, &[workspace.as_str()])
        .await;

    let created = owner
        .post(
            &format!("/accounts/{}/tokens", lead.id),
            &[
                ("name", "team dashboard"),
                ("lifetime", "7"),
                ("workspace", workspace.as_str()),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let page = created.text().await.unwrap();
    let secret = secret_in(&page);
    assert!(page.contains("<h1 class=\"Subhead-heading Subhead-heading--large\">lead-tokens</h1>"));

    // The team lead's token lists their one workspace, not the organization's.
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/workspaces"))
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![workspace.as_str()]);

    // The lead sees it on their own page; another viewer can neither see nor revoke it.
    let lead_session = app.login_as("lead-tokens").await;
    let (_, own) = lead_session.get_text("/tokens").await;
    assert!(own.contains("team dashboard"));
    let path = revoke_path(&own, "team dashboard");
    let (_, stranger) = app.signed_in(Role::Viewer).await;
    let refused = stranger.post(&path, &[]).await;
    assert_eq!(refused.status(), 404);
    assert_eq!(
        list_users(&app, &secret).await.0,
        403,
        "a team lead's token cannot list the organization's members"
    );

    // The owner revokes it from the account page and lands back there.
    let revoked = owner.post(&path, &[]).await;
    assert_eq!(revoked.status(), 303);
    assert_eq!(location(&revoked), format!("/accounts/{}#tokens", lead.id));
    let (status, _) = list_users(&app, &secret).await;
    assert_eq!(status, 401);
    let revocation = app
        .audit_records(Filter::default())
        .await
        .into_iter()
        .find(|r| r.action == "token.revoked")
        .expect("the revocation is audited");
    assert_ne!(revocation.actor_name, "lead-tokens");
}

#[tokio::test]
async fn an_expired_token_stops_at_its_expiry_and_the_scheduler_records_it_once() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let page = session
        .post("/tokens", &[("name", "short lived"), ("lifetime", "7")])
        .await
        .text()
        .await
        .unwrap();
    let secret = secret_in(&page);
    assert_eq!(list_users(&app, &secret).await.0, 200);

    app.state
        .clock
        .advance(std::time::Duration::from_secs(8 * 86_400));
    assert_eq!(
        list_users(&app, &secret).await,
        (401, "authentication_error".to_owned())
    );
    assert_eq!(
        orgkeeper::jobs::run_token_expiry(&app.state).await.unwrap(),
        1
    );
    assert_eq!(
        orgkeeper::jobs::run_token_expiry(&app.state).await.unwrap(),
        0
    );
    let expired: Vec<_> = app
        .audit_records(Filter::default())
        .await
        .into_iter()
        .filter(|r| r.action == "token.expired")
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].target_label.as_deref(), Some("short lived"));
}

#[tokio::test]
async fn the_command_line_creates_lists_and_revokes_tokens_on_the_running_servers_database() {
    let app = spawn_app().await;
    app.create_account("deployer", Role::Admin, &[]).await;

    let (ok, out, err) = app.orgkeeper(
        &[
            "token",
            "create",
            "ci",
            "--account",
            "deployer",
            "--read-only",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let secret = out.lines().last().unwrap().trim().to_owned();
    assert!(secret.starts_with("orgk_"), "{out}");
    assert_eq!(list_users(&app, &secret).await.0, 200);

    // Refusals are explained and change nothing.
    let (ok, out, err) = app.orgkeeper(&["token", "create", "ci", "--account", "deployer"], None);
    assert!(!ok);
    assert!(
        format!("{out}{err}").contains("already exists"),
        "{out}{err}"
    );
    let (ok, _, err) = app.orgkeeper(
        &[
            "token",
            "create",
            "forever",
            "--account",
            "deployer",
            "--never-expires",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("Only owners"), "{err}");

    let (ok, listed, err) = app.orgkeeper(&["token", "list"], None);
    assert!(ok, "{err}");
    assert!(
        listed.contains("ci") && listed.contains("deployer"),
        "{listed}"
    );
    assert!(listed.contains("read-only"), "{listed}");
    assert!(!listed.contains(&secret));

    let (ok, out, err) = app.orgkeeper(&["token", "revoke", "ci"], None);
    assert!(ok, "{out}{err}");
    assert_eq!(list_users(&app, &secret).await.0, 401);
    let actions = app.audit_actions().await;
    assert!(actions.contains(&"token.created".to_owned()));
    assert!(actions.contains(&"token.revoked".to_owned()));
}

#[tokio::test]
async fn owners_connect_a_provider_and_map_groups_on_the_scim_page() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;

    let created = owner
        .post("/scim/tokens", &[("name", "okta"), ("lifetime", "365")])
        .await;
    assert_eq!(created.status(), 200);
    let page = created.text().await.unwrap();
    let secret = secret_in(&page);
    assert!(secret.starts_with("orgk_scim_"), "{secret}");
    assert!(page.contains("/scim/v2</code>"), "the base URL to paste");

    // The provider's requests, accepted and refused, are on the page afterwards.
    let http = reqwest::Client::new();
    let ok = http
        .get(app.url("/scim/v2/Users?count=1"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = http
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({ "displayName": "No Address" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let (_, page) = owner.get_text("/scim").await;
    assert!(
        page.contains("<code>POST /scim/v2/Users</code> from SCIM (okta)"),
        "{page}"
    );
    assert!(page.contains("Give the person an e-mail address"), "{page}");
    assert!(!page.contains(&secret));

    // A mapping that gives nothing is refused with what was typed kept; a real one is listed.
    let empty = owner
        .post("/scim/mappings", &[("group", "Engineering"), ("role", "")])
        .await;
    assert_eq!(empty.status(), 422);
    let page = empty.text().await.unwrap();
    assert!(page.contains("a mapping that gives nothing does nothing"));
    assert!(page.contains("value=\"Engineering\""));
    let workspace = app.first_workspace_id().await;
    let mapped = owner
        .post(
            "/scim/mappings",
            &[
                ("group", "Engineering"),
                ("role", "developer"),
                ("workspace", workspace.as_str()),
                ("workspace_role", "workspace_developer"),
            ],
        )
        .await;
    assert_eq!(mapped.status(), 303);
    let mappings = orgkeeper::service::scim::mappings(&app.state)
        .await
        .unwrap();
    assert_eq!(mappings.len(), 1);
    assert_eq!(mappings[0].workspaces.len(), 1);
    let (_, page) = owner.get_text("/scim").await;
    assert!(page.contains("<code>Engineering</code>"));

    // An admin may not reach the page or map groups.
    let (_, admin) = app.signed_in(Role::Admin).await;
    assert_eq!(admin.get("/scim").await.status(), 403);
    let denied = admin
        .post("/scim/mappings", &[("group", "Sales"), ("role", "user")])
        .await;
    assert_eq!(denied.status(), 403);
    assert_eq!(
        orgkeeper::service::scim::mappings(&app.state)
            .await
            .unwrap()
            .len(),
        1
    );
}
