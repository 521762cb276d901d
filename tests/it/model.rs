//! The organization model: pages read only it, changes made outside Orgkeeper are recorded
//! once as observed, changes made through it show at once and are not, history answers
//! access reviews, and removed members keep their names.

use std::collections::HashMap;

use orgkeeper::anthropic::{ApiKeyStatus, InviteStatus, OrgRole, UpdateApiKey, WorkspaceRole};
use orgkeeper::audit::{ChainReport, Filter, Record};
use orgkeeper::auth::Role;
use orgkeeper::service::{self, Caller};
use orgkeeper::simulator::{FaultKind, FaultRule};

use crate::support::*;

async fn observed(app: &TestApp) -> Vec<Record> {
    app.audit_records(Filter::default())
        .await
        .into_iter()
        .filter(|r| r.actor_role.as_deref() == Some("observed"))
        .collect()
}

/// (action, target id) of every observed record except the baseline, with how often.
async fn observed_changes(app: &TestApp) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    for r in observed(app).await {
        if r.action != "org.baseline" {
            *out.entry((r.action, r.target_id.unwrap_or_default()))
                .or_default() += 1;
        }
    }
    out
}

/// A member who is neither admin nor billing (the API can change their role).
fn plain_member(app: &TestApp) -> orgkeeper::anthropic::User {
    app.state
        .org
        .snapshot()
        .users
        .iter()
        .find(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        .cloned()
        .expect("a plain member")
}

#[tokio::test]
async fn the_first_sync_is_one_baseline_and_no_main_page_calls_the_admin_api_even_after_a_restart()
{
    let app = spawn_app().await;
    let records = observed(&app).await;
    assert_eq!(records.len(), 1, "one baseline, not a record per object");
    assert_eq!(records[0].action, "org.baseline");
    let snapshot = app.state.org.snapshot();
    assert_eq!(
        records[0].details["counts"]["members"],
        snapshot.users.len() as u64
    );
    assert_eq!(records[0].actor_name, "outside Orgkeeper");

    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let member = &snapshot.users[0].id;
    let workspace = &snapshot
        .workspaces
        .iter()
        .find(|w| Some(&w.id) != snapshot.default_workspace_id.as_ref())
        .unwrap()
        .id;
    let key = &snapshot.keys[0].id;
    let pages = [
        "/".to_owned(),
        "/members".into(),
        "/members?q=a&sort=email".into(),
        format!("/members/{member}"),
        "/invites".into(),
        "/workspaces".into(),
        format!("/workspaces/{workspace}"),
        "/keys".into(),
        "/keys?status=active&flag=no_expiry".into(),
        format!("/keys/{key}"),
        "/usage".into(),
        "/cost".into(),
        "/limits".into(),
    ];
    let mut bodies = HashMap::new();
    app.simulator.reset_request_count();
    for page in &pages {
        let (status, body) = owner.get_text(page).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(
            app.simulator.request_count(),
            0,
            "{page} made an upstream call"
        );
        bodies.insert(page.clone(), body);
    }
    assert!(bodies["/members"].contains("Organization data as of"));

    // After a restart on the same database, with the Admin API down, the pages still answer.
    let (simulator, dir, config) = app.stop().await;
    simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/v1/".into()),
        kind: FaultKind::ServerError,
        times: 10_000,
    });
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    // Every object of the baseline was stored (it is written from the lists, not from a
    // difference per object).
    let stored = app.state.org.snapshot();
    let sizes = |s: &orgkeeper::org::Snapshot| {
        [
            s.users.len(),
            s.invites.len(),
            s.workspaces.len(),
            s.memberships.len(),
            s.keys.len(),
        ]
    };
    assert_eq!(sizes(&stored), sizes(&snapshot));
    assert_eq!(stored.keys[0], snapshot.keys[0]);
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (status, members) = owner.get_text("/members").await;
    assert_eq!(status, 200, "{members}");
    let rows = |html: &str| html.matches("<tr").count();
    assert_eq!(rows(&members), rows(&bodies["/members"]));
    assert!(members.contains("The last refresh failed"), "{members}");
    let (status, key_page) = owner.get_text(&format!("/keys/{key}")).await;
    assert_eq!(status, 200, "{key_page}");
    // Spend limits and rate limits are kept too, so their page needs no read either.
    let (status, limits) = owner.get_text("/limits").await;
    assert_eq!(status, 200, "{limits}");
    assert_eq!(rows(&limits), rows(&bodies["/limits"]), "{limits}");
    assert!(!limits.contains("request id"), "no failed read: {limits}");
}

/// The pages' views of a model are built when it replaces the last (the job waits on
/// `replaced`), not by the first page view. (`server::start` builds them the same way before it
/// serves; the `pages` benchmark times first views after a restart.)
#[tokio::test]
async fn each_new_model_is_announced_and_its_views_are_built_ahead_of_the_first_page_view() {
    use futures_util::FutureExt;
    use orgkeeper::org::keys::KeyIndex;
    use orgkeeper::org::members::{MemberIndex, WorkspaceMemberOrder};

    let app = spawn_app().await;
    // The first read replaced the empty model: that was announced once.
    tokio::time::timeout(std::time::Duration::from_secs(10), app.state.org.replaced())
        .await
        .expect("the first read was announced");
    assert!(
        app.state.org.replaced().now_or_never().is_none(),
        "nothing new since"
    );

    let member = plain_member(&app);
    let to = if member.role == OrgRole::User {
        OrgRole::Developer
    } else {
        OrgRole::User
    };
    app.state
        .org
        .api()
        .update_user_role(&member.id, to)
        .await
        .unwrap();
    app.sync().await;
    assert!(
        app.state.org.replaced().now_or_never().is_some(),
        "a changed model is announced"
    );
    let snapshot = app.state.org.synced().unwrap();
    assert!(snapshot.cached::<KeyIndex>().is_none(), "nothing built yet");
    app.state.org.warm(app.state.config.key_rotation_days).await;
    let index = snapshot
        .cached::<MemberIndex>()
        .expect("members' index built");
    assert_eq!(index.order("name").len(), snapshot.users.len());
    assert!(snapshot.cached::<KeyIndex>().is_some());
    assert!(snapshot.cached::<WorkspaceMemberOrder>().is_some());
    // The page reads the very index that was built ahead.
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (status, _) = owner.get_text("/members?sort=email").await;
    assert_eq!(status, 200);
    assert!(std::sync::Arc::ptr_eq(
        &index,
        &app.state
            .org
            .synced()
            .unwrap()
            .cached::<MemberIndex>()
            .unwrap()
    ));
}

#[tokio::test]
async fn changes_made_outside_orgkeeper_are_recorded_once_each_with_before_and_after() {
    let app = spawn_app().await;
    let api = app.state.org.api().clone();
    let snapshot = app.state.org.snapshot();
    let member = plain_member(&app);
    let new_role = if member.role == OrgRole::User {
        OrgRole::Developer
    } else {
        OrgRole::User
    };
    api.update_user_role(&member.id, new_role.clone())
        .await
        .unwrap();
    let leaver = snapshot
        .users
        .iter()
        .find(|u| u.id != member.id && matches!(u.role, OrgRole::User | OrgRole::Developer))
        .unwrap()
        .clone();
    api.remove_user(&leaver.id).await.unwrap();
    let invite = api
        .create_invite(&orgkeeper::anthropic::CreateInvite {
            email: "console-invite@example.com".into(),
            role: OrgRole::User,
            rbac_group_ids: Vec::new(),
        })
        .await
        .unwrap();
    let pending = snapshot
        .invites
        .iter()
        .find(|i| i.status == InviteStatus::Pending)
        .unwrap();
    api.delete_invite(&pending.id).await.unwrap();
    let created = api
        .create_workspace("Made in the Console", None)
        .await
        .unwrap();
    let renamed = snapshot
        .workspaces
        .iter()
        .find(|w| !w.is_archived() && Some(&w.id) != snapshot.default_workspace_id.as_ref())
        .unwrap();
    api.update_workspace(&renamed.id, Some("Renamed elsewhere"), None)
        .await
        .unwrap();
    let key = snapshot
        .keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active && k.workspace_id() == Some(renamed.id.as_str()))
        .unwrap();
    api.update_api_key(
        &key.id,
        &UpdateApiKey {
            name: Some("renamed-by-script".into()),
            status: Some(ApiKeyStatus::Inactive),
        },
    )
    .await
    .unwrap();
    let console_key = app
        .simulator
        .console_create_key("made-in-console", &renamed.id, &member.id);

    app.sync().await;

    let changes = observed_changes(&app).await;
    for (action, target) in [
        ("member.role_changed", member.id.as_str()),
        ("member.removed", leaver.id.as_str()),
        ("invite.created", invite.id.as_str()),
        ("invite.deleted", pending.id.as_str()),
        ("workspace.created", created.id.as_str()),
        ("workspace.updated", renamed.id.as_str()),
        ("key.renamed", key.id.as_str()),
        ("key.deactivated", key.id.as_str()),
        ("key.created", console_key.as_str()),
    ] {
        assert_eq!(
            changes.get(&(action.to_owned(), target.to_owned())),
            Some(&1),
            "{action} {target}: {changes:?}"
        );
    }
    let records = observed(&app).await;
    let role = records
        .iter()
        .find(|r| r.action == "member.role_changed")
        .unwrap();
    assert_eq!(role.details["before"], member.role.as_str());
    assert_eq!(role.details["after"], new_role.as_str());
    assert_eq!(role.actor_id, None, "no local account did it");
    // Their workspaces went with them: one record for the removal, not one per workspace.
    assert!(!changes
        .keys()
        .any(|(a, t)| a == "workspace_member.removed" && t == &leaver.id));

    // Nothing new happened: the next sync records nothing.
    let count = records.len();
    app.sync().await;
    assert_eq!(observed(&app).await.len(), count);
    assert!(matches!(
        app.state.audit.verify().await.unwrap(),
        ChainReport::Intact { .. }
    ));
    // The audit page can show only these.
    let (account, auditor) = app.signed_in(Role::Auditor).await;
    let (status, page) = auditor.get_text("/audit?source=observed").await;
    assert_eq!(status, 200);
    assert!(page.contains("made-in-console"), "{page}");
    assert!(page.contains("Seen outside Orgkeeper"), "{page}");
    assert!(
        !page.contains(&format!("{} signed in", account.username)),
        "sign-ins are not observed changes"
    );
    let (_, everything) = auditor.get_text("/audit").await;
    assert!(everything.contains(&format!("{} signed in", account.username)));
}

#[tokio::test]
async fn a_change_made_through_orgkeeper_shows_at_once_and_is_not_recorded_as_observed() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let member = plain_member(&app);
    let to = if member.role == OrgRole::User {
        "developer"
    } else {
        "user"
    };
    let calls = app.simulator.request_count();

    let response = admin
        .post(&format!("/members/{}/role", member.id), &[("role", to)])
        .await;
    assert_eq!(response.status(), 303);

    assert!(
        app.simulator.request_count() > calls,
        "the change went upstream"
    );
    let in_model = app.state.org.snapshot();
    let now = in_model.users.iter().find(|u| u.id == member.id).unwrap();
    assert_eq!(
        now.role.as_str(),
        to,
        "the model has the change before any sync"
    );
    app.sync().await;
    assert!(
        observed_changes(&app).await.is_empty(),
        "{:?}",
        observed_changes(&app).await
    );
}

#[tokio::test]
async fn a_sync_that_read_before_a_change_keeps_the_change_and_does_not_observe_it() {
    let app = spawn_app().await;
    let member = plain_member(&app);
    let to = if member.role == OrgRole::User {
        OrgRole::Developer
    } else {
        OrgRole::User
    };
    // The sync reads the organization...
    let started = app.state.clock.now();
    let fetched = app.state.org.fetch(app.state.org.api()).await.unwrap();
    // ...someone changes a role through Orgkeeper meanwhile...
    service::members::change_role(&app.state, &Caller::SCHEDULER, &member, to.clone())
        .await
        .unwrap()
        .unwrap();
    // ...and the sync's older answer arrives.
    service::sync::take(&app.state, fetched, started, &Default::default())
        .await
        .unwrap();

    let snapshot = app.state.org.snapshot();
    let now = snapshot.users.iter().find(|u| u.id == member.id).unwrap();
    assert_eq!(now.role, to, "the stale read did not undo the change");
    assert!(observed_changes(&app).await.is_empty());
    // The next sync, which saw the change upstream, agrees and records nothing either.
    app.sync().await;
    assert!(observed_changes(&app).await.is_empty());
}

#[tokio::test]
async fn the_access_review_says_who_could_use_a_workspace_and_which_keys_were_active_on_a_past_day()
{
    let app = spawn_app().await;
    let snapshot = app.state.org.snapshot();
    let users: HashMap<_, _> = snapshot.users.iter().map(|u| (u.id.clone(), u)).collect();
    let membership = snapshot
        .memberships
        .iter()
        .find(|m| {
            m.workspace_role == WorkspaceRole::WorkspaceDeveloper
                && users
                    .get(&*m.user_id)
                    .is_some_and(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        })
        .expect("a developer in some workspace")
        .clone();
    let person = users[&*membership.user_id].email.clone();
    let key = snapshot
        .keys
        .iter()
        .find(|k| {
            k.status == ApiKeyStatus::Active && k.workspace_id() == Some(&*membership.workspace_id)
        })
        .expect("an active key in that workspace")
        .clone();
    let baseline_day = app.state.clock.now().format("%Y-%m-%d").to_string();

    // Two days later, both change outside Orgkeeper.
    app.state
        .clock
        .advance(std::time::Duration::from_secs(2 * 86_400));
    let api = app.state.org.api();
    api.update_workspace_member(
        &membership.workspace_id,
        &membership.user_id,
        WorkspaceRole::WorkspaceUser,
    )
    .await
    .unwrap();
    api.update_api_key(
        &key.id,
        &UpdateApiKey {
            name: None,
            status: Some(ApiKeyStatus::Inactive),
        },
    )
    .await
    .unwrap();
    app.sync().await;

    let (_, auditor) = app.signed_in(Role::Auditor).await;
    let then = format!(
        "/access-review?workspace={}&at={baseline_day}",
        membership.workspace_id
    );
    let (status, page) = auditor.get_text(&then).await;
    assert_eq!(status, 200, "{page}");
    let row = page
        .split("<tr>")
        .find(|row| row.contains(&person))
        .unwrap_or_else(|| panic!("{person} missing on {baseline_day}: {page}"));
    assert!(
        row.contains("Workspace developer"),
        "plain role labels: {row}"
    );
    assert!(!row.contains("workspace_developer"), "no role codes: {row}");
    assert!(page.contains(&key.name), "the key was active then");

    let now = format!("/access-review?workspace={}", membership.workspace_id);
    let (_, page) = auditor.get_text(&now).await;
    let row = page
        .split("<tr>")
        .find(|row| row.contains(&person))
        .unwrap();
    assert!(row.contains("Workspace user"), "{row}");
    assert!(
        !page.contains(&format!("/keys/{}\"", key.id)),
        "the key is inactive now"
    );

    let (status, csv) = auditor
        .get_text(&format!(
            "/access-review.csv?workspace={}&at={baseline_day}",
            membership.workspace_id
        ))
        .await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("as_of,workspace_id,kind,id,name,email,role"));
    assert!(csv
        .lines()
        .any(|l| l.contains(&person) && l.contains("workspace_developer")));
    assert!(csv
        .lines()
        .any(|l| l.contains(&key.id) && l.contains("active")));

    // Before the history began nobody knows who held a role: the page says so instead of
    // "nobody".
    let (status, page) = auditor
        .get_text(&format!(
            "/access-review?workspace={}&at=2020-01-01",
            membership.workspace_id
        ))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Unknown: history starts on <time"), "{page}");
    assert!(!page.contains("Nobody held a role"), "{page}");
    // Roles held when the history began are held since then at least.
    let (_, page) = auditor.get_text(&then).await;
    let row = page
        .split("<tr>")
        .find(|row| row.contains(&person))
        .unwrap();
    assert!(row.contains("unknown: history starts on <time"), "{row}");

    // A bad date keeps what was typed and says how to write one.
    let (status, page) = auditor
        .get_text(&format!(
            "/access-review?workspace={}&at=last+tuesday",
            membership.workspace_id
        ))
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("value=\"last tuesday\""));
    assert!(page.contains("is not a date"));
    // Team leads and viewers do not get the review.
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    assert_eq!(viewer.get(&now).await.status(), 403);
}

#[tokio::test]
async fn a_removed_member_keeps_their_name_on_their_page_and_on_the_keys_they_made() {
    let app = spawn_app().await;
    let snapshot = app.state.org.snapshot();
    let (key, leaver) = snapshot
        .keys
        .iter()
        .filter_map(|k| {
            let by = k.created_by.as_ref()?;
            let user = snapshot.users.iter().find(|u| *u.id == *by.id)?;
            matches!(user.role, OrgRole::User | OrgRole::Developer)
                .then(|| (k.clone(), user.clone()))
        })
        .next()
        .expect("a key made by a plain member");
    app.state.org.api().remove_user(&leaver.id).await.unwrap();
    app.sync().await;

    let (_, admin) = app.signed_in(Role::Admin).await;
    let (status, page) = admin.get_text(&format!("/members/{}", leaver.id)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&leaver.email));
    assert!(page.contains("removed"));
    assert!(page.contains(&format!("/audit?target={}", leaver.id)));
    // Their keys are still listed (some keep working after they left), and the page does not
    // claim what it cannot know.
    let keys = page
        .split("id=\"former-keys\"")
        .nth(1)
        .expect("a section of their keys");
    assert!(keys.contains(&format!("/keys/{}", key.id)), "{keys}");
    assert!(!page.contains("Removed (seen)"), "{page}");
    assert!(!page.contains("not offboarded through Orgkeeper"), "{page}");

    let (_, key_page) = admin.get_text(&format!("/keys/{}", key.id)).await;
    let name = if leaver.name.is_empty() {
        &leaver.email
    } else {
        &leaver.name
    };
    assert!(key_page.contains(name.as_str()), "{key_page}");
    assert!(!key_page.contains(&format!(">{}<", leaver.id)));
}
