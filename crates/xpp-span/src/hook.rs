//! The hook state machines the DAHDI core runs for one channel (§4, §5), sans-IO.
//!
//! A [`HookMachine`] sits between a `hooksig` driver (a line model reporting rx hook signals
//! and executing tx hook signals) and the PBX (DAHDI_HOOK commands, events):
//!
//! - inputs: [`HookMachine::handle_rxsig`] (the rx-hook helper: what the line reports),
//!   [`HookMachine::set_hook`] (DAHDI_HOOK from the PBX), [`HookMachine::handle_timeout`],
//!   [`HookMachine::reset`] (CHANCONFIG / STARTUP: hang up, rx INITIAL);
//! - outputs: [`HookMachine::poll_hooksig`] (the tx signal to put on the line, only when it
//!   changed), [`HookMachine::poll_event`] (DAHDI events), [`HookMachine::poll_timeout`].
//!
//! Polling order after any input: drain `poll_event`, then `poll_hooksig`, then re-arm the
//! caller's timer from `poll_timeout`. Times are injected [`Instant`]s; a `now` earlier than
//! one already seen is treated as the latest seen, so timers never run backwards.
//!
//! Rules implemented (§5), per signalling family:
//!
//! | Family | rx | Events |
//! |---|---|---|
//! | FXO-signalled (fxols/fxogs/fxoks; FXS hardware) | OFFHOOK after an on-hook of 15..=200 ms | dial pulse (first: PULSE_START); 250 ms after the last pulse PULSEDIGIT\|digit |
//! | | OFFHOOK after an on-hook > 200 ms (< rxflashtime) | WINKFLASH |
//! | | OFFHOOK otherwise (first off-hook; stops our ringing) | RINGOFFHOOK |
//! | | ONHOOK held rxflashtime (1250 ms) | ONHOOK |
//! | | START (fxogs only) | RINGOFFHOOK once per seizure |
//! | FXS-signalled (fxsls/fxsgs/fxsks; FXO hardware) | RING outside the 2 s post-hang-up ring debounce | RINGBEGIN |
//! | | RING absent for the 50 ms trailer | RINGOFFHOOK |
//! | | ONHOOK (battery drop), fxsgs unless tx debounce, fxsks only while tx off-hook | ONHOOK (re-arms ring debounce) |
//! | E&M (e&m, e&me1) | OFFHOOK held rxwinktime (300 ms) | RINGOFFHOOK |
//! | | ONHOOK before that | WINKFLASH, else ONHOOK |
//! | SF | OFFHOOK / ONHOOK | RINGOFFHOOK / ONHOOK |
//!
//! Tx side: ONHOOK (fxoks with the phone off hook: KEWL 500 ms, on-hook 300 ms, then ONHOOK
//! if the phone hung up), OFFHOOK (debounce for debouncetime), WINK, FLASH, START/RING
//! (FXO-signalled: ring by cadence with RINGERON/RINGEROFF; others: START for starttime,
//! off-hook 500 ms), RINGOFF. WINK/FLASH/START return [`HookOutcome::InProgress`]; with
//! [`HookMode::NonBlocking`] HOOKCOMPLETE is queued when done.

use crate::dahdi::{EVENT_QUEUE_DEPTH, Event, HookCmd, RxSig, Sig, TxSig};
use crate::events::EventQueue;
use xpp_proto::timer::TimerTable;
use xpp_proto::{Duration, Instant};

/// Fixed timings of the DAHDI core (§5), in milliseconds.
pub mod fixed {
    /// Off-hook time after a START before the channel counts as off hook.
    pub const AFTERSTART_MS: u64 = 500;
    /// KEWL (battery drop) length on fxoks hang-up.
    pub const KEWL_MS: u64 = 500;
    /// On-hook time after KEWL.
    pub const AFTERKEWL_MS: u64 = 300;
    /// Default ring-off time of the cadence without a zone.
    pub const RINGOFF_MS: u64 = 4000;
    /// Rings are ignored this long after a hang-up or battery drop.
    pub const RING_DEBOUNCE_MS: u64 = 2000;
    /// RING must be absent this long before "ring received" (RINGOFFHOOK).
    pub const RING_TRAILER_MS: u64 = 50;
    /// Shortest on-hook counted as a dial pulse (shorter is ignored).
    pub const PULSE_MIN_MS: u64 = 15;
    /// Longest on-hook counted as a dial pulse (longer is a flash).
    pub const PULSE_MAX_MS: u64 = 200;
    /// A pulse digit ends this long after its last pulse.
    pub const PULSE_DIGIT_TIMEOUT_MS: u64 = 250;
}

/// The eleven per-channel timings of DAHDI_SET_PARAMS (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookTimings {
    /// On-hook before a tx wink (50 ms).
    pub prewinktime: Duration,
    /// On-hook before a tx flash (50 ms).
    pub preflashtime: Duration,
    /// Tx wink length (150 ms).
    pub winktime: Duration,
    /// Tx flash length (750 ms).
    pub flashtime: Duration,
    /// Tx START length (1500 ms; 2000 ms for FXO-signalled, where it is the ring-on time).
    pub starttime: Duration,
    /// Longest off-hook accepted as an rx wink (300 ms).
    pub rxwinktime: Duration,
    /// Longest on-hook accepted as a hook flash (1250 ms).
    pub rxflashtime: Duration,
    /// Off-hook debounce (600 ms).
    pub debouncetime: Duration,
    /// Outgoing pulse break (50 ms); used by pulse dialing (not in this module).
    pub pulsebreaktime: Duration,
    /// Outgoing pulse make (50 ms).
    pub pulsemaketime: Duration,
    /// Pause after an outgoing pulse digit (750 ms).
    pub pulseaftertime: Duration,
}

impl HookTimings {
    /// DAHDI's defaults for a channel with signalling `sig`.
    pub const fn defaults_for(sig: Sig) -> Self {
        let ms = Duration::from_millis;
        let fxo = matches!(sig, Sig::Fxols | Sig::Fxogs | Sig::Fxoks);
        Self {
            prewinktime: ms(50),
            preflashtime: ms(50),
            winktime: ms(150),
            flashtime: ms(750),
            starttime: ms(if fxo { 2000 } else { 1500 }),
            rxwinktime: ms(300),
            rxflashtime: ms(1250),
            debouncetime: ms(600),
            pulsebreaktime: ms(50),
            pulsemaketime: ms(50),
            pulseaftertime: ms(750),
        }
    }
}

/// Most values of a ring cadence (§5).
pub const MAX_CADENCE: usize = 16;

/// A ring cadence (DAHDI_SETCADENCE): millisecond values alternating on/off, starting with
/// on; a negative on-value marks the loop-back point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    steps: [u32; MAX_CADENCE],
    len: usize,
    loop_at: usize,
}

/// Why a cadence was refused (EINVAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CadenceError {
    /// Fewer than one on and one off value before the terminating 0.
    #[error("cadence needs at least one on and one off value")]
    TooShort,
    /// An odd number of values: the last on-value has no off-value.
    #[error("cadence values must come in on/off pairs")]
    Unpaired,
    /// A negative off-value (only on-values may mark the loop-back point).
    #[error("only on-values may be negative")]
    NegativeOff,
}

impl Cadence {
    /// Builds a cadence from DAHDI_SETCADENCE values; reading stops at the first 0 or after
    /// [`MAX_CADENCE`] values.
    // Decision: the reference does not say how malformed cadences are treated; we refuse an
    // empty or odd-length list and negative off-values (EINVAL).
    pub fn new(values: &[i32]) -> Result<Self, CadenceError> {
        let mut steps = [0u32; MAX_CADENCE];
        let mut len: usize = 0;
        let mut loop_at = None;
        for &v in values.iter().take(MAX_CADENCE) {
            if v == 0 {
                break;
            }
            if v < 0 {
                if !len.is_multiple_of(2) {
                    return Err(CadenceError::NegativeOff);
                }
                loop_at.get_or_insert(len);
            }
            steps[len] = v.unsigned_abs();
            len += 1;
        }
        if len < 2 {
            return Err(CadenceError::TooShort);
        }
        if !len.is_multiple_of(2) {
            return Err(CadenceError::Unpaired);
        }
        Ok(Self { steps, len, loop_at: loop_at.unwrap_or(0) })
    }

    /// The default without a tone zone: `[starttime, 4000]`.
    pub fn default_for(timings: &HookTimings) -> Self {
        let mut steps = [0u32; MAX_CADENCE];
        steps[0] = timings.starttime.total_millis().min(u64::from(u32::MAX)) as u32;
        steps[1] = fixed::RINGOFF_MS as u32;
        Self { steps, len: 2, loop_at: 0 }
    }

    /// The step lengths in milliseconds (on, off, on, off, ...).
    pub fn steps(&self) -> &[u32] {
        &self.steps[..self.len]
    }

    /// The index the cadence returns to after its last value.
    pub fn loop_at(&self) -> usize {
        self.loop_at
    }

    fn step(&self, i: usize) -> Duration {
        Duration::from_millis(u64::from(self.steps[i.min(self.len - 1)]))
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 >= self.len { self.loop_at } else { i + 1 }
    }
}

/// The core's transmit state for a channel (DAHDI's txstate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TxState {
    /// On hook / idle.
    OnHook,
    /// Off hook.
    OffHook,
    /// Off hook, ignoring rx on-hook for debouncetime after going off hook.
    Debounce,
    /// On hook before a wink.
    PreWink,
    /// Wink (off hook).
    Wink,
    /// Off hook before a flash.
    PreFlash,
    /// Flash (on hook).
    Flash,
    /// START signal (non-FXO-signalled START/RING).
    Start,
    /// Off hook after START.
    AfterStart,
    /// Ring cadence, ringer on.
    RingOn,
    /// Ring cadence, ringer off.
    RingOff,
    /// KEWL (battery dropped) on fxoks hang-up.
    Kewl,
    /// On hook after KEWL.
    AfterKewl,
}

impl TxState {
    /// The tx hook signal the line carries in this state.
    pub const fn txsig(self) -> TxSig {
        match self {
            Self::OnHook | Self::PreWink | Self::Flash | Self::AfterKewl => TxSig::OnHook,
            Self::OffHook
            | Self::Debounce
            | Self::Wink
            | Self::PreFlash
            | Self::AfterStart
            | Self::RingOff => TxSig::OffHook,
            Self::Start | Self::RingOn => TxSig::Start,
            Self::Kewl => TxSig::Kewl,
        }
    }

    /// Whether the tx side is off hook (FLASH is allowed).
    pub const fn is_offhook(self) -> bool {
        matches!(self, Self::OffHook | Self::Debounce)
    }

    fn is_ringing(self) -> bool {
        matches!(self, Self::RingOn | Self::RingOff)
    }
}

/// How a PBX waits for WINK / FLASH / START.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    /// The caller waits until [`HookMachine::is_tx_busy`] is false; no HOOKCOMPLETE.
    Blocking,
    /// O_NONBLOCK: EINPROGRESS now, HOOKCOMPLETE queued when done.
    NonBlocking,
}

/// What [`HookMachine::set_hook`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum HookOutcome {
    /// Done (the tx signal may have changed).
    Done,
    /// A wink/flash/start runs (EINPROGRESS for non-blocking callers).
    InProgress,
}

/// Why DAHDI_HOOK was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// EINVAL: clear/CAS/unconfigured channel, or an unknown hook value.
    #[error("hook signalling not valid on this channel")]
    Invalid,
    /// EBUSY: the tx state does not allow this command now.
    #[error("channel busy (tx state {0:?})")]
    Busy(TxState),
}

impl HookError {
    /// The errno DAHDI returns.
    pub const fn errno(self) -> i32 {
        match self {
            Self::Invalid => 22,
            Self::Busy(_) => 16,
        }
    }
}

xpp_proto::timer_enum! {
    /// The machine's timers (STYLE §2 timer table), in a [`TimerTable`].
    pub enum Timer {
        /// The current tx state's end (wink, flash, start, debounce, ring step, kewl).
        Tx,
        /// FXO-signalled: on-hook timing (rxflashtime); E&M: off-hook timing (rxwinktime).
        RxHook,
        /// 250 ms after the last dial pulse.
        PulseDigit,
        /// FXS-signalled: rings ignored until this expires (post-hang-up debounce).
        RingDebounce,
        /// FXS-signalled: 50 ms without RING ends the ring (RINGOFFHOOK).
        RingTrailer,
    }
}

/// One channel's hook state machine. See the module doc.
#[derive(Debug, Clone)]
pub struct HookMachine {
    chan: u32,
    sig: Sig,
    timings: HookTimings,
    cadence: Option<Cadence>,
    state: TxState,
    cadence_pos: usize,
    hookcomplete: bool,
    rxsig: RxSig,
    rx_onhook_since: Option<Instant>,
    pulses: u8,
    gs_seized: bool,
    rx_ringing: bool,
    sigfreeze: bool,
    timers: TimerTable<Timer, 5>,
    now: Instant,
    line_txsig: TxSig,
    events: EventQueue,
}

/// Bound on timer expiries handled in one [`HookMachine::handle_timeout`] call.
const MAX_EXPIRIES_PER_CALL: usize = EVENT_QUEUE_DEPTH;

impl HookMachine {
    /// A machine for channel `chan` (used in log lines) with signalling `sig`, DAHDI's default
    /// timings, tx on hook and rx INITIAL.
    pub fn new(chan: u32, sig: Sig) -> Self {
        Self {
            chan,
            sig,
            timings: HookTimings::defaults_for(sig),
            cadence: None,
            state: TxState::OnHook,
            cadence_pos: 0,
            hookcomplete: false,
            rxsig: RxSig::Initial,
            rx_onhook_since: None,
            pulses: 0,
            gs_seized: false,
            rx_ringing: false,
            sigfreeze: false,
            timers: TimerTable::new(),
            now: Instant::ZERO,
            line_txsig: TxSig::OnHook,
            events: EventQueue::new(),
        }
    }

    /// The configured signalling type.
    pub fn sig(&self) -> Sig {
        self.sig
    }

    /// The current timings.
    pub fn timings(&self) -> &HookTimings {
        &self.timings
    }

    /// DAHDI_SET_PARAMS: new timings (take effect at the next timer armed).
    pub fn set_timings(&mut self, timings: HookTimings) {
        self.timings = timings;
    }

    /// DAHDI_SETCADENCE: `None` restores the default `[starttime, 4000]`.
    pub fn set_cadence(&mut self, cadence: Option<Cadence>) {
        self.cadence = cadence;
    }

    /// GETSIGFREEZE / SETSIGFREEZE: while frozen, rx reports are ignored.
    pub fn set_sigfreeze(&mut self, on: bool) {
        self.sigfreeze = on;
    }

    /// The tx state.
    pub fn tx_state(&self) -> TxState {
        self.state
    }

    /// The last rx hook signal reported (RxSig::Initial after reset).
    pub fn rxsig(&self) -> RxSig {
        self.rxsig
    }

    /// GET_PARAMS `rxisoffhook` for hooksig channels: rx state neither ONHOOK nor INITIAL.
    pub fn rx_is_offhook(&self) -> bool {
        !matches!(self.rxsig, RxSig::OnHook | RxSig::Initial)
    }

    /// The tx hook signal the line should carry now (GET_PARAMS `txhooksig`).
    pub fn txsig(&self) -> TxSig {
        self.state.txsig()
    }

    /// Whether a blocking WINK/FLASH/START is still running.
    pub fn is_tx_busy(&self) -> bool {
        matches!(
            self.state,
            TxState::PreWink
                | TxState::Wink
                | TxState::PreFlash
                | TxState::Flash
                | TxState::Start
                | TxState::AfterStart
        )
    }

    /// CHANCONFIG / STARTUP (§2): a new signalling type (or the same), hang-up without
    /// events, every timer stopped, default timings for the type, rx state INITIAL (the next
    /// report always counts). Pending machine events are discarded.
    pub fn reset(&mut self, now: Instant, sig: Sig) {
        let now = self.tick(now);
        self.sig = sig;
        self.timings = HookTimings::defaults_for(sig);
        self.timers.stop_all();
        self.cadence_pos = 0;
        self.hookcomplete = false;
        self.rxsig = RxSig::Initial;
        self.rx_onhook_since = None;
        self.pulses = 0;
        self.gs_seized = false;
        self.rx_ringing = false;
        self.events.flush();
        self.set_state(now, TxState::OnHook);
    }

    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn set_state(&mut self, _now: Instant, state: TxState) {
        if self.state != state {
            log::trace!("chan {}: tx {:?} -> {:?}", self.chan, self.state, state);
            self.state = state;
        }
    }

    fn arm(&mut self, timer: Timer, at: Instant) {
        self.timers.set(timer, at);
    }

    fn stop(&mut self, timer: Timer) {
        self.timers.stop(timer);
    }

    fn armed(&self, timer: Timer) -> bool {
        self.timers.is_armed(timer)
    }

    fn queue(&mut self, event: Event) {
        log::debug!("chan {}: event {}", self.chan, event);
        self.events.push(event);
    }

    /// The next DAHDI event this machine produced.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop();
        (e != Event::NONE).then_some(e)
    }

    /// The line was found off hook (a device taken over running, its loop closed by the
    /// previous host): the machine takes that as its tx state and as what the line carries,
    /// without a hooksig and without an event, so that the PBX's on-hook opens the loop.
    pub fn adopt_line_offhook(&mut self) {
        if self.state == TxState::OnHook {
            self.state = TxState::OffHook;
            self.line_txsig = TxSig::OffHook;
        }
    }

    /// The tx hook signal to give the line (the `hooksig` callback), only when it differs from
    /// the last one returned.
    #[must_use]
    pub fn poll_hooksig(&mut self) -> Option<TxSig> {
        let sig = self.state.txsig();
        (sig != self.line_txsig).then(|| {
            self.line_txsig = sig;
            sig
        })
    }

    /// When [`Self::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Handles every timer due at `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        for _ in 0..MAX_EXPIRIES_PER_CALL {
            let Some((timer, at)) = self.timers.next_expired(now) else { return };
            self.stop(timer);
            self.on_timer(at, timer);
        }
    }

    fn on_timer(&mut self, at: Instant, timer: Timer) {
        match timer {
            Timer::Tx => self.on_tx_timer(at),
            Timer::RxHook => {
                if self.sig.is_em() {
                    self.queue(Event::RINGOFFHOOK);
                } else {
                    self.rx_onhook_since = None;
                    self.hung_up();
                }
            }
            Timer::PulseDigit => self.emit_pulse_digit(),
            Timer::RingDebounce => {}
            Timer::RingTrailer => {
                self.rx_ringing = false;
                self.queue(Event::RINGOFFHOOK);
            }
        }
    }

    fn hung_up(&mut self) {
        self.gs_seized = false;
        self.queue(Event::ONHOOK);
    }

    fn emit_pulse_digit(&mut self) {
        self.stop(Timer::PulseDigit);
        let digit = match self.pulses {
            n @ 1..=9 => Some(b'0' + n),
            10 => Some(b'0'),
            11 => Some(b'*'),
            12 => Some(b'#'),
            // Decision: more than 12 pulses is no digit; it is dropped (logged).
            _ => None,
        };
        match digit {
            Some(d) => self.queue(Event::pulse_digit(d)),
            None => log::debug!("chan {}: {} pulses is no digit", self.chan, self.pulses),
        }
        self.pulses = 0;
    }

    fn on_tx_timer(&mut self, at: Instant) {
        let t = self.timings;
        match self.state {
            TxState::Debounce => {
                self.set_state(at, TxState::OffHook);
                // Decision: an rx on-hook seen during the debounce counts from its end.
                if self.rxsig == RxSig::OnHook {
                    if self.sig.is_fxo() {
                        self.rx_onhook_since = Some(at);
                        self.arm(Timer::RxHook, at + t.rxflashtime);
                    } else if matches!(self.sig, Sig::Fxsgs | Sig::Fxsks) {
                        self.arm(Timer::RingDebounce, at + Duration::from_millis(fixed::RING_DEBOUNCE_MS));
                        self.hung_up();
                    }
                }
            }
            TxState::PreWink => {
                self.set_state(at, TxState::Wink);
                self.arm(Timer::Tx, at + t.winktime);
            }
            TxState::Wink => {
                self.set_state(at, TxState::OnHook);
                self.complete();
            }
            TxState::PreFlash => {
                self.set_state(at, TxState::Flash);
                self.arm(Timer::Tx, at + t.flashtime);
            }
            TxState::Flash => {
                self.set_state(at, TxState::OffHook);
                self.complete();
            }
            TxState::Start => {
                self.set_state(at, TxState::AfterStart);
                self.arm(Timer::Tx, at + Duration::from_millis(fixed::AFTERSTART_MS));
            }
            TxState::AfterStart => {
                self.set_state(at, TxState::OffHook);
                self.complete();
            }
            TxState::RingOn | TxState::RingOff => {
                let cadence = self.cadence.unwrap_or_else(|| Cadence::default_for(&t));
                self.cadence_pos = cadence.next(self.cadence_pos);
                self.ring_step(at, &cadence);
            }
            TxState::Kewl => {
                self.set_state(at, TxState::AfterKewl);
                self.arm(Timer::Tx, at + Duration::from_millis(fixed::AFTERKEWL_MS));
            }
            TxState::AfterKewl => {
                self.set_state(at, TxState::OnHook);
                if self.rxsig == RxSig::OnHook {
                    self.pulses = 0;
                    self.hung_up();
                }
            }
            TxState::OnHook | TxState::OffHook => {}
        }
    }

    fn ring_step(&mut self, at: Instant, cadence: &Cadence) {
        if self.cadence_pos.is_multiple_of(2) {
            self.set_state(at, TxState::RingOn);
            self.queue(Event::RINGERON);
        } else {
            self.set_state(at, TxState::RingOff);
            self.queue(Event::RINGEROFF);
        }
        self.arm(Timer::Tx, at + cadence.step(self.cadence_pos));
    }

    fn complete(&mut self) {
        if std::mem::take(&mut self.hookcomplete) {
            self.queue(Event::HOOKCOMPLETE);
        }
    }

    /// DAHDI_HOOK from the PBX (§5).
    pub fn set_hook(&mut self, now: Instant, cmd: HookCmd, mode: HookMode) -> Result<HookOutcome, HookError> {
        let now = self.tick(now);
        if !self.sig.has_hook_signalling() {
            return Err(HookError::Invalid);
        }
        let t = self.timings;
        let outcome = match cmd {
            HookCmd::OnHook => {
                self.stop(Timer::Tx);
                self.hookcomplete = false;
                if self.sig == Sig::Fxoks && self.rx_is_offhook() {
                    self.set_state(now, TxState::Kewl);
                    self.arm(Timer::Tx, now + Duration::from_millis(fixed::KEWL_MS));
                } else {
                    self.set_state(now, TxState::OnHook);
                }
                // Decision: the post-hang-up ring debounce is armed for FXS-signalled channels
                // only (rings are only received there).
                if self.sig.is_fxs() {
                    self.arm(Timer::RingDebounce, now + Duration::from_millis(fixed::RING_DEBOUNCE_MS));
                }
                HookOutcome::Done
            }
            HookCmd::OffHook => {
                if matches!(self.state, TxState::Kewl | TxState::AfterKewl) {
                    return Err(HookError::Busy(self.state));
                }
                self.hookcomplete = false;
                self.set_state(now, TxState::Debounce);
                self.arm(Timer::Tx, now + t.debouncetime);
                HookOutcome::Done
            }
            HookCmd::Wink => {
                if self.state != TxState::OnHook {
                    return Err(HookError::Busy(self.state));
                }
                self.hookcomplete = mode == HookMode::NonBlocking;
                self.set_state(now, TxState::PreWink);
                self.arm(Timer::Tx, now + t.prewinktime);
                HookOutcome::InProgress
            }
            HookCmd::Flash => {
                // Decision: the debounce state counts as off hook (the line is off hook).
                if !self.state.is_offhook() {
                    return Err(HookError::Busy(self.state));
                }
                self.hookcomplete = mode == HookMode::NonBlocking;
                self.set_state(now, TxState::PreFlash);
                self.arm(Timer::Tx, now + t.preflashtime);
                HookOutcome::InProgress
            }
            HookCmd::Start | HookCmd::Ring => {
                if self.state != TxState::OnHook {
                    return Err(HookError::Busy(self.state));
                }
                if self.sig.is_fxo() {
                    // Decision: ringing never blocks and never completes (no HOOKCOMPLETE); the
                    // PBX stops it (RINGOFF/ONHOOK/OFFHOOK) or the phone answers.
                    let cadence = self.cadence.unwrap_or_else(|| Cadence::default_for(&t));
                    self.cadence_pos = 0;
                    self.ring_step(now, &cadence);
                    HookOutcome::Done
                } else {
                    self.hookcomplete = mode == HookMode::NonBlocking;
                    self.set_state(now, TxState::Start);
                    self.arm(Timer::Tx, now + t.starttime);
                    HookOutcome::InProgress
                }
            }
            HookCmd::RingOff => {
                // Decision: RINGOFF puts tx on hook in any state, without RINGEROFF.
                self.stop(Timer::Tx);
                self.hookcomplete = false;
                self.set_state(now, TxState::OnHook);
                HookOutcome::Done
            }
            HookCmd::Unknown(_) => return Err(HookError::Invalid),
        };
        Ok(outcome)
    }

    /// The rx-hook helper: the line reports its hook state (§4, §5). Ignored when unchanged
    /// (except after a reset, when rx is INITIAL), while signalling is frozen, and on channels
    /// without hook signalling.
    pub fn handle_rxsig(&mut self, now: Instant, rxsig: RxSig) {
        let now = self.tick(now);
        if self.sigfreeze || !self.sig.has_hook_signalling() || !rxsig.is_known() || rxsig == RxSig::Initial {
            return;
        }
        let was = self.rxsig;
        if rxsig == was {
            return;
        }
        log::trace!("chan {}: rx {} -> {}", self.chan, was, rxsig);
        self.rxsig = rxsig;
        let initial = was == RxSig::Initial;
        if self.sig.is_fxo() {
            self.rx_fxo_signalled(now, rxsig, initial);
        } else if self.sig.is_fxs() {
            self.rx_fxs_signalled(now, rxsig);
        } else if self.sig.is_em() {
            match rxsig {
                RxSig::OffHook => self.arm(Timer::RxHook, now + self.timings.rxwinktime),
                RxSig::OnHook => {
                    if self.armed(Timer::RxHook) {
                        self.stop(Timer::RxHook);
                        self.queue(Event::WINKFLASH);
                    } else {
                        self.queue(Event::ONHOOK);
                    }
                }
                _ => {}
            }
        } else if self.sig == Sig::Sf {
            match rxsig {
                RxSig::OffHook => self.queue(Event::RINGOFFHOOK),
                RxSig::OnHook => self.queue(Event::ONHOOK),
                _ => {}
            }
        }
    }

    fn rx_fxo_signalled(&mut self, now: Instant, rxsig: RxSig, initial: bool) {
        match rxsig {
            RxSig::Start if self.sig == Sig::Fxogs => {
                self.stop_ringing(now);
                if !self.gs_seized {
                    self.gs_seized = true;
                    self.queue(Event::RINGOFFHOOK);
                }
            }
            RxSig::OffHook => {
                self.stop_ringing(now);
                if let Some(since) = self.rx_onhook_since.take() {
                    self.stop(Timer::RxHook);
                    let ms = now.saturating_duration_since(since).total_millis();
                    if ms < fixed::PULSE_MIN_MS {
                        // A glitch: ignored.
                    } else if ms <= fixed::PULSE_MAX_MS {
                        if self.pulses == 0 || !self.armed(Timer::PulseDigit) {
                            self.pulses = 0;
                            self.queue(Event::PULSE_START);
                        }
                        self.pulses = self.pulses.saturating_add(1);
                        self.arm(
                            Timer::PulseDigit,
                            now + Duration::from_millis(fixed::PULSE_DIGIT_TIMEOUT_MS),
                        );
                    } else {
                        // Decision: a digit still being timed is reported before the flash.
                        if self.armed(Timer::PulseDigit) {
                            self.emit_pulse_digit();
                        }
                        self.queue(Event::WINKFLASH);
                    }
                } else if !(self.sig == Sig::Fxogs && self.gs_seized) {
                    self.gs_seized = self.sig == Sig::Fxogs;
                    self.queue(Event::RINGOFFHOOK);
                }
            }
            RxSig::OnHook => {
                if initial {
                    // Decision: the first report after a reset has no off-hook to time a flash
                    // against; ONHOOK is queued at once.
                    self.hung_up();
                } else if !matches!(self.state, TxState::Debounce | TxState::Kewl | TxState::AfterKewl) {
                    self.rx_onhook_since = Some(now);
                    self.arm(Timer::RxHook, now + self.timings.rxflashtime);
                }
            }
            _ => {}
        }
    }

    fn rx_fxs_signalled(&mut self, now: Instant, rxsig: RxSig) {
        match rxsig {
            RxSig::Ring => {
                if self.rx_ringing {
                    // RING back within the trailer: the same ring goes on.
                    self.stop(Timer::RingTrailer);
                } else if self.armed(Timer::RingDebounce) {
                    // Decision: a ring starting inside the ring debounce is ignored wholly
                    // (no RINGBEGIN, no RINGOFFHOOK).
                    log::debug!("chan {}: ring ignored (debounce)", self.chan);
                } else {
                    self.rx_ringing = true;
                    self.queue(Event::RINGBEGIN);
                }
            }
            RxSig::OffHook | RxSig::OnHook => {
                if self.rx_ringing && !self.armed(Timer::RingTrailer) {
                    self.arm(Timer::RingTrailer, now + Duration::from_millis(fixed::RING_TRAILER_MS));
                }
                if rxsig == RxSig::OnHook {
                    let acts = match self.sig {
                        Sig::Fxsgs => self.state != TxState::Debounce,
                        Sig::Fxsks => self.state == TxState::OffHook,
                        _ => false,
                    };
                    if acts {
                        self.arm(Timer::RingDebounce, now + Duration::from_millis(fixed::RING_DEBOUNCE_MS));
                        self.hung_up();
                    }
                }
            }
            _ => {}
        }
    }

    fn stop_ringing(&mut self, now: Instant) {
        if self.state.is_ringing() {
            self.stop(Timer::Tx);
            self.set_state(now, TxState::OffHook);
        }
    }

    /// The armed timers, for tests and status views.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        self.timers.iter()
    }
}

#[cfg(test)]
mod tests;
