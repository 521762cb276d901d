//! The member lists' orders and search text, derived once per snapshot: a page of members
//! (the organization's, or one workspace's) then costs a pass over small integers and the rows
//! it shows, not a sort of everyone.

use std::collections::HashMap;
use std::sync::Arc;

use super::Snapshot;
use crate::anthropic::OrgRole;

/// The member list's search text and its four orders, derived once per snapshot: a page then
/// costs a pass over small integers and the rows it shows, not a sort of every member.
pub struct MemberIndex {
    /// Each member's lower-cased "name\0email", by position in `Snapshot::users`.
    pub haystack: Vec<String>,
    /// Positions sorted by name, email, role and date added (ascending; ties by id).
    by_name: Vec<u32>,
    by_email: Vec<u32>,
    by_role: Vec<u32>,
    by_added: Vec<u32>,
    /// Every role present, for the filter.
    pub roles: Vec<OrgRole>,
}

impl MemberIndex {
    /// Built once per snapshot, shared until the next change.
    pub fn of(snapshot: &Snapshot) -> Arc<MemberIndex> {
        snapshot.derived(MemberIndex::build)
    }

    fn build(snapshot: &Snapshot) -> Self {
        let users = &snapshot.users;
        let lower: Vec<(String, String)> = users
            .iter()
            .map(|u| (u.name.to_lowercase(), u.email.to_lowercase()))
            .collect();
        let order = |key: &dyn Fn(usize) -> String| {
            let mut keyed: Vec<(String, u32)> =
                (0..users.len()).map(|i| (key(i), i as u32)).collect();
            keyed.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| users[a.1 as usize].id.cmp(&users[b.1 as usize].id))
            });
            keyed.into_iter().map(|(_, i)| i).collect::<Vec<u32>>()
        };
        let mut roles: Vec<OrgRole> = Vec::new();
        for user in users.iter() {
            if !roles.contains(&user.role) {
                roles.push(user.role.clone());
            }
        }
        MemberIndex {
            by_name: order(&|i| format!("{}\u{0}{}", lower[i].0, lower[i].1)),
            by_email: order(&|i| lower[i].1.clone()),
            by_role: order(&|i| {
                format!(
                    "{}\u{0}{}",
                    crate::labels::org_role(&users[i].role),
                    lower[i].0
                )
            }),
            by_added: order(&|i| users[i].added_at.to_rfc3339()),
            haystack: lower
                .into_iter()
                .map(|(name, email)| format!("{name}\u{0}{email}"))
                .collect(),
            roles,
        }
    }

    /// Positions in `Snapshot::users` in the order `sort` names (name, email, role, added).
    pub fn order(&self, sort: &str) -> &[u32] {
        match sort {
            "email" => &self.by_email,
            "role" => &self.by_role,
            "added" => &self.by_added,
            _ => &self.by_name,
        }
    }
}

/// Each workspace's members sorted by name (positions in `Snapshot::members_in`), with their
/// lower-cased "name\0email" for the search: derived once per snapshot, so a workspace page
/// costs the rows it shows.
pub struct WorkspaceMemberOrder(pub HashMap<String, (Vec<u32>, Vec<Arc<str>>)>);

impl WorkspaceMemberOrder {
    /// Built once per snapshot, shared until the next change.
    pub fn of(snapshot: &Snapshot) -> Arc<WorkspaceMemberOrder> {
        snapshot.derived(WorkspaceMemberOrder::build)
    }

    fn build(snapshot: &Snapshot) -> Self {
        let mut out = HashMap::new();
        // One search text per person, shared by every workspace they are in: `xlarge` has
        // 250,000 memberships of 50,000 people.
        let mut texts: HashMap<&str, Arc<str>> = HashMap::new();
        for workspace in snapshot.workspaces.iter() {
            let members = snapshot.members_in(&workspace.id);
            let text: Vec<Arc<str>> = members
                .iter()
                .map(|m| {
                    let text = texts.entry(&m.user_id).or_insert_with(|| {
                        match snapshot.person(&m.user_id) {
                            Some((u, _)) => {
                                format!("{}\u{0}{}", u.name.to_lowercase(), u.email.to_lowercase())
                            }
                            None => format!("\u{0}{}", m.user_id.to_lowercase()),
                        }
                        .into()
                    });
                    text.clone()
                })
                .collect();
            let mut order: Vec<u32> = (0..members.len() as u32).collect();
            order.sort_by(|&a, &b| text[a as usize].cmp(&text[b as usize]));
            out.insert(workspace.id.clone(), (order, text));
        }
        WorkspaceMemberOrder(out)
    }
}
