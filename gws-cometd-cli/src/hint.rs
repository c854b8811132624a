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
            if last.to_string().contains("certificate") {
                CHECK_TLS
            } else {
                CHECK_REACH
            }
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
    match error {
        TransportError::Connect { detail, .. } if detail.contains("certificate") => CHECK_TLS,
        TransportError::Connect { .. } | TransportError::Timeout { .. } => CHECK_REACH,
        TransportError::Status { status: 404, .. } => {
            " (check the base URL: REST is expected at BASE_URL/api/v2/me)"
        }
        _ => "",
    }
}
