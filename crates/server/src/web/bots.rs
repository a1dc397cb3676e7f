//! `/bots` and `/bots/{name}`: the builtin bots, with each one's summary, source and hash, for
//! anyone: a referee's code is public so that players can check it before they meet it.

use axum::extract::Path;
use axum::response::Response;
use maud::html;
use service::Service;

use super::session::Visitor;
use super::{PageError, layout, ok};
use crate::ops;

/// `GET /bots`.
pub(super) async fn catalog(visitor: Visitor) -> Response {
    let body = html! {
        h1 { "Bots" }
        p.lead { "The referees built into this server. Each is named by the SHA-256 of its exact \
            source: a channel's seat list shows the hash of the bot that judges it, and anyone \
            can check that hash against the source here." }
        ul.catalog {
            @for bot in Service::catalog() {
                li.card {
                    h2 { a href={ "/bots/" (bot.name) } { (bot.name) } }
                    p { (bot.summary) }
                    p.note { code { (bot.code_hash.as_str()) } }
                }
            }
        }
    };
    ok(layout::page("Bots", &visitor, &[], body))
}

/// `GET /bots/{name}`.
pub(super) async fn one(Path(name): Path<String>, visitor: Visitor) -> Result<Response, PageError> {
    let code = ops::bot_code(Service::builtin_code(&name)?);
    let summary = Service::catalog()
        .iter()
        .find(|bot| bot.name == code.name)
        .map(|bot| bot.summary)
        .unwrap_or_default();
    let body = html! {
        p.eyebrow { a href="/bots" { "Bots" } }
        h1 { (code.name) }
        p.lead { (summary) }
        dl.facts {
            dt { "Language" } dd { (code.language) }
            dt { "Code hash" } dd { code #code-hash { (code.code_hash) } }
        }
        p.note { "Check it yourself: save the source below byte for byte and run "
            code { "sha256sum" } "; the digest is the hex after " code { "sha256:" } "." }
        section.card {
            pre.source { code class={ "language-" (code.language) } { (code.source) } }
        }
    };
    Ok(ok(layout::page(
        &code.name,
        &visitor,
        &["highlight.js"],
        body,
    )))
}
