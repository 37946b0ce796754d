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
//!
//! Counters and gauges reach Envoy from the main thread every few milliseconds
//! ([`crate::coalesce`]: one Envoy call per changed series instead of one per request);
//! histogram samples go to Envoy through the stream at once.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use llmgw_core::host::MetricKind;
use llmgw_core::metrics::{family_of, FAMILIES};

use crate::abi::{self, ConfigEnvoyPtr, FilterEnvoyPtr, ModuleBuffer};
use crate::coalesce::{Cell, Changed, Flusher};

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

/// One series: a core metric id's family (index into [`FAMILIES`]), label values, and what
/// waits for the next flush.
struct Series {
    family: usize,
    values: Vec<String>,
    pending: Cell,
}

impl Series {
    /// What waits for Envoy, taken: a counter's deltas, a gauge's last value.
    fn take(&self, kind: MetricKind) -> Option<u64> {
        match kind {
            MetricKind::Counter => Some(self.pending.take_delta()).filter(|d| *d > 0),
            MetricKind::Gauge => self.pending.take_value(),
            MetricKind::Histogram => None,
        }
    }
}

#[derive(Default)]
struct Table {
    ids: HashMap<String, Option<u32>>,
    /// By core metric id.
    defined: Vec<Series>,
}

/// One filter configuration's metrics.
pub struct Metrics {
    /// Envoy's id for each family of [`FAMILIES`], `None` where Envoy refused it.
    families: Vec<Option<usize>>,
    table: RwLock<Table>,
    /// The series changed since the last flush: what the flush walks.
    changed: Changed,
    flusher: Arc<Flusher>,
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
            changed: Changed::default(),
            flusher: Flusher::new(envoy_config),
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
                let pending = match kind {
                    MetricKind::Gauge => Cell::gauge(),
                    MetricKind::Counter | MetricKind::Histogram => Cell::counter(),
                };
                table.defined.push(Series {
                    family,
                    values,
                    pending,
                });
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

    /// Add to a counter: into its series' cell, for the next flush.
    pub fn increment(&self, filter: FilterEnvoyPtr, id: u32, delta: i64) {
        // Counters only go up (the core counts with positive deltas).
        let Ok(amount) = u64::try_from(delta) else {
            return;
        };
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let Some(series) = table.defined.get(id as usize) else {
            return;
        };
        let first = series.pending.add(amount);
        self.changed(filter, id, series, first);
    }

    /// Set a gauge (for the next flush) or record a histogram sample (at once: every sample must
    /// reach Envoy, so there is nothing to coalesce).
    pub fn record(&self, filter: FilterEnvoyPtr, id: u32, value: u64) {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let Some(series) = table.defined.get(id as usize) else {
            return;
        };
        let Some((envoy_id, family)) = self.family(series) else {
            return;
        };
        match family.kind {
            MetricKind::Histogram => with_labels(family.name, &series.values, |labels, n| {
                // SAFETY: `filter` is the live stream's filter, made from the configuration that
                // defined `envoy_id`; as many label values as the family has label names.
                unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                        filter, envoy_id, labels, n, value,
                    )
                }
            }),
            MetricKind::Gauge => {
                let first = series.pending.set(value);
                self.changed(filter, id, series, first);
            }
            // The core records no counter, but an update is never dropped: add it.
            MetricKind::Counter => {
                let first = series.pending.add(value);
                self.changed(filter, id, series, first);
            }
        }
    }

    /// `series`' cell changed (`first`: its first change since the last flush): the next flush
    /// takes it, or, with the scheduler closed, the stream hands it to Envoy now.
    fn changed(&self, filter: FilterEnvoyPtr, id: u32, series: &Series, first: bool) {
        // On the list before the dirty flag: a flush the flag leads to finds the series.
        if first {
            self.changed.push(id);
        }
        if !self.flusher.wake() {
            self.hand_on(filter, series);
        }
    }

    /// The scheduled flush (main thread): every counter's deltas and gauge's value since the
    /// last flush, one configuration-level Envoy call per changed series; only the series on
    /// the [`Changed`] list are looked at.
    pub fn flush(&self) {
        let envoy = self.flusher.envoy();
        let changed = self.changed.take();
        if changed.is_empty() {
            return;
        }
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        for series in changed
            .iter()
            .filter_map(|&id| table.defined.get(id as usize))
        {
            let Some((envoy_id, family)) = self.family(series) else {
                continue;
            };
            let update: ConfigUpdate = match family.kind {
                MetricKind::Counter => {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter
                }
                MetricKind::Gauge => {
                    abi::envoy_dynamic_module_callback_http_filter_config_set_gauge
                }
                MetricKind::Histogram => continue,
            };
            if let Some(value) = series.take(family.kind) {
                with_labels(family.name, &series.values, |labels, n| {
                    // SAFETY: Envoy's configuration, alive in its scheduled hook and in its
                    // destroy hook (the only callers); `envoy_id` is its own.
                    unsafe { update(envoy, envoy_id, labels, n, value) }
                });
            }
        }
    }

    /// The configuration is being destroyed (its last stream is gone): the last flush, then no
    /// more events.
    pub fn close(&self) {
        self.flush();
        self.flusher.close();
    }

    /// Envoy's id and the family of a series.
    fn family(&self, series: &Series) -> Option<(usize, &'static llmgw_core::metrics::Family)> {
        let envoy_id = self.families.get(series.family).copied().flatten()?;
        Some((envoy_id, FAMILIES.get(series.family)?))
    }

    /// The scheduler is closed: hand what waits in `series` to Envoy through the stream.
    fn hand_on(&self, filter: FilterEnvoyPtr, series: &Series) {
        let Some((envoy_id, family)) = self.family(series) else {
            return;
        };
        let update: StreamUpdate = match family.kind {
            MetricKind::Counter => abi::envoy_dynamic_module_callback_http_filter_increment_counter,
            MetricKind::Gauge => abi::envoy_dynamic_module_callback_http_filter_set_gauge,
            MetricKind::Histogram => return,
        };
        if let Some(value) = series.take(family.kind) {
            with_labels(family.name, &series.values, |labels, n| {
                // SAFETY: `filter` is the live stream's filter, made from the configuration that
                // defined `envoy_id`.
                unsafe { update(filter, envoy_id, labels, n, value) }
            });
        }
    }
}

/// A configuration-level metric update of the ABI.
type ConfigUpdate =
    unsafe extern "C" fn(ConfigEnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32;
/// A stream-level metric update of the ABI.
type StreamUpdate =
    unsafe extern "C" fn(FilterEnvoyPtr, usize, *mut ModuleBuffer, usize, u64) -> u32;

/// Call `update` with a series' label values as the ABI's buffers, on the stack (a metric update
/// is on every request's path), and log a refusal.
fn with_labels(
    name: &str,
    values: &[String],
    update: impl FnOnce(*mut ModuleBuffer, usize) -> u32,
) {
    let mut buffers = [ModuleBuffer::NULL; MAX_LABELS];
    let Some(slots) = buffers.get_mut(..values.len()) else {
        log::warn!("llmgw: metric {name} has more than {MAX_LABELS} labels");
        return;
    };
    for (slot, value) in slots.iter_mut().zip(values) {
        *slot = ModuleBuffer::from(value.as_str());
    }
    let result = update(slots.as_mut_ptr(), slots.len());
    if result != abi::METRICS_SUCCESS {
        log::warn!("llmgw: update metric {name} failed ({result})");
    }
}
