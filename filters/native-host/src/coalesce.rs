//! Counter coalescing: a request's counter increments (and gauge sets) land in process memory,
//! and Envoy's main thread hands them to Envoy every [`FLUSH_INTERVAL`], once per changed series,
//! not once per request.
//!
//! Why: Envoy's per-stream `increment_counter` takes the label values with every call, interns
//! each into the stream's stat-name pool and looks the tagged counter up: ~5,400 instructions per
//! call in Envoy 1.40, 5 calls per request in the full chain (bench/analysis.md, "Session 5").
//! The ABI has no per-series handle, so the lookup cannot be made ahead, but it can be made once
//! for many requests. Each series (one core metric id: a family and its label values) gets a
//! [`Cell`] that workers add to with one atomic instruction, and the configuration is marked
//! dirty. A thread of this module wakes every [`FLUSH_INTERVAL`] and, for each dirty
//! configuration, commits one event on the configuration's scheduler; Envoy runs
//! `envoy_dynamic_module_on_http_filter_config_scheduled` on its main thread, which drains the
//! cells with the configuration-level update (`http_filter_config_increment_counter`).
//!
//! - **Why a thread of our own.** The HTTP filter ABI has no timer. Committing from the workers
//!   at the first change (measured first) wakes the main thread at once for every request, so
//!   each flush carried one request's counts and cost a wake-up and two context switches more
//!   than it saved. The thread only calls the scheduler's `commit` (a post to the main
//!   dispatcher, safe from any thread); every metric call stays on Envoy's threads. After a tick
//!   with nothing to flush it parks until the next change, so an idle Envoy is not woken.
//! - **Nothing lost.** The dirty flag and the cells are `SeqCst`: an addition either comes
//!   before the flag's swap that leads to a drain, or finds the flag set again for the next
//!   tick. Envoy destroys a configuration after its last stream, so nothing adds to it any more;
//!   `config_destroy` drains the cells once more with Envoy's configuration pointer (valid in
//!   that hook) and deletes the scheduler under the lock the thread commits under
//!   ([`Flusher::close`]). An event still queued is dropped by Envoy (it holds the configuration
//!   weakly). A change that finds no scheduler goes to Envoy through the stream at once.
//! - **Bounded memory.** One `u64` and a flag per series; the series are the core's metric ids,
//!   bounded by the configuration (models, providers, consumers, the label values it knows).
//! - **A flush walks only what changed.** A series' first change after a flush puts its id on
//!   the configuration's [`Changed`] list (a short mutex, once per series and flush); the flush
//!   takes the list and hands on those series alone, whatever the configuration has defined.
//! - **Freshness.** A count shows in `/stats` within about [`FLUSH_INTERVAL`] of the stream that
//!   made it (README, "Native build").
//! - **Histograms are not coalesced**: every sample must reach Envoy, so moving the records to
//!   the main thread would move the same calls, not save them (bench/analysis.md).
//!
//! <https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/dynamic_modules>

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError, Weak};
use std::thread::Thread;
use std::time::Duration;

use crate::abi::{self, ConfigEnvoyPtr, SchedulerPtr};

/// How long a count may wait before Envoy's main thread hands it on: short enough for `/stats`
/// to look current, long enough that a busy worker's requests share a flush (at 1,000 requests a
/// second ~10 a flush) and an idle main thread wakes at most 100 times a second.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// What a series' [`Cell`] holds for a gauge with no value waiting (budget gauges hold micro-USD,
/// bounded far below this by the configuration check).
const NO_VALUE: u64 = u64::MAX;

/// One series' change not yet handed to Envoy: a counter's sum of deltas, or a gauge's latest value,
/// and whether the series waits in its configuration's [`Changed`] list.
pub struct Cell {
    value: AtomicU64,
    queued: AtomicBool,
}

impl Cell {
    pub const fn counter() -> Self {
        Self {
            value: AtomicU64::new(0),
            queued: AtomicBool::new(false),
        }
    }

    pub const fn gauge() -> Self {
        Self {
            value: AtomicU64::new(NO_VALUE),
            queued: AtomicBool::new(false),
        }
    }

    /// Add a counter's delta; true when the series must join the [`Changed`] list (its first
    /// change since the last flush took it).
    pub fn add(&self, delta: u64) -> bool {
        self.value.fetch_add(delta, SeqCst);
        self.enqueue()
    }

    /// Set a gauge (the last value set before a flush wins, as the last direct set would); true
    /// when the series must join the [`Changed`] list.
    pub fn set(&self, value: u64) -> bool {
        self.value.store(value.min(NO_VALUE - 1), SeqCst);
        self.enqueue()
    }

    /// After the change: the plain load first, so that while the series waits a change costs
    /// no further atomic write.
    fn enqueue(&self) -> bool {
        !self.queued.load(SeqCst) && !self.queued.swap(true, SeqCst)
    }

    /// A counter's deltas since the last take (0: nothing to hand on).
    pub fn take_delta(&self) -> u64 {
        // The flag before the value: a change after this line joins the list again, so it is
        // either in this take or in a later flush.
        self.queued.store(false, SeqCst);
        self.value.swap(0, SeqCst)
    }

    /// A gauge's value set since the last take.
    pub fn take_value(&self) -> Option<u64> {
        self.queued.store(false, SeqCst);
        Some(self.value.swap(NO_VALUE, SeqCst)).filter(|v| *v != NO_VALUE)
    }
}

/// The series (core metric ids) of one configuration that changed since the last flush, each
/// once: a flush walks these, not every series the configuration has defined, so its work is
/// bounded by what changed, not by consumers × models. A series joins at its first change
/// after a flush ([`Cell::add`] / [`Cell::set`] say when), so the mutex is taken at most once
/// per series and flush interval, never on a series already waiting.
#[derive(Default)]
pub struct Changed(Mutex<Vec<u32>>);

impl Changed {
    pub fn push(&self, id: u32) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }

    /// The series changed since the last take, in the order they first changed; the list is
    /// left empty.
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Envoy's scheduler for one configuration, movable between threads.
struct Scheduler(SchedulerPtr);

// SAFETY: Envoy's scheduler object is only a weak reference to the configuration and its main
// dispatcher; `commit` posts to that dispatcher (thread-safe) and this module serializes `commit`
// against `delete` with the mutex that holds it.
unsafe impl Send for Scheduler {}

/// One configuration's flush schedule.
pub struct Flusher {
    /// Envoy's configuration, for the configuration-level updates (kept as an address: valid
    /// from `config_new` until `config_destroy` returns).
    envoy: usize,
    /// `None` once the configuration is destroyed (or if Envoy gave none).
    scheduler: Mutex<Option<Scheduler>>,
    /// A cell changed since the flush thread last looked.
    dirty: AtomicBool,
    /// The scheduler is there (read on every change; the mutex only where it is used).
    open: AtomicBool,
}

/// Every configuration's schedule, for the flush thread.
static FLUSHERS: Mutex<Vec<Weak<Flusher>>> = Mutex::new(Vec::new());
static FLUSH_THREAD: Once = Once::new();
/// The flush thread started.
static FLUSHING: AtomicBool = AtomicBool::new(false);
/// The flush thread, to wake it when it parked.
static FLUSH_THREAD_HANDLE: OnceLock<Thread> = OnceLock::new();
/// The flush thread found nothing to flush and parks (or is about to): the next change wakes it,
/// so an idle Envoy is not woken 100 times a second.
static IDLE: AtomicBool = AtomicBool::new(false);

impl Flusher {
    /// Envoy's scheduler for `envoy_config` (inside `config_new`), watched by the flush thread.
    pub fn new(envoy_config: ConfigEnvoyPtr) -> Arc<Self> {
        // SAFETY: Envoy's configuration, alive during `config_new`.
        let scheduler = unsafe {
            abi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(envoy_config)
        };
        let flusher = Arc::new(Self {
            envoy: envoy_config as usize,
            scheduler: Mutex::new((!scheduler.is_null()).then_some(Scheduler(scheduler))),
            dirty: AtomicBool::new(false),
            open: AtomicBool::new(!scheduler.is_null()),
        });
        let mut all = FLUSHERS.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|f| f.strong_count() > 0);
        all.push(Arc::downgrade(&flusher));
        drop(all);
        FLUSH_THREAD.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("llmgw-metrics".into())
                .spawn(flush_thread);
            match spawned {
                Ok(handle) => {
                    let _ = FLUSH_THREAD_HANDLE.set(handle.thread().clone());
                    FLUSHING.store(true, SeqCst);
                }
                Err(err) => {
                    log::error!(
                        "llmgw: no metrics flush thread ({err}); counts go to Envoy per request"
                    )
                }
            }
        });
        flusher
    }

    /// Envoy's configuration, for the updates a flush makes.
    pub fn envoy(&self) -> ConfigEnvoyPtr {
        self.envoy as ConfigEnvoyPtr
    }

    /// After a [`Cell`] changed: the next tick flushes it. False when there is no scheduler (or
    /// no flush thread): the caller hands the change to Envoy itself.
    pub fn wake(&self) -> bool {
        // The plain load first: while the flag is set, a change costs no further atomic write.
        if !self.dirty.load(SeqCst) {
            self.dirty.store(true, SeqCst);
            // After the flag: a thread going idle either sees it or is unparked here.
            if IDLE.swap(false, SeqCst) {
                if let Some(thread) = FLUSH_THREAD_HANDLE.get() {
                    thread.unpark();
                }
            }
        }
        FLUSHING.load(SeqCst) && self.open.load(SeqCst)
    }

    /// The flush thread's tick: one event for a configuration that changed (true if it had).
    fn commit_if_dirty(&self) -> bool {
        if !self.dirty.swap(false, SeqCst) {
            return false;
        }
        let scheduler = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(Scheduler(ptr)) = &*scheduler {
            // SAFETY: a live scheduler (deleted only under this lock, in `close`).
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(*ptr, 0)
            };
        }
        true
    }

    /// The configuration is going away: no more events. The caller drains the cells first.
    pub fn close(&self) {
        self.open.store(false, SeqCst);
        let scheduler = self
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Scheduler(ptr)) = scheduler {
            // SAFETY: the scheduler `new` made, deleted once (taken out of the mutex).
            unsafe { abi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(ptr) };
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.close();
    }
}

/// Every [`FLUSH_INTERVAL`]: an event for each configuration whose counts changed; after a tick
/// with nothing to flush, parked until the next change ([`Flusher::wake`]).
fn flush_thread() {
    loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let live: Vec<Arc<Flusher>> = FLUSHERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut flushed = false;
        for flusher in &live {
            flushed |= flusher.commit_if_dirty();
        }
        if flushed {
            continue;
        }
        IDLE.store(true, SeqCst);
        // A change made before the flag was set saw no idle thread to wake: look once more.
        let changed = live.iter().any(|f| f.dirty.load(SeqCst));
        drop(live);
        if changed {
            IDLE.store(false, SeqCst);
            continue;
        }
        // Returns at once if `wake` unparked in between; a spurious return only costs a tick.
        std::thread::park();
        IDLE.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worker-side changes to three of five series, as `Metrics` makes them: the list holds
    /// exactly the changed ones, once each, and a flush that walks it takes every change.
    #[test]
    fn only_changed_series_are_listed_and_taken() {
        let cells: Vec<Cell> = (0..5)
            .map(|i| {
                if i == 4 {
                    Cell::gauge()
                } else {
                    Cell::counter()
                }
            })
            .collect();
        let changed = Changed::default();
        let change = |id: u32, first: bool| {
            if first {
                changed.push(id);
            }
        };
        change(1, cells[1].add(2));
        change(3, cells[3].add(1));
        change(1, cells[1].add(5));
        change(4, cells[4].set(70));
        change(4, cells[4].set(42));
        let listed = changed.take();
        assert_eq!(listed, vec![1, 3, 4]);
        assert_eq!(cells[1].take_delta(), 7);
        assert_eq!(cells[3].take_delta(), 1);
        assert_eq!(cells[4].take_value(), Some(42));
        // Untouched series are never looked at; nothing waits after the take.
        assert_eq!(cells[0].take_delta(), 0);
        assert_eq!(cells[2].take_delta(), 0);
        assert!(changed.take().is_empty());

        // A taken series joins the list again at its next change, and only then.
        change(3, cells[3].add(4));
        assert_eq!(changed.take(), vec![3]);
        assert_eq!(cells[3].take_delta(), 4);
    }

    /// A change that lands between the flush taking the list and taking the cell is in that
    /// take, and the series is listed again (its next take finds nothing and hands nothing on):
    /// counts are never lost or handed on twice.
    #[test]
    fn a_change_racing_the_flush_is_neither_lost_nor_doubled() {
        let cell = Cell::counter();
        let changed = Changed::default();
        assert!(cell.add(1));
        changed.push(0);
        assert_eq!(changed.take(), vec![0]);
        // The flush clears the flag, then takes the value; a worker adds in between.
        cell.queued.store(false, SeqCst);
        assert!(cell.add(2));
        changed.push(0);
        assert_eq!(cell.value.swap(0, SeqCst), 3);
        assert_eq!(changed.take(), vec![0]);
        assert_eq!(cell.take_delta(), 0);
    }
}
