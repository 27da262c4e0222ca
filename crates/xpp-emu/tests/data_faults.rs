//! Data-interface faults (MODEL.md FAULT-11, FAULT-12): protocol faults (ERROR_CODE,
//! NULL_REPLY, omitted SYNC_REPLY, skipped PCM, tick jitter, odd-sized IN transfers) and line
//! faults (hook bounce, damaged BRI D-channel frames), seeded and reproducible.

mod data_common;

use data_common::{Host, config};
use xpp_emu::config::{ModuleConfig, Stage};
use xpp_emu::data::g711;
use xpp_emu::fault::{DataFault, ScheduledFault};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::wire::{Message, RegCmd, Repr, parse_transfer};
use xpp_proto::{Duration, Instant};
use xpp_usb::{TransferError, Transport, ep};

const FXS: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), None, None, None];

fn parsed(t: &[u8]) -> Vec<Repr<'_>> {
    parse_transfer(t).map(|r| r.expect("device transfer parses").1).collect()
}

fn is_pcm_round(t: &[u8]) -> bool {
    t.len() >= 4 && t[1] & 0x08 != 0
}

#[test]
fn error_code_null_reply_and_odd_in_transfers_reach_the_host() {
    // A running device; scheduled faults at 5, 6, 7 and 8 ms.
    let mut cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_slots(FXS);
    let ms = Instant::from_millis;
    cfg.core.scheduled_faults = vec![
        ScheduledFault::InTransfer { at: ms(5), len: 0 },
        ScheduledFault::Data { at: ms(6), fault: DataFault::ErrorCode { category: 0x11, errorbits: 0x22 } },
        ScheduledFault::Data { at: ms(7), fault: DataFault::NullReply },
        ScheduledFault::InTransfer { at: ms(8), len: 600 },
    ];
    let emu = Emulator::new(cfg);
    let mut t = emu.transport(0).unwrap();
    // A command first: the ERROR_CODE copies it.
    let ab_request = [0x06, 0x00, 0x07, 0x00, 0x1E, 0x00];
    t.submit(ep::DATA_OUT, ab_request.to_vec()).unwrap();
    for _ in 0..5 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    emu.advance(Duration::from_millis(10));
    let mut done = Vec::new();
    while let Some(c) = t.wait_next_complete(ep::DATA_IN, std::time::Duration::ZERO) {
        done.push(c);
    }
    assert_eq!(done.len(), 5);
    assert_eq!(parsed(&done[0].buffer)[0].message.opcode(), xpp_proto::wire::Opcode::AbDescription);
    // FAULT-12: a zero-length IN transfer completes OK with 0 bytes.
    assert_eq!((done[1].status, done[1].actual_len), (Ok(()), 0));
    // FAULT-12: ERROR_CODE in its own transfer, parseable, with the copy.
    let r = parsed(&done[2].buffer);
    assert_eq!(r.len(), 1);
    let Message::ErrorCode(e) = r[0].message else { panic!("{:?}", r[0]) };
    assert_eq!((e.category, e.errorbits, e.copy), (0x11, 0x22, &ab_request[..]));
    assert!(matches!(parsed(&done[3].buffer)[..], [Repr { message: Message::NullReply, .. }]));
    // Over 512 bytes: more than the host's buffer (USB-13 babble → Fault).
    assert_eq!(done[4].status, Err(TransferError::Fault));
    let applied = emu.with_device(|d| d.data().stats().faults_injected);
    assert_eq!(applied, 2);
}

#[test]
fn omitted_sync_reply_still_changes_sync() {
    let mut h = Host::new(FXS);
    h.d.inject(h.now, DataFault::OmitSyncReply);
    assert!(h.sync(0x01, 0).is_empty());
    assert!(h.d.is_ticking());
    assert_eq!(h.d.stats().sync_replies_omitted, 1);
    // Only the next one.
    assert_eq!(h.sync(0x01, 0).len(), 1);
}

#[test]
fn skipped_ticks_show_as_missing_sync_frames() {
    let mut h = Host::new(FXS);
    h.sync(0x01, 0);
    h.advance_ms(10);
    h.drain();
    h.d.inject(h.now, DataFault::SkipPcm { ticks: 3 });
    let mut rounds = 0;
    for _ in 0..10 {
        h.advance_ms(1);
        rounds += h.drain().iter().filter(|t| is_pcm_round(t) && t[3] & 0x80 != 0).count();
    }
    assert_eq!(rounds, 7);
    assert_eq!(h.d.stats().pcm_rounds_skipped, 3);
}

/// The tick instants after a jitter fault, as offsets from the 1 ms grid.
fn jitter_offsets(seed: u64) -> Vec<i64> {
    let mut h = Host::with(config(FXS).with_seed(seed));
    h.sync(0x01, 0);
    h.advance_ms(5);
    let grid = h.d.poll_timeout().unwrap().total_micros() as i64;
    h.d.inject(h.now, DataFault::TickJitter { max_us: 300, ticks: 20 });
    let mut offsets = Vec::new();
    for i in 0..25i64 {
        let t = h.d.poll_timeout().unwrap();
        offsets.push(t.total_micros() as i64 - (grid + 1000 * i));
        h.now = t;
        h.d.handle_timeout(t);
    }
    offsets
}

#[test]
fn tick_jitter_is_seeded_and_bounded() {
    let a = jitter_offsets(7);
    assert_eq!(a, jitter_offsets(7));
    assert_ne!(a, jitter_offsets(8));
    assert!(a.iter().all(|o| o.abs() <= 300), "{a:?}");
    assert!(a[..20].iter().any(|&o| o != 0));
    assert!(a[20..].iter().all(|&o| o == 0), "back on the grid: {a:?}");
}

/// SIG_CHANGED (time, status) of port 2 after an off-hook with `bounces` bounces.
fn bounce_run(seed: u64, bounces: u8) -> Vec<(u64, u32)> {
    let mut h = Host::with(config(FXS).with_seed(seed));
    h.write(0, 2, 0x40, 0x01);
    h.advance_ms(2);
    h.d.inject(h.now, DataFault::HookBounce { unit: 0, port: 2, bounces });
    let start = h.now;
    h.d.phone_mut(0, 2).unwrap().off_hook(start);
    let mut out = Vec::new();
    for _ in 0..60 {
        h.advance_ms(1);
        for t in h.drain() {
            for r in parsed(&t) {
                if let Message::SigChanged(s) = r.message {
                    out.push(((h.now - start).total_millis(), s.status));
                }
            }
        }
    }
    out
}

#[test]
fn hook_bounce_gives_extra_sig_changed_within_the_window() {
    let a = bounce_run(1, 3);
    // One make plus 3 × (break, make).
    assert_eq!(a.len(), 7, "{a:?}");
    let statuses: Vec<u32> = a.iter().map(|x| x.1 & 0x04).collect();
    assert_eq!(statuses, [4, 0, 4, 0, 4, 0, 4]);
    // Each contact state lasts 1–5 ms: all within 6 × 5 ms of the edge.
    assert!(a.last().unwrap().0 <= 2 + 30, "{a:?}");
    assert_eq!(a, bounce_run(1, 3));
    assert_ne!(a, bounce_run(2, 3));
    // No bounce configured: one SIG_CHANGED.
    assert_eq!(bounce_run(1, 0).len(), 1);
}

#[test]
fn damaged_bri_dchannel_frames() {
    let mut h = Host::new([Some(ModuleConfig::Bri { ports: 1, nt_mask: 0 }), None, None, None]);
    h.write(0, 0, 0x30, 0x00);
    h.write(0, 0, 0x30, 0x60);
    h.advance_ms(12);
    let frame = [0x02, 0x01, 0x7F];
    let fcs = g711::fcs16(&frame);
    let now = h.now;
    h.d.inject(now, DataFault::BriBadFrame { unit: 0, port: 0, abort: true });
    h.d.inject(now, DataFault::BriBadFrame { unit: 0, port: 0, abort: false });
    let far = h.d.bri_far_end_mut(0, 0).unwrap();
    for _ in 0..3 {
        far.send_frame(now, &frame);
    }
    let mut got = Vec::new();
    for t in h.advance_cmds(5) {
        let mut bytes = Vec::new();
        for r in parsed(&t) {
            if let Message::RegisterReply(RegCmd::Multibyte(m)) = r.message {
                bytes.extend_from_slice(m.data());
            }
        }
        got.push(bytes);
    }
    let with = |fcs: u16, status| [&frame[..], &fcs.to_le_bytes(), &[status]].concat();
    assert_eq!(got, vec![with(fcs, 0xFF), with(!fcs, 0x01), with(fcs, 0x00)]);
}
