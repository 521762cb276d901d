//! The organization as the dashboard reads it: Admin API reads behind a short-lived cache.
//!
//! A page reached again within the cache lifetime makes no upstream call. Every change made
//! through the dashboard invalidates what it touched, so people see their own changes at
//! once (the service layer names what each change touched, as a typed [`Cached`]). Lists are
//! cached whole (the API has no search or sort), and pages filter, sort and
//! page them locally; `Arc` keeps a 20,000-key list from being copied per request.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::anthropic::{
    ApiError, ApiKey, ApiKeyFilter, BucketWidth, Client, Invite, InviteFilter, Organization,
    UsageBucket, UsageReportParams, User, UserFilter, Workspace, WorkspaceFilter, WorkspaceMember,
};

type Entry = (Instant, Arc<dyn Any + Send + Sync>);

/// What the cache holds, one variant per upstream read. Changes name what they touched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cached {
    Organization,
    Users,
    Invites,
    /// Every workspace, archived and default included.
    Workspaces,
    /// The plain list, which tells the default workspace apart. Forgotten with `Workspaces`.
    WorkspacesWithoutDefault,
    /// One workspace's members.
    WorkspaceMembers(String),
    /// Only for invalidation: every workspace's members (a role or removal changes many).
    AllWorkspaceMembers,
    ApiKeys,
    /// One key's last 30 days of usage, for its page.
    KeyUsage(String),
}

impl Cached {
    /// Whether invalidating `self` forgets the entry `stored`.
    fn covers(&self, stored: &Cached) -> bool {
        match (self, stored) {
            (Cached::Workspaces, Cached::WorkspacesWithoutDefault) => true,
            (Cached::AllWorkspaceMembers, Cached::WorkspaceMembers(_)) => true,
            (a, b) => a == b,
        }
    }
}

/// A time-bounded cache of upstream reads.
pub struct ReadCache {
    ttl: Duration,
    entries: Mutex<HashMap<Cached, Entry>>,
}

impl ReadCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lookup<T: Send + Sync + 'static>(&self, key: &Cached) -> Option<Arc<T>> {
        let entries = self.entries.lock().expect("cache lock");
        let (stored_at, value) = entries.get(key)?;
        if stored_at.elapsed() >= self.ttl {
            return None;
        }
        value.clone().downcast::<T>().ok()
    }

    /// The cached value, or the fetched one (stored when the fetch succeeds).
    pub async fn get_or_fetch<T, F, Fut>(&self, key: Cached, fetch: F) -> Result<Arc<T>, ApiError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        if let Some(value) = self.lookup::<T>(&key) {
            return Ok(value);
        }
        let value = Arc::new(fetch().await?);
        if !self.ttl.is_zero() {
            let stored: Arc<dyn Any + Send + Sync> = value.clone();
            self.entries
                .lock()
                .expect("cache lock")
                .insert(key, (Instant::now(), stored));
        }
        Ok(value)
    }

    /// Forgets every entry one of `touched` covers.
    pub fn invalidate(&self, touched: &[Cached]) {
        self.entries
            .lock()
            .expect("cache lock")
            .retain(|key, _| !touched.iter().any(|t| t.covers(key)));
    }
}

/// Cached reads of the organization. Changes are made by `crate::service`, through
/// [`Org::api`], which then [`Org::invalidate`]s what they touched.
pub struct Org {
    api: Client,
    cache: ReadCache,
}

impl Org {
    pub fn new(api: Client, ttl: Duration) -> Self {
        Self {
            api,
            cache: ReadCache::new(ttl),
        }
    }

    /// The client: for the service layer's changes, and for reads that are not cached
    /// (reports synced into the usage store, health checks).
    pub fn api(&self) -> &Client {
        &self.api
    }

    pub fn invalidate(&self, touched: &[Cached]) {
        self.cache.invalidate(touched);
    }

    /// Forgets everything (the page benchmark's cold start).
    pub fn invalidate_all(&self) {
        self.cache.entries.lock().expect("cache lock").clear();
    }

    pub async fn organization(&self) -> Result<Arc<Organization>, ApiError> {
        self.cache
            .get_or_fetch(Cached::Organization, || self.api.get_organization())
            .await
    }

    /// Every member of the organization.
    pub async fn users(&self) -> Result<Arc<Vec<User>>, ApiError> {
        self.cache
            .get_or_fetch(Cached::Users, || async move {
                self.api.list_all_users(&UserFilter::default()).await
            })
            .await
    }

    /// Every invite (pending, accepted and expired).
    pub async fn invites(&self) -> Result<Arc<Vec<Invite>>, ApiError> {
        self.cache
            .get_or_fetch(Cached::Invites, || async move {
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
            .get_or_fetch(Cached::Workspaces, || async move {
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
            .get_or_fetch(Cached::WorkspacesWithoutDefault, || async move {
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
        self.cache
            .get_or_fetch(Cached::WorkspaceMembers(workspace_id.to_owned()), || {
                self.api.list_all_workspace_members(workspace_id)
            })
            .await
    }

    /// Every API key of the organization.
    pub async fn api_keys(&self) -> Result<Arc<Vec<ApiKey>>, ApiError> {
        self.cache
            .get_or_fetch(Cached::ApiKeys, || async move {
                self.api.list_all_api_keys(&ApiKeyFilter::default()).await
            })
            .await
    }

    /// One key's daily usage since `start` (at most 31 days), for its page.
    pub async fn key_usage(
        &self,
        key_id: &str,
        start: chrono::DateTime<chrono::Utc>,
    ) -> Result<Arc<Vec<UsageBucket>>, ApiError> {
        self.cache
            .get_or_fetch(Cached::KeyUsage(key_id.to_owned()), || async move {
                let mut params = UsageReportParams::new(start);
                params.bucket_width = Some(BucketWidth::Day);
                params.limit = Some(31);
                params.api_key_ids = vec![key_id.to_owned()];
                self.api.usage_report_all(&params).await
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
        cache.get_or_fetch(Cached::Users, fetch).await.unwrap();
        cache.get_or_fetch(Cached::Users, fetch).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache.invalidate(&[Cached::Invites]);
        cache.get_or_fetch(Cached::Users, fetch).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache.invalidate(&[Cached::Users]);
        cache.get_or_fetch(Cached::Users, fetch).await.unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_zero_lifetime_disables_the_cache() {
        let cache = ReadCache::new(Duration::ZERO);
        let calls = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..2 {
            cache
                .get_or_fetch(Cached::Organization, || async {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, ApiError>(1)
                })
                .await
                .unwrap();
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
