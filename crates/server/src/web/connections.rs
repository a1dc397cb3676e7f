//! `/connections`: the apps a person allowed and their personal tokens, each with a way to
//! revoke it (the consent page promises "you can disconnect at any time").

use auth::Holder;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::session::Visitor;
use super::sign_in::see_other;
use super::{PageError, Shared, check_form, layout, ok};

#[derive(Debug, Default, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    family: String,
}

/// `GET /connections`.
pub(super) async fn page(State(state): Shared, visitor: Visitor) -> Result<Response, PageError> {
    let person = visitor.require()?;
    let oauth = state.oauth.as_ref().ok_or_else(PageError::sign_in_needed)?;
    let connections = oauth
        .connections(&person.caller.principal.id)
        .await
        .map_err(|error| service::ServiceError::internal(error.description))?;
    let body = html! {
        h1 { "Connections" }
        p.lead { "What can act as " strong { (person.name()) } " here. Disconnecting revokes the \
            grant at once: the app's next call is refused and it must ask you again." }
        @if connections.is_empty() {
            p { "Nothing is connected." }
        } @else {
            table.list {
                thead { tr { th { "What" } th { "Can" } th { "Since" } th { "Until" } th {} } }
                tbody {
                    @for connection in &connections {
                        tr {
                            td {
                                @match &connection.holder {
                                    Holder::App { name, client_id } => { strong { (name) } br; span.muted.small { (client_id) } }
                                    Holder::Personal { name } => { "Personal token " strong { (name) } }
                                }
                            }
                            td { (scope_words(&connection.scope)) }
                            td { time.ms data-ms=(connection.since.0) { (connection.since.0) } }
                            td {
                                @match connection.expires_at {
                                    Some(at) => time.ms data-ms=(at.0) { (at.0) },
                                    None => "no expiry",
                                }
                            }
                            td {
                                form method="post" action="/connections/revoke" {
                                    (layout::token_field(person))
                                    input type="hidden" name="family" value=(connection.family);
                                    button.danger type="submit" { "Disconnect" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(ok(layout::page(
        "Connections",
        &visitor,
        &["site.js"],
        body,
    )))
}

fn scope_words(scope: &str) -> &'static str {
    if scope.split(' ').any(|scope| scope == "mcp:write") {
        "read and play"
    } else {
        "read"
    }
}

/// `POST /connections/revoke`.
pub(super) async fn revoke(
    State(state): Shared,
    visitor: Visitor,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    check_form(&state, person, &form.form_token)?;
    let oauth = state.oauth.as_ref().ok_or_else(PageError::sign_in_needed)?;
    let revoked = oauth
        .disconnect(&person.caller.principal.id, &form.family)
        .await
        .map_err(|error| service::ServiceError::internal(error.description))?;
    if !revoked {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Nothing to disconnect",
            "That connection is not yours, or it was revoked already. Reload the connections page.",
        ));
    }
    tracing::info!(person = %person.caller.principal.id, "a connection was revoked from its page");
    Ok(see_other("/connections"))
}
