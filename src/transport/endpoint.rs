//! HTTP endpoint URLs: checked once, and never shown with their credentials.

use url::Url;

use super::TransportError;

/// Parses and checks an endpoint URL: absolute `http` or `https` with a host.
pub fn parse(url: &str) -> Result<Url, TransportError> {
    let invalid = |reason: String| TransportError::InvalidUrl {
        url: redact(url),
        reason,
    };
    let parsed = Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    Ok(parsed)
}

/// `url` without user info, query or fragment, for logs and errors.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Like [`redact_url`] for text that may not even parse: credentials (`user:password@`),
/// query and fragment are cut out of it as text.
pub fn redact(url: &str) -> String {
    // Without a host (`agent:pw@host/x` parses as scheme `agent`), cut it as text.
    if let Some(u) = Url::parse(url.trim()).ok().filter(Url::has_host) {
        return redact_url(&u);
    }
    let mut text: String = url.chars().take(200).collect();
    if let Some(cut) = text.find(['?', '#']) {
        text.truncate(cut);
    }
    let after_scheme = text.find("://").map_or(0, |i| i + 3);
    let authority_end = text[after_scheme..]
        .find('/')
        .map_or(text.len(), |i| after_scheme + i);
    if let Some(at) = text[after_scheme..authority_end].rfind('@') {
        text.replace_range(after_scheme..=after_scheme + at, "");
    }
    text
}

/// The user name and password in a URL's user info, percent-decoded.
pub(crate) fn userinfo(url: &Url) -> Option<(String, String)> {
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(url.username()), decode(url.password().unwrap_or(""))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_absolute_http_urls() {
        assert!(parse("http://127.0.0.1:8080/cometd").is_ok());
        assert!(parse("https://gws.example/api/v2/notifications").is_ok());
        for bad in ["", "127.0.0.1:8080", "ftp://h/x", "http://", "/cometd"] {
            assert!(
                matches!(parse(bad), Err(TransportError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn redacted_urls_drop_credentials_and_query_even_when_they_do_not_parse() {
        let u = Url::parse("http://agent:s3cret@h:1/cometd?token=abc").unwrap();
        assert_eq!(redact_url(&u), "http://h:1/cometd");
        let err = parse("gopher://agent:s3cret@h/x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        for text in [
            "http://agent:s3cret@[::1/x?token=t0k",
            "http://agent:s3cret@",
            "agent:s3cret@host:99999/x",
        ] {
            let r = redact(text);
            assert!(!r.contains("s3cret") && !r.contains("t0k"), "{text} -> {r}");
        }
        assert_eq!(redact("http://h:99999/a"), "http://h:99999/a");
    }

    #[test]
    fn userinfo_is_percent_decoded() {
        let u = Url::parse("http://agent:p%40ss@127.0.0.1:9/cometd").unwrap();
        assert_eq!(userinfo(&u), Some(("agent".into(), "p@ss".into())));
        assert_eq!(userinfo(&Url::parse("http://h/x").unwrap()), None);
    }
}
