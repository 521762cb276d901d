//! Command line, environment and the validated configuration the server runs with.
//!
//! Every setting is a flag with an environment variable; `--help` lists them all. A bad value
//! stops start-up with a message naming the setting. The admin key is read only from the
//! environment (or a file named there), never from a flag, so it cannot land in shell history
//! or `ps` output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::anthropic::AdminKey;
use crate::simulator::{FaultSpec, Profile};

const ENVIRONMENT_HELP: &str = "\
Admin API key (read from the environment only, never from a flag):
  ANTHROPIC_ADMIN_API_KEY   the sk-ant-admin… key
  ANTHROPIC_ADMIN_KEY       the same, older name
  ANTHROPIC_ADMIN_KEY_FILE  path of a file holding the key (e.g. a Docker or Kubernetes secret)
With no key set, `serve` runs the built-in demo organization (simulated data).

Logging: ORGKEEPER_LOG (e.g. info, orgkeeper=debug), ORGKEEPER_LOG_FORMAT (text|json).";

#[derive(Debug, Parser)]
#[command(name = "orgkeeper", version, about = "Self-hosted dashboard for the administrators of an Anthropic organization", after_help = ENVIRONMENT_HELP)]
pub struct Cli {
    /// SQLite database file (created on first run).
    #[arg(
        long,
        env = "ORGKEEPER_DATABASE",
        default_value = "./orgkeeper.db",
        global = true
    )]
    pub database: PathBuf,

    /// What to do; without one, `serve` (so `cargo run --release` starts the demo).
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the command line into the database path and the command; with no subcommand
    /// it is parsed again as `serve`, so flags and environment variables apply as usual.
    pub fn parse_with_default() -> (PathBuf, Command) {
        let mut cli = Cli::parse();
        if cli.command.is_none() {
            cli = Cli::parse_from(std::env::args_os().chain(std::iter::once("serve".into())));
        }
        let command = cli
            .command
            .expect("`serve` was supplied when no command was given");
        (cli.database, command)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the dashboard (the demo organization when no admin key is set).
    #[command(after_help = ENVIRONMENT_HELP)]
    Serve(ServeArgs),
    /// Serve the Admin API simulator on its own, for scripts and benchmarks.
    Simulate(SimulateArgs),
    /// Manage dashboard accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Check and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Exit 0 when the server on --bind answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, env = "ORGKEEPER_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "ORGKEEPER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Base URL of the Admin API.
    #[arg(long, env = "ORGKEEPER_API_BASE_URL", default_value = "https://api.anthropic.com", value_parser = parse_base_url)]
    pub api_base_url: String,

    /// Mark cookies Secure; set this when users reach Orgkeeper over HTTPS.
    #[arg(long, env = "ORGKEEPER_SECURE_COOKIES", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub secure_cookies: bool,

    /// Trust the last hop of X-Forwarded-For for the client address (only behind your own reverse proxy).
    #[arg(long, env = "ORGKEEPER_TRUST_PROXY", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub trust_proxy: bool,

    /// Seconds a page or action waits at most for one Admin API call, retries included.
    #[arg(long, env = "ORGKEEPER_API_DEADLINE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub api_deadline_seconds: u64,

    /// Seconds an Admin API read is reused before asking again (0 disables the cache).
    #[arg(long, env = "ORGKEEPER_CACHE_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub cache_ttl: u64,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "ORGKEEPER_SESSION_IDLE_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_idle_minutes: u64,

    /// Hours after sign-in after which a session ends, active or not.
    #[arg(long, env = "ORGKEEPER_SESSION_MAX_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_max_hours: u64,

    /// Public URL people use to reach Orgkeeper, used in the printed first-run setup link.
    #[arg(long, env = "ORGKEEPER_PUBLIC_URL", value_parser = parse_base_url)]
    pub public_url: Option<String>,

    /// Days after which an API key counts as due for rotation.
    #[arg(long, env = "ORGKEEPER_KEY_ROTATION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub key_rotation_days: u32,

    /// Minutes after which usage and cost buckets are settled and kept locally instead of fetched again.
    #[arg(long, env = "ORGKEEPER_USAGE_SETTLE_MINUTES", default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=10080))]
    pub usage_settle_minutes: u64,

    /// URL that receives a JSON POST (Slack-compatible `text`) when a budget threshold is crossed.
    #[arg(long, env = "ORGKEEPER_ALERT_WEBHOOK_URL", value_parser = parse_base_url)]
    pub alert_webhook_url: Option<String>,

    /// Days of audit records to keep (unset: keep forever). Pruning keeps the chain verifiable.
    #[arg(long, env = "ORGKEEPER_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub audit_retention_days: Option<u32>,

    /// Simulated organization used when no admin key is set.
    #[arg(long, env = "ORGKEEPER_DEMO_PROFILE", default_value = "demo")]
    pub demo_profile: DemoProfile,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "ORGKEEPER_SIMULATOR_BIND",
        default_value = "127.0.0.1:8090"
    )]
    pub bind: SocketAddr,
    /// Which organization to simulate.
    #[arg(long, default_value = "demo")]
    pub profile: DemoProfile,
    /// Seed for the generated organization (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Milliseconds added to every response.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of requests answered with a 500 error, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub failure_rate: f64,
    /// A fault to inject, repeatable: KIND[:key=value]… with KIND 429, 529, 500, hang,
    /// malformed or redirect and keys path-prefix, method, rate, times, retry-after, location
    /// (last), e.g. '429:path-prefix=/v1/organizations/users:retry-after=30:rate=0.5'.
    #[arg(long = "fault", value_parser = clap::value_parser!(FaultSpec))]
    pub faults: Vec<FaultSpec>,
    /// Serve POST/DELETE /_faults to add and clear faults while running. Off by default:
    /// anyone who reaches it can make the simulator fail.
    #[arg(long)]
    pub fault_control: bool,
    /// What the organization may do with spend limits: preview (list, set, delete), not-enabled
    /// (403 spend_limits_admin_api_writes_not_enabled) or unsupported (400
    /// organization_type_not_supported).
    #[arg(long, default_value = "preview", value_parser = clap::value_parser!(crate::simulator::SpendLimitsAccess))]
    pub spend_limits: crate::simulator::SpendLimitsAccess,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DemoProfile {
    Demo,
    Large,
}

impl From<DemoProfile> for Profile {
    fn from(profile: DemoProfile) -> Self {
        match profile {
            DemoProfile::Demo => Profile::Demo,
            DemoProfile::Large => Profile::Large,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add {
        name: String,
        #[arg(long)]
        role: crate::auth::Role,
        /// Workspace a team lead may read (repeat for several).
        #[arg(long = "workspace")]
        workspaces: Vec<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set an account's password (from standard input) and end its sessions.
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Disable an account and end its sessions.
    Disable { name: String },
    /// Clear a sign-in lockout.
    Unlock { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exits non-zero and names the first bad record if it was altered.
    Verify,
    /// Write every record to standard output.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: ExportFormatArg,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Jsonl,
}

fn parse_base_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value.parse().map_err(|_| "not a number".to_string())?;
    if !(0.0..=1.0).contains(&rate) {
        return Err("must be between 0 and 1".into());
    }
    Ok(rate)
}

/// Reads the admin key from the environment. `Ok(None)` means demo mode.
pub fn admin_key_from_env() -> Result<Option<AdminKey>, String> {
    admin_key_from(|name| std::env::var(name).ok())
}

fn admin_key_from(get: impl Fn(&str) -> Option<String>) -> Result<Option<AdminKey>, String> {
    let non_empty = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (setting, value) = if let Some(value) = non_empty("ANTHROPIC_ADMIN_API_KEY") {
        ("ANTHROPIC_ADMIN_API_KEY", value)
    } else if let Some(value) = non_empty("ANTHROPIC_ADMIN_KEY") {
        ("ANTHROPIC_ADMIN_KEY", value)
    } else if let Some(path) = non_empty("ANTHROPIC_ADMIN_KEY_FILE") {
        let value = std::fs::read_to_string(&path)
            .map_err(|e| format!("ANTHROPIC_ADMIN_KEY_FILE: cannot read {path:?}: {e}"))?;
        ("ANTHROPIC_ADMIN_KEY_FILE", value.trim().to_owned())
    } else {
        return Ok(None);
    };
    if !value.starts_with("sk-ant-admin") {
        return Err(format!(
            "{setting}: this is not an Admin API key (admin keys start with sk-ant-admin; create one in the Console under Settings → Admin keys)"
        ));
    }
    Ok(Some(AdminKey::new(value)))
}

/// Where the dashboard gets its organization from.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// The built-in simulator, started in-process on a loopback port.
    Demo { profile: Profile, seed: u64 },
    /// A real (or separately run) Admin API.
    Live { base_url: String, key: AdminKey },
}

/// The validated settings the server runs with. Tests build it directly.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub upstream: Upstream,
    /// How long a page or action waits at most for one Admin API call, retries included.
    pub api_deadline: Duration,
    pub secure_cookies: bool,
    pub trust_proxy: bool,
    pub cache_ttl: Duration,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub public_url: Option<String>,
    pub key_rotation_days: u32,
    pub usage_settle: Duration,
    pub alert_webhook_url: Option<String>,
    pub audit_retention_days: Option<u32>,
    /// Whether background jobs (usage sync, scheduled archives) run; tests drive them directly.
    pub background_jobs: bool,
    /// Window of the CSRF-refusal audit flood control (a few records per address per window,
    /// then one summary). One minute; tests shorten it.
    pub csrf_audit_window: Duration,
}

impl ServerConfig {
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            api_deadline: Duration::from_secs(15),
            secure_cookies: false,
            trust_proxy: false,
            cache_ttl: Duration::from_secs(30),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            public_url: None,
            key_rotation_days: 90,
            usage_settle: Duration::from_secs(2 * 3600),
            alert_webhook_url: None,
            audit_retention_days: None,
            background_jobs: true,
            csrf_audit_window: Duration::from_secs(60),
        }
    }

    pub fn from_args(args: &ServeArgs, key: Option<AdminKey>) -> Self {
        let upstream = match key {
            Some(key) => Upstream::Live {
                base_url: args.api_base_url.clone(),
                key,
            },
            None => Upstream::Demo {
                profile: args.demo_profile.into(),
                seed: 42,
            },
        };
        Self {
            upstream,
            api_deadline: Duration::from_secs(args.api_deadline_seconds),
            secure_cookies: args.secure_cookies,
            trust_proxy: args.trust_proxy,
            cache_ttl: Duration::from_secs(args.cache_ttl),
            session_idle: Duration::from_secs(args.session_idle_minutes * 60),
            session_max: Duration::from_secs(args.session_max_hours * 3600),
            public_url: args.public_url.clone(),
            key_rotation_days: args.key_rotation_days,
            usage_settle: Duration::from_secs(args.usage_settle_minutes * 60),
            alert_webhook_url: args.alert_webhook_url.clone(),
            audit_retention_days: args.audit_retention_days,
            background_jobs: true,
            csrf_audit_window: Duration::from_secs(60),
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self.upstream, Upstream::Demo { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_an_admin_key_names_the_setting() {
        let error = admin_key_from(|name| {
            (name == "ANTHROPIC_ADMIN_KEY").then(|| "sk-ant-api03-oops".to_owned())
        })
        .unwrap_err();
        assert!(error.starts_with("ANTHROPIC_ADMIN_KEY:"), "{error}");
        assert!(!error.contains("oops"), "the message must not echo the key");
    }

    #[test]
    fn no_key_means_demo_mode() {
        assert!(admin_key_from(|_| None).unwrap().is_none());
    }

    #[test]
    fn the_key_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "sk-ant-admin01-abc\n").unwrap();
        let path = path.to_string_lossy().into_owned();
        let key = admin_key_from(|name| (name == "ANTHROPIC_ADMIN_KEY_FILE").then(|| path.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(key.expose_secret(), "sk-ant-admin01-abc");
    }

    #[test]
    fn a_bad_bind_address_names_the_flag() {
        let error = Cli::try_parse_from(["orgkeeper", "serve", "--bind", "nowhere"]).unwrap_err();
        assert!(error.to_string().contains("--bind"), "{error}");
    }

    #[test]
    fn a_base_url_without_scheme_is_refused() {
        let error =
            Cli::try_parse_from(["orgkeeper", "serve", "--api-base-url", "api.anthropic.com"])
                .unwrap_err();
        assert!(error.to_string().contains("--api-base-url"), "{error}");
    }
}
