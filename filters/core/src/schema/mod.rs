//! Wire types llmgw owns, one module per API.
//!
//! Request types llmgw *reads from clients* are strict where silence would change meaning (the
//! translators refuse what they cannot honour); response types llmgw *reads from providers* are
//! tolerant: unknown fields are ignored and unknown content blocks, stop reasons and stream
//! events fall into catch-all variants, so a provider's new field does not break traffic.
//! Strings are borrowed (`Cow`) from the body being translated where that saves a copy.

pub mod anthropic;
pub mod gemini;
pub mod openai;
