//! The authorization matrix, generated from the route table (`web::route_table`): every route
//! × every role (and no one signed in) gets what the table says, checked on the server. A
//! route cannot exist without a table entry, so a new route is covered the day it is added.

use std::collections::HashSet;

use crate::support::*;
use orgkeeper::anthropic::{ApiKeyStatus, InviteStatus, OrgRole};
use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;
use orgkeeper::web::{route_table, Access};

/// Real ids for each path parameter, read from the simulated organization.
struct Samples {
    workspace: String,
    key: String,
    user: String,
    invite: String,
    account: String,
}

impl Samples {
    async fn load(app: &TestApp) -> Samples {
        let api = app.state.org.api();
        let workspace = app.first_workspace_id().await;
        let keys = api.list_all_api_keys(&Default::default()).await.unwrap();
        let key = keys
            .iter()
            .find(|k| {
                k.status == ApiKeyStatus::Active && k.workspace_id() == Some(workspace.as_str())
            })
            .expect("an active key in the first workspace")
            .id
            .clone();
        let users = api.list_all_users(&Default::default()).await.unwrap();
        let user = users
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
        let account = app
            .create_account("sample-account", Role::Viewer, &[])
            .await;
        Samples {
            workspace,
            key,
            user,
            invite,
            account: account.id.to_string(),
        }
    }

    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/accounts/") {
            &self.account
        } else {
            &self.workspace
        };
        path.replace("{id}", id)
            .replace("{user_id}", &self.user)
            .replace("{key_id}", &self.key)
            .replace("{invite_id}", &self.invite)
            .replace("{seq}", "1")
            .replace("{run_id}", "999999")
            .replace("{schedule_id}", "999999")
            .replace("{*path}", "app.css")
            + match path {
                // The bulk preview needs a selection to preview.
                "/keys/bulk" => format!("?action=deactivate&key={}", self.key),
                _ => String::new(),
            }
            .as_str()
    }
}

/// GET routes whose sample object does not exist (a run or schedule that was never made):
/// allowed roles get a 404 page rather than the page itself.
const NO_SAMPLE: &[&str] = &["/members/{user_id}/offboard/runs/{run_id}"];

#[tokio::test]
async fn every_route_answers_every_role_as_the_route_table_says() {
    let app = spawn_app().await;
    let samples = Samples::load(&app).await;
    let table = route_table();

    let mut seen = HashSet::new();
    for spec in &table {
        assert!(
            seen.insert((spec.method, spec.path)),
            "{} {} is declared twice",
            spec.method,
            spec.path
        );
    }

    // No one signed in: every non-public page sends the person to sign in, and every
    // non-public form is refused.
    let anonymous = app.client();
    for spec in table.iter().filter(|s| s.access != Access::Public) {
        let path = samples.fill(spec.path);
        if spec.method == "GET" {
            let response = anonymous.get(&path).await;
            assert_eq!(response.status(), 303, "anonymous GET {path}");
            assert!(
                location(&response).starts_with("/login"),
                "anonymous GET {path}"
            );
        } else {
            let status = anonymous.post_raw(&path, &[]).await.status();
            assert_eq!(status, 403, "anonymous POST {path}");
        }
    }

    // Public pages answer without a session (setup only with its one-time link).
    for spec in table
        .iter()
        .filter(|s| s.access == Access::Public && s.method == "GET")
    {
        let path = samples.fill(spec.path);
        let status = anonymous.get(&path).await.status().as_u16();
        let expected = match spec.path {
            "/setup" => 403,
            // Single sign-on is not configured in this app.
            "/auth/oidc/start" | "/auth/oidc/callback" => 404,
            _ => 200,
        };
        assert_eq!(status, expected, "anonymous GET {path}");
    }

    for role in Role::ALL {
        let (_, session) = app.signed_in(role).await;
        let denied_before = denied_count(&app).await;
        let mut refused_posts = 0;
        for spec in table.iter().filter(|s| s.access != Access::Public) {
            let path = samples.fill(spec.path);
            let allowed = spec.access.allows(role);
            match (spec.method, allowed) {
                ("GET", true) => {
                    let status = session.get(&path).await.status().as_u16();
                    let expected = if NO_SAMPLE.contains(&spec.path) {
                        404
                    } else {
                        200
                    };
                    assert_eq!(status, expected, "{role} GET {path}");
                }
                ("GET", false) => {
                    let status = session.get(&path).await.status().as_u16();
                    assert_eq!(status, 403, "{role} GET {path}");
                }
                ("POST", false) => {
                    let upstream_before = app.simulator.request_count();
                    let status = session
                        .post(
                            &path,
                            &[("name", "x"), ("role", "user"), ("email", "x@example.com")],
                        )
                        .await
                        .status()
                        .as_u16();
                    assert_eq!(status, 403, "{role} POST {path}");
                    assert_eq!(
                        app.simulator.request_count(),
                        upstream_before,
                        "{role} POST {path}: a refused change reached the Admin API"
                    );
                    refused_posts += 1;
                }
                // Allowed changes are exercised, with their effects checked, by the area tests.
                _ => {}
            }
        }
        let denied = denied_count(&app).await - denied_before;
        assert!(
            denied >= refused_posts,
            "{role}: {refused_posts} refused changes but {denied} access.denied records"
        );
    }
}

#[tokio::test]
async fn the_route_table_covers_every_area_of_the_dashboard() {
    let table = route_table();
    let paths: HashSet<&str> = table.iter().map(|s| s.path).collect();
    // Routes an older hand-written list missed.
    for path in [
        "/claude-code",
        "/cost.csv",
        "/keys/bulk",
        "/keys/schedules/{schedule_id}/cancel",
        "/members/{user_id}/offboard/start",
        "/members/{user_id}/offboard/runs/{run_id}/resume",
        "/tokens",
        "/scim",
        "/scim/mappings",
    ] {
        assert!(paths.contains(path), "{path} is not in the route table");
    }
    // Every change needs more than being signed in, except one's own password, sign-out and
    // one's own API tokens (the token service lets only owners reach others').
    for spec in table.iter().filter(|s| s.method == "POST") {
        let self_service = matches!(
            spec.path,
            "/logout" | "/account/password" | "/tokens" | "/tokens/{id}/revoke"
        );
        let public = matches!(spec.path, "/login" | "/setup");
        assert!(
            self_service || public || matches!(spec.access, Access::Needs(_)),
            "POST {} needs a permission",
            spec.path
        );
    }
}

async fn denied_count(app: &TestApp) -> usize {
    app.audit_records(Filter {
        action: Some("access.denied".into()),
        ..Default::default()
    })
    .await
    .len()
}
