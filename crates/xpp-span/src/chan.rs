//! One channel's signalling core: hook machine + event queue + alarm word, fed with the raw
//! facts a line model reports (§12 Astribank mapping), sans-IO.
//!
//! Methods: inputs `handle_fact`, `handle_rxsig`, `handle_timeout`, `set_hook`,
//! `apply_span_alarms`, `mark_removed`; outputs `poll_line_command`, `get_event`,
//! `poll_timeout`. After any input, read events and the line command, then re-arm the timer.

use crate::alarm;
use crate::dahdi::{Alarms, Event, HookCmd, RxSig, Sig, SigCap, TxSig};
use crate::events::EventQueue;
use crate::hook::{HookError, HookMachine, HookMode, HookOutcome};
use xpp_proto::Instant;

/// A raw fact a line model (`xpp-chan`) reports about one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineFact {
    /// FXS port: the phone went off hook.
    HookOff,
    /// FXS port: the phone went on hook.
    HookOn,
    /// FXS port: ground-start request from the phone.
    GroundStart,
    /// FXO port: ring voltage began.
    RingBegin,
    /// FXO port: ring voltage ended.
    RingEnd,
    /// FXO port: battery lost (far-end disconnect / power denial).
    BatteryLost,
    /// FXO port: battery present again.
    BatteryRestored,
    /// FXO port: line polarity reversed.
    PolarityReversal,
    /// A hardware DTMF detector saw a digit start (ASCII).
    DtmfDown(u8),
    /// A hardware DTMF detector saw a digit end (ASCII).
    DtmfUp(u8),
    /// Neon MWI detected on (true) or off.
    NeonMwi(bool),
}

/// What the line layer must do to a port for a tx hook signal (§4's meaning table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineCommand {
    /// FXO port: open the loop (on hook).
    OpenLoop,
    /// FXO port: close the loop (off hook).
    CloseLoop,
    /// FXO port, ground start: ground the ring lead (seize).
    GroundRing,
    /// FXS port: idle line (ground start: tip open).
    Idle,
    /// FXS port: active line, no ring (also the ring gaps).
    Active,
    /// FXS port: ring voltage on.
    RingOn,
    /// FXS port: drop battery (kewl).
    DropBattery,
}

impl LineCommand {
    /// The command for `txsig` on a channel with signalling `sig`; `None` where the table has
    /// no meaning (e.g. KEWL on an FXO port, or non-analog signalling).
    pub fn for_txsig(sig: Sig, txsig: TxSig) -> Option<Self> {
        if sig.is_fxs() {
            // An FXO port facing the line.
            match txsig {
                TxSig::OnHook => Some(Self::OpenLoop),
                TxSig::OffHook => Some(Self::CloseLoop),
                TxSig::Start if sig == Sig::Fxsgs => Some(Self::GroundRing),
                TxSig::Start => Some(Self::CloseLoop),
                _ => None,
            }
        } else if sig.is_fxo() {
            // An FXS port facing a phone.
            match txsig {
                TxSig::OnHook => Some(Self::Idle),
                TxSig::OffHook => Some(Self::Active),
                TxSig::Start => Some(Self::RingOn),
                TxSig::Kewl => Some(Self::DropBattery),
                _ => None,
            }
        } else {
            None
        }
    }
}

/// One channel: number, position, sigcap, configured signalling, hook machine, 64-deep event
/// queue, alarm word.
#[derive(Debug, Clone)]
pub struct Chan {
    channo: u32,
    chanpos: u32,
    sigcap: SigCap,
    hook: HookMachine,
    events: EventQueue,
    alarms: Alarms,
    battery: bool,
}

impl Chan {
    /// An unconfigured channel (signalling NONE).
    pub fn new(channo: u32, chanpos: u32, sigcap: SigCap) -> Self {
        Self {
            channo,
            chanpos,
            sigcap,
            hook: HookMachine::new(channo, Sig::None),
            events: EventQueue::new(),
            alarms: Alarms::EMPTY,
            battery: true,
        }
    }

    /// Global channel number.
    pub fn channo(&self) -> u32 {
        self.channo
    }

    /// 1-based position in the span.
    pub fn chanpos(&self) -> u32 {
        self.chanpos
    }

    /// The driver's sigcap.
    pub fn sigcap(&self) -> SigCap {
        self.sigcap
    }

    /// The configured signalling.
    pub fn sig(&self) -> Sig {
        self.hook.sig()
    }

    /// The channel's alarm word (GET_PARAMS `chan_alarms`).
    pub fn alarms(&self) -> Alarms {
        self.alarms
    }

    /// The hook machine (timings, cadence, state).
    pub fn hook(&self) -> &HookMachine {
        &self.hook
    }

    /// The hook machine, mutably (SET_PARAMS, SETCADENCE, SIGFREEZE).
    pub fn hook_mut(&mut self) -> &mut HookMachine {
        &mut self.hook
    }

    /// The event queue.
    pub fn events(&self) -> &EventQueue {
        &self.events
    }

    /// The event queue, mutably (FLUSH, open/close reset).
    pub fn events_mut(&mut self) -> &mut EventQueue {
        &mut self.events
    }

    /// CHANCONFIG: `Err(HookError::Invalid)` (EINVAL) unless the sigcap permits `sig`; then
    /// hang-up and rx INITIAL (§2 step 4).
    pub fn configure(&mut self, now: Instant, sig: Sig) -> Result<(), HookError> {
        if !self.sigcap.permits(sig) {
            return Err(HookError::Invalid);
        }
        self.hook.reset(now, sig);
        Ok(())
    }

    fn drain(&mut self) {
        while let Some(e) = self.hook.poll_event() {
            self.events.push(e);
        }
    }

    /// The rx-hook helper.
    pub fn handle_rxsig(&mut self, now: Instant, rxsig: RxSig) {
        self.hook.handle_rxsig(now, rxsig);
        self.drain();
    }

    /// A raw line fact: hook and ring facts become rx hook signals (ring end => OFFHOOK with
    /// battery, ONHOOK without), battery loss => ONHOOK plus channel RED, polarity, DTMF and
    /// MWI => their events (§12).
    pub fn handle_fact(&mut self, now: Instant, fact: LineFact) {
        match fact {
            LineFact::HookOff => self.handle_rxsig(now, RxSig::OffHook),
            LineFact::HookOn => self.handle_rxsig(now, RxSig::OnHook),
            LineFact::GroundStart => self.handle_rxsig(now, RxSig::Start),
            LineFact::RingBegin => self.handle_rxsig(now, RxSig::Ring),
            LineFact::RingEnd => {
                let rx = if self.battery { RxSig::OffHook } else { RxSig::OnHook };
                self.handle_rxsig(now, rx);
            }
            LineFact::BatteryLost => {
                self.battery = false;
                self.handle_rxsig(now, RxSig::OnHook);
                alarm::set_chan_alarms(self.alarms | Alarms::RED, &mut self.alarms, &mut self.events);
            }
            LineFact::BatteryRestored => {
                self.battery = true;
                alarm::set_chan_alarms(
                    self.alarms.difference(Alarms::RED),
                    &mut self.alarms,
                    &mut self.events,
                );
                self.handle_rxsig(now, RxSig::OffHook);
            }
            LineFact::PolarityReversal => {
                self.events.push(Event::POLARITY);
            }
            LineFact::DtmfDown(d) => {
                self.events.push(Event::dtmf_down(d));
            }
            LineFact::DtmfUp(d) => {
                self.events.push(Event::dtmf_up(d));
            }
            LineFact::NeonMwi(on) => {
                self.events.push(if on { Event::NEONMWI_ACTIVE } else { Event::NEONMWI_INACTIVE });
            }
        }
    }

    /// Timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.hook.handle_timeout(now);
        self.drain();
    }

    /// DAHDI_HOOK.
    pub fn set_hook(&mut self, now: Instant, cmd: HookCmd, mode: HookMode) -> Result<HookOutcome, HookError> {
        let r = self.hook.set_hook(now, cmd, mode);
        self.drain();
        r
    }

    /// A propagated span alarm word (see [`crate::alarm`]).
    pub fn apply_span_alarms(&mut self, word: Alarms) {
        alarm::apply_span_alarms(word, &mut self.alarms, &mut self.events);
    }

    /// Surprise removal: REMOVED now, and for every later GETEVENT.
    pub fn mark_removed(&mut self) {
        self.events.mark_removed();
    }

    /// GETEVENT.
    pub fn get_event(&mut self) -> Event {
        self.events.pop()
    }

    /// The tx signal to put on the line, when it changed, with its line command.
    #[must_use]
    pub fn poll_line_command(&mut self) -> Option<(TxSig, Option<LineCommand>)> {
        let sig = self.hook.sig();
        self.hook.poll_hooksig().map(|tx| (tx, LineCommand::for_txsig(sig, tx)))
    }

    /// When [`Self::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hook.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{AlarmNotify, SpanAlarms};

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    fn events(c: &mut Chan) -> Vec<Event> {
        std::iter::from_fn(|| Some(c.get_event()).filter(|&e| e != Event::NONE && e != Event::REMOVED))
            .collect()
    }

    #[test]
    fn configure_checks_sigcap() {
        let mut c = Chan::new(1, 1, SigCap::ANALOG_FXS_PORT);
        assert_eq!(c.configure(ms(0), Sig::Fxsks), Err(HookError::Invalid));
        assert_eq!(c.configure(ms(0), Sig::Fxoks), Ok(()));
        assert_eq!(c.sig(), Sig::Fxoks);
    }

    #[test]
    fn fxo_port_ring_polarity_battery_loss() {
        let mut c = Chan::new(9, 1, SigCap::ANALOG_FXO_PORT);
        c.configure(ms(0), Sig::Fxsks).expect("permitted");
        c.handle_fact(ms(0), LineFact::BatteryRestored); // initial report: battery present
        c.handle_fact(ms(1000), LineFact::RingBegin);
        c.handle_fact(ms(3000), LineFact::RingEnd);
        c.handle_timeout(ms(3050));
        assert_eq!(events(&mut c), [Event::RINGBEGIN, Event::RINGOFFHOOK]);
        let _ = c.set_hook(ms(4000), HookCmd::OffHook, HookMode::Blocking).expect("answer");
        assert_eq!(c.poll_line_command(), Some((TxSig::OffHook, Some(LineCommand::CloseLoop))));
        c.handle_timeout(ms(4600));
        c.handle_fact(ms(5000), LineFact::PolarityReversal);
        c.handle_fact(ms(9000), LineFact::BatteryLost);
        assert_eq!(events(&mut c), [Event::POLARITY, Event::ONHOOK, Event::ALARM]);
        assert_eq!(c.alarms(), Alarms::RED);
        c.handle_fact(ms(9500), LineFact::BatteryRestored);
        assert_eq!(events(&mut c), [Event::NOALARM]);
        c.handle_fact(ms(9600), LineFact::DtmfDown(b'5'));
        c.handle_fact(ms(9700), LineFact::DtmfUp(b'5'));
        c.handle_fact(ms(9800), LineFact::NeonMwi(true));
        assert_eq!(events(&mut c), [Event::dtmf_down(b'5'), Event::dtmf_up(b'5'), Event::NEONMWI_ACTIVE]);
    }

    #[test]
    fn fxs_port_line_commands() {
        let mut c = Chan::new(1, 1, SigCap::ANALOG_FXS_PORT);
        c.configure(ms(0), Sig::Fxoks).expect("permitted");
        c.handle_fact(ms(0), LineFact::HookOff);
        let _ = c.set_hook(ms(10), HookCmd::OnHook, HookMode::Blocking).expect("hang up");
        assert_eq!(c.poll_line_command(), Some((TxSig::Kewl, Some(LineCommand::DropBattery))));
        c.handle_timeout(ms(510));
        assert_eq!(c.poll_line_command(), Some((TxSig::OnHook, Some(LineCommand::Idle))));
        assert_eq!(LineCommand::for_txsig(Sig::Fxogs, TxSig::Start), Some(LineCommand::RingOn));
        assert_eq!(LineCommand::for_txsig(Sig::Fxsgs, TxSig::Start), Some(LineCommand::GroundRing));
        assert_eq!(LineCommand::for_txsig(Sig::Fxsls, TxSig::Start), Some(LineCommand::CloseLoop));
        assert_eq!(LineCommand::for_txsig(Sig::Fxsks, TxSig::Kewl), None);
        assert_eq!(LineCommand::for_txsig(Sig::Clear, TxSig::OnHook), None);
    }

    /// Surprise removal: span NOTOPEN, REMOVED on every channel, then the alarm (§2 step 8).
    #[test]
    fn surprise_removal_order() {
        let mut span = SpanAlarms::new();
        let mut chans: Vec<Chan> = (1..=4).map(|i| Chan::new(i, i, SigCap::ANALOG_FXS_PORT)).collect();
        for c in &mut chans {
            c.mark_removed();
        }
        let AlarmNotify::Propagate { word } = span.set_removed() else { panic!("must propagate") };
        for c in &mut chans {
            c.apply_span_alarms(word);
            assert_eq!(c.get_event(), Event::REMOVED);
            assert_eq!(c.get_event(), Event::ALARM);
            assert_eq!(c.alarms(), Alarms::NOTOPEN);
            assert_eq!(c.get_event(), Event::REMOVED);
        }
    }
}
