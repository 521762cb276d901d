//! Typed client for the Anthropic Admin API.
//!
//! * [`Client`] / [`ClientConfig`]: one method per call, retries (the rule lives on
//!   [`client::Repeat`]), timeouts, headers, debug logging without the key.
//! * [`models`]: tolerant serde models of every object, body and query.
//! * [`pagination`]: [`Page`] (ID cursors), [`ReportPage`] (page tokens) and bounded
//!   fetch-everything loops behind the `list_all_*` / `*_all` methods.
//! * [`ApiError`]: one error type with a plain-language [`ApiError::user_message`].
//! * [`AdminKey`]: the key, redacted in `Debug`/`Display`, never serializable.

pub mod client;
pub mod error;
pub mod models;
pub mod pagination;
mod secret;
pub mod shared;

pub use client::{
    scope_deadline, within, Budget, Client, ClientConfig, CostByActor, Paged, RateLimitStatus,
    Repeat, UsageByActor, ANALYTICS_BETA, ANTHROPIC_VERSION, USER_AGENT,
};
pub use error::{ApiError, ApiErrorKind};
pub use models::*;
pub use pagination::{Page, PageParams, ReportPage};
pub use secret::AdminKey;
pub use shared::Shared;
