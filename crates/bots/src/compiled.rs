//! JavaScript sources compiled once per process, so that an event reads its bot's bytecode
//! instead of parsing the source again.
//!
//! Every event still runs in a fresh runtime: only the compiled form of the source is shared,
//! and it is immutable. A source is compiled in the runtime of the first event that needs it,
//! under that event's caps, and every event, that one included, runs the script from the same
//! bytes, so the cache changes how long an event takes and nothing else.
//!
//! The cache is bounded by bytes ([`CACHE_BYTES`]) and forgets the least recently used
//! sources first; a source whose bytecode would take more than a quarter of it is not kept.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use qjs_bytecode::Bytecode;
use rquickjs::Ctx;

use crate::source::{BotSource, CodeHash};

/// What the compiled sources of one process may hold. A worker runs bots of many channels; a
/// chess bot's bytecode is about 100 KiB, so this keeps dozens of large bots.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The file name is part of the key: QuickJS keeps it in the bytecode, for stack traces.
type Key = (CodeHash, Arc<str>);

struct Entry {
    code: Arc<Bytecode>,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn get(&mut self, key: &Key) -> Option<Arc<Bytecode>> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        entry.last_used = self.clock;
        Some(Arc::clone(&entry.code))
    }

    fn insert(&mut self, key: Key, code: Arc<Bytecode>) {
        if code.len() > CACHE_BYTES / 4 || self.entries.contains_key(&key) {
            return;
        }
        while self.bytes + code.len() > CACHE_BYTES {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(gone) = self.entries.remove(&oldest) {
                self.bytes -= gone.code.len();
            }
        }
        self.clock += 1;
        self.bytes += code.len();
        self.entries.insert(
            key,
            Entry {
                code,
                last_used: self.clock,
            },
        );
    }
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    // The cache holds no invariant a panic elsewhere could break halfway.
    CACHE.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Runs the bot's source in `ctx`, as evaluating it would, from its cached bytecode when this
/// process compiled it before. A syntax error is thrown in `ctx`, as evaluating would throw it.
pub(crate) fn run_source(ctx: &Ctx<'_>, bot: &BotSource) -> rquickjs::Result<()> {
    let key: Key = (bot.code_hash().clone(), Arc::from(bot.name()));
    let cached = cache().get(&key);
    let code = match cached {
        Some(code) => code,
        None => {
            let code = Arc::new(Bytecode::compile(ctx, bot.source(), bot.name())?);
            cache().insert(key, Arc::clone(&code));
            code
        }
    };
    code.run(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(source: &str) -> Arc<Bytecode> {
        let runtime = rquickjs::Runtime::new().expect("runtime");
        let context = rquickjs::Context::full(&runtime).expect("context");
        context.with(|ctx| Arc::new(Bytecode::compile(&ctx, source, "t.js").expect("compiles")))
    }

    fn key(n: usize) -> Key {
        (CodeHash::of(&n.to_string()), Arc::from("t.js"))
    }

    #[test]
    fn the_least_recently_used_source_goes_first_and_the_bytes_stay_under_the_cap() {
        let code = compiled(&format!("var s = '{}';", "x".repeat(CACHE_BYTES / 5)));
        let mut cache = Cache::default();
        for n in 0..4 {
            cache.insert(key(n), Arc::clone(&code));
        }
        assert_eq!(cache.entries.len(), 4);
        assert!(cache.get(&key(0)).is_some(), "used again, so kept");
        cache.insert(key(4), Arc::clone(&code));
        assert!(cache.bytes <= CACHE_BYTES);
        assert!(cache.get(&key(0)).is_some());
        assert!(
            cache.get(&key(1)).is_none(),
            "the least recently used is forgotten"
        );
        assert!(cache.get(&key(4)).is_some());
    }

    #[test]
    fn a_source_too_large_for_a_quarter_of_the_cache_is_not_kept() {
        let code = compiled(&format!("var s = '{}';", "x".repeat(CACHE_BYTES / 3)));
        let mut cache = Cache::default();
        cache.insert(key(0), code);
        assert!(cache.entries.is_empty());
        assert_eq!(cache.bytes, 0);
    }
}
