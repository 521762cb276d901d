//! The authorization matrix over every organization route: each role gets what the permission
//! table in src/auth/roles.rs says, and nothing else, checked on the server. (The dashboard's
//! own routes are covered in foundation.rs.)

mod support;

use orgkeeper::anthropic::{ApiKeyStatus, InviteStatus, OrgRole};
use orgkeeper::audit::Filter;
use orgkeeper::auth::{Permission, Role};
use support::*;

#[tokio::test]
async fn every_organization_route_answers_each_role_as_the_permission_table_says() {
    let app = spawn_app().await;
    let api = app.state.org.api();
    let workspace = app.first_workspace_id().await;
    let keys = api.list_all_api_keys(&Default::default()).await.unwrap();
    let key = keys
        .iter()
        .find(|k| k.status == ApiKeyStatus::Active && k.workspace_id() == Some(workspace.as_str()))
        .expect("an active key in the first workspace")
        .id
        .clone();
    let users = api.list_all_users(&Default::default()).await.unwrap();
    let developer = users
        .iter()
        .find(|u| u.role == OrgRole::Developer)
        .unwrap()
        .id
        .clone();
    let invites = api.list_all_invites(&Default::default()).await.unwrap();
    let invite = invites
        .iter()
        .find(|i| i.status == InviteStatus::Pending)
        .unwrap()
        .id
        .clone();

    use Permission::*;
    let gets: Vec<(String, Permission)> = vec![
        ("/members".into(), ViewDirectory),
        (format!("/members/{developer}"), ViewDirectory),
        ("/invites".into(), ViewDirectory),
        ("/workspaces".into(), ViewWorkspaces),
        (format!("/workspaces/{workspace}"), ViewWorkspaces),
        ("/keys".into(), ViewWorkspaces),
        (format!("/keys/{key}"), ViewWorkspaces),
        ("/keys/schedules".into(), ViewWorkspaces),
        ("/usage".into(), ViewUsage),
        ("/cost".into(), ViewUsage),
        ("/budgets".into(), ViewUsage),
        (format!("/members/{developer}/remove"), ManageOrganization),
        (format!("/members/{developer}/offboard"), ManageOrganization),
        (
            format!("/workspaces/{workspace}/archive"),
            ManageOrganization,
        ),
        (format!("/keys/{key}/archive"), ManageOrganization),
        ("/keys/leaked".into(), ManageOrganization),
    ];
    let posts: Vec<String> = vec![
        "/invites".into(),
        format!("/invites/{invite}/delete"),
        format!("/members/{developer}/role"),
        format!("/members/{developer}/remove"),
        format!("/members/{developer}/offboard"),
        "/workspaces".into(),
        format!("/workspaces/{workspace}"),
        format!("/workspaces/{workspace}/archive"),
        format!("/workspaces/{workspace}/members"),
        format!("/workspaces/{workspace}/members/{developer}/role"),
        format!("/workspaces/{workspace}/members/{developer}/remove"),
        "/keys/bulk".into(),
        "/keys/leaked".into(),
        format!("/keys/leaked/{key}"),
        format!("/keys/{key}/rename"),
        format!("/keys/{key}/deactivate"),
        format!("/keys/{key}/reactivate"),
        format!("/keys/{key}/archive"),
        format!("/keys/{key}/schedule-archive"),
        "/budgets".into(),
        "/budgets/remove".into(),
    ];

    for role in Role::ALL {
        let (_, session) = app.signed_in(role).await;
        for (path, permission) in &gets {
            let status = session.get(path).await.status().as_u16();
            let expected = if role.can(*permission) { 200 } else { 403 };
            assert_eq!(status, expected, "{role} GET {path}");
        }
        if !role.can(ManageOrganization) {
            let before = app.simulator.request_count();
            for path in &posts {
                let status = session
                    .post(
                        path,
                        &[("name", "x"), ("role", "user"), ("email", "x@example.com")],
                    )
                    .await
                    .status()
                    .as_u16();
                assert_eq!(status, 403, "{role} POST {path}");
            }
            // Refused before anything reached the Admin API.
            assert_eq!(
                app.simulator.request_count(),
                before,
                "{role}: refused posts made upstream calls"
            );
        }
    }
    let denied = app
        .audit_records(Filter {
            action: Some("access.denied".into()),
            ..Default::default()
        })
        .await;
    assert!(
        denied.len() >= 3 * posts.len(),
        "every refused change is audited ({} records)",
        denied.len()
    );
}
