//! Members and invites pages over real HTTP against the simulator.

use crate::support::*;
use orgkeeper::anthropic::{InviteStatus, OrgRole, User};
use orgkeeper::audit::{Filter, Outcome};
use orgkeeper::auth::Role;
use orgkeeper::simulator::{FaultKind, FaultRule};

async fn users(app: &TestApp) -> Vec<User> {
    app.state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap()
}

fn user_with_role(users: &[User], role: OrgRole) -> User {
    users
        .iter()
        .find(|u| u.role == role)
        .cloned()
        .unwrap_or_else(|| panic!("the demo organization has a {role}"))
}

/// The email addresses in the member table, in order.
fn listed_emails(body: &str) -> Vec<String> {
    let body = without_data_labels(body);
    let table = body
        .split("<tbody>")
        .nth(1)
        .map(|rest| rest.split("</tbody>").next().unwrap())
        .unwrap_or("");
    table
        .split("<tr>")
        .skip(1)
        .filter_map(|row| row.split("<td>").nth(2))
        .map(|cell| cell.split("</td>").next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn members_can_be_searched_filtered_and_sorted() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    let all = users(&app).await;
    let someone = &all[7];
    let first_name = someone.name.split(' ').next().unwrap();

    let (status, by_name) = session
        .get_text(&format!("/members?q={}", first_name.to_uppercase()))
        .await;
    let (_, admins) = session.get_text("/members?role=admin").await;
    let (_, by_email_desc) = session.get_text("/members?sort=email&dir=desc").await;

    assert_eq!(status, 200);
    let found = listed_emails(&by_name);
    assert!(found.contains(&someone.email), "{found:?}");
    assert!(found.len() < all.len());
    let admin_emails = listed_emails(&admins);
    let expected_admins = all.iter().filter(|u| u.role == OrgRole::Admin).count();
    assert_eq!(admin_emails.len(), expected_admins);
    assert!(
        admins.contains("href=\"/members?role=admin&#38;sort=email\""),
        "sort links keep the role filter"
    );
    let mut sorted: Vec<String> = all.iter().map(|u| u.email.to_lowercase()).collect();
    sorted.sort();
    sorted.reverse();
    assert_eq!(listed_emails(&by_email_desc), sorted);
    assert!(by_email_desc.contains("aria-sort=\"descending\""));
}

#[tokio::test]
async fn a_large_organization_is_paged_by_fifty_and_member_pages_load_workspaces_afterwards() {
    let app = spawn_large_app().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    session.get_text("/members").await; // fills the cache

    let started = std::time::Instant::now();
    let (status, page_3) = session
        .get_text("/members?role=developer&sort=added&dir=desc&page=3")
        .await;
    let elapsed = started.elapsed();

    assert_eq!(status, 200);
    assert_eq!(listed_emails(&page_3).len(), 50);
    assert!(page_3.contains("Showing 101–150 of"), "paging summary");
    let (_, everyone) = session.get_text("/members").await;
    let total = everyone
        .split("Showing 1–50 of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the summary of the first page");
    assert!(
        total.len() > 3 && total.contains(','),
        "a count in the thousands has its separator: {total}"
    );
    assert!(
        page_3.contains("/members?role=developer&#38;sort=added&#38;dir=desc&#38;page=4"),
        "the next link keeps the filters"
    );
    assert!(page_3.contains("/members?role=developer&#38;sort=added&#38;dir=desc&#38;page=2"));
    assert!(
        elapsed < std::time::Duration::from_millis(500),
        "a cached page of 5,000 members took {elapsed:?}"
    );

    // With 100 workspaces a member page shows first and reads memberships afterwards.
    let developer = user_with_role(&users(&app).await, OrgRole::Developer);
    let (status, member_page) = session
        .get_text(&format!("/members/{}", developer.id))
        .await;
    let section = session
        .http
        .get(app.url(&format!("/members/{}/workspaces", developer.id)))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(member_page.contains(&format!("hx-get=\"/members/{}/workspaces\"", developer.id)));
    assert!(!section.contains("<html"));
    assert!(section.contains("/workspaces/wrkspc_"), "{section}");
}

#[tokio::test]
async fn an_htmx_search_gets_only_the_table_and_the_search_echo_is_escaped() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Viewer).await;

    let (_, full) = session
        .get_text("/members?q=%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    let partial = session
        .http
        .get(app.url("/members?role=admin"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(!full.contains("<script>alert(1)"));
    assert!(full.contains("&#60;script&#62;alert(1)"));
    assert!(
        !partial.contains("<html"),
        "an htmx request gets the table region only"
    );
    assert!(partial.contains("<table"));
}

#[tokio::test]
async fn a_member_page_shows_their_workspaces_keys_and_audit_link() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Auditor).await;
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    let all = users(&app).await;
    let developer = all
        .iter()
        .find(|u| {
            u.role == OrgRole::Developer
                && keys
                    .iter()
                    .any(|k| k.created_by.as_ref().is_some_and(|c| *c.id == *u.id))
        })
        .expect("a developer who created keys");
    let their_key = keys
        .iter()
        .find(|k| {
            k.created_by
                .as_ref()
                .is_some_and(|c| *c.id == *developer.id)
        })
        .unwrap();
    let workspaces = app
        .state
        .org
        .api()
        .list_all_workspaces(&Default::default())
        .await
        .unwrap();
    let mut their_workspace = None;
    for w in &workspaces {
        let members = app
            .state
            .org
            .api()
            .list_all_workspace_members(&w.id)
            .await
            .unwrap();
        if members.iter().any(|m| *m.user_id == *developer.id) {
            their_workspace = Some(w.name.clone());
        }
    }

    let (status, body) = session
        .get_text(&format!("/members/{}", developer.id))
        .await;

    assert_eq!(status, 200);
    assert!(body.contains(&developer.email));
    assert!(body.contains(&their_workspace.expect("a workspace of theirs")));
    assert!(body.contains(&format!("/keys/{}", their_key.id)));
    assert!(body.contains(&format!("/audit?target={}", developer.id)));
    assert!(!body.contains("/role\""), "an auditor gets no role form");
}

#[tokio::test]
async fn changing_a_role_is_audited_with_before_and_after_and_shows_in_the_list_at_once() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let member = user_with_role(&users(&app).await, OrgRole::User);
    let (_, before) = session.get_text("/members?role=developer").await;
    assert!(!listed_emails(&before).contains(&member.email));

    let response = session
        .post(
            &format!("/members/{}/role", member.id),
            &[("role", "developer")],
        )
        .await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("/members/{}", member.id));
    let (_, after) = session.get_text("/members?role=developer").await;
    assert!(
        listed_emails(&after).contains(&member.email),
        "the cached list was refreshed"
    );
    let records = app
        .audit_records(Filter {
            action: Some("member.role_changed".into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        })
        .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].target_id.as_deref(), Some(member.id.as_str()));
    assert_eq!(records[0].details["before"], "user");
    assert_eq!(records[0].details["after"], "developer");
    assert_eq!(records[0].details["email"], member.email.as_str());
}

#[tokio::test]
async fn giving_the_admin_role_is_refused_with_a_plain_reason_and_audited_as_failed() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Owner).await;
    let member = user_with_role(&users(&app).await, OrgRole::Developer);
    let (_, page) = session.get_text(&format!("/members/{}", member.id)).await;
    assert!(page.contains("Admin is not offered"));
    assert!(!page.contains("value=\"admin\""));

    let response = session
        .post(
            &format!("/members/{}/role", member.id),
            &[("role", "admin")],
        )
        .await;

    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("Anthropic Console"), "{body}");
    assert!(body.contains("request id req_"), "{body}");
    let failed = app
        .audit_records(Filter {
            action: Some("member.role_changed".into()),
            outcome: Some(Outcome::Failed),
            ..Default::default()
        })
        .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].upstream_status, Some(400));
    assert!(failed[0]
        .upstream_request_id
        .as_deref()
        .is_some_and(|id| id.starts_with("req_")));
    assert_eq!(
        users(&app)
            .await
            .iter()
            .find(|u| u.id == member.id)
            .unwrap()
            .role,
        OrgRole::Developer
    );
}

#[tokio::test]
async fn an_admin_cannot_be_removed_and_the_page_says_so_before_trying() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let admin = user_with_role(&users(&app).await, OrgRole::Admin);

    let (status, confirm) = session
        .get_text(&format!("/members/{}/remove", admin.id))
        .await;
    let response = session
        .post(&format!("/members/{}/remove", admin.id), &[])
        .await;

    assert_eq!(status, 200);
    assert!(confirm.contains("cannot be removed through the Admin API"));
    assert!(
        !confirm.contains("btn-danger"),
        "no remove button for an admin"
    );
    assert_eq!(response.status(), 422);
    assert!(response.text().await.unwrap().contains("request id"));
    assert!(users(&app).await.iter().any(|u| u.id == admin.id));
}

#[tokio::test]
async fn removing_a_member_after_the_confirmation_page_takes_them_off_the_list() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    let member = users(&app)
        .await
        .into_iter()
        .find(|u| {
            u.role == OrgRole::Developer
                && keys
                    .iter()
                    .any(|k| k.created_by.as_ref().is_some_and(|c| *c.id == *u.id))
        })
        .expect("a developer who created keys");
    session.get_text("/members").await; // cache the list

    let (status, confirm) = session
        .get_text(&format!("/members/{}/remove", member.id))
        .await;
    let response = session
        .post(&format!("/members/{}/remove", member.id), &[])
        .await;

    assert_eq!(status, 200);
    assert!(confirm.contains("loses access to the organization"));
    assert!(confirm.contains("Pending invites to their address are not touched"));
    assert!(confirm.contains("API keys they created") && confirm.contains("Show the keys"));
    assert!(confirm.contains(&format!("/members/{}/offboard", member.id)));
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/members");
    let (_, list) = session.get_text("/members").await;
    assert!(
        list.contains("was removed from the organization"),
        "flash message"
    );
    assert!(!listed_emails(&list).contains(&member.email));
    let removed = app
        .audit_records(Filter {
            action: Some("member.removed".into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        })
        .await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].details["email"], member.email.as_str());
}

#[tokio::test]
async fn viewers_and_auditors_read_the_pages_but_every_change_is_forbidden() {
    let app = spawn_app().await;
    let all = users(&app).await;
    let member = user_with_role(&all, OrgRole::User);
    let invite = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.status == InviteStatus::Pending)
        .unwrap();
    for role in [Role::Viewer, Role::Auditor] {
        let (_, session) = app.signed_in(role).await;
        for path in [
            "/members".to_owned(),
            format!("/members/{}", member.id),
            "/invites".into(),
        ] {
            let (status, _) = session.get_text(&path).await;
            assert_eq!(status, 200, "{role} reads {path}");
        }
        let posts: [(String, Vec<(&str, &str)>); 4] = [
            (
                format!("/members/{}/role", member.id),
                vec![("role", "developer")],
            ),
            (format!("/members/{}/remove", member.id), vec![]),
            (
                "/invites".into(),
                vec![("email", "new@example.com"), ("role", "user")],
            ),
            (format!("/invites/{}/delete", invite.id), vec![]),
        ];
        for (path, fields) in &posts {
            let response = session.post(path, fields).await;
            assert_eq!(response.status(), 403, "{role} POST {path}");
        }
    }
    assert_eq!(users(&app).await, all, "nothing changed upstream");
}

#[tokio::test]
async fn team_leads_do_not_see_the_directory() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::TeamLead).await;

    let (members, _) = session.get_text("/members").await;
    let (invites, _) = session.get_text("/invites").await;

    assert_eq!(members, 403);
    assert_eq!(invites, 403);
}

#[tokio::test]
async fn invites_are_filtered_by_status_and_pending_ones_show_the_time_left() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let invites = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap();
    let accepted = invites
        .iter()
        .find(|i| i.status == InviteStatus::Accepted)
        .unwrap();
    let pending = invites
        .iter()
        .find(|i| i.status == InviteStatus::Pending)
        .unwrap();

    let (status, pending_page) = session.get_text("/invites?status=pending").await;
    let (_, accepted_page) = session.get_text("/invites?status=accepted").await;

    assert_eq!(status, 200);
    assert!(pending_page.contains(&pending.email));
    assert!(!pending_page.contains(&accepted.email));
    assert!(pending_page.contains("expires in "));
    assert!(pending_page.contains(&format!("/invites/{}/delete", pending.id)));
    assert!(accepted_page.contains(&accepted.email));
    assert!(
        !accepted_page.contains("Delete…"),
        "accepted invites offer no delete"
    );
}

#[tokio::test]
async fn one_person_is_invited_and_the_email_renders_as_text() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let email = "<b>bold</b>@example.com";

    let response = session
        .post("/invites", &[("email", email), ("role", "developer")])
        .await;

    assert_eq!(response.status(), 303);
    let (_, list) = session.get_text("/invites?status=pending").await;
    assert!(list.contains("Invited 1 person as Developer"));
    assert!(list.contains("&#60;b&#62;bold&#60;/b&#62;@example.com"));
    assert!(!list.contains("<b>bold</b>"));
    let created = app
        .audit_records(Filter {
            action: Some("invite.created".into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        })
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].details["role"], "developer");
    assert!(
        created[0]
            .target_id
            .as_deref()
            .is_some_and(|id| id.starts_with("invite_")),
        "the outcome names the created invite"
    );
}

#[tokio::test]
async fn a_pasted_list_reports_each_line_and_keeps_the_failures_for_correction() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let member = &users(&app).await[5];
    let lines = format!("newcomer@example.com\nnot-an-email\n{}\n", member.email);

    let response = session
        .post("/invites", &[("emails", lines.as_str()), ("role", "user")])
        .await;

    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    let textarea = body
        .split("<textarea class=\"form-control\" name=\"emails\"")
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|rest| rest.split("</textarea").next())
        .unwrap();
    assert!(textarea.contains("not-an-email"));
    assert!(textarea.contains(&member.email));
    assert!(!textarea.contains("newcomer@example.com"), "{textarea}");
    assert!(body.contains("1 invited, 2 not invited"), "{body}");
    assert!(
        body.contains("already a member"),
        "the API's reason is shown"
    );
    let created = app
        .audit_records(Filter {
            action: Some("invite.created".into()),
            ..Default::default()
        })
        .await;
    let outcomes: Vec<Outcome> = created
        .iter()
        .filter(|r| r.outcome != Outcome::Pending)
        .map(|r| r.outcome)
        .collect();
    assert_eq!(outcomes.len(), 2, "the invalid line is never sent");
    assert!(outcomes.contains(&Outcome::Ok) && outcomes.contains(&Outcome::Failed));
    let pending = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap();
    assert!(pending.iter().any(|i| i.email == "newcomer@example.com"));
}

#[tokio::test]
async fn a_pending_invite_is_deleted_after_confirmation() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let invite = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.status == InviteStatus::Pending)
        .unwrap();

    let (status, confirm) = session
        .get_text(&format!("/invites/{}/delete", invite.id))
        .await;
    let response = session
        .post(&format!("/invites/{}/delete", invite.id), &[])
        .await;

    assert_eq!(status, 200);
    assert!(confirm.contains("stops working"));
    assert_eq!(response.status(), 303);
    let (_, list) = session.get_text("/invites?status=pending").await;
    assert!(!list.contains(&format!("/invites/{}/delete", invite.id)));
    assert_eq!(
        app.audit_records(Filter {
            action: Some("invite.deleted".into()),
            outcome: Some(Outcome::Ok),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
}

#[tokio::test]
async fn the_member_list_is_served_from_the_cache_on_a_second_visit() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    session.get_text("/members").await;
    let before = app.simulator.request_count();

    let (status, body) = session.get_text("/members?sort=role&page=1").await;

    assert_eq!(status, 200);
    assert!(body.contains("<table"));
    assert_eq!(app.simulator.request_count(), before, "no upstream call");
}

#[tokio::test]
async fn when_the_admin_api_fails_the_list_still_shows_and_says_why_it_may_be_old() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    let (_, fresh) = session.get_text("/members?q=a").await;
    app.simulator.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/users".into()),
        kind: FaultKind::ServerError,
        times: 10,
    });
    app.sync().await;

    let (status, body) = session.get_text("/members?q=a").await;

    assert_eq!(status, 200);
    let rows = |html: &str| html.matches("<tr").count();
    assert_eq!(
        rows(&body),
        rows(&fresh),
        "the same members as before the failure"
    );
    assert!(body.contains("The last refresh failed"), "{body}");
    assert!(body.contains("request id req_"), "{body}");
    assert!(body.contains("value=\"a\""), "the search form stays usable");
}

#[tokio::test]
async fn the_role_form_says_what_each_change_gives_and_takes_away_before_it_is_applied() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let developer = user_with_role(&users(&app).await, OrgRole::Developer);
    let (status, page) = session
        .get_text(&format!("/members/{}", developer.id))
        .await;
    assert_eq!(status, 200);
    let effects = page
        .split("id=\"role-effects\"")
        .nth(1)
        .and_then(|s| s.split("</div>").next())
        .expect("the effects beside the role choice");
    let line = |role: &str| {
        effects
            .split("<li>")
            .find(|l| l.contains(&format!("<strong>{role}</strong>")))
            .unwrap_or_else(|| panic!("a line for {role}: {effects}"))
            .to_owned()
    };
    assert!(
        line("User").contains("can no longer create and manage API keys"),
        "{effects}"
    );
    let code = line("Claude Code user");
    assert!(
        code.contains("can also use Claude Code")
            && code.contains("can no longer create and manage API keys"),
        "{code}"
    );
    assert!(
        line("Billing").contains("can also see and manage billing"),
        "{effects}"
    );
    assert!(
        !effects.contains("<strong>Developer</strong>"),
        "not the role they have"
    );
}

/// Checking a pasted list flags the addresses that would get no new invite: a member's, and
/// one with a pending invite; the summary counts them apart from the new addresses.
#[tokio::test]
async fn checking_a_pasted_list_flags_members_and_pending_invites() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let member = users(&app).await.remove(0);
    let pending = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.status == InviteStatus::Pending && i.expires_at > app.state.clock.now())
        .expect("the demo organization has a pending invite");
    let pasted = format!(
        "new.person@example.com, {}\n{}",
        member.email.to_uppercase(),
        pending.email
    );

    let checked = session
        .post(
            "/invites",
            &[
                ("emails", pasted.as_str()),
                ("role", "user"),
                ("preview", "1"),
            ],
        )
        .await;

    assert_eq!(checked.status(), 200);
    let page = checked.text().await.unwrap();
    assert!(
        page.contains("1 address, 2 already in the organization or invited"),
        "{page}"
    );
    assert!(page.contains("already a member: no new invite"), "{page}");
    assert!(
        page.contains("already has a pending invite: no new invite"),
        "{page}"
    );
    assert!(
        app.audit_records(Filter {
            action: Some("invite.created".into()),
            ..Default::default()
        })
        .await
        .is_empty(),
        "checking sends nothing"
    );
}
