//! The `orgkeeper` command line: its subcommands and their arguments. The serve settings
//! themselves are `crate::config`; this module only adds the commands around them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{DemoProfile, ServeArgs};
use crate::simulator::FaultSpec;

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

// Parsed once at start-up: the size of `serve`'s settings does not matter.
#[allow(clippy::large_enum_variant)]
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
    /// Manage API tokens (the Admin API served by Orgkeeper, and SCIM provisioning).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Copy the database, consistently, while the server runs; the copy's audit chain is
    /// verified before this exits (0: intact; 2: the copy's chain is broken).
    Backup {
        /// Where to write the copy; must not exist yet.
        file: PathBuf,
    },
    /// Exit 0 when the server on --bind answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, env = "ORGKEEPER_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
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
    /// malformed, redirect, echo (the request's key echoed in every error field) or endless
    /// (pagination that never ends) and keys path-prefix, method, rate, times, retry-after, location
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
    /// Whether the admin key may read the Compliance API's Activity Feed: on, or off (403
    /// permission_error, as for a key created before the Compliance API was enabled).
    #[arg(long, default_value = "on")]
    pub activity_feed: FeedAccess,
    /// Whether the Usage and Cost Analytics API (cost per person) answers: on, or off (403
    /// permission_error, as for an organization it is not enabled for).
    #[arg(long, default_value = "on")]
    pub analytics: FeedAccess,
    /// Seconds after its change that each activity appears in the Activity Feed (the real
    /// feed's lag is about a minute).
    #[arg(long, default_value_t = 0)]
    pub activity_delay_seconds: u64,
    /// Admin API requests a minute before it answers 429 with retry-after, announced in
    /// anthropic-ratelimit-requests-* headers (0: no limit and no headers); the Compliance API
    /// keeps its documented 600 a minute.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FeedAccess {
    On,
    Off,
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
pub enum TokenCommand {
    /// Create a token; its secret is the last line of standard output (shown once).
    Create {
        name: String,
        /// The account it acts as (an API token); its role and workspaces apply at each use.
        #[arg(long, required_unless_present = "scim", conflicts_with = "scim")]
        account: Option<String>,
        /// A SCIM provisioning token for an identity provider (no account).
        #[arg(long)]
        scim: bool,
        /// Reads only: every change is refused.
        #[arg(long)]
        read_only: bool,
        /// Narrow it to a workspace the account may read (repeat for several).
        #[arg(long = "workspace")]
        workspaces: Vec<String>,
        /// Days until it expires (1 to 365; default 90).
        #[arg(long, conflicts_with = "never_expires")]
        expires_in_days: Option<u32>,
        /// Never expires (owners' tokens and SCIM tokens only).
        #[arg(long)]
        never_expires: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name, at once.
    Revoke { name: String },
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

fn parse_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value.parse().map_err(|_| "not a number".to_string())?;
    if !(0.0..=1.0).contains(&rate) {
        return Err("must be between 0 and 1".into());
    }
    Ok(rate)
}
