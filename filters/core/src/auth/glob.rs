//! Model allow-lists: globs with `*` (any run of characters, empty included) and `?` (exactly
//! one character). Matching is case-sensitive, like provider model names.

/// Does `text` match `pattern`? Iterative with single-star backtracking: O(len(pattern) ×
/// len(text)) in the worst case, no recursion, no allocation.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was in the pattern, and where in the text it currently stops.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += char_len(t[ti]);
                continue;
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        match star {
            Some((star_pi, star_ti)) => {
                let next = star_ti + char_len(t[star_ti]);
                star = Some((star_pi, next));
                pi = star_pi + 1;
                ti = next;
            }
            None => return false,
        }
    }
    // The text is used up: what is left of the pattern must be all stars.
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// Length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte, so
/// the matcher always advances; byte-wise comparison keeps it correct either way).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Does a key's allow-list (comma-separated globs, auth's
/// [`crate::facts::AuthFacts::allowed_models`]) allow `model`?
pub fn model_allowed(allowed_header_value: &str, model: &str) -> bool {
    allowed_header_value
        .split(',')
        .map(str::trim)
        .filter(|pattern| !pattern.is_empty())
        .any(|pattern| glob_match(pattern, model))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn literals_stars_and_question_marks() {
        let cases: &[(&str, &str, bool)] = &[
            ("fast", "fast", true),
            ("fast", "faster", false),
            ("fast", "fas", false),
            ("gpt-4o*", "gpt-4o", true),
            ("gpt-4o*", "gpt-4o-mini", true),
            ("gpt-4o*", "gpt-4", false),
            ("claude-*", "claude-3-5-sonnet-latest", true),
            ("claude-*", "claude", false),
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("gpt-?", "gpt-4", true),
            ("gpt-?", "gpt-", false),
            ("gpt-?", "gpt-45", false),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o-mini-2024", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("*a*a*a*", "banana", true),
            ("*a*a*a*a*", "banana", false),
            ("*an*an*", "banana", true),
            ("*an*an*an*", "banana", false),
            ("*an*a", "banana", true),
            ("**", "x", true),
            ("models/gemini-*", "models/gemini-1.5-pro", true),
            ("GPT-4o", "gpt-4o", false),
            ("mod?l-é", "modèl-é", true),
            ("?", "é", true),
            ("??", "é", false),
        ];
        for &(pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(100));
        assert!(!glob_match(&pattern, &text));
        assert!(glob_match(&"*a".repeat(100), &text));
    }

    #[test]
    fn header_value_lists() {
        assert!(model_allowed("gpt-4o*,fast,claude-*", "fast"));
        assert!(model_allowed("gpt-4o*,fast,claude-*", "claude-opus-4"));
        assert!(model_allowed("gpt-4o*, fast", "fast"));
        assert!(!model_allowed("gpt-4o*,fast,claude-*", "o3"));
        assert!(!model_allowed("", "fast"));
        assert!(!model_allowed(",,", ""));
    }
}
