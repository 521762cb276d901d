//! The simulated organization: members, invites, workspaces, memberships, API keys and the
//! sparse set of usage "combos" that `usage.rs` turns into reports.
//!
//! Everything is generated from the seed with `ChaCha8Rng`, relative to an anchor (midnight
//! UTC of the day the simulator starts), so two simulators started the same day with the same
//! seed hold identical data. Lists keep creation order: every object gets a monotonically
//! increasing `seq`, and list endpoints sort by it (oldest first).

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Profile;

pub(crate) const INVITE_TTL_DAYS: i64 = 21;
/// Anthropic's documented cap on active workspaces; the `xlarge` profile has a raised one.
pub(crate) const MAX_ACTIVE_WORKSPACES: usize = 100;
pub(crate) const USAGE_HISTORY_DAYS: i64 = 90;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `<prefix>_01` + 22 alphanumerics, like the ids in the docs.
pub(crate) fn tagged_id(rng: &mut impl Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 25);
    s.push_str(prefix);
    s.push_str("_01");
    for _ in 0..22 {
        s.push(ALNUM[rng.gen_range(0..ALNUM.len())] as char);
    }
    s
}

fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.gen();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-4{}-a{}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        &h(8..10)[1..],
        h(10..16)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum OrgRole {
    User,
    Developer,
    Billing,
    Admin,
    ClaudeCodeUser,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::User => "user",
            OrgRole::Developer => "developer",
            OrgRole::Billing => "billing",
            OrgRole::Admin => "admin",
            OrgRole::ClaudeCodeUser => "claude_code_user",
        }
    }
    pub fn parse(s: &str) -> Option<OrgRole> {
        Some(match s {
            "user" => OrgRole::User,
            "developer" => OrgRole::Developer,
            "billing" => OrgRole::Billing,
            "admin" => OrgRole::Admin,
            "claude_code_user" => OrgRole::ClaudeCodeUser,
            _ => return None,
        })
    }
}

/// Roles of Claude Enterprise organizations: valid in the schema, never held in a Console org.
pub(crate) const ENTERPRISE_ROLES: &[&str] =
    &["owner", "primary_owner", "membership_admin", "managed"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WorkspaceRole {
    User,
    Developer,
    RestrictedDeveloper,
    Admin,
    Billing,
}

impl WorkspaceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::User => "workspace_user",
            WorkspaceRole::Developer => "workspace_developer",
            WorkspaceRole::RestrictedDeveloper => "workspace_restricted_developer",
            WorkspaceRole::Admin => "workspace_admin",
            WorkspaceRole::Billing => "workspace_billing",
        }
    }
    pub fn parse(s: &str) -> Option<WorkspaceRole> {
        Some(match s {
            "workspace_user" => WorkspaceRole::User,
            "workspace_developer" => WorkspaceRole::Developer,
            "workspace_restricted_developer" => WorkspaceRole::RestrictedDeveloper,
            "workspace_admin" => WorkspaceRole::Admin,
            "workspace_billing" => WorkspaceRole::Billing,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyStatus {
    Active,
    Inactive,
    Archived,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
            KeyStatus::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub seq: u64,
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: OrgRole,
    pub added_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Invite {
    pub seq: u64,
    pub id: String,
    pub email: String,
    pub role: OrgRole,
    pub invited_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl Invite {
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.invited_at + Duration::days(INVITE_TTL_DAYS)
    }
    /// Status computed from the clock: a pending invite turns `expired` at `expires_at`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.deleted {
            "deleted"
        } else if self.accepted_at.is_some() {
            "accepted"
        } else if now >= self.expires_at() {
            "expired"
        } else {
            "pending"
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DataResidency {
    /// `None` = "unrestricted".
    pub allowed_inference_geos: Option<Vec<String>>,
    pub default_inference_geo: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub seq: u64,
    pub id: String,
    pub name: String,
    pub display_color: String,
    pub created_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub is_default: bool,
    pub compartment_id: String,
    pub data_residency: DataResidency,
    pub tags: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) enum Principal {
    User(String),
    ServiceAccount(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    pub seq: u64,
    pub id: String,
    pub name: String,
    /// `None` = organization-scoped (principal-bound) key.
    pub workspace_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Creator user id (`None` for legacy/system keys). May name a user who has left.
    pub created_by: Option<String>,
    pub principal: Option<Principal>,
    pub expires_at: Option<DateTime<Utc>>,
    pub partial_key_hint: String,
    pub status: KeyStatus,
}

impl ApiKey {
    /// `expired` once `expires_at` is past, unless the key was archived.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        match (self.status, self.expires_at) {
            (KeyStatus::Archived, _) => "archived",
            (_, Some(exp)) if exp <= now => "expired",
            (s, _) => s.as_str(),
        }
    }
}

/// One source of usage: a key (or Console usage when `api_key_id` is `None`) in a workspace,
/// with one model, tier and context window, active on days `[start_day, end_day)` (days counted
/// from the Unix epoch).
#[derive(Debug, Clone)]
pub(crate) struct Combo {
    pub id: u64,
    pub api_key_id: Option<String>,
    /// Real workspace id (the default workspace's too); reports map it to null.
    pub workspace_id: String,
    pub workspace_is_default: bool,
    pub model: usize,
    pub service_tier: &'static str,
    pub context_window: &'static str,
    pub start_day: i64,
    pub end_day: i64,
    /// Typical uncached input tokens per day.
    pub volume: u64,
    pub web_search: bool,
    /// Whose Console (Workbench) use a combo without a key is: the analytics report's actor.
    pub console_user: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct ClaudeCodeActor {
    pub user_email: Option<String>,
    pub api_key_name: Option<String>,
    pub terminal: &'static str,
    pub intensity: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct WorkspaceLimitOverride {
    pub workspace_id: String,
    pub group: usize,
    pub limit_type: &'static str,
    pub value: u64,
}

/// Explicit workspace memberships, by workspace and then user: looking one up allocates
/// nothing, which a workspace's member list does once per member of the organization.
#[derive(Debug, Default)]
pub(crate) struct Memberships(HashMap<String, HashMap<String, WorkspaceRole>>);

impl Memberships {
    pub fn get(&self, workspace_id: &str, user_id: &str) -> Option<WorkspaceRole> {
        self.0.get(workspace_id)?.get(user_id).copied()
    }
    pub fn insert(&mut self, workspace_id: &str, user_id: &str, role: WorkspaceRole) {
        self.0
            .entry(workspace_id.to_owned())
            .or_default()
            .insert(user_id.to_owned(), role);
    }
    pub fn remove(&mut self, workspace_id: &str, user_id: &str) {
        if let Some(members) = self.0.get_mut(workspace_id) {
            members.remove(user_id);
        }
    }
    /// Takes someone out of every workspace.
    pub fn remove_user(&mut self, user_id: &str) {
        for members in self.0.values_mut() {
            members.remove(user_id);
        }
    }
}

#[derive(Debug)]
pub(crate) struct OrgState {
    pub seed: u64,
    pub org_id: String,
    pub org_name: String,
    pub email_domain: String,
    pub users: Vec<User>,
    pub invites: Vec<Invite>,
    pub workspaces: Vec<Workspace>,
    /// Explicit memberships, by workspace then user.
    pub memberships: Memberships,
    pub api_keys: Vec<ApiKey>,
    pub combos: Vec<Combo>,
    pub claude_code_actors: Vec<ClaudeCodeActor>,
    pub rate_limit_ids: Vec<String>,
    pub workspace_limit_overrides: Vec<WorkspaceLimitOverride>,
    /// Whether spend limits may be used through the Admin API (switchable while running).
    pub spend_access: super::SpendLimitsAccess,
    pub spend_limits: Vec<super::limits::SpendLimitRow>,
    /// The Activity Feed, oldest first (served newest first).
    pub activities: Vec<super::activity::Activity>,
    /// Whether the admin key may read the feed (off: 403, as for a key created before the
    /// Compliance API was enabled). Activities are recorded either way.
    pub activity_feed: bool,
    /// How long an activity takes to appear in the feed (the real one takes about a minute).
    pub activity_delay: chrono::Duration,
    /// Off: changes leave no activity, as in a gap in the feed's ingestion (tests of what the
    /// feed misses).
    pub recording_activities: bool,
    /// Active workspaces the organization may have (Anthropic's 100, raised for `xlarge`).
    pub max_active_workspaces: usize,
    /// Whether the Usage and Cost Analytics API answers (off: 403, as for an organization it
    /// is not enabled for).
    pub analytics: bool,
    pub usage_tier: super::limits::UsageTierLimit,
    /// Seq numbers of deleted users, so a cursor naming one keeps working.
    pub tombstones: HashMap<String, u64>,
    pub next_seq: u64,
    pub rng: ChaCha8Rng,
}

const FIRST: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "John",
    "Radia",
    "Vint",
    "Hedy",
    "Tim",
    "Katherine",
    "Donald",
    "Sophie",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Mary",
    "Edsger",
    "Anita",
    "Guido",
    "Yukihiro",
    "Bjarne",
    "Jean",
    "Carol",
    "Fernando",
    "Priya",
    "Mateo",
    "Amara",
    "Kenji",
    "Ingrid",
    "Omar",
    "Lucia",
    "Wei",
    "Nadia",
    "Tomas",
    "Zara",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "McCarthy",
    "Perlman",
    "Cerf",
    "Lamarr",
    "Berners-Lee",
    "Johnson",
    "Knuth",
    "Wilson",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Keller",
    "Dijkstra",
    "Borg",
    "van Rossum",
    "Matsumoto",
    "Stroustrup",
    "Sammet",
    "Shaw",
    "Corbato",
    "Raman",
    "Silva",
    "Okafor",
    "Tanaka",
    "Larsen",
    "Haddad",
    "Moreno",
    "Zhang",
    "Petrova",
    "Novak",
    "Ahmed",
];
const COLORS: &[&str] = &[
    "#6C5BB9", "#D4A27F", "#3B82F6", "#10B981", "#F59E0B", "#EF4444", "#8B5CF6", "#EC4899",
    "#14B8A6", "#64748B",
];
const KEY_NAMES: &[&str] = &[
    "Production backend",
    "Staging",
    "CI pipeline",
    "Data labeling",
    "Support bot",
    "Nightly eval",
    "Analytics ETL",
    "Prototype",
    "Mobile app",
    "Search indexer",
    "Docs assistant",
    "Batch jobs",
    "Claude Code",
    "Hackathon",
    "Partner integration",
    "Load test",
];
const WORKSPACE_NAMES: &[&str] = &[
    "Production",
    "Staging",
    "Research",
    "Claude Code",
    "Legacy Integrations",
];

/// Midnight UTC of the current day: the anchor every seeded timestamp is relative to. (The
/// simulator's time is Anthropic's, not the dashboard's: see `routes::App::now`.)
#[allow(clippy::disallowed_methods)]
pub(crate) fn anchor_now() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.timestamp_opt(now.timestamp().div_euclid(86_400) * 86_400, 0)
        .single()
        .unwrap_or(now)
}

fn jitter(rng: &mut ChaCha8Rng, base: DateTime<Utc>, max_secs: i64) -> DateTime<Utc> {
    base + Duration::seconds(rng.gen_range(0..max_secs.max(1)))
        + Duration::microseconds(rng.gen_range(0..1_000_000))
}

impl OrgState {
    pub(crate) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        tagged_id(&mut self.rng, prefix)
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn workspace(&self, id: &str) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| w.id == id)
    }

    pub fn default_workspace_id(&self) -> &str {
        &self.workspaces[0].id
    }

    /// Effective workspace role: org admins are implicitly `workspace_admin`; billing members
    /// are `workspace_billing` unless explicitly upgraded to `workspace_admin`.
    pub fn effective_role(&self, workspace_id: &str, user: &User) -> Option<WorkspaceRole> {
        let explicit = self.memberships.get(workspace_id, &user.id);
        match user.role {
            OrgRole::Admin => Some(WorkspaceRole::Admin),
            OrgRole::Billing => match explicit {
                Some(WorkspaceRole::Admin) => Some(WorkspaceRole::Admin),
                _ => Some(WorkspaceRole::Billing),
            },
            _ => explicit,
        }
    }

    pub fn generate(profile: Profile, seed: u64, anchor: DateTime<Utc>) -> OrgState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (n_users, n_workspaces, n_archived, n_keys, n_invites, n_combos) = match profile {
            Profile::Demo => (40usize, 6usize, 1usize, 80usize, 14usize, 30usize),
            Profile::Large => (5_000, 100, 4, 20_000, 200, 300),
            Profile::XLarge => (50_000, 1_000, 40, 200_000, 2_000, 3_000),
        };
        let org_id = uuid(&mut rng);
        let (org_name, email_domain) = match profile {
            Profile::Demo => ("Acme Robotics".to_string(), "acmerobotics.com".to_string()),
            Profile::Large => ("Globex Corporation".to_string(), "globex.com".to_string()),
            Profile::XLarge => ("Initech Holdings".to_string(), "initech.com".to_string()),
        };
        let founded = anchor - Duration::days(400);
        let mut st = OrgState {
            seed,
            org_id,
            org_name,
            email_domain,
            users: Vec::with_capacity(n_users),
            invites: Vec::new(),
            workspaces: Vec::new(),
            memberships: Memberships::default(),
            api_keys: Vec::with_capacity(n_keys),
            combos: Vec::new(),
            claude_code_actors: Vec::new(),
            rate_limit_ids: Vec::new(),
            workspace_limit_overrides: Vec::new(),
            spend_access: Default::default(),
            spend_limits: Vec::new(),
            activities: Vec::new(),
            activity_feed: true,
            activity_delay: chrono::Duration::zero(),
            recording_activities: true,
            max_active_workspaces: match profile {
                Profile::XLarge => n_workspaces + 100,
                _ => MAX_ACTIVE_WORKSPACES,
            },
            analytics: true,
            usage_tier: super::limits::UsageTierLimit {
                id: String::new(),
                amount_cents: 0,
                since: founded,
            },
            tombstones: HashMap::new(),
            next_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed.wrapping_add(0x5EED)),
        };

        // Members: the first two are admins; roles otherwise by a fixed mix.
        let mut added: Vec<DateTime<Utc>> = (0..n_users)
            .map(|i| {
                let day = (i as i64 * 380) / n_users as i64;
                jitter(&mut rng, founded + Duration::days(day), 86_400)
            })
            .collect();
        added.sort();
        for (i, added_at) in added.into_iter().enumerate() {
            let role = if i < 2 {
                OrgRole::Admin
            } else if profile == Profile::XLarge {
                // Billing members hold a membership in every workspace: in a large
                // organization they are a handful (one in 500 here), not one in ten.
                match rng.gen_range(0..1000) {
                    0..=399 => OrgRole::Developer,
                    400..=649 => OrgRole::User,
                    650..=651 => OrgRole::Billing,
                    _ => OrgRole::ClaudeCodeUser,
                }
            } else {
                match rng.gen_range(0..20) {
                    0..=7 => OrgRole::Developer,
                    8..=12 => OrgRole::User,
                    13..=14 => OrgRole::Billing,
                    _ => OrgRole::ClaudeCodeUser,
                }
            };
            let first = FIRST[(i + i / FIRST.len()) % FIRST.len()];
            let last = LAST[(i * 7 + i / LAST.len()) % LAST.len()];
            let local = format!(
                "{}.{}{}",
                first.to_lowercase(),
                last.to_lowercase().replace([' ', '-'], ""),
                if i >= FIRST.len() {
                    format!("{}", i)
                } else {
                    String::new()
                }
            );
            let seq = st.seq();
            let id = tagged_id(&mut rng, "user");
            st.users.push(User {
                seq,
                id,
                email: format!("{local}@{}", st.email_domain),
                name: format!("{first} {last}"),
                role,
                added_at,
            });
        }
        // Users who created keys and then left the organization.
        let former: Vec<String> = (0..(n_users / 10).max(3))
            .map(|_| tagged_id(&mut rng, "user"))
            .collect();

        // Workspaces: the default one first, then named ones; the last `n_archived` archived.
        for i in 0..n_workspaces {
            let created_at = if i == 0 {
                founded
            } else {
                jitter(
                    &mut rng,
                    founded + Duration::days(10 + (i as i64 * 300) / n_workspaces as i64),
                    86_400,
                )
            };
            let name = if i == 0 {
                "Default Workspace".to_string()
            } else if profile == Profile::Demo {
                WORKSPACE_NAMES[(i - 1) % WORKSPACE_NAMES.len()].to_string()
            } else if profile == Profile::Large {
                format!("Team {:03}", i)
            } else {
                format!("Team {:04}", i)
            };
            let archived_at = (i >= n_workspaces - n_archived && i > 0)
                .then(|| jitter(&mut rng, anchor - Duration::days(30), 20 * 86_400));
            let seq = st.seq();
            let id = tagged_id(&mut rng, "wrkspc");
            let compartment_id = tagged_id(&mut rng, "cmpt");
            st.workspaces.push(Workspace {
                seq,
                id,
                name,
                display_color: COLORS[i % COLORS.len()].to_string(),
                created_at,
                archived_at,
                is_default: i == 0,
                compartment_id,
                data_residency: DataResidency {
                    allowed_inference_geos: None,
                    default_inference_geo: "global".into(),
                },
                tags: Default::default(),
            });
        }

        // Explicit memberships for non-admin, non-billing members: 1–3 non-default workspaces.
        let ws_ids: Vec<String> = st.workspaces.iter().skip(1).map(|w| w.id.clone()).collect();
        for u in &st.users {
            if matches!(u.role, OrgRole::Admin | OrgRole::Billing) {
                if u.role == OrgRole::Billing && rng.gen_bool(0.3) {
                    let ws = ws_ids.choose(&mut rng).expect("workspaces").clone();
                    st.memberships.insert(&ws, &u.id, WorkspaceRole::Admin);
                }
                continue;
            }
            let k = rng.gen_range(1..=3.min(ws_ids.len()));
            for ws in ws_ids.choose_multiple(&mut rng, k) {
                let role = match (u.role, rng.gen_range(0..10)) {
                    (OrgRole::Developer, 0..=5) => WorkspaceRole::Developer,
                    (OrgRole::Developer, 6..=7) => WorkspaceRole::Admin,
                    (OrgRole::Developer, _) => WorkspaceRole::RestrictedDeveloper,
                    (_, 0..=7) => WorkspaceRole::User,
                    _ => WorkspaceRole::Developer,
                };
                st.memberships.insert(ws, &u.id, role);
            }
        }

        // API keys, oldest first.
        let creators: Vec<String> = st
            .users
            .iter()
            .filter(|u| matches!(u.role, OrgRole::Admin | OrgRole::Developer))
            .map(|u| u.id.clone())
            .collect();
        let mut key_times: Vec<DateTime<Utc>> = (0..n_keys)
            .map(|_| jitter(&mut rng, founded + Duration::days(20), 378 * 86_400))
            .collect();
        key_times.sort();
        let archived_ws: Vec<String> = st
            .workspaces
            .iter()
            .filter(|w| w.archived_at.is_some())
            .map(|w| w.id.clone())
            .collect();
        for (i, created_at) in key_times.into_iter().enumerate() {
            let ws_idx = match rng.gen_range(0..10) {
                0 => None,        // organization-scoped personal key
                1..=2 => Some(0), // default workspace
                _ => Some(rng.gen_range(1..st.workspaces.len())),
            };
            let workspace_id = ws_idx.map(|w| st.workspaces[w].id.clone());
            let in_archived_ws = workspace_id
                .as_ref()
                .is_some_and(|w| archived_ws.contains(w));
            let created_by = match rng.gen_range(0..20) {
                0 => None,
                1..=2 => Some(former.choose(&mut rng).expect("former").clone()),
                _ => Some(creators.choose(&mut rng).expect("creators").clone()),
            };
            let principal = if workspace_id.is_none() {
                Some(Principal::User(created_by.clone().unwrap_or_else(|| {
                    creators.choose(&mut rng).expect("creators").clone()
                })))
            } else {
                None
            };
            let expires_at = match rng.gen_range(0..10) {
                // already expired
                0..=1 => Some(created_at + Duration::days(rng.gen_range(1..30)))
                    .filter(|e| *e < anchor)
                    .or(Some(anchor - Duration::days(1))),
                // expires in the future
                2..=3 => Some(
                    anchor
                        + Duration::days(rng.gen_range(5..200))
                        + Duration::seconds(rng.gen_range(0..86_400)),
                ),
                _ => None,
            };
            let status = if in_archived_ws {
                KeyStatus::Archived
            } else {
                match rng.gen_range(0..10) {
                    0..=5 => KeyStatus::Active,
                    6..=7 => KeyStatus::Inactive,
                    _ => KeyStatus::Archived,
                }
            };
            let hint: String = (0..3)
                .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
                .collect();
            let tail: String = (0..4)
                .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
                .collect();
            let seq = st.seq();
            let id = tagged_id(&mut rng, "apikey");
            let base = KEY_NAMES[i % KEY_NAMES.len()];
            st.api_keys.push(ApiKey {
                seq,
                id,
                name: if i < KEY_NAMES.len() {
                    base.to_string()
                } else {
                    format!("{base} {}", i / KEY_NAMES.len() + 1)
                },
                workspace_id,
                created_at,
                created_by,
                principal,
                expires_at,
                partial_key_hint: format!("sk-ant-api03-{hint}...{tail}"),
                status,
            });
        }

        // Key types (§5.6): most workspace keys belong to a person (personal one-workspace
        // keys, the usual kind today), some to a service account; the rest are legacy
        // workspace keys (no principal), whose usage analytics cannot put on anyone. A
        // separate generator keeps the rest of the seeded data as it was.
        let mut kinds = ChaCha8Rng::seed_from_u64(seed ^ 0x6B65_7973);
        let service_accounts: Vec<String> = (0..3).map(|_| tagged_id(&mut kinds, "svac")).collect();
        let current_creators: std::collections::HashSet<&String> = creators.iter().collect();
        let gone: std::collections::HashSet<&String> = former.iter().collect();
        for (i, k) in st.api_keys.iter_mut().enumerate() {
            let current = k
                .created_by
                .as_ref()
                .filter(|c| current_creators.contains(c))
                .cloned();
            match (&k.principal, i % 6) {
                // A personal key of someone who left was archived when they were removed.
                (Some(Principal::User(u)), _) if gone.contains(u) => k.status = KeyStatus::Archived,
                // Half of the rest stay legacy keys that a current member made.
                (None, r) if current.is_some() && (r <= 3 || i % 12 == 11) => {
                    k.principal = current.map(Principal::User)
                }
                (None, 4) => {
                    let sa = service_accounts
                        .choose(&mut kinds)
                        .expect("service accounts");
                    k.principal = Some(Principal::ServiceAccount(sa.clone()));
                }
                _ => {}
            }
        }

        // Invites: accepted (for existing members), pending (some expiring within 3 days), expired.
        let mut invites = Vec::new();
        for i in 0..n_invites {
            let kind = i % 7;
            let (invited_at, accepted) = match kind {
                0 | 1 => (
                    jitter(&mut rng, anchor - Duration::days(60), 30 * 86_400),
                    true,
                ),
                2 => (
                    jitter(&mut rng, anchor - Duration::days(20), 12 * 3_600),
                    false,
                ), // expires in < 3 days
                3 | 4 => (
                    jitter(&mut rng, anchor - Duration::days(10), 9 * 86_400),
                    false,
                ),
                _ => (
                    jitter(&mut rng, anchor - Duration::days(80), 50 * 86_400),
                    false,
                ), // expired
            };
            let role = match rng.gen_range(0..4) {
                0 => OrgRole::Developer,
                1 => OrgRole::User,
                2 => OrgRole::ClaudeCodeUser,
                _ => OrgRole::Billing,
            };
            let email = if accepted {
                st.users[(i * 13 + 5) % st.users.len()].email.clone()
            } else {
                let domain = ["example.org", "contractor.dev", "gmail.com"][i % 3];
                format!(
                    "{}.candidate{i}@{domain}",
                    FIRST[(i * 3) % FIRST.len()].to_lowercase()
                )
            };
            let accepted_at = accepted.then(|| invited_at + Duration::hours(rng.gen_range(1..96)));
            invites.push((invited_at, email, role, accepted_at));
        }
        invites.sort_by_key(|i| i.0);
        for (invited_at, email, role, accepted_at) in invites {
            let seq = st.seq();
            let id = tagged_id(&mut rng, "invite");
            st.invites.push(Invite {
                seq,
                id,
                email,
                role,
                invited_at,
                accepted_at,
                deleted: false,
            });
        }

        // Usage combos: a sparse set of keys (and some Console usage without a key).
        let anchor_day = anchor.timestamp().div_euclid(86_400);
        let history_start = anchor_day - USAGE_HISTORY_DAYS;
        let mut candidates: Vec<usize> = (0..st.api_keys.len()).collect();
        candidates.shuffle(&mut rng);
        let mut combo_id = 0u64;
        let mut push_combo = |st: &mut OrgState,
                              rng: &mut ChaCha8Rng,
                              key: Option<usize>,
                              ws: usize,
                              start_day: i64,
                              end_day: i64| {
            let n_models = if rng.gen_bool(0.35) { 2 } else { 1 };
            let mut models: Vec<usize> = (0..super::usage::MODELS.len()).collect();
            models.shuffle(rng);
            for &model in models.iter().take(n_models) {
                let service_tier = match rng.gen_range(0..10) {
                    0..=6 => "standard",
                    7..=8 => "batch",
                    _ => "priority",
                };
                let context_window =
                    if super::usage::MODELS[model].long_context && rng.gen_bool(0.2) {
                        "200k-1M"
                    } else {
                        "0-200k"
                    };
                combo_id += 1;
                st.combos.push(Combo {
                    id: combo_id,
                    api_key_id: key.map(|k| st.api_keys[k].id.clone()),
                    workspace_id: st.workspaces[ws].id.clone(),
                    workspace_is_default: ws == 0,
                    model,
                    service_tier,
                    context_window,
                    start_day,
                    end_day,
                    volume: 10u64.pow(rng.gen_range(4..7)) * rng.gen_range(1..10),
                    web_search: rng.gen_bool(0.25),
                    console_user: None,
                });
            }
        };
        for &k in candidates.iter().take(n_combos) {
            let key = &st.api_keys[k];
            // Usage starts the day after creation; org-scoped keys bill to the default workspace.
            let ws = match &key.workspace_id {
                Some(w) => st.workspaces.iter().position(|x| &x.id == w).unwrap_or(0),
                None => 0,
            };
            let start_day = (key.created_at.timestamp().div_euclid(86_400) + 1).max(history_start);
            let mut end_day = anchor_day + 10_000;
            if let Some(exp) = key.expires_at {
                end_day = end_day.min(exp.timestamp().div_euclid(86_400));
            }
            if key.status != KeyStatus::Active {
                end_day = end_day.min(anchor_day - rng.gen_range(1..40));
            }
            if let Some(w) = st.workspaces[ws].archived_at {
                end_day = end_day.min(w.timestamp().div_euclid(86_400));
            }
            if end_day <= start_day {
                continue;
            }
            push_combo(&mut st, &mut rng, Some(k), ws, start_day, end_day);
        }
        let last_ws = st.workspaces.len() - 1;
        for ws in [0usize, 1, 2] {
            push_combo(
                &mut st,
                &mut rng,
                None,
                ws.min(last_ws),
                history_start,
                anchor_day + 10_000,
            );
        }

        // Console use belongs to a member; picked without the generator, so the rest of the
        // seeded data stays as it was.
        let n_users = st.users.len();
        for c in st.combos.iter_mut().filter(|c| c.api_key_id.is_none()) {
            c.console_user = Some(st.users[(c.id as usize * 7 + 3) % n_users].id.clone());
        }

        // Claude Code actors: claude_code_users and some developers, plus one API actor.
        let cc: Vec<ClaudeCodeActor> = st
            .users
            .iter()
            .filter(|u| {
                u.role == OrgRole::ClaudeCodeUser
                    || (u.role == OrgRole::Developer && u.seq % 3 == 0)
            })
            .map(|u| ClaudeCodeActor {
                user_email: Some(u.email.clone()),
                api_key_name: None,
                terminal: ["vscode", "iTerm.app", "tmux", "Apple_Terminal", "cursor"]
                    [(u.seq % 5) as usize],
                intensity: 1 + u.seq % 7,
            })
            .collect();
        st.claude_code_actors = cc;
        st.claude_code_actors.push(ClaudeCodeActor {
            user_email: None,
            api_key_name: Some("Claude Code CI".into()),
            terminal: "non-interactive",
            intensity: 5,
        });

        // Rate limits: entry ids differ per org; workspace overrides on a few workspaces.
        for _ in 0..super::usage::RATE_LIMIT_GROUPS.len() {
            let id = tagged_id(&mut rng, "ratelimit");
            st.rate_limit_ids.push(id);
        }
        for (i, w) in st.workspaces.iter().enumerate().skip(1) {
            if i % 2 == 1 {
                st.workspace_limit_overrides.push(WorkspaceLimitOverride {
                    workspace_id: w.id.clone(),
                    group: 0,
                    limit_type: "requests_per_minute",
                    value: 500 * (1 + (i as u64 % 4)),
                });
                if i % 4 == 1 {
                    st.workspace_limit_overrides.push(WorkspaceLimitOverride {
                        workspace_id: w.id.clone(),
                        group: 0,
                        limit_type: "output_tokens_per_minute",
                        value: 80_000,
                    });
                }
            }
        }
        // Spend limits (§8.1): Anthropic's usage-tier cap, and one workspace with its own limit.
        st.usage_tier = super::limits::UsageTierLimit {
            id: tagged_id(&mut kinds, "spl"),
            amount_cents: 500_000,
            since: founded,
        };
        if let Some(w) = st
            .workspaces
            .iter()
            .find(|w| !w.is_default && w.archived_at.is_none())
        {
            st.spend_limits.push(super::limits::SpendLimitRow {
                id: tagged_id(&mut kinds, "spl"),
                workspace_id: Some(w.id.clone()),
                amount_cents: 150_000,
                created_at: anchor - Duration::days(30),
                updated_at: anchor - Duration::days(30),
            });
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xlarge_profile_is_ten_times_large() {
        let started = std::time::Instant::now();
        let st = OrgState::generate(Profile::XLarge, 42, anchor_now());
        let seeded = started.elapsed();
        assert_eq!(st.users.len(), 50_000);
        assert_eq!(st.workspaces.len(), 1_000);
        assert_eq!(st.api_keys.len(), 200_000);
        assert_eq!(st.invites.len(), 2_000);
        // Usage in proportion: ten times `large`'s 300 usage series (keys × model × tier,
        // some keys with several), plus Console usage.
        assert!(
            (3_000..4_000).contains(&st.combos.len()),
            "{}",
            st.combos.len()
        );
        let emails: std::collections::HashSet<&str> =
            st.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails.len(), 50_000, "emails are unique");
        let keys: std::collections::HashSet<&str> =
            st.api_keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(keys.len(), 200_000, "key ids are unique");
        // Every seeded workspace may be active, and a few more may be created.
        let active = st
            .workspaces
            .iter()
            .filter(|w| !w.is_default && w.archived_at.is_none())
            .count();
        assert!(active > MAX_ACTIVE_WORKSPACES && active < st.max_active_workspaces);
        // Seeding is quick even unoptimised (a release build takes a fraction of this).
        assert!(seeded < std::time::Duration::from_secs(20), "{seeded:?}");
    }
}
