//! Provider families (Cargo features): what every build knows, and what a build without a
//! family answers. `make test` runs this module in the full build and again in the OpenAI-only
//! build (`cargo test -p llmgw-core --no-default-features --lib translate::family_tests`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-openai-secret".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-secret".into()),
        "GEMINI_API_KEY" => Some("gm-secret".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        _ => None,
    }
}

/// One provider of each schema, with the fields each needs.
const EVERY_SCHEMA: [(&str, &str); 6] = [
    (
        "openai",
        r#"{"name":"openai","schema":"openai","key_env":"OPENAI_API_KEY"}"#,
    ),
    (
        "azure",
        r#"{"name":"azure","schema":"azure","key_env":"OPENAI_API_KEY"}"#,
    ),
    (
        "anthropic",
        r#"{"name":"claude","schema":"anthropic","key_env":"ANTHROPIC_API_KEY"}"#,
    ),
    (
        "gemini",
        r#"{"name":"gemini","schema":"gemini","key_env":"GEMINI_API_KEY"}"#,
    ),
    (
        "vertex",
        r#"{"name":"vertex","schema":"vertex","key_env":"GEMINI_API_KEY",
            "project":"p","region":"us-central1"}"#,
    ),
    (
        "bedrock",
        r#"{"name":"bedrock","schema":"bedrock","region":"us-east-1",
            "access_key_env":"AWS_ACCESS_KEY_ID","secret_key_env":"AWS_SECRET_ACCESS_KEY"}"#,
    ),
];

fn configure(providers: &[&str]) -> Result<TranslateRoot, ConfigError> {
    let json = format!(r#"{{"providers":[{}]}}"#, providers.join(","));
    TranslateRoot::configure(json.as_bytes(), &env)
}

#[test]
fn every_schema_belongs_to_one_family_and_parses_by_its_config_name() {
    let cases = [
        ("openai", Schema::OpenAi, Family::OpenAi),
        ("azure", Schema::Azure, Family::OpenAi),
        ("anthropic", Schema::Anthropic, Family::Anthropic),
        ("gemini", Schema::Gemini, Family::Gemini),
        ("vertex", Schema::Vertex, Family::Gemini),
        ("bedrock", Schema::Bedrock, Family::Bedrock),
    ];
    assert_eq!(Schema::ALL.len(), cases.len());
    for (name, schema, family) in cases {
        assert_eq!(Schema::from_name(name), Some(schema), "{name}");
        // The config's own spelling (serde's renames).
        let parsed: Schema = serde_json::from_value(serde_json::json!(name)).unwrap();
        assert_eq!(parsed, schema, "{name}");
        assert_eq!(schema.name(), name);
        assert_eq!(schema.family(), family, "{name}");
    }
    assert_eq!(Schema::from_name("claude"), None);
    assert_eq!(Schema::from_name("OpenAI"), None);
    assert!(Family::OpenAi.is_built());
    assert_eq!(not_built(Schema::OpenAi), None);
    assert_eq!(not_built(Schema::Azure), None);
}

#[test]
fn the_openai_family_is_served_by_every_build() {
    let root = configure(&[EVERY_SCHEMA[0].1, EVERY_SCHEMA[1].1]).unwrap();
    assert_eq!(root.providers()[0].schema(), Schema::OpenAi);
    assert_eq!(root.providers()[1].schema(), Schema::Azure);
    let mut filter = root.new_filter();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
    let mut host = crate::testing::FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_provider("openai")
        .with_request_body(body.as_bytes().to_vec())
        .with_property(&PROVIDER_METADATA, b"openai");
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Continue);
    assert!(host.local_response.is_none());
    assert_eq!(host.req("authorization"), Some("Bearer sk-openai-secret"));
    assert_eq!(filter.provider(), Some("openai"));
}

#[cfg(all(feature = "anthropic", feature = "gemini", feature = "bedrock"))]
#[test]
fn the_full_build_serves_every_schema() {
    let all: Vec<&str> = EVERY_SCHEMA.iter().map(|(_, p)| *p).collect();
    let root = configure(&all).unwrap();
    let schemas: Vec<&str> = root.providers().iter().map(|p| p.schema().name()).collect();
    assert_eq!(
        schemas,
        [
            "openai",
            "azure",
            "anthropic",
            "gemini",
            "vertex",
            "bedrock"
        ]
    );
    for (name, _) in EVERY_SCHEMA {
        assert_eq!(not_built(Schema::from_name(name).unwrap()), None, "{name}");
    }
}

/// The OpenAI-only build (translate-openai.wasm): the exact texts users see.
#[cfg(not(any(feature = "anthropic", feature = "gemini", feature = "bedrock")))]
mod openai_only {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn a_config_naming_another_family_is_refused_at_its_schema() {
        for (i, (schema, provider)) in EVERY_SCHEMA.iter().enumerate().skip(2) {
            let err = configure(&[EVERY_SCHEMA[0].1, provider]).unwrap_err();
            assert_eq!(err.path, "providers[1].schema", "{schema}");
            assert_eq!(
                err.reason,
                format!(
                    "`{schema}` is not in this build of translate (translate-openai.wasm); \
                     load translate.wasm"
                ),
                "{i}"
            );
        }
        // As `on_configure` logs it.
        let err = configure(&[EVERY_SCHEMA[2].1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "providers[0].schema: `anthropic` is not in this build of translate \
             (translate-openai.wasm); load translate.wasm"
        );
    }

    #[test]
    fn the_missing_family_is_named_before_any_other_field() {
        // Fields of the missing schema (or a missing key) would be refused too; the schema is
        // what needs fixing.
        let err = configure(&[
            r#"{"name":"claude","schema":"anthropic","key_env":"NOT_SET","default_max_tokens":0}"#,
        ])
        .unwrap_err();
        assert_eq!(err.path, "providers[0].schema");
        let err =
            configure(&[r#"{"name":"b","schema":"bedrock","key_env":"NOT_SET"}"#]).unwrap_err();
        assert_eq!(err.path, "providers[0].schema");
        assert!(
            err.reason.starts_with("`bedrock` is not in this build"),
            "{}",
            err.reason
        );
    }

    fn chat_host(metadata: Option<&str>, routed: &str) -> FakeHost {
        let body = r#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi"}]}"#;
        let host = FakeHost::new()
            .with_request_header(":method", "POST")
            .with_request_header(":path", "/v1/chat/completions")
            .with_request_header("content-type", "application/json")
            .with_provider(routed)
            .with_request_body(body.as_bytes().to_vec());
        match metadata {
            Some(name) => host.with_property(&PROVIDER_METADATA, name.as_bytes()),
            None => host,
        }
    }

    /// The try's local reply: status and `error` object. The body never leaves for the provider.
    fn reply(mut host: FakeHost) -> (u16, serde_json::Value) {
        let root = configure(&[EVERY_SCHEMA[0].1]).unwrap();
        let mut filter = root.new_filter();
        assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
        let size = host.request_body.len();
        assert_eq!(
            filter.on_request_body(&mut host, size, true),
            Flow::Continue
        );
        let Some(reply) = host.local_response.clone() else {
            panic!("no local reply");
        };
        (reply.status, reply.json()["error"].clone())
    }

    #[test]
    fn a_try_to_a_provider_of_a_missing_family_gets_an_openai_error_naming_the_module() {
        let error = |provider: &str, schema: &str| {
            json!({
                "message": format!(
                    "llmgw translate: provider `{provider}`: `{schema}` is not in this build of \
                     translate (translate-openai.wasm); load translate.wasm"
                ),
                "type": "api_error", "param": null, "code": "provider_not_in_build"
            })
        };
        // The endpoint's metadata names the provider (router's header agrees or not).
        for name in ["anthropic", "gemini", "vertex", "bedrock"] {
            assert_eq!(
                reply(chat_host(Some(name), "openai")),
                (500, error(name, name)),
                "{name}"
            );
        }
        // Quoted, as Envoy may hand a metadata string over.
        assert_eq!(
            reply(chat_host(Some("\"anthropic\""), "anthropic")),
            (500, error("anthropic", "anthropic"))
        );
        // No metadata: router's header.
        assert_eq!(
            reply(chat_host(None, "bedrock")),
            (500, error("bedrock", "bedrock"))
        );
    }

    #[test]
    fn an_unknown_provider_that_names_no_schema_keeps_the_plain_500() {
        let plain = json!({
            "message": "llmgw translate: no provider configured for this upstream",
            "type": "api_error", "param": null, "code": null
        });
        assert_eq!(
            reply(chat_host(Some("claude"), "openai")),
            (500, plain.clone())
        );
        // Azure is in this build: not configured here is all there is to say.
        assert_eq!(reply(chat_host(Some("azure"), "openai")), (500, plain));
    }
}

/// The Messages dialect needs the Anthropic family's wire types: the OpenAI-only build answers
/// a Messages client with a 404 in Anthropic's format naming the module to load.
#[cfg(not(feature = "anthropic"))]
#[test]
fn a_build_without_anthropic_refuses_the_messages_dialect_in_its_format() {
    let root = configure(&[EVERY_SCHEMA[0].1]).unwrap();
    let mut filter = root.new_filter();
    let mut host = crate::testing::FakeHost::new()
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/messages")
        .with_provider("openai")
        .with_request_body(br#"{"model":"m","max_tokens":5,"messages":[]}"#.to_vec());
    assert_eq!(filter.on_request_headers(&mut host, false), Flow::Pause);
    let reply = host.local_response.as_ref().unwrap();
    assert_eq!(reply.status, 404);
    let json = reply.json();
    assert_eq!(json["type"], "error");
    assert_eq!(json["error"]["type"], "not_found_error");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("translate-openai.wasm") && message.contains("translate.wasm"));
}
