//! The FXO line model (docs/reference/xpp-protocol.md §9.2): an Astribank FXO port on a PSTN/PBX line.

use xpp_proto::timer::{TimerKind, TimerTable};
use xpp_proto::wire::{Address, RegAccess, RegCmd, Repr};
use xpp_proto::{Duration, Instant};

use crate::common::{Outbox, next_period, reg_reply_for, sig_for};
use crate::{Error, Event, Led};

#[cfg(test)]
mod tests;

mod reg {
    pub(super) const INTERRUPT_SOURCE: u8 = 0x04;
    pub(super) const HOOK: u8 = 0x05;
    pub(super) const LOOP_CURRENT: u8 = 0x1C;
    pub(super) const VBAT: u8 = 0x1D;
    pub(super) const LED: u8 = 0x20;
    pub(super) const ON_HOOK: u8 = 0x08;
    pub(super) const OFF_HOOK: u8 = 0x09;
    pub(super) const GREEN_OFF: u8 = 0x60;
    pub(super) const GREEN_ON: u8 = 0x63;
    pub(super) const RED_OFF: u8 = 0xA0;
    pub(super) const RED_ON: u8 = 0xA3;
    /// Interrupt source bit 0: polarity reversal.
    pub(super) const INT_POLARITY: u8 = 0x01;
    /// Interrupt source bit 7: ring.
    pub(super) const INT_RING: u8 = 0x80;
}

/// VBAT poll period.
pub const VBAT_POLL: Duration = Duration::from_millis(500);
/// A ring signal state must persist this long before it is reported.
pub const RING_DEBOUNCE: Duration = Duration::from_millis(50);
/// A firmware polarity reversal is reported only if no other follows within this window.
pub const POLARITY_FOLLOW_UP: Duration = Duration::from_millis(40);
/// The loop-current read this long after going off-hook.
pub const POWER_READ_DELAY: Duration = Duration::from_millis(650);
/// After a low loop-current reading, polling ([`FxoConfig::loop_current_poll`]) reads it
/// again this soon: power back by then cancels the loss (within [`POWER_DENIAL_MIN`]).
pub const POWER_LOSS_RECHECK: Duration = Duration::from_millis(40);
/// Loop current must stay lost at least this long ...
pub const POWER_DENIAL_MIN: Duration = Duration::from_millis(80);
/// ... and then this window must pass without ring before power denial is reported.
pub const POWER_DENIAL_CONFIRM: Duration = Duration::from_millis(2500);
/// |VBAT| at or above this is battery; loop current at or above this is power.
const THRESHOLD: u8 = 3;
/// Consecutive low VBAT readings that mean battery off.
pub const BATTERY_OFF_POLLS: u8 = 4;
/// Consecutive VBAT readings of the other sign that confirm a polarity change.
pub const POLARITY_POLLS: u8 = 2;

/// FXO line options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FxoConfig {
    /// Report polarity reversals from the firmware's interrupt-source replies (default). When
    /// off, reversals are derived from the VBAT sign instead.
    pub firmware_polarity: bool,
    /// Drive the green LED from the hook state (on while off-hook).
    pub auto_leds: bool,
    /// While off-hook, read the loop current (register 0x1C) again at this period after the
    /// first read [`POWER_READ_DELAY`] after going off-hook, so power denial (the far end's
    /// disconnect supervision) is seen whether or not the firmware reports loop current on
    /// its own. `None`: read once, as the reference driver does (default: every 500 ms).
    pub loop_current_poll: Option<Duration>,
}

// Decision (assumed, confirm on hardware; docs/reference/xpp-protocol.md §13 question 13): the
// reference driver reads the loop current once, 650 ms after going off-hook, and its power-denial
// logic then waits for 0x1C replies that nothing asks for; whether the firmware sends them
// unsolicited is unknown (the emulator does not by default, MODEL FXO-5). A far-end hang-up would
// then never end the call on the host. We poll while off-hook (one paced register read per port
// per 500 ms, like the VBAT poll), and re-read [`POWER_LOSS_RECHECK`] after a low reading so a
// loss shorter than that is not taken for a disconnect.
impl Default for FxoConfig {
    fn default() -> Self {
        Self { firmware_polarity: true, auto_leds: true, loop_current_poll: Some(VBAT_POLL) }
    }
}

/// The long-lived hook state of an FXO line, changed only through `set_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FxoState {
    /// Loop open (register 0x05 = 0x08, on-hook line monitor on for caller ID).
    OnHook,
    /// Loop closed (register 0x05 = 0x09).
    OffHook,
}

/// Loop-current (power denial) tracking while off-hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Power {
    /// No loop-current reading since going off-hook.
    Unknown,
    /// Loop current seen.
    On,
    /// Loop current lost after being on.
    Lost,
}

xpp_proto::timer_enum! {
    /// The line's timers, in a [`TimerTable`].
    enum Timer {
        /// The next VBAT poll ([`VBAT_POLL`]).
        VbatPoll,
        /// The ring signal has persisted for [`RING_DEBOUNCE`].
        RingDebounce,
        /// No second polarity reversal within [`POLARITY_FOLLOW_UP`].
        PolarityFollowUp,
        /// The next loop-current read while off-hook.
        PowerRead,
        /// Loop current lost for [`POWER_DENIAL_MIN`].
        PowerDenialMin,
        /// The [`POWER_DENIAL_CONFIRM`] window passed without ring.
        PowerDenialConfirm,
    }
}

/// One FXO port.
///
/// Method kinds (quinn-proto style):
/// - inputs: [`handle_packet`](Self::handle_packet) (SIG_CHANGED of the XPD = ring signal,
///   REGISTER_REPLY for this port: VBAT 0x1D, loop current 0x1C, interrupt source 0x04) and
///   [`handle_timeout`](Self::handle_timeout);
/// - commands: [`off_hook`](Self::off_hook) (refused without battery), [`on_hook`](Self::on_hook),
///   [`set_led`](Self::set_led);
/// - outputs: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout) and the getters.
///
/// Polling order, each tick and after every input or command: call
/// [`handle_timeout`](Self::handle_timeout) if [`poll_timeout`](Self::poll_timeout) is due,
/// drain [`poll_transmit`](Self::poll_transmit) into the bus's paced command queue (the VBAT
/// poll every 500 ms and the loop-current read 650 ms after off-hook come out there), drain
/// [`poll_event`](Self::poll_event), then read [`wants_pcm`](Self::wants_pcm).
///
/// Battery is unknown (treated as absent) until the first VBAT reply: the first poll is due
/// at construction, so call [`handle_timeout`](Self::handle_timeout) once at start.
#[derive(Debug, Clone)]
pub struct FxoLine {
    addr: Address,
    port: u8,
    config: FxoConfig,
    state: FxoState,
    battery: Option<bool>,
    low_polls: u8,
    /// VBAT sign once battery was seen: `true` = negative.
    negative: Option<bool>,
    sign_changes: u8,
    raw_ring: bool,
    ring: bool,
    /// The ring bit seen while battery was still unknown (applied when battery is seen).
    early_ring: bool,
    /// A read of the hook register is out ([`FxoLine::read_hook_state`]).
    hook_read: bool,
    power: Power,
    green: Option<bool>,
    timers: TimerTable<Timer, 6>,
    out: Outbox,
}

impl FxoLine {
    /// A line on chip port `port` (0..7, taken modulo 8) of the FXO XPD at `addr`. The line
    /// assumes card init left it on-hook.
    pub fn new(now: Instant, addr: Address, port: u8, config: FxoConfig) -> Self {
        debug_assert!(port < 8, "chip port out of range");
        let mut timers = TimerTable::new();
        timers.set(Timer::VbatPoll, now);
        Self {
            addr,
            port: port & 0x07,
            config,
            state: FxoState::OnHook,
            battery: None,
            low_polls: 0,
            negative: None,
            sign_changes: 0,
            raw_ring: false,
            ring: false,
            early_ring: false,
            hook_read: false,
            power: Power::Unknown,
            green: None,
            timers,
            out: Outbox::new(addr),
        }
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

    /// Our hook state.
    pub const fn state(&self) -> FxoState {
        self.state
    }

    /// Battery present, once a VBAT reply has said so either way.
    pub const fn battery(&self) -> Option<bool> {
        self.battery
    }

    /// The confirmed VBAT sign (`true` = negative), once battery was seen.
    pub const fn polarity_negative(&self) -> Option<bool> {
        self.negative
    }

    /// The debounced ring signal.
    pub const fn ringing(&self) -> bool {
        self.ring
    }

    /// Loop current present while off-hook, once a loop-current reply was seen.
    pub const fn power(&self) -> Option<bool> {
        match self.power {
            Power::Unknown => None,
            Power::On => Some(true),
            Power::Lost => Some(false),
        }
    }

    /// Whether this line belongs in the XPD's PCM mask: off-hook.
    ///
    /// Decision: caller-ID styles that need on-hook audio around ring or polarity events are
    /// the span core's policy (it sees the same events); the line reports off-hook only.
    pub fn wants_pcm(&self) -> bool {
        self.state == FxoState::OffHook
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

    /// Processes one packet from the device.
    pub fn handle_packet(&mut self, now: Instant, repr: &Repr<'_>) {
        if let Some(present) = sig_for(repr, self.addr, self.port) {
            self.ring_signal(now, present);
            return;
        }
        let Some(r) = reg_reply_for(repr, self.addr, self.port) else { return };
        if r.expander || r.do_subreg {
            return;
        }
        match r.reg {
            reg::VBAT => self.vbat(now, r.data_low as i8),
            reg::LOOP_CURRENT => self.loop_current(now, r.data_low),
            reg::INTERRUPT_SOURCE => self.interrupt(now, r.data_low),
            reg::HOOK if std::mem::take(&mut self.hook_read) => self.adopt_hook(now, r.data_low),
            _ => {}
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for &timer in Timer::ALL {
            let Some(due) = self.timers.take_expired(timer, now) else { continue };
            match timer {
                Timer::VbatPoll => {
                    self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, reg::VBAT)));
                    self.timers.set(Timer::VbatPoll, next_period(due, now, VBAT_POLL));
                }
                Timer::RingDebounce => {
                    if self.raw_ring != self.ring {
                        self.ring = self.raw_ring;
                        self.out.emit(Event::RingDetected { on: self.ring, at: due });
                    }
                }
                Timer::PolarityFollowUp => {
                    if !self.ring_in_progress() {
                        self.out.emit(Event::PolarityReversed { at: due });
                    }
                }
                Timer::PowerRead => {
                    if self.state == FxoState::OffHook {
                        self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, reg::LOOP_CURRENT)));
                        if let Some(period) = self.config.loop_current_poll {
                            self.timers.set(Timer::PowerRead, next_period(due, now, period));
                        }
                    }
                }
                Timer::PowerDenialMin => {
                    if self.power == Power::Lost {
                        self.timers.set(Timer::PowerDenialConfirm, due + POWER_DENIAL_CONFIRM);
                    }
                }
                Timer::PowerDenialConfirm => {
                    if self.state == FxoState::OffHook {
                        self.out.emit(Event::PowerDenial { at: due });
                        self.power = Power::Unknown;
                    }
                }
            }
        }
    }

    // ----- commands -----

    /// Reads the hook register (0x05) and adopts what it says, instead of assuming that the
    /// card init left the line on hook: for a device taken over running (a TwinStar
    /// take-over, a restarted driver), where the previous host may have left the loop closed
    /// on a call. A closed loop becomes this model's off-hook state, silently (nothing is
    /// written; DAHDI has no event for it), so that the calls carry on and the PBX's on-hook
    /// opens the loop.
    pub fn read_hook_state(&mut self) {
        self.hook_read = true;
        self.out.send_poll(RegCmd::Reg(RegAccess::read(self.port, reg::HOOK)));
    }

    /// Closes the loop (register 0x05 := 0x09). Refused unless the VBAT polls have seen
    /// battery (docs/reference/xpp-protocol.md §9.2). No-op if already off-hook.
    pub fn off_hook(&mut self, now: Instant) -> Result<(), Error> {
        if self.battery != Some(true) {
            return Err(Error::NoBattery);
        }
        if self.state == FxoState::OffHook {
            return Ok(());
        }
        self.write(reg::HOOK, reg::OFF_HOOK);
        self.power = Power::Unknown;
        self.timers.set(Timer::PowerRead, now + POWER_READ_DELAY);
        self.set_state(FxoState::OffHook);
        self.update_leds();
        Ok(())
    }

    /// Opens the loop (register 0x05 := 0x08). No-op if already on-hook.
    pub fn on_hook(&mut self, _now: Instant) {
        if self.state == FxoState::OnHook {
            return;
        }
        self.write(reg::HOOK, reg::ON_HOOK);
        self.cancel_power_denial();
        self.timers.stop(Timer::PowerRead);
        self.power = Power::Unknown;
        self.set_state(FxoState::OnHook);
        self.update_leds();
    }

    /// Writes one LED (register 0x20). With [`FxoConfig::auto_leds`] the line may overwrite
    /// the green LED on its next hook change.
    pub fn set_led(&mut self, _now: Instant, led: Led, on: bool) -> Result<(), Error> {
        match led {
            Led::Green => self.write_green(on),
            Led::Red => self.write(reg::LED, if on { reg::RED_ON } else { reg::RED_OFF }),
        }
        Ok(())
    }

    // ----- internals -----

    fn set_state(&mut self, state: FxoState) {
        if state != self.state {
            log::debug!(
                "fxo {}/{} port {}: {:?} -> {:?}",
                self.addr.unit(),
                self.addr.subunit(),
                self.port,
                self.state,
                state
            );
            self.state = state;
        }
    }

    fn adopt_hook(&mut self, now: Instant, value: u8) {
        let closed = value & 0x01 != 0;
        if closed && self.state == FxoState::OnHook {
            log::info!(
                "fxo {}/{} port {}: found off hook (0x{value:02X}): adopted",
                self.addr.unit(),
                self.addr.subunit(),
                self.port
            );
            self.set_state(FxoState::OffHook);
            self.power = Power::Unknown;
            self.timers.set(Timer::PowerRead, now + POWER_READ_DELAY);
            self.update_leds();
            self.out.emit(Event::LoopFoundClosed { at: now });
        }
    }

    fn ring_in_progress(&self) -> bool {
        self.raw_ring || self.ring
    }

    fn ring_signal(&mut self, now: Instant, present: bool) {
        // Decision: while battery is known off, ring bits are ignored entirely (not even kept
        // as the raw state), as the reference ignores them. Before the first line-voltage
        // reply (battery unknown: the first milliseconds after an attach or a take-over) the
        // last ring bit is kept and applied when battery is seen: the device reports a ring
        // only when it starts, so dropping it lost the whole first ring (issue 14, item 3).
        match self.battery {
            Some(true) => {}
            Some(false) => return,
            None => {
                self.early_ring = present;
                return;
            }
        }
        self.raw_ring = present;
        if present {
            // Decision: a ring signal during a loss of loop current means it was not a
            // disconnect; the power-denial timers are cancelled.
            self.cancel_power_denial();
        }
        if self.raw_ring == self.ring {
            self.timers.stop(Timer::RingDebounce);
        } else {
            // Restarted on every change: the new state must persist 50 ms.
            self.timers.set(Timer::RingDebounce, now + RING_DEBOUNCE);
        }
    }

    fn vbat(&mut self, now: Instant, v: i8) {
        if self.ring_in_progress() {
            return;
        }
        if v.unsigned_abs() >= THRESHOLD {
            self.low_polls = 0;
            if self.battery != Some(true) {
                self.battery = Some(true);
                self.out.emit(Event::Battery { present: true, at: now });
                if std::mem::take(&mut self.early_ring) {
                    self.ring_signal(now, true);
                }
            }
            let negative = v < 0;
            match self.negative {
                None => self.negative = Some(negative),
                Some(n) if n == negative => self.sign_changes = 0,
                Some(_) => {
                    self.sign_changes += 1;
                    if self.sign_changes >= POLARITY_POLLS {
                        self.sign_changes = 0;
                        self.negative = Some(negative);
                        if !self.config.firmware_polarity {
                            self.out.emit(Event::PolarityReversed { at: now });
                        }
                    }
                }
            }
        } else {
            // Decision: a low reading breaks a run of opposite-sign readings.
            self.sign_changes = 0;
            self.low_polls = self.low_polls.saturating_add(1);
            if self.low_polls >= BATTERY_OFF_POLLS && self.battery != Some(false) {
                self.battery = Some(false);
                self.out.emit(Event::Battery { present: false, at: now });
                // Decision: ring detection stops with the battery; a reported ring ends.
                self.timers.stop(Timer::RingDebounce);
                self.raw_ring = false;
                if self.ring {
                    self.ring = false;
                    self.out.emit(Event::RingDetected { on: false, at: now });
                }
            }
        }
    }

    fn interrupt(&mut self, now: Instant, v: u8) {
        if v & reg::INT_POLARITY == 0 || !self.config.firmware_polarity {
            return;
        }
        // Decision (assumed, confirm on hardware; MODEL FXO-8): an interrupt that also flags ring
        // (bit 7) counts as "ring in progress".
        if v & reg::INT_RING != 0 || self.ring_in_progress() {
            return;
        }
        // Decision: a reversal that follows within 40 ms replaces the pending one (which is
        // then never reported); the last of a burst is reported 40 ms after it.
        self.timers.set(Timer::PolarityFollowUp, now + POLARITY_FOLLOW_UP);
    }

    fn loop_current(&mut self, now: Instant, v: u8) {
        if self.state != FxoState::OffHook || self.battery != Some(true) {
            return;
        }
        if v >= THRESHOLD {
            // Power back before the 80 ms minimum: no denial. Once in the confirmation window
            // the loss already counts (an open-switch interval), only ring cancels it.
            self.timers.stop(Timer::PowerDenialMin);
            self.power = Power::On;
        } else if self.power == Power::On {
            self.power = Power::Lost;
            if !self.timers.is_armed(Timer::PowerDenialConfirm) {
                self.timers.set(Timer::PowerDenialMin, now + POWER_DENIAL_MIN);
                if self.config.loop_current_poll.is_some() {
                    self.timers.set(Timer::PowerRead, now + POWER_LOSS_RECHECK);
                }
            }
        }
    }

    fn cancel_power_denial(&mut self) {
        self.timers.stop(Timer::PowerDenialMin);
        self.timers.stop(Timer::PowerDenialConfirm);
    }

    fn update_leds(&mut self) {
        if !self.config.auto_leds {
            return;
        }
        let want = self.state == FxoState::OffHook;
        if self.green != Some(want) {
            self.write_green(want);
        }
    }

    fn write_green(&mut self, on: bool) {
        self.write(reg::LED, if on { reg::GREEN_ON } else { reg::GREEN_OFF });
        self.green = Some(on);
    }

    fn write(&mut self, reg: u8, value: u8) {
        self.out.send(RegCmd::Reg(RegAccess::write(self.port, reg, value)));
    }
}
