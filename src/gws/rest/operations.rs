//! The call operations on `POST /api/v2/me/calls/{id}`: user data (`AttachUserData`,
//! `UpdateUserData`, `DeleteUserDataPair`, `DeleteUserData`) and the values they carry, and
//! call control (`Answer`, `Hold`, `Retrieve`, `Hangup`).
//!
//! GWS answers `{"statusCode":0}`; the effect arrives later as a notification carrying the
//! whole call.
//!
//! On the Workspace API v3 the same methods send
//! `POST /workspace/v3/voice/calls/{id}/{attach-user-data|update-user-data|
//! delete-user-data-pair|answer|hold|retrieve|release}` with `{"data":{...}}`, user data as a
//! KVList (see `kvlist`); v3 has no "delete all": [`GwsSession::delete_user_data`] reads the
//! call and deletes each of its keys.

use reqwest::Method;

use super::kvlist::kvlist_json;
use super::{GwsSession, RestError, Result};
use crate::gws::model::RawJson;
use crate::gws::Api;
use crate::json::quote;

/// A user-data value given on the command line or by a program.
///
/// GWS user data holds strings and integers, possibly nested key-value lists; values are
/// written out as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserValue {
    /// A string value.
    String(String),
    /// An integer, kept as its exact decimal text so integers of any size pass unchanged.
    /// Build one with [`UserValue::integer`] (which checks the text) or `From<i64>`.
    Integer(String),
    /// Any JSON value (a nested object, a list, a number, ...), sent exactly as written:
    /// integers of any size and duplicate keys in nested objects survive, because the text
    /// is checked, never parsed into a tree. Build one with [`UserValue::json`].
    Json(RawJson),
}

impl UserValue {
    /// An integer from its decimal text; `None` unless the text is a JSON integer literal
    /// (`-?(0|[1-9][0-9]*)`).
    pub fn integer(text: &str) -> Option<Self> {
        is_json_integer(text).then(|| UserValue::Integer(text.to_owned()))
    }

    /// A JSON value from its text, checked to be exactly one JSON value; surrounding
    /// whitespace is dropped, everything else is kept as written.
    pub fn json(text: &str) -> std::result::Result<Self, serde_json::Error> {
        RawJson::from_text(text).map(UserValue::Json)
    }

    /// The value as JSON text: a quoted, escaped string, the integer's digits, or the JSON
    /// value's text.
    pub fn to_json(&self) -> String {
        match self {
            UserValue::String(s) => quote(s),
            UserValue::Integer(digits) => digits.clone(),
            UserValue::Json(raw) => raw.get().to_owned(),
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

pub(super) fn is_json_integer(text: &str) -> bool {
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
        if self.api() == Api::V3 {
            let data = format!(r#"{{"userData":{}}}"#, kvlist_json(pairs)?);
            return self
                .operation_v3(call_id, "attach-user-data", "AttachUserData", &data)
                .await;
        }
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
        if self.api() == Api::V3 {
            let data = format!(r#"{{"userData":{}}}"#, kvlist_json(pairs)?);
            return self
                .operation_v3(call_id, "update-user-data", "UpdateUserData", &data)
                .await;
        }
        let body = format!(
            r#"{{"operationName":"UpdateUserData","userData":{}}}"#,
            user_data_json(pairs)
        );
        self.call_operation(call_id, "UpdateUserData", body).await
    }

    /// `DeleteUserDataPair`: removes every occurrence of `key` from the call's user data.
    pub async fn delete_user_data_pair(&self, call_id: &str, key: &str) -> Result<()> {
        if self.api() == Api::V3 {
            let data = format!(r#"{{"key":{}}}"#, quote(key));
            return self
                .operation_v3(
                    call_id,
                    "delete-user-data-pair",
                    "DeleteUserDataPair",
                    &data,
                )
                .await;
        }
        let body = format!(
            r#"{{"operationName":"DeleteUserDataPair","key":{}}}"#,
            quote(key)
        );
        self.call_operation(call_id, "DeleteUserDataPair", body)
            .await
    }

    /// `DeleteUserData`: removes all of the call's user data. On v3, which has no such
    /// operation, the call's keys are read from the current calls and each is deleted with
    /// `delete-user-data-pair`; a call not among them is [`GwsStatus::NotFound`](super::GwsStatus::NotFound).
    pub async fn delete_user_data(&self, call_id: &str) -> Result<()> {
        if self.api() == Api::V3 {
            for key in self.user_data_keys_v3(call_id).await? {
                self.delete_user_data_pair(call_id, &key).await?;
            }
            return Ok(());
        }
        let body = r#"{"operationName":"DeleteUserData"}"#.to_owned();
        self.call_operation(call_id, "DeleteUserData", body).await
    }

    /// `Answer`: answers a ringing call.
    pub async fn answer(&self, call_id: &str) -> Result<()> {
        self.call_control(call_id, "Answer").await
    }

    /// `Hold`: puts an established call on hold.
    pub async fn hold(&self, call_id: &str) -> Result<()> {
        self.call_control(call_id, "Hold").await
    }

    /// `Retrieve`: takes a held call off hold.
    pub async fn retrieve(&self, call_id: &str) -> Result<()> {
        self.call_control(call_id, "Retrieve").await
    }

    /// `Hangup`: ends the call (GWS then notifies it `Released`).
    pub async fn hangup(&self, call_id: &str) -> Result<()> {
        self.call_control(call_id, "Hangup").await
    }

    /// A call operation whose body is its name alone (v3: `{"data":{}}` on its kebab-case
    /// path; `Hangup` is `release`).
    async fn call_control(&self, call_id: &str, operation: &str) -> Result<()> {
        if self.api() == Api::V3 {
            let op = match operation {
                "Hangup" => "release",
                other => &other.to_ascii_lowercase(),
            };
            return self.operation_v3(call_id, op, operation, "{}").await;
        }
        let body = format!(r#"{{"operationName":{}}}"#, quote(operation));
        self.call_operation(call_id, operation, body).await
    }

    /// The distinct user-data keys of a v3 call, in order, from the current calls.
    async fn user_data_keys_v3(&self, call_id: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Call {
            id: Option<String>,
            #[serde(rename = "userData", default)]
            user_data: Vec<Pair>,
        }
        #[derive(serde::Deserialize)]
        struct Pair {
            key: String,
        }
        for raw in self.calls().await? {
            let Ok(call) = serde_json::from_str::<Call>(raw.get()) else {
                continue;
            };
            if call.id.as_deref() == Some(call_id) {
                let mut keys: Vec<String> = Vec::new();
                for pair in call.user_data {
                    if !keys.contains(&pair.key) {
                        keys.push(pair.key);
                    }
                }
                return Ok(keys);
            }
        }
        Err(RestError::Gws {
            operation: "DeleteUserData".into(),
            call_id: Some(call_id.to_owned()),
            status: super::GwsStatus::NotFound,
            message: Some("no such call among the current calls".into()),
        })
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

    #[test]
    fn json_values_are_checked_and_kept_exactly_as_written() {
        let nested =
            UserValue::json(r#" {"A":1,"A":"2","N":123456789012345678901234567890} "#).unwrap();
        let pairs = vec![
            ("Journey".to_owned(), nested),
            ("List".to_owned(), UserValue::json("[1, 2.50]").unwrap()),
            ("S".to_owned(), UserValue::json(r#""12345""#).unwrap()),
        ];
        assert_eq!(
            user_data_json(&pairs),
            r#"{"Journey":{"A":1,"A":"2","N":123456789012345678901234567890},"List":[1, 2.50],"S":"12345"}"#
        );
        for bad in ["", "{", "1 2", "tru", "{\"a\"}", "'x'"] {
            assert!(UserValue::json(bad).is_err(), "{bad:?}");
        }
    }
}
