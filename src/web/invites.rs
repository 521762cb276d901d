//! Invitations to the organization: the list with time left, inviting one person or a pasted
//! list, and deleting a pending invite.
//!
//! Invite creation is never retried (a retry could send a second invitation), and each
//! address is its own audited action so a batch that half succeeds says exactly what happened.

use crate::web::extract::Form;
use crate::web::extract::{Path, Query};
use crate::web::routes::{Access::Needs, Routes};
use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::context::wants_partial;
use super::context::Layout;
use super::error::{AppError, AppResult};
use super::page::render;
use super::present::{self, Pager, RoleChoice};
use super::Ctx;
use crate::anthropic::{Invite, InviteStatus, OrgRole};
use crate::auth::Permission;
use crate::service;

/// More lines than this in one paste are refused before anything is sent.
use crate::service::invites::Invited;
use crate::service::ServiceError;

pub fn routes() -> Routes {
    use Permission::*;
    Routes::new()
        .get("/invites", Needs(ViewDirectory), index)
        .post("/invites", Needs(ManageOrganization), create)
        .get(
            "/invites/{invite_id}/delete",
            Needs(ManageOrganization),
            confirm_delete,
        )
        .post(
            "/invites/{invite_id}/delete",
            Needs(ManageOrganization),
            delete,
        )
}

/// One address of a pasted list, as it was typed and as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pasted {
    /// The entry as typed, for putting back in the box.
    pub raw: String,
    /// The address, when the entry holds something that looks like one.
    pub email: Option<String>,
    /// A display name given with it (`Carol Smith <carol@x.com>`); not sent, only shown.
    pub name: Option<String>,
}

impl Pasted {
    pub fn valid(&self) -> bool {
        self.email.as_deref().is_some_and(valid_email)
    }
}

/// Reads a pasted list the way mail programs write one: entries separated by commas,
/// semicolons, line breaks or spaces; `Name <address>` and `"Last, First" <address>` keep
/// their name; `mailto:` is dropped. Entries that hold no address come back invalid, as typed.
pub fn parse_pasted(text: &str) -> Vec<Pasted> {
    // 1. Split at , ; and line breaks outside quotes and angle brackets.
    let mut chunks = Vec::new();
    let (mut current, mut quoted, mut angled) = (String::new(), false, false);
    for c in text.chars() {
        match c {
            '"' if !angled => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' | ';' | '\n' | '\r' if !quoted && !angled => {
                chunks.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    chunks.push(current);
    // 2. Each chunk: `name <address>`, or addresses separated by spaces (any words that are
    //    not addresses, next to exactly one address, are its name).
    let mut out = Vec::new();
    for chunk in chunks.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        if let (Some(open), Some(close)) = (chunk.find('<'), chunk.rfind('>')) {
            if open < close {
                let email = clean_address(&chunk[open + 1..close]);
                let name = chunk[..open].trim().trim_matches('"').trim();
                out.push(Pasted {
                    raw: chunk.to_owned(),
                    email: (!email.is_empty()).then_some(email),
                    name: (!name.is_empty()).then(|| name.to_owned()),
                });
                continue;
            }
        }
        let words: Vec<&str> = chunk.split_whitespace().collect();
        let addresses: Vec<&str> = words.iter().copied().filter(|w| w.contains('@')).collect();
        match addresses.len() {
            0 => out.push(Pasted {
                raw: chunk.to_owned(),
                email: None,
                name: None,
            }),
            1 => {
                let name: Vec<&str> = words.iter().copied().filter(|w| !w.contains('@')).collect();
                let name = name.join(" ").trim_matches('"').trim().to_owned();
                out.push(Pasted {
                    raw: chunk.to_owned(),
                    email: Some(clean_address(addresses[0])),
                    name: (!name.is_empty()).then_some(name),
                });
            }
            _ => {
                for w in words {
                    out.push(Pasted {
                        raw: w.to_owned(),
                        email: w.contains('@').then(|| clean_address(w)),
                        name: None,
                    });
                }
            }
        }
    }
    out
}

fn clean_address(raw: &str) -> String {
    let a = raw
        .trim()
        .trim_matches(|c| c == '<' || c == '>' || c == '"' || c == '\'');
    a.strip_prefix("mailto:").unwrap_or(a).trim().to_owned()
}

/// What the pasted box holds, before anything is sent: "6 addresses, 1 invalid".
pub struct PastePreview {
    pub entries: Vec<Pasted>,
    /// For each entry, why it would get no new invite ("already a member"), if so.
    pub notes: Vec<Option<&'static str>>,
    /// New addresses: the ones that will be invited.
    pub valid: usize,
    pub invalid: usize,
    pub repeated: usize,
    /// Addresses of members or of pending invites.
    pub taken: usize,
}

impl PastePreview {
    pub fn of(text: &str) -> PastePreview {
        Self::checked(text, |_| None)
    }

    /// Like [`PastePreview::of`], with `taken` saying why an address (lowercased) gets no new
    /// invite: "already a member", "already invited".
    pub fn checked(text: &str, taken: impl Fn(&str) -> Option<&'static str>) -> PastePreview {
        let entries = parse_pasted(text);
        let mut seen = std::collections::HashSet::new();
        let (mut valid, mut invalid, mut repeated, mut known) = (0, 0, 0, 0);
        let mut notes = Vec::with_capacity(entries.len());
        for e in &entries {
            let mut note = None;
            match &e.email {
                Some(email) if valid_email(email) => {
                    let lower = email.to_lowercase();
                    if !seen.insert(lower.clone()) {
                        repeated += 1;
                    } else if let Some(why) = taken(&lower) {
                        note = Some(why);
                        known += 1;
                    } else {
                        valid += 1;
                    }
                }
                _ => invalid += 1,
            }
            notes.push(note);
        }
        PastePreview {
            entries,
            notes,
            valid,
            invalid,
            repeated,
            taken: known,
        }
    }

    /// "6 addresses, 1 invalid, 1 listed twice".
    pub fn summary(&self) -> String {
        let mut parts = vec![if self.valid == 1 {
            "1 address".to_owned()
        } else {
            format!("{} addresses", self.valid)
        }];
        if self.invalid > 0 {
            parts.push(format!("{} invalid", self.invalid));
        }
        if self.repeated > 0 {
            parts.push(format!("{} listed twice", self.repeated));
        }
        if self.taken > 0 {
            parts.push(format!(
                "{} already in the organization or invited",
                self.taken
            ));
        }
        parts.join(", ")
    }
}

pub use crate::service::invites::valid_email;

/// "expires in 3 days", "expires in 5 hours": the time a pending invite has left.
pub fn time_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = expires_at - now;
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if left.num_seconds() <= 0 {
        "expired".into()
    } else if left.num_days() >= 1 {
        format!("expires in {}", plural(left.num_days(), "day"))
    } else if left.num_hours() >= 1 {
        format!("expires in {}", plural(left.num_hours(), "hour"))
    } else if left.num_minutes() >= 1 {
        format!("expires in {}", plural(left.num_minutes(), "minute"))
    } else {
        "expires in less than a minute".into()
    }
}

// ---------------------------------------------------------------------------------------------
// The list

#[derive(Deserialize, Default, Clone)]
pub struct InvitesQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: String,
}

impl InvitesQuery {
    fn status_filter(&self) -> Option<InviteStatus> {
        match self.status.as_str() {
            "pending" | "expiring" => Some(InviteStatus::Pending),
            "accepted" => Some(InviteStatus::Accepted),
            "expired" => Some(InviteStatus::Expired),
            _ => None,
        }
    }

    fn link(&self, page: usize) -> String {
        let page = if page > 1 {
            page.to_string()
        } else {
            String::new()
        };
        let status = if self.status == "expiring" {
            self.status.clone()
        } else {
            self.status_filter()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default()
        };
        present::link(
            "/invites",
            &[("status", &status), ("q", &self.q), ("page", &page)],
        )
    }
}

pub struct InviteRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub pending: bool,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// Time left for pending invites, empty otherwise.
    pub time_left: String,
    /// Pending and expiring within the days the overview warns about: highlighted.
    pub expiring_soon: bool,
}

impl InviteRow {
    fn of(invite: &Invite, now: DateTime<Utc>) -> Self {
        let pending = invite.status == InviteStatus::Pending;
        InviteRow {
            id: invite.id.clone(),
            email: invite.email.clone(),
            role: present::org_role(&invite.role),
            status: invite.status.as_str().to_owned(),
            pending,
            invited_at: invite.invited_at,
            expires_at: invite.expires_at,
            accepted_at: invite.accepted_at,
            time_left: if pending {
                time_left(invite.expires_at, now)
            } else {
                String::new()
            },
            expiring_soon: crate::org::counts::expiring_within(
                invite,
                now,
                crate::org::counts::INVITE_EXPIRING_DAYS,
            ),
        }
    }
}

pub struct InvitesTable {
    pub rows: Vec<InviteRow>,
    pub pager: Pager,
    pub error: Option<String>,
    pub filtered: bool,
    pub can_manage: bool,
}

fn build_table(
    invites: Result<&[Invite], String>,
    query: &InvitesQuery,
    can_manage: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> InvitesTable {
    let filtered = query.status_filter().is_some() || !query.q.trim().is_empty();
    let invites = match invites {
        Ok(invites) => invites,
        Err(error) => {
            return InvitesTable {
                rows: Vec::new(),
                pager: Pager::empty(),
                error: Some(error),
                filtered,
                can_manage,
            }
        }
    };
    let status = query.status_filter();
    let needle = query.q.trim().to_lowercase();
    let mut found: Vec<&Invite> = invites
        .iter()
        .filter(|i| status.as_ref().is_none_or(|s| &i.status == s))
        .filter(|i| {
            query.status != "expiring"
                || crate::org::counts::expiring_within(
                    i,
                    now,
                    crate::org::counts::INVITE_EXPIRING_DAYS,
                )
        })
        .filter(|i| needle.is_empty() || i.email.to_lowercase().contains(&needle))
        .collect();
    // Newest first.
    found.sort_by(|a, b| {
        b.invited_at
            .cmp(&a.invited_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    let pager = Pager::new(found.len(), query.page.parse().unwrap_or(1), |page| {
        query.link(page)
    });
    let rows = found[pager.range()]
        .iter()
        .map(|i| InviteRow::of(i, now))
        .collect();
    InvitesTable {
        rows,
        pager,
        error: None,
        filtered,
        can_manage,
    }
}

/// What the invite forms hold, kept across a refusal so nothing typed is lost.
#[derive(Default)]
pub struct InviteForm {
    pub email: String,
    pub emails: String,
    pub role: String,
    pub error: Option<String>,
    /// Set for a batch: one line per address.
    pub results: Vec<LineResult>,
    pub bulk: bool,
    /// Set when the pasted list was previewed rather than sent.
    pub preview: Option<PastePreview>,
    /// Some addresses were invited and some not: a neutral summary, not an error.
    pub mixed: bool,
}

/// The outcome of one address of a batch.
pub struct LineResult {
    pub email: String,
    /// `invited`, `refused`, `invalid`, `failed` or `repeated` (a line seen earlier in the list).
    pub kind: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "invites/index.html")]
struct IndexPage {
    layout: Layout,
    query: InvitesQuery,
    table: InvitesTable,
    roles: Vec<RoleChoice>,
    form: InviteForm,
    statuses: [(&'static str, &'static str); 4],
}

#[derive(Template)]
#[template(path = "invites/_table.html")]
struct TablePartial {
    table: InvitesTable,
}

const STATUSES: [(&str, &str); 4] = [
    ("pending", "Pending"),
    ("expiring", "Pending, expiring within 3 days"),
    ("accepted", "Accepted"),
    ("expired", "Expired"),
];

async fn render_index(
    ctx: &Ctx,
    headers: Option<&HeaderMap>,
    query: InvitesQuery,
    form: InviteForm,
    status: Option<StatusCode>,
) -> AppResult<Response> {
    let invites = ctx.state.org.invites().await;
    let status = status.unwrap_or(if invites.is_err() {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    });
    let listed = invites
        .as_ref()
        .map(|i| i.as_slice())
        .map_err(|e| e.user_message());
    let table = build_table(
        listed,
        &query,
        ctx.can(Permission::ManageOrganization),
        ctx.state.clock.now(),
    );
    if headers.is_some_and(wants_partial) {
        return render(status, &TablePartial { table });
    }
    let page = IndexPage {
        layout: ctx.layout("Invites", "invites").await,
        query,
        table,
        roles: present::org_role_choices(),
        form,
        statuses: STATUSES,
    };
    render(status, &page)
}

pub async fn index(
    ctx: Ctx,
    headers: HeaderMap,
    Query(query): Query<InvitesQuery>,
) -> AppResult<Response> {
    ctx.require(Permission::ViewDirectory).await?;
    let form = InviteForm {
        role: OrgRole::User.as_str().to_owned(),
        ..Default::default()
    };
    render_index(&ctx, Some(&headers), query, form, None).await
}

// ---------------------------------------------------------------------------------------------
// Inviting

/// The invite page again with the form as typed and why nothing was sent.
async fn refused(ctx: &Ctx, mut form: InviteForm, message: String) -> AppResult<Response> {
    form.error = Some(message);
    let status = Some(StatusCode::UNPROCESSABLE_ENTITY);
    render_index(ctx, None, InvitesQuery::default(), form, status).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    email: Option<String>,
    /// Present when the pasted-list form was used.
    #[serde(default)]
    emails: Option<String>,
    #[serde(default)]
    role: String,
    /// "Check the list" on the pasted-list form: parse and show, send nothing.
    #[serde(default)]
    preview: Option<String>,
}

#[derive(Template)]
#[template(path = "invites/_preview.html")]
struct PreviewPartial<'a> {
    preview: &'a PastePreview,
}

/// Sends one invite as its own audited action.
pub async fn create(ctx: Ctx, Form(input): Form<CreateForm>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let bulk = input.emails.is_some();
    let mut form = InviteForm {
        email: input.email.clone().unwrap_or_default().trim().to_owned(),
        emails: input.emails.clone().unwrap_or_default(),
        role: input.role.clone(),
        bulk,
        ..Default::default()
    };
    if bulk && input.preview.is_some() {
        let addresses = crate::org::names::Addresses::of(&ctx.state.org.snapshot());
        let now = ctx.state.clock.now();
        let preview = PastePreview::checked(&form.emails, |email| addresses.taken(email, now));
        if ctx.client.htmx {
            return render(StatusCode::OK, &PreviewPartial { preview: &preview });
        }
        form.preview = Some(preview);
        return render_index(&ctx, None, InvitesQuery::default(), form, None).await;
    }
    let role = OrgRole::parse(input.role.trim());
    let entries: Vec<Pasted> = if bulk {
        parse_pasted(&form.emails)
    } else {
        vec![Pasted {
            raw: form.email.clone(),
            email: Some(form.email.clone()),
            name: None,
        }]
    };
    let lines: Vec<String> = entries
        .iter()
        .map(|e| e.email.clone().unwrap_or_else(|| e.raw.clone()))
        .collect();
    // One address that is not one is refused whole, without a results list.
    if !bulk && !valid_email(&form.email) && !form.email.is_empty() {
        let message = format!(
            "{:?} is not an email address (one @, a dot in the domain, no spaces). Nothing was sent.",
            form.email
        );
        if service::invites::check_role(&role).is_ok() {
            return refused(&ctx, form, message).await;
        }
    }
    let outcomes =
        match service::invites::create_many(&ctx.state, &ctx.caller(), &lines, &role).await {
            Ok(outcomes) => outcomes,
            Err(ServiceError::Invalid(message)) => return refused(&ctx, form, message).await,
            Err(other) => return Err(other.into()),
        };
    let mut results = Vec::with_capacity(lines.len());
    let mut retry: Vec<String> = Vec::new();
    for ((entry, email), outcome) in entries.iter().zip(&lines).zip(outcomes) {
        let (kind, message) = match outcome {
            Invited::Sent(_) => (
                "invited",
                format!("invited as {}", present::org_role(&role)),
            ),
            Invited::Invalid => (
                "invalid",
                "not an email address (one @, a dot in the domain, no spaces); not sent".into(),
            ),
            Invited::Repeated => (
                "repeated",
                "listed more than once; only the first line was sent".into(),
            ),
            Invited::NotSent(error) if error.is_refusal() => ("refused", error.user_message()),
            Invited::NotSent(error) => ("failed", error.user_message()),
        };
        if kind != "invited" && kind != "repeated" {
            retry.push(entry.raw.clone());
        }
        results.push(LineResult {
            email: email.clone(),
            kind,
            message,
        });
    }
    let invited: Vec<String> = results
        .iter()
        .filter(|r| r.kind == "invited")
        .map(|r| r.email.clone())
        .collect();
    // A repeated line is not a failure worth keeping in the box.
    let failed: Vec<&LineResult> = results
        .iter()
        .filter(|r| r.kind != "invited" && r.kind != "repeated")
        .collect();
    if failed.is_empty() {
        ctx.flash(
            "success",
            format!(
                "Invited {} as {}: {}. Each invite expires in 21 days.",
                if invited.len() == 1 {
                    "1 person".to_owned()
                } else {
                    format!("{} people", invited.len())
                },
                present::org_role(&role),
                invited.join(", ")
            ),
        )
        .await;
        return Ok(Redirect::to("/invites?status=pending").into_response());
    }
    // Only upstream failures with nothing done are a gateway problem; the rest are refusals.
    let status = if invited.is_empty() && failed.iter().all(|r| r.kind == "failed") {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    // Keep only what still needs attention in the fields (as typed); the results say what
    // was done.
    let first_failure = failed.first().map(|r| r.message.clone());
    if bulk {
        form.emails = retry.join("\n");
        let repeated = results.len() - invited.len() - retry.len();
        form.error = Some(format!(
            "{} invited, {} not invited{}. The ones not invited are left in the box to correct.",
            invited.len(),
            retry.len(),
            if repeated > 0 {
                format!(", {repeated} listed twice and skipped")
            } else {
                String::new()
            }
        ));
        form.results = results;
        form.mixed = !invited.is_empty();
    } else {
        form.error = first_failure;
    }
    render_index(&ctx, None, InvitesQuery::default(), form, Some(status)).await
}

// ---------------------------------------------------------------------------------------------
// Deleting

#[derive(Template)]
#[template(path = "invites/delete.html")]
struct DeletePage {
    layout: Layout,
    invite: InviteRow,
    error: Option<String>,
    /// The confirmation could not re-read the invite: it shows the model as last read.
    unchecked: Option<String>,
    /// The invite was deleted outside Orgkeeper: nothing is left to delete.
    gone: Option<String>,
}

async fn find_invite(ctx: &Ctx, invite_id: &str) -> AppResult<Invite> {
    ctx.state
        .org
        .invites()
        .await?
        .iter()
        .find(|i| i.id == invite_id)
        .cloned()
        .ok_or(AppError::NotFound)
}

async fn render_delete(
    ctx: &Ctx,
    invite: &Invite,
    status: StatusCode,
    error: Option<String>,
) -> AppResult<Response> {
    render_delete_checked(ctx, invite, status, error, None, None).await
}

async fn render_delete_checked(
    ctx: &Ctx,
    invite: &Invite,
    status: StatusCode,
    error: Option<String>,
    unchecked: Option<String>,
    gone: Option<String>,
) -> AppResult<Response> {
    let page = DeletePage {
        layout: ctx.layout("Delete invite", "invites").await,
        invite: InviteRow::of(invite, ctx.state.clock.now()),
        error,
        unchecked,
        gone,
    };
    render(status, &page)
}

/// The deletion's confirmation, from the invite as it is now: accepted or deleted meanwhile
/// (outside Orgkeeper) is shown, and recorded in the audit log, instead of offering the button.
pub async fn confirm_delete(ctx: Ctx, Path(invite_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let last_read = find_invite(&ctx, &invite_id).await?;
    let checked = crate::service::sync::check_current(
        &ctx.state,
        &[crate::org::Touched::Invite(invite_id.clone())],
    )
    .await;
    // Anthropic still answers for a deleted invite (status `deleted`) but no longer lists it.
    let (invite, gone) = match find_invite(&ctx, &invite_id).await {
        Ok(invite) if invite.status != InviteStatus::Deleted => (invite, None),
        Ok(_) | Err(AppError::NotFound) => {
            let gone = format!(
                "The invite to {} was deleted outside Orgkeeper (noticed {}, and recorded in the audit log), so there is nothing to delete.",
                last_read.email,
                crate::labels::moment_label(&ctx.state.clock.now())
            );
            (last_read, Some(gone))
        }
        Err(error) => return Err(error),
    };
    render_delete_checked(&ctx, &invite, StatusCode::OK, None, checked.err(), gone).await
}

pub async fn delete(ctx: Ctx, Path(invite_id): Path<String>) -> AppResult<Response> {
    ctx.require(Permission::ManageOrganization).await?;
    let invite = find_invite(&ctx, &invite_id).await?;
    let context = json!({ "role": invite.role.as_str(), "status": invite.status.as_str() });
    let result = service::invites::delete(
        &ctx.state,
        &ctx.caller(),
        &invite.id,
        &invite.email,
        context,
    )
    .await?;
    match result {
        Ok(_) => {
            ctx.flash(
                "success",
                format!(
                    "The invite to {} was deleted; its link no longer works.",
                    invite.email
                ),
            )
            .await;
            Ok(Redirect::to("/invites").into_response())
        }
        Err(error) => {
            // The invite may have been accepted or deleted meanwhile: show the current state.
            let status = super::page::failure_status(&error);
            let fresh = find_invite(&ctx, &invite_id).await.unwrap_or(invite);
            render_delete(&ctx, &fresh, status, Some(error.user_message())).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_need_one_at_a_dotted_domain_and_no_spaces() {
        assert!(valid_email("ada@example.com"));
        assert!(valid_email("<b>x</b>@example.com"));
        for bad in [
            "ada",
            "ada@example",
            "ada@@example.com",
            "a@b@example.com",
            "ada @example.com",
            "@example.com",
            "ada@.com",
            "ada@example.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    fn emails(text: &str) -> Vec<Option<String>> {
        parse_pasted(text).into_iter().map(|p| p.email).collect()
    }

    #[test]
    fn a_pasted_list_splits_on_commas_semicolons_and_whitespace() {
        let some = |e: &str| Some(e.to_owned());
        assert_eq!(
            emails("a@x.com, b@x.com"),
            vec![some("a@x.com"), some("b@x.com")]
        );
        assert_eq!(
            emails("a@x.com;b@x.com ;\n\n  c@x.com\td@x.com\r\ne@x.com"),
            vec![
                some("a@x.com"),
                some("b@x.com"),
                some("c@x.com"),
                some("d@x.com"),
                some("e@x.com")
            ]
        );
        assert_eq!(emails(" \n ,; "), Vec::<Option<String>>::new());
    }

    #[test]
    fn display_names_are_kept_and_not_sent() {
        let list = parse_pasted(
            "Carol Smith <carol@x.com>, \"Hopper, Grace\" <grace@x.com>; Dan Brown dan@x.com, <mailto:eve@x.com>",
        );
        let read: Vec<(Option<&str>, Option<&str>)> = list
            .iter()
            .map(|p| (p.name.as_deref(), p.email.as_deref()))
            .collect();
        assert_eq!(
            read,
            vec![
                (Some("Carol Smith"), Some("carol@x.com")),
                (Some("Hopper, Grace"), Some("grace@x.com")),
                (Some("Dan Brown"), Some("dan@x.com")),
                (None, Some("eve@x.com")),
            ]
        );
        assert!(list.iter().all(Pasted::valid));
        assert_eq!(list[0].raw, "Carol Smith <carol@x.com>");
    }

    #[test]
    fn invalid_entries_come_back_as_typed_and_are_counted_in_the_preview() {
        let list = parse_pasted("not-an-email, a@x.com, bob@nowhere, A@x.com, ;");
        assert_eq!(list[0].raw, "not-an-email");
        assert_eq!(list[0].email, None);
        assert!(!list[2].valid(), "no dot in the domain");
        let preview =
            PastePreview::of("a@x.com, b@x.com; c@x.com\nd@x.com e@x.com, Carol <f@x.com>, oops");
        assert_eq!((preview.valid, preview.invalid), (6, 1));
        assert_eq!(preview.summary(), "6 addresses, 1 invalid");
        let taken = PastePreview::checked("a@x.com, member@x.com, Invited@x.com", |e| match e {
            "member@x.com" => Some("already a member"),
            "invited@x.com" => Some("already has a pending invite"),
            _ => None,
        });
        assert_eq!((taken.valid, taken.taken), (1, 2));
        assert_eq!(
            taken.notes,
            vec![
                None,
                Some("already a member"),
                Some("already has a pending invite")
            ]
        );
        assert_eq!(
            taken.summary(),
            "1 address, 2 already in the organization or invited"
        );
        let repeated = PastePreview::of("a@x.com, A@x.com");
        assert_eq!(repeated.summary(), "1 address, 1 listed twice");
    }

    #[test]
    fn time_left_is_said_in_days_then_hours() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let in_ = |secs| time_left(now + chrono::Duration::seconds(secs), now);
        assert_eq!(in_(3 * 86_400 + 100), "expires in 3 days");
        assert_eq!(in_(86_400 + 5), "expires in 1 day");
        assert_eq!(in_(5 * 3_600 + 30), "expires in 5 hours");
        assert_eq!(in_(30 * 60 + 1), "expires in 30 minutes");
        assert_eq!(in_(-10), "expired");
    }

    #[test]
    fn paging_keeps_the_filters_in_the_link() {
        let query = InvitesQuery {
            status: "pending".into(),
            q: "a b".into(),
            page: String::new(),
        };
        assert_eq!(query.link(2), "/invites?status=pending&q=a+b&page=2");
    }
}
