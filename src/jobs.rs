//! Every background task, started by the server, each acting through the service layer as
//! the system. Tests run one round of a job with its `run_*` function and a moved
//! clock instead of waiting for its timer.

use std::time::Duration;

use tokio::task::JoinHandle;
use tower_sessions_sqlx_store::SqliteStore;

use crate::service::schedules::ScheduleOutcome;
use crate::service::{chain, schedules, sync, ServiceError, Services};

/// How often scheduled key archives are looked at.
const SCHEDULES_EVERY: Duration = Duration::from_secs(60);
/// The Admin API's polling guidance for usage and cost: about once a minute.
const USAGE_EVERY: Duration = Duration::from_secs(60);
/// How often the audit chain is re-verified (and old records pruned when retention is set).
pub const CHAIN_EVERY: Duration = Duration::from_secs(15 * 60);
/// A background call may wait longer than a page (nobody is waiting on it), but not forever.
const JOB_DEADLINE: Duration = Duration::from_secs(120);
/// How often expired sessions are deleted.
const SESSIONS_EVERY: Duration = Duration::from_secs(600);

/// Starts every job. With `config.background_jobs` off (tests) only session cleanup runs;
/// tests drive the others one round at a time.
pub fn spawn_all(services: &Services, sessions: SqliteStore) -> Vec<JoinHandle<()>> {
    let mut handles = vec![tokio::spawn(session_cleanup(sessions))];
    if !services.config.background_jobs {
        return handles;
    }
    handles.push(tokio::spawn(org_sync(services.clone())));
    handles.push(tokio::spawn(warm_views(services.clone())));
    handles.push(every(services.clone(), SWEEP_EVERY, |s| async move {
        run_sweep_round(&s).await
    }));
    handles.push(every(services.clone(), CHAIN_EVERY, |s| async move {
        run_chain_check(&s).await
    }));
    // Schedules that fell due while the server was down run at once.
    handles.push(every(services.clone(), SCHEDULES_EVERY, |s| async move {
        if let Err(error) = run_schedules(&s).await {
            tracing::warn!(%error, "scheduled key archives could not run");
        }
        if let Err(error) = run_token_expiry(&s).await {
            tracing::warn!(%error, "expired tokens could not be recorded");
        }
        if let Err(error) = crate::service::accounts::prune_changes(&s).await {
            tracing::warn!(%error, "the log of account changes could not be pruned");
        }
    }));
    handles.push(tokio::spawn(usage_rounds(services.clone())));
    handles
}

fn every<F, Fut>(services: Services, period: Duration, round: F) -> JoinHandle<()>
where
    F: Fn(Services) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            round(services.clone()).await;
        }
    })
}

/// The usage job. Its first round waits until the store's reports are a round old: a restart
/// does not read again what was read seconds before, and the cost pages' figures built before
/// serving (`server::run`) stay valid until then instead of being rebuilt by the first view.
async fn usage_rounds(services: Services) {
    let due = crate::service::usage::round_due_in(&services, USAGE_EVERY).await;
    tokio::time::sleep(due).await;
    let mut ticks = tokio::time::interval(USAGE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        run_usage_sync(&services).await;
    }
}

/// Builds the pages' views of each new model as soon as it replaces the last, so the first
/// page view after a change does not wait for them (the server builds them once before it
/// serves: `server::run`).
async fn warm_views(services: Services) {
    loop {
        services.org.replaced().await;
        services.org.warm(services.config.key_rotation_days).await;
    }
}

/// Keeps the organization model current. Until a complete read succeeded (the baseline) it
/// reads the whole organization every interval; then it follows the Activity Feed every
/// `feed_interval`, while the sweep re-reads the organization slice by slice. (Someone asking
/// for a refresh gets a complete read in their own request: `web::org`.)
async fn org_sync(services: Services) {
    while services.org.snapshot().synced_at.is_none() {
        run_org_sync(&services).await;
        if services.org.snapshot().synced_at.is_some() {
            break;
        }
        tokio::time::sleep(services.config.sync_interval).await;
    }
    loop {
        run_feed_round(&services).await;
        tokio::time::sleep(services.config.feed_interval).await;
    }
}

/// How often the sweep spends what its pace earned.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One round that follows the Activity Feed.
pub async fn run_feed_round(services: &Services) {
    match crate::service::follow::round(services).await {
        Ok(round) if round.observed > 0 => {
            tracing::info!(
                observed = round.observed,
                activities = round.activities,
                "the activity feed named changes"
            )
        }
        Ok(round) => {
            if let Some(reason) = round.failed {
                tracing::warn!(%reason, "the activity feed could not be read; trying again");
            }
        }
        Err(error) => {
            tracing::warn!(%error, "what the activity feed named could not be re-read; trying again")
        }
    }
}

/// One round of the sweep.
pub async fn run_sweep_round(services: &Services) {
    match crate::service::sweep::round(services).await {
        Ok(round) => {
            if let Some(pass) = round.finished {
                tracing::info!(
                    calls = pass.calls,
                    observed = pass.observed,
                    "the sweep read the whole organization"
                );
            }
        }
        Err(error) => tracing::warn!(%error, "the sweep could not re-read a slice; trying again"),
    }
}

/// One round of the organization sync. Failures are kept for the pages to show; the model
/// keeps what it had.
pub async fn run_org_sync(services: &Services) {
    let started = std::time::Instant::now();
    match sync::run(services).await {
        Ok(report) => tracing::info!(
            observed = report.observed,
            baseline = report.baseline,
            seconds = started.elapsed().as_secs_f64(),
            "organization synced"
        ),
        Err(error) => {
            tracing::warn!(%error, "organization sync failed; pages show the last known state")
        }
    }
}

async fn session_cleanup(store: SqliteStore) {
    use tower_sessions::ExpiredDeletion;
    if let Err(error) = store.continuously_delete_expired(SESSIONS_EVERY).await {
        tracing::warn!(%error, "session cleanup stopped");
    }
}

/// One round of the scheduler: archives every key whose schedule is due now.
pub async fn run_schedules(services: &Services) -> Result<Vec<ScheduleOutcome>, ServiceError> {
    schedules::run_due(services, services.clock.now()).await
}

/// Records each token that has expired since the last round (a token stops working at its
/// expiry whether or not this has run; this only writes the audit entry).
pub async fn run_token_expiry(services: &Services) -> Result<usize, ServiceError> {
    crate::service::tokens::record_expired(services, services.clock.now()).await
}

/// One round of the chain check: prune past the retention period, then verify.
pub async fn run_chain_check(services: &Services) {
    chain::run_once(services, services.clock.now()).await;
}

/// One round of the usage job: sync the store and check budget thresholds, beside the sync of
/// cost per person.
pub async fn run_usage_sync(services: &Services) {
    crate::service::usage::sync(services, services.clock.now(), JOB_DEADLINE).await;
    crate::memory::release();
}
