//! Building blocks shared by the GWS types: exact JSON text, borrowed keys, the two macros
//! that write the lossless (de)serializers of records and open enums, and the `messageType`
//! tagging of notification records.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value kept exactly as received: its text, not a parsed tree, so duplicate keys and
/// number spellings survive. Two values are equal when their texts are equal.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Parses `text` as one JSON value and keeps it unchanged.
    pub fn from_text(text: impl Into<String>) -> Result<RawJson, serde_json::Error> {
        RawValue::from_string(text.into()).map(RawJson)
    }

    /// The kept value as a [`RawValue`].
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Gives the text back as a boxed [`RawValue`].
    pub fn into_raw(self) -> Box<RawValue> {
        self.0
    }
}

impl From<Box<RawValue>> for RawJson {
    fn from(raw: Box<RawValue>) -> Self {
        RawJson(raw)
    }
}

impl From<&RawValue> for RawJson {
    fn from(raw: &RawValue) -> Self {
        RawJson(raw.to_owned())
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RawJson {}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawJson)
    }
}

/// An object key, borrowed from the input when it has no escapes (saves an allocation per
/// field on the hot path).
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Whether a record field is written out: `None` is omitted, everything else is written.
pub(crate) trait Present {
    fn present(&self) -> bool;
}

impl<T> Present for Option<T> {
    fn present(&self) -> bool {
        self.is_some()
    }
}

impl Present for String {
    fn present(&self) -> bool {
        true
    }
}

/// A JSON object type with known fields plus every unknown field kept in order.
pub(crate) trait Record: Default {
    /// Reads the value of field `key` from `d` into `self`; unknown keys go to `other`.
    fn take_field<'de, D: Deserializer<'de>>(
        &mut self,
        key: Cow<'de, str>,
        d: D,
    ) -> Result<(), D::Error>;

    /// Writes the known fields that are present, then the unknown ones in order.
    fn write_fields<M: serde::ser::SerializeMap>(&self, m: &mut M) -> Result<(), M::Error>;

    /// Keeps a field as an unknown one.
    fn push_other(&mut self, key: String, value: RawJson);
}

/// Hands one map value to [`Record::take_field`] without buffering it.
pub(crate) struct FieldSeed<'a, 'de, R> {
    pub(crate) record: &'a mut R,
    pub(crate) key: Cow<'de, str>,
}

impl<'de, R: Record> de::DeserializeSeed<'de> for FieldSeed<'_, 'de, R> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.record.take_field(self.key, d)
    }
}

/// Reads the members of a JSON object text into a record, leniently: a known field whose
/// value has an unexpected shape (say `"capabilities":5`) is kept in `other`, as received,
/// instead of failing the whole record. Members named in `skip` are passed over. `None` when
/// `text` is not one JSON object.
pub(crate) fn lenient_record<R: Record>(text: &str, skip: &[&str]) -> Option<R> {
    let mut record = R::default();
    let mut ok = true;
    crate::gws::wire::json::for_each_member(text, |key, range| {
        let Some(value) = text.get(range) else {
            ok = false;
            return;
        };
        if skip.contains(&key.as_ref()) {
            return;
        }
        let mut de = serde_json::Deserializer::from_str(value);
        if record.take_field(key.clone(), &mut de).is_err() {
            match RawJson::from_text(value) {
                Ok(raw) => record.push_other(key.into_owned(), raw),
                Err(_) => ok = false,
            }
        }
    })?;
    ok.then_some(record)
}

/// Reads the remaining entries of `map` into `record`.
pub(crate) fn fill_record<'de, R: Record, A: de::MapAccess<'de>>(
    record: &mut R,
    map: &mut A,
) -> Result<(), A::Error> {
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        map.next_value_seed(FieldSeed { record, key })?;
    }
    Ok(())
}

/// Deserializes a record from a JSON object.
pub(crate) fn deserialize_record<'de, R: Record, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<R, D::Error> {
    struct V<R>(&'static str, std::marker::PhantomData<R>);
    impl<'de, R: Record> Visitor<'de> for V<R> {
        type Value = R;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<R, A::Error> {
            let mut r = R::default();
            fill_record(&mut r, &mut map)?;
            Ok(r)
        }
    }
    d.deserialize_map(V(what, std::marker::PhantomData))
}

/// Serializes a record as a JSON object.
pub(crate) fn serialize_record<R: Record, S: Serializer>(r: &R, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    r.write_fields(&mut m)?;
    m.end()
}

/// Declares a record struct: documented known fields with their JSON names, plus `other`
/// (every unknown field, in order, exactly as received), and its [`Record`] impl.
/// With `serde` after the name it also gets plain `Serialize`/`Deserialize` impls.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $(: $serde:ident)? {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $json:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Every other field, in the order received, exactly as received.
            pub other: Vec<(String, $crate::gws::model::record::RawJson)>,
        }

        impl $crate::gws::model::record::Record for $name {
            fn take_field<'de, D: serde::Deserializer<'de>>(
                &mut self,
                key: std::borrow::Cow<'de, str>,
                d: D,
            ) -> Result<(), D::Error> {
                match key.as_ref() {
                    $( $json => self.$field = serde::Deserialize::deserialize(d)?, )*
                    _ => self.other.push((
                        key.into_owned(),
                        <$crate::gws::model::record::RawJson as serde::Deserialize>::deserialize(d)?,
                    )),
                }
                Ok(())
            }

            fn push_other(&mut self, key: String, value: $crate::gws::model::record::RawJson) {
                self.other.push((key, value));
            }

            fn write_fields<M: serde::ser::SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
                $(
                    if $crate::gws::model::record::Present::present(&self.$field) {
                        m.serialize_entry($json, &self.$field)?;
                    }
                )*
                for (k, v) in &self.other {
                    m.serialize_entry(k, v)?;
                }
                Ok(())
            }
        }

        $( record!(@$serde $name); )?
    };
    (@serde $name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::gws::model::record::serialize_record(self, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::gws::model::record::deserialize_record(d, concat!("a ", stringify!($name), " object"))
            }
        }
    };
}
pub(crate) use record;

/// Declares an open string enum: known variants with their wire spelling, and `Other`
/// keeping any other string as received.
///
/// Not serde's derive: `#[serde(other)]` takes only a unit variant (the unknown value would
/// be dropped), and an `#[serde(untagged)] Other(String)` variant buffers every value before
/// matching it; the macro also writes `as_str`, `From<&str>` and `Display` from the same
/// list of spellings.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// Any other value, kept as received.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $crate::gws::model::record::Key(s) = serde::Deserialize::deserialize(d)?;
                Ok($name::from(s.as_ref()))
            }
        }
    };
}
pub(crate) use open_enum;

/// A GWS notification record carried in `data`, tagged by `messageType`.
pub(crate) trait Typed: Record + Sized {
    /// The `messageType` value.
    const MESSAGE_TYPE: &'static str;
    /// Checks required fields after decoding.
    fn check(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

/// Writes `messageType` first, then the record's fields.
pub(crate) fn serialize_typed<T: Typed, S: Serializer>(t: &T, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("messageType", T::MESSAGE_TYPE)?;
    t.write_fields(&mut m)?;
    m.end()
}

/// Reads a tagged record, passing over `messageType` wherever it is.
pub(crate) fn deserialize_typed<'de, T: Typed, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Typed> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} object", T::MESSAGE_TYPE)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut t = T::default();
            while let Some(Key(key)) = map.next_key()? {
                if key == "messageType" {
                    map.next_value::<de::IgnoredAny>()?;
                } else {
                    map.next_value_seed(FieldSeed {
                        record: &mut t,
                        key,
                    })?;
                }
            }
            t.check().map_err(de::Error::missing_field)?;
            Ok(t)
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
}

/// `Serialize` and `Deserialize` for a [`Typed`] record.
macro_rules! typed_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::gws::model::record::serialize_typed(self, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::gws::model::record::deserialize_typed(d)
            }
        }
    };
}
pub(crate) use typed_serde;
