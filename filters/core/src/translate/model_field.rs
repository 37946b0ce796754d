//! A passthrough's one body change: the top-level `model`, rewritten in place.
//!
//! A passthrough (Messages → Anthropic) must leave the client's bytes as they are, so that
//! fields llmgw does not model (`cache_control`, `thinking` blocks and their `signature`,
//! beta fields, whatever Anthropic adds next) reach the provider exactly as sent: parsing into
//! a map and encoding again would reorder keys and re-spell numbers and escapes. This scans
//! the object's top level only (nested values are skipped as byte ranges) and splices the new
//! model's JSON string over the old value.

/// `body` with every top-level `"model"` string value replaced by `model` (JSON-encoded);
/// `None` when the body is not a JSON object or has no top-level string `model` (the caller
/// then leaves it for the provider to refuse).
pub fn replace_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let spans = model_spans(body)?;
    if spans.is_empty() {
        return None;
    }
    let encoded = serde_json::to_vec(model).ok()?;
    let mut out = Vec::with_capacity(body.len() + encoded.len());
    let mut at = 0;
    for (start, end) in spans {
        out.extend_from_slice(body.get(at..start)?);
        out.extend_from_slice(&encoded);
        at = end;
    }
    out.extend_from_slice(body.get(at..)?);
    Some(out)
}

/// Byte ranges of the top-level `model` string values (quotes included).
fn model_spans(body: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut scan = Scanner { body, at: 0 };
    scan.ws();
    scan.expect(b'{')?;
    let mut spans = Vec::new();
    scan.ws();
    if scan.peek() == Some(b'}') {
        return Some(spans);
    }
    loop {
        scan.ws();
        let key_start = scan.at;
        scan.string()?;
        let key = body.get(key_start..scan.at)?;
        scan.ws();
        scan.expect(b':')?;
        scan.ws();
        let value_start = scan.at;
        let is_string = scan.peek() == Some(b'"');
        scan.value()?;
        if key == b"\"model\"" && is_string {
            spans.push((value_start, scan.at));
        }
        scan.ws();
        match scan.next()? {
            b',' => continue,
            b'}' => return Some(spans),
            _ => return None,
        }
    }
}

struct Scanner<'a> {
    body: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string, from its opening quote to past its closing one.
    fn string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    /// Any value: strings and containers by their delimiters (strings inside containers are
    /// skipped whole, so a `}` in a string ends nothing), scalars up to the next delimiter.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn only_the_top_level_model_changes() {
        let body = br#"{ "max_tokens":1024, "messages":[{"role":"user","content":[{"type":"text","text":"a \"model\": } ]","cache_control":{"type":"ephemeral"}}]}],
  "model" : "claude-x",
  "metadata":{"model":"keep"},"temperature":0.70}"#;
        let out = replace_model(body, "claude-sonnet-4-5").unwrap();
        let expected = String::from_utf8_lossy(body).replace(
            r#""model" : "claude-x""#,
            r#""model" : "claude-sonnet-4-5""#,
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn escapes_in_the_new_name_are_encoded() {
        let out = replace_model(br#"{"model":"a"}"#, "we\"ird").unwrap();
        assert_eq!(out, br#"{"model":"we\"ird"}"#);
    }

    #[test]
    fn no_string_model_or_no_object_is_none() {
        for body in [
            &br#"{"model":5}"#[..],
            br#"{"messages":[]}"#,
            br#"[{"model":"a"}]"#,
            br#"{"model":"a""#,
            b"{}",
            b"",
            br#"{"model" "a"}"#,
        ] {
            assert_eq!(
                replace_model(body, "b"),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
