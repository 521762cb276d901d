//! The Admin API's HTTP contract as a server speaks it, for the two that do: the simulator
//! (standing in for Anthropic) and Orgkeeper's own Admin API for tokens (`crate::api`). The
//! error envelope, query-string parsing (bracketed, repeated array parameters) and ID-cursor
//! pagination (`shared/admin-api.md` §2, §3).

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// An error answered with the documented envelope
/// `{"type":"error","error":{"type":..,"message":..},"request_id":..}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Optional `error.details.error_code` (as in the 2.10.0 SDK's typed errors).
    pub error_code: Option<&'static str>,
    /// Seconds for the `retry-after` header of a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            error_code: None,
            retry_after: None,
        }
    }
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.error_code = Some(code);
        self
    }
    pub fn body(&self, request_id: &str) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        if let Some(code) = self.error_code {
            error["details"] = json!({ "error_code": code });
        }
        json!({ "type": "error", "error": error, "request_id": request_id })
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// RFC 3339 with microseconds, `Z` suffix (object timestamps).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// RFC 3339 with whole seconds (report buckets, page tokens).
pub(crate) fn ts_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The raw query string, parsed with `url::form_urlencoded` so repeated keys survive.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query {
            pairs: raw
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// A single-valued parameter (the last occurrence wins). Empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// An array parameter: every `name[]=` and `name=` occurrence, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        let bracketed = format!("{name}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| *k == name || *k == bracketed)
            .filter(|(_, v)| !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// An array parameter with its empty entries kept (`api_key_ids[]=` means "no key").
    pub fn all_with_empty(&self, name: &str) -> Vec<String> {
        let bracketed = format!("{name}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| *k == name || *k == bracketed)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every parameter but `skip`, in a fixed order: what a page token is bound to.
    pub fn canonical(&self, skip: &str) -> String {
        let mut pairs: Vec<&(String, String)> =
            self.pairs.iter().filter(|(k, _)| k != skip).collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn bool(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("True") | Some("1") => Ok(true),
            Some("false") | Some("False") | Some("0") => Ok(false),
            Some(other) => Err(ApiError::invalid(format!(
                "{name}: Input should be a valid boolean, unable to interpret input '{other}'"
            ))),
        }
    }

    /// `limit` within `1..=max`, `default` when absent.
    pub fn limit(&self, default: usize, max: usize) -> ApiResult<usize> {
        match self.get("limit") {
            None => Ok(default),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 && n as usize <= max => Ok(n as usize),
                Ok(_) => Err(ApiError::invalid(format!(
                    "limit: Input should be greater than or equal to 1 and less than or equal to {max}"
                ))),
                Err(_) => Err(ApiError::invalid(format!(
                    "limit: Input should be a valid integer, unable to parse string as an integer: '{raw}'"
                ))),
            },
        }
    }

    /// Checks every value of an enum-valued parameter.
    pub fn enum_all(&self, name: &str, allowed: &[&str]) -> ApiResult<Vec<String>> {
        let values = self.all(name);
        for v in &values {
            if !allowed.contains(&v.as_str()) {
                return Err(bad_enum(name, v, allowed));
            }
        }
        Ok(values)
    }
}

pub(crate) fn bad_enum(field: &str, value: &str, allowed: &[&str]) -> ApiError {
    let list = allowed
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ");
    ApiError::invalid(format!("{field}: Input should be {list}; got '{value}'"))
}

/// The window of an id-cursor page (§3.1): the items on it, and whether more follow in the
/// direction read. `items` are filtered and in the list's stable order (creation order);
/// `seq_of` gives each one's position key and `cursor_seq` a cursor id's (also of objects that
/// disappeared; unknown: 404).
pub(crate) fn id_window<'a, T>(
    q: &Query,
    items: &'a [T],
    seq_of: impl Fn(&T) -> u64,
    cursor_seq: impl Fn(&str) -> Option<u64>,
) -> ApiResult<(&'a [T], bool)> {
    let limit = q.limit(20, 1000)?;
    let before = q.get("before_id");
    let after = q.get("after_id");
    let resolve = |id: &str| {
        cursor_seq(id).ok_or_else(|| ApiError::not_found(format!("Object not found: {id}")))
    };
    Ok(match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "before_id and after_id cannot be used together",
            ))
        }
        (None, after) => {
            let start = match after {
                Some(id) => {
                    let s = resolve(id)?;
                    items.partition_point(|i| seq_of(i) <= s)
                }
                None => 0,
            };
            let end = (start + limit).min(items.len());
            (&items[start..end], end < items.len())
        }
        (Some(id), None) => {
            let s = resolve(id)?;
            let end = items.partition_point(|i| seq_of(i) < s);
            let start = end.saturating_sub(limit);
            (&items[start..end], start > 0)
        }
    })
}

/// An id-cursor page of `items` as the Admin API answers it (§3.1).
pub(crate) fn id_page<T>(
    q: &Query,
    items: Vec<T>,
    seq_of: impl Fn(&T) -> u64,
    id_of: impl Fn(&T) -> String,
    cursor_seq: impl Fn(&str) -> Option<u64>,
    render: impl Fn(&T) -> Value,
) -> ApiResult<Value> {
    let (page, has_more) = id_window(q, &items, seq_of, cursor_seq)?;
    Ok(json!({
        "data": page.iter().map(&render).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(&id_of),
        "last_id": page.last().map(&id_of),
    }))
}

/// The fields a workspace's create and update bodies may carry.
pub(crate) const WORKSPACE_FIELDS: &[&str] = &[
    "name",
    "display_color",
    "tags",
    "data_residency",
    "external_key_id",
    "user_profile_id",
];

/// A JSON body's fields, refusing fields the endpoint does not take (as the API does).
pub(crate) fn body(bytes: &[u8], allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid("The request body must be a JSON object."));
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "{extra}: Extra inputs are not permitted"
        )));
    }
    Ok(map)
}

/// A string field of a body (`None` when absent or null).
pub(crate) fn text<'a>(map: &'a Map<String, Value>, name: &str) -> ApiResult<Option<&'a str>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!(
            "{name}: Input should be a valid string"
        ))),
    }
}

/// A string field the body must have.
pub(crate) fn required<'a>(map: &'a Map<String, Value>, name: &str) -> ApiResult<&'a str> {
    text(map, name)?.ok_or_else(|| ApiError::invalid(format!("{name}: Field required")))
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case, RFC 7235).
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The credential as the SDKs send it: `x-api-key`, else a bearer token.
pub(crate) fn credential(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| bearer(headers))
}
