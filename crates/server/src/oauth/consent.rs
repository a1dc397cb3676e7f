//! The consent page and the error page, rendered on the server as plain HTML forms: they work
//! without JavaScript, load nothing from elsewhere, and cannot be framed.

use auth::Scope;
use auth::oauth::AuthorizeRequest;
use auth::oauth::redirect::display_host;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A rendered HTML page.
pub(super) struct Page(String);

impl Page {
    pub(super) fn error(title: &str, detail: &str) -> Page {
        Page(layout(
            title,
            &format!(
                r#"<h1>{title}</h1><p class="lead">{detail}</p>"#,
                title = escape(title),
                detail = escape(detail)
            ),
        ))
    }

    pub(super) fn into_response(self, status: StatusCode) -> Response {
        let mut response = (status, Html(self.0)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // Not `no-referrer`: under it browsers send `Origin: null` with the page's own form,
        // which the Origin check refuses. `same-origin` still keeps the authorization request
        // out of the Referer sent to the client's redirect URI.
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// What the consent page shows.
pub(super) struct ConsentView<'a> {
    pub request: &'a AuthorizeRequest,
    pub form_token: &'a str,
    /// The person this browser approved as before, if any.
    pub remembered_name: Option<&'a str>,
    pub ask_passphrase: bool,
    /// Why the last answer was not accepted.
    pub problem: Option<&'a str>,
}

impl ConsentView<'_> {
    pub(super) fn render(&self) -> Page {
        let request = self.request;
        let client = escape(&request.client_name);
        let host = escape(&display_host(&request.redirect_uri));
        let mut body = format!(
            r#"<p class="eyebrow">MCP Multiplayer</p>
<h1><span class="client">{client}</span> wants to play as you</h1>
<p class="lead">After you answer, you go back to <strong>{host}</strong>.</p>"#
        );
        if let Some(problem) = self.problem {
            body.push_str(&format!(
                r#"<p class="problem" role="alert">{}</p>"#,
                escape(problem)
            ));
        }
        body.push_str(r#"<form method="post" action="authorize">"#);
        body.push_str(&self.hidden_fields());
        body.push_str(r#"<ul class="scopes">"#);
        for scope in Scope::ALL {
            if request.scopes.contains(scope) {
                body.push_str(&format!("<li>{}</li>", scope_words(scope)));
            }
        }
        body.push_str("</ul>");
        match self.remembered_name {
            Some(name) => body.push_str(&format!(
                r#"<p class="who">You are <strong>{}</strong> here.</p>
<details><summary>Not you?</summary>
<label for="display_name">Your name for other players</label>
<input id="display_name" name="display_name" maxlength="64" autocomplete="nickname" placeholder="Leave empty to stay {}">
</details>"#,
                escape(name),
                escape(name)
            )),
            None => body.push_str(
                r#"<label for="display_name">Your name for other players</label>
<input id="display_name" name="display_name" maxlength="64" required autocomplete="nickname" placeholder="e.g. Ada">"#,
            ),
        }
        if self.ask_passphrase {
            body.push_str(
                r#"<label for="passphrase">Server passphrase</label>
<input id="passphrase" name="passphrase" type="password" required autocomplete="current-password">
<p class="note">This server is private: its operator gave the passphrase to the people they invited.</p>"#,
            );
        }
        body.push_str(
            r#"<div class="actions">
<button type="submit" name="decision" value="deny" class="secondary" formnovalidate>Deny</button>
<button type="submit" name="decision" value="approve" class="primary">Allow</button>
</div></form>
<p class="note">You can disconnect at any time from your app. Only your chosen name is shown to other players.</p>"#,
        );
        Page(layout("Connect to MCP Multiplayer", &body))
    }

    fn hidden_fields(&self) -> String {
        let params = &self.request.params;
        let fields = [
            ("response_type", params.response_type.as_deref()),
            ("client_id", params.client_id.as_deref()),
            ("redirect_uri", params.redirect_uri.as_deref()),
            ("scope", params.scope.as_deref()),
            ("state", params.state.as_deref()),
            ("code_challenge", params.code_challenge.as_deref()),
            (
                "code_challenge_method",
                params.code_challenge_method.as_deref(),
            ),
            ("resource", params.resource.as_deref()),
            ("form_token", Some(self.form_token)),
        ];
        fields
            .iter()
            .filter_map(|(name, value)| {
                value.map(|value| {
                    format!(
                        r#"<input type="hidden" name="{name}" value="{}">"#,
                        escape(value)
                    )
                })
            })
            .collect()
    }
}

fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "See the channels you are in and their messages",
        Scope::Write => "Create and join channels, post messages and play games in your name",
    }
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; --accent: #5b5bd6; --bg: #f6f6f9; --card: #fff; --text: #1c1c24; --muted: #63637a; --line: #e2e2ea; }}
@media (prefers-color-scheme: dark) {{ :root {{ --bg: #111118; --card: #1b1b24; --text: #ececf1; --muted: #a0a0b4; --line: #2e2e3c; }} }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--text); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; padding: 24px; }}
main {{ width: 100%; max-width: 440px; background: var(--card); border: 1px solid var(--line); border-radius: 16px; padding: 32px; box-shadow: 0 8px 30px rgba(0,0,0,.06); }}
.eyebrow {{ margin: 0 0 8px; color: var(--accent); font-weight: 600; font-size: 13px; letter-spacing: .08em; text-transform: uppercase; }}
h1 {{ margin: 0 0 8px; font-size: 22px; line-height: 1.3; }}
.client {{ color: var(--accent); }}
.lead {{ margin: 0 0 20px; color: var(--muted); }}
.scopes {{ margin: 0 0 20px; padding: 16px 16px 16px 36px; border: 1px solid var(--line); border-radius: 12px; }}
.scopes li + li {{ margin-top: 6px; }}
label {{ display: block; margin: 16px 0 6px; font-weight: 600; font-size: 14px; }}
input {{ width: 100%; padding: 10px 12px; font: inherit; color: inherit; background: transparent; border: 1px solid var(--line); border-radius: 10px; }}
input:focus {{ outline: 2px solid var(--accent); outline-offset: 1px; }}
details {{ margin-top: 8px; }} summary {{ cursor: pointer; color: var(--muted); }}
.who {{ margin: 0; }}
.actions {{ display: flex; gap: 12px; justify-content: flex-end; margin-top: 24px; }}
button {{ font: inherit; font-weight: 600; padding: 10px 20px; border-radius: 10px; cursor: pointer; border: 1px solid var(--line); }}
.primary {{ background: var(--accent); border-color: var(--accent); color: #fff; }}
.secondary {{ background: transparent; color: var(--text); }}
.problem {{ padding: 10px 12px; border-radius: 10px; background: rgba(220, 60, 60, .12); color: #c03030; }}
.note {{ margin: 20px 0 0; color: var(--muted); font-size: 13px; }}
</style></head>
<body><main>{body}</main></body></html>"#,
        title = escape(title)
    )
}

/// Escapes text for HTML content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
