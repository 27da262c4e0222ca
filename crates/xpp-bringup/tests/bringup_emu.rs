//! Bring-up on the emulator's virtual clock, with the real images of the shared firmware
//! folder: every start stage, several module mixes, corrupted images, a silent device.

#[path = "../../xpp-proto/tests/support/mod.rs"]
mod support;

mod common;

use std::sync::Arc;

use xpp_bringup::{
    Action, BringUpConfig, BringUpError, CardKind, Event, Failure, FirmwareSet, Outcome, Phase, Ready,
    RunOptions, bring_up, read_firmware_dir,
};
use xpp_emu::config::{FxsChip, ModuleConfig, Stage as EmuStage};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::firmware::{RecordType, write_record};
use xpp_proto::mgmt::{AckStatus, MgmtError, Op, Request};
use xpp_proto::wire::SyncMode;
use xpp_proto::{Duration, Instant};
use xpp_usb::ep;

use common::{Log, Recording, Sent};

struct Run {
    emu: Emulator,
    outcome: Result<Ready<Recording>, BringUpError>,
    events: Vec<Event>,
    log: Vec<Sent>,
}

fn firmware() -> FirmwareSet {
    read_firmware_dir(&support::firmware_dir()).expect("firmware folder readable")
}

fn run(cfg: DeviceConfig, bcfg: BringUpConfig, fw: FirmwareSet) -> Run {
    run_bounded(cfg, bcfg, fw, usize::MAX)
}

/// [`run`] on a transport that keeps at most `bound` transfers in flight per endpoint.
fn run_bounded(cfg: DeviceConfig, bcfg: BringUpConfig, fw: FirmwareSet, bound: usize) -> Run {
    run_on(cfg, bcfg, fw, bound, Duration::ZERO)
}

/// [`run_bounded`] where each data OUT submit takes `out_cost` of virtual time.
fn run_on(cfg: DeviceConfig, bcfg: BringUpConfig, fw: FirmwareSet, bound: usize, out_cost: Duration) -> Run {
    let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
    let log: Log = Arc::default();
    let open = common::opener(&emu, 0, &log, bound, out_cost);
    let mut events = Vec::new();
    let clock = emu.clone();
    let outcome = bring_up(open, &clock, bcfg, fw, RunOptions::default(), |e| events.push(e.clone()));
    let log = log.lock().unwrap().clone();
    Run { emu, outcome, events, log }
}

fn phases(r: &Ready<Recording>) -> Vec<Phase> {
    r.result.timeline.iter().map(|t| t.phase).collect()
}

fn print_timeline(title: &str, r: &Ready<Recording>) {
    println!("== {title}");
    for t in &r.result.timeline {
        println!("{t}");
    }
}

/// The device ticks in sync mode AB.
fn assert_ticking_ab(emu: &Emulator) {
    emu.advance(Duration::from_millis(5));
    emu.with_device(|d| {
        assert!(d.data().is_ticking(), "device not ticking");
        assert_eq!(d.data().sync_state().mode, SyncMode::Ab);
    });
}

/// Timeline invariants: contiguous, in order, all Done or Skipped.
fn assert_timeline_sane(r: &Ready<Recording>) {
    let tl = &r.result.timeline;
    for w in tl.windows(2) {
        assert_eq!(w[0].start + w[0].duration, w[1].start, "{:?} -> {:?}", w[0], w[1]);
    }
    assert!(tl.iter().all(|t| t.outcome != Outcome::Failed));
    assert_eq!(tl.last().map(|t| t.phase), Some(Phase::Ready));
}

const TAIL: [Phase; 6] = [
    Phase::Renum,
    Phase::Descriptors,
    Phase::XbusReset,
    Phase::CardInit { unit: 0 },
    Phase::CardInit { unit: 1 },
    Phase::SyncSource,
];

#[test]
fn cold_fxs_fxo() {
    let fw = firmware();
    let r = run(DeviceConfig::default(), BringUpConfig::default(), fw);
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("cold, FXS + FXO", &ready);
    let mut want = vec![Phase::Detect, Phase::UsbFirmware, Phase::WaitRenum, Phase::Fpga, Phase::Pic];
    want.extend(TAIL);
    want.push(Phase::Ready);
    assert_eq!(phases(&ready), want);
    assert_timeline_sane(&ready);
    let res = &ready.result;
    assert_eq!(res.initial_stage, xpp_usb::discovery::Stage::Cold);
    assert_eq!(res.device.product_id, 0x1162);
    assert_eq!(res.sync.mode, SyncMode::Ab);
    assert_eq!(res.units.len(), 2);
    let (fxs, fxo) = (&res.units[0], &res.units[1]);
    assert_eq!((fxs.unit, fxs.kind, fxs.present), (0, CardKind::FxsType1, 0xFF));
    assert_eq!(fxs.chip_ids, [Some(0x05); 8]);
    assert_eq!((fxo.unit, fxo.kind, fxo.present), (1, CardKind::Fxo, 0xFF));
    assert_eq!(res.cards.len(), 5);
    assert!(res.status.is_some_and(|s| !s.fpga_loaded()));
    // PIC images for types 1 and 2 went to the device.
    assert!(r.events.iter().any(|e| matches!(e, Event::Progress { phase: Phase::Pic, .. })));
    // FX2 download before anything on the bulk endpoints; the FPGA load is 1061 segments + 2.
    let mpp_out = r.log.iter().filter(|s| matches!(s, Sent::Bulk(_, e, _) if *e == ep::MGMT_OUT)).count();
    assert!(mpp_out > 1061, "{mpp_out}");
    // Pacing: register commands at least 1 ms apart once the card init runs.
    let regs: Vec<Instant> = r
        .log
        .iter()
        .filter_map(|s| match s {
            Sent::Bulk(t, e, b) if *e == ep::DATA_OUT && b.get(2) == Some(&0x0F) => Some(*t),
            _ => None,
        })
        .collect();
    assert!(regs.len() > 200, "{}", regs.len());
    assert!(regs.windows(2).all(|w| w[1] - w[0] >= Duration::from_millis(1)));
    assert_ticking_ab(&r.emu);
}

/// Found in the kernel USB stack test (`rusb.driver-cold`): the PIC images go out as bursts of
/// hundreds of packets before each END; a backend bounding its transfers in flight (rusb: 128)
/// refused the 129th with `InvalidArgument` and bring-up failed in phase Pic. The driver now
/// reaps finished OUT transfers before it goes past its own, smaller bound.
#[test]
fn cold_on_a_transport_that_bounds_transfers_in_flight() {
    let fw = firmware();
    let r = run_bounded(DeviceConfig::default(), BringUpConfig::default(), fw, 128);
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_timeline_sane(&ready);
    let pic = ready.result.timeline.iter().find(|t| t.phase == Phase::Pic).map(|t| t.outcome);
    assert_eq!(pic, Some(Outcome::Done));
    // More PIC packets than the bound, most of them in bursts longer than it.
    let pic_packets = r.events.iter().find_map(|e| match e {
        Event::Progress { phase: Phase::Pic, total, .. } => Some(*total),
        _ => None,
    });
    assert!(pic_packets.is_some_and(|n| n > 2 * 128), "{pic_packets:?}");
    assert_ticking_ab(&r.emu);
}

/// The PIC reply timeout counts from when the burst before END has gone out, not from when
/// it was queued: on a slow bus (2 ms per packet here, so a burst of several hundred packets
/// takes longer than the 500 ms reply timeout) the load still succeeds.
#[test]
fn pic_reply_timeout_starts_once_the_burst_is_out() {
    let fw = firmware();
    let r = run_on(DeviceConfig::default(), BringUpConfig::default(), fw, 128, Duration::from_millis(2));
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    let pic = ready.result.timeline.iter().find(|t| t.phase == Phase::Pic).expect("Pic phase");
    assert_eq!(pic.outcome, Outcome::Done);
    assert!(pic.duration > Duration::from_millis(1000), "the bursts took {:?}", pic.duration);
}

#[test]
fn from_each_later_stage() {
    let fw = firmware();
    for (stage, head, fpga) in [
        (EmuStage::UsbLoaded, vec![Phase::Detect, Phase::Fpga, Phase::Pic], Outcome::Done),
        (EmuStage::FpgaLoaded, vec![Phase::Detect, Phase::Fpga, Phase::Pic], Outcome::Skipped),
        (EmuStage::Running, vec![Phase::Detect], Outcome::Done),
    ] {
        let r = run(DeviceConfig::default().with_start_stage(stage), BringUpConfig::default(), fw.clone());
        let ready = r.outcome.unwrap_or_else(|e| panic!("{stage:?}: {e}"));
        print_timeline(&format!("{stage:?}, FXS + FXO"), &ready);
        let mut want = head;
        if stage == EmuStage::Running {
            want.extend(&TAIL[1..]);
        } else {
            want.extend(TAIL);
        }
        want.push(Phase::Ready);
        assert_eq!(phases(&ready), want, "{stage:?}");
        assert_timeline_sane(&ready);
        if let Some(t) = ready.result.timeline.iter().find(|t| t.phase == Phase::Fpga) {
            assert_eq!(t.outcome, fpga, "{stage:?}");
        }
        assert_eq!(ready.result.units.iter().map(|u| u.present).collect::<Vec<_>>(), [0xFF, 0xFF]);
        assert_ticking_ab(&r.emu);
    }
}

#[test]
fn module_mixes() {
    let fw = firmware();
    let fxs6 = ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0b1000_0000 };
    type Case = ([Option<ModuleConfig>; 4], Vec<(CardKind, u32)>);
    let cases: [Case; 3] = [
        ([Some(fxs6), None, None, None], vec![(CardKind::FxsType6, 0x7F)]),
        (
            [Some(ModuleConfig::FXS), Some(ModuleConfig::PRI_E1), None, None],
            vec![(CardKind::FxsType1, 0xFF), (CardKind::Pri, 0x01)],
        ),
        (
            [Some(ModuleConfig::BRI), Some(ModuleConfig::FXO), None, None],
            vec![(CardKind::Bri, 0x0F), (CardKind::Fxo, 0xFF)],
        ),
    ];
    for (slots, want) in cases {
        for stage in [EmuStage::Cold, EmuStage::Running] {
            let cfg = DeviceConfig::default().with_slots(slots).with_start_stage(stage);
            let r = run(cfg, BringUpConfig::default(), fw.clone());
            let ready = r.outcome.unwrap_or_else(|e| panic!("{slots:?} {stage:?}: {e}"));
            print_timeline(&format!("{stage:?}, {:?}", want.iter().map(|w| w.0).collect::<Vec<_>>()), &ready);
            assert_timeline_sane(&ready);
            let got: Vec<(CardKind, u32)> = ready.result.units.iter().map(|u| (u.kind, u.present)).collect();
            assert_eq!(got, want);
            let cards: Vec<Phase> = (0..want.len() as u8).map(|unit| Phase::CardInit { unit }).collect();
            let seen: Vec<Phase> =
                phases(&ready).into_iter().filter(|p| matches!(p, Phase::CardInit { .. })).collect();
            assert_eq!(seen, cards);
            if let Some(pri) = ready.result.units.iter().find(|u| u.kind == CardKind::Pri) {
                assert_eq!(pri.law, xpp_proto::wire::Law::Alaw);
            }
            assert_ticking_ab(&r.emu);
        }
    }
    // BRI: layer 1 activated by the card init (TE with a connected far end -> F7).
    let cfg = DeviceConfig::default().with_slots([Some(ModuleConfig::BRI), None, None, None]);
    let r = run(cfg.with_start_stage(EmuStage::Running), BringUpConfig::default(), fw);
    assert!(r.outcome.is_ok());
    r.emu.advance(Duration::from_millis(50));
    r.emu.with_device(|d| {
        let st = d.data().bri_state(0, 0).expect("BRI port 0");
        println!("BRI port 0 after bring-up: {st:?}");
    });
}

/// Flips the first data byte of the first data record and fixes the record's checksum, so the
/// file still parses but holds a different image.
fn corrupt_data(text: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        if !done && line.len() > 11 && line.starts_with(':') && &line[7..9] == "00" {
            let bytes: Vec<u8> = (1..line.len() - 2)
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect();
            let addr = u16::from_be_bytes([bytes[1], bytes[2]]);
            let mut data = bytes[4..].to_vec();
            data[0] ^= 0x5A;
            write_record(&mut out, RecordType::Data, addr, &data).unwrap();
            out.push('\n');
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn read(name: &str) -> String {
    std::fs::read_to_string(support::firmware_dir().join(name)).unwrap()
}

#[test]
fn unparsable_usb_image_fails_before_sending() {
    let (mut fw, text) = (firmware(), read("USB_FW.hex"));
    // A checksum byte changed: the file no longer parses.
    let bad = text.replacen(":10", ":11", 1);
    fw.insert_hex("USB_FW.hex", bad.as_bytes());
    let r = run(DeviceConfig::default(), BringUpConfig::default(), fw);
    let e = r.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::UsbFirmware);
    assert!(matches!(e.reason, Failure::BadImage { ref name, .. } if name == "USB_FW.hex"));
    assert!(r.log.is_empty(), "{:?}", r.log);
}

#[test]
fn corrupted_usb_image_fails_waiting_for_renumeration() {
    let (mut fw, text) = (firmware(), read("USB_FW.hex"));
    fw.insert_hex("USB_FW.hex", corrupt_data(&text).as_bytes());
    let r = run(DeviceConfig::default(), BringUpConfig::default(), fw);
    let e = r.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::WaitRenum);
    assert_eq!(e.reason, Failure::Timeout { waiting_for: "re-enumeration with the USB firmware running" });
    // The device's last answer: it is still the cold identity.
    assert!(e.last_answer.as_ref().is_some_and(|a| a.text.contains("1160")), "{:?}", e.last_answer);
    // Only control transfers were sent, the last one releasing CPUCS; nothing after it.
    assert!(r.log.iter().all(|s| matches!(s, Sent::Control(..))));
    assert_eq!(r.log.last(), Some(&Sent::Control(r.log.last().unwrap().at(), 0xE600, vec![0])));
    assert!(e.at >= r.log.last().unwrap().at() + Duration::from_secs(10));
}

#[test]
fn corrupted_fpga_image_fails_with_the_ack_status() {
    let (mut fw, text) = (firmware(), read("FPGA_1161.hex"));
    fw.insert_hex("FPGA_1161.hex", corrupt_data(&text).as_bytes());
    let r = run(DeviceConfig::default(), BringUpConfig::default(), fw);
    let e = r.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::Fpga);
    assert_eq!(e.reason, Failure::Mgmt(MgmtError::Device(AckStatus::FpgaError)));
    assert!(e.last_answer.as_ref().is_some_and(|a| a.text.contains("ACK")), "{:?}", e.last_answer);
    // The last thing sent is DEV_SEND_END; nothing on the data interface.
    let Some(Sent::Bulk(_, endpoint, last)) = r.log.last() else { panic!("{:?}", r.log.last()) };
    assert_eq!(*endpoint, ep::MGMT_OUT);
    let (_, req) = Request::parse(last).unwrap();
    assert_eq!(req.op(), Op::DevSendEnd);
    assert!(!r.log.iter().any(|s| matches!(s, Sent::Bulk(_, e, _) if *e == ep::DATA_OUT)));
    let mut tl = r.events.iter().filter_map(|e| match e {
        Event::Timeline(t) => Some(*t),
        _ => None,
    });
    assert_eq!(tl.next_back().map(|t| (t.phase, t.outcome)), Some((Phase::Fpga, Outcome::Failed)));
}

#[test]
fn silent_device_fails_in_descriptors_after_the_timeout() {
    let fw = firmware();
    // No module at all: the emulated device never answers AB_REQUEST.
    let cfg = DeviceConfig::default().with_slots([None; 4]).with_start_stage(EmuStage::Running);
    let r = run(cfg, BringUpConfig::default(), fw);
    let e = r.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::Descriptors);
    assert_eq!(e.reason, Failure::Timeout { waiting_for: "AB_DESCRIPTION" });
    // The phase's 2 s count from its start (the 5 ms listen for stale input included).
    let started = r.events.iter().find_map(|e| match e {
        Event::PhaseStarted { phase: Phase::Descriptors, at } => Some(*at),
        _ => None,
    });
    let waited = e.at - started.expect("Descriptors started");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100), "{waited}");
    // AB_REQUEST (sent three times in all, 250 ms apart) and SYNC_SOURCE(NONE) only.
    let sent: Vec<(Instant, &[u8])> = r
        .log
        .iter()
        .map(|s| match s {
            Sent::Bulk(t, _, b) => (*t, &b[..]),
            Sent::Control(..) => panic!("{s:?}"),
        })
        .collect();
    let request: &[u8] = &[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00];
    let t0 = sent[0].0;
    let at = |ms| t0 + Duration::from_millis(ms);
    assert_eq!(
        sent,
        [
            (t0, request),
            (t0, &[0x06, 0x00, 0x19, 0x00, 0x00, 0x00][..]),
            (at(250), request),
            (at(500), request)
        ]
    );
}

#[test]
fn echo_module_without_its_image_is_skipped_with_a_warning() {
    let fw = firmware();
    let cfg = DeviceConfig::default().with_echo(true).with_start_stage(EmuStage::UsbLoaded);
    let r = run(cfg, BringUpConfig::default(), fw);
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("UsbLoaded, FXS + FXO + ECHO", &ready);
    let echo = ready.result.timeline.iter().find(|t| t.phase == Phase::Echo).expect("echo phase");
    assert_eq!(echo.outcome, Outcome::Skipped);
    assert!(r.events.iter().any(|e| matches!(e, Event::Warning { phase: Phase::Echo, .. })));
    assert!(ready.result.units.iter().any(|u| u.kind == CardKind::Echo));
    assert_ticking_ab(&r.emu);
}

#[test]
fn core_fails_cleanly_without_a_device() {
    let mut core = xpp_bringup::BringUp::new(Instant::ZERO, BringUpConfig::default(), FirmwareSet::new());
    core.handle_timeout(Instant::from_secs(11));
    match core.poll_action() {
        Some(Action::Failed(e)) => assert_eq!((e.phase, e.last_answer), (Phase::Detect, None)),
        other => panic!("{other:?}"),
    }
    assert!(core.is_finished() && core.poll_action().is_none() && core.poll_timeout().is_none());
}

#[test]
fn echo_module_with_an_image_is_probed() {
    let mut fw = firmware();
    // A stand-in for the proprietary image: bring-up probes the module (test packet, CPLD
    // version) and reports that the chip open needs the vendor's API.
    fw.set_echo_image(vec![0; 64]);
    let cfg = DeviceConfig::default().with_echo(true).with_start_stage(EmuStage::FpgaLoaded);
    let r = run(cfg, BringUpConfig::default(), fw);
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("FpgaLoaded, FXS + FXO + ECHO (image present)", &ready);
    let echo = ready.result.timeline.iter().find(|t| t.phase == Phase::Echo).expect("echo phase");
    assert_eq!(echo.outcome, Outcome::Done);
    assert!(ready.result.warnings.iter().any(|w| w.contains("CPLD 0x0101")), "{:?}", ready.result.warnings);
    // Test packet (op 0x35) and the SPI version query to unit 4 went out on the data interface.
    let data: Vec<&Vec<u8>> = r
        .log
        .iter()
        .filter_map(|s| match s {
            Sent::Bulk(_, e, b) if *e == ep::DATA_OUT => Some(b),
            _ => None,
        })
        .collect();
    assert!(data.iter().any(|b| b.get(2) == Some(&0x35)));
    assert!(data.iter().any(|b| b.get(2) == Some(&0x0F) && b.get(3) == Some(&0x40)));
    assert_ticking_ab(&r.emu);
}

/// Issue 15, item 9: one PIC packet lost on the way (here every 600th PIC transfer is
/// dropped: the type-1 image of 485 packets gets through, the type-2 one loses a packet twice) made the module report a bad checksum and failed the whole bring-up. The image is
/// now sent again, and the timeline says how many times.
#[test]
fn a_pic_image_with_a_lost_packet_is_sent_again() {
    use xpp_emu::config::CoreConfig;
    use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
    let mut core = CoreConfig::default();
    core.faults = vec![
        FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Drop)
            .with_opcode(0x09)
            .when(FaultTrigger::EveryNth(600)),
    ];
    let r = run(DeviceConfig::default().with_core(core), BringUpConfig::default(), firmware());
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("cold, FXS + FXO, every 600th PIC transfer dropped", &ready);
    assert_timeline_sane(&ready);
    let pic = ready.result.timeline.iter().find(|t| t.phase == Phase::Pic).expect("Pic phase");
    assert_eq!(pic.outcome, Outcome::Done);
    let resent: Vec<&String> =
        ready.result.warnings.iter().filter(|w| w.contains("PIC image of card type")).collect();
    println!("{resent:#?}");
    assert_eq!(resent.len(), 2, "{resent:?}");
    assert!(resent.iter().all(|w| w.contains("bad checksum for the PIC image of card type 2")), "{resent:?}");
    assert!(resent[1].ends_with("(attempt 3 of 10)"), "{resent:?}");
    assert_eq!(usize::from(pic.retries), resent.len());
    assert!(pic.to_string().contains("retr"), "{pic}");
    // The emulator burned every image in the end.
    assert_ticking_ab(&r.emu);
}

/// Each retry is bounded: a module that always reports a bad checksum fails the bring-up
/// after `pic_attempts` sends of the image.
#[test]
fn a_pic_image_that_always_fails_fails_after_the_attempts() {
    use xpp_emu::config::CoreConfig;
    use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
    let mut core = CoreConfig::default();
    // Every 5th PIC transfer: no image of hundreds of packets gets through whole.
    core.faults = vec![
        FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Drop)
            .with_opcode(0x09)
            .when(FaultTrigger::EveryNth(5)),
    ];
    let r = run(
        DeviceConfig::default().with_core(core),
        BringUpConfig::default().with_pic_attempts(3),
        firmware(),
    );
    let Err(e) = r.outcome else { panic!("bring-up succeeded") };
    assert_eq!(e.phase, Phase::Pic, "{e}");
    let resent = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::Warning { message, .. } if message.contains("PIC image of card type")))
        .count();
    assert_eq!(resent, 2, "three sends in all");
    let failed = r.events.iter().rev().find_map(|e| match e {
        Event::Timeline(t) if t.phase == Phase::Pic => Some(*t),
        _ => None,
    });
    assert_eq!(failed.map(|t| (t.outcome, t.retries)), Some((Outcome::Failed, 2)));
}

/// Issue 15, item 9: the echo canceller's test packet lost on the way failed the bring-up
/// after the echo timeout; it is now sent again (a retry in the Echo phase's timeline entry).
#[test]
fn a_lost_echo_test_packet_is_sent_again() {
    use xpp_emu::config::CoreConfig;
    use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule};
    let mut fw = firmware();
    fw.set_echo_image(vec![0; 64]);
    let cfg = DeviceConfig::default().with_echo(true).with_start_stage(EmuStage::FpgaLoaded);
    // Where the Echo phase starts, from a bring-up without faults (virtual time: the same
    // in every run).
    let clean =
        run(cfg.clone(), BringUpConfig::default(), fw.clone()).outcome.unwrap_or_else(|e| panic!("{e}"));
    let start = clean.result.timeline.iter().find(|t| t.phase == Phase::Echo).expect("echo phase").start;
    let mut core = CoreConfig::default();
    core.faults = vec![FaultRule {
        window: Some((Instant::ZERO, start + Duration::from_millis(1))),
        ..FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Drop).with_opcode(0x35)
    }];
    let r = run(cfg.with_core(core), BringUpConfig::default(), fw);
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("FpgaLoaded + ECHO, the first echo test packet dropped", &ready);
    let echo = ready.result.timeline.iter().find(|t| t.phase == Phase::Echo).expect("echo phase");
    assert_eq!((echo.outcome, echo.retries), (Outcome::Done, 1));
    assert!(
        ready.result.warnings.iter().any(|w| w.contains("test packet sent again (attempt 2 of 3)")),
        "{:?}",
        ready.result.warnings
    );
}

/// Issue 15, item 9, as the soak found it: 0.2 % of the data OUT transfers lost. Each cold
/// bring-up of ten seeds comes up; before the retries, one lost PIC packet failed a bring-up.
#[test]
fn cold_bring_ups_survive_out_loss() {
    use xpp_emu::config::CoreConfig;
    use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
    let fw = firmware();
    let mut retried = 0;
    for seed in 1..=10 {
        let mut core = CoreConfig::default();
        core.faults = vec![
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_OUT), FaultAction::Drop)
                .when(FaultTrigger::PerMillion(2_000)),
        ];
        let cfg = DeviceConfig::default().with_seed(seed).with_core(core);
        let r = run(cfg, BringUpConfig::default(), fw.clone());
        let ready = r.outcome.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let retries: u16 = ready.result.timeline.iter().map(|t| t.retries).sum();
        println!("seed {seed}: {retries} retries");
        retried += usize::from(retries > 0);
    }
    assert!(retried > 0, "no bring-up met a lost packet: the test tests nothing");
}

/// A firmware folder without the file the device needs: the error names the file and the
/// folder that was read (issue 14, item 4), and nothing reaches the device.
#[test]
fn a_missing_image_names_the_folder_searched() {
    let dir = std::env::temp_dir().join(format!("xpp-no-firmware-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fw = read_firmware_dir(&dir).expect("an empty folder reads");
    let r = run(DeviceConfig::default(), BringUpConfig::default(), fw);
    let e = r.outcome.err().expect("must fail");
    assert_eq!(e.phase, Phase::UsbFirmware);
    let want = format!("firmware file USB_FW.hex not found in {}", dir.display());
    assert!(e.to_string().contains(&want), "{e}");
    assert!(r.log.is_empty(), "{:?}", r.log);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 15, item 9 (the runner): a stalled data IN transfer during bring-up failed it at
/// once. The halt is now cleared and bring-up goes on (the lost reply is asked again by its
/// step), with a warning and a retry in the phase's timeline entry; past
/// `MAX_TRANSFER_FAILURES` it still fails.
#[test]
fn a_stalled_transfer_during_bring_up_is_cleared_and_gone_past() {
    use xpp_emu::config::CoreConfig;
    use xpp_emu::fault::{FaultAction, FaultEndpoint, FaultRule, FaultTrigger};
    let stalling = |nth| {
        let mut core = CoreConfig::default();
        core.faults = vec![
            FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Stall)
                .when(FaultTrigger::EveryNth(nth)),
        ];
        DeviceConfig::default().with_start_stage(EmuStage::Running).with_core(core)
    };
    // The 40th data IN transfer stalls (during the card init).
    let r = run(stalling(40), BringUpConfig::default(), firmware());
    let ready = r.outcome.unwrap_or_else(|e| panic!("{e}"));
    print_timeline("running, one data IN stall", &ready);
    assert_timeline_sane(&ready);
    let stalls: Vec<&String> = ready.result.warnings.iter().filter(|w| w.contains("halt cleared")).collect();
    assert_eq!(stalls.len(), 1, "{:?}", ready.result.warnings);
    assert!(
        stalls[0].contains("endpoint 0x86 failed (") && stalls[0].contains("failure 1 of 8"),
        "{stalls:?}"
    );
    let retries: u16 = ready.result.timeline.iter().map(|t| t.retries).sum();
    assert!(retries >= 1);
    let clears = r.log.iter().filter(|s| matches!(s, Sent::Control(_, _, b) if b.is_empty())).count();
    assert!(clears >= 1, "a CLEAR_FEATURE went out");
    assert_ticking_ab(&r.emu);
    // Every other data IN transfer stalls: bring-up fails after the allowed failures.
    let r = run(stalling(2), BringUpConfig::default(), firmware());
    let Err(e) = r.outcome else { panic!("bring-up succeeded") };
    assert!(matches!(e.reason, Failure::Transfer(xpp_usb::TransferError::Stall)), "{e}");
    let warned = r
        .events
        .iter()
        .filter(|e| matches!(e, Event::Warning { message, .. } if message.contains("halt cleared")))
        .count();
    assert_eq!(warned, usize::from(xpp_bringup::MAX_TRANSFER_FAILURES));
}

/// Issue 14 item 2: an emulated type-6 module with every chip absent ends bring-up with an
/// error naming the unit, never a READY with dead lines.
#[test]
fn fxs6_without_chips_fails_naming_the_unit() {
    let fxs6 = ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0xFF };
    let cfg = DeviceConfig::default()
        .with_slots([Some(ModuleConfig::FXO), Some(fxs6), None, None])
        .with_start_stage(EmuStage::Running);
    let r = run(cfg, BringUpConfig::default(), firmware());
    let e = r.outcome.err().expect("bring-up must fail");
    assert!(matches!(e.reason, Failure::NoChip { unit: 1, ports: 8 }), "{e}");
}
