//! The contract between the filters: request headers with the reserved prefix `x-llmgw-`.
//!
//! auth removes every `x-llmgw-*` header a client sent before it sets its own, so none can be
//! spoofed; translate removes them all before the request leaves for the provider, so none leaks.
//! This module is the one place that lists them.

/// The reserved prefix. Any request header starting with it belongs to llmgw.
pub const PREFIX: &str = "x-llmgw-";

/// Set by auth: the consumer id of the API key that authenticated the request.
pub const CONSUMER: &str = "x-llmgw-consumer";
/// Set by auth: the team of that consumer (absent when the key has none).
pub const TEAM: &str = "x-llmgw-team";
/// Set by auth when the key may only use some models: the key's model globs, comma-separated.
/// router enforces it, because router is the one filter that reads the body's `model`.
pub const ALLOWED_MODELS: &str = "x-llmgw-allowed-models";

/// Set by router: the model name the client asked for (an exact name or an alias).
pub const REQUESTED_MODEL: &str = "x-llmgw-requested-model";
/// Set by router: the provider chosen to serve the request (a name from translate's config).
pub const PROVIDER: &str = "x-llmgw-provider";
/// Set by router: the model name the provider is asked for.
pub const UPSTREAM_MODEL: &str = "x-llmgw-upstream-model";
/// Set by router: the Envoy cluster of that provider; routes select it with `cluster_header`.
pub const CLUSTER: &str = "x-llmgw-cluster";
/// Set by router: `true` when the client asked for a stream.
pub const STREAM: &str = "x-llmgw-stream";

/// Set by router for a fallback chain: every `provider=model` pair in fallback order,
/// comma-separated (`openai=gpt-4o-mini,anthropic=claude-haiku-4-5`). Envoy's aggregate cluster
/// moves each retry to the next provider; translate runs once per try and takes the model of the
/// provider it is talking to from here ([`model_for_provider`]), else [`UPSTREAM_MODEL`] (which
/// router sets to the chain's first model). Names are `[A-Za-z0-9._:/@-]`, so `=` and `,` are
/// safe separators.
pub const TARGETS: &str = "x-llmgw-targets";

/// The [`TARGETS`] value for `(provider, model)` pairs, in order.
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

/// The model a [`TARGETS`] value names for `provider` (the first, if listed twice).
pub fn model_for_provider<'a>(targets: &'a str, provider: &str) -> Option<&'a str> {
    value_for_provider(targets, provider)
}

/// The value a `provider=value,…` list ([`TARGETS`], [`PRICES`]) gives `provider`.
fn value_for_provider<'a>(list: &'a str, provider: &str) -> Option<&'a str> {
    list.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(p, _)| p.trim() == provider)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Set by router when the catalogue prices the target(s): `provider=input/output,…`, USD per
/// million input and output tokens, for every priced target the request may reach (the chosen
/// one, or each of a fallback chain). translate turns the try's usage into cost with it.
pub const PRICES: &str = "x-llmgw-prices";

/// A price per million input and output tokens, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// What `input` and `output` tokens cost, in billionths of a USD (rounded): integer
    /// counters keep sub-cent sums exact enough (a token of a $0.10/M model is 100 nanos).
    pub fn cost_nanos(self, input: u64, output: u64) -> u64 {
        // USD per million tokens × 10⁹ nanos per USD / 10⁶ tokens = × 1000 per token.
        let nanos = (input as f64 * self.input + output as f64 * self.output) * 1000.0;
        nanos.round() as u64
    }
}

/// One `provider=input/output` entry of [`PRICES`].
pub fn format_price(provider: &str, price: Price) -> String {
    format!(
        "{provider}={}/{}",
        format_number(price.input),
        format_number(price.output)
    )
}

/// A number as short text: whole numbers without a decimal point (`5`), others in serde_json's
/// shortest form (`0.15`). Not `f64`'s `Display`: that links ~10 KB of float formatting into
/// a module for a header or a message, while serde_json's printer is linked anyway.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        (v as i64).to_string()
    } else {
        serde_json::to_string(&v).unwrap_or_default()
    }
}

/// The price a [`PRICES`] value gives `provider`; `None` when absent or unreadable.
pub fn price_for_provider(prices: &str, provider: &str) -> Option<Price> {
    let (input, output) = value_for_provider(prices, provider)?.split_once('/')?;
    // serde_json's number parser (linked anyway) rather than `f64`'s `FromStr` (~4 KB more).
    let number = |s: &str| s.trim().parse::<serde_json::Number>().ok()?.as_f64();
    let price = Price {
        input: number(input)?,
        output: number(output)?,
    };
    let valid = |v: f64| v.is_finite() && v >= 0.0;
    (valid(price.input) && valid(price.output)).then_some(price)
}

/// Set by router: the prompt's size in tokens, estimated from the body (bytes / 4, rounded up);
/// ratelimit admits token limits against it before the request goes upstream.
pub const INPUT_TOKENS_ESTIMATE: &str = "x-llmgw-input-tokens-estimate";
/// Set by router when the client capped the answer: `max_completion_tokens`, else `max_tokens`.
pub const MAX_OUTPUT_TOKENS: &str = "x-llmgw-max-output-tokens";
/// Set on streamed requests. Router: `client` when the client asked for
/// `stream_options.include_usage`, `none` when it did not. ratelimit, when it must charge the
/// stream's tokens, turns `none` into `forced`: translate then asks the provider for usage
/// anyway, and ratelimit hides that usage chunk from the client again.
pub const INCLUDE_USAGE: &str = "x-llmgw-include-usage";

/// Filter state (not a header; a client cannot set it), written by translate when a try's
/// answer ended: the try's token usage in OpenAI terms, as JSON (`schema::openai::Usage`).
/// translate is the filter that reads every client dialect's answer, so the filters in front
/// of it read usage here instead of parsing Messages or Responses bodies themselves.
pub const USAGE: [&str; 1] = ["llmgw.usage"];

/// The usage translate recorded in [`USAGE`], if any.
pub fn read_usage(host: &dyn crate::host::Host) -> Option<crate::schema::openai::Usage> {
    serde_json::from_slice(&host.property(&USAGE)?).ok()
}

/// A header map as one host call returned it (names lower-cased, in order, pseudo-headers
/// included): filters read what they need from this one copy instead of asking Envoy once per
/// header. Every name and value sits in one string (two allocations, not two per header), read
/// from Envoy's bytes without the SDK's `unwrap`s. Not faster: bench/instructions.py counts the
/// same instructions per request for the chain either way (the UTF-8 check and the copy are
/// what a map read costs in the VM, not the allocations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    text: String,
    /// Where each header's name and value end in `text`; a name starts where the previous
    /// value ended.
    ends: Vec<(u32, u32)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of header `name`, in any case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let pair = (
                self.text.get(start..name_end).unwrap_or_default(),
                self.text.get(name_end..value_end).unwrap_or_default(),
            );
            start = value_end;
            pair
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Append a header. A value that is not UTF-8 (HTTP lets a client send obs-text bytes) is
    /// kept lossily: llmgw matches no such value, and refusing it is the application's call.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.text.push_str(&String::from_utf8_lossy(name));
        let name_end = self.text.len() as u32;
        self.text.push_str(&String::from_utf8_lossy(value));
        self.ends.push((name_end, self.text.len() as u32));
    }

    /// A map in proxy-wasm's serialized form, as `proxy_get_header_map_pairs` returns it: the
    /// pair count (u32 LE), each pair's name and value sizes (u32 LE each), then each name and
    /// value followed by a NUL. `None` when the buffer does not hold what its sizes say.
    ///
    /// <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_get_header_map_pairs>
    pub fn from_wire(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::new());
        }
        let word = |at: usize| -> Option<usize> {
            let b = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let count = word(0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > bytes.len() {
            return None;
        }
        let mut map = Self {
            text: String::with_capacity(bytes.len() - data),
            ends: Vec::with_capacity(count),
        };
        let mut take = |size: usize| -> Option<&[u8]> {
            let field = bytes.get(data..data.checked_add(size)?)?;
            data += size + 1; // the NUL after each name and value
            Some(field)
        };
        for pair in 0..count {
            let name = take(word(4 + pair * 8)?)?;
            let value = take(word(8 + pair * 8)?)?;
            map.push(name, value);
        }
        Some(map)
    }
}

/// `pairs` in proxy-wasm's serialized map form, the inverse of [`HeaderMap::from_wire`]: what
/// `proxy_send_local_response` takes for the local response's headers (and `proxy_grpc_call` for
/// initial metadata). Sizes are u32 on the wire, so `None` when one does not fit (a name or value
/// of 4 GiB: only possible natively, never in a wasm32 VM).
///
/// <https://github.com/proxy-wasm/spec/tree/main/abi-versions/v0.2.1#proxy_send_local_response>
pub fn to_wire<V: AsRef<[u8]>>(pairs: &[(&str, V)]) -> Option<Vec<u8>> {
    let size = |n: usize| u32::try_from(n).ok().map(u32::to_le_bytes);
    // 8 bytes of sizes and 2 NULs per pair: a capacity hint only, dropped should it overflow.
    let total = pairs.iter().try_fold(4usize, |total, (name, value)| {
        total
            .checked_add(name.len())?
            .checked_add(value.as_ref().len())?
            .checked_add(10)
    });
    let mut out = Vec::with_capacity(total.unwrap_or(0));
    out.extend(size(pairs.len())?);
    for (name, value) in pairs {
        out.extend(size(name.len())?);
        out.extend(size(value.as_ref().len())?);
    }
    for (name, value) in pairs {
        out.extend(name.as_bytes());
        out.push(0);
        out.extend(value.as_ref());
        out.push(0);
    }
    Some(out)
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut map = Self::new();
        for (name, value) in pairs {
            map.push(name.as_ref().as_bytes(), value.as_ref().as_bytes());
        }
        map
    }
}

/// The first value of header `name` in `all`.
pub fn find<'a>(all: &'a HeaderMap, name: &str) -> Option<&'a str> {
    all.get(name)
}

/// Is this header name one of llmgw's? Header names reach filters lower-cased.
pub fn is_reserved(name: &str) -> bool {
    name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn reserved_prefix_matches_any_case() {
        assert!(is_reserved(CONSUMER));
        assert!(is_reserved("X-LLMGW-Consumer"));
        assert!(!is_reserved("x-llm"));
        assert!(!is_reserved("authorization"));
    }

    #[test]
    fn prices_round_trip_and_cost_is_counted_in_nanos() {
        let list = [
            format_price(
                "openai",
                Price {
                    input: 0.15,
                    output: 0.6,
                },
            ),
            format_price(
                "anthropic",
                Price {
                    input: 1.0,
                    output: 5.0,
                },
            ),
        ]
        .join(",");
        assert_eq!(list, "openai=0.15/0.6,anthropic=1/5");
        let openai = price_for_provider(&list, "openai").unwrap();
        assert_eq!(
            openai,
            Price {
                input: 0.15,
                output: 0.6
            }
        );
        // 1000 × $0.15/M + 500 × $0.60/M = $0.00015 + $0.0003 = 450 000 nanos.
        assert_eq!(openai.cost_nanos(1000, 500), 450_000);
        let anthropic = price_for_provider(&list, "anthropic").unwrap();
        assert_eq!(anthropic.cost_nanos(3, 7), 38_000);
        assert_eq!(price_for_provider(&list, "gemini"), None);
        assert_eq!(price_for_provider("openai=1", "openai"), None);
        assert_eq!(price_for_provider("openai=x/1", "openai"), None);
        assert_eq!(price_for_provider("openai=-1/1", "openai"), None);
    }

    #[test]
    fn find_takes_the_first_value_of_a_header_in_any_case() {
        let all: HeaderMap = [
            (":path", "/v1/models"),
            ("X-Llmgw-Consumer", "alice"),
            ("x-llmgw-consumer", "bob"),
        ]
        .into_iter()
        .collect();
        assert_eq!(find(&all, CONSUMER), Some("alice"));
        assert_eq!(find(&all, ":path"), Some("/v1/models"));
        assert_eq!(find(&all, TEAM), None);
        let names: Vec<&str> = all.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [":path", "X-Llmgw-Consumer", "x-llmgw-consumer"]);
    }

    /// proxy-wasm's serialized header map, as Envoy writes it.
    fn wire(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (name, value) in pairs {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            out.extend(*name);
            out.push(0);
            out.extend(*value);
            out.push(0);
        }
        out
    }

    #[test]
    fn wire_maps_are_read_whole_and_values_that_are_not_utf8_lossily() {
        let bytes = wire(&[
            (b":status", b"200"),
            (b"x-note", b"caf\xe9"),
            (b"empty", b""),
            (b"content-type", b"application/json"),
        ]);
        let map = HeaderMap::from_wire(&bytes).unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(":status"), Some("200"));
        assert_eq!(map.get("x-note"), Some("caf\u{fffd}"));
        assert_eq!(map.get("empty"), Some(""));
        assert_eq!(map.get("content-type"), Some("application/json"));
        assert_eq!(HeaderMap::from_wire(&[]), Some(HeaderMap::new()));
        assert_eq!(HeaderMap::from_wire(&wire(&[])).map(|m| m.len()), Some(0));
    }

    #[test]
    fn wire_maps_that_do_not_hold_what_their_sizes_say_are_refused() {
        let good = wire(&[(b"a", b"1"), (b"bb", b"22")]);
        for cut in 1..good.len() - 1 {
            assert_eq!(HeaderMap::from_wire(&good[..cut]), None, "cut at {cut}");
        }
        // A count no buffer could hold does not make the reader allocate for it.
        assert_eq!(HeaderMap::from_wire(&u32::MAX.to_le_bytes()), None);
        let mut huge_size = good.clone();
        huge_size[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::from_wire(&huge_size), None);
    }

    #[test]
    fn pairs_are_serialized_as_the_host_reads_them() {
        // Written out by hand from the spec: count, each pair's sizes, then NUL-ended fields.
        let expected: &[u8] = &[
            2, 0, 0, 0, // two pairs
            12, 0, 0, 0, 16, 0, 0, 0, // "content-type", "application/json"
            4, 0, 0, 0, 0, 0, 0, 0, // "x-id", ""
            b'c', b'o', b'n', b't', b'e', b'n', b't', b'-', b't', b'y', b'p', b'e', 0, //
            b'a', b'p', b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o', b'n', b'/', b'j', b's',
            b'o', b'n', 0, //
            b'x', b'-', b'i', b'd', 0, //
            0,
        ];
        let pairs = [("content-type", "application/json"), ("x-id", "")];
        assert_eq!(to_wire(&pairs).unwrap(), expected);
        assert_eq!(to_wire::<&str>(&[]).unwrap(), [0, 0, 0, 0]);
        // Byte values (gRPC metadata) serialize the same way.
        let bytes: [(&str, &[u8]); 1] = [("x-bin", b"\x00\xff")];
        assert_eq!(to_wire(&bytes).unwrap(), wire(&[(b"x-bin", b"\x00\xff")]));
    }

    #[test]
    fn serialized_pairs_read_back_whole() {
        let pairs = [(":status", "429"), ("retry-after", "1"), ("x-note", "café")];
        let map = HeaderMap::from_wire(&to_wire(&pairs).unwrap()).unwrap();
        let back: Vec<(&str, &str)> = map.iter().collect();
        assert_eq!(back, pairs);
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
