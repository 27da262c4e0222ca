//! Proves that a bus core's steady-state tick allocates nothing: 1000 ticks of an FXS + FXO
//! Astribank (two calls up, audio both ways), and 1000 ticks of an FXS + E1 PRI Astribank with
//! its D-channel carrying Q.921 frames both ways (soft HDLC, frames written and read by the
//! PBX) and a bearer channel's audio, against the emulated data interface, counting
//! allocations only around the core's own calls (decode + route + tick + OUT + chunk and frame
//! I/O + events + timers); the emulator runs outside the measured windows.
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
    a_pri_span_with_an_active_d_channel_does_not_allocate();
    println!("no_alloc: 1000 ticks of an E1 span with Q.921 on its D-channel: 0 heap allocations");
}

/// An FXS + E1 device, the far end's Q.921 peer answering: every 20 ms the PBX sends an
/// RR poll on the D-channel and reads the peer's answer.
fn a_pri_span_with_an_active_d_channel_does_not_allocate() {
    use xpp_emu::config::ModuleConfig;
    use xpp_emu::data::DataConfig;
    use xpp_proto::wire::pri::PriProtocol;
    const DCHAN: u32 = 30;
    let slots = [
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }),
        None,
        None,
    ];
    let mut rig = Rig::with(slots, DataConfig::default(), 0, &mut xpp_span::xbus::Numbering::new());
    rig.dev.pri_far_end_mut(1, 0).unwrap().set_q921(true);
    // SABME: the link is up before the measured window.
    rig.core.write_frame(DCHAN, &[0x02, 0x01, 0x7F, 0, 0]).unwrap();
    rig.run_ms(50);
    let mut buf = [0u8; 64];
    while rig.core.read_frame(DCHAN, &mut buf).unwrap().is_some() {}
    let mut frames = 0u32;
    let allocs = measure(&mut rig, &[15, 16], |core, ms| {
        if ms % 20 == 0 {
            // RR, N(R) = 0, P = 1 (a poll the peer answers with RR, F = 1).
            core.write_frame(DCHAN, &[0x02, 0x01, 0x01, 0x01, 0, 0]).unwrap();
        }
        while let Some(n) = core.read_frame(DCHAN, &mut buf).unwrap() {
            frames += 1;
            std::hint::black_box(&buf[..n]);
        }
    });
    assert!(frames >= 45, "the peer answered the polls ({frames} frames)");
    assert_eq!(allocs, 0, "heap allocations in 1000 ticks of an E1 span with an active D-channel");
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
    let allocs = measure(&mut rig, &[1, 6, 16], |_, _| {});
    assert_eq!(allocs, 0, "heap allocations in 1000 steady-state ticks");
}

/// 1000 ticks after a 3 s warm-up; the allocations inside the core's calls, the PBX's chunk
/// I/O on `chans` and `pbx` (run each ms) included.
fn measure(rig: &mut Rig, chans: &[u32], mut pbx: impl FnMut(&mut xpp_span::xbus::XbusCore, u64)) -> u64 {
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
        for &c in chans {
            rig.core.read_chunk(c, &mut chunk).unwrap();
            seen = seen.wrapping_add(u32::from(chunk[0]));
            rig.core.write_chunk(c, &[(ms as u8) | 1; 8]).unwrap();
        }
        pbx(&mut rig.core, ms);
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
    allocs
}
