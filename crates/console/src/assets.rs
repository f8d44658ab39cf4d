//! The console's one stylesheet and one script, compiled into the binary
//! and served under names that carry a digest of their content, so they
//! can be cached for a year and a new build is never served a stale copy.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const ROUTE: &str = "/assets/{file}";

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

struct Asset {
    path: String,
    body: &'static str,
    content_type: &'static str,
}

fn hashed(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    Asset {
        path: format!("/assets/{stem}.{}.{ext}", &digest[..16]),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        hashed("console", "css", CSS, "text/css; charset=utf-8"),
        hashed("console", "js", JS, "text/javascript; charset=utf-8"),
    ]
});

pub fn css_path() -> &'static str {
    &ASSETS[0].path
}

pub fn js_path() -> &'static str {
    &ASSETS[1].path
}

/// Public. Only the current names answer; anything else is `404`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/assets/{file}");
    match ASSETS.iter().find(|a| a.path == wanted) {
        Some(a) => (
            [
                (CONTENT_TYPE, a.content_type),
                (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
