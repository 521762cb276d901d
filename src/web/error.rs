//! One error type for every handler. The detailed cause is logged; the person sees a plain
//! message. Each variant documents the status it maps to.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::anthropic::{ApiError, ApiErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 303 to the sign-in page (htmx: `HX-Redirect`), remembering where the person was going.
    #[error("not signed in")]
    NotSignedIn { next: Option<String> },
    /// 403: the role does not allow this. The denial is audited by the caller.
    #[error("forbidden")]
    Forbidden,
    /// 403: the CSRF token was missing or wrong, or the request came from another site.
    #[error("CSRF token rejected")]
    CsrfRejected,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 405: a form's address visited (or a page's address posted to).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 414: an address longer than any page of Orgkeeper makes.
    #[error("address too long")]
    UriTooLong,
    /// 400 with a message for the person.
    #[error("{0}")]
    BadRequest(String),
    /// 413: a body larger than any dashboard form.
    #[error("request body too large")]
    TooLarge,
    /// 502: the Admin API answered with an error or not at all; the message explains it in
    /// plain words with its request id. 400 when Anthropic refused a read as invalid.
    #[error("upstream: {0}")]
    Upstream(#[from] ApiError),
    /// 503: the audit record could not be written, so the action was refused (fail closed).
    #[error("audit log unavailable: {0}")]
    AuditUnavailable(String),
    /// 500: anything else; logged with its cause, shown as a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// 500: a handler panicked (a bug); the panic is logged under `reference`, shown here.
    #[error("panicked ({reference})")]
    Panicked { reference: String },
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Internal(error.into())
    }
}

impl From<crate::audit::AuditError> for AppError {
    fn from(error: crate::audit::AuditError) -> Self {
        AppError::AuditUnavailable(error.to_string())
    }
}

impl From<crate::auth::accounts::AccountError> for AppError {
    fn from(error: crate::auth::accounts::AccountError) -> Self {
        use crate::auth::accounts::AccountError as E;
        match error {
            E::Database(e) => AppError::Internal(e.into()),
            E::Other(e) => AppError::Internal(e),
            E::NotFound(_) => AppError::NotFound,
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

impl From<crate::service::ServiceError> for AppError {
    fn from(error: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError as E;
        match error {
            E::Forbidden => AppError::Forbidden,
            E::Invalid(message) | E::Conflict(message) => AppError::BadRequest(message),
            E::NotFound => AppError::NotFound,
            E::Unread(e) => AppError::Upstream(e),
            E::Audit(e) => e.into(),
            E::Database(e) => e.into(),
            E::Internal(e) => AppError::Internal(e),
        }
    }
}

#[derive(Template)]
/// The bare page, for when the layout cannot be built; `web::error_layout` puts the same
/// message inside the normal layout.
#[template(path = "error_bare.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    asset_version: &'static str,
    primer_path: &'static str,
}

impl AppError {
    fn status_title_message(&self) -> (StatusCode, &'static str, String) {
        match self {
            AppError::NotSignedIn { .. } => (StatusCode::SEE_OTHER, "Sign in", String::new()),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your role does not allow this page or action. Ask an owner if you need access.".into(),
            ),
            AppError::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this Orgkeeper. Go back, reload the page and try again; nothing was changed.".into(),
            ),
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing at this address. It may have been removed, or the link is wrong.".into(),
            ),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Not from here",
                "This address takes a form's button, not a visit (or the other way round). Go back and use the page's own buttons and links; nothing was changed.".into(),
            ),
            AppError::UriTooLong => (
                StatusCode::URI_TOO_LONG,
                "Address too long",
                "This address is longer than any Orgkeeper page makes, so it was not read. Go back and use the page's own filters and links.".into(),
            ),
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Cannot do that", message.clone()),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much at once",
                "What was sent is larger than 1 MB, more than any Orgkeeper form holds, so it was not read and nothing was changed. Send a shorter list, or split it.".into(),
            ),
            AppError::Upstream(error) if error.kind() == ApiErrorKind::NotSynced => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Reading the organization",
                error.user_message(),
            ),
            // A read Anthropic judged invalid (a date it does not serve, say) is the request's
            // fault, not a failure of the Admin API.
            AppError::Upstream(error) if error.is_read() && error.is_refusal() => (
                StatusCode::BAD_REQUEST,
                "Anthropic refused the request",
                error.user_message(),
            ),
            AppError::Upstream(error) => (StatusCode::BAD_GATEWAY, "The Admin API did not answer as expected", error.user_message()),
            AppError::AuditUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Action refused",
                "The audit log could not record this action, so it was not carried out. Nothing was changed. Try again, and tell whoever runs Orgkeeper if it keeps happening.".into(),
            ),
            AppError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Orgkeeper hit an unexpected error; it has been logged. Nothing you typed was sent anywhere else.".into(),
            ),
            AppError::Panicked { reference } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                format!("Orgkeeper hit an unexpected error; it has been logged with the reference {reference}. Nothing you typed was sent anywhere else; quote the reference to whoever runs Orgkeeper."),
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::NotSignedIn { next } = &self {
            let target = match next {
                Some(next) => format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                ),
                None => "/login".to_owned(),
            };
            let mut response = Redirect::to(&target).into_response();
            if let Ok(value) = HeaderValue::from_str(&target) {
                response.headers_mut().insert("hx-redirect", value);
            }
            return response;
        }
        match &self {
            AppError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            AppError::Upstream(cause) => tracing::warn!(error = %cause, "Admin API call failed"),
            AppError::AuditUnavailable(cause) => {
                tracing::error!(error = %cause, "audit append failed; action refused")
            }
            _ => {}
        }
        let (status, title, message) = self.status_title_message();
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
            asset_version: crate::web::assets::version(),
            primer_path: crate::web::assets::primer_path(),
        };
        let body = page.render().unwrap_or_else(|_| message.clone());
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
        if matches!(&self, AppError::Upstream(e) if e.kind() == ApiErrorKind::NotSynced) {
            // The first sync is running: look again shortly (a header, not a script).
            response
                .headers_mut()
                .insert("refresh", HeaderValue::from_static("3"));
        }
        response
            .extensions_mut()
            .insert(ErrorNotice { title, message });
        response
    }
}

/// What an error response said, so the htmx layer can show it as a notice instead of a page,
/// and full pages can show it inside the layout.
#[derive(Clone, Debug)]
pub struct ErrorNotice {
    pub title: &'static str,
    pub message: String,
}

/// An error inside the normal layout: navigation, account menu and demo banner stay.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorInLayout {
    pub layout: super::context::Layout,
    pub status: u16,
    pub title: &'static str,
    pub message: String,
}

pub type AppResult<T> = Result<T, AppError>;

/// The last resort for a bug: a handler that panics answers with the normal 500 page (in the
/// layout) instead of a dropped connection, and the panic is logged with a reference that the
/// page shows.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let reference = crate::auth::session::random_token()[..12].to_owned();
    tracing::error!(%reference, panic = message, "a request handler panicked");
    AppError::Panicked { reference }.into_response()
}
