//! Who spent it: cost and usage per person, service account and API key (`/cost/people`, its
//! CSV), and a person's own cost on their member page (`/members/{id}/cost`).
//!
//! Everything is read from the analytics store ([`crate::analytics_store`]) after a throttled
//! refresh of its recent days, so a page view normally asks Anthropic nothing. Team leads read
//! only the rows of their workspaces, so their totals add up within that scope. Amounts stay
//! exact decimal cents until they are shown.

use crate::labels::calendar_day;
use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use tokio::sync::mpsc;

use super::context::Layout;
use super::error::{AppError, AppResult};
use super::extract::Query;
use super::page::render;
use super::present::{query_string, Pager};
use super::routes::{Access::Needs, Routes};
use super::usage::{chart, dollars_plain, month_key, thousands};
use super::Ctx;
use crate::analytics_store as analytics;
use crate::auth::Permission;
use crate::money::dollars;
use crate::org::names::Directory;
use crate::service::cost::{self, Sums};
use crate::usage_store::{month_start, next_month};

pub fn routes() -> Routes {
    use Permission::*;
    Routes::new()
        .get("/cost/people", Needs(ViewUsage), page)
        .get("/cost/people.csv", Needs(ViewUsage), csv)
        // Member pages are for those who read the directory; the handler also checks usage.
        .get(
            "/members/{user_id}/cost",
            Needs(ViewDirectory),
            member_section,
        )
}

// ---------------------------------------------------------------------------------------------
// Names

/// Who an actor is, in words: (kind, name, email, link, detail).
pub struct Who {
    pub kind: &'static str,
    pub name: String,
    pub email: String,
    pub href: Option<String>,
    pub detail: String,
}

/// Plain words for an actor type (`''`: the API could not attribute the usage).
pub fn kind_label(actor_type: &str) -> &'static str {
    match actor_type {
        "user_actor" => "Person",
        "service_account_actor" => "Service account",
        "federated_actor" => "Cloud identity",
        "api_actor" => "API key, no person",
        _ => "Not attributed",
    }
}

pub fn who(
    dir: &Directory,
    named: &HashMap<String, analytics::Named>,
    actor_type: &str,
    actor_id: &str,
    link_people: bool,
) -> Who {
    let kind = kind_label(actor_type);
    match actor_type {
        "user_actor" => {
            let api = named.get(actor_id);
            let model = dir.person(actor_id);
            let api_name = api
                .filter(|n| !n.deleted)
                .and_then(|n| n.name.clone())
                .filter(|n| !n.trim().is_empty());
            // Someone who left keeps the name the model knew them by.
            let name = api_name
                .or_else(|| {
                    model
                        .map(|(n, _, _)| n.to_owned())
                        .filter(|n| !n.is_empty())
                })
                .or_else(|| api.and_then(|n| n.name.clone()))
                .unwrap_or_else(|| actor_id.to_owned());
            let email = api
                .and_then(|n| n.email.clone())
                .or_else(|| model.map(|(_, e, _)| e.to_owned()))
                .unwrap_or_default();
            let left = api.is_some_and(|n| n.deleted) || model.is_some_and(|(_, _, c)| !c);
            Who {
                kind,
                name,
                email,
                href: link_people.then(|| format!("/members/{actor_id}")),
                detail: if left {
                    "no longer a member".into()
                } else {
                    String::new()
                },
            }
        }
        "service_account_actor" => {
            let keys = dir.service_account_keys(actor_id);
            Who {
                kind,
                name: "Service account".into(),
                email: String::new(),
                href: None,
                detail: key_list(keys),
            }
        }
        "api_actor" => Who {
            kind,
            name: dir.key(actor_id),
            email: String::new(),
            href: Some(format!("/keys/{actor_id}")),
            detail: "a legacy workspace key: Anthropic cannot tell who used it".into(),
        },
        "federated_actor" => Who {
            kind,
            name: actor_id.to_owned(),
            email: String::new(),
            href: None,
            detail: String::new(),
        },
        _ => Who {
            kind,
            name: "Not attributed".into(),
            email: String::new(),
            href: None,
            detail: "usage Anthropic could not attribute to anyone".into(),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Periods

/// The days a page shows, `[from, to)`, and the equally long period before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub previous: (NaiveDate, NaiveDate),
    pub label: String,
    pub previous_label: String,
    /// `Some(first day)` when the period is a month (for links and file names).
    pub month: Option<NaiveDate>,
}

/// The month asked for (`month=YYYY-MM`, this month by default) or a range (`from`, `to`,
/// inclusive), between 2026-01-01 and today; or a sentence saying why not.
pub fn period(params: &BTreeMap<String, String>, today: NaiveDate) -> Result<Period, String> {
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let epoch = analytics::epoch();
    if let (Some(from), Some(to)) = (get("from"), get("to")) {
        let from = crate::web::present::day(from, "from")?;
        let to = crate::web::present::day(to, "to")?;
        if to < from {
            return Err("The end date is before the start date.".into());
        }
        if from < epoch {
            return Err(format!(
                "Cost per person is available from {epoch}; choose a later start date."
            ));
        }
        if to > today {
            return Err(format!("Choose an end date up to today ({today})."));
        }
        if (to - from).num_days() >= 366 {
            return Err("Choose at most a year.".into());
        }
        let end = to.succ_opt().unwrap_or(to);
        let len = end - from;
        return Ok(Period {
            from,
            to: end,
            previous: (from - len, from),
            label: format!("{} to {}", calendar_day(from), calendar_day(to)),
            previous_label: format!(
                "{} to {}",
                calendar_day(from - len),
                calendar_day(from.pred_opt().unwrap_or(from))
            ),
            month: None,
        });
    }
    let this_month = month_start(today);
    let first = match get("month") {
        None => this_month,
        Some(m) => crate::web::present::month(m)?,
    };
    if first < epoch {
        return Err(format!(
            "Cost per person is available from {}; choose a later month.",
            epoch.format("%B %Y")
        ));
    }
    if first > this_month {
        return Err("That month has not started yet.".into());
    }
    let previous_start = month_start(first.pred_opt().unwrap_or(first));
    if first == this_month {
        // Month to date, against the same days of the previous month.
        let days = i64::from(today.day());
        let to = today.succ_opt().unwrap_or(today);
        let prev_end = (previous_start + chrono::Duration::days(days)).min(first);
        return Ok(Period {
            from: first,
            to,
            previous: (previous_start, prev_end),
            label: format!("{} to date", first.format("%B %Y")),
            previous_label: format!(
                "{} to {}",
                calendar_day(previous_start),
                calendar_day(prev_end.pred_opt().unwrap_or(prev_end))
            ),
            month: Some(first),
        });
    }
    Ok(Period {
        from: first,
        to: next_month(first),
        previous: (previous_start, first),
        label: first.format("%B %Y").to_string(),
        previous_label: previous_start.format("%B %Y").to_string(),
        month: Some(first),
    })
}

/// Months people can pick, newest first: from this month back to January 2026.
pub fn months(today: NaiveDate, chosen: Option<NaiveDate>) -> Vec<super::usage::Opt> {
    let mut out = Vec::new();
    let mut m = month_start(today);
    while m >= analytics::epoch() {
        out.push(super::usage::Opt {
            value: month_key(m),
            label: m.format("%B %Y").to_string(),
            selected: Some(m) == chosen,
        });
        m = month_start(m.pred_opt().unwrap_or(m));
        if out.len() > 24 {
            break;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Figures

/// "+12.5%", "−3.0%", "new", "—" (nothing either time).
fn change(now: Decimal, before: Decimal) -> String {
    if before.is_zero() {
        return if now.is_zero() {
            "—".into()
        } else {
            "new".into()
        };
    }
    let pct = ((now - before) * Decimal::from(100) / before).round_dp(1);
    if pct.is_sign_positive() && !pct.is_zero() {
        format!("+{pct}%")
    } else if pct.is_zero() {
        "0.0%".into()
    } else {
        format!("−{}%", pct.abs())
    }
}

fn share(part: Decimal, total: Decimal) -> String {
    if total.is_zero() {
        return "—".into();
    }
    format!("{}%", (part * Decimal::from(100) / total).round_dp(1))
}

/// A service account's keys in a row: a few by name, then how many more, so that a row (and
/// the page) does not grow with an account that holds thousands of keys.
fn key_list(keys: &[String]) -> String {
    const NAMED: usize = 5;
    match keys.len() {
        0 => String::new(),
        n if n <= NAMED => format!("keys: {}", keys.join(", ")),
        n => format!(
            "keys: {} and {} more",
            keys[..NAMED].join(", "),
            crate::web::present::count(n - NAMED)
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The page

pub struct PersonRow {
    pub kind: &'static str,
    pub name: String,
    pub href: Option<String>,
    pub email: String,
    pub detail: String,
    pub cost: String,
    pub tokens: String,
    pub requests: String,
    pub share: String,
    pub change: String,
}

pub struct Column {
    pub label: &'static str,
    pub href: String,
    pub state: &'static str,
    pub numeric: bool,
}

pub struct KindTotal {
    pub kind: &'static str,
    pub cost: String,
    pub share: String,
    pub count: usize,
}

#[derive(Template)]
#[template(path = "cost/people.html")]
struct PeoplePage {
    layout: Layout,
    period_label: String,
    previous_label: String,
    months: Vec<super::usage::Opt>,
    from: String,
    to: String,
    q: String,
    sort: String,
    dir: String,
    rows: Vec<PersonRow>,
    columns: Vec<Column>,
    pager: Pager,
    total_cost: String,
    total_tokens: String,
    total_requests: String,
    total_change: String,
    previous_cost: String,
    kinds: Vec<KindTotal>,
    actors: usize,
    unavailable: Option<String>,
    stale: Option<String>,
    csv_href: String,
    scoped: bool,
    can_see_centers: bool,
}

const SORTS: &[(&str, &str, bool)] = &[
    ("name", "Name", false),
    ("cost", "Cost", true),
    ("tokens", "Tokens", true),
    ("requests", "Requests", true),
    ("share", "Share", true),
    ("change", "Change", true),
];

pub async fn page(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let now = ctx.state.clock.now();
    let period = period(&params, now.date_naive()).map_err(AppError::BadRequest)?;
    let fresh = cost::refresh(&ctx.state, now).await?;
    let caller = ctx.caller();
    let current = cost::by_actor(&ctx.state, &caller, period.from, period.to).await?;
    let previous =
        cost::by_actor(&ctx.state, &caller, period.previous.0, period.previous.1).await?;
    let before: HashMap<&cost::ActorKey, &Sums> = previous.iter().map(|(k, s)| (k, s)).collect();
    let dir = Directory::of(&ctx.state.org.snapshot());
    let named = cost::named(&ctx.state).await?;
    let link_people = ctx.can(Permission::ViewDirectory);

    let total: Sums = current.iter().fold(Sums::default(), |mut t, (_, s)| {
        t.cost += s.cost;
        t.tokens += s.tokens;
        t.requests += s.requests;
        t
    });
    let previous_total: Decimal = previous.iter().map(|(_, s)| s.cost).sum();
    let mut kinds: Vec<KindTotal> = Vec::new();
    for kind in [
        "user_actor",
        "service_account_actor",
        "federated_actor",
        "api_actor",
        "",
    ] {
        let of_kind: Vec<_> = current.iter().filter(|((t, _), _)| t == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let cost: Decimal = of_kind.iter().map(|(_, s)| s.cost).sum();
        kinds.push(KindTotal {
            kind: kind_label(kind),
            cost: dollars(cost),
            share: share(cost, total.cost),
            count: of_kind.len(),
        });
    }

    // Search, then sort, then one page.
    let q = params
        .get("q")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let needle = q.to_lowercase();
    let mut found: Vec<(Who, &(String, String), &Sums, Decimal)> = current
        .iter()
        .map(|(k, s)| {
            let w = who(&dir, &named, &k.0, &k.1, link_people);
            let before = before.get(k).map_or(Decimal::ZERO, |p| p.cost);
            (w, k, s, before)
        })
        .filter(|(w, k, _, _)| {
            needle.is_empty()
                || [
                    w.name.as_str(),
                    w.email.as_str(),
                    k.1.as_str(),
                    w.detail.as_str(),
                ]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
        })
        .collect();
    let sort = params
        .get("sort")
        .map(String::as_str)
        .filter(|s| SORTS.iter().any(|(k, _, _)| k == s))
        .unwrap_or("cost")
        .to_owned();
    let desc = params.get("dir").map_or(sort != "name", |d| d != "asc");
    // Growth for the change column: those with nothing before sort as the largest.
    let growth = |now: Decimal, before: Decimal| {
        if before.is_zero() {
            Decimal::MAX
        } else {
            (now - before) / before
        }
    };
    found.sort_by(|a, b| {
        let ord = match sort.as_str() {
            "name" => a.0.name.to_lowercase().cmp(&b.0.name.to_lowercase()),
            "tokens" => a.2.tokens.cmp(&b.2.tokens),
            "requests" => a.2.requests.cmp(&b.2.requests),
            "change" => growth(a.2.cost, a.3).cmp(&growth(b.2.cost, b.3)),
            _ => a.2.cost.cmp(&b.2.cost),
        };
        let ord = if desc { ord.reverse() } else { ord };
        ord.then_with(|| a.1.cmp(b.1))
    });
    let base: Vec<(&str, String)> = [
        ("month", period.month.map(month_key).unwrap_or_default()),
        ("from", params.get("from").cloned().unwrap_or_default()),
        ("to", params.get("to").cloned().unwrap_or_default()),
        ("q", q.clone()),
    ]
    .into_iter()
    .filter(|(k, _)| period.month.is_none() || (*k != "from" && *k != "to"))
    .collect();
    let link = |sort: &str, dir: &str, page: usize| {
        let page = page.to_string();
        let mut pairs: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.push(("sort", sort));
        pairs.push(("dir", dir));
        if page != "1" {
            pairs.push(("page", &page));
        }
        format!("/cost/people?{}", query_string(&pairs))
    };
    let requested = params.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let dir_now = if desc { "desc" } else { "asc" };
    let pager = Pager::new(found.len(), requested, |p| link(&sort, dir_now, p));
    let columns = SORTS
        .iter()
        .map(|(key, label, numeric)| {
            let active = *key == sort;
            let next = if active {
                if desc {
                    "asc"
                } else {
                    "desc"
                }
            } else if *numeric {
                "desc"
            } else {
                "asc"
            };
            Column {
                label,
                href: link(key, next, 1),
                state: match (active, desc) {
                    (false, _) => "none",
                    (true, true) => "descending",
                    (true, false) => "ascending",
                },
                numeric: *numeric,
            }
        })
        .collect();
    let rows = found[pager.range()]
        .iter()
        .map(|(w, _, s, before)| PersonRow {
            kind: w.kind,
            name: w.name.clone(),
            href: w.href.clone(),
            email: w.email.clone(),
            detail: w.detail.clone(),
            cost: dollars(s.cost),
            tokens: thousands(s.tokens),
            requests: thousands(s.requests),
            share: share(s.cost, total.cost),
            change: change(s.cost, *before),
        })
        .collect();
    let csv_pairs: Vec<(&str, &str)> = base
        .iter()
        .filter(|(k, _)| *k != "q")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let page = PeoplePage {
        layout: ctx.layout("Cost by person", "cost").await,
        period_label: period.label.clone(),
        previous_label: period.previous_label.clone(),
        months: months(now.date_naive(), period.month),
        from: params.get("from").cloned().unwrap_or_default(),
        to: params.get("to").cloned().unwrap_or_default(),
        q,
        sort: sort.clone(),
        dir: dir_now.to_owned(),
        rows,
        columns,
        pager,
        total_cost: dollars(total.cost),
        total_tokens: thousands(total.tokens),
        total_requests: thousands(total.requests),
        total_change: change(total.cost, previous_total),
        previous_cost: dollars(previous_total),
        kinds,
        actors: current.len(),
        unavailable: fresh.refused,
        stale: fresh.stale,
        csv_href: format!("/cost/people.csv?{}", query_string(&csv_pairs)),
        scoped: ctx.workspace_scope().is_some(),
        can_see_centers: ctx.can(Permission::ViewDirectory),
    };
    render(StatusCode::OK, &page)
}

/// `/cost/people.csv?month=YYYY-MM` (or `from`/`to`): one row per actor of the period, exact
/// to the cent, streamed.
pub async fn csv(ctx: Ctx, Query(params): Query<BTreeMap<String, String>>) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let now = ctx.state.clock.now();
    let period = period(&params, now.date_naive()).map_err(AppError::BadRequest)?;
    cost::refresh(&ctx.state, now).await?;
    let current = cost::by_actor(&ctx.state, &ctx.caller(), period.from, period.to).await?;
    let dir = Directory::of(&ctx.state.org.snapshot());
    let named = cost::named(&ctx.state).await?;
    let filename = match period.month {
        Some(m) => format!("cost-by-person-{}.csv", month_key(m)),
        None => format!(
            "cost-by-person-{}-to-{}.csv",
            period.from,
            period.to.pred_opt().unwrap_or(period.to)
        ),
    };
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let head =
            "actor_type,actor_id,name,email,cost_usd,tokens,requests,input_tokens,output_tokens\n";
        if tx.send(head.to_owned()).await.is_err() {
            return;
        }
        for ((kind, id), s) in current.iter() {
            let w = who(&dir, &named, kind, id, false);
            let actor_type = if kind.is_empty() {
                "unattributed"
            } else {
                kind
            };
            let line = format!(
                "{},{},{},{},{},{},{},{},{}\n",
                actor_type,
                crate::csv::text(id),
                crate::csv::text(&w.name),
                crate::csv::text(&w.email),
                dollars_plain(s.cost),
                s.tokens,
                s.requests,
                s.input_tokens,
                s.output_tokens
            );
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok(csv_download(filename, rx))
}

/// A streamed CSV download: `lines` come from a task while the client reads (as the usage
/// exports do).
pub fn csv_download(filename: String, rx: mpsc::Receiver<String>) -> Response {
    use axum::response::IntoResponse;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::io::Error>(axum::body::Bytes::from(line)), rx))
    });
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// A person's own cost, on their member page

pub struct MonthRow {
    pub month: String,
    pub cost: String,
    pub tokens: String,
    pub requests: String,
}

pub struct KeyRow {
    pub name: String,
    pub href: Option<String>,
    pub workspace: String,
    pub cost: String,
    pub tokens: String,
}

#[derive(Template)]
#[template(path = "cost/_member.html")]
struct MemberCost {
    /// Any cost in the last 30 days (else the empty chart is left out).
    recent: bool,
    chart: chart::ChartView,
    months: Vec<MonthRow>,
    keys: Vec<KeyRow>,
    this_month: String,
    unavailable: Option<String>,
    stale: Option<String>,
}

/// [`MemberCost`] as a page of its own (no JavaScript): the section, within the layout.
#[derive(Template)]
#[template(path = "cost/member.html")]
struct MemberCostPage {
    layout: Layout,
    name: String,
    user_id: String,
    /// Rendered by its own template, which escapes what it shows.
    section: MemberCost,
}

/// The member's cost and usage over time: the last 30 days by day, every month since January
/// 2026, and this month by key. A partial for the member page (htmx), or a page of its own.
pub async fn member_section(
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    Path(user_id): Path<String>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewUsage).await?;
    let dir = Directory::of(&ctx.state.org.snapshot());
    let Some((name, email, _)) = dir.person(&user_id) else {
        return Err(AppError::NotFound);
    };
    let name = if name.trim().is_empty() { email } else { name }.to_owned();
    let now = ctx.state.clock.now();
    let today = now.date_naive();
    let fresh = cost::refresh(&ctx.state, now).await?;
    let first = analytics::first_day(now).min(month_start(today));
    let lines = cost::person_lines(
        &ctx.state,
        &ctx.caller(),
        &user_id,
        month_start(first),
        today.succ_opt().unwrap_or(today),
    )
    .await?;
    // Last 30 days, by day.
    let start = today - chrono::Duration::days(29);
    let mut daily = vec![Decimal::ZERO; 30];
    let mut by_month: BTreeMap<NaiveDate, Sums> = BTreeMap::new();
    let mut by_key: HashMap<(String, String), Sums> = HashMap::new();
    let this_month = month_start(today);
    for l in &lines {
        if l.day >= start {
            if let Some(slot) = daily.get_mut((l.day - start).num_days() as usize) {
                *slot += l.amount;
            }
        }
        by_month.entry(month_start(l.day)).or_default().add(l);
        if l.day >= this_month {
            by_key
                .entry((l.api_key_id.clone(), l.workspace_id.clone()))
                .or_default()
                .add(l);
        }
    }
    let labels: Vec<String> = (0..30)
        .map(|i| (start + chrono::Duration::days(i)).to_string())
        .collect();
    let series = vec![chart::Series {
        color: None,
        name: "Cost".into(),
        values: daily
            .iter()
            .map(|v| v.to_string().parse::<f64>().unwrap_or(0.0) / 100.0)
            .collect(),
        labels: daily.iter().map(|v| dollars(*v)).collect(),
    }];
    let mut chart = chart::build(
        &format!("Daily cost of {name}, last 30 days"),
        &labels,
        &series,
        |v| format!("${}", super::usage::compact(v)),
    );
    chart.unit = "US dollars".into();
    let months = by_month
        .iter()
        .rev()
        .map(|(m, s)| MonthRow {
            month: m.format("%B %Y").to_string(),
            cost: dollars(s.cost),
            tokens: thousands(s.tokens),
            requests: thousands(s.requests),
        })
        .collect();
    let mut keys: Vec<_> = by_key.into_iter().collect();
    keys.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then(a.0.cmp(&b.0)));
    let keys = keys
        .into_iter()
        .map(|((key, ws), s)| KeyRow {
            name: dir.key(&key),
            href: (!key.is_empty()).then(|| format!("/keys/{key}")),
            workspace: dir.workspace(&ws),
            cost: dollars(s.cost),
            tokens: thousands(s.tokens),
        })
        .collect();
    let section = MemberCost {
        recent: daily.iter().any(|d| !d.is_zero()),
        chart,
        months,
        keys,
        this_month: dollars(by_month.get(&this_month).map_or(Decimal::ZERO, |s| s.cost)),
        unavailable: fresh.refused,
        stale: fresh.stale,
    };
    if super::context::wants_partial(&headers) {
        return render(StatusCode::OK, &section);
    }
    let page = MemberCostPage {
        layout: ctx.layout(format!("Cost of {name}"), "members").await,
        name,
        user_id,
        section,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::key_list;

    #[test]
    fn a_service_accounts_keys_are_named_up_to_five_then_counted() {
        let keys: Vec<String> = (1..=1234).map(|i| format!("ETL {i}")).collect();
        assert_eq!(key_list(&keys[..0]), "");
        assert_eq!(key_list(&keys[..2]), "keys: ETL 1, ETL 2");
        assert_eq!(
            key_list(&keys),
            "keys: ETL 1, ETL 2, ETL 3, ETL 4, ETL 5 and 1,229 more"
        );
    }
}
