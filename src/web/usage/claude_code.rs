//! Claude Code (`/claude-code`): per person and per day, sessions, lines, commits, pull
//! requests, tool accept/reject rates and estimated cost by model. Settled days are kept in the
//! store, so a day is fetched once.

use std::collections::BTreeMap;

use crate::web::extract::Query;
use askama::Template;
use axum::response::Response;
use rust_decimal::Decimal;

use super::{dollars, thousands, Ctx, Opt};
use crate::anthropic::{ClaudeCodeActor, ClaudeCodeRecord};
use crate::auth::Permission;
use crate::web::context::Layout;
use crate::web::error::AppResult;
use crate::web::present::{query_string, Pager};

pub struct Row {
    pub day: String,
    pub person: String,
    pub sessions: String,
    pub added: String,
    pub removed: String,
    pub commits: String,
    pub pull_requests: String,
    pub accept_rate: String,
    pub reject_rate: String,
    pub cost: String,
    /// "claude-sonnet-4-20250514: $6.96", one line per model.
    pub cost_by_model: Vec<String>,
}

#[derive(Template)]
#[template(path = "usage/claude_code.html")]
struct Page {
    layout: Layout,
    scoped: bool,
    ranges: Vec<Opt>,
    rows: Vec<Row>,
    /// Pages of the per-person-and-day table and of the per-person one: both grow with the
    /// organization (and the first with the range).
    rows_pager: Pager,
    people: Vec<Row>,
    people_pager: Pager,
    total_cost: String,
}

fn person(a: &ClaudeCodeActor) -> String {
    match a {
        ClaudeCodeActor::UserActor { email_address } => email_address.clone(),
        ClaudeCodeActor::ApiActor { api_key_name } => format!("API key: {api_key_name}"),
        ClaudeCodeActor::Unknown => "(unknown)".into(),
    }
}

#[derive(Default, Clone)]
struct Acc {
    sessions: u64,
    added: u64,
    removed: u64,
    commits: u64,
    prs: u64,
    accepted: u64,
    rejected: u64,
    cost: Decimal,
    by_model: BTreeMap<String, Decimal>,
}

impl Acc {
    fn add(&mut self, r: &ClaudeCodeRecord) {
        let m = &r.core_metrics;
        self.sessions += m.num_sessions;
        self.added += m.lines_of_code.added;
        self.removed += m.lines_of_code.removed;
        self.commits += m.commits_by_claude_code;
        self.prs += m.pull_requests_by_claude_code;
        for t in r.tool_actions.values() {
            self.accepted += t.accepted;
            self.rejected += t.rejected;
        }
        for b in &r.model_breakdown {
            self.cost += b.estimated_cost.amount;
            *self.by_model.entry(b.model.clone()).or_default() += b.estimated_cost.amount;
        }
    }

    fn row(&self, day: String, person: String) -> Row {
        let actions = self.accepted + self.rejected;
        let rate = |n: u64| match (n * 1000).checked_div(actions) {
            None => "–".to_owned(),
            Some(permille) => crate::money::percent(Decimal::from(permille) / Decimal::from(10)),
        };
        Row {
            day,
            person,
            sessions: thousands(self.sessions as i64),
            added: thousands(self.added as i64),
            removed: thousands(self.removed as i64),
            commits: thousands(self.commits as i64),
            pull_requests: thousands(self.prs as i64),
            accept_rate: rate(self.accepted),
            reject_rate: rate(self.rejected),
            cost: dollars(self.cost),
            cost_by_model: self
                .by_model
                .iter()
                .map(|(m, c)| format!("{}: {}", crate::labels::model(m), dollars(*c)))
                .collect(),
        }
    }
}

pub async fn page(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let days: i64 = match params.get("days").map(String::as_str) {
        Some("14") => 14,
        Some("30") => 30,
        _ => 7,
    };
    let ranges = [7, 14, 30]
        .iter()
        .map(|d| Opt {
            value: d.to_string(),
            label: format!("Last {d} days"),
            selected: *d == days,
        })
        .collect();
    // The report names people, not workspaces: it is organization-wide, so team leads get none
    // of it.
    if ctx.workspace_scope().is_some() {
        let page = Page {
            layout: ctx.layout("Claude Code", "claude-code").await,
            scoped: true,
            ranges,
            rows: Vec::new(),
            rows_pager: Pager::empty(),
            people: Vec::new(),
            people_pager: Pager::empty(),
            total_cost: dollars(Decimal::ZERO),
        };
        return crate::web::page::render(axum::http::StatusCode::OK, &page);
    }
    let now = ctx.state.clock.now();
    // The latest complete day is served an hour after it ends.
    let to = (now - chrono::Duration::hours(1))
        .date_naive()
        .pred_opt()
        .unwrap_or_default();
    let from = to - chrono::Duration::days(days - 1);
    let records = crate::service::usage::claude_code_days(&ctx.state, from, to, now).await?;
    let mut per_day: BTreeMap<(chrono::NaiveDate, String), Acc> = BTreeMap::new();
    let mut per_person: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for r in &records {
        let p = person(&r.actor);
        per_day.entry((r.date, p.clone())).or_default().add(r);
        per_person.entry(p).or_default().add(r);
        total.add(r);
    }
    // Links keep the range and the other table's page.
    let number = |key: &str| params.get(key).and_then(|p| p.parse().ok()).unwrap_or(1);
    let (days_page, people_page) = (number("page"), number("people_page"));
    let link = |page: usize, people: usize| {
        let beyond_first = |n: usize| if n > 1 { n.to_string() } else { String::new() };
        let (page, people, days) = (beyond_first(page), beyond_first(people), days.to_string());
        let pairs = [
            ("days", days.as_str()),
            ("page", &page),
            ("people_page", &people),
        ];
        format!("/claude-code?{}", query_string(&pairs))
    };
    let people_pager = Pager::new(per_person.len(), people_page, |p| link(days_page, p));
    let rows_pager = Pager::new(per_day.len(), days_page, |p| link(p, people_pager.page));
    let rows = per_day
        .iter()
        .rev()
        .skip(rows_pager.range().start)
        .take(rows_pager.range().len())
        .map(|((d, p), a)| a.row(crate::labels::calendar_day(*d), p.clone()))
        .collect();
    let people = per_person
        .iter()
        .skip(people_pager.range().start)
        .take(people_pager.range().len())
        .map(|(p, a)| a.row(String::new(), p.clone()))
        .collect();
    let page = Page {
        layout: ctx.layout("Claude Code", "claude-code").await,
        scoped: false,
        ranges,
        rows,
        rows_pager,
        people,
        people_pager,
        total_cost: dollars(total.cost),
    };
    crate::web::page::render(axum::http::StatusCode::OK, &page)
}
