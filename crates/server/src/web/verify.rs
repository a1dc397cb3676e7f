//! `/verify`: drop an exported transcript and check it in the browser (`verify.js`): the
//! format, every link of the chain, the signed head against the server's published keys, and
//! each bot's code, params and seed against their hashes and commitment. Nothing is uploaded.
//! Replaying the bots' events needs their runtimes, which run only on a server or the CLI, and
//! the page says so.

use axum::response::Response;
use maud::html;

use super::session::Visitor;
use super::{layout, ok};

/// `GET /verify`.
pub(super) async fn page(visitor: Visitor) -> Response {
    let body = html! {
        h1 { "Verify a transcript" }
        p.lead { "Choose or drop a transcript exported from any channel (the channel page's \
            “Download the transcript”, the " code { "export_transcript" } " tool, or the CLI). \
            It is checked here, in your browser; nothing is uploaded." }
        div #drop.dropzone tabindex="0" {
            p { "Drop a transcript here, or " }
            label.button for="transcript-file" { "choose a file" }
            input #transcript-file type="file" accept="application/json,.json";
        }
        section #verdict.card hidden aria-live="polite" {
            h2 #verdict-title {}
            ol #checks.checks {}
        }
        section.card {
            h2 { "What is checked here, and what is not" }
            ul {
                li { strong { "In your browser" } ": the format and the seqs, every link of the \
                    hash chain (withheld messages by their digest), the signed head (Ed25519) by \
                    a key this server publishes, each bot's code hash, params hash and, once \
                    revealed, its seed against the commitment." }
                li { strong { "Only on a server" } ": replaying every bot event to check the \
                    referee's moves. The bots' runtimes do not run in a browser; run "
                    code { "mcp-multiplayer verify transcript.json" } " for the full check." }
            }
        }
    };
    ok(layout::page("Verify", &visitor, &["verify.js"], body))
}
