//! The two GWS API generations the crate speaks: API v2 (GWS 8.5, `/api/v2`) and the
//! Workspace API v3 (GWS 9, Genesys Multicloud CX, `/workspace/v3`). One feed, one store and
//! one change format serve both; what differs is named here.

use std::fmt;
use std::str::FromStr;

/// The notification channel of v3 voice events (`CallStateChanged`, `DnStateChanged`,
/// `EventError`, ...).
pub const V3_VOICE_CHANNEL: &str = "/workspace/v3/voice";
/// The v3 channel of the workspace's initialization progress.
pub const V3_INITIALIZATION_CHANNEL: &str = "/workspace/v3/initialization";

/// A GWS API generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Api {
    /// API v2, GWS 8.5: Basic login on `/api/v2/me`, notifications on `/v2/me/calls`.
    #[default]
    V2,
    /// Workspace API v3, GWS 9 / Multicloud CX: OAuth login (`/auth/v3`), then
    /// `/workspace/v3`; notifications on `/workspace/v3/voice`.
    V3,
}

impl Api {
    /// The CometD endpoint, relative to the base URL.
    pub fn notifications_path(self) -> &'static str {
        match self {
            Api::V2 => "/api/v2/notifications",
            Api::V3 => "/workspace/v3/notifications",
        }
    }

    /// The channel call notifications come on.
    pub fn calls_channel(self) -> &'static str {
        match self {
            Api::V2 => super::wire::CALLS_CHANNEL,
            Api::V3 => V3_VOICE_CHANNEL,
        }
    }

    /// The generation whose notification channel `channel` is: `/v2/...` (`/v2/me/calls`,
    /// `/v2/me/devices`) is v2, `/workspace/v3/...` (voice, initialization, media) v3;
    /// `None` for any other (`/meta/...`, a fixture's own `/gws-cometd/...` lines). How a
    /// recording tells which generation it was made on.
    pub fn of_channel(channel: &str) -> Option<Api> {
        if channel.starts_with("/v2/") {
            Some(Api::V2)
        } else if channel.starts_with("/workspace/v3/") {
            Some(Api::V3)
        } else {
            None
        }
    }

    /// `v2` or `v3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an API generation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown GWS API {0:?}: expected v2 or v3")]
pub struct UnknownApi(pub String);

impl FromStr for Api {
    type Err = UnknownApi;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v2" => Ok(Api::V2),
            "v3" => Ok(Api::V3),
            other => Err(UnknownApi(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_channels() {
        assert_eq!("v3".parse::<Api>(), Ok(Api::V3));
        assert_eq!(Api::default(), Api::V2);
        assert!("v4"
            .parse::<Api>()
            .unwrap_err()
            .to_string()
            .contains("v2 or v3"));
        assert_eq!(Api::V3.notifications_path(), "/workspace/v3/notifications");
        assert_eq!(Api::V2.calls_channel(), "/v2/me/calls");
        assert_eq!(Api::V3.to_string(), "v3");
    }

    #[test]
    fn a_channel_names_its_generation() {
        for api in [Api::V2, Api::V3] {
            assert_eq!(Api::of_channel(api.calls_channel()), Some(api));
        }
        assert_eq!(Api::of_channel("/v2/me/devices"), Some(Api::V2));
        assert_eq!(Api::of_channel(V3_INITIALIZATION_CHANNEL), Some(Api::V3));
        for other in [
            "/meta/connect",
            "/gws-cometd/catch-up",
            "/v2",
            "/workspace/v2/x",
        ] {
            assert_eq!(Api::of_channel(other), None, "{other}");
        }
    }
}
