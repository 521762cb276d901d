//! SCIM 2.0 provisioning (issue 23), over real HTTP against the real server and the simulator
//! behind it: the requests Okta and Microsoft Entra ID send, replayed as they send them
//! (`application/scim+json`, capitalised ops, `"False"` as a string, path-less value objects),
//! and what each one does to the organization, the audit log and the SCIM resources.
//!
//! The contract is /work/scim-contract.md; the IdP request shapes are from Okta's and
//! Microsoft's SCIM documentation (see research notes A6/A7).

use orgkeeper::anthropic::{
    ApiKey, ApiKeyStatus, InviteFilter, InviteStatus, KeyKind, OrgRole, User, UserFilter,
    WorkspaceRole,
};
use orgkeeper::audit::{Filter, Outcome, Record};
use orgkeeper::auth::tokens::TokenKind;
use orgkeeper::auth::Role;
use orgkeeper::service::tokens::{self, NewToken};
use serde_json::{json, Value};

use crate::support::{
    captured_logs, spawn_app, spawn_app_configured, TestApp, ADMIN_KEY, TEST_CALLER,
};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";

const OKTA_AGENT: &str = "Okta SCIM Client 1.0.0";
const ENTRA_AGENT: &str = "Microsoft.Identity.Provisioning/1.0";

// ---------------------------------------------------------------------------------------------
// Helpers

/// A SCIM token, made through the service as the command line makes one.
async fn scim_token(app: &TestApp, name: &str) -> String {
    let created = tokens::create(
        &app.state,
        &TEST_CALLER,
        NewToken {
            name: name.to_owned(),
            kind: TokenKind::Scim,
            account: None,
            read_only: false,
            workspaces: vec![],
            expires_in_days: Some(365),
        },
    )
    .await
    .unwrap();
    let secret = created.secret.expose().to_owned();
    assert!(secret.starts_with("orgk_scim_"), "{secret}");
    secret
}

/// One answer: status, headers that matter, the body as text and as JSON (Null if none).
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    content_type: String,
    text: String,
    body: Value,
}

/// An identity provider talking to `/scim/v2` with one bearer token.
struct Idp<'a> {
    app: &'a TestApp,
    token: Option<String>,
    agent: &'static str,
    http: reqwest::Client,
}

impl<'a> Idp<'a> {
    async fn new(app: &'a TestApp, name: &str, agent: &'static str) -> Idp<'a> {
        let token = scim_token(app, name).await;
        Idp::with_token(app, Some(token), agent)
    }

    fn with_token(app: &'a TestApp, token: Option<String>, agent: &'static str) -> Idp<'a> {
        Idp {
            app,
            token,
            agent,
            http: reqwest::Client::new(),
        }
    }

    /// `path` is below `/scim/v2` and carries its query string already encoded.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .http
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .header("accept", SCIM_JSON)
            .header("user-agent", self.agent);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", SCIM_JSON)
                .body(serde_json::to_vec(body).unwrap());
        }
        answer(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
    async fn patch(&self, path: &str, operations: Value) -> Answer {
        let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
        self.send(reqwest::Method::PATCH, path, Some(&body)).await
    }
    async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// `GET /Users?filter=…` (encoded here) with Okta's paging parameters.
    async fn filter_users(&self, filter: &str) -> Answer {
        self.get(&format!(
            "/Users?filter={}&startIndex=1&count=100",
            encode(filter)
        ))
        .await
    }

    /// POST /Users, asserting 201; returns the resource.
    async fn create_user(&self, body: &Value) -> Value {
        let created = self.post("/Users", body).await;
        assert_eq!(created.status, 201, "POST /Users {body}: {created:?}");
        assert_resource(&created, USER, "User");
        created.body
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let location = header("location");
    let content_type = header("content-type").unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(!text.contains(ADMIN_KEY), "the admin key leaked: {text}");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        content_type,
        text,
        body,
    }
}

/// Percent-encodes everything but the unreserved characters (as Okta encodes its filters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A SCIM error body with this status (a string) and, if given, this scimType.
#[track_caller]
fn assert_scim_error(answer: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer.content_type.starts_with(SCIM_JSON),
        "SCIM errors are application/scim+json: {answer:?}"
    );
    assert_eq!(answer.body["schemas"], json!([ERROR]), "{answer:?}");
    assert_eq!(
        answer.body["status"],
        json!(status.to_string()),
        "status is a string: {answer:?}"
    );
    if let Some(scim_type) = scim_type {
        assert_eq!(answer.body["scimType"], scim_type, "{answer:?}");
    }
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "an error says what went wrong: {answer:?}"
    );
}

/// A 200/201 resource of this schema and resourceType, with an id and its location.
#[track_caller]
fn assert_resource(answer: &Answer, schema: &str, resource_type: &str) {
    assert!(
        answer.content_type.starts_with(SCIM_JSON),
        "answers are application/scim+json: {answer:?}"
    );
    let body = &answer.body;
    assert!(
        body["schemas"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s == schema)),
        "{answer:?}"
    );
    let id = body["id"].as_str().expect("an id");
    assert!(!id.is_empty());
    assert_eq!(body["meta"]["resourceType"], resource_type, "{answer:?}");
    let endpoint = if resource_type == "User" {
        "Users"
    } else {
        "Groups"
    };
    assert!(
        body["meta"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/scim/v2/{endpoint}/{id}"))),
        "{answer:?}"
    );
    if answer.status == 201 {
        assert_eq!(
            answer.location.as_deref(),
            body["meta"]["location"].as_str(),
            "201 carries a Location header equal to meta.location"
        );
    }
}

/// A ListResponse's ids, asserting its counters are integers and consistent.
#[track_caller]
fn list_ids(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.content_type.starts_with(SCIM_JSON), "{answer:?}");
    let body = &answer.body;
    assert_eq!(body["schemas"], json!([LIST]), "{answer:?}");
    assert!(body["totalResults"].is_u64(), "{answer:?}");
    assert!(body["startIndex"].is_u64(), "{answer:?}");
    assert!(body["itemsPerPage"].is_u64(), "{answer:?}");
    let resources = body["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        body["itemsPerPage"].as_u64().unwrap(),
        resources.len() as u64,
        "{answer:?}"
    );
    resources
        .iter()
        .map(|r| {
            r["id"]
                .as_str()
                .expect("each resource has an id")
                .to_owned()
        })
        .collect()
}

fn total(answer: &Answer) -> u64 {
    answer.body["totalResults"].as_u64().unwrap()
}

/// Okta's create body (developer.okta.com SCIM 2.0 reference), for this address.
fn okta_user(email: &str, given: &str, family: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": email,
        "name": { "givenName": given, "familyName": family },
        "emails": [{ "primary": true, "value": email, "type": "work" }],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

/// Entra ID's create body (Microsoft's SCIM provisioning guide): the enterprise extension
/// listed with no data, read-only `meta`, `roles: []`.
fn entra_user(user_name: &str, email: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "emails": [{ "primary": true, "type": "work", "value": email }],
        "meta": { "resourceType": "User" },
        "name": { "formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName" },
        "roles": []
    })
}

async fn records(app: &TestApp, action: &str) -> Vec<Record> {
    app.audit_records(Filter {
        action: Some(action.into()),
        ..Default::default()
    })
    .await
}

/// The successful records of `action` made by this SCIM client.
async fn ok_records_by(app: &TestApp, action: &str, actor: &str) -> Vec<Record> {
    records(app, action)
        .await
        .into_iter()
        .filter(|r| r.outcome == Outcome::Ok && r.actor_name == actor)
        .collect()
}

/// Pending invites for this address, read from the Admin API (the simulator), not the model.
async fn pending_invites(app: &TestApp, email: &str) -> Vec<orgkeeper::anthropic::Invite> {
    app.state
        .org
        .api()
        .list_all_invites(&InviteFilter {
            email: Some(email.to_owned()),
            statuses: vec![InviteStatus::Pending],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(email))
        .collect()
}

async fn upstream_users(app: &TestApp) -> Vec<User> {
    app.state
        .org
        .api()
        .list_all_users(&UserFilter::default())
        .await
        .unwrap()
}

async fn upstream_keys(app: &TestApp) -> Vec<ApiKey> {
    app.state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap()
}

/// A member (role user or developer) who created live workspace keys, with those keys.
async fn member_with_workspace_keys(app: &TestApp) -> (User, Vec<ApiKey>) {
    let keys = upstream_keys(app).await;
    let snapshot = app.state.org.snapshot();
    let live_workspace = |id: &str| {
        snapshot
            .workspaces
            .iter()
            .any(|w| w.id == id && !w.is_archived())
    };
    upstream_users(app)
        .await
        .into_iter()
        .filter(|u| matches!(u.role, OrgRole::User | OrgRole::Developer))
        .find_map(|u| {
            let own: Vec<ApiKey> = keys
                .iter()
                .filter(|k| {
                    k.status == ApiKeyStatus::Active
                        && k.kind() == KeyKind::Workspace
                        && k.workspace_id().is_some_and(live_workspace)
                        && k.created_by.as_ref().is_some_and(|c| *c.id == *u.id)
                })
                .cloned()
                .collect();
            (!own.is_empty()).then_some((u, own))
        })
        .expect("the demo organization has a user/developer who created a live workspace key")
}

/// The database file and its write-ahead log, as bytes (for "never stored" checks).
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["orgkeeper.db", "orgkeeper.db-wal"] {
        if let Ok(b) = std::fs::read(app.dir.path().join(name)) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Okta

#[tokio::test]
async fn okta_checks_creates_finds_pages_deactivates_and_reactivates_a_user() {
    let app = spawn_app().await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let email = "test.user@okta.local";

    // The existence check Okta makes before a create, exactly as it sends it.
    let check = okta
        .get("/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100")
        .await;
    assert_eq!(list_ids(&check), Vec::<String>::new());
    assert_eq!(total(&check), 0);
    assert_eq!(check.body["startIndex"], 1);

    // The create, with the password and read-only groups Okta sends.
    let created = okta
        .create_user(&okta_user(email, "Test", "User", "00ujl29u0le5T6Aj10h7"))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], email);
    assert_eq!(created["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(created["name"]["givenName"], "Test");
    assert_eq!(created["name"]["familyName"], "User");
    assert_eq!(created["emails"][0]["value"], email);
    assert_eq!(created["active"], true);
    assert!(created.get("password").is_none(), "{created}");

    // The organization has an invite for that address with the default role.
    let invites = pending_invites(&app, email).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0].role, OrgRole::User);
    let made = ok_records_by(&app, "invite.created", "SCIM (okta)").await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].actor_role.as_deref(), Some("scim"));
    assert!(
        made[0].details.to_string().contains(email),
        "{:?}",
        made[0].details
    );
    assert!(!records(&app, "scim.user_provisioned").await.is_empty());

    // The password is ignored: never stored, logged or recorded.
    assert!(!contains_bytes(&database_bytes(&app), "1mz050nq"));
    assert!(!String::from_utf8_lossy(&captured_logs().lock().unwrap()).contains("1mz050nq"));
    for r in app.audit_records(Filter::default()).await {
        assert!(!r.details.to_string().contains("1mz050nq"), "{r:?}");
    }

    // The same user again: 409 uniqueness, and no second invite.
    let again = okta
        .post(
            "/Users",
            &okta_user(email, "Test", "User", "00ujl29u0le5T6Aj10h7"),
        )
        .await;
    assert_scim_error(&again, 409, Some("uniqueness"));
    assert_eq!(pending_invites(&app, email).await.len(), 1);

    // userName matching is case-insensitive (Okta's Runscope spec test).
    let found = okta
        .filter_users("userName eq \"TEST.USER@OKTA.LOCAL\"")
        .await;
    assert_eq!(list_ids(&found), vec![id.clone()]);
    assert_eq!(total(&found), 1);

    // An unknown id: 404 with the Error schema and "404" as a string.
    let unknown = okta.get("/Users/010101001010101011001010101011").await;
    assert_scim_error(&unknown, 404, None);

    // Paging: integers, and the same order whatever the page size.
    let second = okta
        .create_user(&okta_user(
            "page.one@okta.local",
            "Page",
            "One",
            "00upage0000000000001",
        ))
        .await;
    let third = okta
        .create_user(&okta_user(
            "page.two@okta.local",
            "Page",
            "Two",
            "00upage0000000000002",
        ))
        .await;
    let all = okta.get("/Users?startIndex=1&count=100").await;
    let everyone = list_ids(&all);
    let n = total(&all);
    assert_eq!(n, everyone.len() as u64, "fewer than 100: one page");
    let at = |id: &str| everyone.iter().position(|e| e == id).expect(id);
    let (a, b, c) = (
        at(&id),
        at(second["id"].as_str().unwrap()),
        at(third["id"].as_str().unwrap()),
    );
    assert!(a < b && b < c, "creation order: {everyone:?}");
    let mut paged = Vec::new();
    let mut start = 1;
    while start <= n {
        let page = okta
            .get(&format!("/Users?startIndex={start}&count=2"))
            .await;
        let ids = list_ids(&page);
        assert_eq!(page.body["startIndex"], start, "{page:?}");
        assert_eq!(total(&page), n, "{page:?}");
        assert!(!ids.is_empty() && ids.len() <= 2, "{page:?}");
        start += ids.len() as u64;
        paged.extend(ids);
    }
    assert_eq!(paged, everyone, "pages of 2 list the same users in order");
    let page = okta.get("/Users?count=1&startIndex=1").await;
    assert_eq!(list_ids(&page), everyone[..1].to_vec());
    let listed = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["name"]["familyName"], "User");
    assert_eq!(listed["emails"][0]["value"], email);
    assert_eq!(listed["active"], true);

    // Deactivation as Okta sends it: path-less replace. The invite is deleted; the user stays.
    let deactivated = okta
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{deactivated:?}");
    assert_resource(&deactivated, USER, "User");
    assert_eq!(deactivated.body["active"], false);
    assert!(pending_invites(&app, email).await.is_empty());
    let deleted = ok_records_by(&app, "invite.deleted", "SCIM (okta)").await;
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let read = okta.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["active"], false);
    assert_eq!(read.body["userName"], email);
    assert!(!records(&app, "scim.user_deprovisioned").await.is_empty());

    // Reactivation: invited again, with the same role.
    let reactivated = okta
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": true } }]),
        )
        .await;
    assert_eq!(reactivated.status, 200, "{reactivated:?}");
    assert_eq!(reactivated.body["active"], true);
    let invites = pending_invites(&app, email).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0].role, OrgRole::User);
    assert_eq!(
        ok_records_by(&app, "invite.created", "SCIM (okta)")
            .await
            .iter()
            .filter(|r| r.details.to_string().contains(email))
            .count(),
        2
    );
}

// ---------------------------------------------------------------------------------------------
// Entra ID

#[tokio::test]
async fn entra_creates_with_the_enterprise_extension_finds_by_external_id_renames_and_deletes() {
    let app = spawn_app().await;
    let entra = Idp::new(&app, "entra", ENTRA_AGENT).await;
    let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";
    let email = "test_user_fd0ea19b@testuser.com";
    let external_id = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";

    // userName is not an e-mail address here: the work e-mail identifies the person.
    let created = entra
        .create_user(&entra_user(user_name, email, external_id))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], user_name);
    assert_eq!(created["externalId"], external_id);
    let invites = pending_invites(&app, email).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0].role, OrgRole::User);
    assert_eq!(
        ok_records_by(&app, "invite.created", "SCIM (entra)")
            .await
            .len(),
        1
    );

    // Entra's default matching: userName, then externalId (quoted, and unquoted as in its docs),
    // and the work e-mail when that is the matching attribute.
    for filter in [
        format!("userName eq \"{user_name}\""),
        format!("externalId eq \"{external_id}\""),
        format!("externalId eq {external_id}"),
        format!("emails[type eq \"work\"].value eq \"{email}\""),
        format!("emails.value eq \"{email}\""),
        format!("externalId eq \"{external_id}\" and userName eq \"{user_name}\""),
    ] {
        let found = entra.filter_users(&filter).await;
        assert_eq!(list_ids(&found), vec![id.clone()], "{filter}");
    }
    let none = entra
        .filter_users("externalId eq \"00000000-0000-0000-0000-000000000000\"")
        .await;
    assert_eq!(list_ids(&none), Vec::<String>::new());
    assert_eq!(total(&none), 0);

    // A multi-attribute path-less replace with dotted and URN keys (Entra's flagged dialect).
    let renamed = entra
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
            } }]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.body["displayName"], "Bjfe");
    assert_eq!(renamed.body["name"]["givenName"], "Kkom");
    assert_eq!(renamed.body["name"]["familyName"], "Unua");
    // And the path form, capitalised.
    let renamed = entra
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "Replace", "path": "name.familyName", "value": "Okafor" }]),
        )
        .await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let read = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["name"]["givenName"], "Kkom");
    assert_eq!(read.body["name"]["familyName"], "Okafor");
    assert_eq!(read.body["displayName"], "Bjfe");
    assert_eq!(read.body["active"], true);
    assert_eq!(
        pending_invites(&app, email).await.len(),
        1,
        "a rename changes nothing upstream"
    );

    // Entra hard-deletes: 204, then 404; the pending invite is deleted; a repeat is a cheap 404.
    let deleted = entra.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(deleted.text.is_empty(), "{deleted:?}");
    assert_scim_error(&entra.get(&format!("/Users/{id}")).await, 404, None);
    assert!(pending_invites(&app, email).await.is_empty());
    assert_eq!(
        ok_records_by(&app, "invite.deleted", "SCIM (entra)")
            .await
            .len(),
        1
    );
    assert_eq!(
        ok_records_by(&app, "scim.user_deleted", "SCIM (entra)")
            .await
            .len(),
        1
    );
    let upstream_deletes = records(&app, "invite.deleted").await.len();
    assert_scim_error(&entra.delete(&format!("/Users/{id}")).await, 404, None);
    assert_eq!(
        ok_records_by(&app, "scim.user_deleted", "SCIM (entra)")
            .await
            .len(),
        1
    );
    assert_eq!(
        records(&app, "invite.deleted").await.len(),
        upstream_deletes,
        "the second DELETE tried nothing upstream"
    );
    let filtered = entra
        .filter_users(&format!("externalId eq \"{external_id}\""))
        .await;
    assert_eq!(total(&filtered), 0);
}

#[tokio::test]
async fn entra_deactivating_a_member_offboards_them_and_deactivates_their_workspace_keys() {
    let app = spawn_app().await;
    let entra = Idp::new(&app, "entra", ENTRA_AGENT).await;
    let (member, keys) = member_with_workspace_keys(&app).await;

    // The member's address: linked to the existing member, not invited.
    let created = entra
        .create_user(&entra_user(
            &member.email,
            &member.email,
            "5b50e3f1-27a3-4b5c-8d61-2f0c6a4e9d10",
        ))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["active"], true);
    assert!(
        records(&app, "invite.created").await.is_empty(),
        "an existing member is linked, not invited"
    );
    assert!(pending_invites(&app, &member.email).await.is_empty());
    assert!(upstream_users(&app).await.iter().any(|u| u.id == member.id));

    // Entra's default job: "False" as a string, capitalised op.
    let deactivated = entra
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{deactivated:?}");
    assert_eq!(deactivated.body["active"], false);

    // The organization, read again from the Admin API: the member is gone, their workspace keys
    // stopped.
    assert!(
        !upstream_users(&app).await.iter().any(|u| u.id == member.id),
        "the member was removed from the organization"
    );
    for key in &keys {
        let now = app.state.org.api().get_api_key(&key.id).await.unwrap();
        assert_eq!(now.status, ApiKeyStatus::Inactive, "{}", key.id);
    }

    // The audit log: the wizard's records, with the SCIM client as the actor.
    let actor = "SCIM (entra)";
    let started = records(&app, "offboarding.started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0].actor_name, actor);
    let completed = records(&app, "offboarding.completed").await;
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0].actor_name, actor);
    let removed = ok_records_by(&app, "member.removed", actor).await;
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0].target_id.as_deref(), Some(member.id.as_str()));
    assert_eq!(removed[0].actor_role.as_deref(), Some("scim"));
    let deactivations = ok_records_by(&app, "key.deactivated", actor).await;
    let mut deactivated_ids: Vec<&str> = deactivations
        .iter()
        .filter_map(|r| r.target_id.as_deref())
        .collect();
    deactivated_ids.sort_unstable();
    let mut expected: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(deactivated_ids, expected);
    assert!(!records(&app, "scim.user_deprovisioned").await.is_empty());

    // The SCIM user stays, inactive.
    let read = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["active"], false);

    // A sync afterwards does not record these changes again as observed outside Orgkeeper.
    app.sync().await;
    let observed = app
        .audit_records(Filter {
            observed: Some(true),
            ..Default::default()
        })
        .await;
    for r in &observed {
        let target = r.target_id.as_deref().unwrap_or_default();
        assert!(
            target != member.id && !keys.iter().any(|k| k.id == target),
            "recorded as observed: {r:?}"
        );
    }
    let chain = app.state.audit.verify().await.unwrap();
    assert!(chain.is_intact(), "{chain:?}");
}

#[tokio::test]
async fn deactivating_an_admin_is_refused_with_mutability_and_changes_nothing() {
    let app = spawn_app().await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let admin = upstream_users(&app)
        .await
        .into_iter()
        .find(|u| u.role == OrgRole::Admin)
        .expect(
            "PRECONDITION: the demo organization has an admin (the simulator's first two members \
             are admins); without one this test cannot check the refusal",
        );
    let keys_before: Vec<(String, ApiKeyStatus)> = upstream_keys(&app)
        .await
        .into_iter()
        .map(|k| (k.id, k.status))
        .collect();

    let created = okta
        .create_user(&okta_user(
            &admin.email,
            "Ad",
            "Min",
            "00uadmin000000000001",
        ))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(records(&app, "invite.created").await.is_empty());

    let refused = okta
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_scim_error(&refused, 400, Some("mutability"));
    assert!(
        refused.body["detail"].as_str().unwrap().contains("Console"),
        "the detail names the Console: {refused:?}"
    );
    // A PUT with active false (Okta's custom integrations) is refused alike.
    let mut whole = created.clone();
    whole["active"] = json!(false);
    let refused = okta.put(&format!("/Users/{id}"), &whole).await;
    assert_scim_error(&refused, 400, Some("mutability"));

    // Nothing changed: the admin is still there, every key as it was, nothing recorded done.
    let still = upstream_users(&app)
        .await
        .into_iter()
        .find(|u| u.id == admin.id)
        .expect("the admin is still a member");
    assert_eq!(still.role, OrgRole::Admin);
    let keys_after: Vec<(String, ApiKeyStatus)> = upstream_keys(&app)
        .await
        .into_iter()
        .map(|k| (k.id, k.status))
        .collect();
    assert_eq!(keys_after, keys_before);
    for action in [
        "member.removed",
        "key.deactivated",
        "key.archived",
        "workspace_member.removed",
        "offboarding.started",
    ] {
        let done: Vec<Record> = records(&app, action)
            .await
            .into_iter()
            .filter(|r| r.outcome == Outcome::Ok)
            .collect();
        assert!(done.is_empty(), "{action}: {done:?}");
    }
    let read = okta.get(&format!("/Users/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["active"], true, "the SCIM user is still active");
}

// ---------------------------------------------------------------------------------------------
// PUT

#[tokio::test]
async fn put_re_invites_a_pending_address_and_refuses_to_change_a_members_address() {
    let app = spawn_app().await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;

    // A pending invite: a new address in a PUT sends the invite to the new address.
    let created = okta
        .create_user(&okta_user(
            "old.address@okta.local",
            "Olu",
            "Adeyemi",
            "00uput00000000000001",
        ))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut replaced = okta_user(
        "new.address@okta.local",
        "Olu",
        "Adeyemi-Brown",
        "00uput00000000000001",
    );
    replaced.as_object_mut().unwrap().remove("password");
    let answer = okta.put(&format!("/Users/{id}"), &replaced).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_resource(&answer, USER, "User");
    assert_eq!(answer.body["id"], id.as_str());
    assert_eq!(answer.body["userName"], "new.address@okta.local");
    assert_eq!(answer.body["name"]["familyName"], "Adeyemi-Brown");
    assert!(pending_invites(&app, "old.address@okta.local")
        .await
        .is_empty());
    let invites = pending_invites(&app, "new.address@okta.local").await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0].role, OrgRole::User);

    // A member: their address cannot change through the Admin API.
    let member = app.member_with_role("developer");
    let linked = okta
        .create_user(&okta_user(
            &member.email,
            "Mem",
            "Ber",
            "00uput00000000000002",
        ))
        .await;
    let linked_id = linked["id"].as_str().unwrap();
    let mut moved = linked.clone();
    moved["userName"] = json!("somewhere.else@okta.local");
    moved["emails"] =
        json!([{ "primary": true, "value": "somewhere.else@okta.local", "type": "work" }]);
    let refused = okta.put(&format!("/Users/{linked_id}"), &moved).await;
    assert_scim_error(&refused, 400, Some("mutability"));
    assert!(upstream_users(&app)
        .await
        .iter()
        .any(|u| u.id == member.id && u.email == member.email));
    assert!(pending_invites(&app, "somewhere.else@okta.local")
        .await
        .is_empty());
    let read = okta.get(&format!("/Users/{linked_id}")).await;
    assert_eq!(read.body["userName"], member.email.as_str());
}

// ---------------------------------------------------------------------------------------------
// Groups

#[tokio::test]
async fn a_mapped_group_push_sets_the_role_and_workspace_and_a_removal_takes_the_workspace_away() {
    let app = spawn_app().await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let member = app.member_with_role("user");
    let snapshot = app.state.org.snapshot();
    let before: Vec<(String, WorkspaceRole)> = snapshot
        .memberships
        .iter()
        .filter(|m| *m.user_id == *member.id)
        .map(|m| (m.workspace_id.to_string(), m.workspace_role.clone()))
        .collect();
    let workspace = snapshot
        .workspaces
        .iter()
        .find(|w| {
            !w.is_archived()
                && Some(&w.id) != snapshot.default_workspace_id.as_ref()
                && !before.iter().any(|(id, _)| *id == w.id)
        })
        .expect("a live workspace the member is not in")
        .id
        .clone();
    drop(snapshot);

    // Okta's group push.
    let pushed = okta
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP], "displayName": "Engineering", "members": [] }),
        )
        .await;
    assert_eq!(pushed.status, 201, "{pushed:?}");
    assert_resource(&pushed, GROUP, "Group");
    assert_eq!(pushed.body["displayName"], "Engineering");
    let group = pushed.body["id"].as_str().unwrap().to_owned();
    let duplicate = okta
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP], "displayName": "Engineering", "members": [] }),
        )
        .await;
    assert_scim_error(&duplicate, 409, Some("uniqueness"));

    // An owner maps it: developers, and workspace developers of one workspace.
    orgkeeper::service::scim::map_group(
        &app.state,
        &TEST_CALLER,
        orgkeeper::service::scim::NewMapping {
            group: "Engineering".into(),
            role: Some(OrgRole::Developer),
            workspaces: vec![(workspace.clone(), WorkspaceRole::WorkspaceDeveloper)],
        },
    )
    .await
    .unwrap();

    let user = okta
        .create_user(&okta_user(
            &member.email,
            "Grace",
            "Member",
            "00ugroup000000000001",
        ))
        .await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    assert!(records(&app, "invite.created").await.is_empty(), "linked");

    // A member value that is no provisioned user: noTarget, nothing changed.
    let unknown = okta
        .patch(
            &format!("/Groups/{group}"),
            json!([{ "op": "add", "path": "members", "value": [{ "value": "8a1b5c7e-0000-4000-8000-000000000000" }] }]),
        )
        .await;
    assert_scim_error(&unknown, 400, Some("noTarget"));

    // Okta adds the member: 204, the role and the workspace follow.
    let added = okta
        .patch(
            &format!("/Groups/{group}"),
            json!([{ "op": "add", "path": "members", "value": [{ "value": user_id, "display": member.email }] }]),
        )
        .await;
    assert_eq!(added.status, 204, "{added:?}");
    assert!(added.text.is_empty(), "{added:?}");
    let api = app.state.org.api();
    assert_eq!(
        api.get_user(&member.id).await.unwrap().role,
        OrgRole::Developer
    );
    assert_eq!(
        api.get_workspace_member(&workspace, &member.id)
            .await
            .unwrap()
            .workspace_role,
        WorkspaceRole::WorkspaceDeveloper
    );
    let actor = "SCIM (okta)";
    assert_eq!(
        ok_records_by(&app, "member.role_changed", actor)
            .await
            .len(),
        1
    );
    assert_eq!(
        ok_records_by(&app, "workspace_member.added", actor)
            .await
            .len(),
        1
    );
    assert!(!records(&app, "scim.group_changed").await.is_empty());

    let read = okta.get(&format!("/Groups/{group}")).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(
        read.body["members"][0]["value"],
        user_id.as_str(),
        "{read:?}"
    );
    // Entra reads groups without their members.
    let slim = okta
        .get(&format!("/Groups/{group}?excludedAttributes=members"))
        .await;
    assert_eq!(slim.status, 200, "{slim:?}");
    assert_eq!(slim.body["displayName"], "Engineering");
    assert!(
        slim.body.get("members").is_none_or(Value::is_null),
        "{slim:?}"
    );
    let found = okta
        .get(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            encode("displayName eq \"Engineering\"")
        ))
        .await;
    assert_eq!(list_ids(&found), vec![group.clone()]);
    assert!(found.body["Resources"][0]
        .get("members")
        .is_none_or(Value::is_null));

    // Okta's membership change: the path-less rename it always sends, then the filtered remove.
    let removed = okta
        .patch(
            &format!("/Groups/{group}"),
            json!([
                { "op": "replace", "value": { "id": group, "displayName": "Engineering" } },
                { "op": "remove", "path": format!("members[value eq \"{user_id}\"]") }
            ]),
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert!(
        api.get_workspace_member(&workspace, &member.id)
            .await
            .is_err(),
        "removed from the mapped workspace"
    );
    assert_eq!(
        api.get_user(&member.id).await.unwrap().role,
        OrgRole::Developer,
        "with no mapped role left the role is unchanged"
    );
    assert_eq!(
        ok_records_by(&app, "workspace_member.removed", actor)
            .await
            .len(),
        1
    );

    // Entra's forms: Add with "$ref": null, Remove with a value list.
    let added = okta
        .patch(
            &format!("/Groups/{group}"),
            json!([{ "op": "Add", "path": "members", "value": [{ "$ref": null, "value": user_id }] }]),
        )
        .await;
    assert_eq!(added.status, 204, "{added:?}");
    assert!(api
        .get_workspace_member(&workspace, &member.id)
        .await
        .is_ok());
    let removed = okta
        .patch(
            &format!("/Groups/{group}"),
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": user_id }] }]),
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    assert!(api
        .get_workspace_member(&workspace, &member.id)
        .await
        .is_err());

    // Workspaces no mapping names were never touched.
    for (workspace_id, role) in &before {
        let now = api
            .get_workspace_member(workspace_id, &member.id)
            .await
            .unwrap();
        assert_eq!(&now.workspace_role, role, "{workspace_id}");
    }

    // Unlinking in Okta deletes the group.
    let gone = okta.delete(&format!("/Groups/{group}")).await;
    assert_eq!(gone.status, 204, "{gone:?}");
    assert_scim_error(&okta.get(&format!("/Groups/{group}")).await, 404, None);
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn only_a_live_scim_token_reaches_scim_and_every_refusal_is_a_scim_401() {
    let app = spawn_app().await;
    let email = "intruder@example.com";
    let body = okta_user(email, "In", "Truder", "00uintruder000000001");

    // A revoked SCIM token.
    let revoked = scim_token(&app, "old-okta").await;
    let row = tokens::find_by_name(&app.state, "old-okta").await.unwrap();
    tokens::revoke(&app.state, &TEST_CALLER, &row)
        .await
        .unwrap();
    // Admin API tokens of an owner and of a team lead.
    let owner = app.create_account("olive", Role::Owner, &[]).await;
    let lead_workspace = app.first_workspace_id().await;
    let lead = app
        .create_account("lee", Role::TeamLead, &[&lead_workspace])
        .await;
    let mut api_tokens = Vec::new();
    for (account, name) in [(&owner, "owner-api"), (&lead, "lead-api")] {
        let created = tokens::create(
            &app.state,
            &TEST_CALLER,
            NewToken {
                name: name.into(),
                kind: TokenKind::Api,
                account: Some(account.clone()),
                read_only: false,
                workspaces: vec![],
                expires_in_days: Some(30),
            },
        )
        .await
        .unwrap();
        api_tokens.push(created.secret.expose().to_owned());
    }

    let mut callers: Vec<(&str, Idp)> = vec![
        ("no token", Idp::with_token(&app, None, OKTA_AGENT)),
        (
            "unknown token",
            Idp::with_token(
                &app,
                Some("orgk_scim_notarealtoken0000000000000000".into()),
                OKTA_AGENT,
            ),
        ),
        (
            "revoked token",
            Idp::with_token(&app, Some(revoked), OKTA_AGENT),
        ),
        (
            "owner's API token",
            Idp::with_token(&app, Some(api_tokens[0].clone()), OKTA_AGENT),
        ),
        (
            "team lead's API token",
            Idp::with_token(&app, Some(api_tokens[1].clone()), OKTA_AGENT),
        ),
        (
            "the admin key",
            Idp::with_token(&app, Some(ADMIN_KEY.into()), OKTA_AGENT),
        ),
    ];
    // A signed-in viewer's browser: its session cookie is no SCIM credential.
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    callers.push((
        "viewer's session",
        Idp {
            app: &app,
            token: None,
            agent: OKTA_AGENT,
            http: viewer.http.clone(),
        },
    ));
    app.simulator.reset_request_count();

    for (who, idp) in &callers {
        let list = idp.get("/Users").await;
        assert_scim_error(&list, 401, None);
        let create = idp.post("/Users", &body).await;
        assert_scim_error(&create, 401, None);
        let groups = idp
            .post(
                "/Groups",
                &json!({ "schemas": [GROUP], "displayName": "Intruders" }),
            )
            .await;
        assert_eq!(groups.status, 401, "{who}: {groups:?}");
    }
    assert_eq!(
        app.simulator.request_count(),
        0,
        "no refused request reached the Admin API"
    );

    // Nothing was created.
    assert!(pending_invites(&app, email).await.is_empty());
    assert!(records(&app, "invite.created").await.is_empty());
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let users = okta.get("/Users").await;
    assert_eq!(list_ids(&users), Vec::<String>::new());
    let groups = okta.get("/Groups").await;
    assert_eq!(list_ids(&groups), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Dry run

#[tokio::test]
async fn in_dry_run_a_create_and_a_deactivation_are_recorded_but_the_organization_is_untouched() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.scim.dry_run = true;
    })
    .await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let email = "dry.run@okta.local";
    let invites_before: Vec<String> = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();

    let created = okta
        .post(
            "/Users",
            &okta_user(email, "Dry", "Run", "00udryrun00000000001"),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["userName"], email);

    assert!(pending_invites(&app, email).await.is_empty());
    let invites_after: Vec<String> = app
        .state
        .org
        .api()
        .list_all_invites(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(invites_after, invites_before, "no invite was sent");
    assert!(records(&app, "invite.created").await.is_empty());
    let dry = records(&app, "scim.dry_run").await;
    assert!(
        dry.iter()
            .any(|r| r.details.to_string().to_lowercase().contains(email)),
        "a scim.dry_run record says the invite would have been sent: {dry:?}"
    );

    // Deactivating a linked member with workspace keys: recorded, nothing done.
    let (member, keys) = member_with_workspace_keys(&app).await;
    let linked = okta
        .post(
            "/Users",
            &okta_user(&member.email, "Would", "Leave", "00udryrun00000000002"),
        )
        .await;
    assert_eq!(linked.status, 201, "{linked:?}");
    let id = linked.body["id"].as_str().unwrap().to_owned();
    let dry_before = records(&app, "scim.dry_run").await.len();
    let deactivated = okta
        .patch(
            &format!("/Users/{id}"),
            json!([{ "op": "replace", "value": { "active": false } }]),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{deactivated:?}");
    assert!(records(&app, "scim.dry_run").await.len() > dry_before);
    assert!(upstream_users(&app).await.iter().any(|u| u.id == member.id));
    for key in &keys {
        let now = app.state.org.api().get_api_key(&key.id).await.unwrap();
        assert_eq!(now.status, ApiKeyStatus::Active, "{}", key.id);
    }
    for action in [
        "member.removed",
        "key.deactivated",
        "offboarding.started",
        "invite.deleted",
    ] {
        assert!(records(&app, action).await.is_empty(), "{action}");
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration: the default role and what happens to a leaver's workspace keys

#[tokio::test]
async fn the_configured_default_role_and_archive_policy_apply_and_delete_offboards_a_member() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.scim.default_role = OrgRole::Developer;
        config.scim.offboard_keys = orgkeeper::config::ScimKeys::Archive;
    })
    .await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;

    // ORGKEEPER_SCIM_DEFAULT_ROLE=developer: the invite carries it.
    let email = "new.developer@okta.local";
    okta.create_user(&okta_user(
        email,
        "New",
        "Developer",
        "00uconfig00000000001",
    ))
    .await;
    let invites = pending_invites(&app, email).await;
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0].role, OrgRole::Developer);

    // ORGKEEPER_SCIM_OFFBOARD_KEYS=archive, through a DELETE of an active member (Entra's way).
    let (member, keys) = member_with_workspace_keys(&app).await;
    let linked = okta
        .create_user(&okta_user(
            &member.email,
            "Lea",
            "Ver",
            "00uconfig00000000002",
        ))
        .await;
    let id = linked["id"].as_str().unwrap().to_owned();
    let deleted = okta.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert!(!upstream_users(&app).await.iter().any(|u| u.id == member.id));
    for key in &keys {
        let now = app.state.org.api().get_api_key(&key.id).await.unwrap();
        assert_eq!(now.status, ApiKeyStatus::Archived, "{}", key.id);
    }
    assert_eq!(
        ok_records_by(&app, "key.archived", "SCIM (okta)")
            .await
            .len(),
        keys.len()
    );
    assert!(ok_records_by(&app, "key.deactivated", "SCIM (okta)")
        .await
        .is_empty());
    assert_eq!(
        ok_records_by(&app, "member.removed", "SCIM (okta)")
            .await
            .len(),
        1
    );
    assert_scim_error(&okta.get(&format!("/Users/{id}")).await, 404, None);
    assert!(app.state.audit.verify().await.unwrap().is_intact());
}

// ---------------------------------------------------------------------------------------------
// Discovery, refusals of malformed requests

#[tokio::test]
async fn discovery_announces_what_is_supported_and_unknown_paths_are_scim_errors() {
    let app = spawn_app().await;
    let idp = Idp::new(&app, "okta", OKTA_AGENT).await;

    let config = idp.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, 200, "{config:?}");
    assert!(config.content_type.starts_with(SCIM_JSON), "{config:?}");
    let c = &config.body;
    assert_eq!(c["patch"]["supported"], true, "{c}");
    assert_eq!(c["bulk"]["supported"], false, "{c}");
    assert_eq!(c["filter"]["supported"], true, "{c}");
    assert_eq!(c["filter"]["maxResults"], 200, "{c}");
    assert_eq!(c["changePassword"]["supported"], false, "{c}");
    assert_eq!(c["sort"]["supported"], false, "{c}");
    assert_eq!(c["etag"]["supported"], false, "{c}");
    assert_eq!(c["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let types = idp.get("/ResourceTypes").await;
    let mut names = list_ids(&types);
    names.sort();
    assert_eq!(names, vec!["Group".to_owned(), "User".to_owned()]);
    for (name, schema, endpoint) in [("User", USER, "/Users"), ("Group", GROUP, "/Groups")] {
        let one = idp.get(&format!("/ResourceTypes/{name}")).await;
        assert_eq!(one.status, 200, "{one:?}");
        assert_eq!(one.body["schema"], schema);
        assert_eq!(one.body["endpoint"], endpoint);
        let s = idp.get(&format!("/Schemas/{schema}")).await;
        assert_eq!(s.status, 200, "{s:?}");
        assert_eq!(s.body["id"], schema);
        assert!(s.body["attributes"]
            .as_array()
            .is_some_and(|a| !a.is_empty()));
    }
    let schemas = idp.get("/Schemas").await;
    let ids = list_ids(&schemas);
    assert!(
        ids.iter().any(|i| i == USER) && ids.iter().any(|i| i == GROUP),
        "{ids:?}"
    );

    assert_scim_error(&idp.get("/NoSuchEndpoint").await, 404, None);
    assert_scim_error(
        &idp.get("/Schemas/urn:example:no-such-schema").await,
        404,
        None,
    );
    assert_scim_error(
        &idp.post("/ServiceProviderConfig", &json!({})).await,
        405,
        None,
    );
    assert_scim_error(&idp.delete("/ResourceTypes").await, 405, None);
}

#[tokio::test]
async fn unsupported_filters_and_users_without_an_address_are_refused_with_scim_types() {
    let app = spawn_app().await;
    let idp = Idp::new(&app, "okta", OKTA_AGENT).await;

    for filter in [
        "userName co \"test\"",
        "userName eq",
        "nickName eq \"x\"",
        "userName eq \"a\" or userName eq \"b\"",
    ] {
        assert_scim_error(&idp.filter_users(filter).await, 400, Some("invalidFilter"));
    }

    let no_address = idp
        .post(
            "/Users",
            &json!({ "schemas": [USER], "userName": "20c4095a-49b8-4c1e-9f0e-3a7d2b1c0d9e" }),
        )
        .await;
    assert_scim_error(&no_address, 400, Some("invalidValue"));
    assert!(records(&app, "invite.created").await.is_empty());
    let users = idp.get("/Users").await;
    assert_eq!(list_ids(&users), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// The command line

#[tokio::test]
async fn the_command_line_makes_a_scim_token_that_the_running_server_accepts() {
    let app = spawn_app().await;
    let (ok, out, err) = app.orgkeeper(&["token", "create", "okta", "--scim"], None);
    assert!(ok, "{out}{err}");
    let token = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.starts_with("orgk_scim_"), "the last line: {out}");

    let idp = Idp::with_token(&app, Some(token.clone()), OKTA_AGENT);
    let config = idp.get("/ServiceProviderConfig").await;
    assert_eq!(config.status, 200, "{config:?}");
    assert_eq!(config.body["patch"]["supported"], true);
    let users = idp.get("/Users").await;
    assert_eq!(users.status, 200, "{users:?}");

    let scim = tokens::of_kind(&app.state, TokenKind::Scim).await.unwrap();
    assert!(scim.iter().any(|t| t.name == "okta"), "{scim:?}");
    // The secret itself is never stored.
    assert!(!contains_bytes(&database_bytes(&app), &token));
    // And it is no Admin API token.
    let response = reqwest::Client::new()
        .get(app.url("/v1/organizations/me"))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 401 | 403),
        "a SCIM token is no Admin API token: {}",
        response.status()
    );
}

/// An invitation carries only a role; the workspaces of someone's groups need a member. So
/// when a person provisioned while invited accepts and the next sync sees them join, their
/// groups' workspaces are given then, by the provisioning system.
#[tokio::test]
async fn someone_invited_gets_their_groups_workspaces_once_they_join() {
    let app = spawn_app().await;
    let okta = Idp::new(&app, "okta", OKTA_AGENT).await;
    let workspace = app.first_workspace_id().await;
    orgkeeper::service::scim::map_group(
        &app.state,
        &TEST_CALLER,
        orgkeeper::service::scim::NewMapping {
            group: "Research".into(),
            role: Some(OrgRole::Developer),
            workspaces: vec![(workspace.clone(), WorkspaceRole::WorkspaceDeveloper)],
        },
    )
    .await
    .unwrap();
    let email = "newcomer@acmerobotics.com";
    let user = okta
        .create_user(&okta_user(email, "New", "Comer", "00unewcomer000000001"))
        .await;
    let pushed = okta
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP], "displayName": "Research",
                     "members": [{ "value": user["id"] }] }),
        )
        .await;
    assert_eq!(pushed.status, 201, "{pushed:?}");
    assert_eq!(pending_invites(&app, email).await.len(), 1);
    assert!(
        records(&app, "workspace_member.added").await.is_empty(),
        "nobody to add while they are only invited"
    );

    let joined = app
        .simulator
        .accept_invite(email)
        .expect("a pending invite");
    app.sync().await;
    let members = app
        .state
        .org
        .api()
        .list_all_workspace_members(&workspace)
        .await
        .unwrap();
    let membership = members
        .iter()
        .find(|m| *m.user_id == *joined)
        .expect("added to the mapped workspace after joining");
    assert_eq!(membership.workspace_role, WorkspaceRole::WorkspaceDeveloper);
    let added = ok_records_by(&app, "workspace_member.added", "system (SCIM provisioning)").await;
    assert_eq!(added.len(), 1, "{added:?}");
    // A second sync finds nothing left to do.
    app.sync().await;
    assert_eq!(
        records(&app, "workspace_member.added").await.len(),
        2,
        "intent and outcome, once"
    );
}
