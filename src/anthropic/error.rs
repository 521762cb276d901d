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
    /// The call only read (a GET): a refusal is of a request, not of a change.
    read: bool,
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
        // Already redacted text stays as it is: redacting is idempotent.
        let after = &rest[at + MARKER.len()..];
        let after = after
            .strip_prefix(&REDACTED_KEY[MARKER.len()..])
            .unwrap_or(after);
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The placeholder for the configured admin key when it is not `sk-ant-` shaped.
const REDACTED_SECRET: &str = "[redacted]";

/// Shorter secrets are not searched for in upstream text: replacing a few common characters
/// everywhere would garble every answer, and no real admin key is that short.
const MIN_SCRUBBED_SECRET: usize = 8;

/// The one redaction of upstream text, applied at the client boundary: every `sk-ant-…` token
/// (see [`redact_keys`]) and the configured `secret` itself, whatever its shape.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    let text = redact_keys(text);
    if secret.len() >= MIN_SCRUBBED_SECRET && text.contains(secret) {
        text.replace(secret, REDACTED_SECRET)
    } else {
        text
    }
}

/// A successful answer's body with the admin key taken out before anything parses it: an
/// `sk-ant-admin…` token (an admin key never belongs in an answer, whole or cut) or the
/// configured secret. Other `sk-ant-` text stays: API keys' `partial_key_hint`
/// (`sk-ant-api03-R2D...igAA`) is a documented, already redacted field.
pub(crate) fn redact_body(body: bytes::Bytes, secret: &str) -> bytes::Bytes {
    const ADMIN: &str = "sk-ant-admin";
    let Ok(text) = std::str::from_utf8(&body) else {
        return body;
    };
    let holds_secret = secret.len() >= MIN_SCRUBBED_SECRET && text.contains(secret);
    if !holds_secret && !text.contains(ADMIN) {
        return body;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ADMIN) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED_KEY);
        let after = &rest[at + ADMIN.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    if holds_secret {
        out = out.replace(secret, REDACTED_SECRET);
    }
    bytes::Bytes::from(out)
}

/// A request id as Anthropic writes them (`req_` and up to 64 id characters), or nothing: a
/// value of another shape is not shown as a request id (it could be anything an upstream
/// echoed, the key included).
pub(crate) fn request_id_shaped(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let id = raw.strip_prefix("req_")?;
    let shaped = !id.is_empty()
        && raw.len() <= 64
        && !raw.contains("sk-ant")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    shaped.then(|| raw.to_owned())
}

/// An `error.type` or `error_code` as the API writes them (`not_found_error`,
/// `invite_already_exists`), or nothing.
fn code_shaped(raw: String) -> Option<String> {
    let shaped = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    shaped.then_some(raw)
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
            read: false,
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
                env.error.error_type.and_then(code_shaped),
                env.error.message.unwrap_or_default(),
                env.request_id.as_deref().and_then(request_id_shaped),
                env.error
                    .details
                    .and_then(|d| d.error_code)
                    .and_then(code_shaped)
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
            request_id: header_request_id
                .as_deref()
                .and_then(request_id_shaped)
                .or(body_request_id),
            retry_after,
            gave_up_after: None,
            error_code,
            read: false,
        }
    }

    /// The organization model has not finished reading the organization for the first time;
    /// `last_failure` is why the last attempt failed, in plain words, if one did.
    pub fn not_synced(last_failure: Option<String>) -> Self {
        ApiError::new(ApiErrorKind::NotSynced, last_failure.unwrap_or_default())
    }

    pub(crate) fn with_request_id(mut self, request_id: Option<String>) -> Self {
        if self.request_id.is_none() {
            self.request_id = request_id.as_deref().and_then(request_id_shaped);
        }
        self
    }

    /// Marks the failed call as a read (a GET), for how a refusal is told.
    pub(crate) fn during_read(mut self, read: bool) -> Self {
        self.read = read;
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

    /// Every upstream string of the error through [`redact`], and the request id, type and
    /// code dropped if they hold the secret: the client's one exit for errors applies it, so no
    /// `ApiError` outside the client carries the key, whatever field an upstream echoed it in.
    pub(crate) fn scrubbed(mut self, secret: &str) -> Self {
        self.message = redact(&self.message, secret);
        let holds = |text: &str| secret.len() >= MIN_SCRUBBED_SECRET && text.contains(secret);
        if self.request_id.as_deref().is_some_and(holds) {
            self.request_id = None;
        }
        if self.error_type.as_deref().is_some_and(holds) {
            self.error_type = None;
        }
        if self.error_code.as_ref().is_some_and(|c| holds(&c.0)) {
            self.error_code = None;
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

    /// Whether the failed call only read (a GET).
    pub fn is_read(&self) -> bool {
        self.read
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
                "Anthropic's Admin API kept answering with more pages and never finished ({msg}), \
                 which it should not do, so Orgkeeper stopped asking. This is a fault on \
                 Anthropic's side: try again later, and tell Anthropic support if it lasts.{rid}"
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
                _ if self.read => format!("Anthropic refused the request: {msg}.{rid}"),
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

    #[test]
    fn a_key_echoed_in_the_request_id_type_or_code_is_dropped_and_the_message_redacted() {
        let secret = "sk-ant-admin01-ECHOED_secret-123";
        let body = format!(
            r#"{{"type":"error","error":{{"type":"{secret}","message":"bad {secret}","details":{{"error_code":"{secret}"}}}},"request_id":"{secret}"}}"#
        );
        let err =
            ApiError::from_response(400, Some(format!("req_{secret}")), body.as_bytes(), None)
                .scrubbed(secret);
        let every = format!("{err} {err:?} {}", err.user_message());
        assert!(!every.contains("ECHOED"), "{every}");
        assert_eq!(err.request_id(), None);
        assert_eq!(err.error_type(), None);
        assert_eq!(err.error_code(), None);

        // A key of another shape is scrubbed wherever it stands.
        let odd = "plainsecretvalue42";
        let body = format!(
            r#"{{"type":"error","error":{{"type":"x","message":"bad {odd}"}},"request_id":"req_{odd}"}}"#
        );
        let err = ApiError::from_response(400, None, body.as_bytes(), None).scrubbed(odd);
        assert!(!format!("{err:?}").contains(odd));
        assert_eq!(err.request_id(), None);
    }

    #[test]
    fn only_request_ids_shaped_like_anthropics_are_kept() {
        assert_eq!(
            request_id_shaped("req_011CSHoEeqs5C35K2UUqR7Fy").as_deref(),
            Some("req_011CSHoEeqs5C35K2UUqR7Fy")
        );
        for bad in [
            "",
            "req_",
            "abc",
            "req_a b",
            "req_<script>",
            "req_sk-ant-admin01-x",
            &format!("req_{}", "a".repeat(80)),
        ] {
            assert_eq!(request_id_shaped(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_successful_body_loses_admin_keys_but_keeps_api_key_hints() {
        let secret = "sk-ant-admin01-LIVEKEY";
        let body = bytes::Bytes::from(format!(
            r#"{{"name":"{secret}","other":"sk-ant-admin01-CUT","partial_key_hint":"sk-ant-api03-R2D...igAA"}}"#
        ));
        let out = redact_body(body, secret);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.contains("LIVEKEY") && !text.contains("CUT"), "{text}");
        assert!(text.contains("sk-ant-api03-R2D...igAA"), "{text}");
        let plain = bytes::Bytes::from_static(b"{\"name\":\"fine\"}");
        assert_eq!(redact_body(plain.clone(), secret), plain);
        let odd = redact_body(
            bytes::Bytes::from_static(b"{\"n\":\"x plainsecretvalue42 y\"}"),
            "plainsecretvalue42",
        );
        assert_eq!(&odd[..], b"{\"n\":\"x [redacted] y\"}");
    }

    #[test]
    fn a_refused_read_is_a_refused_request_not_a_refused_change() {
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"starting_at is out of range"}}"#;
        let err = ApiError::from_response(400, Some("req_1".into()), body, None).during_read(true);
        assert_eq!(
            err.user_message(),
            "Anthropic refused the request: starting_at is out of range. (request id req_1)"
        );
    }
}
