//! Cost centers for chargeback: owners and admins name them and assign API keys, workspaces
//! and people to them; every change is audited between an intent and an outcome record.
//!
//! How a cost line is attributed (one rule, in this order, so every cent goes to exactly one
//! place): the center its **API key** is assigned to; else the center its **workspace** is
//! assigned to; else the center of the **person** it is attributed to; else it is
//! **unallocated**. A key's assignment therefore overrides its workspace's, and a person's
//! overrides neither: it catches what they spend with keys and in workspaces nobody assigned.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::budgets::Month;
use super::{target, Caller, LocalRefusal, ServiceError, Services};
use crate::analytics_store::Select;
use crate::audit::{Action, Outcome};
use crate::auth::Permission;
use crate::org::names::ReportNames;
use crate::usage_store::{next_month, Reads};

/// What a rule assigns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Key,
    Workspace,
    Person,
}

impl RuleKind {
    pub const ALL: [RuleKind; 3] = [RuleKind::Key, RuleKind::Workspace, RuleKind::Person];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Key => "key",
            RuleKind::Workspace => "workspace",
            RuleKind::Person => "person",
        }
    }

    pub fn parse(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How pages and exports name it.
    pub fn label(self) -> &'static str {
        match self {
            RuleKind::Key => "API key",
            RuleKind::Workspace => "Workspace",
            RuleKind::Person => "Person",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Center {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    pub target_id: String,
    pub center_id: i64,
}

/// Every cost center, by name.
pub async fn centers(services: &Services) -> Result<Vec<Center>, ServiceError> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM cost_centers ORDER BY name COLLATE NOCASE")
            .fetch_all(&services.db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Center { id, name })
        .collect())
}

/// Every assignment.
pub async fn rules(services: &Services) -> Result<Vec<Rule>, ServiceError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT kind, target_id, center_id FROM cost_center_rules ORDER BY kind, target_id",
    )
    .fetch_all(&services.db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, target_id, center_id)| {
            Some(Rule {
                kind: RuleKind::parse(&kind)?,
                target_id,
                center_id,
            })
        })
        .collect())
}

/// The rules, indexed for attributing many lines.
#[derive(Default)]
pub struct Rules {
    by: HashMap<(RuleKind, String), i64>,
}

impl Rules {
    pub fn new(rules: &[Rule]) -> Rules {
        Rules {
            by: rules
                .iter()
                .map(|r| ((r.kind, r.target_id.clone()), r.center_id))
                .collect(),
        }
    }

    /// The center a cost line goes to and the rule that sent it there; `None`: unallocated.
    /// `person` is the user the line is attributed to, if any.
    pub fn attribute(
        &self,
        api_key_id: &str,
        workspace_id: &str,
        person: Option<&str>,
    ) -> Option<(i64, RuleKind)> {
        let find = |kind: RuleKind, id: &str| {
            (!id.is_empty())
                .then(|| self.by.get(&(kind, id.to_owned())).map(|c| (*c, kind)))
                .flatten()
        };
        find(RuleKind::Key, api_key_id)
            .or_else(|| find(RuleKind::Workspace, workspace_id))
            .or_else(|| person.and_then(|p| find(RuleKind::Person, p)))
    }
}

/// Why a change to cost centers was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    #[error("a cost center named \"{0}\" already exists")]
    Duplicate(String),
    #[error("that cost center no longer exists")]
    NotFound,
    #[error("{0}")]
    Database(#[from] sqlx::Error),
}

impl LocalRefusal for CenterError {
    fn outcome(&self) -> Outcome {
        match self {
            CenterError::Database(_) => Outcome::Failed,
            _ => Outcome::Denied,
        }
    }
}

/// A center's name as typed, trimmed; or a sentence saying why not.
pub fn check_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Give the cost center a name, for example Research or Marketing.".into());
    }
    if name.chars().count() > 80 {
        return Err("Keep the name to 80 characters or fewer.".into());
    }
    if name.chars().any(char::is_control) {
        return Err("The name cannot contain line breaks or control characters.".into());
    }
    Ok(name.to_owned())
}

/// What an assignment names: its id and how people know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: RuleKind,
    pub id: String,
    pub label: String,
}

/// Finds what was typed in the organization model: a key by id, a workspace by id or name,
/// a person by id or email; or a sentence saying why not.
pub fn resolve(services: &Services, kind: RuleKind, raw: &str) -> Result<Target, String> {
    let typed = raw.trim();
    if typed.is_empty() {
        return Err(match kind {
            RuleKind::Key => "Enter the API key's name or id (apikey_…).",
            RuleKind::Workspace => "Choose a workspace.",
            RuleKind::Person => "Enter the person's email address.",
        }
        .into());
    }
    let snapshot = services.org.snapshot();
    if kind == RuleKind::Key && snapshot.key(typed).is_none() {
        // A key's name is enough when no other key has it; names are not unique, ids are.
        let mut named = snapshot.keys.iter().filter(|k| k.name == typed);
        return match (named.next(), named.next()) {
            (Some(k), None) => Ok(Target {
                kind,
                id: k.id.clone(),
                label: k.name.clone(),
            }),
            (Some(_), Some(_)) => Err(format!(
                "Several API keys are named \"{typed}\": enter the one you mean by its id (apikey_…), shown on the key's page."
            )),
            (None, _) => Err(format!("No API key has the id or name \"{typed}\".")),
        };
    }
    let found = match kind {
        RuleKind::Key => snapshot.key(typed).map(|k| (k.id.clone(), k.name.clone())),
        RuleKind::Workspace => snapshot
            .workspaces
            .iter()
            .find(|w| w.id == typed || w.name.eq_ignore_ascii_case(typed))
            .map(|w| (w.id.clone(), w.name.clone())),
        RuleKind::Person => snapshot
            .users
            .iter()
            .find(|u| u.id == typed || u.email.eq_ignore_ascii_case(typed))
            .map(|u| (u.id.clone(), u.email.clone())),
    };
    found
        .map(|(id, label)| Target { kind, id, label })
        .ok_or_else(|| match kind {
            RuleKind::Key => format!("No API key has the id \"{typed}\"."),
            RuleKind::Workspace => format!("No workspace is called \"{typed}\"."),
            RuleKind::Person => format!("No member has the email address \"{typed}\"."),
        })
}

async fn name_of(services: &Services, id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM cost_centers WHERE id = ?")
        .bind(id)
        .fetch_optional(&services.db)
        .await
}

fn center_target(id: i64, name: &str) -> Option<crate::audit::Target> {
    target("cost_center", id.to_string(), Some(name.to_owned()))
}

/// A write refused because another center has the name is a refusal, not a failure.
fn taken(e: sqlx::Error, name: &str) -> CenterError {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            CenterError::Duplicate(name.to_owned())
        }
        e => e.into(),
    }
}

/// Creates a cost center. `name` has passed [`check_name`].
pub async fn create(
    services: &Services,
    caller: &Caller,
    name: &str,
) -> Result<Result<Center, CenterError>, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let now = crate::db::ts(services.clock.now());
    let insert = async {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cost_centers (name, created_at) VALUES (?, ?) RETURNING id",
        )
        .bind(name)
        .bind(&now)
        .fetch_one(&services.db)
        .await
        .map_err(|e| taken(e, name))?;
        Ok(Center {
            id,
            name: name.to_owned(),
        })
    };
    Ok(services
        .local_change(
            caller,
            Action::CostCenterCreated,
            target("cost_center", "new", Some(name.to_owned())),
            json!({ "name": name }),
            insert,
            |c: &Center| center_target(c.id, &c.name),
        )
        .await?)
}

/// Renames a cost center. `name` has passed [`check_name`].
pub async fn rename(
    services: &Services,
    caller: &Caller,
    id: i64,
    name: &str,
) -> Result<Result<(), CenterError>, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let before = name_of(services, id).await?;
    let change = async {
        if before.is_none() {
            return Err(CenterError::NotFound);
        }
        sqlx::query("UPDATE cost_centers SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&services.db)
            .await
            .map_err(|e| taken(e, name))?;
        Ok(())
    };
    Ok(services
        .local_change(
            caller,
            Action::CostCenterRenamed,
            center_target(id, before.as_deref().unwrap_or(name)),
            json!({ "before": { "name": before }, "after": { "name": name } }),
            change,
            |_| center_target(id, name),
        )
        .await?)
}

/// Deletes a cost center and its assignments (what they covered becomes unallocated).
pub async fn delete(
    services: &Services,
    caller: &Caller,
    id: i64,
) -> Result<Result<(), CenterError>, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let before = name_of(services, id).await?;
    let assignments: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, target_id FROM cost_center_rules WHERE center_id = ? ORDER BY kind, target_id")
            .bind(id)
            .fetch_all(&services.db)
            .await?;
    let change = async {
        if before.is_none() {
            return Err(CenterError::NotFound);
        }
        let mut tx = crate::db::write_tx(&services.db).await?;
        sqlx::query("DELETE FROM cost_center_rules WHERE center_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM cost_centers WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    };
    let removed: Vec<_> = assignments
        .iter()
        .map(|(kind, id)| json!({ "kind": kind, "target_id": id }))
        .collect();
    Ok(services
        .local_change(
            caller,
            Action::CostCenterDeleted,
            center_target(id, before.as_deref().unwrap_or("")),
            json!({ "name": before, "assignments_removed": removed }),
            change,
            |_| None,
        )
        .await?)
}

/// Assigns a key, workspace or person to a center (moving it from another one if needed).
pub async fn assign(
    services: &Services,
    caller: &Caller,
    center_id: i64,
    what: &Target,
) -> Result<Result<(), CenterError>, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let center = name_of(services, center_id).await?;
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT c.name FROM cost_center_rules r JOIN cost_centers c ON c.id = r.center_id \
         WHERE r.kind = ? AND r.target_id = ?",
    )
    .bind(what.kind.as_str())
    .bind(&what.id)
    .fetch_optional(&services.db)
    .await?;
    let now = crate::db::ts(services.clock.now());
    let change = async {
        if center.is_none() {
            return Err(CenterError::NotFound);
        }
        sqlx::query(
            "INSERT INTO cost_center_rules (kind, target_id, center_id, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (kind, target_id) DO UPDATE SET center_id = excluded.center_id, created_at = excluded.created_at",
        )
        .bind(what.kind.as_str())
        .bind(&what.id)
        .bind(center_id)
        .bind(&now)
        .execute(&services.db)
        .await?;
        Ok(())
    };
    Ok(services
        .local_change(
            caller,
            Action::CostCenterAssigned,
            center_target(center_id, center.as_deref().unwrap_or("")),
            json!({
                "kind": what.kind.as_str(),
                "target_id": what.id,
                "target_name": what.label,
                "before": previous,
                "after": center,
            }),
            change,
            |_| None,
        )
        .await?)
}

/// Takes a key, workspace or person out of its center (its cost falls to the next rule).
pub async fn unassign(
    services: &Services,
    caller: &Caller,
    kind: RuleKind,
    target_id: &str,
    label: &str,
) -> Result<Result<(), CenterError>, ServiceError> {
    services
        .require(caller, Permission::ManageOrganization, None)
        .await?;
    let current: Option<(i64, String)> = sqlx::query_as(
        "SELECT c.id, c.name FROM cost_center_rules r JOIN cost_centers c ON c.id = r.center_id \
         WHERE r.kind = ? AND r.target_id = ?",
    )
    .bind(kind.as_str())
    .bind(target_id)
    .fetch_optional(&services.db)
    .await?;
    let (id, name) = current.clone().unwrap_or_default();
    let found = current.is_some();
    let change = async {
        if !found {
            return Err(CenterError::NotFound);
        }
        sqlx::query("DELETE FROM cost_center_rules WHERE kind = ? AND target_id = ?")
            .bind(kind.as_str())
            .bind(target_id)
            .execute(&services.db)
            .await?;
        Ok(())
    };
    Ok(services
        .local_change(
            caller,
            Action::CostCenterUnassigned,
            center_target(id, &name),
            json!({
                "kind": kind.as_str(),
                "target_id": target_id,
                "target_name": label,
                "before": found.then_some(&name),
                "after": null,
            }),
            change,
            |_| None,
        )
        .await?)
}

// ---------------------------------------------------------------------------------------------
// Attribution: what pages and exports read

/// The key of what no center took, in [`Month`] scopes.
pub const UNALLOCATED: &str = "unallocated";

/// Where a month's cost lines come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Per key and person (the analytics store).
    Analytics,
    /// Per workspace only (the cost report): the organization may not read cost per person,
    /// so only workspace assignments count. Anthropic's words.
    Workspaces { refused: String },
}

/// Which lines attribution can use, given the refusal the last refresh saw (if any).
pub async fn source(services: &Services, refused: Option<String>) -> Result<Source, ServiceError> {
    let refused = match refused {
        Some(m) => Some(m),
        None => super::cost::refusal(services).await?,
    };
    Ok(match refused {
        Some(refused) => Source::Workspaces { refused },
        None => Source::Analytics,
    })
}

/// One cost line as attribution sees it.
struct CostLine {
    day: NaiveDate,
    workspace_id: String,
    api_key_id: String,
    /// The user it is attributed to, if a person.
    person: Option<String>,
    amount: Decimal,
}

/// The cost lines of `[from, to)` from `source`.
async fn lines(
    services: &Services,
    from: NaiveDate,
    to: NaiveDate,
    source: &Source,
) -> Result<Vec<CostLine>, ServiceError> {
    Ok(match source {
        Source::Analytics => services
            .analytics
            .lines(&Select {
                from,
                to,
                actor_id: None,
                workspaces: None,
            })
            .await?
            .into_iter()
            .map(|l| CostLine {
                day: l.day,
                person: (l.actor_type == "user_actor").then_some(l.actor_id),
                workspace_id: l.workspace_id,
                api_key_id: l.api_key_id,
                amount: l.amount,
            })
            .collect(),
        Source::Workspaces { .. } => {
            let names = ReportNames::of(&services.org.snapshot());
            crate::usage_store::cost_lines(&services.db, from, to, None)
                .await?
                .into_iter()
                .map(|(day, ws, _, amount)| CostLine {
                    day,
                    workspace_id: names.real_ws(&ws).unwrap_or_else(|| ws.to_string()),
                    api_key_id: String::new(),
                    person: None,
                    amount,
                })
                .collect()
        }
    })
}

/// Each center's (and the unallocated) share of the month starting `start`, as a [`Month`]
/// whose scopes are center ids (and [`UNALLOCATED`]), so budgets' projection applies
/// unchanged. Computed once per store version and set of rules; only the per-center days
/// are kept, not the lines.
pub async fn attributed(
    services: &Services,
    start: NaiveDate,
    source: &Source,
    rules: &[Rule],
) -> Result<Arc<Month>, ServiceError> {
    let key = format!("centers {start} {} {rules:?}", *source == Source::Analytics);
    let index = Rules::new(rules);
    let reads = match source {
        Source::Analytics => Reads::People,
        Source::Workspaces { .. } => Reads::Cost,
    };
    services
        .reports
        .get(&services.usage, reads, key, || async move {
            let end = next_month(start);
            let mut days: BTreeMap<(NaiveDate, String), Decimal> = BTreeMap::new();
            for l in lines(services, start, end, source).await? {
                let scope = index
                    .attribute(&l.api_key_id, &l.workspace_id, l.person.as_deref())
                    .map_or(UNALLOCATED.to_owned(), |(c, _)| c.to_string());
                *days.entry((l.day, scope)).or_default() += l.amount;
            }
            let lines = days
                .into_iter()
                .map(|((day, scope), amount)| (day, scope.into(), "".into(), amount))
                .collect();
            Ok::<_, ServiceError>(Month::new(start, end, lines))
        })
        .await
}

/// One line of a month's chargeback: what one rule of one center matched (unallocated
/// cost: by workspace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The center's name; `None`: unallocated.
    pub center: Option<String>,
    /// The rule that sent the cost there; `None`: unallocated.
    pub rule: Option<RuleKind>,
    /// What it matched: a key, workspace or person id.
    pub matched: (RuleKind, String),
    pub amount: Decimal,
}

/// The chargeback of the month starting `month`: centers by name, then by rule and largest
/// amount; unallocated last.
pub async fn chargeback(
    services: &Services,
    month: NaiveDate,
    source: &Source,
) -> Result<Vec<Charge>, ServiceError> {
    let names: HashMap<i64, String> = centers(services)
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let index = Rules::new(&rules(services).await?);
    type Key = (Option<String>, Option<RuleKind>, (RuleKind, String));
    let mut sums: HashMap<Key, Decimal> = HashMap::new();
    for l in lines(services, month, next_month(month), source).await? {
        let key: Key = match index.attribute(&l.api_key_id, &l.workspace_id, l.person.as_deref()) {
            Some((center, kind)) => {
                let matched = match kind {
                    RuleKind::Key => l.api_key_id,
                    RuleKind::Workspace => l.workspace_id,
                    RuleKind::Person => l.person.unwrap_or_default(),
                };
                let name = names.get(&center).cloned().unwrap_or_default();
                (Some(name), Some(kind), (kind, matched))
            }
            None => (None, None, (RuleKind::Workspace, l.workspace_id)),
        };
        *sums.entry(key).or_default() += l.amount;
    }
    let mut charges: Vec<Charge> = sums
        .into_iter()
        .map(|((center, rule, matched), amount)| Charge {
            center,
            rule,
            matched,
            amount,
        })
        .collect();
    charges.sort_by(|a, b| {
        (
            a.center.is_none(),
            &a.center,
            a.rule.map(RuleKind::as_str),
            b.amount,
            &a.matched.1,
        )
            .cmp(&(
                b.center.is_none(),
                &b.center,
                b.rule.map(RuleKind::as_str),
                a.amount,
                &b.matched.1,
            ))
    });
    Ok(charges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_overrides_its_workspace_and_a_person_overrides_neither() {
        let rules = Rules::new(&[
            Rule {
                kind: RuleKind::Workspace,
                target_id: "wrkspc_a".into(),
                center_id: 1,
            },
            Rule {
                kind: RuleKind::Key,
                target_id: "apikey_k".into(),
                center_id: 2,
            },
            Rule {
                kind: RuleKind::Person,
                target_id: "user_p".into(),
                center_id: 3,
            },
        ]);
        assert_eq!(
            rules.attribute("apikey_k", "wrkspc_a", Some("user_p")),
            Some((2, RuleKind::Key))
        );
        assert_eq!(
            rules.attribute("apikey_other", "wrkspc_a", Some("user_p")),
            Some((1, RuleKind::Workspace))
        );
        assert_eq!(
            rules.attribute("apikey_other", "wrkspc_b", Some("user_p")),
            Some((3, RuleKind::Person))
        );
        assert_eq!(rules.attribute("", "wrkspc_b", None), None);
        assert_eq!(rules.attribute("", "", Some("")), None);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Research "), Ok("Research".into()));
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(81)).is_err());
        assert!(check_name("a\nb").is_err());
    }
}
