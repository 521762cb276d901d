//! The overview and the workspaces pages over real HTTP, against the simulator.

use std::collections::HashSet;

use crate::support::*;
use chrono::{Duration, Utc};
use orgkeeper::anthropic::{
    ApiKeyStatus, InviteStatus, OrgRole, Workspace, WorkspaceFilter, WorkspaceRole,
};
use orgkeeper::audit::{Filter, Outcome, Record};
use orgkeeper::auth::Role;
use orgkeeper::simulator::{FaultKind, FaultRule};

async fn all_workspaces(app: &TestApp) -> Vec<Workspace> {
    app.state
        .org
        .api()
        .list_all_workspaces(&WorkspaceFilter {
            include_archived: true,
            include_default: true,
        })
        .await
        .unwrap()
}

async fn default_workspace_id(app: &TestApp) -> String {
    let listed: HashSet<String> = app
        .state
        .org
        .api()
        .list_all_workspaces(&WorkspaceFilter {
            include_archived: true,
            include_default: false,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    all_workspaces(app)
        .await
        .into_iter()
        .find(|w| !listed.contains(&w.id))
        .expect("the simulator has a default workspace")
        .id
}

async fn records(app: &TestApp, action: &str) -> Vec<Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

/// The outcome record (not the intent) of the latest audited action of this kind.
async fn outcome_of(app: &TestApp, action: &str) -> Record {
    records(app, action)
        .await
        .into_iter()
        .find(|r| r.outcome != Outcome::Pending)
        .unwrap_or_else(|| panic!("no outcome recorded for {action}"))
}

fn created_id(response: &reqwest::Response) -> String {
    location(response)
        .strip_prefix("/workspaces/")
        .expect("redirect to the new workspace")
        .to_owned()
}

/// A developer of the organization who is in no explicit membership of this workspace.
async fn outsider(app: &TestApp, workspace_id: &str) -> String {
    let members: HashSet<String> = app
        .state
        .org
        .api()
        .list_all_workspace_members(workspace_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id.to_string())
        .collect();
    app.state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == OrgRole::Developer && !members.contains(&u.id))
        .expect("a developer outside the workspace")
        .id
}

#[tokio::test]
async fn the_overview_numbers_match_the_organization_and_link_to_the_filtered_pages() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let api = app.state.org.api();
    let users = api.list_all_users(&Default::default()).await.unwrap();
    let invites = api.list_all_invites(&Default::default()).await.unwrap();
    let keys = api.list_all_api_keys(&Default::default()).await.unwrap();
    let workspaces = all_workspaces(&app).await;
    let developers = users
        .iter()
        .filter(|u| u.role == OrgRole::Developer)
        .count();
    let pending = invites
        .iter()
        .filter(|i| i.status == InviteStatus::Pending)
        .count();
    let soon = invites
        .iter()
        .filter(|i| {
            i.status == InviteStatus::Pending && i.expires_at <= Utc::now() + Duration::days(3)
        })
        .count();
    let archived = workspaces.iter().filter(|w| w.is_archived()).count();
    let active_keys = keys
        .iter()
        .filter(|k| k.status == ApiKeyStatus::Active)
        .count();
    // Counted like the keys page's flag: keys still usable (active or inactive) with no expiry.
    let no_expiry = keys
        .iter()
        .filter(|k| {
            matches!(k.status, ApiKeyStatus::Active | ApiKeyStatus::Inactive)
                && k.expires_at.is_none()
        })
        .count();
    let mut placed = HashSet::new();
    for w in workspaces.iter().filter(|w| !w.is_archived()) {
        for m in api.list_all_workspace_members(&w.id).await.unwrap() {
            placed.insert(m.user_id);
        }
    }
    let homeless = users
        .iter()
        .filter(|u| {
            !matches!(u.role, OrgRole::Admin | OrgRole::Billing) && !placed.contains(u.id.as_str())
        })
        .count();

    let (status, body) = viewer.get_text("/").await;

    assert_eq!(status, 200);
    assert!(
        body.contains("<h1 class=\"Subhead-heading Subhead-heading--large\">Acme Robotics</h1>")
    );
    for (href, n) in [
        ("/members", users.len()),
        ("/members?role=developer", developers),
        ("/invites?status=pending", pending),
        ("/workspaces?include_archived=1", archived),
        ("/keys?status=active", active_keys),
        ("/keys?flag=no_expiry", no_expiry),
    ] {
        let link = format!("href=\"{href}\">{n}</a>");
        assert!(body.contains(&link), "missing {link}");
    }
    assert!(
        archived > 0 && no_expiry > 0,
        "the demo data exercises the numbers"
    );
    // A check that found nothing is not listed (a column of zeros reads as alarms).
    assert_eq!(
        body.contains(&format!(
            "href=\"/invites?status=expiring\">{soon}</a> pending invites expire within 3 days"
        )),
        soon > 0
    );
    assert!(body.contains(&format!(
        "href=\"/members?workspace=none\">{homeless}</a> members are in no workspace"
    )));
    // Each count opens exactly what it counts.
    let (_, members) = viewer.get_text("/members?workspace=none").await;
    let shown = if homeless == 1 {
        format!("of {homeless} member for these filters")
    } else {
        format!("of {homeless} members for these filters")
    };
    assert!(
        homeless > 0 && members.contains(&shown),
        "the members in no workspace, not everyone: {shown}"
    );
    let (_, invites) = viewer.get_text("/invites?status=expiring").await;
    let rows = invites.split("<tbody>").nth(1).map_or(0, |b| {
        b.split("</tbody>")
            .next()
            .unwrap_or("")
            .matches("<tr")
            .count()
    });
    assert_eq!(
        rows, soon,
        "the invites expiring soon, not every pending one"
    );
}

#[tokio::test]
async fn the_overview_opens_with_what_is_urgent_each_linking_to_where_it_is_fixed() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let (_, calm) = admin.get_text("/").await;
    assert!(
        !calm.contains("id=\"urgent\""),
        "nothing urgent in the demo at first"
    );

    // A reached spend limit: set at this month's spend (confirmed).
    let _ = admin.get_text("/limits").await;
    let name = all_workspaces(&app)
        .await
        .into_iter()
        .find(|w| w.id == ws)
        .unwrap()
        .name;
    let scope = orgkeeper::service::limits::LimitScope::Workspace {
        id: ws.clone(),
        name: name.clone(),
    };
    let spent = orgkeeper::service::limits::month_spend(&app.state, &scope)
        .await
        .unwrap();
    let dollars = (spent / rust_decimal::Decimal::from(100)).floor();
    let cents = (dollars * rust_decimal::Decimal::from(100))
        .normalize()
        .to_string();
    let set = admin
        .post(
            "/limits/spend",
            &[
                ("scope", &ws),
                ("amount", &dollars.to_string()),
                ("confirm", &cents),
            ],
        )
        .await;
    assert_eq!(set.status(), 303);
    // An exceeded budget, a limit request waiting, a leaked key that works again.
    let budget = admin
        .post(
            "/budgets",
            &[("scope", "org"), ("amount", "1"), ("thresholds", "100")],
        )
        .await;
    assert_eq!(budget.status(), 303);
    app.create_account("urgent-lead", Role::TeamLead, &[ws.as_str()])
        .await;
    let lead = app.login_as("urgent-lead").await;
    let asked = lead
        .post(
            "/limits/requests",
            &[
                ("workspace", &ws),
                ("amount", "999999"),
                ("reason", "launch"),
            ],
        )
        .await;
    assert_eq!(asked.status(), 303);
    let key = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.status == ApiKeyStatus::Active)
        .unwrap();
    let reported = admin
        .post(
            &format!("/keys/leaked/{}", key.id),
            &[("note", "in a gist")],
        )
        .await;
    assert_eq!(reported.status(), 303);
    let again = admin
        .post(&format!("/keys/{}/reactivate", key.id), &[])
        .await;
    assert!(again.status().is_redirection(), "{}", again.status());

    let (_, body) = admin.get_text("/").await;
    let strip = body
        .split("id=\"urgent\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("an alert strip");
    assert!(
        body.find("id=\"urgent\"").unwrap() < body.find("overview").unwrap(),
        "at the top"
    );
    assert!(
        strip.contains(&format!("{name} has reached its spend limit")),
        "{strip}"
    );
    assert!(strip.contains("href=\"/limits#set-limit\""), "{strip}");
    assert!(
        strip.contains("over its budget") && strip.contains("href=\"/budgets\""),
        "{strip}"
    );
    assert!(
        strip.contains("1 request for a higher spend limit")
            && strip.contains("href=\"/limits#requests\""),
        "{strip}"
    );
    assert!(
        strip.contains("reported as leaked still works")
            && strip.contains(&format!("href=\"/keys/{}\"", key.id)),
        "{strip}"
    );
}

#[tokio::test]
async fn a_second_overview_and_workspaces_load_within_the_cache_lifetime_make_no_upstream_call() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    admin.get_text("/").await;
    admin.get_text("/workspaces").await;
    let before = app.simulator.request_count();

    let (status, _) = admin.get_text("/workspaces?include_archived=1").await;
    let (home_status, _) = admin.get_text("/").await;

    assert_eq!((status, home_status), (200, 200));
    assert_eq!(app.simulator.request_count(), before);
}

#[tokio::test]
async fn a_failed_sync_is_explained_and_the_whole_overview_renders_from_the_model() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    app.simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/invites".into()),
        kind: FaultKind::ServerError,
        times: 10,
    });
    app.sync().await;
    let calls = app.simulator.request_count();

    let (status, body) = viewer.get_text("/").await;

    assert_eq!(status, 200);
    assert_eq!(app.simulator.request_count(), calls, "no upstream call");
    assert!(body.contains("internal problem"), "{body}");
    assert!(body.contains("(request id req_"));
    assert!(
        body.contains("href=\"/keys?status=active\">"),
        "the keys card still renders"
    );
    assert!(
        body.contains("href=\"/invites?status=pending\">"),
        "so does the invites card, from the model"
    );
}

#[tokio::test]
async fn a_team_lead_sees_only_their_workspaces_and_no_organization_wide_numbers() {
    let app = spawn_app().await;
    let (account, lead) = app.signed_in(Role::TeamLead).await;
    let mine = &account.workspaces[0];
    let workspaces = all_workspaces(&app).await;
    let name = &workspaces.iter().find(|w| &w.id == mine).unwrap().name;
    let other = workspaces
        .iter()
        .find(|w| &w.id != mine && !w.is_archived() && w.name != "Default Workspace")
        .unwrap();
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.workspace_id() == Some(mine.as_str()))
        .count();

    let (_, home) = lead.get_text("/").await;
    let (_, list) = lead.get_text("/workspaces?include_archived=1").await;

    assert!(home.contains(name.as_str()));
    assert!(home.contains(&format!("href=\"/keys?workspace={mine}\">{keys}</a>")));
    for org_wide in [
        "/members?role=",
        "/invites?status=",
        "/keys?status=",
        "/keys?flag=",
    ] {
        assert!(
            !home.contains(org_wide),
            "team lead overview shows {org_wide}"
        );
    }
    assert!(list.contains(name.as_str()));
    assert!(!list.contains(&other.name), "another workspace is listed");
}

#[tokio::test]
async fn a_team_lead_opening_another_workspace_by_url_is_refused_and_sees_none_of_it() {
    let app = spawn_app().await;
    let (account, lead) = app.signed_in(Role::TeamLead).await;
    let other = all_workspaces(&app)
        .await
        .into_iter()
        .find(|w| w.id != account.workspaces[0] && !w.is_archived())
        .unwrap();
    let member_id = app
        .state
        .org
        .api()
        .list_all_workspace_members(&other.id)
        .await
        .unwrap()[0]
        .user_id
        .clone();
    let before = app.simulator.request_count();

    let (status, body) = lead.get_text(&format!("/workspaces/{}", other.id)).await;

    assert_eq!(status, 403);
    assert!(!body.contains(&other.name) && !body.contains(&*member_id));
    assert_eq!(
        app.simulator.request_count(),
        before,
        "nothing of it was read"
    );
    let (own, _) = lead
        .get_text(&format!("/workspaces/{}", account.workspaces[0]))
        .await;
    assert_eq!(own, 200);
    let denied = app
        .audit_records(Filter {
            action: Some("access.denied".into()),
            outcome: Some(Outcome::Denied),
            ..Default::default()
        })
        .await;
    assert!(denied
        .iter()
        .any(|r| r.target_id.as_deref() == Some(other.id.as_str())));
}

#[tokio::test]
async fn the_include_archived_toggle_shows_archived_workspaces() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let archived = all_workspaces(&app)
        .await
        .into_iter()
        .find(|w| w.is_archived())
        .unwrap();

    let (_, without) = viewer.get_text("/workspaces").await;
    let (_, with) = viewer.get_text("/workspaces?include_archived=1").await;

    assert!(!without.contains(&archived.name));
    assert!(without.contains("href=\"/workspaces?include_archived=1\""));
    assert!(with.contains(&archived.name));
    assert!(with.contains("Archived "));
    assert!(
        with.contains("Default Workspace") && with.contains("default workspace\">default</span>")
    );
}

#[tokio::test]
async fn creating_a_workspace_with_a_hostile_name_renders_it_as_text_and_is_audited() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let hostile = "<script>alert(1)</script>";

    let response = admin
        .post(
            "/workspaces",
            &[
                ("name", hostile),
                ("display_color", "#000000"),
                ("display_color_text", "#12AB34"),
            ],
        )
        .await;

    assert_eq!(response.status(), 303);
    let id = created_id(&response);
    let created = app.state.org.api().get_workspace(&id).await.unwrap();
    assert_eq!(
        (created.name.as_str(), created.display_color.as_str()),
        (hostile, "#12AB34")
    );
    for path in [format!("/workspaces/{id}"), "/workspaces".to_owned()] {
        let (_, body) = admin.get_text(&path).await;
        // askama escapes with numeric references (&#60;); either form is text to a browser.
        let escaped = body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || body.contains("&#60;script&#62;alert(1)&#60;/script&#62;");
        assert!(escaped, "{path} does not show the name escaped");
        assert!(!body.contains(hostile), "{path} has the raw tag");
    }
    let record = outcome_of(&app, "workspace.created").await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.details["after"]["name"], hostile);
    assert_eq!(record.details["after"]["display_color"], "#12AB34");
    let created_id = record.target_id.clone().unwrap();
    assert!(
        created_id.starts_with("wrkspc_"),
        "the outcome names the created workspace: {created_id}"
    );
}

#[tokio::test]
async fn an_invalid_name_or_colour_is_refused_before_any_upstream_call_and_the_form_keeps_it() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let long = "x".repeat(256);
    admin.get_text("/workspaces").await;
    let before = app.simulator.request_count();

    let too_long = admin.post("/workspaces", &[("name", &long)]).await;
    let bad_colour = admin
        .post(
            "/workspaces",
            &[("name", "Research"), ("display_color_text", "purple")],
        )
        .await;

    assert_eq!(too_long.status(), 422);
    assert!(too_long.text().await.unwrap().contains("at most 255"));
    assert_eq!(bad_colour.status(), 422);
    let body = bad_colour.text().await.unwrap();
    assert!(body.contains("#RRGGBB") && body.contains("value=\"Research\""));
    assert_eq!(app.simulator.request_count(), before);
}

#[tokio::test]
async fn an_upstream_failure_while_creating_is_explained_with_its_request_id_and_keeps_the_name() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    app.simulator.faults().inject(FaultRule {
        method: Some("POST".into()),
        path_contains: Some("/v1/organizations/workspaces".into()),
        kind: FaultKind::ServerError,
        times: 1,
    });

    let response = admin
        .post("/workspaces", &[("name", "Growth & Partnerships")])
        .await;

    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(body.contains("could not confirm that the workspace was created"));
    assert!(body.contains("(request id req_"));
    assert!(
        body.contains("value=\"Growth &amp; Partnerships\"")
            || body.contains("value=\"Growth &#38; Partnerships\"")
    );
    let names: Vec<String> = all_workspaces(&app)
        .await
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert!(
        !names.contains(&"Growth & Partnerships".to_owned()),
        "creation is never retried"
    );
    let record = outcome_of(&app, "workspace.created").await;
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(record.upstream_status, Some(500));
    assert!(record.upstream_request_id.is_some());
}

#[tokio::test]
async fn renaming_and_recolouring_are_audited_with_before_and_after() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let id = app.first_workspace_id().await;
    let old = app.state.org.api().get_workspace(&id).await.unwrap();
    admin.get_text(&format!("/workspaces/{id}")).await;

    let response = admin
        .post(
            &format!("/workspaces/{id}"),
            &[("name", "Applied Research"), ("display_color", "#AABBCC")],
        )
        .await;

    assert_eq!(response.status(), 303);
    let now = app.state.org.api().get_workspace(&id).await.unwrap();
    assert_eq!(now.name, "Applied Research");
    assert!(now.display_color.eq_ignore_ascii_case("#AABBCC"));
    let record = outcome_of(&app, "workspace.updated").await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.target_id.as_deref(), Some(id.as_str()));
    assert_eq!(record.details["before"]["name"], old.name.as_str());
    assert_eq!(record.details["after"]["name"], "Applied Research");
    assert_eq!(
        record.details["before"]["display_color"],
        old.display_color.as_str()
    );
    let (_, page) = admin.get_text(&format!("/workspaces/{id}")).await;
    assert!(
        page.contains("Applied Research"),
        "the cache was invalidated"
    );
}

#[tokio::test]
async fn archiving_asks_first_says_what_happens_and_archives_the_keys_too() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let id = app.first_workspace_id().await;

    let name = app.state.org.api().get_workspace(&id).await.unwrap().name;

    let (status, confirm) = admin.get_text(&format!("/workspaces/{id}/archive")).await;
    let mistyped = admin
        .post(
            &format!("/workspaces/{id}/archive"),
            &[("confirm", "not the name")],
        )
        .await;
    let mistyped_status = mistyped.status();
    let mistyped_body = mistyped.text().await.unwrap();
    let still_live = app.state.org.api().get_workspace(&id).await.unwrap();
    let response = admin
        .post(
            &format!("/workspaces/{id}/archive"),
            &[("confirm", name.as_str())],
        )
        .await;

    assert_eq!(mistyped_status, 422, "a mistyped name changes nothing");
    assert!(
        mistyped_body.contains("Type the workspace"),
        "{mistyped_body}"
    );
    assert!(still_live.archived_at.is_none());
    assert_eq!(status, 200);
    assert!(confirm.contains("cannot be undone"));
    assert!(confirm.contains("API keys are archived too"));
    assert!(confirm.contains("lose access"));
    assert_eq!(response.status(), 303);
    assert!(app
        .state
        .org
        .api()
        .get_workspace(&id)
        .await
        .unwrap()
        .is_archived());
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    assert!(keys
        .iter()
        .filter(|k| k.workspace_id() == Some(id.as_str()))
        .all(|k| k.status == ApiKeyStatus::Archived));
    let record = outcome_of(&app, "workspace.archived").await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(record.details["before"]["archived"], false);
    assert_eq!(record.details["after"]["archived"], true);
    let (_, page) = admin.get_text(&format!("/workspaces/{id}")).await;
    assert!(page.contains("Archived on"));
}

#[tokio::test]
async fn the_default_workspace_offers_no_rename_or_archive_and_a_forced_archive_is_refused_upstream(
) {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let id = default_workspace_id(&app).await;

    let (_, page) = admin.get_text(&format!("/workspaces/{id}")).await;
    let response = admin.post(&format!("/workspaces/{id}/archive"), &[]).await;

    assert!(page.contains("default workspace\">default</span>"));
    assert!(page.contains("cannot be renamed or archived"));
    assert!(!page.contains(&format!("href=\"/workspaces/{id}/archive\"")));
    assert!(!page.contains("name=\"name\""));
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("The default workspace cannot be archived"));
    assert!(body.contains("(request id req_"));
    let record = outcome_of(&app, "workspace.archived").await;
    assert_eq!(record.outcome, Outcome::Failed);
    assert_eq!(record.upstream_status, Some(400));
    assert!(record.upstream_request_id.unwrap().starts_with("req_"));
    assert!(!app
        .state
        .org
        .api()
        .get_workspace(&id)
        .await
        .unwrap()
        .is_archived());
}

#[tokio::test]
async fn adding_changing_and_removing_a_workspace_member_are_audited() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let ws = app.first_workspace_id().await;
    let user = outsider(&app, &ws).await;
    let (_, page) = admin.get_text(&format!("/workspaces/{ws}")).await;
    assert!(
        page.contains("name=\"user_id\""),
        "people are added by name or email"
    );
    assert!(!page.contains("<option value=\"workspace_billing\""));
    // Typing part of their email suggests them; adding by that email adds them.
    let email = app
        .state
        .org
        .snapshot()
        .person(&user)
        .unwrap()
        .0
        .email
        .clone();
    let (_, suggested) = admin
        .get_text(&format!("/workspaces/{ws}/candidates?user_id={email}"))
        .await;
    assert!(
        suggested.contains(&format!("<option value=\"{email}\"")),
        "{suggested}"
    );
    let ambiguous = admin
        .post(
            &format!("/workspaces/{ws}/members"),
            &[("user_id", "@"), ("workspace_role", "workspace_developer")],
        )
        .await;
    assert_eq!(ambiguous.status(), 422);
    let ambiguous = ambiguous.text().await.unwrap();
    assert!(ambiguous.contains("members match “@”"), "{ambiguous}");
    assert!(
        ambiguous.contains("name=\"user_id\" value=\"@\""),
        "the typed text is kept"
    );

    let added = admin
        .post(
            &format!("/workspaces/{ws}/members"),
            &[
                ("user_id", &email),
                ("workspace_role", "workspace_developer"),
            ],
        )
        .await;
    let changed = admin
        .post(
            &format!("/workspaces/{ws}/members/{user}/role"),
            &[("workspace_role", "workspace_admin")],
        )
        .await;
    let (confirm_status, confirm) = admin
        .get_text(&format!("/workspaces/{ws}/members/{user}/remove"))
        .await;
    let removed = admin
        .post(&format!("/workspaces/{ws}/members/{user}/remove"), &[])
        .await;

    assert_eq!(
        (added.status(), changed.status(), removed.status()),
        (
            reqwest::StatusCode::SEE_OTHER,
            reqwest::StatusCode::SEE_OTHER,
            reqwest::StatusCode::SEE_OTHER
        )
    );
    assert_eq!(confirm_status, 200);
    assert!(confirm.contains("loses access"));
    assert!(app
        .state
        .org
        .api()
        .get_workspace_member(&ws, &user)
        .await
        .unwrap_err()
        .is_not_found());
    let add = outcome_of(&app, "workspace_member.added").await;
    assert_eq!(add.outcome, Outcome::Ok);
    assert_eq!(
        add.details["after"]["workspace_role"],
        "workspace_developer"
    );
    let change = outcome_of(&app, "workspace_member.role_changed").await;
    assert_eq!(
        change.details["before"]["workspace_role"],
        "workspace_developer"
    );
    assert_eq!(change.details["after"]["workspace_role"], "workspace_admin");
    let remove = outcome_of(&app, "workspace_member.removed").await;
    assert_eq!(remove.outcome, Outcome::Ok);
    assert_eq!(
        remove.details["before"]["workspace_role"],
        "workspace_admin"
    );
}

#[tokio::test]
async fn a_member_change_over_htmx_returns_the_updated_members_card() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let ws = app.first_workspace_id().await;
    let user = outsider(&app, &ws).await;
    let token = admin.csrf().await;

    let response = admin
        .http
        .post(app.url(&format!("/workspaces/{ws}/members")))
        .header("hx-request", "true")
        .form(&[
            ("_csrf", token.as_str()),
            ("user_id", user.as_str()),
            ("workspace_role", "workspace_user"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("<section class=\"Box p-3 mb-3\" id=\"members\">"));
    assert!(!body.contains("<html"));
    assert!(body.contains("was added to"));
    assert!(
        body.contains(&format!("/members/{user}/remove")),
        "listed as a member"
    );
}

#[tokio::test]
async fn the_api_refusals_of_workspace_member_changes_are_explained_and_audited_as_failed() {
    let app = spawn_app().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let ws = app.first_workspace_id().await;
    let user = outsider(&app, &ws).await;
    let org_admin = app
        .state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == OrgRole::Admin)
        .unwrap()
        .id;
    let (_, page) = admin.get_text(&format!("/workspaces/{ws}")).await;
    assert!(page.contains("organization admins are workspace admins everywhere"));
    assert!(!page.contains(&format!("/members/{org_admin}/remove")));

    let billing = admin
        .post(
            &format!("/workspaces/{ws}/members"),
            &[("user_id", &user), ("workspace_role", "workspace_billing")],
        )
        .await;
    let billing_status = billing.status();
    let billing_body = billing.text().await.unwrap();
    let admin_change = admin
        .post(
            &format!("/workspaces/{ws}/members/{org_admin}/role"),
            &[("workspace_role", WorkspaceRole::WorkspaceUser.as_str())],
        )
        .await;

    assert_eq!(billing_status, 422);
    assert!(billing_body.contains("workspace_billing cannot be assigned"));
    assert!(billing_body.contains("(request id req_"));
    assert!(billing_body.contains("Workspace rules:"));
    assert!(
        billing_body.contains(&format!("name=\"user_id\" value=\"{user}\"")),
        "the form keeps the choice"
    );
    assert_eq!(admin_change.status(), 422);
    assert!(admin_change
        .text()
        .await
        .unwrap()
        .contains("Organization admins are workspace admins of every workspace"));
    let failed = app
        .audit_records(Filter {
            action: Some("workspace_member".into()),
            outcome: Some(Outcome::Failed),
            ..Default::default()
        })
        .await;
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|r| r.upstream_status == Some(400) && r.upstream_request_id.is_some()));
}

#[tokio::test]
async fn viewers_auditors_and_team_leads_get_403_on_every_change() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    let user = outsider(&app, &ws).await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/workspaces".into(), vec![("name", "Sneaky")]),
        (format!("/workspaces/{ws}"), vec![("name", "Renamed")]),
        (format!("/workspaces/{ws}/archive"), vec![]),
        (
            format!("/workspaces/{ws}/members"),
            vec![
                ("user_id", user.as_str()),
                ("workspace_role", "workspace_user"),
            ],
        ),
        (
            format!("/workspaces/{ws}/members/{user}/role"),
            vec![("workspace_role", "workspace_admin")],
        ),
        (format!("/workspaces/{ws}/members/{user}/remove"), vec![]),
    ];
    for role in [Role::Viewer, Role::Auditor, Role::TeamLead] {
        let (_, session) = app.signed_in(role).await;
        session.get_text("/").await;
        let before = app.simulator.request_count();
        for (path, fields) in &posts {
            let response = session.post(path, fields).await;
            assert_eq!(response.status(), 403, "{role} POST {path}");
        }
        let (archive_page, _) = session.get_text(&format!("/workspaces/{ws}/archive")).await;
        assert_eq!(archive_page, 403, "{role} archive confirmation");
        assert_eq!(
            app.simulator.request_count(),
            before,
            "{role} reached upstream"
        );
    }
    assert!(records(&app, "workspace").await.is_empty());
    assert!(records(&app, "workspace_member").await.is_empty());
}

#[tokio::test]
async fn a_workspace_page_finds_its_members_by_name_or_email_and_says_how_many_match() {
    let app = spawn_app().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let ws = app.first_workspace_id().await;
    let snapshot = app.state.org.snapshot();
    let members = snapshot.members_in(&ws);
    assert!(members.len() > 1, "the demo workspace has several members");
    let (_, page) = viewer.get_text(&format!("/workspaces/{ws}")).await;
    assert!(
        page.contains(&format!("of {} members", members.len())),
        "the card counts every member"
    );
    let one = snapshot.person(&members[0].user_id).unwrap().0.clone();
    let (_, found) = viewer
        .get_text(&format!(
            "/workspaces/{ws}?member={}",
            one.email.to_uppercase()
        ))
        .await;
    assert!(
        found.contains("Showing 1–1 of 1 member matching"),
        "{found}"
    );
    assert!(found.contains(&one.email));
    let other = snapshot.person(&members[1].user_id).unwrap().0.clone();
    assert!(!found.contains(&other.email), "only the match is listed");
    let (_, none) = viewer
        .get_text(&format!("/workspaces/{ws}?member=nobody-by-this-name"))
        .await;
    assert!(none.contains("No member matches “nobody-by-this-name”."));
    assert!(
        none.contains("value=\"nobody-by-this-name\""),
        "the search keeps what was typed"
    );
}

#[tokio::test]
async fn the_workspace_list_shows_fifty_at_a_time_and_finds_one_by_name() {
    let app = spawn_app().await;
    let api = app.state.org.api().clone();
    let before = all_workspaces(&app)
        .await
        .iter()
        .filter(|w| w.archived_at.is_none())
        .count();
    // More than a page of live workspaces.
    for n in 0..(60 - before.min(60)) {
        api.create_workspace(&format!("Team {n:02}"), None)
            .await
            .unwrap();
    }
    app.sync().await;
    let live = all_workspaces(&app)
        .await
        .iter()
        .filter(|w| w.archived_at.is_none())
        .count();
    assert!(live > 50, "{live}");
    let (_, viewer) = app.signed_in(Role::Viewer).await;

    let (_, first) = viewer.get_text("/workspaces").await;
    let rows = |page: &str| page.matches("href=\"/workspaces/wrkspc_").count();
    assert_eq!(rows(&first), 50, "one page of 50");
    assert!(
        first.contains(&format!("Showing 1–50 of {live} workspaces")),
        "{first}"
    );
    assert!(first.contains("href=\"/workspaces?page=2\""), "{first}");
    let (_, second) = viewer.get_text("/workspaces?page=2").await;
    assert_eq!(rows(&second), live - 50);

    let (_, found) = viewer.get_text("/workspaces?q=team+07").await;
    assert_eq!(rows(&found), 1, "{found}");
    assert!(found.contains("Team 07"));
    assert!(found.contains("Showing 1–1 of 1 workspace matching “team 07”"));
}
