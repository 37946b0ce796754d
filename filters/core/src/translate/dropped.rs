//! What a translator did not pass on, so nothing is lost silently.
//!
//! Providers add event types, content blocks and stop reasons faster than any mapping; a
//! translator tolerates them (the stream goes on, an unknown stop reason becomes `stop`) and
//! notes each here by kind. The filter counts them per try
//! (`llmgw_translate_dropped_total{provider, model, what}`), and the first of each kind in a try
//! is logged with what it was.

/// Kinds of things dropped (the `what` label; a fixed set, never provider input).
pub mod what {
    /// A stream event type the translator does not know.
    pub const EVENT: &str = "event";
    /// A content block (Anthropic), content part (Gemini) or block delta with no place in an
    /// OpenAI chat completion (server tool calls and results, thinking, citations, new types).
    pub const CONTENT: &str = "content";
    /// A stop / finish reason the mapping has never seen, answered as `stop`.
    pub const STOP_REASON: &str = "stop_reason";
    /// Azure's prompt filter results with no chunk after them to carry them.
    pub const FILTER_RESULTS: &str = "filter_results";
}

/// Counts by kind for one try.
#[derive(Debug, Default)]
pub struct Dropped {
    counts: Vec<(&'static str, u64)>,
}

impl Dropped {
    /// `what` (one of [`what`]) was not passed on; `detail` names it for the log.
    pub fn note(&mut self, provider: &str, what: &'static str, detail: &str) {
        match self.counts.iter_mut().find(|(kind, _)| *kind == what) {
            Some((_, n)) => *n += 1,
            None => {
                log::info!(
                    "llmgw.translate: {provider} sent {what} `{detail}` that OpenAI's format has no place for: not passed on (counted in llmgw_translate_dropped_total)"
                );
                self.counts.push((what, 1));
            }
        }
    }

    /// Each kind noted and how many times.
    pub fn counts(&self) -> &[(&'static str, u64)] {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn counts_by_kind() {
        let mut dropped = Dropped::default();
        dropped.note("anthropic", what::EVENT, "thing_happened");
        dropped.note("anthropic", what::EVENT, "other_thing");
        dropped.note("anthropic", what::STOP_REASON, "new_reason");
        assert_eq!(dropped.counts(), [(what::EVENT, 2), (what::STOP_REASON, 1)]);
    }
}
