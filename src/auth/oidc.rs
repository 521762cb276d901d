//! OpenID Connect sign-in (authorization code with PKCE, `state` and `nonce`), with the
//! `openidconnect` crate doing the protocol: discovery, the token request, and every check of
//! the ID token (signature from the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).
//!
//! A sign-in in progress lives with the browser that started it: its `state`, `nonce`, PKCE
//! verifier and destination travel in a short-lived cookie signed with a key only this process
//! knows. Nothing is kept on the server until the callback, so no number of anonymous starts
//! can push out someone else's sign-in. A callback is accepted only in that browser (the
//! cookie's `state` must match), only for ten minutes, and only once (used `state`s are kept
//! until they would have expired anyway).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
/// Used `state`s remembered at once; beyond it the oldest is forgotten (a replay of that one
/// would still fail at the provider, which accepts a code once).
const MAX_USED: usize = 100_000;
/// A destination longer than this is not carried in the cookie (the sign-in goes to `/`).
const MAX_NEXT: usize = 2048;
/// How far ahead of our clock a provider's `iat` may be.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
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

/// A sign-in in progress, as the browser's cookie carries it.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    /// Unix seconds.
    started: i64,
}

/// A started sign-in: send the browser to `url`, with `cookie` as its state cookie's value.
pub struct Started {
    pub url: String,
    pub cookie: String,
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
    /// Signs the state cookies; made at start-up, so a restart ends sign-ins in progress.
    cookie_key: [u8; 32],
    /// `state`s already used, with when their sign-in started.
    used: Mutex<HashMap<String, i64>>,
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
            cookie_key: rand::random(),
            used: Mutex::new(HashMap::new()),
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.cookie_key).expect("HMAC takes any key length")
    }

    /// `payload.signature`, both base64url.
    fn seal(&self, pending: &Pending) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(pending).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The sign-in a cookie carries, if this process signed it.
    fn open(&self, cookie: &str) -> Option<Pending> {
        let (payload, signature) = cookie.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// Marks a sign-in's `state` used; false if it already was.
    fn use_once(&self, pending: &Pending, now: DateTime<Utc>) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let oldest_live = now.timestamp() - PENDING_LIFETIME.num_seconds();
        if used.len() >= MAX_USED {
            used.retain(|_, started| *started >= oldest_live);
        }
        if used.len() >= MAX_USED {
            if let Some(oldest) = used.iter().min_by_key(|(_, s)| **s).map(|(k, _)| k.clone()) {
                used.remove(&oldest);
            }
        }
        used.insert(pending.state.clone(), pending.started)
            .is_none()
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
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: if next.len() <= MAX_NEXT {
                next
            } else {
                "/".to_owned()
            },
            started: now.timestamp(),
        };
        Ok(Started {
            url: url.to_string(),
            cookie: self.seal(&pending),
        })
    }

    /// Finishes a sign-in: the `state` must be one this browser started (its signed cookie)
    /// and not used before; the code is exchanged (with the PKCE verifier) and the ID token
    /// checked. Returns who signed in and where they were going.
    pub async fn finish(
        &self,
        cookie: Option<&str>,
        callback: Callback,
        now: DateTime<Utc>,
    ) -> Result<(Identity, String), OidcError> {
        let state = callback.state.as_deref().unwrap_or_default();
        let pending = cookie
            .and_then(|cookie| self.open(cookie))
            .filter(|p| constant_time_eq(&p.state, state))
            .filter(|p| {
                let age = now.timestamp() - p.started;
                (-60..PENDING_LIFETIME.num_seconds()).contains(&age)
            })
            .ok_or(OidcError::WrongState)?;
        // Used at once: a callback is good for one try, whatever happens next.
        if !self.use_once(&pending, now) {
            return Err(OidcError::WrongState);
        }
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
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
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
        // Expiry and issue time are judged by the dashboard's clock (tests move it). A token
        // issued in the future beyond a little clock skew was not issued for this sign-in.
        let verifier = client
            .id_token_verifier()
            .set_time_fn(move || now)
            .set_issue_time_verifier_fn(move |issued| {
                if issued - now > MAX_CLOCK_SKEW {
                    Err(format!("it was issued in the future ({issued})"))
                } else {
                    Ok(())
                }
            });
        let claims = token
            .claims(&verifier, &Nonce::new(pending.nonce))
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
