//! Prompt caching as Anthropic (`cache_control` breakpoints,
//! <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>) and Bedrock (`cachePoint`
//! blocks, <https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html>) report
//! it: the prompt up to the last breakpoint is written to the cache the first time and read
//! from it when the same prefix comes again; a prefix under the model's minimum is not cached
//! (no error). Both APIs take at most 4 breakpoints. The cache is the mock's, for its lifetime.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};

/// The fewest tokens a cached prefix holds on Claude Sonnet and Opus (Anthropic and Bedrock).
pub const MIN_TOKENS: u64 = 1024;

/// The most breakpoints one request may set.
pub const MAX_BREAKPOINTS: usize = 4;

/// Prompt tokens read from and written to the cache.
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheUse {
    pub read: u64,
    pub write: u64,
}

fn seen() -> &'static Mutex<HashSet<u64>> {
    static SEEN: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The prefix up to the last breakpoint, as text that identifies it (`key`, the model's name
/// included: caches are per model) and its tokens.
pub fn lookup(key: &str, tokens: u64) -> CacheUse {
    if tokens < MIN_TOKENS {
        return CacheUse::default();
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let fresh = seen()
        .lock()
        .map(|mut set| set.insert(hasher.finish()))
        .unwrap_or(true);
    if fresh {
        CacheUse {
            read: 0,
            write: tokens,
        }
    } else {
        CacheUse {
            read: tokens,
            write: 0,
        }
    }
}
