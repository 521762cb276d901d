//! Contract tests: the typed Admin API client against the in-process simulator, over real HTTP.
//!
//! Every test starts its own simulator on port 0 (Demo profile, seed 42), so tests are
//! independent and can run in parallel. Backoff is shortened through `ClientConfig` so the retry
//! tests stay fast; only the `retry-after: 1` test waits a real second.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use orgkeeper::anthropic::*;
use orgkeeper::simulator::{self, FaultKind, FaultRule, RunningSimulator, SimulatorOptions};
use rust_decimal::Decimal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-ant-admin01-contract-test-secret-value";

async fn start_sim() -> RunningSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    simulator::start(listener, SimulatorOptions::default())
        .await
        .unwrap()
}

fn test_config(base_url: &str, key: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new(base_url, AdminKey::new(key.to_owned()));
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.request_timeout = Duration::from_secs(10);
    cfg.base_backoff = Duration::from_millis(10);
    cfg.max_backoff = Duration::from_millis(40);
    cfg.max_retry_after = Duration::from_secs(3);
    cfg
}

async fn setup() -> (RunningSimulator, Client) {
    let sim = start_sim().await;
    let client = Client::new(test_config(&sim.base_url(), KEY)).unwrap();
    (sim, client)
}

fn client_with(sim: &RunningSimulator, tweak: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut cfg = test_config(&sim.base_url(), KEY);
    tweak(&mut cfg);
    Client::new(cfg).unwrap()
}

fn fault(method: &str, path: &str, kind: FaultKind, times: u32) -> FaultRule {
    FaultRule {
        method: Some(method.to_owned()),
        path_contains: Some(path.to_owned()),
        kind,
        times,
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_owned()).collect()
}

/// A non-admin user who is not a member of `workspace_id`.
async fn outsider(client: &Client, workspace_id: &str) -> User {
    let members: BTreeSet<String> = client
        .list_all_workspace_members(workspace_id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id.to_string())
        .collect();
    let filter = UserFilter {
        roles: vec![OrgRole::Developer, OrgRole::User],
        ..Default::default()
    };
    client
        .list_all_users(&filter)
        .await
        .unwrap()
        .into_iter()
        .find(|u| !members.contains(&u.id))
        .expect("a developer or user outside the workspace")
}

async fn some_workspace(client: &Client) -> Workspace {
    client
        .list_all_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("an active workspace")
}

// ---------------------------------------------------------------------------------------------
// Organization and users

#[tokio::test]
async fn the_organization_is_read_with_the_admin_key() {
    let (_sim, client) = setup().await;
    let org = client.get_organization().await.unwrap();
    assert!(!org.id.is_empty());
    assert!(!org.name.is_empty());
    assert_eq!(org.object_type, "organization");
}

#[tokio::test]
async fn all_users_are_collected_across_several_small_pages() {
    let (sim, client) = setup().await;
    let everyone = client
        .list_users(&UserFilter::default(), &PageParams::first(1000))
        .await
        .unwrap();
    assert!(!everyone.has_more);
    assert!(everyone.data.len() > 10, "the demo org has dozens of users");

    let small = client_with(&sim, |c| c.page_size = 7);
    sim.reset_request_count();
    let paged = small.list_all_users(&UserFilter::default()).await.unwrap();
    assert_eq!(ids(&paged, |u| &u.id), ids(&everyone.data, |u| &u.id));
    let expected_pages = everyone.data.len().div_ceil(7) as u64;
    assert_eq!(sim.request_count(), expected_pages);
}

#[tokio::test]
async fn single_user_pages_move_forward_with_after_id_and_back_with_before_id() {
    let (_sim, client) = setup().await;
    let f = UserFilter::default();
    let first = client.list_users(&f, &PageParams::first(5)).await.unwrap();
    assert_eq!(first.data.len(), 5);
    assert!(first.has_more);
    assert_eq!(first.first_id.as_deref(), Some(first.data[0].id.as_str()));
    assert_eq!(first.last_id.as_deref(), Some(first.data[4].id.as_str()));

    let second = client
        .list_users(&f, &PageParams::after(5, first.last_id.clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(second.data.len(), 5);
    assert!(second.data.iter().all(|u| !first.data.contains(u)));

    let back = client
        .list_users(&f, &PageParams::before(5, second.first_id.clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(ids(&back.data, |u| &u.id), ids(&first.data, |u| &u.id));
}

#[tokio::test]
async fn users_are_filtered_by_email_case_insensitively_and_by_roles() {
    let (_sim, client) = setup().await;
    let all = client.list_all_users(&UserFilter::default()).await.unwrap();
    let target = &all[3];

    let by_email = client
        .list_all_users(&UserFilter {
            email: Some(target.email.to_uppercase()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_email, vec![target.clone()]);

    let roles = vec![OrgRole::Developer, OrgRole::Billing];
    let by_role = client
        .list_all_users(&UserFilter {
            roles: roles.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let expected: Vec<&User> = all.iter().filter(|u| roles.contains(&u.role)).collect();
    assert!(!by_role.is_empty());
    assert_eq!(by_role.len(), expected.len());
    assert!(by_role.iter().all(|u| roles.contains(&u.role)));
}

#[tokio::test]
async fn a_user_is_read_given_a_new_role_and_removed() {
    let (_sim, client) = setup().await;
    let dev = client
        .list_all_users(&UserFilter {
            roles: vec![OrgRole::Developer],
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(client.get_user(&dev.id).await.unwrap(), dev);

    let updated = client
        .update_user_role(&dev.id, OrgRole::ClaudeCodeUser)
        .await
        .unwrap();
    assert_eq!(updated.role, OrgRole::ClaudeCodeUser);
    assert_eq!(
        client.get_user(&dev.id).await.unwrap().role,
        OrgRole::ClaudeCodeUser
    );

    let removed = client.remove_user(&dev.id).await.unwrap();
    assert_eq!(removed.id, dev.id);
    assert_eq!(removed.object_type, "user_deleted");

    let gone = client.get_user(&dev.id).await.unwrap_err();
    assert_eq!(gone.kind(), ApiErrorKind::Api);
    assert_eq!(gone.status(), Some(404));
    assert_eq!(gone.error_type(), Some("not_found_error"));
    assert!(gone.is_not_found());
    let rid = gone.request_id().expect("request id").to_owned();
    assert!(rid.starts_with("req_"), "{rid}");
    assert!(gone.user_message().contains(&rid));
}

#[tokio::test]
async fn assigning_the_admin_role_is_refused_once_with_a_plain_message() {
    let (sim, client) = setup().await;
    let user = client
        .list_all_users(&UserFilter {
            roles: vec![OrgRole::User],
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    sim.reset_request_count();
    let err = client
        .update_user_role(&user.id, OrgRole::Admin)
        .await
        .unwrap_err();
    assert_eq!(sim.request_count(), 1, "a 400 is never retried");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.error_type(), Some("invalid_request_error"));
    assert!(err.is_refusal());
    let msg = err.user_message();
    assert!(
        msg.starts_with("The Admin API refused the change: "),
        "{msg}"
    );
    assert!(msg.contains(err.request_id().unwrap()), "{msg}");
}

#[tokio::test]
async fn removing_an_organization_admin_is_refused() {
    let (_sim, client) = setup().await;
    let admin = client
        .list_all_users(&UserFilter {
            roles: vec![OrgRole::Admin],
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let err = client.remove_user(&admin.id).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(client.get_user(&admin.id).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Invites

#[tokio::test]
async fn an_invite_is_created_found_by_filters_read_and_deleted() {
    let (_sim, client) = setup().await;
    let created = client
        .create_invite(&CreateInvite {
            email: "New.Person@Example.com".into(),
            role: OrgRole::Developer,
            rbac_group_ids: vec![],
        })
        .await
        .unwrap();
    assert_eq!(created.status, InviteStatus::Pending);
    assert_eq!(created.role, OrgRole::Developer);
    assert_eq!(
        created.expires_at - created.invited_at,
        ChronoDuration::days(21)
    );

    let found = client
        .list_all_invites(&InviteFilter {
            email: Some("new.person@example.com".into()),
            statuses: vec![InviteStatus::Pending],
            roles: vec![OrgRole::Developer],
        })
        .await
        .unwrap();
    assert_eq!(ids(&found, |i| &i.id), vec![created.id.clone()]);
    assert_eq!(client.get_invite(&created.id).await.unwrap(), created);

    let deleted = client.delete_invite(&created.id).await.unwrap();
    assert_eq!(deleted.id, created.id);
    assert_eq!(deleted.object_type, "invite_deleted");
    assert_eq!(
        client.get_invite(&created.id).await.unwrap().status,
        InviteStatus::Deleted
    );
}

#[tokio::test]
async fn invites_are_listed_by_status_across_pages() {
    let (sim, client) = setup().await;
    let all = client
        .list_all_invites(&InviteFilter::default())
        .await
        .unwrap();
    assert!(all.len() > 3, "the demo org has several invites");
    let small = client_with(&sim, |c| c.page_size = 2);
    assert_eq!(
        small
            .list_all_invites(&InviteFilter::default())
            .await
            .unwrap(),
        all
    );
    for status in [
        InviteStatus::Pending,
        InviteStatus::Accepted,
        InviteStatus::Expired,
    ] {
        let filtered = small
            .list_all_invites(&InviteFilter {
                statuses: vec![status.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(filtered.iter().all(|i| i.status == status));
        assert_eq!(
            filtered.len(),
            all.iter().filter(|i| i.status == status).count()
        );
    }
    let two = client
        .list_invites(
            &InviteFilter {
                statuses: vec![InviteStatus::Pending, InviteStatus::Expired],
                ..Default::default()
            },
            &PageParams::first(1000),
        )
        .await
        .unwrap();
    assert!(two
        .data
        .iter()
        .all(|i| matches!(i.status, InviteStatus::Pending | InviteStatus::Expired)));
}

#[tokio::test]
async fn inviting_someone_as_admin_is_refused() {
    let (_sim, client) = setup().await;
    let err = client
        .create_invite(&CreateInvite {
            email: "boss@example.com".into(),
            role: OrgRole::Admin,
            rbac_group_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.error_type(), Some("invalid_request_error"));
}

// ---------------------------------------------------------------------------------------------
// Workspaces and members

#[tokio::test]
async fn workspaces_are_listed_with_and_without_archived_and_default_ones() {
    let (sim, client) = setup().await;
    let small = client_with(&sim, |c| c.page_size = 2);
    let active = small
        .list_all_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap();
    assert!(active.len() >= 3);
    assert!(active.iter().all(|w| !w.is_archived()));

    let with_archived = small
        .list_all_workspaces(&WorkspaceFilter {
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(with_archived.len() >= active.len());

    let with_default = small
        .list_all_workspaces(&WorkspaceFilter {
            include_default: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(with_default.len(), active.len() + 1);

    let one = client.get_workspace(&active[0].id).await.unwrap();
    assert_eq!(one, active[0]);
}

#[tokio::test]
async fn a_workspace_is_created_renamed_recoloured_and_archived() {
    let (_sim, client) = setup().await;
    let ws = client
        .create_workspace("Contract tests", Some("#123ABC"))
        .await
        .unwrap();
    assert_eq!(ws.name, "Contract tests");
    assert_eq!(ws.display_color.to_uppercase(), "#123ABC");
    assert!(!ws.is_archived());

    let renamed = client
        .update_workspace(&ws.id, Some("Contract tests 2"), None)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Contract tests 2");
    assert_eq!(renamed.display_color, ws.display_color);
    let recoloured = client
        .update_workspace(&ws.id, None, Some("#00FF00"))
        .await
        .unwrap();
    assert_eq!(recoloured.name, "Contract tests 2");
    assert_eq!(recoloured.display_color.to_uppercase(), "#00FF00");

    let archived = client.archive_workspace(&ws.id).await.unwrap();
    assert!(archived.is_archived());
    let active = client
        .list_all_workspaces(&WorkspaceFilter::default())
        .await
        .unwrap();
    assert!(active.iter().all(|w| w.id != ws.id));
    let all = client
        .list_all_workspaces(&WorkspaceFilter {
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.iter().any(|w| w.id == ws.id && w.is_archived()));
}

#[tokio::test]
async fn a_bad_workspace_colour_is_refused() {
    let (_sim, client) = setup().await;
    let err = client
        .create_workspace("Bad colour", Some("purple"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
}

#[tokio::test]
async fn workspace_members_are_listed_across_pages() {
    let (sim, client) = setup().await;
    let ws = some_workspace(&client).await;
    let one_page = client
        .list_workspace_members(&ws.id, &PageParams::first(1000))
        .await
        .unwrap();
    assert!(one_page.data.len() > 2);
    let small = client_with(&sim, |c| c.page_size = 2);
    let paged = small.list_all_workspace_members(&ws.id).await.unwrap();
    assert_eq!(paged, one_page.data);
    assert!(paged.iter().all(|m| *m.workspace_id == *ws.id));
}

#[tokio::test]
async fn a_workspace_member_is_added_read_updated_and_removed() {
    let (_sim, client) = setup().await;
    let ws = some_workspace(&client).await;
    let user = outsider(&client, &ws.id).await;

    let added = client
        .add_workspace_member(&ws.id, &user.id, WorkspaceRole::WorkspaceUser)
        .await
        .unwrap();
    assert_eq!(added.workspace_role, WorkspaceRole::WorkspaceUser);
    assert_eq!(
        client.get_workspace_member(&ws.id, &user.id).await.unwrap(),
        added
    );

    let updated = client
        .update_workspace_member(&ws.id, &user.id, WorkspaceRole::WorkspaceDeveloper)
        .await
        .unwrap();
    assert_eq!(updated.workspace_role, WorkspaceRole::WorkspaceDeveloper);

    let removed = client
        .remove_workspace_member(&ws.id, &user.id)
        .await
        .unwrap();
    assert_eq!(removed.user_id, user.id);
    assert_eq!(removed.workspace_id, ws.id);
    let err = client
        .get_workspace_member(&ws.id, &user.id)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn adding_a_member_as_workspace_billing_is_refused() {
    let (_sim, client) = setup().await;
    let ws = some_workspace(&client).await;
    let user = outsider(&client, &ws.id).await;
    let err = client
        .add_workspace_member(&ws.id, &user.id, WorkspaceRole::WorkspaceBilling)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
}

// ---------------------------------------------------------------------------------------------
// API keys

#[tokio::test]
async fn api_keys_are_listed_across_pages_and_by_every_filter() {
    let (sim, client) = setup().await;
    let all = client
        .list_api_keys(&ApiKeyFilter::default(), &PageParams::first(1000))
        .await
        .unwrap()
        .data;
    assert!(all.len() > 20);
    let small = client_with(&sim, |c| c.page_size = 9);
    assert_eq!(
        small
            .list_all_api_keys(&ApiKeyFilter::default())
            .await
            .unwrap(),
        all
    );

    let inactive = small
        .list_all_api_keys(&ApiKeyFilter {
            status: Some(ApiKeyStatus::Inactive),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(inactive.iter().all(|k| k.status == ApiKeyStatus::Inactive));
    assert_eq!(
        inactive.len(),
        all.iter()
            .filter(|k| k.status == ApiKeyStatus::Inactive)
            .count()
    );

    let ws_id = all
        .iter()
        .find_map(|k| k.workspace_id())
        .expect("a workspace key")
        .to_owned();
    let in_ws = small
        .list_all_api_keys(&ApiKeyFilter {
            workspace_id: Some(ws_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!in_ws.is_empty());
    assert!(in_ws
        .iter()
        .all(|k| k.workspace_id() == Some(ws_id.as_str())));

    let creator = all
        .iter()
        .find_map(|k| k.created_by.as_ref())
        .expect("a key with a creator")
        .id
        .to_string();
    let by_creator = small
        .list_all_api_keys(&ApiKeyFilter {
            created_by_user_id: Some(creator.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!by_creator.is_empty());
    assert!(by_creator
        .iter()
        .all(|k| k.created_by.as_ref().map(|c| &*c.id) == Some(creator.as_str())));
}

#[tokio::test]
async fn every_api_key_reports_its_workspace_from_scope() {
    let (_sim, client) = setup().await;
    let keys = client
        .list_all_api_keys(&ApiKeyFilter::default())
        .await
        .unwrap();
    for k in &keys {
        match &k.scope {
            Some(ApiKeyScope::Workspace { workspace_id }) => {
                assert_eq!(k.workspace_id(), Some(&**workspace_id))
            }
            Some(ApiKeyScope::Organization) => assert_eq!(k.workspace_id(), None),
            other => panic!("unexpected scope {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_api_key_is_renamed_and_deactivated_but_cannot_be_set_to_expired() {
    let (_sim, client) = setup().await;
    let key = client
        .list_all_api_keys(&ApiKeyFilter {
            status: Some(ApiKeyStatus::Active),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(client.get_api_key(&key.id).await.unwrap(), key);

    let renamed = client
        .update_api_key(
            &key.id,
            &UpdateApiKey {
                name: Some("Renamed by contract test".into()),
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Renamed by contract test");
    assert_eq!(renamed.status, ApiKeyStatus::Active);

    let inactive = client
        .update_api_key(
            &key.id,
            &UpdateApiKey {
                name: None,
                status: Some(ApiKeyStatus::Inactive),
            },
        )
        .await
        .unwrap();
    assert_eq!(inactive.status, ApiKeyStatus::Inactive);
    assert_eq!(inactive.name, "Renamed by contract test");

    let err = client
        .update_api_key(
            &key.id,
            &UpdateApiKey {
                name: None,
                status: Some(ApiKeyStatus::Expired),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
}

// ---------------------------------------------------------------------------------------------
// Reports

#[tokio::test]
async fn the_usage_report_is_followed_over_several_pages_with_groups_and_filters() {
    let (_sim, client) = setup().await;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let mut params = UsageReportParams::new(today - ChronoDuration::days(10));
    params.ending_at = Some(today);
    params.bucket_width = Some(BucketWidth::Day);
    params.limit = Some(3);
    params.group_by = vec![UsageGroupBy::Model, UsageGroupBy::WorkspaceId];

    let first = client.usage_report(&params).await.unwrap();
    assert_eq!(first.data.len(), 3);
    assert!(first.has_more);
    assert!(first.next_page.is_some());

    let all = client.all(&params).await.unwrap();
    assert_eq!(all.len(), 10);
    for (i, b) in all.iter().enumerate() {
        assert_eq!(
            b.starting_at,
            params.starting_at + ChronoDuration::days(i as i64)
        );
        assert_eq!(b.ending_at - b.starting_at, ChronoDuration::days(1));
    }
    let results: Vec<&UsageResult> = all.iter().flat_map(|b| &b.results).collect();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r.model.is_some()));
    assert!(results.iter().all(|r| r.api_key_id.is_none()));

    let model = results[0].model.clone().unwrap();
    let mut filtered = params.clone();
    filtered.models = vec![model.clone()];
    filtered.service_tiers = vec!["standard".into(), "batch".into()];
    filtered.context_window = vec!["0-200k".into()];
    let only = client.all(&filtered).await.unwrap();
    assert_eq!(only.len(), 10);
    assert!(only
        .iter()
        .flat_map(|b| &b.results)
        .all(|r| r.model.as_deref() == Some(model.as_str())));

    // Continue from a page token taken from the first page.
    let mut rest = params.clone();
    rest.page = first.next_page.clone();
    assert_eq!(client.all(&rest).await.unwrap(), all[3..]);
}

#[tokio::test]
async fn the_usage_report_in_hours_groups_by_every_dimension_including_speed() {
    let (_sim, client) = setup().await;
    let start = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        - ChronoDuration::days(2);
    let mut params = UsageReportParams::new(start);
    params.ending_at = Some(start + ChronoDuration::hours(6));
    params.bucket_width = Some(BucketWidth::Hour);
    params.limit = Some(4);
    params.group_by = vec![
        UsageGroupBy::ApiKeyId,
        UsageGroupBy::ServiceTier,
        UsageGroupBy::ContextWindow,
        UsageGroupBy::InferenceGeo,
        UsageGroupBy::Speed,
    ];
    let buckets = client.all(&params).await.unwrap();
    assert_eq!(buckets.len(), 6);
    let results: Vec<&UsageResult> = buckets.iter().flat_map(|b| &b.results).collect();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r.service_tier.is_some()
        && r.context_window.is_some()
        && r.speed.is_some()
        && r.model.is_none()));
    let mut speed_only = params.clone();
    speed_only.group_by = vec![];
    speed_only.speeds = vec!["standard".into()];
    speed_only.inference_geos = vec!["global".into(), "us".into(), "not_available".into()];
    client.all(&speed_only).await.unwrap();
}

#[tokio::test]
async fn cost_amounts_are_exact_decimal_cents_and_grouping_keeps_the_total() {
    let (_sim, client) = setup().await;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let mut params = CostReportParams::new(today - ChronoDuration::days(5));
    params.ending_at = Some(today);
    params.limit = Some(2);
    let plain = client.all(&params).await.unwrap();
    assert_eq!(plain.len(), 5);
    let first = client.cost_report(&params).await.unwrap();
    assert!(first.has_more && first.next_page.is_some());

    let mut grouped = params.clone();
    grouped.bucket_width = Some(BucketWidth::Day);
    grouped.group_by = vec![CostGroupBy::WorkspaceId, CostGroupBy::Description];
    let detailed = client.all(&grouped).await.unwrap();
    assert_eq!(detailed.len(), 5);
    let total =
        |b: &[CostBucket]| -> Decimal { b.iter().flat_map(|b| &b.results).map(|r| r.amount).sum() };
    assert!(total(&plain) > Decimal::ZERO);
    assert_eq!(total(&plain), total(&detailed));
    let line = detailed
        .iter()
        .flat_map(|b| &b.results)
        .next()
        .expect("a cost line");
    assert_eq!(line.currency, "USD");
    assert!(line.description.is_some());
}

#[tokio::test]
async fn the_claude_code_report_is_read_for_one_day_across_pages() {
    let (_sim, client) = setup().await;
    let day = Utc::now().date_naive() - ChronoDuration::days(3);
    let mut params = ClaudeCodeUsageParams::new(day);
    let one = client.claude_code_usage(&params).await.unwrap();
    params.limit = Some(1000);
    let everything = client.claude_code_usage(&params).await.unwrap();
    assert!(!everything.has_more);
    assert!(everything.data.len() >= one.data.len());
    assert!(
        everything.data.len() >= 3,
        "need several records to page over"
    );

    params.limit = Some(2);
    let paged = client.all(&params).await.unwrap();
    assert_eq!(paged, everything.data);
    for r in &paged {
        assert_eq!(r.date, day);
        for m in &r.model_breakdown {
            assert!(m.estimated_cost.amount >= Decimal::ZERO);
        }
    }
}

#[tokio::test]
async fn organization_rate_limits_are_listed_paged_and_filtered() {
    let (_sim, client) = setup().await;
    let all = client
        .list_org_rate_limits(&OrgRateLimitParams::default())
        .await
        .unwrap();
    assert!(all.next_page.is_none());
    assert!(all.data.len() > 2);
    let paged = client
        .all(&OrgRateLimitParams {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(paged, all.data);

    let models = client
        .all(&OrgRateLimitParams {
            group_type: Some("model_group".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(models.iter().all(|r| r.group.kind == "model_group"));
    let model = models[0].models.as_ref().unwrap()[0].clone();
    let one = client
        .all(&OrgRateLimitParams {
            model: Some(model.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert!(one[0].models.as_ref().unwrap().contains(&model));

    let err = client
        .list_org_rate_limits(&OrgRateLimitParams {
            model: Some("no-such-model".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn workspace_rate_limits_include_inherited_values_on_request() {
    let (_sim, client) = setup().await;
    let ws = some_workspace(&client).await;
    let overrides = client
        .all(&(ws.id.as_str(), &WorkspaceRateLimitParams::default()))
        .await
        .unwrap();
    let inherited = client
        .all(&(
            ws.id.as_str(),
            &WorkspaceRateLimitParams {
                include_inherited: true,
                limit: Some(2),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert!(inherited.len() >= overrides.len());
    assert!(!inherited.is_empty());
    assert!(inherited.iter().all(|r| r.workspace_id == ws.id));
    assert!(inherited.iter().flat_map(|r| &r.limits).any(|l| l
        .source
        .as_ref()
        .map(|s| s.kind.as_str())
        == Some("organization")));
    let page = client
        .list_workspace_rate_limits(
            &ws.id,
            &WorkspaceRateLimitParams {
                group_type: Some("batch".into()),
                include_inherited: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.data.iter().all(|r| r.group.kind == "batch"));
}

// ---------------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn a_key_that_is_not_an_admin_key_gets_an_authentication_error() {
    let sim = start_sim().await;
    let secret = "sk-ant-api03-NOT-AN-ADMIN-KEY-secret";
    let client = Client::new(test_config(&sim.base_url(), secret)).unwrap();
    sim.reset_request_count();
    let err = client.get_organization().await.unwrap_err();
    assert_eq!(sim.request_count(), 1);
    assert_eq!(err.kind(), ApiErrorKind::Api);
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.error_type(), Some("authentication_error"));
    assert!(err.request_id().is_some());
    for shown in [err.to_string(), format!("{err:?}"), err.user_message()] {
        assert!(!shown.contains("NOT-AN-ADMIN"), "{shown}");
    }
    assert!(err.user_message().contains("admin key"));
}

#[tokio::test]
async fn an_unknown_id_is_a_not_found_error() {
    let (_sim, client) = setup().await;
    let err = client
        .get_workspace("wrkspc_01DoesNotExist000000000")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.error_type(), Some("not_found_error"));
    assert!(err.user_message().contains("could not find"));
}

#[tokio::test]
async fn a_malformed_body_is_reported_as_malformed_and_not_retried() {
    let (sim, client) = setup().await;
    sim.faults()
        .inject(fault("GET", "/users", FaultKind::Malformed, 1));
    sim.reset_request_count();
    let err = client
        .list_users(&UserFilter::default(), &PageParams::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::MalformedResponse);
    assert_eq!(err.status(), Some(200));
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_hanging_request_hits_the_request_timeout() {
    let sim = start_sim().await;
    let client = client_with(&sim, |c| c.request_timeout = Duration::from_millis(300));
    sim.faults().inject(fault("GET", "/me", FaultKind::Hang, 5));
    sim.reset_request_count();
    let started = Instant::now();
    let err = client.get_organization().await.unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Timeout);
    assert_eq!(err.status(), None);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        sim.request_count(),
        1,
        "a timed-out request is not repeated"
    );
    assert!(err.user_message().contains("did not answer in time"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(test_config(&format!("http://{addr}"), KEY)).unwrap();
    let err = client.get_organization().await.unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::Transport);
    assert_eq!(err.status(), None);
    assert!(!err.to_string().contains(KEY));
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_then_succeeds() {
    let (sim, client) = setup().await;
    sim.faults().inject(fault(
        "GET",
        "/me",
        FaultKind::RateLimited {
            retry_after_secs: Some(1),
        },
        1,
    ));
    sim.reset_request_count();
    let started = Instant::now();
    client.get_organization().await.unwrap();
    assert_eq!(sim.request_count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_spend_cap_429_without_retry_after_still_backs_off_and_retries() {
    let (sim, client) = setup().await;
    sim.faults().inject(fault(
        "GET",
        "/users",
        FaultKind::RateLimited {
            retry_after_secs: None,
        },
        2,
    ));
    sim.reset_request_count();
    client.list_all_users(&UserFilter::default()).await.unwrap();
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn an_overloaded_read_is_retried() {
    let (sim, client) = setup().await;
    sim.faults()
        .inject(fault("GET", "/workspaces", FaultKind::Overloaded, 1));
    sim.reset_request_count();
    client
        .list_workspaces(&WorkspaceFilter::default(), &PageParams::default())
        .await
        .unwrap();
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn retries_stop_after_max_retries_and_return_the_last_error() {
    let (sim, client) = setup().await;
    sim.faults()
        .inject(fault("GET", "/me", FaultKind::ServerError, 10));
    sim.reset_request_count();
    let err = client.get_organization().await.unwrap_err();
    assert_eq!(sim.request_count(), 3, "one attempt plus two retries");
    assert_eq!(err.status(), Some(500));
    assert_eq!(err.error_type(), Some("api_error"));
    assert!(err.is_transient());

    let patient = client_with(&sim, |c| c.max_retries = 0);
    sim.reset_request_count();
    patient.get_organization().await.unwrap_err();
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn updates_that_set_a_value_are_retried() {
    let (sim, client) = setup().await;
    let user = client
        .list_all_users(&UserFilter {
            roles: vec![OrgRole::User],
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let ws = some_workspace(&client).await;
    let key = client
        .list_all_api_keys(&ApiKeyFilter {
            status: Some(ApiKeyStatus::Active),
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0);
    let member = client
        .list_all_workspace_members(&ws.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.workspace_role == WorkspaceRole::WorkspaceUser)
        .expect("a plain workspace user");
    let faults = sim.faults();
    let overload_next_post = || {
        sim.reset_request_count();
        faults.inject(fault("POST", "/", FaultKind::Overloaded, 1));
    };

    overload_next_post();
    client
        .update_user_role(&user.id, OrgRole::Developer)
        .await
        .unwrap();
    assert_eq!(sim.request_count(), 2, "user role update sent twice");

    overload_next_post();
    client
        .update_workspace(&ws.id, Some("Retried name"), None)
        .await
        .unwrap();
    assert_eq!(sim.request_count(), 2, "workspace update sent twice");

    overload_next_post();
    client
        .update_api_key(
            &key.id,
            &UpdateApiKey {
                name: Some("Retried key".into()),
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(sim.request_count(), 2, "API key update sent twice");

    overload_next_post();
    client
        .update_workspace_member(&ws.id, &member.user_id, WorkspaceRole::WorkspaceDeveloper)
        .await
        .unwrap();
    assert_eq!(sim.request_count(), 2, "member update sent twice");

    overload_next_post();
    client.archive_workspace(&ws.id).await.unwrap();
    assert_eq!(sim.request_count(), 2, "archive sent twice");
}

#[tokio::test]
async fn an_invite_creation_that_fails_with_529_is_not_repeated() {
    let (sim, client) = setup().await;
    sim.faults()
        .inject(fault("POST", "/invites", FaultKind::Overloaded, 1));
    sim.reset_request_count();
    let err = client
        .create_invite(&CreateInvite {
            email: "only.once@example.com".into(),
            role: OrgRole::User,
            rbac_group_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(sim.request_count(), 1);
    assert_eq!(err.status(), Some(529));
    assert_eq!(err.error_type(), Some("overloaded_error"));
    let msg = err.user_message();
    assert!(
        msg.starts_with("Anthropic's API is overloaded right now; nothing was changed"),
        "{msg}"
    );
    assert!(msg.contains(err.request_id().unwrap()));
}

#[tokio::test]
async fn creations_and_member_changes_are_never_repeated() {
    let (sim, client) = setup().await;
    let ws = some_workspace(&client).await;
    let user = outsider(&client, &ws.id).await;
    let member = client
        .list_all_workspace_members(&ws.id)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.workspace_role != WorkspaceRole::WorkspaceAdmin)
        .expect("a removable member");
    sim.faults().inject(FaultRule {
        method: None,
        path_contains: None,
        kind: FaultKind::RateLimited {
            retry_after_secs: Some(0),
        },
        times: 10,
    });
    sim.reset_request_count();
    assert_eq!(
        client
            .create_workspace("Once", None)
            .await
            .unwrap_err()
            .status(),
        Some(429)
    );
    assert_eq!(
        client
            .add_workspace_member(&ws.id, &user.id, WorkspaceRole::WorkspaceUser)
            .await
            .unwrap_err()
            .status(),
        Some(429)
    );
    assert_eq!(
        client
            .remove_workspace_member(&ws.id, &member.user_id)
            .await
            .unwrap_err()
            .status(),
        Some(429)
    );
    assert_eq!(
        client.delete_invite("invite_x").await.unwrap_err().status(),
        Some(429)
    );
    assert_eq!(
        client.remove_user(&user.id).await.unwrap_err().status(),
        Some(429)
    );
    assert_eq!(sim.request_count(), 5);
    sim.faults().clear();
}

#[tokio::test]
async fn a_list_longer_than_the_page_limit_stops_with_an_error() {
    let sim = start_sim().await;
    let client = client_with(&sim, |c| {
        c.page_size = 2;
        c.max_pages = 3;
    });
    let err = client
        .list_all_users(&UserFilter::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ApiErrorKind::PaginationLimit);
    assert_eq!(sim.request_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// Wire format

/// Answers one request with `body` and returns the raw request head.
async fn capture_one_request(body: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_capture\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(resp.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    (base, task)
}

#[tokio::test]
async fn every_request_carries_the_key_version_and_user_agent_headers() {
    let (base, task) =
        capture_one_request(r#"{"id":"org","type":"organization","name":"Acme"}"#).await;
    let client = Client::new(test_config(&base, KEY)).unwrap();
    client.get_organization().await.unwrap();
    let head = task.await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("get /v1/organizations/me http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("x-api-key: {}\r\n", KEY.to_ascii_lowercase())));
    assert!(head.contains("anthropic-version: 2023-06-01\r\n"));
    assert!(head.contains(&format!(
        "user-agent: orgkeeper/{} (+self-hosted admin dashboard)\r\n",
        env!("CARGO_PKG_VERSION")
    )));
}

#[tokio::test]
async fn array_parameters_go_on_the_wire_bracketed_and_repeated() {
    let (base, task) =
        capture_one_request(r#"{"data":[],"has_more":false,"next_page":null}"#).await;
    let client = Client::new(test_config(&base, KEY)).unwrap();
    let mut params = UsageReportParams::new("2025-08-01T00:00:00Z".parse().unwrap());
    params.group_by = vec![UsageGroupBy::Model, UsageGroupBy::WorkspaceId];
    params.workspace_ids = vec!["wrkspc_a".into(), "wrkspc_b".into()];
    client.usage_report(&params).await.unwrap();
    let head = task.await.unwrap();
    let request_line = head.lines().next().unwrap();
    assert!(
        request_line.contains("group_by[]=model&group_by[]=workspace_id"),
        "{request_line}"
    );
    assert!(
        request_line.contains("workspace_ids[]=wrkspc_a&workspace_ids[]=wrkspc_b"),
        "{request_line}"
    );
}

#[tokio::test]
async fn a_json_body_is_sent_with_its_content_type() {
    let (base, task) = capture_one_request(
        r#"{"type":"user","id":"user_1","email":"a@b.c","name":"A","role":"developer","added_at":"2025-01-01T00:00:00Z"}"#,
    )
    .await;
    let client = Client::new(test_config(&base, KEY)).unwrap();
    let user = client
        .update_user_role("user_1", OrgRole::Developer)
        .await
        .unwrap();
    assert_eq!(user.role, OrgRole::Developer);
    let head = task.await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("post /v1/organizations/users/user_1 "),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
}
