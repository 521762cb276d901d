//! Cost per person: the page-triggered refresh of the analytics store's recent days, and the
//! sums pages read from it (per actor, per person over time). Amounts stay exact decimal
//! cents until a page shows them. Team leads read only the rows of their workspaces, so
//! their totals add up within that scope.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::{Caller, ServiceError, Services};
use crate::analytics_store::{self as analytics, Access, Line, Named, Select, Synced};
use crate::usage_store::{Reads, SyncError};

/// What a page should say about the numbers it shows.
#[derive(Debug, Default, Clone)]
pub struct Freshness {
    /// The latest numbers could not be fetched: stored ones are shown (or none are stored).
    pub stale: Option<String>,
    /// Anthropic does not let this organization read cost per person: its words.
    pub refused: Option<String>,
}

/// Refreshes the recent days unless fresh (at most about once a minute, the store decides).
pub async fn refresh(services: &Services, now: DateTime<Utc>) -> Result<Freshness, ServiceError> {
    let refreshed = analytics::refresh(
        services.org.api(),
        &services.db,
        services.config.usage_settle,
        now,
    )
    .await;
    match refreshed {
        Ok(Synced::Unavailable(message)) => Ok(Freshness {
            stale: None,
            refused: Some(message),
        }),
        Ok(_) => Ok(Freshness::default()),
        Err(SyncError::Db(e)) => Err(e.into()),
        Err(SyncError::Busy) => Ok(Freshness {
            stale: Some(super::usage::busy_note(
                services.analytics.progress().await?.map(|(_, at)| at),
            )),
            refused: refusal(services).await?,
        }),
        Err(SyncError::Api(e)) => {
            let stale = match services.analytics.progress().await? {
                Some((_, at)) => format!(
                    "Showing stored data from {}: the latest numbers could not be fetched. {}",
                    crate::labels::moment_label(&at),
                    e.user_message()
                ),
                None => format!(
                    "Cost per person could not be read yet. {}",
                    e.user_message()
                ),
            };
            Ok(Freshness {
                stale: Some(stale),
                refused: refusal(services).await?,
            })
        }
    }
}

/// The refusal kept from the last sync, if the organization may not read analytics.
pub async fn refusal(services: &Services) -> Result<Option<String>, ServiceError> {
    Ok(match services.analytics.access().await? {
        Access::Unavailable(m) => Some(m),
        _ => None,
    })
}

/// One actor's sums over a period.
#[derive(Clone, Debug, Default)]
pub struct Sums {
    pub cost: Decimal,
    pub tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub requests: i64,
}

impl Sums {
    pub fn add(&mut self, l: &Line) {
        self.cost += l.amount;
        self.tokens += l.tokens;
        self.input_tokens += l.input_tokens;
        self.output_tokens += l.output_tokens;
        self.requests += l.requests;
    }
}

/// An actor: (actor type, actor id), as the analytics API names them.
pub type ActorKey = (String, String);

/// Each actor's sums over `[from, to)` within what the caller may read, largest cost first;
/// computed once per store version.
pub async fn by_actor(
    services: &Services,
    caller: &Caller,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Arc<Vec<(ActorKey, Sums)>>, ServiceError> {
    let scope = caller.workspace_scope().map(<[String]>::to_vec);
    let key = format!("people {from} {to} {scope:?}");
    let store = services.analytics.clone();
    Ok(services
        .reports
        .get(&services.usage, Reads::People, key, || async move {
            let lines = store
                .lines(&Select {
                    from,
                    to,
                    actor_id: None,
                    workspaces: scope.as_deref(),
                })
                .await?;
            let mut sums: HashMap<ActorKey, Sums> = HashMap::new();
            for l in &lines {
                sums.entry((l.actor_type.clone(), l.actor_id.clone()))
                    .or_default()
                    .add(l);
            }
            let mut out: Vec<_> = sums.into_iter().collect();
            out.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then(a.0.cmp(&b.0)));
            Ok::<_, sqlx::Error>(out)
        })
        .await?)
}

/// A person's own lines (as a person, not through service accounts) over `[from, to)`,
/// within what the caller may read.
pub async fn person_lines(
    services: &Services,
    caller: &Caller,
    user_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Line>, ServiceError> {
    let lines = services
        .analytics
        .lines(&Select {
            from,
            to,
            actor_id: Some(user_id),
            workspaces: caller.workspace_scope(),
        })
        .await?;
    Ok(lines
        .into_iter()
        .filter(|l| l.actor_type == "user_actor")
        .collect())
}

/// Every person the analytics API named, by user id; read once per store version (5,000
/// rows on `large`, each view of `/cost/people` read them again).
pub async fn named(services: &Services) -> Result<Arc<HashMap<String, Named>>, ServiceError> {
    let store = services.analytics.clone();
    Ok(services
        .reports
        .get(
            &services.usage,
            Reads::People,
            "people named".to_owned(),
            || async move { store.people().await },
        )
        .await?)
}
