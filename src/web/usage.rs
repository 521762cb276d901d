//! The usage pages (being built).

use axum::Router;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Background work of this area, started with the server (none yet).
pub fn spawn_background(_state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    None
}
