//! Simulated equipment on the ports (MODEL.md EQ rows): phones on FXS ports, PSTN lines on
//! FXO ports, far ends of PRI spans and BRI S/T ports.
//!
//! Equipment is driven by tests or scripts: every action takes an [`Instant`]. Timed
//! sequences (flash, dialling) are planned and applied by the device's 1 ms scan, so every
//! edge reaches the chip within 1 ms of its planned time (MODEL: FXS-9).

use std::collections::VecDeque;

use xpp_proto::{Duration, Instant};

use super::callerid::{self, CallerId, CidReceiver, CidStandard};
use super::event::{EventKind, EventLog, PortRef};
use super::g711::{self, Generator, Law, Recorder, Source};
use crate::config::EquipmentTimings;

const fn ms(v: u32) -> Duration {
    Duration::from_millis(v as u64)
}

/// FXS line feed state (MODEL: FXS-6), the low 3 bits of the line-feed register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LineFeed {
    /// 0: open (no battery).
    #[default]
    Open,
    /// 1: forward active.
    ForwardActive,
    /// 2: forward on-hook transmission.
    ForwardOht,
    /// 3: tip open.
    TipOpen,
    /// 4: ringing.
    Ringing,
    /// 5: reverse active.
    ReverseActive,
    /// 6: reverse on-hook transmission.
    ReverseOht,
    /// 7: ring open.
    RingOpen,
}

impl LineFeed {
    /// From a line-feed register value (low 3 bits).
    pub const fn from_reg(v: u8) -> Self {
        match v & 7 {
            0 => Self::Open,
            1 => Self::ForwardActive,
            2 => Self::ForwardOht,
            3 => Self::TipOpen,
            4 => Self::Ringing,
            5 => Self::ReverseActive,
            6 => Self::ReverseOht,
            _ => Self::RingOpen,
        }
    }

    /// Whether the loop is fed, so an off-hook phone draws current (MODEL: FXS-7).
    pub const fn feeds_loop(self) -> bool {
        !matches!(self, Self::Open | Self::TipOpen | Self::RingOpen)
    }

    /// Whether host audio reaches the line (MODEL: FXS-12): states 1, 2, 5, 6.
    pub const fn carries_audio(self) -> bool {
        matches!(self, Self::ForwardActive | Self::ForwardOht | Self::ReverseActive | Self::ReverseOht)
    }

    /// Whether the phone's microphone reaches the host when off-hook (MODEL: FXS-12).
    pub const fn active(self) -> bool {
        matches!(self, Self::ForwardActive | Self::ReverseActive)
    }

    /// Whether the polarity is reversed (MODEL: FXS-11).
    pub const fn reversed(self) -> bool {
        matches!(self, Self::ReverseActive | Self::ReverseOht)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PhoneStep {
    Hook(bool),
    Key(Option<char>),
}

/// Hook state of a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Hook {
    #[default]
    On,
    Off,
}

/// A phone on an FXS port (MODEL: EQ-1, EQ-2).
#[derive(Debug, Clone)]
pub struct Phone {
    hook: Hook,
    plan: VecDeque<(Instant, PhoneStep)>,
    key: Option<char>,
    key_gen: Generator,
    mic: Generator,
    heard: Recorder,
    ringing: bool,
    lamp: bool,
    battery: bool,
    reversed: bool,
    rings: u32,
    auto_answer: Option<u32>,
    cid_rx: [CidReceiver; 2],
    caller_id: Option<CallerId>,
    t: EquipmentTimings,
}

/// What the equipment side of an FXS port does this ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PhoneSide {
    pub(crate) off_hook: bool,
    pub(crate) key: Option<char>,
    pub(crate) mic: [u8; 8],
}

impl Phone {
    pub(crate) fn new(t: EquipmentTimings) -> Self {
        Self {
            hook: Hook::On,
            plan: VecDeque::new(),
            key: None,
            key_gen: Generator::default(),
            mic: Generator::default(),
            heard: Recorder::new(t.record_limit),
            ringing: false,
            lamp: false,
            battery: false,
            reversed: false,
            rings: 0,
            auto_answer: None,
            cid_rx: [CidReceiver::new(CidStandard::Bell202), CidReceiver::new(CidStandard::EtsiV23)],
            caller_id: None,
            t,
        }
    }

    fn plan_start(&self, now: Instant) -> Instant {
        self.plan.back().map_or(now, |&(t, _)| t.max(now))
    }

    /// Lifts the handset at `now` (cancels planned dialling).
    pub fn off_hook(&mut self, now: Instant) {
        self.plan.clear();
        self.plan.push_back((now, PhoneStep::Key(None)));
        self.plan.push_back((now, PhoneStep::Hook(true)));
    }

    /// Hangs up at `now` (cancels planned dialling).
    pub fn on_hook(&mut self, now: Instant) {
        self.plan.clear();
        self.plan.push_back((now, PhoneStep::Key(None)));
        self.plan.push_back((now, PhoneStep::Hook(false)));
    }

    /// Hook flash of the configured length (default 600 ms), after any planned action.
    pub fn flash(&mut self, now: Instant) {
        self.flash_for(now, self.t.flash_ms);
    }

    /// Hook flash of `ms_on_hook` ms.
    pub fn flash_for(&mut self, now: Instant, ms_on_hook: u32) {
        let t = self.plan_start(now);
        self.plan.push_back((t, PhoneStep::Hook(false)));
        self.plan.push_back((t + ms(ms_on_hook), PhoneStep::Hook(true)));
    }

    /// Dials `digits` (`0-9*#A-D`, others skipped) as DTMF tones (100 ms on / 100 ms off).
    pub fn dial_dtmf(&mut self, now: Instant, digits: &str) {
        let mut t = self.plan_start(now);
        for d in digits.chars().filter(|&c| g711::dtmf_freqs(c).is_some()) {
            self.plan.push_back((t, PhoneStep::Key(Some(d.to_ascii_uppercase()))));
            t += ms(self.t.dtmf_on_ms);
            self.plan.push_back((t, PhoneStep::Key(None)));
            t += ms(self.t.dtmf_off_ms);
        }
    }

    /// Dials `digits` (`0-9`, others skipped) as loop-disconnect pulses at 10 pps (60 ms
    /// break, 40 ms make, 700 ms between digits; 0 = 10 pulses).
    pub fn dial_pulse(&mut self, now: Instant, digits: &str) {
        let mut t = self.plan_start(now);
        for d in digits.chars().filter_map(|c| c.to_digit(10)) {
            let n = if d == 0 { 10 } else { d };
            for _ in 0..n {
                self.plan.push_back((t, PhoneStep::Hook(false)));
                t += ms(self.t.pulse_break_ms);
                self.plan.push_back((t, PhoneStep::Hook(true)));
                t += ms(self.t.pulse_make_ms);
            }
            t += ms(self.t.interdigit_ms);
        }
    }

    /// What the microphone sends (while off-hook).
    pub fn play(&mut self, source: Source) {
        self.mic.set(source);
    }

    /// Linear samples of every received 8-sample chunk while off-hook or in OHT.
    pub fn take_heard(&mut self) -> Vec<i16> {
        self.heard.take()
    }

    /// Answer automatically on the n-th ring (`None`: never).
    pub fn auto_answer(&mut self, after_rings: Option<u32>) {
        self.auto_answer = after_rings;
        self.rings = 0;
    }

    /// PATCH-6: the microphone and the ear.
    pub(crate) fn audio_io(&mut self) -> (&mut Generator, &mut Recorder) {
        (&mut self.mic, &mut self.heard)
    }

    /// Whether the handset is off-hook.
    pub fn is_off_hook(&self) -> bool {
        self.hook == Hook::Off
    }

    /// Whether the bell is ringing.
    pub fn is_ringing(&self) -> bool {
        self.ringing
    }

    /// Whether the message lamp is lit.
    pub fn lamp(&self) -> bool {
        self.lamp
    }

    /// Whether the line has battery.
    pub fn has_battery(&self) -> bool {
        self.battery
    }

    /// Whether the line polarity is reversed.
    pub fn is_reversed(&self) -> bool {
        self.reversed
    }

    /// Whether planned actions remain.
    pub fn busy(&self) -> bool {
        !self.plan.is_empty()
    }

    /// The last caller ID the phone decoded from on-hook audio (MODEL: EQ-2).
    pub fn caller_id(&self) -> Option<&CallerId> {
        self.caller_id.as_ref()
    }

    fn set_hook(&mut self, at: Instant, port: PortRef, hook: Hook, log: &mut EventLog) {
        if self.hook != hook {
            self.hook = hook;
            log.push(at, Some(port), EventKind::Hook(hook == Hook::Off));
        }
    }

    /// One ms of the phone: planned steps, line observations, audio.
    pub(crate) fn update(
        &mut self,
        at: Instant,
        port: PortRef,
        feed: LineFeed,
        lamp: bool,
        heard: &[u8; 8],
        log: &mut EventLog,
    ) -> PhoneSide {
        while let Some(&(t, step)) = self.plan.front() {
            if t > at {
                break;
            }
            self.plan.pop_front();
            match step {
                PhoneStep::Hook(off) => self.set_hook(at, port, if off { Hook::Off } else { Hook::On }, log),
                PhoneStep::Key(k) => {
                    self.key = k;
                    if let Some((f1, f2)) = k.and_then(g711::dtmf_freqs) {
                        self.key_gen.set(Source::Dual { f1, f2, amplitude: 6000 });
                    }
                }
            }
        }
        let ringing = feed == LineFeed::Ringing && !lamp;
        if ringing != self.ringing {
            self.ringing = ringing;
            log.push(at, Some(port), if ringing { EventKind::RingStart } else { EventKind::RingStop });
            if ringing {
                self.rings += 1;
                if self.auto_answer.is_some_and(|n| self.rings >= n) {
                    self.set_hook(at, port, Hook::Off, log);
                    self.rings = 0;
                }
            }
        }
        if lamp != self.lamp {
            self.lamp = lamp;
            log.push(at, Some(port), EventKind::Lamp(lamp));
        }
        let battery = feed.feeds_loop();
        if battery != self.battery {
            self.battery = battery;
            log.push(at, Some(port), EventKind::PhoneBattery(battery));
        }
        let reversed = feed.reversed();
        if battery && reversed != self.reversed {
            self.reversed = reversed;
            log.push(at, Some(port), EventKind::PhonePolarity(reversed));
        }
        if feed.carries_audio() && (self.hook == Hook::Off || !feed.active()) {
            self.heard.push_chunk(Law::Ulaw, heard);
        }
        if feed.carries_audio() && !feed.active() && self.hook == Hook::On {
            // MODEL: EQ-2 — a caller-ID display listens to on-hook transmission (Bell 202 and
            // V.23 receivers side by side, as a dual-standard display does).
            for &b in heard {
                let x = Law::Ulaw.decode(b);
                for rx in &mut self.cid_rx {
                    if let Some(cid) = rx.push(x) {
                        log.push(
                            at,
                            Some(port),
                            EventKind::CallerId { number: cid.number.clone(), name: cid.name.clone() },
                        );
                        self.caller_id = Some(cid);
                    }
                }
            }
        }
        let off_hook = self.hook == Hook::Off;
        let mic = if !off_hook {
            [Law::Ulaw.silence(); 8]
        } else if self.key.is_some() {
            self.key_gen.next_chunk(Law::Ulaw)
        } else {
            self.mic.next_chunk(Law::Ulaw)
        };
        PhoneSide { off_hook, key: if off_hook { self.key } else { None }, mic }
    }
}

/// Call state of a PSTN line (MODEL: EQ-4..6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CallState {
    /// No call.
    #[default]
    Idle,
    /// Incoming call, ringing.
    Ringing,
    /// Seized: dial tone.
    DialTone,
    /// Digits received, waiting for the far party to answer.
    Dialing,
    /// Call up.
    Connected,
    /// Far party hung up: disconnect supervision (battery off).
    Disconnected,
}

impl CallState {
    const fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Ringing => "ringing",
            Self::DialTone => "dial tone",
            Self::Dialing => "dialing",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// What the line side presents to an FXO port this ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FxoLineIn {
    /// `None`: no battery; `Some(reversed)`.
    pub(crate) battery: Option<bool>,
    /// Ring voltage present now.
    pub(crate) ringing: bool,
    /// Line audio toward the port (µ-law).
    pub(crate) audio: [u8; 8],
}

impl FxoLineIn {
    pub(crate) const IDLE: Self = Self { battery: None, ringing: false, audio: [0xFF; 8] };
}

/// A PSTN line on an FXO port: battery, polarity, ringing, a small exchange (dial tone,
/// DTMF and pulse digit reception) and a far party (MODEL: EQ-3..6).
#[derive(Debug, Clone)]
pub struct PstnLine {
    battery: bool,
    reversed: bool,
    state: CallState,
    ring_start: Instant,
    ring_on: Duration,
    ring_off: Duration,
    ring_count: Option<u32>,
    far: Generator,
    tone: Generator,
    heard: Recorder,
    dialled: String,
    pulses: u32,
    last_hook: bool,
    hook_edge_at: Instant,
    answer_at: Option<Instant>,
    disconnect_until: Option<Instant>,
    dtmf_buf: Vec<i16>,
    dtmf_prev: Option<char>,
    dtmf_held: Option<char>,
    cid: Option<(CallerId, CidStandard)>,
    cid_gen: Generator,
    cid_at: Option<Instant>,
    cid_reversed: bool,
    cid_started: bool,
    ring_was: bool,
    t: EquipmentTimings,
}

/// Bell 202 caller ID starts this long after the first ring burst ends (MODEL: EQ-4).
const CID_AFTER_RING_MS: u32 = 500;
/// ETSI: the FSK (or DTMF) starts this long after the polarity reversal (MODEL: EQ-4).
const CID_AFTER_REVERSAL_MS: u32 = 250;
/// ETSI: the first ring starts this long after the caller ID ends (MODEL: EQ-4).
const RING_AFTER_CID_MS: u32 = 500;
/// Caller-ID signal level (peak, 16-bit linear; about -13 dBm0).
const CID_AMPLITUDE: i16 = 5000;

impl PstnLine {
    pub(crate) fn new(t: EquipmentTimings) -> Self {
        Self {
            battery: true,
            reversed: false,
            state: CallState::Idle,
            ring_start: Instant::ZERO,
            ring_on: ms(t.ring_on_ms),
            ring_off: ms(t.ring_off_ms),
            ring_count: None,
            far: Generator::default(),
            tone: Generator::new(Source::Dual { f1: 350, f2: 440, amplitude: 4000 }),
            heard: Recorder::new(t.record_limit),
            dialled: String::new(),
            pulses: 0,
            last_hook: false,
            hook_edge_at: Instant::ZERO,
            answer_at: None,
            disconnect_until: None,
            dtmf_buf: Vec::with_capacity(200),
            dtmf_prev: None,
            dtmf_held: None,
            cid: None,
            cid_gen: Generator::default(),
            cid_at: None,
            cid_reversed: false,
            cid_started: false,
            ring_was: false,
            t,
        }
    }

    /// Sends `cid` with the next incoming call ([`PstnLine::ring`]) in `standard`, or no
    /// caller ID with `None` (MODEL: EQ-4). It applies to one call.
    pub fn set_caller_id(&mut self, cid: Option<CallerId>, standard: CidStandard) {
        self.cid = cid.map(|c| (c, standard));
    }

    /// Whether caller-ID audio is playing now.
    pub fn sending_caller_id(&self) -> bool {
        self.cid_at.is_some()
    }

    fn set_state(&mut self, at: Instant, port: PortRef, s: CallState, log: &mut EventLog) {
        if self.state != s {
            self.state = s;
            log.push(at, Some(port), EventKind::Line(s.name()));
        }
    }

    /// Incoming call with the default cadence (2 s on / 4 s off), ringing until answered or
    /// [`PstnLine::hang_up`].
    pub fn ring(&mut self, now: Instant) {
        self.ring_with(now, self.t.ring_on_ms, self.t.ring_off_ms, None);
    }

    /// Incoming call with a cadence and an optional number of ring cycles.
    pub fn ring_with(&mut self, now: Instant, on_ms: u32, off_ms: u32, count: Option<u32>) {
        if matches!(self.state, CallState::Idle) {
            self.state = CallState::Ringing;
            self.ring_start = now;
            self.ring_on = ms(on_ms.max(1));
            self.ring_off = ms(off_ms);
            self.ring_count = count;
            if let Some((cid, standard)) = self.cid.take() {
                self.plan_caller_id(now, &cid, standard);
            }
        }
    }

    /// MODEL: EQ-4 — caller-ID timing. Bell 202: FSK 500 ms after the first burst ends.
    /// ETSI (V.23 or DTMF): polarity reversal now, caller ID 250 ms later, first ring 500 ms
    /// after it ends; the reversal lasts until the line is idle again.
    fn plan_caller_id(&mut self, now: Instant, cid: &CallerId, standard: CidStandard) {
        let samples: Vec<i16> = match standard {
            CidStandard::Dtmf => {
                // 70 ms tone / 70 ms gap per digit.
                let mut v = Vec::new();
                for d in callerid::dtmf_digits(cid).chars() {
                    if let Some((f1, f2)) = g711::dtmf_freqs(d) {
                        let mut g = Generator::new(Source::Dual { f1, f2, amplitude: CID_AMPLITUDE });
                        v.extend((0..560).map(|_| g.next_sample()));
                        v.extend(core::iter::repeat_n(0, 560));
                    }
                }
                v
            }
            _ => callerid::fsk_modulate(&callerid::mdmf(cid), standard, CID_AMPLITUDE),
        };
        let len = Duration::from_micros((samples.len() as u64 * 1000).div_ceil(8));
        self.cid_gen.set(Source::Samples(samples.into()));
        // Decision: caller-ID timing (EQ-4) — ordinary Bell 202 / ETSI EN 300 659-1 practice;
        // the references say nothing about caller ID.
        if standard == CidStandard::Bell202 {
            self.cid_at = Some(now + self.ring_on + ms(CID_AFTER_RING_MS));
        } else {
            self.reversed = !self.reversed;
            self.cid_reversed = true;
            let at = now + ms(CID_AFTER_REVERSAL_MS);
            self.cid_at = Some(at);
            self.ring_start = at + len + ms(RING_AFTER_CID_MS);
        }
    }

    /// Battery on or off (MODEL: EQ-3).
    pub fn set_battery(&mut self, _now: Instant, on: bool) {
        self.battery = on;
    }

    /// Reverses the line polarity (MODEL: EQ-3; the FXO port reports it, FXO-8).
    pub fn reverse_polarity(&mut self, _now: Instant) {
        self.reversed = !self.reversed;
    }

    /// The far party answers now (outgoing call) — otherwise it answers `answer_delay` after
    /// the last digit.
    pub fn answer(&mut self, now: Instant) {
        if matches!(self.state, CallState::DialTone | CallState::Dialing) {
            self.answer_at = Some(now);
        }
    }

    /// The far party (or the caller of a ringing call) hangs up (MODEL: EQ-4, EQ-6).
    pub fn hang_up(&mut self, now: Instant) {
        match self.state {
            CallState::Ringing => self.state = CallState::Idle,
            CallState::Connected | CallState::Dialing | CallState::DialTone => {
                self.state = CallState::Disconnected;
                self.disconnect_until = Some(now + ms(self.t.disconnect_ms));
            }
            _ => {}
        }
    }

    /// What the far party sends once connected.
    pub fn play(&mut self, source: Source) {
        self.far.set(source);
    }

    /// PATCH-6: the far party's voice and what reaches it.
    pub(crate) fn audio_io(&mut self) -> (&mut Generator, &mut Recorder) {
        (&mut self.far, &mut self.heard)
    }

    /// Linear samples the far party heard while connected.
    pub fn take_heard(&mut self) -> Vec<i16> {
        self.heard.take()
    }

    /// Digits the exchange received on this call.
    pub fn dialled(&self) -> &str {
        &self.dialled
    }

    /// The call state.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// Whether the line has battery.
    pub fn has_battery(&self) -> bool {
        self.battery && self.disconnect_until.is_none()
    }

    /// Whether the polarity is reversed.
    pub fn is_reversed(&self) -> bool {
        self.reversed
    }

    fn ringing_now(&self, at: Instant) -> bool {
        if self.state != CallState::Ringing || at < self.ring_start {
            return false;
        }
        let period = (self.ring_on + self.ring_off).total_micros().max(1);
        let since = (at - self.ring_start).total_micros();
        since % period < self.ring_on.total_micros()
    }

    fn digit(&mut self, at: Instant, port: PortRef, d: char, log: &mut EventLog) {
        self.dialled.push(d);
        log.push(at, Some(port), EventKind::Digit(d));
        self.answer_at = Some(at + ms(self.t.answer_delay_ms));
        self.set_state(at, port, CallState::Dialing, log);
    }

    /// One ms of the line: `off_hook` is the FXO port's hook, `tx` its transmit audio (µ-law).
    pub(crate) fn update(
        &mut self,
        at: Instant,
        port: PortRef,
        off_hook: bool,
        tx: &[u8; 8],
        log: &mut EventLog,
    ) -> FxoLineIn {
        // Ring count, disconnect supervision end.
        if self.state == CallState::Ringing
            && let Some(n) = self.ring_count
        {
            let period = (self.ring_on + self.ring_off).total_micros().max(1);
            if (at - self.ring_start).total_micros() / period >= u64::from(n) {
                self.set_state(at, port, CallState::Idle, log);
            }
        }
        if let Some(until) = self.disconnect_until
            && at >= until
        {
            self.disconnect_until = None;
            let next = if off_hook { CallState::DialTone } else { CallState::Idle };
            self.dialled.clear();
            self.set_state(at, port, next, log);
        }
        // Hook edges: answer, seize, pulses, release.
        if off_hook != self.last_hook {
            let held = at - self.hook_edge_at;
            self.last_hook = off_hook;
            self.hook_edge_at = at;
            log.push(at, Some(port), EventKind::Hook(off_hook));
            if off_hook {
                let pulse = held >= ms(15) && held <= ms(200);
                match self.state {
                    CallState::Ringing => self.set_state(at, port, CallState::Connected, log),
                    CallState::Idle if self.battery => {
                        self.dialled.clear();
                        self.set_state(at, port, CallState::DialTone, log);
                    }
                    CallState::DialTone | CallState::Dialing if pulse => self.pulses += 1,
                    _ => {}
                }
            }
        }
        let since_edge = at - self.hook_edge_at;
        if !off_hook
            && since_edge > ms(300)
            && matches!(self.state, CallState::DialTone | CallState::Dialing | CallState::Connected)
        {
            self.pulses = 0;
            self.answer_at = None;
            self.set_state(at, port, CallState::Idle, log);
        }
        if off_hook && self.pulses > 0 && since_edge >= ms(300) {
            let d = char::from_digit(self.pulses % 10, 10).unwrap_or('0');
            self.pulses = 0;
            self.digit(at, port, d, log);
        }
        // DTMF reception in the port's transmit audio.
        if off_hook && matches!(self.state, CallState::DialTone | CallState::Dialing) {
            self.dtmf_buf.extend(tx.iter().map(|&b| Law::Ulaw.decode(b)));
            if self.dtmf_buf.len() >= 200 {
                let d = g711::detect_dtmf(&self.dtmf_buf);
                self.dtmf_buf.clear();
                if d.is_some() && d == self.dtmf_prev && self.dtmf_held != d {
                    self.dtmf_held = d;
                    if let Some(d) = d {
                        self.digit(at, port, d, log);
                    }
                }
                if d.is_none() {
                    self.dtmf_held = None;
                }
                self.dtmf_prev = d;
            }
        } else {
            self.dtmf_buf.clear();
        }
        if self.answer_at.is_some_and(|t| at >= t) {
            self.answer_at = None;
            if matches!(self.state, CallState::DialTone | CallState::Dialing) {
                self.set_state(at, port, CallState::Connected, log);
            }
        }
        if self.state != CallState::Ringing {
            self.cid_at = None;
        }
        if self.cid_at.is_none() {
            self.cid_started = false;
        }
        let ring = self.ringing_now(at);
        if ring != self.ring_was {
            self.ring_was = ring;
            log.push(at, Some(port), EventKind::LineRinging(ring));
        }
        if self.cid_reversed && self.state == CallState::Idle {
            self.cid_reversed = false;
            self.reversed = !self.reversed;
        }
        let cid_now = self.cid_at.is_some_and(|t| at >= t);
        let audio = match self.state {
            CallState::Ringing if cid_now => {
                if !self.cid_started {
                    self.cid_started = true;
                    log.push(at, Some(port), EventKind::CallerIdSent);
                }
                let chunk = self.cid_gen.next_chunk(Law::Ulaw);
                if self.cid_gen.is_silent() {
                    self.cid_at = None;
                }
                chunk
            }
            CallState::DialTone => self.tone.next_chunk(Law::Ulaw),
            CallState::Connected if off_hook => {
                self.heard.push_chunk(Law::Ulaw, tx);
                self.far.next_chunk(Law::Ulaw)
            }
            _ => [Law::Ulaw.silence(); 8],
        };
        FxoLineIn {
            battery: if self.has_battery() { Some(self.reversed) } else { None },
            ringing: self.ringing_now(at),
            audio,
        }
    }
}

/// The far end of a PRI span (MODEL: EQ-7).
#[derive(Debug, Clone)]
pub struct PriFarEnd {
    pub(crate) connected: bool,
    pub(crate) ais: bool,
    pub(crate) rai: bool,
    pub(crate) t1: Option<bool>,
    pub(crate) cas: [u8; 16],
    pub(crate) sources: Vec<Generator>,
    pub(crate) heard: Vec<Recorder>,
    pub(crate) sees_signal: bool,
    pub(crate) sees_rai: bool,
    pub(crate) rx_cas: [u8; 16],
    pub(crate) hdlc_tx: super::hdlc::HdlcTx,
    pub(crate) hdlc_rx: super::hdlc::HdlcRx,
    pub(crate) frames_rx: VecDeque<Vec<u8>>,
    /// MODEL: PRI-13 — the optional Q.921 peer answering the host's D-channel frames.
    pub(crate) q921: Option<super::q921::Q921Peer>,
    /// MODEL: PRI-14 — HDLC bits per D timeslot byte: 8, or 7 at 56 kbit/s.
    pub(crate) dchan_bits: u32,
}

impl PriFarEnd {
    pub(crate) fn new(t: EquipmentTimings) -> Self {
        Self {
            connected: true,
            ais: false,
            rai: false,
            t1: None,
            cas: [0; 16],
            sources: vec![Generator::default(); 32],
            heard: vec![Recorder::new(t.record_limit); 32],
            sees_signal: false,
            sees_rai: false,
            rx_cas: [0; 16],
            hdlc_tx: super::hdlc::HdlcTx::default(),
            hdlc_rx: super::hdlc::HdlcRx::default(),
            q921: None,
            frames_rx: VecDeque::new(),
            dchan_bits: 8,
        }
    }

    /// Plugs the far end in (`true`) or pulls it (LOS at the port).
    pub fn set_connected(&mut self, _now: Instant, on: bool) {
        self.connected = on;
    }

    /// The far end sends AIS (all ones) or stops.
    pub fn send_ais(&mut self, _now: Instant, on: bool) {
        self.ais = on;
    }

    /// The far end sends RAI (remote alarm) or stops.
    pub fn send_rai(&mut self, _now: Instant, on: bool) {
        self.rai = on;
    }

    /// Framing the far end uses: `Some(true)` T1, `Some(false)` E1, `None` as the port
    /// (a mismatch is LOS, MODEL: EQ-7).
    pub fn set_t1(&mut self, t1: Option<bool>) {
        self.t1 = t1;
    }

    /// Sets a received CAS register image (reg 0x70..=0x7F) the port will see (MODEL: PRI-9).
    pub fn set_cas_reg(&mut self, reg: u8, value: u8) {
        if let Some(r) = reg.checked_sub(0x70).and_then(|i| self.cas.get_mut(usize::from(i))) {
            *r = value;
        }
    }

    /// What the far end sends on physical timeslot `ts` (1..=31).
    pub fn play(&mut self, ts: u8, source: Source) {
        if let Some(g) = self.sources.get_mut(usize::from(ts)) {
            g.set(source);
        }
    }

    /// PATCH-6: timeslot `ts` as the far end sends and hears it.
    pub(crate) fn audio_io(&mut self, ts: u8) -> Option<(&mut Generator, &mut Recorder)> {
        let i = usize::from(ts);
        Some((self.sources.get_mut(i)?, self.heard.get_mut(i)?))
    }

    /// Linear samples the far end received on timeslot `ts`.
    pub fn take_heard(&mut self, ts: u8) -> Vec<i16> {
        self.heard.get_mut(usize::from(ts)).map(Recorder::take).unwrap_or_default()
    }

    /// Whether the far end receives the port's transmitter (XPM2 = 0, MODEL: PRI-5).
    pub fn sees_signal(&self) -> bool {
        self.sees_signal
    }

    /// Whether the far end receives RAI from the port (MODEL: PRI-6).
    pub fn sees_rai(&self) -> bool {
        self.sees_rai
    }

    /// The CAS register images the far end receives from the port.
    pub fn rx_cas(&self) -> [u8; 16] {
        self.rx_cas
    }

    /// Queues a D-channel frame (a Q.921 frame without FCS) toward the port: it is sent HDLC
    /// framed (flags, zero insertion, FCS) in the D timeslot (MODEL: PRI-8). At most 64 frames
    /// of up to 512 bytes wait.
    pub fn send_frame(&mut self, _now: Instant, frame: &[u8]) {
        self.hdlc_tx.queue(frame);
    }

    /// D-channel frames the far end decoded from the port's D timeslot (good FCS, FCS removed).
    pub fn take_frames(&mut self) -> Vec<Vec<u8>> {
        self.frames_rx.drain(..).collect()
    }

    /// Frames from the port with a bad FCS, aborted or too long.
    pub fn dchannel_errors(&self) -> u64 {
        self.hdlc_rx.errors
    }

    /// Turns the minimal Q.921 peer on or off (MODEL: PRI-13). While on, it answers the
    /// host's D-channel frames (SABME/DISC with UA, I-frames and polls with RR); the frames
    /// still appear in [`take_frames`](Self::take_frames).
    pub fn set_q921(&mut self, on: bool) {
        self.q921 = on.then(super::q921::Q921Peer::default);
    }

    /// The Q.921 peer's state, if it is on.
    pub fn q921(&self) -> Option<&super::q921::Q921Peer> {
        self.q921.as_ref()
    }

    /// Runs the far end's D-channel at 56 kbit/s (`true`) or 64 (MODEL: PRI-14): the HDLC
    /// bits then use bits 7..1 of the timeslot byte, bit 0 sent as 1 and ignored on receive.
    pub fn set_dchan_56k(&mut self, on: bool) {
        self.dchan_bits = if on { 7 } else { 8 };
    }
}

/// The far end of a BRI S/T port (MODEL: EQ-8): the network for a TE port, a terminal for an
/// NT port.
#[derive(Debug, Clone)]
pub struct BriFarEnd {
    pub(crate) connected: bool,
    pub(crate) active: bool,
    pub(crate) to_host: VecDeque<Vec<u8>>,
    pub(crate) from_host: VecDeque<Vec<u8>>,
    /// FAULT-11: damage for the next frames toward the host (true = abort, false = bad FCS).
    pub(crate) damage: VecDeque<bool>,
    pub(crate) b: [Generator; 2],
    pub(crate) heard: [Recorder; 2],
    /// MODEL: BRI-14 — the optional Q.921 peer answering the host's D-channel frames.
    pub(crate) q921: Option<super::q921::Q921Peer>,
}

impl BriFarEnd {
    pub(crate) fn new(t: EquipmentTimings) -> Self {
        Self {
            connected: true,
            active: false,
            to_host: VecDeque::new(),
            from_host: VecDeque::new(),
            q921: None,
            damage: VecDeque::new(),
            b: [Generator::default(), Generator::default()],
            heard: [Recorder::new(t.record_limit), Recorder::new(t.record_limit)],
        }
    }

    /// Plugs the far end in or pulls it (MODEL: BRI-6).
    pub fn set_connected(&mut self, _now: Instant, on: bool) {
        self.connected = on;
        if !on {
            self.active = false;
        }
    }

    /// The far end activates layer 1 (MODEL: BRI-6).
    pub fn activate(&mut self, _now: Instant) {
        if self.connected {
            self.active = true;
        }
    }

    /// The far end deactivates layer 1.
    pub fn deactivate(&mut self, _now: Instant) {
        self.active = false;
    }

    /// Queues a D-channel frame (without FCS) toward the host (MODEL: BRI-9).
    pub fn send_frame(&mut self, _now: Instant, frame: &[u8]) {
        if self.to_host.len() < 64 {
            self.to_host.push_back(frame.to_vec());
        }
    }

    /// D-channel frames the far end received from the host (FCS checked and removed).
    pub fn take_frames(&mut self) -> Vec<Vec<u8>> {
        self.from_host.drain(..).collect()
    }

    /// FAULT-11: the next frame toward the host not yet damaged arrives aborted (status
    /// 0xFF, `abort`) or with a bad FCS (status 0x01). At most 64 wait.
    pub fn damage_next(&mut self, abort: bool) {
        if self.damage.len() < 64 {
            self.damage.push_back(abort);
        }
    }

    /// What the far end sends on B1 (`b` = 0) or B2 (`b` = 1).
    pub fn play(&mut self, b: u8, source: Source) {
        if let Some(g) = self.b.get_mut(usize::from(b)) {
            g.set(source);
        }
    }

    /// PATCH-6: B channel `b` as the far end sends and hears it.
    pub(crate) fn audio_io(&mut self, b: u8) -> Option<(&mut Generator, &mut Recorder)> {
        let i = usize::from(b);
        Some((self.b.get_mut(i)?, self.heard.get_mut(i)?))
    }

    /// Linear samples the far end received on B1/B2.
    pub fn take_heard(&mut self, b: u8) -> Vec<i16> {
        self.heard.get_mut(usize::from(b)).map(Recorder::take).unwrap_or_default()
    }

    /// Whether layer 1 is active as the far end sees it.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Turns the minimal Q.921 peer on or off (MODEL: BRI-14, as PRI-13): while on, it answers
    /// the host's D-channel frames (SABME/DISC with UA, I-frames and polls with RR), sent
    /// toward the host like [`send_frame`](Self::send_frame)'s; the frames still appear in
    /// [`take_frames`](Self::take_frames).
    pub fn set_q921(&mut self, on: bool) {
        self.q921 = on.then(super::q921::Q921Peer::default);
    }

    /// The Q.921 peer's state, if it is on.
    pub fn q921(&self) -> Option<&super::q921::Q921Peer> {
        self.q921.as_ref()
    }
}
