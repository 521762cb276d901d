//! The extractors handlers use for paths, query strings and forms: axum's own, with their
//! rejections answered by the application's error page (plain words, inside the layout's
//! style) instead of axum's plain-text 400.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::AppError;

/// `axum::extract::Path`, refused with a 404 page: a malformed id names nothing here.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query`, refused with a 400 page that says which value is wrong.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// An urlencoded form, refused with a 400 page when a value is not text (axum's own form
/// would pass invalid UTF-8 on as replacement characters, for example into a key's name) or
/// does not fit, and with 413 for a body over the limit.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let FormBody(body) = FormBody::from_request(request, state).await?;
        serde_urlencoded::from_str(&body)
            .map(Form)
            .map_err(|error| {
                AppError::BadRequest(format!(
                    "The form could not be read ({}). Nothing was changed; go back and try again.",
                    plain(&error.to_string())
                ))
            })
    }
}

/// A form's urlencoded body as text, for forms with repeated fields (checkbox lists) that
/// handlers read pair by pair; refused like [`Form`] (never axum's plain-text 400).
pub struct FormBody(pub String);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge,
                    _ => AppError::BadRequest(
                        "The form could not be read. Nothing was changed; go back and try again."
                            .into(),
                    ),
                })?;
        let not_text = |field: String| {
            AppError::BadRequest(format!(
                "The {field} field holds characters that are not text (not UTF-8), so nothing was sent or changed. Retype it, or paste it from a plain-text source."
            ))
        };
        if let Some(field) = field_not_text(&bytes) {
            return Err(not_text(field));
        }
        String::from_utf8(bytes.to_vec())
            .map(FormBody)
            .map_err(|_| not_text("(unnamed)".to_owned()))
    }
}

impl FormBody {
    /// The fields in order, repeated ones included (serde_urlencoded cannot collect those).
    pub fn fields(&self) -> FormFields {
        FormFields(
            url::form_urlencoded::parse(self.0.as_bytes())
                .into_owned()
                .collect(),
        )
    }
}

/// A form's fields, read by name.
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    /// The first value of a field, as typed (empty when absent).
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of a repeated field (checkboxes), in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The name of the first field whose name or value does not decode to UTF-8.
fn field_not_text(body: &[u8]) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let (name, value) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let name_text = String::from_utf8(percent_decode(name));
        let value_ok = std::str::from_utf8(&percent_decode(value)).is_ok();
        match name_text {
            Ok(_) if value_ok => None,
            Ok(name) => Some(format!("\"{name}\"")),
            Err(_) => Some("(unnamed)".to_owned()),
        }
    })
}

/// application/x-www-form-urlencoded decoding to bytes: `+` is a space, `%XX` a byte.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match (input[i], hex(input.get(i + 1)), hex(input.get(i + 2))) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 2;
            }
            (other, _, _) => out.push(other),
        }
        i += 1;
    }
    out
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        tracing::debug!(%rejection, "malformed path");
        AppError::NotFound
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(format!(
            "This link has a value Orgkeeper cannot read ({}). Go back and use the page's own filters and links.",
            plain(&rejection.body_text())
        ))
    }
}

/// axum's rejection text without its "Failed to deserialize …:" prefix.
fn plain(text: &str) -> String {
    let detail = text.rsplit(": ").next().unwrap_or(text);
    detail.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_that_is_not_utf8_is_named_and_valid_text_passes() {
        assert_eq!(field_not_text(b"_csrf=abc&name=caf%C3%A9+bar"), None);
        assert_eq!(
            field_not_text(b"_csrf=abc&name=bad%FF%FEname"),
            Some("\"name\"".to_owned())
        );
        assert_eq!(percent_decode(b"a+b%2Fc%zz%4"), b"a b/c%zz%4".to_vec());
    }
}
