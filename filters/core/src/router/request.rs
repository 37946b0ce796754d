//! The one parse of the request body: the fields router routes on, read without copying the
//! messages. Everything router does not need is skipped (`IgnoredAny`-style visitors), and
//! fields of an unexpected shape are left for the provider to refuse, except `model` and
//! `stream`, which router itself depends on.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::catalogue::Capabilities;
use super::config::Capability;
use super::policy::Needs;
use crate::dialect::{ClientApi, Operation};
use crate::ratelimit::estimate::StreamOptionsPeek;
use crate::ratelimit::image_tokens::{ImageCost, ImageScan};
use crate::schema::Lenient;

/// The fields of a Chat Completions (or Embeddings) request router needs.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(default)]
    model: Option<Lenient<String>>,
    #[serde(default)]
    stream: Option<Lenient<bool>>,
    #[serde(default)]
    max_tokens: Option<Lenient<u64>>,
    #[serde(default)]
    max_completion_tokens: Option<Lenient<u64>>,
    /// Responses' output cap.
    #[serde(default)]
    max_output_tokens: Option<Lenient<u64>>,
    #[serde(default)]
    tools: Option<NonEmpty>,
    #[serde(default)]
    functions: Option<NonEmpty>,
    #[serde(default)]
    response_format: Option<Lenient<ResponseFormat<'a>>>,
    /// The images of Chat and Messages requests (`messages`) and Responses requests (`input`).
    #[serde(default)]
    messages: Option<ImageScan>,
    #[serde(default)]
    input: Option<ImageScan>,
    /// For ratelimit: whether a stream's client asked for usage.
    #[serde(default)]
    stream_options: Lenient<StreamOptionsPeek>,
}

#[derive(Deserialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type", default)]
    kind: Lenient<Cow<'a, str>>,
}

/// Why the body cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeekError {
    Malformed(String),
    MissingModel,
    ModelNotString,
    StreamNotBool,
}

/// What router learnt from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: String,
    pub stream: bool,
    /// `max_tokens` / `max_completion_tokens` when the client set one.
    pub max_output_tokens: Option<u64>,
    pub capabilities: Capabilities,
    /// `stream_options.include_usage` (ratelimit hides usage it forced, not usage asked for).
    pub include_usage: bool,
    /// The images in the request, which count by their size in pixels, not their bytes.
    pub images: ImageCost,
}

impl RequestFacts {
    /// A Chat Completions (or embeddings) body.
    pub fn parse(body: &[u8]) -> Result<Self, PeekError> {
        Self::parse_in(body, ClientApi::ChatCompletions, Operation::Create)
    }

    /// A body of `api`'s `operation`: `model` and `stream` are top-level fields in every
    /// dialect; the output cap is Chat's `max_completion_tokens` else `max_tokens`, Messages'
    /// `max_tokens`, Responses' `max_output_tokens`, and none for counting tokens.
    pub fn parse_in(body: &[u8], api: ClientApi, operation: Operation) -> Result<Self, PeekError> {
        let peek: Peek =
            crate::json::from_slice(body).map_err(|err| PeekError::Malformed(err.to_string()))?;
        let model = match peek.model {
            None => return Err(PeekError::MissingModel),
            Some(Lenient(None)) => return Err(PeekError::ModelNotString),
            Some(Lenient(Some(name))) if name.is_empty() => return Err(PeekError::MissingModel),
            Some(Lenient(Some(name))) => name,
        };
        let stream = match peek.stream {
            None => false,
            Some(Lenient(stream)) => stream.ok_or(PeekError::StreamNotBool)?,
        };
        let mut capabilities = Capabilities::NONE;
        if stream {
            capabilities = capabilities.with(Capability::Streaming);
        }
        if peek.tools.is_some_and(|t| t.0) || peek.functions.is_some_and(|f| f.0) {
            capabilities = capabilities.with(Capability::Tools);
        }
        let mut images = peek.messages.unwrap_or_default().0;
        let input = peek.input.unwrap_or_default().0;
        images.count += input.count;
        images.bytes += input.bytes;
        images.tokens += input.tokens;
        if images.count > 0 {
            capabilities = capabilities.with(Capability::Vision);
        }
        let json_schema = peek
            .response_format
            .and_then(|f| f.0)
            .and_then(|f| f.kind.0)
            .is_some_and(|k| k == "json_schema");
        if json_schema {
            capabilities = capabilities.with(Capability::JsonSchema);
        }
        let max_tokens = peek.max_tokens.and_then(|n| n.0);
        let max_output_tokens = match (operation, api) {
            (Operation::CountTokens, _) => Some(0),
            (_, ClientApi::ChatCompletions) => {
                peek.max_completion_tokens.and_then(|n| n.0).or(max_tokens)
            }
            (_, ClientApi::Messages) => max_tokens,
            (_, ClientApi::Responses) => peek.max_output_tokens.and_then(|n| n.0),
        };
        // Messages and Responses streams always end with their usage; only Chat's is asked.
        let include_usage = match api {
            ClientApi::ChatCompletions => {
                crate::ratelimit::estimate::include_usage(&peek.stream_options)
            }
            ClientApi::Messages | ClientApi::Responses => true,
        };
        Ok(RequestFacts {
            model,
            stream,
            max_output_tokens,
            capabilities,
            include_usage,
            images,
        })
    }

    /// The input-token estimate of a body of `body_len` bytes: bytes / 4, the usual rule of thumb
    /// for English text in BPE tokenizers (cheap, and good enough to compare windows), with each
    /// image counted by its pixels instead of its base64 bytes ([`ImageCost::input_tokens`]).
    pub fn input_tokens(&self, body_len: usize) -> u64 {
        self.images.input_tokens(body_len)
    }

    /// What a target must offer.
    pub fn needs(&self, body_len: usize, default_output_tokens: u64) -> Needs {
        Needs {
            input_tokens: self.input_tokens(body_len),
            output_tokens: self.max_output_tokens.unwrap_or(default_output_tokens),
            capabilities: self.capabilities,
        }
    }
}

/// Visits any JSON value, skipping it; `seq`/`map` hooks decide what a container means.
macro_rules! skip_scalars {
    ($out:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($out)
        }
    };
}

/// Is the value a non-empty array (`tools`)?
struct NonEmpty(bool);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NonEmpty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            skip_scalars!(NonEmpty(false));
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NonEmpty, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(NonEmpty(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NonEmpty, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(NonEmpty(false))
            }
        }
        d.deserialize_any(V)
    }
}
