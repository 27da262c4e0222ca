//! Throughput of the software HDLC engine of the PRI D-channel (issue 12).
//!
//! - `hdlc/tx_fill`: the transmitter turning back-to-back 260-byte frames (random payload, FCS
//!   mode) into line bytes, 8 bytes per call as the tick does.
//! - `hdlc/rx_feed`: the receiver deframing that same line stream, 8 bytes per call.
//! - `hdlc/rx_idle`: the receiver on an idle line (continuous flags), the common case.
//!
//! Throughput is in line bytes; a D-channel carries 8000 line bytes per second, so one core
//! carries `throughput / 8000` D-channels.
//!
//! Measured 2026-12-04 (shared 2-core VM, under load from other builds): `tx_fill` 52 MiB/s
//! (~6800 D-channels per core), `rx_feed` 13 MiB/s (~1700), `rx_idle` 360 MiB/s (~47000).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xpp_chan::hdlc::{HdlcRx, HdlcTx, RxEvent};

const LINE_BYTES: usize = 64 * 1024;

fn line_stream() -> Vec<u8> {
    let mut tx = HdlcTx::new(260, true);
    let mut seed = 0x1234_5678u32;
    let mut frame = [0u8; 260];
    let mut line = vec![0u8; LINE_BYTES];
    for chunk in line.chunks_mut(8) {
        if tx.is_idle() {
            for b in frame.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (seed >> 24) as u8;
            }
            tx.send(&frame).unwrap();
        }
        tx.fill(chunk);
    }
    line
}

fn bench(c: &mut Criterion) {
    let line = line_stream();
    let mut g = c.benchmark_group("hdlc");
    g.throughput(Throughput::Bytes(LINE_BYTES as u64));

    g.bench_function("tx_fill", |b| {
        let mut tx = HdlcTx::new(260, true);
        let frame = [0x5Au8; 260];
        let mut out = [0u8; 8];
        b.iter(|| {
            for _ in 0..LINE_BYTES / 8 {
                if tx.is_idle() {
                    tx.send(black_box(&frame)).unwrap();
                }
                tx.fill(&mut out);
                black_box(&out);
            }
        });
    });

    g.bench_function("rx_feed", |b| {
        let mut rx = HdlcRx::new(260, true);
        b.iter(|| {
            let mut frames = 0u32;
            for chunk in line.chunks(8) {
                rx.feed(black_box(chunk), |ev| {
                    if let RxEvent::Frame(f) = ev {
                        frames += f.len() as u32;
                    }
                });
            }
            black_box(frames)
        });
    });

    let idle = vec![0x7Eu8; LINE_BYTES];
    g.bench_function("rx_idle", |b| {
        let mut rx = HdlcRx::new(260, true);
        b.iter(|| {
            for chunk in idle.chunks(8) {
                rx.feed(black_box(chunk), |_| {});
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
