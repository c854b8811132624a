//! [`TransportError`]: why one exchange with the server produced no (complete) reply.

use std::time::Duration;

use crate::bayeux::{BayeuxError, Failure, FailureKind, Message};

/// Any error, boxed, as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request produced no complete reply, or why a transport could not be set up. URLs in
/// it never carry credentials, and no variant holds a request's headers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Fatal: the URL cannot be used.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, credentials, query and fragment removed.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fatal: a setting is unusable (a header, a proxy, a certificate file, the TLS stack).
    #[error("{what}: {reason}")]
    Config {
        /// The setting.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Retryable: the server could not be reached (connection refused, DNS, TLS handshake);
    /// the request was not sent.
    #[error("{url}: cannot connect: {detail}")]
    Connect {
        /// The request URL.
        url: String,
        /// The causes, on one line.
        detail: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Retryable: the exchange broke off after the request was sent (reset, closed, a body
    /// cut short): a reply may have been lost.
    #[error("{url}: the exchange broke off: {detail}")]
    Interrupted {
        /// The request URL.
        url: String,
        /// The causes, on one line.
        detail: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The server answered an HTTP status other than 2xx. Retryable unless it refuses the
    /// credentials (see [`TransportError::is_auth`]).
    #[error("{url}: HTTP {status}{}", excerpt(.body))]
    Status {
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
    /// Retryable: no reply, or no further part of one, within the deadline.
    #[error("{url}: no reply within {after:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// How long was waited.
        after: Duration,
    },
    /// Retryable: the reply is not valid Bayeux JSON.
    #[error("{url}: malformed reply: {message}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What is wrong, and where.
        message: String,
    },
    /// Retryable: the reply was over a size limit.
    #[error("{url}: reply larger than the {limit}-byte limit (raise it with {option})")]
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
        /// The option that sets the limit.
        option: &'static str,
    },
}

impl TransportError {
    /// How the protocol should take this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            TransportError::InvalidUrl { .. }
            | TransportError::Config { .. }
            | TransportError::Connect { .. } => FailureKind::NotSent,
            TransportError::Interrupted { .. } => FailureKind::Interrupted,
            TransportError::Timeout { .. } => FailureKind::Timeout,
            TransportError::Malformed { .. } => FailureKind::Malformed,
            TransportError::TooLarge { .. } => FailureKind::TooLarge,
            TransportError::Status { status, body, .. } => {
                if names_unknown_client(body) {
                    FailureKind::UnknownClient
                } else if matches!(status, 401 | 403) {
                    FailureKind::Unauthorized
                } else {
                    FailureKind::Rejected
                }
            }
        }
    }

    /// The HTTP status, when the server answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            TransportError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            TransportError::InvalidUrl { .. } | TransportError::Config { .. }
        ) && !self.is_auth()
    }

    /// True when the server refused the credentials (HTTP 401/403 not about the client id).
    pub fn is_auth(&self) -> bool {
        self.kind() == FailureKind::Unauthorized
    }

    /// True for a request that hit its deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, TransportError::Timeout { .. })
    }
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Failure {
        Failure::new(e.kind(), e)
    }
}

/// True when an error body carries a Bayeux "unknown client" error (a batch, or the bare
/// error string some servers send): the session is gone and a new handshake will help.
fn names_unknown_client(body: &str) -> bool {
    match Message::parse_batch(body.as_bytes()) {
        Ok(batch) => batch
            .iter()
            .filter_map(Message::bayeux_error)
            .any(|e| e.is_unknown_client()),
        Err(_) => BayeuxError::parse(body.trim()).is_unknown_client(),
    }
}

/// `": <start of body>"`: bodies can be whole HTML pages; a prefix says what happened.
fn excerpt(body: &str) -> String {
    const SHOWN: usize = 200;
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    if let Some(page) = html_page(body) {
        return format!(": {page}, not a GWS or Bayeux reply");
    }
    // One line: a multi-line body would break the error's line in logs.
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = one_line.chars().take(SHOWN).collect();
    let more = if short.len() < one_line.len() {
        "..."
    } else {
        ""
    };
    format!(": {short}{more}")
}

/// `an HTML page titled "..." (N bytes)` when `body` is a web page: said, not echoed.
fn html_page(body: &str) -> Option<String> {
    let head: String = body
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if !(head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<html"))
    {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|at| at + "<title>".len())
        .and_then(|start| {
            let end = start + lower[start..].find("</title>")?;
            // Same offsets: to_ascii_lowercase keeps every byte where it was.
            body.get(start..end)
        })
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .map(|t| format!(" titled {:?}", t.chars().take(80).collect::<String>()))
        .unwrap_or_default();
    Some(format!("an HTML page{title} ({} bytes)", body.len()))
}

/// The causes of `e`, on one line, without repeating a cause its parent already quotes.
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, body: &str) -> TransportError {
        TransportError::Status {
            url: "http://h/cometd".into(),
            status,
            body: body.into(),
        }
    }

    #[test]
    fn statuses_are_sorted_into_protocol_kinds_by_status_and_body() {
        assert_eq!(status(401, "").kind(), FailureKind::Unauthorized);
        assert_eq!(status(403, "Forbidden").kind(), FailureKind::Unauthorized);
        assert_eq!(status(500, "").kind(), FailureKind::Rejected);
        let unknown =
            r#"[{"channel":"/meta/connect","successful":false,"error":"402::Unknown client"}]"#;
        for code in [400, 401, 403, 500] {
            assert_eq!(
                status(code, unknown).kind(),
                FailureKind::UnknownClient,
                "{code}"
            );
        }
        assert_eq!(
            status(403, "403::Unknown client").kind(),
            FailureKind::UnknownClient
        );
        assert!(status(401, "").is_auth());
        assert!(!status(401, "").is_retryable());
        assert!(status(503, "").is_retryable());
        assert_eq!(status(503, "").status(), Some(503));
        assert_eq!(
            status(
                401,
                r#"{"channel":"/meta/connect","error":"402::Unknown client"}"#
            )
            .kind(),
            FailureKind::UnknownClient
        );
        assert!(!status(403, "403::Unknown client").is_auth());
        let long = status(500, &"x".repeat(1000)).to_string();
        assert!(long.len() < 300 && long.ends_with("..."), "{long}");
    }

    #[test]
    fn a_web_page_is_said_not_echoed_and_other_bodies_stay_on_one_line() {
        let page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head><title>Error\n response</title>\
                    </head><body><h1>Not Found</h1></body></html>\n";
        assert_eq!(
            status(404, page).to_string(),
            format!(
                "http://h/cometd: HTTP 404: an HTML page titled \"Error response\" ({} bytes), \
                 not a GWS or Bayeux reply",
                page.trim().len()
            )
        );
        assert_eq!(
            status(502, "<html><body>bad gateway</body></html>").to_string(),
            "http://h/cometd: HTTP 502: an HTML page (37 bytes), not a GWS or Bayeux reply"
        );
        assert_eq!(
            status(500, "line one\n  line two\n").to_string(),
            "http://h/cometd: HTTP 500: line one line two"
        );
    }

    #[test]
    fn a_failure_keeps_the_error_for_the_application() {
        let f = Failure::from(TransportError::Timeout {
            url: "http://h/cometd".into(),
            after: Duration::from_secs(3),
        });
        assert_eq!(f.kind(), FailureKind::Timeout);
        let e = f.error().downcast_ref::<TransportError>().unwrap();
        assert!(e.is_timeout());
        assert_eq!(f.to_string(), "http://h/cometd: no reply within 3s");
    }
}
