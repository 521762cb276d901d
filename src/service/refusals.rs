//! Refused anonymous requests — forms without a CSRF token, identity headers from untrusted
//! addresses, failed sign-ins — recorded in the audit log under flood control: anyone can send
//! them, so a few per address and a few per minute in all are recorded one by one and the
//! rest are counted into one summary record per minute (see [`FloodGate`]).

use std::time::Duration;

use super::Services;
use crate::audit::{Actor, AuditError, NewEntry, Outcome, Source};
use crate::auth::throttle::FloodGate;

/// Records per address per window, recorded one by one.
const PER_ADDRESS: u64 = 5;
/// Records per window from every address together, per kind of refusal.
const PER_WINDOW: u64 = 100;
/// Addresses tracked at once per kind; further ones share one counted slot (bounded memory).
const ADDRESSES: usize = 4096;
/// The flood-control window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Which flood gate a refusal passes: each kind has its own allowance.
#[derive(Clone, Copy, Debug)]
pub enum Refused {
    Csrf,
    ProxyHeader,
    SignIn,
    /// A request with an unknown, revoked or expired token (the Admin API and SCIM).
    Token,
}

pub struct Refusals {
    csrf: FloodGate,
    proxy_header: FloodGate,
    sign_in: FloodGate,
    token: FloodGate,
}

impl Default for Refusals {
    fn default() -> Self {
        let gate = || FloodGate::new(WINDOW, PER_ADDRESS, PER_WINDOW, ADDRESSES);
        Refusals {
            csrf: gate(),
            proxy_header: gate(),
            sign_in: gate(),
            token: gate(),
        }
    }
}

impl Refusals {
    fn gate(&self, kind: Refused) -> &FloodGate {
        match kind {
            Refused::Csrf => &self.csrf,
            Refused::ProxyHeader => &self.proxy_header,
            Refused::SignIn => &self.sign_in,
            Refused::Token => &self.token,
        }
    }
}

impl Services {
    /// Records a form refused for its missing or wrong CSRF token (flood-controlled).
    pub async fn record_csrf_refusal(
        &self,
        source: Source,
        path: &str,
    ) -> Result<bool, AuditError> {
        let entry = NewEntry::new(
            Actor::named("(unknown)"),
            source,
            crate::audit::Action::CsrfRejected,
            Outcome::Denied,
        )
        .details(serde_json::json!({ "path": path }));
        self.record_refusal(Refused::Csrf, entry).await
    }

    /// Records a refused anonymous request, or only counts it; the summary of an ended window
    /// is written first. Returns whether `entry` itself was written.
    pub async fn record_refusal(&self, kind: Refused, entry: NewEntry) -> Result<bool, AuditError> {
        let address = entry.source.ip.as_deref().unwrap_or("unknown");
        let verdict = self.refusals.gate(kind).admit(address, self.clock.now());
        if let Some(summary) = verdict.summary {
            let source = Source {
                ip: summary.only_address().map(str::to_owned),
                user_agent: None,
            };
            let record = NewEntry::new(
                Actor::named("(unknown)"),
                source,
                entry.action.clone(),
                Outcome::Denied,
            )
            .details(summary.details());
            self.audit.append(record).await?;
        }
        if verdict.record {
            self.audit.append(entry).await?;
        }
        Ok(verdict.record)
    }
}
