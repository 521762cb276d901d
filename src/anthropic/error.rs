//! One error type for every Admin API call.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// What went wrong, broadly. The dashboard decides what to show from this, the HTTP status and
/// [`ApiError::error_type`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The request never got an HTTP answer: DNS, connection refused/reset, TLS. No status.
    Transport,
    /// No complete answer within the connect or request timeout. No status. A change may or may
    /// not have been applied upstream.
    Timeout,
    /// The server answered with a success status but a body that is not the documented JSON.
    MalformedResponse,
    /// The Admin API answered with an error status (4xx/5xx/529); see `status` and `error_type`.
    Api,
    /// A "fetch everything" helper hit its page limit (or a cursor that does not advance), so it
    /// stopped instead of looping forever.
    PaginationLimit,
    /// The client was configured wrongly (e.g. an unusable base URL or key).
    Config,
    /// Not from the API: the local model of the organization has not finished its first sync.
    NotSynced,
}

/// An error from the Admin API client.
///
/// `Display` gives a technical one-liner for logs (never containing the admin key);
/// [`ApiError::user_message`] gives a plain-language sentence for the administrator.
#[derive(Clone, Debug)]
pub struct ApiError {
    kind: ApiErrorKind,
    status: Option<u16>,
    error_type: Option<String>,
    message: String,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    /// For a timeout: the deadline the client gave up at.
    gave_up_after: Option<Duration>,
    /// `error.details.error_code`, when the API sent one (§2.1). Behind one thin pointer:
    /// errors travel in every `Result`, so the type stays small.
    error_code: Option<Box<ErrorCode>>,
}

#[derive(Clone, Debug)]
struct ErrorCode(String);

/// The documented error envelope:
/// `{"type":"error","error":{"type":"not_found_error","message":"…"},"request_id":"req_…"}`.
#[derive(Deserialize)]
struct Envelope {
    error: EnvelopeError,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(rename = "type", default)]
    error_type: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<EnvelopeDetails>,
}

#[derive(Deserialize)]
struct EnvelopeDetails {
    #[serde(default)]
    error_code: Option<String>,
}

/// What an Anthropic key (`sk-ant-` and key characters) becomes in upstream text.
const REDACTED_KEY: &str = "sk-ant-…[redacted]";

/// Replaces every `sk-ant-…` token in `text` with [`REDACTED_KEY`]: the whole key, a
/// truncated copy or another key, so that not even a prefix of a secret an upstream echoes is
/// stored, logged or shown.
pub(crate) fn redact_keys(text: &str) -> String {
    const MARKER: &str = "sk-ant-";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARKER) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED_KEY);
        let after = &rest[at + MARKER.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl ApiError {
    /// Every message passes through here or [`ApiError::from_response`], both of which redact
    /// keys, so an `ApiError` never carries one.
    pub(crate) fn new(kind: ApiErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            status: None,
            error_type: None,
            message: redact_keys(&message.into()),
            request_id: None,
            retry_after: None,
            gave_up_after: None,
            error_code: None,
        }
    }

    /// Builds the error for a non-success HTTP answer. `header_request_id` (the `request-id`
    /// response header) wins over the body's `request_id`. Bodies that are not the documented
    /// envelope (e.g. an HTML page from a proxy) still give a usable error.
    pub(crate) fn from_response(
        status: u16,
        header_request_id: Option<String>,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let envelope = serde_json::from_slice::<Envelope>(body).ok();
        let (error_type, message, body_request_id, error_code) = match envelope {
            Some(env) => (
                env.error.error_type,
                env.error.message.unwrap_or_default(),
                env.request_id,
                env.error
                    .details
                    .and_then(|d| d.error_code)
                    .map(|c| Box::new(ErrorCode(c))),
            ),
            None => (None, String::new(), None, None),
        };
        let message = if message.trim().is_empty() {
            format!("HTTP {status} without an error message")
        } else {
            redact_keys(&message)
        };
        ApiError {
            kind: ApiErrorKind::Api,
            status: Some(status),
            error_type,
            message,
            request_id: header_request_id.or(body_request_id),
            retry_after,
            gave_up_after: None,
            error_code,
        }
    }

    /// The organization model has not finished reading the organization for the first time;
    /// `last_failure` is why the last attempt failed, in plain words, if one did.
    pub fn not_synced(last_failure: Option<String>) -> Self {
        ApiError::new(ApiErrorKind::NotSynced, last_failure.unwrap_or_default())
    }

    pub(crate) fn with_request_id(mut self, request_id: Option<String>) -> Self {
        if self.request_id.is_none() {
            self.request_id = request_id;
        }
        self
    }

    pub(crate) fn with_gave_up_after(mut self, deadline: Duration) -> Self {
        self.gave_up_after = Some(deadline);
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Removes `secret` from the message, should a server or proxy ever echo it back.
    pub(crate) fn scrubbed(mut self, secret: &str) -> Self {
        if !secret.is_empty() && self.message.contains(secret) {
            self.message = self.message.replace(secret, "[redacted]");
        }
        self
    }

    /// Broad category of the failure.
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// HTTP status, when the server answered (`None` for transport failures and timeouts).
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The Admin API's `error.type` (e.g. `not_found_error`), when the body carried one.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    /// The technical message (the Admin API's `error.message`, or a description of the failure).
    /// `error.details.error_code` (§2.1), the machine-readable reason when the API gives one.
    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_ref().map(|c| c.0.as_str())
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `request-id` of the failed call (header first, else the body's `request_id`).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The server's `retry-after`, if it sent one, as the server asked.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// True for 404 `not_found_error`.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// True when the Admin API refused the request itself (4xx other than 401/404/429): the
    /// request reached Anthropic and was judged invalid or not allowed.
    pub fn is_refusal(&self) -> bool {
        matches!(self.status, Some(s) if (400..500).contains(&s) && s != 401 && s != 404 && s != 429)
    }

    /// Whether the failure is transient (429, 5xx, 529, transport, timeout): trying again later
    /// may succeed.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ApiErrorKind::Transport | ApiErrorKind::Timeout => true,
            ApiErrorKind::Api => matches!(self.status, Some(s) if s == 429 || s >= 500),
            _ => false,
        }
    }

    /// A plain-language explanation for a non-technical administrator, including the request id
    /// when there is one so that it can be quoted to Anthropic support.
    pub fn user_message(&self) -> String {
        let rid = match &self.request_id {
            Some(id) => format!(" (request id {id})"),
            None => String::new(),
        };
        let msg = self.message.trim_end_matches('.');
        match self.kind {
            ApiErrorKind::Transport => format!(
                "Orgkeeper could not reach Anthropic's Admin API (a network problem). \
                 Check the server's internet connection and try again.{rid}"
            ),
            ApiErrorKind::Timeout => {
                let when = match self.gave_up_after {
                    Some(limit) => format!("within {}", seconds(limit)),
                    None => "in time".to_owned(),
                };
                format!(
                    "Anthropic's Admin API did not answer {when}. A change you made may or may \
                     not have been applied: refresh the page to check before trying again.{rid}"
                )
            }
            ApiErrorKind::MalformedResponse => format!(
                "Anthropic's Admin API sent an answer Orgkeeper could not understand. \
                 Refresh the page to see the current state; if this keeps happening, \
                 Orgkeeper may need an update.{rid}"
            ),
            ApiErrorKind::PaginationLimit => format!(
                "The list is too long for Orgkeeper to load in one go, so it stopped. \
                 Try narrowing the filters.{rid}"
            ),
            ApiErrorKind::NotSynced if self.message.is_empty() => {
                "Orgkeeper is reading the organization for the first time. This page will be \
                 ready in a moment."
                    .to_owned()
            }
            ApiErrorKind::NotSynced => format!(
                "Orgkeeper has not been able to read the organization yet, so there is nothing \
                 to show. It keeps trying. The last attempt failed: {}",
                self.message
            ),
            ApiErrorKind::Config => format!(
                "Orgkeeper is not configured correctly to talk to Anthropic: {msg}. \
                 Ask the person who runs Orgkeeper to check its settings.{rid}"
            ),
            ApiErrorKind::Api => match (self.status.unwrap_or(0), self.error_type.as_deref()) {
                (401, _) | (_, Some("authentication_error")) => format!(
                    "Anthropic did not accept Orgkeeper's admin key: it may be wrong, revoked or \
                     expired. Ask the person who runs Orgkeeper to check the key.{rid}"
                ),
                (403, _) | (_, Some("permission_error")) => {
                    format!("Orgkeeper's admin key is not allowed to do this: {msg}.{rid}")
                }
                (404, _) | (_, Some("not_found_error")) => format!(
                    "Anthropic could not find that item; it may already have been removed or \
                     renamed. Refresh the page.{rid}"
                ),
                (402, _) | (_, Some("billing_error")) => format!(
                    "Anthropic reported a billing problem with the organization: {msg}.{rid}"
                ),
                (429, _) | (_, Some("rate_limit_error")) => match self.retry_after {
                    Some(wait) => format!(
                        "Anthropic's API is limiting how fast Orgkeeper may call it: the Admin API \
                         asked us to wait {}. Nothing was changed; try again after that.{rid}",
                        seconds(wait)
                    ),
                    None => format!(
                        "Anthropic's API is limiting how fast Orgkeeper may call it; nothing was \
                         changed. Wait a minute and try again.{rid}"
                    ),
                },
                (529, _) | (_, Some("overloaded_error")) => format!(
                    "Anthropic's API is overloaded right now; nothing was changed. Try again in a \
                     few minutes.{rid}"
                ),
                (504, _) | (_, Some("timeout_error")) => format!(
                    "Anthropic's API took too long to process the request. A change may or may \
                     not have been applied: refresh the page to check before trying again.{rid}"
                ),
                (s, _) if s >= 500 => format!(
                    "Anthropic's API had an internal problem. A change may or may not have been \
                     applied: refresh the page to check before trying again.{rid}"
                ),
                _ => format!("The Admin API refused the change: {msg}.{rid}"),
            },
        }
    }
}

/// `15 s`, `0.5 s`: a duration as people read it in a message.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ApiErrorKind::Transport => "transport error",
            ApiErrorKind::Timeout => "timeout",
            ApiErrorKind::MalformedResponse => "malformed response",
            ApiErrorKind::Api => "Admin API error",
            ApiErrorKind::PaginationLimit => "pagination limit",
            ApiErrorKind::Config => "configuration error",
            ApiErrorKind::NotSynced => "not synced yet",
        };
        f.write_str(kind)?;
        if let Some(status) = self.status {
            write!(f, " {status}")?;
        }
        if let Some(t) = &self.error_type {
            write!(f, " {t}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_envelope_is_parsed_and_the_header_request_id_wins() {
        let body = br#"{"type":"error","error":{"type":"not_found_error","message":"The requested resource could not be found."},"request_id":"req_body"}"#;
        let err = ApiError::from_response(404, Some("req_header".into()), body, None);
        assert_eq!(err.kind(), ApiErrorKind::Api);
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.error_type(), Some("not_found_error"));
        assert_eq!(err.request_id(), Some("req_header"));
        assert!(err.is_not_found());
        let err = ApiError::from_response(404, None, body, None);
        assert_eq!(err.request_id(), Some("req_body"));
    }

    #[test]
    fn an_old_envelope_without_request_id_and_a_non_json_body_still_make_an_error() {
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#;
        let err = ApiError::from_response(400, None, body, None);
        assert_eq!(err.error_type(), Some("invalid_request_error"));
        assert_eq!(err.request_id(), None);
        assert!(err.is_refusal());
        assert_eq!(err.user_message(), "The Admin API refused the change: bad.");

        let err = ApiError::from_response(502, None, b"<html>Bad gateway</html>", None);
        assert_eq!(err.status(), Some(502));
        assert_eq!(err.error_type(), None);
        assert!(err.is_transient());
    }

    #[test]
    fn user_messages_are_plain_and_carry_the_request_id() {
        let refused = ApiError::from_response(
            400,
            Some("req_011abc".into()),
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"admin role cannot be assigned."}}"#,
            None,
        );
        assert_eq!(
            refused.user_message(),
            "The Admin API refused the change: admin role cannot be assigned. (request id req_011abc)"
        );
        let overloaded = ApiError::from_response(
            529,
            Some("req_x".into()),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            None,
        );
        let m = overloaded.user_message();
        assert!(m.starts_with("Anthropic's API is overloaded right now; nothing was changed"));
        assert!(m.ends_with("(request id req_x)"));
        let timeout = ApiError::new(ApiErrorKind::Timeout, "timed out");
        assert!(timeout.user_message().contains("did not answer in time"));
    }

    #[test]
    fn display_is_a_technical_one_liner_and_scrubbing_removes_a_leaked_key() {
        let err = ApiError::from_response(
            401,
            Some("req_1".into()),
            br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-admin01-SECRET"}}"#,
            None,
        )
        .scrubbed("sk-ant-admin01-SECRET");
        let shown = err.to_string();
        assert_eq!(
            shown,
            "Admin API error 401 authentication_error: invalid x-api-key sk-ant-…[redacted] (request id req_1)"
        );
        assert!(!format!("{err:?}").contains("SECRET"));
    }

    #[test]
    fn every_key_shaped_token_in_upstream_text_is_redacted_whole() {
        let cases = [
            (
                "invalid x-api-key sk-ant-admin01-abc_DEF-123",
                "invalid x-api-key sk-ant-…[redacted]",
            ),
            (
                "sent sk-ant-admin01-abcdef… (truncated)",
                "sent sk-ant-…[redacted]… (truncated)",
            ),
            (
                "a sk-ant-api03-x, b sk-ant-",
                "a sk-ant-…[redacted], b sk-ant-…[redacted]",
            ),
            ("\"sk-ant-admin01-q\"", "\"sk-ant-…[redacted]\""),
            ("nothing secret here", "nothing secret here"),
            ("sk-ant is not a key", "sk-ant is not a key"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_keys(input), expected, "{input:?}");
        }
        let body = br#"{"type":"error","error":{"type":"permission_error","message":"no: sk-ant-admin01-TOPSECRET"}}"#;
        let err = ApiError::from_response(403, None, body, None);
        assert_eq!(err.message(), "no: sk-ant-…[redacted]");
        let err = ApiError::new(ApiErrorKind::Transport, "GET /x: sk-ant-admin01-TOPSECRET");
        assert!(!err.message().contains("TOPSECRET"));
    }
}
