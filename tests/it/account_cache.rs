//! Accounts and sessions are kept in memory by the running server; every change to an
//! account reaches it at once when made through the server, and within
//! `accounts_recheck` when made by another process on the same database file (here 0: every
//! request reads `account_changes`; the in-process tests set an hour, so only the service
//! layer's own forgetting can explain what they see).

use std::time::Duration;

use orgkeeper::auth::Role;
use orgkeeper::simulator::{self, SimulatorOptions};
use tokio::net::TcpListener;

use crate::support::{live_config, location, spawn_app_with, Session, TestApp};

async fn app_rechecking_every(recheck: Duration) -> TestApp {
    let simulator = simulator::start(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        SimulatorOptions::default(),
    )
    .await
    .unwrap();
    let mut config = live_config(&simulator);
    config.accounts_recheck = recheck;
    spawn_app_with(config, simulator, None).await
}

/// `orgkeeper ARGS` as a separate process on the running server's database file.
fn orgkeeper(app: &TestApp, args: &[&str], stdin: Option<&str>) {
    let (ok, out, err) = app.orgkeeper(args, stdin);
    assert!(ok, "orgkeeper {args:?}: {out}{err}");
}

async fn is_signed_in(session: &Session) -> bool {
    let response = session.get("/members").await;
    match response.status().as_u16() {
        200 => true,
        303 if location(&response).starts_with("/login") => false,
        other => panic!("GET /members answered {other}"),
    }
}

#[tokio::test]
async fn a_command_line_disable_ends_that_persons_sessions_in_the_running_server() {
    let app = app_rechecking_every(Duration::ZERO).await;
    let (account, viewer) = app.signed_in(Role::Viewer).await;
    let (_, other) = app.signed_in(Role::Viewer).await;
    // Both accounts are in the server's memory now.
    assert!(is_signed_in(&viewer).await);
    assert!(is_signed_in(&other).await);

    orgkeeper(&app, &["user", "disable", &account.username], None);

    assert!(
        !is_signed_in(&viewer).await,
        "the next request after the command line disabled the account is refused"
    );
    assert!(is_signed_in(&other).await, "no one else is signed out");
    let again = app.client();
    let refused = again
        .login(&account.username, crate::support::PASSWORD)
        .await;
    assert_ne!(refused.status(), 303, "a disabled account cannot sign in");
}

#[tokio::test]
async fn a_command_line_password_change_ends_that_persons_sessions_in_the_running_server() {
    let app = app_rechecking_every(Duration::ZERO).await;
    let (account, viewer) = app.signed_in(Role::Viewer).await;
    assert!(is_signed_in(&viewer).await);

    orgkeeper(
        &app,
        &["user", "passwd", &account.username, "--password-stdin"],
        Some("another long enough password\n"),
    );

    assert!(!is_signed_in(&viewer).await);
    let fresh = app.client();
    let response = fresh
        .login(&account.username, "another long enough password")
        .await;
    assert_eq!(response.status(), 303, "the new password signs in");
    assert!(is_signed_in(&fresh).await);
}

#[tokio::test]
async fn a_role_change_on_the_page_applies_at_the_next_request() {
    let app = app_rechecking_every(Duration::from_secs(3600)).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (account, admin) = app.signed_in(Role::Admin).await;
    assert_eq!(admin.get("/members").await.status(), 200);

    let response = owner
        .post(
            &format!("/accounts/{}/role", account.id),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(response.status(), 303);

    // A role change ends the account's sessions: the old powers do not outlive it.
    assert!(!is_signed_in(&admin).await);
    assert!(is_signed_in(&owner).await, "the owner who changed it stays");
    // Signed in again, the account has its new role.
    let viewer = app.login_as(&account.username).await;
    assert_eq!(viewer.get("/accounts").await.status(), 403);
}

#[tokio::test]
async fn a_workspace_change_on_the_page_applies_to_the_team_leads_next_request() {
    let app = app_rechecking_every(Duration::from_secs(3600)).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (account, lead) = app.signed_in(Role::TeamLead).await;
    let mine = account.workspaces[0].clone();
    let theirs = app.other_workspace(&mine);
    let other_page = format!("/workspaces/{theirs}");
    assert_eq!(lead.get(&other_page).await.status(), 403);

    let response = owner
        .post(
            &format!("/accounts/{}/workspaces", account.id),
            &[("workspace", mine.as_str()), ("workspace", theirs.as_str())],
        )
        .await;
    assert_eq!(response.status(), 303);

    assert_eq!(
        lead.get(&other_page).await.status(),
        200,
        "the new workspace is readable at once, in the same session"
    );
}

#[tokio::test]
async fn a_password_reset_or_ending_sessions_on_the_page_signs_the_person_out_at_once() {
    let app = app_rechecking_every(Duration::from_secs(3600)).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (account, viewer) = app.signed_in(Role::Viewer).await;
    assert!(is_signed_in(&viewer).await);

    let response = owner
        .post(
            &format!("/accounts/{}/password", account.id),
            &[("password", "a brand new long password")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(
        !is_signed_in(&viewer).await,
        "a password reset ends sessions"
    );

    let viewer = app.client();
    let response = viewer
        .login(&account.username, "a brand new long password")
        .await;
    assert_eq!(response.status(), 303);
    assert!(is_signed_in(&viewer).await);
    let response = owner
        .post(&format!("/accounts/{}/end-sessions", account.id), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert!(!is_signed_in(&viewer).await, "ending sessions ends them");

    let viewer = app.client();
    let response = viewer
        .login(&account.username, "a brand new long password")
        .await;
    assert_eq!(response.status(), 303);
    let response = owner
        .post(&format!("/accounts/{}/disable", account.id), &[])
        .await;
    assert_eq!(response.status(), 303);
    assert!(!is_signed_in(&viewer).await, "disabling ends sessions");
}

#[tokio::test]
async fn a_sign_in_forgets_only_the_account_that_signed_in() {
    // The change log is read at every request, so nothing is missed, and nothing more is
    // forgotten than it names.
    let app = app_rechecking_every(Duration::ZERO).await;
    let (_, first) = app.signed_in(Role::Admin).await;
    let (second_account, second) = app.signed_in(Role::Viewer).await;
    assert!(is_signed_in(&first).await && is_signed_in(&second).await);
    assert_eq!(app.state.accounts_in_memory(), 2);

    // Someone else signs in (their row is written), then fails a sign-in: the others stay.
    let (third_account, _third) = app.signed_in(Role::Auditor).await;
    let _ = reqwest::Client::new()
        .post(format!("{}/login", app.address))
        .form(&[
            ("username", third_account.username.as_str()),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        app.state.accounts_in_memory() >= 2,
        "a sign-in emptied the cache: {}",
        app.state.accounts_in_memory()
    );

    // A command-line change to one account forgets that one, and it applies at once.
    orgkeeper(&app, &["user", "disable", &second_account.username], None);
    assert!(!is_signed_in(&second).await);
    assert!(is_signed_in(&first).await);
}
