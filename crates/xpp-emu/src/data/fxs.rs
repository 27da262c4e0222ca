//! FXS module, hardware types 1 and 6 (MODEL.md FXS rows).

use xpp_proto::wire::{Address, Message, RamAccess, RegAccess, RegCmd, Repr, SigChanged};
use xpp_proto::{Duration, Instant};

use super::equipment::{LineFeed, Phone, PhoneSide};
use super::event::{EventLog, PortRef};
use super::regs::ChipRegs;
use super::tick::XpdPcm;
use super::{OutQueue, SILENCE_U};
use crate::config::{EquipmentTimings, FxsChip};

/// Type-6 user-mode toggle sequence written to register 0x7E (MODEL: FXS-5 (b)).
const USER_MODE_SEQ: [u8; 4] = [0x02, 0x08, 0x0E, 0x00];
/// How long a type-6 calibration runs before the chip clears CAL_EN (MODEL: FXS-5 (c)).
pub(crate) const CAL_TIME: Duration = Duration::from_millis(40);

/// DTMF digit string of the detector result index (MODEL: FXS-14).
const DTMF_DIGITS: &[u8; 16] = b"D1234567890*#ABC";

#[derive(Debug, Clone)]
pub(crate) struct FxsPort {
    pub(crate) present: bool,
    regs: ChipRegs,
    pub(crate) phone: Phone,
    pub(crate) patched: bool,
    pub(crate) side: PhoneSide,
    reported: bool,
    overheat: bool,
    dtmf_key: Option<char>,
    dtmf_since: Instant,
    dtmf_down: Option<u8>,
    pub(crate) green: bool,
    pub(crate) red: bool,
    pub(crate) relay: bool,
    /// FAULT-11 hook contact bounce.
    bounce: Option<super::faults::Bounce>,
    /// Type 6: user mode on (register 0x7E bit 0, MODEL: FXS-5 (b)).
    user_mode: bool,
    /// Type 6: how many bytes of the user-mode sequence have been written in order.
    user_seq: usize,
    /// Type 6: the running calibration ends (CAL_EN clears) at this time (MODEL: FXS-5 (c)).
    cal_until: Option<Instant>,
}

/// Observable state of one FXS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FxsPortState {
    /// Line state from the line-feed register (MODEL: FXS-6).
    pub line_feed: LineFeed,
    /// Off-hook as the chip reports it (MODEL: FXS-7).
    pub hook_reported: bool,
    /// DTMF detection on (MODEL: FXS-13).
    pub dtmf_enabled: bool,
    /// Green LED (type 1 reg 0x06 or type 6 expander 0x12).
    pub green: bool,
    /// Red LED (type 1).
    pub red: bool,
    /// Relay (type 1 ports 0 and 4, or type 6 expander 0x13).
    pub relay: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FxsUnit {
    unit: u8,
    pub(crate) chip: FxsChip,
    dig_io: bool,
    pub(crate) ports: Vec<FxsPort>,
    expander: [u8; 256],
    /// Digital inputs 0..3 active (MODEL: FXS-16, FXS-18).
    pub(crate) inputs: [bool; 4],
    dtmf_detect: Duration,
}

impl FxsUnit {
    pub(crate) fn new(
        unit: u8,
        chip: FxsChip,
        subtype: u8,
        absent: u8,
        t: EquipmentTimings,
        dtmf_ms: u32,
    ) -> Self {
        let numchips = if chip == FxsChip::Type6 { 4 } else { 8 };
        let ports = (0..8)
            .map(|p| FxsPort {
                present: absent & (1 << p) == 0,
                regs: ChipRegs::default(),
                phone: Phone::new(t),
                patched: false,
                side: PhoneSide { off_hook: false, key: None, mic: [SILENCE_U; 8] },
                reported: false,
                overheat: false,
                dtmf_key: None,
                dtmf_since: Instant::ZERO,
                dtmf_down: None,
                green: false,
                red: false,
                relay: false,
                bounce: None,
                user_mode: false,
                user_seq: 0,
                cal_until: None,
            })
            .collect();
        Self {
            unit,
            chip,
            // MODEL: FXS-16 — digital I/O only on unit 0, subtype != 4, numchips != 4.
            dig_io: unit == 0 && subtype != 4 && numchips != 4,
            ports,
            expander: [0; 256],
            inputs: [false; 4],
            dtmf_detect: Duration::from_millis(u64::from(dtmf_ms)),
        }
    }

    /// Chips to power-on state (MODEL: XPP-12); the phones keep their state.
    pub(crate) fn reset(&mut self) {
        for p in &mut self.ports {
            p.regs.reset();
            p.overheat = false;
            p.dtmf_key = None;
            p.dtmf_down = None;
            p.green = false;
            p.red = false;
            p.relay = false;
            p.user_mode = false;
            p.user_seq = 0;
            p.cal_until = None;
        }
        self.expander = [0; 256];
    }

    const fn linefeed_reg(&self) -> u8 {
        match self.chip {
            FxsChip::Type6 => 0x1E,
            _ => 0x40,
        }
    }

    fn feed(&self, p: usize) -> LineFeed {
        let port = &self.ports[p];
        if port.overheat { LineFeed::Open } else { LineFeed::from_reg(port.regs.get(self.linefeed_reg())) }
    }

    fn dtmf_enabled(&self, p: usize) -> bool {
        let r = &self.ports[p].regs;
        match self.chip {
            FxsChip::Type6 => r.get(0x3E) == 0xE0,
            _ => r.get(0x17) & 1 == 1,
        }
    }

    fn lamp(&self, p: usize) -> bool {
        let r = &self.ports[p].regs;
        match self.chip {
            // MODEL: FXS-19
            FxsChip::Type6 => r.get(0x42) == 0x04 && r.get(0x47) == 0x0F,
            _ => self.feed(p) == LineFeed::Ringing && r.get(0x22) == 0x19,
        }
    }

    fn hook(&self, p: usize) -> bool {
        // MODEL: FXS-7 — off-hook only while the loop is fed.
        self.ports[p].side.off_hook && self.feed(p).feeds_loop()
    }

    /// Digital-input port → input index (MODEL: FXS-16).
    fn input_of(&self, port: u8) -> Option<usize> {
        if !self.dig_io || self.chip != FxsChip::Type1 {
            return None;
        }
        match port {
            2 => Some(2),
            3 => Some(3),
            6 => Some(0),
            7 => Some(1),
            _ => None,
        }
    }

    /// FAULT-11: hook edges of the phone on `port` bounce `bounces` times (0: off).
    pub(crate) fn set_bounce(&mut self, port: u8, bounces: u8, rng: crate::fault::SplitMix64) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.bounce = (bounces > 0).then(|| super::faults::Bounce::new(bounces, rng, p.side.off_hook));
        }
    }

    pub(crate) fn inject_overheat(&mut self, port: u8) {
        if let Some(p) = self.ports.get_mut(usize::from(port)) {
            p.overheat = true;
        }
    }

    pub(crate) fn state(&self, port: u8) -> Option<FxsPortState> {
        let p = usize::from(port);
        let s = self.ports.get(p)?;
        let mut green = s.green;
        let mut relay = s.relay;
        if self.chip == FxsChip::Type6 {
            green = self.expander[0x12] & (1 << p) != 0;
            relay = self.expander[0x13] & 0x41 != 0;
        }
        Some(FxsPortState {
            line_feed: self.feed(p),
            hook_reported: s.reported,
            dtmf_enabled: self.dtmf_enabled(p),
            green,
            red: s.red,
            relay,
        })
    }

    /// A register read; `None` = absent (0xFF). Returns (data_low, data_high).
    pub(crate) fn read(&self, now: Instant, a: &RegAccess) -> Option<(u8, u8)> {
        let p = usize::from(a.port);
        if a.expander {
            // MODEL: REG-10, FXS-18
            if self.chip != FxsChip::Type6 {
                return None;
            }
            let mut v = self.expander[usize::from(a.reg)];
            if a.reg == 0x13 {
                let bits = [0x80u8, 0x20, 0x08, 0x02];
                v &= 0x41;
                for (i, b) in bits.iter().enumerate() {
                    if !self.inputs[i] {
                        v |= b;
                    }
                }
            }
            return Some((v, 0));
        }
        let port = self.ports.get(p).filter(|s| s.present)?;
        if a.do_subreg {
            // MODEL: REG-8 (type 1 gateway 0x1E).
            let v = port.regs.get_sub(a.reg, a.subreg);
            return Some((v as u8, (v >> 8) as u8));
        }
        let v = match (self.chip, a.reg) {
            (FxsChip::Type6, 0x00) => 0xC3, // MODEL: FXS-3
            // MODEL: FXS-5 (a) — clock, PLL and frame sync detected (low five bits).
            (FxsChip::Type6, 0x03) => port.regs.get(0x03) | 0x1F,
            // MODEL: FXS-5 (c) — CAL_EN (bit 7) reads 1 until the calibration time has passed.
            (FxsChip::Type6, 0x1D) => {
                let running = port.cal_until.is_some_and(|t| now < t);
                (port.regs.get(0x1D) & !0x80) | if running { 0x80 } else { 0 }
            }
            // MODEL: FXS-5 (b) — bit 0 = user mode.
            (FxsChip::Type6, 0x7E) => (port.regs.get(0x7E) & !1) | u8::from(port.user_mode),
            (_, 0x00) => 0x05,                                // MODEL: FXS-2
            (FxsChip::Type1, 0x60 | 0x58 | 0x59) => 0x00,     // MODEL: FXS-4
            (FxsChip::Type1, 0x44) => u8::from(self.hook(p)), // MODEL: FXS-7
            (FxsChip::Type6, 0x22) => u8::from(self.hook(p)) << 1,
            (_, r) if r == self.linefeed_reg() && port.overheat => 0x00, // MODEL: FXS-22
            (FxsChip::Type1, 0x06) => match self.input_of(a.port) {
                // MODEL: FXS-16 — bit 0 = 1 idle, 0 active.
                Some(i) => (port.regs.get(0x06) & !1) | u8::from(!self.inputs[i]),
                None => port.regs.get(0x06),
            },
            (_, r) => port.regs.get(r),
        };
        Some((v, 0))
    }

    /// RAM access on a type-6 port (MODEL: REG-9); `None` = absent (reads 0xFFFFFFFF).
    pub(crate) fn ram(&mut self, r: &RamAccess) -> Option<u32> {
        if r.read {
            let p = if r.broadcast { 0 } else { r.port };
            return self.ports.get(usize::from(p)).filter(|s| s.present).map(|s| s.regs.get_ram(r.addr));
        }
        for (i, port) in self.ports.iter_mut().enumerate() {
            if port.present && (r.broadcast || i == usize::from(r.port)) {
                port.regs.set_ram(r.addr, r.data);
            }
        }
        None
    }

    /// A register write (MODEL: REG-4, REG-7, REG-8, REG-10).
    pub(crate) fn write(&mut self, now: Instant, a: &RegAccess) {
        if a.expander {
            if self.chip == FxsChip::Type6 {
                let r = &mut self.expander[usize::from(a.reg)];
                // MODEL: REG-10 — data_high = mask, data_low = new bit value.
                *r = if a.do_datah {
                    (*r & !a.data_high) | if a.data_low != 0 { a.data_high } else { 0 }
                } else {
                    a.data_low
                };
            }
            return;
        }
        let lf = self.linefeed_reg();
        let chip = self.chip;
        let Some(port) = self.ports.get_mut(usize::from(a.port)).filter(|s| s.present) else { return };
        if a.do_subreg {
            port.regs.set_sub(a.reg, a.subreg, u16::from(a.data_low) | (u16::from(a.data_high) << 8));
            return;
        }
        port.regs.set(a.reg, a.data_low);
        if chip == FxsChip::Type6 {
            match a.reg {
                // MODEL: FXS-5 (c) — CAL_EN starts a calibration; writing it clear ends none.
                0x1D if a.data_low & 0x80 != 0 => port.cal_until = Some(now + CAL_TIME),
                // MODEL: FXS-5 (b) — 0x02, 0x08, 0x0E, 0x00 in a row toggles user mode; any other
                // byte restarts the match (0x02 starts it again).
                0x7E => {
                    if a.data_low == USER_MODE_SEQ[port.user_seq] {
                        port.user_seq += 1;
                    } else {
                        port.user_seq = usize::from(a.data_low == USER_MODE_SEQ[0]);
                    }
                    if port.user_seq == USER_MODE_SEQ.len() {
                        port.user_mode = !port.user_mode;
                        port.user_seq = 0;
                    }
                }
                _ => {}
            }
        }
        if a.reg == lf {
            port.overheat = false;
        }
        if chip == FxsChip::Type1 && a.reg == 0x06 {
            // MODEL: FXS-17
            match a.data_low {
                0x6C => port.green = false,
                0x7C => port.green = true,
                0xAC => port.red = false,
                0xAE => port.red = true,
                0xCC => port.relay = false,
                0xCD => port.relay = true,
                _ => {}
            }
        }
    }

    /// The port's line-side output this ms: line state and host audio (MODEL: FXS-12).
    pub(crate) fn output(&self, port: u8, pcm: &XpdPcm) -> (LineFeed, [u8; 8]) {
        let p = usize::from(port);
        let feed = self.feed(p);
        let tx = if feed.carries_audio() { pcm.tx[p] } else { [SILENCE_U; 8] };
        (feed, tx)
    }

    /// Phase A: phones on unpatched ports.
    pub(crate) fn equipment(&mut self, at: Instant, pcm: &XpdPcm, log: &mut EventLog) {
        for p in 0..self.ports.len() {
            if self.ports[p].patched || !self.ports[p].present {
                continue;
            }
            let (feed, tx) = self.output(p as u8, pcm);
            let lamp = self.lamp(p);
            let pref = PortRef::new(self.unit, p as u8);
            let mut side = self.ports[p].phone.update(at, pref, feed, lamp, &tx, log);
            if let Some(b) = &mut self.ports[p].bounce {
                // MODEL: FAULT-11 — the hook switch bounces on each edge.
                side.off_hook = b.contact(at, side.off_hook);
            }
            self.ports[p].side = side;
        }
    }

    /// Phase B: PCM_READ audio, hook scan (SIG_CHANGED), DTMF detector.
    pub(crate) fn scan(&mut self, at: Instant, pcm: &mut XpdPcm, out: &mut OutQueue) {
        let addr = Address::new(self.unit, 0).unwrap_or(Address::ZERO);
        let mut status = 0u32;
        let mut toggles = 0u32;
        for p in 0..self.ports.len() {
            if !self.ports[p].present {
                pcm.rx[p] = [SILENCE_U; 8];
                continue;
            }
            let feed = self.feed(p);
            let hook = self.hook(p);
            let side = self.ports[p].side;
            // MODEL: FXS-12, FXS-15 — microphone (and DTMF) only off-hook in states 1/5.
            pcm.rx[p] = if side.off_hook && feed.active() { side.mic } else { [SILENCE_U; 8] };
            // MODEL: FXS-8, FXS-9
            if hook {
                status |= 1 << p;
            }
            if hook != self.ports[p].reported {
                toggles |= 1 << p;
                self.ports[p].reported = hook;
            }
            // MODEL: FXS-14
            let key = if hook && self.dtmf_enabled(p) { side.key } else { None };
            let reg = if self.chip == FxsChip::Type6 { 0x3C } else { 0x18 };
            let port = &mut self.ports[p];
            if key != port.dtmf_key {
                if let Some(idx) = port.dtmf_down.take() {
                    queue_unsolicited(out, addr, p as u8, reg, idx);
                }
                port.dtmf_key = key;
                port.dtmf_since = at;
            }
            if let Some(k) = port.dtmf_key
                && port.dtmf_down.is_none()
                && at - port.dtmf_since >= self.dtmf_detect
                && let Some(idx) = DTMF_DIGITS.iter().position(|&d| char::from(d) == k)
            {
                port.dtmf_down = Some(idx as u8);
                queue_unsolicited(out, addr, p as u8, reg, 0x10 | idx as u8);
            }
        }
        if toggles != 0 {
            out.push_repr(&Repr::command(addr, Message::SigChanged(SigChanged { status, toggles })));
        }
    }
}

/// An unsolicited REGISTER_REPLY `0A 00 10 <addr> <0x05|port<<4> 40 <reg> 00 <data> 00`
/// (MODEL: FXS-14, FXO-8, PRI-10).
pub(crate) fn queue_unsolicited(out: &mut OutQueue, addr: Address, port: u8, reg: u8, data: u8) {
    let mut a = RegAccess::read(port, reg);
    a.data_low = data;
    out.push_repr(&Repr::command(addr, Message::RegisterReply(RegCmd::Reg(a))));
}
