//! Pinned Python environments for the tests that run a third party's own tool (the official
//! `anthropic` SDK, the scim2-tester checker), and a bounded way to run a script.
//!
//! An environment is `ORGKEEPER_…_PYTHON` if set (it must have the pinned version), else
//! `target/<name>/bin/python`, created on first use with `python3 -m venv` and `pip install`
//! (built aside, then renamed into place, so concurrent runs never see a half-made one). The
//! tests fail, never skip, when no such Python can be had.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One pinned environment.
pub struct PythonEnv {
    /// The directory under `target/`, e.g. `sdk-venv`.
    pub dir: &'static str,
    /// The variable naming an existing interpreter instead.
    pub override_var: &'static str,
    /// What `pip install` gets.
    pub packages: &'static [&'static str],
    /// Python code that imports what the script needs and prints the pinned package's version.
    pub version_check: &'static str,
    /// The version it must print.
    pub version: &'static str,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

impl PythonEnv {
    fn setup_help(&self) -> String {
        let packages = self
            .packages
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "To set it up by hand:\n  python3 -m venv target/{dir}\n  \
             target/{dir}/bin/pip install {packages}\n\
             or point {var} at a python that has them.",
            dir = self.dir,
            var = self.override_var,
        )
    }

    /// The pinned package's version importable by `python`, if any.
    fn found(&self, python: &Path) -> Option<String> {
        let out = Command::new(python)
            .args(["-c", self.version_check])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn create(&self, venv: &Path) -> Result<(), String> {
        let staging = venv.with_file_name(format!("{}.tmp-{}", self.dir, std::process::id()));
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
                .args(self.packages))?;
            if venv.exists() {
                // Another run finished first, or a broken venv is in the way.
                if self.found(&venv.join("bin/python")).as_deref() == Some(self.version) {
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

    /// A Python with the pinned version, or a message saying how to get one.
    pub fn python(&self) -> Result<PathBuf, String> {
        let wanted = format!("{} {}", self.packages[0], self.version);
        if let Some(p) = std::env::var_os(self.override_var).filter(|p| !p.is_empty()) {
            let python = PathBuf::from(p);
            return match self.found(&python) {
                Some(v) if v == self.version => Ok(python),
                found => Err(format!(
                    "{}={} does not have {wanted} (found {found:?}).\n{}",
                    self.override_var,
                    python.display(),
                    self.setup_help()
                )),
            };
        }
        let venv = manifest_dir().join("target").join(self.dir);
        let python = venv.join("bin").join("python");
        if self.found(&python).as_deref() == Some(self.version) {
            return Ok(python);
        }
        eprintln!(
            "creating {} with {} (python3 -m venv, pip install)...",
            venv.display(),
            self.packages.join(" ")
        );
        self.create(&venv).map_err(|e| {
            format!(
                "could not create {} with {wanted}:\n{e}\n{}",
                venv.display(),
                self.setup_help()
            )
        })?;
        match self.found(&python) {
            Some(v) if v == self.version => Ok(python),
            found => Err(format!(
                "{} still lacks {wanted} (found {found:?}).\n{}",
                python.display(),
                self.setup_help()
            )),
        }
    }
}

/// What a bounded script run came to: its exit (`None`: killed at the deadline), and what it
/// wrote to standard output and standard error.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Everything it wrote, for a failure message, with how it ended.
    pub fn output(&self, name: &str, timeout: Duration) -> String {
        let end = match self.status {
            None => format!("\n{name} killed after {}s", timeout.as_secs()),
            Some(status) if !status.success() => format!("\n{name} exited with {status}"),
            Some(_) => String::new(),
        };
        format!("{}{}{end}", self.stdout, self.stderr)
    }

    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs a script to its end, killed after `timeout` (a hung script fails its test, never
/// hangs it). Its output goes to files, so a chatty script never blocks on a full pipe.
pub fn run_bounded(mut cmd: Command, timeout: Duration) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = std::fs::File::create(&err_path).expect("output file");
    cmd.env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("waiting for the script") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Ran {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}
