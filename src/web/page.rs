//! Rendering a page, and the status of a page that explains an upstream failure: shared by
//! every area.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::error::AppResult;
use crate::anthropic::ApiError;

pub fn render<T: Template>(status: StatusCode, page: &T) -> AppResult<Response> {
    Ok((status, Html(page.render().map_err(anyhow::Error::from)?)).into_response())
}

/// Refusals (the API judged the request) are the person's to fix: 422. Anything else is the
/// upstream failing: 502.
pub fn failure_status(error: &ApiError) -> StatusCode {
    if error.is_refusal() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_GATEWAY
    }
}
