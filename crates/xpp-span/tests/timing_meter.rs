//! The tick meter on synthetic arrival instants: dahdi_test accuracy, extremes, missed
//! ticks, the histogram, and tick detection on real PCM frames.

use xpp_proto::wire::{Address, Framer, Pcm};
use xpp_proto::{Duration, Instant};
use xpp_span::timing::{BUCKET_WIDTH, BUCKETS, Histogram, TickMeter, is_tick_transfer};

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// Feeds ticks at the given intervals after a first tick at 1 s; returns the passes.
fn feed(meter: &mut TickMeter, intervals: impl IntoIterator<Item = u64>) -> Vec<xpp_span::timing::Pass> {
    let mut t = Instant::from_secs(1);
    let mut passes: Vec<_> = meter.record(t).into_iter().collect();
    for i in intervals {
        t += us(i);
        passes.extend(meter.record(t));
    }
    passes
}

#[test]
fn perfect_ticks_are_100_percent() {
    let mut m = TickMeter::default();
    let passes = feed(&mut m, std::iter::repeat_n(1000, 3000));
    assert_eq!(passes.len(), 3);
    for (i, p) in passes.iter().enumerate() {
        assert_eq!(p.number, i as u32 + 1);
        assert_eq!(p.intervals, 1000);
        assert_eq!(p.elapsed, Duration::from_secs(1));
        assert!((p.accuracy - 100.0).abs() < 1e-12);
        assert!((p.mean_us - 1000.0).abs() < 1e-12);
        assert_eq!((p.min, p.max, p.worst_deviation, p.late, p.missed), (us(1000), us(1000), us(0), 0, 0));
    }
    let s = m.summary();
    assert_eq!((s.passes, s.overall.intervals), (3, 3000));
    assert!((s.best - 100.0).abs() < 1e-12 && (s.worst - 100.0).abs() < 1e-12);
    assert_eq!(s.histogram.buckets().nth(10).map(|b| b.2), Some(3000));
    assert_eq!(s.histogram.total(), 3000);
}

#[test]
fn slow_clock_scores_like_dahdi_test() {
    // 1001 us per tick: 1000 intervals in 1.001 s, 0.1 % off.
    let mut m = TickMeter::default();
    let p = feed(&mut m, std::iter::repeat_n(1001, 1000)).remove(0);
    assert!((p.accuracy - 99.9).abs() < 1e-9, "{}", p.accuracy);
    // 1 ms behind the wall clock after a second: one tick short.
    assert_eq!((p.worst_deviation, p.late, p.missed), (us(1), 0, 1));
}

#[test]
fn jitter_that_averages_out_keeps_accuracy_but_shows_worst_interval() {
    // Alternating 700/1300 us: on time per pass, worst deviation 300 us.
    let mut m = TickMeter::default();
    let p = feed(&mut m, (0..1000).map(|i| if i % 2 == 0 { 700 } else { 1300 })).remove(0);
    assert!((p.accuracy - 100.0).abs() < 1e-12);
    assert_eq!((p.min, p.max, p.worst_deviation, p.late, p.missed), (us(700), us(1300), us(300), 0, 0));
    let h = m.summary().histogram;
    let counts: Vec<_> = h.buckets().filter(|b| b.2 > 0).map(|b| (b.0.total_micros(), b.2)).collect();
    assert_eq!(counts, [(700, 500), (1300, 500)]);
}

#[test]
fn a_missed_tick_is_counted_and_lowers_the_score() {
    // 999 intervals of 1 ms and one of 2 ms (one tick missed): 1000 intervals in 1.001 s,
    // dahdi_test's "fewer samples in the same time".
    let mut m = TickMeter::default();
    let mut iv: Vec<u64> = vec![1000; 1000];
    iv[500] = 2000;
    let p = feed(&mut m, iv).remove(0);
    assert_eq!((p.missed, p.late, p.max, p.worst_deviation), (1, 1, us(2000), us(1000)));
    assert!((p.accuracy - 99.9).abs() < 1e-9, "{}", p.accuracy);
    // 3.4 ms then nine 1 ms intervals: 12.4 ms for 10 intervals, two missed.
    let mut m = TickMeter::new(Duration::from_millis(1), 10);
    let p = feed(&mut m, [3400, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]).remove(0);
    assert_eq!((p.missed, p.late), (2, 1));
}

#[test]
fn a_late_burst_is_late_not_missed() {
    // A 5 ms gap, then four ticks at once: on time overall, one late interval, none missed.
    let mut m = TickMeter::new(Duration::from_millis(1), 10);
    let p = feed(&mut m, [1000, 1000, 5000, 0, 0, 0, 1000, 1000, 1000, 0]).remove(0);
    assert_eq!((p.elapsed, p.late, p.missed, p.worst_deviation), (us(10_000), 1, 0, us(4000)));
    assert!((p.accuracy - 100.0).abs() < 1e-12);
}

#[test]
fn summary_covers_partial_pass_and_pass_statistics() {
    let mut m = TickMeter::new(Duration::from_millis(1), 100);
    // Pass 1 perfect, pass 2 at 1002 us (99.8 %), then 50 more intervals.
    let iv = std::iter::repeat_n(1000, 100)
        .chain(std::iter::repeat_n(1002, 100))
        .chain(std::iter::repeat_n(1000, 50));
    let passes = feed(&mut m, iv);
    assert_eq!(passes.len(), 2);
    let s = m.summary();
    assert_eq!((s.passes, s.overall.intervals), (2, 250));
    assert!((s.best - 100.0).abs() < 1e-9 && (s.worst - 99.8).abs() < 1e-9);
    assert!((s.average - 99.9).abs() < 1e-9);
    // 250 intervals, 200 us late in total.
    assert!((s.overall.accuracy - (100.0 - 200.0 / 250_000.0 * 100.0)).abs() < 1e-9);
    let text = s.to_string();
    assert!(text.starts_with("--- Results after 2 passes ---\nBest: 100.000% -- Worst: 99.800%"), "{text}");
    assert!(text.contains("1000-1100  us"), "{text}");
}

#[test]
fn empty_and_degenerate_input() {
    let mut m = TickMeter::new(Duration::ZERO, 0);
    assert_eq!(m.ticks_per_pass(), 1);
    let s = m.summary();
    assert_eq!((s.passes, s.best, s.worst, s.average, s.overall.accuracy), (0, 0.0, 0.0, 0.0, 0.0));
    assert_eq!(m.record(Instant::from_millis(5)), None);
    // Time going backwards: a zero interval, no panic.
    let p = m.record(Instant::from_millis(4)).expect("one interval per pass");
    assert_eq!((p.elapsed, p.missed), (Duration::ZERO, 0));
}

#[test]
fn histogram_overflow_and_rendering() {
    let mut h = Histogram::new();
    h.record(us(0));
    h.record(us(99));
    h.record(us(BUCKET_WIDTH.total_micros() * BUCKETS as u64));
    h.record(Duration::MAX);
    assert_eq!((h.overflow(), h.total()), (2, 4));
    assert_eq!(h.buckets().next().map(|b| b.2), Some(2));
    let text = h.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| l.contains("3000+")), "{text}");
}

#[test]
fn tick_transfers_are_pcm_frames_with_the_sync_bit_first() {
    let samples = [0x7Fu8; 8];
    let pcm = Pcm::new(1, &samples).unwrap();
    let mut frames = Vec::new();
    let mut buf = [0u8; 512];
    let mut framer = Framer::new(&mut buf);
    let mut round = framer.pcm_round();
    round.push(Address::ZERO, &pcm, |t: &[u8]| frames.push(t.to_vec())).unwrap();
    round.push(Address::new(1, 0).unwrap(), &pcm, |t: &[u8]| frames.push(t.to_vec())).unwrap();
    round.finish(|t: &[u8]| frames.push(t.to_vec()));
    assert_eq!(frames.len(), 1);
    assert!(is_tick_transfer(&frames[0]));
    // The second packet alone has no sync bit.
    assert!(!is_tick_transfer(&frames[0][16..]));
    // A command frame, garbage and nothing are not ticks.
    assert!(!is_tick_transfer(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]));
    assert!(!is_tick_transfer(&[0xFF, 0xFF]));
    assert!(!is_tick_transfer(&[]));
}

/// The passes' missed ticks add up to the summary's, whatever the gaps and bursts and
/// wherever the pass boundaries fall (issue 14, item 5: `timing` printed per-pass counts that
/// did not add up to its summary).
#[test]
fn passes_add_up_to_the_summary() {
    for seed in 0..200u64 {
        let mut meter = TickMeter::new(us(1000), 50);
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let intervals: Vec<u64> = (0..1000)
            .map(|_| match next() % 20 {
                0 => 2000 + next() % 3000, // a gap: ticks missed
                1 => 0,                    // a burst
                2 => 400 + next() % 600,   // early
                _ => 1000,
            })
            .collect();
        let passes = feed(&mut meter, intervals);
        let summed: u64 = passes.iter().map(|p| p.missed).sum();
        // 1000 intervals make 20 full passes: nothing is left to a partial pass.
        assert_eq!(summed, meter.summary().overall.missed, "seed {seed}");
    }
}
