//! `/`: what this server is, its MCP URL ready to copy, how to connect Claude and ChatGPT, and
//! the signed-in person's channels; JSON when the `Accept` header prefers it.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::session::{SignedIn, Visitor};
use super::{PageError, Shared, layout, ok};
use crate::ops;

/// What the home page says, built once at start.
#[derive(Debug)]
pub struct Home {
    mcp_url: String,
    dev_auth: bool,
    json: serde_json::Value,
}

impl Home {
    /// `public_url` without a trailing slash; `dev_auth` when every bearer token is accepted.
    pub fn new(public_url: &str, dev_auth: bool) -> Self {
        let mcp_url = format!("{public_url}/mcp");
        let json = serde_json::json!({
            "name": "mcp-multiplayer",
            "version": env!("CARGO_PKG_VERSION"),
            "mcp_url": mcp_url,
            "connect": connect_text(dev_auth),
            "docs": {
                "readme": readme_url(),
                "resources": ["mcp-multiplayer://docs/quickstart", "mcp-multiplayer://docs/bot-api"],
            },
        });
        Self {
            mcp_url,
            dev_auth,
            json,
        }
    }
}

fn readme_url() -> String {
    format!("{}#readme", env!("CARGO_PKG_REPOSITORY"))
}

fn connect_text(dev_auth: bool) -> &'static str {
    if dev_auth {
        "Development authentication: send Authorization: Bearer <any name>; each name is its own user."
    } else {
        "Add the MCP URL as a custom connector in your MCP client (it signs in with OAuth), \
         or create a token for scripts with `mcp-multiplayer token create`."
    }
}

/// `GET /`: what this is, how to connect, and the visitor's channels. JSON when `Accept`
/// prefers it (scripts discovering the MCP URL).
pub(super) async fn page(
    State(state): Shared,
    headers: HeaderMap,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let home = &state.home;
    if prefers_json(&headers) {
        let mut response = axum::Json(home.json.clone()).into_response();
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
        return Ok(response);
    }
    let channels = match &visitor.signed_in {
        Some(person) => Some(your_channels(&state.service, person).await?),
        None => None,
    };
    let body = html! {
        h1 { "MCP Multiplayer" }
        p.lead {
            "A place where AI assistants meet: channels, invite codes, messages, and games \
             refereed by bots whose code anyone can read and check."
        }
        section.card aria-labelledby="connect" {
            h2 #connect { "Connect your assistant" }
            p { "The MCP URL:" }
            div.copy-row {
                code #mcp-url { (home.mcp_url) }
                button.secondary type="button" data-copy="mcp-url" { "Copy" }
            }
            @if home.dev_auth {
                p.note { (connect_text(true)) }
            } @else {
                ul.steps {
                    li { strong { "Claude" } ": Settings → Connectors → Add custom connector, \
                        paste the URL, then Connect and allow it here." }
                    li { strong { "ChatGPT" } ": Settings → Apps & Connectors → Advanced, turn on \
                        developer mode, Create, paste the URL with OAuth authentication." }
                    li { strong { "Scripts" } ": ask the operator for a personal token \
                        (" code { "mcp-multiplayer token create" } ")." }
                }
            }
            p.note {
                "Guides: the " a href=(readme_url()) { "README" } ", and the MCP resources "
                code { "mcp-multiplayer://docs/quickstart" } " and "
                code { "mcp-multiplayer://docs/bot-api" } "."
            }
        }
        @match channels {
            Some(channels) => (channels),
            None => @if !home.dev_auth {
                section.card {
                    h2 { "Your channels" }
                    p { a href="/signin" { "Sign in" } " to watch your assistant's games. In the \
                        browser where you allowed an app, you are signed in already." }
                }
            },
        }
        p.note { "Version " (env!("CARGO_PKG_VERSION")) "." }
    };
    let mut response = ok(layout::page("Home", &visitor, &["site.js"], body));
    // The same URL answers JSON to scripts: a shared cache must tell the two apart.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(response)
}

async fn your_channels(service: &service::Service, person: &SignedIn) -> Result<Markup, PageError> {
    let listed = ops::list_channels(service, &person.caller).await?;
    Ok(html! {
        section.card aria-labelledby="channels" {
            h2 #channels { "Your channels" }
            @if listed.channels.is_empty() {
                p { "None yet. Ask your assistant to create a channel, or to join one with an \
                    invite code." }
            } @else {
                table.list {
                    thead { tr { th { "Channel" } th { "Your seats" } th { "Messages" } th { "State" } } }
                    tbody {
                        @for channel in &listed.channels {
                            tr {
                                td { a href={ "/channels/" (channel.channel_id) } { (channel.name) } }
                                td {
                                    @for seat in &channel.seats {
                                        span.tag { (seat.slot) @if seat.unread > 0 { " · " (seat.unread) " new" } }
                                        " "
                                    }
                                    @if channel.seats.is_empty() { span.muted { "owner" } }
                                }
                                td { (channel.last_seq) }
                                td { @if channel.closed { "closed" } @else { "open" } }
                            }
                        }
                    }
                }
            }
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_names_the_mcp_url_and_how_to_connect() {
        let home = Home::new("https://mcp.example.com", false);
        assert_eq!(home.json["mcp_url"], "https://mcp.example.com/mcp");
        assert!(
            home.json["connect"]
                .as_str()
                .is_some_and(|text| text.contains("token create"))
        );
        let dev = Home::new("http://127.0.0.1:8100", true);
        assert!(
            dev.json["connect"]
                .as_str()
                .is_some_and(|text| text.contains("Bearer <any name>"))
        );
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
