//! PRI module, hardware type 4 (MODEL.md PRI rows).

use xpp_proto::wire::pri::TimeslotMap;
use xpp_proto::wire::{Address, RegAccess};

use xpp_proto::Instant;

use super::OutQueue;
use super::equipment::PriFarEnd;
use super::event::{EventKind, EventLog, PortRef};
use super::fxs::queue_unsolicited;
use super::g711::Law;
use super::regs::ChipRegs;
use super::tick::XpdPcm;
use crate::config::EquipmentTimings;

/// What a PRI port receives this ms (MODEL: PRI-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PriRx {
    pub(crate) los: bool,
    pub(crate) ais: bool,
    pub(crate) rai: bool,
    pub(crate) cas: [u8; 16],
    pub(crate) audio: [[u8; 8]; 32],
}

impl PriRx {
    const LOS: Self = Self { los: true, ais: false, rai: false, cas: [0; 16], audio: [[0xFF; 8]; 32] };
}

/// What a PRI port transmits this ms (for a patched far end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PriTx {
    pub(crate) on: bool,
    pub(crate) t1: bool,
    /// Send RAI: the port is in LOS or AIS (MODEL: PRI-6).
    pub(crate) rai: bool,
    pub(crate) cas: [u8; 16],
    pub(crate) audio: [[u8; 8]; 32],
}

#[derive(Debug, Clone)]
pub(crate) struct PriPort {
    regs: ChipRegs,
    pub(crate) far: PriFarEnd,
    pub(crate) patched: bool,
    pub(crate) rx: PriRx,
    cas_reported: [u8; 16],
    pub(crate) leds: [bool; 4],
}

#[derive(Debug, Clone)]
pub(crate) struct PriUnit {
    unit: u8,
    pub(crate) map: TimeslotMap,
    pub(crate) nports: u8,
    pub(crate) ports: Vec<PriPort>,
}

/// Observable state of one PRI port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PriPortState {
    /// FRS0 as the chip reads it (MODEL: PRI-3).
    pub frs0: u8,
    /// Transmitter on (XPM2 = 0, MODEL: PRI-5).
    pub transmitting: bool,
    /// LEDs: bottom red, bottom green, top red, top green (MODEL: PRI-12).
    pub leds: [bool; 4],
}

impl PriUnit {
    pub(crate) fn new(unit: u8, t1: bool, nports: u8, t: EquipmentTimings) -> Self {
        let ports = (0..4)
            .map(|_| PriPort {
                regs: ChipRegs::default(),
                far: PriFarEnd::new(t),
                patched: false,
                rx: PriRx::LOS,
                cas_reported: [0; 16],
                leds: [false; 4],
            })
            .collect();
        Self {
            unit,
            map: if t1 { TimeslotMap::T1 } else { TimeslotMap::E1 },
            nports: nports.clamp(1, 4),
            ports,
        }
    }

    pub(crate) fn is_t1(&self) -> bool {
        self.map.channels() == 24
    }

    pub(crate) fn law(&self) -> Law {
        if self.is_t1() { Law::Ulaw } else { Law::Alaw }
    }

    pub(crate) fn reset(&mut self) {
        for p in &mut self.ports {
            p.regs.reset();
            p.cas_reported = [0; 16];
            p.leds = [false; 4];
        }
    }

    /// The CAS registers of this protocol (MODEL: PRI-9).
    fn cas_regs(&self) -> core::ops::RangeInclusive<u8> {
        if self.is_t1() { 0x70..=0x7B } else { 0x71..=0x7F }
    }

    fn frs0(rx: &PriRx) -> u8 {
        // MODEL: PRI-3
        if rx.los { 0x80 } else { (u8::from(rx.ais) << 6) | (u8::from(rx.rai) << 4) }
    }

    pub(crate) fn state(&self, port: u8) -> Option<PriPortState> {
        let p = self.ports.get(usize::from(port)).filter(|_| port < self.nports)?;
        Some(PriPortState { frs0: Self::frs0(&p.rx), transmitting: p.regs.get(0x28) == 0, leds: p.leds })
    }

    pub(crate) fn read(&self, a: &RegAccess) -> Option<(u8, u8)> {
        // MODEL: PRI-1 — ports n..3 read 0xFF.
        let port = self.ports.get(usize::from(a.port)).filter(|_| a.port < self.nports && !a.expander)?;
        if a.do_subreg {
            let v = port.regs.get_sub(a.reg, a.subreg);
            return Some((v as u8, (v >> 8) as u8));
        }
        let v = match a.reg {
            0x4C => Self::frs0(&port.rx),
            r @ 0x70..=0x7F => port.rx.cas[usize::from(r - 0x70)],
            r => port.regs.get(r),
        };
        Some((v, 0))
    }

    pub(crate) fn write(&mut self, a: &RegAccess) {
        let n = self.nports;
        let Some(port) = self.ports.get_mut(usize::from(a.port)).filter(|_| a.port < n && !a.expander) else {
            return;
        };
        if a.do_subreg {
            port.regs.set_sub(a.reg, a.subreg, u16::from(a.data_low) | (u16::from(a.data_high) << 8));
        } else {
            // MODEL: PRI-2, PRI-5, PRI-9, PRI-11 — stored; XPM2 and CAS TX are read back live.
            port.regs.set(a.reg, a.data_low);
        }
    }

    pub(crate) fn set_led(&mut self, port: u8, byte: u8) -> Option<(u8, bool)> {
        let p = self.ports.get_mut(usize::from(port)).filter(|_| port < self.nports)?;
        let led = (byte >> 2) & 3;
        let on = byte & 3 == 1;
        p.leds[usize::from(led)] = on;
        Some((led, on))
    }

    /// What port `p` transmits this ms.
    pub(crate) fn output(&self, port: u8, pcm: &XpdPcm) -> PriTx {
        let p = &self.ports[usize::from(port)];
        let mut cas = [0u8; 16];
        for r in self.cas_regs() {
            cas[usize::from(r - 0x70)] = p.regs.get(r);
        }
        PriTx { on: p.regs.get(0x28) == 0, t1: self.is_t1(), rai: p.rx.los || p.rx.ais, cas, audio: pcm.tx }
    }

    /// Phase A: far ends of unpatched ports.
    pub(crate) fn equipment(&mut self, at: Instant, pcms: &mut [XpdPcm], log: &mut EventLog) {
        let law = self.law();
        let t1 = self.is_t1();
        let dch = self.map.physical_bit(self.map.dchan()).unwrap_or(16);
        for (pi, pcm) in pcms.iter_mut().enumerate() {
            let tx = self.output(pi as u8, pcm);
            let port = &mut self.ports[pi];
            if port.patched {
                continue;
            }
            let far = &mut port.far;
            // MODEL: PRI-5, PRI-6 — what the far end sees of our transmitter.
            far.sees_signal = tx.on;
            far.sees_rai = tx.on && tx.rai;
            far.rx_cas = if tx.on { tx.cas } else { [0; 16] };
            if tx.on {
                for b in 1..32u8 {
                    if self.map.logical_channel(b).is_some() {
                        far.heard[usize::from(b)].push_chunk(law, &tx.audio[usize::from(b)]);
                    }
                }
                // MODEL: PRI-8 — the far end's HDLC receiver on the D timeslot.
                let frames = &mut far.frames_rx;
                let q921 = &mut far.q921;
                let hdlc_tx = &mut far.hdlc_tx;
                let mut got = |f: Vec<u8>| {
                    log.push(at, Some(PortRef::new(self.unit, pi as u8)), EventKind::FarEndFrame(f.len()));
                    // MODEL: PRI-13
                    if let Some(answer) = q921.as_mut().and_then(|p| p.answer(&f)) {
                        hdlc_tx.queue(&answer);
                    }
                    if frames.len() >= 64 {
                        frames.pop_front();
                    }
                    frames.push_back(f);
                };
                // MODEL: PRI-14 — 7 bits per byte at 56 kbit/s.
                let n = far.dchan_bits;
                for &byte in &tx.audio[usize::from(dch)] {
                    far.hdlc_rx.push_of(byte, n, &mut got);
                }
            }
            // MODEL: PRI-4, EQ-7
            let los = !far.connected || far.t1.is_some_and(|f| f != t1);
            if los {
                port.rx = PriRx::LOS;
                continue;
            }
            let mut audio = [[law.silence(); 8]; 32];
            for b in 1..32u8 {
                if self.map.logical_channel(b).is_none() {
                    continue;
                }
                audio[usize::from(b)] = if far.ais {
                    [0xFF; 8]
                } else if b == dch && !far.hdlc_tx.idle() {
                    // MODEL: PRI-8 — queued frames, HDLC framed.
                    core::array::from_fn(|_| far.hdlc_tx.next_byte_of(far.dchan_bits))
                } else if b == dch && far.sources[usize::from(b)].is_silent() {
                    // MODEL: PRI-8 — idle D-channel sends 0xFF.
                    [0xFF; 8]
                } else {
                    far.sources[usize::from(b)].next_chunk(law)
                };
            }
            port.rx = PriRx { los: false, ais: far.ais, rai: far.rai, cas: far.cas, audio };
        }
    }

    /// Phase B: PCM_READ audio and CAS reports (MODEL: PRI-7, PRI-10).
    pub(crate) fn scan(&mut self, pcms: &mut [XpdPcm], out: &mut OutQueue) {
        let regs = self.cas_regs();
        for (pi, pcm) in pcms.iter_mut().enumerate() {
            let port = &mut self.ports[pi];
            pcm.rx = port.rx.audio;
            if port.rx.los {
                pcm.rx = [[0xFF; 8]; 32];
                continue;
            }
            if port.rx.ais {
                continue;
            }
            let addr = Address::new(self.unit, pi as u8).unwrap_or(Address::ZERO);
            for r in regs.clone() {
                let i = usize::from(r - 0x70);
                if port.rx.cas[i] != port.cas_reported[i] {
                    port.cas_reported[i] = port.rx.cas[i];
                    queue_unsolicited(out, addr, pi as u8, r, port.rx.cas[i]);
                }
            }
        }
    }

    /// PATCH-4: feeds `rx` from a crossover peer's transmitter.
    pub(crate) fn receive_from(&mut self, port: u8, peer: &PriTx) {
        let t1 = self.is_t1();
        let Some(p) = self.ports.get_mut(usize::from(port)) else { return };
        p.rx = if !peer.on || peer.t1 != t1 {
            PriRx::LOS
        } else {
            PriRx { los: false, ais: false, rai: peer.rai, cas: peer.cas, audio: peer.audio }
        };
    }
}
