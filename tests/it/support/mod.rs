//! Test harness: the real server on a loopback port 0, a fresh SQLite file, the simulator over
//! real HTTP behind it, and an HTTP client with a cookie jar.

pub mod python;
pub mod webdriver;

use std::sync::{Arc, Mutex, OnceLock};

use orgkeeper::anthropic::AdminKey;
use orgkeeper::audit::{Filter, Record};
use orgkeeper::auth::{accounts, Role};
use orgkeeper::config::{ServerConfig, Upstream};
use orgkeeper::simulator::{self, RunningSimulator, SimulatorOptions};
use orgkeeper::web::AppState;
use sqlx::SqlitePool;
use tokio::net::TcpListener;

/// The admin key every test app is configured with; it must never leave the process.
pub const ADMIN_KEY: &str = "sk-ant-admin01-TESTSECRET-must-never-leak-9f8e7d6c5b4a";
/// Who the tests' own arrangements are recorded as.
pub const TEST_CALLER: orgkeeper::service::Caller = orgkeeper::service::Caller::System {
    name: "system (test setup)",
};

/// Passwords are hashed with the production parameters.
pub const PASSWORD: &str = "correct horse battery staple";

/// Everything the server logs during this test binary, for the "key never logged" checks.
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "orgkeeper=debug,tower_http=debug,info",
            ))
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestApp {
    pub address: String,
    pub db: SqlitePool,
    pub state: AppState,
    pub simulator: RunningSimulator,
    pub setup_token: Option<String>,
    pub config: ServerConfig,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the database file lives here.
    pub dir: Arc<tempfile::TempDir>,
}

/// Production settings against this simulator. Background jobs are off so upstream call
/// counts are deterministic; tests that need a job run it directly.
pub fn live_config(simulator: &RunningSimulator) -> ServerConfig {
    let mut config = ServerConfig::new(Upstream::Live {
        base_url: simulator.base_url(),
        key: AdminKey::new(ADMIN_KEY.to_owned()),
    });
    config.background_jobs = false;
    config
}

/// A server in production mode (admin key set) pointed at a fresh demo simulator.
pub async fn spawn_app() -> TestApp {
    spawn_app_configured(SimulatorOptions::default(), |_| {}).await
}

/// A server pointed at a fresh simulator of `options`, with `change` made to its
/// configuration (from [`live_config`]) before it starts.
pub async fn spawn_app_configured(
    options: SimulatorOptions,
    change: impl FnOnce(&mut ServerConfig),
) -> TestApp {
    let simulator = simulator::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), options)
        .await
        .unwrap();
    let mut config = live_config(&simulator);
    change(&mut config);
    spawn_app_with(config, simulator, None).await
}

/// A server pointed at the `large` simulated organization (5,000 members, 100 workspaces,
/// 20,000 keys), always the same one (seed 7).
pub async fn spawn_large_app() -> TestApp {
    let options = SimulatorOptions {
        profile: simulator::Profile::Large,
        seed: 7,
    };
    spawn_app_configured(options, |_| {}).await
}

/// A server behind a trusted sign-in proxy on 127.0.0.1 (identity in `x-forwarded-email`,
/// groups in `x-forwarded-groups`), where the group `staff` makes viewers.
pub async fn spawn_behind_proxy() -> TestApp {
    use orgkeeper::config::{parse_networks, ProxySettings};
    let app = spawn_app_configured(Default::default(), |config| {
        config.sso.proxy = Some(ProxySettings {
            header: "x-forwarded-email".into(),
            groups_header: Some("x-forwarded-groups".into()),
            trusted: parse_networks("127.0.0.1/32").unwrap(),
        });
    })
    .await;
    app.map_group("staff", Role::Viewer, &[]).await;
    app
}

/// Starts a server with this configuration; `dir` reuses an existing database (restart).
pub async fn spawn_app_with(
    config: ServerConfig,
    simulator: RunningSimulator,
    dir: Option<Arc<tempfile::TempDir>>,
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_app_on(listener, config, simulator, dir).await
}

/// Like [`spawn_app_with`] on a listener bound beforehand (when the configuration needs the
/// server's own address, such as a sign-in redirect URL).
pub async fn spawn_app_on(
    listener: TcpListener,
    config: ServerConfig,
    simulator: RunningSimulator,
    dir: Option<Arc<tempfile::TempDir>>,
) -> TestApp {
    let _ = captured_logs();
    let dir = dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let db_path = dir.path().join("orgkeeper.db");
    let db = orgkeeper::db::connect(&db_path).await.unwrap();
    let server = orgkeeper::server::build(db.clone(), config.clone())
        .await
        .unwrap();
    if !config.background_jobs {
        // What the sync job does first in production: read the organization into the model.
        orgkeeper::jobs::run_org_sync(&server.state).await;
    }
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = server.state.clone();
    let setup_token = server.setup_token.clone();
    let handle = tokio::spawn(async move {
        server
            .run(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let app = TestApp {
        address,
        db,
        state,
        simulator,
        setup_token,
        config,
        shutdown: Some(tx),
        server: Some(handle),
        dir,
    };
    app.wait_until_ready().await;
    app
}

/// Runs the `orgkeeper` command on a database file, as a separate process without an admin
/// key, with `stdin` as its input.
pub fn run_orgkeeper(
    db: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_orgkeeper"))
        .args(args)
        .env("ORGKEEPER_DATABASE", db)
        .env_remove("ANTHROPIC_ADMIN_API_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY")
        .env_remove("ANTHROPIC_ADMIN_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

impl TestApp {
    /// The `orgkeeper` command on this server's own database file while it runs: (success,
    /// standard output, standard error).
    pub fn orgkeeper(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let output = run_orgkeeper(&self.dir.path().join("orgkeeper.db"), args, stdin);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// One round of the organization sync, as the background job does it.
    pub async fn sync(&self) {
        orgkeeper::jobs::run_org_sync(&self.state).await;
    }

    /// Starts a round of the usage job whose requests to `path` hang (a large organization's
    /// first read takes minutes) and returns once one of them reached the simulator, counted
    /// under `area`: the job then holds that store's lock. Abort the handle to end it.
    pub async fn usage_job_hanging_at(
        &self,
        path: &str,
        area: &str,
    ) -> tokio::task::JoinHandle<()> {
        self.simulator.faults().inject(simulator::FaultRule {
            method: None,
            path_contains: Some(path.into()),
            kind: simulator::FaultKind::Hang,
            times: 1000,
        });
        self.simulator.reset_request_count();
        let services = self.state.services.clone();
        let job = tokio::spawn(async move { orgkeeper::jobs::run_usage_sync(&services).await });
        while !self.simulator.request_counts().contains_key(area) {
            tokio::task::yield_now().await;
        }
        job
    }

    /// Polls /healthz; never sleeps a fixed time.
    async fn wait_until_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = client.get(format!("{}/healthz", self.address)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the server never became healthy");
    }

    /// Stops the server gracefully and returns what a restart needs.
    pub async fn stop(mut self) -> (RunningSimulator, Arc<tempfile::TempDir>, ServerConfig) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.server.take() {
            handle.await.unwrap();
        }
        (self.simulator, self.dir, self.config)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A dashboard account, created through the service as the command line would.
    pub async fn create_account(
        &self,
        username: &str,
        role: Role,
        workspaces: &[&str],
    ) -> accounts::Account {
        let new = orgkeeper::service::accounts::NewAccount {
            username: username.to_owned(),
            role: Some(role),
            password: PASSWORD.to_owned(),
            workspaces: workspaces.iter().map(|s| s.to_string()).collect(),
        };
        orgkeeper::service::accounts::create(&self.state, &TEST_CALLER, new)
            .await
            .unwrap()
    }

    /// Maps an identity-provider group to a role, as an owner would on the Accounts page.
    pub async fn map_group(&self, group: &str, role: Role, workspaces: &[String]) {
        orgkeeper::service::sso::add_mapping(
            &self.state,
            &TEST_CALLER,
            group,
            role,
            workspaces.to_vec(),
        )
        .await
        .unwrap();
    }

    /// A browser-like client: cookie jar, no automatic redirects (tests look at them).
    pub fn client(&self) -> Session {
        Session {
            address: self.address.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// Signs in with the default password and returns the signed-in session.
    pub async fn login_as(&self, username: &str) -> Session {
        let session = self.client();
        let response = session.login(username, PASSWORD).await;
        assert_eq!(
            response.status(),
            303,
            "sign-in of {username} failed: {}",
            response.text().await.unwrap()
        );
        session
    }

    /// A new account of this role, signed in.
    pub async fn signed_in(&self, role: Role) -> (accounts::Account, Session) {
        let name = format!("{}-{}", role.as_str().replace('_', "-"), rand_suffix());
        let workspaces: Vec<String> = if role == Role::TeamLead {
            vec![self.first_workspace_id().await]
        } else {
            vec![]
        };
        let refs: Vec<&str> = workspaces.iter().map(String::as_str).collect();
        let account = self.create_account(&name, role, &refs).await;
        let session = self.login_as(&name).await;
        (account, session)
    }

    pub async fn first_workspace_id(&self) -> String {
        self.state
            .org
            .api()
            .list_all_workspaces(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .next()
            .expect("the simulator has workspaces")
            .id
    }

    pub async fn audit_records(&self, filter: Filter) -> Vec<Record> {
        self.state.audit.query(&filter, 1000, 0).await.unwrap().0
    }

    /// The records of changes observed outside Orgkeeper with this action code.
    pub async fn observed(&self, action: &str) -> Vec<Record> {
        self.audit_records(Filter::default())
            .await
            .into_iter()
            .filter(|r| r.actor_role.as_deref() == Some("observed") && r.action == action)
            .collect()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        self.audit_records(Filter::default())
            .await
            .into_iter()
            .map(|r| r.action)
            .collect()
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// One person's browser: a cookie jar and the CSRF token of their session.
#[derive(Clone)]
pub struct Session {
    pub address: String,
    pub http: reqwest::Client,
}

impl Session {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// The CSRF token, read from a page the way a browser's form carries it.
    pub async fn csrf(&self) -> String {
        for path in ["/account/password", "/login"] {
            let (_, body) = self.get_text(path).await;
            if let Some(token) = extract_csrf(&body) {
                return token;
            }
        }
        panic!("no CSRF token found");
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let (_, body) = self.get_text("/login").await;
        let token = extract_csrf(&body).expect("the sign-in form carries a CSRF token");
        self.post_raw(
            "/login",
            &[
                ("_csrf", token.as_str()),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Posts a form with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut all = vec![("_csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.address, path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

/// `html` without its `data-label="…"` attributes (the column names a stacked table shows on a
/// phone), for tests that compare table cells as written.
pub fn without_data_labels(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(" data-label=\"") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " data-label=\"".len()..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

pub fn extract_csrf(html: &str) -> Option<String> {
    let marker = "name=\"_csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Polls `condition` until it holds; fails the test, naming `what`, if it has not within
/// `timeout`. For effects another task makes (webhook posts): never a fixed sleep.
pub async fn wait_until(
    what: &str,
    timeout: std::time::Duration,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A webhook receiver on a loopback port: keeps every body posted to it, in order; the first
/// `fail_first` posts are answered with a 500.
pub struct Webhook {
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    pub async fn start(fail_first: usize) -> Webhook {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let kept = kept.clone();
                async move {
                    let mut kept = kept.lock().unwrap();
                    kept.push(body);
                    if kept.len() <= fail_first {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, bodies }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    /// The `text` of each post, once at least `n` arrived.
    pub async fn texts(&self, n: usize) -> Vec<String> {
        wait_until(
            &format!("{n} webhook posts"),
            std::time::Duration::from_secs(10),
            || self.bodies.lock().unwrap().len() >= n,
        )
        .await;
        self.bodies()
            .iter()
            .map(|b| {
                serde_json::from_str::<serde_json::Value>(b).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The organization, as tests speak of it (read from the synced model)

impl TestApp {
    /// A member with this organization role.
    pub fn member_with_role(&self, role: &str) -> orgkeeper::anthropic::User {
        self.state
            .org
            .snapshot()
            .users
            .iter()
            .find(|u| u.role.as_str() == role)
            .unwrap_or_else(|| panic!("the organization has a member with the role {role}"))
            .clone()
    }

    /// An active key in this workspace.
    pub fn live_key_in(&self, workspace_id: &str) -> orgkeeper::anthropic::ApiKey {
        self.state
            .org
            .snapshot()
            .keys
            .iter()
            .find(|k| {
                k.status == orgkeeper::anthropic::ApiKeyStatus::Active
                    && k.workspace_id() == Some(workspace_id)
            })
            .unwrap_or_else(|| panic!("an active key in {workspace_id}"))
            .clone()
    }

    /// A live workspace other than this one.
    pub fn other_workspace(&self, not: &str) -> String {
        self.state
            .org
            .snapshot()
            .workspaces
            .iter()
            .find(|w| w.id != not && !w.is_archived())
            .expect("a second live workspace")
            .id
            .clone()
    }

    /// A signed-in person as the service layer sees them.
    pub fn caller(&self, account: &accounts::Account) -> orgkeeper::service::Caller {
        orgkeeper::service::Caller::Person {
            account: account.clone(),
            source: orgkeeper::audit::Source::default(),
        }
    }
}
