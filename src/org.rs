//! The organization as the dashboard reads it: Admin API reads behind a short-lived cache.
//!
//! A page reached again within the cache lifetime makes no upstream call. Every change made
//! through the dashboard invalidates what it touched, so people see their own changes at
//! once. Lists are cached whole (the API has no search or sort), and pages filter, sort and
//! page them locally; `Arc` keeps a 20,000-key list from being copied per request.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::anthropic::{
    ApiError, ApiKey, ApiKeyFilter, Client, Invite, InviteFilter, Organization, User, UserFilter,
    Workspace, WorkspaceFilter, WorkspaceMember,
};

type Entry = (Instant, Arc<dyn Any + Send + Sync>);

/// A time-bounded cache of upstream reads, keyed by strings such as `users` or `members:wrkspc_…`.
pub struct ReadCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ReadCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lookup<T: Send + Sync + 'static>(&self, key: &str) -> Option<Arc<T>> {
        let entries = self.entries.lock().expect("cache lock");
        let (stored_at, value) = entries.get(key)?;
        if stored_at.elapsed() >= self.ttl {
            return None;
        }
        value.clone().downcast::<T>().ok()
    }

    /// The cached value, or the fetched one (stored when the fetch succeeds).
    pub async fn get_or_fetch<T, F, Fut>(&self, key: &str, fetch: F) -> Result<Arc<T>, ApiError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        if let Some(value) = self.lookup::<T>(key) {
            return Ok(value);
        }
        let value = Arc::new(fetch().await?);
        if !self.ttl.is_zero() {
            let stored: Arc<dyn Any + Send + Sync> = value.clone();
            self.entries
                .lock()
                .expect("cache lock")
                .insert(key.to_owned(), (Instant::now(), stored));
        }
        Ok(value)
    }

    /// Forgets every entry whose key starts with one of these prefixes.
    pub fn invalidate(&self, prefixes: &[&str]) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|key, _| !prefixes.iter().any(|prefix| key.starts_with(prefix)));
    }
}

/// Cached reads of the organization. Changes go through [`Org::api`] and then
/// [`Org::invalidate`] what they touched.
pub struct Org {
    api: Client,
    cache: ReadCache,
}

/// Cache keys, so readers and invalidators agree.
pub mod keys {
    pub const ORGANIZATION: &str = "organization";
    pub const USERS: &str = "users";
    pub const INVITES: &str = "invites";
    pub const WORKSPACES: &str = "workspaces";
    /// Shares the prefix above, so invalidating workspaces forgets it too.
    pub const WORKSPACES_WITHOUT_DEFAULT: &str = "workspaces:without_default";
    /// Prefix; one entry per workspace.
    pub const MEMBERS: &str = "members:";
    pub const API_KEYS: &str = "api_keys";
}

impl Org {
    pub fn new(api: Client, ttl: Duration) -> Self {
        Self {
            api,
            cache: ReadCache::new(ttl),
        }
    }

    /// The client, for changes (and uncached reads).
    pub fn api(&self) -> &Client {
        &self.api
    }

    pub fn invalidate(&self, prefixes: &[&str]) {
        self.cache.invalidate(prefixes);
    }

    /// The same cache for other upstream reads (reports), under their own keys.
    pub fn cache(&self) -> &ReadCache {
        &self.cache
    }

    pub async fn organization(&self) -> Result<Arc<Organization>, ApiError> {
        self.cache
            .get_or_fetch(keys::ORGANIZATION, || self.api.get_organization())
            .await
    }

    /// Every member of the organization.
    pub async fn users(&self) -> Result<Arc<Vec<User>>, ApiError> {
        self.cache
            .get_or_fetch(keys::USERS, || async move {
                self.api.list_all_users(&UserFilter::default()).await
            })
            .await
    }

    /// Every invite (pending, accepted and expired).
    pub async fn invites(&self) -> Result<Arc<Vec<Invite>>, ApiError> {
        self.cache
            .get_or_fetch(keys::INVITES, || async move {
                self.api.list_all_invites(&InviteFilter::default()).await
            })
            .await
    }

    /// Every workspace, archived ones and the default workspace included.
    pub async fn workspaces(&self) -> Result<Arc<Vec<Workspace>>, ApiError> {
        let filter = WorkspaceFilter {
            include_archived: true,
            include_default: true,
        };
        self.cache
            .get_or_fetch(keys::WORKSPACES, || async move {
                self.api.list_all_workspaces(&filter).await
            })
            .await
    }

    /// The default workspace's id. The API marks it only by listing it when
    /// `include_default` is asked for, so it is the workspace missing from the plain list.
    /// `None` when the API does not list it at all (older API versions).
    pub async fn default_workspace_id(&self) -> Result<Option<String>, ApiError> {
        let all = self.workspaces().await?;
        let filter = WorkspaceFilter {
            include_archived: true,
            include_default: false,
        };
        let plain = self
            .cache
            .get_or_fetch(keys::WORKSPACES_WITHOUT_DEFAULT, || async move {
                self.api.list_all_workspaces(&filter).await
            })
            .await?;
        Ok(all
            .iter()
            .find(|w| !plain.iter().any(|p| p.id == w.id))
            .map(|w| w.id.clone()))
    }

    pub async fn workspace_members(
        &self,
        workspace_id: &str,
    ) -> Result<Arc<Vec<WorkspaceMember>>, ApiError> {
        let key = format!("{}{workspace_id}", keys::MEMBERS);
        self.cache
            .get_or_fetch(&key, || self.api.list_all_workspace_members(workspace_id))
            .await
    }

    /// Every API key of the organization.
    pub async fn api_keys(&self) -> Result<Arc<Vec<ApiKey>>, ApiError> {
        self.cache
            .get_or_fetch(keys::API_KEYS, || async move {
                self.api.list_all_api_keys(&ApiKeyFilter::default()).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cached_value_is_reused_until_invalidated() {
        let cache = ReadCache::new(Duration::from_secs(60));
        let calls = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ApiError>(vec![1, 2, 3])
        };
        cache.get_or_fetch("users", fetch).await.unwrap();
        cache.get_or_fetch("users", fetch).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache.invalidate(&["users"]);
        cache.get_or_fetch("users", fetch).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_zero_lifetime_disables_the_cache() {
        let cache = ReadCache::new(Duration::ZERO);
        let calls = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..2 {
            cache
                .get_or_fetch("k", || async {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, ApiError>(1)
                })
                .await
                .unwrap();
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
