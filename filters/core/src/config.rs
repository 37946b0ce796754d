//! Config stage one: JSON into serde structs with `deny_unknown_fields`, errors that name the
//! field. Each filter then validates and compiles its structs into the form it runs on.

/// A refused configuration: the field path (`keys[2].sha256`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Parse JSON config into `T`, reporting the path of the field that failed.
pub fn parse<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." {
            "(root)".to_string()
        } else {
            path
        };
        ConfigError::new(path, err.into_inner().to_string())
    })?;
    de.end()
        .map_err(|err| ConfigError::new("(root)", err.to_string()))?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Root {
        items: Vec<Item>,
    }

    #[test]
    fn unknown_field_is_named_with_its_path() {
        let err = parse::<Root>(br#"{"items":[{"name":"a"},{"name":"b","nmae":1}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].nmae");
        assert!(
            err.reason.contains("unknown field `nmae`"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn malformed_json_is_refused() {
        let err = parse::<Root>(b"{\"items\": [").unwrap_err();
        assert!(err.reason.contains("EOF"), "{}", err.reason);
    }
}
