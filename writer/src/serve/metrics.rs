//! `GET /metrics`: Prometheus text exposition, written by hand (a few
//! counters and histograms do not need a metrics crate).

use crate::fs::{FileRole, Fs, RealFs};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug)]
pub(super) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    // Sum in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub(super) fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            let _ = self.counts[i].fetch_add(1, Relaxed);
        }
        let _ = self.count.fetch_add(1, Relaxed);
        let _ = self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    /// Records a duration in seconds.
    pub(super) fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let n = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {n}");
    }
}

const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0, 65536.0,
];

/// Everything the service counts.
#[derive(Debug)]
pub(super) struct Metrics {
    /// Entries appended through the API (not counting stele.access).
    pub entries: AtomicU64,
    /// Access events recorded.
    pub access_events: AtomicU64,
    /// Reads refused at the access-record rate.
    pub access_refused: AtomicU64,
    /// Entry bundles sent under an earlier access record of their reader.
    pub access_covered: AtomicU64,
    /// Reads refused (503) because --max-read-bytes was held by unsent responses.
    pub reads_refused: AtomicU64,
    /// Append latency per request: received to durable.
    pub append_latency: Histogram,
    /// Entries per group commit.
    pub batch_size: Histogram,
    /// fdatasync of the entries file.
    pub fsync: Histogram,
    /// HTTP responses by status code.
    pub status: Mutex<BTreeMap<u16, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            entries: AtomicU64::new(0),
            access_events: AtomicU64::new(0),
            access_refused: AtomicU64::new(0),
            access_covered: AtomicU64::new(0),
            reads_refused: AtomicU64::new(0),
            append_latency: Histogram::new(SECONDS),
            batch_size: Histogram::new(SIZES),
            fsync: Histogram::new(SECONDS),
            status: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    /// Counts one response.
    pub(super) fn count_status(&self, code: u16) {
        *self.status.lock().unwrap().entry(code).or_default() += 1;
    }

    /// The exposition text. `size`, `checkpoints` and `signed` describe the log now.
    pub(super) fn render(&self, size: u64, checkpoints: usize, signed: u64) -> String {
        let mut o = String::new();
        let mut gauge = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(
            "stele_log_entries",
            "gauge",
            "Durable entries in the log.",
            size,
        );
        gauge(
            "stele_checkpoints",
            "gauge",
            "Signed checkpoints in the log.",
            checkpoints as u64,
        );
        gauge(
            "stele_checkpoint_size",
            "gauge",
            "Tree size of the latest signed checkpoint.",
            signed,
        );
        gauge(
            "stele_appended_entries_total",
            "counter",
            "Entries appended through the HTTP API since start.",
            self.entries.load(Relaxed),
        );
        gauge(
            "stele_access_events_total",
            "counter",
            "stele.access entries recorded for reads since start.",
            self.access_events.load(Relaxed),
        );
        gauge(
            "stele_access_refused_total",
            "counter",
            "Reads of entries refused (429) at the per-reader access-record rate.",
            self.access_refused.load(Relaxed),
        );
        gauge(
            "stele_access_covered_reads_total",
            "counter",
            "Entry bundles sent under an earlier stele.access record of their reader (docs/FORMAT.md 2.6).",
            self.access_covered.load(Relaxed),
        );
        gauge(
            "stele_reads_refused_total",
            "counter",
            "Reads refused (503) while unsent responses held --max-read-bytes.",
            self.reads_refused.load(Relaxed),
        );
        self.append_latency.render(
            &mut o,
            "stele_append_latency_seconds",
            "Append request latency, from received to durable.",
        );
        self.batch_size.render(
            &mut o,
            "stele_group_commit_entries",
            "Entries per group commit (one write and one fdatasync).",
        );
        self.fsync.render(
            &mut o,
            "stele_fsync_seconds",
            "Time of each fdatasync of the entries file.",
        );
        let _ = writeln!(
            o,
            "# HELP stele_http_responses_total HTTP responses by status code.\n# TYPE stele_http_responses_total counter"
        );
        for (code, n) in self.status.lock().unwrap().iter() {
            let _ = writeln!(o, "stele_http_responses_total{{code=\"{code}\"}} {n}");
        }
        o
    }
}

/// A file system (the real one unless a test injects faults), timing each
/// fdatasync of the entries file and counting the entries of each write to
/// it: the log writes every group commit with one write, so its lines are
/// the group's size.
#[derive(Debug)]
pub(super) struct TimingFs {
    metrics: Arc<Metrics>,
    inner: Arc<dyn Fs>,
}

impl TimingFs {
    /// Counts into `metrics`, over `inner` (default: the real file system).
    pub(super) fn new(metrics: Arc<Metrics>, inner: Option<Arc<dyn Fs>>) -> Self {
        Self {
            metrics,
            inner: inner.unwrap_or_else(|| Arc::new(RealFs)),
        }
    }
}

impl Fs for TimingFs {
    fn write_at(&self, role: FileRole, f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let r = self.inner.write_at(role, f, buf, offset);
        if role == FileRole::Entries && r.is_ok() {
            self.metrics
                .batch_size
                .observe(memchr::memchr_iter(b'\n', buf).count() as f64);
        }
        r
    }

    fn sync_data(&self, role: FileRole, f: &File) -> io::Result<()> {
        let t = Instant::now();
        let r = self.inner.sync_data(role, f);
        if role == FileRole::Entries {
            self.metrics.fsync.observe_duration(t.elapsed());
        }
        r
    }

    fn set_len(&self, role: FileRole, f: &File, len: u64) -> io::Result<()> {
        self.inner.set_len(role, f, len)
    }

    fn rename(
        &self,
        role: FileRole,
        from: &std::path::Path,
        to: &std::path::Path,
    ) -> io::Result<()> {
        self.inner.rename(role, from, to)
    }

    fn sync_dir(&self, dir: &std::path::Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}
