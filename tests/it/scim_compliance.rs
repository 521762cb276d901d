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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orgkeeper::anthropic::{InviteFilter, InviteStatus};
use orgkeeper::auth::tokens::TokenKind;
use orgkeeper::service::tokens::{self, NewToken};

use crate::support::{spawn_app, TEST_CALLER};

const TESTER_VERSION: &str = "0.5.2";
/// The pinned set: the checker, its HTTP engine, and the models both are built on.
const PACKAGES: [&str; 3] = [
    "scim2-tester[httpx2]==0.5.2",
    "scim2-client==0.13.2",
    "scim2-models==0.12.3",
];
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn setup_help() -> String {
    format!(
        "To set it up by hand:\n  python3 -m venv target/scim-venv\n  \
         target/scim-venv/bin/pip install {}\n\
         or point ORGKEEPER_SCIM_PYTHON at a python (3.11 or later) that has \
         scim2-tester=={TESTER_VERSION} with the httpx2 engine.",
        PACKAGES
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Runs a command to completion, returning its combined output or a description of the failure.
fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed ({}):\n{text}", out.status))
    }
}

/// The scim2-tester version importable by `python` (with the httpx2 engine), if any.
fn tester_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; import httpx2; \
             import scim2_client.engines.httpx2; import scim2_tester; \
             print(m.version('scim2-tester'))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates `venv` (built aside, then renamed into place so concurrent runs don't see a
/// half-made one) with the pinned packages installed.
fn create_venv(venv: &Path) -> Result<(), String> {
    let staging = venv.with_file_name(format!("scim-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    if let Some(parent) = staging.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let result = (|| {
        run(Command::new("python3").arg("-m").arg("venv").arg(&staging))?;
        run(Command::new(staging.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES))?;
        if venv.exists() {
            // Another run finished first, or a broken venv is in the way.
            if tester_version(&venv.join("bin/python")).as_deref() == Some(TESTER_VERSION) {
                return Ok(());
            }
            std::fs::remove_dir_all(venv).map_err(|e| format!("{}: {e}", venv.display()))?;
        }
        std::fs::rename(&staging, venv)
            .map_err(|e| format!("renaming {} to {}: {e}", staging.display(), venv.display()))
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// A Python with scim2-tester==TESTER_VERSION, or a message saying how to get one.
pub fn scim_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORGKEEPER_SCIM_PYTHON").filter(|p| !p.is_empty()) {
        let python = PathBuf::from(p);
        return match tester_version(&python) {
            Some(v) if v == TESTER_VERSION => Ok(python),
            found => Err(format!(
                "ORGKEEPER_SCIM_PYTHON={} does not have scim2-tester=={TESTER_VERSION} with \
                 httpx2 (found {found:?}).\n{}",
                python.display(),
                setup_help()
            )),
        };
    }
    let venv = manifest_dir().join("target").join("scim-venv");
    let python = venv.join("bin").join("python");
    if tester_version(&python).as_deref() == Some(TESTER_VERSION) {
        return Ok(python);
    }
    eprintln!(
        "creating {} with {} (python3 -m venv, pip install)...",
        venv.display(),
        PACKAGES.join(" ")
    );
    create_venv(&venv).map_err(|e| {
        format!(
            "could not create {} with scim2-tester=={TESTER_VERSION}:\n{e}\n{}",
            venv.display(),
            setup_help()
        )
    })?;
    match tester_version(&python) {
        Some(v) if v == TESTER_VERSION => Ok(python),
        found => Err(format!(
            "{} still lacks scim2-tester=={TESTER_VERSION} (found {found:?}).\n{}",
            python.display(),
            setup_help()
        )),
    }
}

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
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("check.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");
    let mut cmd = Command::new(python);
    cmd.arg(manifest_dir().join("tests").join("scim").join("check.py"))
        .arg(base_url)
        .arg(token)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        // The checker talks to loopback only.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd.spawn().expect("spawning check.py");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("waiting for check.py") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut output = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        None => {
            output.push_str(&format!(
                "\ncheck.py killed after {}s",
                SCRIPT_TIMEOUT.as_secs()
            ));
            (false, None, output)
        }
        Some(status) => {
            if !status.success() {
                output.push_str(&format!("\ncheck.py exited with {status}"));
            }
            let summary = summary(&output);
            (status.success(), summary, output)
        }
    }
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
    let python = match tokio::task::spawn_blocking(scim_python).await.unwrap() {
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
