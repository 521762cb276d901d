//! The official Python SDK against the simulator: runs `tests/sdk/compat.py` (anthropic 2.10.0,
//! whose types are the ground truth for the Admin API's shapes) against an in-process simulator.
//!
//! Python: `ORGKEEPER_SDK_PYTHON` if set (it must have `anthropic==2.10.0`), else
//! `target/sdk-venv/bin/python`, created on first use (see `support::python`). The test fails,
//! never skips, when no such Python can be had.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orgkeeper::simulator::{start, SimulatorOptions, SpendLimitsAccess};

use crate::support::python::{run_bounded, PythonEnv};

/// The SDK whose types are the ground truth; the gateway's SDK test uses it too.
pub const SDK: PythonEnv = PythonEnv {
    dir: "sdk-venv",
    override_var: "ORGKEEPER_SDK_PYTHON",
    packages: &["anthropic==2.10.0"],
    version_check: "import anthropic; print(anthropic.__version__)",
    version: "2.10.0",
};
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// A Python with the official SDK, or a message saying how to get one.
pub fn sdk_python() -> Result<PathBuf, String> {
    SDK.python()
}

/// The script's environment without the caller's own SDK settings: scripts pass their own key
/// and base URL.
pub fn without_sdk_settings(cmd: &mut Command) {
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    ] {
        cmd.env_remove(var);
    }
}

/// Runs compat.py against `base_url` (and the organizations without spend-limit access in
/// `env`); returns (success, output).
fn run_script(python: &Path, base_url: &str, env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = Command::new(python);
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/compat.py"))
        .arg(base_url)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    without_sdk_settings(&mut cmd);
    let ran = run_bounded(cmd, SCRIPT_TIMEOUT);
    // The last line must be the summary, with checks run and none failed.
    let summary_ok = ran
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().strip_suffix(" failed"))
        .and_then(|l| l.split_once(" passed, "))
        .and_then(|(p, f)| Some((p.parse::<u32>().ok()?, f.parse::<u32>().ok()?)))
        .is_some_and(|(passed, failed)| passed > 0 && failed == 0);
    (
        ran.succeeded() && summary_ok,
        ran.output("compat.py", SCRIPT_TIMEOUT),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_sees_the_simulator_as_the_real_api() {
    let python = match tokio::task::spawn_blocking(sdk_python).await.unwrap() {
        Ok(p) => p,
        Err(msg) => panic!("no Python with the official SDK for tests/sdk/compat.py:\n{msg}"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = start(listener, SimulatorOptions::default()).await.unwrap();
    let base_url = sim.base_url();
    // Two more organizations, one per documented spend-limit refusal.
    let mut others = Vec::new();
    let mut env = Vec::new();
    for (var, access) in [
        (
            "ORGKEEPER_SIM_NOT_ENABLED_URL",
            SpendLimitsAccess::WritesNotEnabled,
        ),
        (
            "ORGKEEPER_SIM_UNSUPPORTED_URL",
            SpendLimitsAccess::OrgTypeNotSupported,
        ),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = start(listener, SimulatorOptions::default()).await.unwrap();
        other.set_spend_limits_access(access);
        env.push((var, other.base_url()));
        others.push(other);
    }
    // And one whose admin key may not read the usage and cost analytics.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let no_analytics = start(listener, SimulatorOptions::default()).await.unwrap();
    no_analytics.set_analytics_access(false);
    env.push(("ORGKEEPER_SIM_NO_ANALYTICS_URL", no_analytics.base_url()));
    others.push(no_analytics);
    let (ok, output) = tokio::task::spawn_blocking(move || run_script(&python, &base_url, &env))
        .await
        .unwrap();
    sim.shutdown().await;
    for other in others {
        other.shutdown().await;
    }
    println!("{output}");
    assert!(
        ok,
        "the official SDK disagrees with the simulator (tests/sdk/compat.py):\n{output}"
    );
}
