//! Wire types llmgw owns, one module per API.
//!
//! Request types llmgw *reads from clients* are strict where silence would change meaning (the
//! translators refuse what they cannot honour); response types llmgw *reads from providers* are
//! tolerant: unknown fields are ignored and unknown content blocks, stop reasons and stream
//! events fall into catch-all variants, so a provider's new field does not break traffic.
//! Strings are borrowed (`Cow`) from the body being translated where that saves a copy.

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "bedrock")]
pub mod bedrock;
pub mod from_value;
#[cfg(feature = "gemini")]
pub mod gemini;
pub mod openai;
#[cfg(any(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
pub mod responses;

use std::borrow::Cow;

use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, UnitDeserializer};
use serde::de::{
    Deserialize, Deserializer, Error, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

/// A field that holds a string or an array (OpenAI's `content`, `stop`, embeddings `input`),
/// told apart as it is read: `#[serde(untagged)]` would buffer the value into serde's `Content`
/// tree first. Any other JSON value is `Other` (naming what it was), for the caller to refuse
/// or to name.
#[derive(Debug)]
pub enum TextOrList<'a, T> {
    Text(Cow<'a, str>),
    List(Vec<T>),
    Other(&'static str),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for TextOrList<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrListVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for TextOrListVisitor<T> {
            type Value = TextOrList<'de, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextOrList::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOrList::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element()? {
                    list.push(item);
                }
                Ok(TextOrList::List(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TextOrList::Other("an object"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TextOrList::Other("a boolean"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other("a number"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other("a number"))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TextOrList::Other("null"))
            }
        }
        deserializer.deserialize_any(TextOrListVisitor(std::marker::PhantomData))
    }
}

/// A field name, borrowed from the body unless it holds escapes: the key of a request read
/// field by field (where `#[serde(flatten)]` would buffer every other field into serde's
/// `Content` tree first and convert it afterwards).
pub struct FieldName<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for FieldName<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldNameVisitor;
        impl<'de> Visitor<'de> for FieldNameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(FieldNameVisitor)
    }
}

/// Reads the value of field `name` into `slot`; a second one is refused, as derive does.
pub fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(A::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The `{"error": {…}}` envelope that Anthropic, Google (Gemini API, Vertex AI) and Azure OpenAI
/// wrap their error bodies in, as OpenAI does; `B` is the provider's own body.
#[derive(Debug, serde::Deserialize)]
pub struct ErrorEnvelope<B> {
    pub error: B,
}

/// `Other(seen)` as a refusal, for fields that must be a string or an array (`what`).
pub fn text_or_list<E: serde::de::Error>(seen: &'static str, what: &'static str) -> E {
    E::invalid_type(serde::de::Unexpected::Other(seen), &what)
}

/// A provider's string field that a future version might fill with something else: a string
/// is `Some`, any other value is read past and left `None`, so a new block type that reuses a
/// field name with another shape does not break the answer (schema tolerance, above).
#[derive(Debug, Default)]
pub struct MaybeStr<'a>(pub Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeStrVisitor;
        impl<'de> Visitor<'de> for MaybeStrVisitor {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeStr(None))
            }
        }
        deserializer.deserialize_any(MaybeStrVisitor)
    }
}

/// A field read as `T` when it has `T`'s shape and as `Lenient(None)` when it has another, in
/// one pass (`#[serde(untagged)]` would buffer the value into serde's `Content` tree and read
/// it twice). For fields whose validation is someone else's job (router routes on `stream`;
/// the provider refuses a malformed `max_tokens`), so a wrong type must not fail the body.
///
/// A scalar is handed to `T` as it is; an array is read past (no such field is one). An object
/// is handed to `T` as it is read and, if `T` refuses it, read past: `T`'s own fields must be
/// lenient too (they are, where it is used), so that only malformed JSON (or a duplicate key)
/// fails the whole body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lenient<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor(PhantomData))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).ok(),
        ))
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).ok(),
        ))
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).ok(),
        ))
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).ok(),
        ))
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(BorrowedStrDeserializer::<E>::new(v)).ok(),
        ))
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(
            T::deserialize(IntoDeserializer::<E>::into_deserializer(v)).ok(),
        ))
    }
    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient(T::deserialize(UnitDeserializer::<E>::new()).ok()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Objects only: serde's derived structs would also take an array, field by field.
        let value = T::deserialize(MapAccessDeserializer::new(&mut map)).ok();
        if value.is_none() {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        }
        Ok(Lenient(value))
    }
}

#[cfg(test)]
#[cfg(feature = "anthropic")]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{anthropic, openai};

    #[test]
    fn lenient_fields_read_their_type_and_read_past_any_other() {
        use super::Lenient;
        #[derive(serde::Deserialize)]
        struct Options {
            #[serde(default)]
            flag: Lenient<bool>,
        }
        #[derive(serde::Deserialize)]
        struct Body {
            a: Option<Lenient<u64>>,
            b: Option<Lenient<String>>,
            c: Option<Lenient<Options>>,
            after: u64,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).unwrap();
        let body = read(r#"{"a":7,"b":"x\"y","c":{"flag":true,"other":[1]},"after":1}"#);
        assert_eq!(body.a, Some(Lenient(Some(7))));
        assert_eq!(body.b, Some(Lenient(Some("x\"y".to_owned()))));
        assert_eq!(body.c.and_then(|c| c.0).and_then(|o| o.flag.0), Some(true));
        // Another type is read past whole, and the fields after it are still read.
        for odd in [r#""7""#, "-1", "1.5", "true", "[1,{}]", r#"{"k":[2]}"#] {
            let json = format!(r#"{{"a":{odd},"b":{odd},"after":3}}"#);
            let body = read(&json);
            assert_eq!(body.a, Some(Lenient(None)), "{json}");
            let string_ok = odd.starts_with('"');
            assert_eq!(body.b.unwrap().0.is_some(), string_ok, "{json}");
            assert_eq!(body.after, 3, "{json}");
        }
        // An object of the wrong shape inside an object field: only that field is lost.
        let body = read(r#"{"c":{"flag":"yes"},"after":4}"#);
        assert_eq!(body.c.and_then(|c| c.0).map(|o| o.flag.0), Some(None));
        let body = read(r#"{"c":[{"flag":true}],"after":5}"#);
        assert!(body.c.unwrap().0.is_none(), "an array is not an object");
        // Malformed JSON still fails the body.
        assert!(serde_json::from_str::<Body>(r#"{"a":{"k":},"after":1}"#).is_err());
    }

    #[test]
    fn a_future_block_type_may_reuse_a_known_field_name_with_another_shape() {
        let block = r#"{"type":"citation_card","text":{"spans":[1,2]},"id":7,"name":null}"#;
        let parsed: anthropic::ContentBlock = serde_json::from_str(block).unwrap();
        assert!(matches!(parsed, anthropic::ContentBlock::Other));
        // A known type still needs its field as a string.
        let bad = r#"{"type":"text","text":{"spans":[]}}"#;
        let err = serde_json::from_str::<anthropic::ContentBlock>(bad).unwrap_err();
        assert!(err.to_string().contains("missing field `text`"), "{err}");
    }

    #[test]
    fn content_that_is_neither_text_nor_a_list_is_refused_by_what_it_is() {
        let err = serde_json::from_str::<openai::ChatMessage>(r#"{"role":"user","content":5}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid type: a number, expected a string or an array of content parts"),
            "{err}"
        );
    }
}
