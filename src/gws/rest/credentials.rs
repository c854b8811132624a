//! Who logs in: [`Credentials`], a [`Password`] that is never printed, and the [`Me`] the
//! server describes after login.

use std::fmt;

use serde_json::value::RawValue;

/// A password. `Debug` prints `***`; there is no `Display`, so it cannot end up in a
/// formatted message by accident.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password text, for the one place that needs it: the `Authorization` header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_owned())
    }
}

/// A GWS user name and password. `Debug` shows the user name only.
#[derive(Clone, Debug)]
pub struct Credentials {
    user: String,
    password: Password,
}

impl Credentials {
    /// Credentials for `user`.
    pub fn new(user: impl Into<String>, password: impl Into<Password>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &Password {
        &self.password
    }
}

/// The logged-in user, as `GET {base}/api/v2/me` describes it.
#[derive(Clone, Debug)]
pub struct Me {
    /// The user's `id`, if the server sent one.
    pub id: Option<String>,
    /// The user's `userName`, if the server sent one.
    pub user_name: Option<String>,
    /// The whole `user` object, exactly as received.
    pub user: Box<RawValue>,
}
