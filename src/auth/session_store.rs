//! Sessions in SQLite, so they survive a restart, and in memory, so a page view does not ask
//! SQLite for its session.
//!
//! Only this process writes sessions (the command line ends them by bumping the account's
//! `session_epoch`, which [`super::account_cache`] notices), so a record in memory is the
//! record in the database: every create, save and delete goes to SQLite first and then to
//! memory, one at a time, and a session not in memory is read from SQLite once. Expired
//! records are never served (the same wall-clock check as the SQLite store's); at most
//! `capacity` records are kept, so a flood of anonymous sessions costs reads, not memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::SqliteStore;

#[derive(Clone, Debug)]
pub struct CachedSessions {
    store: SqliteStore,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: Mutex<HashMap<Id, Record>>,
    /// One write (or read from SQLite) at a time, so memory and SQLite see them in the same
    /// order and a slow read never puts back a record a write replaced.
    writes: tokio::sync::Mutex<()>,
    capacity: usize,
}

fn is_active(record: &Record) -> bool {
    record.expiry_date > OffsetDateTime::now_utc()
}

impl CachedSessions {
    pub fn new(store: SqliteStore, capacity: usize) -> Self {
        Self {
            store,
            inner: Arc::new(Inner {
                records: Mutex::default(),
                writes: tokio::sync::Mutex::new(()),
                capacity,
            }),
        }
    }

    /// The SQLite store underneath (for the expired-session cleanup job).
    pub fn sqlite(&self) -> &SqliteStore {
        &self.store
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.inner.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, record: &Record) {
        let mut records = self.records();
        if records.len() >= self.inner.capacity && !records.contains_key(&record.id) {
            records.retain(|_, r| is_active(r));
            if records.len() >= self.inner.capacity {
                // Still full of live sessions: start over; they are read back as they come.
                records.clear();
            }
        }
        records.insert(record.id, record.clone());
    }

    fn forget(&self, id: &Id) {
        self.records().remove(id);
    }
}

#[async_trait]
impl SessionStore for CachedSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let _write = self.inner.writes.lock().await;
        self.store.create(record).await?;
        self.keep(record);
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let _write = self.inner.writes.lock().await;
        // Forgotten first: if SQLite refuses, memory must not hold what it does not.
        self.forget(&record.id);
        self.store.save(record).await?;
        self.keep(record);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        {
            let mut records = self.records();
            match records.get(id) {
                Some(record) if is_active(record) => return Ok(Some(record.clone())),
                Some(_) => {
                    records.remove(id);
                    return Ok(None);
                }
                None => {}
            }
        }
        let _write = self.inner.writes.lock().await;
        if let Some(record) = self.records().get(id).filter(|r| is_active(r)) {
            return Ok(Some(record.clone()));
        }
        let record = self.store.load(id).await?;
        if let Some(record) = &record {
            self.keep(record);
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _write = self.inner.writes.lock().await;
        self.forget(id);
        self.store.delete(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    async fn sessions(capacity: usize) -> (CachedSessions, sqlx::SqlitePool) {
        // One connection: an in-memory database is private to its connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let store = SqliteStore::new(pool.clone());
        store.migrate().await.unwrap();
        (CachedSessions::new(store, capacity), pool)
    }

    fn record(expires_in: time::Duration) -> Record {
        let mut data = HashMap::new();
        data.insert("account_id".to_owned(), serde_json::json!(7));
        Record {
            id: Id::default(),
            data,
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    async fn rows(pool: &sqlx::SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_live_session_is_served_from_memory_and_every_write_reaches_sqlite() {
        let (sessions, pool) = sessions(10).await;
        let mut live = record(time::Duration::hours(1));
        sessions.create(&mut live).await.unwrap();
        assert_eq!(rows(&pool).await, 1, "created in SQLite");
        // Gone from SQLite behind its back: still served, so it came from memory.
        sqlx::query("DELETE FROM tower_sessions")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(sessions.load(&live.id).await.unwrap(), Some(live.clone()));

        live.data.insert("flash".into(), serde_json::json!("saved"));
        sessions.save(&live).await.unwrap();
        assert_eq!(rows(&pool).await, 1, "saved to SQLite");
        assert_eq!(sessions.load(&live.id).await.unwrap(), Some(live.clone()));

        sessions.delete(&live.id).await.unwrap();
        assert_eq!(rows(&pool).await, 0);
        assert_eq!(sessions.load(&live.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_sessions_are_never_served_and_memory_stays_within_its_capacity() {
        let (sessions, _pool) = sessions(2).await;
        let mut expired = record(time::Duration::seconds(-1));
        sessions.create(&mut expired).await.unwrap();
        assert_eq!(sessions.load(&expired.id).await.unwrap(), None);

        let mut live = Vec::new();
        for _ in 0..5 {
            let mut r = record(time::Duration::hours(1));
            sessions.create(&mut r).await.unwrap();
            live.push(r);
        }
        assert!(sessions.records().len() <= 2);
        for r in &live {
            // Whatever memory dropped is read back from SQLite.
            assert_eq!(sessions.load(&r.id).await.unwrap().as_ref(), Some(r));
        }
        assert!(sessions.records().len() <= 2);
    }
}
