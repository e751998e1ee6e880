//! CPU time and resident memory of the validators the load generator started, read from
//! Linux's `/proc` (`stat` fields utime + stime in USER_HZ = 100 ticks per second on the
//! platforms we build for; `status` VmRSS and VmHWM in KiB).

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times (the kernel's fixed USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// User + system CPU time so far, in ticks.
    pub cpu_ticks: u64,
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size, KiB.
    pub peak_rss_kib: u64,
}

/// Reads process `pid`, or `None` when it is gone or `/proc` is not there.
pub fn read(pid: u32) -> Option<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Reading {
        at: Instant::now(),
        cpu_ticks,
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:").unwrap_or(0),
    })
}

/// CPU time used between two readings, seconds.
pub fn cpu_seconds(from: &Reading, to: &Reading) -> f64 {
    to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / TICKS_PER_SECOND
}

/// CPU use between two readings, in percent of one core.
pub fn cpu_percent(from: &Reading, to: &Reading) -> f64 {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    cpu_seconds(from, to) / secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id()).expect("/proc readable");
        assert!(me.rss_kib > 0);
        assert!(me.peak_rss_kib >= me.rss_kib);
        // Burn a little CPU so the second reading is later and not smaller.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let later = read(std::process::id()).expect("again");
        assert!(later.cpu_ticks >= me.cpu_ticks);
        assert!(cpu_percent(&me, &later) >= 0.0);
        assert!(read(u32::MAX).is_none());
    }
}
