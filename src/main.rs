//! The `orgkeeper` command: parse, configure, run one subcommand.

use std::io::Read;
use std::process::ExitCode;

use orgkeeper::audit::{AuditLog, ChainReport, ExportFormat, Filter};
use orgkeeper::cli::{
    AuditCommand, Cli, Command, ExportFormatArg, SimulateArgs, TokenCommand, UserCommand,
};
use orgkeeper::config::{self, ServeArgs, ServerConfig};
use orgkeeper::service::{self, Caller, Services};
use orgkeeper::{db, server, simulator};
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: under load glibc's spent a quarter of a page view's time
/// (arena locks, consolidation) and kept what was freed in per-thread arenas, so resident
/// memory grew with load (README, Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging() {
    let filter = EnvFilter::try_from_env("ORGKEEPER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let json = std::env::var("ORGKEEPER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    orgkeeper::memory::configure();
    let (database, command) = Cli::parse_with_default();
    init_logging();
    match run(&database, command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(database: &std::path::Path, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(database, args).await,
        Command::Simulate(args) => simulate(args).await,
        Command::User(command) => user(database, command).await,
        Command::Token(command) => token(database, command).await,
        Command::Audit(command) => audit(database, command).await,
        Command::Backup { file } => backup(database, &file).await,
        Command::Healthcheck { bind } => healthcheck(bind).await,
    }
}

async fn serve(database: &std::path::Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let key = config::admin_key_from_env().map_err(anyhow::Error::msg)?;
    let mut config = ServerConfig::from_args(&args, key);
    config.sso = config::sso_from_args(&args, |name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    let pool = db::connect(database).await.map_err(|e| {
        anyhow::anyhow!(
            "--database / ORGKEEPER_DATABASE {}: {e:#}",
            database.display()
        )
    })?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "--bind / ORGKEEPER_BIND {}: cannot listen there: {e}",
                args.bind
            )
        })?;
    let base = config.public_url.clone().unwrap_or_else(|| {
        format!(
            "http://{}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        )
    });
    let demo = config.is_demo();
    let server = server::build(pool, config).await?;

    if demo {
        println!("Demo organization: simulated data (set ANTHROPIC_ADMIN_API_KEY to manage a real organization).");
    }
    if !server.demo_accounts.is_empty() {
        println!("Demo accounts, one per role (passwords shown only this once):");
        for account in &server.demo_accounts {
            println!(
                "  {:<18} {:<10} {}",
                account.username,
                account.role.as_str(),
                account.password
            );
        }
    }
    if let Some(token) = &server.setup_token {
        println!("No account exists yet. Create the owner account within the next hour at:");
        println!("  {base}/setup?token={token}");
        println!("(or run `orgkeeper user add NAME --role owner --password-stdin`).");
    }
    println!("Orgkeeper is listening on {base}");
    tracing::info!(bind = %args.bind, demo, "serving");
    server.run(listener, server::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| anyhow::anyhow!("--bind {}: cannot listen there: {e}", args.bind))?;
    let options = simulator::SimulatorOptions {
        profile: args.profile.into(),
        seed: args.seed,
    };
    let running = if args.fault_control {
        simulator::start_with_fault_control(listener, options).await?
    } else {
        simulator::start(listener, options).await?
    };
    running.set_spend_limits_access(args.spend_limits);
    running.set_activity_feed(args.activity_feed == orgkeeper::cli::FeedAccess::On);
    running.set_analytics_access(args.analytics == orgkeeper::cli::FeedAccess::On);
    running.set_activity_delay(std::time::Duration::from_secs(args.activity_delay_seconds));
    running.set_rate_limit(args.rate_limit);
    let faults = running.faults();
    faults.set_latency(std::time::Duration::from_millis(args.latency_ms));
    faults.set_failure_rate(args.failure_rate);
    for fault in args.faults {
        faults.add(fault);
    }
    println!(
        "Admin API simulator ({:?} profile, seed {}) at {}",
        args.profile,
        args.seed,
        running.base_url()
    );
    if args.fault_control {
        println!(
            "Fault control: POST {}/_faults {{\"fault\": \"429:retry-after=30\"}}, DELETE to clear.",
            running.base_url()
        );
    }
    println!("Use any key that starts with sk-ant-admin.");
    server::shutdown_signal().await;
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn read_password_from_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    // One line: the password, without the trailing newline a pipe adds.
    Ok(input.lines().next().unwrap_or_default().to_owned())
}

/// The command line acts as a system caller, through the same service functions as the pages.
const CLI: Caller = Caller::System {
    name: "system (command line)",
};

async fn user(database: &std::path::Path, command: UserCommand) -> anyhow::Result<ExitCode> {
    let pool = db::connect(database).await?;
    let services = Services::offline(pool.clone()).await?;
    let by_name = |name: String| {
        let services = services.clone();
        async move {
            service::accounts::find_by_name(&services, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("There is no account named {name:?}."))
        }
    };
    match command {
        UserCommand::Add {
            name,
            role,
            workspaces,
            ..
        } => {
            let new = service::accounts::NewAccount {
                username: name,
                role: Some(role),
                password: read_password_from_stdin()?,
                workspaces,
            };
            let account = service::accounts::create(&services, &CLI, new).await?;
            println!("Created {} ({}).", account.username, role.as_str());
        }
        UserCommand::Passwd { name, .. } => {
            let account = by_name(name).await?;
            let password = read_password_from_stdin()?;
            service::accounts::reset_password(&services, &CLI, &account, &password).await?;
            println!(
                "Password changed for {}; their sessions were ended.",
                account.username
            );
        }
        UserCommand::List => {
            let now = services.clock.now();
            println!(
                "{:<24} {:<10} {:<9} {:<7} WORKSPACES",
                "NAME", "ROLE", "STATUS", "LOCKED"
            );
            for account in service::accounts::list(&services).await? {
                println!(
                    "{:<24} {:<10} {:<9} {:<7} {}",
                    account.username,
                    account.role.as_str(),
                    if account.disabled {
                        "disabled"
                    } else {
                        "active"
                    },
                    if account.is_locked(now) { "yes" } else { "no" },
                    account.workspaces.join(",")
                );
            }
        }
        UserCommand::Disable { name } => {
            let account = by_name(name).await?;
            service::accounts::set_disabled(&services, &CLI, &account, true).await?;
            println!("Disabled {}; their sessions were ended.", account.username);
        }
        UserCommand::Unlock { name } => {
            let account = by_name(name).await?;
            service::accounts::unlock(&services, &CLI, &account).await?;
            println!("Unlocked {}.", account.username);
        }
    }
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn token(database: &std::path::Path, command: TokenCommand) -> anyhow::Result<ExitCode> {
    use orgkeeper::auth::tokens::TokenKind;
    let pool = db::connect(database).await?;
    let services = Services::offline(pool.clone()).await?;
    match command {
        TokenCommand::Create {
            name,
            account,
            scim,
            read_only,
            workspaces,
            expires_in_days,
            never_expires,
        } => {
            let account = match account {
                Some(name) => Some(
                    service::accounts::find_by_name(&services, &name)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("There is no account named {name:?}."))?,
                ),
                None => None,
            };
            let new = service::tokens::NewToken {
                name,
                kind: if scim {
                    TokenKind::Scim
                } else {
                    TokenKind::Api
                },
                account,
                read_only,
                workspaces,
                expires_in_days: if never_expires {
                    None
                } else {
                    Some(expires_in_days.unwrap_or(service::tokens::DEFAULT_DAYS))
                },
            };
            let created = service::tokens::create(&services, &CLI, new).await?;
            let expiry = created
                .token
                .expires_at
                .map_or("never expires".to_owned(), |at| {
                    format!("expires {}", at.format("%Y-%m-%d"))
                });
            println!(
                "Created the token {} ({expiry}). Keep it now: it is not shown again.",
                created.token.name
            );
            println!("{}", created.secret.expose());
        }
        TokenCommand::List => {
            let now = services.clock.now();
            println!(
                "{:<24} {:<5} {:<20} {:<9} {:<11} {:<20} LAST USED",
                "NAME", "KIND", "ACCOUNT", "ACCESS", "EXPIRES", "STATE"
            );
            for (token, account) in service::tokens::all(&services).await? {
                let state = if token.is_revoked() {
                    "revoked"
                } else if token.is_expired(now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<5} {:<20} {:<9} {:<11} {:<20} {}",
                    token.name,
                    token.kind.as_str(),
                    account.unwrap_or_else(|| "-".into()),
                    if token.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    token
                        .expires_at
                        .map_or("never".into(), |at| at.format("%Y-%m-%d").to_string()),
                    state,
                    token.last_used_at.map_or("never".into(), |at| at
                        .format("%Y-%m-%d %H:%M UTC")
                        .to_string())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            let token = service::tokens::find_by_name(&services, &name)
                .await
                .map_err(|_| anyhow::anyhow!("There is no live token named {name:?}."))?;
            service::tokens::revoke(&services, &CLI, &token).await?;
            println!(
                "Revoked the token {}: it is refused from now on.",
                token.name
            );
        }
    }
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn audit(database: &std::path::Path, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let pool = db::connect(database).await?;
    let audit = AuditLog::new(pool.clone());
    let code = match command {
        AuditCommand::Verify => {
            match audit.verify().await? {
                ChainReport::Intact {
                    records,
                    last_seq,
                    last_time,
                } => {
                    match (last_seq, last_time) {
                    (Some(seq), Some(time)) => println!("Audit chain intact: {records} records, verified up to record {seq} at {}.", time.to_rfc3339()),
                    _ => println!("Audit chain intact: no records yet."),
                }
                    ExitCode::SUCCESS
                }
                ChainReport::Broken { seq, reason } => {
                    eprintln!("Audit chain BROKEN at record {seq}: {reason}");
                    ExitCode::from(2)
                }
            }
        }
        AuditCommand::Export { format } => {
            let format = match format {
                ExportFormatArg::Csv => ExportFormat::Csv,
                ExportFormatArg::Jsonl => ExportFormat::Jsonl,
            };
            let mut stdout = tokio::io::stdout();
            audit
                .export(&Filter::default(), format, &mut stdout)
                .await?;
            tokio::io::AsyncWriteExt::flush(&mut stdout).await?;
            ExitCode::SUCCESS
        }
    };
    pool.close().await;
    Ok(code)
}

async fn backup(database: &std::path::Path, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let pool = db::connect(database).await?;
    let done = orgkeeper::backup::backup(&pool, file).await;
    pool.close().await;
    let done = done?;
    let newest = match &done.newest {
        Some((seq, hash)) => format!("newest audit record {seq} (hash {hash})"),
        None => "no audit records yet".to_owned(),
    };
    match done.chain {
        ChainReport::Intact { records, .. } => {
            println!(
                "Backup written to {}: {records} audit records, {newest}; its chain is intact.",
                done.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ChainReport::Broken { seq, reason } => {
            eprintln!(
                "Backup written to {}, but its audit chain is BROKEN at record {seq}: {reason}. The live database's chain is broken too: run `orgkeeper audit verify`.",
                done.path.display()
            );
            Ok(ExitCode::from(2))
        }
    }
}

async fn healthcheck(bind: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    // A wildcard bind is reached on loopback of the same address family.
    let mut target = bind;
    if bind.ip().is_unspecified() {
        target.set_ip(match bind {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{target}/healthz");
    let ok = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?
        .get(&url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
