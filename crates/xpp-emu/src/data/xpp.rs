//! XPP dispatch: OUT transfers, global messages, register routing, the 1 ms step and the
//! PCM round (MODEL.md XPP, REG, TIME rows).

use xpp_proto::Instant;
use xpp_proto::wire::pri::{PriProtocol, TimeslotMap};
use xpp_proto::wire::{
    AbDescription, Address, CardType, EchoSetReply, MAX_TRANSFER, Message, Opcode, Packet, Pcm, RamAccess,
    RegAccess, RegCmd, Repr, SyncMode, SyncState, UnitDescriptor, xbus_reset,
};

use super::bri::BriUnit;
use super::echo::EchoUnit;
use super::event::EventKind;
use super::fxo::FxoUnit;
use super::fxs::FxsUnit;
use super::g711::Law;
use super::pri::PriUnit;
use super::tick::XpdPcm;
use super::{Card, DataInterface, Sync};
use crate::config::{FxsChip, ModuleConfig, PcmReadMask};

impl DataInterface {
    /// Builds units, descriptors and XPD PCM buffers from the device configuration.
    pub(super) fn build(&mut self) {
        let t = self.cfg.timings;
        self.units = [None, None, None, None, None];
        self.descriptors.clear();
        self.pcm.clear();
        self.pcm_pos = [None; 64];
        let slots = self.device.slots;
        for (u, slot) in slots.iter().enumerate() {
            let unit = u as u8;
            let Some(slot) = slot else { continue }; // MODEL: XPP-10
            let addr = Address::new(unit, 0).unwrap_or(Address::ZERO);
            // MODEL: XPP-9
            let (card, desc, xpds): (Card, UnitDescriptor, Vec<XpdPcm>) = match *slot {
                ModuleConfig::Fxs { chip, subtype, absent_ports } => {
                    let (ty, chips, ppc) =
                        if chip == FxsChip::Type6 { (CardType::Fxs6, 4, 2) } else { (CardType::Fxs, 8, 1) };
                    let mut d = UnitDescriptor::new(addr, ty, subtype & 0x0F, chips, ppc);
                    d.port_dir = 0x01;
                    let unitm = FxsUnit::new(unit, chip, subtype, absent_ports, t, self.cfg.dtmf_detect_ms);
                    (Card::Fxs(Box::new(unitm)), d, vec![XpdPcm::new(addr, 0xFF, Law::Ulaw)])
                }
                ModuleConfig::Fxo { subtype, absent_ports } => {
                    let d = UnitDescriptor::new(addr, CardType::Fxo, subtype & 0x0F, 8, 1);
                    let unitm = FxoUnit::new(unit, absent_ports, t, &self.cfg);
                    (Card::Fxo(Box::new(unitm)), d, vec![XpdPcm::new(addr, 0xFF, Law::Ulaw)])
                }
                ModuleConfig::Pri { protocol, ports } => {
                    // MODEL: PRI-2 — J1 behaves as T1.
                    let t1 = !matches!(protocol, PriProtocol::E1);
                    let unitm = PriUnit::new(unit, t1, ports, t);
                    let n = unitm.nports;
                    let d = UnitDescriptor::new(addr, CardType::Pri, 0, 1, n);
                    let map = if t1 { TimeslotMap::T1 } else { TimeslotMap::E1 };
                    let law = unitm.law();
                    let xpds = (0..n)
                        .filter_map(|p| Address::new(unit, p))
                        .map(|a| XpdPcm::new(a, map.physical_mask(), law))
                        .collect();
                    (Card::Pri(Box::new(unitm)), d, xpds)
                }
                ModuleConfig::Bri { ports, nt_mask } => {
                    let unitm = BriUnit::new(unit, ports, nt_mask, t, self.cfg.l1_activate_ms);
                    let n = unitm.nports;
                    let mut d = UnitDescriptor::new(addr, CardType::Bri, 0, 1, n);
                    d.port_dir = nt_mask & ((1u8 << n) - 1);
                    let valid: u32 = (0..n).map(|s| 0b11u32 << (4 * s)).fold(0, |a, b| a | b);
                    let xpds = (0..n)
                        .filter_map(|s| Address::new(unit, s))
                        .map(|a| XpdPcm::new(a, if a.subunit() == 0 { valid } else { 0 }, Law::Alaw))
                        .collect();
                    (Card::Bri(Box::new(unitm)), d, xpds)
                }
            };
            self.units[u] = Some(card);
            self.descriptors.push(desc);
            self.pcm.extend(xpds);
        }
        if self.device.echo {
            let addr = Address::new(4, 0).unwrap_or(Address::ZERO);
            self.units[4] = Some(Card::Echo(Box::new(EchoUnit::new(self.cfg.cpld_version))));
            self.descriptors.push(UnitDescriptor::new(addr, CardType::Echo, 0, 1, 1));
            self.pcm.push(XpdPcm::new(addr, 0, Law::Ulaw));
        }
        self.pcm.sort_by_key(|x| x.addr.xpd_index());
        for (i, x) in self.pcm.iter().enumerate() {
            self.pcm_pos[usize::from(x.addr.xpd_index())] = Some(i as u8);
        }
        self.apply_mask_policy();
    }

    pub(super) fn apply_mask_policy(&mut self) {
        if self.cfg.pcm_read_mask == PcmReadMask::AllChannels {
            for x in &mut self.pcm {
                x.read_mask = x.valid;
            }
        }
    }

    /// MODEL: XPP-12 — every chip to power-on register state; equipment untouched.
    pub(super) fn reset_chips(&mut self) {
        for card in self.units.iter_mut().flatten() {
            match card {
                Card::Fxs(u) => u.reset(),
                Card::Fxo(u) => u.reset(),
                Card::Pri(u) => u.reset(),
                Card::Bri(u) => u.reset(),
                Card::Echo(u) => u.reset(),
            }
        }
    }

    pub(super) fn sync_mode(&self) -> SyncMode {
        match self.sync {
            Sync::None => SyncMode::None,
            Sync::Ab => SyncMode::Ab,
            Sync::Pll => SyncMode::Pll,
        }
    }

    fn pos(&self, addr: Address) -> Option<usize> {
        self.pcm_pos.get(usize::from(addr.xpd_index())).copied().flatten().map(usize::from)
    }

    /// One bulk OUT transfer from the host on endpoint 0x02.
    pub fn handle_out(&mut self, now: Instant, transfer: &[u8]) {
        if !self.session {
            self.stats.out_not_in_session += 1;
            return;
        }
        // USB-14: bytes beyond 512 never reach the FPGA.
        let data = &transfer[..transfer.len().min(MAX_TRANSFER)];
        let mut pos = 0;
        let mut pcm_frame: Option<bool> = None;
        while pos < data.len() {
            let rest = &data[pos..];
            // MODEL: XPP-2
            let Ok(pkt) = Packet::new_checked(rest) else {
                self.stats.xpp_malformed += 1;
                break;
            };
            let len = usize::from(pkt.packet_len());
            let bytes = &rest[..len];
            pos += len;
            let pkt = Packet::new_unchecked(bytes);
            let first = pcm_frame.is_none();
            let is_pcm = *pcm_frame.get_or_insert(pkt.is_pcm());
            if is_pcm {
                // MODEL: XPP-3, TIME-16 — a PCM frame holds PCM_WRITE only.
                let parsed = Repr::parse(&pkt);
                let Ok(Repr { addr, sync, message: Message::PcmWrite(pcm) }) = parsed else {
                    self.stats.pcm_malformed += 1;
                    break;
                };
                if !self.pcm_write(addr, first && sync, &pcm) {
                    break;
                }
            } else if pkt.is_pcm() || matches!(pkt.opcode(), Opcode::PcmWrite | Opcode::PcmRead) {
                self.stats.ignored += 1; // MODEL: XPP-3
            } else {
                self.faults.remember_cmd(bytes);
                match Repr::parse(&pkt) {
                    Ok(repr) => self.command(now, bytes, &repr),
                    Err(_) => self.stats.ignored += 1, // MODEL: XPP-4, REG-2
                }
            }
        }
    }

    /// MODEL: TIME-14, TIME-16, TIME-18. Returns false when the rest of the frame is dropped.
    fn pcm_write(&mut self, addr: Address, round_start: bool, pcm: &Pcm<'_>) -> bool {
        if !self.is_ticking() {
            self.stats.pcm_dropped_not_ticking += 1;
            return false;
        }
        let Some(i) = self.pos(addr) else {
            self.stats.pcm_malformed += 1;
            return false;
        };
        if round_start {
            if self.round_since_tick {
                self.stats.extra_rounds += 1;
                self.stats.window.extra_rounds += 1;
            }
            self.round_since_tick = true;
            self.stats.rounds += 1;
            self.stats.window.rounds += 1;
            for x in &mut self.pcm {
                x.pending_mask = 0;
                if self.cfg.pcm_read_mask == PcmReadMask::Mirror {
                    x.read_mask = 0;
                }
            }
        }
        let x = &mut self.pcm[i];
        let mask = pcm.lines() & x.valid;
        for (line, samples) in pcm.iter() {
            if mask & (1 << line) != 0 {
                x.pending[usize::from(line)] = *samples;
            }
        }
        x.pending_mask |= mask;
        if self.cfg.pcm_read_mask == PcmReadMask::Mirror {
            x.read_mask = mask;
        }
        true
    }

    fn command(&mut self, now: Instant, raw: &[u8], repr: &Repr<'_>) {
        let addr = repr.addr;
        match &repr.message {
            Message::AbRequest(_) => {
                // MODEL: XPP-8
                if let Some(d) = AbDescription::new(&self.descriptors) {
                    self.out.push_repr(&Repr::command(Address::ZERO, Message::AbDescription(d)));
                } else {
                    self.stats.ignored += 1;
                }
            }
            Message::SyncSource(s) => self.sync_source(now, *s),
            Message::XbusReset { mask } => {
                // MODEL: XPP-12
                if mask & xbus_reset::RESET_SPI != 0 {
                    self.reset_chips();
                }
                if mask & xbus_reset::RESET_SYNC_COUNTERS != 0 {
                    self.stats.window = super::WindowStats::default();
                }
                if mask & !(xbus_reset::RESET_SPI | xbus_reset::RESET_SYNC_COUNTERS) != 0 {
                    self.stats.xbus_reset_other += 1;
                }
            }
            Message::RegisterRequest(cmd) => self.register(now, addr, raw, cmd),
            Message::SetLed(led) => {
                // MODEL: PRI-12, BRI-12
                let ev = match self.unit_mut(addr.unit()) {
                    Some(Card::Pri(u)) => u.set_led(addr.subunit(), led.0),
                    Some(Card::Bri(u)) => u.ports.get_mut(usize::from(addr.subunit())).map(|p| {
                        let l = (led.0 >> 2) & 1;
                        p.leds[usize::from(l)] = led.0 & 3 == 1;
                        (l, led.0 & 3 == 1)
                    }),
                    _ => None,
                };
                match ev {
                    Some((led, on)) => {
                        let port = super::PortRef::new(addr.unit(), addr.subunit());
                        self.events.push(now, Some(port), EventKind::Led { led, on });
                    }
                    None => self.stats.ignored += 1,
                }
            }
            Message::EchoSet(e) => {
                // MODEL: ECHO-2
                if let (Some(Card::Echo(u)), true) = (self.unit_mut(addr.unit()), addr.subunit() == 0) {
                    u.map = *e.map;
                    let reply = Message::EchoSetReply(EchoSetReply { status: 0, reserved: 0 });
                    self.out.push_repr(&Repr::command(addr, reply));
                } else {
                    self.stats.ignored += 1;
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    fn sync_source(&mut self, now: Instant, s: SyncState) {
        let before = self.sync;
        match s.mode {
            SyncMode::None => self.sync = Sync::None, // MODEL: TIME-3
            SyncMode::Ab => {
                // MODEL: TIME-4
                self.sync = Sync::Ab;
                self.adjustment = 0;
            }
            SyncMode::Pll => {
                // MODEL: TIME-5
                self.sync = Sync::Pll;
                self.adjustment = s.drift.clamp(-63, 63);
            }
            SyncMode::Query => {} // MODEL: TIME-6
            _ => {
                self.stats.ignored += 1;
                return;
            }
        }
        self.clock.set_period(self.cfg.crystal_ppm, self.adjustment, self.cfg.pll_step_ppm);
        if before == Sync::None && self.sync != Sync::None {
            // MODEL: TIME-8 — first tick at the next internal boundary.
            self.ticked_once = false;
            self.round_since_tick = false;
        }
        if before != self.sync {
            let name = match self.sync {
                Sync::None => "NONE",
                Sync::Ab => "AB",
                Sync::Pll => "PLL",
            };
            self.events.push(now, None, EventKind::Sync(name));
        }
        // MODEL: TIME-7
        let reply = SyncState { mode: self.sync_mode(), drift: self.adjustment };
        if self.faults.omit_sync > 0 {
            // MODEL: FAULT-12
            self.faults.omit_sync -= 1;
            self.stats.sync_replies_omitted += 1;
            return;
        }
        self.out.push_repr(&Repr::command(Address::ZERO, Message::SyncReply(reply)));
    }

    /// Queues a REGISTER_REPLY echoing the request bytes 4 and 5 (MODEL: REG-3).
    fn reply_echo(&mut self, addr: Address, raw: &[u8], cmd: RegCmd) {
        if let Some(b) = self.out.push_repr(&Repr::command(addr, Message::RegisterReply(cmd)))
            && b.len() >= 6
            && raw.len() >= 6
        {
            b[4] = raw[4];
            b[5] = raw[5];
        }
    }

    fn register(&mut self, now: Instant, addr: Address, raw: &[u8], cmd: &RegCmd) {
        let unit = addr.unit();
        match cmd {
            RegCmd::Multibyte(m) => {
                if m.is_magic() {
                    // MODEL: BRI-10 — any address; all BRI units.
                    if self.units.iter().flatten().any(|c| matches!(c, Card::Bri(_))) {
                        self.bri_delivery = !m.eoframe;
                    } else {
                        self.stats.ignored += 1;
                    }
                    return;
                }
                let mut log = core::mem::take(&mut self.events);
                match self.units.get_mut(usize::from(unit)).and_then(Option::as_mut) {
                    Some(Card::Bri(u)) => u.dchannel_tx(now, m, &mut self.stats, &mut log),
                    _ => self.stats.ignored += 1,
                }
                self.events = log;
            }
            RegCmd::Ram(r) => {
                // MODEL: REG-9 (type-6 FXS only), REG-6
                let value = match self.unit_mut(unit) {
                    Some(Card::Fxs(u)) if u.chip == FxsChip::Type6 => u.ram(r),
                    _ => None,
                };
                if r.read {
                    let data = value.unwrap_or(0xFFFF_FFFF);
                    let reply = RamAccess { data, ..*r };
                    self.reply_echo(addr, raw, RegCmd::Ram(reply));
                }
            }
            RegCmd::Reg(a) => {
                if let Some(Card::Echo(e)) = self.unit_mut(unit) {
                    // MODEL: ECHO-4, ECHO-5, ECHO-6
                    let reg = u16::from(a.reg) | (u16::from(a.subreg) << 8);
                    let data = u16::from(a.data_low) | (u16::from(a.data_high) << 8);
                    let flags = raw.get(5).copied().unwrap_or(0);
                    if let Some(v) = e.spi(flags, reg, data) {
                        let reply = RegAccess { data_low: v as u8, data_high: (v >> 8) as u8, ..*a };
                        self.reply_echo(addr, raw, RegCmd::Reg(reply));
                    }
                    return;
                }
                if a.read {
                    // MODEL: REG-3, REG-5 (broadcast read answered with port 0), REG-6
                    let acc = if a.broadcast { RegAccess { port: 0, ..*a } } else { *a };
                    let value = match self.unit(unit) {
                        Some(Card::Fxs(u)) => u.read(now, &acc),
                        Some(Card::Fxo(u)) => u.read(&acc),
                        Some(Card::Pri(u)) => u.read(&acc),
                        Some(Card::Bri(u)) => u.read(&acc),
                        _ => None,
                    };
                    let (lo, hi) = value.unwrap_or((0xFF, 0xFF));
                    let reply = RegAccess { data_low: lo, data_high: hi, ..*a };
                    self.reply_echo(addr, raw, RegCmd::Reg(reply));
                    return;
                }
                // MODEL: REG-4, REG-5
                let ports: &[u8] =
                    if a.broadcast { &[0, 1, 2, 3, 4, 5, 6, 7] } else { core::slice::from_ref(&a.port) };
                let mut log = core::mem::take(&mut self.events);
                for &p in ports {
                    let acc = RegAccess { port: p, ..*a };
                    match self.units.get_mut(usize::from(unit)).and_then(Option::as_mut) {
                        Some(Card::Fxs(u)) => u.write(now, &acc),
                        Some(Card::Fxo(u)) => u.write(&acc),
                        Some(Card::Pri(u)) => u.write(&acc),
                        Some(Card::Bri(u)) => u.write(now, &acc, &mut log),
                        _ => {}
                    }
                }
                self.events = log;
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// One internal ms at `at`: playout, equipment, patches, scans, PCM round.
    pub(super) fn step(&mut self, at: Instant) {
        let tick = self.is_ticking();
        if tick {
            // MODEL: TIME-17
            if self.ticked_once && !self.round_since_tick {
                self.stats.missed_rounds += 1;
                self.stats.window.missed_rounds += 1;
                for x in &mut self.pcm {
                    x.pending_mask = 0;
                }
            }
            for x in &mut self.pcm {
                x.playout();
            }
            self.round_since_tick = false;
        } else {
            for x in &mut self.pcm {
                x.silence_tx();
            }
        }
        // Phase A: equipment.
        for u in 0..5u8 {
            let range = self.unit_pcm_range(u);
            let Some(card) = self.units[usize::from(u)].as_mut() else { continue };
            let pcm = &mut self.pcm[range];
            match card {
                Card::Fxs(c) => {
                    if let Some(x) = pcm.first() {
                        c.equipment(at, x, &mut self.events);
                    }
                }
                Card::Fxo(c) => {
                    if let Some(x) = pcm.first() {
                        c.equipment(at, x, &mut self.events);
                    }
                }
                Card::Pri(c) => c.equipment(at, pcm, &mut self.events),
                Card::Bri(c) => c.equipment(at, &mut self.events),
                Card::Echo(_) => {}
            }
        }
        self.run_patches(at);
        // Phase B: scans; unsolicited replies go after this tick's PCM frames (XPP-7).
        let mark = self.out.len();
        for u in 0..5u8 {
            let range = self.unit_pcm_range(u);
            let Some(card) = self.units[usize::from(u)].as_mut() else { continue };
            let pcm = &mut self.pcm[range];
            match card {
                Card::Fxs(c) => {
                    if let Some(x) = pcm.first_mut() {
                        c.scan(at, x, &mut self.out);
                    }
                }
                Card::Fxo(c) => {
                    if let Some(x) = pcm.first_mut() {
                        c.scan(at, x, &mut self.out);
                    }
                }
                Card::Pri(c) => c.scan(pcm, &mut self.out),
                Card::Bri(c) => c.scan(pcm.first_mut(), self.bri_delivery, &mut self.out, &mut self.stats),
                Card::Echo(_) => {}
            }
        }
        if tick && self.faults.skip_pcm > 0 {
            // MODEL: FAULT-12 — the tick runs, its PCM round is not sent.
            self.faults.skip_pcm -= 1;
            self.stats.pcm_rounds_skipped += 1;
            self.ticked_once = true;
        } else if tick {
            self.pcm_round(mark);
            self.ticked_once = true;
            self.stats.ticks += 1;
            self.stats.window.ticks += 1;
        }
    }

    fn unit_pcm_range(&self, unit: u8) -> core::ops::Range<usize> {
        let lo = usize::from(unit) * 8;
        let first = self.pcm_pos[lo..lo + 8].iter().flatten().min().map(|&p| usize::from(p));
        let last = self.pcm_pos[lo..lo + 8].iter().flatten().max().map(|&p| usize::from(p));
        match (first, last) {
            (Some(a), Some(b)) => a..b + 1,
            _ => 0..0,
        }
    }

    /// MODEL: TIME-10..12 — one PCM round, inserted at queue position `mark`.
    fn pcm_round(&mut self, mark: usize) {
        let mut frames: [Option<Vec<u8>>; 8] = Default::default();
        let mut nf = 0usize;
        let mut cur = self.out.buffer();
        let mut first = true;
        let mut samples = [0u8; 256];
        let mut any = false;
        for i in 0..self.pcm.len() {
            let x = &self.pcm[i];
            let lines = x.read_mask & x.valid;
            if lines == 0 {
                continue;
            }
            any = true;
            let mut n = 0;
            for b in 0..32 {
                if lines & (1 << b) != 0 {
                    samples[n..n + 8].copy_from_slice(&x.rx[b]);
                    n += 8;
                }
            }
            let Ok(pcm) = Pcm::new(lines, &samples[..n]) else { continue };
            let repr = Repr { addr: x.addr, sync: first, message: Message::PcmRead(pcm) };
            first = false;
            let len = repr.buffer_len();
            if cur.len() + len > MAX_TRANSFER && nf < frames.len() {
                frames[nf] = Some(core::mem::replace(&mut cur, self.out.buffer()));
                nf += 1;
            }
            let start = cur.len();
            cur.resize(start + len, 0);
            if repr.emit(&mut cur[start..]).is_err() {
                cur.truncate(start);
            }
        }
        if !any {
            // MODEL: TIME-10 — the lone lines-0 packet `08 08 12 80 00 00 00 00`.
            let repr = Repr { addr: Address::ZERO, sync: true, message: Message::PcmRead(Pcm::EMPTY) };
            cur.resize(repr.buffer_len(), 0);
            if repr.emit(&mut cur).is_err() {
                cur.clear();
            }
        }
        let mut at = mark;
        for f in frames.iter_mut().take(nf) {
            if let Some(f) = f.take() {
                self.out.insert(at, f);
                at += 1;
            }
        }
        self.out.insert(at, cur);
    }
}
