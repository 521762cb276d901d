//! OpenID Connect sign-in (authorization code with PKCE, `state` and `nonce`), with the
//! `openidconnect` crate doing the protocol: discovery, the token request, and every check of
//! the ID token (signature from the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).
//!
//! A sign-in in progress is kept in memory under its `state`, and the browser that started it
//! carries the same `state` in a cookie, so a callback is accepted only once, only in that
//! browser, and only for ten minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::sso::Identity;
use crate::config::OidcSettings;

/// How long a started sign-in may take at the provider.
const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// Sign-ins in progress kept at once (anyone can start one); the oldest go first.
const MAX_PENDING: usize = 10_000;
/// Discovery and keys are fetched again after this (keys rotate).
const METADATA_TTL: Duration = Duration::from_secs(300);
/// Longest wait for one call to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim of the ID token, so the groups claim can have any configured name.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct AllClaims(serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for AllClaims {}

type GroupsIdToken =
    IdToken<AllClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// Why a sign-in through the provider did not happen. The message is shown to the person.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("The identity provider could not be reached ({0}). Try again in a moment; if it keeps happening, tell whoever runs Orgkeeper.")]
    Unreachable(String),
    #[error("This sign-in was not started in this browser, was already used, or took longer than ten minutes. Start again from the sign-in page.")]
    WrongState,
    #[error("The identity provider did not sign you in: {0}.")]
    ProviderSaid(String),
    #[error("The identity provider refused to complete the sign-in ({0}). Start again from the sign-in page.")]
    CodeRefused(String),
    #[error(
        "The identity provider's answer could not be trusted ({0}), so you were not signed in."
    )]
    InvalidToken(String),
}

impl OidcError {
    /// For the audit record.
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::Unreachable(_) => "provider_unreachable",
            OidcError::WrongState => "wrong_state",
            OidcError::ProviderSaid(_) => "provider_error",
            OidcError::CodeRefused(_) => "code_refused",
            OidcError::InvalidToken(_) => "invalid_id_token",
        }
    }
}

struct Pending {
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    next: String,
    started: DateTime<Utc>,
}

/// A started sign-in: send the browser to `url`, with `state` in its cookie.
pub struct Started {
    pub url: String,
    pub state: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub struct Oidc {
    pub settings: OidcSettings,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        // A redirect would send the client secret and codes wherever it points: never follow.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()?;
        Ok(Self {
            settings,
            http,
            metadata: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Unreachable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unreachable(error_chain(&e)))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let metadata = self.metadata().await?;
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Unreachable(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in that returns to `next` (already checked to be a local path).
    pub async fn start(&self, next: String, now: DateTime<Utc>) -> Result<Started, OidcError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(
                self.settings
                    .scopes
                    .iter()
                    .filter(|s| *s != "openid")
                    .map(|s| Scope::new(s.clone())),
            )
            .set_pkce_challenge(challenge)
            .url();
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|_, p| now - p.started < PENDING_LIFETIME);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                nonce,
                verifier,
                next,
                started: now,
            },
        );
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
        })
    }

    /// Finishes a sign-in: the `state` must be one this browser started (its cookie) and not
    /// used before; the code is exchanged (with the PKCE verifier) and the ID token checked.
    /// Returns who signed in and where they were going.
    pub async fn finish(
        &self,
        cookie_state: Option<&str>,
        callback: Callback,
        now: DateTime<Utc>,
    ) -> Result<(Identity, String), OidcError> {
        let state = callback.state.as_deref().unwrap_or_default();
        let same_browser = cookie_state.is_some_and(|cookie| constant_time_eq(cookie, state));
        // Taken out at once: a callback is good for one try, whatever happens next.
        let pending = same_browser
            .then(|| self.pending.lock().expect("pending lock").remove(state))
            .flatten()
            .filter(|p| now - p.started < PENDING_LIFETIME)
            .ok_or(OidcError::WrongState)?;
        if let Some(error) = callback.error {
            let description = callback
                .error_description
                .map(|d| format!("{error}: {d}"))
                .unwrap_or(error);
            return Err(OidcError::ProviderSaid(description));
        }
        let code = callback
            .code
            .ok_or_else(|| OidcError::CodeRefused("no code in the answer".into()))?;
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Unreachable(e.to_string()))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::CodeRefused(token_error(&e)))?;
        let raw = response
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no ID token in the answer".into()))?
            .to_string();
        let token: GroupsIdToken = raw
            .parse()
            .map_err(|e: serde_json::Error| OidcError::InvalidToken(e.to_string()))?;
        // Expiry is judged by the dashboard's clock (tests move it).
        let verifier = client.id_token_verifier().set_time_fn(move || now);
        let claims = token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| OidcError::InvalidToken(e.to_string()))?;
        let subject = claims.subject().as_str().to_owned();
        let username = claims
            .email()
            .map(|e| e.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| subject.clone());
        let groups = groups_of(
            claims
                .additional_claims()
                .0
                .get(&self.settings.groups_claim),
        );
        Ok((
            Identity {
                provider: "oidc",
                subject,
                username,
                groups,
            },
            pending.next,
        ))
    }
}

/// A groups claim is a list of strings (most providers) or one string.
fn groups_of(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn token_error<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    error: &openidconnect::RequestTokenError<RE, T>,
) -> String {
    match error {
        openidconnect::RequestTokenError::ServerResponse(response) => response.to_string(),
        other => error_chain(other),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
