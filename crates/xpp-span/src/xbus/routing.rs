//! Device input: one IN transfer decoded and its packets routed to the PCM buffers, the line
//! models and the bus's own state (sync replies, device errors).

use xpp_proto::Instant;
use xpp_proto::wire::{Address, Message, Repr, SyncMode, SyncState, parse_transfer};

use super::tick::Timer;
use super::{BusState, MS, TICK_WATCHDOG, XbusCore, XbusEvent};
use crate::span::XpdKind;

impl XbusCore {
    // ----- device inputs -----

    /// One bulk IN transfer from the device. Malformed input is counted, never a panic.
    pub fn handle_in_transfer(&mut self, now: Instant, transfer: &[u8]) {
        if self.state != BusState::Running {
            return;
        }
        self.stats.rx_transfers += 1;
        let mut first = true;
        let mut tick = false;
        for item in parse_transfer(transfer) {
            let repr = match item {
                Ok((_, r)) => r,
                Err(e) => {
                    log::debug!("{}: bad transfer: {e}", self.name);
                    self.stats.rx_errors += 1;
                    break;
                }
            };
            if first {
                first = false;
                if repr.message.is_pcm() {
                    if !self.self_ticking {
                        self.stats.pcm_not_ticking += 1;
                        return;
                    }
                    tick = repr.sync;
                }
            }
            if !self.handle_repr(now, &repr) {
                self.stats.rx_rejected += 1;
                break;
            }
        }
        // Decision: a tick-bearing frame ticks even if a later packet of it was bad (the
        // packets before the error are kept, §10).
        if tick {
            self.on_tick(now);
        }
    }

    /// Routes one packet; `false` = rejected (the rest of the frame is dropped).
    fn handle_repr(&mut self, now: Instant, repr: &Repr<'_>) -> bool {
        let xpd = usize::from(repr.addr.xpd_index());
        match repr.message {
            Message::PcmRead(p) => match self.pcm_of[xpd] {
                Some(i) => {
                    self.pcm[usize::from(i)].receive(p.lines(), p.samples());
                    true
                }
                None => false,
            },
            Message::SigChanged(s) => {
                let Some(si) = self.span_of[xpd] else { return false };
                let span = &self.spans[usize::from(si)];
                if !matches!(span.kind, XpdKind::Fxs(_) | XpdKind::Fxo) {
                    return false;
                }
                let (first, n) = (span.first, span.channels as usize);
                let mut toggles = s.toggles;
                while toggles != 0 {
                    let port = toggles.trailing_zeros() as usize;
                    toggles &= toggles - 1;
                    if port < n {
                        self.line_packet(first + port, now, repr);
                    }
                }
                true
            }
            Message::RegisterReply(cmd) => {
                if let Some(si) = self.span_of[xpd]
                    && matches!(self.spans[usize::from(si)].kind, XpdKind::Fxs(_) | XpdKind::Fxo)
                {
                    let span = &self.spans[usize::from(si)];
                    let port = usize::from(cmd.port());
                    if port < span.channels as usize {
                        let ci = span.first + port;
                        self.line_packet(ci, now, repr);
                    }
                    return true;
                }
                // PRI/BRI: the target XPD is (unit, reply portnum); the span's own line takes it.
                let target = Address::new(repr.addr.unit(), cmd.port()).map(|a| usize::from(a.xpd_index()));
                match target.and_then(|t| self.span_of[t]) {
                    Some(si) => {
                        self.span_packet(usize::from(si), now, repr);
                        true
                    }
                    None => false,
                }
            }
            Message::SyncReply(st) => {
                self.handle_sync_reply(now, st);
                true
            }
            Message::ErrorCode(e) => {
                log::debug!("{}: device error {:#04x}/{:#04x}", self.name, e.category, e.errorbits);
                self.stats.device_errors += 1;
                true
            }
            Message::NullReply | Message::EchoSetReply(_) => true,
            _ => false,
        }
    }

    fn span_packet(&mut self, si: usize, now: Instant, repr: &Repr<'_>) {
        if self.spans[si].line.handle_packet(now, repr) {
            self.service_span(si, now, false);
        } else {
            self.stats.digital_replies += 1;
        }
    }

    fn line_packet(&mut self, ci: usize, now: Instant, repr: &Repr<'_>) {
        if self.chans[ci].line.handle_packet(now, repr) {
            self.service(ci, now, false);
        }
    }

    fn handle_sync_reply(&mut self, now: Instant, st: SyncState) {
        match st.mode {
            SyncMode::Ab | SyncMode::Pll => {
                self.self_ticking = true;
                self.timers.stop(Timer::HostTick);
                self.timers.set(Timer::Watchdog, now + TICK_WATCHDOG);
            }
            SyncMode::None => {
                self.self_ticking = false;
                self.timers.set(Timer::HostTick, now + MS);
            }
            SyncMode::Query => return,
            _ => {
                self.stats.bad_sync_replies += 1;
                return;
            }
        }
        if st.mode != self.sync.mode {
            self.drift.reset();
        }
        self.sync = st;
        self.push_event(XbusEvent::SyncReply(st));
    }
}

#[cfg(test)]
mod tests {
    use xpp_proto::wire::{CardType, RegAccess, RegCmd, UnitDescriptor};

    use super::*;
    use crate::span::UnitSetup;
    use crate::xbus::{BusSetup, Numbering};

    fn reply(unit: u8, subunit: u8, port: u8) -> Vec<u8> {
        let addr = Address::new(unit, subunit).unwrap();
        let reg = RegCmd::Reg(RegAccess::write(port, 0x01, 0x02));
        let mut buf = [0u8; 64];
        let n = Repr::command(addr, Message::RegisterReply(reg)).emit(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_register_reply_goes_to_its_span_line_or_is_rejected() {
        // A two-port PRI unit: XPDs (2, 0) and (2, 1), each with its framer model; a BRI
        // unit (3, 0) with its port model.
        let pri = UnitDescriptor::new(Address::new(2, 0).unwrap(), CardType::Pri, 0, 1, 2);
        let bri = UnitDescriptor::new(Address::new(3, 0).unwrap(), CardType::Bri, 0, 1, 1);
        let setup = BusSetup::new(vec![UnitSetup::new(pri), UnitSetup::new(bri)]);
        let now = Instant::from_millis(1);
        let mut core = XbusCore::new(now, 0, &setup, &mut Numbering::new()).unwrap();
        // Addressed to the unit, the port field names the target XPD (2, 1): its line takes it.
        core.handle_in_transfer(now, &reply(2, 0, 1));
        assert_eq!((core.stats().digital_replies, core.stats().rx_rejected), (0, 0));
        // So does the BRI port's.
        core.handle_in_transfer(now, &reply(3, 0, 0));
        assert_eq!((core.stats().digital_replies, core.stats().rx_rejected), (0, 0));
        // No XPD (2, 3): rejected.
        core.handle_in_transfer(now, &reply(2, 0, 3));
        assert_eq!((core.stats().digital_replies, core.stats().rx_rejected), (0, 1));
    }
}
