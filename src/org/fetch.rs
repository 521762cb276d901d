//! Reading the whole organization from the Admin API: what one sync asks for.
//!
//! Lists are read in parallel: each organization-wide list page after page, and at most
//! [`PARALLEL`] workspaces at once (the Admin API rate-limits per organization; the client
//! backs off on 429 and honours `retry-after`). Every request is bounded by the client's
//! deadline.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::entity::Touched;
use super::{Org, Progress};
use crate::anthropic::{
    ApiError, ApiKey, ApiKeyFilter, Client, Invite, InviteFilter, InviteStatus, OrgRateLimit,
    OrgRateLimitParams, Organization, SpendLimit, SpendLimitFilter, User, UserFilter, Workspace,
    WorkspaceFilter, WorkspaceMember, WorkspaceRateLimit, WorkspaceRateLimitParams,
};

/// Requests one sync may have in flight at once.
pub const PARALLEL: usize = 4;

/// Everything one sync read.
pub struct Fetched {
    pub organization: Organization,
    pub users: Vec<User>,
    pub invites: Vec<Invite>,
    pub workspaces: Vec<Workspace>,
    pub default_workspace_id: Option<String>,
    pub memberships: Vec<WorkspaceMember>,
    pub keys: Vec<ApiKey>,
    /// Each live workspace's rate limits (inherited ones included), or why they could not be
    /// read: one workspace's refusal does not fail the sync.
    pub rate_limits: HashMap<String, Result<Vec<WorkspaceRateLimit>, String>>,
    /// The spend limits, or the API's refusal (many organizations may not read them).
    pub spend_limits: Result<Vec<SpendLimit>, ApiError>,
    /// The organization's rate limits, or why they could not be read.
    pub org_rate_limits: Result<Vec<OrgRateLimit>, ApiError>,
}

async fn spend_limits(api: &Client) -> Result<Vec<SpendLimit>, ApiError> {
    api.list_spend_limits(&SpendLimitFilter::default()).await
}

async fn workspace_rate_limits(
    api: &Client,
    workspace: &str,
) -> Result<Vec<WorkspaceRateLimit>, ApiError> {
    let params = WorkspaceRateLimitParams {
        include_inherited: true,
        ..Default::default()
    };
    api.all(&(workspace, &params)).await
}

pub async fn everything(org: &Org, api: &Client) -> Result<Fetched, ApiError> {
    // The key list is one long sequence of pages (20 for 20,000 keys): it runs beside the
    // workspace reads instead of after them.
    let every_key = ApiKeyFilter::default();
    let keys = api.list_all_api_keys(&every_key);
    let (keys, mut fetched) = tokio::try_join!(keys, directory(org, api))?;
    fetched.keys = keys;
    Ok(fetched)
}

/// Everything but the keys: members, invites, workspaces, and each workspace's members and
/// rate limits, at most [`PARALLEL`] workspaces at a time.
async fn directory(org: &Org, api: &Client) -> Result<Fetched, ApiError> {
    org.progress(Progress::step("members, invites and workspaces"));
    let every_workspace = WorkspaceFilter {
        include_archived: true,
        include_default: true,
    };
    let plain = WorkspaceFilter {
        include_archived: true,
        include_default: false,
    };
    let (users_filter, invites_filter) = (UserFilter::default(), InviteFilter::default());
    // Limits the organization may not read are an answer, not a failed sync.
    let spend = async { Ok(spend_limits(api).await) };
    let org_limits = async { Ok(api.all(&OrgRateLimitParams::default()).await) };
    let (organization, users, invites, workspaces, listed, spend_limits, org_rate_limits) = tokio::try_join!(
        api.get_organization(),
        api.list_all_users(&users_filter),
        api.list_all_invites(&invites_filter),
        api.list_all_workspaces(&every_workspace),
        api.list_all_workspaces(&plain),
        spend,
        org_limits,
    )?;
    let default_workspace_id = default_of(&workspaces, &listed);

    let total = workspaces.len();
    org.progress(Progress::counting("workspace members", 0, total));
    let mut done = 0;
    let mut memberships = Vec::new();
    let ids: Vec<String> = workspaces.iter().map(|w| w.id.clone()).collect();
    let live: HashSet<String> = workspaces
        .iter()
        .filter(|w| !w.is_archived())
        .map(|w| w.id.clone())
        .collect();
    let mut rate_limits = HashMap::new();
    let mut lists = stream::iter(ids)
        .map(|id| {
            let api = api.clone();
            let live = live.contains(&id);
            async move {
                let members = api.list_all_workspace_members(&id).await?;
                let limits = if live {
                    Some(
                        workspace_rate_limits(&api, &id)
                            .await
                            .map_err(|e| e.user_message()),
                    )
                } else {
                    None
                };
                Ok::<_, ApiError>((id, members, limits))
            }
        })
        .buffer_unordered(PARALLEL);
    while let Some((id, members, limits)) = lists.try_next().await? {
        memberships.extend(members);
        if let Some(limits) = limits {
            rate_limits.insert(id, limits);
        }
        done += 1;
        org.progress(Progress::counting("workspace members", done, total));
    }
    drop(lists);
    org.progress(Progress::step("API keys"));
    Ok(Fetched {
        organization,
        users,
        invites,
        workspaces,
        default_workspace_id,
        memberships,
        keys: Vec::new(),
        rate_limits,
        spend_limits,
        org_rate_limits,
    })
}

/// The API marks the default workspace only by leaving it out of the plain list.
fn default_of(every: &[Workspace], plain: &[Workspace]) -> Option<String> {
    let listed: HashSet<&str> = plain.iter().map(|w| w.id.as_str()).collect();
    every
        .iter()
        .find(|w| !listed.contains(w.id.as_str()))
        .map(|w| w.id.clone())
}

/// What a targeted re-read found, per kind; `None` when `touched` is not of that kind.
#[derive(Default)]
pub struct Reread {
    pub organization: Option<Organization>,
    pub users: Option<Vec<User>>,
    pub invites: Option<Vec<Invite>>,
    pub workspaces: Option<Vec<Workspace>>,
    pub memberships: Option<Vec<WorkspaceMember>>,
    pub keys: Option<Vec<ApiKey>>,
    pub spend_limits: Option<Result<Vec<SpendLimit>, ApiError>>,
    /// One workspace's rate limits, or why they could not be read.
    pub rate_limits: Option<(String, Result<Vec<WorkspaceRateLimit>, String>)>,
    pub org_rate_limits: Option<Result<Vec<OrgRateLimit>, ApiError>>,
    /// With every workspace: which one is the default (`Some(None)`: none is).
    pub default_workspace_id: Option<Option<String>>,
}

/// A missing object is an empty answer, not an error.
fn present<T>(result: Result<T, ApiError>) -> Result<Vec<T>, ApiError> {
    match result {
        Ok(item) => Ok(vec![item]),
        Err(error) if error.status() == Some(404) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// Re-reads exactly what `touched` names. `workspaces` lists where a person may hold a
/// membership (for [`Touched::MembershipsOfUser`]).
pub async fn reread(
    api: &Client,
    touched: &Touched,
    workspaces: &[String],
) -> Result<Reread, ApiError> {
    let mut out = Reread::default();
    match touched {
        Touched::Organization => out.organization = Some(api.get_organization().await?),
        Touched::User(id) => out.users = Some(present(api.get_user(id).await)?),
        Touched::Invite(id) => {
            // A deleted invite is still answered for (status `deleted`) but no longer listed:
            // the model holds what the list holds, so the next sync sees no second change.
            let mut found = present(api.get_invite(id).await)?;
            found.retain(|i| i.status != InviteStatus::Deleted);
            out.invites = Some(found);
        }
        Touched::Workspace(id) => out.workspaces = Some(present(api.get_workspace(id).await)?),
        Touched::Key(id) => out.keys = Some(present(api.get_api_key(id).await)?),
        Touched::InvitesFor(email) => {
            let filter = InviteFilter {
                email: Some(email.clone()),
                ..InviteFilter::default()
            };
            let mut found = api.list_all_invites(&filter).await?;
            found.retain(|i| i.status != InviteStatus::Deleted);
            out.invites = Some(found);
        }
        Touched::AllUsers => out.users = Some(api.list_all_users(&UserFilter::default()).await?),
        Touched::AllInvites => {
            out.invites = Some(api.list_all_invites(&InviteFilter::default()).await?)
        }
        Touched::AllWorkspaces => {
            let (every, plain) = tokio::try_join!(
                api.list_all_workspaces(&WorkspaceFilter {
                    include_archived: true,
                    include_default: true,
                }),
                api.list_all_workspaces(&WorkspaceFilter {
                    include_archived: true,
                    include_default: false,
                }),
            )?;
            out.default_workspace_id = Some(default_of(&every, &plain));
            out.workspaces = Some(every);
        }
        Touched::AllKeys => out.keys = Some(api.list_all_api_keys(&ApiKeyFilter::default()).await?),
        Touched::OrgRateLimits => {
            out.org_rate_limits = Some(api.all(&OrgRateLimitParams::default()).await)
        }
        Touched::Membership { workspace, user } => {
            out.memberships = Some(present(api.get_workspace_member(workspace, user).await)?)
        }
        Touched::MembersOfWorkspace(id) => {
            out.memberships = Some(api.list_all_workspace_members(id).await?)
        }
        Touched::MembershipsOfUser(user) => {
            let found: Vec<Vec<WorkspaceMember>> = stream::iter(workspaces.to_vec())
                .map(|workspace| {
                    let (api, user) = (api.clone(), user.clone());
                    async move { present(api.get_workspace_member(&workspace, &user).await) }
                })
                .buffer_unordered(PARALLEL)
                .try_collect()
                .await?;
            out.memberships = Some(found.into_iter().flatten().collect());
        }
        Touched::KeysOfWorkspace(id) => {
            let filter = ApiKeyFilter {
                workspace_id: Some(id.clone()),
                ..ApiKeyFilter::default()
            };
            out.keys = Some(api.list_all_api_keys(&filter).await?);
        }
        Touched::KeysOfUser(id) => {
            let filter = ApiKeyFilter {
                created_by_user_id: Some(id.clone()),
                ..ApiKeyFilter::default()
            };
            out.keys = Some(api.list_all_api_keys(&filter).await?);
        }
        // A refusal is the answer here (an organization without spend-limit access).
        Touched::SpendLimits => out.spend_limits = Some(spend_limits(api).await),
        Touched::RateLimitsOf(id) => {
            let read = workspace_rate_limits(api, id)
                .await
                .map_err(|e| e.user_message());
            out.rate_limits = Some((id.clone(), read));
        }
    }
    Ok(out)
}
