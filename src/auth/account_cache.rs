//! The accounts signed-in sessions name, kept in memory so a page view does not ask SQLite
//! for its account.
//!
//! Two ways a change reaches it:
//!
//! * a change made by this process goes through a service function, which forgets the
//!   account it changed ([`AccountCache::forget`], or [`AccountCache::forget_all`] when it
//!   cannot tell) once the change is committed: the next request reads it again;
//! * every change to an account, whichever process makes it (`orgkeeper user disable`,
//!   `user passwd`), also leaves a row in `account_changes` naming the account, in its own
//!   transaction (triggers, migration 0015). The cache reads the rows it has not seen at most
//!   every `recheck` (`ORGKEEPER_ACCOUNTS_RECHECK_MS`, 1 s by default; 0 reads them on every
//!   request) and forgets exactly those accounts. If rows it never saw were pruned, it forgets
//!   everything.
//!
//! A read that raced a change never puts the old row back: it is kept only if nothing was
//! forgotten since the read began (the generation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use super::accounts::{self, Account, AccountError};

/// `account_changes` rows kept; older ones are pruned (a server that has not looked for this
/// long forgets every account).
const CHANGES_KEPT: i64 = 10_000;

#[derive(Debug)]
pub struct AccountCache {
    recheck: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The last `account_changes` row seen, and when the table was last looked at.
    seen: Option<i64>,
    checked_at: Option<Instant>,
    /// Bumped whenever an account is forgotten.
    generation: u64,
    accounts: HashMap<i64, Account>,
}

/// What changed since a given row of `account_changes`.
enum Changed {
    Nothing,
    Accounts(Vec<i64>),
    /// Rows were pruned before they were seen, or this is the first look.
    Unknown,
}

impl AccountCache {
    /// `recheck`: how long a change made by another process may go unseen.
    pub fn new(recheck: Duration) -> Self {
        Self {
            recheck,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned map is still a map.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account with this id as the database has it (to within `recheck` for changes made
    /// by another process), from memory when possible.
    pub async fn get(&self, pool: &SqlitePool, id: i64) -> Result<Option<Account>, AccountError> {
        let due = {
            let state = self.state();
            state
                .checked_at
                .is_none_or(|at| at.elapsed() >= self.recheck)
                .then_some(state.seen)
        };
        if let Some(seen) = due {
            let (latest, changed) = changes_since(pool, seen).await?;
            let mut state = self.state();
            match changed {
                Changed::Nothing => {}
                Changed::Accounts(ids) => {
                    for id in ids {
                        state.accounts.remove(&id);
                    }
                    state.generation += 1;
                }
                Changed::Unknown => {
                    state.accounts.clear();
                    state.generation += 1;
                }
            }
            state.seen = Some(latest.max(state.seen.unwrap_or(0)));
            state.checked_at = Some(Instant::now());
        }
        let generation = {
            let state = self.state();
            if let Some(account) = state.accounts.get(&id) {
                return Ok(Some(account.clone()));
            }
            state.generation
        };
        let account = accounts::find_by_id(pool, id).await?;
        if let Some(account) = &account {
            let mut state = self.state();
            if state.generation == generation {
                state.accounts.insert(id, account.clone());
            }
        }
        Ok(account)
    }

    /// Forgets one account (after a change to it), at once.
    pub fn forget(&self, id: i64) {
        let mut state = self.state();
        state.accounts.remove(&id);
        state.generation += 1;
    }

    /// Forgets every account (after a change to several, or to one it cannot name), at once.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.accounts.clear();
        state.generation += 1;
    }

    /// How many accounts are in memory (for tests of what a change forgets).
    pub fn len(&self) -> usize {
        self.state().accounts.len()
    }

    /// Whether no account is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The last row of `account_changes`, and the accounts named after `seen`.
async fn changes_since(
    pool: &SqlitePool,
    seen: Option<i64>,
) -> Result<(i64, Changed), AccountError> {
    let (first, latest): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM account_changes")
            .fetch_one(pool)
            .await?;
    let latest = latest.unwrap_or(0);
    let Some(seen) = seen else {
        return Ok((latest, Changed::Unknown));
    };
    if latest <= seen {
        return Ok((seen, Changed::Nothing));
    }
    if first.is_some_and(|first| first > seen + 1) {
        return Ok((latest, Changed::Unknown));
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT account_id FROM account_changes WHERE seq > ? AND seq <= ?",
    )
    .bind(seen)
    .bind(latest)
    .fetch_all(pool)
    .await?;
    Ok((latest, Changed::Accounts(ids)))
}

/// Drops all but the last [`CHANGES_KEPT`] rows of `account_changes` (the chain job).
pub async fn prune(pool: &SqlitePool) -> Result<u64, AccountError> {
    Ok(sqlx::query(
        "DELETE FROM account_changes WHERE seq <= (SELECT MAX(seq) FROM account_changes) - ?",
    )
    .bind(CHANGES_KEPT)
    .execute(pool)
    .await?
    .rows_affected())
}
