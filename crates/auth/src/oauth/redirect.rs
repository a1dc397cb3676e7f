//! Which redirect URIs a client may register, and how an authorization response is added to
//! one. Matching itself is exact string equality, done by the caller.

use url::Url;

/// Longest redirect URI accepted, in bytes. The callbacks of real clients are well under 100.
pub const MAX_REDIRECT_URI_BYTES: usize = 512;
/// Most redirect URIs one client may register (a native app may list a few loopback ports).
pub const MAX_REDIRECT_URIS: usize = 5;

/// Checks that `raw` may be registered: HTTPS, or plain HTTP on a loopback host (any port, as
/// native apps pick one at run time), with no fragment and no credentials.
pub fn check_registrable(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_REDIRECT_URI_BYTES {
        return Err(format!(
            "redirect URI longer than {MAX_REDIRECT_URI_BYTES} bytes"
        ));
    }
    let url = Url::parse(raw).map_err(|error| format!("{raw:?} is not a URL: {error}"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{raw:?} has a fragment, which redirect URIs must not"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} carries credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        _ => Err(format!(
            "{raw:?} must use https, or http on a loopback address (127.0.0.1, [::1], localhost)"
        )),
    }
}

pub(crate) fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `redirect_uri` with the response parameters added to its query.
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in params {
                    query.append_pair(key, value);
                }
            }
            url.into()
        }
        // Only registered URIs get here, and those were parsed when registered.
        Err(_) => redirect_uri.to_owned(),
    }
}

/// The host a person is sent back to, shown on the consent page.
pub fn display_host(redirect_uri: &str) -> String {
    Url::parse(redirect_uri)
        .ok()
        .and_then(|url| {
            url.host_str().map(|host| match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            })
        })
        .unwrap_or_else(|| redirect_uri.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_registrable() {
        for good in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://chatgpt.com/connector/oauth/abc123",
            "http://127.0.0.1:33418/callback",
            "http://localhost:8080/cb",
            "http://[::1]:9000/",
        ] {
            assert_eq!(check_registrable(good), Ok(()), "{good}");
        }
        for bad in [
            "http://example.com/cb",
            "http://192.168.1.2/cb",
            "https://claude.ai/cb#frag",
            "https://user:pw@claude.ai/cb",
            "javascript:alert(1)",
            "cursor://callback",
            "not a url",
        ] {
            assert!(check_registrable(bad).is_err(), "{bad}");
        }
        let long = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_BYTES));
        assert!(check_registrable(&long).is_err());
    }

    #[test]
    fn response_parameters_are_appended_and_encoded() {
        let url = with_params(
            "https://claude.ai/cb?existing=1",
            &[("code", "a b"), ("state", "x&y")],
        );
        assert_eq!(url, "https://claude.ai/cb?existing=1&code=a+b&state=x%26y");
    }
}
