//! Proves that the D-channel HDLC tick path allocates nothing: after construction, sending
//! frames, filling ticks and deframing them (frames, bad FCS, aborts) run under a counting
//! global allocator without one heap allocation.
//!
//! It runs without the libtest harness (`harness = false`): the harness's own threads allocate
//! now and then, and a global counter cannot tell their allocations from ours.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xpp_chan::hdlc::{HdlcRx, HdlcTx, RxEvent};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let mut tx = HdlcTx::new(260, true);
    let mut rx = HdlcRx::new(260, true);
    let mut raw_tx = HdlcTx::new(260, false);
    let frame = [0x42u8; 40];
    let mut chunk = [0u8; 8];
    let (mut frames, mut errors) = (0u32, 0u32);

    let region = Region::new(GLOBAL);
    for tick in 0..10_000u32 {
        if tx.is_idle() {
            tx.send(&frame).unwrap();
        }
        if tick % 97 == 5 {
            tx.abort();
        }
        tx.fill(&mut chunk);
        rx.feed(&chunk, |ev| match ev {
            RxEvent::Frame(_) => frames += 1,
            _ => errors += 1,
        });
        if tick % 50 == 0 {
            // a raw-mode frame: its "FCS" is wrong for the FCS receiver
            if raw_tx.is_idle() {
                raw_tx.send(&frame).unwrap();
            }
            for _ in 0..8 {
                raw_tx.fill(&mut chunk);
                rx.feed(&chunk, |ev| match ev {
                    RxEvent::Frame(_) => frames += 1,
                    _ => errors += 1,
                });
            }
        }
    }
    let stats = region.change();
    assert!(frames > 1000, "frames {frames}");
    assert!(errors > 100, "errors {errors}");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
    println!("hdlc_no_alloc: 10000 ticks, {frames} frames, {errors} errors: 0 heap allocations");
}
