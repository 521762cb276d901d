//! The second security and fault probe's findings (issue 26), each over real HTTP against the
//! real server, a real SQLite file and the simulator.

use crate::support::*;
use orgkeeper::anthropic::{ApiKeyStatus, OrgRole};
use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;

/// Values that broke, or could break, parsing and arithmetic: dates at chrono's limits,
/// decimals at `rust_decimal`'s, integers past every width, and things that are not numbers.
const HOSTILE: &[&str] = &[
    "-262143-01-01",
    "+262143-12-31",
    "262143-12-31",
    "9999-12-31",
    "0000-01-01",
    "2026-02-30",
    "2026-13",
    "-262143-01",
    "262143-12",
    "79228162514264337593543950335",
    "792281625142643375935439503.35",
    "-79228162514264337593543950335",
    "0.0000000000000000000000000001",
    "1e309",
    "NaN",
    "-1",
    "0",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "1.5",
    " ",
    "\u{661}\u{662}",
];

/// Where a number or a date goes in: (method, path, the field, other fields it needs).
type Input = (
    &'static str,
    String,
    &'static str,
    Vec<(&'static str, String)>,
);

fn numeric_inputs(workspace: &str, key: &str, user: &str) -> Vec<Input> {
    let custom = vec![("range", "custom".to_owned())];
    let from = vec![
        ("range", "custom".to_owned()),
        ("from", "2026-01-01".to_owned()),
    ];
    let get = |path: &str, field: &'static str, extra: Vec<(&'static str, String)>| {
        ("GET", path.to_owned(), field, extra)
    };
    let post = |path: &str, field: &'static str, extra: Vec<(&'static str, String)>| {
        ("POST", path.to_owned(), field, extra)
    };
    vec![
        get("/usage", "from", custom.clone()),
        get("/usage", "to", from.clone()),
        get("/usage.csv", "from", custom.clone()),
        get("/usage.csv", "to", from.clone()),
        get("/usage", "from&to", custom.clone()),
        get("/usage.csv", "from&to", custom.clone()),
        get("/usage", "sort", vec![]),
        get("/cost", "month", vec![]),
        get("/cost.csv", "month", vec![]),
        get("/claude-code", "days", vec![]),
        get("/members", "page", vec![]),
        get("/invites", "page", vec![]),
        get("/keys", "page", vec![]),
        get("/workspaces", "page", vec![]),
        get(&format!("/workspaces/{workspace}"), "members_page", vec![]),
        get("/audit", "page", vec![]),
        get("/audit", "since", vec![]),
        get("/audit", "until", vec![]),
        get("/audit/export", "since", vec![]),
        get(
            "/access-review",
            "at",
            vec![("workspace", workspace.to_owned())],
        ),
        get(
            "/access-review.csv",
            "at",
            vec![("workspace", workspace.to_owned())],
        ),
        post(
            "/budgets",
            "amount",
            vec![("scope", "org".into()), ("thresholds", "50".into())],
        ),
        post(
            "/budgets",
            "thresholds",
            vec![("scope", "org".into()), ("amount", "100".into())],
        ),
        post(
            "/limits/spend",
            "amount",
            vec![("scope", "organization".into())],
        ),
        post(
            "/limits/requests",
            "amount",
            vec![
                ("workspace", workspace.to_owned()),
                ("reason", "probe".into()),
            ],
        ),
        post(
            &format!("/limits/workspaces/{workspace}"),
            "value",
            vec![
                ("type", "requests_per_minute".into()),
                ("rate_limit_id", "rlg_probe".into()),
            ],
        ),
        post(&format!("/keys/{key}/schedule"), "grace_days", vec![]),
        get(&format!("/members/{user}/offboard/runs/"), "", vec![]),
        get("/audit/", "", vec![]),
        get("/accounts/", "", vec![]),
    ]
}

/// No number or date a person can put in a link or a form drops the connection or answers
/// with a server error: each is refused with a page that says what is wrong, or used.
#[tokio::test]
async fn no_numeric_or_date_input_drops_the_connection_or_fails_the_server() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let snapshot = app.state.org.snapshot();
    let workspace = app.first_workspace_id().await;
    let key = snapshot
        .keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active && k.workspace_id() == Some(workspace.as_str()))
        .expect("an active key")
        .id
        .clone();
    let user = snapshot
        .users
        .iter()
        .find(|u| u.role == OrgRole::Developer)
        .expect("a developer")
        .id
        .clone();
    let mut failures = Vec::new();
    for (method, path, field, extra) in numeric_inputs(&workspace, &key, &user) {
        for value in HOSTILE {
            for (who, session) in [("owner", &owner), ("team lead", &lead)] {
                let (url, response) = if field.is_empty() {
                    // A numeric path segment.
                    let url = format!("{path}{}", urlencode(value));
                    (
                        url.clone(),
                        session
                            .http
                            .get(format!("{}{url}", session.address))
                            .send()
                            .await,
                    )
                } else if method == "GET" {
                    let mut pairs: Vec<(&str, &str)> =
                        extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    pairs.extend(field.split('&').map(|name| (name, *value)));
                    let query = serde_urlencoded::to_string(&pairs).unwrap();
                    let url = format!("{path}?{query}");
                    (
                        url.clone(),
                        session
                            .http
                            .get(format!("{}{url}", session.address))
                            .send()
                            .await,
                    )
                } else {
                    let token = session.csrf().await;
                    let mut pairs: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
                    pairs.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
                    pairs.push((field, value));
                    let url = format!("{path} {field}={value}");
                    (
                        url,
                        session
                            .http
                            .post(format!("{}{path}", session.address))
                            .form(&pairs)
                            .send()
                            .await,
                    )
                };
                match response {
                    Err(error) => {
                        failures.push(format!("{who} {method} {url}: connection: {error}"))
                    }
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Pages, downloads, or a redirect after a change that was made.
                        let readable = (300..400).contains(&status)
                            || response
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .is_some_and(|v| {
                                    ["text/html", "text/csv", "application/x-ndjson"]
                                        .iter()
                                        .any(|t| v.starts_with(t))
                                });
                        let body = response.text().await.unwrap_or_default();
                        if status >= 500 || !readable {
                            failures.push(format!(
                                "{who} {method} {url}: {status} {}",
                                body.chars().take(160).collect::<String>()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Bad amounts are refused with a page that names the field and the allowed range, and what
/// was typed is kept.
#[tokio::test]
async fn an_amount_out_of_range_names_the_field_and_the_range_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    for amount in [
        "79228162514264337593543950335",
        "792281625142643375935439503.35",
        "1000000000.01",
    ] {
        let response = owner
            .post(
                "/budgets",
                &[
                    ("scope", "org"),
                    ("amount", amount),
                    ("thresholds", "50, 80"),
                ],
            )
            .await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 422, "{amount}: {body}");
        assert!(
            body.contains("$1,000,000,000"),
            "the allowed range is named: {body}"
        );
        assert!(body.contains(amount), "what was typed is kept: {amount}");
    }
    let (status, cost) = owner.get_text("/cost").await;
    assert_eq!(status, 200, "{cost}");
    let budgets = app
        .audit_records(Filter {
            action: Some("budget.set".into()),
            ..Default::default()
        })
        .await;
    assert!(
        budgets
            .iter()
            .all(|r| r.outcome != orgkeeper::audit::Outcome::Ok),
        "nothing was stored"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. The admin key, echoed by the upstream anywhere, reaches nobody.

fn no_key(what: &str, text: &str) {
    assert!(
        !text.contains(ADMIN_KEY) && !text.contains("TESTSECRET"),
        "the admin key leaked into {what}: {}",
        text.chars().take(400).collect::<String>()
    );
}

#[tokio::test]
async fn a_key_echoed_by_the_upstream_in_ids_types_codes_and_names_reaches_no_page_record_export_or_log(
) {
    use orgkeeper::simulator::{FaultKind, FaultSpec};
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let ws = app.first_workspace_id().await;
    // Names that hold the key, in successful answers.
    app.state
        .org
        .api()
        .create_workspace(ADMIN_KEY, None)
        .await
        .unwrap();
    let named =
        app.simulator
            .console_create_key(&format!("copy {ADMIN_KEY}"), &ws, &first_user(&app));
    app.sync().await;
    for path in ["/workspaces", "/keys", &format!("/keys/{named}")] {
        let (_, page) = owner.get_text(path).await;
        no_key(path, &page);
    }

    // Every answer now echoes the credential in the request-id header, the body's request_id,
    // error.type, error_code and message.
    app.simulator.faults().add(FaultSpec {
        kind: FaultKind::EchoCredential,
        method: None,
        path_prefix: None,
        rate: 1.0,
        times: None,
    });
    app.sync().await;
    let (_, overview) = lead.get_text("/").await;
    assert!(
        overview.contains("last refresh failed")
            || overview.contains("Last refresh failed")
            || overview.contains("failed"),
        "the failing sync is shown"
    );
    no_key("the team lead's overview", &overview);
    let (_, members) = viewer.get_text("/members").await;
    no_key("the viewer's members page", &members);
    let rename = owner
        .post(&format!("/keys/{named}/rename"), &[("name", "renamed")])
        .await;
    no_key("the rename's answer", &rename.text().await.unwrap());
    let (_, confirm) = owner.get_text(&format!("/keys/{named}/archive")).await;
    no_key("a confirmation that re-reads", &confirm);

    for record in app.audit_records(Filter::default()).await {
        no_key(
            "an audit record",
            &serde_json::to_string(&record.details).unwrap(),
        );
        no_key(
            "an audit record's request id",
            record.upstream_request_id.as_deref().unwrap_or(""),
        );
    }
    let (_, export) = owner.get_text("/audit/export?format=csv").await;
    no_key("the audit export", &export);
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    no_key("the server log", &logs);
}

#[tokio::test]
async fn an_upstream_refusal_of_a_read_is_a_refused_request_not_a_failed_change() {
    use orgkeeper::simulator::{FaultKind, FaultSpec};
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let key = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap()
        .id
        .clone();
    app.simulator.faults().add(FaultSpec {
        kind: FaultKind::EchoCredential,
        method: Some("GET".into()),
        path_prefix: Some("/v1/organizations/api_keys/".into()),
        rate: 1.0,
        times: None,
    });
    // The archive confirmation re-reads the key first.
    let (status, page) = owner.get_text(&format!("/keys/{key}/archive")).await;
    assert!(
        status == 400 || page.contains("Anthropic refused the request"),
        "{status}: {page}"
    );
    assert!(!page.contains("refused the change"), "{page}");
}

// ---------------------------------------------------------------------------------------------
// 2. Anonymous sign-in failures are flood-controlled, and a throttled address costs no hashing.

#[tokio::test]
async fn bad_passwords_leave_a_few_records_and_a_throttled_address_costs_no_password_check() {
    let app = spawn_app().await;
    app.create_account("target", Role::Viewer, &[]).await;
    let anonymous = app.client();
    for i in 0..120 {
        let response = anonymous
            .login(
                if i % 2 == 0 { "target" } else { "nobody" },
                "wrong password!",
            )
            .await;
        assert!(matches!(response.status().as_u16(), 401 | 429));
    }
    let failed = app
        .audit_records(Filter {
            action: Some("auth.login_failed".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(failed.len(), 5, "five one by one, the rest counted");
    let locked = app
        .audit_records(Filter {
            action: Some("auth.locked_out".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(locked.len(), 1, "the lockout itself is always recorded");

    // The address is over its allowance: further attempts are refused without hashing.
    let checks = app.state.throttle.checks();
    for _ in 0..20 {
        let response = anonymous.login("target", "wrong password!").await;
        assert_eq!(response.status(), 429);
    }
    assert_eq!(
        app.state.throttle.checks(),
        checks,
        "no password was checked"
    );

    app.state
        .clock
        .advance(orgkeeper::service::refusals::WINDOW);
    anonymous.login("nobody", "wrong password!").await;
    let failed = app
        .audit_records(Filter {
            action: Some("auth.login_failed".into()),
            ..Default::default()
        })
        .await;
    let summary = failed
        .iter()
        .find(|r| r.details["summary"] == true)
        .expect("a summary");
    assert_eq!(summary.details["suppressed"], 135);
    assert_eq!(summary.source_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn refusals_from_many_addresses_are_capped_per_minute_in_all() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.trust_proxy = true;
    })
    .await;
    let http = reqwest::Client::new();
    for address in 0..200 {
        for _ in 0..5 {
            let response = http
                .post(app.url("/logout"))
                .header("x-forwarded-for", format!("198.51.100.{address}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403);
        }
    }
    let refused = app
        .audit_records(Filter {
            action: Some("security.csrf_rejected".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(
        refused.len(),
        100,
        "at most 100 a minute from all addresses"
    );
    app.state
        .clock
        .advance(orgkeeper::service::refusals::WINDOW);
    http.post(app.url("/logout")).send().await.unwrap();
    let refused = app
        .audit_records(Filter {
            action: Some("security.csrf_rejected".into()),
            ..Default::default()
        })
        .await;
    let summary = refused
        .iter()
        .find(|r| r.details["summary"] == true)
        .expect("one summary");
    assert_eq!(summary.details["suppressed"], 900);
    assert_eq!(summary.details["addresses"], 180);
    assert_eq!(summary.details["top"].as_array().unwrap().len(), 10);
    assert_eq!(refused.len(), 102);
}

// ---------------------------------------------------------------------------------------------
// 5. Slack markup from people and the organization is escaped in webhook text.

#[tokio::test]
async fn slack_markup_in_a_reason_or_a_key_name_does_not_reach_the_webhook_as_markup() {
    use orgkeeper::config::ObservedAlert;
    let hook = Webhook::start(0).await;
    let app = spawn_app_configured(Default::default(), |config| {
        config.alert_webhook_url = Some(hook.url.clone());
        config.alert_observed = vec![ObservedAlert::KeyCreated];
    })
    .await;
    let ws = app.first_workspace_id().await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;
    let asked = lead
        .post(
            "/limits/requests",
            &[
                ("workspace", ws.as_str()),
                ("amount", "5000"),
                (
                    "reason",
                    "<!channel> please <http://evil.example|approve here>",
                ),
            ],
        )
        .await;
    assert_eq!(asked.status(), 303);
    let user = app.state.org.snapshot().users[0].id.clone();
    app.simulator
        .console(&user, "203.0.113.9")
        .create_key("<!channel> <http://evil.example|click here>", &ws);
    app.sync().await;
    let texts = hook.texts(2).await;
    for text in &texts {
        assert!(
            !text.contains("<!channel>") && !text.contains("<http"),
            "markup passed: {text}"
        );
    }
    assert!(texts.iter().any(|t| t.contains("&lt;!channel&gt; please &lt;http://evil.example|approve here&gt;")), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("&lt;!channel&gt; &lt;http://evil.example|click here&gt;")),
        "{texts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. One deadline for every Admin API call of a page or an action; lists that never end stop.

#[tokio::test]
async fn a_hung_rename_waits_one_deadline_in_all_not_one_per_call() {
    use orgkeeper::simulator::{FaultKind, FaultRule};
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(1);
    })
    .await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let key = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap()
        .id
        .clone();
    for method in ["GET", "POST"] {
        app.simulator.faults().inject(FaultRule {
            method: Some(method.into()),
            path_contains: Some("/api_keys/".into()),
            kind: FaultKind::Hang,
            times: 10,
        });
    }
    let token = owner.csrf().await;
    let started = std::time::Instant::now();
    let response = owner
        .post_raw(
            &format!("/keys/{key}/rename"),
            &[("_csrf", &token), ("name", "slow")],
        )
        .await;
    let waited = started.elapsed();
    let body = response.text().await.unwrap();
    assert!(body.contains("did not answer within 1 s"), "{body}");
    assert!(
        waited < std::time::Duration::from_millis(1900),
        "waited {waited:?} for a 1 s deadline"
    );
}

#[tokio::test]
async fn a_list_whose_pages_never_end_is_stopped_and_called_an_upstream_fault() {
    use orgkeeper::anthropic::{AdminKey, ApiErrorKind, Client, ClientConfig, CostReportParams};
    use orgkeeper::simulator::{FaultKind, FaultSpec};
    let simulator = orgkeeper::simulator::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    simulator.faults().add(FaultSpec {
        kind: FaultKind::Endless,
        method: None,
        path_prefix: None,
        rate: 1.0,
        times: None,
    });
    let client = Client::new(ClientConfig::new(
        simulator.base_url(),
        AdminKey::new(ADMIN_KEY.into()),
    ))
    .unwrap();
    simulator.reset_request_count();
    let error = client
        .all(&CostReportParams::new(
            "2026-11-01T00:00:00Z".parse().unwrap(),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiErrorKind::PaginationLimit);
    assert!(
        simulator.request_count() <= 200,
        "{} calls",
        simulator.request_count()
    );
    assert!(
        error.user_message().contains("fault on Anthropic's side"),
        "{}",
        error.user_message()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Two identity headers from the trusted proxy: refused.

#[tokio::test]
async fn a_request_with_two_identity_or_group_headers_is_refused_and_audited() {
    let app = spawn_behind_proxy().await;
    let http = reqwest::Client::new();
    for (name, values) in [
        (
            "x-forwarded-email",
            ["mallory@example.test", "ada@example.test"],
        ),
        ("x-forwarded-groups", ["staff", "admins"]),
    ] {
        let mut request = http
            .get(app.url("/members"))
            .header("x-forwarded-email", "ada@example.test");
        if name == "x-forwarded-email" {
            request = http.get(app.url("/members"));
        }
        for value in values {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{name}");
        let page = response.text().await.unwrap();
        assert!(page.contains("more than once"), "{page}");
    }
    let refused = app
        .audit_records(Filter {
            action: Some("security.proxy_header_refused".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(refused.len(), 2);
    assert!(refused
        .iter()
        .all(|r| r.details["reason"] == "repeated_header"));
    assert!(accounts_named(&app, "mallory@example.test").await.is_none());
    assert!(accounts_named(&app, "ada@example.test").await.is_none());
}

async fn accounts_named(app: &TestApp, name: &str) -> Option<orgkeeper::auth::accounts::Account> {
    orgkeeper::auth::accounts::find_by_username(&app.db, name)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 8. Every answer a person can meet is a page.

#[tokio::test]
async fn bad_bodies_wrong_methods_and_long_addresses_get_pages_in_the_layout() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let token = owner.csrf().await;
    for path in ["/accounts", "/sso/groups", "/keys/bulk"] {
        let body = format!("_csrf={token}&name=%FF%FE");
        let response = owner
            .http
            .post(owner.address.clone() + path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("not text (not UTF-8)") && page.contains("href=\"/members\""),
            "{path}: {page}"
        );
    }
    let response = owner.get("/logout").await;
    assert_eq!(response.status(), 405);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Not from here") && page.contains("href=\"/members\""),
        "{page}"
    );

    // Longer than any address Orgkeeper makes (up to what the HTTP library can hold, 64 KB;
    // see the README), written to the socket by hand.
    let page = raw_get(&app, &format!("/members?q={}", "a".repeat(60_000))).await;
    assert!(
        page.starts_with("HTTP/1.1 414"),
        "{}",
        &page[..page.len().min(300)]
    );
    assert!(
        page.contains("Address too long") && page.contains("class=\"Header site-header\""),
        "{}",
        &page[..page.len().min(300)]
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Hidden characters are shown; a huge group list is summed up.

#[tokio::test]
async fn a_name_with_a_right_to_left_override_is_shown_with_the_character_visible() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let ws = app.first_workspace_id().await;
    let key = app
        .simulator
        .console_create_key("\u{202E}gnp.exe", &ws, &first_user(&app));
    app.sync().await;
    for path in ["/keys".to_owned(), format!("/keys/{key}")] {
        let (_, page) = owner.get_text(&path).await;
        assert!(page.contains("[U+202E]gnp.exe"), "{path}");
        assert!(!page.contains('\u{202E}'), "{path}");
    }
}

#[tokio::test]
async fn ten_thousand_groups_make_a_bounded_audit_record() {
    let app = spawn_behind_proxy().await;
    let mut groups: Vec<String> = (0..10_000).map(|i| format!("group-{i:05}")).collect();
    groups.push("staff".into());
    let response = reqwest::Client::new()
        .get(app.url("/members"))
        .header("x-forwarded-email", "ada@example.test")
        .header("x-forwarded-groups", groups.join(","))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let login = app
        .audit_records(Filter {
            action: Some("auth.login".into()),
            ..Default::default()
        })
        .await;
    let details = serde_json::to_string(&login[0].details).unwrap();
    assert!(details.len() < 4096, "{} bytes", details.len());
    assert_eq!(login[0].details["groups"]["total"], 10_001);
}

// ---------------------------------------------------------------------------------------------
// 10. Backups.

#[tokio::test]
async fn a_backup_taken_during_changes_and_a_sync_restores_with_a_verified_chain() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let keys: Vec<String> = app
        .state
        .org
        .snapshot()
        .keys
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active)
        .take(10)
        .map(|k| k.id.clone())
        .collect();
    let before: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let target = app.dir.path().join("backup.db");
    let database = app.dir.path().join("orgkeeper.db");
    let backup = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
                .args(["backup".as_ref(), target.as_os_str()])
                .env("ORGKEEPER_DATABASE", &database)
                .output()
                .unwrap()
        })
    };
    let renames = keys.iter().enumerate().map(|(i, key)| {
        let owner = owner.clone();
        let key = key.clone();
        async move {
            owner
                .post(
                    &format!("/keys/{key}/rename"),
                    &[("name", &format!("during backup {i}"))],
                )
                .await
        }
    });
    let (output, _, ()) = tokio::join!(backup, futures_util::future::join_all(renames), app.sync());
    let output = output.unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(said.contains("its chain is intact"), "{said}");

    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .args([
            "audit".as_ref(),
            "verify".as_ref(),
            "--database".as_ref(),
            target.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The copy's newest record is one the live log has, with the same hash, and the copy holds
    // everything recorded before it was taken.
    let copy = orgkeeper::db::connect(&target).await.unwrap();
    let (newest, hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_one(&copy)
            .await
            .unwrap();
    assert!(newest >= before);
    let live: String = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
        .bind(newest)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(live, hash);
    assert!(
        said.contains(&format!("newest audit record {newest}")),
        "{said}"
    );
    copy.close().await;

    // Restored: a server starts on the copy and finds its chain intact.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&target, dir.path().join("orgkeeper.db")).unwrap();
    let (simulator, _old, config) = app.stop().await;
    let restored = spawn_app_with(config, simulator, Some(std::sync::Arc::new(dir))).await;
    assert!(restored.state.audit.verify().await.unwrap().is_intact());
    let (_, page) = restored
        .login_as(&owner_name(&restored).await)
        .await
        .get_text("/audit")
        .await;
    assert!(page.contains("Audit log"));

    // A backup never overwrites a file.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .args(["backup".as_ref(), target.as_os_str()])
        .env(
            "ORGKEEPER_DATABASE",
            restored.dir.path().join("orgkeeper.db"),
        )
        .output()
        .unwrap();
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("already exists"), "{said}");
}

async fn owner_name(app: &TestApp) -> String {
    orgkeeper::auth::accounts::list(&app.db)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.role == Role::Owner)
        .unwrap()
        .username
}

fn first_user(app: &TestApp) -> String {
    app.state.org.snapshot().users[0].id.clone()
}

/// One GET written to the server's socket by hand; the whole answer as text.
async fn raw_get(app: &TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
