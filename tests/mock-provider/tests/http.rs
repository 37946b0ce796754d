//! Starts the real binary on port 0 and talks to it with a tiny std-only HTTP/1.1 client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Mock {
    child: Child,
    port: u16,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Mock {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmgw-mock-provider"))
        .args(["--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("bad first line {line:?}"))
        .parse()
        .unwrap();
    Mock { child, port }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// For chunked bodies: whether the terminating zero-size chunk arrived.
    complete: bool,
    /// Arrival time of each body chunk (chunked responses).
    chunk_times: Vec<Instant>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request (`Connection: close`). `chunked` sends the body with chunked encoding.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    chunked: bool,
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if chunked {
        req.push_str("transfer-encoding: chunked\r\n\r\n");
        let mid = body.len() / 2;
        for part in [&body[..mid], &body[mid..]] {
            if !part.is_empty() {
                req.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
            }
        }
        req.push_str("0\r\n\r\n");
    } else {
        req.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    }
    s.write_all(req.as_bytes()).unwrap();

    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut hdrs = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        hdrs.push((k.trim().to_lowercase(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers: hdrs,
        body: Vec::new(),
        complete: false,
        chunk_times: Vec::new(),
    };
    if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Ok(size) = usize::from_str_radix(line.trim(), 16) else {
                break;
            };
            if size == 0 {
                resp.complete = true;
                break;
            }
            let mut buf = vec![0; size + 2];
            if r.read_exact(&mut buf).is_err() {
                break;
            }
            resp.chunk_times.push(Instant::now());
            resp.body.extend_from_slice(&buf[..size]);
        }
    } else {
        let _ = r.read_to_end(&mut resp.body);
        resp.complete = true;
    }
    resp
}

const OA: (&str, &str) = ("authorization", "Bearer sk-mock-openai");
const AK: (&str, &str) = ("x-api-key", "sk-mock-anthropic");
const AV: (&str, &str) = ("anthropic-version", "2023-06-01");

fn openai(port: u16, body: &Value) -> Resp {
    request(
        port,
        "POST",
        "/v1/chat/completions",
        &[OA, ("content-type", "application/json")],
        &body.to_string(),
        false,
    )
}

fn anthropic(port: u16, body: &Value) -> Resp {
    request(
        port,
        "POST",
        "/v1/messages",
        &[AK, AV, ("content-type", "application/json")],
        &body.to_string(),
        false,
    )
}

/// `data:` payloads of an SSE body, with their `event:` names (empty when absent).
fn sse(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut ev = String::new();
            let mut data = String::new();
            for l in f.lines() {
                if let Some(e) = l.strip_prefix("event: ") {
                    ev = e.to_string();
                } else if let Some(d) = l.strip_prefix("data: ") {
                    data = d.to_string();
                }
            }
            (ev, data)
        })
        .collect()
}

#[test]
fn openai_non_stream() {
    let m = start(&[]);
    let r = openai(
        m.port,
        &json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi there"}]}
        ]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock"));
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from mock openai! You said: hi there"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 10);
    assert_eq!(v["usage"]["prompt_tokens"], 2 + 3 + 2 + 3);
    assert_eq!(v["usage"]["total_tokens"], 20);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

    // max_tokens truncates and says "length"; chunked request bodies work.
    let body =
        json!({"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]});
    let r = request(
        m.port,
        "POST",
        "/v1/chat/completions",
        &[OA],
        &body.to_string(),
        true,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from mock");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[test]
fn openai_stream_matches_non_stream() {
    let m = start(&[]);
    let msgs = json!([{"role": "user", "content": "count my tokens, please"}]);
    let plain = openai(m.port, &json!({"model": "m", "messages": msgs})).json();
    let r = openai(
        m.port,
        &json!({"model": "m", "messages": msgs, "stream": true,
                "stream_options": {"include_usage": true}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let frames = sse(&r.text());
    assert_eq!(frames.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let mut text = String::new();
    for c in &chunks[1..chunks.len() - 2] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert!(c["usage"].is_null() && c.get("usage").is_some());
        text.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap());
    }
    assert_eq!(text, plain["choices"][0]["message"]["content"]);
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(fin["choices"][0]["delta"], json!({}));
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], plain["usage"]);

    // Without include_usage: no usage key at all, no usage chunk.
    let r = openai(
        m.port,
        &json!({"model": "m", "messages": msgs, "stream": true}),
    );
    let frames = sse(&r.text());
    assert!(frames.iter().all(|(_, d)| !d.contains("usage")));
    assert!(frames[frames.len() - 2]
        .1
        .contains("\"finish_reason\":\"stop\""));
}

#[test]
fn openai_errors() {
    let m = start(&["--forbid", "sk-client-virtual-key"]);
    let ok = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let r = request(
        m.port,
        "POST",
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-wrong-0123456789")],
        &ok.to_string(),
        false,
    );
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(!r.text().contains("sk-wrong-0123456789"));

    let bad = |body: Value| openai(m.port, &body);
    let r = bad(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "foo": 1}));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Unrecognized request argument supplied: foo"
    );
    assert_eq!(bad(json!({"model": "m", "messages": []})).status, 400);
    assert_eq!(
        bad(json!({"messages": [{"role": "user", "content": "x"}]})).status,
        400
    );
    assert_eq!(
        bad(json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]})).status,
        400
    );
    let r = request(
        m.port,
        "POST",
        "/v1/chat/completions",
        &[OA],
        "{not json",
        false,
    );
    assert_eq!(r.status, 400);

    let r = request(
        m.port,
        "POST",
        "/v1/chat/completions",
        &[OA, ("x-llmgw-consumer", "alice")],
        &ok.to_string(),
        false,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "gateway header leaked: x-llmgw-consumer"
    );

    let leaked =
        json!({"model": "m", "messages": [{"role": "user", "content": "sk-client-virtual-key"}]});
    let r = openai(m.port, &leaked);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "forbidden secret reached the provider"
    );

    let r = openai(
        m.port,
        &json!({"model": "m", "messages": [{"role": "user", "content": "x [mock:status=429]"}]}),
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = openai(
        m.port,
        &json!({"model": "m", "messages": [{"role": "user", "content": "x [mock:status=500]"}]}),
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
}

#[test]
fn anthropic_non_stream() {
    let m = start(&[]);
    let r = anthropic(
        m.port,
        &json!({"model": "claude-x", "max_tokens": 100, "system": "be brief",
                "messages": [{"role": "user", "content": "hi there"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-x");
    assert!(v["id"].as_str().unwrap().starts_with("msg_mock"));
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from mock anthropic! You said: hi there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 10, "output_tokens": 10,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );

    let r = anthropic(
        m.port,
        &json!({"model": "c", "max_tokens": 100, "stop_sequences": ["!"],
                "messages": [{"role": "user", "content": "x"}]}),
    );
    let v = r.json();
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "!");
    assert_eq!(v["content"][0]["text"], "Hello from mock anthropic");
}

#[test]
fn anthropic_stream_frames() {
    let m = start(&[]);
    let body = json!({"model": "c", "max_tokens": 4, "stream": true,
                      "messages": [{"role": "user", "content": "hello"}]});
    let r = anthropic(m.port, &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let frames = sse(&r.text());
    let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<Value> = frames
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (name, d) in names.iter().zip(&data) {
        assert_eq!(d["type"], *name);
    }
    assert_eq!(data[0]["message"]["content"], json!([]));
    assert_eq!(data[0]["message"]["usage"]["output_tokens"], 1);
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 4);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = data[3..7]
        .iter()
        .map(|d| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "Hello from mock anthropic");
    assert_eq!(data[3]["delta"]["type"], "text_delta");
    assert_eq!(
        data[8],
        json!({"type": "message_delta",
               "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
               "usage": {"output_tokens": 4}})
    );
}

#[test]
fn anthropic_errors() {
    let m = start(&[]);
    let ok =
        json!({"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    let send = |headers: &[(&str, &str)], body: &Value| {
        request(
            m.port,
            "POST",
            "/v1/messages",
            headers,
            &body.to_string(),
            false,
        )
    };
    let r = send(&[("x-api-key", "nope"), AV], &ok);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
    );
    let r = send(&[AK], &ok);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "anthropic-version: header is required"
    );
    let r = send(&[AK, AV, ("authorization", "Bearer x")], &ok);
    assert_eq!(r.status, 400);
    let r = send(&[AK, AV, ("x-llmgw-provider", "anthropic")], &ok);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(
        r.json()["error"]["message"],
        "gateway header leaked: x-llmgw-provider"
    );

    let r = send(
        &[AK, AV],
        &json!({"model": "c", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "max_tokens: Field required");
    let r = send(
        &[AK, AV],
        &json!({"model": "c", "max_tokens": 5, "messages": [
            {"role": "system", "content": "s"}, {"role": "user", "content": "x"}]}),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("top-level `system`"));
    let r = send(
        &[AK, AV],
        &json!({"model": "c", "max_tokens": 5, "temperature": 1.5,
                                    "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(r.status, 400);
    let r = send(
        &[AK, AV],
        &json!({"model": "c", "max_tokens": 5, "n": 2,
                                    "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        r.json()["error"]["message"],
        "n: Extra inputs are not permitted"
    );

    for (code, typ) in [
        (529, "overloaded_error"),
        (500, "api_error"),
        (429, "rate_limit_error"),
    ] {
        let r = anthropic(
            m.port,
            &json!({"model": "c", "max_tokens": 5, "stream": true,
                    "messages": [{"role": "user", "content": format!("x [mock:status={code}]")}]}),
        );
        assert_eq!(r.status, code);
        assert_eq!(r.json()["type"], "error");
        assert_eq!(r.json()["error"]["type"], typ);
    }
}

#[test]
fn stream_controls() {
    let m = start(&[]);
    // cut_after: two content frames, then the connection is aborted without the last chunk.
    let r = openai(
        m.port,
        &json!({"model": "m", "stream": true,
                "messages": [{"role": "user", "content": "[mock:cut_after=2] hi"}]}),
    );
    assert_eq!(r.status, 200);
    assert!(!r.complete, "cut stream must not end cleanly");
    let frames = sse(&r.text());
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert!(!r.text().contains("[DONE]"));

    // truncate_after: ends cleanly but without the final frames.
    let r = anthropic(
        m.port,
        &json!({"model": "c", "max_tokens": 50, "stream": true,
                "messages": [{"role": "user", "content": "hi [mock:truncate_after=1]"}]}),
    );
    assert!(r.complete);
    let names: Vec<String> = sse(&r.text()).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta"
        ]
    );

    // delay_ms: frames arrive spread out, the first long before the last.
    let r = openai(
        m.port,
        &json!({"model": "m", "stream": true,
                "messages": [{"role": "user", "content": "[mock:delay_ms=60][mock:words=4]"}]}),
    );
    assert!(r.complete);
    assert!(r.chunk_times.len() >= 7, "{}", r.chunk_times.len());
    let spread = *r.chunk_times.last().unwrap() - r.chunk_times[0];
    assert!(spread >= Duration::from_millis(300), "{spread:?}");
    let text: String = sse(&r.text())
        .iter()
        .filter(|(_, d)| d.starts_with('{'))
        .filter_map(|(_, d)| {
            serde_json::from_str::<Value>(d).ok()?["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "lorem ipsum dolor sit");
}

#[test]
fn mock_endpoints() {
    let m = start(&[]);
    assert_eq!(
        request(m.port, "GET", "/_mock/health", &[], "", false).status,
        200
    );
    assert_eq!(request(m.port, "POST", "/nope", &[], "", false).status, 404);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    openai(m.port, &body);
    let log = request(m.port, "GET", "/_mock/requests", &[], "", false).json();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["method"], "POST");
    assert_eq!(log[1]["path"], "/v1/chat/completions");
    assert_eq!(log[1]["headers"]["authorization"], "Bearer sk-mock-openai");
    assert_eq!(log[1]["body"], body.to_string());
    assert_eq!(
        request(m.port, "DELETE", "/_mock/requests", &[], "", false).status,
        200
    );
    let log = request(m.port, "GET", "/_mock/requests", &[], "", false).json();
    assert_eq!(log, json!([]));
}

// ---------------------------------------------------------------------------------------------
// Embeddings on the Gemini API, Vertex AI and Azure OpenAI; Azure's error shape

const GK: (&str, &str) = ("x-goog-api-key", "mock-gemini-key");
const VT: (&str, &str) = ("authorization", "Bearer mock-vertex-token");
const AZ: (&str, &str) = ("api-key", "mock-azure-key");
const VERTEX_MODELS: &str = "/v1/projects/p/locations/us-central1/publishers/google/models";

fn post(port: u16, path: &str, auth: (&str, &str), body: &Value) -> Resp {
    request(
        port,
        "POST",
        path,
        &[auth, ("content-type", "application/json")],
        &body.to_string(),
        false,
    )
}

#[test]
fn gemini_embed_content_and_batch() {
    let m = start(&[]);
    let one = "/v1beta/models/gemini-embedding-001:embedContent";
    let r = post(
        m.port,
        one,
        GK,
        &json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let values = r.json()["embedding"]["values"].as_array().unwrap().len();
    assert_eq!(values, 8);
    assert!(r.json().get("usageMetadata").is_none());

    let batch = "/v1beta/models/gemini-embedding-001:batchEmbedContents";
    let entry = |text: &str| json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}});
    let r = post(
        m.port,
        batch,
        GK,
        &json!({"requests": [entry("a"), entry("b")]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json()["embeddings"].as_array().unwrap().clone();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["values"].as_array().unwrap().len(), 3072);
    assert_ne!(e[0], e[1], "different texts embed differently");

    // Strictness: key, content.parts, the batch entries' model, unknown fields.
    let refusals = [
        (
            one,
            ("x-goog-api-key", "wrong"),
            json!({"content": {"parts": [{"text": "a"}]}}),
            400,
        ),
        (one, VT, json!({"content": {"parts": [{"text": "a"}]}}), 401),
        (one, GK, json!({"content": {}}), 400),
        (
            one,
            GK,
            json!({"content": {"parts": [{"text": "a"}]}, "dimensions": 3}),
            400,
        ),
        (
            batch,
            GK,
            json!({"requests": [{"content": {"parts": [{"text": "a"}]}}]}),
            400,
        ),
        (
            batch,
            GK,
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}),
            400,
        ),
    ];
    for (path, auth, body, status) in refusals {
        let r = post(m.port, path, auth, &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(
            r.json()["error"]["status"].is_string(),
            "Google's error shape"
        );
    }
    // Vertex's method is not the Gemini API's.
    let r = post(
        m.port,
        "/v1beta/models/gemini-embedding-001:predict",
        GK,
        &json!({"instances": [{"content": "a"}]}),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn vertex_predict_embeddings() {
    let m = start(&[]);
    let path = format!("{VERTEX_MODELS}/text-embedding-005:predict");
    let body = json!({"instances": [{"content": "one two"}, {"content": "three"}],
                      "parameters": {"outputDimensionality": 4}});
    let r = post(m.port, &path, VT, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json()["predictions"].as_array().unwrap().clone();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["embeddings"]["values"].as_array().unwrap().len(), 4);
    assert_eq!(p[0]["embeddings"]["statistics"]["token_count"], 2);
    assert_eq!(p[1]["embeddings"]["statistics"]["token_count"], 1);
    // A Gemini API key is no Vertex credential; instances need content.
    assert_eq!(post(m.port, &path, GK, &body).status, 401);
    let r = post(m.port, &path, VT, &json!({"instances": [{"text": "x"}]}));
    assert_eq!(r.status, 400);
    let r = post(m.port, &path, VT, &json!({"instances": []}));
    assert_eq!(r.status, 400);
}

#[test]
fn azure_embeddings_and_error_shapes() {
    let m = start(&[]);
    let path = "/openai/deployments/embed-prod/embeddings?api-version=2024-10-21";
    let r = post(
        m.port,
        path,
        AZ,
        &json!({"input": ["a", "b"], "dimensions": 5}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "embed-prod");
    assert_eq!(
        r.json()["data"][1]["embedding"].as_array().unwrap().len(),
        5
    );
    // api-version and the api-key header are required; a bearer key is refused.
    let no_version = "/openai/deployments/embed-prod/embeddings";
    assert_eq!(
        post(m.port, no_version, AZ, &json!({"input": "a"})).status,
        404
    );
    assert_eq!(post(m.port, path, OA, &json!({"input": "a"})).status, 401);

    // Azure's error shape for the status controls, chat and embeddings alike.
    let chat = "/openai/deployments/gpt-4o-mini-prod/chat/completions?api-version=2024-10-21";
    let ask = |text: &str| json!({"messages": [{"role": "user", "content": text}]});
    let r = post(m.port, chat, AZ, &ask("hi [mock:status=429]"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["code"], "429");
    assert!(
        r.json()["error"].get("type").is_none(),
        "Azure's, not OpenAI's"
    );
    let r = post(m.port, chat, AZ, &ask("hi [mock:status=400]"));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "content_filter");
    assert_eq!(
        r.json()["error"]["innererror"]["code"],
        "ResponsibleAIPolicyViolation"
    );
    let r = post(m.port, path, AZ, &json!({"input": "x [mock:status=429]"}));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "429");
}
