//! Crash points for fault-injection tests: `W4L_CRASH_POINTS=grants.before_commit=0.02,...` makes
//! the process abort (as a `kill -9` would) with that probability each time the named point is
//! passed, so that tests can prove that a crash before a commit, or after it and before the
//! reply, loses nothing and duplicates nothing. Unset (always, in production) it costs one load.

use std::sync::OnceLock;

static POINTS: OnceLock<Vec<(String, f64)>> = OnceLock::new();

fn points() -> &'static [(String, f64)] {
    POINTS.get_or_init(|| {
        std::env::var(crate::config::vars::CRASH_POINTS)
            .unwrap_or_default()
            .split(',')
            .filter_map(|item| item.split_once('='))
            .filter_map(|(name, p)| p.trim().parse::<f64>().ok().map(|p| (name.trim().to_string(), p)))
            .collect()
    })
}

/// Aborts the process with the configured probability of `name`.
pub fn crash_point(name: &str) {
    let points = points();
    if points.is_empty() {
        return;
    }
    if let Some((_, p)) = points.iter().find(|(n, _)| n == name)
        && rand::random::<f64>() < *p
    {
        eprintln!("crash point {name} reached: aborting");
        std::process::abort();
    }
}
