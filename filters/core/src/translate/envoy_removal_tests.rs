//! envoy/gateway.yaml's `envoy.filters.http.header_mutation` upstream filter removes account
//! headers before translate sees the answer. It must remove exactly the account headers
//! ([`account_headers`]) that nothing in translate reads: never the provider's request id (which
//! translate renames to `x-provider-request-id`) nor a header a translator of the shipped config
//! reads (`Translator::response_headers_read`, e.g. Bedrock's `x-amzn-errortype`). The list in
//! the YAML is checked here against the one in core, so the two cannot drift apart.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::account_headers::{self, ACCOUNT_NAMES, ACCOUNT_PREFIXES, REQUEST_ID_HEADERS};
use super::*;
use crate::dialect::Operation;

const GATEWAY_YAML: &str = include_str!("../../../../envoy/gateway.yaml");

/// What one header-mutation entry removes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
enum Removal {
    Name(String),
    Prefix(String),
}

impl Removal {
    fn removes(&self, header: &str) -> bool {
        match self {
            Removal::Name(name) => header.eq_ignore_ascii_case(name),
            Removal::Prefix(prefix) => header
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        }
    }
}

/// The removals of the YAML's header-mutation filter (defined once, under an anchor): its
/// `remove: <name>` and `remove_on_match: {key_matcher: {prefix: <prefix>}}` entries, up to the
/// next filter.
fn yaml_removals(yaml: &str) -> Vec<Removal> {
    let mut definitions = yaml
        .split("name: envoy.filters.http.header_mutation")
        .skip(1);
    let section = definitions
        .next()
        .expect("envoy/gateway.yaml has no envoy.filters.http.header_mutation filter");
    assert!(
        definitions.next().is_none(),
        "one header-mutation filter, shared through its YAML anchor"
    );
    let section = section.split("name: ").next().unwrap_or_default();
    let mut removals = Vec::new();
    for line in section.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- remove: ") {
            removals.push(Removal::Name(name.trim().to_string()));
        } else if let Some((_, prefix)) = line.split_once("prefix: ") {
            removals.push(Removal::Prefix(
                prefix.trim_end_matches('}').trim().to_string(),
            ));
        } else if line.contains("remove") {
            panic!("a removal this test does not understand: {line}");
        }
    }
    removals.sort();
    removals
}

/// translate's configuration in envoy/gateway.yaml (the `value: |` block of `llmgw.translate`).
fn yaml_translate_config(yaml: &str) -> String {
    let (_, after) = yaml
        .split_once("name: llmgw.translate")
        .expect("envoy/gateway.yaml has a llmgw.translate filter");
    let mut lines = after
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("value: |"));
    let start = lines.next().expect("translate's configuration block");
    let indent = start.len() - start.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every response header a translator of the shipped config reads, for every client dialect.
fn read_by_translators() -> Vec<&'static str> {
    let config = yaml_translate_config(GATEWAY_YAML);
    let env = |_: &str| Some("secret".to_string());
    let root = TranslateRoot::configure(config.as_bytes(), &env)
        .expect("envoy/gateway.yaml's translate configuration compiles");
    let mut read = Vec::new();
    for provider in root.providers() {
        let mut translators = vec![
            provider.translator(Some("m")),
            provider.messages_translator(Operation::Create, Some("m")),
            provider.messages_translator(Operation::CountTokens, Some("m")),
            provider.responses_translator(Some("m")),
        ];
        if let Ok(Some(embeddings)) = provider.embeddings_translator(Some("m")) {
            translators.push(Ok(embeddings));
        }
        for translator in translators.into_iter().flatten() {
            read.extend(translator.response_headers_read());
        }
    }
    read
}

#[test]
fn the_yaml_reads_its_header_mutation_and_translate_config() {
    let removals = yaml_removals(GATEWAY_YAML);
    assert!(removals.contains(&Removal::Name("set-cookie".into())));
    assert!(removals.contains(&Removal::Prefix("x-ratelimit-".into())));
    let read = read_by_translators();
    assert!(read.contains(&"x-amzn-errortype"), "{read:?}");
    assert!(
        read.contains(&"x-amzn-bedrock-input-token-count"),
        "{read:?}"
    );
}

#[test]
fn envoy_removes_no_request_id_and_nothing_a_translator_reads() {
    let removals = yaml_removals(GATEWAY_YAML);
    for header in REQUEST_ID_HEADERS
        .iter()
        .chain(read_by_translators().iter())
    {
        let removed_by = removals.iter().find(|r| r.removes(header));
        assert_eq!(removed_by, None, "{header} must reach translate");
    }
}

#[test]
fn envoy_removes_only_account_headers() {
    for removal in yaml_removals(GATEWAY_YAML) {
        let (Removal::Name(name) | Removal::Prefix(name)) = &removal;
        assert!(
            account_headers::is_account_header(name),
            "{removal:?} is not an account header"
        );
    }
}

#[test]
fn envoy_removes_every_account_header_nothing_reads() {
    // Core's lists, less what translate must see: the YAML's list, derived.
    let kept: Vec<&str> = REQUEST_ID_HEADERS
        .iter()
        .copied()
        .chain(read_by_translators())
        .collect();
    let kept_by = |removal: &Removal| kept.iter().any(|header| removal.removes(header));
    let mut derived: Vec<Removal> = ACCOUNT_PREFIXES
        .iter()
        .map(|p| Removal::Prefix(p.to_string()))
        .chain(ACCOUNT_NAMES.iter().map(|n| Removal::Name(n.to_string())))
        .filter(|removal| !kept_by(removal))
        .collect();
    derived.sort();
    assert_eq!(yaml_removals(GATEWAY_YAML), derived);
}

/// What the filter saves translate: on OpenAI's real stream headers
/// ([`scenario::openai_stream_headers`], 22, 15 of them the account's), Envoy leaves 8, and
/// translate's response-headers step makes 4 host calls (the map, the request id's removal and
/// its renamed copy, the usage marker) instead of 18 (14 removals more), while the client gets
/// exactly the headers it gets without the filter.
#[cfg(feature = "anthropic")]
#[test]
fn behind_envoys_removal_translate_removes_only_the_request_id() {
    use crate::testing::scenario::{self, Roots};
    let removals = yaml_removals(GATEWAY_YAML);
    let roots = Roots::new().expect("the scenario's configs");
    let mut alone = scenario::routed_request("openai", "gpt-4o-mini");
    let calls_alone = scenario::stream_calls(&mut roots.translate.new_filter(), &mut alone, &[]);
    let after_envoy: Vec<(String, String)> = scenario::openai_stream_headers()
        .into_iter()
        .filter(|(name, _)| !removals.iter().any(|r| r.removes(name)))
        .collect();
    assert_eq!(after_envoy.len(), 8, "{after_envoy:?}");
    let mut behind_envoy = scenario::routed_request("openai", "gpt-4o-mini");
    let calls_behind_envoy = scenario::stream_calls_with_headers(
        &mut roots.translate.new_filter(),
        &mut behind_envoy,
        after_envoy,
        &[],
    );
    assert_eq!(behind_envoy.response_headers, alone.response_headers);
    assert_eq!(calls_alone, [18]);
    assert_eq!(
        calls_behind_envoy,
        [4],
        "{:#?}",
        behind_envoy.call_log.take()
    );
}
