//! Usage, cost and budgets over real HTTP, checked against the simulator's own reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use orgkeeper::anthropic::{
    BucketWidth, CostGroupBy, CostReportParams, UsageGroupBy, UsageReportParams,
};
use orgkeeper::audit::Filter;
use orgkeeper::auth::Role;
use orgkeeper::config::ServerConfig;
use orgkeeper::simulator::SimulatorOptions;
use orgkeeper::usage_store;
use orgkeeper::usage_store::Reads;
use rust_decimal::Decimal;

/// Background jobs off: tests drive the sync themselves and count every upstream request.
async fn spawn() -> TestApp {
    spawn_with(|_| {}).await
}

async fn spawn_with(change: impl FnOnce(&mut ServerConfig)) -> TestApp {
    spawn_app_configured(SimulatorOptions::default(), |config| {
        config.background_jobs = false;
        change(config);
    })
    .await
}

/// The last seven complete days: settled, so the numbers cannot move during a test.
fn settled_week() -> (NaiveDate, NaiveDate) {
    let today = Utc::now().date_naive();
    (
        today - chrono::Duration::days(7),
        today - chrono::Duration::days(1),
    )
}

fn day_start(d: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
}

/// A minimal CSV reader (quoted fields with doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    text.lines()
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
        .collect()
}

/// Output tokens per workspace name over `[from, to]` according to the Admin API itself.
async fn api_output_by_workspace(
    app: &TestApp,
    from: NaiveDate,
    to: NaiveDate,
    workspace_ids: Vec<String>,
) -> HashMap<String, i64> {
    let names: HashMap<String, String> = app
        .state
        .org
        .workspaces()
        .await
        .unwrap()
        .iter()
        .map(|w| (w.id.clone(), w.name.clone()))
        .collect();
    let mut p = UsageReportParams::new(day_start(from));
    p.ending_at = Some(day_start(to) + chrono::Duration::days(1));
    p.bucket_width = Some(BucketWidth::Day);
    p.limit = Some(31);
    p.group_by = vec![UsageGroupBy::WorkspaceId];
    p.workspace_ids = workspace_ids;
    let mut out = HashMap::new();
    for b in app.state.org.api().all(&p).await.unwrap() {
        for r in b.results {
            let name = match r.workspace_id {
                None => "Default Workspace".to_owned(),
                Some(id) => names.get(&id).cloned().unwrap_or(id),
            };
            *out.entry(name).or_default() += r.output_tokens as i64;
        }
    }
    out
}

/// Column sums of a usage CSV by header name.
/// Sums per column, keyed by the column's name without its measure ("Staging", "total").
fn column_sums(rows: &[Vec<String>]) -> HashMap<String, i64> {
    let header = &rows[0];
    let mut sums = HashMap::new();
    for row in &rows[1..] {
        for (i, name) in header.iter().enumerate().skip(1) {
            let name = name.rsplit_once(" (").map_or(name.as_str(), |(n, _)| n);
            *sums.entry(name.to_owned()).or_default() += row[i].parse::<i64>().unwrap();
        }
    }
    sums
}

#[tokio::test]
async fn usage_grouped_by_workspace_matches_the_admin_api_report_and_the_csv_matches_the_table() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    let (from, to) = settled_week();
    let query = format!("range=custom&from={from}&to={to}&group_by=workspace&measure=output");

    let (status, csv) = session.get_text(&format!("/usage.csv?{query}")).await;
    let (page_status, html) = session.get_text(&format!("/usage?{query}")).await;
    let html = without_data_labels(&html);

    assert_eq!(status, 200, "{csv}");
    assert_eq!(page_status, 200);
    let rows = parse_csv(&csv);
    assert_eq!(rows[0][0], "period_start");
    assert_eq!(rows[0].last().unwrap(), "total (output_tokens)");
    assert_eq!(rows.len(), 1 + 7, "one row per day of the range");
    assert_eq!(rows[1][0], from.to_string(), "ISO dates, oldest first");
    let expected = api_output_by_workspace(&app, from, to, vec![]).await;
    let sums = column_sums(&rows);
    let mut named = 0;
    for (name, value) in &sums {
        if name != "total" && name != "Other" {
            assert_eq!(Some(value), expected.get(name), "output tokens of {name}");
            named += 1;
        }
    }
    assert!(named >= 2, "several workspaces have usage: {:?}", rows[0]);
    assert_eq!(sums["total"], expected.values().sum::<i64>());
    // The page shows the same table: every CSV row appears as a table row.
    for row in &rows[1..] {
        let cells: Vec<String> = row[1..]
            .iter()
            .map(|v| {
                let n: i64 = v.parse().unwrap();
                format_thousands(n)
            })
            .collect();
        // The CSV keeps ISO days; the page writes them as every page writes dates.
        let day = chrono::NaiveDate::parse_from_str(&row[0], "%Y-%m-%d").unwrap();
        let mut expected_row = format!(
            "<tr><th scope=\"row\">{}</th>",
            orgkeeper::labels::calendar_day(day)
        );
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                expected_row.push_str(&format!("<td class=\"num\"><strong>{c}</strong></td>"));
            } else {
                expected_row.push_str(&format!("<td class=\"num\">{c}</td>"));
            }
        }
        assert!(
            html.contains(&expected_row),
            "missing table row {expected_row}"
        );
    }
    // A chart series per CSV column, and names instead of ids.
    assert!(html.contains("<svg class=\"chart chart-wide\""));
    assert_eq!(
        html.matches("<g data-series=").count(),
        2 * (rows[0].len() - 2),
        "in the wide and the narrow drawing"
    );
    assert!(html.contains("<select class=\"form-select\" name=\"group_by\">"));
    assert!(
        !html.contains("data-series=\"wrkspc_"),
        "workspaces are shown by name"
    );
}

fn format_thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn a_model_filter_and_api_key_grouping_give_the_api_numbers_with_console_usage_named() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Admin).await;
    let (from, to) = settled_week();
    // The busiest model of the week, according to the API.
    let mut p = UsageReportParams::new(day_start(from));
    p.ending_at = Some(day_start(to) + chrono::Duration::days(1));
    p.bucket_width = Some(BucketWidth::Day);
    p.group_by = vec![UsageGroupBy::Model, UsageGroupBy::ApiKeyId];
    let buckets = app.state.org.api().all(&p).await.unwrap();
    let mut per_model: HashMap<String, i64> = HashMap::new();
    let mut console = false;
    for r in buckets.iter().flat_map(|b| &b.results) {
        *per_model.entry(r.model.clone().unwrap()).or_default() += r.uncached_input_tokens as i64;
        console |= r.api_key_id.is_none();
    }
    let (model, expected) = per_model.into_iter().max_by_key(|(_, v)| *v).unwrap();

    let (status, csv) = session
        .get_text(&format!(
            "/usage?format=csv&range=custom&from={from}&to={to}&group_by=api_key&model={model}"
        ))
        .await;

    assert_eq!(status, 200);
    let rows = parse_csv(&csv);
    assert_eq!(column_sums(&rows)["total"], expected);
    let (_, html) = session
        .get_text(&format!(
            "/usage?range=custom&from={from}&to={to}&group_by=api_key"
        ))
        .await;
    if console {
        assert!(html.contains("Console / Workbench (no API key)"));
    }
    assert!(
        !html.contains("data-series=\"apikey_"),
        "keys are shown by name"
    );
}

#[tokio::test]
async fn opening_the_usage_page_again_makes_at_most_one_upstream_request() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Owner).await;
    let (status, _) = session.get_text("/usage?range=30d").await;
    assert_eq!(status, 200);
    app.simulator.reset_request_count();

    let (status, body) = session.get_text("/usage?range=30d").await;

    assert_eq!(status, 200);
    assert!(
        app.simulator.request_count() <= 1,
        "{} requests",
        app.simulator.request_count()
    );
    assert!(body.contains("<svg class=\"chart chart-wide\""));
}

#[tokio::test]
async fn the_store_keeps_history_and_after_a_restart_fetches_only_what_is_missing() {
    let app = spawn().await;
    let settle = app.config.usage_settle;
    let now = Utc::now();
    usage_store::sync(app.state.org.api(), &app.db, settle, 31, now)
        .await
        .unwrap();
    let first = app.simulator.request_count();
    assert!(
        first >= 3 + 4,
        "the first sync pages through the history ({first} requests)"
    );
    // Ninety days of daily history, beyond the API's 31 days per request.
    let days: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT start) FROM usage_buckets WHERE width = '1d'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(days >= 90, "{days} days stored");
    assert!(!usage_store::key_last_used(&app.db)
        .await
        .unwrap()
        .is_empty());

    let (simulator, dir, config) = app.stop().await;
    simulator.advance_clock(Duration::from_secs(3 * 86_400));
    let app = spawn_app_with(config, simulator, Some(dir)).await;
    app.simulator.reset_request_count();
    let later = now + chrono::Duration::days(3);
    usage_store::sync(app.state.org.api(), &app.db, settle, 31, later)
        .await
        .unwrap();

    assert_eq!(
        app.simulator.request_count(),
        6,
        "the three missing days and today: one request of days, one of cost, and one of \
         hours per day (a page of hours is a day, so an xlarge page stays small)"
    );
    let newest: String =
        sqlx::query_scalar("SELECT MAX(start) FROM usage_buckets WHERE width = '1d'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        newest.starts_with(&later.date_naive().to_string()),
        "{newest}"
    );
    let still_old: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT start) FROM usage_buckets WHERE width = '1d'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(still_old >= days + 3);
}

#[tokio::test]
async fn a_30_day_hourly_export_streams_one_row_per_hour_and_htmx_gets_only_the_results() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Viewer).await;

    let before = Utc::now();
    let response = session
        .get("/usage.csv?range=30d&resolution=hour&group_by=model")
        .await;
    let partial = session
        .http
        .get(app.url("/usage?range=7d&group_by=model"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(
        response.headers().get("content-length").is_none(),
        "streamed"
    );
    let rows = parse_csv(&response.text().await.unwrap());
    let first = day_start(before.date_naive()) - chrono::Duration::days(29);
    let hours = (before - first).num_hours() + 1;
    // An hour may begin while the test runs.
    assert!(
        [hours, hours + 1].contains(&(rows.len() as i64 - 1)),
        "{} rows",
        rows.len()
    );
    assert_eq!(rows[1][0], first.format("%Y-%m-%dT%H:%MZ").to_string());
    assert!(rows[1..].iter().all(|r| r.len() == rows[0].len()));
    assert!(partial.contains("<svg class=\"chart chart-wide\""));
    assert!(
        !partial.contains("<html"),
        "htmx requests get the results only"
    );
    // Hours older than the kept window are refused with the reason, not silently empty.
    let (status, page) = session.get_text("/usage?range=90d&resolution=hour").await;
    assert_eq!(status, 400);
    assert!(
        page.contains("Hourly detail is kept for the last 31 days"),
        "{page}"
    );
}

#[tokio::test]
async fn a_month_of_fractional_cents_adds_up_exactly_on_the_cost_page() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    let this_month = Utc::now().date_naive().with_day(1).unwrap();
    let last_month = (this_month - chrono::Duration::days(1))
        .with_day(1)
        .unwrap();
    let mut p = CostReportParams::new(day_start(last_month));
    p.ending_at = Some(day_start(this_month));
    p.limit = Some(31);
    p.group_by = vec![CostGroupBy::Description];
    let exact: Decimal = app
        .state
        .org
        .api()
        .all(&p)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| &b.results)
        .map(|r| r.amount)
        .sum();
    assert!(
        exact.normalize().scale() > 0,
        "the amounts carry fractional cents"
    );

    let (status, html) = session
        .get_text(&format!("/cost?month={}", last_month.format("%Y-%m")))
        .await;

    assert_eq!(status, 200);
    let dollars = orgkeeper::web::usage::dollars(exact);
    assert!(
        html.contains(&format!("<dd id=\"cost-total\"><strong>{dollars}</strong>")),
        "expected {dollars} (from {exact} cents)"
    );
    // Float arithmetic would not survive this; decimals do.
    let tenth = Decimal::new(1, 1);
    let month: Decimal = (0..31).map(|_| tenth).sum();
    assert_eq!(month, Decimal::new(31, 1));
    assert_eq!(
        orgkeeper::web::usage::dollars(Decimal::new(2050, 1)),
        "$2.05"
    );
}

/// A webhook receiver on 127.0.0.1:0 that counts posts; the first `fail_first` get a 500.
async fn receiver(
    fail_first: usize,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let count = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, b) = (count.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                b.lock().unwrap().push(body);
                if n < fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count, bodies)
}

async fn wait_for(count: &AtomicUsize, n: usize) {
    for _ in 0..100 {
        if count.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_crossed_budget_threshold_alerts_once_with_an_audit_record_and_a_retried_webhook() {
    let (url, posts, bodies) = receiver(1).await;
    let app = spawn_with(|c| c.alert_webhook_url = Some(url)).await;
    let (_, owner) = app.signed_in(Role::Owner).await;
    // One cent: any spend this month crosses it.
    let response = owner
        .post(
            "/budgets",
            &[("scope", "org"), ("amount", "0.01"), ("thresholds", "100")],
        )
        .await;
    assert_eq!(response.status(), 303);

    let (status, html) = owner.get_text("/cost").await;

    assert_eq!(status, 200);
    assert!(
        html.contains("budget-banner"),
        "the cost page shows the crossing"
    );
    // The banner states where spend is now (far above a one-cent budget), not "100%", the
    // threshold it crossed.
    let banner = html
        .split("Whole organization has used ")
        .nth(1)
        .expect("the banner names the scope and its share");
    let shown: f64 = banner[..banner.find('%').unwrap()]
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(shown > 100.0, "the banner says {shown}%, the current share");
    let crossed = Filter {
        action: Some("budget.threshold_crossed".into()),
        ..Default::default()
    };
    assert_eq!(app.audit_records(crossed.clone()).await.len(), 1);
    wait_for(&posts, 2).await;
    assert_eq!(
        posts.load(Ordering::SeqCst),
        2,
        "one failed post, one retry"
    );
    let body: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[1]).unwrap();
    assert!(body["text"].as_str().unwrap().contains("100%"));

    // Reloading (and a sync's check) raises nothing new.
    owner.get_text("/cost").await;
    let raised = orgkeeper::service::budgets::check_thresholds(&app.state, Utc::now())
        .await
        .unwrap();
    assert_eq!(raised, 0, "nothing new crossed, so nothing is sent");
    assert_eq!(app.audit_records(crossed).await.len(), 1);
    assert_eq!(posts.load(Ordering::SeqCst), 2);
    let set = app
        .audit_records(Filter {
            action: Some("budget.set".into()),
            ..Default::default()
        })
        .await;
    let outcome = set.iter().find(|r| r.intent_seq.is_some()).unwrap();
    assert_eq!(outcome.details["before"], serde_json::Value::Null);
    assert_eq!(outcome.details["after"]["amount_cents"], "1");
}

#[tokio::test]
async fn budgets_are_changed_only_by_admins_and_bad_input_keeps_what_was_typed() {
    let app = spawn().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (_, admin) = app.signed_in(Role::Admin).await;

    let denied = viewer
        .post(
            "/budgets",
            &[("scope", "org"), ("amount", "100"), ("thresholds", "50")],
        )
        .await;
    let invalid = admin
        .post(
            "/budgets",
            &[
                ("scope", "org"),
                ("amount", "12.345"),
                ("thresholds", "50, 90"),
            ],
        )
        .await;

    assert_eq!(denied.status(), 403);
    assert_eq!(invalid.status(), 422);
    let body = invalid.text().await.unwrap();
    assert!(body.contains("at most two decimals"));
    assert!(body.contains("value=\"50, 90\""));
    assert!(usage_store::budgets(&app.db).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_team_lead_sees_only_their_workspaces_usage_cost_and_names() {
    let app = spawn().await;
    let workspaces = app.state.org.workspaces().await.unwrap();
    let mine = workspaces
        .iter()
        .find(|w| w.name != "Default Workspace" && w.archived_at.is_none())
        .unwrap()
        .clone();
    let other = workspaces.iter().find(|w| w.id != mine.id).unwrap();
    let (_, owner) = app.signed_in(Role::Owner).await;
    for scope in ["org", mine.id.as_str(), other.id.as_str()] {
        let set = owner
            .post(
                "/budgets",
                &[
                    ("scope", scope),
                    ("amount", "1000000"),
                    ("thresholds", "90"),
                ],
            )
            .await;
        assert_eq!(set.status(), 303);
    }
    let lead = app
        .create_account("lead", Role::TeamLead, &[&mine.id])
        .await;
    let session = app.login_as(&lead.username).await;
    let (from, to) = settled_week();

    let (_, csv) = session
        .get_text(&format!(
            "/usage.csv?range=custom&from={from}&to={to}&group_by=workspace&measure=output"
        ))
        .await;
    let (_, html) = session
        .get_text(&format!(
            "/usage?range=custom&from={from}&to={to}&group_by=workspace"
        ))
        .await;
    let (_, cost) = session.get_text("/cost").await;
    let (_, budgets) = session.get_text("/budgets").await;
    let (forbidden, _) = session
        .get_text(&format!("/usage?workspace={}", other.id))
        .await;

    let rows = parse_csv(&csv);
    assert_eq!(
        rows[0],
        vec![
            "period_start".to_owned(),
            format!("{} (output_tokens)", mine.name),
            "total (output_tokens)".to_owned()
        ]
    );
    let expected = api_output_by_workspace(&app, from, to, vec![mine.id.clone()]).await;
    assert_eq!(column_sums(&rows)["total"], expected.values().sum::<i64>());
    for w in workspaces.iter().filter(|w| w.id != mine.id) {
        // Where names appear: chart series, legend, filter menus, table headers.
        let shown = |page: &str| {
            [
                format!("data-series=\"{}\"", w.name),
                format!(">{}</option>", w.name),
                format!("<th scope=\"col\">{}</th>", w.name),
                format!(">{}</a></th>", w.name),
            ]
            .iter()
            .any(|p| page.contains(p))
        };
        assert!(!shown(&html), "usage page shows {}", w.name);
        assert!(!shown(&cost), "cost page shows {}", w.name);
    }
    assert!(html.contains(&format!("data-series=\"{}\"", mine.name)));
    assert!(!cost.contains("Whole organization"));
    assert!(budgets.contains(&format!("<th scope=\"row\">{}</th>", mine.name)));
    assert!(!budgets.contains("Whole organization"));
    // The overview shows spend against the same budgets, scoped the same way.
    let (_, lead_home) = session.get_text("/").await;
    let lead_budgets = lead_home
        .split("id=\"overview-budgets\"")
        .nth(1)
        .expect("the lead's overview lists budgets");
    assert!(lead_budgets.contains(&format!("<td>{}</td>", mine.name)));
    assert!(!lead_budgets.contains("Whole organization"));
    assert!(!lead_budgets.contains(&format!("<td>{}</td>", other.name)));
    // ... and the month-to-date spend of their workspaces, the same as their cost page.
    let amount = |page: &str, id: &str| {
        page.split(&format!("id=\"{id}\"><strong>"))
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .map(str::to_owned)
    };
    let lead_spend =
        amount(&lead_home, "overview-spend").expect("the lead sees this month's spend");
    assert!(lead_budgets.contains("in your workspaces"));
    assert_eq!(Some(lead_spend), amount(&cost, "cost-total"));
    let (_, owner_home) = owner.get_text("/").await;
    assert!(
        owner_home.contains("Whole organization"),
        "owners see the organization budget on the overview"
    );
    assert!(!budgets.contains(&format!("<th scope=\"row\">{}</th>", other.name)));
    assert_eq!(forbidden, 403);
}

#[tokio::test]
async fn claude_code_shows_people_and_is_withheld_from_team_leads() {
    let app = spawn().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let (_, lead) = app.signed_in(Role::TeamLead).await;

    let (status, html) = viewer.get_text("/claude-code").await;
    let (lead_status, lead_html) = lead.get_text("/claude-code").await;

    assert_eq!(status, 200);
    assert!(html.contains("claude-code-days"));
    assert!(html.contains('@'), "people are shown by email");
    assert_eq!(lead_status, 200);
    assert!(!lead_html.contains('@') || !lead_html.contains("claude-code-days"));
    assert!(lead_html.contains("not shown to team leads"));
}

/// Both Claude Code tables are paged (they grow with the organization and the range): every
/// person-day appears on exactly one page, fifty at most to a page, in the same order.
#[tokio::test]
async fn claude_codes_tables_are_paged_and_every_row_is_on_exactly_one_page() {
    let app = spawn().await;
    let (_, viewer) = app.signed_in(Role::Viewer).await;
    let days_rows = |html: &str| -> Vec<String> {
        let table = &html[html.find("claude-code-days").unwrap()..];
        let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
        body.split("<tr>").skip(1).map(|r| r.to_owned()).collect()
    };
    let (status, first) = viewer.get_text("/claude-code?days=30").await;
    assert_eq!(status, 200);
    let mut seen = days_rows(&first);
    assert_eq!(seen.len(), 50, "a full first page");
    let mut page = first;
    let mut pages = 1;
    while let Some(at) = page.find("aria-label=\"Pages of the days\"") {
        let nav = &page[at..];
        let Some(next) = nav.find("class=\"next_page\" href=\"") else {
            break;
        };
        let href = &nav[next + 24..];
        let href = href[..href.find('"').unwrap()].replace("&#38;", "&");
        assert!(href.contains("days=30"), "the range is kept: {href}");
        let (status, html) = viewer.get_text(&href).await;
        assert_eq!(status, 200);
        let rows = days_rows(&html);
        assert!(!rows.is_empty() && rows.len() <= 50);
        seen.extend(rows);
        page = html;
        pages += 1;
    }
    assert!(
        pages > 1,
        "thirty days of the demo hold more than fifty person-days"
    );
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row on two pages");
    let last_page_text = page
        .split("Pages of the days")
        .nth(1)
        .map(|nav| nav.to_owned())
        .unwrap_or_default();
    assert!(
        last_page_text.contains(&format!(
            "of {}",
            orgkeeper::web::present::count(seen.len())
        )),
        "the pager counts every row: {} rows seen",
        seen.len()
    );
}

#[tokio::test]
async fn when_the_api_fails_the_usage_page_shows_the_stored_numbers_and_says_so() {
    let app = spawn().await;
    let (_, session) = app.signed_in(Role::Viewer).await;
    let (_, before) = session.get_text("/usage?range=30d").await;
    // Make the next page load refresh, and make that refresh fail.
    sqlx::query("UPDATE usage_sync SET refreshed_at = '2000-01-01T00:00:00Z'")
        .execute(&app.db)
        .await
        .unwrap();
    app.simulator
        .faults()
        .inject(orgkeeper::simulator::FaultRule {
            method: None,
            path_contains: Some("usage_report".into()),
            kind: orgkeeper::simulator::FaultKind::ServerError,
            times: 20,
        });

    let (status, after) = session.get_text("/usage?range=30d").await;

    assert_eq!(status, 200);
    assert!(
        after.contains("Showing stored data"),
        "the page says the numbers may be old"
    );
    let table = |html: &str| html[html.find("<tbody>").unwrap()..].to_owned();
    assert_eq!(table(&before), table(&after), "nothing stored was lost");
}

/// The usage job's first round after a start waits until the store is a round old, so a
/// restart does not read again what was just read (nor invalidate the figures built before
/// serving); a store never synced is read at once.
#[tokio::test]
async fn the_usage_jobs_first_round_waits_until_the_store_is_a_round_old() {
    use orgkeeper::service::usage::round_due_in;

    let app = spawn().await;
    let round = Duration::from_secs(60);
    assert_eq!(
        round_due_in(&app.state, round).await,
        Duration::ZERO,
        "never synced"
    );
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    // The test clock moves with real time too: a busy machine may take seconds per step.
    let due = round_due_in(&app.state, round).await;
    assert!(
        due <= round && due > Duration::from_secs(45),
        "just synced: {due:?}"
    );
    app.state.clock.advance(Duration::from_secs(20));
    let due = round_due_in(&app.state, round).await;
    assert!(
        due <= Duration::from_secs(40) && due > Duration::from_secs(25),
        "{due:?}"
    );
    app.state.clock.advance(Duration::from_secs(50));
    assert_eq!(
        round_due_in(&app.state, round).await,
        Duration::ZERO,
        "overdue"
    );
}

/// When the memo is full it lets go of results older than their reports first: a newer
/// usage report does not push out the cost pages' current figures.
#[tokio::test]
async fn a_full_memo_keeps_the_current_results_of_other_reports() {
    let app = spawn().await;
    let (memo, store) = (&app.state.reports, &app.state.usage);
    let cost = || async { Ok::<_, sqlx::Error>(1u32) };
    assert_eq!(
        *memo
            .get(store, Reads::Cost, "cost".into(), cost)
            .await
            .unwrap(),
        1
    );
    let usage = |n: u32| async move { Ok::<_, sqlx::Error>(n) };
    for n in 0..200 {
        memo.get(store, Reads::Usage, format!("usage {n}"), || usage(n))
            .await
            .unwrap();
    }
    // The usage report changes: the 200 results above are now older than it.
    sqlx::query(
        "INSERT INTO usage_sync (kind, settled_until, refreshed_at) VALUES ('usage_1d', '', 'later') \
         ON CONFLICT (kind) DO UPDATE SET refreshed_at = excluded.refreshed_at",
    )
    .execute(&app.db)
    .await
    .unwrap();
    for n in 200..300 {
        memo.get(store, Reads::Usage, format!("usage {n}"), || usage(n))
            .await
            .unwrap();
    }
    let again = memo
        .get(store, Reads::Cost, "cost".into(), || async {
            Ok::<_, sqlx::Error>(2u32)
        })
        .await
        .unwrap();
    assert_eq!(*again, 1, "the cost result is still current, and kept");
}

/// The report memo: a result is rebuilt when a report it reads changes (and only then), but
/// while one caller builds the newer result (the usage job, right after a round), others get
/// the previous one at once instead of building it again — and once it is built, everyone gets
/// the new one.
#[tokio::test]
async fn while_one_caller_builds_a_newer_report_others_get_the_previous_one() {
    let app = spawn().await;
    let (memo, store) = (&app.state.reports, &app.state.usage);
    let change_report = |kind: &'static str, at: &'static str| {
        sqlx::query(
            "INSERT INTO usage_sync (kind, settled_until, refreshed_at) VALUES (?, '', ?) \
             ON CONFLICT (kind) DO UPDATE SET refreshed_at = excluded.refreshed_at",
        )
        .bind(kind)
        .bind(at)
        .execute(&app.db)
    };
    let change_store = |at: &'static str| change_report("cost_1d", at);
    change_store("1").await.unwrap();
    let first = memo
        .get(store, Reads::Cost, "k".into(), || async {
            Ok::<_, sqlx::Error>(1u32)
        })
        .await
        .unwrap();
    assert_eq!(*first, 1);
    change_store("2").await.unwrap();

    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let second_built = std::sync::atomic::AtomicBool::new(false);
    let builder = memo.get(store, Reads::Cost, "k".into(), || async move {
        started_tx.send(()).unwrap();
        released.await.unwrap();
        Ok::<_, sqlx::Error>(2u32)
    });
    let meanwhile = async {
        started.await.unwrap();
        let got = memo
            .get(store, Reads::Cost, "k".into(), || async {
                second_built.store(true, Ordering::SeqCst);
                Ok::<_, sqlx::Error>(3u32)
            })
            .await
            .unwrap();
        release.send(()).unwrap();
        got
    };
    let (built, meanwhile) = tokio::join!(builder, meanwhile);
    assert_eq!(
        *meanwhile, 1,
        "the previous result while the newer one is built"
    );
    assert!(!second_built.load(Ordering::SeqCst), "not built twice");
    assert_eq!(*built.unwrap(), 2);
    let after = memo
        .get(store, Reads::Cost, "k".into(), || async {
            Ok::<_, sqlx::Error>(4u32)
        })
        .await
        .unwrap();
    assert_eq!(*after, 2, "the newer result once built");
    // A read of other reports (the usage report, cost per person) leaves it as it is.
    change_report("usage_1d", "later").await.unwrap();
    change_report("analytics_1d", "later").await.unwrap();
    let kept = memo
        .get(store, Reads::Cost, "k".into(), || async {
            Ok::<_, sqlx::Error>(6u32)
        })
        .await
        .unwrap();
    assert_eq!(*kept, 2, "not rebuilt for reports it does not read");
    // With nobody building, a changed store is never answered from the past.
    change_store("3").await.unwrap();
    let fresh = memo
        .get(store, Reads::Cost, "k".into(), || async {
            Ok::<_, sqlx::Error>(5u32)
        })
        .await
        .unwrap();
    assert_eq!(*fresh, 5);
}
