//! BRI module, hardware type 3 (MODEL.md BRI rows).

use xpp_proto::wire::{Address, Message, Multibyte, RegAccess, RegCmd, Repr};
use xpp_proto::{Duration, Instant};

use super::equipment::BriFarEnd;
use super::event::{EventKind, EventLog, PortRef};
use super::g711::{Law, fcs16};
use super::regs::ChipRegs;
use super::tick::XpdPcm;
use super::{OutQueue, Stats};
use crate::config::EquipmentTimings;

/// Longest D-channel frame accepted from the host (MODEL: BRI-8).
const MAX_FRAME: usize = 300;
const SILENCE_A: u8 = 0xD5;

#[derive(Debug, Clone)]
pub(crate) struct BriPort {
    pub(crate) nt: bool,
    regs: ChipRegs,
    pub(crate) far: BriFarEnd,
    pub(crate) state: u8,
    enabled: bool,
    timer: Option<(Instant, u8)>,
    tx_frame: Vec<u8>,
    tx_overflow: bool,
    pub(crate) leds: [bool; 2],
    /// PATCH-5: cabled to another BRI port; B-channel audio comes from `peer_b`.
    pub(crate) patched: bool,
    pub(crate) peer_b: [[u8; 8]; 2],
}

/// Observable state of one BRI port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BriPortState {
    /// Register 0x30 as the chip reads it (MODEL: BRI-2).
    pub l1: u8,
    /// Layer 1 active (F7 / G3).
    pub active: bool,
    /// LEDs: green, red (MODEL: BRI-12).
    pub leds: [bool; 2],
}

#[derive(Debug, Clone)]
pub(crate) struct BriUnit {
    unit: u8,
    pub(crate) nports: u8,
    pub(crate) ports: Vec<BriPort>,
    activate: Duration,
}

impl BriPort {
    pub(crate) const fn enabled(&self) -> bool {
        self.enabled
    }

    /// A TE port on its way to F7 (PATCH-5: it sends INFO3).
    pub(crate) fn activating(&self) -> bool {
        matches!(self.timer, Some((_, 7)))
    }

    pub(crate) fn active(&self) -> bool {
        if self.nt { self.state == 3 } else { self.state == 7 }
    }

    fn reg30(&self) -> u8 {
        // MODEL: BRI-2
        let fsync = if self.nt { matches!(self.state, 2 | 3) } else { matches!(self.state, 6 | 7) };
        let info0 = !(self.far.connected && self.far.active);
        self.state | (u8::from(fsync) << 4) | (u8::from(info0) << 6)
    }

    fn set_state(&mut self, at: Instant, pref: PortRef, s: u8, log: &mut EventLog) {
        if self.state != s {
            self.state = s;
            log.push(at, Some(pref), EventKind::Layer1(s));
        }
    }
}

impl BriUnit {
    pub(crate) fn new(unit: u8, nports: u8, nt_mask: u8, t: EquipmentTimings, activate_ms: u32) -> Self {
        let nports = nports.clamp(1, 4);
        let ports = (0..nports)
            .map(|p| BriPort {
                nt: nt_mask & (1 << p) != 0,
                regs: ChipRegs::default(),
                far: BriFarEnd::new(t),
                state: 0,
                enabled: false,
                timer: None,
                tx_frame: Vec::new(),
                tx_overflow: false,
                leds: [false; 2],
                patched: false,
                peer_b: [[SILENCE_A; 8]; 2],
            })
            .collect();
        Self { unit, nports, ports, activate: Duration::from_millis(u64::from(activate_ms)) }
    }

    pub(crate) fn reset(&mut self) {
        // MODEL: BRI-3 — state 0 until enabled again.
        for p in &mut self.ports {
            p.regs.reset();
            p.state = 0;
            p.enabled = false;
            p.timer = None;
            p.tx_frame.clear();
            p.leds = [false; 2];
        }
    }

    pub(crate) fn state(&self, port: u8) -> Option<BriPortState> {
        let p = self.ports.get(usize::from(port))?;
        Some(BriPortState { l1: p.reg30(), active: p.active(), leds: p.leds })
    }

    pub(crate) fn read(&self, a: &RegAccess) -> Option<(u8, u8)> {
        let port = self.ports.get(usize::from(a.port)).filter(|_| !a.expander)?;
        if a.do_subreg {
            let v = port.regs.get_sub(a.reg, a.subreg);
            return Some((v as u8, (v >> 8) as u8));
        }
        Some((if a.reg == 0x30 { port.reg30() } else { port.regs.get(a.reg) }, 0))
    }

    pub(crate) fn write(&mut self, at: Instant, a: &RegAccess, log: &mut EventLog) {
        let unit = self.unit;
        let delay = self.activate;
        let Some(port) = self.ports.get_mut(usize::from(a.port)).filter(|_| !a.expander) else { return };
        if a.do_subreg {
            port.regs.set_sub(a.reg, a.subreg, u16::from(a.data_low) | (u16::from(a.data_high) << 8));
            return;
        }
        port.regs.set(a.reg, a.data_low);
        if a.reg != 0x30 {
            return; // MODEL: BRI-13
        }
        let pref = PortRef::new(unit, a.port);
        match a.data_low {
            0x00 => {
                // MODEL: BRI-3
                port.enabled = true;
                port.timer = None;
                port.set_state(at, pref, if port.nt { 1 } else { 3 }, log);
            }
            0x60 | 0xE0 if port.enabled => {
                // MODEL: BRI-4
                if port.nt {
                    port.set_state(at, pref, 2, log);
                    if port.far.connected {
                        port.timer = Some((at + delay, 3));
                    }
                } else if port.far.connected && port.state != 7 {
                    port.timer = Some((at + delay, 7));
                }
            }
            0x40 if port.enabled => {
                // MODEL: BRI-5
                port.far.active = false;
                if port.nt {
                    port.set_state(at, pref, 4, log);
                    port.timer = Some((at + Duration::from_millis(32), 1));
                } else {
                    port.timer = None;
                    port.set_state(at, pref, 3, log);
                }
            }
            _ => {}
        }
    }

    /// D-channel TX chunk (MODEL: BRI-8).
    pub(crate) fn dchannel_tx(&mut self, at: Instant, m: &Multibyte, stats: &mut Stats, log: &mut EventLog) {
        let unit = self.unit;
        let Some(port) = self.ports.get_mut(usize::from(m.port)) else {
            stats.ignored += 1;
            return;
        };
        if port.tx_frame.len() + m.data().len() > MAX_FRAME {
            port.tx_overflow = true;
        } else {
            port.tx_frame.extend_from_slice(m.data());
        }
        if m.eoframe {
            if port.tx_overflow || !port.active() {
                stats.dchannel_tx_discarded += 1;
            } else {
                log.push(at, Some(PortRef::new(unit, m.port)), EventKind::FarEndFrame(port.tx_frame.len()));
                // MODEL: BRI-14 — the far end's optional Q.921 peer answers.
                if let Some(answer) = port.far.q921.as_mut().and_then(|p| p.answer(&port.tx_frame)) {
                    port.far.to_host.push_back(answer);
                }
                port.far.from_host.push_back(port.tx_frame.clone());
                if port.far.from_host.len() > 64 {
                    port.far.from_host.pop_front();
                }
            }
            port.tx_frame.clear();
            port.tx_overflow = false;
        }
    }

    /// Phase A: layer-1 machines against their far ends (MODEL: BRI-4..6).
    pub(crate) fn equipment(&mut self, at: Instant, log: &mut EventLog) {
        let delay = self.activate;
        for (i, port) in self.ports.iter_mut().enumerate() {
            let pref = PortRef::new(self.unit, i as u8);
            if let Some((t, s)) = port.timer
                && at >= t
            {
                port.timer = None;
                let ok = s == 1 || port.far.connected;
                if ok {
                    if s == 3 || s == 7 {
                        port.far.active = true;
                    }
                    port.set_state(at, pref, s, log);
                }
            }
            if !port.enabled {
                continue;
            }
            let far_up = port.far.connected && port.far.active;
            if port.nt {
                match port.state {
                    3 if !far_up => port.set_state(at, pref, 1, log),
                    1 if far_up => {
                        port.set_state(at, pref, 2, log);
                        port.timer = Some((at + delay, 3));
                    }
                    _ => {}
                }
            } else {
                match port.state {
                    7 if !far_up => port.set_state(at, pref, 3, log),
                    3 if far_up && port.timer.is_none() => port.timer = Some((at + delay, 7)),
                    _ => {}
                }
            }
        }
    }

    /// Phase B: B-channel audio and D-channel RX (MODEL: BRI-9, BRI-11).
    pub(crate) fn scan(
        &mut self,
        pcm: Option<&mut XpdPcm>,
        delivery: bool,
        out: &mut OutQueue,
        stats: &mut Stats,
    ) {
        if let Some(pcm) = pcm {
            for (s, port) in self.ports.iter_mut().enumerate() {
                for b in 0..2 {
                    let bit = 4 * s + b;
                    if port.active() && port.patched {
                        // MODEL: PATCH-5 — the peer port's B channel.
                        pcm.rx[bit] = port.peer_b[b];
                    } else if port.active() {
                        port.far.heard[b].push_chunk(Law::Alaw, &pcm.tx[bit]);
                        pcm.rx[bit] = port.far.b[b].next_chunk(Law::Alaw);
                    } else {
                        pcm.rx[bit] = [SILENCE_A; 8];
                    }
                }
            }
        }
        for (s, port) in self.ports.iter_mut().enumerate() {
            if !delivery {
                stats.dchannel_rx_discarded += port.far.to_host.len() as u64;
                port.far.to_host.clear();
                continue;
            }
            if !port.active() {
                continue;
            }
            let Some(frame) = port.far.to_host.pop_front() else { continue };
            let addr = Address::new(self.unit, s as u8).unwrap_or(Address::ZERO);
            let mut fcs = fcs16(&frame);
            // MODEL: FAULT-11 — a damaged frame: aborted (0xFF) or a bad FCS (0x01).
            let status = match port.far.damage.pop_front() {
                None => 0x00,
                Some(true) => 0xFF,
                Some(false) => {
                    fcs = !fcs;
                    0x01
                }
            };
            let mut bytes = frame;
            bytes.extend_from_slice(&fcs.to_le_bytes());
            bytes.push(status);
            queue_dchannel(out, addr, s as u8, &bytes);
        }
    }
}

/// What BRI port `s` transmits on B1/B2 this ms (silence while layer 1 is down).
pub(crate) fn b_tx(port: &BriPort, pcm: Option<&XpdPcm>, s: usize) -> [[u8; 8]; 2] {
    match pcm {
        Some(x) if port.active() => [x.tx[4 * s], x.tx[4 * s + 1]],
        _ => [[SILENCE_A; 8]; 2],
    }
}

/// One received D-channel frame as multibyte REGISTER_REPLY chunks, packed into as few IN
/// transfers as fit (MODEL: BRI-9).
fn queue_dchannel(out: &mut OutQueue, addr: Address, port: u8, bytes: &[u8]) {
    let n = bytes.chunks(5).count();
    let mut batch = out.batch();
    for (i, chunk) in bytes.chunks(5).enumerate() {
        if let Some(m) = Multibyte::new(port, i + 1 == n, chunk) {
            batch.push(&Repr::command(addr, Message::RegisterReply(RegCmd::Multibyte(m))));
        }
    }
}
