//! Channel names and wildcard matching.
//!
//! A channel name is an absolute path of segments, `/v2/me/calls`. A subscription may end in
//! `*` (exactly one more segment) or `**` (one or more segments).

use std::fmt;

/// A validated channel name or pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

/// Why a string is not a channel name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel name {name:?}: {reason}")]
pub struct InvalidChannel {
    /// The rejected text.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ChannelName {
    /// Validates `name`: starts with `/`, no empty segments, wildcards only as the whole
    /// last segment.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidChannel> {
        let name = name.into();
        let bad = |reason| {
            Err(InvalidChannel {
                name: name.clone(),
                reason,
            })
        };
        if !name.starts_with('/') {
            return bad("must start with '/'");
        }
        if name.len() == 1 {
            return bad("must have at least one segment");
        }
        let segments: Vec<&str> = name[1..].split('/').collect();
        let last = segments.len() - 1;
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() {
                return bad("has an empty segment");
            }
            if seg.contains('*') && (i != last || (*seg != "*" && *seg != "**")) {
                return bad("wildcards '*' and '**' may only be the whole last segment");
            }
        }
        Ok(ChannelName(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `/meta/...`.
    pub fn is_meta(&self) -> bool {
        self.0.starts_with("/meta/")
    }

    /// True for `/service/...`.
    pub fn is_service(&self) -> bool {
        self.0.starts_with("/service/")
    }

    /// True when the name ends in `*` or `**`.
    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with("/*") || self.0.ends_with("/**")
    }

    /// True when this name, taken as a subscription pattern, matches `channel`.
    pub fn matches(&self, channel: &str) -> bool {
        channel_matches(&self.0, channel)
    }
}

/// True when `pattern` (a channel name, possibly ending in `*` or `**`) matches `channel`.
pub fn channel_matches(pattern: &str, channel: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/**") {
        return channel.len() > prefix.len() + 1
            && channel.starts_with(prefix)
            && channel.as_bytes()[prefix.len()] == b'/';
    }
    if let Some(prefix) = pattern.strip_suffix("/*") {
        return match channel.strip_prefix(prefix) {
            Some(rest) => rest.len() > 1 && rest.starts_with('/') && !rest[1..].contains('/'),
            None => false,
        };
    }
    pattern == channel
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ChannelName {
    type Err = InvalidChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelName::new(s)
    }
}

impl TryFrom<&str> for ChannelName {
    type Error = InvalidChannel;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        ChannelName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_absolute_with_wildcards_last() {
        assert!(ChannelName::new("/v2/me/calls").is_ok());
        assert!(ChannelName::new("/v2/**").is_ok());
        assert!(ChannelName::new("/v2/*").is_ok());
        for bad in [
            "", "/", "v2/me", "/v2//me", "/v2/", "/*/calls", "/v2/ca*", "/v2/***",
        ] {
            assert!(ChannelName::new(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn single_star_matches_exactly_one_more_segment() {
        let p = ChannelName::new("/v2/me/*").unwrap();
        assert!(p.matches("/v2/me/calls"));
        assert!(!p.matches("/v2/me"));
        assert!(!p.matches("/v2/me/calls/x"));
        assert!(!p.matches("/v2/mex/calls"));
    }

    #[test]
    fn double_star_matches_one_or_more_segments() {
        let p = ChannelName::new("/v2/**").unwrap();
        assert!(p.matches("/v2/me"));
        assert!(p.matches("/v2/me/calls"));
        assert!(!p.matches("/v2"));
        assert!(!p.matches("/v2x/me"));
    }

    #[test]
    fn plain_names_match_only_themselves() {
        let p = ChannelName::new("/v2/me/calls").unwrap();
        assert!(p.matches("/v2/me/calls"));
        assert!(!p.matches("/v2/me/calls/1"));
    }
}
