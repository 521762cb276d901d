//! Invites: sending (one address, or a pasted list) and deleting, with their rules: the roles
//! the Admin API may give, what an address must look like, how many at once, each address once.

use serde_json::json;

use super::{target, with_context, Caller, Change, OrgChange, ServiceError, Services};
use crate::anthropic::{ApiError, CreateInvite, Invite, InviteDeleted, OrgRole};
use crate::audit::Action;
use crate::org::Touched;

/// Addresses invited at once, at most.
pub const MAX_BATCH: usize = 100;

/// The dashboard's own check before sending: one `@`, something before it, a dot inside the
/// domain, no spaces. The API has the last word.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// Whether the Admin API may give this role to someone invited; why not, in plain words.
pub fn check_role(role: &OrgRole) -> Result<(), ServiceError> {
    if role.is_assignable_in_console() {
        return Ok(());
    }
    Err(ServiceError::Invalid(if *role == OrgRole::Admin {
        "The admin role can only be given in the Anthropic Console, not through the Admin API. Invite them with another role, then make them admin in the Console.".to_owned()
    } else {
        "Choose one of the roles offered.".to_owned()
    }))
}

/// What inviting one address of a list came to.
#[derive(Debug)]
pub enum Invited {
    Sent(Invite),
    /// Not an address; not sent.
    Invalid,
    /// Listed before; only the first was sent.
    Repeated,
    /// Anthropic refused or failed (`is_refusal` tells which).
    NotSent(ApiError),
}

/// Invites each address of a list with `role`, in order, each its own audited change: the
/// role and the list's size are checked first (nothing is sent when they are wrong), then each
/// address once; a failure on one never stops the others.
pub async fn create_many(
    services: &Services,
    caller: &Caller,
    emails: &[String],
    role: &OrgRole,
) -> Result<Vec<Invited>, ServiceError> {
    check_role(role)?;
    if emails.is_empty() || emails == [""] {
        return Err(ServiceError::Invalid("Type an email address.".into()));
    }
    if emails.len() > MAX_BATCH {
        return Err(ServiceError::Invalid(format!(
            "That is {} addresses; invite at most {MAX_BATCH} at a time. Nothing was sent.",
            emails.len()
        )));
    }
    let mut seen: Vec<String> = Vec::new();
    let mut results = Vec::with_capacity(emails.len());
    for email in emails {
        let normalized = email.to_lowercase();
        results.push(if !valid_email(email) {
            Invited::Invalid
        } else if seen.contains(&normalized) {
            Invited::Repeated
        } else {
            seen.push(normalized);
            match create(services, caller, email, role).await? {
                Ok(invite) => Invited::Sent(invite),
                Err(error) => Invited::NotSent(error),
            }
        });
    }
    Ok(results)
}

/// Sends one invite as its own audited action. Never retried automatically (a retry could
/// send two).
pub async fn create(
    services: &Services,
    caller: &Caller,
    email: &str,
    role: &OrgRole,
) -> Change<Invite> {
    let body = CreateInvite {
        email: email.to_owned(),
        role: role.clone(),
        rbac_group_ids: Vec::new(),
    };
    services
        .org_change_creating(
            caller,
            OrgChange {
                action: Action::InviteCreated,
                target: target("invite", email.to_owned(), Some(email.to_owned())),
                details: json!({ "email": email, "role": role.as_str() }),
                workspace: None,
                touches: Vec::new(),
            },
            services.org.api().create_invite(&body),
            |invite| target("invite", invite.id.clone(), Some(invite.email.clone())),
        )
        .await
}

/// Deletes an invite; its link stops working.
pub async fn delete(
    services: &Services,
    caller: &Caller,
    invite_id: &str,
    email: &str,
    context: serde_json::Value,
) -> Change<InviteDeleted> {
    let details = with_context(json!({ "email": email }), context);
    services
        .org_change(
            caller,
            OrgChange {
                action: Action::InviteDeleted,
                target: target("invite", invite_id.to_owned(), Some(email.to_owned())),
                details,
                workspace: None,
                touches: vec![Touched::Invite(invite_id.to_owned())],
            },
            services.org.api().delete_invite(invite_id),
        )
        .await
}
