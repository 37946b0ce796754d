//! What every try of one request needs from the request as the first try saw it.
//!
//! Envoy gives every try of a request the *same* request header map, so the first try's
//! rewrites (`:path` changed for its provider, `x-llmgw-cluster` removed) are what a retry on the
//! next provider of an aggregate cluster sees (checked on Envoy 1.40). The body, by contrast, is
//! re-sent as the client sent it. So the first try keeps the client's path in the stream's
//! filter state ([`facts::TRANSLATE_FIRST_TRY`], which upstream filters share with the
//! downstream stream) and later tries read it from there. The other filters' facts need no
//! copy: they are in filter state already ([`crate::facts`]).

use crate::facts::{self, Fields, Record};
use crate::headers::{self, HeaderMap};
use crate::host::Host;

/// The filter-state property holding the first try's request.
pub const PROPERTY: [&str; 1] = [facts::TRANSLATE_FIRST_TRY];

/// The record's field.
const PATH: &str = "path";

/// The request as the first try saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirstTry {
    /// The client's `:path`.
    pub path: String,
    /// An earlier try of this request saved it: this one is a retry.
    pub is_retry: bool,
}

impl FirstTry {
    fn encode(&self) -> Vec<u8> {
        let mut record = Record::new();
        record.text(PATH, Some(&self.path));
        record.finish()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let fields = Fields::parse(bytes)?;
        Some(Self {
            path: fields.string(PATH).unwrap_or_default(),
            is_retry: true,
        })
    }

    /// This request as its first try saw it: from filter state when an earlier try saved it,
    /// else from `all` (this try's request headers), saved for the tries after this one.
    ///
    /// An `x-llmgw-*` header in `all` means this is the first try (router's
    /// [`facts::CLUSTER_HEADER`], or one a client sent): the first try removes them all, so no
    /// later try sees one, and the read of a saved state that cannot exist yet is skipped.
    pub fn load_or_save(host: &mut dyn Host, all: &HeaderMap) -> Self {
        let surely_first = all.iter().any(|(name, _)| facts::is_reserved_header(name));
        if !surely_first {
            if let Some(saved) = host.property(&PROPERTY).and_then(|b| Self::decode(&b)) {
                return saved;
            }
        }
        let first = Self {
            path: headers::find(all, ":path").unwrap_or_default().to_string(),
            is_retry: false,
        };
        host.set_property(&PROPERTY, &first.encode());
        first
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn first_try_saves_and_later_tries_read_the_saved_path() {
        let mut host = FakeHost::new().with_request_header(":path", "/v1/chat/completions?x=1");
        let all = host.request_headers();
        let first = FirstTry::load_or_save(&mut host, &all);
        assert_eq!(first.path, "/v1/chat/completions?x=1");
        assert!(!first.is_retry);
        // The first try rewrites the shared header map…
        host.request_headers.clear();
        host.request_headers
            .push((":path".into(), "/v1/messages".into()));
        // …the retry still sees the request as the client sent it.
        let all = host.request_headers();
        let retry = FirstTry::load_or_save(&mut host, &all);
        assert_eq!(
            retry,
            FirstTry {
                is_retry: true,
                ..first
            }
        );
    }

    #[test]
    fn a_first_try_with_router_s_cluster_header_reads_nothing_saved() {
        let mut host = FakeHost::new()
            .with_request_header(":path", "/v1/chat/completions")
            .with_request_header(facts::CLUSTER_HEADER, "openai")
            // Left by nobody: a first try cannot find a saved state.
            .with_property(&PROPERTY, b"path:12:/v1/messages\n");
        let all = host.request_headers();
        let first = FirstTry::load_or_save(&mut host, &all);
        assert_eq!(first.path, "/v1/chat/completions");
        assert!(!first.is_retry);
        assert_eq!(host.host_calls.get(), 2, "the headers and the save");
    }

    #[test]
    fn a_request_without_a_path_saves_an_empty_one() {
        let mut host = FakeHost::new();
        let first = FirstTry::load_or_save(&mut host, &HeaderMap::new());
        let retry = FirstTry::load_or_save(&mut host, &HeaderMap::new());
        assert_eq!(first.path, "");
        assert_eq!(retry.path, "");
        assert!(retry.is_retry);
    }
}
