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
    format!("{}{}", whole_millis(&error.to_string()), hint(error))
}

/// A REST error followed by what to check next.
pub fn describe_rest(error: &RestError) -> String {
    format!("{}{}", whole_millis(&error.to_string()), rest_hint(error))
}

/// `text` with every `within DURATION` rounded to the millisecond: a deadline is said as
/// it was set (`no reply within 10s`), not as the nanoseconds left when it was armed
/// (`9.999987329s`), so `tail` and `watch` say the same.
pub fn whole_millis(text: &str) -> String {
    const LEAD: &str = "within ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(LEAD) {
        let (before, after) = rest.split_at(at + LEAD.len());
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c.is_alphabetic()))
            .unwrap_or(after.len());
        let (token, tail) = after.split_at(end);
        match parse_debug_duration(token) {
            Some(d) => {
                let millis = (d.as_secs_f64() * 1000.0).round() as u64;
                out.push_str(&format!("{:?}", std::time::Duration::from_millis(millis)));
            }
            None => out.push_str(token),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A duration as `{:?}` writes it (`9.999987329s`, `999.93ms`, `12µs`, `5ns`).
fn parse_debug_duration(token: &str) -> Option<std::time::Duration> {
    let split = token.find(|c: char| c.is_alphabetic())?;
    let (number, unit) = token.split_at(split);
    let value: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => value,
        "ms" => value / 1e3,
        "µs" | "us" => value / 1e6,
        "ns" => value / 1e9,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(secs).ok()
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
    fn deadlines_are_said_to_the_millisecond() {
        assert_eq!(
            whole_millis("http://h/cometd: no reply within 9.999987329s (check)"),
            "http://h/cometd: no reply within 10s (check)"
        );
        assert_eq!(
            whole_millis("a: no reply within 999.932539ms; b: within 1.5s"),
            "a: no reply within 1s; b: within 1.5s"
        );
        assert_eq!(whole_millis("within 607ms"), "within 607ms");
        assert_eq!(whole_millis("within reach"), "within reach");
        assert_eq!(whole_millis("nothing to change"), "nothing to change");
    }
}
