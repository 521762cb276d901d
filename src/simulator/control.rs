//! `/_faults`: the fault controls over HTTP, for scripts and other languages' tests driving
//! `orgkeeper simulate --fault-control`. Off by default: whoever reaches it can make the
//! simulator fail.
//!
//! * `POST /_faults` with `{"fault": "429:path-prefix=/v1/organizations/users:retry-after=30"}`
//!   adds a scripted fault (syntax: [`FaultSpec`]); 201, or 400 with the reason.
//! * `DELETE /_faults` removes every fault, latency and failure rate.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::faults::{FaultSpec, Faults};

#[derive(Deserialize)]
struct AddFault {
    fault: String,
}

pub(crate) fn routes(faults: Arc<Faults>) -> Router {
    Router::new()
        .route("/_faults", post(add).delete(clear))
        .with_state(faults)
}

async fn add(State(faults): State<Arc<Faults>>, body: axum::body::Bytes) -> Response {
    let spec = serde_json::from_slice::<AddFault>(&body)
        .map_err(|e| format!("expected {{\"fault\": \"KIND[:key=value]…\"}}: {e}"))
        .and_then(|add| add.fault.parse::<FaultSpec>());
    match spec {
        Ok(spec) => {
            faults.add(spec);
            let active = faults.scripted().len();
            (StatusCode::CREATED, Json(json!({ "active": active }))).into_response()
        }
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

async fn clear(State(faults): State<Arc<Faults>>) -> Response {
    faults.clear();
    Json(json!({ "active": 0 })).into_response()
}
