//! Bringing the local usage store up to date when a page needs newer numbers than the usage
//! job last fetched (the job itself is `crate::jobs`), and Claude Code days fetched and kept.

use chrono::{DateTime, NaiveDate, Utc};

use crate::anthropic::{UsageBucket, UsageReportParams};

use super::usage_view::UsageSpec;
use super::{ServiceError, Services};
use crate::anthropic::ClaudeCodeRecord;
use crate::usage_store::{self as store, Dim, Kind};
use std::sync::Arc;

/// What a page says when it did not wait for a store's running read: the stored numbers of
/// `stored_at` are shown, or none while the first read is still running.
pub fn busy_note(stored_at: Option<DateTime<Utc>>) -> String {
    match stored_at {
        Some(at) => format!(
            "Showing stored data from {}: newer numbers are being read from Anthropic in the background; reload in a minute.",
            crate::labels::moment_label(&at)
        ),
        None => "Orgkeeper is reading these numbers from Anthropic for the first time (a few minutes for a large organization); this page fills in when that is done.".to_owned(),
    }
}

/// Refreshes one report (at most about once a minute, the store decides); on failure, pages
/// fall back to stored data with a warning, which this returns, or fail when nothing is stored
/// yet.
pub async fn refresh_or_stale(
    services: &Services,
    kind: Kind,
    now: DateTime<Utc>,
) -> Result<Option<String>, ServiceError> {
    let refreshed = store::refresh(
        services.org.api(),
        &services.db,
        kind,
        services.config.usage_settle,
        services.config.usage_hourly_days,
        now,
    )
    .await;
    match refreshed {
        Ok(_) => Ok(None),
        Err(store::SyncError::Db(e)) => Err(e.into()),
        Err(store::SyncError::Busy) => Ok(Some(busy_note(
            services.usage.progress(kind).await?.map(|(_, at)| at),
        ))),
        Err(store::SyncError::Api(e)) => match services.usage.progress(kind).await? {
            Some((_, at)) => Ok(Some(format!(
                "Showing stored data from {}: the latest numbers could not be fetched. {}",
                crate::labels::moment_label(&at),
                e.user_message()
            ))),
            None => Err(e.into()),
        },
    }
}

/// Claude Code records of each day in `[from, to]`; settled days are kept locally.
pub async fn claude_code_days(
    services: &Services,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Vec<ClaudeCodeRecord>, ServiceError> {
    store::claude_code_days(
        services.org.api(),
        &services.db,
        from,
        to,
        services.config.usage_settle,
        now,
    )
    .await
    .map_err(|e| match e {
        store::SyncError::Api(e) => e.into(),
        store::SyncError::Db(e) => e.into(),
        store::SyncError::Busy => crate::anthropic::ApiError::new(
            crate::anthropic::ApiErrorKind::Timeout,
            "another read of the usage reports is running; try again in a minute",
        )
        .into(),
    })
}

/// One round of the usage job: the store brought up to `now` (the job's longer deadline) and
/// the budget thresholds checked, beside the read of cost per person (every few minutes).
pub async fn sync(services: &Services, now: DateTime<Utc>, deadline: std::time::Duration) {
    let api = services.org.api().with_deadline(deadline);
    // Cost per person is read beside the usage and cost reports, not after them, once the
    // organization was read: its read takes minutes on a large organization, and one that has
    // not started when a page needs it (right after a restart) is started by the page, which
    // then waits for it.
    let reports = async {
        let started = std::time::Instant::now();
        let config = &services.config;
        match store::sync(
            &api,
            &services.db,
            config.usage_settle,
            config.usage_hourly_days,
            now,
        )
        .await
        {
            Ok(report) => {
                tracing::info!(
                    buckets = report.buckets,
                    seconds = started.elapsed().as_secs_f64(),
                    "usage store synced"
                );
                if let Err(error) = super::budgets::check_thresholds(services, now).await {
                    tracing::warn!(%error, "budget thresholds could not be checked");
                }
            }
            Err(error) => tracing::warn!(%error, "usage sync failed; will retry"),
        }
        // Until the figures are built, the cost pages build them in their first view.
        warm(services).await;
    };
    let read = if services.org.snapshot().synced_at.is_some() {
        tokio::join!(reports, sync_analytics(services, &api, now)).1
    } else {
        // The organization's first complete read is running: a third read beside it and the
        // usage reports made it 45 % longer on `xlarge` (86 s became 125 s).
        reports.await;
        sync_analytics(services, &api, now).await
    };
    if read {
        // The cost centers' chargeback is attributed from it.
        warm(services).await;
    }
}

/// Cost per person: its own report, so a refusal or failure leaves the others alone. It
/// settles by the day, so every few minutes is enough: each refresh is several calls. Whether
/// it was read.
async fn sync_analytics(
    services: &Services,
    api: &crate::anthropic::Client,
    now: DateTime<Utc>,
) -> bool {
    let recent = match crate::analytics_store::progress(&services.db).await {
        Ok(Some((_, at))) => at <= now && now - at < crate::analytics_store::REFRESH_EVERY,
        _ => false,
    };
    if recent {
        return false;
    }
    match crate::analytics_store::sync(api, &services.db, services.config.usage_settle, now).await {
        Ok(crate::analytics_store::Synced::Unavailable(message)) => {
            tracing::info!(%message, "cost per person is not available to this organization");
            false
        }
        Ok(_) => {
            tracing::info!("cost per person synced");
            true
        }
        Err(error) => {
            tracing::warn!(%error, "cost per person sync failed; will retry");
            false
        }
    }
}

/// How long until the least recently refreshed report is `round` old: zero when one was never
/// synced or its progress cannot be read.
pub async fn round_due_in(services: &Services, round: std::time::Duration) -> std::time::Duration {
    let now = services.clock.now();
    let mut oldest: Option<DateTime<Utc>> = None;
    for kind in Kind::ALL {
        match store::progress(&services.db, kind).await {
            Ok(Some((_, refreshed_at))) if refreshed_at <= now => {
                oldest = Some(oldest.map_or(refreshed_at, |o| o.min(refreshed_at)));
            }
            _ => return std::time::Duration::ZERO,
        }
    }
    let age = oldest.map_or(std::time::Duration::MAX, |at| {
        (now - at).to_std().unwrap_or_default()
    });
    round.saturating_sub(age)
}

/// Builds the cost pages' monthly figures ahead: the organization's spend this month and the
/// last (`/cost`, budgets), and the cost centers' chargeback for the four months their page
/// shows, and the usage page's filters and default view. Run before serving and after each
/// part of a usage round, so the first view of those pages after a restart or a sync reads
/// them from memory instead of a month of cost rows.
async fn warm_reports(services: &Services) -> Result<(), ServiceError> {
    let source = super::cost_centers::source(services, None).await?;
    let rules = super::cost_centers::rules(services).await?;
    let mut start = store::month_start(services.clock.now().date_naive());
    for months_back in 0..4 {
        if months_back < 2 {
            super::budgets::month(services, start, None).await?;
        }
        super::cost_centers::attributed(services, start, &source, &rules).await?;
        start = store::month_start(start.pred_opt().unwrap_or(start));
    }
    for dim in Dim::ALL {
        dim_values(services, dim).await?;
    }
    let names = crate::org::names::ReportNames::of(&services.org.snapshot());
    let now = services.clock.now();
    super::usage_view::view(services, &names, &UsageSpec::default_at(now, None), now).await?;
    Ok(())
}

/// The values each dimension takes in the store: the usage page's filters. Kept until the
/// store changes (on `xlarge`, thousands of key ids), and built ahead with the cost pages'
/// figures.
pub async fn dim_values(services: &Services, dim: Dim) -> Result<Arc<Vec<String>>, ServiceError> {
    let values = services
        .reports
        .get(
            &services.usage,
            store::Reads::Usage,
            format!("dims {dim:?}"),
            || services.usage.dim_values(dim),
        )
        .await?;
    Ok(values)
}

/// [`warm_reports`], where a failure only means the pages build the figures themselves.
pub async fn warm(services: &Services) {
    if let Err(error) = warm_reports(services).await {
        tracing::warn!(%error, "the cost pages' figures could not be built ahead; pages build them");
    }
}

/// Minute buckets, which the store does not keep: read from the Admin API for the page
/// (ranges of at most a day: one request).
pub async fn minute_buckets(
    services: &Services,
    params: &UsageReportParams,
) -> Result<Vec<UsageBucket>, ServiceError> {
    Ok(services.org.api().all(params).await?)
}
