//! The last line of a failed command says what failed and what to check: the error, then a
//! hint chosen by its kind.

use gws_cometd::bayeux::SessionError;
use gws_cometd::gws::rest::{GwsStatus, RestError};
use gws_cometd::transport::TransportError;
use gws_cometd::Error;

const CHECK_REACH: &str = " (check the URL and that the server is running; behind a proxy, \
set HTTPS_PROXY or pass --proxy)";
const CHECK_TLS: &str =
    " (the server's certificate is not trusted: pass its CA with --cacert FILE)";
const CHECK_PLAIN: &str = " (the server answered in plain HTTP, not TLS: try http:// instead)";
const CHECK_HTTPS: &str =
    " (the server closed the connection without an HTTP answer: if it speaks TLS, try https://)";
const CHECK_PAGE: &str = " (a web server answered, not GWS: check the base URL and port)";

/// What to check for a failure whose text shows a TLS/plain-HTTP mismatch, a web page
/// instead of GWS, or an untrusted certificate.
fn by_text(text: &str) -> Option<&'static str> {
    if text.contains("InvalidContentType") || text.contains("wrong version number") {
        Some(CHECK_PLAIN)
    } else if text.contains("certificate") {
        Some(CHECK_TLS)
    } else if text.starts_with("http://")
        && (text.contains("connection closed before message completed")
            || text.contains("invalid HTTP version"))
    {
        Some(CHECK_HTTPS)
    } else if text.contains("an HTML page") {
        Some(CHECK_PAGE)
    } else {
        None
    }
}

/// The error followed by what to check next.
pub fn describe(error: &Error) -> String {
    format!("{error}{}", hint(error))
}

/// A REST error followed by what to check next.
pub fn describe_rest(error: &RestError) -> String {
    format!("{error}{}", rest_hint(error))
}

fn hint(error: &Error) -> &'static str {
    match error {
        Error::Session(SessionError::Unreachable { last, .. }) => {
            by_text(&last.to_string()).unwrap_or(CHECK_REACH)
        }
        Error::Session(
            SessionError::ReconnectNone { .. } | SessionError::HandshakeRefused { .. },
        ) => " (the server will not accept this client; check the endpoint and credentials)",
        Error::Session(SessionError::Unauthorized { .. }) => {
            " (check the user name, the password and the user's roles)"
        }
        Error::Rest(e) => rest_hint(e),
        Error::Transport(e) => transport_hint(e),
        Error::Record { .. } => " (check the --record file's disk and permissions)",
        _ => "",
    }
}

fn rest_hint(error: &RestError) -> &'static str {
    match error {
        RestError::Transport(e) => transport_hint(e),
        RestError::Gws { status, .. } => match status {
            GwsStatus::NotFound => {
                " (check the call id: `gws-cometd watch` prints the callId of every call)"
            }
            GwsStatus::InvalidState => " (the call's state does not allow it now)",
            GwsStatus::NoPermission | GwsStatus::Forbidden => " (check the user's roles)",
            _ => "",
        },
        // Unauthorized carries its own hint.
        _ => "",
    }
}

fn transport_hint(error: &TransportError) -> &'static str {
    if let Some(hint) = by_text(&error.to_string()) {
        return hint;
    }
    match error {
        TransportError::Connect { .. } | TransportError::Timeout { .. } => CHECK_REACH,
        TransportError::Status { status: 404, .. } => {
            " (check the base URL: REST is expected at BASE_URL/api/v2/me)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_are_told_by_what_the_error_says() {
        let plain = "https://h/api/v2/me: cannot connect: client error (Connect): received \
                     corrupt message of type InvalidContentType";
        assert_eq!(by_text(plain), Some(CHECK_PLAIN));
        let closed = "http://h/api/v2/me: the exchange broke off: client error (SendRequest): \
                      connection closed before message completed";
        assert_eq!(by_text(closed), Some(CHECK_HTTPS));
        assert_eq!(by_text(&closed.replace("http://", "https://")), None);
        let page = "http://h/api/v2/me: HTTP 404: an HTML page (9 bytes), not a GWS reply";
        assert_eq!(by_text(page), Some(CHECK_PAGE));
        assert_eq!(
            by_text("x: invalid peer certificate: UnknownIssuer"),
            Some(CHECK_TLS)
        );
        assert_eq!(
            by_text("http://h: cannot connect: Connection refused"),
            None
        );
    }
}
