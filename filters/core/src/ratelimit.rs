//! Placeholder until the ratelimit filter lands.
use crate::config::ConfigError;
use crate::filter::{Env, FilterRoot, HttpFilter};

pub struct RateLimitRoot;
pub struct Noop;
impl HttpFilter for Noop {}
impl FilterRoot for RateLimitRoot {
    type Filter = Noop;
    const NAME: &'static str = "llmgw.ratelimit";
    fn configure(_json: &[u8], _env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self)
    }
    fn new_filter(&self) -> Noop {
        Noop
    }
}
