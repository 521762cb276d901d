//! The overview: the organization at a glance, each number linking to the filtered page, and
//! a short list of what needs attention. Team leads see only their own workspaces.
//!
//! Every number comes from the cached reads in `state.org`; a read that fails leaves its own
//! card with the explanation and the rest of the page renders.

use std::sync::Arc;

use askama::Template;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::context::Layout;
use super::error::AppResult;
use super::Ctx;
use crate::anthropic::{ApiError, ApiKey, Invite, InviteStatus, Workspace};
use crate::auth::Permission;
use crate::org::counts::{expiring_within, Counts, INVITE_EXPIRING_DAYS};
use crate::org::Snapshot;

/// One linked number.
#[derive(Clone)]
pub struct Count {
    pub label: String,
    pub count: usize,
    pub href: String,
}

/// A card's numbers, or why they are missing.
pub type Card = Result<Vec<Count>, String>;

pub struct Attention {
    pub text: String,
    /// Why it matters, shown on hover.
    pub title: String,
    pub count: usize,
    pub href: String,
}

/// One line of the alert strip at the top: something urgent and where it is fixed.
pub struct Urgent {
    pub text: String,
    pub href: String,
    pub link: String,
}

pub struct LeadWorkspace {
    pub id: String,
    pub name: Option<String>,
    pub archived: bool,
    pub members: Result<usize, String>,
    pub keys: Result<usize, String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    organization: Result<String, String>,
    /// Organization-wide cards (not for team leads).
    org_wide: bool,
    members: Card,
    invites: Card,
    workspaces: Card,
    keys: Card,
    /// What is urgent, first thing on the page (empty: nothing is).
    urgent: Vec<Urgent>,
    attention: Vec<Attention>,
    attention_errors: Vec<String>,
    lead_workspaces: Vec<LeadWorkspace>,
    /// This month's spend against each budget the person may see.
    budgets: Vec<super::usage::BudgetSummary>,
    budgets_error: Option<String>,
    /// Month-to-date spend of what this person may see: (spent, projected, rough estimate).
    month_spend: Option<(String, Option<String>, bool)>,
    /// The spend covers only the team lead's workspaces.
    spend_scoped: bool,
    can_audit: bool,
    can_accounts: bool,
}

fn message(error: &ApiError) -> String {
    error.user_message()
}

fn members_card(counts: &Counts) -> Vec<Count> {
    let mut cards = vec![Count {
        label: "All members".into(),
        count: counts.members,
        href: "/members".into(),
    }];
    cards.extend(counts.members_by_role.iter().map(|(role, count)| Count {
        label: super::present::org_role_plural(role),
        count: *count,
        href: format!("/members?role={role}"),
    }));
    cards
}

fn invites_card(invites: &[Invite], now: DateTime<Utc>) -> Vec<Count> {
    let pending = invites
        .iter()
        .filter(|i| i.status == InviteStatus::Pending)
        .count();
    let soon = invites
        .iter()
        .filter(|i| expiring_within(i, now, INVITE_EXPIRING_DAYS))
        .count();
    vec![
        Count {
            label: "Pending".into(),
            count: pending,
            href: "/invites?status=pending".into(),
        },
        Count {
            label: format!("Expiring within {INVITE_EXPIRING_DAYS} days"),
            count: soon,
            href: "/invites?status=expiring".into(),
        },
    ]
}

fn workspaces_card(counts: &Counts) -> Vec<Count> {
    vec![
        Count {
            label: "Active".into(),
            count: counts.workspaces_active,
            href: "/workspaces".into(),
        },
        Count {
            label: "Archived".into(),
            count: counts.workspaces_archived,
            href: "/workspaces?include_archived=1".into(),
        },
    ]
}

fn keys_card(counts: &Counts) -> Vec<Count> {
    counts
        .keys_by_status
        .iter()
        .map(|(status, count)| Count {
            label: crate::labels::code(status.as_str()),
            count: *count,
            href: format!("/keys?status={status}"),
        })
        .collect()
}

pub async fn show(ctx: Ctx) -> AppResult<Response> {
    ctx.require(Permission::ViewWorkspaces).await?;
    let org = ctx.state.org.clone();
    let org_wide = ctx.can(Permission::ViewDirectory);
    let mut page = HomePage {
        layout: ctx.layout("Overview", "home").await,
        organization: Err(String::new()),
        org_wide,
        members: Ok(Vec::new()),
        invites: Ok(Vec::new()),
        workspaces: Ok(Vec::new()),
        keys: Ok(Vec::new()),
        urgent: Vec::new(),
        attention: Vec::new(),
        attention_errors: Vec::new(),
        lead_workspaces: Vec::new(),
        budgets: Vec::new(),
        budgets_error: None,
        month_spend: None,
        spend_scoped: false,
        can_audit: ctx.can(Permission::ViewAudit),
        can_accounts: ctx.can(Permission::ManageAccounts),
    };
    if org_wide {
        match org.synced() {
            Ok(snapshot) => {
                let counts = Counts::of(&snapshot);
                page.organization = snapshot
                    .organization
                    .as_ref()
                    .map(|o| o.name.clone())
                    .ok_or_else(|| message(&ApiError::not_synced(None)));
                page.members = Ok(members_card(&counts));
                page.invites = Ok(invites_card(&snapshot.invites, ctx.state.clock.now()));
                page.workspaces = Ok(workspaces_card(&counts));
                page.keys = Ok(keys_card(&counts));
                let without_workspace = counts.without_workspace.len();
                attention(&ctx, &mut page, &snapshot, without_workspace).await;
            }
            Err(error) => {
                let error = message(&error);
                page.organization = Err(error.clone());
                page.members = Err(error.clone());
                page.invites = Err(error.clone());
                page.workspaces = Err(error.clone());
                page.keys = Err(error);
            }
        }
    } else {
        let (organization, workspaces, keys) =
            tokio::join!(org.organization(), org.workspaces(), org.api_keys());
        page.organization = organization
            .map(|o| o.name.clone())
            .map_err(|e| message(&e));
        page.lead_workspaces = lead_workspaces(&ctx, &workspaces, &keys).await;
    }
    if ctx.can(Permission::ViewUsage) {
        match super::usage::budget_summaries(&ctx.state, ctx.workspace_scope()).await {
            Ok(budgets) => page.budgets = budgets,
            Err(error) => page.budgets_error = Some(error.to_string()),
        }
        page.month_spend = super::usage::month_to_date(&ctx.state, ctx.workspace_scope())
            .await
            .ok();
        page.spend_scoped = ctx.workspace_scope().is_some();
    }
    page.urgent = urgent(&ctx, &page).await?;
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}

/// The alert strip: reached spend limits, exceeded budgets, limit requests waiting for a
/// decision, keys reported as leaked that still work — each with the page that fixes it.
async fn urgent(ctx: &Ctx, page: &HomePage) -> AppResult<Vec<Urgent>> {
    use crate::money::dollars;
    use crate::service::limits::{self as limits, LimitScope};
    let mut out = Vec::new();
    if ctx.can(Permission::ViewUsage) {
        for (scope, spent, limit) in
            limits::reached_limits(&ctx.state, ctx.workspace_scope()).await?
        {
            let name = match &scope {
                LimitScope::Organization => "The organization".to_owned(),
                LimitScope::Workspace { name, .. } => name.clone(),
            };
            out.push(Urgent {
                text: format!(
                    "{name} has reached its spend limit ({} of {} this month): Anthropic is refusing its requests.",
                    dollars(spent),
                    dollars(limit)
                ),
                href: "/limits#set-limit".into(),
                link: "Raise or remove the limit".into(),
            });
        }
        for b in page.budgets.iter().filter(|b| b.exceeded) {
            out.push(Urgent {
                text: format!(
                    "{} is over its budget: {} of {} this month.",
                    b.name, b.spend, b.budget
                ),
                href: "/budgets".into(),
                link: "See the budget".into(),
            });
        }
    }
    if ctx.can(Permission::ManageOrganization) {
        let pending = limits::pending_requests(&ctx.state).await?.len();
        if pending > 0 {
            out.push(Urgent {
                text: if pending == 1 {
                    "1 request for a higher spend limit is waiting for a decision.".into()
                } else {
                    format!(
                        "{pending} requests for a higher spend limit are waiting for a decision."
                    )
                },
                href: "/limits#requests".into(),
                link: "Decide".into(),
            });
        }
    }
    if page.org_wide && ctx.can(Permission::ViewAudit) {
        if let Ok(snapshot) = ctx.state.org.synced() {
            let filter = crate::audit::Filter {
                action: Some("key.leak_reported".into()),
                ..Default::default()
            };
            let reported: Vec<String> = ctx
                .state
                .audit
                .query(&filter, 500, 0)
                .await?
                .0
                .into_iter()
                .filter_map(|r| r.target_id)
                .collect();
            let leaked = crate::org::counts::leaked_still_active(&snapshot, &reported);
            match leaked.as_slice() {
                [] => {}
                [one] => out.push(Urgent {
                    text: "A key reported as leaked still works.".into(),
                    href: format!("/keys/{one}"),
                    link: "Deactivate it".into(),
                }),
                many => out.push(Urgent {
                    text: format!("{} keys reported as leaked still work.", many.len()),
                    href: "/keys/leaked".into(),
                    link: "Deactivate them".into(),
                }),
            }
        }
    }
    Ok(out)
}

async fn attention(ctx: &Ctx, page: &mut HomePage, snapshot: &Snapshot, without_workspace: usize) {
    let now = ctx.state.clock.now();
    // The same hygiene flags, counted the same way, as the API keys page filters by.
    match super::keys::flag_counts(&ctx.state).await {
        Ok((counts, rotation_days)) => {
            for (flag, count) in counts {
                page.attention.push(Attention {
                    text: format!("API keys: {}", flag.label().to_lowercase()),
                    title: flag.explanation(rotation_days),
                    count,
                    href: format!("/keys?flag={}", flag.code()),
                });
            }
        }
        Err(error) => page
            .attention_errors
            .push(format!("API keys: {}", message(&error))),
    }
    page.attention.push(Attention {
        text: format!("pending invites expire within {INVITE_EXPIRING_DAYS} days"),
        title: "An expired invite cannot be re-sent: delete it and invite the person again.".into(),
        count: snapshot
            .invites
            .iter()
            .filter(|i| expiring_within(i, now, INVITE_EXPIRING_DAYS))
            .count(),
        href: "/invites?status=expiring".into(),
    });
    page.attention.push(Attention {
        text: "members are in no workspace".into(),
        title: "They can sign in but reach no workspace (admins and billing members are in every workspace).".into(),
        count: without_workspace,
        href: "/members?workspace=none".into(),
    });
    // A check that found nothing is not listed: a column of zeros reads as alarms.
    page.attention.retain(|item| item.count != 0);
}

async fn lead_workspaces(
    ctx: &Ctx,
    workspaces: &Result<Arc<Vec<Workspace>>, ApiError>,
    keys: &Result<Arc<Vec<ApiKey>>, ApiError>,
) -> Vec<LeadWorkspace> {
    let mut rows = Vec::new();
    for id in ctx.workspace_scope().unwrap_or_default() {
        let workspace = workspaces
            .as_ref()
            .ok()
            .and_then(|all| all.iter().find(|w| &w.id == id));
        let members = ctx
            .state
            .org
            .workspace_members(id)
            .await
            .map(|m| m.len())
            .map_err(|e| message(&e));
        rows.push(LeadWorkspace {
            id: id.clone(),
            name: workspace.map(|w| w.name.clone()),
            archived: workspace.is_some_and(|w| w.is_archived()),
            members,
            keys: keys
                .as_ref()
                .map(|all| {
                    all.iter()
                        .filter(|k| k.workspace_id() == Some(id.as_str()))
                        .count()
                })
                .map_err(message),
        });
    }
    rows
}
