//! JSON written straight into bytes, for bodies built from parts (the client adapters' Chat
//! requests, the Messages adapter's answers and stream events): no `serde_json::Value` tree is
//! built only to be encoded, which cost the translate module a tree's construction, insertion
//! and drop code at every place a body is put together (issue #16, module size).
//!
//! Strings and copied values are encoded by `serde_json` itself, and objects are written with
//! their keys in the order `serde_json::Map` (a sorted map without the `preserve_order`
//! feature) keeps them, so a body is byte for byte the one `serde_json::to_vec` gave for the
//! same tree: keys in byte order, given so by the caller ([`Object`]) or sorted here
//! ([`SortedObject`]).

use serde_json::Value;

/// `text` as a JSON string, escaped as `serde_json` escapes it.
pub fn string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// `value` as `serde_json` encodes it.
pub fn value(out: &mut Vec<u8>, value: &Value) {
    // A Value's keys are strings and a Vec cannot fail: nothing to report.
    let _ = serde_json::to_writer(out, value);
}

/// `n` in decimal.
pub fn number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0; crate::text::MAX_DIGITS];
    out.extend_from_slice(crate::text::decimal(n, &mut digits));
}

/// `items` as an array, each written by `write`.
pub fn list<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// `"key":`, after a comma unless it is the first.
fn key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// An object written in place; the caller gives the keys in byte order (and plain: they are
/// written unescaped).
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Starts the field `name`; its value is written into what this returns.
    pub fn field(&mut self, name: &str) -> &mut Vec<u8> {
        key(self.out, &mut self.first, name);
        self.out
    }

    pub fn string(&mut self, name: &str, text: &str) -> &mut Self {
        string(self.field(name), text);
        self
    }

    pub fn value(&mut self, name: &str, v: &Value) -> &mut Self {
        value(self.field(name), v);
        self
    }

    pub fn number(&mut self, name: &str, n: u64) -> &mut Self {
        number(self.field(name), n);
        self
    }

    pub fn opt_number(&mut self, name: &str, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.number(name, n),
            None => self.null(name),
        }
    }

    /// A float as `serde_json` writes it (`null` when not finite).
    pub fn opt_float(&mut self, name: &str, n: Option<f64>) -> &mut Self {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(self.field(name), &n);
        self
    }

    pub fn opt_string(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        match text {
            Some(text) => self.string(name, text),
            None => self.null(name),
        }
    }

    pub fn bool(&mut self, name: &str, b: bool) -> &mut Self {
        self.raw(name, if b { b"true" } else { b"false" })
    }

    pub fn null(&mut self, name: &str) -> &mut Self {
        self.raw(name, b"null")
    }

    /// A field whose value is already encoded.
    pub fn raw(&mut self, name: &str, json: &[u8]) -> &mut Self {
        self.field(name).extend_from_slice(json);
        self
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// An array written in place, item by item.
#[derive(Default)]
pub struct Array {
    items: Vec<u8>,
}

impl Array {
    /// Starts the next item; it is written into what this returns.
    pub fn item(&mut self) -> &mut Vec<u8> {
        if !self.items.is_empty() {
            self.items.push(b',');
        }
        &mut self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The array's JSON.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.len() + 2);
        out.push(b'[');
        out.extend_from_slice(&self.items);
        out.push(b']');
        out
    }
}

/// An object whose fields come in any order (a later one replacing an earlier of the same
/// name, as a map insert does), written sorted by [`SortedObject::into_bytes`].
#[derive(Default)]
pub struct SortedObject<'k> {
    fields: Vec<(&'k str, Vec<u8>)>,
}

impl<'k> SortedObject<'k> {
    /// The field `name`'s value, empty, to be written into.
    pub fn field(&mut self, name: &'k str) -> &mut Vec<u8> {
        let at = match self.fields.binary_search_by(|(k, _)| k.cmp(&name)) {
            Ok(at) => {
                self.fields[at].1.clear();
                at
            }
            Err(at) => {
                self.fields.insert(at, (name, Vec::new()));
                at
            }
        };
        &mut self.fields[at].1
    }

    pub fn string(&mut self, name: &'k str, text: &str) {
        string(self.field(name), text);
    }

    pub fn value(&mut self, name: &'k str, v: &Value) {
        value(self.field(name), v);
    }

    pub fn raw(&mut self, name: &'k str, json: &[u8]) {
        self.field(name).extend_from_slice(json);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut object = Object::new(&mut out);
        for (name, json) in &self.fields {
            object.raw(name, json);
        }
        object.end();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_are_serde_json_s_for_the_same_tree() {
        let mut top = SortedObject::default();
        top.string("model", "m\"1\n");
        top.value("temperature", &json!(0.7));
        top.raw("stream", b"false");
        top.raw("stream", b"true");
        let mut messages = Array::default();
        let mut message = Object::new(messages.item());
        message
            .value("content", &Value::Null)
            .string("role", "user");
        message.end();
        Object::new(messages.item()).end();
        top.raw("messages", &messages.into_bytes());
        let want = json!({
            "model": "m\"1\n",
            "temperature": 0.7,
            "stream": true,
            "messages": [{"role": "user", "content": null}, {}],
        });
        assert_eq!(
            top.into_bytes(),
            serde_json::to_vec(&want).unwrap_or_default()
        );
    }
}
