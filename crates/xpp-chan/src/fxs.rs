//! The FXS line model (docs/reference/xpp-protocol.md §9.1): a phone on an Astribank FXS port.

use xpp_proto::timer::{TimerKind, TimerTable};
use xpp_proto::wire::{Address, CardType, RamAccess, RegAccess, RegCmd, Repr};
use xpp_proto::{Duration, Instant};

use crate::common::{Outbox, next_period, reg_reply_for, sig_for};
use crate::{Error, Event, Led};

#[cfg(test)]
mod tests;

/// The SLIC generation of an FXS module: hardware type 1 or 6 of the unit descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChipType {
    /// Hardware type 1 (the original FXS module).
    Type1,
    /// Hardware type 6 (the newer FXS module, with an I/O expander and SLIC RAM).
    Type6,
}

impl ChipType {
    /// The chip type of a unit descriptor's card type, if it is an FXS card.
    pub const fn from_card_type(card: CardType) -> Option<Self> {
        match card {
            CardType::Fxs => Some(Self::Type1),
            CardType::Fxs6 => Some(Self::Type6),
            _ => None,
        }
    }

    /// The line-feed register (type 1: 0x40, type 6: 0x1E).
    pub const fn line_feed_reg(self) -> u8 {
        match self {
            Self::Type1 => reg1::LINE_FEED,
            Self::Type6 => reg6::LINE_FEED,
        }
    }

    /// The register read for the hook state (type 1: 0x44, type 6: 0x22).
    pub const fn hook_state_reg(self) -> u8 {
        match self {
            Self::Type1 => reg1::HOOK_STATE,
            Self::Type6 => reg6::HOOK_STATE,
        }
    }
}

/// Type 1 register numbers (docs/reference/xpp-protocol.md §9.1).
mod reg1 {
    pub(super) const LED: u8 = 0x06;
    pub(super) const DTMF_ENABLE: u8 = 0x17;
    pub(super) const DTMF_RESULT: u8 = 0x18;
    pub(super) const INDIRECT: u8 = 0x1E;
    pub(super) const LINE_FEED: u8 = 0x40;
    pub(super) const BATTERY: u8 = 0x42;
    pub(super) const HOOK_STATE: u8 = 0x44;
    pub(super) const BATTERY_HIGH: u8 = 0x02;
    pub(super) const BATTERY_LOW: u8 = 0x00;
    pub(super) const GREEN_OFF: u8 = 0x6C;
    pub(super) const GREEN_ON: u8 = 0x7C;
    pub(super) const RED_OFF: u8 = 0xAC;
    pub(super) const RED_ON: u8 = 0xAE;
}

/// Type 6 register and RAM numbers (docs/reference/xpp-protocol.md §9.1).
mod reg6 {
    pub(super) const EXPANDER_PORT_A: u8 = 0x12;
    pub(super) const LINE_FEED: u8 = 0x1E;
    pub(super) const HOOK_STATE: u8 = 0x22;
    pub(super) const DTMF_RESULT: u8 = 0x3C;
    pub(super) const DTMF_ENABLE: u8 = 0x3E;
    pub(super) const DTMF_ON: u8 = 0xE0;
    pub(super) const DTMF_OFF: u8 = 0x04;
    pub(super) const MWI_2F: u8 = 0x2F;
    pub(super) const MWI_42: u8 = 0x42;
    pub(super) const MWI_47: u8 = 0x47;
    pub(super) const RAM_MWI_VOLTAGE: u16 = 767;
    pub(super) const RAM_634: u16 = 634;
}

/// The DTMF detector's digit string, indexed by bits 0-3 of the result register.
const DTMF_DIGITS: [char; 16] =
    ['D', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#', 'A', 'B', 'C'];
const DTMF_KEY_DOWN: u8 = 0x10;

/// The type-6 overheat check period (docs/reference/xpp-protocol.md §9.1).
const OVERHEAT_POLL: Duration = Duration::from_millis(30_000);
/// How often the hook-state register is read again, so that a hook change whose SIG_CHANGED
/// was lost on the way is seen within this period (plus the command pacing) — issue 15,
/// item 8: without it one lost IN transfer lost the change for good.
// Decision: 1 s, like the FXO's VBAT and loop-current polls in spirit (500 ms there, one read per
// port): 8 reads a second per FXS unit against the bus's 1000 commands a second; a PBX
// times a lost off-hook at most a second late. A read whose answer equals the state known
// raises nothing; the device answers in order with its SIG_CHANGED reports, so a poll never
// reports a state older than the last change.
pub const HOOK_POLL: Duration = Duration::from_millis(1_000);
/// LED blink half-period while ringing.
const LED_BLINK: Duration = Duration::from_millis(125);
/// Type-6 message lamp: lit for 300 ms of every 1000 ms.
const LAMP_ON: Duration = Duration::from_millis(300);
const LAMP_OFF: Duration = Duration::from_millis(700);

/// SLIC line-feed states (the value written to the line-feed register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LineFeed {
    /// 0x00: open (no battery).
    Open,
    /// 0x01: forward active.
    ForwardActive,
    /// 0x02: forward on-hook transmission.
    ForwardOht,
    /// 0x03: tip open.
    TipOpen,
    /// 0x04: ringing.
    Ringing,
    /// 0x05: reverse active.
    ReverseActive,
    /// 0x06: reverse on-hook transmission.
    ReverseOht,
    /// 0x07: ring open.
    RingOpen,
}

impl LineFeed {
    /// The register value.
    pub const fn value(self) -> u8 {
        match self {
            Self::Open => 0x00,
            Self::ForwardActive => 0x01,
            Self::ForwardOht => 0x02,
            Self::TipOpen => 0x03,
            Self::Ringing => 0x04,
            Self::ReverseActive => 0x05,
            Self::ReverseOht => 0x06,
            Self::RingOpen => 0x07,
        }
    }

    /// The state a register value means (bits 0-2).
    pub const fn from_value(v: u8) -> Self {
        match v & 0x07 {
            0x00 => Self::Open,
            0x01 => Self::ForwardActive,
            0x02 => Self::ForwardOht,
            0x03 => Self::TipOpen,
            0x04 => Self::Ringing,
            0x05 => Self::ReverseActive,
            0x06 => Self::ReverseOht,
            _ => Self::RingOpen,
        }
    }

    /// Whether this is an on-hook transmission state (forward or reverse).
    pub const fn is_oht(self) -> bool {
        matches!(self, Self::ForwardOht | Self::ReverseOht)
    }

    const fn active(reversed: bool) -> Self {
        if reversed { Self::ReverseActive } else { Self::ForwardActive }
    }

    const fn oht(reversed: bool) -> Self {
        if reversed { Self::ReverseOht } else { Self::ForwardOht }
    }
}

/// The type-1 ring-generator settings of the §9.1 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RingWaveform {
    /// The "NORMAL" column (sine ringing).
    #[default]
    Normal,
    /// The "TRAPEZ" column (trapezoidal ringing).
    Trapezoid,
}

/// Type-6 message-waiting RAM constants (register values before the shift left by 3).
///
/// Decision: docs/reference/xpp-protocol.md §9.1 names RAM 767 and 634 and says the constants are shifted
/// left by 3, but gives no values; the integrator supplies them. Without them
/// ([`FxsConfig::vmwi6`] = `None`) the type-6 VMWI sequence writes only the registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vmwi6Constants {
    /// RAM 767 while messages are waiting (the MWI voltage).
    pub ram767_mwi: u32,
    /// RAM 767 default, restored when MWI ends.
    pub ram767_default: u32,
    /// RAM 634 default, restored when MWI ends.
    pub ram634_default: u32,
}

/// FXS line options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FxsConfig {
    /// Type 1: ring-generator setting used for ringing.
    pub waveform: RingWaveform,
    /// Type 1: the NEON value written to register 0x33. Decision: 0x12, the value the type-1
    /// init script sets (the table's 0x05 is the driver's compiled-in default).
    pub neon_reg33: u8,
    /// How long the line stays in on-hook transmission after ringing or a caller-ID request
    /// before returning to active (6000 ms).
    pub oht_duration: Duration,
    /// Drive the green LED from the line state: on while off-hook, blinking every 125 ms while
    /// ringing, off otherwise.
    pub auto_leds: bool,
    /// Type 6 VMWI RAM constants, if known.
    pub vmwi6: Option<Vmwi6Constants>,
    /// Keep the line in PCM while on-hook so the span layer can search its transmit audio for
    /// MWI FSK patterns (docs/reference/xpp-protocol.md §7.1 "card extras").
    pub vmwi_fsk_search: bool,
    /// Read the hook state again at this period ([`HOOK_POLL`] by default), so that a hook
    /// change whose SIG_CHANGED was lost is still seen; `None`: only SIG_CHANGED and
    /// [`FxsLine::read_hook_state`] tell it.
    pub hook_poll: Option<Duration>,
}

impl Default for FxsConfig {
    fn default() -> Self {
        Self {
            waveform: RingWaveform::Normal,
            neon_reg33: 0x12,
            oht_duration: Duration::from_millis(6000),
            auto_leds: true,
            vmwi6: None,
            vmwi_fsk_search: false,
            hook_poll: Some(HOOK_POLL),
        }
    }
}

/// Most steps of a ring cadence (DAHDI's limit).
pub const MAX_CADENCE_STEPS: usize = 16;

/// A ring cadence: alternating on and off durations, repeated until ringing stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cadence {
    steps: [Duration; MAX_CADENCE_STEPS],
    len: u8,
}

impl Cadence {
    /// Ring on until stopped (the span core plays the cadence itself).
    pub const CONTINUOUS: Self = Self { steps: [Duration::ZERO; MAX_CADENCE_STEPS], len: 0 };

    /// A cadence of `on, off, on, off, ...` durations: an even number of steps, 2 to 16,
    /// each at least 1 ms.
    pub fn new(steps: &[Duration]) -> Result<Self, Error> {
        if steps.is_empty() || steps.len() > MAX_CADENCE_STEPS {
            return Err(Error::InvalidCadence("needs 2 to 16 steps"));
        }
        if !steps.len().is_multiple_of(2) {
            return Err(Error::InvalidCadence("needs pairs of on and off durations"));
        }
        if steps.iter().any(|d| d.total_millis() == 0) {
            return Err(Error::InvalidCadence("a step is shorter than 1 ms"));
        }
        let mut arr = [Duration::ZERO; MAX_CADENCE_STEPS];
        arr[..steps.len()].copy_from_slice(steps);
        Ok(Self { steps: arr, len: steps.len() as u8 })
    }

    /// A cadence from millisecond values.
    pub fn from_millis(steps: &[u64]) -> Result<Self, Error> {
        let mut arr = [Duration::ZERO; MAX_CADENCE_STEPS];
        if steps.len() > MAX_CADENCE_STEPS {
            return Err(Error::InvalidCadence("needs 2 to 16 steps"));
        }
        for (d, &ms) in arr.iter_mut().zip(steps) {
            *d = Duration::from_millis(ms);
        }
        Self::new(&arr[..steps.len()])
    }

    /// The steps (empty for [`Cadence::CONTINUOUS`]).
    pub fn steps(&self) -> &[Duration] {
        &self.steps[..usize::from(self.len)]
    }
}

/// The long-lived state of an FXS line's feed, changed only through `set_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FxsState {
    /// Line feed active (forward or reverse); the phone may be on or off hook.
    Idle,
    /// The host is ringing the phone (ring on, or OHT between rings).
    Ringing,
    /// On-hook transmission (after ringing, or for caller ID), until the OHT timer.
    Oht,
    /// Message-waiting lamp on while on-hook (type 1 neon: line feed ringing on the NEON
    /// generator; type 6: lamp blinking).
    Vmwi,
    /// Line feed open.
    Open,
}

xpp_proto::timer_enum! {
    /// The line's timers, in a [`TimerTable`].
    enum Timer {
        /// The next step of the ring cadence.
        RingCadence,
        /// The green LED's next toggle while ringing.
        LedBlink,
        /// The end of on-hook transmission.
        Oht,
        /// The type-6 message lamp's next toggle.
        VmwiLamp,
        /// The type-6 overheat check.
        OverheatPoll,
        /// The hook-state re-read ([`HOOK_POLL`]).
        HookPoll,
    }
}

/// Which column of the type-1 ring-generator table to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RingGen {
    Neon,
    Trapez,
    Normal,
}

/// One FXS analog port.
///
/// Method kinds (quinn-proto style):
/// - inputs: [`handle_packet`](Self::handle_packet) (SIG_CHANGED of the XPD, REGISTER_REPLY
///   for this port; anything else is ignored) and [`handle_timeout`](Self::handle_timeout);
/// - commands from the span layer: [`read_hook_state`](Self::read_hook_state),
///   [`start_ringing`](Self::start_ringing), [`stop_ringing`](Self::stop_ringing),
///   [`start_oht`](Self::start_oht), [`set_reversed`](Self::set_reversed),
///   [`set_line_open`](Self::set_line_open), [`set_vmwi`](Self::set_vmwi),
///   [`set_led`](Self::set_led), [`set_dtmf_detection`](Self::set_dtmf_detection);
/// - outputs: [`poll_transmit`](Self::poll_transmit) (register commands, in order),
///   [`poll_event`](Self::poll_event) (raw facts), [`poll_timeout`](Self::poll_timeout),
///   and the getters ([`wants_pcm`](Self::wants_pcm), [`off_hook`](Self::off_hook), ...).
///
/// Polling order, each tick and after every input or command: call
/// [`handle_timeout`](Self::handle_timeout) if [`poll_timeout`](Self::poll_timeout) is due, then
/// drain [`poll_transmit`](Self::poll_transmit) into the bus's paced command queue, then drain
/// [`poll_event`](Self::poll_event), then read [`wants_pcm`](Self::wants_pcm) for the PCM mask.
///
/// The line assumes card init has run (line feed forward active, software-controlled
/// ringing); it learns the hook state from SIG_CHANGED or from
/// [`read_hook_state`](Self::read_hook_state), and reads the hook state again every
/// [`HOOK_POLL`] (1 s), so a change whose SIG_CHANGED was lost is seen within that time.
/// Type 6 lines read their line feed every 30 s to detect chip overheat; the unit-level
/// digital-input polling is not a line's job.
#[derive(Debug, Clone)]
pub struct FxsLine {
    addr: Address,
    port: u8,
    chip: ChipType,
    config: FxsConfig,
    state: FxsState,
    off_hook: Option<bool>,
    reversed: bool,
    line_feed: LineFeed,
    /// A read of the line feed is out ([`FxsLine::read_line_feed_state`]).
    line_feed_read: bool,
    vmwi: bool,
    cadence: Cadence,
    ring_step: usize,
    ring_on: bool,
    green: Option<bool>,
    blink_on: bool,
    lamp_lit: bool,
    timers: TimerTable<Timer, 6>,
    out: Outbox,
}

impl FxsLine {
    /// A line on chip port `port` (0..7, taken modulo 8) of the FXS XPD at `addr`.
    pub fn new(now: Instant, addr: Address, port: u8, chip: ChipType, config: FxsConfig) -> Self {
        debug_assert!(port < 8, "chip port out of range");
        let mut line = Self {
            addr,
            port: port & 0x07,
            chip,
            config,
            state: FxsState::Idle,
            off_hook: None,
            reversed: false,
            // Decision: card init leaves every line forward active (§9.1), so that is the
            // starting point; nothing is written until a command or an input needs it.
            line_feed: LineFeed::ForwardActive,
            line_feed_read: false,
            vmwi: false,
            cadence: Cadence::CONTINUOUS,
            ring_step: 0,
            ring_on: false,
            green: None,
            blink_on: false,
            lamp_lit: false,
            timers: TimerTable::new(),
            out: Outbox::new(addr),
        };
        if chip == ChipType::Type6 {
            line.timers.set(Timer::OverheatPoll, now + OVERHEAT_POLL);
        }
        if let Some(period) = config.hook_poll {
            line.timers.set(Timer::HookPoll, now + period);
        }
        line
    }

    // ----- getters -----

    /// The XPD address.
    pub const fn address(&self) -> Address {
        self.addr
    }

    /// The chip port.
    pub const fn port(&self) -> u8 {
        self.port
    }

    /// The chip type.
    pub const fn chip(&self) -> ChipType {
        self.chip
    }

    /// The line's state.
    pub const fn state(&self) -> FxsState {
        self.state
    }

    /// The phone's hook state, once known.
    pub const fn off_hook(&self) -> Option<bool> {
        self.off_hook
    }

    /// The last line feed written (or assumed after card init).
    pub const fn line_feed(&self) -> LineFeed {
        self.line_feed
    }

    /// Whether polarity is reversed.
    pub const fn reversed(&self) -> bool {
        self.reversed
    }

    /// Whether messages are waiting (the VMWI lamp is wanted).
    pub const fn vmwi(&self) -> bool {
        self.vmwi
    }

    /// Whether the line is being rung (cadence running, in an on or off step).
    pub fn is_ringing(&self) -> bool {
        self.state == FxsState::Ringing
    }

    /// Whether this line belongs in the XPD's PCM mask: off-hook, in on-hook transmission
    /// (caller ID), or searching for VMWI FSK (docs/reference/xpp-protocol.md §7.1).
    pub fn wants_pcm(&self) -> bool {
        self.off_hook == Some(true)
            || self.line_feed.is_oht()
            || self.state == FxsState::Oht
            || self.config.vmwi_fsk_search
    }

    /// Register commands waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_commands(&self) -> usize {
        self.out.queued_commands()
    }

    /// Commands and events dropped because the caller did not poll (queues are bounded).
    pub fn dropped(&self) -> (u64, u64) {
        self.out.dropped()
    }

    // ----- outputs -----

    /// The next register command to send, addressed to this line's XPD.
    #[must_use]
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Repr<'static>> {
        self.out.poll_transmit()
    }

    /// The next raw line fact.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.poll_event()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    // ----- inputs -----

    /// Processes one packet from the device. Only SIG_CHANGED for this XPD (this port's
    /// toggle bit) and REGISTER_REPLY for this port are looked at.
    pub fn handle_packet(&mut self, now: Instant, repr: &Repr<'_>) {
        if let Some(off_hook) = sig_for(repr, self.addr, self.port) {
            self.hook_changed(now, off_hook);
            return;
        }
        let Some(r) = reg_reply_for(repr, self.addr, self.port) else { return };
        if r.expander || r.do_subreg {
            return;
        }
        if r.reg == self.chip.line_feed_reg() && std::mem::take(&mut self.line_feed_read) {
            return self.adopt_line_feed(r.data_low);
        }
        match (self.chip, r.reg) {
            // Valid only if bits 3-7 are 0 (0xFF = absent port); bit 0 = off-hook.
            (ChipType::Type1, reg1::HOOK_STATE) if r.data_low & 0xF8 == 0 => {
                self.hook_changed(now, r.data_low & 0x01 != 0);
            }
            // Valid only if bits 4-7 are 0; bit 1 = off-hook.
            (ChipType::Type6, reg6::HOOK_STATE) if r.data_low & 0xF0 == 0 => {
                self.hook_changed(now, r.data_low & 0x02 != 0);
            }
            (ChipType::Type1, reg1::DTMF_RESULT) | (ChipType::Type6, reg6::DTMF_RESULT) => {
                let digit = DTMF_DIGITS[usize::from(r.data_low & 0x0F)];
                let down = r.data_low & DTMF_KEY_DOWN != 0;
                self.out.emit(Event::DtmfDigit { digit, down, at: now });
            }
            (ChipType::Type6, reg6::LINE_FEED) if r.data_low == 0 && self.line_feed != LineFeed::Open => {
                log::warn!(
                    "fxs {}/{} port {}: line feed read 0 while {:?} was written: overheat",
                    self.addr.unit(),
                    self.addr.subunit(),
                    self.port,
                    self.line_feed
                );
                self.out.emit(Event::Overheat { at: now });
                self.write_line_feed(self.line_feed);
            }
            _ => {}
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for &timer in Timer::ALL {
            let Some(due) = self.timers.take_expired(timer, now) else { continue };
            match timer {
                Timer::RingCadence => self.on_cadence(due, now),
                Timer::LedBlink => {
                    self.blink_on = !self.blink_on;
                    self.update_leds();
                    self.timers.set(Timer::LedBlink, next_period(due, now, LED_BLINK));
                }
                Timer::Oht => {
                    if self.state == FxsState::Oht {
                        self.enter_idle(now);
                    }
                }
                Timer::VmwiLamp => self.on_lamp(due, now),
                Timer::OverheatPoll => {
                    self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, reg6::LINE_FEED)));
                    self.timers.set(Timer::OverheatPoll, next_period(due, now, OVERHEAT_POLL));
                }
                Timer::HookPoll => {
                    let period = self.config.hook_poll.unwrap_or(HOOK_POLL);
                    self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, self.chip.hook_state_reg())));
                    self.timers.set(Timer::HookPoll, next_period(due, now, period));
                }
            }
        }
    }

    // ----- commands -----

    /// Queues the hook-state read (type 1 reg 0x44, type 6 reg 0x22), as card init does.
    pub fn read_hook_state(&mut self, _now: Instant) {
        self.out.send(RegCmd::Reg(RegAccess::read(self.port, self.chip.hook_state_reg())));
    }

    /// Reads the line feed and reconciles it with this model, instead of assuming the card
    /// init's forward active: for a device taken over running, where the previous host may
    /// have left the line ringing (a call that is gone with it: the ring would never stop),
    /// open, or in on-hook transmission. A reversed polarity (an answered call's supervision)
    /// is adopted; any other state differing from the model is overwritten with the model's.
    pub fn read_line_feed_state(&mut self) {
        self.line_feed_read = true;
        self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, self.chip.line_feed_reg())));
    }

    /// Enables or disables the chip's DTMF detector (type 1 reg 0x17 = 1/0, type 6 reg 0x3E =
    /// 0xE0/0x04).
    pub fn set_dtmf_detection(&mut self, _now: Instant, on: bool) {
        match self.chip {
            ChipType::Type1 => self.write(reg1::DTMF_ENABLE, u8::from(on)),
            ChipType::Type6 => {
                self.write(reg6::DTMF_ENABLE, if on { reg6::DTMF_ON } else { reg6::DTMF_OFF });
            }
        }
    }

    /// Starts ringing with `cadence` (ring on now). Refused while off-hook or open. Ringing
    /// stops on [`stop_ringing`](Self::stop_ringing) or when the phone goes off-hook. Calling
    /// it while ringing restarts the new cadence with a ring-on step.
    pub fn start_ringing(&mut self, now: Instant, cadence: Cadence) -> Result<(), Error> {
        if self.state == FxsState::Open {
            return Err(Error::LineOpen);
        }
        if self.off_hook == Some(true) {
            return Err(Error::OffHook);
        }
        match self.state {
            FxsState::Vmwi => self.leave_vmwi(true),
            FxsState::Oht => self.timers.stop(Timer::Oht),
            _ => {}
        }
        if !(self.state == FxsState::Ringing && self.ring_on) {
            self.ring_on_writes();
        }
        self.cadence = cadence;
        self.ring_step = 0;
        self.ring_on = true;
        match cadence.steps().first() {
            Some(&d) => self.timers.set(Timer::RingCadence, now + d),
            None => self.timers.stop(Timer::RingCadence),
        }
        if self.config.auto_leds && self.state != FxsState::Ringing {
            self.blink_on = true;
            self.timers.set(Timer::LedBlink, now + LED_BLINK);
        }
        self.set_state(FxsState::Ringing);
        self.update_leds();
        Ok(())
    }

    /// Stops ringing; the line stays in on-hook transmission for
    /// [`FxsConfig::oht_duration`] (caller ID), then returns to active. No-op if not ringing.
    pub fn stop_ringing(&mut self, now: Instant) {
        if self.state != FxsState::Ringing {
            return;
        }
        self.end_ringing(LineFeed::oht(self.reversed));
        self.timers.set(Timer::Oht, now + self.config.oht_duration);
        self.set_state(FxsState::Oht);
        self.update_leds();
    }

    /// On-hook transmission for caller ID: line feed OHT for [`FxsConfig::oht_duration`],
    /// then active. While ringing it is already implied (Ok, nothing sent); refused while
    /// off-hook or open.
    pub fn start_oht(&mut self, now: Instant) -> Result<(), Error> {
        match self.state {
            FxsState::Open => return Err(Error::LineOpen),
            FxsState::Ringing => return Ok(()),
            _ if self.off_hook == Some(true) => return Err(Error::OffHook),
            FxsState::Vmwi => self.leave_vmwi(false),
            _ => {}
        }
        self.ensure_line_feed(LineFeed::oht(self.reversed));
        self.timers.set(Timer::Oht, now + self.config.oht_duration);
        self.set_state(FxsState::Oht);
        Ok(())
    }

    /// Sets the line polarity (toggles bit 2 of the line feed: active <-> reverse active,
    /// OHT <-> reverse OHT). Refused while ringing or open.
    pub fn set_reversed(&mut self, _now: Instant, reversed: bool) -> Result<(), Error> {
        match self.state {
            FxsState::Ringing => return Err(Error::Ringing),
            FxsState::Open => return Err(Error::LineOpen),
            _ => {}
        }
        if reversed == self.reversed {
            return Ok(());
        }
        self.reversed = reversed;
        // Decision: with the type-1 neon lamp on, the line feed is "ringing"; the polarity is
        // remembered and applied when the lamp goes off.
        if matches!(
            self.line_feed,
            LineFeed::ForwardActive | LineFeed::ReverseActive | LineFeed::ForwardOht | LineFeed::ReverseOht
        ) {
            self.write_line_feed(LineFeed::from_value(self.line_feed.value() ^ 0x04));
        }
        Ok(())
    }

    /// Opens the line feed (no battery: DAHDI's KEWL / a disabled line), or restores it.
    /// Opening stops ringing, OHT and the VMWI lamp.
    pub fn set_line_open(&mut self, now: Instant, open: bool) {
        if open {
            match self.state {
                FxsState::Open => return,
                FxsState::Ringing => self.end_ringing(LineFeed::Open),
                FxsState::Vmwi => {
                    self.leave_vmwi(false);
                    self.write_line_feed(LineFeed::Open);
                }
                FxsState::Oht | FxsState::Idle => {
                    self.timers.stop(Timer::Oht);
                    self.write_line_feed(LineFeed::Open);
                }
            }
            self.set_state(FxsState::Open);
            self.update_leds();
        } else if self.state == FxsState::Open {
            self.enter_idle(now);
        }
    }

    /// Messages waiting on/off: the message lamp (type 1 neon, type 6 blinking lamp) is lit
    /// whenever the phone is on-hook and the line is not ringing or in OHT.
    pub fn set_vmwi(&mut self, now: Instant, on: bool) {
        if on == self.vmwi {
            return;
        }
        self.vmwi = on;
        if on {
            if self.chip == ChipType::Type6
                && let Some(c) = self.config.vmwi6
            {
                self.write_ram(reg6::RAM_MWI_VOLTAGE, c.ram767_mwi << 3);
            }
            if self.state == FxsState::Idle && self.off_hook != Some(true) {
                self.enter_vmwi(now);
            }
        } else {
            if self.state == FxsState::Vmwi {
                self.leave_vmwi(false);
                self.ensure_line_feed(LineFeed::active(self.reversed));
                self.set_state(FxsState::Idle);
            }
            if self.chip == ChipType::Type6 {
                self.write(reg6::MWI_42, 0x00);
                self.write(reg6::MWI_2F, 0x10);
                if let Some(c) = self.config.vmwi6 {
                    self.write_ram(reg6::RAM_MWI_VOLTAGE, c.ram767_default << 3);
                    self.write_ram(reg6::RAM_634, c.ram634_default << 3);
                }
            }
        }
    }

    /// Writes one LED. Type 6 modules have green LEDs only. With
    /// [`FxsConfig::auto_leds`] the line may overwrite the green LED on its next change.
    pub fn set_led(&mut self, _now: Instant, led: Led, on: bool) -> Result<(), Error> {
        match (self.chip, led) {
            (ChipType::Type6, Led::Red) => Err(Error::Unsupported("type 6 FXS modules have no red LEDs")),
            (_, Led::Green) => {
                self.write_green(on);
                Ok(())
            }
            (ChipType::Type1, Led::Red) => {
                self.write(reg1::LED, if on { reg1::RED_ON } else { reg1::RED_OFF });
                Ok(())
            }
        }
    }

    // ----- internals -----

    fn set_state(&mut self, state: FxsState) {
        if state != self.state {
            log::debug!(
                "fxs {}/{} port {}: {:?} -> {:?}",
                self.addr.unit(),
                self.addr.subunit(),
                self.port,
                self.state,
                state
            );
            self.state = state;
        }
    }

    fn hook_changed(&mut self, now: Instant, off_hook: bool) {
        if self.off_hook == Some(off_hook) {
            return;
        }
        self.off_hook = Some(off_hook);
        self.out.emit(Event::HookChanged { off_hook, at: now });
        // What the host does on a hook change (§9.1): stop ringing, LEDs, lower battery (type 1).
        let mut battery_written = false;
        if off_hook {
            match self.state {
                FxsState::Ringing => {
                    // Decision (assumed, confirm on hardware; MODEL FXS-12): off-hook ends ringing straight
                    // to active (the phone needs talk battery), not through the post-ring OHT.
                    self.end_ringing(LineFeed::active(self.reversed));
                    battery_written = true;
                    self.set_state(FxsState::Idle);
                }
                FxsState::Oht => {
                    self.timers.stop(Timer::Oht);
                    self.write_line_feed(LineFeed::active(self.reversed));
                    self.set_state(FxsState::Idle);
                }
                FxsState::Vmwi => {
                    battery_written = self.chip == ChipType::Type1;
                    self.leave_vmwi(false);
                    self.ensure_line_feed(LineFeed::active(self.reversed));
                    self.set_state(FxsState::Idle);
                }
                FxsState::Idle | FxsState::Open => {}
            }
        }
        if self.chip == ChipType::Type1 && !battery_written {
            self.write(reg1::BATTERY, reg1::BATTERY_LOW);
        }
        if !off_hook && self.state == FxsState::Idle && self.vmwi {
            self.enter_vmwi(now);
        }
        self.update_leds();
    }

    /// Leaves the ringing state: stops the cadence and the blink and, if the ring was on,
    /// sends the ring-off transition with `line_feed` as the new feed.
    fn end_ringing(&mut self, line_feed: LineFeed) {
        self.timers.stop(Timer::RingCadence);
        self.timers.stop(Timer::LedBlink);
        if self.ring_on {
            self.ring_off_writes(line_feed);
        } else {
            self.ensure_line_feed(line_feed);
            if self.chip == ChipType::Type1 {
                self.write(reg1::BATTERY, reg1::BATTERY_LOW);
            }
        }
        self.ring_on = false;
    }

    fn on_cadence(&mut self, due: Instant, now: Instant) {
        let steps = self.cadence.steps();
        if self.state != FxsState::Ringing || steps.is_empty() {
            return;
        }
        self.ring_step = (self.ring_step + 1) % steps.len();
        let d = steps[self.ring_step];
        self.ring_on = self.ring_step.is_multiple_of(2);
        if self.ring_on {
            self.ring_on_writes();
        } else {
            self.ring_off_writes(LineFeed::oht(self.reversed));
        }
        self.timers.set(Timer::RingCadence, next_period(due, now, d));
    }

    /// Ring on: (type 1) ring-generator table, high battery; then line feed ringing.
    fn ring_on_writes(&mut self) {
        if self.chip == ChipType::Type1 {
            self.write_ring_generator(self.ring_waveform());
            self.write(reg1::BATTERY, reg1::BATTERY_HIGH);
        }
        self.write_line_feed(LineFeed::Ringing);
    }

    /// Ring off: line feed `next`; then (type 1) low battery, ring-generator table.
    fn ring_off_writes(&mut self, next: LineFeed) {
        self.write_line_feed(next);
        if self.chip == ChipType::Type1 {
            self.write(reg1::BATTERY, reg1::BATTERY_LOW);
            self.write_ring_generator(self.ring_waveform());
        }
    }

    fn ring_waveform(&self) -> RingGen {
        match self.config.waveform {
            RingWaveform::Normal => RingGen::Normal,
            RingWaveform::Trapezoid => RingGen::Trapez,
        }
    }

    /// Back to an idle line: the message lamp if messages wait and the phone is on-hook,
    /// otherwise line feed active.
    fn enter_idle(&mut self, now: Instant) {
        self.timers.stop(Timer::Oht);
        if self.vmwi && self.off_hook != Some(true) {
            self.set_state(FxsState::Idle);
            self.enter_vmwi(now);
        } else {
            self.ensure_line_feed(LineFeed::active(self.reversed));
            self.set_state(FxsState::Idle);
        }
        self.update_leds();
    }

    fn enter_vmwi(&mut self, now: Instant) {
        match self.chip {
            ChipType::Type1 => {
                self.write_ring_generator(RingGen::Neon);
                self.write(reg1::BATTERY, reg1::BATTERY_HIGH);
                self.write_line_feed(LineFeed::Ringing);
            }
            ChipType::Type6 => {
                self.ensure_line_feed(LineFeed::active(self.reversed));
                self.lamp(true);
                // Decision: the first blink starts when the lamp mode is entered.
                self.timers.set(Timer::VmwiLamp, now + LAMP_ON);
            }
        }
        self.set_state(FxsState::Vmwi);
    }

    /// Leaves the lamp mode (the caller writes the next line feed). For type 1 the NEON
    /// generator is replaced by the ringing one and the battery lowered, unless `to_ringing`
    /// (the ring-on sequence writes both).
    fn leave_vmwi(&mut self, to_ringing: bool) {
        match self.chip {
            ChipType::Type1 => {
                if !to_ringing {
                    self.write_ring_generator(self.ring_waveform());
                    self.write(reg1::BATTERY, reg1::BATTERY_LOW);
                }
            }
            ChipType::Type6 => {
                self.timers.stop(Timer::VmwiLamp);
                if self.lamp_lit {
                    self.lamp(false);
                }
            }
        }
    }

    fn on_lamp(&mut self, due: Instant, now: Instant) {
        if self.state != FxsState::Vmwi {
            return;
        }
        let lit = !self.lamp_lit;
        self.lamp(lit);
        let period = if lit { LAMP_ON } else { LAMP_OFF };
        self.timers.set(Timer::VmwiLamp, next_period(due, now, period));
    }

    /// Type 6 message lamp on (0x2F := 0x00, 0x42 := 0x04, 0x47 := 0x0F) or off (0x47 := 0x00).
    fn lamp(&mut self, lit: bool) {
        if lit {
            self.write(reg6::MWI_2F, 0x00);
            self.write(reg6::MWI_42, 0x04);
            self.write(reg6::MWI_47, 0x0F);
        } else {
            self.write(reg6::MWI_47, 0x00);
        }
        self.lamp_lit = lit;
    }

    fn update_leds(&mut self) {
        if !self.config.auto_leds {
            return;
        }
        let want = match self.state {
            FxsState::Ringing => self.blink_on,
            _ => self.off_hook == Some(true),
        };
        if self.green != Some(want) {
            self.write_green(want);
        }
    }

    fn write_green(&mut self, on: bool) {
        match self.chip {
            ChipType::Type1 => self.write(reg1::LED, if on { reg1::GREEN_ON } else { reg1::GREEN_OFF }),
            ChipType::Type6 => {
                // Expander port A: data_low = the line's new bit value, data_high = its mask.
                let mask = 1u8 << self.port;
                let cmd = RegAccess::write_sub(0, reg6::EXPANDER_PORT_A, 0, if on { mask } else { 0 }, mask)
                    .via_expander();
                self.out.send(RegCmd::Reg(cmd));
            }
        }
        self.green = Some(on);
    }

    /// The nine type-1 ring-generator writes of the §9.1 table, in table order.
    fn write_ring_generator(&mut self, column: RingGen) {
        // (register, indirect, [NEON], [TRAPEZ], [NORMAL]); a direct write sends the second byte.
        type Row = (u8, bool, [u8; 2], [u8; 2], [u8; 2]);
        const TABLE: [Row; 9] = [
            (0x16, true, [0xE8, 0x03], [0xC8, 0x00], [0x00, 0x00]),
            (0x15, true, [0xEF, 0x7B], [0xAB, 0x5E], [0x77, 0x01]),
            (0x14, true, [0x9F, 0x00], [0x8C, 0x01], [0xFD, 0x7E]),
            (0x22, false, [0, 0x19], [0, 0x01], [0, 0x00]),
            (0x30, false, [0, 0xE0], [0, 0x00], [0, 0x00]),
            (0x31, false, [0, 0x01], [0, 0x00], [0, 0x00]),
            (0x32, false, [0, 0xF0], [0, 0x00], [0, 0x00]),
            (0x33, false, [0, 0x05], [0, 0x00], [0, 0x00]),
            (0x1D, true, [0x00, 0x46], [0x00, 0x36], [0x00, 0x36]),
        ];
        for (reg, indirect, neon, trapez, normal) in TABLE {
            let mut v = match column {
                RingGen::Neon => neon,
                RingGen::Trapez => trapez,
                RingGen::Normal => normal,
            };
            if column == RingGen::Neon && reg == 0x33 {
                v[1] = self.config.neon_reg33;
            }
            let cmd = if indirect {
                RegAccess::write_sub(self.port, reg1::INDIRECT, reg, v[0], v[1])
            } else {
                RegAccess::write(self.port, reg, v[1])
            };
            self.out.send(RegCmd::Reg(cmd));
        }
    }

    fn adopt_line_feed(&mut self, value: u8) {
        let found = LineFeed::from_value(value);
        if found == self.line_feed || self.state != FxsState::Idle {
            return;
        }
        let (unit, sub, port) = (self.addr.unit(), self.addr.subunit(), self.port);
        if found == LineFeed::ReverseActive && self.line_feed == LineFeed::ForwardActive {
            log::info!("fxs {unit}/{sub} port {port}: found in reverse polarity: adopted");
            self.reversed = true;
            self.line_feed = found;
        } else {
            log::info!("fxs {unit}/{sub} port {port}: found {found:?}, restoring {:?}", self.line_feed);
            self.write_line_feed(self.line_feed);
        }
    }

    fn write_line_feed(&mut self, lf: LineFeed) {
        self.write(self.chip.line_feed_reg(), lf.value());
        self.line_feed = lf;
    }

    /// Writes the line feed unless it is already `lf`.
    fn ensure_line_feed(&mut self, lf: LineFeed) {
        if self.line_feed != lf {
            self.write_line_feed(lf);
        }
    }

    fn write(&mut self, reg: u8, value: u8) {
        self.out.send(RegCmd::Reg(RegAccess::write(self.port, reg, value)));
    }

    fn write_ram(&mut self, addr: u16, value: u32) {
        self.out.send(RegCmd::Ram(RamAccess::write(self.port, addr, value)));
    }
}
