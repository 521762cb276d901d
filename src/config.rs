//! The server's settings from flags and the environment, and the validated configuration it
//! runs with (the command line around them is `crate::cli`).
//!
//! Every setting is a flag with an environment variable; `--help` lists them all. A bad value
//! stops start-up with a message naming the setting. The admin key is read only from the
//! environment (or a file named there), never from a flag, so it cannot land in shell history
//! or `ps` output.

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, ValueEnum};

use crate::anthropic::AdminKey;

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

    /// Seconds over which the whole organization is re-read when the Activity Feed cannot be
    /// read (when it can, the feed names what to re-read and `--sweep-minutes` applies).
    #[arg(long, env = "ORGKEEPER_SYNC_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86400))]
    pub sync_interval: u64,

    /// Seconds between two reads of the Compliance API's Activity Feed.
    #[arg(long, env = "ORGKEEPER_FEED_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub feed_interval: u64,

    /// Minutes over which the sweep re-reads the whole organization, at a flat number of calls
    /// a minute, to catch what the Activity Feed did not announce.
    #[arg(long, env = "ORGKEEPER_SWEEP_MINUTES", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub sweep_minutes: u64,

    /// The largest share (percent) of the Admin API's announced request budget that background
    /// reads may use; the rest is left to people and to the organization's own scripts.
    #[arg(long, env = "ORGKEEPER_API_SHARE_PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub api_share_percent: u64,

    /// Minutes of inactivity after which a session ends.
    #[arg(long, env = "ORGKEEPER_SESSION_IDLE_MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_idle_minutes: u64,

    /// Hours after sign-in after which a session ends, active or not.
    #[arg(long, env = "ORGKEEPER_SESSION_MAX_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_max_hours: u64,

    /// Milliseconds within which an account change made by another process on the same
    /// database (`orgkeeper user disable`) reaches the running server (0: checked on every request).
    #[arg(long, env = "ORGKEEPER_ACCOUNTS_RECHECK_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub accounts_recheck_ms: u64,

    /// Public URL people use to reach Orgkeeper, used in the printed first-run setup link.
    #[arg(long, env = "ORGKEEPER_PUBLIC_URL", value_parser = parse_base_url)]
    pub public_url: Option<String>,

    /// Days after which an API key counts as due for rotation.
    #[arg(long, env = "ORGKEEPER_KEY_ROTATION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub key_rotation_days: u32,

    /// Requests a minute each API token may make to Orgkeeper's Admin API (0: no limit).
    #[arg(long, env = "ORGKEEPER_TOKEN_RATE_LIMIT", default_value_t = 600, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub token_rate_limit: u32,

    /// Organization role of a person the identity provider provisions when none of their
    /// groups maps to one: user, claude_code_user, developer or billing.
    #[arg(long, env = "ORGKEEPER_SCIM_DEFAULT_ROLE", default_value = "user", value_parser = parse_scim_role)]
    pub scim_default_role: crate::anthropic::OrgRole,

    /// What happens to the workspace keys a person created when the identity provider
    /// deprovisions them: deactivate, archive or leave.
    #[arg(
        long,
        env = "ORGKEEPER_SCIM_OFFBOARD_KEYS",
        default_value = "deactivate"
    )]
    pub scim_offboard_keys: ScimKeys,

    /// Record what SCIM provisioning would change without changing the organization.
    #[arg(long, env = "ORGKEEPER_SCIM_DRY_RUN", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub scim_dry_run: bool,

    /// Minutes after which usage and cost buckets are settled and kept locally instead of fetched again.
    #[arg(long, env = "ORGKEEPER_USAGE_SETTLE_MINUTES", default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=10080))]
    pub usage_settle_minutes: u64,

    /// Days of hourly usage kept in the local store (daily usage is kept for the API's whole history).
    #[arg(long, env = "ORGKEEPER_USAGE_HOURLY_DAYS", default_value_t = 31, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub usage_hourly_days: u32,

    /// URL that receives a JSON POST (Slack-compatible `text`) when a budget threshold is crossed.
    #[arg(long, env = "ORGKEEPER_ALERT_WEBHOOK_URL", value_parser = parse_base_url)]
    pub alert_webhook_url: Option<String>,

    /// Kinds of change made outside Orgkeeper that are posted to the alert webhook, comma
    /// separated: new_admin, key_without_expiry, key_created, member_removed.
    #[arg(long, env = "ORGKEEPER_ALERT_OBSERVED", value_delimiter = ',')]
    pub alert_observed: Vec<ObservedAlert>,

    /// Days of audit records to keep (unset: keep forever). Pruning keeps the chain verifiable.
    #[arg(long, env = "ORGKEEPER_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub audit_retention_days: Option<u32>,

    /// Simulated organization used when no admin key is set.
    #[arg(long, env = "ORGKEEPER_DEMO_PROFILE", default_value = "demo")]
    pub demo_profile: DemoProfile,

    /// OpenID Connect issuer URL (turns on "Sign in with …"); discovery is read from it.
    #[arg(long, env = "ORGKEEPER_OIDC_ISSUER", value_parser = parse_issuer)]
    pub oidc_issuer: Option<String>,

    /// OpenID Connect client id registered at the identity provider.
    #[arg(long, env = "ORGKEEPER_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// Scopes asked for at sign-in (space- or comma-separated; `openid` is always included).
    #[arg(
        long,
        env = "ORGKEEPER_OIDC_SCOPES",
        default_value = "openid email profile"
    )]
    pub oidc_scopes: String,

    /// ID-token claim that lists the person's groups.
    #[arg(long, env = "ORGKEEPER_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// Name on the sign-in button ("Sign in with …").
    #[arg(
        long,
        env = "ORGKEEPER_OIDC_DISPLAY_NAME",
        default_value = "single sign-on"
    )]
    pub oidc_display_name: String,

    /// Allow password sign-in (false: only the break-glass owner may use a password).
    #[arg(long, env = "ORGKEEPER_LOCAL_PASSWORDS", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub local_passwords: bool,

    /// The one owner account that may still sign in with a password when local passwords are off.
    #[arg(long, env = "ORGKEEPER_BREAK_GLASS_OWNER")]
    pub break_glass_owner: Option<String>,

    /// Header a trusted authenticating proxy sets to the signed-in person (e.g. X-Forwarded-Email).
    #[arg(long, env = "ORGKEEPER_AUTH_PROXY_HEADER", value_parser = parse_header_name)]
    pub auth_proxy_header: Option<String>,

    /// Header the proxy sets to the person's groups (comma-separated).
    #[arg(long, env = "ORGKEEPER_AUTH_PROXY_GROUPS_HEADER", value_parser = parse_header_name)]
    pub auth_proxy_groups_header: Option<String>,

    /// Addresses or CIDR ranges of the proxy (comma-separated); the header is believed only from them.
    #[arg(long, env = "ORGKEEPER_AUTH_PROXY_TRUSTED", value_parser = parse_networks)]
    pub auth_proxy_trusted: Option<Networks>,
}

/// A kind of observed change that is worth a webhook message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ObservedAlert {
    /// Someone became an organization admin.
    #[value(name = "new_admin")]
    NewAdmin,
    /// An API key was created with no expiry date.
    #[value(name = "key_without_expiry")]
    KeyWithoutExpiry,
    /// An API key was created.
    #[value(name = "key_created")]
    KeyCreated,
    /// A member was removed from the organization.
    #[value(name = "member_removed")]
    MemberRemoved,
}

/// The fate of a deprovisioned person's workspace keys (their personal keys stop with them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScimKeys {
    Deactivate,
    Archive,
    Leave,
}

fn parse_scim_role(value: &str) -> Result<crate::anthropic::OrgRole, String> {
    let role = crate::anthropic::OrgRole::parse(value.trim());
    if role.is_assignable_in_console() {
        Ok(role)
    } else {
        Err("one of user, claude_code_user, developer or billing (the roles the Admin API may give)".into())
    }
}

/// How SCIM provisioning changes the organization.
#[derive(Clone, Debug)]
pub struct ScimConfig {
    pub default_role: crate::anthropic::OrgRole,
    pub offboard_keys: ScimKeys,
    /// Record what would change; change nothing.
    pub dry_run: bool,
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig {
            default_role: crate::anthropic::OrgRole::User,
            offboard_keys: ScimKeys::Deactivate,
            dry_run: false,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DemoProfile {
    Demo,
    Large,
    Xlarge,
}

fn parse_base_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// An issuer is compared byte for byte with the ID token's `iss`, so it is kept as given
/// (authentik's ends with `/`, Google's does not).
fn parse_issuer(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(value.to_owned())
}

fn parse_header_name(value: &str) -> Result<String, String> {
    axum::http::HeaderName::from_bytes(value.trim().as_bytes())
        .map(|name| name.as_str().to_owned())
        .map_err(|_| format!("{value:?} is not an HTTP header name"))
}

/// Addresses and CIDR ranges, e.g. `127.0.0.1, 10.0.0.0/8, ::1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Networks(pub Vec<ipnet::IpNet>);

impl Networks {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

pub fn parse_networks(value: &str) -> Result<Networks, String> {
    let mut networks = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = part
            .parse::<ipnet::IpNet>()
            .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| format!("{part:?} is not an address or CIDR range"))?;
        networks.push(net);
    }
    if networks.is_empty() {
        return Err("list at least one address or CIDR range".into());
    }
    Ok(Networks(networks))
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

/// A client secret: never logged, never rendered (`Debug` prints `[redacted]`).
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(secret.into())
    }

    /// For the token request only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// Sign-in with the company's OpenID Connect provider.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE only).
    pub client_secret: Option<ClientSecret>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub display_name: String,
    /// `<public URL>/auth/oidc/callback`, registered at the provider.
    pub redirect_url: String,
}

/// Sign-in by a header that a trusted authenticating proxy sets.
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// Lower-case header name.
    pub header: String,
    pub groups_header: Option<String>,
    pub trusted: Networks,
}

/// Every way to sign in besides the local password, and whether passwords still work.
#[derive(Clone, Debug)]
pub struct SsoConfig {
    pub oidc: Option<OidcSettings>,
    pub proxy: Option<ProxySettings>,
    pub local_passwords: bool,
    pub break_glass_owner: Option<String>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        SsoConfig {
            oidc: None,
            proxy: None,
            local_passwords: true,
            break_glass_owner: None,
        }
    }
}

impl SsoConfig {
    /// Whether this account may sign in with its password.
    pub fn password_allowed_for(&self, username: &str) -> bool {
        self.local_passwords
            || self
                .break_glass_owner
                .as_deref()
                .is_some_and(|owner| owner.eq_ignore_ascii_case(username))
    }
}

/// Reads and checks the sign-in settings; the secret comes from the environment only.
pub fn sso_from_args(
    args: &ServeArgs,
    get: impl Fn(&str) -> Option<String>,
) -> Result<SsoConfig, String> {
    let non_empty = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let oidc = match &args.oidc_issuer {
        None => None,
        Some(issuer) => {
            let client_id = args
                .oidc_client_id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .ok_or("ORGKEEPER_OIDC_CLIENT_ID: required when ORGKEEPER_OIDC_ISSUER is set")?;
            let client_secret = if let Some(secret) = non_empty("ORGKEEPER_OIDC_CLIENT_SECRET") {
                Some(ClientSecret::new(secret))
            } else if let Some(path) = non_empty("ORGKEEPER_OIDC_CLIENT_SECRET_FILE") {
                let secret = std::fs::read_to_string(&path).map_err(|e| {
                    format!("ORGKEEPER_OIDC_CLIENT_SECRET_FILE: cannot read {path:?}: {e}")
                })?;
                Some(ClientSecret::new(secret.trim()))
            } else {
                None
            };
            let mut scopes: Vec<String> = args
                .oidc_scopes
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !scopes.iter().any(|s| s == "openid") {
                scopes.insert(0, "openid".into());
            }
            if args.oidc_groups_claim.trim().is_empty() {
                return Err("ORGKEEPER_OIDC_GROUPS_CLAIM: must name a claim".into());
            }
            // The provider sends people back to this address, so it must be one they reach.
            if args.public_url.is_none() && args.bind.ip().is_unspecified() {
                return Err(format!(
                    "ORGKEEPER_PUBLIC_URL: required with ORGKEEPER_OIDC_ISSUER when listening on {} (the sign-in redirect URL is built from it)",
                    args.bind
                ));
            }
            let base = args
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", args.bind));
            Some(OidcSettings {
                issuer: issuer.clone(),
                client_id,
                client_secret,
                scopes,
                groups_claim: args.oidc_groups_claim.trim().to_owned(),
                display_name: args.oidc_display_name.trim().to_owned(),
                redirect_url: format!("{base}/auth/oidc/callback"),
            })
        }
    };
    let proxy = match (&args.auth_proxy_header, &args.auth_proxy_trusted) {
        (None, None) => None,
        (Some(_), None) => {
            return Err("ORGKEEPER_AUTH_PROXY_TRUSTED: required when ORGKEEPER_AUTH_PROXY_HEADER is set (the addresses of your proxy)".into())
        }
        (None, Some(_)) => {
            return Err("ORGKEEPER_AUTH_PROXY_HEADER: required when ORGKEEPER_AUTH_PROXY_TRUSTED is set".into())
        }
        (Some(header), Some(trusted)) => Some(ProxySettings {
            header: header.clone(),
            groups_header: args.auth_proxy_groups_header.clone(),
            trusted: trusted.clone(),
        }),
    };
    if !args.local_passwords {
        if oidc.is_none() && proxy.is_none() {
            return Err("ORGKEEPER_LOCAL_PASSWORDS: passwords can be turned off only when ORGKEEPER_OIDC_ISSUER or ORGKEEPER_AUTH_PROXY_HEADER is set".into());
        }
        if args.break_glass_owner.is_none() {
            return Err("ORGKEEPER_BREAK_GLASS_OWNER: name the owner account that may still sign in with a password when local passwords are off".into());
        }
    }
    Ok(SsoConfig {
        oidc,
        proxy,
        local_passwords: args.local_passwords,
        break_glass_owner: args.break_glass_owner.clone(),
    })
}

/// Where the dashboard gets its organization from.
#[derive(Clone, Debug)]
pub enum Upstream {
    /// The built-in simulator, started in-process on a loopback port.
    Demo { profile: DemoProfile, seed: u64 },
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
    /// Without the Activity Feed: the whole organization is re-read once per this period.
    pub sync_interval: Duration,
    /// How often the Activity Feed is read.
    pub feed_interval: Duration,
    /// With the Activity Feed: the sweep re-reads the whole organization once per this period.
    pub sweep_period: Duration,
    /// The share of the Admin API's announced budget background reads may use (0–1].
    pub api_share: f64,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// How often the server reads `account_changes` to notice an account change made by
    /// another process (the command line); zero reads it on every request.
    pub accounts_recheck: Duration,
    pub public_url: Option<String>,
    pub key_rotation_days: u32,
    /// Requests a minute per API token (0: no limit).
    pub token_rate_limit: u32,
    pub usage_settle: Duration,
    pub usage_hourly_days: u32,
    pub alert_webhook_url: Option<String>,
    /// Observed changes posted to the webhook.
    pub alert_observed: Vec<ObservedAlert>,
    pub audit_retention_days: Option<u32>,
    /// Whether background jobs (usage sync, scheduled archives) run; tests drive them directly.
    pub background_jobs: bool,
    /// Single sign-on and whether local passwords work.
    pub sso: SsoConfig,
    /// SCIM provisioning.
    pub scim: ScimConfig,
}

impl ServerConfig {
    pub fn new(upstream: Upstream) -> Self {
        Self {
            upstream,
            api_deadline: Duration::from_secs(15),
            secure_cookies: false,
            trust_proxy: false,
            sync_interval: Duration::from_secs(60),
            feed_interval: Duration::from_secs(10),
            sweep_period: Duration::from_secs(3600),
            api_share: 0.5,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            accounts_recheck: Duration::from_secs(1),
            public_url: None,
            key_rotation_days: 90,
            token_rate_limit: 600,
            usage_settle: Duration::from_secs(2 * 3600),
            usage_hourly_days: 31,
            alert_webhook_url: None,
            alert_observed: Vec::new(),
            audit_retention_days: None,
            background_jobs: true,
            sso: SsoConfig::default(),
            scim: ScimConfig::default(),
        }
    }

    pub fn from_args(args: &ServeArgs, key: Option<AdminKey>) -> Self {
        let upstream = match key {
            Some(key) => Upstream::Live {
                base_url: args.api_base_url.clone(),
                key,
            },
            None => Upstream::Demo {
                profile: args.demo_profile,
                seed: 42,
            },
        };
        Self {
            upstream,
            api_deadline: Duration::from_secs(args.api_deadline_seconds),
            secure_cookies: args.secure_cookies,
            trust_proxy: args.trust_proxy,
            sync_interval: Duration::from_secs(args.sync_interval),
            feed_interval: Duration::from_secs(args.feed_interval),
            sweep_period: Duration::from_secs(args.sweep_minutes * 60),
            api_share: args.api_share_percent as f64 / 100.0,
            session_idle: Duration::from_secs(args.session_idle_minutes * 60),
            session_max: Duration::from_secs(args.session_max_hours * 3600),
            accounts_recheck: Duration::from_millis(args.accounts_recheck_ms),
            public_url: args.public_url.clone(),
            key_rotation_days: args.key_rotation_days,
            token_rate_limit: args.token_rate_limit,
            usage_settle: Duration::from_secs(args.usage_settle_minutes * 60),
            usage_hourly_days: args.usage_hourly_days,
            alert_webhook_url: args.alert_webhook_url.clone(),
            alert_observed: args.alert_observed.clone(),
            audit_retention_days: args.audit_retention_days,
            background_jobs: true,
            sso: SsoConfig::default(),
            scim: ScimConfig {
                default_role: args.scim_default_role.clone(),
                offboard_keys: args.scim_offboard_keys,
                dry_run: args.scim_dry_run,
            },
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self.upstream, Upstream::Demo { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["orgkeeper", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(args)) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn sso_settings_that_do_not_fit_together_name_the_setting() {
        let no_client = sso_from_args(
            &serve_args(&["--oidc-issuer", "https://idp.example"]),
            |_| None,
        )
        .unwrap_err();
        assert!(
            no_client.starts_with("ORGKEEPER_OIDC_CLIENT_ID:"),
            "{no_client}"
        );
        let no_trusted = sso_from_args(
            &serve_args(&["--auth-proxy-header", "X-Forwarded-Email"]),
            |_| None,
        )
        .unwrap_err();
        assert!(
            no_trusted.starts_with("ORGKEEPER_AUTH_PROXY_TRUSTED:"),
            "{no_trusted}"
        );
        let nothing_else =
            sso_from_args(&serve_args(&["--local-passwords", "false"]), |_| None).unwrap_err();
        assert!(
            nothing_else.starts_with("ORGKEEPER_LOCAL_PASSWORDS:"),
            "{nothing_else}"
        );
        let bad_cidr =
            Cli::try_parse_from(["orgkeeper", "serve", "--auth-proxy-trusted", "10.0.0.0/99"])
                .unwrap_err();
        assert!(
            bad_cidr.to_string().contains("--auth-proxy-trusted"),
            "{bad_cidr}"
        );
    }

    #[test]
    fn the_client_secret_is_read_from_the_environment_and_never_printed() {
        let args = serve_args(&[
            "--oidc-issuer",
            "https://auth.example/application/o/orgkeeper/",
            "--oidc-client-id",
            "orgkeeper",
            "--public-url",
            "https://orgkeeper.example",
        ]);
        let sso = sso_from_args(&args, |name| {
            (name == "ORGKEEPER_OIDC_CLIENT_SECRET").then(|| "hunter2-client-secret".to_owned())
        })
        .unwrap();
        let oidc = sso.oidc.unwrap();
        assert_eq!(
            oidc.issuer, "https://auth.example/application/o/orgkeeper/",
            "kept as given"
        );
        assert_eq!(
            oidc.redirect_url,
            "https://orgkeeper.example/auth/oidc/callback"
        );
        assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
        assert_eq!(
            oidc.client_secret.as_ref().unwrap().expose_secret(),
            "hunter2-client-secret"
        );
        assert!(!format!("{oidc:?}").contains("hunter2"));
    }

    #[test]
    fn trusted_networks_match_addresses_and_ranges() {
        let networks = parse_networks("127.0.0.1, 10.0.0.0/8").unwrap();
        assert!(networks.contains("127.0.0.1".parse().unwrap()));
        assert!(networks.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(networks.contains("10.9.8.7".parse().unwrap()));
        assert!(!networks.contains("127.0.0.2".parse().unwrap()));
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
