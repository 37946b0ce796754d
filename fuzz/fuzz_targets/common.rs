//! Shared by the response targets: run one translator over a body, buffered and streamed.

use llmgw_core::translate::{ResponseMode, Translator};

/// The first byte picks the status and the cut; the rest is the provider's body.
pub fn run(make: &dyn Fn() -> Box<dyn Translator>, content_type: &str, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 429, 500, 503][usize::from(selector % 5)];
    // Buffered answer (JSON or error).
    let mut t = make();
    if t.response_headers(status, Some("application/json"), false, 0)
        .mode
        == ResponseMode::Buffer
    {
        let _ = t.response_body(body);
    }
    // Streamed answer, in two pieces.
    let mut t = make();
    if t.response_headers(200, Some(content_type), false, 0).mode == ResponseMode::Stream {
        let cut = usize::from(selector).min(body.len());
        let (a, b) = body.split_at(cut);
        let _ = t.response_chunk(a, false);
        let _ = t.response_chunk(b, true);
        let _ = t.usage();
    }
}
