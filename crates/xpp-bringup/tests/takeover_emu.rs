//! Bring-up of a device another host left behind, on the emulator's virtual clock: a device
//! found ticking (its previous host crashed without SYNC_SOURCE(NONE)), replies lost on the
//! way, and the "found running: verify, don't reset" path of a TwinStar take-over.
//!
//! Every device here but one starts in the running stage, so no firmware image is needed.

#[path = "../../xpp-proto/tests/support/mod.rs"]
mod support;

mod common;

use std::sync::Arc;

use xpp_bringup::{
    BringUpConfig, BringUpError, BringUpResult, Event, Failure, FirmwareSet, OnRunning, Phase, Ready,
    RunOptions, bring_up, read_firmware_dir, verify_running,
};
use xpp_emu::config::{CoreConfig, FxsChip, ModuleConfig, Stage as EmuStage};
use xpp_emu::data::{EventKind, FxoPortState, FxsPortState};
use xpp_emu::fault::{DataFault, FaultAction, FaultEndpoint, FaultRule, FaultTrigger, ScheduledFault};
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::mgmt::Request;
use xpp_proto::wire::{
    AbDescription, Address, CardType, Message, Opcode, RegCmd, SyncMode, UnitDescriptor, parse_transfer,
};
use xpp_proto::{Duration, Instant};
use xpp_usb::{Transport, ep};

use common::{Log, Recording, Sent};

/// One emulated device and a record of what every host sent it.
struct Bench {
    emu: Emulator,
    log: Log,
    /// The USB port the next host opens.
    port: u8,
}

/// One bring-up: its outcome, its events, what it sent.
struct Run {
    outcome: Result<Ready<Recording>, BringUpError>,
    events: Vec<Event>,
    sent: Vec<Sent>,
}

impl Run {
    fn ready(self) -> (Ready<Recording>, Vec<Event>, Vec<Sent>) {
        match self.outcome {
            Ok(r) => (r, self.events, self.sent),
            Err(e) => panic!("{e}"),
        }
    }
}

impl Bench {
    /// A device in the running stage with the default modules (FXS unit 0, FXO unit 1).
    fn running(core: CoreConfig) -> Self {
        Self::new(DeviceConfig::default().with_start_stage(EmuStage::Running).with_core(core))
    }

    fn new(cfg: DeviceConfig) -> Self {
        Self { emu: Emulator::with_mode(cfg, ClockMode::AutoAdvance), log: Arc::default(), port: 0 }
    }

    /// What the hosts have sent so far.
    fn sent_so_far(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// [`Bench::bring_up`] through [`verify_running`], on what is enumerated now.
    fn verify_running(&self, cfg: BringUpConfig) -> Run {
        let first = self.sent_so_far();
        let mut open = common::opener(&self.emu, self.port, &self.log, usize::MAX, Duration::ZERO);
        let transport = open().expect("a device enumerated");
        let mut events = Vec::new();
        let outcome = verify_running(transport, &self.emu, cfg, |e| events.push(e.clone()));
        let sent = self.log.lock().unwrap()[first..].to_vec();
        Run { outcome, events, sent }
    }

    fn bring_up(&self, cfg: BringUpConfig) -> Run {
        let first = self.sent_so_far();
        let open = common::opener(&self.emu, self.port, &self.log, usize::MAX, Duration::ZERO);
        let mut events = Vec::new();
        let outcome = bring_up(open, &self.emu, cfg, FirmwareSet::new(), RunOptions::default(), |e| {
            events.push(e.clone());
        });
        let sent = self.log.lock().unwrap()[first..].to_vec();
        Run { outcome, events, sent }
    }

    /// A first (full) bring-up, then the host goes away without a word (a crash: the
    /// transport is dropped, no SYNC_SOURCE(NONE)), and the device ticks on for a second,
    /// filling its IN FIFO. Returns what the first bring-up found.
    fn left_ticking(self) -> (Self, BringUpResult) {
        let (ready, ..) = self.bring_up(BringUpConfig::default()).ready();
        let first = ready.result;
        drop(ready.transport);
        self.emu.advance(Duration::from_secs(1));
        self.emu.with_device(|d| {
            assert!(d.data().is_ticking(), "left ticking");
            assert_eq!(d.in_queued(0, ep::DATA_IN), 64, "the IN FIFO is full of stale PCM");
        });
        (self, first)
    }
}

/// What one data OUT packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    AbRequest,
    SyncSource(SyncMode),
    XbusReset(u8),
    RegRead,
    RegWrite,
    Other(Opcode),
}

/// The data-interface packets the host sent, in order, with when.
fn data_out(sent: &[Sent]) -> Vec<(Instant, Out)> {
    let mut out = Vec::new();
    for s in sent {
        let Sent::Bulk(at, endpoint, bytes) = s else { continue };
        if *endpoint != ep::DATA_OUT {
            continue;
        }
        for item in parse_transfer(bytes) {
            let (_, repr) = item.expect("the host sends well-formed packets");
            let o = match repr.message {
                Message::AbRequest(_) => Out::AbRequest,
                Message::SyncSource(s) => Out::SyncSource(s.mode),
                Message::XbusReset { mask } => Out::XbusReset(mask),
                Message::RegisterRequest(RegCmd::Reg(r)) if r.read => Out::RegRead,
                Message::RegisterRequest(_) => Out::RegWrite,
                _ => Out::Other(repr.message.opcode()),
            };
            out.push((*at, o));
        }
    }
    out
}

fn warnings(events: &[Event]) -> Vec<(Phase, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { phase, message } => Some((*phase, message.clone())),
            _ => None,
        })
        .collect()
}

/// The device ticks in sync mode AB.
fn assert_ticking_ab(emu: &Emulator) {
    emu.advance(Duration::from_millis(5));
    emu.with_device(|d| {
        assert!(d.data().is_ticking(), "device not ticking");
        assert_eq!(d.data().sync_state().mode, SyncMode::Ab);
    });
}

/// Drops IN transfers on the data endpoint carrying `opcode`, every `nth` one.
fn drop_in(opcode: Opcode, nth: u32) -> FaultRule {
    FaultRule::new(FaultEndpoint::Ep(ep::DATA_IN), FaultAction::Drop)
        .with_opcode(u8::from(opcode))
        .when(FaultTrigger::EveryNth(nth))
}

/// The device omits the first SYNC_REPLY it sends after `at` (the mode still changes).
fn omitting_sync_reply(at: Instant) -> CoreConfig {
    core_with(vec![], vec![ScheduledFault::Data { at, fault: DataFault::OmitSyncReply }])
}

fn core_with(faults: Vec<FaultRule>, scheduled: Vec<ScheduledFault>) -> CoreConfig {
    let mut core = CoreConfig::default();
    core.faults = faults;
    core.scheduled_faults = scheduled;
    core
}

/// Issue 15 item 4: the previous host crashed and left the device ticking; the one
/// AB_DESCRIPTION is lost (here: the emulator drops every second one, so the first bring-up
/// gets its reply and the second bring-up's first reply is lost). Bring-up used to wait for it
/// until the Descriptors timeout and fail; it now quiesces the device first (SYNC_SOURCE(NONE),
/// the stale FIFO drained) and asks again.
#[test]
fn found_ticking_with_its_description_lost_comes_up() {
    let (bench, _) =
        Bench::running(core_with(vec![drop_in(Opcode::AbDescription, 2)], vec![])).left_ticking();
    let (ready, events, sent) = bench.bring_up(BringUpConfig::default()).ready();
    for t in &ready.result.timeline {
        println!("{t}");
    }
    let out = data_out(&sent);
    // Quiesced before anything else: SYNC_SOURCE(NONE) first, AB_REQUEST only after the drain.
    assert_eq!(out.first().map(|o| o.1), Some(Out::SyncSource(SyncMode::None)), "{out:?}");
    let requests: Vec<Instant> = out.iter().filter(|o| o.1 == Out::AbRequest).map(|o| o.0).collect();
    assert_eq!(requests.len(), 2, "{out:?}");
    // The second one when the first reply is overdue.
    assert_eq!(requests[1] - requests[0], Duration::from_millis(250));
    let warned = warnings(&events);
    println!("{warned:#?}");
    let ticking = warned.iter().find(|(_, w)| w.contains("ticking")).expect("a warning that it was ticking");
    assert_eq!(ticking.0, Phase::Descriptors);
    assert!(ticking.1.contains("64 stale"), "{}", ticking.1);
    assert!(warned.iter().any(|(p, w)| *p == Phase::Descriptors && w.contains("AB_REQUEST sent again")));
    assert_eq!(ready.result.warnings.len(), warned.len());
    assert_eq!(ready.result.units.iter().map(|u| u.present).collect::<Vec<_>>(), [0xFF, 0xFF]);
    assert_ticking_ab(&bench.emu);
}

/// A device found ticking whose SYNC_REPLY(NONE) does not come: the drain ends when the IN
/// side has gone quiet, with a warning, and bring-up goes on.
#[test]
fn found_ticking_without_a_sync_reply_drains_until_quiet() {
    // The first bring-up ends at about 0.33 s; the next SYNC_REPLY is the drain's.
    let (bench, _) = Bench::running(omitting_sync_reply(Instant::from_millis(700))).left_ticking();
    let (ready, events, sent) = bench.bring_up(BringUpConfig::default()).ready();
    let out = data_out(&sent);
    assert_eq!(out.iter().filter(|o| o.1 == Out::AbRequest).count(), 1, "{out:?}");
    let warned = warnings(&events);
    println!("{warned:#?}");
    assert!(warned.iter().any(|(_, w)| w.contains("no SYNC_REPLY")), "{warned:?}");
    let desc = ready.result.timeline.iter().find(|t| t.phase == Phase::Descriptors).expect("Descriptors");
    assert!(desc.duration < Duration::from_millis(50), "{}", desc.duration);
    assert_ticking_ab(&bench.emu);
}

/// A device that is not ticking gets the reference's order (§8.3, §14): AB_REQUEST, then
/// SYNC_SOURCE(NONE), sent together after the short listen for stale input.
#[test]
fn quiet_device_gets_the_reference_order() {
    let bench = Bench::running(CoreConfig::default());
    let (ready, events, sent) = bench.bring_up(BringUpConfig::default()).ready();
    let out = data_out(&sent);
    assert_eq!(out[0].1, Out::AbRequest);
    assert_eq!(out[1].1, Out::SyncSource(SyncMode::None));
    assert_eq!(out[0].0, out[1].0);
    assert!(warnings(&events).is_empty(), "{:?}", warnings(&events));
    assert!(ready.result.warnings.is_empty());
}

/// A lost SYNC_REPLY is asked for again (SYNC_SOURCE re-sent) instead of failing the
/// SyncSource phase after its timeout.
#[test]
fn lost_sync_reply_is_asked_again() {
    // The card init runs from about 6 ms to 330 ms: the next SYNC_REPLY is the PLL one.
    let bench = Bench::running(omitting_sync_reply(Instant::from_millis(100)));
    let (ready, events, sent) = bench.bring_up(BringUpConfig::default()).ready();
    let out = data_out(&sent);
    let pll = out.iter().filter(|o| o.1 == Out::SyncSource(SyncMode::Pll)).count();
    assert_eq!(pll, 2, "{out:?}");
    let warned = warnings(&events);
    assert!(
        warned.iter().any(|(p, w)| *p == Phase::SyncSource && w.contains("SYNC_SOURCE(PLL) sent again")),
        "{warned:?}"
    );
    assert_eq!(ready.result.sync.mode, SyncMode::Ab);
    assert_ticking_ab(&bench.emu);
}

/// A lost REGISTER_REPLY is read again (every fifth one is dropped here: the FXS unit's
/// chip-ID reads and calibration polls), a bounded number of times, instead of failing the
/// card init.
#[test]
fn lost_register_replies_are_read_again() {
    let bench = Bench::running(core_with(vec![drop_in(Opcode::RegisterReply, 5)], vec![]));
    let (ready, events, sent) = bench.bring_up(BringUpConfig::default()).ready();
    let reads = data_out(&sent).iter().filter(|o| o.1 == Out::RegRead).count();
    let warned = warnings(&events);
    let again = warned.iter().filter(|(_, w)| w.contains("read again")).count();
    println!("{reads} reads, {again} again; {:?}", warned.first());
    // 8 chip-ID reads and 32 calibration polls, and one more for each lost reply.
    assert_eq!(reads, 40 + again);
    assert!(again >= 8, "{again}");
    assert_eq!(ready.result.units[0].present, 0xFF);
    assert_ticking_ab(&bench.emu);
}

/// Lost every time: the bound holds and the failure names the phase and what was awaited.
#[test]
fn a_reply_lost_every_time_fails_after_the_bound() {
    let bench = Bench::running(core_with(vec![drop_in(Opcode::RegisterReply, 1)], vec![]));
    let run = bench.bring_up(BringUpConfig::default());
    let e = run.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::CardInit { unit: 0 });
    // The first read, sent three times in all.
    let reads = data_out(&run.sent).iter().filter(|o| o.1 == Out::RegRead).count();
    assert_eq!(reads, 3);
}

// ----- found running: verify, don't reset ------------------------------------------------

const VERIFY_PHASES: [Phase; 6] = [
    Phase::Detect,
    Phase::Descriptors,
    Phase::Verify { unit: 0 },
    Phase::Verify { unit: 1 },
    Phase::SyncSource,
    Phase::Ready,
];

fn phases(r: &BringUpResult) -> Vec<Phase> {
    r.timeline.iter().map(|t| t.phase).collect()
}

/// From the start of the first phase to the end of the last.
fn took(r: &BringUpResult) -> Duration {
    match (r.timeline.first(), r.timeline.last()) {
        (Some(a), Some(b)) => (b.start + b.duration) - a.start,
        _ => Duration::ZERO,
    }
}

/// Everything sent was AB_REQUEST, SYNC_SOURCE or a register read on the data interface:
/// no XBUS_RESET, no register write, nothing on the management interface or EP0. Returns the
/// number of reads.
fn assert_read_only(sent: &[Sent]) -> usize {
    assert!(sent.iter().all(|s| matches!(s, Sent::Bulk(_, e, _) if *e == ep::DATA_OUT)), "{sent:?}");
    let out = data_out(sent);
    for (at, o) in &out {
        assert!(matches!(o, Out::AbRequest | Out::SyncSource(_) | Out::RegRead), "at {at}: {o:?}");
    }
    out.iter().filter(|o| o.1 == Out::RegRead).count()
}

/// The previous host crashed; the next one verifies the device instead of resetting it: the
/// same units are reported (chip IDs read again), nothing but reads reaches the chips, and it
/// ticks in AB again. Also the numbers: verify against the full bring-up from the running stage.
#[test]
fn found_ticking_is_verified_not_reset() {
    let (bench, master) = Bench::running(CoreConfig::default()).left_ticking();
    let cfg = BringUpConfig::default()
        .with_on_running(OnRunning::Verify)
        .with_expected_description(Some(master.description));
    let (ready, events, sent) = bench.bring_up(cfg).ready();
    let res = &ready.result;
    for t in &res.timeline {
        println!("{t}");
    }
    println!("full bring-up {} ms, verify {} ms", took(&master).total_millis(), took(res).total_millis());
    assert!(res.verified && !master.verified);
    assert_eq!(phases(res), VERIFY_PHASES);
    // FXS unit: 8 chip IDs and 8 PCM-mode read-backs; FXO unit: 8 line voltages and 8
    // PCM-mode read-backs.
    assert_eq!(assert_read_only(&sent), 32);
    assert_eq!(res.units, master.units);
    assert_eq!(res.units[0].chip_ids, [Some(0x05); 8]);
    assert!(warnings(&events).iter().any(|(_, w)| w.contains("found ticking")));
    assert!(took(res).saturating_mul(5) < took(&master), "verify {} vs full {}", took(res), took(&master));
    assert_ticking_ab(&bench.emu);
}

/// Every card kind's verify reads, answered by the chips: FXS type 6 with port 7 absent
/// (found absent again), a 1-port E1 PRI and a 4-port BRI (reads to each port's XPD).
#[test]
fn verify_reads_every_card_kind() {
    let fxs6 = ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0b1000_0000 };
    let slots = [Some(fxs6), Some(ModuleConfig::PRI_E1), Some(ModuleConfig::BRI), None];
    let cfg = DeviceConfig::default().with_slots(slots).with_start_stage(EmuStage::Running);
    let (bench, master) = Bench::new(cfg).left_ticking();
    let run = bench.bring_up(BringUpConfig::default().with_on_running(OnRunning::Verify));
    let (ready, _, sent) = run.ready();
    let units: Vec<(u8, u32)> = ready.result.units.iter().map(|u| (u.unit, u.present)).collect();
    assert_eq!(units, [(0, 0x7F), (1, 0x01), (2, 0x0F)]);
    assert_eq!(ready.result.units, master.units);
    assert_eq!(assert_read_only(&sent), 8 + 1 + 4);
    let verified: Vec<Phase> =
        phases(&ready.result).into_iter().filter(|p| matches!(p, Phase::Verify { .. })).collect();
    assert_eq!(verified, (0..3).map(|unit| Phase::Verify { unit }).collect::<Vec<_>>());
    assert_ticking_ab(&bench.emu);
}

/// A TwinStar pair: the master brings the device up on port 0, arms the watchdog, a phone on
/// FXS port 0/2 goes off-hook (a call), then the master hangs; the watchdog moves the device
/// to port 1. Returns the bench (opening port 1 now) and what the master found.
fn master_hung_with_a_call() -> (Bench, BringUpResult) {
    let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(EmuStage::Running);
    let mut bench = Bench::new(cfg);
    let (Ready { mut transport, result }, ..) = bench.bring_up(BringUpConfig::default()).ready();
    let mut arm = [0u8; 16];
    let n = Request::TwsWdModeSet { armed: true }.emit(1, &mut arm).expect("TWS_WD_MODE_SET");
    transport.submit(ep::MGMT_OUT, arm[..n].to_vec()).expect("armed");
    let emu = bench.emu.clone();
    emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(0, PHONE).expect("a phone on 0/2").off_hook(now);
    });
    emu.advance(Duration::from_millis(20));
    assert!(emu.with_device(|d| d.data().fxs_state(0, PHONE).is_some_and(|s| s.hook_reported)));
    // The master hangs: nothing more from it. The watchdog (2 s) expires; the jump takes 0.5 s.
    emu.advance(Duration::from_secs(3));
    emu.with_device(|d| {
        assert_eq!((d.active_port(), d.counters().jumps), (1, 1));
        while d.data_mut().poll_event().is_some() {}
    });
    drop(transport);
    bench.port = 1;
    (bench, result)
}

/// The FXS phone in the call.
const PHONE: u8 = 2;

/// What a call depends on, as the device shows it: every FXS and FXO port's state, the reset
/// and renumeration counters.
#[derive(Debug, PartialEq, Eq)]
struct Lines {
    fxs: Vec<Option<FxsPortState>>,
    fxo: Vec<Option<FxoPortState>>,
    renumerations: u64,
    jumps: u64,
    xbus_reset_other: u64,
}

fn lines(emu: &Emulator) -> Lines {
    emu.with_device(|d| Lines {
        fxs: (0..8).map(|p| d.data().fxs_state(0, p)).collect(),
        fxo: (0..8).map(|p| d.data().fxo_state(1, p)).collect(),
        renumerations: d.counters().renumerations,
        jumps: d.counters().jumps,
        xbus_reset_other: d.data().stats().xbus_reset_other,
    })
}

/// What the phones and lines noticed since the last call (battery, polarity, hook, ring; not
/// the device's sync mode changes).
fn line_events(emu: &Emulator) -> Vec<EventKind> {
    emu.with_device(|d| {
        std::iter::from_fn(|| d.data_mut().poll_event())
            .map(|e| e.kind)
            .filter(|k| !matches!(k, EventKind::Sync(_)))
            .collect()
    })
}

/// The TwinStar take-over with a call up: the backup host verifies the device it finds on its
/// port with `verify_running`, and the call survives: every line's state and every counter as
/// before, no line event (the phone never lost battery), no XBUS_RESET, no register write.
#[test]
fn call_in_progress_survives_a_twinstar_take_over() {
    let (bench, master) = master_hung_with_a_call();
    let before = lines(&bench.emu);
    let cfg = BringUpConfig::default().with_expected_description(Some(master.description));
    let (ready, _, sent) = bench.verify_running(cfg).ready();
    for t in &ready.result.timeline {
        println!("{t}");
    }
    assert!(ready.result.verified);
    assert_eq!(phases(&ready.result), VERIFY_PHASES);
    assert_eq!(assert_read_only(&sent), 32);
    bench.emu.advance(Duration::from_millis(50));
    assert_eq!(line_events(&bench.emu), []);
    assert_eq!(lines(&bench.emu), before);
    assert!(bench.emu.with_device(|d| d.data().fxs_state(0, PHONE).is_some_and(|s| s.hook_reported)));
    assert_ticking_ab(&bench.emu);
}

/// The same take-over with the reference's behaviour (OnRunning::Reset, the default): the
/// XBUS_RESET and the card init take the battery off the phone in the call — what verify
/// avoids, and what the test above would see if verify wrote anything that matters.
#[test]
fn reset_take_over_drops_the_call() {
    let (bench, _) = master_hung_with_a_call();
    let (ready, _, sent) = bench.bring_up(BringUpConfig::default()).ready();
    assert!(!ready.result.verified);
    assert!(data_out(&sent).iter().any(|o| o.1 == Out::XbusReset(0x04)));
    let events = line_events(&bench.emu);
    println!("{events:?}");
    assert!(events.contains(&EventKind::PhoneBattery(false)), "{events:?}");
}

/// A description with FXS on unit 0 and, on unit 1, `unit1` (none: no unit 1).
fn description(unit1: Option<UnitDescriptor>) -> AbDescription {
    let mut fxs = UnitDescriptor::new(Address::ZERO, CardType::Fxs, 0, 8, 1);
    fxs.port_dir = 1;
    let units: Vec<UnitDescriptor> = std::iter::once(fxs).chain(unit1).collect();
    AbDescription::new(&units).expect("1 or 2 units")
}

/// Verify against an expected description that does not match the device (FXS + FXO): the
/// failure names the unit that differs and what was expected and found, in Descriptors,
/// before anything reaches a chip.
#[test]
fn verify_against_another_description_names_the_unit() {
    let unit1 = Address::new(1, 0).expect("1/0");
    let pri = UnitDescriptor::new(unit1, CardType::Pri, 0, 1, 4);
    let fxo = UnitDescriptor::new(unit1, CardType::Fxo, 0, 8, 1);
    let mut fxo_nt = fxo;
    fxo_nt.port_dir = 0x01;
    for (expected, want) in [
        (description(Some(pri)), "unit 1: expected PRI (type 4.0) with 4 ports (1 chips x 4)"),
        (description(None), "unit 1: expected no unit, found FXO (type 2.0) with 8 ports"),
        (
            description(Some(fxo_nt)),
            "directions 0x01, at 1/0, found FXO (type 2.0) with 8 ports (8 chips x 1), directions 0x00",
        ),
    ] {
        let bench = Bench::running(CoreConfig::default());
        let cfg = BringUpConfig::default().with_expected_description(Some(expected));
        let run = bench.verify_running(cfg);
        let e = run.outcome.err().expect("must fail");
        println!("{e}");
        assert_eq!(e.phase, Phase::Descriptors);
        assert!(matches!(e.reason, Failure::UnitMismatch { unit: 1, .. }), "{:?}", e.reason);
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(assert_read_only(&run.sent), 0);
    }
    // The same description with reserved bytes and ec_addr changed still matches.
    let mut same = fxo;
    same.reserved = [0xAA, 0x55];
    same.ec_addr = 0x40;
    let (bench, _) = Bench::running(CoreConfig::default()).left_ticking();
    let cfg = BringUpConfig::default().with_expected_description(Some(description(Some(same))));
    assert!(bench.verify_running(cfg).outcome.is_ok());
}

/// A running device whose chips were never initialised (or were reset since: a jump that
/// loses the line state): the verify reads the PCM mode register the card init sets (FXS
/// 0x01 := 0x28, docs/reference/xpp-protocol.md §14) and fails, naming the unit, the port
/// and the register, after reads only — the caller's cue for a full init.
#[test]
fn verify_finds_a_unit_that_was_never_configured() {
    let bench = Bench::running(CoreConfig::default());
    let run = bench.verify_running(BringUpConfig::default());
    let e = run.outcome.err().expect("must fail");
    println!("{e}");
    assert_eq!(e.phase, Phase::Verify { unit: 0 });
    assert_eq!(
        e.reason,
        Failure::NotConfigured { unit: 0, port: 0, register: 0x01, found: 0x00, want: 0x28 }
    );
    assert!(e.to_string().contains("register 0x01 reads 0x00, the card init sets 0x28"), "{e}");
    // The 8 chip IDs, then the first read-back.
    assert_eq!(assert_read_only(&run.sent), 9);
}

/// `verify_running` on a device that is not running (cold, or with the USB firmware only)
/// fails at once in Detect, saying so, and sends nothing.
#[test]
fn verify_on_a_device_not_running_fails_clearly() {
    for stage in [EmuStage::Cold, EmuStage::UsbLoaded, EmuStage::FpgaLoaded] {
        let bench = Bench::new(DeviceConfig::default().with_start_stage(stage));
        let run = bench.verify_running(BringUpConfig::default());
        let e = run.outcome.err().expect("must fail");
        println!("{stage:?}: {e}");
        assert_eq!(e.phase, Phase::Detect);
        assert!(matches!(e.reason, Failure::NotRunning { .. }), "{:?}", e.reason);
        assert!(e.to_string().contains("the device is not running (found in stage"), "{e}");
        assert!(run.sent.is_empty(), "{:?}", run.sent);
    }
}

/// `OnRunning::Verify` only changes what happens to a device found running: a device found
/// in an earlier stage gets the full bring-up (here: from the USB-firmware stage).
#[test]
fn on_running_verify_still_brings_up_a_device_found_earlier() {
    let dir = support::firmware_dir();
    let fw = read_firmware_dir(&dir).expect("firmware folder readable");
    let bench = Bench::new(DeviceConfig::default().with_start_stage(EmuStage::UsbLoaded));
    let open = common::opener(&bench.emu, 0, &bench.log, usize::MAX, Duration::ZERO);
    let cfg = BringUpConfig::default().with_on_running(OnRunning::Verify);
    let ready =
        bring_up(open, &bench.emu, cfg, fw, RunOptions::default(), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert!(!ready.result.verified);
    let p = phases(&ready.result);
    assert!(p.contains(&Phase::XbusReset) && p.contains(&Phase::CardInit { unit: 1 }), "{p:?}");
    assert!(!p.iter().any(|p| matches!(p, Phase::Verify { .. })), "{p:?}");
}
