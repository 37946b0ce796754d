//! Short strings built on request paths without the formatter: `format!` goes through
//! `core::fmt` (a dynamic call per piece, a guessed capacity that may grow), ~900 instructions
//! for a key of three pieces natively, where copying the pieces into one allocation of the
//! right size costs a fraction of that (bench/analysis.md, "Issue 16, llmgw's own code").

/// The pieces one after the other, in one allocation.
pub fn concat(pieces: &[&str]) -> String {
    let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
    for piece in pieces {
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn pieces_are_joined_in_order() {
        assert_eq!(concat(&["Bearer ", "sk-1"]), "Bearer sk-1");
        assert_eq!(concat(&[]), "");
        let joined = concat(&["a", "", "bc"]);
        assert_eq!(joined, "abc");
        assert_eq!(joined.capacity(), 3);
    }
}
