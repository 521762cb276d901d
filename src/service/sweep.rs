//! The sweep: the whole organization re-read one slice at a time, at a flat number of calls
//! a minute, so that what the Activity Feed did not announce is still found, and, where the
//! feed is refused, instead of it.
//!
//! A pass lists its slices from the model (the organization and its limits, each whole list,
//! each workspace's members and rate limits) and re-reads them in order. Each round of the job
//! spends the calls the pace has earned since the round before (at most a minute's worth), so
//! a long slice is paid for by the rounds after it. The pace is the pass's estimated calls
//! over the period (`ServerConfig::sweep_period` with the feed, `sync_interval` without),
//! and never more than the configured share of the budget the Admin API announces
//! (`anthropic-ratelimit-requests-*`); while the API says less than the rest of that budget
//! remains, the sweep waits for others. A slice's differences are recorded as observed like
//! the feed's, with `found_by: sweep`, and, while the feed is readable,
//! `announced_by_feed: false`: the feed either missed the change or had not announced it
//! yet (then it names the record later, as for a full sync's).

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::sync::{observed_entries, SyncError};
use super::{activity, Services};
use crate::anthropic::{Budget, Client, RateLimitStatus};
use crate::org::{Snapshot, Touched};

/// The sweep's place in its pass, kept between the job's rounds.
#[derive(Default)]
pub struct Sweep {
    state: Mutex<State>,
    /// One round at a time.
    running: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Touched>,
    /// Calls the sweep may make now; below zero after a slice that cost more (paid first).
    credit: f64,
    refilled_at: Option<DateTime<Utc>>,
    pass: Option<Pass>,
}

/// One pass over the organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Pass {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The calls the pass was expected to take (what sets the pace).
    pub estimate: u64,
    pub slices: usize,
    pub calls: u64,
    /// Observed changes it recorded.
    pub observed: usize,
}

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    pub slices: usize,
    pub calls: u64,
    pub observed: usize,
    /// The pace in calls a minute.
    pub per_minute: f64,
    /// Waited because the Admin API announced little budget left.
    pub yielded: bool,
    /// The pass this round completed.
    pub finished: Option<Pass>,
}

/// The slices of one pass, and the calls they are expected to take.
fn slices(model: &Snapshot, page: u32) -> (VecDeque<Touched>, u64) {
    let pages = |n: usize| (n as u64).div_ceil(u64::from(page)).max(1);
    let mut out = VecDeque::from([
        Touched::Organization,
        Touched::SpendLimits,
        Touched::OrgRateLimits,
        Touched::AllUsers,
        Touched::AllInvites,
        Touched::AllWorkspaces,
        Touched::AllKeys,
    ]);
    let mut estimate = 3
        + pages(model.users.len())
        + pages(model.invites.len())
        + 2 * pages(model.workspaces.len())
        + pages(model.keys.len());
    for workspace in model.workspaces.iter() {
        out.push_back(Touched::MembersOfWorkspace(workspace.id.clone()));
        estimate += pages(model.members_in(&workspace.id).len());
        if !workspace.is_archived() {
            out.push_back(Touched::RateLimitsOf(workspace.id.clone()));
            estimate += 1;
        }
    }
    (out, estimate)
}

/// Calls a minute: the pass over its period, within the share of the announced budget.
pub fn pace(
    estimate: u64,
    period: std::time::Duration,
    budget: Option<&RateLimitStatus>,
    share: f64,
) -> f64 {
    let minutes = (period.as_secs_f64() / 60.0).max(1.0 / 60.0);
    let wanted = estimate as f64 / minutes;
    match budget {
        Some(b) => wanted.min(b.limit as f64 * share),
        None => wanted,
    }
}

/// Whether the Admin API said that less than what others need of its budget is left.
fn budget_low(budget: Option<&RateLimitStatus>, share: f64, now: DateTime<Utc>) -> bool {
    budget.is_some_and(|b| {
        b.reset.is_none_or(|reset| reset > now)
            && (b.remaining as f64) < b.limit as f64 * (1.0 - share)
    })
}

/// One round: spend what the pace earned since the last round on the next slices.
pub async fn round(services: &Services) -> Result<Round, SyncError> {
    let sweep = &services.sweep;
    let _alone = sweep.running.lock().await;
    let model = services.org.snapshot();
    if model.synced_at.is_none() {
        return Ok(Round::default());
    }
    let now = services.clock.now();
    let feed_readable = activity::state(&services.db)
        .await
        .map_err(super::ServiceError::from)?
        .unavailable
        .is_none();
    let period = if feed_readable {
        services.config.sweep_period
    } else {
        services.config.sync_interval
    };
    let api: Client = services.org.api().counting();
    let budget = api.rate_limit(Budget::Admin);
    let share = services.config.api_share;
    let mut round = Round::default();
    {
        let mut st = sweep.state.lock().expect("sweep lock");
        if st.queue.is_empty() {
            let (queue, estimate) = slices(&model, api.page_size());
            st.queue = queue;
            st.pass = Some(Pass {
                started_at: now,
                finished_at: None,
                estimate,
                slices: 0,
                calls: 0,
                observed: 0,
            });
        }
        let estimate = st.pass.as_ref().map_or(0, |p| p.estimate);
        round.per_minute = pace(estimate, period, budget.as_ref(), share);
        // At most a minute's worth at once (and one call, so a slow pace still moves).
        let most = round.per_minute.max(1.0);
        let earned = match st.refilled_at {
            Some(at) => (now - at).num_milliseconds().max(0) as f64 / 60_000.0 * round.per_minute,
            None => most,
        };
        st.credit = (st.credit + earned).min(most);
        st.refilled_at = Some(now);
    }
    drop(model);
    loop {
        let slice = {
            let st = sweep.state.lock().expect("sweep lock");
            match st.queue.front() {
                Some(slice) if st.credit > 0.0 => slice.clone(),
                _ => break,
            }
        };
        if budget_low(api.rate_limit(Budget::Admin).as_ref(), share, now) {
            round.yielded = true;
            break;
        }
        let before = api.sent();
        let result = reread(services, &api, &slice, feed_readable).await;
        let calls = api.sent() - before;
        round.calls += calls;
        let mut st = sweep.state.lock().expect("sweep lock");
        st.credit -= calls.max(1) as f64;
        if let Some(pass) = st.pass.as_mut() {
            pass.calls += calls;
        }
        // A failed slice stays first in line for the next round.
        let observed = result?;
        st.queue.pop_front();
        round.slices += 1;
        round.observed += observed;
        if let Some(pass) = st.pass.as_mut() {
            pass.slices += 1;
            pass.observed += observed;
        }
    }
    let mut st = sweep.state.lock().expect("sweep lock");
    if st.queue.is_empty() {
        if let Some(mut pass) = st.pass.take() {
            pass.finished_at = Some(services.clock.now());
            // Without the feed, a whole pass is what says the model is current (as of when it
            // began); beside the feed, each feed round says so sooner.
            if !feed_readable {
                services.org.current_at(pass.started_at);
            }
            round.finished = Some(pass);
        }
    }
    Ok(round)
}

/// Re-reads one slice and records what changed; says how many changes were observed.
async fn reread(
    services: &Services,
    api: &Client,
    slice: &Touched,
    feed_readable: bool,
) -> Result<usize, SyncError> {
    let observed = std::sync::Mutex::new(0);
    let counted = &observed;
    services
        .org
        .reread_observed(api, std::slice::from_ref(slice), |changes| async move {
            let mut entries = observed_entries(&changes, &services.org.snapshot());
            for entry in &mut entries {
                if let Value::Object(details) = &mut entry.details {
                    details.insert("found_by".into(), json!("sweep"));
                    if feed_readable {
                        details.insert("announced_by_feed".into(), json!(false));
                    }
                }
            }
            *counted.lock().expect("count lock") = entries.len();
            if !entries.is_empty() {
                services.audit.append_all(entries).await?;
            }
            Ok::<_, SyncError>(changes)
        })
        .await?;
    Ok(observed.into_inner().expect("count lock"))
}
