//! The agents file (`user:password`, one per line) and shards (`--shard K/N`).
//!
//! # File format
//!
//! One agent per line, `user:password`, split at the first `:` (a password may contain
//! `:`, a user name may not). Blank lines and lines starting with `#` are skipped; a
//! trailing `\r` is dropped. A user listed twice is an error. Errors name the line number
//! and never quote the line (it holds a password).
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

/// The agents of a file, in file order.
#[derive(Debug, Clone, Default)]
pub struct AgentsFile {
    /// The credentials, one per agent.
    pub agents: Vec<Credentials>,
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
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!("line {n}: expected user:password"));
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
            agents.push(Credentials::new(user, password));
        }
        if agents.is_empty() {
            return Err("no agent in it (one user:password per line)".into());
        }
        Ok(AgentsFile { agents })
    }

    /// The agents of `shard`.
    pub fn shard(self, shard: Shard) -> Vec<Credentials> {
        self.agents
            .into_iter()
            .filter(|c| shard.contains(c.user()))
            .collect()
    }
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
        assert_eq!(f.agents[0].password().expose_secret(), "pa:ss");
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
