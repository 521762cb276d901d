//! The numbers of one usage view (`/usage`, its CSV): periods × series from the usage store
//! (minutes straight from the Admin API), kept per store version. A derived view, so it is
//! built here: by the page, and ahead by the usage job for the page's default view.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{ServiceError, Services};
use crate::anthropic::{BucketWidth, UsageGroupBy, UsageReportParams, UsageResult};
use crate::org::names::ReportNames;
use crate::usage_store::{self as store, Dim, Kind, Measure, UsageFilter};

/// `(bucket start, group value, value)` as read from the store or the API.
type SeriesRow = (DateTime<Utc>, String, i64);

/// The series that gathers every group beyond the largest ones.
pub const OTHER: &str = "Other";
/// Series drawn separately; the rest are summed into "Other".
const TOP_SERIES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    /// Without a choice: hours for a day or less, else days.
    pub fn default_for(span: chrono::Duration) -> Resolution {
        if span <= chrono::Duration::days(1) {
            Resolution::Hour
        } else {
            Resolution::Day
        }
    }
    pub fn param(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }
    pub fn secs(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
            Resolution::Day => 86_400,
        }
    }
    /// How a period is shown (ISO 8601, UTC).
    pub fn format(self, t: DateTime<Utc>) -> String {
        match self {
            Resolution::Day => t.format("%Y-%m-%d").to_string(),
            _ => t.format("%Y-%m-%dT%H:%MZ").to_string(),
        }
    }
    /// How a period reads in the table, in the form of every page's dates ("Nov 28, 2026" or
    /// "Nov 28, 2026, 14:00"); the column's heading says these are UTC periods.
    pub fn label(self, t: DateTime<Utc>) -> String {
        match self {
            Resolution::Day => crate::labels::calendar_day(t.date_naive()),
            _ => t.format("%b %-d, %Y, %H:%M").to_string(),
        }
    }
}

/// What one usage view reads: a range, its resolution, a grouping, a measure and filters.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageSpec {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub resolution: Resolution,
    pub group: Option<Dim>,
    pub measure: Measure,
    pub filter: UsageFilter,
}

/// The days the page shows when nothing is chosen.
pub const DEFAULT_DAYS: i64 = 7;

impl UsageSpec {
    /// The page's view with no choices made: the last [`DEFAULT_DAYS`] days (today included),
    /// by day, uncached input tokens, everything the person may see (`workspaces`).
    pub fn default_at(now: DateTime<Utc>, workspaces: Option<Vec<String>>) -> UsageSpec {
        let tomorrow = store::floor(now, 86_400) + chrono::Duration::days(1);
        let from = tomorrow - chrono::Duration::days(DEFAULT_DAYS);
        UsageSpec {
            from,
            to: tomorrow,
            resolution: Resolution::default_for(tomorrow - from),
            group: None,
            measure: Measure::Uncached,
            filter: UsageFilter {
                by: Vec::new(),
                workspaces,
            },
        }
    }

    /// The stored report this view reads.
    pub fn kind(&self) -> Kind {
        if self.resolution == Resolution::Day {
            Kind::UsageDay
        } else {
            Kind::UsageHour
        }
    }

    /// The stored bucket width (`1h` or `1d`).
    pub fn width(&self) -> &'static str {
        if self.kind() == Kind::UsageDay {
            "1d"
        } else {
            "1h"
        }
    }

    /// The stored series this view reads, at bucket width `width`.
    pub fn series<'a>(&'a self, width: &'a str) -> store::Series<'a> {
        store::Series {
            width,
            from: self.from,
            to: self.to,
            group: self.group,
            measure: self.measure,
            filter: &self.filter,
        }
    }
}

/// The period a range is compared with: the one just before it, of the same length. A range
/// still running (today) by the hour is compared with the same hours of the previous period
/// (today until 14:00 with yesterday until 14:00), not with a whole period, which would read
/// "-88%" every morning. The flag says which.
pub fn comparison_window(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    width: &str,
) -> (DateTime<Utc>, DateTime<Utc>, bool) {
    let len = to - from;
    let through = store::floor(now, 3_600) + chrono::Duration::hours(1);
    if width == "1h" && through < to && through > from {
        (from - len, through - len, true)
    } else {
        (from - len, from, false)
    }
}

/// The numbers of one usage view: periods × series, exactly as the chart and table show them.
#[derive(Clone)]
pub struct UsageData {
    pub periods: Vec<DateTime<Utc>>,
    /// Group values (stored ids) of the drawn series, `OTHER` last when present.
    pub keys: Vec<String>,
    /// `values[series][period]`.
    pub values: Vec<Vec<i64>>,
    pub totals: [i64; 5],
    /// `None` when the previous range is older than the API keeps.
    pub previous: Option<[i64; 5]>,
    /// `previous` covers only the hours of it that have passed in this range (a range still
    /// running); see [`comparison_window`].
    pub same_hours: bool,
    /// Set when the refresh failed and stored data is shown.
    pub stale: Option<String>,
}

fn measure_of(r: &UsageResult, m: Measure) -> i64 {
    (match m {
        Measure::Uncached => r.uncached_input_tokens,
        Measure::Output => r.output_tokens,
        Measure::CacheRead => r.cache_read_input_tokens,
        Measure::CacheWrite => {
            r.cache_creation.ephemeral_5m_input_tokens + r.cache_creation.ephemeral_1h_input_tokens
        }
        Measure::WebSearch => r.server_tool_use.web_search_requests,
    }) as i64
}

/// The periods a view shows: none after the one that holds `now`.
pub fn periods_of(q: &UsageSpec, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let step = chrono::Duration::seconds(q.resolution.secs());
    // Nothing after the bucket that holds "now".
    let end = q.to.min(store::floor(now, q.resolution.secs()) + step);
    let mut out = Vec::new();
    let mut t = q.from;
    while t < end {
        out.push(t);
        t += step;
    }
    out
}

/// Refreshes the store's recent part (at most one request a minute) and reads the view.
pub async fn load(
    services: &Services,
    names: &ReportNames,
    q: &UsageSpec,
    now: DateTime<Utc>,
) -> Result<UsageData, ServiceError> {
    let stale = super::usage::refresh_or_stale(services, q.kind(), now).await?;
    let mut data = if q.resolution == Resolution::Minute {
        read(services, names, q, periods_of(q, now), now).await?
    } else {
        (*view(services, names, q, now).await?).clone()
    };
    data.stale = stale;
    Ok(data)
}

/// A stored view (by hour or day), computed once per store version: the aggregation reads
/// thousands of rows, the lookup one. The usage job builds the page's default view ahead.
pub async fn view(
    services: &Services,
    names: &ReportNames,
    q: &UsageSpec,
    now: DateTime<Utc>,
) -> Result<Arc<UsageData>, ServiceError> {
    let periods = periods_of(q, now);
    let key = format!(
        "usage {} {} {:?} {:?} {:?} {:?} {:?}",
        q.width(),
        store::floor(now, 86_400),
        periods.first().zip(periods.last()),
        q.to,
        q.group,
        q.measure,
        q.filter
    );
    services
        .reports
        .get(&services.usage, store::Reads::Usage, key, || {
            read(services, names, q, periods, now)
        })
        .await
}

/// The view's numbers from the store (or, per minute, from the API).
async fn read(
    services: &Services,
    names: &ReportNames,
    q: &UsageSpec,
    periods: Vec<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<UsageData, ServiceError> {
    let width = q.width();
    let (rows, by_group): (Vec<SeriesRow>, Vec<(String, i64)>) =
        if q.resolution == Resolution::Minute {
            let rows = minute_rows(services, names, q).await?;
            let mut sums: BTreeMap<String, i64> = BTreeMap::new();
            for (_, g, v) in &rows {
                *sums.entry(g.clone()).or_default() += v;
            }
            let mut by: Vec<(String, i64)> = sums.into_iter().collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            (rows, by)
        } else {
            let series = q.series(width);
            let rows = services.usage.usage_series(&series).await?;
            let by = services.usage.group_totals(&series).await?;
            (rows, by)
        };
    let keys = series_keys(&by_group);
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let pidx: HashMap<DateTime<Utc>, usize> =
        periods.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut values = vec![vec![0i64; periods.len()]; keys.len()];
    for (t, g, v) in rows {
        let s = index.get(g.as_str()).or_else(|| index.get(OTHER)).copied();
        if let (Some(s), Some(&p)) = (s, pidx.get(&t)) {
            values[s][p] += v;
        }
    }
    let totals = services
        .usage
        .usage_totals(width, q.from, q.to, &q.filter)
        .await?;
    // Comparing with days the API no longer keeps would show made-up growth.
    let kept_since = store::floor(now, 86_400) - chrono::Duration::days(store::API_HISTORY_DAYS);
    let (before_from, before_to, same_hours) = comparison_window(q.from, q.to, now, width);
    let previous = if before_from >= kept_since {
        Some(
            services
                .usage
                .usage_totals(width, before_from, before_to, &q.filter)
                .await?,
        )
    } else {
        None
    };
    Ok(UsageData {
        periods,
        keys,
        values,
        totals,
        previous,
        same_hours,
        stale: None,
    })
}

/// The largest groups, then "Other" for the rest.
pub fn series_keys(by_group: &[(String, i64)]) -> Vec<String> {
    let mut keys: Vec<String> = by_group
        .iter()
        .take(TOP_SERIES)
        .map(|(k, _)| k.clone())
        .collect();
    if by_group.len() > TOP_SERIES {
        keys.push(OTHER.to_owned());
    }
    keys
}

/// Minute buckets come straight from the API (ranges of at most a day: one request).
async fn minute_rows(
    services: &Services,
    names: &ReportNames,
    q: &UsageSpec,
) -> Result<Vec<SeriesRow>, ServiceError> {
    let mut p = UsageReportParams::new(q.from);
    p.ending_at = Some(q.to);
    p.bucket_width = Some(BucketWidth::Minute);
    p.limit = Some(1440);
    if let Some(g) = q.group {
        p.group_by = vec![match g {
            Dim::Model => UsageGroupBy::Model,
            Dim::Workspace => UsageGroupBy::WorkspaceId,
            Dim::ApiKey => UsageGroupBy::ApiKeyId,
            Dim::ServiceTier => UsageGroupBy::ServiceTier,
            Dim::ContextWindow => UsageGroupBy::ContextWindow,
        }];
    }
    for (dim, values) in &q.filter.by {
        let v = values.clone();
        match dim {
            Dim::Model => p.models = v,
            Dim::Workspace => p.workspace_ids = v.iter().filter_map(|w| names.real_ws(w)).collect(),
            // The API cannot filter on "no key"; that filter is applied below.
            Dim::ApiKey => p.api_key_ids = v.into_iter().filter(|k| !k.is_empty()).collect(),
            Dim::ServiceTier => p.service_tiers = v,
            Dim::ContextWindow => p.context_window = v,
        }
    }
    if let Some(scope) = &q.filter.workspaces {
        let real: Vec<String> = scope.iter().filter_map(|w| names.real_ws(w)).collect();
        if real.is_empty() {
            return Ok(Vec::new());
        }
        p.workspace_ids = if p.workspace_ids.is_empty() {
            real
        } else {
            p.workspace_ids
                .into_iter()
                .filter(|w| real.contains(w))
                .collect()
        };
    }
    let no_key_only = q
        .filter
        .by
        .iter()
        .any(|(d, v)| *d == Dim::ApiKey && v.iter().any(String::is_empty));
    if no_key_only {
        p.group_by.push(UsageGroupBy::ApiKeyId);
    }
    let buckets = super::usage::minute_buckets(services, &p).await?;
    let mut out = Vec::new();
    for b in buckets {
        for r in b.results {
            if no_key_only && r.api_key_id.is_some() {
                continue;
            }
            let g = match q.group {
                None => String::new(),
                Some(Dim::Model) => r.model.clone().unwrap_or_default(),
                Some(Dim::Workspace) => r.workspace_id.clone().unwrap_or_default(),
                Some(Dim::ApiKey) => r.api_key_id.clone().unwrap_or_default(),
                Some(Dim::ServiceTier) => r.service_tier.clone().unwrap_or_default(),
                Some(Dim::ContextWindow) => r.context_window.clone().unwrap_or_default(),
            };
            out.push((b.starting_at, g, measure_of(&r, q.measure)));
        }
    }
    Ok(out)
}
