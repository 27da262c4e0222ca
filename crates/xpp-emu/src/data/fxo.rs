//! FXO module, hardware type 2 (MODEL.md FXO rows).

use xpp_proto::wire::{Address, Message, RegAccess, Repr, SigChanged};
use xpp_proto::{Duration, Instant};

use super::equipment::{FxoLineIn, PstnLine};
use super::event::{EventLog, PortRef};
use super::fxs::queue_unsolicited;
use super::regs::ChipRegs;
use super::tick::XpdPcm;
use super::{OutQueue, SILENCE_U};
use crate::config::{DataConfig, EquipmentTimings};

#[derive(Debug, Clone)]
pub(crate) struct FxoPort {
    pub(crate) present: bool,
    regs: ChipRegs,
    pub(crate) line: PstnLine,
    pub(crate) patched: bool,
    pub(crate) input: FxoLineIn,
    ring_reported: bool,
    ring_now: bool,
    ring_since: Instant,
    polarity: Option<bool>,
    next_loop_report: Option<Instant>,
    pub(crate) green: bool,
    pub(crate) red: bool,
}

/// Observable state of one FXO port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FxoPortState {
    /// Hook register bit 0 (MODEL: FXO-2).
    pub off_hook: bool,
    /// Hook register bit 3, on-hook line monitor.
    pub monitor: bool,
    /// VBAT as the chip reads it (MODEL: FXO-3).
    pub vbat: i8,
    /// Loop current (MODEL: FXO-4).
    pub loop_current: u8,
    /// Ring as last reported by SIG_CHANGED.
    pub ring_reported: bool,
    /// Green LED (MODEL: FXO-9).
    pub green: bool,
    /// Red LED.
    pub red: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FxoUnit {
    unit: u8,
    pub(crate) ports: Vec<FxoPort>,
    battery_volts: i8,
    loop_volts: i8,
    loop_current: u8,
    ring_detect: Duration,
    loop_report: Option<Duration>,
}

impl FxoUnit {
    pub(crate) fn new(unit: u8, absent: u8, t: EquipmentTimings, cfg: &DataConfig) -> Self {
        let ports = (0..8)
            .map(|p| FxoPort {
                present: absent & (1 << p) == 0,
                regs: ChipRegs::default(),
                line: PstnLine::new(t),
                patched: false,
                input: FxoLineIn::IDLE,
                ring_reported: false,
                ring_now: false,
                ring_since: Instant::ZERO,
                polarity: None,
                next_loop_report: None,
                green: false,
                red: false,
            })
            .collect();
        Self {
            unit,
            ports,
            battery_volts: cfg.battery_volts,
            loop_volts: cfg.loop_volts,
            loop_current: cfg.loop_current,
            ring_detect: Duration::from_millis(u64::from(cfg.ring_detect_ms)),
            loop_report: cfg.fxo_loop_current_report_ms.map(|m| Duration::from_millis(u64::from(m.max(1)))),
        }
    }

    pub(crate) fn reset(&mut self) {
        for p in &mut self.ports {
            p.regs.reset();
            p.green = false;
            p.red = false;
            p.next_loop_report = None;
        }
    }

    fn off_hook(&self, p: usize) -> bool {
        self.ports[p].regs.get(0x05) & 0x01 != 0
    }

    fn vbat(&self, p: usize) -> i8 {
        // MODEL: FXO-3
        match self.ports[p].input.battery {
            None => 0,
            Some(rev) => {
                let v = if self.off_hook(p) { self.loop_volts } else { self.battery_volts };
                if rev { v.saturating_neg() } else { v }
            }
        }
    }

    fn loop_current(&self, p: usize) -> u8 {
        // MODEL: FXO-4
        if self.off_hook(p) && self.ports[p].input.battery.is_some() { self.loop_current } else { 0 }
    }

    pub(crate) fn state(&self, port: u8) -> Option<FxoPortState> {
        let p = usize::from(port);
        let s = self.ports.get(p)?;
        Some(FxoPortState {
            off_hook: self.off_hook(p),
            monitor: s.regs.get(0x05) & 0x08 != 0,
            vbat: self.vbat(p),
            loop_current: self.loop_current(p),
            ring_reported: s.ring_reported,
            green: s.green,
            red: s.red,
        })
    }

    pub(crate) fn read(&self, a: &RegAccess) -> Option<(u8, u8)> {
        let p = usize::from(a.port);
        let port = self.ports.get(p).filter(|s| s.present && !a.expander)?;
        if a.do_subreg {
            let v = port.regs.get_sub(a.reg, a.subreg);
            return Some((v as u8, (v >> 8) as u8));
        }
        let v = match a.reg {
            0x1D => self.vbat(p) as u8,
            0x1C => self.loop_current(p),
            0x04 => 0x00, // MODEL: FXO-8
            r => port.regs.get(r),
        };
        Some((v, 0))
    }

    pub(crate) fn write(&mut self, a: &RegAccess) {
        let Some(port) = self.ports.get_mut(usize::from(a.port)).filter(|s| s.present && !a.expander) else {
            return;
        };
        if a.do_subreg {
            port.regs.set_sub(a.reg, a.subreg, u16::from(a.data_low) | (u16::from(a.data_high) << 8));
            return;
        }
        port.regs.set(a.reg, a.data_low);
        if a.reg == 0x20 {
            // MODEL: FXO-9
            match a.data_low {
                0x60 => port.green = false,
                0x63 => port.green = true,
                0xA0 => port.red = false,
                0xA3 => port.red = true,
                _ => {}
            }
        }
    }

    /// The port's line-side output: hook, and host audio while off-hook (MODEL: FXO-11).
    pub(crate) fn output(&self, port: u8, pcm: &XpdPcm) -> (bool, [u8; 8]) {
        let p = usize::from(port);
        let hook = self.off_hook(p);
        (hook, if hook { pcm.tx[p] } else { [SILENCE_U; 8] })
    }

    /// Phase A: PSTN lines on unpatched ports.
    pub(crate) fn equipment(&mut self, at: Instant, pcm: &XpdPcm, log: &mut EventLog) {
        for p in 0..self.ports.len() {
            if self.ports[p].patched || !self.ports[p].present {
                continue;
            }
            let (hook, tx) = self.output(p as u8, pcm);
            let pref = PortRef::new(self.unit, p as u8);
            self.ports[p].input = self.ports[p].line.update(at, pref, hook, &tx, log);
        }
    }

    /// Phase B: PCM_READ audio, ring scan (SIG_CHANGED), polarity reversal, loop current.
    pub(crate) fn scan(&mut self, at: Instant, pcm: &mut XpdPcm, out: &mut OutQueue) {
        let addr = Address::new(self.unit, 0).unwrap_or(Address::ZERO);
        let mut status = 0u32;
        let mut toggles = 0u32;
        for p in 0..self.ports.len() {
            if !self.ports[p].present {
                pcm.rx[p] = [SILENCE_U; 8];
                continue;
            }
            let hook = self.off_hook(p);
            let lc = self.loop_current(p);
            let port = &mut self.ports[p];
            let monitor = port.regs.get(0x05) & 0x08 != 0;
            // MODEL: FXO-11
            pcm.rx[p] = if hook || monitor { port.input.audio } else { [SILENCE_U; 8] };
            // MODEL: FXO-6, FXO-7 — ring envelope edges after `ring_detect_ms`.
            let ring = port.input.ringing && port.input.battery.is_some();
            if ring != port.ring_now {
                port.ring_now = ring;
                port.ring_since = at;
            }
            if port.ring_now != port.ring_reported && at - port.ring_since >= self.ring_detect {
                port.ring_reported = port.ring_now;
                toggles |= 1 << p;
            }
            if port.ring_reported {
                status |= 1 << p;
            }
            // MODEL: FXO-8
            if let Some(rev) = port.input.battery {
                if port.polarity.is_some_and(|old| old != rev) {
                    queue_unsolicited(out, addr, p as u8, 0x04, 0x01);
                }
                port.polarity = Some(rev);
            }
            // MODEL: FXO-5
            match (self.loop_report, hook) {
                (Some(period), true) => {
                    let next = *port.next_loop_report.get_or_insert(at + period);
                    if at >= next {
                        port.next_loop_report = Some(at + period);
                        queue_unsolicited(out, addr, p as u8, 0x1C, lc);
                    }
                }
                _ => port.next_loop_report = None,
            }
        }
        if toggles != 0 {
            out.push_repr(&Repr::command(addr, Message::SigChanged(SigChanged { status, toggles })));
        }
    }
}
