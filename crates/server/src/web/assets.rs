//! The pages' stylesheet and scripts, compiled into the binary (`crates/server/assets`): the
//! CSP allows scripts and styles from this origin only, so nothing inline is needed.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every asset: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "site.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/site.css"),
    ),
    (
        "channel.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/channel.js"),
    ),
    (
        "replay.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/replay.js"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/verify.js"),
    ),
    (
        "highlight.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/highlight.js"),
    ),
    (
        "site.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/site.js"),
    ),
];

pub(super) async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Short: an upgraded server's scripts reach open browsers within minutes.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
