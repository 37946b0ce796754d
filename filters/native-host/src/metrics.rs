//! Metrics: the core's `define_metric` / `increment_metric` / `record_metric` over the dynamic
//! module's per-configuration metrics.
//!
//! Envoy lets a dynamic module define metrics only while it creates the filter configuration
//! (later definitions answer `Frozen`), each with label names, and update them per stream with
//! label values. The core names one metric per label set, labels in the name
//! (`llmgw_core::metrics::stat_name`), as proxy-wasm needs. So each configuration defines every
//! family of [`FAMILIES`] up front, and a core "definition" during a request takes its stat name
//! apart into the family and its label values: `/stats/prometheus` shows the same
//! `llmgw_requests_total{model="…",…}` series as the wasm build, without `stats_tags`.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use llmgw_core::host::MetricKind;
use llmgw_core::metrics::{family_of, FAMILIES};

use crate::abi::{self, ConfigEnvoyPtr, FilterEnvoyPtr, ModuleBuffer};

/// Room for the label values of one update, on the stack: more than any family of
/// [`FAMILIES`] has (checked when this crate compiles).
const MAX_LABELS: usize = 8;

const _: () = {
    let mut i = 0;
    while i < FAMILIES.len() {
        assert!(FAMILIES[i].labels.len() <= MAX_LABELS);
        i += 1;
    }
};

/// A core metric id's family (index into [`FAMILIES`]) and label values.
#[derive(Default)]
struct Table {
    ids: HashMap<String, Option<u32>>,
    defined: Vec<(usize, Vec<String>)>,
}

/// One filter configuration's metrics.
pub struct Metrics {
    /// Envoy's id for each family of [`FAMILIES`], `None` where Envoy refused it.
    families: Vec<Option<usize>>,
    table: RwLock<Table>,
}

impl Metrics {
    /// Define the families filter `filter` counts (`owns`) on Envoy's configuration (main
    /// thread, inside `config_new`).
    pub fn define_families(envoy_config: ConfigEnvoyPtr, owns: impl Fn(&str) -> bool) -> Self {
        let families = FAMILIES
            .iter()
            .map(|family| {
                if !owns(family.filter) {
                    return None;
                }
                let (name, labels) = (family.name, family.labels);
                let define = match family.kind {
                    MetricKind::Counter => {
                        abi::envoy_dynamic_module_callback_http_filter_config_define_counter
                    }
                    MetricKind::Gauge => {
                        abi::envoy_dynamic_module_callback_http_filter_config_define_gauge
                    }
                    MetricKind::Histogram => {
                        abi::envoy_dynamic_module_callback_http_filter_config_define_histogram
                    }
                };
                let mut labels: Vec<ModuleBuffer> =
                    labels.iter().map(|l| ModuleBuffer::from(*l)).collect();
                let mut id = 0usize;
                // SAFETY: Envoy's configuration, inside `config_new`; the name and label names
                // outlive the call (Envoy copies them); `id` is writable.
                let result = unsafe {
                    define(
                        envoy_config,
                        ModuleBuffer::from(name),
                        labels.as_mut_ptr(),
                        labels.len(),
                        &mut id,
                    )
                };
                if result == abi::METRICS_SUCCESS {
                    Some(id)
                } else {
                    log::warn!("llmgw: define metric {name} failed ({result})");
                    None
                }
            })
            .collect();
        Self {
            families,
            table: RwLock::default(),
        }
    }

    /// The core's id for a stat name: its family and label values, remembered.
    pub fn define(&self, kind: MetricKind, stat: &str) -> Option<u32> {
        if let Some(id) = self
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .get(stat)
        {
            return *id;
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let id = match family_of(kind, stat) {
            Some((family, values)) if self.families.get(family).copied().flatten().is_some() => {
                let id = u32::try_from(table.defined.len()).ok();
                let values = values.into_iter().map(str::to_string).collect();
                table.defined.push((family, values));
                id
            }
            _ => {
                log::warn!("llmgw: metric {stat} is not one llmgw defines");
                None
            }
        };
        table.ids.insert(stat.to_string(), id);
        id
    }

    pub fn increment(&self, filter: FilterEnvoyPtr, id: u32, delta: i64) {
        // Counters only go up; gauges are not used by llmgw.
        if let Ok(amount) = u64::try_from(delta) {
            self.update(filter, id, amount);
        }
    }

    pub fn record(&self, filter: FilterEnvoyPtr, id: u32, value: u64) {
        self.update(filter, id, value);
    }

    fn update(&self, filter: FilterEnvoyPtr, id: u32, value: u64) {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let Some((family, values)) = table.defined.get(id as usize) else {
            return;
        };
        let (Some(Some(envoy_id)), Some(family)) =
            (self.families.get(*family), FAMILIES.get(*family))
        else {
            return;
        };
        let update = match family.kind {
            MetricKind::Counter => abi::envoy_dynamic_module_callback_http_filter_increment_counter,
            MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_set_gauge,
            MetricKind::Histogram => {
                abi::envoy_dynamic_module_callback_http_filter_record_histogram_value
            }
        };
        // The label values on the stack: a metric update is on every request's path.
        let mut buffers = [ModuleBuffer::NULL; MAX_LABELS];
        let Some(slots) = buffers.get_mut(..values.len()) else {
            log::warn!(
                "llmgw: metric {} has more than {MAX_LABELS} labels",
                family.name
            );
            return;
        };
        for (slot, value) in slots.iter_mut().zip(values) {
            *slot = ModuleBuffer::from(value.as_str());
        }
        // SAFETY: `filter` is the live stream's filter, made from the configuration that
        // defined `envoy_id`; as many label values as the family has label names, alive for the
        // call.
        let result = unsafe { update(filter, *envoy_id, slots.as_mut_ptr(), slots.len(), value) };
        if result != abi::METRICS_SUCCESS {
            log::warn!("llmgw: update metric failed ({result})");
        }
    }
}
