//! The confirmation of an irreversible action re-reads its target first: it shows the current
//! state, says so when the target is gone, says plainly when it could not check, and what it
//! finds changed outside Orgkeeper is recorded once as observed (not hidden, not repeated).

use std::collections::HashMap;

use orgkeeper::anthropic::{ApiKeyStatus, OrgRole, UpdateApiKey, WorkspaceRole};
use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;
use orgkeeper::simulator::{FaultKind, FaultRule};

use crate::support::*;

/// (action, target id) of every observed record except the baseline, with how often.
async fn observed(app: &TestApp) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    for r in app.audit_records(Filter::default()).await {
        if r.actor_role.as_deref() == Some("observed") && r.action != "org.baseline" {
            *out.entry((r.action, r.target_id.unwrap_or_default()))
                .or_default() += 1;
        }
    }
    out
}

fn count(changes: &HashMap<(String, String), usize>, action: &str, id: &str) -> usize {
    changes
        .get(&(action.to_owned(), id.to_owned()))
        .copied()
        .unwrap_or(0)
}

fn plain_members(app: &TestApp) -> Vec<orgkeeper::anthropic::User> {
    app.state
        .org
        .snapshot()
        .users
        .iter()
        .filter(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        .cloned()
        .collect()
}

fn active_key(app: &TestApp) -> orgkeeper::anthropic::ApiKey {
    app.state
        .org
        .snapshot()
        .keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active && k.workspace_id().is_some())
        .cloned()
        .expect("an active workspace key")
}

fn archive(status: ApiKeyStatus) -> UpdateApiKey {
    UpdateApiKey {
        name: None,
        status: Some(status),
    }
}

#[tokio::test]
async fn a_key_archived_outside_shows_as_already_archived_and_is_recorded_once() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let key = active_key(&app);
    app.state
        .org
        .api()
        .update_api_key(&key.id, &archive(ApiKeyStatus::Archived))
        .await
        .unwrap();

    let (status, page) = owner.get_text(&format!("/keys/{}/archive", key.id)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("already archived outside Orgkeeper"),
        "{page}"
    );
    assert!(
        !page.contains("Archive for good"),
        "no action offered: {page}"
    );
    assert!(!page.contains("could not check"), "{page}");
    let now = observed(&app).await;
    assert_eq!(count(&now, "key.archived", &key.id), 1, "{now:?}");

    // The next sync neither hides it nor records it again; it names who made it (the
    // confirmation does not read the Activity Feed), in a record of its own.
    app.sync().await;
    let after = observed(&app).await;
    assert_eq!(count(&after, "key.archived", &key.id), 1, "{after:?}");
    assert_eq!(
        count(&after, "observed.attributed", &key.id),
        1,
        "{after:?}"
    );
    assert_eq!(
        after.values().sum::<usize>(),
        now.values().sum::<usize>() + 1
    );
}

#[tokio::test]
async fn a_confirmation_that_found_nothing_new_does_not_hide_a_later_outside_change() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let key = active_key(&app);
    let (status, page) = owner.get_text(&format!("/keys/{}/archive", key.id)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Archive for good"), "{page}");
    assert!(observed(&app).await.is_empty());

    // Changed outside after the confirmation looked, before the next sync: still observed.
    app.state
        .org
        .api()
        .update_api_key(&key.id, &archive(ApiKeyStatus::Inactive))
        .await
        .unwrap();
    app.sync().await;
    let after = observed(&app).await;
    assert_eq!(count(&after, "key.deactivated", &key.id), 1, "{after:?}");
}

#[tokio::test]
async fn a_removal_shows_the_role_changed_outside_and_a_member_removed_outside_is_gone() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let plain = plain_members(&app);
    let (changed, leaver) = (&plain[0], &plain[1]);
    let api = app.state.org.api().clone();
    let new_role = if changed.role == OrgRole::User {
        OrgRole::Developer
    } else {
        OrgRole::User
    };
    api.update_user_role(&changed.id, new_role.clone())
        .await
        .unwrap();
    api.remove_user(&leaver.id).await.unwrap();

    let (status, page) = owner
        .get_text(&format!("/members/{}/remove", changed.id))
        .await;
    assert_eq!(status, 200, "{page}");
    let label = orgkeeper::web::present::org_role(&new_role);
    assert!(
        page.contains(&format!("<strong>{}</strong> ({label})", changed.email)),
        "shows the new role {label}: {page}"
    );
    assert!(page.contains("Remove "), "{page}");

    let (status, page) = owner
        .get_text(&format!("/members/{}/remove", leaver.id))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("is no longer a member"), "{page}");
    assert!(!page.contains("from the organization</button>"), "{page}");

    app.sync().await;
    let after = observed(&app).await;
    assert_eq!(
        count(&after, "member.role_changed", &changed.id),
        1,
        "{after:?}"
    );
    assert_eq!(count(&after, "member.removed", &leaver.id), 1, "{after:?}");
    // Their workspaces went with them: one record, as a sync records it.
    assert_eq!(
        count(&after, "workspace_member.removed", &leaver.id),
        0,
        "{after:?}"
    );
}

#[tokio::test]
async fn workspace_confirmations_show_a_role_changed_and_an_archive_made_outside() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let snapshot = app.state.org.snapshot();
    let api = app.state.org.api().clone();
    let (workspace, member) = snapshot
        .workspaces
        .iter()
        .filter(|w| !w.is_archived() && Some(&w.id) != snapshot.default_workspace_id.as_ref())
        .find_map(|w| {
            let m = snapshot.members_in(&w.id).iter().find(|m| {
                matches!(
                    m.workspace_role,
                    WorkspaceRole::WorkspaceUser | WorkspaceRole::WorkspaceDeveloper
                )
            })?;
            Some((w.clone(), m.clone()))
        })
        .expect("a workspace with a plain member");
    let new_role = if member.workspace_role == WorkspaceRole::WorkspaceUser {
        WorkspaceRole::WorkspaceDeveloper
    } else {
        WorkspaceRole::WorkspaceUser
    };
    api.update_workspace_member(&workspace.id, &member.user_id, new_role.clone())
        .await
        .unwrap();
    let url = format!(
        "/workspaces/{}/members/{}/remove",
        workspace.id, member.user_id
    );
    let (status, page) = owner.get_text(&url).await;
    assert_eq!(status, 200, "{page}");
    let label = orgkeeper::web::present::workspace_role(&new_role);
    assert!(page.contains(&format!("(now {label})")), "{label}: {page}");

    api.remove_workspace_member(&workspace.id, &member.user_id)
        .await
        .unwrap();
    let (_, page) = owner.get_text(&url).await;
    assert!(page.contains("is no longer a member of"), "{page}");
    assert!(!page.contains("Remove from workspace</button>"), "{page}");

    api.archive_workspace(&workspace.id).await.unwrap();
    let (status, page) = owner
        .get_text(&format!("/workspaces/{}/archive", workspace.id))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("already archived outside Orgkeeper"),
        "{page}"
    );
    assert!(!page.contains("for good</button>"), "{page}");

    app.sync().await;
    let after = observed(&app).await;
    let id = &*member.user_id;
    assert_eq!(
        count(&after, "workspace_member.role_changed", id),
        1,
        "{after:?}"
    );
    assert_eq!(
        count(&after, "workspace_member.removed", id),
        1,
        "{after:?}"
    );
    assert_eq!(
        count(&after, "workspace.archived", &workspace.id),
        1,
        "{after:?}"
    );
}

#[tokio::test]
async fn with_the_admin_api_failing_the_confirmation_still_shows_and_says_it_could_not_check() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let key = active_key(&app);
    app.simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/v1/".into()),
        kind: FaultKind::ServerError,
        times: 10_000,
    });
    // Each confirmation says it could not check, with the request id, and still offers the
    // action (from the model as last read).
    let member = &plain_members(&app)[0];
    let invite = pending_invite(&app);
    for (url, offered) in [
        (format!("/keys/{}/archive", key.id), "Archive for good"),
        (
            format!("/members/{}/remove", member.id),
            "from the organization</button>",
        ),
        (
            format!("/invites/{}/delete", invite.id),
            "Delete the invite</button>",
        ),
    ] {
        let (status, page) = owner.get_text(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        assert!(
            page.contains("could not check the latest state"),
            "{url}: {page}"
        );
        assert!(
            page.contains("request id"),
            "{url} names the request id: {page}"
        );
        assert!(page.contains(offered), "{url} still offers it: {page}");
    }
}

fn pending_invite(app: &TestApp) -> orgkeeper::anthropic::Invite {
    app.state
        .org
        .snapshot()
        .invites
        .iter()
        .find(|i| i.status == orgkeeper::anthropic::InviteStatus::Pending)
        .cloned()
        .expect("a pending invite")
}

#[tokio::test]
async fn an_invite_deleted_outside_is_gone_from_its_confirmation_and_recorded_once() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let invite = pending_invite(&app);
    let url = format!("/invites/{}/delete", invite.id);
    let (_, page) = owner.get_text(&url).await;
    assert!(page.contains("Delete the invite</button>"), "{page}");
    app.state.org.api().delete_invite(&invite.id).await.unwrap();

    let (status, page) = owner.get_text(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("deleted outside Orgkeeper"), "{page}");
    assert!(page.contains(&invite.email), "{page}");
    assert!(
        !page.contains("Delete the invite</button>"),
        "no action offered: {page}"
    );
    assert_eq!(
        count(&observed(&app).await, "invite.deleted", &invite.id),
        1
    );

    app.sync().await;
    assert_eq!(
        count(&observed(&app).await, "invite.deleted", &invite.id),
        1
    );
}

#[tokio::test]
async fn the_offboarding_preview_drops_a_step_whose_key_was_archived_outside() {
    let app = spawn_app().await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let snapshot = app.state.org.snapshot();
    // A plain member with two live keys of their own.
    let (user, keys) = plain_members(&app)
        .into_iter()
        .find_map(|u| {
            let keys: Vec<_> = snapshot
                .keys
                .iter()
                .filter(|k| {
                    k.status == ApiKeyStatus::Active
                        && k.created_by.as_ref().is_some_and(|c| *c.id == *u.id)
                })
                .cloned()
                .collect();
            (keys.len() >= 2).then_some((u, keys))
        })
        .expect("a member with two active keys");
    let (gone, kept) = (&keys[0], &keys[1]);
    app.state
        .org
        .api()
        .update_api_key(&gone.id, &archive(ApiKeyStatus::Archived))
        .await
        .unwrap();

    let base = format!("/members/{}/offboard", user.id);
    let fields = [
        (format!("key:{}", gone.id), "archive"),
        (format!("key:{}", kept.id), "deactivate"),
    ];
    let refs: Vec<(&str, &str)> = fields.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let preview = owner.post(&base, &refs).await;
    assert_eq!(preview.status(), 200);
    let preview = preview.text().await.unwrap();
    let dropped = preview
        .split("id=\"offboard-dropped\"")
        .nth(1)
        .expect("the dropped step is named");
    assert!(dropped.contains(&gone.name), "{dropped}");
    assert!(
        !preview.contains(&format!("data-target=\"{}\"", gone.id)),
        "{preview}"
    );
    assert!(
        preview.contains(&format!("data-target=\"{}\"", kept.id)),
        "{preview}"
    );
    assert_eq!(count(&observed(&app).await, "key.archived", &gone.id), 1);

    // When every chosen step changed meanwhile, nothing is left: the plan says so.
    app.state
        .org
        .api()
        .update_api_key(&kept.id, &archive(ApiKeyStatus::Archived))
        .await
        .unwrap();
    let alone = [(format!("key:{}", kept.id), "deactivate")];
    let refs: Vec<(&str, &str)> = alone.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let again = owner.post(&base, &refs).await;
    assert_eq!(again.status(), 409);
    let again = again.text().await.unwrap();
    assert!(again.contains("nothing is left to do"), "{again}");
    assert!(again.contains(&kept.name), "{again}");
    assert_eq!(count(&observed(&app).await, "key.archived", &kept.id), 1);
}
