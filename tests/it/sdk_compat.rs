//! The official Python SDK against the simulator: runs `tests/sdk/compat.py` (anthropic 2.10.0,
//! whose types are the ground truth for the Admin API's shapes) against an in-process simulator.
//!
//! Python: `ORGKEEPER_SDK_PYTHON` if set (it must have `anthropic==2.10.0`), else
//! `target/sdk-venv/bin/python`, created on first use with `python3 -m venv` and
//! `pip install anthropic==2.10.0`. The test fails, never skips, when no such Python can be had.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orgkeeper::simulator::{start, SimulatorOptions, SpendLimitsAccess};

const SDK_VERSION: &str = "2.10.0";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn setup_help() -> String {
    format!(
        "To set it up by hand:\n  python3 -m venv target/sdk-venv\n  \
         target/sdk-venv/bin/pip install anthropic=={SDK_VERSION}\n\
         or point ORGKEEPER_SDK_PYTHON at a python that has anthropic=={SDK_VERSION}."
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

/// The `anthropic` version importable by `python`, if any.
fn sdk_version(python: &Path) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import anthropic; print(anthropic.__version__)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates `venv` (built aside, then renamed into place so concurrent runs don't see a
/// half-made one) with anthropic==SDK_VERSION installed.
fn create_venv(venv: &Path) -> Result<(), String> {
    let staging = venv.with_file_name(format!("sdk-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    if let Some(parent) = staging.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let result = (|| {
        run(Command::new("python3").arg("-m").arg("venv").arg(&staging))?;
        run(Command::new(staging.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("anthropic=={SDK_VERSION}"),
        ]))?;
        if venv.exists() {
            // Another run finished first, or a broken venv is in the way.
            if sdk_version(&venv.join("bin/python")).as_deref() == Some(SDK_VERSION) {
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

/// A Python with anthropic==SDK_VERSION, or a message saying how to get one.
pub fn sdk_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORGKEEPER_SDK_PYTHON").filter(|p| !p.is_empty()) {
        let python = PathBuf::from(p);
        return match sdk_version(&python) {
            Some(v) if v == SDK_VERSION => Ok(python),
            found => Err(format!(
                "ORGKEEPER_SDK_PYTHON={} does not have anthropic=={SDK_VERSION} (found {found:?}).\n{}",
                python.display(),
                setup_help()
            )),
        };
    }
    let venv = manifest_dir().join("target").join("sdk-venv");
    let python = venv.join("bin").join("python");
    if sdk_version(&python).as_deref() == Some(SDK_VERSION) {
        return Ok(python);
    }
    eprintln!(
        "creating {} with anthropic=={SDK_VERSION} (python3 -m venv, pip install)...",
        venv.display()
    );
    create_venv(&venv).map_err(|e| {
        format!(
            "could not create {} with anthropic=={SDK_VERSION}:\n{e}\n{}",
            venv.display(),
            setup_help()
        )
    })?;
    match sdk_version(&python) {
        Some(v) if v == SDK_VERSION => Ok(python),
        found => Err(format!(
            "{} still lacks anthropic=={SDK_VERSION} (found {found:?}).\n{}",
            python.display(),
            setup_help()
        )),
    }
}

/// Runs compat.py against `base_url` (and the organizations without spend-limit access in
/// `env`); returns (success, output).
fn run_script(python: &Path, base_url: &str, env: &[(&str, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("compat.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("output file");
    let mut cmd = Command::new(python);
    cmd.arg(manifest_dir().join("tests").join("sdk").join("compat.py"))
        .arg(base_url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // The script passes its own key and base URL; keep the caller's SDK settings out of it.
    for var in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("spawning compat.py");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("waiting for compat.py") {
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
                "\ncompat.py killed after {}s",
                SCRIPT_TIMEOUT.as_secs()
            ));
            (false, output)
        }
        Some(status) => {
            // The last line must be the summary, with checks run and none failed.
            let summary_ok = output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_suffix(" failed"))
                .and_then(|l| l.split_once(" passed, "))
                .and_then(|(p, f)| Some((p.parse::<u32>().ok()?, f.parse::<u32>().ok()?)))
                .is_some_and(|(passed, failed)| passed > 0 && failed == 0);
            if !status.success() {
                output.push_str(&format!("\ncompat.py exited with {status}"));
            }
            (status.success() && summary_ok, output)
        }
    }
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
