//! Who spent it (issue 24): cost per person, service account and key, and chargeback by cost
//! center, over real HTTP against the simulator's analytics, usage and cost reports.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use orgkeeper::anthropic::{
    AnalyticsActor, AnalyticsGroupBy, AnalyticsParams, CostByActor, CostReportParams, UsageByActor,
};
use orgkeeper::audit::{Filter, Outcome};
use orgkeeper::auth::Role;
use rust_decimal::Decimal;

use crate::support::*;

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
}

/// Last month: whole and settled, so its numbers cannot move during a test.
fn last_month() -> (NaiveDate, NaiveDate) {
    let this = Utc::now().date_naive().with_day(1).unwrap();
    (
        (this - chrono::Duration::days(1)).with_day(1).unwrap(),
        this,
    )
}

fn month_param(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// One round of the usage job (usage, cost, then cost per person), as in production.
async fn synced() -> TestApp {
    let app = spawn_app().await;
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    app
}

/// Cost (cents), total tokens and requests per actor (type, id) over `[from, to)`,
/// according to the Admin API itself; `workspaces` filters like a team lead's view.
async fn api_by_actor(
    app: &TestApp,
    from: NaiveDate,
    to: NaiveDate,
    workspaces: &[String],
) -> HashMap<(String, String), (Decimal, u64, u64)> {
    let mut p = AnalyticsParams::new(day_start(from));
    p.ending_at = Some(day_start(to));
    p.group_by = vec![AnalyticsGroupBy::Actor];
    p.limit = Some(1000);
    p.workspace_ids = workspaces.to_vec();
    let api = app.state.org.api();
    let key = |a: &Option<AnalyticsActor>| match a {
        Some(a) => (a.kind().to_owned(), a.id()),
        None => ("unattributed".to_owned(), String::new()),
    };
    let mut out: HashMap<(String, String), (Decimal, u64, u64)> = HashMap::new();
    for r in api.all(&CostByActor(&p)).await.unwrap() {
        out.entry(key(&r.group.actor)).or_default().0 += r.cost.amount;
    }
    for r in api.all(&UsageByActor(&p)).await.unwrap() {
        let e = out.entry(key(&r.group.actor)).or_default();
        e.1 += r.usage.total_tokens;
        e.2 += r.usage.requests.unwrap_or(0);
    }
    out
}

/// The cost report's total for `[from, to)`, exact.
async fn cost_report_total(app: &TestApp, from: NaiveDate, to: NaiveDate) -> Decimal {
    let mut p = CostReportParams::new(day_start(from));
    p.ending_at = Some(day_start(to));
    p.limit = Some(31);
    app.state
        .org
        .api()
        .all(&p)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| &b.results)
        .map(|r| r.amount)
        .sum()
}

/// A minimal CSV reader (quoted fields with doubled quotes) into header-keyed rows.
fn csv_rows(text: &str) -> Vec<HashMap<String, String>> {
    let lines: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => fields.push(std::mem::take(&mut cur)),
                    _ => cur.push(c),
                }
            }
            fields.push(cur);
            fields
        })
        .collect();
    let header = &lines[0];
    lines[1..]
        .iter()
        .map(|row| header.iter().cloned().zip(row.iter().cloned()).collect())
        .collect()
}

/// The text of the first element after `marker`, up to the next tag.
fn after<'a>(html: &'a str, marker: &str) -> &'a str {
    html.split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("{marker} not in the page"))
        .split('<')
        .next()
        .unwrap()
}

#[tokio::test]
async fn the_people_page_and_csv_equal_the_apis_per_actor_figures() {
    let app = synced().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (from, to) = last_month();
    let month = month_param(from);

    let (status, csv) = viewer
        .get_text(&format!("/cost/people.csv?month={month}"))
        .await;
    let (page_status, html) = viewer
        .get_text(&format!("/cost/people?month={month}"))
        .await;

    assert_eq!(status, 200, "{csv}");
    assert_eq!(page_status, 200);
    let expected = api_by_actor(&app, from, to, &[]).await;
    let rows = csv_rows(&csv);
    assert!(
        csv.starts_with("actor_type,actor_id,name,email,cost_usd,tokens,requests"),
        "{csv}"
    );
    assert_eq!(rows.len(), expected.len(), "one row per actor");
    let mut kinds = std::collections::BTreeSet::new();
    for row in &rows {
        let key = (row["actor_type"].clone(), row["actor_id"].clone());
        let (cost, tokens, requests) = expected
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} is not in the API's answer"));
        assert_eq!(
            row["cost_usd"],
            orgkeeper::web::usage::dollars_plain(*cost),
            "{key:?}"
        );
        assert_eq!(row["tokens"], tokens.to_string(), "{key:?}");
        assert_eq!(row["requests"], requests.to_string(), "{key:?}");
        if row["actor_type"] == "user_actor" {
            // A person whose account is gone keeps no email (the API says "Deleted User").
            assert!(
                row["email"].contains('@') || row["name"] == "Deleted User",
                "people have their email: {row:?}"
            );
        }
        if row["actor_type"] == "api_actor" {
            assert!(
                !row["name"].starts_with("apikey_"),
                "keys are named: {row:?}"
            );
        }
        kinds.insert(row["actor_type"].clone());
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["api_actor", "service_account_actor", "user_actor"],
        "people, service accounts and keys without a person each have rows"
    );
    // The page: the month's total, each person linked to their member page, the shares.
    let total: Decimal = expected.values().map(|e| e.0).sum();
    assert_eq!(
        after(&html, "id=\"people-total\"><strong>"),
        orgkeeper::web::usage::dollars(total)
    );
    assert_eq!(total, cost_report_total(&app, from, to).await);
    let top = rows
        .iter()
        .find(|r| r["actor_type"] == "user_actor")
        .unwrap();
    assert!(html.contains(&format!("href=\"/members/{}\"", top["actor_id"])));
    assert!(html.contains(&format!(
        ">{}</td>",
        orgkeeper::web::usage::dollars(expected[&("user_actor".into(), top["actor_id"].clone())].0)
    )));
    assert!(html.contains("Service account"));
    assert!(html.contains("API key, no person"));
    // Searching finds one person by email; sorting by name orders the rows.
    let (_, one) = viewer
        .get_text(&format!("/cost/people?month={month}&q={}", top["email"]))
        .await;
    assert!(one.contains("Showing 1–1 of 1"), "{one}");
    let (_, by_name) = viewer
        .get_text(&format!("/cost/people?month={month}&sort=name&dir=asc"))
        .await;
    assert!(by_name.contains("aria-sort=\"ascending\"><a href=\"/cost/people?month="));
    // Months before the API's first and after today are refused, with the reason.
    let (early, says) = viewer.get_text("/cost/people?month=2025-12").await;
    assert_eq!(early, 400);
    assert!(says.contains("available from January 2026"), "{says}");
    let (backwards, says) = viewer
        .get_text("/cost/people?from=2026-11-10&to=2026-11-02")
        .await;
    assert_eq!(backwards, 400);
    assert!(says.contains("The end date is before the start date."));
}

#[tokio::test]
async fn a_team_leads_people_view_is_limited_to_their_workspaces_and_adds_up_there() {
    let app = synced().await;
    let (from, to) = last_month();
    let everyone = api_by_actor(&app, from, to, &[]).await;
    // A workspace with usage, and only part of the organization's.
    let workspaces = app.state.org.workspaces().await.unwrap();
    let mut chosen = None;
    for w in workspaces.iter().filter(|w| w.archived_at.is_none()) {
        let theirs = api_by_actor(&app, from, to, std::slice::from_ref(&w.id)).await;
        if !theirs.is_empty() && theirs.len() < everyone.len() {
            chosen = Some((w.clone(), theirs));
            break;
        }
    }
    let (mine, expected) = chosen.expect("a workspace with some of the usage");
    let lead = app
        .create_account("people-lead", Role::TeamLead, &[&mine.id])
        .await;
    let session = app.login_as(&lead.username).await;
    let month = month_param(from);

    let (_, csv) = session
        .get_text(&format!("/cost/people.csv?month={month}"))
        .await;
    let (_, html) = session
        .get_text(&format!("/cost/people?month={month}"))
        .await;
    let (centers, _) = session.get_text("/cost/centers").await;

    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), expected.len());
    for row in &rows {
        let key = (row["actor_type"].clone(), row["actor_id"].clone());
        assert_eq!(
            row["cost_usd"],
            orgkeeper::web::usage::dollars_plain(expected[&key].0),
            "{key:?} within {}",
            mine.name
        );
    }
    let total: Decimal = expected.values().map(|e| e.0).sum();
    let org_total: Decimal = everyone.values().map(|e| e.0).sum();
    assert!(total < org_total);
    assert_eq!(
        after(&html, "id=\"people-total\"><strong>"),
        orgkeeper::web::usage::dollars(total),
        "the lead's total is their workspace's"
    );
    assert!(html.contains("in your workspaces only"));
    assert!(
        !html.contains("href=\"/members/"),
        "team leads cannot open member pages, so names are not links"
    );
    assert_eq!(centers, 403, "cost centers are organization-wide");
}

#[tokio::test]
async fn cost_center_totals_and_the_unallocated_rest_equal_the_months_total() {
    let app = synced().await;
    let (from, to) = last_month();
    let month = month_param(from);
    let (_, owner) = app.signed_in(Role::Owner).await;
    // What to assign: a workspace with several keys, one of its keys (which overrides the
    // workspace), and a person who spends elsewhere.
    let mut p = AnalyticsParams::new(day_start(from));
    p.ending_at = Some(day_start(to));
    p.group_by = vec![
        AnalyticsGroupBy::Actor,
        AnalyticsGroupBy::WorkspaceId,
        AnalyticsGroupBy::ApiKeyId,
    ];
    p.limit = Some(1000);
    let lines = app.state.org.api().all(&CostByActor(&p)).await.unwrap();
    let mut keys_of: HashMap<String, Vec<(String, Decimal)>> = HashMap::new();
    for l in &lines {
        if let (Some(ws), Some(key)) = (&l.group.workspace_id, &l.group.api_key_id) {
            keys_of
                .entry(ws.clone())
                .or_default()
                .push((key.clone(), l.cost.amount));
        }
    }
    let (workspace, keys) = keys_of
        .iter()
        .filter(|(_, k)| k.len() >= 2)
        .max_by_key(|(_, k)| k.len())
        .expect("a workspace with two keys");
    let key = keys.iter().max_by_key(|(_, a)| *a).unwrap().0.clone();
    let person = lines
        .iter()
        .find_map(|l| match &l.group.actor {
            Some(AnalyticsActor::UserActor {
                user_id,
                deleted: false,
                ..
            }) if l.group.workspace_id.as_deref() != Some(workspace.as_str()) => {
                Some(user_id.clone())
            }
            _ => None,
        })
        .expect("a person spending outside that workspace");
    let email = app
        .state
        .org
        .users()
        .await
        .unwrap()
        .iter()
        .find(|u| u.id == person)
        .unwrap()
        .email
        .clone();
    let ws_name = app
        .state
        .org
        .workspaces()
        .await
        .unwrap()
        .iter()
        .find(|w| &w.id == workspace)
        .unwrap()
        .name
        .clone();

    for name in ["Platform", "Search team", "Research"] {
        let created = owner.post("/cost/centers", &[("name", name)]).await;
        assert_eq!(created.status(), 303, "{name}");
    }
    let ids: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM cost_centers")
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for (center, kind, target) in [
        ("Platform", "workspace", ws_name.as_str()),
        ("Search team", "key", key.as_str()),
        ("Research", "person", email.as_str()),
    ] {
        let assigned = owner
            .post(
                &format!("/cost/centers/{}/assign", ids[center]),
                &[("kind", kind), ("target", target)],
            )
            .await;
        assert_eq!(assigned.status(), 303, "{center} {kind} {target}");
    }

    let (status, html) = owner
        .get_text(&format!("/cost/centers?month={month}"))
        .await;
    let html = without_data_labels(&html);
    let (_, csv) = owner
        .get_text(&format!("/cost/centers.csv?month={month}"))
        .await;
    let (_, cost_page) = owner.get_text(&format!("/cost?month={month}")).await;

    assert_eq!(status, 200);
    let rows = csv_rows(&csv);
    let exact = |rows: &[&HashMap<String, String>]| -> Decimal {
        rows.iter()
            .map(|r| Decimal::from_str(&r["amount_cents"]).unwrap())
            .sum()
    };
    let all: Vec<&HashMap<String, String>> = rows.iter().collect();
    let month_total = cost_report_total(&app, from, to).await;
    assert_eq!(exact(&all), month_total, "every cent of the month, once");
    let of = |center: &str| -> Vec<&HashMap<String, String>> {
        rows.iter().filter(|r| r["cost_center"] == center).collect()
    };
    // Each center's total on the page is its rows in the export; with the unallocated rest
    // they make the month's total on the cost page.
    let mut shown_sum = Decimal::ZERO;
    for center in ["Platform", "Search team", "Research", "unallocated"] {
        let marker = format!("data-center=\"{center}\">");
        let row = html.split(&marker).nth(1).unwrap();
        let shown = row
            .split("<td class=\"num\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let rows = if center == "unallocated" {
            of("")
        } else {
            of(center)
        };
        assert!(!rows.is_empty(), "{center} has cost");
        assert_eq!(
            shown,
            orgkeeper::web::usage::dollars(exact(&rows)),
            "{center}"
        );
        shown_sum += exact(&rows);
    }
    assert_eq!(shown_sum, month_total);
    assert_eq!(
        after(&html, "id=\"centers-total\">"),
        after(&cost_page, "<dd id=\"cost-total\"><strong>"),
        "the centers page and the cost page agree on the month"
    );
    // The rule of each row: the key's cost is not in its workspace's center.
    let key_rows = of("Search team");
    assert!(key_rows
        .iter()
        .all(|r| r["rule"] == "key" && r["matched_id"] == key));
    let key_cost: Decimal = lines
        .iter()
        .filter(|l| l.group.api_key_id.as_deref() == Some(key.as_str()))
        .map(|l| l.cost.amount)
        .sum();
    assert_eq!(exact(&key_rows), key_cost);
    let ws_cost: Decimal = lines
        .iter()
        .filter(|l| l.group.workspace_id.as_deref() == Some(workspace.as_str()))
        .map(|l| l.cost.amount)
        .sum();
    assert_eq!(exact(&of("Platform")), ws_cost - key_cost);
    assert!(of("Platform")
        .iter()
        .all(|r| r["rule"] == "workspace" && r["matched_name"] == ws_name));
    assert!(of("Research")
        .iter()
        .all(|r| r["rule"] == "person" && r["matched_id"] == person));
    assert!(of("").iter().all(|r| r["rule"] == "unallocated"));
    assert!(html.contains("How cost is attributed"));

    // Every change is audited, in words.
    let records = app
        .audit_records(Filter {
            action: Some("cost_center.assigned".into()),
            ..Default::default()
        })
        .await;
    let done: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .collect();
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|r| r.intent_seq.is_some()));
    let (_, audit) = owner.get_text("/audit").await;
    assert!(
        audit.contains(&format!(
            "assigned the API key {}",
            key_name(&app, &key).await
        )),
        "{}",
        &audit[audit.find("<table").unwrap_or(0)..][..2000.min(audit.len())]
    );
    assert!(audit.contains("to the cost center Search team"));
}

async fn key_name(app: &TestApp, id: &str) -> String {
    app.state.org.api().get_api_key(id).await.unwrap().name
}

#[tokio::test]
async fn cost_center_forms_keep_what_was_typed_and_only_owners_and_admins_change_them() {
    let app = synced().await;
    let (_, admin) = app.signed_in(Role::Admin).await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    assert_eq!(
        admin
            .post("/cost/centers", &[("name", "Marketing")])
            .await
            .status(),
        303
    );

    let duplicate = admin
        .post("/cost/centers", &[("name", " marketing ")])
        .await;
    let duplicate_status = duplicate.status();
    let duplicate_html = duplicate.text().await.unwrap();
    let empty = admin.post("/cost/centers", &[("name", "   ")]).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM cost_centers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let unknown = admin
        .post(
            &format!("/cost/centers/{id}/assign"),
            &[("kind", "person"), ("target", "nobody@example.org")],
        )
        .await;
    let unknown_status = unknown.status();
    let unknown_html = unknown.text().await.unwrap();
    let by_viewer = viewer.post("/cost/centers", &[("name", "Sneaky")]).await;
    let (viewer_sees, viewer_html) = viewer.get_text("/cost/centers").await;

    assert_eq!(duplicate_status, 422);
    assert!(duplicate_html.contains("A cost center named &#34;marketing&#34; already exists."));
    assert!(
        duplicate_html.contains("value=\" marketing \""),
        "what was typed stays"
    );
    assert_eq!(empty.status(), 422);
    assert_eq!(unknown_status, 422);
    assert!(unknown_html.contains("No member has the email address"));
    assert!(unknown_html.contains("value=\"nobody@example.org\""));
    assert!(unknown_html.contains("<option value=\"person\" selected>"));
    assert_eq!(by_viewer.status(), 403);
    assert_eq!(viewer_sees, 200);
    assert!(viewer_html.contains("Marketing"));
    assert!(
        !viewer_html.contains("method=\"post\" action=\"/cost/centers"),
        "no forms for viewers"
    );
    // The refused duplicate is on record as refused; nothing was created by the viewer.
    let created = app
        .audit_records(Filter {
            action: Some("cost_center.created".into()),
            ..Default::default()
        })
        .await;
    assert!(created.iter().any(|r| r.outcome == Outcome::Denied));
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cost_centers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    // Renaming and deleting: the assignments go with the center.
    let renamed = admin
        .post(&format!("/cost/centers/{id}/rename"), &[("name", "Growth")])
        .await;
    assert_eq!(renamed.status(), 303);
    let deleted = admin.post(&format!("/cost/centers/{id}/delete"), &[]).await;
    assert_eq!(deleted.status(), 303);
    let (_, after_delete) = admin.get_text("/audit").await;
    assert!(after_delete.contains("renamed the cost center Marketing to Growth"));
    assert!(after_delete.contains("deleted the cost center Growth"));
}

#[tokio::test]
async fn where_the_organization_cannot_read_analytics_the_pages_say_so_once_and_keep_workspaces() {
    let app = spawn_app().await;
    app.simulator.set_analytics_access(false);
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    let (from, _) = last_month();
    let month = month_param(from);
    let workspace = app
        .state
        .org
        .workspaces()
        .await
        .unwrap()
        .iter()
        .find(|w| w.name != "Default Workspace" && w.archived_at.is_none())
        .unwrap()
        .name
        .clone();
    owner.post("/cost/centers", &[("name", "Ops")]).await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM cost_centers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    owner
        .post(
            &format!("/cost/centers/{id}/assign"),
            &[("kind", "workspace"), ("target", workspace.as_str())],
        )
        .await;
    app.simulator.reset_request_count();

    let (status, people) = owner.get_text(&format!("/cost/people?month={month}")).await;
    let people_calls = app.simulator.request_count();
    let (_, centers) = owner
        .get_text(&format!("/cost/centers?month={month}"))
        .await;
    let (cost_status, cost) = owner.get_text(&format!("/cost?month={month}")).await;

    assert_eq!(status, 200);
    assert_eq!(
        people.matches("not available to this organization").count(),
        1
    );
    assert!(
        people.contains("href=\"/cost\""),
        "points to the workspace view"
    );
    assert!(
        people.contains("group_by=api_key"),
        "and to the per-key view"
    );
    assert_eq!(
        people_calls, 0,
        "a refusal is not asked again at every page view"
    );
    assert!(centers.contains("only workspace assignments count"));
    assert_eq!(cost_status, 200);
    assert_eq!(
        after(&centers, "id=\"centers-total\">"),
        after(&cost, "<dd id=\"cost-total\"><strong>")
    );
    let ops = centers.split("data-center=\"Ops\">").nth(1).unwrap();
    assert!(!ops.starts_with("<th scope=\"row\">Ops</th><td class=\"num\">$0.00"));
    // When Anthropic enables it, the next sync reads it.
    app.simulator.set_analytics_access(true);
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let (_, people) = owner.get_text(&format!("/cost/people?month={month}")).await;
    assert!(!people.contains("not available to this organization"));
    assert!(people.contains("href=\"/members/"));
}

#[tokio::test]
async fn after_a_restart_history_is_not_fetched_again_and_pages_read_the_store() {
    let app = synced().await;
    let first: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM analytics_days")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(first > 100, "{first} rows stored");
    let (simulator, dir, config) = app.stop().await;
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (from, _) = last_month();
    app.simulator.reset_request_count();

    let (status, _) = viewer
        .get_text(&format!("/cost/people?month={}", month_param(from)))
        .await;
    let page_calls = app.simulator.request_count();
    // A later sync asks only for what is not final yet: one window, usage and cost.
    let later = Utc::now() + chrono::Duration::minutes(10);
    let synced = orgkeeper::analytics_store::sync(
        app.state.org.api(),
        &app.db,
        app.config.usage_settle,
        later,
    )
    .await
    .unwrap();

    assert_eq!(status, 200);
    assert_eq!(page_calls, 0, "the page reads the store");
    assert!(matches!(
        synced,
        orgkeeper::analytics_store::Synced::Fetched(_)
    ));
    assert_eq!(app.simulator.request_count(), 2, "one request per endpoint");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM analytics_days")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(after >= first);
}

#[tokio::test]
async fn a_members_page_shows_their_own_cost_over_time() {
    let app = synced().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (from, to) = last_month();
    let by_actor = api_by_actor(&app, from, to, &[]).await;
    let users = app.state.org.users().await.unwrap();
    let ((_, user_id), (cost, _, _)) = by_actor
        .iter()
        .filter(|((kind, id), _)| kind == "user_actor" && users.iter().any(|u| &u.id == id))
        .max_by_key(|(_, v)| v.0)
        .expect("a current member with cost last month");

    let (_, page) = viewer.get_text(&format!("/members/{user_id}")).await;
    let partial = viewer
        .http
        .get(app.url(&format!("/members/{user_id}/cost")))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, whole) = viewer.get_text(&format!("/members/{user_id}/cost")).await;

    assert!(page.contains(&format!("hx-get=\"/members/{user_id}/cost\"")));
    assert!(!partial.contains("<html"), "htmx gets the section only");
    let partial = without_data_labels(&partial);
    let month_row = format!(
        "<th scope=\"row\">{}</th><td class=\"num\">{}</td>",
        from.format("%B %Y"),
        orgkeeper::web::usage::dollars(*cost)
    );
    assert!(partial.contains(&month_row), "missing {month_row}");
    assert!(partial.contains("<svg class=\"chart chart-wide\""));
    assert_eq!(status, 200);
    assert!(whole.contains("<html") && without_data_labels(&whole).contains(&month_row));
}

#[tokio::test]
async fn cost_center_changes_a_crash_interrupted_are_resolved_at_the_next_start() {
    use orgkeeper::audit::{Actor, NewEntry, Resolution, Source, Target};
    let app = spawn_app().await;
    let (account, owner) = app.signed_in(Role::Owner).await;
    assert_eq!(
        owner
            .post("/cost/centers", &[("name", "Data")])
            .await
            .status(),
        303
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM cost_centers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let workspace = app.first_workspace_id().await;
    // What a process killed between the intent and the outcome leaves: the intent, and the
    // change made (the assignment) or not (the second center).
    let actor = Actor::account(account.id, &account.username, "owner");
    let orphan = |action: &'static str, target: Target, details: serde_json::Value| {
        let actor = actor.clone();
        let audit = app.state.audit.clone();
        async move {
            audit
                .append(
                    NewEntry::new(actor, Source::default(), action, Outcome::Pending)
                        .target(target)
                        .details(details),
                )
                .await
                .unwrap()
        }
    };
    let center = |label: &str| Target {
        kind: "cost_center".into(),
        id: id.to_string(),
        label: Some(label.into()),
    };
    let assigned = orphan(
        "cost_center.assigned",
        center("Data"),
        serde_json::json!({ "kind": "workspace", "target_id": workspace, "before": null, "after": "Data" }),
    )
    .await;
    sqlx::query("INSERT INTO cost_center_rules (kind, target_id, center_id, created_at) VALUES ('workspace', ?, ?, '2026-12-01T00:00:00Z')")
        .bind(&workspace)
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let created = orphan(
        "cost_center.created",
        Target {
            kind: "cost_center".into(),
            id: "new".into(),
            label: Some("Ghost".into()),
        },
        serde_json::json!({ "name": "Ghost" }),
    )
    .await;
    let renamed = orphan(
        "cost_center.renamed",
        center("Data"),
        serde_json::json!({ "before": { "name": "Data" }, "after": { "name": "Analytics" } }),
    )
    .await;

    let (simulator, dir, config) = app.stop().await;
    let app = spawn_app_with(config, simulator, Some(dir)).await;

    for (intent, resolution) in [
        (assigned, Resolution::Applied),
        (created, Resolution::NotApplied),
        (renamed, Resolution::NotApplied),
    ] {
        let record = app
            .state
            .audit
            .outcomes_of(&[intent])
            .await
            .unwrap()
            .remove(&intent)
            .unwrap_or_else(|| panic!("intent {intent} has no outcome"));
        assert_eq!(record.resolution(), Some(resolution), "{record:?}");
        assert!(!record.details["reason"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn when_the_analytics_api_fails_the_people_page_shows_the_stored_numbers_and_says_so() {
    let app = synced().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (from, _) = last_month();
    let path = format!("/cost/people?month={}", month_param(from));
    let (_, before) = viewer.get_text(&path).await;
    // Make the next view refresh, and make that refresh fail.
    sqlx::query("UPDATE usage_sync SET refreshed_at = '2000-01-01T00:00:00Z'")
        .execute(&app.db)
        .await
        .unwrap();
    app.simulator
        .faults()
        .inject(orgkeeper::simulator::FaultRule {
            method: None,
            path_contains: Some("analytics".into()),
            kind: orgkeeper::simulator::FaultKind::ServerError,
            times: 20,
        });

    let (status, after) = viewer.get_text(&path).await;

    assert_eq!(status, 200);
    assert!(after.contains("Showing stored data from"), "{after}");
    let table = |html: &str| html[html.find("id=\"people-table\"").unwrap()..].to_owned();
    assert_eq!(table(&before), table(&after), "nothing stored was lost");
}

#[tokio::test]
async fn the_usage_job_refreshes_cost_per_person_every_five_minutes_not_every_round() {
    let app = synced().await;
    let analytics = |app: &TestApp| {
        app.simulator
            .request_counts()
            .get("analytics")
            .copied()
            .unwrap_or(0)
    };
    app.simulator.reset_request_count();
    app.state.clock.advance(std::time::Duration::from_secs(60));
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    assert_eq!(analytics(&app), 0, "refreshed a minute ago");
    assert!(
        app.simulator
            .request_counts()
            .get("usage_report")
            .copied()
            .unwrap_or(0)
            > 0,
        "the usage report is still read every round"
    );
    app.state
        .clock
        .advance(std::time::Duration::from_secs(5 * 60));
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    assert!(analytics(&app) > 0, "five minutes later it is refreshed");
}

/// A page that starts the first read of cost per person stops waiting at its deadline and says
/// the numbers are being read; the read goes on, and what it stored is there on the next view.
/// (A read cut off with the page kept nothing, so on a large organization no view ever got
/// further than the first.)
#[tokio::test]
async fn a_read_of_cost_per_person_outlasting_its_page_goes_on_and_is_kept() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(2);
    })
    .await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    // Each call answers well within its own deadline; a year of windows takes far longer.
    app.simulator
        .faults()
        .set_latency(std::time::Duration::from_millis(600));

    let started = std::time::Instant::now();
    let (status, first) = viewer.get_text("/cost/people").await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{first}");
    assert!(
        waited < std::time::Duration::from_secs(10),
        "the page waited {waited:?}"
    );
    assert!(
        first.contains("reading these numbers from Anthropic for the first time"),
        "{first}"
    );
    assert_eq!(app.state.analytics.progress().await.unwrap(), None);

    app.simulator
        .faults()
        .set_latency(std::time::Duration::ZERO);
    let stored = async {
        while app.state.analytics.progress().await.unwrap().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), stored)
        .await
        .expect("the read the page started finished and was stored");

    let (status, second) = viewer.get_text("/cost/people").await;
    assert_eq!(status, 200);
    assert!(!second.contains("for the first time"), "{second}");
    let actors: u32 = second
        .split(" people, service accounts and keys")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of people in {second}"));
    assert!(actors > 0, "the stored read's people are shown");
}

/// With cost per person stored, a page never waits out its deadline for a newer read: a
/// read of a large organization takes minutes. It shows what is stored and says so, whether
/// the read is its own or the job's, and the read goes on.
#[tokio::test]
async fn a_page_with_stored_cost_per_person_shows_it_while_a_newer_read_runs() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(20);
    })
    .await;
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (from, _) = last_month();
    let path = format!("/cost/people?month={}", month_param(from));
    let (_, before) = viewer.get_text(&path).await;
    let table = |html: &str| html[html.find("id=\"people-table\"").unwrap()..].to_owned();
    // Stale, so the next view reads again; and that read hangs.
    sqlx::query("UPDATE usage_sync SET refreshed_at = '2000-01-01T00:00:00Z'")
        .execute(&app.db)
        .await
        .unwrap();
    app.simulator
        .faults()
        .inject(orgkeeper::simulator::FaultRule {
            method: None,
            path_contains: Some("analytics".into()),
            kind: orgkeeper::simulator::FaultKind::Hang,
            times: 1000,
        });

    // The page's own read.
    let started = std::time::Instant::now();
    let (status, own) = viewer.get_text(&path).await;
    let waited = started.elapsed();
    assert_eq!(status, 200, "{own}");
    assert!(
        waited < std::time::Duration::from_secs(15),
        "the page waited {waited:?}, near its 20 s deadline"
    );
    assert!(
        own.contains("newer numbers are being read from Anthropic in the background"),
        "{own}"
    );
    assert_eq!(table(&before), table(&own), "the stored numbers are shown");

    // Its read still runs (it holds the store's lock); the next view does not queue behind it.
    let started = std::time::Instant::now();
    let (status, next) = viewer.get_text(&path).await;
    assert_eq!(status, 200, "{next}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    assert!(next.contains("newer numbers are being read"), "{next}");
    assert_eq!(table(&before), table(&next));
}

/// With nothing stored yet, a page does not wait for the job's first read of cost per person
/// either (minutes on a large organization, and a restart in the middle starts it again): it
/// says at once that the numbers are being read for the first time.
#[tokio::test]
async fn a_page_does_not_wait_for_the_jobs_first_read_of_cost_per_person() {
    let app = spawn_app_configured(Default::default(), |config| {
        config.api_deadline = std::time::Duration::from_secs(20);
    })
    .await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    assert_eq!(app.state.analytics.progress().await.unwrap(), None);
    let job = app.usage_job_hanging_at("analytics", "analytics").await;

    for path in ["/cost/people", "/cost/centers"] {
        let started = std::time::Instant::now();
        let (status, body) = viewer.get_text(path).await;
        let waited = started.elapsed();
        assert_eq!(status, 200, "{path}: {body}");
        // It does not wait the 3 s it gives its own read, nor its 20 s deadline.
        assert!(
            waited < std::time::Duration::from_secs(3),
            "{path} waited {waited:?}"
        );
        assert!(
            body.contains("reading these numbers from Anthropic for the first time"),
            "{path}: {body}"
        );
    }
    job.abort();
}

/// Between the job's reads of cost per person (every 5 minutes), a page reads nothing: only
/// when the job is late (its last read more than 7.5 minutes old) does a page read it itself.
#[tokio::test]
async fn pages_read_cost_per_person_only_when_the_job_is_late() {
    let app = synced().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let analytics = |app: &TestApp| {
        app.simulator
            .request_counts()
            .get("analytics")
            .copied()
            .unwrap_or(0)
    };
    app.simulator.reset_request_count();
    let minutes = |n: u64| std::time::Duration::from_secs(n * 60);
    app.state.clock.advance(minutes(4));
    let (status, body) = viewer.get_text("/cost/people").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(analytics(&app), 0, "it is the job's to read until then");
    assert!(!body.contains("being read"), "{body}");

    app.state.clock.advance(minutes(4));
    let (status, body) = viewer.get_text("/cost/people").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        analytics(&app) > 0,
        "eight minutes without a read of the job's"
    );
}
