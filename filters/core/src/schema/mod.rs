//! Wire types llmgw owns, one module per API.
//!
//! Request types llmgw *reads from clients* are strict where silence would change meaning (the
//! translators refuse what they cannot honour); response types llmgw *reads from providers* are
//! tolerant: unknown fields are ignored and unknown content blocks, stop reasons and stream
//! events fall into catch-all variants, so a provider's new field does not break traffic.
//! Strings are borrowed (`Cow`) from the body being translated where that saves a copy.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A field that holds a string or an array (OpenAI's `content`, `stop`, embeddings `input`),
/// told apart as it is read: `#[serde(untagged)]` would buffer the value into serde's `Content`
/// tree first. Any other JSON value is `Other`, for the caller to refuse or to name.
#[derive(Debug)]
pub enum TextOrList<'a, T> {
    Text(Cow<'a, str>),
    List(Vec<T>),
    Other,
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
                Ok(TextOrList::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TextOrList::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TextOrList::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TextOrList::Other)
            }
        }
        deserializer.deserialize_any(TextOrListVisitor(std::marker::PhantomData))
    }
}

/// `Other` as a refusal, for fields that must be a string or an array.
pub fn text_or_list<E: serde::de::Error>(what: &'static str) -> E {
    E::invalid_type(serde::de::Unexpected::Other("another JSON value"), &what)
}
