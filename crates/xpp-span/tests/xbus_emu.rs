//! The span run-time core against the emulated Astribank (virtual clock, deterministic):
//! hook and ring events with their timings, an end-to-end call through the patch panel,
//! PCM_WRITE masks, removal and shutdown, two devices under one sync election.

mod common;

use common::{FXS_FXO, Rig};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{DataConfig, PortRef};
use xpp_proto::Instant;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{Address, SyncMode};
use xpp_span::g711::{self, ALAW_TO_ULAW, ULAW_TO_ALAW};
use xpp_span::hook::HookMode;
use xpp_span::span::ChanKind;
use xpp_span::sync::SyncElection;
use xpp_span::xbus::{ChanError, Numbering, XbusEvent};
use xpp_span::{Alarms, Event, HookCmd, Law, Sig, SpanType};

/// FXS on unit 0 (8 ports + 6 digital I/O = channels 1..14), FXO on unit 1 (15..22).
const FXS1: u32 = 1;
const FXO1: u32 = 15;

#[test]
fn numbering_names_and_fields() {
    let rig = Rig::new(FXS_FXO);
    let spans = rig.core.spans();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        (spans[0].spanno(), spans[0].name(), spans[0].basechan(), spans[0].channels()),
        (1, "XBUS-00/XPD-00", 1, 14)
    );
    assert_eq!(
        (spans[1].spanno(), spans[1].name(), spans[1].basechan(), spans[1].channels()),
        (2, "XBUS-00/XPD-10", 15, 8)
    );
    assert_eq!(spans[0].spantype(), SpanType::AnalogFxs);
    assert_eq!(spans[1].spantype(), SpanType::AnalogFxo);
    let c = rig.core.channel(FXO1).unwrap();
    assert_eq!((c.name(), c.chanpos(), c.spanno(), c.chan().sig()), ("XPP_FXO/00/10/0", 1, 2, Sig::Fxsks));
    assert_eq!(rig.core.channel(9).unwrap().kind(), ChanKind::DigitalOutput(0));
    assert_eq!(rig.core.channel(9).unwrap().chan().sig(), Sig::None);
    assert_eq!(rig.core.channel(23).map(|c| c.channo()), None);
}

#[test]
fn two_buses_number_consecutively_and_pri_bri_layout() {
    let mut numbering = Numbering::new();
    let a = Rig::with(FXS_FXO, DataConfig::default(), 0, &mut numbering);
    let slots = [
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }),
        Some(ModuleConfig::BRI),
        None,
    ];
    let b = Rig::with(slots, DataConfig::default(), 1, &mut numbering);
    assert_eq!(a.core.spans().last().unwrap().spanno(), 2);
    let s: Vec<_> = b
        .core
        .spans()
        .iter()
        .map(|s| (s.spanno(), s.name().to_owned(), s.basechan(), s.channels(), s.dchan()))
        .collect();
    assert_eq!(
        s,
        [
            (3, "XBUS-01/XPD-00".into(), 23, 14, None),
            (4, "XBUS-01/XPD-10".into(), 37, 31, Some(16)),
            (5, "XBUS-01/XPD-20".into(), 68, 3, Some(3)),
            (6, "XBUS-01/XPD-21".into(), 71, 3, Some(3)),
            (7, "XBUS-01/XPD-22".into(), 74, 3, Some(3)),
            (8, "XBUS-01/XPD-23".into(), 77, 3, Some(3)),
        ]
    );
    assert_eq!(b.core.span(4).unwrap().spantype(), SpanType::DigitalE1);
    assert_eq!(b.core.span(5).unwrap().spantype(), SpanType::BriTe);
    assert_eq!(numbering.next_chan(), 80);
}

#[test]
fn fxs_off_hook_and_hang_up_events_with_timings() {
    let mut rig = Rig::new(FXS_FXO);
    let t0 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().off_hook(t0);
    rig.run_ms(100);
    let ev = rig.chan_events(FXS1, t0);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].1, Event::RINGOFFHOOK);
    assert!(ev[0].0 <= 3, "off-hook reported within 3 ms, took {}", ev[0].0);
    let t1 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().on_hook(t1);
    rig.run_ms(1400);
    let ev = rig.chan_events(FXS1, t1);
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [Event::ONHOOK]);
    // ONHOOK only after rxflashtime (1250 ms) without off-hook: a flash would not hang up.
    assert!((1250..=1254).contains(&ev[0].0), "ONHOOK at {} ms", ev[0].0);
    // A short flash (600 ms) is WINKFLASH, not a hang-up.
    rig.dev.phone_mut(0, 0).unwrap().off_hook(rig.now);
    rig.run_ms(50);
    let t2 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().flash(t2);
    rig.run_ms(1500);
    assert_eq!(rig.chan_events(FXS1, t2).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::WINKFLASH]);
}

#[test]
fn set_hook_ring_rings_the_phone_with_the_default_cadence() {
    let mut rig = Rig::new(FXS_FXO);
    let t0 = rig.now;
    let _ = rig.core.set_hook(t0, FXS1, HookCmd::Ring, HookMode::NonBlocking).unwrap();
    let mut ringing = Vec::new();
    let mut was = false;
    for ms in 0..7000u64 {
        rig.step();
        let is = rig.dev.phone(0, 0).unwrap().is_ringing();
        if is != was {
            ringing.push((ms, is));
            was = is;
        }
    }
    // Default cadence [starttime 2000, 4000] for fxoks: on at 0, off at 2000, on at 6000.
    // Ring on takes up to ~35 ms: the type-1 ring-generator table (9 writes, 4 of them
    // indirect at 2 ms each), battery and line feed go through the paced queue; ring off is one
    // line-feed write.
    assert_eq!(ringing.len(), 3, "{ringing:?}");
    for ((ms, on), (want_ms, want_on, slack)) in
        ringing.iter().zip([(0, true, 40), (2000, false, 4), (6000, true, 40)])
    {
        assert_eq!(*on, want_on);
        assert!(*ms >= want_ms && *ms <= want_ms + slack, "{ringing:?}");
    }
    let ev: Vec<_> = rig.chan_events(FXS1, t0).iter().map(|e| e.1).collect();
    assert_eq!(ev, [Event::RINGERON, Event::RINGEROFF, Event::RINGERON]);
    // The phone answers: ringing stops and the PBX sees RINGOFFHOOK.
    let t1 = rig.now;
    rig.dev.phone_mut(0, 0).unwrap().off_hook(t1);
    rig.run_ms(20);
    assert!(!rig.dev.phone(0, 0).unwrap().is_ringing());
    assert_eq!(rig.chan_events(FXS1, t1).iter().map(|e| e.1).collect::<Vec<_>>(), [Event::RINGOFFHOOK]);
}

#[test]
fn fxo_ring_from_the_line() {
    let mut rig = Rig::new(FXS_FXO);
    rig.run_ms(1200); // VBAT polls see battery.
    assert_eq!(rig.core.channel(FXO1).unwrap().fxo_line().unwrap().battery(), Some(true));
    let t0 = rig.now;
    rig.dev.pstn_mut(1, 0).unwrap().ring(t0);
    rig.run_ms(3000);
    let ev = rig.chan_events(FXO1, t0);
    assert_eq!(ev.iter().map(|e| e.1).collect::<Vec<_>>(), [Event::RINGBEGIN, Event::RINGOFFHOOK], "{ev:?}");
    // Ring detect debounce 50 ms; ring end + 50 ms debounce + 50 ms ring trailer.
    assert!((50..=53).contains(&ev[0].0), "{ev:?}");
    assert!((2100..=2104).contains(&ev[1].0), "{ev:?}");
    // The PBX answers; the line goes off-hook and the PSTN side connects.
    let _ = rig.core.set_hook(rig.now, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(20);
    assert_eq!(rig.dev.pstn(1, 0).unwrap().state(), xpp_emu::data::CallState::Connected);
}

/// Writes `pattern` on `from` every tick for `ticks` ticks (silence otherwise) and returns
/// the tick at which `to` first read it.
fn latency(rig: &mut Rig, from: u32, to: u32, pattern: [u8; 8], ticks: usize) -> Option<usize> {
    let mut chunk = [0u8; 8];
    for tick in 0..ticks {
        rig.core.write_chunk(from, &pattern).unwrap();
        rig.step();
        rig.core.read_chunk(to, &mut chunk).unwrap();
        if chunk == pattern {
            return Some(tick);
        }
    }
    None
}

#[test]
fn end_to_end_call_through_the_patch_panel() {
    let mut rig = Rig::new(FXS_FXO);
    rig.dev.patch(PortRef::new(0, 0), PortRef::new(1, 0)).unwrap();
    rig.run_ms(1200);
    // The PBX rings the FXS port; the patched FXO port sees the ring.
    let t0 = rig.now;
    let _ = rig.core.set_hook(t0, FXS1, HookCmd::Ring, HookMode::NonBlocking).unwrap();
    rig.run_ms(200);
    assert_eq!(rig.chan_events(FXO1, t0).first().map(|e| e.1), Some(Event::RINGBEGIN));
    // The PBX answers on the FXO channel: the FXS side goes off-hook, ringing stops.
    let t1 = rig.now;
    let _ = rig.core.set_hook(t1, FXO1, HookCmd::OffHook, HookMode::Blocking).unwrap();
    rig.run_ms(100);
    assert!(rig.chan_events(FXS1, t1).iter().any(|e| e.1 == Event::RINGOFFHOOK));
    assert!(rig.core.channel(FXS1).unwrap().fxs_line().unwrap().wants_pcm());
    assert!(rig.core.channel(FXO1).unwrap().fxo_line().unwrap().wants_pcm());
    // Audio both ways, within a fixed number of ticks: written before tick n, sent in tick
    // n's PCM_WRITE, looped by the device's next ms, read after tick n + 1.
    let a = latency(&mut rig, FXS1, FXO1, [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x01], 10);
    let b = latency(&mut rig, FXO1, FXS1, [0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98], 10);
    assert_eq!((a, b), (Some(1), Some(1)));
    // Hang up on both sides.
    let t2 = rig.now;
    let _ = rig.core.set_hook(t2, FXO1, HookCmd::OnHook, HookMode::Blocking).unwrap();
    rig.run_ms(1400);
    assert!(rig.chan_events(FXS1, t2).iter().any(|e| e.1 == Event::ONHOOK));
}

#[test]
fn channel_law_and_linear_chunks_are_converted_to_the_span_law() {
    let mut rig = Rig::new(FXS_FXO);
    let ch = FXS1 + 3;
    rig.dev.phone_mut(0, 3).unwrap().off_hook(rig.now);
    rig.run_ms(5);
    assert_eq!(rig.core.channel(ch).unwrap().law(), Law::Mulaw, "analog spans are mu-law");
    // An A-law channel: what it writes goes out in mu-law.
    rig.core.set_law(ch, Law::Alaw).unwrap();
    rig.core.write_chunk(ch, &[0xD5, 0x55, 0xAA, 0x2A, 0xD4, 0x54, 0xFA, 0x7A]).unwrap();
    let t1 = rig.now;
    rig.step();
    let want: Vec<u8> = [0xD5u8, 0x55, 0xAA, 0x2A, 0xD4, 0x54, 0xFA, 0x7A]
        .iter()
        .map(|&a| ALAW_TO_ULAW[usize::from(a)])
        .collect();
    assert_eq!(&pcm_out(&rig, t1)[0][8..], &want[..]);
    assert_eq!(&want[..4], &[0xFE, 0x7E, 0x80, 0x00], "+8, -8, max, min");
    // What it reads is the received mu-law converted to A-law.
    let (mut a, mut m) = ([0u8; 8], [0u8; 8]);
    rig.core.read_chunk(ch, &mut a).unwrap();
    rig.core.set_law(ch, Law::Default).unwrap();
    assert_eq!(rig.core.channel(ch).unwrap().law(), Law::Mulaw, "default = the span's law");
    rig.core.read_chunk(ch, &mut m).unwrap();
    assert_eq!(a, m.map(|u| ULAW_TO_ALAW[usize::from(u)]));
    // Linear I/O in the span's law, whatever the channel's law.
    rig.core.set_law(ch, Law::Alaw).unwrap();
    let samples = [0i16, 1000, -1000, 32767, -32768, 8, -8, 20000];
    rig.core.write_linear(ch, &samples).unwrap();
    let t2 = rig.now;
    rig.step();
    assert_eq!(&pcm_out(&rig, t2)[0][8..], &samples.map(g711::linear_to_ulaw)[..]);
    let mut lin = [0i16; 8];
    rig.core.read_linear(ch, &mut lin).unwrap();
    rig.core.read_chunk(ch, &mut a).unwrap();
    assert_eq!(lin.map(g711::linear_to_alaw), a, "linear and A-law reads agree");
    assert_eq!(rig.core.set_law(ch, Law::Unknown(7)), Err(ChanError::BadLaw(7)));
}

/// The PCM packets of the OUT transfers recorded since `since`: (transfer index, bytes).
fn pcm_out(rig: &Rig, since: Instant) -> Vec<Vec<u8>> {
    rig.out.iter().filter(|(t, b)| *t > since && b[1] & 0x08 != 0).map(|(_, b)| b.clone()).collect()
}

#[test]
fn pcm_write_masks() {
    let mut rig = Rig::new(FXS_FXO);
    let t0 = rig.now;
    rig.run_ms(10);
    // All on-hook: unit 0 sends the dummy line 0 with silence, the FXO unit nothing.
    let frames = pcm_out(&rig, t0);
    assert!(frames.len() >= 9);
    for f in &frames {
        let mut want = vec![0x10, 0x08, 0x11, 0x80, 0x01, 0x00, 0x00, 0x00];
        want.extend([0x7F; 8]);
        assert_eq!(f, &want);
    }
    // Phone 3 off-hook: line 3 replaces the dummy line; the PBX's audio goes out.
    rig.dev.phone_mut(0, 3).unwrap().off_hook(rig.now);
    rig.run_ms(5);
    rig.core.write_chunk(FXS1 + 3, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let t1 = rig.now;
    rig.step();
    let f = &pcm_out(&rig, t1)[0];
    assert_eq!(f, &[0x10, 0x08, 0x11, 0x80, 0x08, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(rig.core.pcm_lines_sent(Address::ZERO), Some(0x08));
    // Not written again: silence next tick.
    let t2 = rig.now;
    rig.step();
    assert_eq!(&pcm_out(&rig, t2)[0][8..], &[0x7F; 8]);
}

#[test]
fn pcm_write_e1_form() {
    let slots = [Some(ModuleConfig::FXS), Some(ModuleConfig::PRI_E1), None, None];
    let mut rig = Rig::new(slots);
    let t0 = rig.now;
    rig.step();
    let f = &pcm_out(&rig, t0)[0];
    // Dummy FXS packet (sync) then the E1 span: lines 0xFFFFFFFE, 256 bytes, A-law silence,
    // except the D-channel (timeslot 16, the 16th chunk): its soft HDLC sends idle flags.
    assert_eq!(f.len(), 16 + 256);
    assert_eq!(&f[16..24], &[0x00, 0x09, 0x11, 0x10, 0xFE, 0xFF, 0xFF, 0xFF]);
    let chunks: Vec<&[u8]> = f[24..].chunks(8).collect();
    for (i, c) in chunks.iter().enumerate() {
        let want = if i == 15 { 0x7E } else { 0xD5 };
        assert!(c.iter().all(|&b| b == want), "chunk {i}: {c:02x?}");
    }
    // PCM read on the E1 span reaches a bearer channel (timeslot 1 = channel 15).
    let pri = rig.core.span(2).unwrap();
    assert_eq!((pri.basechan(), pri.channels(), pri.dchan()), (15, 31, Some(16)));
    let mut c = [0u8; 8];
    rig.core.read_chunk(15, &mut c).unwrap();
}

#[test]
fn span_alarms_reach_channels() {
    let slots = [Some(ModuleConfig::FXS), Some(ModuleConfig::PRI_E1), None, None];
    let mut rig = Rig::new(slots);
    assert!(rig.core.set_span_alarms(2, Alarms::RED));
    for ch in 15..=45 {
        assert_eq!(rig.core.poll_chan_event(ch).unwrap(), Event::ALARM, "GETEVENT");
        assert_eq!(rig.core.channel(ch).unwrap().chan().alarms(), Alarms::RED);
    }
    assert_eq!(rig.core.poll_chan_event(1).unwrap(), Event::NONE, "other span untouched");
    rig.drain_events();
    assert!(rig.events.iter().any(|(_, e)| *e == XbusEvent::SpanAlarms { spanno: 2, alarms: Alarms::RED }));
    // Inside the alarmed state: no event; leaving it: NOALARM through poll_event.
    assert!(rig.core.set_span_alarms(2, Alarms::RED | Alarms::YELLOW));
    assert!(rig.core.set_span_alarms(2, Alarms::EMPTY));
    rig.events.clear();
    rig.drain_events();
    let noalarm =
        rig.events.iter().filter(|(_, e)| matches!(e, XbusEvent::Chan { event: Event::NOALARM, .. })).count();
    assert_eq!(noalarm, 31);
}

#[test]
fn surprise_removal_mid_call() {
    let mut rig = Rig::new(FXS_FXO);
    rig.dev.phone_mut(0, 0).unwrap().off_hook(rig.now);
    rig.run_ms(50);
    rig.events.clear();
    rig.core.handle_removed();
    rig.drain_events();
    let n = rig.core.channels().len() as u32;
    let removed =
        rig.events.iter().filter(|(_, e)| matches!(e, XbusEvent::Chan { event: Event::REMOVED, .. })).count();
    assert_eq!(removed, n as usize, "REMOVED on every channel");
    assert!(rig.events.iter().any(|(_, e)| *e == XbusEvent::Removed));
    for ch in 1..=n {
        assert_eq!(rig.core.poll_chan_event(ch).unwrap(), Event::REMOVED, "sticky");
        assert_eq!(rig.core.channel(ch).unwrap().chan().alarms(), Alarms::NOTOPEN);
    }
    assert_eq!(rig.core.write_chunk(1, &[0; 8]), Err(ChanError::Removed));
    // Nothing more is sent or waited for; device input is ignored.
    let mut buf = [0u8; 512];
    assert_eq!(rig.core.poll_transmit(&mut buf), None);
    assert_eq!(rig.core.poll_timeout(), None);
    rig.core.handle_in_transfer(rig.now, &[0x08, 0x08, 0x12, 0x80, 0, 0, 0, 0]);
    assert_eq!(rig.core.poll_transmit(&mut buf), None);
}

#[test]
fn orderly_shutdown_stops_the_device() {
    let mut rig = Rig::new(FXS_FXO);
    rig.core.shutdown();
    let mut buf = [0u8; 512];
    let n = rig.core.poll_transmit(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0x06, 0x00, 0x19, 0x00, 0x00, 0x00]);
    assert_eq!(rig.core.poll_transmit(&mut buf), None);
    rig.dev.handle_out(rig.now, &buf[..n]);
    rig.run_ms(3);
    assert!(!rig.dev.is_ticking());
    assert_eq!(rig.core.poll_chan_event(1).unwrap(), Event::REMOVED);
}

#[test]
fn malformed_input_is_counted_not_fatal() {
    let mut rig = Rig::new(FXS_FXO);
    let now = rig.now;
    for bad in [
        &[][..],
        &[0x01],
        &[0x03, 0x00, 0x12, 0x80],
        &[0x10, 0x08, 0x12, 0x80, 0x01, 0, 0, 0],
        &[0x0C, 0x00, 0x06, 0x70, 1, 0, 0, 0, 1, 0, 0, 0],
    ] {
        rig.core.handle_in_transfer(now, bad);
    }
    let s = rig.core.stats();
    assert!(s.rx_errors >= 3 && s.rx_rejected >= 1, "{s:?}");
    rig.run_ms(10);
    assert!(rig.core.stats().ticks > 10);
}

#[test]
fn two_devices_master_election_pll_and_re_election() {
    let mut numbering = Numbering::new();
    let mut a = Rig::with(FXS_FXO, DataConfig::default(), 0, &mut numbering);
    let mut slow = DataConfig::default();
    slow.crystal_ppm = 40;
    let mut b = Rig::with(FXS_FXO, slow, 1, &mut numbering);
    a.record_out = false;
    b.record_out = false;
    let mut election = SyncElection::new();
    let cands = [a.core.sync_candidate(), b.core.sync_candidate()];
    assert_eq!(election.update(&cands), Some(Some(0)));
    a.core.apply_election(true);
    b.core.apply_election(false);
    for _ in 0..30_000 {
        a.step();
        b.step();
        b.core.set_sync_reference(a.core.tick_sample());
    }
    assert_eq!(a.core.sync_state().mode, SyncMode::Ab);
    assert_eq!(b.core.sync_state().mode, SyncMode::Pll);
    assert!(b.core.stats().drift_commands > 0);
    // 40 ppm slow needs about -8 steps of 5 ppm.
    let drift = b.dev.sync_state().drift;
    assert!((-12..=-4).contains(&drift), "drift {drift}");
    assert!(a.core.stats().drift_commands == 0, "the master is never trimmed");
    // The master is unplugged: bus 1 is elected and becomes AB.
    a.core.handle_removed();
    let cands = [a.core.sync_candidate(), b.core.sync_candidate()];
    assert_eq!(election.update(&cands), Some(Some(1)));
    b.core.apply_election(true);
    b.core.set_sync_reference(None);
    b.run_ms(10);
    assert_eq!(b.core.sync_state().mode, SyncMode::Ab);
    assert_eq!(b.dev.sync_state().mode, SyncMode::Ab);
}
