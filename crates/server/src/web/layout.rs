//! The frame every page shares: head, navigation, who is signed in, and the sign-out form.

use maud::{DOCTYPE, Markup, html};

use super::session::{SignedIn, Visitor};

/// A full page: `scripts` are file names under `/assets`, loaded deferred.
pub(super) fn page(title: &str, visitor: &Visitor, scripts: &[&str], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, scripts))
            body {
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/" { "MCP Multiplayer" }
                        a href="/lobby" { "Lobby" }
                        a href="/bots" { "Bots" }
                        a href="/verify" { "Verify" }
                        @if visitor.signed_in.is_some() {
                            a href="/connections" { "Connections" }
                        }
                    }
                    div.who {
                        @match &visitor.signed_in {
                            Some(person) => {
                                span { "Signed in as " strong { (person.name()) } }
                                form method="post" action="/signout" {
                                    (token_field(person))
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                            None => a href="/signin" { "Sign in" },
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation: errors, which must render even when nothing else works.
pub(super) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, &[]))
            body { main.narrow { (body) } }
        }
    }
}

/// The hidden field that carries the person's form token.
pub(super) fn token_field(person: &SignedIn) -> Markup {
    html! { input type="hidden" name="form_token" value=(person.form_token); }
}

fn head(title: &str, scripts: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · MCP Multiplayer" }
            link rel="stylesheet" href="/assets/site.css";
            // No favicon request (and no 404 in the console).
            link rel="icon" href="data:,";
            @for script in scripts {
                script src={ "/assets/" (script) } defer {}
            }
        }
    }
}
