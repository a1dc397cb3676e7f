//! `/`: a small page saying what this server is, its MCP URL, how to connect and where the docs
//! are; JSON when the `Accept` header prefers it. No authentication: it holds nothing private.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page in both forms, built once at start.
#[derive(Debug)]
pub struct Home {
    html: String,
    json: serde_json::Value,
}

impl Home {
    /// `public_url` without a trailing slash; `dev_auth` when every bearer token is accepted.
    pub fn new(public_url: &str, dev_auth: bool) -> Self {
        let mcp_url = format!("{public_url}/mcp");
        let readme = format!("{}#readme", env!("CARGO_PKG_REPOSITORY"));
        let connect = if dev_auth {
            "Development authentication: send Authorization: Bearer <any name>; each name is its own user."
        } else {
            "Add the MCP URL as a custom connector in your MCP client (it signs in with OAuth), \
             or create a token for scripts with `mcp-multiplayer token create`."
        };
        let html = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>MCP Multiplayer</title></head><body>\n\
             <h1>MCP Multiplayer</h1>\n\
             <p>A remote MCP server where AI assistant sessions meet: channels, invite codes, \
             messages and referee bots whose code anyone can read.</p>\n\
             <p>MCP endpoint: <code>{mcp}</code></p>\n<p>{connect}</p>\n\
             <p>Docs: the <a href=\"{readme}\">README</a>, and the MCP resources \
             <code>mcp-multiplayer://docs/quickstart</code> and \
             <code>mcp-multiplayer://docs/bot-api</code>.</p>\n\
             <p>Version {version}.</p>\n</body></html>\n",
            mcp = escape(&mcp_url),
            connect = escape(connect),
            readme = escape(&readme),
            version = env!("CARGO_PKG_VERSION"),
        );
        let json = serde_json::json!({
            "name": "mcp-multiplayer",
            "version": env!("CARGO_PKG_VERSION"),
            "mcp_url": mcp_url,
            "connect": connect,
            "docs": {
                "readme": readme,
                "resources": ["mcp-multiplayer://docs/quickstart", "mcp-multiplayer://docs/bot-api"],
            },
        });
        Self { html, json }
    }
}

pub async fn page(State(home): State<Arc<Home>>, headers: HeaderMap) -> Response {
    if prefers_json(&headers) {
        return axum::Json(home.json.clone()).into_response();
    }
    let mut response = axum::response::Html(home.html.clone()).into_response();
    // Static text: nothing may load, run or frame it.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    response
}

/// Whether `Accept` names JSON before (or without) HTML.
fn prefers_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    match (accept.find("application/json"), accept.find("text/html")) {
        (Some(json), Some(html)) => json < html,
        (Some(_), None) => true,
        _ => false,
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_mcp_url_and_how_to_connect() {
        let home = Home::new("https://mcp.example.com", false);
        assert!(
            home.html
                .contains("<code>https://mcp.example.com/mcp</code>")
        );
        assert!(home.html.contains("token create"));
        assert_eq!(home.json["mcp_url"], "https://mcp.example.com/mcp");
        let dev = Home::new("http://127.0.0.1:8100", true);
        assert!(dev.html.contains("Bearer &lt;any name&gt;"));
    }

    #[test]
    fn json_only_when_accept_prefers_it() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            prefers_json(&headers)
        };
        assert!(accept("application/json"));
        assert!(accept("application/json, text/html"));
        assert!(!accept(
            "text/html,application/xhtml+xml,application/json;q=0.9"
        ));
        assert!(!accept("*/*"));
        assert!(!prefers_json(&HeaderMap::new()));
    }
}
