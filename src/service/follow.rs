//! Following the organization through the Compliance API's Activity Feed.
//!
//! Every few seconds (`ServerConfig::feed_interval`) a round reads what arrived since the
//! feed's cursor, re-reads exactly what those activities name ([`activity::touches`]) and
//! records what changed as observed, each record named by its activity: the same codes,
//! before and after, as a full sync writes. Orgkeeper's own changes are not recorded again
//! (the model's marks explain them), and nothing is recorded twice (the model takes what was
//! recorded, so a later read finds no difference). The cursor moves only once the records are
//! written. What the feed misses, the sweep ([`super::sweep`]) finds.

use chrono::{DateTime, Utc};

use super::sync::{named_by_feed, SyncError};
use super::{activity, observed_alerts, Services};
use crate::org::Touched;

/// What one round did.
#[derive(Debug, Default)]
pub struct Followed {
    /// The feed is refused to this admin key: the sweep re-reads everything instead.
    pub refused: bool,
    /// The feed could not be read this time (why, in plain words).
    pub failed: Option<String>,
    pub activities: usize,
    /// What the activities named, re-read.
    pub reread: Vec<Touched>,
    /// Observed changes recorded.
    pub observed: usize,
}

/// One round: read the feed to its end, re-read what it names, record what changed.
pub async fn round(services: &Services) -> Result<Followed, SyncError> {
    let _alone = services.following.lock().await;
    if services.org.snapshot().synced_at.is_none() {
        // Nothing to compare with before the first complete read.
        return Ok(Followed::default());
    }
    let feed = activity::read_to_end(services).await;
    let mut out = Followed {
        refused: feed.refused,
        failed: feed.failed.clone(),
        activities: feed.activities.len(),
        ..Followed::default()
    };
    if feed.activities.is_empty() {
        if !feed.refused && feed.failed.is_none() {
            services.org.current_at(services.clock.now());
        }
        return Ok(out);
    }
    for touched in feed.activities.iter().flat_map(activity::touches) {
        if !out.reread.contains(&touched) {
            out.reread.push(touched);
        }
    }
    let now = services.clock.now();
    let since: DateTime<Utc> = feed
        .activities
        .iter()
        .map(|a| a.created_at)
        .min()
        .unwrap_or(now);
    observed_alerts::prepare(services).await;
    let recorded = std::sync::Mutex::new(None);
    if !out.reread.is_empty() {
        let api = services.org.api();
        let activities = &feed.activities;
        let recorded = &recorded;
        services
            .org
            .reread_observed(api, &out.reread, |changes| async move {
                let (entries, observed, joined) =
                    named_by_feed(services, &changes, activities, since, now).await?;
                if !entries.is_empty() {
                    services.audit.append_all(entries).await?;
                }
                *recorded.lock().expect("recorded lock") = Some((observed, joined));
                Ok::<_, SyncError>(changes)
            })
            .await?;
    }
    let recorded = recorded.into_inner().expect("recorded lock");
    let joined = match recorded {
        Some((observed, joined)) => {
            out.observed = observed;
            joined
        }
        None => {
            // Nothing differed: the model already held these changes (Orgkeeper's own, or
            // found by the sweep before the feed announced them). Name the records the sweep
            // wrote without a name.
            let unused = vec![false; feed.activities.len()];
            let late = activity::attribute_late(services, &feed.activities, &unused).await?;
            if !late.is_empty() {
                services.audit.append_all(late).await?;
            }
            Vec::new()
        }
    };
    activity::done(services, &feed).await;
    if !feed.more {
        services.org.current_at(now);
    }
    observed_alerts::send(services).await;
    if let Err(error) = super::scim::settle_joined(services, &joined).await {
        tracing::warn!(%error, "the workspaces of people who joined could not be provisioned");
    }
    Ok(out)
}
