//! The organization model: the last complete state read from the Admin API, in memory for
//! pages and in SQLite for restarts and history.
//!
//! Pages read only the model, so a page view makes no upstream call and keeps working when the
//! Admin API does not answer. A background sync (`service::sync`) reads the whole organization,
//! [`Org::sync`]s it in, and the differences Orgkeeper did not make are recorded as observed
//! changes. A change made through Orgkeeper names what it [`Touched`]; the model re-reads
//! exactly that at once ([`Org::reread`]), so people see their change immediately and a sync
//! running meanwhile does not mistake it for an outside one. The confirmation of an
//! irreversible action re-reads its target first ([`Org::reread_current`]); what that finds
//! changed outside Orgkeeper is recorded as observed, as a sync would.

pub mod counts;
mod entity;
mod fetch;
pub mod keys;
pub mod members;
pub mod names;
pub mod store;

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt, TryStreamExt};
use sqlx::SqlitePool;

pub use entity::{Diff, Entity, Touched};
pub use fetch::{Fetched, PARALLEL};

use crate::anthropic::{
    ApiError, ApiKey, Client, Invite, OrgRateLimit, Organization, SpendLimit, User, Workspace,
    WorkspaceMember, WorkspaceRateLimit,
};
use crate::clock::Clock;

/// The organization as last read, with what pages derive from it once per change rather than
/// once per request.
#[derive(Default)]
pub struct Snapshot {
    pub organization: Option<Organization>,
    pub users: Arc<Vec<User>>,
    pub invites: Arc<Vec<Invite>>,
    pub workspaces: Arc<Vec<Workspace>>,
    pub default_workspace_id: Option<String>,
    pub memberships: Arc<Vec<WorkspaceMember>>,
    pub keys: Arc<Vec<ApiKey>>,
    /// Each live workspace's rate limits as last read, or why they could not be.
    pub rate_limits: Arc<HashMap<String, Result<Vec<WorkspaceRateLimit>, String>>>,
    /// The spend limits as last read, or the API's refusal; `None` until they were read (an
    /// answer is stored, so a restart keeps it; a refusal is asked again).
    pub spend_limits: Option<Arc<Result<Vec<SpendLimit>, ApiError>>>,
    /// The organization's rate limits as last read (`None` likewise).
    pub org_rate_limits: Option<Arc<Result<Vec<OrgRateLimit>, ApiError>>>,
    /// People who were members and left, with when: they keep their name everywhere.
    pub former: Arc<HashMap<String, Former>>,
    /// When the model was last complete; `None` until the first sync finished.
    pub synced_at: Option<DateTime<Utc>>,
    /// Derived: where each workspace's memberships lie in `memberships`, which are kept
    /// grouped by workspace so that a workspace's members are a slice, not a second copy.
    by_workspace: HashMap<crate::anthropic::Shared, std::ops::Range<usize>>,
    /// Derived: each key by its id, without a second copy of the ids.
    key_at: Arc<KeyLookup>,
    /// Derived: each member by their id, without a second copy of the ids.
    user_at: Arc<Lookup<User>>,
    /// What pages derive from this snapshot (name maps, hygiene sets), built by the first page
    /// that needs it and shared until the next change replaces the snapshot.
    derived: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

/// Objects a [`Lookup`] finds by id.
pub trait Identified {
    fn id(&self) -> &str;
}

impl Identified for ApiKey {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for User {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A list's objects by id. Each entry is the shared list and a position (16 bytes), not a
/// copy of the id: with 200,000 keys, maps of id → name held 40–70 MB each.
pub struct Lookup<T> {
    /// The list it indexes: a snapshot whose list did not change keeps its lookup.
    list: Arc<Vec<T>>,
    by_id: std::collections::HashSet<At<T>>,
}

/// The organization's keys by id.
pub type KeyLookup = Lookup<ApiKey>;

impl<T> Default for Lookup<T> {
    fn default() -> Self {
        Lookup {
            list: Arc::default(),
            by_id: std::collections::HashSet::new(),
        }
    }
}

impl<T: Identified> Lookup<T> {
    fn of(list: &Arc<Vec<T>>) -> Lookup<T> {
        Lookup {
            list: list.clone(),
            by_id: (0..list.len())
                .map(|at| At {
                    list: list.clone(),
                    at,
                })
                .collect(),
        }
    }

    /// Whether this lookup indexes exactly `list` (the same list, not an equal one).
    fn indexes(&self, list: &Arc<Vec<T>>) -> bool {
        Arc::ptr_eq(&self.list, list)
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).map(At::object)
    }
}

/// One object: its list and its position there, hashed and compared as the object's id.
struct At<T> {
    list: Arc<Vec<T>>,
    at: usize,
}

impl<T> At<T> {
    fn object(&self) -> &T {
        &self.list[self.at]
    }
}

impl<T: Identified> std::borrow::Borrow<str> for At<T> {
    fn borrow(&self) -> &str {
        self.object().id()
    }
}

impl<T: Identified> std::hash::Hash for At<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the id's own hash, so a lookup by `&str` finds it.
        self.object().id().hash(state);
    }
}

impl<T: Identified> PartialEq for At<T> {
    fn eq(&self, other: &Self) -> bool {
        self.object().id() == other.object().id()
    }
}

impl<T: Identified> Eq for At<T> {}

/// Where each workspace's memberships lie, if every workspace's are contiguous.
fn runs(
    memberships: &[WorkspaceMember],
) -> Option<HashMap<crate::anthropic::Shared, std::ops::Range<usize>>> {
    let mut runs: HashMap<crate::anthropic::Shared, std::ops::Range<usize>> = HashMap::new();
    let mut start = 0;
    for at in 1..=memberships.len() {
        let ends = at == memberships.len()
            || memberships[at].workspace_id != memberships[start].workspace_id;
        if ends {
            let id = memberships[start].workspace_id.clone();
            if runs.insert(id, start..at).is_some() {
                return None;
            }
            start = at;
        }
    }
    Some(runs)
}

/// A person who was a member of the organization.
#[derive(Clone, Debug)]
pub struct Former {
    pub user: User,
    pub removed_at: String,
}

impl Snapshot {
    fn indexed(mut self) -> Self {
        self.by_workspace = match runs(&self.memberships) {
            Some(runs) => runs,
            None => {
                // Lists arrive a workspace at a time; only a merge can interleave them. A
                // stable sort keeps each workspace's members in the order the API gave them.
                let mut grouped = self.memberships.as_ref().clone();
                grouped.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
                self.memberships = Arc::new(grouped);
                runs(&self.memberships).expect("sorted memberships are grouped")
            }
        };
        // A re-read keeps the lists it did not touch, and so their lookups.
        if !self.key_at.indexes(&self.keys) {
            self.key_at = Arc::new(KeyLookup::of(&self.keys));
        }
        if !self.user_at.indexes(&self.users) {
            self.user_at = Arc::new(Lookup::of(&self.users));
        }
        self
    }

    /// The same objects (shared, not copied) with nothing else derived yet: the start of the
    /// snapshot that replaces this one after a re-read.
    fn lists(&self) -> Snapshot {
        Snapshot {
            organization: self.organization.clone(),
            users: self.users.clone(),
            invites: self.invites.clone(),
            workspaces: self.workspaces.clone(),
            default_workspace_id: self.default_workspace_id.clone(),
            memberships: self.memberships.clone(),
            keys: self.keys.clone(),
            rate_limits: self.rate_limits.clone(),
            spend_limits: self.spend_limits.clone(),
            org_rate_limits: self.org_rate_limits.clone(),
            former: self.former.clone(),
            synced_at: self.synced_at,
            by_workspace: HashMap::new(),
            // Rebuilt by `indexed` only if the re-read replaces their list.
            key_at: self.key_at.clone(),
            user_at: self.user_at.clone(),
            derived: Mutex::default(),
        }
    }

    /// `T` derived from this snapshot: built once, then shared by every request.
    pub fn derived<T: Any + Send + Sync>(&self, build: impl FnOnce(&Snapshot) -> T) -> Arc<T> {
        if let Some(value) = self.cached::<T>() {
            return value;
        }
        self.keep(build(self))
    }

    /// `T` if a request already derived it from this snapshot.
    pub fn cached<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let derived = self.derived.lock().expect("derived lock");
        derived
            .get(&TypeId::of::<T>())?
            .clone()
            .downcast::<T>()
            .ok()
    }

    /// Keeps `value` for the rest of this snapshot's life (for values built asynchronously).
    pub fn keep<T: Any + Send + Sync>(&self, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let stored: Arc<dyn Any + Send + Sync> = value.clone();
        self.derived
            .lock()
            .expect("derived lock")
            .insert(TypeId::of::<T>(), stored);
        value
    }

    /// The key with this id, if the organization has it.
    pub fn key(&self, id: &str) -> Option<&ApiKey> {
        self.key_at.get(id)
    }

    /// The keys by id, for what is derived from this snapshot and outlives a borrow of it.
    pub fn key_lookup(&self) -> Arc<KeyLookup> {
        self.key_at.clone()
    }

    /// One workspace's members (none for an unknown workspace).
    pub fn members_of(&self, workspace_id: &str) -> Arc<Vec<WorkspaceMember>> {
        Arc::new(self.members_in(workspace_id).to_vec())
    }

    /// One workspace's members, borrowed (none for an unknown workspace).
    pub fn members_in(&self, workspace_id: &str) -> &[WorkspaceMember] {
        self.by_workspace
            .get(workspace_id)
            .map_or(&[], |run| &self.memberships[run.clone()])
    }

    /// Anyone who is or was a member, by id: (name or email, still a member).
    pub fn person(&self, user_id: &str) -> Option<(&User, bool)> {
        if let Some(user) = self.user_at.get(user_id) {
            return Some((user, true));
        }
        self.former.get(user_id).map(|f| (&f.user, false))
    }
}

/// The differences one sync or one change made, per kind.
#[derive(Default, Debug)]
pub struct Changes {
    pub users: Vec<Diff<User>>,
    pub invites: Vec<Diff<Invite>>,
    pub workspaces: Vec<Diff<Workspace>>,
    pub memberships: Vec<Diff<WorkspaceMember>>,
    pub keys: Vec<Diff<ApiKey>>,
    /// Only from a sync: a re-read replaces the spend limits without comparing them.
    pub spend_limits: Vec<Diff<SpendLimit>>,
    /// Only from a sync, likewise.
    pub rate_limit_overrides: Vec<OverrideChange>,
}

/// A workspace's own value of one rate limiter, changed between two reads (inherited values
/// are not compared: a new usage tier would change every workspace's).
#[derive(Clone, Debug, PartialEq)]
pub struct OverrideChange {
    pub workspace: String,
    pub rate_limit_id: String,
    /// The group as people read it.
    pub group: String,
    /// The limiter type (`requests_per_minute`).
    pub kind: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub observed: bool,
}

type RateLimits = HashMap<String, Result<Vec<WorkspaceRateLimit>, String>>;

/// The overrides that differ between two reads, per workspace both answered for. Changes of
/// Orgkeeper's own (`own` names the workspace) are not observed.
fn override_changes(
    current: &RateLimits,
    fetched: &RateLimits,
    own: &[Touched],
) -> Vec<OverrideChange> {
    type Overrides = BTreeMap<(String, String), (String, u64)>;
    let overrides = |list: &[WorkspaceRateLimit]| -> Overrides {
        list.iter()
            .flat_map(|e| {
                e.limits.iter().filter_map(|l| {
                    let value = l.override_value()?;
                    Some((
                        (e.rate_limit_id.clone(), l.kind.clone()),
                        (e.group.label(), value),
                    ))
                })
            })
            .collect()
    };
    let mut workspaces: Vec<&String> = fetched.keys().collect();
    workspaces.sort();
    let mut out = Vec::new();
    for workspace in workspaces {
        let (Some(Ok(old)), Some(Ok(new))) = (current.get(workspace), fetched.get(workspace))
        else {
            continue;
        };
        let (old, new) = (overrides(old), overrides(new));
        let observed = !own.contains(&Touched::RateLimitsOf(workspace.clone()));
        let limiters: BTreeSet<&(String, String)> = old.keys().chain(new.keys()).collect();
        for limiter in limiters {
            let (before, after) = (old.get(limiter), new.get(limiter));
            if before.map(|b| b.1) == after.map(|a| a.1) {
                continue;
            }
            let group = after.or(before).map(|g| g.0.clone()).unwrap_or_default();
            out.push(OverrideChange {
                workspace: workspace.clone(),
                rate_limit_id: limiter.0.clone(),
                group,
                kind: limiter.1.clone(),
                before: before.map(|b| b.1),
                after: after.map(|a| a.1),
                observed,
            });
        }
    }
    out
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.spend_limits.is_empty()
            && self.rate_limit_overrides.is_empty()
            && self.users.is_empty()
            && self.invites.is_empty()
            && self.workspaces.is_empty()
            && self.memberships.is_empty()
            && self.keys.is_empty()
    }
}

/// What the first sync is doing, for the page people see before it finished.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub step: &'static str,
    pub done: usize,
    pub total: usize,
}

impl Progress {
    fn step(step: &'static str) -> Self {
        Progress {
            step,
            done: 0,
            total: 0,
        }
    }
    fn counting(step: &'static str, done: usize, total: usize) -> Self {
        Progress { step, done, total }
    }
}

/// How current the model is, for the line every organization page shows.
#[derive(Clone, Debug, Default)]
pub struct Freshness {
    pub synced_at: Option<DateTime<Utc>>,
    /// A sync is running, and how far it got.
    pub running: Option<Progress>,
    /// The last sync failed: when, and the plain-language reason (with its request id).
    pub failing: Option<(DateTime<Utc>, String)>,
}

/// How long a mark of what a change or a re-read touched is kept at most.
const MARK_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// `org_objects` kinds of the organization-wide limit lists (kept so pages need no read after
/// a restart).
const SPEND_LIMITS: &str = "spend_limits";
const ORG_RATE_LIMITS: &str = "org_rate_limits";

/// What a change or a re-read touched, when, and whether Orgkeeper changed it.
struct Mark {
    touched: Touched,
    at: DateTime<Utc>,
    own: bool,
    /// Order of marking: a re-read keeps what was marked after it began reading.
    seq: u64,
}

/// The organization model. Reads are cheap clones of `Arc`s; changes go through
/// `crate::service`, which calls the client ([`Org::api`]) and then [`Org::reread`]s.
pub struct Org {
    api: Client,
    db: SqlitePool,
    clock: Clock,
    current: RwLock<Arc<Snapshot>>,
    /// Serializes everything that replaces `current` (syncs and re-reads).
    writer: tokio::sync::Mutex<()>,
    /// What changes made through Orgkeeper, and re-reads for confirmations, touched, when, and
    /// whether it was Orgkeeper's own change (`false` for a confirmation's re-read): see
    /// [`entity::Marks`].
    marks: Mutex<Vec<Mark>>,
    marked: std::sync::atomic::AtomicU64,
    freshness: Mutex<Freshness>,
    /// Told each time `current` is replaced (see [`Org::replaced`]).
    replaced: tokio::sync::Notify,
}

impl Org {
    /// Builds every view pages derive from the current snapshot, so that the first page view
    /// after a change, or after a restart, finds them built instead of building them. On a
    /// blocking thread: for 200,000 keys the key index alone takes most of a second.
    pub async fn warm(&self, rotation_days: u32) {
        let Ok(snapshot) = self.synced() else {
            return;
        };
        let hygiene = self.hygiene(rotation_days).await;
        let built = tokio::task::spawn_blocking(move || {
            keys::Names::of(&snapshot);
            names::ReportNames::of(&snapshot);
            names::Directory::of(&snapshot);
            names::Addresses::of(&snapshot);
            counts::Counts::of(&snapshot);
            members::MemberIndex::of(&snapshot);
            members::WorkspaceMemberOrder::of(&snapshot);
            keys::KeyIndex::of(&snapshot, &hygiene);
        })
        .await;
        if let Err(error) = built {
            tracing::warn!(%error, "the pages' views could not be built ahead; pages build them");
        }
    }

    /// Returns once the model was replaced since the last call returned (replacements in
    /// between count once): for the job that builds the pages' views ahead.
    pub async fn replaced(&self) {
        self.replaced.notified().await
    }

    /// Who held what in `workspace` at `at`, from the history the model keeps (the access
    /// review).
    pub async fn held_at(
        &self,
        workspace: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<store::Held>, sqlx::Error> {
        store::held_at(&self.db, workspace, at).await
    }

    /// When the history starts: the first complete sync.
    pub async fn baseline_at(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(store::load_sync(&self.db).await?.baseline_at)
    }

    /// The model as stored in `db` (empty before the first sync).
    pub async fn load(api: Client, db: SqlitePool, clock: Clock) -> Result<Self, sqlx::Error> {
        let stored = store::load_sync(&db).await?;
        let removed: HashMap<String, String> = store::removed_at(&db).await?.into_iter().collect();
        let former = store::load::<User>(&db, true)
            .await?
            .into_iter()
            .map(|user| {
                let removed_at = removed.get(&user.id).cloned().unwrap_or_default();
                (user.id.clone(), Former { user, removed_at })
            })
            .collect();
        let snapshot = Snapshot {
            organization: stored.organization,
            users: Arc::new(store::load(&db, false).await?),
            invites: Arc::new(store::load(&db, false).await?),
            workspaces: Arc::new(store::load(&db, false).await?),
            default_workspace_id: stored.default_workspace_id,
            memberships: Arc::new(store::load(&db, false).await?),
            keys: Arc::new(store::load(&db, false).await?),
            rate_limits: Arc::new(store::load_rate_limits(&db).await?),
            spend_limits: store::load_limits(&db, SPEND_LIMITS)
                .await?
                .map(|list| Arc::new(Ok(list))),
            org_rate_limits: store::load_limits(&db, ORG_RATE_LIMITS)
                .await?
                .map(|list| Arc::new(Ok(list))),
            former: Arc::new(former),
            synced_at: stored.baseline_at.and(stored.synced_at),
            by_workspace: HashMap::new(),
            key_at: Arc::default(),
            user_at: Arc::default(),
            derived: Mutex::default(),
        }
        .indexed();
        Ok(Org {
            api,
            db,
            clock,
            freshness: Mutex::new(Freshness {
                synced_at: snapshot.synced_at,
                ..Freshness::default()
            }),
            current: RwLock::new(Arc::new(snapshot)),
            writer: tokio::sync::Mutex::new(()),
            marks: Mutex::new(Vec::new()),
            marked: std::sync::atomic::AtomicU64::new(0),
            replaced: tokio::sync::Notify::new(),
        })
    }

    /// The client: for the service layer's changes, and for reads the model does not hold
    /// (reports synced into the usage store, health checks).
    pub fn api(&self) -> &Client {
        &self.api
    }

    /// The model as it is now. Pages take it once and read from it.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("model lock").clone()
    }

    /// The model, or for pages before the first sync finished, an error that says so.
    pub fn synced(&self) -> Result<Arc<Snapshot>, ApiError> {
        let snapshot = self.snapshot();
        match snapshot.synced_at {
            Some(_) => Ok(snapshot),
            None => Err(ApiError::not_synced(self.freshness().failing.map(|f| f.1))),
        }
    }

    pub fn freshness(&self) -> Freshness {
        self.freshness.lock().expect("freshness lock").clone()
    }

    fn progress(&self, progress: Progress) {
        self.freshness.lock().expect("freshness lock").running = Some(progress);
    }

    /// The model is known current at `at` without a complete read: the Activity Feed was read
    /// to its end and what it named was re-read. The line every page shows says so.
    pub fn current_at(&self, at: DateTime<Utc>) {
        let mut freshness = self.freshness.lock().expect("freshness lock");
        freshness.synced_at = Some(at);
        freshness.failing = None;
    }

    /// Records that a sync failed; the model keeps what it had.
    pub fn sync_failed(&self, error: &ApiError) {
        let mut freshness = self.freshness.lock().expect("freshness lock");
        freshness.running = None;
        freshness.failing = Some((self.clock.now(), error.user_message()));
    }

    /// Reads the whole organization from the API (the slow, unlocked part of a sync).
    pub async fn fetch(&self, api: &Client) -> Result<fetch::Fetched, ApiError> {
        let result = fetch::everything(self, api).await;
        if let Err(error) = &result {
            self.sync_failed(error);
        }
        result
    }

    /// Takes a complete read into the model. `record` gets the differences first and must
    /// write the observed ones to the audit log; if it fails, the model stays as it was (so
    /// the next sync sees, and records, the same differences again). `started` is when the
    /// read began: changes made through Orgkeeper since then keep their written-through state.
    pub async fn sync<F, Fut, E>(
        &self,
        fetched: fetch::Fetched,
        started: DateTime<Utc>,
        record: F,
    ) -> Result<Changes, E>
    where
        F: FnOnce(Changes, bool) -> Fut,
        Fut: Future<Output = Result<Changes, E>>,
        E: From<sqlx::Error>,
    {
        let _writer = self.writer.lock().await;
        let current = self.snapshot();
        let baseline = current.synced_at.is_none();
        let (keep, own): (Vec<Touched>, Vec<Touched>) = {
            let marks = self.marks.lock().expect("marks lock");
            // Anything re-read since this sync started reading is newer than its answer; only
            // Orgkeeper's own changes make an earlier difference not observed.
            let keep = marks
                .iter()
                .filter(|m| m.at >= started)
                .map(|m| m.touched.clone());
            let own = marks
                .iter()
                .filter(|m| m.at < started && m.own)
                .map(|m| m.touched.clone());
            (keep.collect(), own.collect())
        };
        let marks = entity::Marks {
            keep: &keep,
            own: &own,
        };
        let mut changes = Changes::default();
        // The baseline is taken as read (the model is empty until it): a difference per
        // object would be a copy of the whole organization, and nothing in it was observed
        // changing; `store::save_baseline` writes it from the lists.
        fn take<T: Entity>(
            baseline: bool,
            current: &[T],
            fetched: Vec<T>,
            marks: &entity::Marks<'_>,
            diffs: &mut Vec<Diff<T>>,
        ) -> Vec<T> {
            if baseline {
                debug_assert!(current.is_empty(), "the model is empty until its baseline");
                return entity::baseline(fetched, marks.keep);
            }
            let (list, found) = entity::merge(current, fetched, marks);
            *diffs = found;
            list
        }
        let users = take(
            baseline,
            &current.users,
            fetched.users,
            &marks,
            &mut changes.users,
        );
        let invites = take(
            baseline,
            &current.invites,
            fetched.invites,
            &marks,
            &mut changes.invites,
        );
        let workspaces = take(
            baseline,
            &current.workspaces,
            fetched.workspaces,
            &marks,
            &mut changes.workspaces,
        );
        let memberships = take(
            baseline,
            &current.memberships,
            fetched.memberships,
            &marks,
            &mut changes.memberships,
        );
        let keys = take(
            baseline,
            &current.keys,
            fetched.keys,
            &marks,
            &mut changes.keys,
        );
        // Spend limits are compared only when both reads answered (a refusal says nothing of
        // them), and never on the baseline.
        let spend_limits = match (current.spend_limits.as_deref(), fetched.spend_limits) {
            (Some(Ok(old)), Ok(new)) => {
                let (list, diffs) = entity::merge(old, new, &marks);
                changes.spend_limits = diffs;
                Ok(list)
            }
            (_, read) => read,
        };
        // A workspace's rate limits re-read since this sync started are newer than its answer.
        let mut rate_limits = fetched.rate_limits;
        for t in &keep {
            if let Touched::RateLimitsOf(workspace) = t {
                if let Some(newer) = current.rate_limits.get(workspace) {
                    rate_limits.insert(workspace.clone(), newer.clone());
                }
            }
        }
        changes.rate_limit_overrides = override_changes(&current.rate_limits, &rate_limits, &own);
        if baseline {
            // The first sync is the baseline: nothing in it was observed changing.
            unobserve(&mut changes);
        }

        let changes = record(changes, baseline).await?;
        let now = self.clock.now();
        store::save_rate_limits(&self.db, &rate_limits).await?;
        store::save_limits(&self.db, SPEND_LIMITS, &spend_limits).await?;
        store::save_limits(&self.db, ORG_RATE_LIMITS, &fetched.org_rate_limits).await?;
        if baseline {
            let lists = store::Lists {
                users: &users,
                invites: &invites,
                workspaces: &workspaces,
                memberships: &memberships,
                keys: &keys,
            };
            let default = fetched.default_workspace_id.as_deref();
            store::save_baseline(&self.db, lists, &fetched.organization, default, now).await?;
        } else {
            store::save(
                &self.db,
                &changes,
                Some((
                    &fetched.organization,
                    fetched.default_workspace_id.as_deref(),
                    false,
                )),
                now,
            )
            .await?;
        }
        let former = with_former(&current.former, &changes, now);
        let next = Snapshot {
            organization: Some(fetched.organization),
            users: Arc::new(users),
            invites: Arc::new(invites),
            workspaces: Arc::new(workspaces),
            default_workspace_id: fetched.default_workspace_id,
            memberships: Arc::new(memberships),
            keys: Arc::new(keys),
            rate_limits: Arc::new(rate_limits),
            spend_limits: Some(Arc::new(spend_limits)),
            org_rate_limits: Some(Arc::new(fetched.org_rate_limits)),
            former,
            synced_at: Some(now),
            by_workspace: HashMap::new(),
            key_at: Arc::default(),
            user_at: Arc::default(),
            derived: Mutex::default(),
        }
        .indexed();
        *self.current.write().expect("model lock") = Arc::new(next);
        self.replaced.notify_one();
        self.marks
            .lock()
            .expect("marks lock")
            .retain(|m| m.at >= started);
        let mut freshness = self.freshness.lock().expect("freshness lock");
        *freshness = Freshness {
            synced_at: Some(now),
            ..Freshness::default()
        };
        Ok(changes)
    }

    /// Notes that a change through Orgkeeper is about to touch (or just touched) these.
    pub fn mark(&self, touched: &[Touched]) {
        self.mark_as(touched, true);
    }

    /// Returns the sequence number of these marks. Marks older than [`MARK_LIFETIME`] go: no
    /// read in flight is that old, and a change of ours is read back long before.
    fn mark_as(&self, touched: &[Touched], own: bool) -> u64 {
        let at = self.clock.now();
        let seq = self
            .marked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let mut marks = self.marks.lock().expect("marks lock");
        marks.retain(|m| at - m.at < MARK_LIFETIME);
        marks.extend(touched.iter().map(|t| Mark {
            touched: t.clone(),
            at,
            own,
            seq,
        }));
        seq
    }

    /// A read of `touched` that began at mark `began` has taken the upstream state: the marks
    /// on those scopes up to then have explained what they could, and from now on a
    /// difference there is somebody else's.
    fn read_back(&self, touched: &[Touched], began: u64) {
        self.marks
            .lock()
            .expect("marks lock")
            .retain(|m| m.seq > began || !touched.contains(&m.touched));
    }

    /// What was marked after `seq`: re-read or changed since a read that began then.
    fn marked_since(&self, seq: u64) -> Vec<Touched> {
        self.marks
            .lock()
            .expect("marks lock")
            .iter()
            .filter(|m| m.seq > seq)
            .map(|m| m.touched.clone())
            .collect()
    }

    /// Re-reads what a change touched and takes it into the model at once. A failure leaves
    /// the model to the next sync.
    pub async fn reread(&self, touched: &[Touched]) -> Result<Changes, ApiError> {
        self.reread_as(&self.api, touched, true, |changes| async {
            Ok::<_, ApiError>(changes)
        })
        .await
    }

    /// Re-reads the target of an irreversible action, so its confirmation shows the current
    /// state. What it finds changed was not done by this re-read: every difference that no
    /// change of Orgkeeper's own explains is observed, and `record` must write it to the
    /// audit log before the model takes it (as a sync's `record` does; if it fails, the model
    /// stays as it was and the next sync sees the same differences). Its marks only keep an
    /// overlapping sync from undoing it; they never make a later difference look like ours.
    pub async fn reread_current<F, Fut, E>(
        &self,
        touched: &[Touched],
        record: F,
    ) -> Result<Changes, E>
    where
        F: FnOnce(Changes) -> Fut,
        Fut: Future<Output = Result<Changes, E>>,
        E: From<ApiError>,
    {
        self.reread_observed(&self.api, touched, record).await
    }

    /// Re-reads what the Activity Feed names, or one slice of the sweep, with `api` (which may
    /// count its calls): like [`Org::reread_current`], every difference no change of
    /// Orgkeeper's own explains is observed, limits included, and `record` writes it first.
    pub async fn reread_observed<F, Fut, E>(
        &self,
        api: &Client,
        touched: &[Touched],
        record: F,
    ) -> Result<Changes, E>
    where
        F: FnOnce(Changes) -> Fut,
        Fut: Future<Output = Result<Changes, E>>,
        E: From<ApiError>,
    {
        self.reread_as(api, touched, false, record).await
    }

    async fn reread_as<F, Fut, E>(
        &self,
        api: &Client,
        touched: &[Touched],
        own: bool,
        record: F,
    ) -> Result<Changes, E>
    where
        F: FnOnce(Changes) -> Fut,
        Fut: Future<Output = Result<Changes, E>>,
        E: From<ApiError>,
    {
        let began = self.mark_as(touched, own);
        let workspaces: Vec<String> = self
            .snapshot()
            .workspaces
            .iter()
            .filter(|w| !w.is_archived())
            .map(|w| w.id.clone())
            .collect();
        // A few at a time, in order (an offboarding preview re-reads each chosen step). Owned
        // inputs: a future borrowing across the stream is not `Send` for every lifetime.
        let workspaces = Arc::new(workspaces);
        let fresh: Vec<fetch::Reread> = stream::iter(touched.to_vec())
            .map(|t| {
                let (api, workspaces) = (api.clone(), Arc::clone(&workspaces));
                async move { fetch::reread(&api, &t, &workspaces).await }
            })
            .buffered(fetch::PARALLEL)
            .try_collect()
            .await?;
        let reads = touched.iter().zip(fresh);
        let _writer = self.writer.lock().await;
        let current = self.snapshot();
        let keep = self.marked_since(began);
        let mut next = current.lists();
        let mut changes = Changes::default();
        // After a change of Orgkeeper's own, limits are only replaced (the change records
        // itself); an observing re-read compares them as a sync does. Each flag says the read
        // found something different: an unchanged answer keeps the snapshot (and everything
        // pages derived from it), which matters when the sweep re-reads all day.
        let (mut spend_read, mut rates_read, mut org_limits_read) = (false, false, false);
        let mut organization_read = false;
        let mut rates_fresh = RateLimits::new();
        for (scope, read) in reads {
            if let Some(organization) = read.organization {
                if next.organization.as_ref() != Some(&organization) {
                    next.organization = Some(organization);
                    organization_read = true;
                }
            }
            if let Some(fresh) = read.spend_limits {
                if !same_answer(current.spend_limits.as_deref(), &fresh) {
                    if let (false, Some(Ok(old)), Ok(new)) =
                        (own, current.spend_limits.as_deref(), &fresh)
                    {
                        let (_, diffs) = entity::replace(old, scope, new.clone(), &[]);
                        changes.spend_limits.extend(diffs);
                    }
                    next.spend_limits = Some(Arc::new(fresh));
                    spend_read = true;
                }
            }
            if let Some((workspace, fresh)) = read.rate_limits {
                if current.rate_limits.get(&workspace) != Some(&fresh) {
                    let mut all = (*next.rate_limits).clone();
                    all.insert(workspace.clone(), fresh.clone());
                    next.rate_limits = Arc::new(all);
                    rates_fresh.insert(workspace, fresh);
                    rates_read = true;
                }
            }
            if let Some(fresh) = read.org_rate_limits {
                if !same_answer(current.org_rate_limits.as_deref(), &fresh) {
                    next.org_rate_limits = Some(Arc::new(fresh));
                    org_limits_read = true;
                }
            }
            if let Some(default) = read.default_workspace_id {
                if next.default_workspace_id != default {
                    next.default_workspace_id = default;
                    organization_read = true;
                }
            }
            take_fresh(
                &mut next.users,
                &mut changes.users,
                scope,
                read.users,
                &keep,
            );
            take_fresh(
                &mut next.invites,
                &mut changes.invites,
                scope,
                read.invites,
                &keep,
            );
            take_fresh(
                &mut next.workspaces,
                &mut changes.workspaces,
                scope,
                read.workspaces,
                &keep,
            );
            take_fresh(
                &mut next.memberships,
                &mut changes.memberships,
                scope,
                read.memberships,
                &keep,
            );
            take_fresh(&mut next.keys, &mut changes.keys, scope, read.keys, &keep);
        }
        if !own {
            // Someone who left the organization left its workspaces too (the sync sees both
            // at once and records one removal; so does this).
            let gone: Vec<String> = changes
                .users
                .iter()
                .filter(|d| d.after.is_none())
                .filter_map(|d| d.before.as_ref().map(|u| u.id.clone()))
                .collect();
            for user in gone {
                let scope = Touched::MembershipsOfUser(user);
                let (list, diffs) = entity::replace(&next.memberships, &scope, Vec::new(), &keep);
                next.memberships = Arc::new(list);
                changes.memberships.extend(diffs);
            }
            let own_marks = self.observe(&mut changes);
            changes.rate_limit_overrides =
                override_changes(&current.rate_limits, &rates_fresh, &own_marks);
        }
        let now = self.clock.now();
        // Before the first sync the model is not complete: keep it empty rather than partial.
        let read_more = spend_read || rates_read || org_limits_read || organization_read;
        let changes = if current.synced_at.is_some() && (!changes.is_empty() || read_more) {
            let changes = record(changes).await?;
            // The organization's name and default workspace, kept for a restart.
            let organization = next
                .organization
                .as_ref()
                .filter(|_| organization_read)
                .map(|o| (o, next.default_workspace_id.as_deref(), false));
            if let Err(error) = store::save(&self.db, &changes, organization, now).await {
                tracing::warn!(%error, "a change could not be written into the stored model");
            }
            if let (true, Some(limits)) = (org_limits_read, &next.org_rate_limits) {
                if let Err(error) = store::save_limits(&self.db, ORG_RATE_LIMITS, limits).await {
                    tracing::warn!(%error, "rate limits could not be written into the stored model");
                }
            }
            if let (true, Some(spend)) = (spend_read, &next.spend_limits) {
                if let Err(error) = store::save_limits(&self.db, SPEND_LIMITS, spend).await {
                    tracing::warn!(%error, "spend limits could not be written into the stored model");
                }
            }
            if rates_read {
                if let Err(error) = store::save_rate_limits(&self.db, &next.rate_limits).await {
                    tracing::warn!(%error, "rate limits could not be written into the stored model");
                }
            }
            next.former = with_former(&current.former, &changes, now);
            *self.current.write().expect("model lock") = Arc::new(next.indexed());
            self.replaced.notify_one();
            changes
        } else {
            changes
        };
        self.read_back(touched, began);
        drop(_writer);
        // Not Orgkeeper's own: this mark only keeps a read that overlapped this one from
        // undoing it, and never makes a later difference look like ours.
        self.mark_as(touched, false);
        Ok(changes)
    }

    /// Marks as observed every difference that no change of Orgkeeper's own touched; returns
    /// what those changes touched.
    fn observe(&self, changes: &mut Changes) -> Vec<Touched> {
        let own: Vec<Touched> = self
            .marks
            .lock()
            .expect("marks lock")
            .iter()
            .filter(|m| m.own)
            .map(|m| m.touched.clone())
            .collect();
        fn set<T: Entity>(diffs: &mut [Diff<T>], own: &[Touched]) {
            for d in diffs {
                let ours = |item: &Option<T>| {
                    item.as_ref()
                        .is_some_and(|item| own.iter().any(|t| item.touched_by(t)))
                };
                d.observed = !(ours(&d.before) || ours(&d.after));
            }
        }
        set(&mut changes.users, &own);
        set(&mut changes.invites, &own);
        set(&mut changes.workspaces, &own);
        set(&mut changes.memberships, &own);
        set(&mut changes.keys, &own);
        set(&mut changes.spend_limits, &own);
        own
    }

    // Reads for pages. Before the first sync finished they answer `not_synced`, which the
    // error page shows as the sync's progress.

    pub async fn organization(&self) -> Result<Arc<Organization>, ApiError> {
        let snapshot = self.synced()?;
        snapshot
            .organization
            .clone()
            .map(Arc::new)
            .ok_or_else(|| ApiError::not_synced(None))
    }

    /// Every member of the organization.
    pub async fn users(&self) -> Result<Arc<Vec<User>>, ApiError> {
        Ok(self.synced()?.users.clone())
    }

    /// Every invite (pending, accepted and expired).
    pub async fn invites(&self) -> Result<Arc<Vec<Invite>>, ApiError> {
        Ok(self.synced()?.invites.clone())
    }

    /// Every workspace, archived ones and the default workspace included.
    pub async fn workspaces(&self) -> Result<Arc<Vec<Workspace>>, ApiError> {
        Ok(self.synced()?.workspaces.clone())
    }

    /// The default workspace's id (`None` when the API does not list it).
    pub async fn default_workspace_id(&self) -> Result<Option<String>, ApiError> {
        Ok(self.synced()?.default_workspace_id.clone())
    }

    pub async fn workspace_members(
        &self,
        workspace_id: &str,
    ) -> Result<Arc<Vec<WorkspaceMember>>, ApiError> {
        Ok(self.synced()?.members_of(workspace_id))
    }

    /// Every API key of the organization.
    pub async fn api_keys(&self) -> Result<Arc<Vec<ApiKey>>, ApiError> {
        Ok(self.synced()?.keys.clone())
    }
}

/// Whether a list read again says what the model holds: the same objects, or a refusal again.
fn same_answer<T: PartialEq>(
    held: Option<&Result<Vec<T>, ApiError>>,
    read: &Result<Vec<T>, ApiError>,
) -> bool {
    match (held, read) {
        (Some(Ok(held)), Ok(read)) => held == read,
        (Some(Err(_)), Err(_)) => true,
        _ => false,
    }
}

/// Replaces what `scope` covers in `list` with what a re-read found, if it read this kind.
fn take_fresh<T: Entity>(
    list: &mut Arc<Vec<T>>,
    diffs: &mut Vec<Diff<T>>,
    scope: &Touched,
    fresh: Option<Vec<T>>,
    keep: &[Touched],
) {
    if let Some(fresh) = fresh {
        let (next, found) = entity::replace(list, scope, fresh, keep);
        *list = Arc::new(next);
        diffs.extend(found);
    }
}

fn unobserve(changes: &mut Changes) {
    macro_rules! unobserve {
        ($($list:ident),*) => {$(
            changes.$list.iter_mut().for_each(|d| d.observed = false);
        )*};
    }
    unobserve!(
        users,
        invites,
        workspaces,
        memberships,
        keys,
        spend_limits,
        rate_limit_overrides
    );
}

/// The former members after `changes`: those removed join, those back leave.
fn with_former(
    former: &Arc<HashMap<String, Former>>,
    changes: &Changes,
    now: DateTime<Utc>,
) -> Arc<HashMap<String, Former>> {
    if changes.users.is_empty() {
        return former.clone();
    }
    let mut next = (**former).clone();
    for diff in &changes.users {
        match (&diff.before, &diff.after) {
            (Some(before), None) => {
                next.insert(
                    before.id.clone(),
                    Former {
                        user: before.clone(),
                        removed_at: crate::db::ts(now),
                    },
                );
            }
            (_, Some(after)) => {
                next.remove(&after.id);
            }
            _ => {}
        }
    }
    Arc::new(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::WorkspaceRole;

    fn member(user: &str, workspace: &str) -> WorkspaceMember {
        WorkspaceMember {
            object_type: "workspace_member".into(),
            user_id: user.into(),
            workspace_id: workspace.into(),
            workspace_role: WorkspaceRole::WorkspaceUser,
        }
    }

    #[test]
    fn a_workspaces_members_are_a_slice_of_the_memberships_in_the_apis_order() {
        // Interleaved (as a merge can leave them): grouped by a stable sort.
        let snapshot = Snapshot {
            memberships: Arc::new(vec![
                member("u2", "wb"),
                member("u1", "wa"),
                member("u3", "wb"),
                member("u4", "wa"),
            ]),
            ..Default::default()
        }
        .indexed();
        let users = |ws: &str| -> Vec<String> {
            snapshot
                .members_in(ws)
                .iter()
                .map(|m| m.user_id.to_string())
                .collect()
        };
        assert_eq!(users("wa"), ["u1", "u4"]);
        assert_eq!(users("wb"), ["u2", "u3"]);
        assert!(snapshot.members_in("wc").is_empty());
        assert_eq!(snapshot.memberships.len(), 4, "nothing is copied twice");
        assert!(runs(&[]).is_some_and(|r| r.is_empty()));
    }

    fn key(id: &str) -> ApiKey {
        serde_json::from_value(serde_json::json!({
            "id": id, "type": "api_key", "name": format!("name of {id}"),
            "status": "active", "created_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn keys_are_found_by_id_and_a_re_read_that_keeps_them_keeps_their_lookup() {
        let snapshot = Snapshot {
            keys: Arc::new(vec![key("apikey_a"), key("apikey_b")]),
            ..Default::default()
        }
        .indexed();
        assert_eq!(snapshot.key("apikey_b").unwrap().name, "name of apikey_b");
        assert!(snapshot.key("apikey_c").is_none());

        let same_keys = snapshot.lists().indexed();
        assert!(Arc::ptr_eq(&snapshot.key_lookup(), &same_keys.key_lookup()));

        let mut new_keys = snapshot.lists();
        new_keys.keys = Arc::new(vec![key("apikey_c")]);
        let new_keys = new_keys.indexed();
        assert!(new_keys.key("apikey_c").is_some());
        assert!(
            new_keys.key("apikey_a").is_none(),
            "not the old list's lookup"
        );
    }

    fn person(id: &str) -> User {
        serde_json::from_value(serde_json::json!({
            "id": id, "type": "user", "email": format!("{id}@example.com"), "name": id,
            "role": "user", "added_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn members_are_found_by_id_and_a_re_read_that_keeps_them_keeps_their_lookup() {
        let snapshot = Snapshot {
            users: Arc::new(vec![person("user_a"), person("user_b")]),
            ..Default::default()
        }
        .indexed();
        assert_eq!(
            snapshot.person("user_b").unwrap().0.email,
            "user_b@example.com"
        );
        assert!(snapshot.person("user_c").is_none());

        let same_people = snapshot.lists().indexed();
        assert!(Arc::ptr_eq(&snapshot.user_at, &same_people.user_at));

        let mut new_people = snapshot.lists();
        new_people.users = Arc::new(vec![person("user_c")]);
        let new_people = new_people.indexed();
        assert!(new_people
            .person("user_c")
            .is_some_and(|(_, member)| member));
        assert!(
            new_people.person("user_a").is_none(),
            "not the old list's lookup"
        );
    }
}
