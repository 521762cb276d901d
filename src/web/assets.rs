//! Static files carried inside the binary (rust-embed), served with long-lived cache headers.
//! Links carry `?v=<content hash>` so a new build is never hidden by a cached old file.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// A short hash over every embedded file, computed once.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        let mut names: Vec<_> = Assets::iter().collect();
        names.sort();
        for name in names {
            hasher.update(name.as_bytes());
            if let Some(file) = Assets::get(&name) {
                hasher.update(file.data);
            }
        }
        hex::encode(&hasher.finalize()[..6])
    })
}

/// The path of the vendored htmx file, whatever its pinned version.
pub fn htmx_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| vendored("vendor/htmx", ".js"))
}

/// The path of the vendored Primer stylesheet (static-src/primer builds it), whatever its
/// pinned version.
pub fn primer_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| vendored("vendor/primer", ".css"))
}

/// The versioned file name is the cache-busting name: `/static/vendor/<name>-<version>.<ext>`.
fn vendored(prefix: &str, ext: &str) -> String {
    Assets::iter()
        .find(|name| name.starts_with(prefix) && name.ends_with(ext))
        .map(|name| format!("/static/{name}"))
        .unwrap_or_else(|| format!("/static/{prefix}{ext}"))
}

pub async fn serve(Path(path): Path<String>) -> Response {
    // Only what pages link to: scripts, styles, images (not the vendoring notes).
    let Some(file) = Assets::get(&path).filter(|_| !path.ends_with(".md")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        file.data,
    )
        .into_response()
}
