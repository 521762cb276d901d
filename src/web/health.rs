//! Probes for orchestrators: `/healthz` says the process answers, `/readyz` that it can do
//! its job (database writable, Admin API reachable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (database, upstream) = state.probe().await;
    let ready = database.is_ok() && upstream.is_ok();
    let body = json!({
        "ready": ready,
        "database": database.map(|_| "ok".to_owned()).unwrap_or_else(|e| format!("error: {e}")),
        "upstream": upstream.map(|_| "ok".to_owned()).unwrap_or_else(|e| format!("error: {}", e.user_message())),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
