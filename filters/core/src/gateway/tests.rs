//! The chain runs filters as Envoy would run them separately: scripted filters check the order
//! and the holding rules; the real three check the whole downstream path on the fake host.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::facts;
use crate::testing::FakeHost;

type Log = Rc<RefCell<Vec<String>>>;

/// What a scripted filter does in each callback.
#[derive(Default, Clone, Copy)]
struct Script {
    pause_headers: bool,
    /// Pause the body until its end (like router).
    wait_for_body: bool,
    /// Reply 403 in the body callback.
    reply_in_body: bool,
    /// Pause the headers for a gRPC call, resume when it answers (like ratelimit, global).
    callout: bool,
}

struct Scripted {
    name: &'static str,
    script: Script,
    log: Log,
}

impl Scripted {
    fn boxed(name: &'static str, script: Script, log: &Log) -> Box<dyn HttpFilter> {
        Box::new(Self {
            name,
            script,
            log: Rc::clone(log),
        })
    }
    fn note(&self, what: String) {
        self.log.borrow_mut().push(format!("{}:{what}", self.name));
    }
}

impl HttpFilter for Scripted {
    fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        self.note(format!("headers({end_of_stream})"));
        host.set_request_header(&format!("x-seen-{}", self.name), "1");
        if self.script.callout {
            return Flow::Pause;
        }
        if self.script.pause_headers {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
    fn on_request_body(&mut self, host: &mut dyn Host, size: usize, end_of_stream: bool) -> Flow {
        self.note(format!("body({size},{end_of_stream})"));
        if self.script.reply_in_body && end_of_stream {
            host.send_response(403, &[], b"no");
            return Flow::Pause;
        }
        if self.script.wait_for_body && !end_of_stream {
            return Flow::Pause;
        }
        Flow::Continue
    }
    fn on_grpc_response(&mut self, host: &mut dyn Host, token: u32, _status: u32, _size: usize) {
        self.note(format!("grpc({token})"));
        if self.script.callout {
            host.resume_request();
        }
    }
    fn on_response_headers(&mut self, _host: &mut dyn Host, _end: bool) -> Flow {
        self.note("response".into());
        Flow::Continue
    }
    fn on_stream_done(&mut self, _host: &mut dyn Host) {
        self.note("done".into());
    }
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

#[test]
fn filters_after_a_holding_one_start_when_it_lets_the_request_go() {
    let log = Log::default();
    let waits = Script {
        pause_headers: true,
        wait_for_body: true,
        ..Script::default()
    };
    let mut chain = Chain::new(vec![
        Scripted::boxed("a", Script::default(), &log),
        Scripted::boxed("r", waits, &log),
        Scripted::boxed("l", Script::default(), &log),
    ]);
    let mut host = FakeHost::new();
    assert_eq!(chain.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(taken(&log), ["a:headers(false)", "r:headers(false)"]);
    assert_eq!(host.req("x-seen-l"), None, "l waits for r");

    assert_eq!(chain.on_request_body(&mut host, 10, false), Flow::Pause);
    assert_eq!(taken(&log), ["a:body(10,false)", "r:body(10,false)"]);
    assert_eq!(chain.on_request_body(&mut host, 25, true), Flow::Continue);
    assert_eq!(
        taken(&log),
        [
            "a:body(25,true)",
            "r:body(25,true)",
            "l:headers(false)",
            "l:body(25,true)"
        ]
    );

    chain.on_response_headers(&mut host, false);
    chain.on_stream_done(&mut host);
    assert_eq!(
        taken(&log),
        [
            "l:response",
            "r:response",
            "a:response",
            "l:done",
            "r:done",
            "a:done"
        ]
    );
}

#[test]
fn a_local_reply_ends_the_request_for_every_filter_after_it() {
    let log = Log::default();
    let refuses = Script {
        pause_headers: true,
        wait_for_body: true,
        reply_in_body: true,
        ..Script::default()
    };
    let mut chain = Chain::new(vec![
        Scripted::boxed("r", refuses, &log),
        Scripted::boxed("l", Script::default(), &log),
    ]);
    let mut host = FakeHost::new();
    chain.on_request_headers(&mut host, false);
    assert_eq!(chain.on_request_body(&mut host, 5, true), Flow::Pause);
    assert_eq!(host.local_response.as_ref().map(|r| r.status), Some(403));
    assert_eq!(chain.on_request_body(&mut host, 5, true), Flow::Pause);
    chain.on_response_headers(&mut host, false);
    chain.on_stream_done(&mut host);
    let log = taken(&log);
    assert!(log.iter().all(|e| !e.starts_with("l:")), "{log:?}");
}

#[test]
fn a_callout_resumes_envoy_only_after_the_filters_behind_it_ran() {
    let log = Log::default();
    let waits = Script {
        pause_headers: true,
        wait_for_body: true,
        ..Script::default()
    };
    let calls = Script {
        callout: true,
        ..Script::default()
    };
    let mut chain = Chain::new(vec![
        Scripted::boxed("r", waits, &log),
        Scripted::boxed("l", calls, &log),
        Scripted::boxed("z", Script::default(), &log),
    ]);
    let mut host = FakeHost::new();
    chain.on_request_headers(&mut host, false);
    assert_eq!(chain.on_request_body(&mut host, 7, true), Flow::Pause);
    assert_eq!(
        taken(&log),
        ["r:headers(false)", "r:body(7,true)", "l:headers(false)"]
    );
    assert_eq!(host.resumed, 0);

    chain.on_grpc_response(&mut host, 42, 0, 0);
    assert_eq!(
        taken(&log),
        [
            "r:grpc(42)",
            "l:grpc(42)",
            "l:body(7,true)",
            "z:headers(false)",
            "z:body(7,true)"
        ]
    );
    assert_eq!(host.resumed, 1, "Envoy resumed once, after z");
}

#[test]
fn a_bodiless_request_reaches_every_filter_with_end_of_stream() {
    let log = Log::default();
    let mut chain = Chain::new(vec![
        Scripted::boxed("a", Script::default(), &log),
        Scripted::boxed("b", Script::default(), &log),
    ]);
    let mut host = FakeHost::new();
    assert_eq!(chain.on_request_headers(&mut host, true), Flow::Continue);
    assert_eq!(taken(&log), ["a:headers(true)", "b:headers(true)"]);
}

// ---------------------------------------------------------------------------------------------
// The real three

const ALICE_KEY: &str = "sk-chain-alice";

fn config() -> String {
    let sha = crate::auth::hash_key(ALICE_KEY);
    format!(
        r#"{{
        "auth": {{"keys": [{{"sha256": "{sha}", "consumer": "alice", "team": "ml"}}]}},
        "router": {{"models": [{{"name": "gpt-4o-mini",
            "targets": [{{"provider": "openai", "model": "gpt-4o-mini"}}]}}]}},
        "ratelimit": {{"consumers": {{"alice": {{"requests_per_minute": 1}}}}}}
    }}"#
    )
}

fn root() -> GatewayRoot {
    GatewayRoot::configure(config().as_bytes(), &|_: &str| None).unwrap()
}

fn chat(key: &str, model: &str) -> FakeHost {
    FakeHost::new()
        .with_now_ms(1_700_000_000_000)
        .with_request_header(":method", "POST")
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header("authorization", &format!("Bearer {key}"))
        .with_request_body(format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#
        ))
}

fn send(root: &GatewayRoot, host: &mut FakeHost) -> (Chain, Flow) {
    let mut chain = root.new_filter();
    let headers = chain.on_request_headers(host, false);
    assert_eq!(
        headers,
        Flow::Pause,
        "router holds the headers for the body"
    );
    let size = host.request_body.len();
    let flow = chain.on_request_body(host, size, true);
    (chain, flow)
}

#[test]
fn the_downstream_three_run_in_one_module() {
    let root = root();
    let mut host = chat(ALICE_KEY, "gpt-4o-mini");
    let (mut chain, flow) = send(&root, &mut host);
    assert_eq!(flow, Flow::Continue);
    assert!(host.local_response.is_none());
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("openai"));
    assert_eq!(
        host.req("authorization"),
        None,
        "the client's key stays here"
    );
    host.response_headers = vec![(":status".into(), "200".into())];
    chain.on_response_headers(&mut host, true);
    assert_eq!(host.resp("x-ratelimit-limit-requests"), Some("1"));
    assert_eq!(host.resp("x-ratelimit-remaining-requests"), Some("0"));

    // ratelimit counted that request: the next one is refused, by ratelimit, after routing.
    let mut host = FakeHost {
        shared: host.shared.clone(),
        ..chat(ALICE_KEY, "gpt-4o-mini")
    };
    let (_, flow) = send(&root, &mut host);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(host.local_response.as_ref().map(|r| r.status), Some(429));
}

#[test]
fn facts_reach_filter_state_and_the_module_s_later_filters_read_its_own_copy() {
    let root = root();
    let mut host = chat(ALICE_KEY, "gpt-4o-mini");
    let (_, flow) = send(&root, &mut host);
    assert_eq!(flow, Flow::Continue);
    // In filter state for translate and the access log…
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
    assert_eq!(host.routed().upstream_model.as_deref(), Some("gpt-4o-mini"));
    // …yet router and ratelimit asked the host for none of them.
    let reads = host.property_reads.borrow();
    assert!(
        !reads
            .iter()
            .any(|p| facts::DOWNSTREAM.contains(&p.as_str())),
        "{reads:?}"
    );
}

#[test]
fn refusals_come_from_the_filter_that_refuses() {
    let root = root();
    let mut chain = root.new_filter();
    let mut host = chat("sk-wrong", "gpt-4o-mini");
    assert_eq!(chain.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(host.local_response.as_ref().map(|r| r.status), Some(401));

    let mut host = chat(ALICE_KEY, "no-such-model");
    let (_, flow) = send(&root, &mut host);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(host.local_response.as_ref().map(|r| r.status), Some(404));
    assert!(
        host.shared.is_empty(),
        "ratelimit never ran: nothing counted"
    );
}

#[test]
fn a_budget_over_an_unpriced_model_is_refused_at_load() {
    let configure = |ratelimit: &str| {
        let json = format!(
            r#"{{"router": {{"models": [
                {{"name": "priced", "targets": [{{"provider": "openai", "model": "gpt-4.1",
                  "price": {{"input": 2, "output": 8}}}}]}},
                {{"name": "free", "targets": [{{"provider": "local", "model": "llama"}}]}}]}},
              "ratelimit": {ratelimit}}}"#
        );
        GatewayRoot::configure(json.as_bytes(), &|_: &str| None)
    };
    let err = configure(r#"{"teams": {"ml": {"usd_per_month": 500}}}"#).unwrap_err();
    assert_eq!(err.path, "ratelimit.teams.ml.usd_per_month");
    assert!(err
        .reason
        .contains("model `free`, whose target 0 (local llama) has no price"));
    let err = configure(r#"{"limits": [{"name": "b", "usd_per_day": 1}]}"#).unwrap_err();
    assert_eq!(err.path, "ratelimit.limits[0].usd_per_day");
    // Restricted to priced models, or no budget at all: fine.
    configure(r#"{"limits": [{"name": "b", "models": ["gpt-4.1"], "usd_per_day": 1}]}"#).unwrap();
    configure(r#"{"default": {"requests_per_minute": 1}}"#).unwrap();
}

#[test]
fn config_refusals_name_the_section() {
    let refusal =
        |json: &str| GatewayRoot::configure(json.as_bytes(), &|_: &str| None).unwrap_err();
    let err = refusal(r#"{"auth": {"keys": [{"sha256": "abc", "consumer": "x"}]}}"#);
    assert!(err.path.starts_with("auth.keys[0]"), "{}", err.path);
    let err = refusal(r#"{"router": {"models": []}, "extra": 1}"#);
    assert!(err.reason.contains("extra"), "{err:?}");
    let err = refusal(r#"{}"#);
    assert_eq!(err.path, "(root)");
    let err = refusal(r#"{"ratelimit": {"default": {"requests_per_fortnight": 1}}}"#);
    assert!(err.path.starts_with("ratelimit.default"), "{}", err.path);
    // One section alone is a valid gateway (auth in front of anything).
    let sha = crate::auth::hash_key(ALICE_KEY);
    let auth_only = format!(r#"{{"auth": {{"keys": [{{"sha256": "{sha}", "consumer": "a"}}]}}}}"#);
    assert!(GatewayRoot::configure(auth_only.as_bytes(), &|_: &str| None).is_ok());
}

/// gateway.wasm is built without ratelimit's admin role (llmgw-core's feature `admin`).
#[cfg(not(feature = "admin"))]
#[test]
fn the_admin_role_is_refused_by_its_section_path() {
    let err = GatewayRoot::configure(
        br#"{"ratelimit": {"admin": {"key_sha256": "ABC"}}}"#,
        &|_: &str| None,
    )
    .unwrap_err();
    assert_eq!(err.path, "ratelimit.admin");
    assert!(
        err.reason
            .starts_with("the admin role is not in this build of ratelimit (gateway.wasm); load ratelimit.wasm for the admin listener"),
        "{err:?}"
    );
}

#[test]
fn a_body_ended_by_trailers_is_routed_like_one_ended_by_end_of_stream() {
    let root = root();
    let mut host = chat(ALICE_KEY, "gpt-4o-mini");
    let mut chain = root.new_filter();
    assert_eq!(chain.on_request_headers(&mut host, false), Flow::Pause);
    let size = host.request_body.len();
    assert_eq!(chain.on_request_body(&mut host, size, false), Flow::Pause);
    assert_eq!(host.req(facts::CLUSTER_HEADER), None);
    assert_eq!(chain.on_request_trailers(&mut host), Flow::Continue);
    assert!(host.local_response.is_none());
    assert_eq!(host.req(facts::CLUSTER_HEADER), Some("openai"));
    assert_eq!(host.auth_facts().consumer.as_deref(), Some("alice"));
}

/// Reads the request header map, notes its names, then makes one change.
struct MapReader {
    log: Log,
    change: fn(&mut dyn Host),
}

impl HttpFilter for MapReader {
    fn on_request_headers(&mut self, host: &mut dyn Host, _end_of_stream: bool) -> Flow {
        let names: Vec<String> = host
            .request_headers()
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        self.log.borrow_mut().push(names.join(","));
        (self.change)(host);
        Flow::Continue
    }
}

#[test]
fn filters_of_the_module_share_one_read_of_the_request_headers_and_see_each_others_changes() {
    let log = Log::default();
    let reader = |change: fn(&mut dyn Host)| -> Box<dyn HttpFilter> {
        Box::new(MapReader {
            log: Rc::clone(&log),
            change,
        })
    };
    let mut chain = Chain::new(vec![
        reader(|h| h.remove_request_header("authorization")),
        reader(|h| h.set_request_header("x-b", "1")),
        reader(|_| {}),
    ]);
    let mut host = FakeHost::new()
        .with_request_header(":path", "/v1/chat/completions")
        .with_request_header("authorization", "Bearer k");
    assert_eq!(chain.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(
        taken(&log),
        [":path,authorization", ":path", ":path,x-b"],
        "each filter sees the map as the ones before it left it"
    );
    // The first read, none after the removal, one after the write (where Envoy put it is
    // Envoy's business).
    let reads = host
        .call_log
        .borrow()
        .iter()
        .filter(|c| *c == "request_headers")
        .count();
    assert_eq!(reads, 2);
    // The next callback reads again: filters after the module may have changed the map.
    host.call_log.borrow_mut().clear();
    chain.on_request_body(&mut host, 0, true);
    assert!(host.call_log.borrow().is_empty());
}
