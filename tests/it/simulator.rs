//! The Admin API simulator over real HTTP: contract rules from shared/admin-api.md.

use std::str::FromStr;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Datelike, Utc};
use orgkeeper::simulator::{
    start, FaultKind, FaultRule, Profile, RunningSimulator, SimulatorOptions,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const KEY: &str = "sk-ant-admin01-test-key";
const VERSION: &str = "2023-06-01";

struct Harness {
    sim: RunningSimulator,
    client: reqwest::Client,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn spawn(profile: Profile, seed: u64) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = start(listener, SimulatorOptions { profile, seed })
        .await
        .unwrap();
    Harness {
        sim,
        client: reqwest::Client::new(),
    }
}

async fn demo() -> Harness {
    spawn(Profile::Demo, 42).await
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/organizations/{path}", self.sim.base_url())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header("x-api-key", KEY)
            .header("anthropic-version", VERSION)
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.authed(self.client.get(self.url(path))))
            .await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.authed(self.client.post(self.url(path))).json(&body))
            .await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(self.authed(self.client.delete(self.url(path))))
            .await
    }

    async fn ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.body);
        r.body
    }

    /// Every item of an ID-cursor list, walking forward with `after_id`.
    async fn all(&self, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after
                .as_ref()
                .map(|a| format!("&after_id={a}"))
                .unwrap_or_default();
            let page = self.ok(&format!("{path}{sep}limit={limit}{cursor}")).await;
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            if !page["has_more"].as_bool().unwrap() {
                return out;
            }
            after = Some(page["last_id"].as_str().unwrap().to_string());
        }
    }
}

fn assert_error(r: &Reply, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.body["type"], "error", "{}", r.body);
    assert_eq!(r.body["error"]["type"], kind, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
    let header = r.headers["request-id"].to_str().unwrap();
    assert!(header.starts_with("req_011C"), "{header}");
    assert_eq!(r.body["request_id"], header);
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            i["id"]
                .as_str()
                .or(i["user_id"].as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn tagged(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix("_01"))
        .is_some_and(|r| r.len() == 22 && r.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn days_ago(n: i64) -> String {
    let d = Utc::now().date_naive() - chrono::Duration::days(n);
    format!("{d}T00:00:00Z")
}

// ----------------------------------------------------------------------------------------------
// Transport, auth, errors

#[tokio::test]
async fn me_returns_the_organization_with_a_uuid_and_a_request_id_header() {
    let h = demo().await;
    let r = h.get("me").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["type"], "organization");
    assert_eq!(r.body["name"], "Acme Robotics");
    assert_eq!(r.body["id"].as_str().unwrap().len(), 36);
    assert_eq!(r.body.as_object().unwrap().len(), 3);
    assert!(r.headers["request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_011C"));
}

#[tokio::test]
async fn a_missing_or_non_admin_key_gets_a_401_authentication_error_envelope() {
    let h = demo().await;
    let missing = h
        .send(
            h.client
                .get(h.url("users"))
                .header("anthropic-version", VERSION),
        )
        .await;
    let wrong = h
        .send(
            h.client
                .get(h.url("users"))
                .header("anthropic-version", VERSION)
                .header("x-api-key", "sk-ant-api03-workspace-key"),
        )
        .await;
    assert_error(&missing, 401, "authentication_error");
    assert_error(&wrong, 401, "authentication_error");
}

#[tokio::test]
async fn the_anthropic_version_header_is_required_and_checked() {
    let h = demo().await;
    let missing = h
        .send(h.client.get(h.url("me")).header("x-api-key", KEY))
        .await;
    let unknown = h
        .send(
            h.client
                .get(h.url("me"))
                .header("x-api-key", KEY)
                .header("anthropic-version", "2024-01-01"),
        )
        .await;
    let newer = h
        .send(
            h.client
                .get(h.url("me?beta=true"))
                .header("x-api-key", KEY)
                .header("anthropic-version", "2026-10-21"),
        )
        .await;
    assert_error(&missing, 400, "invalid_request_error");
    assert_error(&unknown, 400, "invalid_request_error");
    assert_eq!(newer.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_and_ids_get_a_404_not_found_envelope() {
    let h = demo().await;
    assert_error(&h.get("nope").await, 404, "not_found_error");
    assert_error(
        &h.get("users/user_01AAAAAAAAAAAAAAAAAAAAAA").await,
        404,
        "not_found_error",
    );
    assert_error(
        &h.get("workspaces/wrkspc_01nope").await,
        404,
        "not_found_error",
    );
    assert_error(
        &h.get("api_keys/apikey_01nope").await,
        404,
        "not_found_error",
    );
    assert_error(
        &h.get("invites/invite_01nope").await,
        404,
        "not_found_error",
    );
    let root = h
        .send(h.authed(h.client.get(format!("{}/v2/x", h.sim.base_url()))))
        .await;
    assert_error(&root, 404, "not_found_error");
}

#[tokio::test]
async fn a_malformed_or_unexpected_body_is_an_invalid_request() {
    let h = demo().await;
    let users = h.ok("users?roles[]=developer&limit=1").await;
    let id = users["data"][0]["id"].as_str().unwrap().to_string();
    let garbage = h
        .send(
            h.authed(h.client.post(h.url(&format!("users/{id}"))))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    let extra = h
        .post(
            &format!("users/{id}"),
            json!({"role": "user", "colour": "red"}),
        )
        .await;
    let missing = h.post(&format!("users/{id}"), json!({})).await;
    let bad_enum = h
        .post(&format!("users/{id}"), json!({"role": "superuser"}))
        .await;
    for r in [&garbage, &extra, &missing, &bad_enum] {
        assert_error(r, 400, "invalid_request_error");
    }
}

// ----------------------------------------------------------------------------------------------
// ID-cursor pagination

#[tokio::test]
async fn users_paginate_forward_and_backward_across_several_pages() {
    // Arrange
    let h = demo().await;
    let everything = h.ok("users?limit=1000").await;
    let all_ids = ids(everything["data"].as_array().unwrap());
    assert!(all_ids.len() >= 35, "{}", all_ids.len());
    assert!(!everything["has_more"].as_bool().unwrap());

    // Act: forward with after_id.
    let forward = ids(&h.all("users", 7).await);

    // Act: backward with before_id from the end.
    let mut backward: Vec<String> = Vec::new();
    let mut before = all_ids.last().cloned();
    let mut last_page = vec![all_ids.last().unwrap().clone()];
    loop {
        let page = h
            .ok(&format!(
                "users?limit=7&before_id={}",
                before.as_ref().unwrap()
            ))
            .await;
        let data = ids(page["data"].as_array().unwrap());
        assert_eq!(page["first_id"].as_str(), data.first().map(|s| s.as_str()));
        assert_eq!(page["last_id"].as_str(), data.last().map(|s| s.as_str()));
        let mut chunk = data.clone();
        chunk.append(&mut backward);
        backward = chunk;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        before = Some(page["first_id"].as_str().unwrap().to_string());
    }
    backward.append(&mut last_page);

    // Assert
    assert_eq!(forward, all_ids);
    assert_eq!(backward, all_ids);
    let first = h.ok("users").await;
    assert_eq!(
        first["data"].as_array().unwrap().len(),
        20,
        "default limit is 20"
    );
    assert!(first["has_more"].as_bool().unwrap());
    let added: Vec<DateTime<Utc>> = everything["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| time(&u["added_at"]))
        .collect();
    assert!(added.windows(2).all(|w| w[0] <= w[1]), "creation order");
}

#[tokio::test]
async fn limit_must_be_between_1_and_1000() {
    let h = demo().await;
    for bad in ["0", "1001", "-3", "many"] {
        for path in ["users", "invites", "workspaces", "api_keys"] {
            let r = h.get(&format!("{path}?limit={bad}")).await;
            assert_error(&r, 400, "invalid_request_error");
        }
    }
    assert_eq!(h.get("users?limit=1").await.status, StatusCode::OK);
    assert_eq!(h.get("api_keys?limit=1000").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_empty_page_has_null_first_and_last_ids() {
    let h = demo().await;
    let page = h.ok("users?email=nobody@nowhere.test").await;
    assert_eq!(page["data"], json!([]));
    assert_eq!(page["has_more"], false);
    assert_eq!(page["first_id"], Value::Null);
    assert_eq!(page["last_id"], Value::Null);
}

#[tokio::test]
async fn an_unknown_cursor_id_is_not_found() {
    let h = demo().await;
    let r = h.get("users?after_id=user_01XXXXXXXXXXXXXXXXXXXXXX").await;
    assert_error(&r, 404, "not_found_error");
}

// ----------------------------------------------------------------------------------------------
// Users

#[tokio::test]
async fn users_filter_by_exact_case_insensitive_email_and_by_roles() {
    let h = demo().await;
    let all = h.all("users", 100).await;
    let email = all[5]["email"].as_str().unwrap().to_string();

    let by_email = h.ok(&format!("users?email={}", email.to_uppercase())).await;
    let partial = h.ok(&format!("users?email={}", &email[1..])).await;
    let admins_and_billing = h.all("users?roles[]=admin&roles[]=billing", 100).await;
    let unbracketed = h.all("users?roles=admin", 100).await;
    let bad = h.get("users?roles[]=emperor").await;

    assert_eq!(
        ids(by_email["data"].as_array().unwrap()),
        vec![all[5]["id"].as_str().unwrap()]
    );
    assert_eq!(partial["data"], json!([]));
    assert!(admins_and_billing
        .iter()
        .all(|u| u["role"] == "admin" || u["role"] == "billing"));
    assert!(admins_and_billing.iter().any(|u| u["role"] == "billing"));
    assert!(unbracketed.len() >= 2 && unbracketed.iter().all(|u| u["role"] == "admin"));
    assert_error(&bad, 400, "invalid_request_error");
    for role in ["admin", "developer", "user", "billing", "claude_code_user"] {
        assert!(all.iter().any(|u| u["role"] == role), "{role} present");
    }
    for u in &all {
        assert!(tagged(u["id"].as_str().unwrap(), "user"), "{u}");
        assert_eq!(u["type"], "user");
    }
}

#[tokio::test]
async fn a_role_change_is_reflected_and_admin_is_never_assignable() {
    let h = demo().await;
    let dev = h.ok("users?roles[]=developer&limit=1").await["data"][0].clone();
    let id = dev["id"].as_str().unwrap();
    let admin = h.ok("users?roles[]=admin&limit=1").await["data"][0].clone();
    let admin_id = admin["id"].as_str().unwrap();

    let promote = h
        .post(&format!("users/{id}"), json!({"role": "admin"}))
        .await;
    let enterprise = h
        .post(&format!("users/{id}"), json!({"role": "owner"}))
        .await;
    let demote_admin = h
        .post(&format!("users/{admin_id}"), json!({"role": "user"}))
        .await;
    let change = h
        .post(&format!("users/{id}"), json!({"role": "billing"}))
        .await;
    let unknown = h
        .post(
            "users/user_01XXXXXXXXXXXXXXXXXXXXXX",
            json!({"role": "user"}),
        )
        .await;

    assert_error(&promote, 400, "invalid_request_error");
    assert_error(&enterprise, 400, "invalid_request_error");
    assert_error(&demote_admin, 400, "invalid_request_error");
    assert_error(&unknown, 404, "not_found_error");
    assert_eq!(change.status, StatusCode::OK);
    assert_eq!(change.body["role"], "billing");
    assert_eq!(h.ok(&format!("users/{id}")).await["role"], "billing");
}

#[tokio::test]
async fn removing_a_member_works_once_and_admins_cannot_be_removed() {
    let h = demo().await;
    let user = h.ok("users?roles[]=user&limit=1").await["data"][0].clone();
    let id = user["id"].as_str().unwrap();
    let admin_id = h.ok("users?roles[]=admin&limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let next_page_cursor = id.to_string();

    let removed = h.delete(&format!("users/{id}")).await;
    let again = h.delete(&format!("users/{id}")).await;
    let get = h.get(&format!("users/{id}")).await;
    let admin = h.delete(&format!("users/{admin_id}")).await;
    let after_deleted_cursor = h.get(&format!("users?after_id={next_page_cursor}")).await;

    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.body, json!({"id": id, "type": "user_deleted"}));
    assert_error(&again, 404, "not_found_error");
    assert_error(&get, 404, "not_found_error");
    assert_error(&admin, 400, "invalid_request_error");
    assert_eq!(
        after_deleted_cursor.status,
        StatusCode::OK,
        "a cursor naming a removed user still works"
    );
}

// ----------------------------------------------------------------------------------------------
// Invites

#[tokio::test]
async fn seeded_invites_cover_pending_soon_expiring_accepted_and_expired() {
    let h = demo().await;
    let invites = h.all("invites", 5).await;
    let now = Utc::now();
    let status = |s: &str| invites.iter().filter(|i| i["status"] == s).count();
    assert!(status("pending") > 0 && status("accepted") > 0 && status("expired") > 0);
    assert!(invites
        .iter()
        .any(|i| i["status"] == "pending"
            && time(&i["expires_at"]) - now < chrono::Duration::days(3)));
    for i in &invites {
        assert!(tagged(i["id"].as_str().unwrap(), "invite"));
        assert_eq!(
            time(&i["expires_at"]) - time(&i["invited_at"]),
            chrono::Duration::days(21)
        );
        assert_eq!(i["accepted_at"].is_null(), i["status"] != "accepted");
        assert_eq!(i["rbac_group_ids"], json!([]));
    }
    let pending = h
        .all("invites?statuses[]=pending&statuses[]=expired", 100)
        .await;
    assert_eq!(pending.len(), status("pending") + status("expired"));
    assert_error(
        &h.get("invites?statuses[]=deleted").await,
        400,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn an_invite_is_pending_for_21_days_then_expires() {
    // Arrange
    let h = demo().await;
    let created = h
        .post(
            "invites",
            json!({"email": "New.Hire@Example.com", "role": "developer"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["status"], "pending");
    assert_eq!(
        time(&created.body["expires_at"]) - time(&created.body["invited_at"]),
        chrono::Duration::days(21)
    );

    // Act
    h.sim.advance_clock(Duration::from_secs(20 * 86_400));
    let day_20 = h.ok(&format!("invites/{id}")).await;
    h.sim.advance_clock(Duration::from_secs(86_400 + 1));
    let day_21 = h.ok(&format!("invites/{id}")).await;
    let delete_expired = h.delete(&format!("invites/{id}")).await;
    let filtered = h
        .ok("invites?statuses[]=expired&email=new.hire@example.com")
        .await;

    // Assert
    assert_eq!(day_20["status"], "pending");
    assert_eq!(day_21["status"], "expired");
    assert_error(&delete_expired, 400, "invalid_request_error");
    assert_eq!(ids(filtered["data"].as_array().unwrap()), vec![id]);
}

#[tokio::test]
async fn invite_creation_refuses_admin_duplicates_members_and_bad_emails() {
    let h = demo().await;
    let member = h.ok("users?limit=1").await["data"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let first = h
        .post("invites", json!({"email": "x@y.dev", "role": "user"}))
        .await;
    assert_eq!(first.status, StatusCode::OK);

    let admin = h
        .post("invites", json!({"email": "a@y.dev", "role": "admin"}))
        .await;
    let duplicate = h
        .post("invites", json!({"email": "X@Y.dev", "role": "user"}))
        .await;
    let existing = h
        .post(
            "invites",
            json!({"email": member.to_uppercase(), "role": "user"}),
        )
        .await;
    let bad_email = h
        .post("invites", json!({"email": "not-an-email", "role": "user"}))
        .await;
    let no_role = h.post("invites", json!({"email": "b@y.dev"})).await;

    assert_error(&admin, 400, "invalid_request_error");
    assert_error(&duplicate, 400, "invalid_request_error");
    assert_eq!(
        duplicate.body["error"]["details"]["error_code"],
        "invite_already_exists"
    );
    assert_error(&existing, 400, "invalid_request_error");
    assert_eq!(
        existing.body["error"]["details"]["error_code"],
        "already_member"
    );
    assert_error(&bad_email, 400, "invalid_request_error");
    assert_error(&no_role, 400, "invalid_request_error");
}

#[tokio::test]
async fn only_pending_invites_can_be_deleted() {
    let h = demo().await;
    let created = h
        .post(
            "invites",
            json!({"email": "z@y.dev", "role": "claude_code_user"}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let accepted = h.ok("invites?statuses[]=accepted&limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let deleted = h.delete(&format!("invites/{id}")).await;
    let after = h.ok(&format!("invites/{id}")).await;
    let listed = h.all("invites", 100).await;
    let accepted_delete = h.delete(&format!("invites/{accepted}")).await;

    assert_eq!(deleted.body, json!({"id": id, "type": "invite_deleted"}));
    assert_eq!(after["status"], "deleted");
    assert!(
        !ids(&listed).contains(&id),
        "deleted invites are not listed"
    );
    assert_error(&accepted_delete, 400, "invalid_request_error");
}

// ----------------------------------------------------------------------------------------------
// Workspaces and members

#[tokio::test]
async fn workspace_lists_hide_the_default_and_archived_workspaces_unless_asked() {
    let h = demo().await;
    let plain = h.all("workspaces", 100).await;
    let with_default = h.all("workspaces?include_default=true", 100).await;
    let everything = h
        .all("workspaces?include_default=true&include_archived=true", 100)
        .await;

    assert_eq!(plain.len(), 4);
    assert_eq!(with_default.len(), 5);
    assert_eq!(everything.len(), 6);
    let default = &with_default[0];
    assert_eq!(default["name"], "Default Workspace");
    assert!(tagged(default["id"].as_str().unwrap(), "wrkspc"));
    assert!(everything.iter().any(|w| !w["archived_at"].is_null()));
    for w in &everything {
        assert_eq!(w["type"], "workspace");
        assert_eq!(w["data_residency"]["workspace_geo"], "us");
        assert!(w["compartment_id"].is_string() && w["tags"].is_object());
    }
    assert_error(
        &h.get("workspaces?include_archived=maybe").await,
        400,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn the_default_workspace_cannot_be_renamed_or_archived() {
    let h = demo().await;
    let default = h.ok("workspaces?include_default=true&limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rename = h
        .post(&format!("workspaces/{default}"), json!({"name": "Mine"}))
        .await;
    let archive = h
        .post(&format!("workspaces/{default}/archive"), json!({}))
        .await;
    assert_error(&rename, 400, "invalid_request_error");
    assert_error(&archive, 400, "invalid_request_error");
    assert_eq!(
        h.ok(&format!("workspaces/{default}")).await["name"],
        "Default Workspace"
    );
}

#[tokio::test]
async fn workspaces_are_created_updated_and_archived() {
    let h = demo().await;
    let created = h
        .post(
            "workspaces",
            json!({"name": "Evals", "display_color": "#AABBCC"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["archived_at"], Value::Null);
    assert_eq!(
        created.body["data_residency"]["allowed_inference_geos"],
        "unrestricted"
    );

    let bad_color = h
        .post("workspaces", json!({"name": "X", "display_color": "red"}))
        .await;
    let empty_name = h.post("workspaces", json!({"name": ""})).await;
    let renamed = h
        .post(
            &format!("workspaces/{id}"),
            json!({"name": "Evals v2", "display_color": "#000000"}),
        )
        .await;
    let archived = h.post(&format!("workspaces/{id}/archive"), json!({})).await;
    let listed = h.all("workspaces", 100).await;
    let after = h.ok(&format!("workspaces/{id}")).await;

    assert_error(&bad_color, 400, "invalid_request_error");
    assert_error(&empty_name, 400, "invalid_request_error");
    assert_eq!(renamed.body["name"], "Evals v2");
    assert_eq!(renamed.body["display_color"], "#000000");
    assert!(!archived.body["archived_at"].is_null());
    assert!(!ids(&listed).contains(&id));
    assert_eq!(after["name"], "Evals v2");
}

#[tokio::test]
async fn no_more_than_100_active_workspaces_can_exist() {
    let h = demo().await;
    let active = h.all("workspaces", 100).await.len();
    for i in active..100 {
        let r = h.post("workspaces", json!({"name": format!("W{i}")})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let over = h.post("workspaces", json!({"name": "One too many"})).await;
    assert_error(&over, 400, "invalid_request_error");
}

#[tokio::test]
async fn archiving_a_workspace_archives_its_keys() {
    let h = demo().await;
    let ws = h.all("workspaces", 100).await;
    let keys = h.all("api_keys", 1000).await;
    let (ws_id, _) = ws
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .map(|id| {
            let n = keys
                .iter()
                .filter(|k| k["scope"]["workspace_id"] == id.as_str())
                .count();
            (id, n)
        })
        .find(|(_, n)| *n > 0)
        .unwrap();
    h.post(&format!("workspaces/{ws_id}/archive"), json!({}))
        .await;
    let after = h.all(&format!("api_keys?workspace_id={ws_id}"), 1000).await;
    assert!(!after.is_empty() && after.iter().all(|k| k["status"] == "archived"));
}

#[tokio::test]
async fn workspace_members_follow_the_org_role_rules() {
    // Arrange
    let h = demo().await;
    let ws = h.ok("workspaces?limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = h.all(&format!("workspaces/{ws}/members"), 5).await;
    let admins = h.all("users?roles[]=admin", 10).await;
    let billing = h.all("users?roles[]=billing", 10).await;
    let users = h.all("users?roles[]=user", 100).await;
    let member_ids = ids(&members);
    let outsider = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .find(|id| !member_ids.contains(id))
        .unwrap();
    let admin_id = admins[0]["id"].as_str().unwrap();
    let billing_id = billing[0]["id"].as_str().unwrap();

    // Act
    let as_billing = h
        .post(
            &format!("workspaces/{ws}/members"),
            json!({"user_id": outsider, "workspace_role": "workspace_billing"}),
        )
        .await;
    let added = h
        .post(
            &format!("workspaces/{ws}/members"),
            json!({"user_id": outsider, "workspace_role": "workspace_developer"}),
        )
        .await;
    let again = h
        .post(
            &format!("workspaces/{ws}/members"),
            json!({"user_id": outsider, "workspace_role": "workspace_user"}),
        )
        .await;
    let updated = h
        .post(
            &format!("workspaces/{ws}/members/{outsider}"),
            json!({"workspace_role": "workspace_restricted_developer"}),
        )
        .await;
    let to_billing = h
        .post(
            &format!("workspaces/{ws}/members/{outsider}"),
            json!({"workspace_role": "workspace_billing"}),
        )
        .await;
    let admin_get = h.get(&format!("workspaces/{ws}/members/{admin_id}")).await;
    let admin_update = h
        .post(
            &format!("workspaces/{ws}/members/{admin_id}"),
            json!({"workspace_role": "workspace_user"}),
        )
        .await;
    let admin_remove = h
        .delete(&format!("workspaces/{ws}/members/{admin_id}"))
        .await;
    let billing_remove = h
        .delete(&format!("workspaces/{ws}/members/{billing_id}"))
        .await;
    let billing_downgrade = h
        .post(
            &format!("workspaces/{ws}/members/{billing_id}"),
            json!({"workspace_role": "workspace_user"}),
        )
        .await;
    let billing_upgrade = h
        .post(
            &format!("workspaces/{ws}/members/{billing_id}"),
            json!({"workspace_role": "workspace_admin"}),
        )
        .await;
    let removed = h
        .delete(&format!("workspaces/{ws}/members/{outsider}"))
        .await;
    let gone = h.get(&format!("workspaces/{ws}/members/{outsider}")).await;
    let unknown_ws = h
        .get("workspaces/wrkspc_01XXXXXXXXXXXXXXXXXXXXXX/members")
        .await;

    // Assert
    assert!(members
        .iter()
        .any(|m| m["user_id"] == admin_id && m["workspace_role"] == "workspace_admin"));
    assert!(members.iter().any(|m| m["user_id"] == billing_id));
    assert_error(&as_billing, 400, "invalid_request_error");
    assert_eq!(
        added.body,
        json!({"type": "workspace_member", "user_id": outsider, "workspace_id": ws, "workspace_role": "workspace_developer"})
    );
    assert_error(&again, 400, "invalid_request_error");
    assert_eq!(
        updated.body["workspace_role"],
        "workspace_restricted_developer"
    );
    assert_error(&to_billing, 400, "invalid_request_error");
    assert_eq!(admin_get.body["workspace_role"], "workspace_admin");
    assert_error(&admin_update, 400, "invalid_request_error");
    assert_error(&admin_remove, 400, "invalid_request_error");
    assert_error(&billing_remove, 400, "invalid_request_error");
    assert_error(&billing_downgrade, 400, "invalid_request_error");
    assert_eq!(billing_upgrade.body["workspace_role"], "workspace_admin");
    assert_eq!(
        removed.body,
        json!({"type": "workspace_member_deleted", "user_id": outsider, "workspace_id": ws})
    );
    assert_error(&gone, 404, "not_found_error");
    assert_error(&unknown_ws, 404, "not_found_error");
}

// ----------------------------------------------------------------------------------------------
// API keys

#[tokio::test]
async fn api_keys_carry_the_2_10_shape_and_the_legacy_workspace_id() {
    let h = demo().await;
    let keys = h.all("api_keys", 30).await;
    let users = ids(&h.all("users", 100).await);
    let default = h.ok("workspaces?include_default=true&limit=1").await["data"][0]["id"].clone();

    assert!(keys.len() >= 70, "{}", keys.len());
    for status in ["active", "inactive", "archived", "expired"] {
        assert!(keys.iter().any(|k| k["status"] == status), "{status}");
    }
    for k in &keys {
        assert!(tagged(k["id"].as_str().unwrap(), "apikey"));
        assert!(k["partial_key_hint"]
            .as_str()
            .unwrap()
            .starts_with("sk-ant-api03-"));
        match k["scope"]["type"].as_str().unwrap() {
            "organization" => {
                assert_eq!(k["workspace_id"], Value::Null);
                assert_eq!(k["principal"]["type"], "user_actor");
            }
            "workspace" => {
                let ws = &k["scope"]["workspace_id"];
                let legacy = if *ws == default {
                    Value::Null
                } else {
                    ws.clone()
                };
                assert_eq!(k["workspace_id"], legacy);
                // A legacy workspace key (nobody's), a person's or a service account's (§5.6).
                assert!(
                    k["principal"].is_null()
                        || k["principal"]["type"] == "user_actor"
                        || k["principal"]["type"] == "service_account_actor",
                    "{}",
                    k["principal"]
                );
            }
            other => panic!("scope {other}"),
        }
        if k["status"] == "expired" {
            assert!(time(&k["expires_at"]) <= Utc::now());
        }
    }
    assert!(keys.iter().any(|k| k["scope"]["workspace_id"] == default));
    assert!(keys.iter().any(|k| k["expires_at"].is_null()));
    assert!(keys
        .iter()
        .any(|k| !k["expires_at"].is_null() && k["status"] != "expired"));
    assert!(
        keys.iter().any(|k| k["created_by"]["id"]
            .as_str()
            .is_some_and(|c| !users.contains(&c.to_string()))),
        "some keys were created by people who left"
    );
}

#[tokio::test]
async fn api_keys_filter_by_status_workspace_and_creator() {
    let h = demo().await;
    let keys = h.all("api_keys", 1000).await;
    let creator = keys
        .iter()
        .find_map(|k| k["created_by"]["id"].as_str())
        .unwrap()
        .to_string();
    let ws = keys
        .iter()
        .find_map(|k| k["scope"]["workspace_id"].as_str())
        .unwrap()
        .to_string();

    let expired = h.all("api_keys?status=expired", 10).await;
    let by_ws = h.all(&format!("api_keys?workspace_id={ws}"), 10).await;
    let by_creator = h
        .all(&format!("api_keys?created_by_user_id={creator}"), 10)
        .await;
    let bad = h.get("api_keys?status=revoked").await;

    assert_eq!(
        expired.len(),
        keys.iter().filter(|k| k["status"] == "expired").count()
    );
    assert!(expired.iter().all(|k| k["status"] == "expired"));
    assert!(
        !by_ws.is_empty()
            && by_ws
                .iter()
                .all(|k| k["scope"]["workspace_id"] == ws.as_str())
    );
    assert!(
        !by_creator.is_empty()
            && by_creator
                .iter()
                .all(|k| k["created_by"]["id"] == creator.as_str())
    );
    assert_error(&bad, 400, "invalid_request_error");
}

#[tokio::test]
async fn api_keys_can_be_renamed_and_deactivated_but_not_set_expired() {
    let h = demo().await;
    let key = h.ok("api_keys?status=active&limit=1").await["data"][0].clone();
    let id = key["id"].as_str().unwrap();

    let renamed = h
        .post(
            &format!("api_keys/{id}"),
            json!({"name": "Renamed", "status": "inactive"}),
        )
        .await;
    let expired = h
        .post(&format!("api_keys/{id}"), json!({"status": "expired"}))
        .await;
    let bogus = h
        .post(&format!("api_keys/{id}"), json!({"status": "deleted"}))
        .await;
    let archived = h
        .post(&format!("api_keys/{id}"), json!({"status": "archived"}))
        .await;
    let revive = h
        .post(&format!("api_keys/{id}"), json!({"status": "active"}))
        .await;
    let unknown = h
        .post(
            "api_keys/apikey_01XXXXXXXXXXXXXXXXXXXXXX",
            json!({"name": "x"}),
        )
        .await;

    assert_eq!(renamed.body["name"], "Renamed");
    assert_eq!(renamed.body["status"], "inactive");
    assert_error(&expired, 400, "invalid_request_error");
    assert_error(&bogus, 400, "invalid_request_error");
    assert_eq!(archived.body["status"], "archived");
    assert_error(&revive, 400, "invalid_request_error");
    assert_error(&unknown, 404, "not_found_error");
    assert_eq!(h.ok(&format!("api_keys/{id}")).await["name"], "Renamed");
}

// ----------------------------------------------------------------------------------------------
// Usage and cost reports

#[tokio::test]
async fn usage_bucket_limits_depend_on_the_width() {
    let h = demo().await;
    let start = days_ago(40);
    let cases = [("1d", 31, 32), ("1h", 168, 169), ("1m", 1440, 1441)];
    for (width, max, over) in cases {
        let ok = h
            .get(&format!(
                "usage_report/messages?starting_at={start}&bucket_width={width}&limit={max}"
            ))
            .await;
        let bad = h
            .get(&format!(
                "usage_report/messages?starting_at={start}&bucket_width={width}&limit={over}"
            ))
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{width}");
        assert_eq!(ok.body["data"].as_array().unwrap().len(), max, "{width}");
        assert_error(&bad, 400, "invalid_request_error");
    }
    let default_day = h
        .ok(&format!("usage_report/messages?starting_at={start}"))
        .await;
    let default_hour = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&bucket_width=1h"
        ))
        .await;
    assert_eq!(default_day["data"].as_array().unwrap().len(), 7);
    assert_eq!(default_hour["data"].as_array().unwrap().len(), 24);
    assert_error(
        &h.get("usage_report/messages").await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &h.get(&format!(
            "usage_report/messages?starting_at={start}&bucket_width=1w"
        ))
        .await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &h.get(&format!(
            "usage_report/messages?starting_at={start}&group_by[]=colour"
        ))
        .await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &h.get("usage_report/messages?starting_at=yesterday").await,
        400,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn starting_at_snaps_down_to_the_bucket_and_ending_at_is_exclusive() {
    let h = demo().await;
    let day = Utc::now().date_naive() - chrono::Duration::days(3);
    let r = h.ok(&format!("usage_report/messages?starting_at={day}T13:47:12Z&ending_at={day}T16:00:00Z&bucket_width=1h")).await;
    let data = r["data"].as_array().unwrap();
    let starts: Vec<&str> = data
        .iter()
        .map(|b| b["starting_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        vec![
            format!("{day}T13:00:00Z"),
            format!("{day}T14:00:00Z"),
            format!("{day}T15:00:00Z")
        ]
    );
    assert_eq!(data[0]["ending_at"], format!("{day}T14:00:00Z"));
    assert_eq!(r["has_more"], false);
    assert_eq!(r["next_page"], Value::Null);
    let daily = h
        .ok(&format!(
            "usage_report/messages?starting_at={day}T13:47:12Z&limit=1"
        ))
        .await;
    assert_eq!(daily["data"][0]["starting_at"], format!("{day}T00:00:00Z"));
}

#[tokio::test]
async fn next_page_tokens_walk_the_same_buckets_as_one_big_page() {
    let h = demo().await;
    let start = days_ago(20);
    let end = days_ago(6);
    let whole = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&ending_at={end}&limit=31&group_by[]=model"
        ))
        .await;
    let mut walked = Vec::new();
    let mut page: Option<String> = None;
    let mut pages = 0;
    loop {
        let token = page
            .as_ref()
            .map(|p| format!("&page={p}"))
            .unwrap_or_default();
        let r = h.ok(&format!("usage_report/messages?starting_at={start}&ending_at={end}&limit=4&group_by[]=model{token}")).await;
        pages += 1;
        walked.extend(r["data"].as_array().unwrap().iter().cloned());
        if !r["has_more"].as_bool().unwrap() {
            assert_eq!(r["next_page"], Value::Null);
            break;
        }
        let next = r["next_page"].as_str().unwrap().to_string();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(next.strip_prefix("page_").unwrap())
            .unwrap();
        let last = r["data"].as_array().unwrap().last().unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            last["ending_at"].as_str().unwrap()
        );
        page = Some(next);
    }
    assert_eq!(pages, 4);
    assert_eq!(walked.len(), 14);
    assert_eq!(Value::Array(walked), whole["data"]);
}

#[tokio::test]
async fn ungrouped_dimensions_are_null_and_console_and_default_workspace_usage_are_null() {
    let h = demo().await;
    let start = days_ago(30);
    let plain = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&limit=30"
        ))
        .await;
    let grouped = h.ok(&format!("usage_report/messages?starting_at={start}&limit=30&group_by[]=api_key_id&group_by[]=workspace_id&group_by[]=model&group_by[]=service_tier&group_by[]=context_window")).await;

    let results: Vec<&Value> = plain["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(!results.is_empty());
    for r in &results {
        for dim in [
            "api_key_id",
            "workspace_id",
            "model",
            "service_tier",
            "context_window",
        ] {
            assert_eq!(r[dim], Value::Null, "{dim}");
        }
        assert!(r["cache_creation"]["ephemeral_5m_input_tokens"].is_u64());
        assert!(r["server_tool_use"]["web_search_requests"].is_u64());
    }
    let g: Vec<&Value> = grouped["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(
        g.iter().any(|r| r["api_key_id"].is_null()),
        "Console usage has no key"
    );
    assert!(
        g.iter().any(|r| r["workspace_id"].is_null()),
        "default workspace is null"
    );
    assert!(g.iter().any(|r| r["workspace_id"].is_string()));
    assert!(g.iter().all(|r| r["model"].is_string()
        && r["service_tier"].is_string()
        && r["context_window"].is_string()));
    assert!(g.iter().any(|r| r["context_window"] == "200k-1M"));
    assert!(g.iter().any(|r| r["service_tier"] == "batch"));
}

fn totals(buckets: &Value) -> Vec<[u64; 6]> {
    buckets["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let mut t = [0u64; 6];
            for r in b["results"].as_array().unwrap() {
                let f = [
                    &r["uncached_input_tokens"],
                    &r["cache_creation"]["ephemeral_1h_input_tokens"],
                    &r["cache_creation"]["ephemeral_5m_input_tokens"],
                    &r["cache_read_input_tokens"],
                    &r["output_tokens"],
                    &r["server_tool_use"]["web_search_requests"],
                ];
                for (s, v) in t.iter_mut().zip(f) {
                    *s += v.as_u64().unwrap();
                }
            }
            t
        })
        .collect()
}

#[tokio::test]
async fn a_day_equals_the_sum_of_its_hours_and_an_hour_the_sum_of_its_minutes() {
    let h = demo().await;
    let day = Utc::now().date_naive() - chrono::Duration::days(2);
    let today = Utc::now().date_naive();
    for group in ["", "&group_by[]=model&group_by[]=workspace_id"] {
        let d = totals(
            &h.ok(&format!(
                "usage_report/messages?starting_at={day}T00:00:00Z&limit=1{group}"
            ))
            .await,
        );
        let hours = totals(&h.ok(&format!("usage_report/messages?starting_at={day}T00:00:00Z&ending_at={today}T00:00:00Z&bucket_width=1h&limit=24{group}")).await);
        let hour_sum = hours.iter().fold([0u64; 6], |mut a, x| {
            for i in 0..6 {
                a[i] += x[i];
            }
            a
        });
        assert_eq!(d[0], hour_sum);
        assert!(d[0][0] > 0);
        let busy = hours.iter().position(|x| x[0] > 0).unwrap();
        let minutes = totals(&h.ok(&format!("usage_report/messages?starting_at={day}T{busy:02}:00:00Z&bucket_width=1m&limit=60{group}")).await);
        let minute_sum = minutes.iter().fold([0u64; 6], |mut a, x| {
            for i in 0..6 {
                a[i] += x[i];
            }
            a
        });
        assert_eq!(hours[busy], minute_sum);
    }
    // Today's day bucket is partial but still the sum of its hours; the future is empty.
    let d = totals(
        &h.ok(&format!(
            "usage_report/messages?starting_at={today}T00:00:00Z&limit=1"
        ))
        .await,
    );
    let hours = totals(
        &h.ok(&format!(
            "usage_report/messages?starting_at={today}T00:00:00Z&bucket_width=1h&limit=24"
        ))
        .await,
    );
    let hour_sum = hours.iter().fold([0u64; 6], |mut a, x| {
        for i in 0..6 {
            a[i] += x[i];
        }
        a
    });
    assert_eq!(d[0], hour_sum);
    let future = h
        .ok(&format!(
            "usage_report/messages?starting_at={}",
            (Utc::now() + chrono::Duration::days(3)).format("%Y-%m-%dT00:00:00Z")
        ))
        .await;
    assert_eq!(future["data"], json!([]));
    assert_eq!(future["has_more"], false);
}

#[tokio::test]
async fn usage_filters_narrow_the_results() {
    let h = demo().await;
    let start = days_ago(14);
    let grouped = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&limit=14&group_by[]=model"
        ))
        .await;
    let model = grouped["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .find_map(|r| r["model"].as_str())
        .unwrap()
        .to_string();
    let filtered = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&limit=14&group_by[]=model&models[]={model}"
        ))
        .await;
    let results: Vec<&Value> = filtered["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(!results.is_empty() && results.iter().all(|r| r["model"] == model.as_str()));
    assert_error(
        &h.get(&format!(
            "usage_report/messages?starting_at={start}&service_tiers[]=gold"
        ))
        .await,
        400,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn cost_amounts_are_decimal_cent_strings_consistent_across_groupings() {
    let h = demo().await;
    let start = days_ago(10);
    let plain = h
        .ok(&format!("cost_report?starting_at={start}&limit=7"))
        .await;
    let by_desc = h
        .ok(&format!(
            "cost_report?starting_at={start}&limit=7&group_by[]=description"
        ))
        .await;
    let by_ws = h.ok(&format!("cost_report?starting_at={start}&limit=7&group_by[]=workspace_id&group_by[]=description")).await;

    let sum = |v: &Value, day: usize| -> Decimal {
        v["data"][day]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["currency"], "USD");
                Decimal::from_str(r["amount"].as_str().unwrap()).unwrap()
            })
            .sum()
    };
    assert_eq!(plain["data"].as_array().unwrap().len(), 7);
    for day in 0..7 {
        assert_eq!(sum(&plain, day), sum(&by_desc, day), "day {day}");
        assert_eq!(sum(&plain, day), sum(&by_ws, day), "day {day}");
    }
    let rows: Vec<&Value> = by_desc["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(rows.iter().any(
        |r| r["description"] == "Claude Sonnet 4 Usage - Input Tokens"
            || r["description"]
                .as_str()
                .unwrap()
                .ends_with("Usage - Input Tokens")
    ));
    assert!(
        rows.iter()
            .any(|r| r["amount"].as_str().unwrap().contains('.')),
        "fractional cents"
    );
    assert!(rows.iter().all(|r| r["workspace_id"].is_null()));
    assert!(rows
        .iter()
        .filter(|r| r["cost_type"] == "tokens")
        .all(|r| r["token_type"].is_string() && r["model"].is_string()));
    assert!(
        rows.iter().all(|r| r["service_tier"] != "priority"),
        "priority tier is not in the cost report"
    );
    let ws_rows: Vec<&Value> = by_ws["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(
        ws_rows.iter().any(|r| r["workspace_id"].is_null())
            && ws_rows.iter().any(|r| r["workspace_id"].is_string())
    );
    let plain_rows: Vec<&Value> = plain["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .collect();
    assert!(plain_rows
        .iter()
        .all(|r| r["description"].is_null() && r["model"].is_null() && r["token_type"].is_null()));
}

#[tokio::test]
async fn the_cost_report_only_has_daily_buckets_up_to_31() {
    let h = demo().await;
    let start = days_ago(40);
    assert_error(
        &h.get(&format!("cost_report?starting_at={start}&bucket_width=1h"))
            .await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &h.get(&format!("cost_report?starting_at={start}&limit=32"))
            .await,
        400,
        "invalid_request_error",
    );
    assert_error(
        &h.get(&format!("cost_report?starting_at={start}&group_by[]=model"))
            .await,
        400,
        "invalid_request_error",
    );
    let r = h.ok(&format!("cost_report?starting_at={start}")).await;
    assert_eq!(r["data"].as_array().unwrap().len(), 7);
    assert!(r["next_page"].as_str().unwrap().starts_with("page_"));
}

#[tokio::test]
async fn claude_code_usage_is_reported_per_actor_for_past_days_only() {
    let h = demo().await;
    let day = Utc::now().date_naive() - chrono::Duration::days(2);
    let today = Utc::now().date_naive();
    let past = h
        .ok(&format!(
            "usage_report/claude_code?starting_at={day}&limit=1000"
        ))
        .await;
    let now = h
        .ok(&format!("usage_report/claude_code?starting_at={today}"))
        .await;
    let paged = h
        .ok(&format!(
            "usage_report/claude_code?starting_at={day}&limit=2"
        ))
        .await;
    let records = past["data"].as_array().unwrap();
    assert!(!records.is_empty());
    for r in records {
        assert_eq!(r["date"], format!("{day}T00:00:00Z"));
        assert!(["user_actor", "api_actor"].contains(&r["actor"]["type"].as_str().unwrap()));
        assert!(r["model_breakdown"][0]["estimated_cost"]["amount"].is_number());
    }
    assert_eq!(now["data"], json!([]));
    if records.len() > 2 {
        assert_eq!(paged["has_more"], true);
        let next = paged["next_page"].as_str().unwrap();
        let second = h
            .ok(&format!(
                "usage_report/claude_code?starting_at={day}&limit=2&page={next}"
            ))
            .await;
        assert_eq!(second["data"][0], records[2]);
    }
    assert_error(
        &h.get("usage_report/claude_code").await,
        400,
        "invalid_request_error",
    );
}

#[tokio::test]
async fn rate_limits_are_listed_for_the_org_and_per_workspace() {
    let h = demo().await;
    let org = h.ok("rate_limits").await;
    let sonnet = h.ok("rate_limits?model=claude-sonnet-4-20250514").await;
    let unknown = h.get("rate_limits?model=gpt-4").await;
    let paged = h.ok("rate_limits?limit=2").await;
    let ws = h.ok("workspaces?limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ws_limits = h
        .ok(&format!(
            "workspaces/{ws}/rate_limits?include_inherited=true"
        ))
        .await;

    assert!(org["data"].as_array().unwrap().len() >= 6);
    assert_eq!(org["next_page"], Value::Null);
    assert_eq!(sonnet["data"].as_array().unwrap().len(), 1);
    assert_eq!(sonnet["data"][0]["group"]["type"], "model_group");
    assert_error(&unknown, 404, "not_found_error");
    assert_eq!(paged["data"].as_array().unwrap().len(), 2);
    assert!(paged["next_page"].is_string());
    let entries = ws_limits["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e["type"] == "workspace_rate_limit" && e["workspace_id"] == ws.as_str()));
    assert_error(
        &h.get("workspaces/wrkspc_01XXXXXXXXXXXXXXXXXXXXXX/rate_limits")
            .await,
        404,
        "not_found_error",
    );
}

// ----------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn an_injected_429_with_retry_after_happens_once_then_requests_succeed() {
    let h = demo().await;
    h.sim.faults().inject(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/users".into()),
        kind: FaultKind::RateLimited {
            retry_after_secs: Some(2),
        },
        times: 1,
    });
    h.sim.reset_request_count();

    let other = h.get("me").await;
    let limited = h.get("users").await;
    let retried = h.get("users").await;

    assert_eq!(other.status, StatusCode::OK);
    assert_error(&limited, 429, "rate_limit_error");
    assert_eq!(limited.headers["retry-after"], "2");
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(h.sim.request_count(), 3);
}

#[tokio::test]
async fn malformed_overloaded_and_server_error_faults_are_served() {
    let h = demo().await;
    let faults = h.sim.faults();
    let rule = |kind| FaultRule {
        method: None,
        path_contains: None,
        kind,
        times: 1,
    };
    faults.inject(rule(FaultKind::Malformed));
    faults.inject(rule(FaultKind::Overloaded));
    faults.inject(rule(FaultKind::ServerError));

    let malformed = h
        .client
        .get(h.url("me"))
        .header("x-api-key", KEY)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::OK);
    assert!(malformed.headers().contains_key("request-id"));
    assert!(serde_json::from_str::<Value>(&malformed.text().await.unwrap()).is_err());
    assert_error(&h.get("me").await, 529, "overloaded_error");
    assert_error(&h.get("me").await, 500, "api_error");
    assert_eq!(h.get("me").await.status, StatusCode::OK);
}

#[tokio::test]
async fn latency_and_failure_rate_apply_until_cleared() {
    let h = demo().await;
    let faults = h.sim.faults();
    faults.set_latency(Duration::from_millis(200));
    let t = Instant::now();
    h.get("me").await;
    assert!(t.elapsed() >= Duration::from_millis(200));

    faults.set_failure_rate(1.0);
    assert_error(&h.get("me").await, 500, "api_error");
    faults.clear();
    let t = Instant::now();
    assert_eq!(h.get("me").await.status, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn a_hung_request_times_out_on_the_client_and_shutdown_still_returns() {
    let h = demo().await;
    h.sim.faults().inject(FaultRule {
        method: None,
        path_contains: Some("/me".into()),
        kind: FaultKind::Hang,
        times: 1,
    });
    let r = h
        .authed(h.client.get(h.url("me")))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    let t = Instant::now();
    h.sim.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(3));
}

// ----------------------------------------------------------------------------------------------
// Determinism and profiles

#[tokio::test]
async fn the_same_seed_gives_the_same_organization_and_usage() {
    let a = spawn(Profile::Demo, 7).await;
    let b = spawn(Profile::Demo, 7).await;
    let c = spawn(Profile::Demo, 8).await;
    let start = days_ago(5);
    let usage =
        format!("usage_report/messages?starting_at={start}&group_by[]=api_key_id&group_by[]=model");
    for path in [
        "me",
        "users?limit=1000",
        "api_keys?limit=1000",
        "invites?limit=1000",
        "workspaces?include_default=true&include_archived=true",
        usage.as_str(),
    ] {
        assert_eq!(a.ok(path).await, b.ok(path).await, "{path}");
    }
    assert_ne!(
        a.ok("users?limit=1000").await,
        c.ok("users?limit=1000").await
    );
}

#[tokio::test]
async fn the_large_profile_has_5000_members_100_workspaces_and_20000_keys() {
    let t = Instant::now();
    let h = spawn(Profile::Large, 42).await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "seeded in {:?}",
        t.elapsed()
    );
    let users = h.all("users", 1000).await;
    let workspaces = h
        .all(
            "workspaces?include_default=true&include_archived=true",
            1000,
        )
        .await;
    let keys = h.all("api_keys", 1000).await;
    assert_eq!(users.len(), 5000);
    assert_eq!(workspaces.len(), 100);
    assert_eq!(keys.len(), 20_000);
    let emails: std::collections::HashSet<&str> =
        users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), 5000, "emails are unique");
    let usage = h
        .ok(&format!(
            "usage_report/messages?starting_at={}&group_by[]=workspace_id",
            days_ago(3)
        ))
        .await;
    assert!(!usage["data"][0]["results"].as_array().unwrap().is_empty());
}

#[test]
fn profiles_parse_and_display() {
    assert_eq!("demo".parse::<Profile>().unwrap(), Profile::Demo);
    assert_eq!("large".parse::<Profile>().unwrap(), Profile::Large);
    assert!("huge".parse::<Profile>().is_err());
    assert_eq!(Profile::Large.to_string(), "large");
    let d = SimulatorOptions::default();
    assert_eq!((d.profile, d.seed), (Profile::Demo, 42));
}

// ----------------------------------------------------------------------------------------------
// Usage and cost analytics (§8.6.1)

const ANALYTICS_BETA: &str = "analytics-usage-cost-2026-08-24";

impl Harness {
    /// `GET /v1/organizations/analytics/{path}` with the beta header.
    async fn analytics(&self, path: &str) -> Reply {
        self.send(
            self.authed(self.client.get(self.url(&format!("analytics/{path}"))))
                .header("anthropic-beta", ANALYTICS_BETA),
        )
        .await
    }

    /// Every row of an analytics query, following `next_page`; checks the cursor envelope.
    async fn analytics_all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..200 {
            let cursor = page
                .as_ref()
                .map(|p| format!("&page={p}"))
                .unwrap_or_default();
            let r = self.analytics(&format!("{path}{cursor}")).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
            assert!(time(&r.body["data_refreshed_at"]) <= Utc::now());
            out.extend(r.body["data"].as_array().unwrap().iter().cloned());
            if r.body["has_more"] == false {
                assert!(r.body["next_page"].is_null());
                return out;
            }
            page = Some(r.body["next_page"].as_str().unwrap().to_owned());
        }
        panic!("{path} never ended");
    }
}

/// Last month, which the API has whole: `[first day, first day of this month)`.
fn last_month() -> (String, String) {
    let this = Utc::now().date_naive().with_day(1).unwrap();
    let last = (this - chrono::Duration::days(1)).with_day(1).unwrap();
    (format!("{last}T00:00:00Z"), format!("{this}T00:00:00Z"))
}

fn cents(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn analytics_need_their_beta_header_and_answer_403_where_not_enabled() {
    let h = demo().await;
    let start = days_ago(3);

    let without = h.get(&format!("analytics/usage?starting_at={start}")).await;
    let with = h.analytics(&format!("usage?starting_at={start}")).await;
    h.sim.set_analytics_access(false);
    let refused = h.analytics(&format!("cost?starting_at={start}")).await;
    h.sim.set_analytics_access(true);
    let again = h.analytics(&format!("cost?starting_at={start}")).await;

    assert_error(&without, 400, "invalid_request_error");
    assert!(without.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(ANALYTICS_BETA));
    assert_eq!(with.status, 200, "{}", with.body);
    // No grouping and no bucket: one row spanning the range, bounds rounded to the hour.
    let rows = with.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", with.body);
    assert_eq!(rows[0]["starting_at"], start.as_str());
    assert!(rows[0]["group"]
        .as_object()
        .unwrap()
        .values()
        .all(Value::is_null));
    let ending = time(&rows[0]["ending_at"]);
    assert_eq!(ending.timestamp() % 3600, 0);
    assert_error(&refused, 403, "permission_error");
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn analytics_bounds_and_parameters_are_checked() {
    let h = demo().await;
    let (start, end) = last_month();
    for (query, says) in [
        ("usage?group_by[]=actor".to_owned(), "starting_at"),
        (
            "usage?starting_at=2025-12-31T00:00:00Z".to_owned(),
            "2026-01-01",
        ),
        (format!("usage?starting_at={start}&time_bucket_width=1d"), "ending_at"),
        (
            format!("usage?starting_at={}&ending_at={end}", days_ago(40)),
            "31 days",
        ),
        (
            format!(
                "usage?starting_at={}&ending_at={}&time_bucket_width=1m",
                days_ago(3),
                days_ago(1)
            ),
            "24 hours",
        ),
        (
            format!("usage?starting_at={start}&group_by[]=actor&group_by[]=model&group_by[]=product&group_by[]=workspace_id&group_by[]=api_key_id&group_by[]=service_tier"),
            "at most 5",
        ),
        (format!("usage?starting_at={start}&group_by[]=cost_type"), "group_by"),
        (format!("cost?starting_at={start}&group_by[]=colour"), "group_by"),
        (format!("usage?starting_at={start}&limit=0"), "limit"),
        (format!("usage?starting_at={start}&limit=1001"), "limit"),
        (format!("cost?starting_at={start}&order_by=total_tokens"), "order_by"),
        (format!("usage?starting_at={start}&order=up"), "order"),
        (format!("usage?starting_at={start}&actor_types[]=robot"), "actor_types"),
        (format!("usage?starting_at={start}&exclude_deleted_users=true"), "actor"),
        (format!("usage?starting_at={start}&page=page_bm9wZQ"), "page"),
    ] {
        let r = h.analytics(&query).await;
        assert_error(&r, 400, "invalid_request_error");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    // cost_type and token_type do not count toward the five.
    let six = h
        .analytics(&format!("cost?starting_at={start}&ending_at={end}&group_by[]=actor&group_by[]=model&group_by[]=product&group_by[]=workspace_id&group_by[]=api_key_id&group_by[]=cost_type&group_by[]=token_type&limit=1"))
        .await;
    assert_eq!(six.status, 200, "{}", six.body);
    // A minute-bucketed day is allowed; ranges older than 365 days are not.
    let minutes = h
        .analytics(&format!(
            "usage?starting_at={}&ending_at={}&time_bucket_width=1m&limit=5",
            days_ago(2),
            days_ago(1)
        ))
        .await;
    assert_eq!(minutes.status, 200, "{}", minutes.body);
    h.sim.advance_clock(Duration::from_secs(400 * 86_400));
    let old = h.analytics(&format!("usage?starting_at={start}")).await;
    assert_error(&old, 400, "invalid_request_error");
    assert!(old.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("365 days"));
}

#[tokio::test]
async fn per_actor_analytics_add_up_to_the_cost_and_usage_reports() {
    let h = demo().await;
    let (start, end) = last_month();
    let cost_report = h
        .ok(&format!(
            "cost_report?starting_at={start}&ending_at={end}&limit=31&group_by[]=workspace_id"
        ))
        .await;
    let usage_report = h
        .ok(&format!(
            "usage_report/messages?starting_at={start}&ending_at={end}&bucket_width=1d&limit=31"
        ))
        .await;
    assert_eq!(cost_report["has_more"], false);
    let by_actor = h
        .analytics_all(&format!(
            "cost?starting_at={start}&ending_at={end}&group_by[]=actor&limit=1000"
        ))
        .await;
    let usage_by_actor = h
        .analytics_all(&format!(
            "usage?starting_at={start}&ending_at={end}&group_by[]=actor&group_by[]=actor_type&limit=1000"
        ))
        .await;
    let daily = h
        .analytics_all(&format!("cost?starting_at={start}&ending_at={end}&time_bucket_width=1d&group_by[]=workspace_id&limit=1000"))
        .await;

    let report_total: Decimal = cost_report["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .map(|r| cents(&r["amount"]))
        .sum();
    let actor_total: Decimal = by_actor.iter().map(|r| cents(&r["cost"]["amount"])).sum();
    assert!(report_total > Decimal::ZERO);
    assert_eq!(actor_total, report_total, "per-actor cost adds up exactly");
    let field = |v: &Value, f: &str| v[f].as_u64().unwrap();
    let report_output: u64 = usage_report["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .map(|r| field(r, "output_tokens"))
        .sum();
    let actor_output: u64 = usage_by_actor
        .iter()
        .map(|r| field(&r["usage"], "output_tokens"))
        .sum();
    assert_eq!(actor_output, report_output);
    // Members, service accounts and keys without a person all hold part of it.
    let mut kinds: Vec<&str> = usage_by_actor
        .iter()
        .map(|r| {
            let actor = &r["group"]["actor"];
            assert_eq!(actor["type"], r["group"]["actor_type"]);
            match actor["type"].as_str().unwrap() {
                "user_actor" => {
                    assert!(tagged(actor["user_id"].as_str().unwrap(), "user"));
                    assert!(actor["deleted"].is_boolean());
                }
                "service_account_actor" => {
                    assert!(tagged(
                        actor["service_account_id"].as_str().unwrap(),
                        "svac"
                    ))
                }
                "api_actor" => assert!(tagged(actor["api_key_id"].as_str().unwrap(), "apikey")),
                other => panic!("unexpected actor {other}"),
            }
            let u = &r["usage"];
            assert_eq!(
                field(u, "total_tokens"),
                field(u, "uncached_input_tokens")
                    + field(u, "cache_read_input_tokens")
                    + field(u, "output_tokens")
                    + field(&u["cache_creation"], "ephemeral_1h_input_tokens")
                    + field(&u["cache_creation"], "ephemeral_5m_input_tokens")
            );
            assert!(field(u, "requests") > 0);
            actor["type"].as_str().unwrap()
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["api_actor", "service_account_actor", "user_actor"]);
    // Day by day and workspace by workspace too (the cost report names the default workspace
    // null, analytics by its real id).
    let named: std::collections::BTreeSet<&str> = cost_report["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap())
        .filter_map(|r| r["workspace_id"].as_str())
        .collect();
    let default_ws = daily
        .iter()
        .filter_map(|d| d["group"]["workspace_id"].as_str())
        .find(|w| !named.contains(w))
        .expect("the default workspace has usage")
        .to_owned();
    for bucket in cost_report["data"].as_array().unwrap() {
        for r in bucket["results"].as_array().unwrap() {
            let ws = r["workspace_id"].as_str().unwrap_or(&default_ws);
            let analytics: Decimal = daily
                .iter()
                .filter(|d| {
                    d["starting_at"] == bucket["starting_at"] && d["group"]["workspace_id"] == ws
                })
                .map(|d| cents(&d["cost"]["amount"]))
                .sum();
            assert_eq!(
                analytics,
                cents(&r["amount"]),
                "{} {ws}",
                bucket["starting_at"]
            );
        }
    }
}

#[tokio::test]
async fn analytics_pages_walk_every_combination_once_and_cursors_are_bound_to_the_query() {
    let h = demo().await;
    let (start, end) = last_month();
    let query = format!("usage?starting_at={start}&ending_at={end}&time_bucket_width=1d&group_by[]=actor&group_by[]=workspace_id&group_by[]=api_key_id");
    let whole = h.analytics(&format!("{query}&limit=1000")).await;
    let paged = h.analytics_all(&format!("{query}&limit=37")).await;
    let first = h.analytics(&format!("{query}&limit=37")).await;
    let token = first.body["next_page"].as_str().unwrap();
    let other = h
        .analytics(&format!("{query}&limit=37&order=asc&page={token}"))
        .await;
    let by_time = h
        .analytics_all(&format!("{query}&limit=500&order_by=time&order=asc"))
        .await;

    assert_eq!(whole.body["has_more"], false);
    let rows = whole.body["data"].as_array().unwrap();
    assert!(rows.len() > 37 * 3, "{} rows", rows.len());
    assert_eq!(&paged, rows, "the pages are the single page cut in pieces");
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 37);
    assert_error(&other, 400, "invalid_request_error");
    let key = |r: &Value| {
        (
            r["starting_at"].as_str().unwrap().to_owned(),
            r["group"].to_string(),
        )
    };
    let mut seen: Vec<_> = rows.iter().map(key).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), rows.len(), "no combination twice");
    // Ranked by total tokens, largest first; by bucket when ordering by time.
    let totals: Vec<u64> = rows
        .iter()
        .map(|r| r["usage"]["total_tokens"].as_u64().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]));
    let starts: Vec<DateTime<Utc>> = by_time.iter().map(|r| time(&r["starting_at"])).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(by_time.len(), rows.len());
    for r in rows {
        assert_eq!(
            time(&r["ending_at"]) - time(&r["starting_at"]),
            chrono::Duration::days(1)
        );
        assert!(r["group"]["model"].is_null() && r["group"]["product"].is_null());
    }
}

#[tokio::test]
async fn cost_type_and_token_type_fan_out_rows_without_counting_toward_the_limit() {
    let h = demo().await;
    let (start, end) = last_month();
    let plain = h
        .analytics_all(&format!(
            "cost?starting_at={start}&ending_at={end}&group_by[]=actor&limit=1000"
        ))
        .await;
    let page = h
        .analytics(&format!(
            "cost?starting_at={start}&ending_at={end}&group_by[]=actor&group_by[]=cost_type&group_by[]=token_type&limit=3"
        ))
        .await;
    let fanned = h
        .analytics_all(&format!(
            "cost?starting_at={start}&ending_at={end}&group_by[]=actor&group_by[]=cost_type&group_by[]=token_type&limit=4"
        ))
        .await;

    let rows = page.body["data"].as_array().unwrap();
    let actors: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r["group"]["actor"].to_string())
        .collect();
    assert_eq!(actors.len(), 3, "three groups, however many rows");
    assert!(rows.len() > 3);
    for r in &fanned {
        assert!(r["cost"]["requests"].is_null(), "{r}");
        match r["group"]["cost_type"].as_str().unwrap() {
            "tokens" => assert!(r["group"]["token_type"].is_string()),
            "web_search" => assert!(r["group"]["token_type"].is_null()),
            other => panic!("unexpected cost_type {other}"),
        }
    }
    let sum =
        |rows: &[Value]| -> Decimal { rows.iter().map(|r| cents(&r["cost"]["amount"])).sum() };
    assert_eq!(sum(&fanned), sum(&plain));
    assert!(plain.iter().all(|r| r["cost"]["requests"].is_u64()
        && r["cost"]["currency"] == "USD"
        && r["cost"]["list_amount"].is_string()));
}

#[tokio::test]
async fn analytics_filters_narrow_by_workspace_key_and_actor() {
    let h = demo().await;
    let (start, end) = last_month();
    let base = format!("usage?starting_at={start}&ending_at={end}&limit=1000");
    let all = h
        .analytics_all(&format!(
            "{base}&group_by[]=actor&group_by[]=workspace_id&group_by[]=api_key_id"
        ))
        .await;
    let ws = all
        .iter()
        .find_map(|r| r["group"]["workspace_id"].as_str())
        .unwrap()
        .to_owned();
    let in_ws = h
        .analytics_all(&format!(
            "{base}&group_by[]=actor&group_by[]=workspace_id&workspace_ids[]={ws}"
        ))
        .await;
    let no_key = h
        .analytics_all(&format!(
            "{base}&group_by[]=api_key_id&group_by[]=actor&api_key_ids[]="
        ))
        .await;
    let services = h
        .analytics_all(&format!(
            "{base}&group_by[]=actor&actor_types[]=service_account_actor"
        ))
        .await;
    let someone = all
        .iter()
        .find(|r| r["group"]["actor"]["type"] == "user_actor")
        .unwrap()["group"]["actor"]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = h
        .analytics_all(&format!("{base}&group_by[]=actor&actor_ids[]={someone}"))
        .await;

    assert!(
        !in_ws.is_empty()
            && in_ws
                .iter()
                .all(|r| r["group"]["workspace_id"] == ws.as_str())
    );
    // An empty api_key_ids[] entry selects usage no key authenticated: the Console's, a member's.
    assert!(!no_key.is_empty());
    assert!(
        no_key
            .iter()
            .all(|r| r["group"]["api_key_id"].is_null()
                && r["group"]["actor"]["type"] == "user_actor")
    );
    assert!(!services.is_empty());
    assert!(services
        .iter()
        .all(|r| r["group"]["actor"]["type"] == "service_account_actor"));
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["group"]["actor"]["user_id"], someone.as_str());
    let tokens = |rows: &[Value]| -> u64 {
        rows.iter()
            .map(|r| r["usage"]["total_tokens"].as_u64().unwrap())
            .sum()
    };
    let expected: u64 = all
        .iter()
        .filter(|r| r["group"]["actor"]["user_id"] == someone.as_str())
        .map(|r| r["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(tokens(&theirs), expected);
}
