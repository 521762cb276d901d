//! The accounts signed-in sessions name, kept in memory so a page view does not ask SQLite
//! for its account.
//!
//! Two ways a change reaches it:
//!
//! * a change made by this process goes through a service function, which calls
//!   [`AccountCache::forget_all`] once the change is committed: the next request reads the
//!   account again;
//! * a change made by another process on the same database file (`orgkeeper user disable`,
//!   `user passwd`) bumps `accounts_version` in its own transaction (triggers, migration
//!   0014). The cache reads that one row at most every `recheck` (`ORGKEEPER_ACCOUNTS_RECHECK_MS`,
//!   1 s by default; 0 reads it on every request) and forgets everything when it moved.
//!
//! A read that raced a change never puts the old row back: it is kept only if nothing was
//! forgotten since the read began (the generation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use super::accounts::{self, Account, AccountError};

#[derive(Debug)]
pub struct AccountCache {
    recheck: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `accounts_version` when last read, and when.
    version: Option<i64>,
    checked_at: Option<Instant>,
    /// Bumped whenever the accounts are forgotten.
    generation: u64,
    accounts: HashMap<i64, Account>,
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
        };
        if due {
            let version = version(pool).await?;
            let mut state = self.state();
            if state.version != Some(version) {
                state.accounts.clear();
                state.generation += 1;
                state.version = Some(version);
            }
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

    /// Forgets every account (after a change to one or several), at once.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.accounts.clear();
        state.generation += 1;
    }
}

/// The counter every change to an account bumps (migration 0014).
pub async fn version(pool: &SqlitePool) -> Result<i64, AccountError> {
    Ok(
        sqlx::query_scalar("SELECT version FROM accounts_version WHERE id = 1")
            .fetch_one(pool)
            .await?,
    )
}
