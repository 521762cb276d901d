//! Usage, cost, Claude Code and rate-limit reports, computed on demand.
//!
//! Usage is never stored per minute. It is a pure function of (seed, combo, day, hour, minute):
//! a daily total per combo comes from a hash; a day is split into hours and an hour into
//! minutes by deterministic integer weights whose floor-of-cumulative split sums exactly, so for
//! every field `sum(minutes) == hour` and `sum(hours) == day`. Only completed minutes (before
//! `now`) hold data, so the current bucket may be partial and the future is empty. Cost per day
//! is tokens × per-model prices, as exact decimals of cents.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::http::{bad_enum, ts_secs, ApiError, ApiResult, Query};
use super::state::{Combo, OrgState, USAGE_HISTORY_DAYS};

pub(crate) struct Model {
    pub id: &'static str,
    pub display: &'static str,
    /// Dollars per million input tokens, in cents (300 = $3/MTok).
    pub input_cents_per_mtok: i64,
    pub output_cents_per_mtok: i64,
    /// Supports the `200k-1M` context window (input ×2, output ×1.5 there).
    pub long_context: bool,
}

pub(crate) const MODELS: &[Model] = &[
    Model {
        id: "claude-sonnet-4-20250514",
        display: "Claude Sonnet 4",
        input_cents_per_mtok: 300,
        output_cents_per_mtok: 1500,
        long_context: true,
    },
    Model {
        id: "claude-sonnet-4-5-20250929",
        display: "Claude Sonnet 4.5",
        input_cents_per_mtok: 300,
        output_cents_per_mtok: 1500,
        long_context: true,
    },
    Model {
        id: "claude-opus-4-1-20250805",
        display: "Claude Opus 4.1",
        input_cents_per_mtok: 1500,
        output_cents_per_mtok: 7500,
        long_context: false,
    },
    Model {
        id: "claude-haiku-4-5-20251001",
        display: "Claude Haiku 4.5",
        input_cents_per_mtok: 100,
        output_cents_per_mtok: 500,
        long_context: false,
    },
    Model {
        id: "claude-3-5-haiku-20241022",
        display: "Claude Haiku 3.5",
        input_cents_per_mtok: 80,
        output_cents_per_mtok: 400,
        long_context: false,
    },
];

/// Usage fields, in this order, in every `Fields`. Requests are split like the tokens, so
/// they add up across minutes, hours and days too; only the analytics report shows them.
pub(crate) const UNCACHED: usize = 0;
pub(crate) const CW_1H: usize = 1;
pub(crate) const CW_5M: usize = 2;
pub(crate) const CACHE_READ: usize = 3;
pub(crate) const OUTPUT: usize = 4;
pub(crate) const WEB_SEARCH: usize = 5;
pub(crate) const REQUESTS: usize = 6;
pub(crate) type Fields = [u64; 7];

/// No tokens and no searches (a bucket can hold a stray request from the split alone).
pub(crate) fn is_idle(f: &Fields) -> bool {
    f[..REQUESTS].iter().all(|&x| x == 0)
}

const USAGE_GROUP_BY: &[&str] = &[
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
    "account_id",
    "service_account_id",
];
pub(super) const SERVICE_TIERS: &[&str] = &[
    "standard",
    "batch",
    "priority",
    "priority_on_demand",
    "flex",
    "flex_discount",
];
pub(super) const CONTEXT_WINDOWS: &[&str] = &["0-200k", "200k-1M"];
pub(super) const INFERENCE_GEOS: &[&str] = &["global", "us", "not_available"];
pub(super) const SPEEDS: &[&str] = &["standard", "fast"];
const FAST_MODE_BETA: &str = "fast-mode-2026-02-01";

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed), |acc, p| {
        mix(acc ^ p.wrapping_mul(0x2545_F491_4F6C_DD1D))
    })
}

/// The `idx`-th part of `total` split by `weights`; the parts sum exactly to `total`.
fn split(total: u64, weights: &[u64], idx: usize) -> u64 {
    let w: u128 = weights.iter().map(|&x| x as u128).sum();
    if w == 0 {
        return 0;
    }
    let before: u128 = weights[..idx].iter().map(|&x| x as u128).sum();
    let upto = before + weights[idx] as u128;
    let t = total as u128;
    (t * upto / w - t * before / w) as u64
}

/// Pure usage function for one seed and one "now".
pub(crate) struct UsageCalc {
    seed: u64,
    /// Minutes since the epoch that are complete (minute `m` holds data iff `m < now_min`).
    now_min: i64,
    minute_cache: HashMap<(u64, i64, i64), [Fields; 60]>,
}

impl UsageCalc {
    pub fn new(seed: u64, now: DateTime<Utc>) -> Self {
        UsageCalc {
            seed,
            now_min: now.timestamp().div_euclid(60),
            minute_cache: HashMap::new(),
        }
    }

    /// The full-day total (ignoring `now`).
    fn day_total(&self, c: &Combo, day: i64) -> Fields {
        let mut f = [0u64; 7];
        if day < c.start_day || day >= c.end_day {
            return f;
        }
        let r = |k: u64| hash(self.seed, &[c.id, day as u64, k]);
        if r(0) % 17 == 0 {
            return f; // an idle day
        }
        let weekday = (day + 3).rem_euclid(7); // 0 = Monday (1970-01-01 was a Thursday)
        let weekend = if weekday >= 5 { 30 } else { 100 };
        let base = c.volume * (50 + r(1) % 100) / 100 * weekend / 100;
        f[UNCACHED] = base;
        f[OUTPUT] = base * (10 + r(2) % 30) / 100;
        f[CACHE_READ] = base * (r(3) % 200) / 100;
        f[CW_5M] = base * (r(4) % 20) / 100;
        f[CW_1H] = if r(5) % 3 == 0 {
            base * (r(6) % 5) / 100
        } else {
            0
        };
        f[WEB_SEARCH] = if c.web_search {
            base / 20_000 + r(7) % 5
        } else {
            0
        };
        // A request carries 1,500 to 9,000 uncached input tokens.
        f[REQUESTS] = (base / (1_500 + r(8) % 7_500)).max(1);
        f
    }

    fn hour_weights(&self, c: &Combo, day: i64) -> [u64; 24] {
        const DIURNAL: [u64; 24] = [
            2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 13, 12, 13, 14, 14, 13, 11, 9, 7, 6, 5, 4, 3,
        ];
        let mut w = [0u64; 24];
        for (h, slot) in w.iter_mut().enumerate() {
            *slot = DIURNAL[h] * (1 + hash(self.seed, &[c.id, day as u64, 100 + h as u64]) % 50);
        }
        w
    }

    fn hour_full(&self, c: &Combo, day: i64, hour: i64) -> Fields {
        let total = self.day_total(c, day);
        if total.iter().all(|&x| x == 0) {
            return total;
        }
        let w = self.hour_weights(c, day);
        total.map(|t| split(t, &w, hour as usize))
    }

    /// Minute values of one hour, with minutes at or after `now` zeroed.
    fn minutes(&mut self, c: &Combo, day: i64, hour: i64) -> [Fields; 60] {
        if let Some(m) = self.minute_cache.get(&(c.id, day, hour)) {
            return *m;
        }
        let full = self.hour_full(c, day, hour);
        let mut out = [[0u64; 7]; 60];
        if full.iter().any(|&x| x != 0) {
            let mut w = [0u64; 60];
            for (m, slot) in w.iter_mut().enumerate() {
                let r = hash(self.seed, &[c.id, day as u64, hour as u64, 1000 + m as u64]);
                // Most minutes of a key are idle; the busy ones carry the hour.
                *slot = if r % 5 < 3 { 0 } else { 1 + r % 20 };
            }
            let start = day * 1440 + hour * 60;
            for (m, slot) in out.iter_mut().enumerate() {
                if start + (m as i64) < self.now_min {
                    *slot = full.map(|t| split(t, &w, m));
                }
            }
        }
        self.minute_cache.insert((c.id, day, hour), out);
        out
    }

    pub fn minute(&mut self, c: &Combo, minute: i64) -> Fields {
        if minute >= self.now_min {
            return [0; 7];
        }
        let day = minute.div_euclid(1440);
        let in_day = minute.rem_euclid(1440);
        self.minutes(c, day, in_day / 60)[(in_day % 60) as usize]
    }

    pub fn hour(&mut self, c: &Combo, day: i64, hour: i64) -> Fields {
        let start = day * 1440 + hour * 60;
        if start + 60 <= self.now_min {
            self.hour_full(c, day, hour)
        } else if start >= self.now_min {
            [0; 7]
        } else {
            let mins = self.minutes(c, day, hour);
            sum_fields(mins.iter())
        }
    }

    pub fn day(&mut self, c: &Combo, day: i64) -> Fields {
        if (day + 1) * 1440 <= self.now_min {
            self.day_total(c, day)
        } else if day * 1440 >= self.now_min {
            [0; 7]
        } else {
            let hours: Vec<Fields> = (0..24).map(|h| self.hour(c, day, h)).collect();
            sum_fields(hours.iter())
        }
    }

    /// Usage of combo `c` in the bucket starting at `start` of the given width.
    pub(crate) fn bucket(&mut self, c: &Combo, start: DateTime<Utc>, width: Width) -> Fields {
        let t = start.timestamp();
        match width {
            Width::Day => self.day(c, t.div_euclid(86_400)),
            Width::Hour => self.hour(c, t.div_euclid(86_400), t.rem_euclid(86_400) / 3600),
            Width::Minute => self.minute(c, t.div_euclid(60)),
        }
    }
}

fn sum_fields<'a>(it: impl Iterator<Item = &'a Fields>) -> Fields {
    let mut out = [0u64; 7];
    for f in it {
        for (o, v) in out.iter_mut().zip(f) {
            *o += v;
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    Minute,
    Hour,
    Day,
}

impl Width {
    pub(crate) fn secs(self) -> i64 {
        match self {
            Width::Minute => 60,
            Width::Hour => 3600,
            Width::Day => 86_400,
        }
    }
    /// (default, max) buckets per page.
    fn limits(self) -> (usize, usize) {
        match self {
            Width::Minute => (60, 1440),
            Width::Hour => (24, 168),
            Width::Day => (7, 31),
        }
    }
}

pub(crate) fn parse_time(name: &str, raw: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::invalid(format!(
                "{name}: Input should be a valid RFC 3339 datetime, got '{raw}'"
            ))
        })
}

pub(crate) fn snap(t: DateTime<Utc>, width: Width) -> DateTime<Utc> {
    let s = t.timestamp().div_euclid(width.secs()) * width.secs();
    Utc.timestamp_opt(s, 0).single().unwrap_or(t)
}

pub(crate) fn page_token(t: DateTime<Utc>) -> String {
    format!(
        "page_{}",
        base64::engine::general_purpose::STANDARD.encode(ts_secs(t))
    )
}

fn decode_page(raw: &str) -> ApiResult<DateTime<Utc>> {
    let bad = || ApiError::invalid(format!("page: invalid page token '{raw}'"));
    let b64 = raw.strip_prefix("page_").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// The bucket window of a report page: start (snapped), the buckets of this page, and whether
/// more follow. Buckets never extend past the bucket that contains `now`; `ending_at` is
/// exclusive (a bucket starting at or after it is not returned).
struct Window {
    starts: Vec<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
}

fn window(q: &Query, width: Width, now: DateTime<Utc>) -> ApiResult<Window> {
    let (default_limit, max_limit) = width.limits();
    let limit = q.limit(default_limit, max_limit)?;
    let starting_at = q
        .get("starting_at")
        .ok_or_else(|| ApiError::invalid("starting_at: Field required"))?;
    let starting_at = parse_time("starting_at", starting_at)?;
    let ending_at = q
        .get("ending_at")
        .map(|e| parse_time("ending_at", e))
        .transpose()?;
    if let Some(end) = ending_at {
        if end <= starting_at {
            return Err(ApiError::invalid("ending_at must be after starting_at"));
        }
    }
    let mut start = snap(starting_at, width);
    if let Some(page) = q.get("page") {
        let p = decode_page(page)?;
        if p < start {
            return Err(ApiError::invalid(
                "page: token is outside the requested range",
            ));
        }
        start = snap(p, width);
    }
    let hard_end = snap(now, width) + Duration::seconds(width.secs());
    let end = ending_at.map_or(hard_end, |e| e.min(hard_end));
    let step = Duration::seconds(width.secs());
    let mut starts = Vec::new();
    let mut t = start;
    while t < end && starts.len() < limit {
        starts.push(t);
        t += step;
    }
    let next = (t < end).then_some(t);
    Ok(Window { starts, next })
}

fn parse_width(q: &Query, allowed: &[&str]) -> ApiResult<Width> {
    match q.get("bucket_width").unwrap_or("1d") {
        "1d" => Ok(Width::Day),
        "1h" if allowed.contains(&"1h") => Ok(Width::Hour),
        "1m" if allowed.contains(&"1m") => Ok(Width::Minute),
        other => Err(bad_enum("bucket_width", other, allowed)),
    }
}

fn report(data: Vec<Value>, next: Option<DateTime<Utc>>) -> Value {
    json!({
        "data": data,
        "has_more": next.is_some(),
        "next_page": next.map(page_token),
    })
}

/// GET /v1/organizations/usage_report/messages
pub(crate) fn usage_report(
    seed: u64,
    all_combos: &[Combo],
    q: &Query,
    beta: &[String],
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let width = parse_width(q, &["1d", "1h", "1m"])?;
    let group_by = q.enum_all("group_by", USAGE_GROUP_BY)?;
    let models = q.all("models");
    let key_ids = q.all("api_key_ids");
    let ws_ids = q.all("workspace_ids");
    let tiers = q.enum_all("service_tiers", SERVICE_TIERS)?;
    let windows = q.enum_all("context_window", CONTEXT_WINDOWS)?;
    let geos = q.enum_all("inference_geos", INFERENCE_GEOS)?;
    let speeds = q.enum_all("speeds", SPEEDS)?;
    let account_ids = q.all("account_ids");
    let svc_ids = q.all("service_account_ids");
    let fast_beta = beta.iter().any(|b| b == FAST_MODE_BETA);
    if (group_by.iter().any(|g| g == "speed") || !speeds.is_empty()) && !fast_beta {
        return Err(ApiError::invalid(format!(
            "The speed dimension requires the anthropic-beta header '{FAST_MODE_BETA}'"
        )));
    }
    let w = window(q, width, now)?;

    let combos: Vec<&Combo> = all_combos
        .iter()
        .filter(|c| models.is_empty() || models.iter().any(|m| m == MODELS[c.model].id))
        .filter(|c| {
            key_ids.is_empty() || c.api_key_id.as_ref().is_some_and(|k| key_ids.contains(k))
        })
        .filter(|c| ws_ids.is_empty() || ws_ids.contains(&c.workspace_id))
        .filter(|c| tiers.is_empty() || tiers.iter().any(|t| t == c.service_tier))
        .filter(|c| windows.is_empty() || windows.iter().any(|t| t == c.context_window))
        .filter(|_| geos.is_empty() || geos.iter().any(|g| g == "global"))
        .filter(|_| speeds.is_empty() || speeds.iter().any(|s| s == "standard"))
        .filter(|_| account_ids.is_empty() && svc_ids.is_empty())
        .collect();
    let grouped = |d: &str| group_by.iter().any(|g| g == d);

    let mut calc = UsageCalc::new(seed, now);
    let mut data = Vec::with_capacity(w.starts.len());
    for &start in &w.starts {
        let mut groups: BTreeMap<Vec<Option<String>>, Fields> = BTreeMap::new();
        for c in &combos {
            let f = calc.bucket(c, start, width);
            if is_idle(&f) {
                continue;
            }
            let key = vec![
                grouped("api_key_id")
                    .then(|| c.api_key_id.clone())
                    .flatten(),
                grouped("workspace_id")
                    .then(|| (!c.workspace_is_default).then(|| c.workspace_id.clone()))
                    .flatten(),
                grouped("model").then(|| MODELS[c.model].id.to_string()),
                grouped("service_tier").then(|| c.service_tier.to_string()),
                grouped("context_window").then(|| c.context_window.to_string()),
            ];
            let slot = groups.entry(key).or_insert([0; 7]);
            for (s, v) in slot.iter_mut().zip(f) {
                *s += v;
            }
        }
        let results: Vec<Value> = groups
            .into_iter()
            .map(|(k, f)| {
                let mut r = json!({
                    "uncached_input_tokens": f[UNCACHED],
                    "cache_creation": {
                        "ephemeral_1h_input_tokens": f[CW_1H],
                        "ephemeral_5m_input_tokens": f[CW_5M],
                    },
                    "cache_read_input_tokens": f[CACHE_READ],
                    "output_tokens": f[OUTPUT],
                    "server_tool_use": { "web_search_requests": f[WEB_SEARCH] },
                    "api_key_id": k[0],
                    "workspace_id": k[1],
                    "model": k[2],
                    "service_tier": k[3],
                    "context_window": k[4],
                });
                if grouped("inference_geo") {
                    r["inference_geo"] = json!("global");
                }
                if grouped("speed") {
                    r["speed"] = json!("standard");
                }
                if grouped("account_id") {
                    r["account_id"] = Value::Null;
                }
                if grouped("service_account_id") {
                    r["service_account_id"] = Value::Null;
                }
                r
            })
            .collect();
        data.push(json!({
            "starting_at": ts_secs(start),
            "ending_at": ts_secs(start + Duration::seconds(width.secs())),
            "results": results,
        }));
    }
    Ok(report(data, w.next))
}

/// One line of the cost breakdown of a combo's day.
pub(crate) struct CostLine {
    pub description: String,
    pub cost_type: &'static str,
    pub model: Option<&'static str>,
    pub service_tier: Option<&'static str>,
    pub context_window: Option<&'static str>,
    pub token_type: Option<&'static str>,
    pub amount: Decimal,
}

/// Cost lines (cents) for a combo's usage. Priority Tier is not in the cost report.
pub(crate) fn cost_lines(c: &Combo, f: &Fields) -> Vec<CostLine> {
    if !matches!(c.service_tier, "standard" | "batch") {
        return Vec::new();
    }
    let m = &MODELS[c.model];
    let long = c.context_window == "200k-1M";
    let mut input = Decimal::from(m.input_cents_per_mtok) / Decimal::from(1_000_000);
    let mut output = Decimal::from(m.output_cents_per_mtok) / Decimal::from(1_000_000);
    if long {
        input *= Decimal::from(2);
        output = output * Decimal::from(3) / Decimal::from(2);
    }
    if c.service_tier == "batch" {
        input /= Decimal::from(2);
        output /= Decimal::from(2);
    }
    let suffix = match (long, c.service_tier) {
        (true, "batch") => " (Long Context, Batch)",
        (true, _) => " (Long Context)",
        (false, "batch") => " (Batch)",
        _ => "",
    };
    let parts: [(usize, &str, &str, Decimal); 5] = [
        (UNCACHED, "Input Tokens", "uncached_input_tokens", input),
        (OUTPUT, "Output Tokens", "output_tokens", output),
        (
            CACHE_READ,
            "Input Tokens, Cache Read",
            "cache_read_input_tokens",
            input / Decimal::from(10),
        ),
        (
            CW_5M,
            "Input Tokens, Cache Write (5m)",
            "cache_creation.ephemeral_5m_input_tokens",
            input * Decimal::new(125, 2),
        ),
        (
            CW_1H,
            "Input Tokens, Cache Write (1h)",
            "cache_creation.ephemeral_1h_input_tokens",
            input * Decimal::from(2),
        ),
    ];
    let mut out: Vec<CostLine> = parts
        .iter()
        .filter(|p| f[p.0] > 0)
        .map(|&(idx, label, token_type, price)| CostLine {
            description: format!("{} Usage - {label}{suffix}", m.display),
            cost_type: "tokens",
            model: Some(m.id),
            service_tier: Some(c.service_tier),
            context_window: Some(c.context_window),
            token_type: Some(token_type),
            amount: price * Decimal::from(f[idx]),
        })
        .collect();
    if f[WEB_SEARCH] > 0 {
        // $10 per 1,000 searches = 1 cent per search.
        out.push(CostLine {
            description: "Web Search Usage".into(),
            cost_type: "web_search",
            model: None,
            service_tier: None,
            context_window: None,
            token_type: None,
            amount: Decimal::from(f[WEB_SEARCH]),
        });
    }
    out
}

/// Decimal string of cents, without trailing zeros (e.g. `"123.78912"`).
pub(crate) fn cents(d: Decimal) -> String {
    d.normalize().to_string()
}

/// GET /v1/organizations/cost_report
pub(crate) fn cost_report(
    seed: u64,
    combos: &[Combo],
    q: &Query,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let width = parse_width(q, &["1d"])?;
    let group_by = q.enum_all("group_by", &["workspace_id", "description"])?;
    let by_ws = group_by.iter().any(|g| g == "workspace_id");
    let by_desc = group_by.iter().any(|g| g == "description");
    let w = window(q, width, now)?;
    let mut calc = UsageCalc::new(seed, now);
    let mut data = Vec::with_capacity(w.starts.len());
    type CostKey = (
        Option<String>,
        Option<String>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    for &start in &w.starts {
        let mut groups: BTreeMap<CostKey, Decimal> = BTreeMap::new();
        for c in combos {
            let f = calc.bucket(c, start, width);
            if is_idle(&f) {
                continue;
            }
            let ws = (by_ws && !c.workspace_is_default).then(|| c.workspace_id.clone());
            for line in cost_lines(c, &f) {
                let key: CostKey = if by_desc {
                    (
                        ws.clone(),
                        Some(line.description),
                        Some(line.cost_type),
                        line.model,
                        line.service_tier,
                        line.context_window,
                        line.token_type,
                    )
                } else {
                    (ws.clone(), None, None, None, None, None, None)
                };
                *groups.entry(key).or_default() += line.amount;
            }
        }
        let results: Vec<Value> = groups
            .into_iter()
            .map(|(k, amount)| {
                json!({
                    "currency": "USD",
                    "amount": cents(amount),
                    "workspace_id": k.0,
                    "description": k.1,
                    "cost_type": k.2,
                    "model": k.3,
                    "service_tier": k.4,
                    "context_window": k.5,
                    "token_type": k.6,
                })
            })
            .collect();
        data.push(json!({
            "starting_at": ts_secs(start),
            "ending_at": ts_secs(start + Duration::seconds(width.secs())),
            "results": results,
        }));
    }
    Ok(report(data, w.next))
}

/// GET /v1/organizations/usage_report/claude_code — one UTC day, records per actor. Only days
/// that ended more than an hour ago hold data.
pub(crate) fn claude_code_report(st: &OrgState, q: &Query, now: DateTime<Utc>) -> ApiResult<Value> {
    let limit = q.limit(20, 1000)?;
    let raw = q
        .get("starting_at")
        .ok_or_else(|| ApiError::invalid("starting_at: Field required"))?;
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .or_else(|_| DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc).date_naive()))
        .map_err(|_| {
            ApiError::invalid(format!(
                "starting_at: Input should be a valid date in the format YYYY-MM-DD, got '{raw}'"
            ))
        })?;
    let day_start = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let day = day_start.timestamp().div_euclid(86_400);
    let offset = match q.get("page") {
        None => 0usize,
        Some(p) => {
            let bad = || ApiError::invalid(format!("page: invalid page token '{p}'"));
            let b = p.strip_prefix("page_").ok_or_else(bad)?;
            let s = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| bad())?;
            let s = String::from_utf8(s).map_err(|_| bad())?;
            let (d, o) = s.split_once('#').ok_or_else(bad)?;
            if d != date.to_string() {
                return Err(bad());
            }
            o.parse().map_err(|_| bad())?
        }
    };
    let available = day_start + Duration::days(1) + Duration::hours(1) <= now
        && day >= now.timestamp().div_euclid(86_400) - USAGE_HISTORY_DAYS;
    // A page token names the actor the page starts at, so a page costs its own records, not
    // every actor before it (`xlarge` has thousands of Claude Code users).
    let mut records = Vec::new();
    let mut next_actor = None;
    if available {
        for (i, a) in st.claude_code_actors.iter().enumerate().skip(offset) {
            let r = |k: u64| hash(st.seed, &[0xC0DE, i as u64, day as u64, k]);
            let weekday = (day + 3).rem_euclid(7);
            if r(0) % 10 < if weekday >= 5 { 7 } else { 3 } {
                continue;
            }
            let n = a.intensity;
            let sessions = 1 + r(1) % (2 * n);
            let model = &MODELS[(r(2) % 2) as usize];
            let input = 20_000 * n + r(3) % 200_000;
            let output = input / 8 + r(4) % 10_000;
            let cache_read = input * (r(5) % 8);
            let cache_creation = input / 3;
            let cost = (Decimal::from(input) * Decimal::from(model.input_cents_per_mtok)
                + Decimal::from(output) * Decimal::from(model.output_cents_per_mtok)
                + Decimal::from(cache_read) * Decimal::from(model.input_cents_per_mtok)
                    / Decimal::from(10)
                + Decimal::from(cache_creation)
                    * Decimal::from(model.input_cents_per_mtok)
                    * Decimal::new(125, 2))
                / Decimal::from(1_000_000);
            let cost: f64 = cost.round_dp(2).to_string().parse().unwrap_or(0.0);
            let actor = match (&a.user_email, &a.api_key_name) {
                (Some(e), _) => json!({ "type": "user_actor", "email_address": e }),
                (None, Some(k)) => json!({ "type": "api_actor", "api_key_name": k }),
                _ => continue,
            };
            if records.len() == limit {
                next_actor = Some(i);
                break;
            }
            let tool =
                |k: u64| json!({ "accepted": r(k) % (10 * n), "rejected": r(k + 1) % (2 * n) });
            records.push(json!({
                "date": ts_secs(day_start),
                "actor": actor,
                "organization_id": st.org_id,
                "customer_type": "api",
                "subscription_type": null,
                "terminal_type": a.terminal,
                "core_metrics": {
                    "num_sessions": sessions,
                    "lines_of_code": { "added": r(10) % (300 * n), "removed": r(11) % (100 * n) },
                    "commits_by_claude_code": r(12) % (n + 1),
                    "pull_requests_by_claude_code": r(13) % 2,
                },
                "tool_actions": {
                    "edit_tool": tool(20),
                    "multi_edit_tool": tool(22),
                    "write_tool": tool(24),
                    "notebook_edit_tool": tool(26),
                },
                "model_breakdown": [{
                    "model": model.id,
                    "tokens": {
                        "input": input, "output": output,
                        "cache_read": cache_read, "cache_creation": cache_creation,
                    },
                    "estimated_cost": { "currency": "USD", "amount": cost },
                }],
            }));
        }
    }
    let next = next_actor.map(|at| {
        format!(
            "page_{}",
            base64::engine::general_purpose::STANDARD.encode(format!("{date}#{at}"))
        )
    });
    Ok(json!({ "data": records, "has_more": next.is_some(), "next_page": next }))
}

pub(crate) struct RateLimitGroup {
    pub group_type: &'static str,
    pub group_id: &'static str,
    pub display_name: Option<&'static str>,
    pub models: Option<&'static [&'static str]>,
    pub limits: &'static [(&'static str, u64)],
}

/// Group ids are the same in every organization; entry ids differ (seeded in `OrgState`).
pub(crate) const RATE_LIMIT_GROUPS: &[RateLimitGroup] = &[
    RateLimitGroup {
        group_type: "model_group",
        group_id: "rlg_01Hq3bYxS8mTnW4kVd2ZcEaP",
        display_name: Some("Claude Sonnet 4.x"),
        models: Some(&[
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-0",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5",
        ]),
        limits: &[
            ("requests_per_minute", 4000),
            ("input_tokens_per_minute", 2_000_000),
            ("output_tokens_per_minute", 400_000),
        ],
    },
    RateLimitGroup {
        group_type: "model_group",
        group_id: "rlg_01Ka7uRc2NfLpX9sGv5TyWbM",
        display_name: Some("Claude Opus 4.x"),
        models: Some(&["claude-opus-4-1-20250805", "claude-opus-4-1"]),
        limits: &[
            ("requests_per_minute", 4000),
            ("input_tokens_per_minute", 2_000_000),
            ("output_tokens_per_minute", 400_000),
        ],
    },
    RateLimitGroup {
        group_type: "model_group",
        group_id: "rlg_01Pd4eJw6QzBhM8nTx3KcLvR",
        display_name: Some("Claude Haiku"),
        models: Some(&[
            "claude-haiku-4-5-20251001",
            "claude-haiku-4-5",
            "claude-3-5-haiku-20241022",
            "claude-3-5-haiku-latest",
        ]),
        limits: &[
            ("requests_per_minute", 4000),
            ("input_tokens_per_minute", 4_000_000),
            ("output_tokens_per_minute", 800_000),
        ],
    },
    RateLimitGroup {
        group_type: "batch",
        group_id: "rlg_01VPTCmyiu5ZLsWkcxYG2pY8",
        display_name: None,
        models: None,
        limits: &[("requests_per_minute", 4000)],
    },
    RateLimitGroup {
        group_type: "token_count",
        group_id: "rlg_01Bs6fNq8RtYkD2mWc7HjXaZ",
        display_name: None,
        models: None,
        limits: &[("requests_per_minute", 2000)],
    },
    RateLimitGroup {
        group_type: "files",
        group_id: "rlg_01Cv9gPr3SuZlE5nXd8KjYbA",
        display_name: None,
        models: None,
        limits: &[("requests_per_minute", 1000)],
    },
    RateLimitGroup {
        group_type: "skills",
        group_id: "rlg_01Dw2hQs4TvAmF6oYe9LkZcB",
        display_name: None,
        models: None,
        limits: &[("requests_per_minute", 500)],
    },
    RateLimitGroup {
        group_type: "web_search",
        group_id: "rlg_01Ex3iRt5UwBnG7pZf1MlAdC",
        display_name: None,
        models: None,
        limits: &[("requests_per_minute", 300)],
    },
];

const GROUP_TYPES: &[&str] = &[
    "model_group",
    "batch",
    "token_count",
    "files",
    "skills",
    "web_search",
];

pub(crate) fn group_json(g: &RateLimitGroup) -> Value {
    let mut v = json!({ "type": g.group_type, "id": g.group_id });
    if let Some(d) = g.display_name {
        v["display_name"] = json!(d);
    }
    v
}

/// Page-cursor pagination (§3.3): everything when `limit` is absent; `next_page` null when done.
fn cursor_page(q: &Query, items: Vec<Value>) -> ApiResult<Value> {
    let offset = match q.get("page") {
        None => 0,
        Some(p) => {
            let bad = || ApiError::invalid(format!("page: invalid page token '{p}'"));
            let b = p.strip_prefix("page_").ok_or_else(bad)?;
            let s = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| bad())?;
            String::from_utf8(s)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(bad)?
        }
    };
    let limit = match q.get("limit") {
        None => usize::MAX,
        Some(_) => q.limit(1000, 1000)?,
    };
    let start = offset.min(items.len());
    let end = start.saturating_add(limit).min(items.len());
    let next = (end < items.len()).then(|| {
        format!(
            "page_{}",
            base64::engine::general_purpose::STANDARD.encode(end.to_string())
        )
    });
    Ok(json!({ "data": items[start..end].to_vec(), "next_page": next }))
}

/// GET /v1/organizations/rate_limits
pub(crate) fn org_rate_limits(st: &OrgState, q: &Query) -> ApiResult<Value> {
    let group_type = q.get("group_type");
    if let Some(g) = group_type {
        if !GROUP_TYPES.contains(&g) {
            return Err(bad_enum("group_type", g, GROUP_TYPES));
        }
    }
    let model = q.get("model");
    let items: Vec<Value> = RATE_LIMIT_GROUPS
        .iter()
        .enumerate()
        .filter(|(_, g)| group_type.is_none_or(|t| t == g.group_type))
        .filter(|(_, g)| model.is_none_or(|m| g.models.is_some_and(|ms| ms.contains(&m))))
        .map(|(i, g)| {
            json!({
                "type": "rate_limit",
                "id": st.rate_limit_ids[i],
                "group": group_json(g),
                "limits": g.limits.iter().map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
                "models": g.models,
            })
        })
        .collect();
    if let Some(m) = model {
        if items.is_empty() {
            return Err(ApiError::not_found(format!(
                "No rate limits found for model '{m}'"
            )));
        }
    }
    cursor_page(q, items)
}

/// GET /v1/organizations/workspaces/{id}/rate_limits
pub(crate) fn workspace_rate_limits(
    st: &OrgState,
    workspace_id: &str,
    q: &Query,
) -> ApiResult<Value> {
    let group_type = q.get("group_type");
    if let Some(g) = group_type {
        if !GROUP_TYPES.contains(&g) {
            return Err(bad_enum("group_type", g, GROUP_TYPES));
        }
    }
    let inherited = q.bool("include_inherited", false)?;
    let mut items = Vec::new();
    for (i, g) in RATE_LIMIT_GROUPS.iter().enumerate() {
        if group_type.is_some_and(|t| t != g.group_type) {
            continue;
        }
        let overrides: Vec<_> = st
            .workspace_limit_overrides
            .iter()
            .filter(|o| o.workspace_id == workspace_id && o.group == i)
            .collect();
        let mut limits = Vec::new();
        for (t, v) in g.limits {
            match overrides.iter().find(|o| o.limit_type == *t) {
                Some(o) => limits.push(json!({"type": t, "value": o.value, "org_limit": v, "source": {"type": "workspace"}})),
                None if inherited => limits.push(json!({"type": t, "value": v, "org_limit": v, "source": {"type": "organization"}})),
                None => {}
            }
        }
        if limits.is_empty() {
            continue;
        }
        items.push(json!({
            "type": "workspace_rate_limit",
            "workspace_id": workspace_id,
            "rate_limit_id": st.rate_limit_ids[i],
            "group": group_json(g),
            "limits": limits,
            "models": g.models,
        }));
    }
    cursor_page(q, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parts_always_sum_to_the_total() {
        let weights = [3u64, 0, 7, 1, 9, 2];
        for total in [0u64, 1, 5, 17, 1_000_003] {
            let sum: u64 = (0..weights.len()).map(|i| split(total, &weights, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn cents_are_rendered_without_trailing_zeros() {
        assert_eq!(cents(Decimal::new(1237891200, 7)), "123.78912");
        assert_eq!(cents(Decimal::from(5)), "5");
    }
}
