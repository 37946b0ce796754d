//! The `log` crate's records into Envoy's log (`[dynamic_modules]` logger), so `-l info` and
//! the admin's logging levels apply to llmgw's lines as they do to Envoy's.

use crate::abi;

struct EnvoyLogger;

static LOGGER: EnvoyLogger = EnvoyLogger;

fn level(level: log::Level) -> u32 {
    match level {
        log::Level::Error => abi::log_level::ERROR,
        log::Level::Warn => abi::log_level::WARN,
        log::Level::Info => abi::log_level::INFO,
        log::Level::Debug => abi::log_level::DEBUG,
        log::Level::Trace => abi::log_level::TRACE,
    }
}

impl log::Log for EnvoyLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        // SAFETY: a plain query with no pointers; callable from any thread.
        unsafe { abi::envoy_dynamic_module_callback_log_enabled(level(metadata.level())) }
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        // SAFETY: `message` outlives the call; Envoy copies it into its log line.
        unsafe {
            abi::envoy_dynamic_module_callback_log(
                level(record.level()),
                abi::ModuleBuffer::from(message.as_str()),
            )
        }
    }

    fn flush(&self) {}
}

/// Install the logger (once per process; a second call changes nothing).
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
