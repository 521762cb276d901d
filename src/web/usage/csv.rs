//! CSV exports: exactly the table of the page (same range, grouping, filters, series), one
//! header row, ISO 8601 periods, streamed row by row from SQLite so a 90-day hourly export
//! never sits in memory as a whole.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;
use tokio::sync::mpsc;

use super::{AppState, Names, Resolution, UsageQuery, OTHER};
use crate::usage_store as store;
use crate::web::error::AppResult;

/// A streamed CSV download: `lines` are produced by a task while the client reads.
pub fn response(filename: String, rx: mpsc::Receiver<String>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<Bytes, std::io::Error>(Bytes::from(line)), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

pub async fn usage(
    state: &AppState,
    names: &Names,
    q: UsageQuery,
    now: DateTime<Utc>,
) -> AppResult<Response> {
    let unit = unit_of(q.measure);
    let filename = format!(
        "usage-{unit}-{}-{}-{}.csv",
        q.range.from.date_naive(),
        (q.range.to - chrono::Duration::days(1)).date_naive(),
        q.resolution.param()
    );
    let (tx, rx) = mpsc::channel::<String>(64);
    if q.resolution == Resolution::Minute {
        // At most a day of minutes: small enough to compute like the page does.
        let data = crate::service::usage_view::load(state, names, &q, now).await?;
        let labels = labels(names, &q, &data.keys);
        tokio::spawn(async move {
            let _ = tx.send(header_line(&labels, unit)).await;
            for (p, t) in data.periods.iter().enumerate() {
                let vals: Vec<i64> = data.values.iter().map(|s| s[p]).collect();
                if tx.send(line(q.resolution.format(*t), &vals)).await.is_err() {
                    return;
                }
            }
        });
        return Ok(response(filename, rx));
    }
    super::refresh_or_stale(state, q.kind(), now).await?;
    let width = q.width();
    let by_group = state.usage.group_totals(&q.series(width)).await?;
    let keys = super::series_keys(&by_group);
    let labels = labels(names, &q, &keys);
    let periods = crate::service::usage_view::periods_of(&q, now);
    let store = state.usage.clone();
    tokio::spawn(async move {
        if tx.send(header_line(&labels, unit)).await.is_err() {
            return;
        }
        let mut qb = store::series_query(&q.series(width));
        let mut rows = store.stream(&mut qb);
        let mut next = 0usize; // index of the next period to write
        let mut current = vec![0i64; keys.len()];
        let mut current_at: Option<DateTime<Utc>> = None;
        let other = keys.iter().position(|k| k == OTHER);
        // Writes every period up to (not including) `until`, the current one with its values.
        macro_rules! flush_until {
            ($until:expr) => {
                while next < periods.len() && periods[next] < $until {
                    let vals = if current_at == Some(periods[next]) {
                        std::mem::replace(&mut current, vec![0i64; keys.len()])
                    } else {
                        vec![0i64; keys.len()]
                    };
                    if tx
                        .send(line(q.resolution.format(periods[next]), &vals))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    next += 1;
                }
            };
        }
        loop {
            let row = match rows.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "usage export stopped");
                    let _ = tx.send("# export stopped: database error\n".into()).await;
                    return;
                }
            };
            let t = store::parse_ts(row.get::<&str, _>(0));
            let g: String = row.get(1);
            let v: i64 = row.get(2);
            if current_at != Some(t) {
                flush_until!(t);
                current_at = Some(t);
            }
            let s = keys.iter().position(|k| *k == g).or(other);
            if let Some(s) = s {
                current[s] += v;
            }
        }
        flush_until!(DateTime::<Utc>::MAX_UTC);
    });
    Ok(response(filename, rx))
}

fn labels(names: &Names, q: &UsageQuery, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            if k == OTHER {
                OTHER.to_owned()
            } else {
                names.label(q.group, k)
            }
        })
        .collect()
}

/// What the numbers count, for the header and the file name ("output_tokens").
fn unit_of(measure: store::Measure) -> &'static str {
    match measure {
        store::Measure::Uncached => "uncached_input_tokens",
        store::Measure::Output => "output_tokens",
        store::Measure::CacheRead => "cache_read_tokens",
        store::Measure::CacheWrite => "cache_write_tokens",
        store::Measure::WebSearch => "web_search_requests",
    }
}

/// `period_start,Staging (output_tokens),…,total (output_tokens)`: every column names its
/// measure, so a file read later on its own still says what it counts.
fn header_line(labels: &[String], unit: &str) -> String {
    let mut cols = vec!["period_start".to_owned()];
    cols.extend(
        labels
            .iter()
            .map(|l| crate::csv::text(&format!("{l} ({unit})"))),
    );
    cols.push(format!("total ({unit})"));
    cols.join(",") + "\n"
}

fn line(period: String, vals: &[i64]) -> String {
    let total: i64 = vals.iter().sum();
    let mut cols = vec![period];
    cols.extend(vals.iter().map(i64::to_string));
    cols.push(total.to_string());
    cols.join(",") + "\n"
}
