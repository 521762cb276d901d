//! The extractors handlers use for paths, query strings and forms: axum's own, with their
//! rejections answered by the application's error page (plain words, inside the layout's
//! style) instead of axum's plain-text 400.

use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

use super::error::AppError;

/// `axum::extract::Path`, refused with a 404 page: a malformed id names nothing here.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query`, refused with a 400 page that says which value is wrong.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// `axum::Form`, refused with a 400 page (or 413 for a body over the limit).
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(AppError))]
pub struct Form<T>(pub T);

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

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::TooLarge;
        }
        AppError::BadRequest(format!(
            "The form could not be read ({}). Nothing was changed; go back and try again.",
            plain(&rejection.body_text())
        ))
    }
}

/// axum's rejection text without its "Failed to deserialize …:" prefix.
fn plain(text: &str) -> String {
    let detail = text.rsplit(": ").next().unwrap_or(text);
    detail.chars().take(200).collect()
}
