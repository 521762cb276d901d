//! How pages read and show values: dates and months people type, the plain words for roles,
//! links that keep a list's filters, and the pager of every list; dollars are
//! [`crate::money`]. One place, so every page accepts and shows the same forms, and refuses
//! the same way: a sentence that names the field and what it accepts.

use chrono::{NaiveDate, NaiveDateTime};

use crate::anthropic::OrgRole;
#[cfg(test)]
use crate::anthropic::WorkspaceRole;

/// The Primer `Label` modifier for a status or outcome word, the same colour on every page:
/// green when it worked or is live, yellow when it waits or has stopped, red when it failed,
/// grey when it is over.
pub fn label_class(status: impl std::fmt::Display) -> &'static str {
    match status.to_string().as_str() {
        "active" | "ok" | "accepted" | "done" => "Label--success",
        "inactive" | "pending" | "no outcome yet" => "Label--attention",
        "denied" | "failed" => "Label--danger",
        _ => "Label--secondary",
    }
}

/// The first and last day any date field accepts. Far wider than any data Orgkeeper holds,
/// and far inside what date arithmetic can reach (chrono ends at year 262,143).
pub const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
pub const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(2099, 12, 31).expect("valid date");

fn in_range(day: NaiveDate, field: &str) -> Result<NaiveDate, String> {
    if (FIRST_DAY..=LAST_DAY).contains(&day) {
        Ok(day)
    } else {
        Err(format!(
            "The {field} date must be between {FIRST_DAY} and {LAST_DAY}; {day} is outside that."
        ))
    }
}

/// A day typed as `2026-01-31`, within [`FIRST_DAY`]..=[`LAST_DAY`]. `field` names it in the
/// message ("from", "end").
pub fn day(raw: &str, field: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("The {field} date must be a date like 2026-01-31."))?;
    in_range(day, field)
}

/// A moment typed as `2026-11-30T14:00` (seconds optional, `T` or a space), UTC, within the
/// same range; `None` if the text is not of that form.
pub fn moment(raw: &str, field: &str) -> Option<Result<NaiveDateTime, String>> {
    let raw = raw.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|at| in_range(at.date(), field).map(|_| at))
}

/// A month typed as `2026-01`: its first day, within the same range.
pub fn month(raw: &str) -> Result<NaiveDate, String> {
    let first = NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| "The month must look like 2026-01.".to_owned())?;
    in_range(first, "month's first")
}

// ---------------------------------------------------------------------------------------------
// Roles in plain words (the words themselves are `crate::labels`, shared with the audit log)

pub use crate::labels::{org_role, org_role_description, org_role_plural, workspace_role};

/// A role a form may offer: value, label and what it allows.
pub struct RoleChoice {
    pub value: String,
    pub label: String,
    pub description: &'static str,
}

/// The organization roles the Admin API lets anyone give (never `admin`).
pub fn org_role_choices() -> Vec<RoleChoice> {
    OrgRole::KNOWN
        .iter()
        .filter(|r| r.is_assignable_in_console())
        .map(|r| RoleChoice {
            value: r.as_str().to_owned(),
            label: org_role(r),
            description: org_role_description(r),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Links and the pager

/// A query string from the non-empty pairs (trimmed), for links that keep the current filters.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if !value.trim().is_empty() {
            out.append_pair(key, value.trim());
        }
    }
    out.finish()
}

/// `path` with the non-empty pairs as its query string.
pub fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    match query_string(pairs) {
        query if query.is_empty() => path.to_owned(),
        query => format!("{path}?{query}"),
    }
}

/// The most choices a select lists: beyond this (workspaces or keys of a large organization)
/// a page would grow with the organization, so the filter becomes a field to type in.
pub const MOST_CHOICES: usize = 200;

/// Rows per page of every list.
pub const PAGE_SIZE: usize = 50;

/// One page of a list and the links around it.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub first: usize,
    pub last: usize,
    pub previous_link: Option<String>,
    pub next_link: Option<String>,
}

/// A count as pages write it, with thousands separators: 11242 → "11,242".
pub fn count(n: impl Count) -> String {
    super::usage::thousands(n.value())
}

/// What [`count`] takes: the unsigned counts pages hold, by value or by reference.
pub trait Count {
    fn value(&self) -> i64;
}

impl Count for usize {
    fn value(&self) -> i64 {
        i64::try_from(*self).unwrap_or(i64::MAX)
    }
}

impl Count for u64 {
    fn value(&self) -> i64 {
        i64::try_from(*self).unwrap_or(i64::MAX)
    }
}

impl<T: Count> Count for &T {
    fn value(&self) -> i64 {
        (**self).value()
    }
}

impl Pager {
    /// "101–150 of 11,242": the rows shown and how many there are.
    pub fn shown(&self) -> String {
        format!(
            "{}–{} of {}",
            count(self.first),
            count(self.last),
            count(self.total)
        )
    }

    /// Page `requested` (brought within range) of `total` rows; `link(page)` builds the address
    /// of a page with the current filters.
    pub fn new(total: usize, requested: usize, link: impl Fn(usize) -> String) -> Self {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = requested.clamp(1, pages);
        Pager {
            page,
            pages,
            total,
            first: if total == 0 {
                0
            } else {
                (page - 1) * PAGE_SIZE + 1
            },
            last: (page * PAGE_SIZE).min(total),
            previous_link: (page > 1).then(|| link(page - 1)),
            next_link: (page < pages).then(|| link(page + 1)),
        }
    }

    /// An empty list's pager.
    pub fn empty() -> Self {
        Pager::new(0, 1, |_| String::new())
    }

    /// The rows of this page.
    pub fn range(&self) -> std::ops::Range<usize> {
        (self.page - 1) * PAGE_SIZE..self.last
    }
}

/// The name of a field an audit record keeps (before and after a change), in plain words:
/// `amount_cents` → "Amount", `workspace_role` → "Workspace role".
pub fn field_name(name: &str) -> String {
    crate::labels::code(name.strip_suffix("_cents").unwrap_or(name))
}

/// A value an audit record keeps, as people read it: cents as dollars (`150000` → "$1,500.00"),
/// role codes as their labels, whole numbers with thousands separators, yes or no, and "—"
/// for nothing. Ids stay as they are.
pub fn field_value(name: &str, value: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    let text = match value {
        None | Some(Value::Null) => return "—".to_owned(),
        Some(Value::Bool(yes)) => return if *yes { "yes" } else { "no" }.to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return other.to_string(),
    };
    if name.ends_with("_cents") {
        if let Ok(cents) = text.parse::<rust_decimal::Decimal>() {
            return crate::money::dollars(cents);
        }
    }
    if name == "role" || name.ends_with("_role") {
        return crate::labels::code(&text);
    }
    if name != "id" && !name.ends_with("_id") {
        if let Ok(n) = text.parse::<i64>() {
            return super::usage::thousands(n);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_fields_read_as_plain_words_dollars_and_grouped_numbers() {
        use serde_json::json;
        assert_eq!(field_name("amount_cents"), "Amount");
        assert_eq!(field_name("workspace_role"), "Workspace role");
        assert_eq!(
            field_value("amount_cents", Some(&json!("150000"))),
            "$1,500.00"
        );
        assert_eq!(
            field_value("role", Some(&json!("workspace_developer"))),
            "Workspace developer"
        );
        assert_eq!(field_value("value", Some(&json!(11242))), "11,242");
        assert_eq!(field_value("user_id", Some(&json!("11242"))), "11242");
        assert_eq!(field_value("enabled", Some(&json!(true))), "yes");
        assert_eq!(field_value("amount_cents", None), "—");
    }

    #[test]
    fn dates_are_read_within_a_range_that_date_arithmetic_can_reach() {
        assert_eq!(
            day(" 2026-01-31 ", "from"),
            Ok(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap())
        );
        assert_eq!(
            day("-262143-01-01", "from"),
            Err("The from date must be between 2000-01-01 and 2099-12-31; -262143-01-01 is outside that.".into())
        );
        assert!(day("9999-12-31", "to").is_err());
        assert_eq!(
            day("2026-02-30", "to"),
            Err("The to date must be a date like 2026-01-31.".into())
        );
        assert_eq!(
            month("2026-11"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        );
        assert!(month("262143-12").is_err());
        assert!(month("2026-13").is_err());
        assert!(moment("2026-11-30T14:00", "review").unwrap().is_ok());
        assert!(moment("+262143-11-30T14:00", "review").is_none_or(|r| r.is_err()));
        assert!(moment("2026-11-30", "review").is_none());
    }

    #[test]
    fn every_role_reads_as_its_label_says() {
        assert_eq!(org_role(&OrgRole::ClaudeCodeUser), "Claude Code user");
        assert_eq!(
            org_role_plural(&OrgRole::ClaudeCodeUser),
            "Claude Code users"
        );
        assert_eq!(org_role_plural(&OrgRole::Billing), "Billing");
        assert_eq!(
            workspace_role(&WorkspaceRole::WorkspaceRestrictedDeveloper),
            "Workspace limited developer"
        );
        assert!(org_role_choices().iter().all(|c| c.value != "admin"));
    }

    #[test]
    fn counts_are_written_with_thousands_separators() {
        assert_eq!(count(11242usize), "11,242");
        assert_eq!(count(7u64), "7");
        let pager = Pager::new(11242, 3, |p| format!("/x?page={p}"));
        assert_eq!(pager.shown(), "101–150 of 11,242");
    }

    #[test]
    fn a_pager_clamps_the_page_and_links_its_neighbours() {
        let pager = Pager::new(120, 9, |p| format!("/x?page={p}"));
        assert_eq!(
            (pager.page, pager.pages, pager.first, pager.last),
            (3, 3, 101, 120)
        );
        assert_eq!(pager.previous_link.as_deref(), Some("/x?page=2"));
        assert_eq!(pager.next_link, None);
        assert_eq!(pager.range(), 100..120);
        assert_eq!(
            link("/keys", &[("q", " a b "), ("flag", "")]),
            "/keys?q=a+b"
        );
    }
}
