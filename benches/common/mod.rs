//! What the benchmarks share: Orgkeeper as its own process, its log, its memory, a session.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support;

const BIN: &str = env!("CARGO_BIN_EXE_orgkeeper");

/// Creates an owner account with the test password, as an administrator would.
pub fn add_owner(database: &Path, user: &str) {
    let mut add = Command::new(BIN)
        .args(["user", "add", user, "--role", "owner", "--password-stdin"])
        .env("ORGKEEPER_DATABASE", database)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{}", support::PASSWORD).unwrap();
    assert!(
        add.wait().unwrap().success(),
        "could not create the account"
    );
}

/// `orgkeeper serve` on a free loopback port against `api`, configured as in production by
/// environment variables (JSON log on stderr, piped), plus `env`.
pub struct Served {
    pub process: KillOnDrop,
    pub address: String,
}

pub fn serve(database: &Path, api: &str, env: &[(&str, &str)]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env("ORGKEEPER_DATABASE", database)
        .env("ORGKEEPER_BIND", format!("127.0.0.1:{port}"))
        .env("ORGKEEPER_API_BASE_URL", api)
        .env("ANTHROPIC_ADMIN_API_KEY", support::ADMIN_KEY)
        .env("ORGKEEPER_LOG", "info,sqlx=warn,tower_sessions=warn")
        .env("ORGKEEPER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    Served {
        process: KillOnDrop(command.spawn().unwrap()),
        address: format!("http://127.0.0.1:{port}"),
    }
}

/// (resident, peak) memory of a process in MB, from `/proc/<pid>/status`.
pub fn memory_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Which read a line of Orgkeeper's log says has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Organization,
    UsageStore,
    /// Cost per person: read, or not available to the organization.
    CostPerPerson,
}

/// Orgkeeper's own account of each read: every "organization synced", "usage store synced"
/// and "cost per person" line, with its seconds (NaN where the line has none).
pub fn sync_times(child: &mut Child) -> tokio::sync::mpsc::UnboundedReceiver<(Read, f64)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stderr = child.stderr.take().expect("piped stderr");
    // A thread, not a task: reading the pipe blocks.
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            let read = if line.contains("organization synced") {
                Some(Read::Organization)
            } else if line.contains("usage store synced") {
                Some(Read::UsageStore)
            } else if line.contains("cost per person synced")
                || line.contains("cost per person is not available")
            {
                Some(Read::CostPerPerson)
            } else {
                None
            };
            if let Some(read) = read {
                // `ORGKEEPER_LOG_FORMAT=json`: `…"seconds":8.31,…`.
                let seconds = line
                    .split_once("\"seconds\":")
                    .and_then(|(_, rest)| rest.split([',', '}']).next())
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(f64::NAN);
                let _ = tx.send((read, seconds));
            } else if line.contains("\"WARN\"") || line.contains("\"ERROR\"") {
                eprintln!("orgkeeper: {line}");
            }
        }
    });
    rx
}

/// Ends the Orgkeeper process when the benchmark ends, also on a panic.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Signs in through the form, as a browser does, and returns the session cookie.
pub async fn sign_in(http: &reqwest::Client, address: &str, user: &str) -> String {
    let cookies = |response: &reqwest::Response| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let page = http.get(format!("{address}/login")).send().await.unwrap();
    let first = cookies(&page);
    let body = page.text().await.unwrap();
    let csrf = support::extract_csrf(&body).unwrap();
    let response = http
        .post(format!("{address}/login"))
        .header("cookie", &first)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", user),
            ("password", support::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection(),
        "sign-in failed: {}",
        response.status()
    );
    cookies(&response)
}
