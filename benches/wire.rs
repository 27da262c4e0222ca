//! Hot-path benchmarks of the data interface (issue targets: decode of a full transfer
//! <= 150 ns, building a PCM_WRITE round <= 150 ns, no heap allocation on either path —
//! `crates/xpp-proto/tests/no_alloc.rs` checks the last part).
//!
//! - `decode/fxs_fxo_4x8_sig_changed`: one millisecond of IN traffic of an Astribank with four
//!   8-line modules: the PCM transfer (four PCM_READ packets, sync bit on the first, 288 bytes)
//!   and a SIG_CHANGED. A PCM frame may hold only PCM packets (docs/reference/xpp-protocol.md §3), so the
//!   SIG_CHANGED comes in its own 12-byte command transfer; both are deframed and every packet
//!   decoded into a `Repr` (samples stay borrowed, zero-copy).
//! - `decode/pri_e1_31`: one PCM_READ of a PRI E1 span, 31 timeslots (bits 1..31), 256 bytes.
//! - `decode_and_visit/*`: the same, and then every line's 8-sample chunk is visited through
//!   `Pcm::iter` (what routing PCM to channels costs on top of decoding).
//! - `pcm_write_round/4x8_chunks`: one PCM_WRITE round for four 8-line XPDs from per-channel
//!   8-byte chunks (what the span layer holds), framed into a 512-byte transfer.
//! - `pcm_write_round/4x8_packed`: the same from already packed sample blocks.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xpp::proto::wire::{Address, Framer, Message, Pcm, SAMPLES_PER_TICK, parse_transfer};

/// Four 8-line PCM_READ packets (units 0..3, sync on the first), then an FXS SIG_CHANGED in
/// its own command transfer.
fn fxs_fxo_tick() -> Vec<Vec<u8>> {
    let mut pcm = Vec::new();
    for unit in 0u8..4 {
        let sync = if unit == 0 { 0x80 } else { 0 };
        pcm.extend_from_slice(&[72, 0x08, 0x12, (unit << 4) | sync, 0xFF, 0, 0, 0]);
        pcm.extend((0..64).map(|i| (i as u8).wrapping_mul(unit + 1)));
    }
    assert_eq!(pcm.len(), 288);
    // FXS SIG_CHANGED from unit 1: line 2 went off-hook (docs/reference/xpp-protocol.md §11).
    let sig = vec![0x0C, 0x00, 0x06, 0x10, 0x04, 0, 0, 0, 0x04, 0, 0, 0];
    vec![pcm, sig]
}

/// One PCM_READ of an E1 span on unit 1: lines 0xFFFFFFFE, 31 x 8 samples.
fn pri_e1_tick() -> Vec<Vec<u8>> {
    let mut t = vec![0x00, 0x09, 0x12, 0x90, 0xFE, 0xFF, 0xFF, 0xFF];
    t.extend((0..248).map(|i| i as u8));
    vec![t]
}

/// Decodes every transfer of a tick; returns a checksum, or `u32::MAX` on any error. With
/// `visit`, every line's samples are read.
fn decode_tick(transfers: &[Vec<u8>], visit: bool) -> u32 {
    let mut sum = 0u32;
    for transfer in transfers {
        for item in parse_transfer(transfer) {
            let Ok((_, repr)) = item else { return u32::MAX };
            match repr.message {
                Message::PcmRead(p) if !visit => sum = sum.wrapping_add(p.lines()),
                Message::PcmRead(p) => {
                    for (line, s) in p.iter() {
                        sum = sum.wrapping_add(u32::from(s[7]) + line as u32);
                    }
                }
                Message::SigChanged(s) => sum = sum.wrapping_add(s.toggles),
                _ => {}
            }
        }
    }
    sum
}

fn decode(c: &mut Criterion) {
    for (group, visit) in [("decode", false), ("decode_and_visit", true)] {
        let mut g = c.benchmark_group(group);
        for (name, tick) in [("fxs_fxo_4x8_sig_changed", fxs_fxo_tick()), ("pri_e1_31", pri_e1_tick())] {
            assert_ne!(decode_tick(&tick, visit), u32::MAX, "{name} must decode");
            g.throughput(Throughput::Bytes(tick.iter().map(|t| t.len() as u64).sum()));
            g.bench_function(name, |b| b.iter(|| decode_tick(black_box(&tick), visit)));
        }
        g.finish();
    }
}

fn pcm_write_round(c: &mut Criterion) {
    let samples = [0x55u8; 8 * SAMPLES_PER_TICK];
    let chunks = [[0x7Fu8; SAMPLES_PER_TICK]; 32];
    let addrs: [Address; 4] = core::array::from_fn(|u| Address::new(u as u8, 0).unwrap_or_default());
    let mut out = [0u8; 512];
    let mut g = c.benchmark_group("pcm_write_round");
    g.bench_function("4x8_chunks", |b| {
        b.iter(|| {
            let mut sent = 0usize;
            let mut framer = Framer::new(&mut out);
            let mut round = framer.pcm_round();
            for a in addrs {
                let _ = round.push_chunks(a, black_box(0xFF), black_box(&chunks), |t: &[u8]| {
                    sent += black_box(t).len();
                });
            }
            round.finish(|t: &[u8]| sent += black_box(t).len());
            sent
        });
    });
    g.bench_function("4x8_packed", |b| {
        b.iter(|| {
            let mut sent = 0usize;
            let mut framer = Framer::new(&mut out);
            let mut round = framer.pcm_round();
            let pcm = Pcm::new(black_box(0xFF), black_box(&samples)).unwrap_or(Pcm::EMPTY);
            for a in addrs {
                let _ = round.push(a, &pcm, |t: &[u8]| sent += black_box(t).len());
            }
            round.finish(|t: &[u8]| sent += black_box(t).len());
            sent
        });
    });
    g.finish();
}

criterion_group!(benches, decode, pcm_write_round);
criterion_main!(benches);
