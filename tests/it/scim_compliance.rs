//! An independent SCIM 2.0 compliance checker against Orgkeeper's `/scim/v2` (issue 23): runs
//! `tests/scim/check.py` (scim2-tester 0.5.2 from the python-scim project, with the httpx2
//! engine of scim2-client 0.13.2) on discovery and User create/read/replace/delete against the
//! real server, with the simulator behind it.
//!
//! Python: `ORGKEEPER_SCIM_PYTHON` if set (it must have scim2-tester==0.5.2), else
//! `target/scim-venv/bin/python`, created on first use with `python3 -m venv` and
//! `pip install "scim2-tester[httpx2]==0.5.2" scim2-client==0.13.2 scim2-models==0.12.3`.
//! The test fails, never skips, when no such Python can be had.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orgkeeper::anthropic::{InviteFilter, InviteStatus};
use orgkeeper::auth::tokens::TokenKind;
use orgkeeper::service::tokens::{self, NewToken};

use crate::support::python::{run_bounded, PythonEnv};
use crate::support::{spawn_app, TEST_CALLER};

/// The checker, its HTTP engine and the models both are built on, pinned.
const CHECKER: PythonEnv = PythonEnv {
    dir: "scim-venv",
    override_var: "ORGKEEPER_SCIM_PYTHON",
    packages: &[
        "scim2-tester[httpx2]==0.5.2",
        "scim2-client==0.13.2",
        "scim2-models==0.12.3",
    ],
    version_check: "import importlib.metadata as m; import httpx2; \
         import scim2_client.engines.httpx2; import scim2_tester; \
         print(m.version('scim2-tester'))",
    version: "0.5.2",
};
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// (passed, failed) from the summary line "N passed, M failed, K skipped", if it is there.
fn summary(output: &str) -> Option<(u32, u32)> {
    output.lines().rev().find_map(|line| {
        let (passed, rest) = line.trim().split_once(" passed, ")?;
        let (failed, rest) = rest.split_once(" failed, ")?;
        rest.strip_suffix(" skipped")?.parse::<u32>().ok()?;
        Some((passed.parse().ok()?, failed.parse().ok()?))
    })
}

/// Runs check.py against `base_url` with `token`, killed after SCRIPT_TIMEOUT; returns
/// (exit success, summary, output).
fn run_check(python: &Path, base_url: &str, token: &str) -> (bool, Option<(u32, u32)>, String) {
    let mut cmd = Command::new(python);
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scim/check.py"))
        .arg(base_url)
        .arg(token)
        // The checker talks to loopback only.
        .env("NO_PROXY", "127.0.0.1,localhost");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    let ran = run_bounded(cmd, SCRIPT_TIMEOUT);
    (
        ran.succeeded(),
        summary(&ran.stdout),
        ran.output("check.py", SCRIPT_TIMEOUT),
    )
}

/// Whether an address is one scim2-tester makes up: a UUID before the `@`.
fn looks_generated(email: &str) -> bool {
    let local = email.split('@').next().unwrap_or_default();
    let parts: Vec<&str> = local.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && local.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_scim_checker_passes_discovery_and_user_create_read_replace_delete() {
    let python = match tokio::task::spawn_blocking(|| CHECKER.python())
        .await
        .unwrap()
    {
        Ok(p) => p,
        Err(msg) => panic!("no Python with scim2-tester for tests/scim/check.py:\n{msg}"),
    };
    let app = spawn_app().await;
    let created = tokens::create(
        &app.state,
        &TEST_CALLER,
        NewToken {
            name: "compliance".into(),
            kind: TokenKind::Scim,
            account: None,
            read_only: false,
            workspaces: vec![],
            expires_in_days: Some(365),
        },
    )
    .await
    .unwrap();
    let token = created.secret.expose().to_owned();
    assert!(token.starts_with("orgk_scim_"), "{token}");
    let base_url = app.url("/scim/v2");

    let (ok, summary, output) =
        tokio::task::spawn_blocking(move || run_check(&python, &base_url, &token))
            .await
            .unwrap();
    println!("{output}");
    assert!(
        ok,
        "the SCIM compliance checker failed (tests/scim/check.py):\n{output}"
    );
    match summary {
        Some((passed, 0)) if passed > 0 => {}
        other => panic!(
            "expected the summary \"N passed, 0 failed, K skipped\" with N > 0, got {other:?}:\n{output}"
        ),
    }
    // The checker's random users (`<uuid>@<uuid>.com`) were real invites in the organization;
    // its cleanup deletes every user it made, and a deleted user leaves no pending invite.
    let left: Vec<String> = app
        .state
        .org
        .api()
        .list_all_invites(&InviteFilter {
            statuses: vec![InviteStatus::Pending],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.status == InviteStatus::Pending && looks_generated(&i.email))
        .map(|i| i.email)
        .collect();
    assert!(
        left.is_empty(),
        "pending invites left by deleted SCIM users: {left:?}\n{output}"
    );
    let audit = app.state.audit.verify().await.unwrap();
    assert!(audit.is_intact(), "{audit:?}");
}
