//! Proves that a bus core's steady-state tick allocates nothing: 1000 ticks of an FXS + FXO
//! Astribank (two calls up, audio both ways) against the emulated data interface, counting
//! allocations only around the core's own calls (decode + route + tick + OUT + chunk I/O +
//! events + timers); the emulator runs outside the measured windows.
//!
//! It runs without the libtest harness (`harness = false`): the harness's own threads allocate
//! now and then, and a global counter cannot tell their allocations from ours.

mod common;

use std::alloc::System;

use common::{FXS_FXO, Rig};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use xpp_proto::Duration;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    steady_state_ticks_do_not_allocate();
    println!("no_alloc: 1000 steady-state bus-core ticks: 0 heap allocations");
}

fn steady_state_ticks_do_not_allocate() {
    let mut rig = Rig::new(FXS_FXO);
    rig.record_out = false;
    // Two phones off-hook, one FXO line off-hook: PCM both ways on three channels.
    for port in [0, 5] {
        rig.dev.phone_mut(0, port).unwrap().off_hook(rig.now);
    }
    rig.run_ms(1200);
    let _ = rig.core.set_hook(rig.now, 16, xpp_span::HookCmd::OffHook, xpp_span::hook::HookMode::Blocking);
    // Warm up: every periodic poll (VBAT every 500 ms...) has run a few times.
    rig.run_ms(3000);
    rig.events.clear();
    rig.events.shrink_to(0);
    rig.events.reserve(16);

    let mut ins = [[0u8; 512]; 16];
    let mut in_lens = [0usize; 16];
    let mut outs = [[0u8; 512]; 16];
    let mut out_lens = [0usize; 16];
    let mut allocs = 0u64;
    let mut ticks = 0u64;
    let start_ticks = rig.core.stats().ticks;
    let chans = [1u32, 6, 16];
    let mut chunk = [0u8; 8];
    let mut seen = 0u32;
    for ms in 0..1000u64 {
        // The emulator advances one ms (not measured).
        let end = rig.now + Duration::from_millis(1);
        while let Some(t) = rig.dev.poll_timeout().filter(|&t| t <= end) {
            rig.now = t;
            rig.dev.handle_timeout(t);
        }
        rig.now = end;
        let mut n_in = 0;
        while n_in < ins.len() {
            match rig.dev.poll_in(rig.now, &mut ins[n_in]) {
                Some(n) => {
                    in_lens[n_in] = n;
                    n_in += 1;
                }
                None => break,
            }
        }
        // The host core (measured).
        let before = GLOBAL.stats();
        for i in 0..n_in {
            rig.core.handle_in_transfer(rig.now, &ins[i][..in_lens[i]]);
        }
        if rig.core.poll_timeout().is_some_and(|t| t <= rig.now) {
            rig.core.handle_timeout(rig.now);
        }
        let mut n_out = 0;
        while n_out < outs.len() {
            match rig.core.poll_transmit(&mut outs[n_out]) {
                Some(n) => {
                    out_lens[n_out] = n;
                    n_out += 1;
                }
                None => break,
            }
        }
        for &c in &chans {
            rig.core.read_chunk(c, &mut chunk).unwrap();
            seen = seen.wrapping_add(u32::from(chunk[0]));
            rig.core.write_chunk(c, &[(ms as u8) | 1; 8]).unwrap();
        }
        while let Some(e) = rig.core.poll_event() {
            std::hint::black_box(e);
        }
        let after = GLOBAL.stats();
        allocs += (after.allocations + after.reallocations) as u64
            - (before.allocations + before.reallocations) as u64;
        // Back to the emulator (not measured).
        for i in 0..n_out {
            rig.dev.handle_out(rig.now, &outs[i][..out_lens[i]]);
        }
        ticks += 1;
    }
    std::hint::black_box(seen);
    assert_eq!(ticks, 1000);
    assert!(rig.core.stats().ticks - start_ticks >= 999, "the core ticked every ms");
    assert_eq!(allocs, 0, "heap allocations in 1000 steady-state ticks");
}
