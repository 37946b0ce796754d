//! The admin role in a build without it: llmgw-core's Cargo feature `admin` off, as
//! gateway.wasm is built (issue #16: the role is ~44 KB of a module held to 400 KB). An `admin`
//! section is refused while the config is read, naming the module that has the role, so Envoy
//! does not start an admin listener that could not answer.

use serde::de::{Deserialize, Deserializer, Error};

use crate::config::ConfigError;
use crate::host::Host;

/// Why this build refuses `admin` (the config parser puts the field path in front).
pub const NOT_BUILT: &str = "the admin role is not in this build of ratelimit (gateway.wasm); \
     load ratelimit.wasm for the admin listener, with this module's vm_id so that it reads the \
     counters this module writes (README, \"Budgets\")";

/// No value exists: reading `admin` fails with [`NOT_BUILT`].
#[derive(Debug, Clone)]
pub enum AdminConfig {}

impl<'de> Deserialize<'de> for AdminConfig {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(NOT_BUILT))
    }
}

impl AdminConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {}
    }
}

pub fn serve(_: &mut dyn Host, admin: &AdminConfig) {
    match *admin {}
}
