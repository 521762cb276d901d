//! Assembling and running the server: database, sessions, audit log, Admin API client (or the
//! in-process simulator in demo mode), first-run setup.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_sessions_sqlx_store::SqliteStore;

use crate::anthropic::{AdminKey, Client, ClientConfig, WorkspaceFilter};
use crate::auth::session::random_token;
use crate::auth::session_store::CachedSessions;
use crate::auth::Role;
use crate::clock::Clock;
use crate::config::{ServerConfig, Upstream};
use crate::service::{Caller, Services};
use crate::simulator::{self, RunningSimulator, SimulatorOptions};
use crate::web::{self, AppState, SetupToken};

/// How long the printed first-run link stays valid.
/// Sessions kept in memory at most (a few MB); the rest are read from SQLite as they come.
const SESSIONS_IN_MEMORY: usize = 10_000;
const SETUP_LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The organization the demo runs on.
impl From<crate::config::DemoProfile> for crate::simulator::Profile {
    fn from(profile: crate::config::DemoProfile) -> Self {
        match profile {
            crate::config::DemoProfile::Demo => crate::simulator::Profile::Demo,
            crate::config::DemoProfile::Large => crate::simulator::Profile::Large,
            crate::config::DemoProfile::Xlarge => crate::simulator::Profile::XLarge,
        }
    }
}

/// A demo account created on the first demo start, printed once.
pub struct DemoAccount {
    pub username: String,
    pub role: Role,
    pub password: String,
}

pub struct Server {
    pub router: Router,
    pub state: AppState,
    /// Set when no account exists: the token of the one-time setup link.
    pub setup_token: Option<String>,
    pub demo_accounts: Vec<DemoAccount>,
    /// Every job of `crate::jobs`: stopped at shutdown.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// Kept alive for as long as the server runs (demo mode only).
    simulator: Option<RunningSimulator>,
}

pub async fn build(db: SqlitePool, config: ServerConfig) -> anyhow::Result<Server> {
    let (api, simulator) = match &config.upstream {
        Upstream::Live { base_url, key } => (
            Client::new(ClientConfig::new(base_url.clone(), key.clone()))?,
            None,
        ),
        Upstream::Demo { profile, seed } => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let simulator = simulator::start(
                listener,
                SimulatorOptions {
                    profile: (*profile).into(),
                    seed: *seed,
                },
            )
            .await?;
            // The simulator accepts any admin-shaped key; this one exists only in memory.
            let key = AdminKey::new(format!("sk-ant-admin01-demo-{}", random_token()));
            (
                Client::new(ClientConfig::new(simulator.base_url(), key))?,
                Some(simulator),
            )
        }
    };

    // One deadline per Admin API call for pages and actions (jobs may use `with_deadline`).
    let api = api.with_deadline(config.api_deadline);
    let sqlite_sessions = SqliteStore::new(db.clone());
    sqlite_sessions.migrate().await?;
    let session_store = CachedSessions::new(sqlite_sessions, SESSIONS_IN_MEMORY);
    let clock = Clock::default();
    let started_at = clock.now();
    let services = Services::new(db, config, api, clock).await?;
    let oidc = match &services.config.sso.oidc {
        Some(settings) => Some(Arc::new(crate::auth::oidc::Oidc::new(settings.clone())?)),
        None => None,
    };
    let state = AppState::new(services, oidc);

    let mut demo_accounts = Vec::new();
    let mut setup_token = None;
    if !crate::service::accounts::exist(&state).await? {
        if state.config.is_demo() {
            demo_accounts = create_demo_accounts(&state).await?;
        } else {
            let token = random_token();
            *state.setup.lock().expect("setup lock") = Some(SetupToken {
                token: token.clone(),
                expires_at: state.clock.now() + SETUP_LINK_LIFETIME,
            });
            setup_token = Some(token);
        }
    }

    // Before serving and before any job: nothing of ours can write an outcome meanwhile.
    // Intents older than `started_at` belong to an earlier process; see `service::reconcile`.
    if let Err(error) = crate::service::reconcile::run(&state.services, started_at).await {
        tracing::error!(%error, "interrupted changes could not be resolved; they stay unresolved in the audit log");
    }

    // The pages' views of the stored model and the cost pages' figures, built before the
    // first request instead of by it (on `xlarge` that first view took 1.6 s).
    let warming = std::time::Instant::now();
    state.org.warm(state.config.key_rotation_days).await;
    crate::service::usage::warm(&state.services).await;
    tracing::info!(
        seconds = warming.elapsed().as_secs_f64(),
        "pages' views built"
    );
    crate::memory::release();

    let background = crate::jobs::spawn_all(&state.services, session_store.sqlite().clone());
    Ok(Server {
        router: web::router(state.clone(), session_store),
        state,
        setup_token,
        demo_accounts,
        background,
        simulator,
    })
}

/// One account per role, so a newcomer can try every view. Passwords are random and printed once.
async fn create_demo_accounts(state: &AppState) -> anyhow::Result<Vec<DemoAccount>> {
    let workspaces: Vec<String> = state
        .org
        .api()
        .list_all_workspaces(&WorkspaceFilter::default())
        .await
        .map(|list| list.into_iter().take(2).map(|w| w.id).collect())
        .unwrap_or_default();
    let mut created = Vec::new();
    for role in Role::ALL {
        let username = format!("demo-{}", role.as_str().replace('_', "-"));
        let password = random_token()[..20].to_owned();
        let assigned = if role.is_workspace_scoped() {
            workspaces.clone()
        } else {
            Vec::new()
        };
        let new = crate::service::accounts::NewAccount {
            username: username.clone(),
            role: Some(role),
            password: password.clone(),
            workspaces: assigned,
        };
        crate::service::accounts::create(
            state,
            &Caller::System {
                name: "system (demo)",
            },
            new,
        )
        .await?;
        created.push(DemoAccount {
            username,
            role,
            password,
        });
    }
    Ok(created)
}

impl Server {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish and closes the
    /// database cleanly (the WAL is checkpointed on close).
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        for task in &self.background {
            task.abort();
        }
        self.state.close().await;
        if let Some(simulator) = self.simulator {
            simulator.shutdown().await;
        }
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
