//! Tick regularity, measured the way `dahdi_test` does (docs/reference/dahdi-span-model.md §12), sans-IO.
//!
//! A [`TickMeter`] takes the arrival instants of the device's tick-bearing IN transfers
//! ([`is_tick_transfer`]: a PCM frame whose first packet carries the sync bit,
//! docs/reference/xpp-protocol.md §7.3) and reports, per pass of [`TickMeter::ticks_per_pass`] intervals
//! (1000 = one second of 1 ms ticks = `dahdi_test`'s 8000 samples), a [`Pass`]: its
//! `dahdi_test` accuracy, mean, shortest and longest interval, worst deviation from the
//! nominal interval and the ticks missed. [`TickMeter::summary`] gives the whole run with a
//! [`Histogram`] of every interval.
//!
//! Accuracy of a pass is `dahdi_test`'s score: `100 - |elapsed - n·nominal| / (n·nominal) ·
//! 100` for `n` intervals received in `elapsed` time. A missed tick leaves a double interval
//! and one tick fewer in the same time, so it lowers the score as a missing 8-sample chunk
//! does in `dahdi_test`.

use core::fmt;

use xpp_proto::wire::deframe;
use xpp_proto::{Duration, Instant};

/// The nominal tick interval (docs/reference/xpp-protocol.md §7.3).
pub const NOMINAL_INTERVAL: Duration = Duration::from_millis(1);
/// Intervals per pass by default: one second of ticks (`dahdi_test`'s 8000 samples).
pub const TICKS_PER_PASS: u32 = 1000;
/// Width of one histogram bucket.
pub const BUCKET_WIDTH: Duration = Duration::from_micros(100);
/// Histogram buckets below the overflow bucket: 0..3 ms in [`BUCKET_WIDTH`] steps.
pub const BUCKETS: usize = 30;

/// Whether an IN transfer starts a tick: a PCM frame whose first packet has the sync bit.
/// Malformed transfers are not ticks.
pub fn is_tick_transfer(transfer: &[u8]) -> bool {
    matches!(deframe(transfer).next(), Some(Ok((_, p))) if p.is_pcm() && p.sync())
}

/// Counts of intervals in [`BUCKET_WIDTH`] buckets from 0, with an overflow bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS],
    overflow: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self { counts: [0; BUCKETS], overflow: 0 }
    }

    /// Counts one interval.
    pub fn record(&mut self, interval: Duration) {
        let i = interval.total_micros() / BUCKET_WIDTH.total_micros();
        match usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
            Some(c) => *c += 1,
            None => self.overflow += 1,
        }
    }

    /// Every bucket: `(start, end, count)`, end exclusive.
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, Duration, u64)> + '_ {
        let w = BUCKET_WIDTH.total_micros();
        self.counts.iter().enumerate().map(move |(i, &c)| {
            let lo = i as u64 * w;
            (Duration::from_micros(lo), Duration::from_micros(lo + w), c)
        })
    }

    /// Intervals of [`BUCKETS`] × [`BUCKET_WIDTH`] or more.
    pub const fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Every interval counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }
}

impl fmt::Display for Histogram {
    /// One line per non-empty bucket (`  900-1000 us  123  ####`), bars scaled to 50 marks,
    /// then the overflow bucket if non-empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = self.counts.iter().copied().chain([self.overflow]).max().unwrap_or(0).max(1);
        let bar = |c: u64| "#".repeat(usize::try_from((c * 50).div_ceil(max)).unwrap_or(50));
        for (lo, hi, c) in self.buckets().filter(|b| b.2 > 0) {
            writeln!(f, "  {:>5}-{:<5} us {:>8}  {}", lo.total_micros(), hi.total_micros(), c, bar(c))?;
        }
        if self.overflow > 0 {
            let lo = BUCKETS as u64 * BUCKET_WIDTH.total_micros();
            writeln!(f, "  {:>5}+      us {:>8}  {}", lo, self.overflow, bar(self.overflow))?;
        }
        Ok(())
    }
}

/// Interval statistics over a stretch of ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Accum {
    intervals: u64,
    elapsed: Duration,
    min: Option<Duration>,
    max: Duration,
    worst_dev: Duration,
    late: u64,
}

impl Accum {
    const EMPTY: Self = Self {
        intervals: 0,
        elapsed: Duration::ZERO,
        min: None,
        max: Duration::ZERO,
        worst_dev: Duration::ZERO,
        late: 0,
    };

    fn add(&mut self, interval: Duration, nominal: Duration) {
        self.intervals += 1;
        self.elapsed += interval;
        self.min = Some(self.min.map_or(interval, |m| m.min(interval)));
        self.max = self.max.max(interval);
        self.worst_dev = self.worst_dev.max(abs_diff(interval, nominal));
        if interval.total_micros() * 2 > nominal.total_micros() * 3 {
            self.late += 1;
        }
    }
}

fn abs_diff(a: Duration, b: Duration) -> Duration {
    if a >= b { a - b } else { b - a }
}

/// Ticks missed over a stretch: the nominal intervals that fit in `elapsed` (rounded) minus
/// the intervals received.
// Decision: missed ticks are counted from the elapsed time, not per interval: USB and the host
// scheduler deliver ticks in bursts (a 5 ms gap then four transfers at once), which is late,
// not missed; only ticks that never arrive make the count of intervals fall behind the time.
fn missed_ticks(intervals: u64, elapsed: Duration, nominal: Duration) -> u64 {
    let n = nominal.total_micros().max(1);
    ((elapsed.total_micros() + n / 2) / n).saturating_sub(intervals)
}

/// `dahdi_test`'s score for `intervals` received in `elapsed`.
fn accuracy(intervals: u64, elapsed: Duration, nominal: Duration) -> f64 {
    let expected = intervals as f64 * nominal.total_micros() as f64;
    if expected == 0.0 {
        return 0.0;
    }
    100.0 - (elapsed.total_micros() as f64 - expected).abs() / expected * 100.0
}

/// One pass (by default one second of ticks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Pass number, from 1.
    pub number: u32,
    /// Intervals measured.
    pub intervals: u64,
    /// Their total length.
    pub elapsed: Duration,
    /// `dahdi_test` accuracy, percent.
    pub accuracy: f64,
    /// Mean interval, microseconds.
    pub mean_us: f64,
    /// Shortest interval.
    pub min: Duration,
    /// Longest interval.
    pub max: Duration,
    /// Largest deviation of one interval from the nominal interval.
    pub worst_deviation: Duration,
    /// Intervals longer than 1.5 nominal intervals (late ticks; a burst may follow).
    pub late: u64,
    /// Ticks missed: nominal intervals in `elapsed` (rounded) minus the intervals received.
    pub missed: u64,
}

impl Pass {
    fn from_accum(number: u32, a: &Accum, nominal: Duration) -> Self {
        Self {
            number,
            intervals: a.intervals,
            elapsed: a.elapsed,
            accuracy: accuracy(a.intervals, a.elapsed, nominal),
            mean_us: if a.intervals == 0 {
                0.0
            } else {
                a.elapsed.total_micros() as f64 / a.intervals as f64
            },
            min: a.min.unwrap_or(Duration::ZERO),
            max: a.max,
            worst_deviation: a.worst_dev,
            late: a.late,
            missed: missed_ticks(a.intervals, a.elapsed, nominal),
        }
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pass {:>3}: {} ticks in {:.3} ms ({:.3}%)  mean {:.1} us  min {} us  max {} us  \
             worst dev {} us  late {}  missed {}",
            self.number,
            self.intervals,
            self.elapsed.total_micros() as f64 / 1000.0,
            self.accuracy,
            self.mean_us,
            self.min.total_micros(),
            self.max.total_micros(),
            self.worst_deviation.total_micros(),
            self.late,
            self.missed
        )
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Complete passes.
    pub passes: u32,
    /// Best pass accuracy, percent (0 without a pass).
    pub best: f64,
    /// Worst pass accuracy, percent (0 without a pass).
    pub worst: f64,
    /// Mean of the pass accuracies, percent (0 without a pass).
    pub average: f64,
    /// The whole run (complete passes and the partial one) as one pass: cumulative
    /// accuracy, mean, extremes, missed ticks.
    pub overall: Pass,
    /// Every interval of the run.
    pub histogram: Histogram,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.overall;
        writeln!(f, "--- Results after {} passes ---", self.passes)?;
        writeln!(f, "Best: {:.3}% -- Worst: {:.3}% -- Average: {:.6}%", self.best, self.worst, self.average)?;
        writeln!(f, "Cumulative accuracy (not per pass): {:.3}%", o.accuracy)?;
        writeln!(
            f,
            "Intervals: {}  mean {:.2} us  min {} us  max {} us  worst deviation {} us  late {}  missed ticks {}",
            o.intervals,
            o.mean_us,
            o.min.total_micros(),
            o.max.total_micros(),
            o.worst_deviation.total_micros(),
            o.late,
            o.missed
        )?;
        writeln!(f, "Histogram of intervals ({} us buckets):", BUCKET_WIDTH.total_micros())?;
        write!(f, "{}", self.histogram)
    }
}

/// Measures tick regularity from tick arrival instants. See the module doc.
#[derive(Debug, Clone)]
pub struct TickMeter {
    nominal: Duration,
    per_pass: u32,
    last: Option<Instant>,
    pass: Accum,
    total: Accum,
    passes: u32,
    best: f64,
    worst: f64,
    sum: f64,
    histogram: Histogram,
    /// Ticks missed over the whole run as of the last pass's end: each pass reports what it
    /// adds to this count, so the passes add up to the summary's (issue 14, item 5).
    missed_so_far: u64,
}

impl Default for TickMeter {
    fn default() -> Self {
        Self::new(NOMINAL_INTERVAL, TICKS_PER_PASS)
    }
}

impl TickMeter {
    /// A meter for ticks every `nominal` (clamped to at least 1 µs), reporting a [`Pass`]
    /// every `per_pass` intervals (at least 1).
    pub fn new(nominal: Duration, per_pass: u32) -> Self {
        Self {
            nominal: nominal.max(Duration::from_micros(1)),
            per_pass: per_pass.max(1),
            last: None,
            pass: Accum::EMPTY,
            total: Accum::EMPTY,
            passes: 0,
            best: f64::NEG_INFINITY,
            worst: f64::INFINITY,
            sum: 0.0,
            histogram: Histogram::new(),
            missed_so_far: 0,
        }
    }

    /// Intervals per pass.
    pub const fn ticks_per_pass(&self) -> u32 {
        self.per_pass
    }

    /// Records a tick arriving at `at`; returns the pass it completes, if any. The first tick
    /// only starts the clock. A tick earlier than the previous one counts as a zero interval.
    pub fn record(&mut self, at: Instant) -> Option<Pass> {
        let last = self.last.replace(at.max(self.last.unwrap_or(at)))?;
        let interval = at.saturating_duration_since(last);
        self.pass.add(interval, self.nominal);
        self.total.add(interval, self.nominal);
        self.histogram.record(interval);
        if self.pass.intervals < u64::from(self.per_pass) {
            return None;
        }
        self.passes += 1;
        let mut p = Pass::from_accum(self.passes, &self.pass, self.nominal);
        // Decision: a pass's missed ticks are what it adds to the run's count (from the
        // whole elapsed time, rounded once), not its own rounded count: rounding each pass on
        // its own made the passes disagree with the summary by a tick here and there.
        let missed = self.missed_now().max(self.missed_so_far);
        p.missed = missed - self.missed_so_far;
        self.missed_so_far = missed;
        self.best = self.best.max(p.accuracy);
        self.worst = self.worst.min(p.accuracy);
        self.sum += p.accuracy;
        self.pass = Accum::EMPTY;
        Some(p)
    }

    /// Ticks missed over the whole run so far.
    fn missed_now(&self) -> u64 {
        missed_ticks(self.total.intervals, self.total.elapsed, self.nominal)
    }

    /// The run so far. Its missed ticks are the passes' sum plus what the partial pass
    /// after the last one adds.
    pub fn summary(&self) -> Summary {
        let some = self.passes > 0;
        let mut overall = Pass::from_accum(self.passes, &self.total, self.nominal);
        overall.missed = self.missed_now().max(self.missed_so_far);
        Summary {
            passes: self.passes,
            best: if some { self.best } else { 0.0 },
            worst: if some { self.worst } else { 0.0 },
            average: if some { self.sum / f64::from(self.passes) } else { 0.0 },
            overall,
            histogram: self.histogram.clone(),
        }
    }
}
