//! [`RestError`]: why a GWS REST request failed, and what GWS's `statusCode` meant.

use crate::transport::TransportError;

/// Why a GWS REST request failed. URLs in it never carry credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The request could not be made or its reply not read: unreachable, interrupted, timed
    /// out, an HTTP error status without a GWS `statusCode`, a reply over the size limit.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Fatal: the server refused the credentials (HTTP 401/403 on login, or refused again
    /// right after a fresh login). `hint` says what to check.
    #[error("{url}: HTTP {status}: {hint}")]
    Unauthorized {
        /// The request URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What to check.
        hint: String,
    },
    /// Fatal for this request: GWS answered a non-zero `statusCode` (the call is unknown, the
    /// operation does not fit the call's state, a parameter is missing, ...). See
    /// [`GwsStatus`] for what each code means; `message` is the server's `statusMessage`.
    #[error("{operation}{}: GWS statusCode {} ({status}){}",
        .call_id.as_deref().map(|c| format!(" on call {c}")).unwrap_or_default(),
        .status.code(),
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Gws {
        /// The operation (`AttachUserData`, `GetCalls`, `Login`, ...).
        operation: String,
        /// The call the operation was for, if any.
        call_id: Option<String>,
        /// The `statusCode` and its meaning.
        status: GwsStatus,
        /// The server's `statusMessage`, if it sent one (truncated).
        message: Option<String>,
    },
    /// Fatal for this request: a user-data value the API cannot carry (v3 user data holds
    /// strings, integers and nested key-value lists only). Nothing was sent.
    #[error("user-data value of key {key:?}: {reason}")]
    InvalidValue {
        /// The pair's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Retryable: the reply is not what GWS sends.
    #[error("{url}: malformed reply: {message}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl RestError {
    /// True when a later attempt of the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RestError::Transport(e) => e.is_retryable(),
            RestError::Malformed { .. } => true,
            RestError::Unauthorized { .. }
            | RestError::Gws { .. }
            | RestError::InvalidValue { .. } => false,
        }
    }

    /// True when the server refused the credentials.
    pub fn is_auth(&self) -> bool {
        match self {
            RestError::Unauthorized { .. } => true,
            RestError::Transport(e) => e.is_auth(),
            _ => false,
        }
    }

    /// True for a request that hit its deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RestError::Transport(e) if e.is_timeout())
    }

    /// The GWS `statusCode`, when GWS refused the request with one.
    pub fn gws_status(&self) -> Option<GwsStatus> {
        match self {
            RestError::Gws { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A GWS `statusCode` other than 0 (success), with its documented meaning as `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GwsStatus {
    /// 1: a required parameter is missing or malformed.
    MissingParameter,
    /// 2: the operation is not valid in the call's (or device's) current state.
    InvalidState,
    /// 3: the request is forbidden (GWS also uses it for a missing or invalid CSRF token).
    Forbidden,
    /// 4: the server failed internally.
    InternalError,
    /// 5: the user has no permission for the operation.
    NoPermission,
    /// 6: the resource (call, device) does not exist.
    NotFound,
    /// 7: the operation succeeded only in part.
    PartialSuccess,
    /// 20: the request is not authenticated.
    NotAuthenticated,
    /// Any other code.
    Other(i64),
}

impl GwsStatus {
    /// The status for a numeric `statusCode` (0 is success and has no `GwsStatus`; it maps
    /// to `Other(0)`).
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::MissingParameter,
            2 => Self::InvalidState,
            3 => Self::Forbidden,
            4 => Self::InternalError,
            5 => Self::NoPermission,
            6 => Self::NotFound,
            7 => Self::PartialSuccess,
            20 => Self::NotAuthenticated,
            other => Self::Other(other),
        }
    }

    /// The numeric `statusCode`.
    pub fn code(self) -> i64 {
        match self {
            Self::MissingParameter => 1,
            Self::InvalidState => 2,
            Self::Forbidden => 3,
            Self::InternalError => 4,
            Self::NoPermission => 5,
            Self::NotFound => 6,
            Self::PartialSuccess => 7,
            Self::NotAuthenticated => 20,
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for GwsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingParameter => "missing parameter",
            Self::InvalidState => "invalid for the current state",
            Self::Forbidden => "forbidden",
            Self::InternalError => "internal server error",
            Self::NoPermission => "no permission",
            Self::NotFound => "not found",
            Self::PartialSuccess => "partial success",
            Self::NotAuthenticated => "not authenticated",
            Self::Other(_) => "unknown status",
        })
    }
}
