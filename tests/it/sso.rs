//! Single sign-on against a real OpenID Connect provider: the certified `oidc-provider` package
//! from npm (tests/oidc-provider/), started on a loopback port by this harness, driven end to
//! end in headless Chromium for the happy path and over plain HTTP for the refusals. Also the
//! trusted proxy header, from a trusted (127.0.0.1) and an untrusted (127.0.0.2) address.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::webdriver::Browser;
use crate::support::*;
use orgkeeper::audit::{Filter, Outcome, Record};
use orgkeeper::auth::{accounts, sso, Role};
use orgkeeper::config::OidcSettings;
use orgkeeper::simulator::{self, SimulatorOptions};
use serde_json::json;
use tokio::net::TcpListener;

const CLIENT_ID: &str = "orgkeeper-test";
const CLIENT_SECRET: &str = "test-client-secret-never-logged-5b2f";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// Installs the provider's npm packages once (`npm ci`, as `.ci/run` does). Fails loudly
/// with what to install: a skipped test would look like a passing one.
fn ensure_provider_installed() {
    static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed {
        return;
    }
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| {
                panic!("the single sign-on tests need node and npm (sudo apt-get install nodejs npm): {e}")
            });
        assert!(
            status.success(),
            "`npm ci` in {} failed; the single sign-on tests need the oidc-provider package",
            dir.display()
        );
    }
    *installed = true;
}

/// The provider process; killed when dropped.
struct Idp {
    issuer: String,
    child: Child,
    http: reqwest::Client,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    async fn start(redirect_uri: &str) -> Idp {
        ensure_provider_installed();
        let settings = json!({
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "redirectUri": redirect_uri,
            "accounts": {
                "alice": { "email": "alice@example.test", "name": "Alice", "groups": ["orgkeeper-admins", "everyone"] },
                "olivia": { "email": "olivia@example.test", "name": "Olivia", "groups": ["orgkeeper-owners"] },
                "mallory": { "email": "mallory@example.test", "name": "Mallory", "groups": ["contractors"] },
            },
        });
        let mut child = Command::new("node")
            .arg(provider_dir().join("provider.mjs"))
            .arg(settings.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node for the test identity provider (sudo apt-get install nodejs): {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("issuer ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(issuer.to_owned());
                    }
                }
            }
        });
        let issuer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the identity provider did not start within 60 s")
            .expect("the identity provider exited before listening");
        Idp {
            issuer,
            child,
            http: reqwest::Client::new(),
        }
    }

    /// Makes the provider's next token answer carry a bad ID token.
    async fn spoil_next_token(&self, kind: &str) {
        let response = self
            .http
            .post(format!("{}/_test/next-token", self.issuer))
            .body(json!({ "kind": kind }).to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    async fn set_groups(&self, login: &str, groups: &[&str]) {
        let response = self
            .http
            .post(format!("{}/_test/accounts", self.issuer))
            .body(json!({ "login": login, "groups": groups }).to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

struct Sso {
    app: TestApp,
    idp: Idp,
}

/// An app with OpenID Connect set up against a fresh provider, and group mappings.
async fn spawn_sso(configure: impl FnOnce(&mut orgkeeper::config::ServerConfig)) -> Sso {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let redirect_url = format!("{address}/auth/oidc/callback");
    let idp = Idp::start(&redirect_url).await;
    let simulator = simulator::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimulatorOptions::default(),
    )
    .await
    .unwrap();
    let mut config = live_config(&simulator);
    config.public_url = Some(address);
    config.sso.oidc = Some(OidcSettings {
        issuer: idp.issuer.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(orgkeeper::config::ClientSecret::new(CLIENT_SECRET)),
        scopes: vec!["openid".into(), "email".into(), "groups".into()],
        groups_claim: "groups".into(),
        display_name: "Example SSO".into(),
        redirect_url,
    });
    configure(&mut config);
    let app = spawn_app_on(listener, config, simulator, None).await;
    app.map_group("orgkeeper-admins", Role::Admin, &[]).await;
    app.map_group("orgkeeper-owners", Role::Owner, &[]).await;
    Sso { app, idp }
}

/// Follows the provider's redirects (signing in with `login_hint`) until it sends the browser
/// back to Orgkeeper; returns that callback URL, not yet visited.
async fn callback_url(app: &TestApp, session: &Session, login: &str) -> String {
    let start = session.get("/auth/oidc/start?next=/members").await;
    assert_eq!(start.status(), 303, "the start redirects to the provider");
    let mut url = format!("{}&login_hint={login}", location(&start));
    for _ in 0..10 {
        if url.starts_with(&app.address) {
            return url;
        }
        let response = session.http.get(&url).send().await.unwrap();
        assert!(
            response.status().is_redirection(),
            "the provider answered {} at {url}",
            response.status()
        );
        let next = location(&response);
        url = reqwest::Url::parse(&url)
            .unwrap()
            .join(&next)
            .unwrap()
            .to_string();
    }
    panic!("the provider never sent the browser back");
}

async fn sign_in(app: &TestApp, login: &str) -> (Session, reqwest::Response) {
    let session = app.client();
    let url = callback_url(app, &session, login).await;
    let response = session.http.get(&url).send().await.unwrap();
    (session, response)
}

async fn records(app: &TestApp, action: &str) -> Vec<Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

/// The last `auth.login_failed` record's reason.
async fn last_failure(app: &TestApp) -> Record {
    records(app, "auth.login_failed")
        .await
        .into_iter()
        .next()
        .expect("a failed sign-in is on record")
}

#[tokio::test]
async fn signing_in_through_the_provider_in_a_browser_creates_the_account_and_a_fresh_session() {
    let Sso { app, idp } = spawn_sso(|_| {}).await;
    // The first owner (who maps the groups) exists before anyone signs in through the provider.
    app.create_account("root", Role::Owner, &[]).await;
    let browser = Browser::launch()
        .await
        .unwrap_or_else(|e| panic!("cannot start the browser: {e}"));

    browser.goto(&app.url("/members")).await;
    browser
        .wait_for_url("/login", Duration::from_secs(10))
        .await;
    let before = browser.cookie("orgkeeper_session").await.map(|c| c.value);
    let button = browser
        .wait_for("#sso-sign-in", Duration::from_secs(10))
        .await;
    assert_eq!(button.text().await, "Sign in with Example SSO");
    browser.save_screenshot("sso/login page").await;
    button.click().await;

    // The provider's own sign-in form.
    browser.wait_for("#login", Duration::from_secs(10)).await;
    assert!(browser.current_url().await.starts_with(&idp.issuer));
    browser.find("#login").await.send_keys("alice").await;
    browser.find("#sign-in").await.click().await;

    browser
        .wait_for_url("/members", Duration::from_secs(15))
        .await;
    browser
        .wait_for_text(".user-name", "alice@example.test", Duration::from_secs(10))
        .await;
    browser.save_screenshot("sso/signed in").await;
    assert!(
        browser
            .try_find("a[href='/account/password']")
            .await
            .is_none(),
        "no password to change for an identity-provider account"
    );
    let session_cookie = browser
        .cookie("orgkeeper_session")
        .await
        .expect("signed in");
    assert_ne!(
        Some(session_cookie.value),
        before,
        "a new session id at sign-in"
    );
    assert_eq!(session_cookie.same_site.as_deref(), Some("Strict"));
    assert!(
        browser.cookie("orgkeeper_oidc").await.is_none(),
        "the state cookie is spent"
    );

    let account = accounts::get_by_username(&app.db, "alice@example.test")
        .await
        .unwrap();
    assert_eq!(account.role, Role::Admin);
    assert_eq!(account.identity_provider.as_deref(), Some("oidc"));
    let created = records(&app, "account.created").await;
    assert_eq!(created[0].details["method"], "oidc");
    let login = &records(&app, "auth.login").await[0];
    assert_eq!(login.actor_id, Some(account.id));
    assert_eq!(
        login.details["groups"],
        json!(["orgkeeper-admins", "everyone"])
    );
    assert!(browser.console_logs().await.is_empty());

    // The owner sees the mappings and the new account on the Accounts page.
    browser.delete_cookies().await;
    browser.goto(&app.url("/login")).await;
    browser
        .wait_for("input[name=username]", Duration::from_secs(10))
        .await
        .send_keys("root")
        .await;
    browser
        .find("input[name=password]")
        .await
        .send_keys(PASSWORD)
        .await;
    browser
        .find("form[action='/login'] button[type=submit]")
        .await
        .click()
        .await;
    browser
        .wait_for_text(".user-name", "root", Duration::from_secs(10))
        .await;
    browser.goto(&app.url("/accounts#groups")).await;
    let groups = browser
        .wait_for("#groups table", Duration::from_secs(10))
        .await;
    let text = groups.text().await;
    assert!(
        text.contains("orgkeeper-admins") && text.contains("Admin"),
        "{text}"
    );
    assert!(
        browser
            .page_source()
            .await
            .contains("single sign-on</span>"),
        "the account is marked"
    );
    browser.save_screenshot("sso/accounts groups").await;
}

#[tokio::test]
async fn a_provider_session_follows_the_local_rules_for_timeouts_and_the_password_form() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let (session, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("url=/members"),
        "continues where the person was going: {body}"
    );
    assert_eq!(session.get("/members").await.status(), 200);

    // Idle timeout, from the same session code as password sign-in.
    app.state.clock.advance(Duration::from_secs(31 * 60));
    let after_idle = session.get("/members").await;
    assert_eq!(after_idle.status(), 303);
    assert!(location(&after_idle).starts_with("/login"));

    // The account has no password: the form does not sign it in.
    let password = app.client().login("alice@example.test", PASSWORD).await;
    assert_eq!(password.status(), 401);
}

#[tokio::test]
async fn a_forged_or_foreign_state_is_refused_with_a_page_and_a_record() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let session = app.client();
    let url = callback_url(&app, &session, "alice").await;

    let forged = url.replace("state=", "state=forged");
    let response = session.http.get(&forged).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("This sign-in was not started in this browser"));
    assert_eq!(last_failure(&app).await.details["reason"], "wrong_state");

    // The genuine URL in another browser (no state cookie) is refused too.
    let other = app.client();
    let response = other.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(last_failure(&app).await.details["reason"], "wrong_state");
    assert!(accounts::find_by_username(&app.db, "alice@example.test")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let session = app.client();
    let url = callback_url(&app, &session, "alice").await;
    assert_eq!(session.http.get(&url).send().await.unwrap().status(), 200);

    // The same answer again: its state was used up.
    let again = session.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(last_failure(&app).await.details["reason"], "wrong_state");

    // The old code under a freshly started sign-in: the provider refuses it.
    let attacker = app.client();
    let fresh = callback_url(&app, &attacker, "mallory").await;
    let code = |u: &str| {
        reqwest::Url::parse(u)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    };
    let replay = fresh.replace(&code(&fresh), &code(&url));
    let response = attacker.http.get(&replay).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body = response.text().await.unwrap();
    assert!(body.contains("refused to complete the sign-in"), "{body}");
    let failure = last_failure(&app).await;
    assert_eq!(failure.details["reason"], "code_refused");
    assert!(failure.details["error"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
}

#[tokio::test]
async fn id_tokens_with_a_wrong_audience_an_expiry_in_the_past_a_future_issue_time_or_a_bad_signature_are_refused(
) {
    let Sso { app, idp } = spawn_sso(|_| {}).await;
    for (kind, expected) in [
        ("wrong_audience", "audience"),
        ("expired", "expired"),
        ("issued_in_the_future", "issued in the future"),
        ("bad_signature", "signature"),
    ] {
        idp.spoil_next_token(kind).await;
        let (session, response) = sign_in(&app, "alice").await;
        assert_eq!(response.status(), 401, "{kind}");
        let body = response.text().await.unwrap();
        assert!(body.contains("could not be trusted"), "{kind}: {body}");
        let failure = last_failure(&app).await;
        assert_eq!(failure.details["reason"], "invalid_id_token", "{kind}");
        let error = failure.details["error"].as_str().unwrap().to_lowercase();
        assert!(error.contains(expected), "{kind}: {error}");
        assert_eq!(
            session.get("/members").await.status(),
            303,
            "{kind}: not signed in"
        );
    }
    assert!(accounts::find_by_username(&app.db, "alice@example.test")
        .await
        .unwrap()
        .is_none());
    // The client secret went to the provider only: never to the log or the audit trail.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.contains(CLIENT_SECRET));
    let all = app.audit_records(Filter::default()).await;
    assert!(all
        .iter()
        .all(|r| !r.details.to_string().contains(CLIENT_SECRET)));
}

#[tokio::test]
async fn someone_whose_groups_are_not_mapped_is_asked_to_see_an_owner() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let (session, response) = sign_in(&app, "mallory").await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("Ask an owner for access"), "{body}");
    assert!(
        body.contains("contractors"),
        "shows the groups that were seen"
    );
    let failure = last_failure(&app).await;
    assert_eq!(failure.details["reason"], "no_mapped_group");
    assert_eq!(failure.outcome, Outcome::Denied);
    assert_eq!(failure.actor_name, "mallory@example.test");
    assert!(accounts::find_by_username(&app.db, "mallory@example.test")
        .await
        .unwrap()
        .is_none());
    assert_eq!(session.get("/members").await.status(), 303);
}

#[tokio::test]
async fn turning_a_mapping_off_ends_the_sessions_it_granted_and_is_audited() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let (alice, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 200);
    assert_eq!(alice.get("/members").await.status(), 200);
    let (owner, response) = sign_in(&app, "olivia").await;
    assert_eq!(response.status(), 200);
    let (_, page) = owner.get_text("/accounts").await;
    assert!(
        page.contains("orgkeeper-admins"),
        "the mapping is on the Accounts page"
    );

    let mapping = sso::list_mappings(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.group_name == "orgkeeper-admins")
        .unwrap();
    let response = owner
        .post(&format!("/sso/groups/{}/disable", mapping.id), &[])
        .await;
    assert_eq!(response.status(), 303);

    let ended = alice.get("/members").await;
    assert_eq!(ended.status(), 303, "alice's session ended");
    let account = accounts::get_by_username(&app.db, "alice@example.test")
        .await
        .unwrap();
    assert!(account.disabled);
    let change = &records(&app, "sso.mapping_changed").await;
    let outcome = change.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(outcome.details["before"]["enabled"], true);
    assert_eq!(outcome.details["after"]["enabled"], false);
    assert_eq!(outcome.actor_name, "olivia@example.test");
    let disabled = &records(&app, "account.disabled").await[0];
    assert_eq!(
        disabled.target_id.as_deref(),
        Some(account.id.to_string().as_str())
    );

    // Signing in again is refused with the same clear page.
    let (_, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 403);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Ask an owner for access"));
    assert_eq!(
        last_failure(&app).await.details["reason"],
        "no_mapped_group"
    );

    // Back on: the next sign-in works again.
    owner
        .post(&format!("/sso/groups/{}/enable", mapping.id), &[])
        .await;
    let (again, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 200);
    assert_eq!(again.get("/members").await.status(), 200);
}

#[tokio::test]
async fn owners_add_and_remove_mappings_on_the_accounts_page_with_before_and_after() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let (owner, _) = sign_in(&app, "olivia").await;

    // A team lead mapping without a workspace is refused and explained beside the form,
    // which keeps what was typed; nothing is added.
    let refused = owner
        .post("/sso/groups", &[("group", "leads"), ("role", "team_lead")])
        .await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.unwrap();
    let form = page
        .split("id=\"map-group\"")
        .nth(1)
        .expect("the group form")
        .split("</details>")
        .next()
        .unwrap();
    assert!(
        form.contains("id=\"mapping-error\"")
            && form.contains("A team lead needs at least one workspace"),
        "the reason is next to the form: {form}"
    );
    assert!(form.contains("value=\"leads\""), "the group stays: {form}");
    assert!(
        form.contains("value=\"team_lead\" selected"),
        "the role stays: {form}"
    );
    assert_eq!(sso::list_mappings(&app.db).await.unwrap().len(), 2);

    let workspace = app.first_workspace_id().await;
    owner
        .post(
            "/sso/groups",
            &[
                ("group", "leads"),
                ("role", "team_lead"),
                ("workspace", &workspace),
            ],
        )
        .await;
    let added = records(&app, "sso.mapping_added").await;
    let outcome = added.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(outcome.details["before"], serde_json::Value::Null);
    assert_eq!(outcome.details["after"]["role"], "team_lead");
    assert_eq!(outcome.details["after"]["workspaces"], json!([workspace]));
    let leads = sso::list_mappings(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.group_name == "leads")
        .expect("the mapping was added");

    owner
        .post(&format!("/sso/groups/{}/delete", leads.id), &[])
        .await;
    let removed = records(&app, "sso.mapping_removed").await;
    let outcome = removed.iter().find(|r| r.outcome == Outcome::Ok).unwrap();
    assert_eq!(outcome.details["before"]["group"], "leads");
    assert_eq!(outcome.details["after"], serde_json::Value::Null);
    assert!(sso::find_mapping(&app.db, leads.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_role_follows_the_groups_at_each_sign_in() {
    let Sso { app, idp } = spawn_sso(|_| {}).await;
    let workspace = app.first_workspace_id().await;
    app.map_group("leads", Role::TeamLead, std::slice::from_ref(&workspace))
        .await;
    let (_, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 200);

    idp.set_groups("alice", &["leads"]).await;
    let (session, response) = sign_in(&app, "alice").await;
    assert_eq!(response.status(), 200);
    let account = accounts::get_by_username(&app.db, "alice@example.test")
        .await
        .unwrap();
    assert_eq!(account.role, Role::TeamLead);
    assert_eq!(account.workspaces, vec![workspace]);
    let changed = &records(&app, "account.role_changed").await[0];
    assert_eq!(changed.details["before"], "admin");
    assert_eq!(changed.details["after"], "team_lead");
    assert_eq!(
        session.get("/members").await.status(),
        403,
        "team leads see no directory"
    );
}

#[tokio::test]
async fn with_local_passwords_off_only_the_break_glass_owner_uses_a_password() {
    let Sso { app, idp: _idp } = spawn_sso(|config| {
        config.sso.local_passwords = false;
        config.sso.break_glass_owner = Some("root".into());
    })
    .await;
    app.create_account("root", Role::Owner, &[]).await;
    app.create_account("bob", Role::Admin, &[]).await;

    let (_, page) = app.client().get_text("/login").await;
    assert!(page.contains("break-glass owner only"));
    let refused = app.client().login("bob", PASSWORD).await;
    assert_eq!(refused.status(), 401);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Password sign-in is turned off"));
    assert_eq!(last_failure(&app).await.details["reason"], "passwords_off");

    let root = app.client().login("root", PASSWORD).await;
    assert_eq!(root.status(), 303, "the break-glass owner signs in");
}

/// A client whose connections come from `ip` (any 127.x address reaches the server).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(ip.parse().unwrap()))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_proxy_header_is_believed_from_the_trusted_proxy_only() {
    let app = spawn_behind_proxy().await;
    let workspace = app.first_workspace_id().await;
    app.map_group("leads", Role::TeamLead, &[workspace]).await;

    let proxy = client_from("127.0.0.1");
    let response = proxy
        .get(app.url("/members"))
        .header("x-forwarded-email", "carol@example.test")
        .header("x-forwarded-groups", "staff, other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("carol@example.test"));
    let carol = accounts::get_by_username(&app.db, "carol@example.test")
        .await
        .unwrap();
    assert_eq!(carol.role, Role::Viewer);
    assert_eq!(carol.identity_provider.as_deref(), Some("proxy"));
    let logins = records(&app, "auth.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].details["method"], "proxy");

    // Further requests reuse the session: no new sign-in per request.
    let again = proxy
        .get(app.url("/members"))
        .header("x-forwarded-email", "carol@example.test")
        .header("x-forwarded-groups", "staff|other")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(records(&app, "auth.login").await.len(), 1);

    // New groups from the proxy apply at the next request.
    let demoted = proxy
        .get(app.url("/members"))
        .header("x-forwarded-email", "carol@example.test")
        .header("x-forwarded-groups", "leads")
        .send()
        .await
        .unwrap();
    assert_eq!(demoted.status(), 403, "team leads do not see the directory");
    let carol = accounts::get_by_username(&app.db, "carol@example.test")
        .await
        .unwrap();
    assert_eq!(carol.role, Role::TeamLead);
    let restored = proxy
        .get(app.url("/members"))
        .header("x-forwarded-email", "carol@example.test")
        .header("x-forwarded-groups", "staff")
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 200);
    let logins_before = records(&app, "auth.login").await.len();

    // The same header from another address is refused and audited.
    let elsewhere = client_from("127.0.0.2");
    let forged = elsewhere
        .get(app.url("/members"))
        .header("x-forwarded-email", "carol@example.test")
        .header("x-forwarded-groups", "staff")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged
        .text()
        .await
        .unwrap()
        .contains("did not come through the trusted proxy"));
    let refusal = &records(&app, "security.proxy_header_refused").await[0];
    assert_eq!(refusal.source_ip.as_deref(), Some("127.0.0.2"));
    assert_eq!(refusal.details["claimed"], "carol@example.test");
    assert_eq!(records(&app, "auth.login").await.len(), logins_before);

    // A flood from there is counted, not recorded request by request.
    for _ in 0..10 {
        let status = elsewhere
            .get(app.url("/members"))
            .header("x-forwarded-email", "carol@example.test")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403);
    }
    assert_eq!(
        records(&app, "security.proxy_header_refused").await.len(),
        5
    );

    // Without the header, the other address just gets the sign-in page.
    let plain = elsewhere.get(app.url("/members")).send().await.unwrap();
    assert_eq!(plain.status(), 303);

    // From the proxy, an unmapped person gets the clear page.
    let stranger = client_from("127.0.0.1")
        .get(app.url("/members"))
        .header("x-forwarded-email", "eve@example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    assert!(stranger
        .text()
        .await
        .unwrap()
        .contains("Ask an owner for access"));
}

#[tokio::test]
async fn a_provider_that_redirects_is_not_followed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // Where a redirect would lead: counts every request it gets.
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_url = format!("http://{}", elsewhere.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "{}" }
        });
        axum::serve(elsewhere, app).await.unwrap();
    });
    // The "provider": every answer is a redirect there.
    let redirecting = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", redirecting.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            let to = format!("{elsewhere_url}/.well-known/openid-configuration");
            async move { axum::response::Redirect::temporary(&to) }
        });
        axum::serve(redirecting, app).await.unwrap();
    });

    let app = spawn_app_configured(Default::default(), |config| {
        config.sso.oidc = Some(OidcSettings {
            issuer,
            client_id: CLIENT_ID.into(),
            client_secret: Some(orgkeeper::config::ClientSecret::new(CLIENT_SECRET)),
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            display_name: "Example SSO".into(),
            redirect_url: "http://127.0.0.1:1/auth/oidc/callback".into(),
        });
    })
    .await;

    let response = app.client().get("/auth/oidc/start").await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("The identity provider could not be reached"),
        "{body}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    assert_eq!(
        last_failure(&app).await.details["reason"],
        "provider_unreachable"
    );
}

/// Sign-ins in progress live in the browser's signed cookie, so no number of anonymous starts
/// can push out someone's sign-in (there used to be a table of 10,000, oldest out first).
#[tokio::test]
async fn a_flood_of_started_sign_ins_does_not_cancel_someone_elses() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let session = app.client();
    let url = callback_url(&app, &session, "alice").await;
    let oidc = app.state.oidc.clone().expect("OpenID Connect is set up");
    for _ in 0..10_001 {
        oidc.start("/".into(), app.state.clock.now()).await.unwrap();
    }
    let response = session.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(session.get("/members").await.status(), 200, "signed in");
    // A callback is still good for one use only.
    let again = session.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 401);
}

/// Anyone can call the callback; its failures are recorded like other refusals: a few per
/// address and minute, the rest counted into one summary.
#[tokio::test]
async fn anonymous_callbacks_leave_a_few_records_and_a_count() {
    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let anonymous = app.client();
    for _ in 0..300 {
        let response = anonymous.get("/auth/oidc/callback?state=x&code=y").await;
        assert_eq!(response.status(), 401);
    }
    let failed = records(&app, "auth.login_failed").await;
    assert_eq!(failed.len(), 5, "five one by one");
    app.state
        .clock
        .advance(orgkeeper::service::refusals::WINDOW);
    anonymous.get("/auth/oidc/callback?state=x&code=y").await;
    let failed = records(&app, "auth.login_failed").await;
    let summary = failed
        .iter()
        .find(|r| r.details["summary"] == true)
        .expect("a summary");
    assert_eq!(summary.details["suppressed"], 295);
    assert_eq!(failed.len(), 7);
}

/// While single sign-on is off the group form stays folded (a mapping would do nothing yet)
/// and says when it takes effect; with it on, the form is open.
#[tokio::test]
async fn the_group_form_is_folded_while_single_sign_on_is_off() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;

    let (status, page) = owner.get_text("/accounts").await;

    assert_eq!(status, 200);
    assert!(page.contains("<details id=\"map-group\">"), "{page}");
    assert!(page.contains("takes effect once single sign-on is set up"));

    let Sso { app, idp: _idp } = spawn_sso(|_| {}).await;
    let (owner, _) = sign_in(&app, "olivia").await;
    let (_, page) = owner.get_text("/accounts").await;
    assert!(page.contains("<details id=\"map-group\" open>"), "{page}");
}
