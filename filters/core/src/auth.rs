//! Placeholder until the auth filter lands.
use crate::config::ConfigError;
use crate::filter::{Env, FilterRoot, HttpFilter};

pub struct AuthRoot;
pub struct Noop;
impl HttpFilter for Noop {}
impl FilterRoot for AuthRoot {
    type Filter = Noop;
    const NAME: &'static str = "llmgw.auth";
    fn configure(_json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self)
    }
    fn new_filter(&self) -> Noop {
        Noop
    }
}
