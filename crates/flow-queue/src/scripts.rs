use redis::Script;

use crate::metrics::HISTOGRAM_BUCKETS_MS;

/// The Lua scripts, each the shared prelude (key layout and helpers) plus its body.
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) begin: Script,
    pub(crate) reclaim: Script,
    pub(crate) renew: Script,
    pub(crate) progress: Script,
    pub(crate) complete: Script,
    pub(crate) promote: Script,
    pub(crate) cancel: Script,
    pub(crate) requeue: Script,
    pub(crate) discard: Script,
    pub(crate) cleanup: Script,
    pub(crate) cron_fire: Script,
}

impl Scripts {
    pub(crate) fn new(dead_letter_max_len: u64) -> Self {
        let buckets = HISTOGRAM_BUCKETS_MS.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let prelude = include_str!("lua/prelude.lua")
            .replace("__BUCKETS__", &buckets)
            .replace("__DEAD_MAXLEN__", &dead_letter_max_len.to_string());
        let script = |body: &str| Script::new(&format!("{prelude}\n{body}"));
        Self {
            enqueue: script(include_str!("lua/enqueue.lua")),
            begin: script(include_str!("lua/begin.lua")),
            reclaim: script(include_str!("lua/reclaim.lua")),
            renew: script(include_str!("lua/renew.lua")),
            progress: script(include_str!("lua/progress.lua")),
            complete: script(include_str!("lua/complete.lua")),
            promote: script(include_str!("lua/promote.lua")),
            cancel: script(include_str!("lua/cancel.lua")),
            requeue: script(include_str!("lua/requeue.lua")),
            discard: script(include_str!("lua/discard.lua")),
            cleanup: script(include_str!("lua/cleanup.lua")),
            cron_fire: script(include_str!("lua/cron_fire.lua")),
        }
    }
}
