//! The `orgkeeper` command itself: account management and audit verification, run as a
//! separate process on a real database file.

use std::process::{Command, Output, Stdio};

use crate::support::run_orgkeeper as orgkeeper;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn user_commands_add_list_change_and_disable_accounts_and_audit_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");

    let add = orgkeeper(
        &db,
        &[
            "user",
            "add",
            "ops",
            "--role",
            "team_lead",
            "--workspace",
            "wrkspc_01abc",
            "--password-stdin",
        ],
        Some("a very long password\n"),
    );
    assert!(add.status.success(), "{}", text(&add));
    let short = orgkeeper(
        &db,
        &[
            "user",
            "add",
            "tiny",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(
        text(&short).contains("at least 12 characters"),
        "{}",
        text(&short)
    );
    let passwd = orgkeeper(
        &db,
        &["user", "passwd", "ops", "--password-stdin"],
        Some("another long password\n"),
    );
    assert!(passwd.status.success(), "{}", text(&passwd));
    let disable = orgkeeper(&db, &["user", "disable", "ops"], None);
    assert!(disable.status.success(), "{}", text(&disable));
    let list = orgkeeper(&db, &["user", "list"], None);

    let listing = text(&list);
    assert!(
        listing.contains("ops")
            && listing.contains("team_lead")
            && listing.contains("disabled")
            && listing.contains("wrkspc_01abc"),
        "{listing}"
    );
    assert!(!listing.contains("tiny"));
    let export = orgkeeper(&db, &["audit", "export", "--format", "jsonl"], None);
    // The command line changes accounts through the same service as the Accounts page, so
    // each change is an intent and an outcome, and the refused short password is on record.
    let actions: Vec<(String, String)> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|line| {
            let record = serde_json::from_str::<serde_json::Value>(line).unwrap();
            (
                record["action"].as_str().unwrap().to_owned(),
                record["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("account.created", "pending"),
        ("account.created", "ok"),
        ("account.created", "pending"),
        ("account.created", "failed"),
        ("account.password_reset", "pending"),
        ("account.password_reset", "ok"),
        ("account.disabled", "pending"),
        ("account.disabled", "ok"),
    ];
    assert_eq!(
        actions,
        expected
            .iter()
            .map(|(a, o)| (a.to_string(), o.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(!String::from_utf8_lossy(&export.stdout).contains("long password"));
}

#[test]
fn passwords_are_never_taken_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = orgkeeper(
        &dir.path().join("o.db"),
        &["user", "add", "x", "--role", "viewer"],
        None,
    );
    assert!(!output.status.success());
    assert!(text(&output).contains("--password-stdin"));
}

#[test]
fn audit_verify_names_the_first_altered_record_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("o.db");
    for name in ["a1", "a2", "a3"] {
        let add = orgkeeper(
            &db,
            &["user", "add", name, "--role", "viewer", "--password-stdin"],
            Some("a very long password\n"),
        );
        assert!(add.status.success(), "{}", text(&add));
    }
    let intact = orgkeeper(&db, &["audit", "verify"], None);
    assert!(intact.status.success(), "{}", text(&intact));
    assert!(
        text(&intact).contains("verified up to record 6"),
        "{}",
        text(&intact)
    );

    // An attacker with the file: drop the append-only triggers and edit record 2.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let pool = orgkeeper::db::connect(&db).await.unwrap();
        let triggers: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .fetch_all(&pool)
                .await
                .unwrap();
        for trigger in triggers {
            sqlx::query(&format!("DROP TRIGGER {trigger}"))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let broken = orgkeeper(&db, &["audit", "verify"], None);

    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken).contains("BROKEN at record 2"),
        "{}",
        text(&broken)
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_orgkeeper"));
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ORGKEEPER_DATABASE", dir.path().join("o.db"))
        .env("ANTHROPIC_ADMIN_API_KEY", "sk-ant-api03-not-an-admin-key");
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let message = text(&output);
    assert!(message.contains("ANTHROPIC_ADMIN_API_KEY"), "{message}");
    assert!(
        !message.contains("not-an-admin-key"),
        "the key is not echoed: {message}"
    );
}

#[test]
fn help_documents_every_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = text(&output);
    for setting in [
        "ORGKEEPER_BIND",
        "ORGKEEPER_DATABASE",
        "ORGKEEPER_API_BASE_URL",
        "ORGKEEPER_SECURE_COOKIES",
        "ORGKEEPER_SYNC_INTERVAL",
        "ANTHROPIC_ADMIN_API_KEY",
        "ANTHROPIC_ADMIN_KEY_FILE",
    ] {
        assert!(help.contains(setting), "--help does not mention {setting}");
    }
}

/// Reads the child's standard output line by line until `done` says stop (or 60 s pass).
fn read_until(child: &mut std::process::Child, done: impl Fn(&str) -> bool) -> Vec<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        let stop = done(&line);
        lines.push(line);
        if stop {
            break;
        }
    }
    lines
}

#[test]
fn the_demo_starts_with_one_command_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // No subcommand at all, as `cargo run --release` runs it: serve is the default.
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .env("ORGKEEPER_BIND", "127.0.0.1:0")
        .env("ORGKEEPER_DATABASE", dir.path().join("demo.db"))
        .env_remove("ANTHROPIC_ADMIN_API_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let lines = read_until(&mut child, |line| {
        line.starts_with("Orgkeeper is listening on")
    });

    let output = lines.join("\n");
    assert!(
        output.contains("Demo organization: simulated data"),
        "{output}"
    );
    let address = lines
        .last()
        .unwrap()
        .trim_start_matches("Orgkeeper is listening on ")
        .to_owned();
    let owner_password = lines
        .iter()
        .find(|line| line.trim_start().starts_with("demo-owner"))
        .and_then(|line| line.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("no demo owner printed: {output}"))
        .to_owned();
    for role in [
        "demo-admin",
        "demo-viewer",
        "demo-team-lead",
        "demo-auditor",
    ] {
        assert!(output.contains(role), "{role} missing: {output}");
    }
    let bind = address.trim_start_matches("http://");
    let health = Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .args(["healthcheck", "--bind", bind])
        .output()
        .unwrap();
    assert!(health.status.success(), "healthcheck failed against {bind}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let login = client
            .get(format!("{address}/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let marker = "name=\"_csrf\" value=\"";
        let start = login.find(marker).unwrap() + marker.len();
        let token = &login[start..start + login[start..].find('"').unwrap()];
        let home = client
            .post(format!("{address}/login"))
            .form(&[
                ("_csrf", token),
                ("username", "demo-owner"),
                ("password", owner_password.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("Demo organization: simulated data"),
            "the banner is on every page"
        );
        assert!(home.contains("demo-owner"));
    });

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0, got {status:?}");
}
