//! The call operations: user data (`AttachUserData`, `UpdateUserData`, `DeleteUserDataPair`,
//! `DeleteUserData`) on `POST /api/v2/me/calls/{id}`, and the values they carry.
//!
//! GWS answers `{"statusCode":0}`; the effect arrives later as a notification carrying the
//! whole call.

use reqwest::Method;

use super::{GwsSession, Result};
use crate::json::quote;

/// A user-data value given on the command line or by a program.
///
/// GWS user data holds strings and integers; values are written out as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserValue {
    /// A string value.
    String(String),
    /// An integer, kept as its exact decimal text so integers of any size pass unchanged.
    /// Build one with [`UserValue::integer`] (which checks the text) or `From<i64>`.
    Integer(String),
}

impl UserValue {
    /// An integer from its decimal text; `None` unless the text is a JSON integer literal
    /// (`-?(0|[1-9][0-9]*)`).
    pub fn integer(text: &str) -> Option<Self> {
        is_json_integer(text).then(|| UserValue::Integer(text.to_owned()))
    }

    /// The value as JSON text: a quoted, escaped string or the integer's digits.
    pub fn to_json(&self) -> String {
        match self {
            UserValue::String(s) => quote(s),
            UserValue::Integer(digits) => digits.clone(),
        }
    }
}

impl From<&str> for UserValue {
    fn from(s: &str) -> Self {
        UserValue::String(s.to_owned())
    }
}

impl From<String> for UserValue {
    fn from(s: String) -> Self {
        UserValue::String(s)
    }
}

impl From<i64> for UserValue {
    fn from(n: i64) -> Self {
        UserValue::Integer(n.to_string())
    }
}

fn is_json_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// Writes pairs as a JSON object text, in order, keeping duplicate keys.
fn user_data_json(pairs: &[(String, UserValue)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(key));
        out.push(':');
        out.push_str(&value.to_json());
    }
    out.push('}');
    out
}

impl GwsSession {
    /// `AttachUserData`: adds the pairs to the call's user data, in order. GWS appends even
    /// when a key already exists, so the key then appears twice.
    pub async fn attach_user_data(
        &self,
        call_id: &str,
        pairs: &[(String, UserValue)],
    ) -> Result<()> {
        let body = format!(
            r#"{{"operationName":"AttachUserData","userData":{}}}"#,
            user_data_json(pairs)
        );
        self.call_operation(call_id, "AttachUserData", body).await
    }

    /// `UpdateUserData`: sets each key to its value, replacing every existing occurrence or
    /// adding the key when absent.
    pub async fn update_user_data(
        &self,
        call_id: &str,
        pairs: &[(String, UserValue)],
    ) -> Result<()> {
        let body = format!(
            r#"{{"operationName":"UpdateUserData","userData":{}}}"#,
            user_data_json(pairs)
        );
        self.call_operation(call_id, "UpdateUserData", body).await
    }

    /// `DeleteUserDataPair`: removes every occurrence of `key` from the call's user data.
    pub async fn delete_user_data_pair(&self, call_id: &str, key: &str) -> Result<()> {
        let body = format!(
            r#"{{"operationName":"DeleteUserDataPair","key":{}}}"#,
            quote(key)
        );
        self.call_operation(call_id, "DeleteUserDataPair", body)
            .await
    }

    /// `DeleteUserData`: removes all of the call's user data.
    pub async fn delete_user_data(&self, call_id: &str) -> Result<()> {
        let body = r#"{"operationName":"DeleteUserData"}"#.to_owned();
        self.call_operation(call_id, "DeleteUserData", body).await
    }

    pub(super) async fn call_operation(
        &self,
        call_id: &str,
        operation: &str,
        body: String,
    ) -> Result<()> {
        let url = self.url(&["me", "calls", call_id]);
        self.request(Method::POST, &url, Some(body), operation, Some(call_id))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_text_keeps_order_duplicates_and_exact_integers() {
        let pairs = vec![
            ("B".to_owned(), UserValue::from("x\"y")),
            (
                "A".to_owned(),
                UserValue::integer("99999999999999999999").unwrap(),
            ),
            ("B".to_owned(), UserValue::from(2)),
        ];
        assert_eq!(
            user_data_json(&pairs),
            r#"{"B":"x\"y","A":99999999999999999999,"B":2}"#
        );
        assert_eq!(UserValue::integer("01"), None);
    }
}
