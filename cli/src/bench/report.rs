//! The load generator's report: throughput, submit → commit latency, refusals, validator CPU
//! and memory, a per-second timeline, as text or JSON, and an SVG plot of the timeline.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

/// Latency percentiles, milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `samples` (microseconds; sorted here).
    pub fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64 / 1000.0
        };
        Self {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: samples[samples.len() - 1] as f64 / 1000.0,
        }
    }
}

/// One slice of the run (a quarter second, or a second in runs over a minute).
#[derive(Clone, Debug, Serialize)]
pub struct Slice {
    /// Start, seconds since the first submission.
    pub t_s: f64,
    /// Submission rate in this slice, tx/s.
    pub submitted_tps: f64,
    /// Commit rate in this slice, tx/s.
    pub committed_tps: f64,
    /// Median latency of the transactions committed in this slice.
    pub p50_ms: f64,
    /// 99th percentile of the same.
    pub p99_ms: f64,
}

/// CPU and memory of one validator over the measured window.
#[derive(Clone, Debug, Serialize)]
pub struct ValidatorUsage {
    /// Validator index.
    pub validator: usize,
    /// Average CPU, percent of one core.
    pub cpu_percent: f64,
    /// CPU time over the measured window per committed transaction, microseconds (ticks of
    /// 10 ms: a short run's figure is coarse).
    pub cpu_us_per_tx: f64,
    /// Resident memory at the end, MiB.
    pub rss_mib: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The workload.
    pub workload: super::workload::Workload,
    /// Validators in the cluster.
    pub validators: usize,
    /// Sending accounts.
    pub senders: usize,
    /// Concurrent gRPC clients.
    pub clients: usize,
    /// Transactions per `SubmitBatch` (1: `Submit`).
    pub batch: usize,
    /// Target rate, tx/s (0: open loop).
    pub rate: u64,
    /// Certificates per transaction (certificate batches).
    pub certs_per_tx: usize,
    /// Measured transactions built and signed.
    pub txs: usize,
    /// Accepted by the node.
    pub accepted: u64,
    /// Refused, by code (`MEMPOOL_FULL` is retried and counted under `retried`).
    pub rejected: BTreeMap<String, u64>,
    /// Submissions retried after `MEMPOOL_FULL`.
    pub retried: u64,
    /// Committed within the run.
    pub committed: u64,
    /// Committed but failed in execution (fee paid, no effect).
    pub failed_in_execution: u64,
    /// The error of one of those.
    pub failure_example: Option<String>,
    /// First submission to last commit, seconds.
    pub duration_s: f64,
    /// Committed transactions per second over that window.
    pub committed_tps: f64,
    /// Certificates issued per second (certificate batches).
    pub certificates_per_s: f64,
    /// Submit → commit latency.
    pub latency: Latency,
    /// Submit → admitted latency: how long the call the node answered by taking the
    /// transaction took (what a client waits for on each call; waits before a retry after
    /// `MEMPOOL_FULL` are not in it).
    pub acceptance: Latency,
    /// Blocks committed in the window.
    pub blocks: u64,
    /// Per validator CPU and memory (when this run started them).
    pub usage: Vec<ValidatorUsage>,
    /// p2p payload bytes all validators together received in the window, by kind.
    pub p2p_received: BTreeMap<String, u64>,
    /// Each validator's committed height at the end (read in turn, right after the last
    /// commit): a validator left behind shows as a gap.
    pub heights: Vec<u64>,
    /// Over time.
    pub timeline: Vec<Slice>,
}

impl Report {
    /// Human-readable summary.
    pub fn text(&self) -> String {
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut out = format!(
            "workload   {:?}: {} txs from {} senders, {} clients, batch {}, rate {}\n\
             validators {}\n\
             committed  {} of {} accepted in {:.2} s: {:.0} tx/s{}\n\
             latency    p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms (submit -> commit)\n\
             accepted   p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.1} ms (submit -> admitted)\n\
             refused    {}  (retried after MEMPOOL_FULL: {})\n\
             failed     {} committed with a failed execution{}\n\
             blocks     {}\n\
             heights    {:?} at the end (spread {})",
            self.workload,
            self.txs,
            self.senders,
            self.clients,
            self.batch,
            if self.rate == 0 {
                "open loop".to_owned()
            } else {
                format!("{} tx/s", self.rate)
            },
            self.validators,
            self.committed,
            self.accepted,
            self.duration_s,
            self.committed_tps,
            if self.certificates_per_s > 0.0 {
                format!(" ({:.0} certificates/s)", self.certificates_per_s)
            } else {
                String::new()
            },
            self.latency.p50_ms,
            self.latency.p90_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.acceptance.p50_ms,
            self.acceptance.p90_ms,
            self.acceptance.p99_ms,
            self.acceptance.max_ms,
            if rejected.is_empty() {
                "none".to_owned()
            } else {
                rejected.join(", ")
            },
            self.retried,
            self.failed_in_execution,
            self.failure_example
                .as_ref()
                .map_or_else(String::new, |e| format!(", e.g. {e:?}")),
            self.blocks,
            self.heights,
            self.heights.iter().max().unwrap_or(&0) - self.heights.iter().min().unwrap_or(&0),
        );
        let p2p: u64 = self.p2p_received.values().sum();
        if p2p > 0 {
            let per = |bytes: u64, n: u64| bytes as f64 / n.max(1) as f64;
            let kinds: Vec<String> = self
                .p2p_received
                .iter()
                .map(|(k, &b)| {
                    format!(
                        "{k} {:.1} MiB ({:.0} B/block)",
                        b as f64 / 1048576.0,
                        per(b, self.blocks)
                    )
                })
                .collect();
            out += &format!(
                "\np2p        received by all validators: {}; {:.0} B per committed tx",
                kinds.join(", "),
                per(p2p, self.committed)
            );
        }
        for u in &self.usage {
            out += &format!(
                "\nvalidator {}: cpu {:.0}% of a core, {:.1} us per committed tx, rss {:.0} MiB (peak {:.0} MiB)",
                u.validator, u.cpu_percent, u.cpu_us_per_tx, u.rss_mib, u.peak_rss_mib
            );
        }
        out
    }

    /// Writes an SVG of committed tx/s and latency (p50, p99) per second.
    pub fn plot(&self, path: &Path) -> anyhow::Result<()> {
        let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (top, bottom) = root.split_vertically(320);
        let t_max = self.timeline.last().map_or(1.0, |s| s.t_s + 1.0);
        let tps_max = self
            .timeline
            .iter()
            .map(|s| s.committed_tps.max(s.submitted_tps))
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!(
                    "{:?}, {} validator(s): {:.0} committed tx/s",
                    self.workload, self.validators, self.committed_tps
                ),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, 0f64..tps_max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("tx/s")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                self.timeline.iter().map(|s| (s.t_s, s.committed_tps)),
                &BLUE,
            ))
            .map_err(plot_err)?
            .label("committed")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                self.timeline.iter().map(|s| (s.t_s, s.submitted_tps)),
                &GREEN,
            ))
            .map_err(plot_err)?
            .label("submitted")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;

        let lat_max = self.timeline.iter().map(|s| s.p99_ms).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&bottom)
            .caption(
                format!(
                    "submit -> commit latency: p50 {:.1} ms, p99 {:.1} ms",
                    self.latency.p50_ms, self.latency.p99_ms
                ),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max, 0f64..lat_max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("ms")
            .draw()
            .map_err(plot_err)?;
        for (name, color, pick) in [
            ("p50", BLUE, (|s: &Slice| s.p50_ms) as fn(&Slice) -> f64),
            ("p99", RED, |s: &Slice| s.p99_ms),
        ] {
            chart
                .draw_series(LineSeries::new(
                    self.timeline
                        .iter()
                        .filter(|s| s.committed_tps > 0.0)
                        .map(|s| (s.t_s, pick(s))),
                    &color,
                ))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)?;
        root.present()
            .map_err(plot_err)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

/// The timeline from per-transaction submit and commit times (µs since the start; 0 = never).
pub fn timeline(submitted_us: &[u64], committed_us: &[u64]) -> Vec<Slice> {
    let last = committed_us
        .iter()
        .chain(submitted_us)
        .copied()
        .max()
        .unwrap_or(0);
    let width_us: u64 = if last > 60_000_000 {
        1_000_000
    } else {
        250_000
    };
    let slices = (last / width_us + 1) as usize;
    let mut submitted = vec![0u64; slices];
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); slices];
    for (&s, &c) in submitted_us.iter().zip(committed_us) {
        if s > 0 {
            submitted[(s / width_us) as usize] += 1;
        }
        if s > 0 && c > 0 {
            latencies[(c / width_us) as usize].push(c.saturating_sub(s));
        }
    }
    let per_s = 1e6 / width_us as f64;
    latencies
        .into_iter()
        .zip(submitted)
        .enumerate()
        .map(|(i, (mut l, submitted))| {
            let committed = l.len() as f64;
            let lat = Latency::of(&mut l);
            Slice {
                t_s: (i as u64 * width_us) as f64 / 1e6,
                submitted_tps: submitted as f64 * per_s,
                committed_tps: committed * per_s,
                p50_ms: lat.p50_ms,
                p99_ms: lat.p99_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_timeline() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let l = Latency::of(&mut s);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&mut []).max_ms, 0.0);
        // Three submitted in the first second; two committed in the second, one never.
        let t = timeline(&[1, 500_000, 900_000], &[1_200_000, 1_300_000, 0]);
        assert_eq!(t.len(), 6, "quarter seconds up to 1.3 s");
        assert_eq!(
            (t[0].submitted_tps, t[2].submitted_tps, t[3].submitted_tps),
            (4.0, 4.0, 4.0)
        );
        assert_eq!(t[4].committed_tps, 4.0);
        assert_eq!(t[5].committed_tps, 4.0);
        assert_eq!((t[4].p50_ms, t[5].p99_ms), (1_199.999, 800.0));
        assert_eq!(
            timeline(&[1], &[61_000_000]).len(),
            62,
            "seconds past a minute"
        );
    }

    #[test]
    fn plots_to_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plot.svg");
        let report = Report {
            workload: super::super::workload::Workload::Transfer,
            validators: 1,
            senders: 2,
            clients: 1,
            batch: 1,
            rate: 0,
            certs_per_tx: 0,
            txs: 3,
            accepted: 3,
            rejected: BTreeMap::new(),
            retried: 0,
            committed: 2,
            failed_in_execution: 0,
            failure_example: None,
            duration_s: 1.6,
            committed_tps: 1.25,
            certificates_per_s: 0.0,
            latency: Latency::default(),
            acceptance: Latency::default(),
            blocks: 2,
            usage: Vec::new(),
            p2p_received: BTreeMap::from([("consensus".to_owned(), 3 << 20)]),
            heights: vec![9, 2, 9],
            timeline: timeline(&[1, 500_000, 900_000], &[1_200_000, 1_600_000, 0]),
        };
        report.plot(&path).expect("plot");
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("committed"));
        assert!(report.text().contains("committed  2 of 3 accepted"));
        assert!(report
            .text()
            .contains("heights    [9, 2, 9] at the end (spread 7)"));
        assert!(
            report
                .text()
                .contains("consensus 3.0 MiB (1572864 B/block)"),
            "{}",
            report.text()
        );
    }
}
