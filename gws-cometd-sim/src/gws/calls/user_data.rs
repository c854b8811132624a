//! The user-data operations on a call and pair lists read with duplicate keys kept.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::SimCallError;
use crate::gws::GwsSim;

/// A pair list as received: keys in order, duplicates kept, values as exact JSON text.
pub type RawPairs = Vec<(String, Box<RawValue>)>;

/// A JSON object read as ordered pairs: duplicate keys kept, values as exact text.
pub(in crate::gws) struct Pairs(pub RawPairs);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Box<RawValue> = map.next_value()?;
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// How a user-data operation changes the pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserDataOp {
    Attach,
    Update,
    DeletePair,
    DeleteAll,
}

impl UserDataOp {
    fn name(self) -> &'static str {
        match self {
            Self::Attach => "AttachUserData",
            Self::Update => "UpdateUserData",
            Self::DeletePair => "DeleteUserDataPair",
            Self::DeleteAll => "DeleteUserData",
        }
    }
}

impl GwsSim {
    /// `AttachUserData`: appends the pairs, even for keys already present.
    pub fn attach_user_data(&self, id: &str, pairs: RawPairs) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::Attach, pairs, "")
    }

    /// `UpdateUserData`: replaces every occurrence of each key, or appends it when absent.
    pub fn update_user_data(&self, id: &str, pairs: RawPairs) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::Update, pairs, "")
    }

    /// `DeleteUserDataPair`: removes every occurrence of `key`.
    pub fn delete_user_data_pair(&self, id: &str, key: &str) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::DeletePair, Vec::new(), key)
    }

    /// `DeleteUserData`: removes all pairs.
    pub fn delete_user_data(&self, id: &str) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::DeleteAll, Vec::new(), "")
    }

    fn user_data_op(
        &self,
        id: &str,
        op: UserDataOp,
        pairs: RawPairs,
        key: &str,
    ) -> Result<(), SimCallError> {
        self.change(|state, config| {
            let call = state.calls.find(id)?;
            if !call.state.takes_user_data() {
                return Err(SimCallError::InvalidState {
                    id: id.to_owned(),
                    state: call.state,
                    operation: op.name(),
                });
            }
            let data = &mut call.user_data;
            match op {
                UserDataOp::Attach => data.extend(pairs),
                UserDataOp::Update => {
                    for (k, v) in pairs {
                        let mut found = false;
                        for (_, value) in data.iter_mut().filter(|(dk, _)| *dk == k) {
                            *value = v.clone();
                            found = true;
                        }
                        if !found {
                            data.push((k, v));
                        }
                    }
                }
                UserDataOp::DeletePair => data.retain(|(k, _)| k != key),
                UserDataOp::DeleteAll => data.clear(),
            }
            Ok(((), call.notes("AttachedDataChanged", config)))
        })
    }
}
