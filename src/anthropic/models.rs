//! Serde models of the Admin API objects, request bodies and query parameters.
//!
//! Reading is tolerant on purpose: unknown fields are ignored, enum values this version does not
//! know land in an `Other(String)` (or `Unknown`) variant instead of failing a whole list,
//! nullable or newer fields are `Option`/defaulted, timestamps are accepted with or without
//! fractional seconds, and money is an exact [`Decimal`] of cents.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::shared::{self, Shared};

/// Declares a string enum with a catch-all `Other(String)` variant that (de)serializes as the
/// bare string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $s:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of Orgkeeper does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $s, )+
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Parses a wire value; unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $s => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Infallible;
            fn from_str(s: &str) -> Result<Self, Infallible> {
                Ok($name::parse(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok($name::parse(&s))
            }
        }
    };
}

string_enum! {
    /// Organization role of a user or invite (§4 of admin-api.md).
    pub enum OrgRole {
        User => "user",
        ClaudeCodeUser => "claude_code_user",
        Developer => "developer",
        Billing => "billing",
        Admin => "admin",
        Managed => "managed",
        MembershipAdmin => "membership_admin",
        Owner => "owner",
        PrimaryOwner => "primary_owner",
    }
}

impl OrgRole {
    /// Whether the Admin API lets this role be set on a user or invite in a Console
    /// organization (`admin` and the Enterprise roles cannot be).
    pub fn is_assignable_in_console(&self) -> bool {
        matches!(
            self,
            OrgRole::User | OrgRole::ClaudeCodeUser | OrgRole::Developer | OrgRole::Billing
        )
    }
}

string_enum! {
    /// Role of a user inside a workspace.
    pub enum WorkspaceRole {
        WorkspaceUser => "workspace_user",
        WorkspaceRestrictedDeveloper => "workspace_restricted_developer",
        WorkspaceDeveloper => "workspace_developer",
        WorkspaceAdmin => "workspace_admin",
        WorkspaceBilling => "workspace_billing",
    }
}

string_enum! {
    /// Status of an API key. `expired` can be read and filtered on but not set.
    pub enum ApiKeyStatus {
        Active => "active",
        Inactive => "inactive",
        Archived => "archived",
        Expired => "expired",
    }
}

string_enum! {
    /// Status of an invite.
    pub enum InviteStatus {
        Pending => "pending",
        Accepted => "accepted",
        Expired => "expired",
        Deleted => "deleted",
    }
}

string_enum! {
    /// Width of a usage/cost report bucket.
    pub enum BucketWidth {
        Minute => "1m",
        Hour => "1h",
        Day => "1d",
    }
}

string_enum! {
    /// `group_by[]` values of the messages usage report.
    pub enum UsageGroupBy {
        ApiKeyId => "api_key_id",
        WorkspaceId => "workspace_id",
        Model => "model",
        ServiceTier => "service_tier",
        ContextWindow => "context_window",
        InferenceGeo => "inference_geo",
        /// Needs the `fast-mode-2026-02-01` beta header; the client adds it.
        Speed => "speed",
        AccountId => "account_id",
        ServiceAccountId => "service_account_id",
    }
}

string_enum! {
    /// `group_by[]` values of the cost report.
    pub enum CostGroupBy {
        WorkspaceId => "workspace_id",
        Description => "description",
    }
}

fn default_organization() -> String {
    "organization".into()
}
fn default_user() -> String {
    "user".into()
}
fn default_user_deleted() -> String {
    "user_deleted".into()
}
fn default_invite() -> String {
    "invite".into()
}
fn default_invite_deleted() -> String {
    "invite_deleted".into()
}
fn default_workspace() -> String {
    "workspace".into()
}
fn default_workspace_member() -> Shared {
    shared::intern("workspace_member")
}
fn default_workspace_member_deleted() -> String {
    "workspace_member_deleted".into()
}
fn default_api_key() -> Shared {
    shared::intern("api_key")
}
fn default_rate_limit() -> String {
    "rate_limit".into()
}
fn default_workspace_rate_limit() -> String {
    "workspace_rate_limit".into()
}
fn default_usd() -> String {
    "USD".into()
}

/// `GET /v1/organizations/me`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    /// UUID of the organization.
    pub id: String,
    #[serde(rename = "type", default = "default_organization")]
    pub object_type: String,
    pub name: String,
}

/// A member of the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(rename = "type", default = "default_user")]
    pub object_type: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: OrgRole,
    /// When the user joined the organization.
    pub added_at: DateTime<Utc>,
}

/// Answer to removing a user: `{"id": "user_…", "type": "user_deleted"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub id: String,
    #[serde(rename = "type", default = "default_user_deleted")]
    pub object_type: String,
}

/// An invitation to join the organization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    #[serde(rename = "type", default = "default_invite")]
    pub object_type: String,
    pub email: String,
    pub role: OrgRole,
    pub status: InviteStatus,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rbac_group_ids: Vec<String>,
}

/// Answer to deleting an invite: `{"id": "invite_…", "type": "invite_deleted"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InviteDeleted {
    pub id: String,
    #[serde(rename = "type", default = "default_invite_deleted")]
    pub object_type: String,
}

/// Body of `POST /v1/organizations/invites`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateInvite {
    pub email: String,
    pub role: OrgRole,
    /// Enterprise organizations only; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rbac_group_ids: Vec<String>,
}

/// `allowed_inference_geos`: a list of geos, or the string `"unrestricted"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowedInferenceGeos {
    List(Vec<String>),
    /// Normally `"unrestricted"`.
    Keyword(String),
}

/// Data residency settings of a workspace (newer field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataResidency {
    #[serde(default)]
    pub workspace_geo: Option<String>,
    #[serde(default)]
    pub allowed_inference_geos: Option<AllowedInferenceGeos>,
    #[serde(default)]
    pub default_inference_geo: Option<String>,
}

/// A workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    #[serde(rename = "type", default = "default_workspace")]
    pub object_type: String,
    pub name: String,
    /// Hex colour such as `#6C5BB9`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_color: String,
    pub created_at: DateTime<Utc>,
    /// `None` unless the workspace is archived.
    #[serde(default)]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compartment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_residency: Option<DataResidency>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_profile_id: Option<String>,
}

impl Workspace {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// Body of `POST /v1/organizations/workspaces`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateWorkspace {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_color: Option<String>,
}

/// Body of `POST /v1/organizations/workspaces/{id}`; absent fields are left unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateWorkspace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_color: Option<String>,
}

/// A user's membership in a workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceMember {
    #[serde(
        rename = "type",
        default = "default_workspace_member",
        deserialize_with = "shared::de"
    )]
    pub object_type: Shared,
    #[serde(deserialize_with = "shared::de")]
    pub user_id: Shared,
    #[serde(deserialize_with = "shared::de")]
    pub workspace_id: Shared,
    pub workspace_role: WorkspaceRole,
}

/// Answer to removing a workspace member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceMemberDeleted {
    #[serde(rename = "type", default = "default_workspace_member_deleted")]
    pub object_type: String,
    pub user_id: String,
    pub workspace_id: String,
}

/// Body of `POST /v1/organizations/workspaces/{id}/members`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddWorkspaceMember {
    pub user_id: String,
    pub workspace_role: WorkspaceRole,
}

/// Body of `POST /v1/organizations/workspaces/{id}/members/{user_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateWorkspaceMember {
    pub workspace_role: WorkspaceRole,
}

/// Body of `POST /v1/organizations/users/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdateUser {
    pub role: OrgRole,
}

/// Who created an API key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyCreatedBy {
    #[serde(deserialize_with = "shared::de")]
    pub id: Shared,
    /// `user` or `service_account` (kept as a string: the set may grow).
    #[serde(rename = "type", default = "no_kind", deserialize_with = "shared::de")]
    pub kind: Shared,
}

fn no_kind() -> Shared {
    shared::intern("")
}

/// The identity an API key acts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiKeyPrincipal {
    UserActor {
        #[serde(deserialize_with = "shared::de")]
        user_id: Shared,
    },
    ServiceAccountActor {
        #[serde(deserialize_with = "shared::de")]
        service_account_id: Shared,
    },
    /// Intermediate documentation shape `{"id": "user_…", "type": "user"}`.
    User {
        #[serde(deserialize_with = "shared::de")]
        id: Shared,
    },
    /// A principal type this version does not know.
    #[serde(other)]
    Unknown,
}

/// Where an API key belongs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiKeyScope {
    /// The key belongs to one workspace (the real ID, even for the Default Workspace).
    Workspace {
        #[serde(deserialize_with = "shared::de")]
        workspace_id: Shared,
    },
    /// A principal-bound key with no workspace.
    Organization,
    /// A scope type this version does not know.
    #[serde(other)]
    Unknown,
}

/// An API key (metadata only; the secret is never returned by the API).
///
/// Both shapes are accepted: the current one with `scope`/`principal`, and the legacy one with a
/// top-level `workspace_id`. Use [`ApiKey::workspace_id`] rather than the raw fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    #[serde(
        rename = "type",
        default = "default_api_key",
        deserialize_with = "shared::de"
    )]
    pub object_type: Shared,
    pub name: String,
    pub status: ApiKeyStatus,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub created_by: Option<ApiKeyCreatedBy>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub partial_key_hint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<ApiKeyPrincipal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ApiKeyScope>,
    /// Deprecated top-level field (null for Default-Workspace and organization-scoped keys).
    #[serde(
        rename = "workspace_id",
        default,
        deserialize_with = "shared::de_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_workspace_id: Option<Shared>,
}

impl ApiKey {
    /// The workspace the key belongs to: from `scope` when present (`None` for an
    /// organization-scoped key), else from the legacy top-level `workspace_id` (`None` for the
    /// Default Workspace in that shape).
    pub fn workspace_id(&self) -> Option<&str> {
        match &self.scope {
            Some(ApiKeyScope::Workspace { workspace_id }) => Some(workspace_id),
            Some(ApiKeyScope::Organization) => None,
            Some(ApiKeyScope::Unknown) | None => self.legacy_workspace_id.as_deref(),
        }
    }

    /// Whose the key is (§5.6): a person's, a service account's, or the workspace's.
    pub fn kind(&self) -> KeyKind<'_> {
        match &self.principal {
            Some(ApiKeyPrincipal::UserActor { user_id })
            | Some(ApiKeyPrincipal::User { id: user_id }) => KeyKind::Personal { user_id },
            Some(ApiKeyPrincipal::ServiceAccountActor { service_account_id }) => {
                KeyKind::ServiceAccount { service_account_id }
            }
            Some(ApiKeyPrincipal::Unknown) => KeyKind::Unknown,
            None => KeyKind::Workspace,
        }
    }

    /// Whether the key reaches every workspace its principal may use (no workspace scope).
    pub fn is_organization_scoped(&self) -> bool {
        matches!(self.scope, Some(ApiKeyScope::Organization))
    }

    /// The user the key acts as, if it is a user-bound key.
    pub fn principal_user_id(&self) -> Option<&str> {
        match &self.principal {
            Some(ApiKeyPrincipal::UserActor { user_id }) => Some(user_id),
            Some(ApiKeyPrincipal::User { id }) => Some(id),
            _ => None,
        }
    }
}

/// Whose an API key is, and so when it stops working (§5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind<'a> {
    /// Acts as this person; Anthropic archives it when they leave the organization.
    Personal { user_id: &'a str },
    /// Acts as a service account; it stops when the service account is archived.
    ServiceAccount { service_account_id: &'a str },
    /// A legacy workspace key: nobody's; it keeps working whoever created it leaves.
    Workspace,
    /// A principal type this version does not know.
    Unknown,
}

/// Body of `POST /v1/organizations/api_keys/{id}`; absent fields are left unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateApiKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `active`, `inactive` or `archived` (`expired` is refused by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiKeyStatus>,
}

// ---------------------------------------------------------------------------------------------
// Messages usage report (§5.7)

/// One time bucket of the usage report (start inclusive, end exclusive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageBucket {
    pub starting_at: DateTime<Utc>,
    pub ending_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<UsageResult>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCreation {
    #[serde(default, deserialize_with = "null_as_default")]
    pub ephemeral_1h_input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ephemeral_5m_input_tokens: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerToolUse {
    #[serde(default, deserialize_with = "null_as_default")]
    pub web_search_requests: u64,
}

/// Token counts for one group within a bucket. Dimension fields are `None` unless grouped by
/// them (and `workspace_id`/`api_key_id` are also `None` for the Default Workspace / Console use).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageResult {
    #[serde(default, deserialize_with = "null_as_default")]
    pub uncached_input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_creation: CacheCreation,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_read_input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub server_tool_use: ServerToolUse,
    #[serde(default)]
    pub api_key_id: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub service_tier: Option<String>,
    #[serde(default)]
    pub context_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_geo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<String>,
}

impl UsageResult {
    /// All input tokens: uncached + cache reads + cache writes.
    pub fn total_input_tokens(&self) -> u64 {
        self.uncached_input_tokens
            + self.cache_read_input_tokens
            + self.cache_creation.ephemeral_1h_input_tokens
            + self.cache_creation.ephemeral_5m_input_tokens
    }
}

/// Query of `GET /v1/organizations/usage_report/messages`. Empty vectors and `None`s are not
/// sent. `page`/`limit` select a single page; the `_all` helper starts from `page` and follows
/// `next_page`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct UsageReportParams {
    pub starting_at: DateTime<Utc>,
    pub ending_at: Option<DateTime<Utc>>,
    pub bucket_width: Option<BucketWidth>,
    pub limit: Option<u32>,
    pub page: Option<String>,
    pub group_by: Vec<UsageGroupBy>,
    pub models: Vec<String>,
    pub api_key_ids: Vec<String>,
    pub workspace_ids: Vec<String>,
    pub service_tiers: Vec<String>,
    /// Sent as `context_window[]` (singular, as the API names it).
    pub context_window: Vec<String>,
    pub inference_geos: Vec<String>,
    /// Needs the `fast-mode-2026-02-01` beta header; the client adds it.
    pub speeds: Vec<String>,
    pub account_ids: Vec<String>,
    pub service_account_ids: Vec<String>,
}

impl UsageReportParams {
    /// Parameters with only the required `starting_at` set.
    pub fn new(starting_at: DateTime<Utc>) -> Self {
        UsageReportParams {
            starting_at,
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cost report (§5.8)

/// One day of the cost report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostBucket {
    pub starting_at: DateTime<Utc>,
    pub ending_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<CostResult>,
}

/// One cost line. `amount` is in **cents** (the lowest currency unit), exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostResult {
    #[serde(default = "default_usd")]
    pub currency: String,
    /// Cents, e.g. `123.45` = $1.2345. Sent by the API as a decimal string.
    #[serde(with = "decimal_cents_string")]
    pub amount: Decimal,
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub cost_type: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub service_tier: Option<String>,
    #[serde(default)]
    pub context_window: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_geo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<String>,
}

/// Query of `GET /v1/organizations/cost_report`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CostReportParams {
    pub starting_at: DateTime<Utc>,
    pub ending_at: Option<DateTime<Utc>>,
    /// Only `1d` exists.
    pub bucket_width: Option<BucketWidth>,
    pub group_by: Vec<CostGroupBy>,
    pub limit: Option<u32>,
    pub page: Option<String>,
}

impl CostReportParams {
    pub fn new(starting_at: DateTime<Utc>) -> Self {
        CostReportParams {
            starting_at,
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Claude Code usage report (§5.9)

/// Who used Claude Code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClaudeCodeActor {
    UserActor {
        email_address: String,
    },
    ApiActor {
        api_key_name: String,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinesOfCode {
    #[serde(default, deserialize_with = "null_as_default")]
    pub added: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub removed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreMetrics {
    #[serde(default, deserialize_with = "null_as_default")]
    pub num_sessions: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lines_of_code: LinesOfCode,
    #[serde(default, deserialize_with = "null_as_default")]
    pub commits_by_claude_code: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub pull_requests_by_claude_code: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolActionCounts {
    #[serde(default, deserialize_with = "null_as_default")]
    pub accepted: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rejected: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaudeCodeTokens {
    #[serde(default, deserialize_with = "null_as_default")]
    pub input: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_read: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_creation: u64,
}

/// Estimated cost in **cents**. The API sends a JSON number here (unlike the cost report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimatedCost {
    #[serde(default = "default_usd")]
    pub currency: String,
    #[serde(with = "decimal_cents_number")]
    pub amount: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBreakdown {
    pub model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tokens: ClaudeCodeTokens,
    pub estimated_cost: EstimatedCost,
}

/// One actor's Claude Code metrics for one UTC day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaudeCodeRecord {
    /// The UTC day (the API sends `YYYY-MM-DD` or a midnight RFC 3339 timestamp).
    #[serde(with = "utc_day")]
    pub date: NaiveDate,
    pub actor: ClaudeCodeActor,
    #[serde(default)]
    pub organization_id: String,
    /// `api` or `subscription`.
    #[serde(default)]
    pub customer_type: String,
    /// `enterprise`, `team` or `None`.
    #[serde(default)]
    pub subscription_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub terminal_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub core_metrics: CoreMetrics,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool_actions: BTreeMap<String, ToolActionCounts>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_breakdown: Vec<ModelBreakdown>,
}

/// Query of `GET /v1/organizations/usage_report/claude_code`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaudeCodeUsageParams {
    /// The single UTC day to report.
    pub starting_at: NaiveDate,
    pub limit: Option<u32>,
    pub page: Option<String>,
}

impl ClaudeCodeUsageParams {
    pub fn new(starting_at: NaiveDate) -> Self {
        ClaudeCodeUsageParams {
            starting_at,
            limit: None,
            page: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limits (§8)

/// The rate-limit group an entry applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitGroup {
    /// `model_group`, `batch`, `token_count`, `files`, `skills`, `web_search`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `rlg_…`.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl RateLimitGroup {
    /// The group as people read it ("Claude Sonnet 4.x", "batch").
    pub fn label(&self) -> String {
        if let Some(name) = &self.display_name {
            return name.clone();
        }
        match self.kind.as_str() {
            "batch" => "Message Batches".into(),
            "token_count" => "Token counting".into(),
            "files" => "Files".into(),
            "skills" => "Skills".into(),
            "web_search" => "Web search".into(),
            other => other.replace('_', " "),
        }
    }
}

/// One limiter value of an organization rate-limit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitValue {
    /// E.g. `requests_per_minute`, `input_tokens_per_minute`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: u64,
}

/// `GET /v1/organizations/rate_limits` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgRateLimit {
    pub id: String,
    #[serde(rename = "type", default = "default_rate_limit")]
    pub object_type: String,
    pub group: RateLimitGroup,
    #[serde(default, deserialize_with = "null_as_default")]
    pub limits: Vec<RateLimitValue>,
    /// Model names, for `model_group` entries only.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

/// Where a workspace limiter value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitSource {
    /// `workspace` (an override) or `organization` (inherited).
    #[serde(rename = "type")]
    pub kind: String,
}

/// One limiter value of a workspace rate-limit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRateLimitValue {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: u64,
    #[serde(default)]
    pub org_limit: Option<u64>,
    #[serde(default)]
    pub source: Option<RateLimitSource>,
}

/// `GET /v1/organizations/workspaces/{id}/rate_limits` entry.
impl WorkspaceRateLimitValue {
    /// The workspace's own value (`None`: the organization's applies).
    pub fn override_value(&self) -> Option<u64> {
        self.source
            .as_ref()
            .is_some_and(|s| s.kind == "workspace")
            .then_some(self.value)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceRateLimit {
    #[serde(rename = "type", default = "default_workspace_rate_limit")]
    pub object_type: String,
    #[serde(default)]
    pub rate_limit_id: String,
    #[serde(default)]
    pub workspace_id: String,
    pub group: RateLimitGroup,
    #[serde(default, deserialize_with = "null_as_default")]
    pub limits: Vec<WorkspaceRateLimitValue>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

/// Query of `GET /v1/organizations/rate_limits`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgRateLimitParams {
    pub group_type: Option<String>,
    /// Filter to the entry containing this model (404 if unknown).
    pub model: Option<String>,
    /// Omit to get everything in one page.
    pub limit: Option<u32>,
    pub page: Option<String>,
}

/// Query of `GET /v1/organizations/workspaces/{id}/rate_limits`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkspaceRateLimitParams {
    pub group_type: Option<String>,
    /// Also list values inherited from the organization.
    pub include_inherited: bool,
    pub limit: Option<u32>,
    pub page: Option<String>,
}

/// One change of `POST /v1/organizations/workspaces/{id}/rate_limits/{rate_limit_id}`:
/// a value sets the workspace override, `None` clears it (the organization's value applies).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitChange {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Option<u64>,
}

/// Body of the workspace rate-limit update (1 to 16 changes; unnamed types keep their value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateWorkspaceRateLimit {
    pub limits: Vec<RateLimitChange>,
}

// ---------------------------------------------------------------------------------------------
// Spend limits (§8.1)

/// What a spend limit applies to. Console organizations write `organization` and `workspace`;
/// `usage_tier` is Anthropic's read-only cap; the rest are Claude Enterprise scopes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpendLimitScope {
    Organization,
    Workspace {
        workspace_id: String,
    },
    UsageTier,
    User {
        user_id: String,
    },
    SeatTier {
        seat_tier: String,
    },
    RbacGroup {
        rbac_group_id: String,
    },
    OrganizationService {
        service: String,
    },
    /// A scope type this version does not know.
    #[serde(other)]
    Unknown,
}

/// A configured spend limit: a cap that stops metered spend for one scope and period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpendLimit {
    pub id: String,
    /// Integer minor units of `currency` (cents for USD); `None` = no numeric cap here.
    #[serde(default)]
    pub amount: Option<String>,
    pub currency: String,
    /// `daily`, `weekly` or `monthly` (kept open).
    pub period: String,
    pub scope: SpendLimitScope,
    #[serde(default = "yes")]
    pub is_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn yes() -> bool {
    true
}

impl SpendLimit {
    /// The cap in cents, when it is a number.
    pub fn amount_cents(&self) -> Option<Decimal> {
        self.amount.as_deref().and_then(|a| a.parse().ok())
    }
}

/// Body of `POST /v1/organizations/spend_limits` (an upsert on scope and period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSpendLimit {
    /// Integer cents as a string; Console organization and workspace limits need one.
    pub amount: Option<String>,
    pub scope: SpendLimitScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
}

/// Answer of `DELETE /v1/organizations/spend_limits/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendLimitDeleted {
    pub id: String,
    #[serde(rename = "type")]
    pub object_type: String,
}

/// Filters of `GET /v1/organizations/spend_limits`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendLimitFilter {
    /// Sent as `scope_type[]`.
    pub scope_types: Vec<String>,
    pub workspace_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// List filters

/// Filters of `GET /v1/organizations/users`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserFilter {
    /// Exact match (normalized, case-insensitive).
    pub email: Option<String>,
    /// OR-ed; sent as `roles[]`.
    pub roles: Vec<OrgRole>,
}

/// Filters of `GET /v1/organizations/invites`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InviteFilter {
    pub email: Option<String>,
    pub roles: Vec<OrgRole>,
    /// OR-ed; sent as `statuses[]`. Empty = pending, accepted and expired.
    pub statuses: Vec<InviteStatus>,
}

/// Filters of `GET /v1/organizations/workspaces`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkspaceFilter {
    pub include_archived: bool,
    pub include_default: bool,
}

/// Filters of `GET /v1/organizations/api_keys`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiKeyFilter {
    pub status: Option<ApiKeyStatus>,
    pub workspace_id: Option<String>,
    pub created_by_user_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Usage and cost analytics (§8.6.1), beta `analytics-usage-cost-2026-08-24`

string_enum! {
    /// `group_by[]` values of `/analytics/usage` and `/analytics/cost` this version asks for
    /// (the API knows more; see admin-api.md §8.6.1).
    pub enum AnalyticsGroupBy {
        Actor => "actor",
        ActorType => "actor_type",
        ApiKeyId => "api_key_id",
        WorkspaceId => "workspace_id",
        Model => "model",
        Product => "product",
        ServiceTier => "service_tier",
        ContextWindow => "context_window",
        /// Cost only; does not count toward the five dimensions or `limit`.
        CostType => "cost_type",
        /// Cost only; does not count toward the five dimensions or `limit`.
        TokenType => "token_type",
    }
}

impl AsRef<str> for AnalyticsGroupBy {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Who usage is attributed to: a member, a service account, a cloud identity, or the API key
/// itself when no one is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnalyticsActor {
    UserActor {
        user_id: String,
        /// Null when the account was deleted.
        #[serde(default)]
        email_address: Option<String>,
        /// `"Deleted User"` when deleted or hidden after removal; null when never set.
        #[serde(default)]
        name: Option<String>,
        /// Deleted, or no longer a member.
        #[serde(default)]
        deleted: bool,
    },
    ServiceAccountActor {
        service_account_id: String,
    },
    /// A cloud platform identity (AWS, Azure, Google Cloud, OIDC); the provider is kept as
    /// sent.
    FederatedActor {
        #[serde(default)]
        provider: serde_json::Value,
        #[serde(default)]
        subject: Option<String>,
    },
    ApiActor {
        api_key_id: String,
    },
    /// An actor type this version does not know.
    #[serde(other)]
    Unknown,
}

impl AnalyticsActor {
    /// The `type` value (`user_actor`, …; `unknown` for one this version does not know).
    pub fn kind(&self) -> &'static str {
        match self {
            AnalyticsActor::UserActor { .. } => "user_actor",
            AnalyticsActor::ServiceAccountActor { .. } => "service_account_actor",
            AnalyticsActor::FederatedActor { .. } => "federated_actor",
            AnalyticsActor::ApiActor { .. } => "api_actor",
            AnalyticsActor::Unknown => "unknown",
        }
    }

    /// A stable id: the user, service account or key id; a federated identity's subject (or
    /// its provider as sent).
    pub fn id(&self) -> String {
        match self {
            AnalyticsActor::UserActor { user_id, .. } => user_id.clone(),
            AnalyticsActor::ServiceAccountActor { service_account_id } => {
                service_account_id.clone()
            }
            AnalyticsActor::ApiActor { api_key_id } => api_key_id.clone(),
            AnalyticsActor::FederatedActor { provider, subject } => {
                subject.clone().unwrap_or_else(|| provider.to_string())
            }
            AnalyticsActor::Unknown => String::new(),
        }
    }
}

/// The dimension values of one row; each is `None` unless grouped by it (and applicable).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsGroup {
    #[serde(default)]
    pub actor: Option<AnalyticsActor>,
    #[serde(default)]
    pub actor_type: Option<String>,
    #[serde(default)]
    pub api_key_id: Option<String>,
    /// The real id, the default workspace's included.
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub service_tier: Option<String>,
    #[serde(default)]
    pub context_window: Option<String>,
    #[serde(default)]
    pub cost_type: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

/// Token usage of one row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsUsage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub uncached_input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_creation: CacheCreation,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cache_read_input_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub server_tool_use: ServerToolUse,
    #[serde(default)]
    pub requests: Option<u64>,
}

/// Cost of one row, in **cents**, exactly (the API sends decimal strings of minor units).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsCost {
    /// After discounts, before credits.
    #[serde(with = "decimal_cents_string")]
    pub amount: Decimal,
    /// At list price.
    #[serde(with = "decimal_cents_string")]
    pub list_amount: Decimal,
    #[serde(default = "default_usd")]
    pub currency: String,
    /// Null when grouped by `cost_type` or `token_type`.
    #[serde(default)]
    pub requests: Option<u64>,
}

/// One row of `/analytics/usage`: a time bucket (or the whole range) × a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsUsageRow {
    pub starting_at: DateTime<Utc>,
    pub ending_at: DateTime<Utc>,
    #[serde(default)]
    pub group: AnalyticsGroup,
    pub usage: AnalyticsUsage,
}

/// One row of `/analytics/cost`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsCostRow {
    pub starting_at: DateTime<Utc>,
    pub ending_at: DateTime<Utc>,
    #[serde(default)]
    pub group: AnalyticsGroup,
    pub cost: AnalyticsCost,
}

/// Query of `/analytics/usage` and `/analytics/cost`. Empty vectors and `None`s are not sent;
/// an empty string in `api_key_ids` is sent as is (it also matches usage without a key).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AnalyticsParams {
    /// No earlier than 2026-01-01 and within the last 365 days.
    pub starting_at: DateTime<Utc>,
    /// Exclusive; at most 31 days after `starting_at`; required with a bucket width.
    pub ending_at: Option<DateTime<Utc>>,
    pub time_bucket_width: Option<BucketWidth>,
    pub group_by: Vec<AnalyticsGroupBy>,
    /// Rows per page, 1..=1000 (the API's default is 20).
    pub limit: Option<u32>,
    pub page: Option<String>,
    pub actor_ids: Vec<String>,
    pub actor_types: Vec<String>,
    pub api_key_ids: Vec<String>,
    pub workspace_ids: Vec<String>,
}

impl AnalyticsParams {
    pub fn new(starting_at: DateTime<Utc>) -> Self {
        AnalyticsParams {
            starting_at,
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serde helpers

/// Treats an explicit JSON `null` like an absent field.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Exact decimal from a JSON string (`"123.45"`) or, tolerated, a JSON number.
struct DecimalVisitor;

impl serde::de::Visitor<'_> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal number of cents, as a string or a number")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
        let v = v.trim();
        Decimal::from_str(v)
            .or_else(|_| Decimal::from_scientific(v))
            .map_err(|e| E::custom(format!("invalid decimal {v:?}: {e}")))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
        if !v.is_finite() {
            return Err(E::custom("non-finite amount"));
        }
        // `{}` prints the shortest string that round-trips, so 12.34 becomes exactly 12.34.
        let s = format!("{v}");
        Decimal::from_str(&s)
            .or_else(|_| Decimal::from_scientific(&s))
            .map_err(|e| E::custom(format!("invalid decimal {s}: {e}")))
    }
}

/// `Decimal` written as a JSON string; read from a string or a number.
pub mod decimal_cents_string {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.normalize().to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }
}

/// `Decimal` written as a JSON number; read from a number or a string.
pub mod decimal_cents_number {
    use super::*;
    use rust_decimal::prelude::ToPrimitive;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        let d = d.normalize();
        if d.scale() == 0 {
            if let Some(i) = d.to_i64() {
                return s.serialize_i64(i);
            }
        }
        s.serialize_f64(d.to_f64().unwrap_or(0.0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }
}

/// A UTC day written as `YYYY-MM-DDT00:00:00Z`; read from that or from `YYYY-MM-DD`.
pub mod utc_day {
    use super::*;

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}T00:00:00Z", d.format("%Y-%m-%d")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid date {s:?}")))
    }

    /// Parses `YYYY-MM-DD` or an RFC 3339 timestamp (taking its UTC day).
    pub fn parse(s: &str) -> Option<NaiveDate> {
        let s = s.trim();
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc).date_naive())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Compliance API Activity Feed (§8.5)

/// One activity of the feed. Only `id`, `created_at`, `type` and the actor are read into
/// fields; the type-specific fields (`api_key_id`, `workspace_id`, `updates`, …) stay in
/// `fields`, so a type this version does not know is kept rather than refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub id: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub actor: ActivityActor,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Activity {
    /// A type-specific string field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.as_str())
    }

    /// The `updates[]` of an `*_updated` activity: which fields changed.
    pub fn updated(&self) -> impl Iterator<Item = &str> {
        self.fields
            .get("updates")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|u| u.get("type").and_then(|t| t.as_str()))
    }
}

/// Who acted. Eleven variants exist, more may come: one tolerant struct holding the fields
/// Orgkeeper shows, whatever the variant (`kind` is its `type`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityActor {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub admin_api_key_id: Option<String>,
    #[serde(default)]
    pub api_key_id: Option<String>,
    #[serde(default)]
    pub service_account_id: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

impl ActivityActor {
    /// Who, in words: an email address, or the kind of actor and its id.
    pub fn describe(&self) -> String {
        let id = |what: &str, id: &Option<String>| match id {
            Some(id) => format!("{what} {id}"),
            None => what.to_owned(),
        };
        match self.kind.as_deref() {
            _ if self.email_address.is_some() => self.email_address.clone().unwrap_or_default(),
            Some("admin_api_key_actor") => id("an Admin API key", &self.admin_api_key_id),
            Some("api_actor") => id("the API key", &self.api_key_id),
            Some("service_account_actor") => id("the service account", &self.service_account_id),
            Some("scim_directory_sync_actor") => "directory sync (SCIM)".to_owned(),
            Some("anthropic_actor") | Some("system_actor") => "Anthropic".to_owned(),
            Some("user_actor") => id("a Console user", &self.user_id),
            Some(other) => other.replace('_', " "),
            None => "someone".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityOrder {
    Asc,
    Desc,
}

impl ActivityOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityOrder::Asc => "asc",
            ActivityOrder::Desc => "desc",
        }
    }
}

/// Parameters of the feed. `page.limit` is 1..=5000 (the API's default is 100); cursors are
/// relative to `order` (newest first by default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivityParams {
    pub page: crate::anthropic::PageParams,
    pub order: Option<ActivityOrder>,
    pub created_at_gte: Option<DateTime<Utc>>,
    pub activity_types: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::pagination::{Page, ReportPage};
    use serde_json::json;

    #[test]
    fn a_user_list_with_an_unknown_role_and_unknown_fields_still_parses() {
        let body = json!({
            "data": [
                {"type": "user", "id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "email": "a@example.com",
                 "name": "Ada", "role": "developer", "added_at": "2024-10-30T23:58:27.427722Z"},
                {"type": "user", "id": "user_02", "email": "b@example.com", "name": "Bob",
                 "role": "galactic_overlord", "added_at": "2025-08-01T00:00:00Z",
                 "brand_new_field": {"nested": true}}
            ],
            "has_more": true, "first_id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "last_id": "user_02"
        });
        let page: Page<User> = serde_json::from_value(body).unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.data[0].role, OrgRole::Developer);
        assert_eq!(
            page.data[1].role,
            OrgRole::Other("galactic_overlord".into())
        );
        assert_eq!(page.data[1].role.as_str(), "galactic_overlord");
        assert!(page.has_more);
        assert_eq!(page.last_id.as_deref(), Some("user_02"));
        assert_eq!(
            page.data[0].added_at.timestamp_subsec_micros(),
            427_722,
            "fractional seconds are kept"
        );
        assert_eq!(
            page.data[1].added_at,
            "2025-08-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn an_empty_page_with_null_cursors_parses() {
        let page: Page<User> =
            serde_json::from_str(r#"{"data":[],"has_more":false,"first_id":null,"last_id":null}"#)
                .unwrap();
        assert!(page.data.is_empty());
        assert_eq!(page.first_id, None);
    }

    #[test]
    fn the_legacy_api_key_shape_reads_workspace_id_from_the_top_level() {
        let key: ApiKey = serde_json::from_value(json!({
            "type": "api_key",
            "id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
            "name": "Developer Key",
            "workspace_id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
            "created_at": "2024-10-30T23:58:27.427722Z",
            "created_by": { "id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "type": "user" },
            "partial_key_hint": "sk-ant-api03-R2D...igAA",
            "status": "active"
        }))
        .unwrap();
        assert_eq!(key.workspace_id(), Some("wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"));
        assert_eq!(key.status, ApiKeyStatus::Active);
        assert_eq!(key.scope, None);
        assert_eq!(&*key.created_by.as_ref().unwrap().kind, "user");
    }

    #[test]
    fn the_current_api_key_shape_prefers_scope_over_the_legacy_field() {
        let key: ApiKey = serde_json::from_value(json!({
            "type": "api_key", "id": "apikey_1", "name": "k", "status": "expired",
            "created_at": "2026-01-01T00:00:00Z", "created_by": null, "expires_at": null,
            "partial_key_hint": null,
            "principal": {"type": "user_actor", "user_id": "user_9"},
            "scope": {"type": "workspace", "workspace_id": "wrkspc_default"},
            "workspace_id": null
        }))
        .unwrap();
        assert_eq!(key.workspace_id(), Some("wrkspc_default"));
        assert_eq!(key.principal_user_id(), Some("user_9"));
        assert_eq!(key.status, ApiKeyStatus::Expired);

        let org_key: ApiKey = serde_json::from_value(json!({
            "type": "api_key", "id": "apikey_2", "name": "k", "status": "frozen",
            "created_at": "2026-01-01T00:00:00.5Z",
            "principal": {"type": "service_account_actor", "service_account_id": "svac_1"},
            "scope": {"type": "organization"}
        }))
        .unwrap();
        assert_eq!(org_key.workspace_id(), None);
        assert_eq!(org_key.status, ApiKeyStatus::Other("frozen".into()));

        let future_key: ApiKey = serde_json::from_value(json!({
            "type": "api_key", "id": "apikey_3", "name": "k", "status": "active",
            "created_at": "2026-01-01T00:00:00Z",
            "principal": {"type": "robot", "robot_id": "r"},
            "scope": {"type": "galaxy", "galaxy_id": "g"},
            "workspace_id": "wrkspc_legacy"
        }))
        .unwrap();
        assert_eq!(future_key.scope, Some(ApiKeyScope::Unknown));
        assert_eq!(future_key.principal, Some(ApiKeyPrincipal::Unknown));
        assert_eq!(future_key.workspace_id(), Some("wrkspc_legacy"));
    }

    #[test]
    fn workspaces_parse_in_both_the_old_and_the_new_shape() {
        let old: Workspace = serde_json::from_value(json!({
            "id": "wrkspc_1", "type": "workspace", "name": "Prod", "display_color": "#6C5BB9",
            "created_at": "2024-10-30T23:58:27.427722Z", "archived_at": null
        }))
        .unwrap();
        assert!(!old.is_archived());
        let new: Workspace = serde_json::from_value(json!({
            "id": "wrkspc_2", "type": "workspace", "name": "Eng", "display_color": "#000000",
            "created_at": "2025-01-01T00:00:00Z", "archived_at": "2025-02-01T00:00:00Z",
            "compartment_id": "cmp_1", "tags": {"team": "eng"}, "external_key_id": null,
            "data_residency": {"workspace_geo": "us", "allowed_inference_geos": "unrestricted",
                               "default_inference_geo": "global"}
        }))
        .unwrap();
        assert!(new.is_archived());
        assert_eq!(new.tags.get("team").map(String::as_str), Some("eng"));
        assert_eq!(
            new.data_residency.unwrap().allowed_inference_geos,
            Some(AllowedInferenceGeos::Keyword("unrestricted".into()))
        );
    }

    #[test]
    fn invites_and_members_parse_with_unknown_statuses_and_roles() {
        let invite: Invite = serde_json::from_value(json!({
            "id": "invite_1", "type": "invite", "email": "x@example.com", "role": "user",
            "status": "bounced", "invited_at": "2025-01-01T00:00:00Z",
            "expires_at": "2025-01-22T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(invite.status, InviteStatus::Other("bounced".into()));
        assert!(invite.rbac_group_ids.is_empty());
        assert_eq!(invite.accepted_at, None);
        let member: WorkspaceMember = serde_json::from_value(json!({
            "type": "workspace_member", "user_id": "user_1", "workspace_id": "wrkspc_1",
            "workspace_role": "workspace_restricted_developer"
        }))
        .unwrap();
        assert_eq!(
            member.workspace_role,
            WorkspaceRole::WorkspaceRestrictedDeveloper
        );
    }

    #[test]
    fn cost_amounts_are_exact_decimal_cents_from_strings_or_numbers() {
        let page: ReportPage<CostBucket> = serde_json::from_value(json!({
            "data": [{"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z",
                      "results": [
                        {"currency": "USD", "amount": "123.78912", "workspace_id": null,
                         "description": null, "cost_type": null, "model": null,
                         "service_tier": null, "context_window": null, "token_type": null},
                        {"currency": "USD", "amount": 0.1},
                        {"currency": "USD", "amount": 42}
                      ]}],
            "has_more": true, "next_page": "page_MjAyNS0wOC0wMlQwMDowMDowMFo="
        }))
        .unwrap();
        let r = &page.data[0].results;
        assert_eq!(r[0].amount, Decimal::from_str("123.78912").unwrap());
        assert_eq!(r[1].amount, Decimal::from_str("0.1").unwrap());
        assert_eq!(r[2].amount, Decimal::from(42));
        let sum: Decimal = r.iter().map(|x| x.amount).sum();
        assert_eq!(sum.to_string(), "165.88912");
        assert_eq!(
            page.next_page.as_deref(),
            Some("page_MjAyNS0wOC0wMlQwMDowMDowMFo=")
        );
        // Serializes back as a string, like the API.
        let v = serde_json::to_value(&r[0]).unwrap();
        assert_eq!(v["amount"], json!("123.78912"));
    }

    #[test]
    fn the_documented_usage_report_example_parses() {
        let page: ReportPage<UsageBucket> = serde_json::from_value(json!({
          "data": [
            { "starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z",
              "results": [ { "model": "claude-sonnet-4-20250514", "workspace_id": null, "api_key_id": null,
                "service_tier": null, "context_window": null,
                "uncached_input_tokens": 1500, "cache_read_input_tokens": 200,
                "cache_creation": { "ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0 },
                "output_tokens": 500, "server_tool_use": { "web_search_requests": 0 } } ] }
          ],
          "has_more": false, "next_page": null
        }))
        .unwrap();
        let r = &page.data[0].results[0];
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-20250514"));
        assert_eq!(r.total_input_tokens(), 2200);
        assert_eq!(r.output_tokens, 500);
        assert!(!page.has_more);
    }

    #[test]
    fn a_claude_code_record_parses_with_either_date_form_and_numeric_cost() {
        let base = json!({
            "actor": {"type": "user_actor", "email_address": "dev@example.com"},
            "organization_id": "12345678-1234-5678-1234-567812345678",
            "customer_type": "api", "subscription_type": null, "terminal_type": "vscode",
            "core_metrics": {"num_sessions": 3, "lines_of_code": {"added": 10, "removed": 2},
                             "commits_by_claude_code": 1, "pull_requests_by_claude_code": 0},
            "tool_actions": {"edit_tool": {"accepted": 5, "rejected": 1}},
            "model_breakdown": [{"model": "claude-sonnet-4-20250514",
                "tokens": {"input": 100, "output": 50, "cache_read": 0, "cache_creation": 0},
                "estimated_cost": {"currency": "USD", "amount": 186.35}}]
        });
        for date in ["2025-09-01", "2025-09-01T00:00:00Z"] {
            let mut v = base.clone();
            v["date"] = json!(date);
            let rec: ClaudeCodeRecord = serde_json::from_value(v).unwrap();
            assert_eq!(rec.date, NaiveDate::from_ymd_opt(2025, 9, 1).unwrap());
            assert_eq!(
                rec.model_breakdown[0].estimated_cost.amount,
                Decimal::from_str("186.35").unwrap()
            );
            assert_eq!(rec.tool_actions["edit_tool"].accepted, 5);
            assert_eq!(
                rec.actor,
                ClaudeCodeActor::UserActor {
                    email_address: "dev@example.com".into()
                }
            );
        }
        let api: ClaudeCodeActor =
            serde_json::from_value(json!({"type": "api_actor", "api_key_name": "ci"})).unwrap();
        assert_eq!(
            api,
            ClaudeCodeActor::ApiActor {
                api_key_name: "ci".into()
            }
        );
    }

    #[test]
    fn rate_limit_entries_parse() {
        let page: ReportPage<OrgRateLimit> = serde_json::from_value(json!({
            "data": [{"type": "rate_limit", "id": "rl_1",
                      "group": {"type": "model_group", "id": "rlg_1", "display_name": "Claude Sonnet 4.x"},
                      "limits": [{"type": "requests_per_minute", "value": 4000}],
                      "models": ["claude-sonnet-4-5"]},
                     {"type": "rate_limit", "id": "rl_2", "group": {"type": "batch", "id": "rlg_2"},
                      "limits": [], "models": null}],
            "next_page": null
        }))
        .unwrap();
        assert_eq!(page.data[0].limits[0].value, 4000);
        assert_eq!(page.data[1].models, None);
        assert!(!page.has_more);
        let ws: WorkspaceRateLimit = serde_json::from_value(json!({
            "type": "workspace_rate_limit", "rate_limit_id": "rl_1", "workspace_id": "wrkspc_1",
            "group": {"type": "model_group", "id": "rlg_1", "display_name": "S"},
            "limits": [{"type": "requests_per_minute", "value": 100, "org_limit": 4000,
                        "source": {"type": "workspace"}}],
            "models": ["m"]
        }))
        .unwrap();
        assert_eq!(ws.limits[0].org_limit, Some(4000));
        assert_eq!(ws.limits[0].source.as_ref().unwrap().kind, "workspace");
    }

    #[test]
    fn string_enums_round_trip_and_keep_unknown_values() {
        for role in OrgRole::KNOWN {
            assert_eq!(&OrgRole::parse(role.as_str()), role);
            let v = serde_json::to_value(role).unwrap();
            assert_eq!(v, json!(role.as_str()));
        }
        assert!(!OrgRole::Admin.is_assignable_in_console());
        assert!(OrgRole::ClaudeCodeUser.is_assignable_in_console());
        assert_eq!(BucketWidth::Hour.to_string(), "1h");
        let body = serde_json::to_value(UpdateApiKey {
            name: None,
            status: Some(ApiKeyStatus::Inactive),
        })
        .unwrap();
        assert_eq!(body, json!({"status": "inactive"}));
    }

    #[test]
    fn activities_keep_unknown_types_actors_and_fields() {
        let a: Activity = serde_json::from_value(json!({
            "id": "activity_1", "created_at": "2026-10-01T12:00:00Z", "organization_id": null,
            "actor": {"type": "attested_device_actor", "kid_hash": "x", "ip_address": "192.0.2.1"},
            "type": "something_new", "api_key_id": "apikey_1", "extra": {"nested": true}
        }))
        .unwrap();
        assert_eq!(a.kind, "something_new");
        assert_eq!(a.field("api_key_id"), Some("apikey_1"));
        assert_eq!(a.actor.ip_address.as_deref(), Some("192.0.2.1"));
        assert_eq!(a.actor.describe(), "attested device actor");
        let b: Activity = serde_json::from_value(json!({
            "id": "activity_2", "created_at": "2026-10-01T12:00:00.123456Z", "actor": null,
            "type": "platform_api_key_updated",
            "updates": [{"type": "status", "previous_value": "active", "current_value": "inactive"}]
        }))
        .unwrap();
        assert_eq!(b.updated().collect::<Vec<_>>(), vec!["status"]);
        assert_eq!(b.actor.describe(), "someone");
    }
}
