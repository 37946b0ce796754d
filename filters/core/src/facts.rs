//! The facts the filters hand each other: the one place that lists them.
//!
//! Each filter that learns something the others need writes it once per request as one Envoy
//! filter-state property, `llmgw.<writer>` (Envoy stores a wasm filter's property as
//! `wasm.llmgw.<writer>`), holding all of that writer's facts in one [`record`]. Filter state
//! belongs to the request: no client can set it, and it costs one host call per writer instead
//! of a header write per fact plus a removal before the provider. Upstream filters (translate,
//! once per try) read the downstream stream's filter state, later tries included (checked on
//! Envoy 1.40 by tests/e2e/test_routing.py's fallbacks).
//!
//! | property | writer | facts | readers |
//! |---|---|---|---|
//! | [`AUTH`] | auth | consumer, team, allowed models | router (allow-list, rollout bucket, metric labels), ratelimit (keys), translate (metric labels) |
//! | [`ROUTER`] | router | requested model, provider, upstream model, stream, fallback targets, prices, input estimate, max output, client's `include_usage`, client's dialect | ratelimit (keys, estimate, dialect of a refusal), translate (provider, model per try, cost) |
//! | [`RATELIMIT`] | ratelimit | usage forced | translate (asks the provider for a stream's usage) |
//! | [`USAGE`] | translate | a try's token usage ([`UsageFact`]) | ratelimit (charges it and, when translate is in the chain, never reads the body) |
//!
//! One fact stays a request header because Envoy itself reads it: [`CLUSTER_HEADER`], which
//! router sets and the route's `cluster_header` selects on. Client-sent `x-llmgw-*` headers are
//! never read as facts; auth drops them and translate removes every one before the provider.
//!
//! A record is read whole or not at all: a property that is absent (the writer is not in the
//! chain, or answered the request itself) or unreadable reads as the writer's defaults.

mod record;

use std::ops::Deref;

use crate::dialect::ClientApi;
use crate::host::Host;
use crate::schema::openai::Usage;
use crate::text::{decimal, MAX_DIGITS};

pub use self::record::{Fields, Record};

/// The reserved request-header prefix: every `x-llmgw-*` header belongs to llmgw.
pub const RESERVED_PREFIX: &str = "x-llmgw-";

/// Set by router: the Envoy cluster of the chosen provider (or of a fallback chain's aggregate
/// cluster); routes select it with `cluster_header`. The only fact that is a header.
pub const CLUSTER_HEADER: &str = "x-llmgw-cluster";

/// Is this header name one of llmgw's? Header names reach filters lower-cased.
pub fn is_reserved_header(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX)
}

/// auth's facts ([`AuthFacts`]).
pub const AUTH: &str = "llmgw.auth";
/// router's facts ([`RouterFacts`]).
pub const ROUTER: &str = "llmgw.router";
/// ratelimit's facts ([`RateLimitFacts`]).
pub const RATELIMIT: &str = "llmgw.ratelimit";
/// translate's facts ([`UsageFact`]): the try's token usage.
pub const USAGE: &str = "llmgw.usage";

/// The usage translate reported in [`USAGE`], if any.
pub fn read_usage(host: &dyn Host) -> Option<Usage> {
    match UsageFact::read(host)? {
        UsageFact::Reported(usage) => Some(usage),
        UsageFact::Pending => None,
    }
}
/// translate's own per-request state across tries (`translate::first_try`), no fact for
/// others: the request path as the first try saw it.
pub const TRANSLATE_FIRST_TRY: &str = "llmgw.translate.request";

/// The properties the downstream filters write, each once per request and before any try
/// reaches translate. The one-module gateway (`crate::gateway`) keeps a copy of what its filters
/// write, so a later filter of the module reads it without a host call.
pub const DOWNSTREAM: [&str; 3] = [AUTH, ROUTER, RATELIMIT];

/// One writer's facts, stored as one property.
pub trait Fact: Sized + Default {
    /// The property (one path segment).
    const PROPERTY: &'static str;

    fn encode(&self) -> Vec<u8>;
    /// `None` when `bytes` is no record.
    fn decode(bytes: &[u8]) -> Option<Self>;

    /// The writer's facts for this request; `None` when it wrote none.
    fn read(host: &dyn Host) -> Option<Self> {
        let bytes = host.property(&[Self::PROPERTY])?;
        let facts = Self::decode(&bytes);
        if facts.is_none() {
            log::warn!("llmgw: filter state {} is unreadable", Self::PROPERTY);
        }
        facts
    }

    /// The writer's facts, or its defaults when it wrote none.
    fn read_or_default(host: &dyn Host) -> Self {
        Self::read(host).unwrap_or_default()
    }

    /// Write them (once per request).
    fn publish(&self, host: &mut dyn Host) {
        host.set_property(&[Self::PROPERTY], &self.encode());
    }
}

/// Field names inside the records (short: they travel in every request's filter state).
mod field {
    pub const CONSUMER: &str = "consumer";
    pub const TEAM: &str = "team";
    pub const ALLOWED_MODELS: &str = "models";
    pub const REQUESTED_MODEL: &str = "requested";
    pub const PROVIDER: &str = "provider";
    pub const UPSTREAM_MODEL: &str = "model";
    pub const STREAM: &str = "stream";
    pub const TARGETS: &str = "targets";
    pub const PRICES: &str = "prices";
    pub const INPUT_ESTIMATE: &str = "input";
    pub const MAX_OUTPUT: &str = "max_output";
    pub const INCLUDE_USAGE: &str = "include_usage";
    pub const FORCE_USAGE: &str = "force_usage";
    pub const CLIENT_API: &str = "api";
}

/// A writer's record as it is in filter state, for facts read borrowed from it
/// ([`AuthFacts::view`], [`RouterFacts::view`]): `None` when the writer wrote none.
pub fn stored(host: &dyn Host, property: &str) -> Option<Vec<u8>> {
    host.property(&[property])
}

/// Facts borrowed from `record` by `parse`, or the writer's defaults when it wrote none or the
/// record is unreadable (logged, as [`Fact::read`] does).
fn view_or_default<'a, T: Default>(
    property: &str,
    record: Option<&'a [u8]>,
    parse: impl FnOnce(&'a [u8]) -> Option<T>,
) -> T {
    let Some(record) = record else {
        return T::default();
    };
    parse(record).unwrap_or_else(|| {
        log::warn!("llmgw: filter state {property} is unreadable");
        T::default()
    })
}

/// Written by auth once the key is accepted. Its text is `S`: owned (`String`, the default)
/// or borrowed from the record a reader holds (`&str`, [`AuthFacts::view`]), so a reader
/// copies only what it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFacts<S = String> {
    /// The consumer id of the key.
    pub consumer: Option<S>,
    /// The consumer's team, when the key has one.
    pub team: Option<S>,
    /// The key's model globs, comma-separated, when the key may only use some models. router
    /// enforces it ([`crate::auth::model_allowed`]): it is the filter that reads `model`.
    pub allowed_models: Option<S>,
}

impl<'a> AuthFacts<&'a str> {
    /// auth's facts borrowed from its `record` ([`stored`]); its defaults without one.
    pub fn view(record: Option<&'a [u8]>) -> Self {
        view_or_default(AUTH, record, Self::parse)
    }

    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let fields = Fields::parse(bytes)?;
        Some(Self {
            consumer: fields.text(field::CONSUMER),
            team: fields.text(field::TEAM),
            allowed_models: fields.text(field::ALLOWED_MODELS),
        })
    }
}

impl<S: Deref<Target = str>> AuthFacts<S> {
    /// The record of these facts, owned or borrowed text alike.
    pub fn record(&self) -> Vec<u8> {
        let mut out = Record::new();
        out.text(field::CONSUMER, self.consumer.as_deref());
        out.text(field::TEAM, self.team.as_deref());
        out.text(field::ALLOWED_MODELS, self.allowed_models.as_deref());
        out.finish()
    }

    /// Write them (once per request): a writer hands on borrowed text without copying it.
    pub fn publish(&self, host: &mut dyn Host) {
        host.set_property(&[AUTH], &self.record());
    }
}

impl Fact for AuthFacts {
    const PROPERTY: &'static str = AUTH;

    fn encode(&self) -> Vec<u8> {
        self.record()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let facts = AuthFacts::parse(bytes)?;
        let owned = |v: Option<&str>| v.map(str::to_string);
        Some(Self {
            consumer: owned(facts.consumer),
            team: owned(facts.team),
            allowed_models: owned(facts.allowed_models),
        })
    }
}

/// Written by router once it chose a target for the request. Its text is `S`, as
/// [`AuthFacts`]'s ([`RouterFacts::view`] borrows it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterFacts<S = String> {
    /// The model name the client asked for (an exact name or an alias).
    pub requested_model: Option<S>,
    /// The provider chosen (a name from translate's config); a chain's first.
    pub provider: Option<S>,
    /// The model name that provider is asked for.
    pub upstream_model: Option<S>,
    /// The client asked for a stream.
    pub stream: bool,
    /// A fallback chain's `provider=model` pairs in fallback order ([`format_targets`]): each
    /// try's translate takes its provider's model from here ([`model_for_provider`]).
    pub targets: Option<S>,
    /// `provider=input/output,…`, USD per million tokens of every priced target the request
    /// may reach ([`format_price`]); translate turns each try's usage into cost with it.
    pub prices: Option<S>,
    /// The prompt's size in tokens, estimated from the body (bytes / 4, rounded up); ratelimit
    /// admits token limits against it.
    pub input_tokens_estimate: u64,
    /// The client's cap on the answer: `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u64>,
    /// Streams: the client asked for `stream_options.include_usage`.
    pub include_usage: bool,
    /// The client's dialect, from the path router read ([`ClientApi::for_errors`]): ratelimit
    /// answers a refusal in it without reading `:path` again (one header read, ~10 k
    /// instructions in Envoy: bench/analysis.md). `None` from a writer that did not say.
    pub client_api: Option<ClientApi>,
}

impl Fact for RouterFacts {
    const PROPERTY: &'static str = ROUTER;

    fn encode(&self) -> Vec<u8> {
        self.record()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let facts = RouterFacts::parse(bytes)?;
        let owned = |v: Option<&str>| v.map(str::to_string);
        Some(Self {
            requested_model: owned(facts.requested_model),
            provider: owned(facts.provider),
            upstream_model: owned(facts.upstream_model),
            stream: facts.stream,
            targets: owned(facts.targets),
            prices: owned(facts.prices),
            input_tokens_estimate: facts.input_tokens_estimate,
            max_output_tokens: facts.max_output_tokens,
            include_usage: facts.include_usage,
            client_api: facts.client_api,
        })
    }
}

impl<'a> RouterFacts<&'a str> {
    /// router's facts borrowed from its `record` ([`stored`]); its defaults without one.
    pub fn view(record: Option<&'a [u8]>) -> Self {
        view_or_default(ROUTER, record, Self::parse)
    }

    fn parse(bytes: &'a [u8]) -> Option<Self> {
        let fields = Fields::parse(bytes)?;
        Some(Self {
            requested_model: fields.text(field::REQUESTED_MODEL),
            provider: fields.text(field::PROVIDER),
            upstream_model: fields.text(field::UPSTREAM_MODEL),
            stream: fields.flag(field::STREAM),
            targets: fields.text(field::TARGETS),
            prices: fields.text(field::PRICES),
            input_tokens_estimate: fields.number(field::INPUT_ESTIMATE).unwrap_or(0),
            max_output_tokens: fields.number(field::MAX_OUTPUT),
            include_usage: fields.flag(field::INCLUDE_USAGE),
            client_api: fields.text(field::CLIENT_API).and_then(api_named),
        })
    }
}

/// A dialect's name in [`RouterFacts`]'s record.
fn api_name(api: ClientApi) -> &'static str {
    match api {
        ClientApi::ChatCompletions => "chat",
        ClientApi::Messages => "messages",
        ClientApi::Responses => "responses",
    }
}

fn api_named(name: &str) -> Option<ClientApi> {
    [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::Responses,
    ]
    .into_iter()
    .find(|&api| api_name(api) == name)
}

impl<S: Deref<Target = str>> RouterFacts<S> {
    /// The record of these facts, owned or borrowed text alike.
    pub fn record(&self) -> Vec<u8> {
        let mut out = Record::new();
        out.text(field::REQUESTED_MODEL, self.requested_model.as_deref());
        out.text(field::PROVIDER, self.provider.as_deref());
        out.text(field::UPSTREAM_MODEL, self.upstream_model.as_deref());
        out.flag(field::STREAM, self.stream);
        out.text(field::TARGETS, self.targets.as_deref());
        out.text(field::PRICES, self.prices.as_deref());
        out.number(field::INPUT_ESTIMATE, Some(self.input_tokens_estimate));
        out.number(field::MAX_OUTPUT, self.max_output_tokens);
        out.flag(field::INCLUDE_USAGE, self.include_usage);
        out.text(field::CLIENT_API, self.client_api.map(api_name));
        out.finish()
    }

    /// Write them (once per request): a writer hands on borrowed text without copying it.
    pub fn publish(&self, host: &mut dyn Host) {
        host.set_property(&[ROUTER], &self.record());
    }

    /// The model for `provider`: its entry in a fallback chain, else router's first choice.
    pub fn model_for(&self, provider: &str) -> Option<&str> {
        self.targets
            .as_deref()
            .and_then(|t| model_for_provider(t, provider))
            .or(self.upstream_model.as_deref())
    }

    /// The catalogue's price for `provider`'s tokens, when router handed one on.
    pub fn price_for(&self, provider: &str) -> Option<Price> {
        price_for_provider(self.prices.as_deref()?, provider)
    }

    /// A stream whose client did not ask for usage: ratelimit may have to force it.
    pub fn stream_without_usage(&self) -> bool {
        self.stream && !self.include_usage
    }
}

/// Written by ratelimit when it must charge a stream's tokens the client did not ask usage for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitFacts {
    /// translate asks the provider for the stream's usage (`stream_options.include_usage`);
    /// ratelimit hides that usage chunk from the client again.
    pub force_usage: bool,
}

impl Fact for RateLimitFacts {
    const PROPERTY: &'static str = RATELIMIT;

    fn encode(&self) -> Vec<u8> {
        let mut out = Record::new();
        out.flag(field::FORCE_USAGE, self.force_usage);
        out.finish()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let fields = Fields::parse(bytes)?;
        Some(Self {
            force_usage: fields.flag(field::FORCE_USAGE),
        })
    }
}

/// Written by translate, the filter that reads every client dialect's answer: the filters in
/// front take a try's usage from here instead of parsing Messages or Responses bodies or
/// scanning a Chat stream. Unlike the other writers it writes twice per answer, because the
/// readers must know early: [`UsageFact::Pending`] at a successful answer's response headers
/// (ratelimit then never reads the body), [`UsageFact::Reported`] when the answer ends, before
/// the downstream filters see that end. Only a 2xx try writes, and Envoy retries no 2xx, so a
/// fallback's earlier try leaves nothing behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageFact {
    /// translate reports this answer's usage when it ends (stays so when the answer had none).
    #[default]
    Pending,
    /// The try's token usage in OpenAI terms.
    Reported(Usage),
}

/// [`UsageFact::Pending`]'s value: no JSON document reads as it.
const USAGE_PENDING: &[u8] = b"-";

impl Fact for UsageFact {
    const PROPERTY: &'static str = USAGE;

    /// OpenAI's `usage` JSON (`schema::openai::Usage`), not a [`Record`]: it nests the token
    /// details, and it is what a reader of Envoy's filter state expects to find.
    fn encode(&self) -> Vec<u8> {
        match self {
            Self::Pending => USAGE_PENDING.to_vec(),
            Self::Reported(usage) => usage_json(usage),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes == USAGE_PENDING {
            return Some(Self::Pending);
        }
        crate::json::from_slice(bytes).ok().map(Self::Reported)
    }
}

/// `usage`'s JSON, byte for byte what its `Serialize` writes (`serde_json::to_vec`; the tests
/// compare the two), without serde's serializer: every answer writes it once (~2 k
/// instructions through serde's escaping writer, bench/analysis.md). Only numbers and fixed
/// names: nothing to escape.
fn usage_json(usage: &Usage) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    let number = |out: &mut Vec<u8>, name: &str, n: u64| {
        let mut digits = [0u8; MAX_DIGITS];
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(decimal(n, &mut digits));
    };
    out.push(b'{');
    number(&mut out, "prompt_tokens", usage.prompt_tokens);
    out.push(b',');
    number(&mut out, "completion_tokens", usage.completion_tokens);
    out.push(b',');
    number(&mut out, "total_tokens", usage.total_tokens);
    if let Some(details) = usage.prompt_tokens_details {
        out.extend_from_slice(b",\"prompt_tokens_details\":{");
        number(&mut out, "cached_tokens", details.cached_tokens);
        #[cfg(any(feature = "anthropic", feature = "bedrock"))]
        if details.cache_write_tokens != 0 {
            out.push(b',');
            number(&mut out, "cache_write_tokens", details.cache_write_tokens);
        }
        out.push(b'}');
    }
    if let Some(details) = usage.completion_tokens_details {
        out.extend_from_slice(b",\"completion_tokens_details\":{");
        number(&mut out, "reasoning_tokens", details.reasoning_tokens);
        out.push(b'}');
    }
    out.push(b'}');
    out
}

// ---------------------------------------------------------------------------------------------
// Value formats inside router's record

/// The [`RouterFacts::targets`] value for `(provider, model)` pairs, in order. Names are
/// `[A-Za-z0-9._:/@-]` (router's config checks), so `=` and `,` are safe separators.
pub fn format_targets(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (provider, model)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(provider);
        out.push('=');
        out.push_str(model);
    }
    out
}

/// The model a [`RouterFacts::targets`] value names for `provider` (the first, if listed twice).
pub fn model_for_provider<'a>(targets: &'a str, provider: &str) -> Option<&'a str> {
    value_for_provider(targets, provider)
}

/// The value a `provider=value,…` list (targets, prices) gives `provider`.
fn value_for_provider<'a>(list: &'a str, provider: &str) -> Option<&'a str> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(p, _)| p.trim() == provider)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A price per million input and output tokens, in USD; input tokens read from or written to
/// the provider's prompt cache at their own prices (the input price where the catalogue sets
/// none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Price {
    /// Input and output prices, cache tokens at the input price.
    pub fn new(input: f64, output: f64) -> Self {
        Self {
            input,
            output,
            cache_read: input,
            cache_write: input,
        }
    }

    /// What `input` and `output` tokens cost, in billionths of a USD (rounded): integer
    /// counters keep sub-cent sums exact enough (a token of a $0.10/M model is 100 nanos).
    pub fn cost_nanos(self, input: u64, output: u64) -> u64 {
        self.cost_with_cache_nanos(input, 0, 0, output)
    }

    /// [`Price::cost_nanos`] where `cache_read` and `cache_write` of the `input` tokens (which
    /// include them, as OpenAI's `prompt_tokens` does) came from or went to the cache.
    pub fn cost_with_cache_nanos(
        self,
        input: u64,
        cache_read: u64,
        cache_write: u64,
        output: u64,
    ) -> u64 {
        let fresh = input.saturating_sub(cache_read).saturating_sub(cache_write);
        let usd_per_million = fresh as f64 * self.input
            + cache_read as f64 * self.cache_read
            + cache_write as f64 * self.cache_write
            + output as f64 * self.output;
        // USD per million tokens × 10⁹ nanos per USD / 10⁶ tokens = × 1000 per token.
        (usd_per_million * 1000.0).round() as u64
    }
}

/// One `provider=input/output` entry of [`RouterFacts::prices`], `input/output/cache_read/
/// cache_write` when a cache price differs from the input price.
pub fn format_price(provider: &str, price: Price) -> String {
    let mut entry = format!(
        "{provider}={}/{}",
        format_number(price.input),
        format_number(price.output)
    );
    if price.cache_read != price.input || price.cache_write != price.input {
        entry.push('/');
        entry.push_str(&format_number(price.cache_read));
        entry.push('/');
        entry.push_str(&format_number(price.cache_write));
    }
    entry
}

/// A number as short text: whole numbers without a decimal point (`5`), others in serde_json's
/// shortest form (`0.15`). Not `f64`'s `Display`: that links ~10 KB of float formatting into
/// a module for a fact or a message, while serde_json's printer is linked anyway.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        (v as i64).to_string()
    } else {
        serde_json::to_string(&v).unwrap_or_default()
    }
}

/// The price a [`RouterFacts::prices`] value gives `provider`; `None` when absent or unreadable.
pub fn price_for_provider(prices: &str, provider: &str) -> Option<Price> {
    // serde_json's number parser (linked anyway) rather than `f64`'s `FromStr` (~4 KB more).
    let number = |s: &str| {
        let v = s.trim().parse::<serde_json::Number>().ok()?.as_f64()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    let mut fields = value_for_provider(prices, provider)?.split('/');
    let mut price = Price::new(number(fields.next()?)?, number(fields.next()?)?);
    match (fields.next(), fields.next(), fields.next()) {
        (None, _, _) => {}
        (Some(read), Some(write), None) => {
            price.cache_read = number(read)?;
            price.cache_write = number(write)?;
        }
        _ => return None,
    }
    Some(price)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn reserved_prefix_matches_any_case() {
        assert!(is_reserved_header(CLUSTER_HEADER));
        assert!(is_reserved_header("X-LLMGW-Consumer"));
        assert!(!is_reserved_header("x-llm"));
        assert!(!is_reserved_header("authorization"));
    }

    fn routed() -> RouterFacts {
        RouterFacts {
            requested_model: Some("fast".into()),
            provider: Some("openai".into()),
            upstream_model: Some("gpt-4o-mini".into()),
            stream: true,
            targets: Some(format_targets(&[
                ("openai", "gpt-4o-mini"),
                ("anthropic", "claude-haiku"),
            ])),
            prices: Some("openai=0.15/0.6,anthropic=1/5".into()),
            input_tokens_estimate: 31,
            max_output_tokens: Some(70),
            include_usage: false,
            client_api: Some(ClientApi::Messages),
        }
    }

    #[test]
    fn every_writers_facts_round_trip_through_filter_state() {
        let mut host = FakeHost::new();
        assert_eq!(AuthFacts::read(&host), None);
        assert_eq!(RouterFacts::read_or_default(&host), RouterFacts::default());
        let auth = AuthFacts {
            consumer: Some("alice".into()),
            team: None,
            allowed_models: Some("gpt-*,fast".into()),
        };
        auth.publish(&mut host);
        routed().publish(&mut host);
        RateLimitFacts { force_usage: true }.publish(&mut host);
        UsageFact::Pending.publish(&mut host);
        assert_eq!(UsageFact::read(&host), Some(UsageFact::Pending));
        assert_eq!(read_usage(&host), None);
        let usage = Usage {
            prompt_tokens: 12,
            completion_tokens: 3,
            total_tokens: 15,
            ..Usage::default()
        };
        UsageFact::Reported(usage).publish(&mut host);
        assert_eq!(read_usage(&host), Some(usage));
        assert_eq!(AuthFacts::read(&host), Some(auth));
        assert_eq!(RouterFacts::read(&host), Some(routed()));
        assert_eq!(
            RateLimitFacts::read(&host),
            Some(RateLimitFacts { force_usage: true })
        );
        // One property per writer, under its documented name.
        let mut names: Vec<&str> = host.properties.keys().map(|k| k[0].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, [AUTH, RATELIMIT, ROUTER, USAGE]);
    }

    #[test]
    fn defaults_and_absent_fields_read_back_as_absent() {
        let bytes = RouterFacts::default().encode();
        assert_eq!(RouterFacts::decode(&bytes), Some(RouterFacts::default()));
        assert_eq!(AuthFacts::decode(b""), Some(AuthFacts::default()));
        // An empty value is no value (an empty team is no team).
        let empty_team = AuthFacts {
            team: Some(String::new()),
            ..AuthFacts::default()
        };
        assert_eq!(
            AuthFacts::decode(&empty_team.encode()),
            Some(AuthFacts::default())
        );
    }

    #[test]
    fn usage_is_written_as_its_serde_json() {
        use crate::schema::openai::{CompletionTokensDetails, PromptTokensDetails};
        let mut cases = vec![
            Usage::default(),
            Usage {
                prompt_tokens: u64::MAX,
                completion_tokens: 1,
                total_tokens: 10,
                ..Usage::default()
            },
        ];
        for cached in [0, 7, u64::MAX] {
            for reasoning in [None, Some(0), Some(12)] {
                #[allow(unused_mut)] // (mutated only in builds with cache writes)
                let mut details = PromptTokensDetails::read(cached);
                #[cfg(any(feature = "anthropic", feature = "bedrock"))]
                {
                    details.cache_write_tokens = reasoning.unwrap_or(3);
                }
                cases.push(Usage {
                    prompt_tokens: 1_000,
                    completion_tokens: 20,
                    total_tokens: 1_020,
                    prompt_tokens_details: (cached != 7 || reasoning.is_some()).then_some(details),
                    completion_tokens_details: reasoning
                        .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens }),
                });
            }
        }
        for usage in cases {
            let encoded = UsageFact::Reported(usage).encode();
            assert_eq!(encoded, serde_json::to_vec(&usage).unwrap(), "{usage:?}");
            assert_eq!(
                UsageFact::decode(&encoded),
                Some(UsageFact::Reported(usage))
            );
        }
    }

    #[test]
    fn a_borrowed_view_reads_what_the_owned_facts_read() {
        let auth = AuthFacts {
            consumer: Some("alice".to_string()),
            team: None,
            allowed_models: Some("gpt-*".to_string()),
        };
        let record = auth.record();
        let view = AuthFacts::view(Some(&record));
        assert_eq!(view.consumer, Some("alice"));
        assert_eq!(view.team, None);
        assert_eq!(view.allowed_models, Some("gpt-*"));
        // A writer's borrowed facts make the same record as its owned ones.
        assert_eq!(view.record(), record);
        let routed = routed();
        let record = routed.record();
        let view = RouterFacts::view(Some(&record));
        assert_eq!(RouterFacts::decode(&record), Some(routed.clone()));
        assert_eq!(view.record(), record);
        assert_eq!(view.provider, Some("openai"));
        assert_eq!(view.model_for("anthropic"), Some("claude-haiku"));
        assert_eq!(view.price_for("openai"), routed.price_for("openai"));
        assert_eq!(view.client_api, Some(ClientApi::Messages));
        assert_eq!(view.input_tokens_estimate, 31);
        // No record, or an unreadable one: the writer's defaults, as `read_or_default`.
        assert_eq!(RouterFacts::view(None), RouterFacts::default());
        assert_eq!(
            AuthFacts::view(Some(b"consumer:99:alice\n")),
            AuthFacts::default()
        );
    }

    #[test]
    fn an_unreadable_record_reads_as_none() {
        let host = FakeHost::new().with_property(&[AUTH], b"consumer:99:alice\n");
        assert_eq!(AuthFacts::read(&host), None);
        assert_eq!(AuthFacts::read_or_default(&host), AuthFacts::default());
    }

    #[test]
    fn a_try_finds_its_model_and_price_by_provider() {
        let facts = routed();
        assert_eq!(facts.model_for("anthropic"), Some("claude-haiku"));
        assert_eq!(facts.model_for("openai"), Some("gpt-4o-mini"));
        // A provider outside the chain gets router's first choice.
        assert_eq!(facts.model_for("gemini"), Some("gpt-4o-mini"));
        let anthropic = facts.price_for("anthropic").unwrap();
        assert_eq!((anthropic.input, anthropic.output), (1.0, 5.0));
        assert_eq!(facts.price_for("gemini"), None);
        assert!(facts.stream_without_usage());
        assert_eq!(RouterFacts::<String>::default().model_for("openai"), None);
    }

    #[test]
    fn prices_round_trip_and_cost_is_counted_in_nanos() {
        let list = [
            format_price("openai", Price::new(0.15, 0.6)),
            format_price("anthropic", Price::new(1.0, 5.0)),
            format_price(
                "bedrock",
                Price {
                    cache_read: 0.3,
                    cache_write: 3.75,
                    ..Price::new(3.0, 15.0)
                },
            ),
        ]
        .join(",");
        assert_eq!(list, "openai=0.15/0.6,anthropic=1/5,bedrock=3/15/0.3/3.75");
        let openai = price_for_provider(&list, "openai").unwrap();
        assert_eq!(openai, Price::new(0.15, 0.6));
        // 1000 × $0.15/M + 500 × $0.60/M = $0.00015 + $0.0003 = 450 000 nanos.
        assert_eq!(openai.cost_nanos(1000, 500), 450_000);
        let anthropic = price_for_provider(&list, "anthropic").unwrap();
        assert_eq!(anthropic.cost_nanos(3, 7), 38_000);
        assert_eq!(price_for_provider(&list, "gemini"), None);
        assert_eq!(price_for_provider("openai=1", "openai"), None);
        assert_eq!(price_for_provider("openai=x/1", "openai"), None);
        assert_eq!(price_for_provider("openai=1/2/3", "openai"), None);
        assert_eq!(price_for_provider("openai=1/2/3/4/5", "openai"), None);
        // 1000 prompt tokens, 600 read from the cache and 100 written, 10 output:
        // 300 × $3 + 600 × $0.30 + 100 × $3.75 + 10 × $15 per million = 1605 × 1000 nanos.
        let bedrock = price_for_provider(&list, "bedrock").unwrap();
        assert_eq!(bedrock.cost_with_cache_nanos(1000, 600, 100, 10), 1_605_000);
        // Without cache prices, cache tokens cost what input does.
        assert_eq!(
            anthropic.cost_with_cache_nanos(10, 4, 3, 7),
            anthropic.cost_nanos(10, 7)
        );
        assert_eq!(price_for_provider("openai=-1/1", "openai"), None);
    }

    #[test]
    fn targets_round_trip_and_pick_the_model_of_the_try_provider() {
        let value = format_targets(&[("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku")]);
        assert_eq!(value, "openai=gpt-4o-mini,anthropic=claude-haiku");
        assert_eq!(
            model_for_provider(&value, "anthropic"),
            Some("claude-haiku")
        );
        assert_eq!(model_for_provider(&value, "openai"), Some("gpt-4o-mini"));
        assert_eq!(model_for_provider(&value, "gemini"), None);
        assert_eq!(model_for_provider("", "openai"), None);
        assert_eq!(model_for_provider("openai=", "openai"), None);
    }
}
