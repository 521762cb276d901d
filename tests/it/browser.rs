//! Browser flows in headless Chromium through WebDriver, against the real server with the
//! simulator behind it. Each flow saves a screenshot under target/browser-screenshots/ when it
//! fails. Needs `sudo apt-get install chromium chromium-driver` (installed by .ci/run).

use std::time::Duration;

use crate::support::webdriver::Browser;
use crate::support::*;
use futures_util::FutureExt;
use orgkeeper::auth::{Permission, Role};

const WAIT: Duration = Duration::from_secs(10);

async fn browser() -> Browser {
    Browser::launch()
        .await
        .unwrap_or_else(|message| panic!("{message}"))
}

/// Runs a flow's body with a fresh browser; on failure saves a screenshot named after the
/// flow, then fails the test with the original panic.
macro_rules! flow {
    ($name:expr, $browser:ident, $body:block) => {{
        let $browser = browser().await;
        let result = std::panic::AssertUnwindSafe(async { $body })
            .catch_unwind()
            .await;
        if let Err(panic) = result {
            let path = $browser.save_screenshot($name).await;
            eprintln!("screenshot of the failure: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }};
}

/// Follows a link of the main navigation and waits until that page (not the one before it,
/// which htmx is still swapping out) is shown.
async fn open_from_nav(browser: &Browser, href: &str, heading: &str) {
    browser
        .find(&format!("header nav a[href='{href}']"))
        .await
        .click()
        .await;
    browser.wait_for_url(href, WAIT).await;
    browser.wait_for_text("main h1", heading, WAIT).await;
}

async fn sign_in(browser: &Browser, app: &TestApp, username: &str, password: &str) {
    browser.goto(&app.url("/login")).await;
    browser
        .find("input[name=username]")
        .await
        .send_keys(username)
        .await;
    browser
        .find("input[name=password]")
        .await
        .send_keys(password)
        .await;
    browser.find("form button[type=submit]").await.click().await;
    browser.wait_for("header .user", WAIT).await;
}

#[tokio::test]
async fn first_run_setup_creates_the_owner_who_can_sign_out_and_back_in() {
    let app = spawn_app().await;
    let token = app.setup_token.clone().unwrap();
    flow!("first_run_setup", browser, {
        browser
            .goto(&app.url(&format!("/setup?token={token}")))
            .await;
        browser
            .find("input[name=username]")
            .await
            .send_keys("founder")
            .await;
        browser
            .find("input[name=password]")
            .await
            .send_keys(PASSWORD)
            .await;
        browser
            .find("input[name=confirm]")
            .await
            .send_keys(PASSWORD)
            .await;
        browser.find("form button[type=submit]").await.click().await;
        browser.wait_for_text("header .user", "founder", WAIT).await;

        browser
            .find("form[action='/logout'] button")
            .await
            .click()
            .await;
        browser.wait_for("input[name=username]", WAIT).await;
        assert!(browser.current_url().await.ends_with("/login"));
        sign_in(&browser, &app, "founder", PASSWORD).await;
        let nav = browser.find("header nav").await.text().await;
        assert!(nav.contains("Accounts"), "an owner sees Accounts: {nav}");
    });
}

#[tokio::test]
async fn each_role_sees_only_the_navigation_it_may_use() {
    let app = spawn_app().await;
    let workspace = app.first_workspace_id().await;
    flow!("role_navigation", browser, {
        for role in Role::ALL {
            let name = format!("nav-{}", role.as_str().replace('_', "-"));
            let workspaces: Vec<&str> = if role == Role::TeamLead {
                vec![workspace.as_str()]
            } else {
                vec![]
            };
            app.create_account(&name, role, &workspaces).await;
            browser.delete_cookies().await;
            sign_in(&browser, &app, &name, PASSWORD).await;
            let links: Vec<String> = {
                let mut out = Vec::new();
                for link in browser.find_all("header nav a").await {
                    out.push(link.attr("href").await.unwrap_or_default());
                }
                out
            };
            assert_eq!(
                links.contains(&"/accounts".to_owned()),
                role.can(Permission::ManageAccounts),
                "{role}: {links:?}"
            );
            assert_eq!(
                links.contains(&"/audit".to_owned()),
                role.can(Permission::ViewAudit),
                "{role}: {links:?}"
            );
            assert_eq!(
                links.contains(&"/members".to_owned()),
                role.can(Permission::ViewDirectory),
                "{role}: {links:?}"
            );
            assert_eq!(
                links.contains(&"/usage".to_owned()),
                role.can(Permission::ViewUsage),
                "{role}: {links:?}"
            );
        }
    });
}

#[tokio::test]
async fn a_team_lead_typing_a_forbidden_url_gets_a_403_page() {
    let app = spawn_app().await;
    let workspace = app.first_workspace_id().await;
    app.create_account("lead", Role::TeamLead, &[workspace.as_str()])
        .await;
    flow!("team_lead_forbidden_url", browser, {
        sign_in(&browser, &app, "lead", PASSWORD).await;
        for path in ["/accounts", "/audit", "/members"] {
            browser.goto(&app.url(path)).await;
            let heading = browser.wait_for("h1", WAIT).await.text().await;
            assert_eq!(heading, "Not allowed", "{path}");
            assert!(
                browser.current_url().await.ends_with(path),
                "no redirect loop for {path}"
            );
        }
    });
}

#[tokio::test]
async fn the_audit_page_filters_to_the_sign_ins_of_one_person() {
    let app = spawn_app().await;
    app.create_account("auditor", Role::Auditor, &[]).await;
    app.create_account("someone", Role::Viewer, &[]).await;
    app.login_as("someone").await;
    app.client().login("someone", "a wrong password here").await;
    flow!("audit_filter", browser, {
        sign_in(&browser, &app, "auditor", PASSWORD).await;
        // An area from a link ("every sign-in action") stays chosen in the action picker.
        browser.goto(&app.url("/audit?action=auth.")).await;
        browser
            .find("input[name=actor]")
            .await
            .send_keys("someone")
            .await;
        browser
            .find(".filters button[type=submit]")
            .await
            .click()
            .await;
        browser.wait_for_url("actor=someone", WAIT).await;
        let rows = browser.find_all(".audit-table tbody tr").await;
        let mut actions = Vec::new();
        for row in &rows {
            actions.push(row.attr("data-action").await.unwrap_or_default());
        }
        actions.sort();
        assert_eq!(actions, vec!["auth.login", "auth.login_failed"]);
        let text = browser.find(".audit-table tbody").await.text().await;
        assert!(
            text.contains("someone signed in") && text.contains("someone failed to sign in"),
            "each action is a plain sentence: {text}"
        );

        // Words, not codes: "leak" finds the leaked-key action.
        browser.goto(&app.url("/audit?action=leak")).await;
        assert_eq!(
            browser
                .find("select[name=action]")
                .await
                .property("value")
                .await,
            serde_json::json!("key.leak_reported")
        );
        browser.goto(&app.url("/audit?action=role")).await;
        let choices = browser.find("#action-choices").await.text().await;
        assert!(
            choices.contains("Member role changed") && choices.contains("Account role changed"),
            "{choices}"
        );
        browser.goto(&app.url("/audit")).await;
        assert!(browser
            .find(".chain-ok")
            .await
            .text()
            .await
            .contains("Chain verified"));
    });
}

/// An active key of the demo organization, as the Admin API has it.
async fn an_active_key(app: &TestApp) -> orgkeeper::anthropic::ApiKey {
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    keys.into_iter()
        .find(|k| k.status == orgkeeper::anthropic::ApiKeyStatus::Active && k.name.len() > 5)
        .expect("the demo organization has active keys")
}

#[tokio::test]
async fn a_leaked_key_is_found_by_name_and_deactivated_in_one_step() {
    let app = spawn_app().await;
    app.create_account("responder", Role::Admin, &[]).await;
    let key = an_active_key(&app).await;
    flow!("leaked_key", browser, {
        sign_in(&browser, &app, "responder", PASSWORD).await;
        browser.goto(&app.url("/keys/leaked")).await;
        browser
            .find("#leak-search")
            .await
            .send_keys(&key.name)
            .await;
        browser
            .find("#leak-form button[name=search]")
            .await
            .click()
            .await;
        let row = browser
            .wait_for(&format!("#leak-matches tr[data-key='{}']", key.id), WAIT)
            .await;
        row.find(".leak-choose").await.click().await;
        browser.wait_for("#leak-confirm", WAIT).await;
        browser
            .find("#leak-confirm textarea[name=note]")
            .await
            .send_keys("Found in a public gist")
            .await;
        browser.find("button[name=deactivate]").await.click().await;
        browser.wait_for("#leak-next-steps", WAIT).await;

        assert!(browser
            .find("#leak-status")
            .await
            .text()
            .await
            .contains("inactive"));
        // Step 3 reads "or after [7] days" on one line, the field as wide as its two digits
        // (issue 21: a huge number input, "days" on its own line).
        let layout = browser
            .execute(
                "var l = document.querySelector('#leak-schedule label'), i = l.querySelector('input');
                 return [Math.round(i.getBoundingClientRect().width), Math.round(l.getBoundingClientRect().height), Math.round(i.getBoundingClientRect().height)];",
                vec![],
            )
            .await;
        let [input_width, label_height, input_height] =
            [0, 1, 2].map(|i| layout[i].as_u64().unwrap());
        assert!(
            input_width <= 100,
            "the days field is {input_width} px wide"
        );
        assert!(
            label_height < input_height * 3 / 2,
            "\"days\" wraps: the label is {label_height} px tall, its field {input_height} px"
        );
        screenshot_both_widths(&browser, "leaked_key_next_steps").await;
        let upstream = app.state.org.api().get_api_key(&key.id).await.unwrap();
        assert_eq!(
            upstream.status,
            orgkeeper::anthropic::ApiKeyStatus::Inactive
        );
        let actions = app.audit_actions().await;
        assert!(actions.contains(&"key.leak_reported".to_owned()));
        assert!(actions.contains(&"key.deactivated".to_owned()));
    });
}

#[tokio::test]
async fn a_key_is_deactivated_from_its_page_after_confirming() {
    let app = spawn_app().await;
    app.create_account("keeper", Role::Admin, &[]).await;
    let key = an_active_key(&app).await;
    flow!("key_deactivation", browser, {
        sign_in(&browser, &app, "keeper", PASSWORD).await;
        browser.goto(&app.url(&format!("/keys/{}", key.id))).await;
        assert_eq!(browser.find("#key-status").await.text().await, "active");
        browser.find("button[name=deactivate]").await.click().await;
        let question = browser.wait_for("dialog.confirm-dialog[open]", WAIT).await;
        assert!(
            question.text().await.contains("Deactivate"),
            "the page asks first, in the page"
        );
        assert!(browser.alert_text().await.is_none(), "not with confirm()");
        // Cancelling changes nothing.
        question.find(".confirm-cancel").await.click().await;
        browser.wait_for_gone("dialog.confirm-dialog", WAIT).await;
        assert_eq!(browser.find("#key-status").await.text().await, "active");
        browser.find("button[name=deactivate]").await.click().await;
        browser
            .wait_for("dialog.confirm-dialog[open] .confirm-ok", WAIT)
            .await
            .click()
            .await;
        browser.wait_for_text("#key-status", "inactive", WAIT).await;
        let upstream = app.state.org.api().get_api_key(&key.id).await.unwrap();
        assert_eq!(
            upstream.status,
            orgkeeper::anthropic::ApiKeyStatus::Inactive
        );
    });
}

#[tokio::test]
async fn the_offboarding_wizard_runs_every_chosen_step() {
    let app = spawn_app().await;
    app.create_account("hr-admin", Role::Admin, &[]).await;
    // A developer who created keys and belongs to a workspace.
    let users = app
        .state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap();
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    let leaver = users
        .iter()
        .find(|u| {
            u.role == orgkeeper::anthropic::OrgRole::Developer
                && keys.iter().any(|k| {
                    k.created_by.as_ref().is_some_and(|c| *c.id == *u.id)
                        && k.status == orgkeeper::anthropic::ApiKeyStatus::Active
                })
        })
        .expect("a developer with active keys")
        .clone();
    flow!("offboarding", browser, {
        sign_in(&browser, &app, "hr-admin", PASSWORD).await;
        browser
            .goto(&app.url(&format!("/members/{}/offboard", leaver.id)))
            .await;
        browser.wait_for("#offboard-plan", WAIT).await;
        browser
            .find("#offboard-plan button[name=preview]")
            .await
            .click()
            .await;
        let preview = browser
            .wait_for("#offboard-preview", WAIT)
            .await
            .text()
            .await;
        assert!(
            preview.contains(&leaver.email) || preview.to_lowercase().contains("remove"),
            "{preview}"
        );
        browser.find("button[name=start]").await.click().await;
        browser
            .wait_for("#offboard-state[data-state='completed']", WAIT)
            .await;

        let gone = app.state.org.api().get_user(&leaver.id).await;
        assert!(
            gone.is_err_and(|e| e.is_not_found()),
            "the member was removed"
        );
        let actions = app.audit_actions().await;
        assert!(
            actions.contains(&"offboarding.completed".to_owned()),
            "{actions:?}"
        );
    });
}

/// Set on the first page; a full page load would erase it.
async fn mark_page(browser: &Browser) {
    browser
        .execute(
            "window.orgkeeperMarker = 'still here'; return null;",
            vec![],
        )
        .await;
}

async fn assert_no_full_reload(browser: &Browser, step: &str) {
    let marker = browser
        .execute("return window.orgkeeperMarker || null;", vec![])
        .await;
    assert_eq!(
        marker,
        serde_json::json!("still here"),
        "{step} reloaded the whole page"
    );
}

#[tokio::test]
async fn an_admin_invites_changes_a_role_and_archives_a_workspace_without_a_full_reload() {
    let app = spawn_app().await;
    app.create_account("daily-admin", Role::Admin, &[]).await;
    let users = app
        .state
        .org
        .api()
        .list_all_users(&Default::default())
        .await
        .unwrap();
    let developer = users
        .iter()
        .find(|u| u.role == orgkeeper::anthropic::OrgRole::Developer)
        .unwrap()
        .clone();
    let workspaces = app
        .state
        .org
        .api()
        .list_all_workspaces(&Default::default())
        .await
        .unwrap();
    let workspace = workspaces
        .iter()
        .find(|w| w.archived_at.is_none())
        .unwrap()
        .clone();
    flow!("daily_admin_flow", browser, {
        sign_in(&browser, &app, "daily-admin", PASSWORD).await;
        mark_page(&browser).await;

        // Invite someone.
        open_from_nav(&browser, "/invites", "Invites").await;
        browser
            .wait_for("#invite-one input[name=email]", WAIT)
            .await
            .send_keys("new.hire@example.com")
            .await;
        browser
            .find("#invite-one button[type=submit]")
            .await
            .click()
            .await;
        browser
            .wait_for_text("main table", "new.hire@example.com", WAIT)
            .await;
        assert_no_full_reload(&browser, "inviting").await;

        // Change a member's role.
        open_from_nav(&browser, "/members", "Members").await;
        browser
            .wait_for(
                &format!("main table a[href='/members/{}']", developer.id),
                WAIT,
            )
            .await
            .click()
            .await;
        // The member page's own role form. The list page just left behind has a role
        // *filter* (also `select[name=role]`, also with a Billing option): on a busy machine
        // the boosted navigation was still in flight, the test chose Billing in the filter,
        // and then submitted the member page's untouched form ("already Developer").
        let role_select = "form[action$='/role'] select[name=role]";
        browser.wait_for(role_select, WAIT).await;
        browser
            .find(&format!("{role_select} option[value=billing]"))
            .await
            .click()
            .await;
        assert_eq!(
            browser.find(role_select).await.property("value").await,
            serde_json::json!("billing"),
            "Billing is chosen in the member's role form"
        );
        browser
            .find("form[action$='/role'] button[type=submit]")
            .await
            .click()
            .await;
        browser.wait_for_text("#flash", "illing", WAIT).await;
        assert_no_full_reload(&browser, "changing the role").await;

        // Archive a workspace, after its confirmation page.
        open_from_nav(&browser, "/workspaces", "Workspaces").await;
        browser
            .wait_for(
                &format!("main table a[href='/workspaces/{}']", workspace.id),
                WAIT,
            )
            .await
            .click()
            .await;
        browser
            .wait_for(
                &format!("a[href='/workspaces/{}/archive']", workspace.id),
                WAIT,
            )
            .await
            .click()
            .await;
        browser
            .wait_for("form[action$='/archive'] input[name=confirm]", WAIT)
            .await
            .send_keys(&workspace.name)
            .await;
        browser
            .find("form[action$='/archive'] button")
            .await
            .click()
            .await;
        browser.wait_for_text("#flash", "rchived", WAIT).await;
        assert_no_full_reload(&browser, "archiving").await;

        // The audit page filters to what this flow did.
        open_from_nav(&browser, "/audit", "Audit log").await;
        browser
            .wait_for(
                "select[name=action] option[value='member.role_changed']",
                WAIT,
            )
            .await
            .click()
            .await;
        browser
            .find(".filters button[type=submit]")
            .await
            .click()
            .await;
        browser
            .wait_for_url("action=member.role_changed", WAIT)
            .await;
        let rows = browser.find_all(".audit-table tbody tr").await;
        assert_eq!(
            rows.len(),
            1,
            "one row for the role change: its intent and outcome together"
        );
        let text = browser.find(".audit-table tbody").await.text().await;
        assert!(
            text.contains("daily-admin changed")
                && text.contains("from Developer to Billing")
                && text.contains("ok")
                && !text.contains("pending"),
            "{text}"
        );
        assert_no_full_reload(&browser, "filtering the audit log").await;

        let role = app
            .state
            .org
            .api()
            .get_user(&developer.id)
            .await
            .unwrap()
            .role;
        assert_eq!(role, orgkeeper::anthropic::OrgRole::Billing);
        assert!(app
            .state
            .org
            .api()
            .get_workspace(&workspace.id)
            .await
            .unwrap()
            .archived_at
            .is_some());
        let actions = app.audit_actions().await;
        for action in [
            "invite.created",
            "member.role_changed",
            "workspace.archived",
        ] {
            assert!(
                actions.contains(&action.to_owned()),
                "{action} not audited: {actions:?}"
            );
        }
    });
}

/// The names of the series drawn in the chart on the page.
async fn chart_series(browser: &Browser) -> Vec<String> {
    let mut names = Vec::new();
    for group in browser.find_all("svg.chart-wide g[data-series]").await {
        names.push(group.attr("data-series").await.unwrap_or_default());
    }
    names
}

#[tokio::test]
async fn usage_and_cost_charts_render_their_series_and_follow_the_grouping() {
    let app = spawn_app().await;
    app.create_account("finance", Role::Viewer, &[]).await;
    let models: Vec<String> = {
        let mut params = orgkeeper::anthropic::UsageReportParams::new(
            chrono::Utc::now() - chrono::Duration::days(7),
        );
        params.group_by = vec![orgkeeper::anthropic::UsageGroupBy::Model];
        let buckets = app.state.org.api().all(&params).await.unwrap();
        let mut models: Vec<String> = buckets
            .iter()
            .flat_map(|b| b.results.iter().filter_map(|r| r.model.as_deref()))
            // Series are named as people name models ("Claude 3.5 Haiku"), not by their ids.
            .map(orgkeeper::labels::model)
            .collect();
        models.sort();
        models.dedup();
        models
    };
    flow!("usage_and_cost_charts", browser, {
        sign_in(&browser, &app, "finance", PASSWORD).await;
        open_from_nav(&browser, "/usage", "Usage").await;
        browser.wait_for("svg.chart-wide", WAIT).await;
        let by_workspace = chart_series(&browser).await;
        assert!(!by_workspace.is_empty(), "the chart draws series");

        browser
            .find("select[name=group_by] option[value=model]")
            .await
            .click()
            .await;
        browser
            .find(".usage-filters button[type=submit]")
            .await
            .click()
            .await;
        browser.wait_for_url("group_by=model", WAIT).await;
        browser
            .wait_for(
                &format!("svg.chart-wide g[data-series='{}']", models[0]),
                WAIT,
            )
            .await;
        let by_model = chart_series(&browser).await;
        assert!(
            by_model.iter().all(|s| models.contains(s) || s == "Other"),
            "{by_model:?} vs {models:?}"
        );
        assert!(
            browser.find_all("table tbody tr").await.len() >= by_model.len().min(2),
            "the table is the text alternative"
        );

        // Every period is reachable from the keyboard, with a tooltip listing every series.
        let first = browser.find("svg.chart-wide .bar-hit[tabindex='0']").await;
        browser
            .execute("arguments[0].focus(); return null;", vec![first.as_arg()])
            .await;
        first.send_keys("\u{E014}").await; // ArrowRight
        let focused = browser
            .execute(
                "return document.activeElement.getAttribute('data-index');",
                vec![],
            )
            .await;
        assert_eq!(
            focused,
            serde_json::json!("1"),
            "the arrow key moves to the next period"
        );
        let tip = browser.find(".chart-tooltip").await;
        assert!(tip.is_displayed().await, "the tooltip follows the keyboard");
        let tip_text = tip.text().await;
        assert!(
            by_model.iter().all(|s| tip_text.contains(s.as_str())),
            "the tooltip lists every series: {tip_text}"
        );

        // The legend hides a series (progressive enhancement).
        browser.wait_for(".legend-toggle", WAIT).await.click().await;
        assert_eq!(
            browser
                .find_all("svg.chart-wide g.series-hidden")
                .await
                .len(),
            1
        );

        open_from_nav(&browser, "/cost", "Cost").await;
        browser
            .wait_for("svg.chart-wide g[data-series]", WAIT)
            .await;
        let text = browser.find("main").await.text().await;
        assert!(
            text.contains('$'),
            "cost is shown in dollars on {}: {text}",
            browser.current_url().await
        );
    });
}

/// Every main page of the console, for the screenshot tour: (file name, path).
async fn main_pages(app: &TestApp) -> Vec<(String, String)> {
    let api = app.state.org.api();
    let users = api.list_all_users(&Default::default()).await.unwrap();
    let member = users[0].id.clone();
    // A member whose role can be changed here (the first is an admin): the role choices
    // with what each gives and takes away, and the offboarding key choices.
    let developer = users
        .iter()
        .find(|u| u.role == orgkeeper::anthropic::OrgRole::Developer)
        .unwrap()
        .id
        .clone();
    let workspace = app.first_workspace_id().await;
    let key = an_active_key(app).await.id;
    let seq = app.audit_records(Default::default()).await[0].seq;
    let archivable = app
        .state
        .org
        .workspaces()
        .await
        .unwrap()
        .iter()
        .find(|w| w.archived_at.is_none() && w.name != "Default Workspace")
        .unwrap()
        .id
        .clone();
    [
        ("overview", "/".to_owned()),
        ("members", "/members".to_owned()),
        ("member", format!("/members/{member}")),
        ("invites", "/invites".to_owned()),
        ("workspaces", "/workspaces".to_owned()),
        ("workspace", format!("/workspaces/{workspace}")),
        (
            "workspace_archive",
            format!("/workspaces/{archivable}/archive"),
        ),
        ("keys", "/keys".to_owned()),
        ("key", format!("/keys/{key}")),
        ("key_archive", format!("/keys/{key}/archive")),
        (
            "keys_bulk_archive",
            format!("/keys/bulk?action=archive&key={key}"),
        ),
        ("member_developer", format!("/members/{developer}")),
        ("offboard", format!("/members/{developer}/offboard")),
        ("members_no_workspace", "/members?workspace=none".to_owned()),
        ("invites_expiring", "/invites?status=expiring".to_owned()),
        ("limits", "/limits".to_owned()),
        ("rate_limits", format!("/limits/workspaces/{workspace}")),
        ("leaked_key", "/keys/leaked".to_owned()),
        ("usage", "/usage".to_owned()),
        ("usage_hourly", "/usage?range=7d&resolution=hour".to_owned()),
        ("cost", "/cost".to_owned()),
        ("cost_people", "/cost/people".to_owned()),
        ("cost_centers", "/cost/centers".to_owned()),
        ("budgets", "/budgets".to_owned()),
        ("claude_code", "/claude-code".to_owned()),
        ("audit", "/audit".to_owned()),
        ("audit_record", format!("/audit/{seq}")),
        (
            "access_review",
            format!("/access-review?workspace={workspace}"),
        ),
        ("accounts", "/accounts".to_owned()),
        ("tokens", "/tokens".to_owned()),
        ("scim", "/scim".to_owned()),
        ("not_found", "/no-such-page".to_owned()),
    ]
    .into_iter()
    .map(|(name, path)| (name.to_owned(), path))
    .collect()
}

/// The outermost elements that stick out to the right of the screen, outside any box that
/// scrolls on its own: what to fix when a page is wider than a phone.
const WIDER_THAN_SCREEN: &str = "var w = window.innerWidth, out = [];
  function scrolls(e) { for (var p = e.parentElement; p; p = p.parentElement) {
    var o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } return false; }
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect(), p = e.parentElement;
    if (out.length < 5 && r.right > w + 1 && p && p.getBoundingClientRect().right <= w + 1 && !scrolls(e))
      out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/ +/).join('.') : '') + ' ' + Math.round(r.right) + 'px');
  });
  return out.join(', ');";

/// Saves a full-page screenshot of every main page at 1440 and 390 px wide under
/// target/browser-screenshots/pages/ (on every run, for anyone to look at), and checks that
/// at both widths no page is wider than the screen and nothing inside it (a table, a scroll
/// box, a chart) scrolls or is cut sideways.
#[tokio::test]
async fn every_main_page_is_screenshotted_and_fits_a_phone() {
    let app = spawn_app().await;
    app.create_account("tour-owner", Role::Owner, &[]).await;
    let session = app.login_as("tour-owner").await;
    let budget = session
        .post(
            "/budgets",
            &[
                ("scope", "org"),
                ("amount", "300"),
                ("thresholds", "50, 80, 100"),
            ],
        )
        .await;
    assert_eq!(budget.status(), 303, "a budget for the cost pages");
    let center = session.post("/cost/centers", &[("name", "Platform")]).await;
    assert_eq!(
        center.status(),
        303,
        "a cost center for the chargeback page"
    );
    let id: i64 = sqlx::query_scalar("SELECT id FROM cost_centers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let workspaces = app.state.org.workspaces().await.unwrap();
    let workspace = workspaces
        .iter()
        .find(|w| w.archived_at.is_none() && w.name != "Default Workspace")
        .unwrap();
    let assigned = session
        .post(
            &format!("/cost/centers/{id}/assign"),
            &[("kind", "workspace"), ("target", workspace.name.as_str())],
        )
        .await;
    assert_eq!(assigned.status(), 303);
    let token = session
        .post("/tokens", &[("name", "terraform"), ("lifetime", "90")])
        .await;
    assert_eq!(token.status(), 200, "a token for the tokens page");
    let mut pages = main_pages(&app).await;
    let lead = app
        .create_account("tour-lead", Role::TeamLead, &[workspace.id.as_str()])
        .await;
    let made = session
        .post(
            &format!("/accounts/{}/tokens", lead.id),
            &[
                ("name", "team report"),
                ("lifetime", "30"),
                ("read_only", "on"),
            ],
        )
        .await;
    assert_eq!(made.status(), 200, "a token on an account's page");
    pages.push(("account".to_owned(), format!("/accounts/{}", lead.id)));
    flow!("page_tour", browser, {
        // The sign-in page, before signing in.
        browser.goto(&app.url("/login")).await;
        browser.wait_for("main h1", WAIT).await;
        screenshot_both_widths(&browser, "login").await;
        sign_in(&browser, &app, "tour-owner", PASSWORD).await;
        let mut too_wide = Vec::new();
        for (width, height, mobile) in [(1440, 900, false), (390, 844, true)] {
            browser.set_viewport(width, height, mobile).await;
            for (name, path) in &pages {
                browser.goto(&app.url(path)).await;
                browser.wait_for("main h1", WAIT).await;
                // Sections a page loads after it shows (a member's cost) are in the picture.
                browser.wait_for_gone("[hx-trigger='load']", WAIT).await;
                browser
                    .save_full_page_screenshot(&format!("pages/{width}/{name}"))
                    .await;
                let page_width = browser
                    .execute("return document.documentElement.scrollWidth;", vec![])
                    .await
                    .as_u64()
                    .unwrap_or(u64::MAX);
                if page_width > u64::from(width) {
                    let culprits = browser.execute(WIDER_THAN_SCREEN, vec![]).await;
                    too_wide.push(format!(
                        "{path} is {page_width} px wide at {width} px (widest: {culprits})"
                    ));
                }
                // Nor does anything scroll or get cut sideways inside the page.
                let inside = browser.execute(SIDEWAYS_INSIDE, vec![]).await;
                if inside.as_array().is_some_and(|found| !found.is_empty()) {
                    too_wide.push(format!("{path} at {width} px: {inside}"));
                }
            }
        }
        assert!(
            too_wide.is_empty(),
            "pages wider than the screen: {too_wide:?}"
        );
    });
}

/// What on a page is not built from Primer: a missing or unapplied Primer stylesheet, a class
/// of the retired hand-written design (cards, notices, badges, muted text…), a button that is
/// not a Primer `btn` (or `btn-link` / `btn-invisible`), a field that is not a Primer
/// `form-control` / `form-select`. A list of findings, empty when the page is all Primer.
const NOT_PRIMER: &str = "var out = [];
  var sheet = document.querySelector(\"link[rel=stylesheet][href^='/static/vendor/primer-']\");
  if (!sheet) out.push('no vendored Primer stylesheet');
  var root = getComputedStyle(document.documentElement);
  if (!root.getPropertyValue('--fgColor-default').trim()) out.push('Primer light theme tokens not applied');
  var retired = ['card', 'notice', 'notice-error', 'notice-warning', 'notice-info', 'notice-success',
    'badge', 'badge-ok', 'badge-warn', 'badge-muted', 'muted', 'hint', 'lead', 'visually-hidden',
    'topbar', 'pager', 'button', 'primary', 'danger', 'link'];
  document.querySelectorAll('[class]').forEach(function (e) {
    if (typeof e.className !== 'string') return;
    e.className.split(/\\s+/).forEach(function (c) {
      if (retired.indexOf(c) >= 0) out.push(e.tagName.toLowerCase() + '.' + c);
    });
  });
  document.querySelectorAll('button').forEach(function (b) {
    if (!/(^|\\s)(btn|btn-link|btn-invisible)(\\s|$)/.test(b.className))
      out.push('button not a Primer btn: ' + b.textContent.trim());
  });
  document.querySelectorAll('input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=color]), select, textarea').forEach(function (f) {
    if (!f.classList.contains('form-control') && !f.classList.contains('form-select'))
      out.push('field not a Primer form control: ' + (f.name || f.id));
  });
  return out.slice(0, 10);";

/// Issue 21's How: every page is built from the one design system, Primer. Each page of the
/// tour loads the vendored Primer stylesheet with its light theme, uses none of the retired
/// hand-written classes, and its buttons and fields are Primer's; the primary and dangerous
/// actions are `btn-primary` / `btn-danger` drawn by Primer (a filled green button, a red one).
#[tokio::test]
async fn every_page_is_built_from_primer() {
    let app = spawn_app().await;
    app.create_account("primer-owner", Role::Owner, &[]).await;
    let pages = main_pages(&app).await;
    flow!("primer_pages", browser, {
        sign_in(&browser, &app, "primer-owner", PASSWORD).await;
        let mut findings = Vec::new();
        let (mut primary, mut danger) = (0, 0);
        for (_, path) in &pages {
            browser.goto(&app.url(path)).await;
            browser.wait_for("main h1", WAIT).await;
            browser.wait_for_gone("[hx-trigger='load']", WAIT).await;
            let found = browser.execute(NOT_PRIMER, vec![]).await;
            if found.as_array().is_some_and(|f| !f.is_empty()) {
                findings.push(format!("{path}: {found}"));
            }
            let drawn = browser
                .execute(
                    "return ['.btn-primary:not(:disabled)', '.btn-danger:not(:disabled)'].map(function (s) {
                       var b = document.querySelector(s);
                       return b ? getComputedStyle(b).backgroundColor + '|' + getComputedStyle(b).color : '';
                     });",
                    vec![],
                )
                .await;
            let drawn: Vec<&str> = drawn
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            // Primer's primary button is filled (green, white text); its danger button is red
            // text on the default button background.
            if !drawn[0].is_empty() {
                primary += 1;
                assert!(
                    drawn[0].ends_with("|rgb(255, 255, 255)")
                        && !drawn[0].starts_with("rgba(0, 0, 0, 0)"),
                    "{path}: .btn-primary drawn as {}",
                    drawn[0]
                );
            }
            if !drawn[1].is_empty() {
                danger += 1;
                assert!(
                    drawn[1].ends_with("|rgb(209, 36, 47)"),
                    "{path}: .btn-danger drawn as {}",
                    drawn[1]
                );
            }
        }
        assert!(findings.is_empty(), "not built from Primer: {findings:#?}");
        assert!(
            primary > 5 && danger > 2,
            "primary {primary}, danger {danger}"
        );
    });
}

#[tokio::test]
async fn error_pages_keep_the_layout_and_the_navigation() {
    let app = spawn_app().await;
    let workspace = app.first_workspace_id().await;
    app.create_account("lost-lead", Role::TeamLead, &[workspace.as_str()])
        .await;
    flow!("error_pages", browser, {
        sign_in(&browser, &app, "lost-lead", PASSWORD).await;
        for (path, heading) in [("/no-such-page", "Not found"), ("/accounts", "Not allowed")] {
            browser.goto(&app.url(path)).await;
            assert_eq!(
                browser.wait_for("main h1", WAIT).await.text().await,
                heading
            );
            assert!(
                browser
                    .find("header .user")
                    .await
                    .text()
                    .await
                    .contains("lost-lead"),
                "{path}: the account menu stays"
            );
            assert!(
                browser
                    .try_find("header nav a[href='/keys']")
                    .await
                    .is_some(),
                "{path}: the navigation stays"
            );
        }
        // A bad filter value: the message is shown inside the page, not instead of it.
        browser.goto(&app.url("/audit?since=yesterday")).await;
        browser.wait_for("main h1", WAIT).await;
        assert!(browser.try_find("header nav").await.is_some());
    });
}

#[tokio::test]
async fn a_pasted_invite_list_is_parsed_and_previewed_before_sending() {
    let app = spawn_app().await;
    app.create_account("paster", Role::Admin, &[]).await;
    flow!("invite_preview", browser, {
        sign_in(&browser, &app, "paster", PASSWORD).await;
        browser.goto(&app.url("/invites")).await;
        browser
            .wait_for("#invite-many textarea[name=emails]", WAIT)
            .await
            .send_keys(
                "a@example.com, b@example.com\nCarol Smith <carol@example.com>; not-an-email",
            )
            .await;
        let summary = browser
            .wait_for_text("#invite-preview-summary", "3 addresses, 1 invalid", WAIT)
            .await;
        assert_eq!(summary.text().await, "3 addresses, 1 invalid");
        let preview = browser.find("#invite-preview").await.text().await;
        assert!(
            preview.contains("carol@example.com") && preview.contains("Carol Smith"),
            "{preview}"
        );
        assert!(
            app.audit_records(orgkeeper::audit::Filter {
                action: Some("invite.created".into()),
                ..Default::default()
            })
            .await
            .is_empty(),
            "previewing sends nothing"
        );
        browser.save_full_page_screenshot("invite_preview").await;
    });
}

/// Saves `name` at 1440 px and on a 390 px phone (under pages/1440 and pages/390, like the
/// tour) and fails if the page is wider than the screen at either.
async fn screenshot_both_widths(browser: &Browser, name: &str) {
    for (width, height, mobile) in [(1440, 900, false), (390, 844, true)] {
        browser.set_viewport(width, height, mobile).await;
        browser
            .save_full_page_screenshot(&format!("pages/{width}/{name}"))
            .await;
        let page_width = browser
            .execute("return document.documentElement.scrollWidth;", vec![])
            .await
            .as_u64()
            .unwrap_or(u64::MAX);
        let culprits = browser.execute(WIDER_THAN_SCREEN, vec![]).await;
        assert!(
            page_width <= u64::from(width),
            "{name} is {page_width} px wide at {width} px (widest: {culprits})"
        );
    }
    browser.set_viewport(1440, 900, false).await;
}

#[tokio::test]
async fn a_spend_limit_below_this_months_spend_shows_the_spend_and_is_saved_only_once_confirmed() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("stakes-admin", Role::Admin, &[]).await;
    flow!("spend_limit_confirmation", browser, {
        sign_in(&browser, &app, "stakes-admin", PASSWORD).await;
        open_from_nav(&browser, "/limits", "Limits").await;
        let option = browser
            .find(&format!(
                "#set-limit select[name=scope] option[value='{ws}']"
            ))
            .await
            .text()
            .await;
        assert!(
            option.contains("spent $"),
            "the spend beside the choice: {option}"
        );
        browser
            .execute(
                "document.querySelector('#set-limit select[name=scope]').value = arguments[0];",
                vec![serde_json::json!(ws)],
            )
            .await;
        browser
            .find("#set-limit input[name=amount]")
            .await
            .send_keys("1")
            .await;
        browser
            .find("#set-limit button[type=submit]")
            .await
            .click()
            .await;
        let question = browser.wait_for("#confirm-limit", WAIT).await;
        let text = question.text().await;
        assert!(text.contains("Spent this month"), "{text}");
        assert!(text.contains("refuses its requests"), "{text}");
        assert!(text.contains("less than half"), "{text}");
        assert!(browser.alert_text().await.is_none(), "asked in the page");
        screenshot_both_widths(&browser, "limits_confirm_spend_limit").await;
        let row = browser
            .find(&format!("tr[data-scope='{ws}']"))
            .await
            .text()
            .await;
        assert!(row.contains("$1,500.00 a month"), "not saved yet: {row}");
        browser
            .find("#confirm-limit button[type=submit]")
            .await
            .click()
            .await;
        browser
            .wait_for_text("#flash", "to $1.00 a month", WAIT)
            .await;
    });
}

#[tokio::test]
async fn a_rate_limit_above_the_organizations_is_warned_about_in_the_page_before_saving() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("rate-admin", Role::Admin, &[]).await;
    let entries = app
        .state
        .org
        .api()
        .all(&orgkeeper::anthropic::OrgRateLimitParams::default())
        .await
        .unwrap();
    let batch = entries.iter().find(|e| e.group.kind == "batch").unwrap();
    flow!("rate_limit_warning", browser, {
        sign_in(&browser, &app, "rate-admin", PASSWORD).await;
        browser
            .goto(&app.url(&format!("/limits/workspaces/{ws}")))
            .await;
        let row = browser
            .find(&format!(
                "tr[data-limit='{}:requests_per_minute']",
                batch.id
            ))
            .await;
        let input = row.find("input[name=value]").await;
        input.clear().await;
        input.send_keys("9000000000000").await;
        row.find("button[type=submit]:not([name])")
            .await
            .click()
            .await;
        let warning = browser.wait_for(".rate-warning", WAIT).await;
        assert!(
            warning.text().await.contains("above the organization"),
            "warned before saving"
        );
        screenshot_both_widths(&browser, "limits_rate_warning").await;
        browser
            .find(".rate-warning button[name=confirm]")
            .await
            .click()
            .await;
        browser.wait_for_text("#flash", "up to an hour", WAIT).await;
    });
}

#[tokio::test]
async fn stopping_a_busy_key_shows_its_recent_use_highlighted() {
    let app = spawn_app().await;
    app.create_account("use-admin", Role::Admin, &[]).await;
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    let today = app.state.clock.now().date_naive();
    let last_used = orgkeeper::usage_store::key_last_used(&app.db)
        .await
        .unwrap();
    let keys = app
        .state
        .org
        .api()
        .list_all_api_keys(&Default::default())
        .await
        .unwrap();
    let busy = keys
        .iter()
        .find(|k| {
            k.status == orgkeeper::anthropic::ApiKeyStatus::Active
                && last_used
                    .get(&k.id)
                    .is_some_and(|d| (today - *d).num_days() <= 1)
        })
        .expect("a key used today or yesterday");
    flow!("key_recent_use", browser, {
        sign_in(&browser, &app, "use-admin", PASSWORD).await;
        browser
            .goto(&app.url(&format!("/keys/{}/archive", busy.id)))
            .await;
        let shown = browser.wait_for(".key-use-recent", WAIT).await;
        assert!(shown.text().await.contains("tokens in the last 7 days"));
        screenshot_both_widths(&browser, "keys_archive_recent_use").await;
        browser.goto(&app.url(&format!("/keys/{}", busy.id))).await;
        browser.find("button[name=deactivate]").await.click().await;
        let question = browser.wait_for("dialog.confirm-dialog[open]", WAIT).await;
        let text = question.text().await;
        assert!(text.contains("Last used"), "{text}");
        assert!(text.contains("tokens in the last 7 days"), "{text}");
        question.find(".confirm-cancel").await.click().await;
    });
}

#[tokio::test]
async fn the_overview_leads_with_what_is_urgent_and_its_counts_open_what_they_count() {
    let app = spawn_app().await;
    app.create_account("urgent-owner", Role::Owner, &[]).await;
    let session = app.login_as("urgent-owner").await;
    let budget = session
        .post(
            "/budgets",
            &[("scope", "org"), ("amount", "1"), ("thresholds", "100")],
        )
        .await;
    assert_eq!(budget.status(), 303);
    // This month's spend in the stores, as the usage job keeps it.
    orgkeeper::jobs::run_usage_sync(&app.state).await;
    flow!("overview_urgent", browser, {
        sign_in(&browser, &app, "urgent-owner", PASSWORD).await;
        browser.goto(&app.url("/")).await;
        let strip = browser.wait_for("#urgent", WAIT).await;
        assert!(strip.text().await.contains("over its budget"));
        let first = browser
            .execute(
                "return document.querySelector('main').querySelectorAll('section')[0].id;",
                vec![],
            )
            .await;
        assert_eq!(
            first,
            serde_json::json!("urgent"),
            "the first thing on the page"
        );
        screenshot_both_widths(&browser, "home_urgent").await;
        browser
            .find("a[href='/members?workspace=none']")
            .await
            .click()
            .await;
        browser.wait_for_url("workspace=none", WAIT).await;
        let summary = browser
            .wait_for("#members-table p.color-fg-muted", WAIT)
            .await;
        assert!(
            summary.text().await.contains("for these filters"),
            "filtered, not everyone"
        );
    });
}

/// The contrast of every button drawn as a link (Primer's `btn-link`, `btn-invisible`) on the page against what is drawn behind it, as
/// `[text, ratio]` pairs.
const LINK_BUTTON_CONTRAST: &str = "
function lum(c) {
  var m = c.match(/[\\d.]+/g).map(Number);
  var a = m.length > 3 ? m[3] : 1;
  var ch = m.slice(0, 3).map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return [0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2], a];
}
function background(el) {
  for (; el; el = el.parentElement) {
    // Primer's flashes paint their tint as a one-colour gradient, not a background colour.
    var tint = getComputedStyle(el).backgroundImage.match(/^linear-gradient\\((rgba?\\([^)]*\\))/);
    if (tint && lum(tint[1])[1] > 0) return tint[1];
    var bg = getComputedStyle(el).backgroundColor;
    if (bg && lum(bg)[1] > 0) return bg;
  }
  return 'rgb(255, 255, 255)';
}
return Array.from(document.querySelectorAll('button.btn-link, button.btn-invisible')).map(function (b) {
  var f = lum(getComputedStyle(b).color)[0], g = lum(background(b))[0];
  var ratio = (Math.max(f, g) + 0.05) / (Math.min(f, g) + 0.05);
  return [b.textContent.trim(), Math.round(ratio * 100) / 100];
});";

#[tokio::test]
async fn buttons_drawn_as_links_meet_wcag_aa_contrast() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("contrast-admin", Role::Admin, &[]).await;
    let session = app.login_as("contrast-admin").await;
    // A workspace override, so the rate-limit page offers "Use the organization's".
    let entries = app
        .state
        .org
        .api()
        .all(&orgkeeper::anthropic::OrgRateLimitParams::default())
        .await
        .unwrap();
    let batch = entries.iter().find(|e| e.group.kind == "batch").unwrap();
    let set = session
        .post(
            &format!("/limits/workspaces/{ws}"),
            &[
                ("rate_limit_id", batch.id.as_str()),
                ("type", "requests_per_minute"),
                ("value", "10"),
            ],
        )
        .await;
    assert_eq!(set.status(), 303);
    flow!("link_button_contrast", browser, {
        sign_in(&browser, &app, "contrast-admin", PASSWORD).await;
        let mut seen = Vec::new();
        for path in [
            "/".to_owned(),
            "/members".to_owned(),
            format!("/limits/workspaces/{ws}"),
        ] {
            browser.goto(&app.url(&path)).await;
            browser.wait_for("main h1", WAIT).await;
            let pairs = browser.execute(LINK_BUTTON_CONTRAST, vec![]).await;
            for pair in pairs.as_array().unwrap() {
                let (text, ratio) = (pair[0].as_str().unwrap(), pair[1].as_f64().unwrap());
                seen.push(text.to_owned());
                assert!(ratio >= 4.5, "{path}: \"{text}\" is drawn at {ratio}:1");
            }
        }
        for wanted in ["Refresh now", "Use the organization's", "Sign out"] {
            assert!(
                seen.iter().any(|s| s == wanted),
                "{wanted} checked: {seen:?}"
            );
        }
    });
}

/// On a phone the token lists read as stacked rows: every value and the Revoke button are on
/// the screen, not behind a sideways scroll.
#[tokio::test]
async fn on_a_phone_every_token_can_be_read_and_revoked_without_scrolling_sideways() {
    let app = spawn_app().await;
    app.create_account("phone-owner", Role::Owner, &[]).await;
    let session = app.login_as("phone-owner").await;
    for name in ["terraform-production", "nightly-cost-report"] {
        let made = session
            .post("/tokens", &[("name", name), ("lifetime", "90")])
            .await;
        assert_eq!(made.status(), 200);
    }
    let scim = session
        .post("/scim/tokens", &[("name", "okta"), ("lifetime", "365")])
        .await;
    assert_eq!(scim.status(), 200);
    flow!("phone_tokens", browser, {
        sign_in(&browser, &app, "phone-owner", PASSWORD).await;
        browser.set_viewport(390, 844, true).await;
        for (path, buttons) in [("/tokens", 2), ("/scim", 1)] {
            browser.goto(&app.url(path)).await;
            browser.wait_for("main h1", WAIT).await;
            let outside = browser
                .execute(
                    "var w = window.innerWidth; return Array.from(document.querySelectorAll('#tokens table button.btn-danger, #tokens table td')).filter(function (e) { var r = e.getBoundingClientRect(); return r.width > 0 && (r.right > w + 1 || r.left < -1); }).length;",
                    vec![],
                )
                .await;
            assert_eq!(outside, 0, "{path}: cells or buttons outside the screen");
            let revoke = browser
                .execute(
                    "return document.querySelectorAll('#tokens table button.btn-danger').length;",
                    vec![],
                )
                .await;
            assert_eq!(revoke, buttons, "{path}");
            browser
                .save_full_page_screenshot(&format!(
                    "pages/390/{}_stacked",
                    path.trim_start_matches('/')
                ))
                .await;
        }
    });
}

/// What scrolls or is cut sideways inside the page, not only the page itself: a table, scroll
/// box or chart figure wider than its box, a cell whose text is clipped (an ellipsis), a cell,
/// button or link outside the screen, and a chart label drawn smaller than 10 px or outside
/// its chart. At most a dozen descriptions, empty when everything fits.
const SIDEWAYS_INSIDE: &str = "var w = document.documentElement.clientWidth, out = [];
  function name(e) { var c = e.getAttribute('class'); return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (c ? '.' + c.trim().split(/ +/).join('.') : ''); }
  function shown(e) { var r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && !e.closest('.visually-hidden'); }
  function add(s) { if (out.length < 12 && out.indexOf(s) < 0) out.push(s); }
  document.querySelectorAll('main table, main .table-scroll, main .table-wrap, main figure, main td, main tbody th').forEach(function (e) {
    if (shown(e) && e.scrollWidth > e.clientWidth + 1)
      add(name(e) + ' is wider than its box (' + e.scrollWidth + ' > ' + e.clientWidth + ' px): ' + e.textContent.trim().slice(0, 40));
  });
  document.querySelectorAll('main td, main th, main button, main a, main input, main select, main svg.chart').forEach(function (e) {
    if (!shown(e)) return; var r = e.getBoundingClientRect();
    if (r.right > w + 1 || r.left < -1) add(name(e) + ' is outside the screen (' + Math.round(r.left) + ' to ' + Math.round(r.right) + ' px): ' + e.textContent.trim().slice(0, 40));
  });
  document.querySelectorAll('main svg.chart').forEach(function (svg) {
    if (!shown(svg)) return; var scale = svg.getScreenCTM().a, box = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(function (t) {
      var px = parseFloat(t.getAttribute('font-size') || getComputedStyle(t).fontSize) * scale, r = t.getBoundingClientRect();
      if (px < 10) add('chart label \"' + t.textContent + '\" is ' + px.toFixed(1) + ' px');
      if (r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1)) add('chart label \"' + t.textContent + '\" is outside its chart');
    });
    var xs = Array.from(svg.querySelectorAll('.chart-x text')).map(function (t) { return [t.textContent, t.getBoundingClientRect()]; });
    for (var i = 1; i < xs.length; i++)
      if (xs[i - 1][1].right + 2 > xs[i][1].left) add('chart labels \"' + xs[i - 1][0] + '\" and \"' + xs[i][0] + '\" run into each other');
  });
  return out;";

/// Saves the page under fit/`name` (to look at), then fails with every place on it where
/// something scrolls or is cut sideways.
async fn assert_nothing_sideways(browser: &Browser, what: &str) {
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    browser
        .save_full_page_screenshot(&format!("fit/{}", name.trim_matches('_')))
        .await;
    let found = browser.execute(SIDEWAYS_INSIDE, vec![]).await;
    assert_eq!(
        found,
        serde_json::json!([]),
        "{what}: sideways scrolling or clipping inside the page"
    );
}

/// A workspace whose spend limit is below this month's spend, so /limits has a "reached" row.
async fn a_reached_spend_limit(session: &Session, workspace: &str) {
    let set = session
        .post(
            "/limits/spend",
            &[("scope", workspace), ("amount", "1"), ("confirm", "100")],
        )
        .await;
    assert_eq!(set.status(), 303, "a spend limit of $1");
    let (_, page) = session.get_text("/limits").await;
    assert!(page.contains("reached"), "the limit reads as reached");
}

/// On a 390 px phone every table reads as stacked rows and every chart fits the screen with
/// labels of at least 10 px: nothing scrolls sideways, inside a box or outside.
#[tokio::test]
async fn on_a_phone_every_table_and_chart_fits_the_screen_with_readable_labels() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("phone-admin", Role::Owner, &[]).await;
    let session = app.login_as("phone-admin").await;
    a_reached_spend_limit(&session, &ws).await;
    flow!("phone_tables", browser, {
        sign_in(&browser, &app, "phone-admin", PASSWORD).await;
        browser.set_viewport(390, 844, true).await;
        for path in [
            "/members".to_owned(),
            "/invites".to_owned(),
            "/workspaces".to_owned(),
            format!("/workspaces/{ws}"),
            "/keys".to_owned(),
            "/limits".to_owned(),
            format!("/limits/workspaces/{ws}"),
            "/usage".to_owned(),
            "/usage?range=7d&resolution=hour".to_owned(),
            "/cost".to_owned(),
            "/cost/people".to_owned(),
            "/claude-code".to_owned(),
            "/audit".to_owned(),
            "/accounts".to_owned(),
            "/access-review".to_owned(),
        ] {
            browser.goto(&app.url(&path)).await;
            browser.wait_for("main h1", WAIT).await;
            browser.wait_for_gone("[hx-trigger='load']", WAIT).await;
            assert_nothing_sideways(&browser, &format!("{path} at 390 px")).await;
        }
        // The week's chart shows all seven days, each labelled.
        browser.goto(&app.url("/usage?range=7d")).await;
        browser.wait_for("main h1", WAIT).await;
        let labels = browser
            .execute(
                "var s = Array.from(document.querySelectorAll('main svg.chart')).filter(function (e) { return e.getBoundingClientRect().width > 0; })[0]; return s.querySelectorAll('.chart-x text').length;",
                vec![],
            )
            .await;
        assert_eq!(labels, 7, "one label per day of the week");
    });
}

/// At 1440 px the tables a person works in show every column without a sideways scroll: the
/// keys (Status and Flags visible, "Belongs to" whole, flags on one line), the limits once a
/// row says "reached" (Remove buttons visible) and Claude Code's "By model".
#[tokio::test]
async fn at_1440_px_keys_limits_and_claude_code_show_every_column_without_scrolling() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("wide-admin", Role::Owner, &[]).await;
    let session = app.login_as("wide-admin").await;
    a_reached_spend_limit(&session, &ws).await;
    flow!("wide_tables", browser, {
        sign_in(&browser, &app, "wide-admin", PASSWORD).await;
        browser.set_viewport(1440, 900, false).await;
        for path in ["/keys", "/limits", "/claude-code"] {
            browser.goto(&app.url(path)).await;
            browser.wait_for("main h1", WAIT).await;
            assert_nothing_sideways(&browser, &format!("{path} at 1440 px")).await;
        }
        browser.goto(&app.url("/limits")).await;
        browser.wait_for("main h1", WAIT).await;
        assert!(
            browser
                .find(".limits-table button.btn-danger")
                .await
                .is_displayed()
                .await,
            "a Remove button is shown"
        );
        browser.goto(&app.url("/keys")).await;
        browser.wait_for("main h1", WAIT).await;
        // Flags sit side by side (at most two lines of them), and no row grows past three
        // lines of text.
        let (tallest, flag_lines) = {
            let measured = browser
                .execute(
                    "var rows = Array.from(document.querySelectorAll('.key-table tbody tr'));
                     return [Math.max.apply(null, rows.map(function (r) { return r.getBoundingClientRect().height; })),
                             Math.max.apply(null, rows.map(function (r) { var tops = {}; r.querySelectorAll('.flag').forEach(function (f) { tops[Math.round(f.getBoundingClientRect().top)] = 1; }); return Object.keys(tops).length; }))];",
                    vec![],
                )
                .await;
            (measured[0].as_f64().unwrap(), measured[1].as_u64().unwrap())
        };
        assert!(flag_lines <= 2, "a key's flags stack on {flag_lines} lines");
        let tall_row = browser
            .execute(
                "var rows = Array.from(document.querySelectorAll('.key-table tbody tr')); rows.sort(function (a, b) { return b.getBoundingClientRect().height - a.getBoundingClientRect().height; }); return Array.from(rows[0].cells).map(function (c) { return Math.round(c.getBoundingClientRect().width) + ':' + c.innerText; }).join(' | ');",
                vec![],
            )
            .await;
        assert!(
            tallest <= 84.0,
            "a key's row is {tallest} px tall: {tall_row}"
        );
    });
}

/// The access review is one click from the audit log, the members and the workspaces, looks
/// like the other pages, and speaks plainly: role labels, the app's dates, and "unknown"
/// before Orgkeeper's history began.
#[tokio::test]
async fn the_access_review_is_linked_from_audit_members_and_workspaces_and_reads_plainly() {
    let app = spawn_app().await;
    let ws = app.first_workspace_id().await;
    app.create_account("review-owner", Role::Owner, &[]).await;
    flow!("access_review", browser, {
        sign_in(&browser, &app, "review-owner", PASSWORD).await;
        for path in [
            "/audit".to_owned(),
            "/members".to_owned(),
            "/workspaces".to_owned(),
            format!("/workspaces/{ws}"),
        ] {
            browser.goto(&app.url(&path)).await;
            browser.wait_for("main h1", WAIT).await;
            browser
                .find("main a[href^='/access-review']")
                .await
                .click()
                .await;
            browser.wait_for_url("/access-review", WAIT).await;
            browser
                .wait_for_text("main h1", "Access review", WAIT)
                .await;
        }
        // From a workspace's page, the review is of that workspace.
        assert!(
            browser.current_url().await.contains(&ws),
            "the workspace's own review"
        );
        let styled = browser
            .execute(
                "return Array.from(document.querySelectorAll('main table')).every(function (t) { return t.classList.contains('table'); }) && document.querySelectorAll('main table').length > 0;",
                vec![],
            )
            .await;
        assert_eq!(
            styled, true,
            "the review's tables look like every other table"
        );
        let text = browser.find("main").await.text().await;
        for code in ["workspace_admin", "workspace_developer", "workspace_user"] {
            assert!(!text.contains(code), "a role code on the page: {code}");
        }
        let iso = browser
            .execute(
                "return /\\d{4}-\\d{2}-\\d{2}T\\d{2}:/.test(document.querySelector('main').innerText);",
                vec![],
            )
            .await;
        assert_eq!(iso, false, "no ISO timestamps: {text}");
        screenshot_both_widths(&browser, "access_review").await;
        assert_nothing_sideways(&browser, "access review at 1440 px").await;

        // Before the history began: unknown, not "nobody".
        browser
            .goto(&app.url(&format!("/access-review?workspace={ws}&at=2020-01-01")))
            .await;
        let people = browser.wait_for("#review-people", WAIT).await.text().await;
        assert!(people.contains("Unknown: history starts on"), "{people}");
        assert!(!people.contains("Nobody held a role"), "{people}");
        screenshot_both_widths(&browser, "access_review_before_history").await;
    });
}
