//! `GET /v1/models`: the catalogue in OpenAI's list format, only the names the caller's key
//! may use (<https://platform.openai.com/docs/api-reference/models/list>).

use serde::Serialize;

use crate::auth;

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    /// OpenAI's creation time of the model; llmgw does not know it, so 0.
    created: u64,
    owned_by: &'static str,
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

/// The list body for the names in `names` that `allowed` (auth's allow-list header) permits.
pub fn list_body<'a>(names: impl Iterator<Item = &'a str>, allowed: Option<&str>) -> Vec<u8> {
    let data = names
        .filter(|name| allowed.is_none_or(|a| auth::model_allowed(a, name)))
        .map(|id| ModelObject {
            id,
            object: "model",
            created: 0,
            owned_by: "llmgw",
        })
        .collect();
    let list = ModelList {
        object: "list",
        data,
    };
    // Serializing plain strings and numbers into a Vec cannot fail.
    serde_json::to_vec(&list).unwrap_or_default()
}
