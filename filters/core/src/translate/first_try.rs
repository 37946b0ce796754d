//! What every try of one request needs from the request as router handed it on.
//!
//! Envoy gives every try of a request the *same* request header map, so the first try's
//! rewrites (every `x-llmgw-*` header removed, `:path` changed for its provider) are what a
//! retry on the next provider of an aggregate cluster sees; checked on Envoy 1.40, where the
//! retry saw neither `x-llmgw-upstream-model` nor `x-llmgw-targets`. The body, by contrast, is
//! re-sent as the client sent it. So the first try keeps the facts in the stream's filter state
//! (`wasm.llmgw.translate.request`, which upstream filters share with the downstream stream) and
//! later tries read them from there instead of the headers.

use crate::headers::{self, HeaderMap};
use crate::host::Host;

/// The filter-state property holding the facts.
pub const PROPERTY: [&str; 1] = ["llmgw.translate.request"];

/// The request as the first try saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirstTry {
    pub path: String,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub targets: Option<String>,
    /// auth's consumer and team, for the try's metrics.
    pub consumer: Option<String>,
    pub team: Option<String>,
    /// [`headers::INCLUDE_USAGE`]: `forced` makes every try ask the provider for usage.
    pub include_usage: Option<String>,
    /// [`headers::PRICES`]: what each provider's tokens cost, for the try's cost.
    pub prices: Option<String>,
    /// An earlier try of this request saved these facts: this one is a retry.
    pub is_retry: bool,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl FirstTry {
    /// From the request headers as one `get_map` returned them (one host call, not seven).
    fn from_headers(all: &HeaderMap) -> Self {
        let get = |name: &str| headers::find(all, name).map(str::to_string);
        Self {
            path: get(":path").unwrap_or_default(),
            provider: non_empty(get(headers::PROVIDER)),
            upstream_model: non_empty(get(headers::UPSTREAM_MODEL)),
            targets: non_empty(get(headers::TARGETS)),
            consumer: non_empty(get(headers::CONSUMER)),
            team: non_empty(get(headers::TEAM)),
            include_usage: non_empty(get(headers::INCLUDE_USAGE)),
            prices: non_empty(get(headers::PRICES)),
            is_retry: false,
        }
    }

    /// One field per line: header values cannot hold a line break.
    fn encode(&self) -> Vec<u8> {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.path,
            field(&self.provider),
            field(&self.upstream_model),
            field(&self.targets),
            field(&self.consumer),
            field(&self.team),
            field(&self.include_usage),
            field(&self.prices)
        )
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split('\n');
        let path = lines.next()?.to_string();
        let mut next = || non_empty(lines.next().map(str::to_string));
        Some(Self {
            path,
            provider: next(),
            upstream_model: next(),
            targets: next(),
            consumer: next(),
            team: next(),
            include_usage: next(),
            prices: next(),
            is_retry: true,
        })
    }

    /// This request's facts: from filter state when an earlier try saved them, else from the
    /// headers (`all`, this try's request headers; saved for the tries after this one).
    ///
    /// Router's and auth's headers in `all` mean this is the first try (it removes them for
    /// every later one), so nothing saved can exist yet and the read is skipped.
    pub fn load_or_save(host: &mut dyn Host, all: &HeaderMap) -> Self {
        let first_try = all.iter().any(|(name, _)| headers::is_reserved(name));
        if !first_try {
            if let Some(saved) = host.property(&PROPERTY).and_then(|b| Self::decode(&b)) {
                return saved;
            }
        }
        let first = Self::from_headers(all);
        host.set_property(&PROPERTY, &first.encode());
        first
    }

    /// The model for `provider`: its entry in a fallback chain, else router's first choice.
    pub fn model_for(&self, provider: &str) -> Option<String> {
        self.targets
            .as_deref()
            .and_then(|t| headers::model_for_provider(t, provider))
            .map(str::to_string)
            .or_else(|| self.upstream_model.clone())
    }

    /// The catalogue's price for `provider`'s tokens, when router handed one on.
    pub fn price_for(&self, provider: &str) -> Option<headers::Price> {
        headers::price_for_provider(self.prices.as_deref()?, provider)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn first_try_saves_and_later_tries_read_the_saved_facts() {
        let mut host = FakeHost::new()
            .with_request_header(":path", "/v1/chat/completions")
            .with_request_header(headers::PROVIDER, "openai")
            .with_request_header(headers::UPSTREAM_MODEL, "gpt-4o-mini")
            .with_request_header(headers::TARGETS, "openai=gpt-4o-mini,anthropic=claude")
            .with_request_header(headers::CONSUMER, "alice")
            .with_request_header(headers::PRICES, "openai=0.15/0.6,anthropic=1/5");
        let all = host.request_headers();
        let first = FirstTry::load_or_save(&mut host, &all);
        assert_eq!(first.model_for("anthropic").as_deref(), Some("claude"));
        // The first try rewrites the shared header map…
        host.request_headers.clear();
        host.request_headers
            .push((":path".into(), "/v1/messages".into()));
        // …the retry still sees the request as router handed it on.
        let retry = FirstTry::load_or_save(&mut host, &HeaderMap::new());
        assert!(!first.is_retry && retry.is_retry);
        assert_eq!(
            retry,
            FirstTry {
                is_retry: true,
                ..first
            }
        );
        assert_eq!(retry.path, "/v1/chat/completions");
        assert_eq!(retry.consumer.as_deref(), Some("alice"));
        assert_eq!(retry.team, None);
        assert_eq!(retry.model_for("openai").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(retry.model_for("gemini").as_deref(), Some("gpt-4o-mini"));
        let anthropic = retry.price_for("anthropic").unwrap();
        assert_eq!((anthropic.input, anthropic.output), (1.0, 5.0));
        assert_eq!(retry.price_for("gemini"), None);
    }

    #[test]
    fn absent_fields_stay_absent() {
        let mut host = FakeHost::new().with_request_header(":path", "/v1/models");
        let all = host.request_headers();
        let first = FirstTry::load_or_save(&mut host, &all);
        let retry = FirstTry::load_or_save(&mut host, &HeaderMap::new());
        assert_eq!(retry.path, first.path);
        assert_eq!(retry.provider, None);
        assert_eq!(first.provider, None);
        assert_eq!(first.model_for("openai"), None);
    }
}
