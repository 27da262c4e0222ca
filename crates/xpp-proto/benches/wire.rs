//! Hot-path benchmarks of the data interface: building one PCM_WRITE round and decoding one
//! full PCM_READ transfer.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use xpp_proto::wire::{Address, Framer, Message, Pcm, SAMPLES_PER_TICK, parse_transfer};

fn pcm_round(c: &mut Criterion) {
    let samples = [0x55u8; 8 * SAMPLES_PER_TICK];
    let chunks = [[0x7Fu8; SAMPLES_PER_TICK]; 32];
    let addrs: [Address; 4] = core::array::from_fn(|u| Address::new(u as u8, 0).unwrap_or_default());
    let mut out = [0u8; 512];
    c.bench_function("pcm_round_4x8_packed", |b| {
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
    c.bench_function("pcm_round_4x8_chunks", |b| {
        b.iter(|| {
            let mut sent = 0usize;
            let mut framer = Framer::new(&mut out);
            let mut round = framer.pcm_round();
            for a in addrs {
                let _ = round.push_chunks(a, black_box(0xFF), black_box(&chunks), |t: &[u8]| {
                    sent += black_box(t).len()
                });
            }
            round.finish(|t: &[u8]| sent += black_box(t).len());
            sent
        });
    });
}

fn decode_transfer(c: &mut Criterion) {
    // Seven 8-line PCM_READ packets: 504 bytes.
    let mut input = [0u8; 512];
    let mut n = 0;
    for unit in 0u8..7 {
        input[n..n + 8].copy_from_slice(&[72, 0x08, 0x12, unit << 4, 0xFF, 0, 0, 0]);
        input[n + 8..n + 72].fill(0x7F);
        n += 72;
    }
    c.bench_function("decode_pcm_transfer_7x8", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for (_, repr) in parse_transfer(black_box(&input[..n])).flatten() {
                if let Message::PcmRead(p) = repr.message {
                    for (_, s) in p.iter() {
                        sum = sum.wrapping_add(u32::from(s[7]));
                    }
                }
            }
            sum
        });
    });
}

criterion_group!(benches, pcm_round, decode_transfer);
criterion_main!(benches);
