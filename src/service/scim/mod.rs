//! SCIM provisioning: the identity provider creates, changes and removes the organization's
//! people, and its groups give roles and workspaces. Every change to the organization goes
//! through the same service functions as the pages (invites, the offboarding run, member
//! roles, workspace memberships), audited with the SCIM client as the actor; what SCIM itself
//! keeps (its ids, names, groups) is recorded around it. `src/scim/` translates HTTP.

pub mod store;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::offboarding::{self, StepKind, Wanted};
use super::{invites, members, target, workspaces, Caller, ServiceError, Services};
use crate::anthropic::{ApiError, InviteStatus, OrgRole, User, WorkspaceRole};
use crate::audit::{Action, AuditError, Outcome, Target};
use crate::auth::Permission;
use crate::config::ScimKeys;
pub use store::{Mapping, ScimGroup, ScimUser};

/// Why a SCIM request was refused, in SCIM's terms (RFC 7644 §3.12).
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error("No such resource.")]
    NotFound,
    /// 409 `uniqueness`.
    #[error("{0}")]
    Taken(String),
    /// 400 with a `scimType`.
    #[error("{detail}")]
    Invalid {
        scim_type: &'static str,
        detail: String,
    },
    /// Anthropic refused or failed a change; the detail says what was and was not done.
    #[error("{detail}")]
    Upstream { detail: String, refused: bool },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sqlx::Error> for ScimError {
    fn from(e: sqlx::Error) -> Self {
        ScimError::Service(e.into())
    }
}

impl From<AuditError> for ScimError {
    fn from(e: AuditError) -> Self {
        ScimError::Service(e.into())
    }
}

fn invalid(scim_type: &'static str, detail: impl Into<String>) -> ScimError {
    ScimError::Invalid {
        scim_type,
        detail: detail.into(),
    }
}

fn upstream(done: &str, error: &ApiError) -> ScimError {
    let request = error
        .request_id()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default();
    ScimError::Upstream {
        detail: format!("{done}{}{request}", error.user_message()),
        refused: error.is_refusal(),
    }
}

// ---- People ----

/// A person's attributes as the identity provider sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFields {
    pub user_name: String,
    /// Addresses, the primary one first.
    pub emails: Vec<String>,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
}

impl UserFields {
    pub fn of(user: &ScimUser) -> UserFields {
        UserFields {
            user_name: user.user_name.clone(),
            emails: vec![user.email.clone()],
            external_id: user.external_id.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            display_name: user.display_name.clone(),
            active: user.active,
        }
    }

    /// Who the person is in the organization: `userName` when it is an address, otherwise
    /// the primary (or first) address, lower-cased.
    pub fn identity(&self) -> Option<String> {
        std::iter::once(&self.user_name)
            .chain(&self.emails)
            .map(|e| e.trim())
            .find(|e| invites::valid_email(e))
            .map(str::to_lowercase)
    }
}

fn user_target(user: &ScimUser) -> Option<Target> {
    target("scim_user", user.id.clone(), Some(user.email.clone()))
}

/// The organization's member with this address, if any.
fn member(services: &Services, email: &str) -> Option<User> {
    services
        .org
        .snapshot()
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email))
        .cloned()
}

fn is_admin(user: &User) -> bool {
    matches!(user.role.as_str(), "admin" | "owner" | "primary_owner")
}

/// Every provisioned person, or those one indexed attribute matches.
pub async fn users(
    services: &Services,
    lookup: Option<(store::Lookup, &str)>,
) -> Result<Vec<ScimUser>, ScimError> {
    Ok(match lookup {
        Some((by, value)) => store::users_by(&services.db, by, value).await?,
        None => store::users(&services.db).await?,
    })
}

pub async fn user(services: &Services, id: &str) -> Result<ScimUser, ScimError> {
    store::user(&services.db, id)
        .await?
        .ok_or(ScimError::NotFound)
}

/// Whether the organization holds the person (a member or a pending invite), for the page.
pub fn presence(services: &Services, user: &ScimUser) -> &'static str {
    let snapshot = services.org.snapshot();
    if snapshot
        .users
        .iter()
        .any(|u| u.email.eq_ignore_ascii_case(&user.email))
    {
        "member"
    } else if snapshot
        .invites
        .iter()
        .any(|i| i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(&user.email))
    {
        "invited"
    } else {
        "not in the organization"
    }
}

/// Records what a dry run would have done.
async fn would(
    services: &Services,
    caller: &Caller,
    subject: Option<Target>,
    what: String,
) -> Result<(), ScimError> {
    services
        .record(
            caller,
            Action::ScimDryRun,
            subject,
            json!({ "would": what }),
            Outcome::Ok,
        )
        .await?;
    Ok(())
}

/// Makes sure the organization holds the person: an existing member or pending invite is
/// linked as it is; anyone else is invited with their groups' role (or the default).
async fn provision(services: &Services, caller: &Caller, user: &ScimUser) -> Result<(), ScimError> {
    if member(services, &user.email).is_some() {
        return apply_groups(services, caller, std::slice::from_ref(&user.id)).await;
    }
    let pending =
        services.org.snapshot().invites.iter().any(|i| {
            i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(&user.email)
        });
    if pending {
        return Ok(());
    }
    let role = Grants::read(services)
        .await?
        .of(&user.id)
        .role
        .unwrap_or_else(|| services.config.scim.default_role.clone());
    if services.config.scim.dry_run {
        let what = format!("invite {} as {}", user.email, role.as_str());
        return would(services, caller, user_target(user), what).await;
    }
    match invites::create(services, caller, &user.email, &role).await? {
        Ok(_) => Ok(()),
        Err(error) => Err(upstream(
            &format!("Anthropic did not invite {}: ", user.email),
            &error,
        )),
    }
}

/// The steps that take the person out of the organization, as the offboarding wizard would
/// run them with SCIM's settings: their pending invites, their workspaces, their workspace
/// keys (per `ORGKEEPER_SCIM_OFFBOARD_KEYS`), then the member.
fn offboarding_steps(
    holdings: &offboarding::Holdings,
    member: &User,
    keys: ScimKeys,
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let key_step = match keys {
        ScimKeys::Deactivate => Some(StepKind::DeactivateKey),
        ScimKeys::Archive => Some(StepKind::ArchiveKey),
        ScimKeys::Leave => None,
    };
    if let Some(kind) = key_step {
        for key in &holdings.keys {
            let (_, choice) = offboarding::key_fate(key, &member.id, true);
            if choice == "deactivate" {
                wanted.push((kind, key.id.clone()));
            }
        }
    }
    wanted.extend(
        holdings
            .invites
            .iter()
            .map(|i| (StepKind::DeleteInvite, i.id.clone())),
    );
    // A billing member belongs to every workspace through their role; removing them from
    // the organization ends that.
    if member.role != OrgRole::Billing {
        wanted.extend(
            holdings
                .memberships
                .iter()
                .map(|m| (StepKind::RemoveMembership, m.0.clone())),
        );
    }
    wanted.push((StepKind::RemoveMember, member.id.clone()));
    wanted
}

/// Takes the person out of the organization through the offboarding service. An admin (whom
/// the Admin API cannot remove) is refused before anything is done.
async fn deprovision(
    services: &Services,
    caller: &Caller,
    user: &ScimUser,
) -> Result<(), ScimError> {
    let snapshot = services.org.snapshot();
    let found = member(services, &user.email);
    if let Some(admin) = found.as_ref().filter(|m| is_admin(m)) {
        let detail = format!(
            "{} is an {} of the Anthropic organization, and the Admin API cannot remove admins. Nothing was changed: remove them in the Anthropic Console (Settings → Members), or change their role there first.",
            user.email,
            admin.role.as_str()
        );
        store::set_problem(&services.db, &user.id, Some(&detail)).await?;
        services
            .record(
                caller,
                Action::ScimUserDeprovisioned,
                user_target(user),
                json!({ "reason": detail }),
                Outcome::Denied,
            )
            .await?;
        return Err(invalid("mutability", detail));
    }
    match found {
        Some(member) => {
            let holdings = offboarding::holdings(services, caller, &member.id).await?;
            let wanted = offboarding_steps(&holdings, &member, services.config.scim.offboard_keys);
            if services.config.scim.dry_run {
                let steps = offboarding::plan(&member.id, &holdings, &wanted);
                let what = steps
                    .iter()
                    .map(|s| format!("{}: {}", s.verb, s.label))
                    .collect::<Vec<_>>()
                    .join("; ");
                return would(services, caller, user_target(user), what).await;
            }
            let run = offboarding::start(services, caller, &member.id, &wanted).await?;
            let steps = offboarding::steps_of(services, run).await?;
            if let Some(failed) = steps.iter().find(|s| s.state == "failed") {
                let done: Vec<String> = steps
                    .iter()
                    .filter(|s| s.state == "done")
                    .map(|s| format!("{}: {}", s.verb(), s.label))
                    .collect();
                let request = failed
                    .request_id
                    .as_deref()
                    .map(|id| format!(" (request id {id})"))
                    .unwrap_or_default();
                let detail = format!(
                    "Offboarding {} stopped at \"{}: {}\": {}{request}. Done before it: {}. The rest was not done; the identity provider's next attempt resumes it.",
                    user.email,
                    failed.verb(),
                    failed.label,
                    failed.error.as_deref().unwrap_or("it failed"),
                    if done.is_empty() { "nothing".to_owned() } else { done.join("; ") },
                );
                store::set_problem(&services.db, &user.id, Some(&detail)).await?;
                return Err(ScimError::Upstream {
                    detail,
                    refused: true,
                });
            }
        }
        None => {
            let pending: Vec<_> = snapshot
                .invites
                .iter()
                .filter(|i| {
                    i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(&user.email)
                })
                .cloned()
                .collect();
            for invite in pending {
                if services.config.scim.dry_run {
                    let what = format!("delete the pending invite of {}", invite.email);
                    would(services, caller, user_target(user), what).await?;
                    continue;
                }
                let context = json!({ "provisioning": true });
                if let Err(error) =
                    invites::delete(services, caller, &invite.id, &invite.email, context).await?
                {
                    if !error.is_not_found() {
                        let done =
                            format!("Anthropic did not delete the invite of {}: ", invite.email);
                        return Err(upstream(&done, &error));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Provisions a person: the organization gets them (linked or invited), then SCIM keeps them.
pub async fn create_user(
    services: &Services,
    caller: &Caller,
    fields: UserFields,
) -> Result<ScimUser, ScimError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let email = fields.identity().ok_or_else(|| {
        invalid(
            "invalidValue",
            "Give the person an e-mail address, as userName or in emails: Anthropic invites people by e-mail.",
        )
    })?;
    if let Some(existing) = store::user_by_email(&services.db, &email).await? {
        return Err(ScimError::Taken(format!(
            "{email} is already provisioned (id {}).",
            existing.id
        )));
    }
    let now = services.clock.now();
    let user = ScimUser {
        id: uuid(),
        user_name: fields.user_name.trim().to_owned(),
        email,
        external_id: fields.external_id,
        given_name: fields.given_name,
        family_name: fields.family_name,
        display_name: fields.display_name,
        active: fields.active,
        created_at: now,
        updated_at: now,
        problem: None,
    };
    if user.active {
        provision(services, caller, &user).await?;
    }
    let details = json!({
        "email": user.email,
        "external_id": user.external_id,
        "active": user.active,
        "in_organization": presence(services, &user),
    });
    let insert = store::save_user(&services.db, &user);
    services
        .local_change(
            caller,
            Action::ScimUserProvisioned,
            user_target(&user),
            details,
            insert,
            |_| None,
        )
        .await?
        .map_err(|e| {
            if store::taken(&e) {
                ScimError::Taken(format!("{} is already provisioned.", user.email))
            } else {
                e.into()
            }
        })?;
    Ok(user)
}

/// Replaces a person's attributes (PUT, and PATCH once applied). Deactivating offboards them;
/// activating again invites them; a new address re-invites a pending invite (a member's
/// address cannot change: their Anthropic account keeps it).
pub async fn replace_user(
    services: &Services,
    caller: &Caller,
    id: &str,
    fields: UserFields,
) -> Result<ScimUser, ScimError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let old = user(services, id).await?;
    let email = fields.identity().ok_or_else(|| {
        invalid(
            "invalidValue",
            "Give the person an e-mail address, as userName or in emails.",
        )
    })?;
    let moved = email != old.email;
    if moved {
        if let Some(other) = store::user_by_email(&services.db, &email).await? {
            return Err(ScimError::Taken(format!(
                "{email} is already provisioned (id {}).",
                other.id
            )));
        }
        if old.active && member(services, &old.email).is_some() {
            return Err(invalid(
                "mutability",
                format!("{} is a member of the Anthropic organization, and a member's address cannot change. Deprovision this person and provision the new address instead.", old.email),
            ));
        }
    }
    let new = ScimUser {
        id: old.id.clone(),
        user_name: fields.user_name.trim().to_owned(),
        email,
        external_id: fields.external_id,
        given_name: fields.given_name,
        family_name: fields.family_name,
        display_name: fields.display_name,
        active: fields.active,
        created_at: old.created_at,
        updated_at: services.clock.now(),
        problem: None,
    };
    let (action, changed) = match (old.active, new.active) {
        (true, false) => {
            deprovision(services, caller, &old).await?;
            (Action::ScimUserDeprovisioned, true)
        }
        (false, true) => {
            provision(services, caller, &new).await?;
            (Action::ScimUserProvisioned, true)
        }
        (true, true) if moved => {
            deprovision(services, caller, &old).await?;
            provision(services, caller, &new).await?;
            (Action::ScimUserChanged, true)
        }
        _ => (
            Action::ScimUserChanged,
            UserFields::of(&old) != UserFields::of(&new),
        ),
    };
    if !changed {
        return Ok(old);
    }
    let details = json!({
        "before": { "email": old.email, "active": old.active, "user_name": old.user_name },
        "after": { "email": new.email, "active": new.active, "user_name": new.user_name },
    });
    let update = store::save_user(&services.db, &new);
    services
        .local_change(caller, action, user_target(&new), details, update, |_| None)
        .await??;
    Ok(new)
}

/// Deletes a person: offboarded first if still active, then forgotten (404 from then on).
pub async fn delete_user(services: &Services, caller: &Caller, id: &str) -> Result<(), ScimError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let old = user(services, id).await?;
    if old.active {
        deprovision(services, caller, &old).await?;
    }
    let delete = store::delete_user(&services.db, id);
    services
        .local_change(
            caller,
            Action::ScimUserDeleted,
            user_target(&old),
            json!({ "email": old.email, "was_active": old.active }),
            delete,
            |_| None,
        )
        .await??;
    Ok(())
}

// ---- Groups ----

/// A group's attributes as the identity provider sends them.
#[derive(Clone, Debug, Default)]
pub struct GroupFields {
    pub display_name: String,
    pub external_id: Option<String>,
    /// SCIM ids of its members.
    pub members: Vec<String>,
}

fn group_target(group: &ScimGroup) -> Option<Target> {
    target(
        "scim_group",
        group.id.clone(),
        Some(group.display_name.clone()),
    )
}

pub async fn groups(services: &Services) -> Result<Vec<ScimGroup>, ScimError> {
    Ok(store::groups(&services.db).await?)
}

pub async fn group(services: &Services, id: &str) -> Result<ScimGroup, ScimError> {
    store::group(&services.db, id)
        .await?
        .ok_or(ScimError::NotFound)
}

/// The members, each once, all provisioned people; the name, present.
async fn checked(services: &Services, mut fields: GroupFields) -> Result<GroupFields, ScimError> {
    fields.display_name = fields.display_name.trim().to_owned();
    if fields.display_name.is_empty() || fields.display_name.chars().count() > 256 {
        return Err(invalid(
            "invalidValue",
            "A group needs a displayName of at most 256 characters.",
        ));
    }
    let known: Vec<String> = store::users(&services.db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut unique: Vec<String> = Vec::new();
    for member in fields.members {
        if !known.contains(&member) {
            return Err(invalid(
                "noTarget",
                format!("{member} is not a provisioned user: provision them first. Nothing was changed."),
            ));
        }
        if !unique.contains(&member) {
            unique.push(member);
        }
    }
    fields.members = unique;
    Ok(fields)
}

/// The addresses of some SCIM ids, for audit records.
async fn emails_of(services: &Services, ids: &[String]) -> Result<Vec<String>, ScimError> {
    let users = store::users(&services.db).await?;
    Ok(ids
        .iter()
        .map(|id| {
            users
                .iter()
                .find(|u| &u.id == id)
                .map_or_else(|| id.clone(), |u| u.email.clone())
        })
        .collect())
}

/// Stores a group (new or replaced) and applies what its changed membership gives.
async fn save_group(
    services: &Services,
    caller: &Caller,
    old: Option<ScimGroup>,
    fields: GroupFields,
) -> Result<ScimGroup, ScimError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let fields = checked(services, fields).await?;
    let now = services.clock.now();
    let group = ScimGroup {
        id: old.as_ref().map_or_else(uuid, |g| g.id.clone()),
        display_name: fields.display_name,
        external_id: fields.external_id,
        created_at: old.as_ref().map_or(now, |g| g.created_at),
        updated_at: now,
        members: fields.members,
    };
    let before: Vec<String> = old.as_ref().map(|g| g.members.clone()).unwrap_or_default();
    let added: Vec<String> = group
        .members
        .iter()
        .filter(|m| !before.contains(m))
        .cloned()
        .collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|m| !group.members.contains(m))
        .cloned()
        .collect();
    let renamed = old
        .as_ref()
        .is_some_and(|g| !g.display_name.eq_ignore_ascii_case(&group.display_name));
    let details = json!({
        "created": old.is_none(),
        "added": emails_of(services, &added).await?,
        "removed": emails_of(services, &removed).await?,
        "renamed": old.as_ref().filter(|_| renamed).map(|g| json!({ "before": g.display_name, "after": group.display_name })),
    });
    let write = store::save_group(&services.db, &group);
    services
        .local_change(
            caller,
            Action::ScimGroupChanged,
            group_target(&group),
            details,
            write,
            |_| None,
        )
        .await?
        .map_err(|e| {
            if store::taken(&e) {
                ScimError::Taken(format!(
                    "A group named {} exists already.",
                    group.display_name
                ))
            } else {
                e.into()
            }
        })?;
    // A renamed group may match another mapping: everyone in it is affected.
    let affected: Vec<String> = if renamed {
        before.iter().chain(&group.members).cloned().collect()
    } else {
        added.into_iter().chain(removed).collect()
    };
    apply_groups(services, caller, &affected).await?;
    Ok(group)
}

pub async fn create_group(
    services: &Services,
    caller: &Caller,
    fields: GroupFields,
) -> Result<ScimGroup, ScimError> {
    save_group(services, caller, None, fields).await
}

pub async fn replace_group(
    services: &Services,
    caller: &Caller,
    id: &str,
    fields: GroupFields,
) -> Result<ScimGroup, ScimError> {
    let old = group(services, id).await?;
    save_group(services, caller, Some(old), fields).await
}

pub async fn delete_group(services: &Services, caller: &Caller, id: &str) -> Result<(), ScimError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let old = group(services, id).await?;
    let details = json!({ "deleted": true, "removed": emails_of(services, &old.members).await? });
    let delete = store::delete_group(&services.db, id);
    services
        .local_change(
            caller,
            Action::ScimGroupChanged,
            group_target(&old),
            details,
            delete,
            |_| None,
        )
        .await??;
    apply_groups(services, caller, &old.members).await?;
    Ok(())
}

// ---- What groups give ----

/// How strong an organization role is: the strongest of a person's groups wins.
fn role_rank(role: &OrgRole) -> u8 {
    match role {
        OrgRole::User => 0,
        OrgRole::ClaudeCodeUser => 1,
        OrgRole::Developer => 2,
        OrgRole::Billing => 3,
        _ => 4,
    }
}

fn workspace_rank(role: &WorkspaceRole) -> u8 {
    match role {
        WorkspaceRole::WorkspaceUser => 0,
        WorkspaceRole::WorkspaceRestrictedDeveloper => 1,
        WorkspaceRole::WorkspaceDeveloper => 2,
        WorkspaceRole::WorkspaceAdmin => 3,
        _ => 4,
    }
}

/// The mappings and groups, read once for a round of changes (a group push can name
/// thousands of people).
struct Grants {
    mappings: Vec<Mapping>,
    /// Each person's groups, by lower-cased name, as the mappings name them.
    groups_of: HashMap<String, Vec<String>>,
}

/// What a person's groups give: the strongest mapped role, and each mapped workspace with its
/// strongest role.
struct Given {
    role: Option<OrgRole>,
    workspaces: BTreeMap<String, WorkspaceRole>,
}

impl Grants {
    async fn read(services: &Services) -> Result<Grants, ScimError> {
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for group in store::groups(&services.db).await? {
            let name = group.display_name.to_lowercase();
            for member in group.members {
                groups_of.entry(member).or_default().push(name.clone());
            }
        }
        Ok(Grants {
            mappings: store::mappings(&services.db).await?,
            groups_of,
        })
    }

    /// Every workspace a mapping names: the only ones SCIM adds people to or removes them from.
    fn managed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .mappings
            .iter()
            .flat_map(|m| m.workspaces.iter().map(|(w, _)| w.clone()))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn of(&self, user_id: &str) -> Given {
        let names = self
            .groups_of
            .get(user_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut given = Given {
            role: None,
            workspaces: BTreeMap::new(),
        };
        for mapping in self
            .mappings
            .iter()
            .filter(|m| names.contains(&m.group_name.to_lowercase()))
        {
            if let Some(r) = &mapping.role {
                if given
                    .role
                    .as_ref()
                    .is_none_or(|have| role_rank(r) > role_rank(have))
                {
                    given.role = Some(r.clone());
                }
            }
            for (workspace, r) in &mapping.workspaces {
                let stronger = given
                    .workspaces
                    .get(workspace)
                    .is_none_or(|have| workspace_rank(r) > workspace_rank(have));
                if stronger {
                    given.workspaces.insert(workspace.clone(), r.clone());
                }
            }
        }
        given
    }
}

/// Brings each person's organization role and managed workspaces to what their groups give.
/// Only members are changed (an invite got its role when it was sent); admins are left alone
/// (the Admin API cannot change them). A refusal is kept as the person's problem and the rest
/// goes on; each change is audited by the service that makes it.
pub async fn apply_groups(
    services: &Services,
    caller: &Caller,
    user_ids: &[String],
) -> Result<(), ScimError> {
    let grants = Grants::read(services).await?;
    let managed = grants.managed();
    let mut seen: Vec<&String> = Vec::new();
    for id in user_ids {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let Some(user) = store::user(&services.db, id).await? else {
            continue;
        };
        let Some(member) = member(services, &user.email).filter(|_| user.active) else {
            continue;
        };
        if is_admin(&member) {
            continue;
        }
        let Given {
            role,
            workspaces: wanted,
        } = grants.of(id);
        let mut problems: Vec<String> = Vec::new();
        let person = (member.id.as_str(), member.email.as_str());
        if let Some(role) = role.filter(|r| *r != member.role) {
            if services.config.scim.dry_run {
                let what = format!("make {} {}", member.email, role.as_str());
                would(services, caller, user_target(&user), what).await?;
            } else if let Err(e) = members::change_role(services, caller, &member, role).await? {
                problems.push(format!("role: {}", e.user_message()));
            }
        }
        let snapshot = services.org.snapshot();
        let current: HashMap<String, WorkspaceRole> = snapshot
            .memberships
            .iter()
            .filter(|m| *m.user_id == *member.id)
            .map(|m| (m.workspace_id.to_string(), m.workspace_role.clone()))
            .collect();
        for workspace_id in &managed {
            let Some(workspace) = snapshot
                .workspaces
                .iter()
                .find(|w| &w.id == workspace_id && !w.is_archived())
            else {
                continue;
            };
            let have = current.get(workspace_id);
            let want = wanted.get(workspace_id);
            let label = format!("{} in {}", member.email, workspace.name);
            let result = match (have, want) {
                (None, Some(role)) if services.config.scim.dry_run => {
                    let what = format!("add {label} as {}", role.as_str());
                    would(services, caller, user_target(&user), what).await?;
                    continue;
                }
                (None, Some(role)) => {
                    workspaces::add_member(services, caller, workspace, person, role)
                        .await?
                        .map(|_| ())
                }
                (Some(have), Some(role)) if have != role => {
                    if services.config.scim.dry_run {
                        let what = format!("make {label} {}", role.as_str());
                        would(services, caller, user_target(&user), what).await?;
                        continue;
                    }
                    workspaces::change_member_role(
                        services,
                        caller,
                        workspace,
                        person,
                        Some(have.as_str()),
                        role,
                    )
                    .await?
                    .map(|_| ())
                }
                (Some(have), None) => {
                    if services.config.scim.dry_run {
                        let what = format!("remove {label}");
                        would(services, caller, user_target(&user), what).await?;
                        continue;
                    }
                    let context = json!({ "provisioning": true });
                    workspaces::remove_member(
                        services,
                        caller,
                        workspace,
                        person,
                        Some(have.as_str()),
                        context,
                    )
                    .await?
                    .map(|_| ())
                }
                _ => continue,
            };
            if let Err(e) = result {
                problems.push(format!("{}: {}", workspace.name, e.user_message()));
            }
        }
        let problem = (!problems.is_empty()).then(|| {
            format!(
                "Some of what {}'s groups give was refused by Anthropic ({}); the rest was done.",
                member.email,
                problems.join("; ")
            )
        });
        store::set_problem(&services.db, &user.id, problem.as_deref()).await?;
    }
    Ok(())
}

/// Who applies a person's groups when they join after being invited (no request of the
/// identity provider is in flight then).
pub const PROVISIONING: Caller = Caller::System {
    name: "system (SCIM provisioning)",
};

/// Applies their groups to the provisioned people among those who just joined the
/// organization (an invitation carries only a role; workspaces need a member).
pub async fn settle_joined(services: &Services, emails: &[String]) -> Result<(), ScimError> {
    let mut ids = Vec::new();
    for email in emails {
        if let Some(user) = store::user_by_email(&services.db, email).await? {
            if user.active {
                ids.push(user.id);
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    apply_groups(services, &PROVISIONING, &ids).await
}

// ---- Mappings (owners) ----

/// A group mapping to make.
#[derive(Clone, Debug, Default)]
pub struct NewMapping {
    pub group: String,
    pub role: Option<OrgRole>,
    pub workspaces: Vec<(String, WorkspaceRole)>,
}

pub async fn mappings(services: &Services) -> Result<Vec<Mapping>, ServiceError> {
    Ok(store::mappings(&services.db).await?)
}

fn mapping_target(group: &str) -> Option<Target> {
    target("scim_mapping", group.to_owned(), Some(group.to_owned()))
}

/// Maps a group to a role and workspaces. It applies from the next change the identity
/// provider sends for each person.
pub async fn map_group(
    services: &Services,
    caller: &Caller,
    new: NewMapping,
) -> Result<Mapping, ServiceError> {
    let group = new.group.trim().to_owned();
    services
        .require(caller, Permission::ManageAccounts, mapping_target(&group))
        .await?;
    if group.is_empty() || group.chars().count() > 256 {
        return Err(ServiceError::Invalid(
            "Type the group's name exactly as the identity provider sends it (at most 256 characters).".into(),
        ));
    }
    if let Some(role) = &new.role {
        invites::check_role(role)?;
    }
    if new.role.is_none() && new.workspaces.is_empty() {
        return Err(ServiceError::Invalid(
            "Choose a role, a workspace, or both: a mapping that gives nothing does nothing."
                .into(),
        ));
    }
    let snapshot = services.org.snapshot();
    let assignable = workspaces::assignable_roles();
    let mut pairs: Vec<(String, WorkspaceRole)> = Vec::new();
    for (id, role) in new.workspaces {
        if !snapshot
            .workspaces
            .iter()
            .any(|w| w.id == id && !w.is_archived())
        {
            return Err(ServiceError::Invalid(format!(
                "There is no active workspace with the id {id}."
            )));
        }
        if !assignable.contains(&role) {
            return Err(ServiceError::Invalid(format!(
                "The workspace role {} cannot be given through the Admin API.",
                role.as_str()
            )));
        }
        if !pairs.iter().any(|(w, _)| *w == id) {
            pairs.push((id, role));
        }
    }
    let details = json!({
        "group": group,
        "role": new.role.as_ref().map(|r| r.as_str().to_owned()),
        "workspaces": pairs.iter().map(|(w, r)| json!({ "workspace": w, "role": r.as_str() })).collect::<Vec<Value>>(),
    });
    let now = services.clock.now();
    let by = caller.name();
    let insert = store::insert_mapping(&services.db, &group, new.role.as_ref(), &pairs, &by, now);
    services
        .local_change(
            caller,
            Action::ScimMappingChanged,
            mapping_target(&group),
            details,
            insert,
            |_| None,
        )
        .await?
        .map_err(|e| {
            if store::taken(&e) {
                ServiceError::Invalid(format!(
                    "The group {group} is mapped already: remove that mapping first."
                ))
            } else {
                e.into()
            }
        })
}

pub async fn unmap_group(
    services: &Services,
    caller: &Caller,
    id: i64,
) -> Result<(), ServiceError> {
    let all = store::mappings(&services.db).await?;
    let Some(mapping) = all.into_iter().find(|m| m.id == id) else {
        return Err(ServiceError::NotFound);
    };
    services
        .require(
            caller,
            Permission::ManageAccounts,
            mapping_target(&mapping.group_name),
        )
        .await?;
    let delete = store::delete_mapping(&services.db, id);
    services
        .local_change(
            caller,
            Action::ScimMappingChanged,
            mapping_target(&mapping.group_name),
            json!({ "group": mapping.group_name, "removed": true }),
            delete,
            |_| None,
        )
        .await??;
    Ok(())
}

// ---- What the provider sent ----

/// One request the identity provider made, for the SCIM page.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub at: DateTime<Utc>,
    pub client: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub detail: Option<String>,
}

/// The last requests, in memory (a restart forgets them; the audit log keeps the changes).
#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
}

const LOGGED: usize = 50;

impl RequestLog {
    pub fn push(&self, request: LoggedRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == LOGGED {
            entries.pop_front();
        }
        entries.push_back(request);
    }

    pub fn last(&self) -> Option<LoggedRequest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.back().cloned()
    }

    /// The refused requests among the last ones, newest first.
    pub fn errors(&self) -> Vec<LoggedRequest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .rev()
            .filter(|r| r.status >= 400)
            .take(10)
            .cloned()
            .collect()
    }
}

fn uuid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
