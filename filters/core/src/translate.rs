//! Placeholder until the translate filter lands.
use crate::config::ConfigError;
use crate::filter::{Env, FilterRoot, HttpFilter};

pub struct TranslateRoot;
pub struct Noop;
impl HttpFilter for Noop {}
impl FilterRoot for TranslateRoot {
    type Filter = Noop;
    const NAME: &'static str = "llmgw.translate";
    fn configure(_json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self)
    }
    fn new_filter(&self) -> Noop {
        Noop
    }
}
