//! Config stage one: JSON into serde structs with `deny_unknown_fields`, errors that name the
//! field. Each filter then validates and compiles its structs into the form it runs on.
//!
//! The JSON is parsed once into a [`Node`] tree (keys in document order, duplicates kept, so a
//! refusal is the one a streaming parser would give first), and the config structs are read
//! from that tree by a small deserializer that records the path of the field that failed. One
//! concrete deserializer instead of `serde_path_to_error` over `serde_json`'s streaming one
//! keeps every config struct's code to a single, small instantiation: config is parsed once
//! per VM, its code is most of what the filters weigh (issue #6).

use serde::de::{
    self, value::BorrowedStrDeserializer, DeserializeSeed, Deserializer, IntoDeserializer, Visitor,
};

/// A refused configuration: the field path (`keys[2].sha256`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Parse JSON config into `T`, reporting the path of the field that failed.
pub fn parse<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ConfigError> {
    let node = parse_node(json)?;
    T::deserialize(&node).map_err(PathError::into_config)
}

/// The non-generic half of [`parse`]: JSON text into a [`Node`] tree.
fn parse_node(json: &[u8]) -> Result<Node, ConfigError> {
    crate::json::from_slice(json).map_err(|err| ConfigError::new("(root)", err.to_string()))
}

/// One JSON value, as written: objects are lists of entries in document order.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Node::Map(entries))
    }
}

/// One step of a path: an object key or an array index.
#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// A refusal on its way out of the tree: each level it passes adds its step. Boxed, so that
/// every `Result` of the config code (all of it inlined per config type) moves one pointer.
#[derive(Debug)]
struct PathError(Box<PathErrorInner>);

#[derive(Debug)]
struct PathErrorInner {
    /// Innermost step first.
    steps: Vec<Step>,
    reason: String,
}

impl PathError {
    /// Out of line: every field of every config struct maps its error through here.
    #[inline(never)]
    fn at_key(mut self, key: &str) -> Self {
        self.0.steps.push(Step::Key(key.to_owned()));
        self
    }

    #[inline(never)]
    fn at_index(mut self, index: usize) -> Self {
        self.0.steps.push(Step::Index(index));
        self
    }

    /// `items[1].name`, or `(root)` for the document itself.
    fn into_config(self) -> ConfigError {
        let PathErrorInner { steps, reason } = *self.0;
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Index(i) => path.push_str(&format!("[{i}]")),
                Step::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
            }
        }
        if path.is_empty() {
            path.push_str("(root)");
        }
        ConfigError::new(path, reason)
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0.reason)
    }
}

impl std::error::Error for PathError {}

impl de::Error for PathError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        Self(Box::new(PathErrorInner {
            steps: Vec::new(),
            reason: msg.to_string(),
        }))
    }

    /// serde's own text for an unexpected value (`Unexpected`'s `Display`) links `f64`'s
    /// `Display`, ~11 KB of float formatting that modules printing no float would carry only
    /// for this message; [`unexpected`] says the same with serde_json's float printer.
    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid type: {}, expected {expected}",
            describe(unexpected)
        ))
    }

    fn invalid_value(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid value: {}, expected {expected}",
            describe(unexpected)
        ))
    }
}

/// The words serde uses for an unexpected value, e.g. ``integer `5` `` or `string "x"`.
fn describe(unexpected: de::Unexpected) -> String {
    use de::Unexpected as U;
    match unexpected {
        U::Bool(v) => format!("boolean `{v}`"),
        U::Unsigned(v) => format!("integer `{v}`"),
        U::Signed(v) => format!("integer `{v}`"),
        U::Float(v) => format!(
            "floating point `{}`",
            serde_json::to_string(&v).unwrap_or_default()
        ),
        U::Char(v) => format!("character `{v}`"),
        U::Str(v) => format!("string {v:?}"),
        U::Bytes(_) => "byte array".into(),
        U::Unit => "unit value".into(),
        U::Option => "Option value".into(),
        U::NewtypeStruct => "newtype struct".into(),
        U::Seq => "sequence".into(),
        U::Map => "map".into(),
        U::Enum => "enum".into(),
        U::UnitVariant => "unit variant".into(),
        U::NewtypeVariant => "newtype variant".into(),
        U::TupleVariant => "tuple variant".into(),
        U::StructVariant => "struct variant".into(),
        U::Other(other) => other.into(),
    }
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(v) => visitor.visit_bool(*v),
            Node::U64(v) => visitor.visit_u64(*v),
            Node::I64(v) => visitor.visit_i64(*v),
            Node::F64(v) => visitor.visit_f64(*v),
            Node::Str(v) => visitor.visit_borrowed_str(v),
            Node::Seq(items) => visitor.visit_seq(Items {
                items: items.iter(),
                index: 0,
            }),
            Node::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        match self {
            Node::Str(variant) => visitor.visit_enum(variant.as_str().into_deserializer()),
            Node::Map(entries) if entries.len() == 1 => {
                let (variant, value) = &entries[0];
                visitor.visit_enum(Variant { variant, value })
            }
            _ => self.deserialize_any(visitor),
        }
    }

    /// Only an object is read as a struct: the visitor's `visit_seq` (a struct from an array,
    /// which derive generates for every struct) is then never instantiated.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self {
            Node::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self {
            Node::Seq(items) => visitor.visit_seq(Items {
                items: items.iter(),
                index: 0,
            }),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        match self {
            Node::Str(v) => visitor.visit_borrowed_str(v),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct tuple tuple_struct identifier ignored_any
    }
}

impl Node {
    /// What serde's `invalid_type` says this node is.
    fn invalid_type(&self, expected: &dyn de::Expected) -> PathError {
        use de::Unexpected as U;
        let unexpected = match self {
            Node::Null => U::Unit,
            Node::Bool(v) => U::Bool(*v),
            Node::U64(v) => U::Unsigned(*v),
            Node::I64(v) => U::Signed(*v),
            Node::F64(v) => U::Float(*v),
            Node::Str(v) => U::Str(v),
            Node::Seq(_) => U::Seq,
            Node::Map(_) => U::Map,
        };
        de::Error::invalid_type(unexpected, expected)
    }
}

/// An array's elements, each error marked with its index.
struct Items<'de> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'de> {
    type Error = PathError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(item)
            .map(Some)
            .map_err(|e| e.at_index(index))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// An object's entries, each error marked with its key.
struct Entries<'de> {
    entries: std::slice::Iter<'de, (String, Node)>,
    value: Option<(&'de str, &'de Node)>,
}

impl<'de> de::MapAccess<'de> for Entries<'de> {
    type Error = PathError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
            .map_err(|e: PathError| e.at_key(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, PathError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("value without a key"));
        };
        seed.deserialize(value).map_err(|e| e.at_key(key))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// `{"variant": value}`: an enum variant with content; errors inside it name the variant.
struct Variant<'de> {
    variant: &'de str,
    value: &'de Node,
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = PathError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), PathError> {
        let variant = seed.deserialize(BorrowedStrDeserializer::<PathError>::new(self.variant))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'de> {
    type Error = PathError;

    fn unit_variant(self) -> Result<(), PathError> {
        de::Deserialize::deserialize(self.value).map_err(|e| self.at(e))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, PathError> {
        seed.deserialize(self.value).map_err(|e| self.at(e))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.value.deserialize_any(visitor).map_err(|e| self.at(e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.value.deserialize_any(visitor).map_err(|e| self.at(e))
    }
}

impl Variant<'_> {
    fn at(&self, error: PathError) -> PathError {
        error.at_key(self.variant)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Root {
        items: Vec<Item>,
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let err = parse::<Root>(br#"{"items":[{"name":"a"},{"name":"b","nmae":1}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].nmae");
        assert!(
            err.reason.contains("unknown field `nmae`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn duplicate_fields_are_refused_like_the_streaming_parser_does() {
        let err = parse::<Item>(br#"{"name":"a","name":"b"}"#).unwrap_err();
        assert_eq!(err.path, "(root)");
        assert!(
            err.reason.contains("duplicate field `name`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn the_first_bad_field_in_document_order_is_named() {
        let err = parse::<Root>(br#"{"zz":1,"items":[{"name":2}]}"#).unwrap_err();
        assert_eq!(err.path, "zz");
        let err = parse::<Root>(br#"{"items":[{"name":2}],"zz":1}"#).unwrap_err();
        assert_eq!(err.path, "items[0].name");
        assert!(
            err.reason.contains("invalid type: integer `2`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn a_struct_is_read_from_an_object_only() {
        let err = parse::<Root>(br#"{"items":[["a"]]}"#).unwrap_err();
        assert_eq!(err.path, "items[0]");
        assert_eq!(err.reason, "invalid type: sequence, expected struct Item");
        let err = parse::<Root>(br#"{"items":"a"}"#).unwrap_err();
        assert_eq!(err.path, "items");
        assert_eq!(
            err.reason,
            r#"invalid type: string "a", expected a sequence"#
        );
        let err = parse::<Item>(br#"{"name":["a"]}"#).unwrap_err();
        assert_eq!(err.path, "name");
        assert_eq!(err.reason, "invalid type: sequence, expected a string");
    }

    #[test]
    fn malformed_json_is_refused() {
        let err = parse::<Root>(b"{\"items\": [").unwrap_err();
        assert!(err.reason.contains("EOF"), "{}", err.reason);
    }
}
