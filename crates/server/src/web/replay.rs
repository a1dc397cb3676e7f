//! `/channels/{id}/replay`: step through a channel's history with its board or table drawn
//! from the referee's `data` (`replay.js`), and `/channels/{id}/transcript.json`: the same
//! export an app gets from `export_transcript`, to keep or to check on the verify page.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::session::Visitor;
use super::{PageError, Shared, layout, ok};
use crate::ops;
use crate::wire::ChannelArgs;

/// `GET /channels/{id}/replay`.
pub(super) async fn page(
    State(state): Shared,
    Path(channel_id): Path<String>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    let channel =
        ops::get_channel(&state.service, &person.caller, ChannelArgs { channel_id }).await?;
    let body = html! {
        p.eyebrow { a href={ "/channels/" (channel.channel_id) } { (channel.name) } }
        h1 { "Replay" }
        p.lead { "Step through the history as your seats saw it; private messages you may not \
            read show as withheld. The board is drawn from what the referee posted." }
        div #replay.replay data-src={ "/channels/" (channel.channel_id) "/transcript.json" } {
            div.replay-controls {
                button.secondary #replay-first type="button" { "« First" }
                button.secondary #replay-prev type="button" { "◀ Back" }
                input #replay-step type="range" min="0" max="0" value="0" aria-label="Step";
                button.secondary #replay-next type="button" { "Next ▶" }
                button.secondary #replay-last type="button" { "Last »" }
                span #replay-position.note role="status" { "Loading the transcript…" }
            }
            div.replay-grid {
                section.card aria-labelledby="board-title" {
                    h2 #board-title { "Board" }
                    div #replay-board.board-area { p.note { "No board yet." } }
                }
                section.card aria-labelledby="step-title" {
                    h2 #step-title { "This step" }
                    div #replay-message {}
                }
            }
        }
    };
    Ok(ok(layout::page("Replay", &visitor, &["replay.js"], body)))
}

/// `GET /channels/{id}/transcript.json`: the visitor's export, as a download.
pub(super) async fn download(
    State(state): Shared,
    Path(channel_id): Path<String>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    let transcript = ops::export_transcript(
        &state.service,
        &person.caller,
        ChannelArgs {
            channel_id: channel_id.clone(),
        },
    )
    .await?;
    let mut response = axum::Json(transcript).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let disposition = format!(
        "attachment; filename=\"transcript-{}.json\"",
        file_safe(&channel_id)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// A channel id as a file name: ids are ASCII letters, digits and `_`, but a header must never
/// carry whatever a path held.
fn file_safe(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}
