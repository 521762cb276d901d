//! Invites: sending and deleting.

use serde_json::json;

use super::{target, with_context, Caller, Change, OrgChange, Services};
use crate::anthropic::{CreateInvite, Invite, InviteDeleted, OrgRole};
use crate::audit::Action;
use crate::org::Touched;

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
