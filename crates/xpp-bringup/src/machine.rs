//! The sans-IO bring-up core.

use std::collections::VecDeque;

use xpp_proto::firmware::echo::{self, EchoPacket, SpiPacket};
use xpp_proto::firmware::{Fx2Load, MppLoad, PicImage, PicLoad, PicReply, PicStep, select_images};
use xpp_proto::mgmt::{
    self, CardInfo, DevDest, DeviceStatus, MgmtError, OwnedReply, Request, SerCommand, Session,
};
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{
    AbDescription, AbRequest, Address, CardType, Message, RegAccess, RegCmd, Repr, SyncMode, SyncState,
    UnitDescriptor, deframe, xbus_reset,
};
use xpp_proto::{Duration, Instant};
use xpp_usb::discovery::{Family, Stage, classify};
use xpp_usb::{ControlSetup, DeviceInfo, TransferError, ep};

use super::cards::{self, CardKind, Step};
use super::{
    Action, Answer, AnswerSource, BringUpConfig, BringUpError, BringUpResult, Event, Failure, FirmwareSet,
    OnRunning, Outcome, Phase, SyncPolicy, TimelineEvent, UnitReport,
};
use xpp_proto::wire::Law;

/// Failed bulk transfers (stall, fault) a bring-up goes past before it fails.
// Decision: 8. A transfer that fails loses its packets like a dropped one, which the steps'
// retries recover; a device whose transfers keep failing is broken, and eight failures (a
// few milliseconds each) say so long before any phase timeout.
pub const MAX_TRANSFER_FAILURES: u8 = 8;

/// An MPP DEV_SEND request with owned data.
#[derive(Debug)]
enum MppReq {
    Start([u8; 6]),
    Seg(u16, Vec<u8>),
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EchoStage {
    Test,
    Version,
}

/// A request whose reply is awaited: how many times it has been sent, and when it is sent
/// again (or, once [`BringUpConfig::request_attempts`] are used, when the wait ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    attempt: u8,
    at: Instant,
}

/// What the current unit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// The answer to this read (a `Step::Read` or `Step::Poll`), sent `attempt` times.
    Reply {
        step: Step,
        deadline: Instant,
        attempt: u8,
    },
    Until(Instant),
}

#[derive(Debug)]
struct UnitRun {
    /// Index into `BringUp::units`.
    index: usize,
    /// Running the first stage: chip detection, or the whole check of a verified unit.
    detect: bool,
    steps: VecDeque<Step>,
    total: usize,
    wait: Wait,
}

/// The PIC load's wait for the reply to a burst's END packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PicWait {
    /// No reply expected.
    Nothing,
    /// The burst is queued; its reply timeout starts once it has gone out
    /// ([`BringUp::handle_out_idle`]). A reply that comes first is taken.
    Sending,
    /// The burst is out; the reply is due by then.
    Until(Instant),
}

#[derive(Debug)]
enum Work {
    /// Waiting for a device; `None` = any stage (Detect).
    AwaitDevice(Option<Stage>),
    Control {
        reqs: VecDeque<(ControlSetup, Vec<u8>)>,
        total: usize,
    },
    StatusGet,
    Fpga {
        reqs: VecDeque<MppReq>,
        total: usize,
    },
    CardInfo {
        unit: u8,
    },
    Pic {
        steps: VecDeque<PicStep>,
        total: usize,
        reply: PicWait,
        /// The packets of the image being sent (START to END), to send again.
        burst: Vec<PicStep>,
        /// How many times this image has been sent.
        attempt: u8,
    },
    Echo {
        stage: EchoStage,
        deadline: Instant,
        /// How many times this stage's packet has been sent.
        attempt: u8,
    },
    RenumSent,
    /// Descriptors, before anything is sent: listening for input left for a previous host.
    Listen {
        until: Instant,
    },
    /// Descriptors: input came while listening; SYNC_SOURCE(NONE) is sent and what the device
    /// had queued is read and dropped until its SYNC_REPLY(NONE), quiet, or `until`.
    Drain {
        since: Instant,
        quiet_at: Instant,
        until: Instant,
        transfers: usize,
        pcm: bool,
    },
    /// AB_REQUEST sent; waiting for AB_DESCRIPTION.
    Descriptors {
        retry: Retry,
    },
    Xbus {
        release_at: Instant,
    },
    Card(UnitRun),
    Sync {
        want: SyncMode,
        retry: Retry,
    },
    Finished,
}

/// The bring-up state machine (sans-IO).
///
/// Method kinds (quinn-proto style):
/// - inputs (`handle_*`): [`BringUp::handle_device`] after each (re-)enumeration while
///   [`BringUp::awaiting_device`], [`BringUp::handle_control_result`] after each
///   [`Action::ControlOut`], [`BringUp::handle_mpp_in`] / [`BringUp::handle_data_in`] with each
///   IN transfer, [`BringUp::handle_transfer_error`] / [`BringUp::handle_disconnect`] when a
///   transfer fails or the device goes away, [`BringUp::handle_timeout`] when the time from
///   [`BringUp::poll_timeout`] has come;
/// - outputs (`poll_*`): [`BringUp::poll_action`] (execute in order), [`BringUp::poll_event`],
///   [`BringUp::poll_timeout`].
///
/// Polling order after any input: drain `poll_action` (executing each; a `ControlOut` result
/// goes back in before the next action), then drain `poll_event`, then re-arm the timer.
///
/// ```
/// use xpp_bringup::{Action, BringUp, BringUpConfig, FirmwareSet, Phase};
/// use xpp_proto::Instant;
/// use xpp_usb::{DeviceInfo, Speed};
///
/// let mut b = BringUp::new(Instant::ZERO, BringUpConfig::default(), FirmwareSet::new());
/// assert!(b.awaiting_device());
/// // A running device (e4e4:1162): bring-up starts with AB_REQUEST and SYNC_SOURCE(NONE).
/// let info = DeviceInfo {
///     vendor_id: 0xE4E4, product_id: 0x1162, bcd_device: 0x0101, manufacturer: None,
///     product: None, serial: None, speed: Speed::High, location: "doc".into(), interfaces: vec![],
/// };
/// assert!(b.handle_device(Instant::ZERO, &info));
/// assert_eq!(b.phase(), Phase::Descriptors);
/// // It listens 5 ms for input left for a previous host; none came.
/// assert_eq!(b.poll_timeout(), Some(Instant::from_millis(5)));
/// b.handle_timeout(Instant::from_millis(5));
/// assert_eq!(b.poll_action(), Some(Action::DataOut(vec![0x06, 0x00, 0x07, 0x00, 0x1E, 0x00])));
/// assert_eq!(b.poll_action(), Some(Action::DataOut(vec![0x06, 0x00, 0x19, 0x00, 0x00, 0x00])));
/// ```
#[derive(Debug)]
pub struct BringUp {
    cfg: BringUpConfig,
    fw: FirmwareSet,
    phase: Phase,
    phase_start: Instant,
    phase_deadline: Instant,
    /// Requests, reads and images sent again in the current phase (for its timeline entry).
    retries: u16,
    /// Transfers that failed (stall, fault) and were gone past, in the whole bring-up.
    transfer_failures: u8,
    /// The IN endpoint whose stall was seen and not yet followed by input: the other reads
    /// queued on it fail with the same stall, which counts once.
    halted: Option<u8>,
    total_deadline: Instant,
    work: Work,
    device: Option<DeviceInfo>,
    initial_stage: Option<Stage>,
    mpp: Session,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    timeline: Vec<TimelineEvent>,
    warnings: Vec<String>,
    last_answer: Option<Answer>,
    status: Option<DeviceStatus>,
    cards: Vec<CardInfo>,
    description: Option<AbDescription>,
    units: Vec<UnitReport>,
    next_cmd_at: Instant,
    sync: Option<SyncState>,
    unsolicited: u64,
    /// Made by [`BringUp::verify_running`]: a device in another stage fails in Detect.
    verify_only: bool,
    /// The device was found running and is verified, not reset ([`OnRunning::Verify`]).
    verifying: bool,
}

/// Pacing cost of a register command (§6.3): 2 units with a non-zero sub-register, else 1.
fn cost(pacing: Duration, cmd: &RegCmd) -> Duration {
    match cmd {
        RegCmd::Reg(r) if r.subreg != 0 => pacing.saturating_mul(2),
        _ => pacing,
    }
}

/// The first unit (ascending) where `found` differs from `expected`, as a failure. Compared:
/// the fields that make a unit's XPDs and channels (§6.2), not the reserved bytes nor `ec_addr`.
fn mismatch(expected: &AbDescription, found: &AbDescription) -> Option<Failure> {
    let key = |d: &UnitDescriptor| (d.addr, d.card_type, d.subtype, d.numchips, d.ports_per_chip, d.port_dir);
    let unit_of = |d: &AbDescription, unit: u8| d.units().iter().find(|u| u.addr.unit() == unit).copied();
    (0..8u8).find_map(|unit| {
        let (e, f) = (unit_of(expected, unit), unit_of(found, unit));
        (e.as_ref().map(key) != f.as_ref().map(key)).then_some(Failure::UnitMismatch {
            unit,
            expected: e,
            found: f,
        })
    })
}

fn read_matches(want: &RegAccess, want_addr: Address, got: &RegAccess, got_addr: Address) -> bool {
    got_addr.unit() == want_addr.unit()
        && got.port == want.port
        && got.reg == want.reg
        && got.do_subreg == want.do_subreg
        && (!want.do_subreg || got.subreg == want.subreg)
        && got.expander == want.expander
}

impl BringUp {
    /// A bring-up starting at `now`, waiting for the first device.
    pub fn new(now: Instant, cfg: BringUpConfig, fw: FirmwareSet) -> Self {
        let mut b = Self {
            phase: Phase::Detect,
            phase_start: now,
            retries: 0,
            transfer_failures: 0,
            halted: None,
            phase_deadline: now + cfg.timeouts.detect,
            total_deadline: now + cfg.timeouts.total,
            cfg,
            fw,
            work: Work::AwaitDevice(None),
            device: None,
            initial_stage: None,
            mpp: Session::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            timeline: Vec::new(),
            warnings: Vec::new(),
            last_answer: None,
            status: None,
            cards: Vec::new(),
            description: None,
            units: Vec::new(),
            next_cmd_at: now,
            sync: None,
            unsolicited: 0,
            verify_only: false,
            verifying: false,
        };
        b.events.push_back(Event::PhaseStarted { phase: Phase::Detect, at: now });
        b
    }

    /// A core that only verifies a device found running, as [`OnRunning::Verify`] does
    /// (whatever `cfg.on_running` says), and fails in Detect with [`Failure::NotRunning`] if
    /// the device is in another stage. It needs no firmware.
    pub fn verify_running(now: Instant, cfg: BringUpConfig) -> Self {
        let mut b = Self::new(now, cfg.with_on_running(OnRunning::Verify), FirmwareSet::new());
        b.verify_only = true;
        b
    }

    // ----- observation -------------------------------------------------------------------

    /// The current phase.
    pub const fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether bring-up has finished (done or failed).
    pub const fn is_finished(&self) -> bool {
        matches!(self.work, Work::Finished)
    }

    /// Whether the core waits for [`BringUp::handle_device`] (Detect and after a re-enumeration
    /// was announced).
    pub const fn awaiting_device(&self) -> bool {
        matches!(self.work, Work::AwaitDevice(_))
    }

    /// Whether the current phase talks over the management interface (so the IO layer knows
    /// which IN endpoint to wait on).
    pub const fn expects_mgmt(&self) -> bool {
        matches!(self.work, Work::StatusGet | Work::Fpga { .. } | Work::CardInfo { .. } | Work::RenumSent)
    }

    /// The phases finished so far.
    pub fn timeline(&self) -> &[TimelineEvent] {
        &self.timeline
    }

    /// The device's last answer.
    pub const fn last_answer(&self) -> Option<&Answer> {
        self.last_answer.as_ref()
    }

    // ----- outputs -----------------------------------------------------------------------

    /// The next thing to do.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`BringUp::handle_timeout`] must next run.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let mut t = self.phase_deadline.min(self.total_deadline);
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(self.mpp.poll_timeout());
        match &self.work {
            Work::Listen { until } => consider(Some(*until)),
            Work::Drain { quiet_at, until, .. } => consider(Some((*quiet_at).min(*until))),
            Work::Descriptors { retry } | Work::Sync { retry, .. } => consider(Some(retry.at)),
            Work::Xbus { release_at } => consider(Some(*release_at)),
            Work::Pic { reply: PicWait::Until(d), .. } => consider(Some(*d)),
            Work::Echo { deadline, .. } => consider(Some(*deadline)),
            Work::Card(run) => match run.wait {
                Wait::Reply { deadline, .. } => consider(Some(deadline)),
                Wait::Until(u) => consider(Some(u)),
                Wait::Nothing => consider(Some(self.next_cmd_at)),
            },
            _ => {}
        }
        Some(t)
    }

    // ----- inputs ------------------------------------------------------------------------

    /// The device found by the opener (first detection, or after a re-enumeration). Returns
    /// whether it was accepted: in Detect any Astribank is; after a re-enumeration only one in
    /// the expected stage (the opener may still see the old identity for a while).
    pub fn handle_device(&mut self, now: Instant, info: &DeviceInfo) -> bool {
        let Work::AwaitDevice(expect) = self.work else { return false };
        let model = classify(info.vendor_id, info.product_id);
        let stage_name = model.map_or("not an Astribank", |m| m.stage.name());
        self.answer(
            now,
            AnswerSource::Enumeration,
            format!(
                "enumerated as {:04x}:{:04x} bcdDevice {:04x} ({stage_name})",
                info.vendor_id, info.product_id, info.bcd_device
            ),
        );
        let Some(model) = model else {
            if expect.is_none() {
                self.fail(now, Failure::NotAnAstribank { vendor: info.vendor_id, product: info.product_id });
            }
            return false;
        };
        if expect.is_some_and(|s| s != model.stage) {
            return false;
        }
        if self.verify_only && model.stage != Stage::Running {
            self.fail(now, Failure::NotRunning { stage: model.stage.name() });
            return false;
        }
        self.device = Some(info.clone());
        if self.initial_stage.is_none() {
            self.initial_stage = Some(model.stage);
        }
        // A new handle: a fresh MPP session (seq restarts at 1, MT §2.4 rule 1).
        self.mpp = Session::new();
        match model.stage {
            Stage::Cold | Stage::TwinStarMonitor | Stage::Recovery => self.enter_usb_firmware(now),
            Stage::UsbFirmware => self.enter_fpga(now),
            Stage::Running => self.enter_descriptors(now),
            _ => self.fail(now, Failure::UnsupportedStage(model.stage.name())),
        }
        true
    }

    /// The result of the last [`Action::ControlOut`].
    pub fn handle_control_result(&mut self, now: Instant, result: Result<usize, TransferError>) {
        let Work::Control { reqs, total } = &mut self.work else { return };
        let (done, total) = (*total - reqs.len(), *total);
        match result {
            Ok(n) => {
                self.answer(
                    now,
                    AnswerSource::Control,
                    format!("control transfer {done}/{total} OK ({n} bytes)"),
                );
                self.events.push_back(Event::Progress { phase: Phase::UsbFirmware, done, total });
                self.next_control(now);
            }
            Err(e) => {
                self.answer(now, AnswerSource::Control, format!("control transfer {done}/{total}: {e}"));
                self.fail(now, Failure::Transfer(e));
            }
        }
    }

    /// One IN transfer from the management endpoint (0x88).
    pub fn handle_mpp_in(&mut self, now: Instant, transfer: &[u8]) {
        self.halted = None;
        if self.is_finished() {
            return;
        }
        self.answer(now, AnswerSource::Mgmt, mgmt::describe(transfer).to_string());
        self.mpp.handle_input(now, transfer);
        self.drain_mpp(now);
    }

    /// Every OUT transfer submitted so far on `endpoint` has completed (the IO driver says so
    /// when an OUT endpoint runs empty). Waits for an answer to what was sent start here: the
    /// PIC reply timeout.
    pub fn handle_out_idle(&mut self, now: Instant, endpoint: u8) {
        let pic_reply = self.cfg.timeouts.pic_reply;
        if let Work::Pic { reply: reply @ PicWait::Sending, .. } = &mut self.work
            && endpoint == ep::DATA_OUT
        {
            *reply = PicWait::Until(now + pic_reply);
        }
    }

    /// One IN transfer from the data endpoint (0x86).
    pub fn handle_data_in(&mut self, now: Instant, transfer: &[u8]) {
        self.halted = None;
        match &self.work {
            Work::Finished | Work::AwaitDevice(_) | Work::Control { .. } => {}
            Work::Pic { .. } => self.pic_input(now, transfer),
            Work::Echo { .. } => self.echo_input(now, transfer),
            Work::StatusGet | Work::Fpga { .. } | Work::CardInfo { .. } | Work::RenumSent => {}
            _ => self.xpp_input(now, transfer),
        }
    }

    /// A transfer failed on `endpoint`.
    ///
    /// A failed bulk transfer (a stall, a bus fault) loses what it carried, as a dropped
    /// transfer would: up to [`MAX_TRANSFER_FAILURES`] of them in a bring-up are gone past
    /// with a warning (a stalled endpoint gets its halt cleared, [`Action::ClearHalt`]), and
    /// the step's own retries send again what a reply did not come for; one more fails the
    /// bring-up.
    pub fn handle_transfer_error(&mut self, now: Instant, endpoint: u8, error: TransferError) {
        match error {
            TransferError::Cancelled => {}
            TransferError::Disconnected => self.handle_disconnect(now),
            e => {
                if self.awaiting_device() || self.is_finished() {
                    return;
                }
                if e == TransferError::Stall && self.halted == Some(endpoint) {
                    return; // another read queued on the endpoint that stalled
                }
                if e == TransferError::Stall && endpoint & 0x80 != 0 {
                    self.halted = Some(endpoint);
                }
                if self.transfer_failures >= MAX_TRANSFER_FAILURES {
                    self.fail(now, Failure::Transfer(e));
                    return;
                }
                self.transfer_failures += 1;
                self.retries += 1;
                if e == TransferError::Stall {
                    self.actions.push_back(Action::ClearHalt(endpoint));
                }
                self.warn(format!(
                    "a transfer on endpoint 0x{endpoint:02X} failed ({e}){}: going on (failure {} of {} allowed)",
                    if e == TransferError::Stall { ", halt cleared" } else { "" },
                    self.transfer_failures,
                    MAX_TRANSFER_FAILURES
                ));
            }
        }
    }

    /// The device went away. Expected after the USB firmware download and RENUM; anywhere
    /// else it fails the bring-up.
    pub fn handle_disconnect(&mut self, now: Instant) {
        match self.work {
            Work::AwaitDevice(_) | Work::RenumSent | Work::Finished => {}
            Work::Control { ref reqs, .. } if reqs.is_empty() => {}
            _ => {
                self.mpp.handle_disconnect();
                self.fail(now, Failure::Disconnected);
            }
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.mpp.handle_timeout(now);
        self.drain_mpp(now);
        if self.is_finished() {
            return;
        }
        match &mut self.work {
            Work::Listen { until } if now >= *until => self.request_description(now, true),
            Work::Drain { quiet_at, until, .. } if now >= (*quiet_at).min(*until) => {
                let why = if now >= *until {
                    format!(
                        "IN transfers still coming {} after SYNC_SOURCE(NONE); AB_REQUEST sent anyway",
                        self.cfg.timeouts.drain
                    )
                } else {
                    "no SYNC_REPLY to SYNC_SOURCE(NONE), the device went quiet".to_owned()
                };
                self.end_drain(now, Some(why));
            }
            Work::Descriptors { retry } | Work::Sync { retry, .. } if now >= retry.at => self.resend(now),
            Work::Xbus { release_at } if now >= *release_at => {
                self.send_xpp(Address::ZERO, Message::XbusReset { mask: xbus_reset::RELEASE });
                self.enter_unit(now, 0);
            }
            Work::Card(_) => self.advance_card(now),
            Work::Pic { reply: PicWait::Until(d), .. } if now >= *d => self.pic_reply_late(now),
            Work::Echo { deadline, .. } if now >= *deadline => self.echo_reply_late(now),
            _ => {}
        }
        if self.is_finished() {
            return;
        }
        if now >= self.total_deadline {
            self.fail(now, Failure::Timeout { waiting_for: "the end of bring-up (90 s)" });
        } else if now >= self.phase_deadline {
            let waiting_for = match self.phase {
                Phase::Detect => "a device",
                Phase::UsbFirmware => "the USB firmware download",
                Phase::WaitRenum => "re-enumeration with the USB firmware running",
                Phase::Fpga => "the FPGA load",
                Phase::Pic => "the PIC load",
                Phase::Echo => "the echo canceller",
                Phase::Renum => "re-enumeration with the FPGA running",
                Phase::Descriptors => "AB_DESCRIPTION",
                Phase::XbusReset => "XBUS_RESET",
                Phase::CardInit { .. } => "the unit's initialisation",
                Phase::Verify { .. } => "the unit's verification",
                Phase::SyncSource => "SYNC_REPLY",
                Phase::Ready => "ready",
            };
            self.fail(now, Failure::Timeout { waiting_for });
        }
    }

    // ----- phase bookkeeping --------------------------------------------------------------

    fn timeout_of(&self, phase: Phase) -> Duration {
        let t = &self.cfg.timeouts;
        match phase {
            Phase::Detect => t.detect,
            Phase::UsbFirmware => t.usb_firmware,
            Phase::WaitRenum | Phase::Renum => t.renumeration,
            Phase::Fpga => t.fpga,
            Phase::Pic => t.pic,
            Phase::Echo => t.echo,
            Phase::Descriptors => t.descriptors,
            Phase::XbusReset => t.xbus_reset,
            Phase::CardInit { .. } | Phase::Verify { .. } => t.card_init,
            Phase::SyncSource => t.sync,
            Phase::Ready => Duration::ZERO,
        }
    }

    /// Ends the current phase with `outcome` and starts `next`.
    fn next_phase(&mut self, now: Instant, next: Phase, outcome: Outcome) {
        self.end_phase(now, outcome);
        self.phase = next;
        self.phase_start = now;
        self.retries = 0;
        self.phase_deadline = now + self.timeout_of(next);
        self.events.push_back(Event::PhaseStarted { phase: next, at: now });
    }

    fn end_phase(&mut self, now: Instant, outcome: Outcome) {
        let ev = TimelineEvent {
            phase: self.phase,
            start: self.phase_start,
            duration: now.saturating_duration_since(self.phase_start),
            outcome,
            retries: self.retries,
        };
        self.timeline.push(ev);
        self.events.push_back(Event::Timeline(ev));
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message.clone());
        self.events.push_back(Event::Warning { phase: self.phase, message });
    }

    fn answer(&mut self, now: Instant, source: AnswerSource, text: String) {
        self.last_answer = Some(Answer { at: now, source, text });
    }

    /// Fails the bring-up: the phase is closed as failed, every queued action is dropped (so
    /// nothing more is sent) and [`Action::Failed`] is the last action.
    fn fail(&mut self, now: Instant, reason: Failure) {
        if self.is_finished() {
            return;
        }
        self.end_phase(now, Outcome::Failed);
        self.work = Work::Finished;
        self.actions.clear();
        self.actions.push_back(Action::Failed(BringUpError {
            phase: self.phase,
            at: now,
            reason,
            last_answer: self.last_answer.clone(),
        }));
    }

    fn device_ids(&self) -> (u16, u16, u16) {
        self.device.as_ref().map_or((0, 0, 0), |d| (d.vendor_id, d.product_id, d.bcd_device))
    }

    // ----- sending -----------------------------------------------------------------------

    fn send_mpp(&mut self, now: Instant, req: Request<'_>) {
        if let Err(e) = self.mpp.send(now, req) {
            self.fail(now, Failure::Mgmt(e));
            return;
        }
        let mut buf = [0u8; mgmt::MAX_PACKET_LEN];
        while let Some(n) = self.mpp.poll_transmit(now, &mut buf) {
            self.actions.push_back(Action::MppOut(buf[..n.min(buf.len())].to_vec()));
        }
    }

    fn send_xpp(&mut self, addr: Address, message: Message<'_>) {
        let repr = Repr::command(addr, message);
        let mut buf = vec![0u8; repr.buffer_len()];
        if repr.emit(&mut buf).is_ok() {
            self.actions.push_back(Action::DataOut(buf));
        }
    }

    fn drain_mpp(&mut self, now: Instant) {
        while let Some(ev) = self.mpp.poll_event() {
            if self.is_finished() {
                return;
            }
            match ev {
                mgmt::Event::Completed { reply, .. } => self.on_mpp_reply(now, reply),
                mgmt::Event::Failed { error, .. } => self.fail(now, Failure::Mgmt(error)),
                mgmt::Event::Sent { .. } => self.on_mpp_sent(now),
                _ => {}
            }
        }
    }

    // ----- UsbFirmware / WaitRenum ---------------------------------------------------------

    fn enter_usb_firmware(&mut self, now: Instant) {
        self.next_phase(now, Phase::UsbFirmware, Outcome::Done);
        let (vendor, product, bcd) = self.device_ids();
        let Some(name) = select_images(vendor, product, bcd).usb else {
            self.fail(now, Failure::NoImageFor { kind: "USB", vendor, product, bcd });
            return;
        };
        let reqs: Result<VecDeque<(ControlSetup, Vec<u8>)>, Failure> = match self.fw.get(name) {
            None => Err(Failure::MissingImage {
                name: name.to_owned(),
                searched: self.fw.origin().map(str::to_owned),
            }),
            Some(Err(e)) => Err(Failure::BadImage { name: name.to_owned(), error: *e }),
            Some(Ok(hex)) => Fx2Load::new(hex)
                .map(|load| {
                    load.requests()
                        .map(|r| {
                            let setup = ControlSetup {
                                request_type: r.request_type,
                                request: r.request,
                                value: r.value,
                                index: r.index,
                            };
                            (setup, r.data.to_vec())
                        })
                        .collect()
                })
                .map_err(|error| Failure::BadImage { name: name.to_owned(), error }),
        };
        match reqs {
            Ok(reqs) => {
                let total = reqs.len();
                self.work = Work::Control { reqs, total };
                self.next_control(now);
            }
            Err(f) => self.fail(now, f),
        }
    }

    fn next_control(&mut self, now: Instant) {
        let Work::Control { reqs, .. } = &mut self.work else { return };
        match reqs.pop_front() {
            Some((setup, data)) => self.actions.push_back(Action::ControlOut { setup, data }),
            None => {
                // CPUCS released: the device renumerates as 11x1 (MT §1.2, §5.3).
                self.next_phase(now, Phase::WaitRenum, Outcome::Done);
                self.work = Work::AwaitDevice(Some(Stage::UsbFirmware));
                self.actions.push_back(Action::WaitForReenumeration { expect: Stage::UsbFirmware });
            }
        }
    }

    // ----- Fpga ----------------------------------------------------------------------------

    fn enter_fpga(&mut self, now: Instant) {
        self.next_phase(now, Phase::Fpga, Outcome::Done);
        self.work = Work::StatusGet;
        self.send_mpp(now, Request::StatusGet);
    }

    fn on_mpp_reply(&mut self, now: Instant, reply: OwnedReply) {
        match (&mut self.work, reply) {
            (Work::StatusGet, OwnedReply::StatusGetReply(status)) => self.on_status(now, status),
            (Work::Fpga { reqs, total }, OwnedReply::Ack { .. }) => {
                let done = *total - reqs.len();
                let total = *total;
                if done % 128 == 0 || reqs.is_empty() {
                    self.events.push_back(Event::Progress { phase: Phase::Fpga, done, total });
                }
                self.next_fpga(now);
            }
            (Work::CardInfo { unit }, OwnedReply::SerRecv { data }) => {
                let unit = *unit;
                match CardInfo::parse(data.as_slice()) {
                    Ok(info) => {
                        self.cards.push(info);
                        self.next_card_info(now, unit + 1);
                    }
                    Err(e) => self.fail(now, Failure::Mgmt(e)),
                }
            }
            (_, other) => {
                let _ = other;
                self.fail(
                    now,
                    Failure::Mgmt(MgmtError::Invalid {
                        what: "MPP reply",
                        offset: 4,
                        reason: "not expected now",
                    }),
                );
            }
        }
    }

    fn on_mpp_sent(&mut self, now: Instant) {
        if let Work::RenumSent = self.work {
            self.work = Work::AwaitDevice(Some(Stage::Running));
            self.actions.push_back(Action::WaitForReenumeration { expect: Stage::Running });
            let _ = now;
        }
    }

    fn on_status(&mut self, now: Instant, status: DeviceStatus) {
        self.status = Some(status);
        let (vendor, product, bcd) = self.device_ids();
        let name = select_images(vendor, product, bcd).fpga;
        let loaded = status.fpga_loaded();
        let Some(name) = name else {
            if loaded {
                self.warn(format!(
                    "no FPGA image known for {vendor:04x}:{product:04x}; keeping the loaded one"
                ));
                self.next_phase(now, Phase::Pic, Outcome::Skipped);
                self.enter_pic(now);
            } else {
                self.fail(now, Failure::NoImageFor { kind: "FPGA", vendor, product, bcd });
            }
            return;
        };
        let plan: Result<([u8; 6], VecDeque<MppReq>), Failure> = match self.fw.get(name) {
            None => Err(Failure::MissingImage {
                name: name.to_owned(),
                searched: self.fw.origin().map(str::to_owned),
            }),
            Some(Err(e)) => Err(Failure::BadImage { name: name.to_owned(), error: *e }),
            Some(Ok(hex)) => MppLoad::fpga(hex)
                .map(|load| {
                    let reqs = load
                        .requests()
                        .filter_map(|r| match r {
                            Request::DevSendStart { version, .. } => Some(MppReq::Start(version)),
                            Request::DevSendSeg { offset, data } => Some(MppReq::Seg(offset, data.to_vec())),
                            Request::DevSendEnd => Some(MppReq::End),
                            _ => None,
                        })
                        .collect();
                    (load.version(), reqs)
                })
                .map_err(|error| Failure::BadImage { name: name.to_owned(), error }),
        };
        let (version, reqs) = match plan {
            Ok(p) => p,
            Err(f) if loaded && matches!(f, Failure::MissingImage { .. }) => {
                self.warn(format!("{f}; keeping the FPGA image already loaded"));
                self.next_phase(now, Phase::Pic, Outcome::Skipped);
                self.enter_pic(now);
                return;
            }
            Err(f) => {
                self.fail(now, f);
                return;
            }
        };
        // Decision: an FPGA already loaded with the same version string as the image is kept
        // (a device found in the "FPGA loaded" stage); any other loaded version is replaced.
        if loaded && version != [0; 6] && status.versions.fpga == version {
            self.next_phase(now, Phase::Pic, Outcome::Skipped);
            self.enter_pic(now);
            return;
        }
        let total = reqs.len();
        self.work = Work::Fpga { reqs, total };
        self.next_fpga(now);
    }

    fn next_fpga(&mut self, now: Instant) {
        let Work::Fpga { reqs, .. } = &mut self.work else { return };
        match reqs.pop_front() {
            Some(MppReq::Start(version)) => {
                self.send_mpp(now, Request::DevSendStart { dest: DevDest::Fpga, version });
            }
            Some(MppReq::Seg(offset, data)) => {
                self.send_mpp(now, Request::DevSendSeg { offset, data: &data });
            }
            Some(MppReq::End) => self.send_mpp(now, Request::DevSendEnd),
            None => {
                self.next_phase(now, Phase::Pic, Outcome::Done);
                self.enter_pic(now);
            }
        }
    }

    // ----- Pic / Echo ------------------------------------------------------------------------

    /// The phase is already `Pic`.
    fn enter_pic(&mut self, now: Instant) {
        let (vendor, product, _) = self.device_ids();
        let modular = classify(vendor, product).is_some_and(|m| m.family == Family::Modular);
        if !modular {
            // Decision: as the reference loader, PIC and echo loading only for the modular
            // family (FPGA_1161*, MT §5.7).
            self.next_phase(now, Phase::Renum, Outcome::Skipped);
            self.enter_renum(now);
            return;
        }
        self.next_card_info(now, 0);
    }

    fn next_card_info(&mut self, now: Instant, unit: u8) {
        // Units 0..3 are the module slots, 4 the echo canceller (MT §3.3).
        if unit <= 4 {
            self.work = Work::CardInfo { unit };
            let (bytes, n) = SerCommand::card_info(unit).to_bytes();
            self.send_mpp(now, Request::SerSend { data: &bytes[..n.min(bytes.len())] });
            return;
        }
        let mut types: Vec<u8> = self
            .cards
            .iter()
            .filter(|c| c.unit() <= 3)
            .map(CardInfo::type_code)
            .filter(|t| matches!(t, 1..=4 | 6))
            .collect();
        types.sort_unstable();
        types.dedup();
        let mut missing = Vec::new();
        let steps: Result<VecDeque<PicStep>, Failure> = {
            let mut images = Vec::new();
            let mut err = None;
            for &t in &types {
                let name = format!("PIC_TYPE_{t}.hex");
                match self.fw.get(&name) {
                    None => missing.push(name),
                    Some(Err(e)) => {
                        err = Some(Failure::BadImage { name, error: *e });
                        break;
                    }
                    Some(Ok(hex)) => match PicImage::with_card_type(t, hex) {
                        Ok(i) => images.push(i),
                        Err(error) => {
                            err = Some(Failure::BadImage { name, error });
                            break;
                        }
                    },
                }
            }
            match err {
                Some(f) => Err(f),
                None if images.is_empty() => Ok(VecDeque::new()),
                None => Ok(PicLoad::new(&images).steps().collect()),
            }
        };
        for name in missing {
            // Decision (assumed, confirm on hardware): a module type without its PIC file keeps
            // the PIC firmware it has (the
            // reference loader passes only the files it finds).
            self.warn(format!("{name} not in the firmware set: that module keeps its PIC firmware"));
        }
        match steps {
            Err(f) => self.fail(now, f),
            Ok(steps) if steps.is_empty() => {
                self.end_phase(now, Outcome::Skipped);
                self.start_phase_only(now, Phase::Echo);
                self.enter_echo(now);
            }
            Ok(steps) => {
                let total = steps.len();
                self.work =
                    Work::Pic { steps, total, reply: PicWait::Nothing, burst: Vec::new(), attempt: 1 };
                self.next_pic(now);
            }
        }
    }

    /// Starts `phase` without closing the current one (it was closed already).
    fn start_phase_only(&mut self, now: Instant, phase: Phase) {
        self.phase = phase;
        self.phase_start = now;
        self.retries = 0;
        self.phase_deadline = now + self.timeout_of(phase);
        self.events.push_back(Event::PhaseStarted { phase, at: now });
    }

    fn next_pic(&mut self, now: Instant) {
        let Work::Pic { steps, total, reply, burst, attempt } = &mut self.work else { return };
        let mut out = Vec::new();
        burst.clear();
        *attempt = 1;
        while let Some(step) = steps.pop_front() {
            burst.push(step);
            let mut buf = [0u8; 16];
            if let Ok(n) = step.packet.emit(&mut buf) {
                out.push(buf[..n].to_vec());
            }
            if step.expects_reply {
                // Decision: the reply timeout starts when the burst has gone out, not when it
                // is queued: a burst is hundreds of packets, and on a slow bus or a loaded host
                // sending it can take longer than the timeout (found in the kernel USB stack
                // test under TCG). The phase timeout still bounds the whole load.
                *reply = PicWait::Sending;
                break;
            }
        }
        let done = *total - steps.len();
        let (total, finished) = (*total, steps.is_empty() && *reply == PicWait::Nothing);
        self.actions.extend(out.into_iter().map(Action::DataOut));
        self.events.push_back(Event::Progress { phase: Phase::Pic, done, total });
        if finished {
            self.next_phase(now, Phase::Echo, Outcome::Done);
            self.enter_echo(now);
        }
    }

    fn pic_input(&mut self, now: Instant, transfer: &[u8]) {
        let Work::Pic { reply: wait, .. } = &mut self.work else { return };
        if *wait == PicWait::Nothing {
            return;
        }
        let Ok(reply) = PicReply::parse(transfer) else { return };
        *wait = PicWait::Nothing;
        self.answer(
            now,
            AnswerSource::Data,
            format!("PIC_REPLY card type {} status {}", reply.card_type, reply.status),
        );
        if reply.check().is_err() {
            if !self.resend_pic("PIC reports a bad checksum") {
                self.fail(now, Failure::Rejected("PIC reports a bad checksum"));
            }
            return;
        }
        self.next_pic(now);
    }

    /// The PIC_REPLY after END did not come: the image again, or the end.
    fn pic_reply_late(&mut self, now: Instant) {
        if !self.resend_pic("no PIC_REPLY") {
            self.fail(now, Failure::Timeout { waiting_for: "PIC_REPLY" });
        }
    }

    /// The echo canceller did not answer: the query again, or the end.
    fn echo_reply_late(&mut self, now: Instant) {
        if !self.resend_echo(now) {
            self.fail(now, Failure::Timeout { waiting_for: "the echo canceller's reply" });
        }
    }

    /// Sends the current PIC image (START to END) again after `why`, while the attempts
    /// ([`BringUpConfig::pic_attempts`]) last; false when they are used up.
    // Decision: a PIC image is sent whole again: START resets the module's checksum (§5.5),
    // so a packet lost on the way (one bad checksum) costs one image, not the bring-up.
    fn resend_pic(&mut self, why: &str) -> bool {
        let attempts = self.cfg.pic_attempts.max(1);
        let Work::Pic { reply, burst, attempt, .. } = &mut self.work else { return false };
        if *attempt >= attempts || burst.is_empty() {
            return false;
        }
        *attempt += 1;
        *reply = PicWait::Sending;
        let (n, card_type) = (*attempt, burst[0].packet.card_type);
        let mut out = Vec::with_capacity(burst.len());
        for step in burst.iter() {
            let mut buf = [0u8; 16];
            if let Ok(len) = step.packet.emit(&mut buf) {
                out.push(buf[..len].to_vec());
            }
        }
        self.actions.extend(out.into_iter().map(Action::DataOut));
        self.retries += 1;
        self.warn(format!(
            "{why} for the PIC image of card type {card_type}: image sent again (attempt {n} of {attempts})"
        ));
        true
    }

    /// Sends the echo canceller's test or version query again after its reply did not come,
    /// while the attempts last; false when they are used up.
    fn resend_echo(&mut self, now: Instant) -> bool {
        let attempts = self.cfg.request_attempts.max(1);
        let timeout = self.cfg.timeouts.echo_reply;
        let Work::Echo { stage, deadline, attempt } = &mut self.work else { return false };
        if *attempt >= attempts {
            return false;
        }
        *attempt += 1;
        *deadline = now + timeout;
        let (stage, n) = (*stage, *attempt);
        let (packet, what) = match stage {
            EchoStage::Test => (EchoPacket::Test, "test packet"),
            EchoStage::Version => (EchoPacket::Spi(SpiPacket::version_query()), "CPLD version query"),
        };
        self.send_echo(packet);
        self.retries += 1;
        self.warn(format!(
            "no answer from the echo canceller within {timeout}: {what} sent again (attempt {n} of {attempts})"
        ));
        true
    }

    /// The phase is already `Echo`.
    fn enter_echo(&mut self, now: Instant) {
        let has_echo = self.cards.iter().any(|c| c.unit() == 4 && c.type_code() == 5);
        if !has_echo {
            // No echo module: the phase does not run (nothing recorded).
            self.phase = Phase::Renum;
            self.phase_start = now;
            self.retries = 0;
            self.phase_deadline = now + self.timeout_of(Phase::Renum);
            self.events.push_back(Event::PhaseStarted { phase: Phase::Renum, at: now });
            self.enter_renum(now);
            return;
        }
        if self.fw.echo_image().is_none() {
            self.warn(format!(
                "echo canceller present but {} is not in the firmware set (proprietary image): not loaded",
                super::ECHO_IMAGE
            ));
            self.next_phase(now, Phase::Renum, Outcome::Skipped);
            self.enter_renum(now);
            return;
        }
        self.work =
            Work::Echo { stage: EchoStage::Test, deadline: now + self.cfg.timeouts.echo_reply, attempt: 1 };
        self.send_echo(EchoPacket::Test);
    }

    fn send_echo(&mut self, p: EchoPacket) {
        let mut buf = [0u8; echo::SPI_PACKET_LEN];
        if let Ok(n) = p.emit(&mut buf) {
            self.actions.push_back(Action::DataOut(buf[..n].to_vec()));
        }
    }

    fn echo_input(&mut self, now: Instant, transfer: &[u8]) {
        let Work::Echo { stage, .. } = self.work else { return };
        match stage {
            EchoStage::Test => {
                let Ok(v) = echo::parse_test_reply(transfer) else { return };
                self.answer(now, AnswerSource::Data, format!("echo test reply 0x{v:04x}"));
                let timeout = self.cfg.timeouts.echo_reply;
                if let Work::Echo { stage, deadline, attempt } = &mut self.work {
                    (*stage, *deadline, *attempt) = (EchoStage::Version, now + timeout, 1);
                }
                self.send_echo(EchoPacket::Spi(SpiPacket::version_query()));
            }
            EchoStage::Version => {
                let Ok(v) = echo::parse_spi_reply(transfer) else { return };
                self.answer(now, AnswerSource::Data, format!("echo CPLD version 0x{v:04x}"));
                if v != echo::CPLD_TEST_HARDWARE {
                    // Decision: opening the OCT6104E runs the image through Octasic's
                    // proprietary API library (MT §5.6), which xpp does not contain; bring-up
                    // probes the module and leaves the chip unopened.
                    self.warn(format!(
                        "echo canceller CPLD 0x{v:04x} answers; opening the chip needs the Octasic API, not done"
                    ));
                }
                self.next_phase(now, Phase::Renum, Outcome::Done);
                self.enter_renum(now);
            }
        }
    }

    // ----- Renum / Descriptors / XbusReset -------------------------------------------------

    /// The phase is already `Renum`.
    fn enter_renum(&mut self, now: Instant) {
        self.work = Work::RenumSent;
        self.send_mpp(now, Request::Renum);
    }

    fn enter_descriptors(&mut self, now: Instant) {
        self.next_phase(now, Phase::Descriptors, Outcome::Done);
        // Decision: listen before sending. A device whose previous host went away without
        // SYNC_SOURCE(NONE) (a crash, a TwinStar jump away from a hung host) still ticks, its
        // IN FIFO full of stale PCM (and maybe replies meant for that host), and a reply to
        // our AB_REQUEST can be lost behind them (issue 15). §8.5: teardown sends nothing
        // that is sure to arrive, so any host can find a device in this state. Input in the
        // listen window means "quiesce first" (Work::Drain); none means the reference order.
        self.work = Work::Listen { until: now + self.cfg.timeouts.listen };
    }

    /// AB_REQUEST (with SYNC_SOURCE(NONE) after it unless the drain sent it already).
    fn request_description(&mut self, now: Instant, with_sync_none: bool) {
        // §8.3 / §14: AB_REQUEST, then SYNC_SOURCE(NONE, 0).
        self.send_xpp(Address::ZERO, Message::AbRequest(AbRequest::default()));
        if with_sync_none {
            self.send_sync(SyncMode::None);
        }
        self.work = Work::Descriptors { retry: self.first_send(now) };
    }

    /// A request sent for the first time now.
    fn first_send(&self, now: Instant) -> Retry {
        Retry { attempt: 1, at: now + self.cfg.timeouts.request_retry }
    }

    fn send_sync(&mut self, mode: SyncMode) {
        self.send_xpp(Address::ZERO, Message::SyncSource(SyncState { mode, drift: 0 }));
    }

    /// An IN transfer on the data interface before AB_REQUEST (left for a previous host), as
    /// it comes; it is counted once read ([`BringUp::xpp_input`]), unless it ended the drain.
    fn stale_input(&mut self, now: Instant) {
        let quiet = self.cfg.timeouts.drain_quiet;
        match &mut self.work {
            Work::Listen { .. } => {
                // Quiesce first: a ticking device stops after SYNC_SOURCE(NONE) (§6.5), and
                // its SYNC_REPLY comes after everything it queued before.
                self.send_sync(SyncMode::None);
                let until = now + self.cfg.timeouts.drain;
                self.work =
                    Work::Drain { since: now, quiet_at: now + quiet, until, transfers: 0, pcm: false };
            }
            Work::Drain { quiet_at, .. } => *quiet_at = now + quiet,
            _ => {}
        }
    }

    /// The drain is over (`problem`: why, if not by the device's SYNC_REPLY(NONE)).
    fn end_drain(&mut self, now: Instant, problem: Option<String>) {
        let Work::Drain { since, transfers, pcm, .. } = self.work else { return };
        let took = now.saturating_duration_since(since);
        self.warn(if pcm {
            format!(
                "device found ticking (its previous host left without SYNC_SOURCE(NONE)?): quiesced, \
                 {transfers} stale IN transfers drained in {took}"
            )
        } else {
            format!("{transfers} stale IN transfers (replies for a previous host?) drained in {took}")
        });
        if let Some(p) = problem {
            self.warn(p);
        }
        self.request_description(now, false);
    }

    /// Sends again the request of [`Work::Descriptors`] or [`Work::Sync`] whose reply is late,
    /// while the attempts last; after the last one the phase timeout decides.
    fn resend(&mut self, now: Instant) {
        let attempts = self.cfg.request_attempts.max(1);
        let wait = self.cfg.timeouts.request_retry;
        let phase_deadline = self.phase_deadline;
        let (retry, sync) = match &mut self.work {
            Work::Descriptors { retry } => (retry, None),
            Work::Sync { want, retry } => (retry, Some(*want)),
            _ => return,
        };
        if retry.attempt >= attempts {
            retry.at = phase_deadline;
            return;
        }
        retry.attempt += 1;
        retry.at = now + wait;
        let attempt = retry.attempt;
        self.retries += 1;
        let (request, reply) = match sync {
            None => {
                self.send_xpp(Address::ZERO, Message::AbRequest(AbRequest::default()));
                ("AB_REQUEST".to_owned(), "AB_DESCRIPTION".to_owned())
            }
            Some(mode) => {
                self.send_sync(mode);
                (format!("SYNC_SOURCE({mode})"), format!("SYNC_REPLY({mode})"))
            }
        };
        self.warn(format!(
            "no {reply} {wait} after {request}: {request} sent again (attempt {attempt} of {attempts})"
        ));
    }

    fn on_description(&mut self, now: Instant, d: AbDescription) {
        if let Err(reason) = d.host_check() {
            self.fail(now, Failure::BadDescription(reason));
            return;
        }
        if let Some(expected) = self.cfg.expected_description
            && let Some(f) = mismatch(&expected, &d)
        {
            self.fail(now, f);
            return;
        }
        let mut units: Vec<UnitReport> = Vec::new();
        for u in d.units() {
            let Some(kind) = CardKind::from_card_type(u.card_type) else {
                // §6.2: a type with no driver stops the processing of the remaining ones.
                self.warn(format!(
                    "unit {}: card type {} has no driver; later descriptors ignored",
                    u.addr.unit(),
                    u8::from(u.card_type)
                ));
                break;
            };
            if let Err(why) = cards::check_descriptor(kind, u) {
                self.warn(format!("unit {} ({kind}): {why}; no XPD created", u.addr.unit()));
                continue;
            }
            if units.iter().any(|r| r.unit == u.addr.unit()) {
                self.warn(format!("unit {}: second descriptor ignored", u.addr.unit()));
                continue;
            }
            let ports = u.numchips.saturating_mul(u.ports_per_chip);
            let pps = kind.ports_per_subunit();
            let subunits = ports.div_ceil(pps).min(8);
            let all = if ports >= 32 { u32::MAX } else { (1u32 << ports) - 1 };
            let (law, pri_protocol) = match kind {
                CardKind::Pri if self.cfg.pri_protocol == PriProtocol::E1 => {
                    (Law::Alaw, Some(PriProtocol::E1))
                }
                CardKind::Pri => (Law::Mulaw, Some(self.cfg.pri_protocol)),
                CardKind::Bri => (Law::Alaw, None),
                CardKind::Echo => (Law::Default, None),
                _ => (Law::Mulaw, None),
            };
            units.push(UnitReport {
                unit: u.addr.unit(),
                descriptor: *u,
                kind,
                ports,
                subunits,
                present: if kind.is_fxs() { 0 } else { all },
                chip_ids: [None; 8],
                law,
                pri_protocol,
            });
        }
        units.sort_by_key(|u| u.unit);
        self.units = units;
        self.description = Some(d);
        if self.cfg.on_running == OnRunning::Verify && self.initial_stage == Some(Stage::Running) {
            // Found running: nothing that resets or writes. Decision: a PRI unit's protocol
            // and law in its report are the configured ones, not read back from the framer
            // (the reference documents no read of FMR0-FMR4 by the host): a backup host is
            // configured like the master it takes over from.
            self.verifying = true;
            self.enter_unit(now, 0);
            return;
        }
        self.next_phase(now, Phase::XbusReset, Outcome::Done);
        // §6.2: XBUS_RESET 0x04, then 0x00. Decision (assumed, confirm on hardware): the
        // release follows one pacing unit
        // (1 ms) later, like two consecutive ticks of the reference's command queue.
        self.send_xpp(Address::ZERO, Message::XbusReset { mask: xbus_reset::RESET_SPI });
        self.work = Work::Xbus { release_at: now + self.cfg.pacing };
    }

    // ----- CardInit -----------------------------------------------------------------------

    /// Ends the current phase and starts unit `index` (CardInit, or Verify), or SyncSource
    /// after the last unit.
    fn enter_unit(&mut self, now: Instant, index: usize) {
        let Some(u) = self.units.get(index) else {
            self.next_phase(now, Phase::SyncSource, Outcome::Done);
            self.enter_sync(now);
            return;
        };
        let (unit, kind, ports) = (u.unit, u.kind, u.ports);
        let (phase, steps) = if self.verifying {
            (Phase::Verify { unit }, cards::verify_steps(unit, kind, ports))
        } else {
            (Phase::CardInit { unit }, cards::detect_steps(unit, kind, ports))
        };
        self.next_phase(now, phase, Outcome::Done);
        let steps: VecDeque<Step> = steps.into();
        let total = steps.len();
        self.work = Work::Card(UnitRun { index, detect: true, steps, total, wait: Wait::Nothing });
        self.advance_card(now);
    }

    fn advance_card(&mut self, now: Instant) {
        loop {
            let pacing = self.cfg.pacing;
            let read_timeout = self.cfg.timeouts.read;
            let attempts = self.cfg.request_attempts.max(1);
            let Work::Card(run) = &mut self.work else { return };
            match run.wait {
                Wait::Reply { deadline, step, attempt } => {
                    if now < deadline {
                        return;
                    }
                    let (Step::Read(addr, cmd, _) | Step::Poll { addr, cmd, .. }) = step else { return };
                    if attempt < attempts {
                        // Decision: a read whose reply did not come is sent again (the
                        // reference's scripts only wait, §7.6); reads change nothing.
                        run.wait = Wait::Reply { step, deadline: now + read_timeout, attempt: attempt + 1 };
                        self.retries += 1;
                        let (port, reg) = (cmd.port, cmd.reg);
                        let cmd = RegCmd::Reg(cmd);
                        self.next_cmd_at = now + cost(pacing, &cmd);
                        self.send_xpp(addr, Message::RegisterRequest(cmd));
                        self.warn(format!(
                            "unit {}: no REGISTER_REPLY to the read of port {port} register 0x{reg:02X} \
                             within {read_timeout}: read again (attempt {} of {attempts})",
                            addr.unit(),
                            attempt + 1
                        ));
                        return;
                    }
                    let waiting_for = match step {
                        Step::Poll { what, .. } => what,
                        _ => "a register read's REGISTER_REPLY",
                    };
                    self.fail(now, Failure::Timeout { waiting_for });
                    return;
                }
                Wait::Until(t) if now < t => return,
                Wait::Until(_) => run.wait = Wait::Nothing,
                Wait::Nothing => {}
            }
            let Some(&step) = run.steps.front() else {
                if run.detect {
                    run.detect = false;
                    let index = run.index;
                    let Some(u) = self.units.get(index) else { return };
                    let (unit, kind, d, present) = (u.unit, u.kind, u.descriptor, u.present);
                    if kind == CardKind::FxsType6 && present == 0 && u.ports > 0 && !self.verifying {
                        // §8.4: the reference script exits 0 here and the bus goes READY with
                        // dead lines; a module that declares ports but has no chip is an error.
                        let ports = u.ports;
                        self.fail(now, Failure::NoChip { unit, ports });
                        return;
                    }
                    if kind.is_fxs() && present == 0 {
                        self.warn(format!("unit {unit}: no chip answered the detection reads"));
                    }
                    if self.verifying {
                        continue;
                    }
                    let steps: VecDeque<Step> = cards::init_steps(unit, kind, &d, present, &self.cfg).into();
                    if let Work::Card(run) = &mut self.work {
                        run.total += steps.len();
                        run.steps = steps;
                    }
                    continue;
                }
                let next = run.index + 1;
                self.enter_unit(now, next);
                return;
            };
            let paced = matches!(step, Step::Write(..) | Step::Read(..) | Step::Poll { .. });
            if paced && now < self.next_cmd_at {
                return;
            }
            run.steps.pop_front();
            let done = run.total - run.steps.len();
            let total = run.total;
            match step {
                Step::Write(a, cmd) => {
                    self.next_cmd_at = now + cost(pacing, &cmd);
                    self.send_xpp(a, Message::RegisterRequest(cmd));
                }
                Step::Read(a, cmd, _) | Step::Poll { addr: a, cmd, .. } => {
                    run.wait = Wait::Reply { step, deadline: now + read_timeout, attempt: 1 };
                    let cmd = RegCmd::Reg(cmd);
                    self.next_cmd_at = now + cost(pacing, &cmd);
                    self.send_xpp(a, Message::RegisterRequest(cmd));
                }
                Step::Packet(a, c) => self.send_xpp(a, c.message()),
                Step::Delay(d) => run.wait = Wait::Until(now + d),
            }
            if done % 32 == 0 || done == total {
                self.events.push_back(Event::Progress { phase: self.phase, done, total });
            }
        }
    }

    /// A REGISTER_REPLY while a unit runs; `true` if it answered the read awaited.
    fn card_reply(&mut self, now: Instant, addr: Address, r: &RegAccess) -> bool {
        let Work::Card(run) = &mut self.work else { return false };
        let Wait::Reply { step, .. } = run.wait else { return false };
        let (Step::Read(want_addr, want, _) | Step::Poll { addr: want_addr, cmd: want, .. }) = step else {
            return false;
        };
        if !read_matches(&want, want_addr, r, addr) {
            return false;
        }
        run.wait = Wait::Nothing;
        let index = run.index;
        match step {
            Step::Read(_, _, cards::Purpose::ChipId(p)) => {
                if let Some(u) = self.units.get_mut(index) {
                    if let Some(slot) = u.chip_ids.get_mut(usize::from(p)) {
                        *slot = Some(r.data_low);
                    }
                    if r.data_low != 0xFF {
                        u.present |= 1 << p;
                    }
                }
            }
            Step::Read(a, cmd, cards::Purpose::Configured(want)) if r.data_low != want => {
                let present = self.units.get(index).is_none_or(|u| u.present & (1 << cmd.port) != 0);
                if present {
                    let (unit, port, register, found) = (a.unit(), cmd.port, cmd.reg, r.data_low);
                    self.fail(now, Failure::NotConfigured { unit, port, register, found, want });
                    return true;
                }
            }
            Step::Read(_, _, cards::Purpose::Fxs6Id(p)) => {
                if let Some(u) = self.units.get_mut(index) {
                    if let Some(slot) = u.chip_ids.get_mut(usize::from(p)) {
                        *slot = Some(r.data_low);
                    }
                    if r.data_low == 0xC3 {
                        u.present |= 1 << p;
                    }
                }
            }
            Step::Read(_, _, cards::Purpose::Fxs6Check { port, mask, want }) if r.data_low & mask != want => {
                if let Some(u) = self.units.get_mut(index) {
                    u.present &= !(1u32 << port);
                }
            }
            Step::Read(a, _, cards::Purpose::Fxs6UserMode { port, on }) if (r.data_low & 1 != 0) != on => {
                for v in cards::FXS6_USER_MODE_SEQ.iter().rev() {
                    run.steps.push_front(Step::Write(a, RegCmd::Reg(RegAccess::write(port, 0x7E, *v))));
                }
                run.total += cards::FXS6_USER_MODE_SEQ.len();
            }
            Step::Poll { addr, cmd, mask, want, tries, what } if r.data_low & mask != want => {
                if tries > 1 {
                    run.steps.push_front(Step::Poll { addr, cmd, mask, want, tries: tries - 1, what });
                    run.wait = Wait::Until(now + cards::POLL_INTERVAL);
                } else {
                    let unit = addr.unit();
                    self.fail(now, Failure::Calibration { unit, port: cmd.port, what });
                    return true;
                }
            }
            _ => {}
        }
        self.advance_card(now);
        true
    }

    // ----- SyncSource / Ready ---------------------------------------------------------------

    fn enter_sync(&mut self, now: Instant) {
        // §8.3 step 6 / §14: SYNC_SOURCE(PLL, 0) last; a single device then wins the election
        // and gets SYNC_SOURCE(AB, 0).
        self.request_sync(now, SyncMode::Pll);
    }

    fn request_sync(&mut self, now: Instant, want: SyncMode) {
        self.send_sync(want);
        self.work = Work::Sync { want, retry: self.first_send(now) };
    }

    fn on_sync_reply(&mut self, now: Instant, s: SyncState) {
        self.sync = Some(s);
        // The reply to the drain's SYNC_SOURCE(NONE); one in the very transfer that started
        // the drain was queued before that request went out, for a previous host.
        if let Work::Drain { transfers: 1.., .. } = self.work
            && s.mode == SyncMode::None
        {
            self.end_drain(now, None);
            return;
        }
        let Work::Sync { want, .. } = self.work else { return };
        if s.mode != want {
            return;
        }
        if want == SyncMode::Pll && self.cfg.sync == SyncPolicy::Master {
            self.request_sync(now, SyncMode::Ab);
            return;
        }
        self.ready(now);
    }

    fn ready(&mut self, now: Instant) {
        let (Some(device), Some(description)) = (self.device.clone(), self.description) else {
            // Not reachable: SyncSource follows an accepted device and description.
            self.fail(now, Failure::BadDescription("no AB_DESCRIPTION accepted"));
            return;
        };
        self.next_phase(now, Phase::Ready, Outcome::Done);
        self.end_phase(now, Outcome::Done);
        self.work = Work::Finished;
        let result = BringUpResult {
            device,
            initial_stage: self.initial_stage.unwrap_or(Stage::Running),
            status: self.status,
            cards: self.cards.clone(),
            description,
            units: self.units.clone(),
            verified: self.verifying,
            sync: self.sync.unwrap_or(SyncState { mode: SyncMode::None, drift: 0 }),
            timeline: self.timeline.clone(),
            warnings: self.warnings.clone(),
            unsolicited: self.unsolicited,
        };
        self.actions.push_back(Action::Done(Box::new(result)));
    }

    // ----- data-interface input (11x2) ------------------------------------------------------

    fn xpp_input(&mut self, now: Instant, transfer: &[u8]) {
        self.stale_input(now);
        for item in deframe(transfer) {
            if self.is_finished() {
                break;
            }
            let Ok((_, packet)) = item else {
                self.answer(now, AnswerSource::Data, "malformed transfer".to_owned());
                break;
            };
            let Ok(repr) = Repr::parse(&packet) else {
                self.answer(now, AnswerSource::Data, "undecodable packet".to_owned());
                break;
            };
            match repr.message {
                Message::PcmRead(_) => {
                    if let Work::Drain { pcm, .. } = &mut self.work {
                        *pcm = true;
                    }
                    continue;
                }
                Message::SyncReply(s) => {
                    self.answer(now, AnswerSource::Data, repr.to_string());
                    self.on_sync_reply(now, s);
                    continue;
                }
                Message::AbDescription(d) if matches!(self.work, Work::Descriptors { .. }) => {
                    self.answer(now, AnswerSource::Data, repr.to_string());
                    self.on_description(now, d);
                    continue;
                }
                Message::RegisterReply(RegCmd::Reg(r)) => {
                    self.answer(now, AnswerSource::Data, repr.to_string());
                    if self.card_reply(now, repr.addr, &r) {
                        continue;
                    }
                }
                _ => self.answer(now, AnswerSource::Data, repr.to_string()),
            }
            self.unsolicited += 1;
            self.events.push_back(Event::Unsolicited { at: now, packet: packet.as_bytes().to_vec() });
        }
        if let Work::Drain { transfers, .. } = &mut self.work {
            *transfers += 1;
        }
    }
}

impl CardKind {
    /// The hardware type code of the descriptor for this kind.
    pub const fn card_type(self) -> CardType {
        match self {
            Self::FxsType1 => CardType::Fxs,
            Self::FxsType6 => CardType::Fxs6,
            Self::Fxo => CardType::Fxo,
            Self::Bri => CardType::Bri,
            Self::Pri => CardType::Pri,
            Self::Echo => CardType::Echo,
        }
    }
}
