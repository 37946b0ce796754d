//! Filter configurations: the module's filters by name, each configuration checked once on
//! Envoy's main thread and compiled again on each worker that uses it.
//!
//! The core's compiled configs hold `Rc`s (one proxy-wasm VM is one thread); here one
//! configuration serves every worker, so each worker builds its own root from the same JSON the
//! first time it needs it ([`FilterConfig::new_filter`]) and no `Rc` crosses threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use llmgw_core::config::ConfigError;
use llmgw_core::filter::{FilterRoot, HttpFilter};

use crate::abi::ConfigEnvoyPtr;
use crate::metrics::Metrics;

/// A compiled configuration, type-erased: the module serves several filter types.
trait DynRoot {
    fn new_filter(&self) -> Box<dyn HttpFilter>;
}

impl<R: FilterRoot> DynRoot for R
where
    R::Filter: 'static,
{
    fn new_filter(&self) -> Box<dyn HttpFilter> {
        Box::new(FilterRoot::new_filter(self))
    }
}

type Build = fn(&[u8]) -> Result<Rc<dyn DynRoot>, ConfigError>;

fn build<R: FilterRoot>(json: &[u8]) -> Result<Rc<dyn DynRoot>, ConfigError>
where
    R::Filter: 'static,
{
    // Secrets come from Envoy's environment, as `host_env_keys` hands them to the wasm VMs.
    let env = |name: &str| std::env::var(name).ok();
    Ok(Rc::new(R::configure(json, &env)?))
}

/// The filters this module serves, by the `filter_name` of Envoy's `DynamicModuleFilter`
/// (the same names the wasm filters log with).
const FILTERS: [(&str, Build); 5] = [
    (
        llmgw_core::auth::AuthRoot::NAME,
        build::<llmgw_core::auth::AuthRoot>,
    ),
    (
        llmgw_core::router::RouterRoot::NAME,
        build::<llmgw_core::router::RouterRoot>,
    ),
    (
        llmgw_core::ratelimit::RateLimitRoot::NAME,
        build::<llmgw_core::ratelimit::RateLimitRoot>,
    ),
    (
        llmgw_core::translate::TranslateRoot::NAME,
        build::<llmgw_core::translate::TranslateRoot>,
    ),
    (
        llmgw_core::gateway::GatewayRoot::NAME,
        build::<llmgw_core::gateway::GatewayRoot>,
    ),
];

/// Does filter `name` count the metrics of filter `owner`? The gateway counts for the three it
/// holds.
fn owns(name: &str, owner: &str) -> bool {
    name == owner
        || (name == llmgw_core::gateway::GatewayRoot::NAME
            && owner != llmgw_core::translate::TranslateRoot::NAME)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Hashes a configuration id with one multiply: ids are this module's own counter, never input,
/// so SipHash's defence buys nothing on a lookup every stream of every filter makes (~150
/// instructions each under SipHash).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Roots = HashMap<u64, Rc<dyn DynRoot>, BuildHasherDefault<IdHasher>>;

thread_local! {
    /// This worker's compiled roots, by configuration id.
    static ROOTS: RefCell<Roots> = RefCell::new(Roots::default());
}

/// One `DynamicModuleFilter` configuration.
pub struct FilterConfig {
    id: u64,
    name: &'static str,
    json: Vec<u8>,
    build: Build,
    pub metrics: Metrics,
}

impl FilterConfig {
    /// Check `json` for filter `name`: `None` (logged with the field path and reason) makes
    /// Envoy refuse the configuration, as a wasm filter's `on_configure` returning false does.
    pub fn new(envoy: ConfigEnvoyPtr, name: &str, json: &[u8]) -> Option<Self> {
        let Some(&(name, build)) = FILTERS.iter().find(|(known, _)| *known == name) else {
            let known: Vec<&str> = FILTERS.iter().map(|(known, _)| *known).collect();
            log::error!("llmgw: unknown filter_name {name:?} (this module has {known:?})");
            return None;
        };
        match build(json) {
            Ok(_) => log::info!("{name}: configuration accepted"),
            Err(err) => {
                log::error!("{name}: configuration refused: {err}");
                return None;
            }
        }
        Some(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            json: json.to_vec(),
            build,
            metrics: Metrics::define_families(envoy, |owner| owns(name, owner)),
        })
    }

    /// A filter for a new stream on this worker.
    pub fn new_filter(&self) -> Option<Box<dyn HttpFilter>> {
        ROOTS.with(|roots| {
            let mut roots = roots.borrow_mut();
            if let Some(root) = roots.get(&self.id) {
                return Some(root.new_filter());
            }
            match (self.build)(&self.json) {
                Ok(root) => {
                    let filter = root.new_filter();
                    roots.insert(self.id, root);
                    Some(filter)
                }
                // Accepted on the main thread; only an environment that changed since can fail.
                Err(err) => {
                    log::error!("{}: configuration refused on a worker: {err}", self.name);
                    None
                }
            }
        })
    }

    /// Forget this worker's root (the configuration is going away).
    pub fn forget(&self) {
        // `try_with`: at thread exit the map may already be gone, and then so is the root.
        let _ = ROOTS.try_with(|roots| roots.borrow_mut().remove(&self.id));
    }
}
