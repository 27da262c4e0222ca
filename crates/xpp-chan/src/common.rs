//! Pieces shared by the line models: periodic timers and the bounded output queues.

use std::collections::VecDeque;

use xpp_proto::Instant;
use xpp_proto::wire::{Address, Message, RegCmd, Repr};

use crate::Event;

/// Most register commands a line keeps queued. Reached only when the caller stops polling
/// `poll_transmit`; then the newest command is dropped and counted.
pub(crate) const MAX_QUEUED_COMMANDS: usize = 256;
/// Most events a line keeps queued (same policy as commands).
pub(crate) const MAX_QUEUED_EVENTS: usize = 256;

/// The next deadline of a periodic timer that was due at `due`: one period later, or one
/// period after `now` if the caller fell behind by more than a period (no burst of catch-up
/// polls).
pub(crate) fn next_period(due: Instant, now: Instant, period: xpp_proto::Duration) -> Instant {
    let next = due + period;
    if next <= now { now + period } else { next }
}

/// A digital port's LED at device tick `tick`, as the reference driver drives PRI and BRI
/// ports alike (`handle_leds`): blinking once a second (on at 0, off at 500 ms) while the
/// D-channel is alive, a double blink (on 0-50 and 100-150 ms of each second) while only
/// layer 1 is up, steady on without layer 1. `Some(on)` when the LED changes at this tick.
pub(crate) fn port_led(tick: u64, layer1_up: bool, dchan_alive: bool) -> Option<bool> {
    let ms = tick % 1000;
    if dchan_alive && layer1_up {
        match ms {
            0 => Some(true),
            500 => Some(false),
            _ => None,
        }
    } else if layer1_up {
        match ms {
            0 | 100 => Some(true),
            50 | 150 => Some(false),
            _ => None,
        }
    } else {
        Some(true)
    }
}

/// The queued register commands and events of one line, both bounded.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    addr: Address,
    commands: VecDeque<RegCmd>,
    events: VecDeque<Event>,
    dropped_commands: u64,
    dropped_events: u64,
}

impl Outbox {
    pub(crate) fn new(addr: Address) -> Self {
        Self {
            addr,
            commands: VecDeque::with_capacity(32),
            events: VecDeque::with_capacity(8),
            dropped_commands: 0,
            dropped_events: 0,
        }
    }

    pub(crate) fn send(&mut self, cmd: RegCmd) {
        if self.commands.len() >= MAX_QUEUED_COMMANDS {
            self.dropped_commands += 1;
            log::warn!(
                "xpd {}/{}: command queue full, dropped {cmd:?}",
                self.addr.unit(),
                self.addr.subunit()
            );
            return;
        }
        log::trace!("xpd {}/{}: queue {cmd:?}", self.addr.unit(), self.addr.subunit());
        self.commands.push_back(cmd);
    }

    /// Queues a periodic poll unless the same command is still waiting to go out.
    pub(crate) fn send_poll(&mut self, cmd: RegCmd) {
        if !self.commands.contains(&cmd) {
            self.send(cmd);
        }
    }

    pub(crate) fn emit(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.dropped_events += 1;
            log::warn!(
                "xpd {}/{}: event queue full, dropped {event:?}",
                self.addr.unit(),
                self.addr.subunit()
            );
            return;
        }
        log::debug!("xpd {}/{}: event {event:?}", self.addr.unit(), self.addr.subunit());
        self.events.push_back(event);
    }

    #[must_use]
    pub(crate) fn poll_transmit(&mut self) -> Option<Repr<'static>> {
        let cmd = self.commands.pop_front()?;
        Some(Repr::command(self.addr, Message::RegisterRequest(cmd)))
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(crate) fn queued_commands(&self) -> usize {
        self.commands.len()
    }

    pub(crate) fn dropped(&self) -> (u64, u64) {
        (self.dropped_commands, self.dropped_events)
    }
}

/// The REG reply a line model may act on: a REGISTER_REPLY (`bytes` = 5) for `addr`, addressed
/// to `port` (not broadcast). Everything else is not for this line.
pub(crate) fn reg_reply_for(repr: &Repr<'_>, addr: Address, port: u8) -> Option<xpp_proto::wire::RegAccess> {
    if repr.addr != addr {
        return None;
    }
    match repr.message {
        Message::RegisterReply(RegCmd::Reg(r)) if r.port == port && !r.broadcast => Some(r),
        _ => None,
    }
}

/// This port's bit of a SIG_CHANGED for `addr`, if the port toggled: `Some(status bit)`.
pub(crate) fn sig_for(repr: &Repr<'_>, addr: Address, port: u8) -> Option<bool> {
    if repr.addr != addr {
        return None;
    }
    match repr.message {
        Message::SigChanged(s) => {
            let bit = 1u32 << port;
            (s.toggles & bit != 0).then_some(s.status & bit != 0)
        }
        _ => None,
    }
}
