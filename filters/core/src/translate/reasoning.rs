//! Reasoning across providers: OpenAI's `reasoning_effort`
//! (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-reasoning_effort>)
//! as each backend's thinking budget, and Anthropic's budget back as an effort.
//!
//! | `reasoning_effort` | Anthropic `thinking.budget_tokens`, Bedrock Claude `additionalModelRequestFields.thinking.budget_tokens` | Gemini `thinkingConfig.thinkingBudget` |
//! |---|---|---|
//! | `none` | thinking off (not sent) | `0` |
//! | `minimal` | `1024` (Anthropic's floor) | `512` |
//! | `low` | `1024` | `1024` |
//! | `medium` | `4096` | `4096` |
//! | `high` | `16384` | `16384` |
//! | `xhigh` | `32768` | `24576` (the most Gemini 2.5 Flash takes) |
//!
//! Anthropic counts thinking against `max_tokens` and requires `budget_tokens < max_tokens`
//! (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>): the translators
//! raise `max_tokens` by the budget, so the client's limit still bounds the visible answer.
//! Gemini: <https://ai.google.dev/gemini-api/docs/thinking> (`includeThoughts: true` returns
//! the thought summaries, which llmgw hands on as `reasoning_content`). Bedrock takes Claude's
//! own thinking config in `additionalModelRequestFields`
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/claude-messages-extended-thinking.html>).
//!
//! The other way (a Messages client's `thinking.budget_tokens` for a non-Anthropic backend) a
//! budget below 2048 is `low`, below 8192 `medium`, else `high`: the geometric midpoints between
//! the budgets above, so each budget of the table maps back to its own effort.

use serde_json::Value;

use super::request_fields::invalid;
use crate::error::ApiError;

/// `reasoning_effort`, as OpenAI spells its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

/// The field, in errors.
pub const FIELD: &str = "reasoning_effort";

impl Effort {
    /// `reasoning_effort`'s value (`null`: not asked); a 400 naming the field otherwise.
    pub fn parse(value: &Value) -> Result<Option<Self>, ApiError> {
        let effort = match value {
            Value::Null => return Ok(None),
            Value::String(s) => match s.as_str() {
                "none" => Self::None,
                "minimal" => Self::Minimal,
                "low" => Self::Low,
                "medium" => Self::Medium,
                "high" => Self::High,
                "xhigh" => Self::XHigh,
                _ => return Err(bad_value()),
            },
            _ => return Err(bad_value()),
        };
        Ok(Some(effort))
    }

    /// Anthropic's (and Bedrock Claude's) `budget_tokens`; `None`: thinking stays off.
    pub fn anthropic_budget(self) -> Option<u32> {
        match self {
            Self::None => None,
            Self::Minimal | Self::Low => Some(1024),
            Self::Medium => Some(4096),
            Self::High => Some(16384),
            Self::XHigh => Some(32768),
        }
    }

    /// Gemini's `thinkingBudget` (`0` turns thinking off).
    pub fn gemini_budget(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Minimal => 512,
            Self::Low => 1024,
            Self::Medium => 4096,
            Self::High => 16384,
            Self::XHigh => 24576,
        }
    }

    /// The effort for an Anthropic `budget_tokens` (see the module docs for the boundaries).
    pub fn from_budget(budget: u64) -> Self {
        match budget {
            0..=2047 => Self::Low,
            2048..=8191 => Self::Medium,
            _ => Self::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::XHigh => "xhigh",
        }
    }
}

fn bad_value() -> ApiError {
    invalid(
        "`reasoning_effort` must be one of \"none\", \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\"",
        FIELD,
    )
}

/// What Claude's extended thinking does not combine with, checked before a budget is sent
/// (<https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility>):
/// `temperature` other than 1, `top_p` below 0.95, forced tool use (`tool_choice` `required`
/// or a named function, and `response_format`, which is a forced tool there). `provider` names
/// the backend in the message; `forced` is the field that forces a tool, if any.
pub fn check_claude_thinking(
    provider: &str,
    temperature: Option<f64>,
    top_p: Option<f64>,
    forced: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(t) = temperature.filter(|t| *t != 1.0) {
        return Err(invalid(
            format!(
                "`temperature` {} cannot be combined with `reasoning_effort` for {provider}: \
                 extended thinking only runs at temperature 1",
                crate::facts::format_number(t)
            ),
            "temperature",
        ));
    }
    if let Some(p) = top_p.filter(|p| *p < 0.95) {
        return Err(invalid(
            format!(
                "`top_p` {} cannot be combined with `reasoning_effort` for {provider}: \
                 extended thinking takes top_p from 0.95 to 1",
                crate::facts::format_number(p)
            ),
            "top_p",
        ));
    }
    if let Some(field) = forced {
        return Err(invalid(
            format!(
                "`{field}` cannot be combined with `reasoning_effort` for {provider}: extended \
                 thinking does not allow forced tool use"
            ),
            field,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use serde_json::json;

    use super::*;

    #[test]
    fn efforts_parse_and_name_the_field() {
        assert_eq!(Effort::parse(&json!(null)).unwrap(), None);
        assert_eq!(Effort::parse(&json!("high")).unwrap(), Some(Effort::High));
        assert_eq!(Effort::parse(&json!("none")).unwrap(), Some(Effort::None));
        for bad in [json!("max"), json!(3), json!({"effort": "low"})] {
            let err = Effort::parse(&bad).unwrap_err();
            assert_eq!((err.status, err.param.as_deref()), (400, Some(FIELD)));
        }
    }

    #[test]
    fn budgets_respect_each_provider_range() {
        for effort in [
            Effort::Minimal,
            Effort::Low,
            Effort::Medium,
            Effort::High,
            Effort::XHigh,
        ] {
            // Anthropic: at least 1024; Gemini 2.5 Flash-Lite 512..=24576.
            assert!(effort.anthropic_budget().unwrap() >= 1024, "{effort:?}");
            assert!(
                (512..=24576).contains(&effort.gemini_budget()),
                "{effort:?}"
            );
        }
        assert_eq!(Effort::None.anthropic_budget(), None);
        assert_eq!(Effort::None.gemini_budget(), 0);
    }

    #[test]
    fn each_budget_of_the_table_maps_back_to_its_effort() {
        for effort in [Effort::Low, Effort::Medium, Effort::High] {
            let budget = effort.anthropic_budget().unwrap();
            assert_eq!(Effort::from_budget(u64::from(budget)), effort);
        }
        assert_eq!(Effort::from_budget(2047), Effort::Low);
        assert_eq!(Effort::from_budget(2048), Effort::Medium);
        assert_eq!(Effort::from_budget(8192), Effort::High);
        assert_eq!(Effort::from_budget(64000), Effort::High);
    }

    #[test]
    fn claude_thinking_refuses_what_it_cannot_combine_with() {
        assert!(check_claude_thinking("P", Some(1.0), Some(0.95), None).is_ok());
        assert!(check_claude_thinking("P", None, None, None).is_ok());
        let param = |r: Result<(), ApiError>| r.unwrap_err().param.unwrap();
        assert_eq!(
            param(check_claude_thinking("P", Some(0.2), None, None)),
            "temperature"
        );
        assert_eq!(
            param(check_claude_thinking("P", None, Some(0.5), None)),
            "top_p"
        );
        assert_eq!(
            param(check_claude_thinking("P", None, None, Some("tool_choice"))),
            "tool_choice"
        );
    }
}
