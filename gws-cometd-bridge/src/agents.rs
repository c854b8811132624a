//! The agents file (`user:password`, one per line) and shards (`--shard K/N`).
//!
//! # File format
//!
//! One agent per line, `user:password`, split at the first `:` (a password may contain
//! `:`, a user name may not). Blank lines and lines starting with `#` are skipped; a
//! trailing `\r` is dropped. A user listed twice is an error. Errors name the line number
//! and never quote the line (it holds a password).
//!
//! A line may start with fields, `name=value` words followed by spaces, before
//! `user:password`. The one field is `api=v2` or `api=v3`: the GWS generation of this
//! agent's feed ([`Agent::api`]); an agent without it speaks the bridge's
//! [`GwsApi::api`](crate::GwsApi) (`--api`). So a word with `=` and no `:` followed by a
//! space at the start of a line is taken for a field, never for a user name.
//!
//! ```text
//! # follows agent1 on --api's generation, \agent2 on the Workspace API v3
//! agent1:secret
//! api=v3 \agent2:secret
//! ```
//!
//! The v3 login settings (client id, redirect URI, secret, API key) are the bridge's, the
//! same for every v3 agent: secrets never go in this file.
//!
//! The file holds passwords: on Unix, [`AgentsFile::load`] refuses a file that its group or
//! others may read or write (mode `& 0o077` not 0), like `ssh` does for keys, unless told to
//! only warn.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use super::error::BridgeError;
use super::names::shard_of;
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::Api;

/// One agent to follow: who logs in, and on which GWS generation when not the bridge's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Agent {
    /// The user name and password.
    pub credentials: Credentials,
    /// The generation of this agent's feed (`api=` in the agents file); `None`: the
    /// bridge's ([`GwsApi::api`](crate::GwsApi)).
    pub api: Option<Api>,
}

impl Agent {
    /// An agent on the generation `api` (`None`: the bridge's).
    pub fn new(credentials: Credentials, api: Option<Api>) -> Self {
        Agent { credentials, api }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        self.credentials.user()
    }
}

impl From<Credentials> for Agent {
    /// An agent on the bridge's generation.
    fn from(credentials: Credentials) -> Self {
        Agent::new(credentials, None)
    }
}

/// The agents of a file, in file order.
#[derive(Debug, Clone, Default)]
pub struct AgentsFile {
    /// One per line.
    pub agents: Vec<Agent>,
}

/// What to do with an agents file that others may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Permissions {
    /// Refuse it (the default).
    #[default]
    Refuse,
    /// Log a warning and use it.
    Warn,
}

impl AgentsFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path, permissions: Permissions) -> Result<Self, BridgeError> {
        let err = |reason: String| BridgeError::AgentsFile {
            path: path.to_owned(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        if let Some(mode) = open_mode(&meta) {
            let msg = format!(
                "it holds passwords but its group or others may access it (mode {mode:03o}); \
                 run `chmod 600 {}`",
                path.display()
            );
            match permissions {
                Permissions::Refuse => return Err(err(msg)),
                Permissions::Warn => tracing::warn!("agents file {}: {msg}", path.display()),
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        Self::parse(&text).map_err(err)
    }

    /// Parses the file's text; the error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut agents = Vec::new();
        let mut seen = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let (api, line) = fields(line).map_err(|e| format!("line {n}: {e}"))?;
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!(
                    "line {n}: expected user:password (after api=v2|v3, if any)"
                ));
            };
            if user.is_empty() || user.trim() != user {
                return Err(format!(
                    "line {n}: the user name is empty or has surrounding spaces"
                ));
            }
            if password.is_empty() {
                return Err(format!("line {n}: user {user:?} has an empty password"));
            }
            if !seen.insert(user.to_owned()) {
                return Err(format!("line {n}: user {user:?} is listed twice"));
            }
            agents.push(Agent::new(Credentials::new(user, password), api));
        }
        if agents.is_empty() {
            return Err("no agent in it (one user:password per line)".into());
        }
        Ok(AgentsFile { agents })
    }

    /// Whether some agent's line says `api=v3`.
    pub fn any_v3(&self) -> bool {
        self.agents.iter().any(|a| a.api == Some(Api::V3))
    }

    /// The agents of `shard`.
    pub fn shard(self, shard: Shard) -> Vec<Agent> {
        self.agents
            .into_iter()
            .filter(|a| shard.contains(a.user()))
            .collect()
    }
}

/// Splits the leading `name=value` fields off a line (see the [module docs](self)): the
/// agent's generation, if said, and the rest of the line. Errors quote only the field, which
/// holds no `:` and so no part of the password.
fn fields(line: &str) -> Result<(Option<Api>, &str), String> {
    let mut api = None;
    let mut rest = line;
    while let Some((word, after)) = rest.split_once(char::is_whitespace) {
        let Some((name, value)) = word.split_once('=').filter(|_| !word.contains(':')) else {
            break;
        };
        match name {
            "api" if api.is_some() => return Err("api= is given twice".into()),
            "api" => {
                api =
                    Some(value.parse::<Api>().map_err(|_| {
                        format!("unknown api {value:?} (expected api=v2 or api=v3)")
                    })?)
            }
            _ => {
                return Err(format!(
                    "unknown field {name:?} before user:password (the one field is \
                     api=v2|v3)"
                ))
            }
        }
        rest = after.trim_start();
    }
    Ok((api, rest))
}

#[cfg(unix)]
fn open_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn open_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// Shard `index` of `count` (`--shard K/N`, K counted from 0): the agents whose name hashes
/// there ([`shard_of`](super::names::shard_of())). N processes with shards `0/N` … `N-1/N`
/// split one agents file with no agent in two and none left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many.
    pub count: u32,
}

impl Shard {
    /// The whole file: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether agent `name` is in this shard.
    pub fn contains(&self, name: &str) -> bool {
        shard_of(name, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| BridgeError::InvalidShard {
            given: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected K/N, e.g. 0/2"))?;
        let k: u32 = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if n == 0 {
            return Err(bad("N must be at least 1"));
        }
        if k >= n {
            return Err(bad("K counts from 0 and must be below N"));
        }
        Ok(Shard { index: k, count: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_should_parse_users_and_passwords_with_colons() {
        let f = AgentsFile::parse("# agents\n\nalice:pa:ss\r\nbob:x\n").unwrap();
        let users: Vec<_> = f.agents.iter().map(|c| c.user()).collect();
        assert_eq!(users, ["alice", "bob"]);
        assert_eq!(f.agents[0].credentials.password().expose_secret(), "pa:ss");
        assert!(f.agents.iter().all(|a| a.api.is_none()) && !f.any_v3());
    }

    #[test]
    fn an_api_field_before_a_user_should_choose_that_agents_generation() {
        let f = AgentsFile::parse(
            "api=v3 \\alice:pa ss=x\napi=v2\tbob:x\ncarol:api=v3 y\napi=v3   dave:z\n",
        )
        .unwrap();
        let got: Vec<_> = f
            .agents
            .iter()
            .map(|a| (a.user(), a.api, a.credentials.password().expose_secret()))
            .collect();
        assert_eq!(
            got,
            [
                ("\\alice", Some(Api::V3), "pa ss=x"),
                ("bob", Some(Api::V2), "x"),
                ("carol", None, "api=v3 y"),
                ("dave", Some(Api::V3), "z"),
            ]
        );
        assert!(f.any_v3());
    }

    #[test]
    fn a_bad_field_should_be_named_with_its_line_without_the_password() {
        for (text, want) in [
            (
                "alice:x\napi=v4 bob:s3cr3t\n",
                "line 2: unknown api \"v4\" (expected api=v2 or api=v3)",
            ),
            (
                "api=V3 bob:s3cr3t\n",
                "line 1: unknown api \"V3\" (expected api=v2 or api=v3)",
            ),
            (
                "apx=v3 bob:s3cr3t\n",
                "line 1: unknown field \"apx\" before user:password",
            ),
            ("api=v3 api=v2 bob:s3cr3t\n", "line 1: api= is given twice"),
            (
                "a:x\n\napi=v3 \n",
                "line 3: expected user:password (after api=v2|v3, if any)",
            ),
        ] {
            let e = AgentsFile::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn bad_lines_should_be_named_without_their_password() {
        for (text, want) in [
            ("alice:x\nbob\n", "line 2: expected user:password"),
            ("alice:\n", "line 1: user \"alice\" has an empty password"),
            (":secret\n", "line 1: the user name is empty"),
            ("a:s3cr3t\na:other\n", "line 2: user \"a\" is listed twice"),
            ("# nothing\n", "no agent"),
        ] {
            let e = AgentsFile::parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
            assert!(!e.contains("s3cr3t") && !e.contains("secret"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_should_be_refused_unless_told_to_warn() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents");
        std::fs::write(&path, "alice:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = AgentsFile::load(&path, Permissions::Refuse).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert_eq!(
            AgentsFile::load(&path, Permissions::Warn)
                .unwrap()
                .agents
                .len(),
            1
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            AgentsFile::load(&path, Permissions::Refuse)
                .unwrap()
                .agents
                .len(),
            1
        );
    }

    #[test]
    fn shards_should_parse_and_split_a_file_without_overlap() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let text: String = (0..100).map(|i| format!("agent{i}:pw\n")).collect();
        let mut all = Vec::new();
        for k in 0..3 {
            let part = AgentsFile::parse(&text)
                .unwrap()
                .shard(Shard { index: k, count: 3 });
            assert!(!part.is_empty());
            all.extend(part.into_iter().map(|c| c.user().to_owned()));
        }
        all.sort();
        let mut want: Vec<_> = (0..100).map(|i| format!("agent{i}")).collect();
        want.sort();
        assert_eq!(all, want);
    }
}
