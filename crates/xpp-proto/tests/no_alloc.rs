//! Proves that the data-interface hot path allocates nothing: decoding a full transfer and
//! building a PCM_WRITE round run under a counting global allocator.
//!
//! It runs without the libtest harness (`harness = false`): the harness's own threads allocate
//! now and then, and a global counter cannot tell their allocations from ours.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xpp_proto::wire::{Address, Framer, Message, Pcm, SAMPLES_PER_TICK, parse_transfer};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A 512-byte-class PCM_READ transfer: four FXS XPDs with 8 lines each, hand-assembled.
fn transfer(buf: &mut [u8; 512]) -> usize {
    let mut pos = 0;
    for unit in 0u8..4 {
        let len = 8 + 8 * 8;
        buf[pos..pos + 8].copy_from_slice(&[
            len as u8,
            0x08,
            0x12,
            (unit << 4) | if unit == 0 { 0x80 } else { 0 },
            0xFF,
            0,
            0,
            0,
        ]);
        buf[pos + 8..pos + len].fill(0x7F);
        pos += len;
    }
    pos
}

fn main() {
    hot_path_does_not_allocate();
    println!("no_alloc: decode + PCM_WRITE round, 1000 iterations: 0 heap allocations");
}

fn hot_path_does_not_allocate() {
    let mut input = [0u8; 512];
    let n = transfer(&mut input);
    let samples = [0x55u8; 8 * SAMPLES_PER_TICK];
    let chunks = [[0x7Fu8; SAMPLES_PER_TICK]; 32];
    let mut out = [0u8; 512];

    let region = Region::new(GLOBAL);
    let mut packets = 0usize;
    let mut sample_sum = 0u32;
    let mut sent = 0usize;
    for _ in 0..1000 {
        // Receive: deframe and decode every packet, touch every sample.
        for item in parse_transfer(&input[..n]) {
            let Ok((_, repr)) = item else { panic!("valid transfer") };
            if let Message::PcmRead(pcm) = repr.message {
                for (_, s) in pcm.iter() {
                    sample_sum = sample_sum.wrapping_add(u32::from(s[0]));
                }
            }
            packets += 1;
        }
        // Transmit: one PCM_WRITE round of 4 XPDs x 8 lines.
        let mut framer = Framer::new(&mut out);
        let mut round = framer.pcm_round();
        let pcm = Pcm::new(0xFF, &samples).expect("8 lines");
        for unit in 0..3 {
            round.push(Address::new(unit, 0).expect("unit"), &pcm, |t: &[u8]| sent += t.len()).expect("push");
        }
        round
            .push_chunks(Address::new(3, 0).expect("unit"), 0xFF, &chunks, |t: &[u8]| sent += t.len())
            .expect("push");
        round.finish(|t: &[u8]| sent += t.len());
    }
    let stats = region.change();

    assert_eq!(packets, 4000);
    assert_eq!(sample_sum, 4000 * 8 * 0x7F);
    assert_eq!(sent, 1000 * 4 * 72);
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
    assert_eq!(stats.bytes_allocated, 0, "{stats:?}");
}
