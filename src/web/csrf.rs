//! CSRF protection for every state-changing request, htmx requests included.
//!
//! Synchronizer token: the session holds a random token; forms send it as the `_csrf` field,
//! htmx sends it in the `X-CSRF-Token` header (set once on <body> via hx-headers). Browsers
//! that say a request is cross-site (`Sec-Fetch-Site: cross-site`) are refused outright.
//! SameSite=Strict cookies are a second, independent layer.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use tower_sessions::Session;

use super::error::AppError;
use crate::auth::session::stored_csrf_token;

pub const FIELD: &str = "_csrf";
pub const HEADER: &str = "x-csrf-token";
/// Forms are small; anything larger is not a dashboard form.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// Marker put on the response extensions when a request is refused, so the audit and error
/// layers can say what happened.
#[derive(Clone, Copy, Debug)]
pub struct CsrfRejected;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn protect(request: Request, next: Next) -> Response {
    if is_safe(request.method()) {
        return next.run(request).await;
    }
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let session = request.extensions().get::<Session>().cloned();
    let expected = match &session {
        Some(session) => stored_csrf_token(session).await,
        None => None,
    };
    let header_token = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        // Too large to be a form: say so, rather than blaming the token.
        return axum::response::IntoResponse::into_response(AppError::TooLarge);
    };
    let form_token = is_form
        .then(|| {
            url::form_urlencoded::parse(&bytes)
                .find(|(key, _)| key == FIELD)
                .map(|(_, value)| value.into_owned())
        })
        .flatten();
    // Either carrier may hold the current token: a page swapped in by htmx keeps the <body>
    // header of an older page, while its form fields are fresh.
    let valid = expected.is_some_and(|expected| {
        [header_token, form_token]
            .into_iter()
            .flatten()
            .any(|sent| constant_time_eq(expected.as_bytes(), sent.as_bytes()))
    });
    if cross_site || !valid {
        return rejected();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn rejected() -> Response {
    let mut response = axum::response::IntoResponse::into_response(AppError::CsrfRejected);
    response.extensions_mut().insert(CsrfRejected);
    response
}
