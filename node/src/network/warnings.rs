//! Warnings about what peers send, rate-limited: a peer that sends junk as fast as it can must
//! not make this node write a log line per message. Each kind of warning is logged at most once
//! per [`WARNING_INTERVAL`], with the number of the same kind left out since the last one; the
//! refusals are all counted in the metrics anyway.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Least time between two warnings of one kind.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// When each kind of warning was last logged, and how many were left out since.
#[derive(Default)]
pub struct Warnings {
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Warnings {
    /// `Some(left_out)` if a warning of `kind` may be logged now (with how many were left out
    /// since the last), `None` if it is left out.
    pub fn allow(&self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock();
        match last.get_mut(kind) {
            Some((at, left_out)) if now.duration_since(*at) < WARNING_INTERVAL => {
                *left_out += 1;
                None
            }
            Some((at, left_out)) => {
                *at = now;
                Some(std::mem::take(left_out))
            }
            None => {
                last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_kind_is_logged_once_per_interval_and_counted() {
        let w = Warnings::default();
        assert_eq!(w.allow("junk"), Some(0));
        for _ in 0..1000 {
            assert_eq!(w.allow("junk"), None);
        }
        // Another kind is not held back by the first.
        assert_eq!(w.allow("forged"), Some(0));
        // Once the interval has passed, the next one says how many were left out.
        w.last.lock().get_mut("junk").expect("logged").0 -= WARNING_INTERVAL;
        assert_eq!(w.allow("junk"), Some(1000));
        assert_eq!(w.allow("junk"), None);
    }
}
