//! Spans and channels of one Astribank, laid out from its unit descriptors
//! (docs/reference/xpp-protocol.md §6.2, §9; docs/reference/dahdi-span-model.md §1, §12 "Astribank mapping").
//!
//! One XPD (unit, subunit) is one span named `XBUS-nn/XPD-us`; its channels are numbered
//! consecutively. The layout follows the reference host:
//!
//! | Card | XPDs | Channels per XPD | D-channel |
//! |---|---|---|---|
//! | FXS (type 1, 6) | ceil(ports / 8) | min(8, ports) (subtype 2: 6); unit 0 adds 2 digital outputs and 4 digital inputs unless subtype 4 or 4 chips | — |
//! | FXO (type 2) | ceil(ports / 8) | min(8, ports) (subtype 2: 2) | — |
//! | BRI (type 3) | one per port | B1, B2, D | chanpos 3 |
//! | PRI (type 4) | one per port | E1 31 / T1 24 | chanpos 16 / 24 |
//! | ECHO (type 5) | none (no span) | | |
//!
//! A descriptor with `ports_per_chip` outside 1..=32 creates nothing; an FXS subunit whose
//! `port_dir` bit is 0 or an FXO subunit whose bit is 1 is refused; a type without a driver
//! (7 or unknown) stops the processing of the remaining descriptors.

use xpp_chan::ChipType;
use xpp_proto::wire::pri::{PriProtocol, TimeslotMap};
use xpp_proto::wire::{Address, CardType, UnitDescriptor};

use crate::alarm::SpanAlarms;
use crate::dahdi::{Alarms, Law, LineConfig, SigCap, SpanType};
use crate::xbus::SpanLine;

/// What the bring-up established about one unit: its validated descriptor and which chip
/// ports answered chip detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitSetup {
    /// The unit descriptor from AB_DESCRIPTION.
    pub descriptor: UnitDescriptor,
    /// Bit n: chip port n of the unit is present (FXS/FXO). A missing port gets a BROKEN
    /// channel without a line model.
    pub present: u32,
    /// PRI units: the protocol the init script selected (E1 when `None`).
    pub pri_protocol: Option<PriProtocol>,
}

impl UnitSetup {
    /// A unit with every port present (and E1 for a PRI unit).
    pub const fn new(descriptor: UnitDescriptor) -> Self {
        Self { descriptor, present: u32::MAX, pri_protocol: None }
    }
}

/// The personality of an XPD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XpdKind {
    /// Analog phone ports (SLIC type 1 or 6).
    Fxs(ChipType),
    /// Analog line ports.
    Fxo,
    /// One BRI S/T port.
    Bri {
        /// Network side (port_dir bit 1) rather than terminal side.
        nt: bool,
    },
    /// One PRI E1/T1 port.
    Pri(TimeslotMap),
}

/// What one channel of an XPD is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChanKind {
    /// An FXS port (phone-facing; FXO signalling) on chip port `port`.
    FxsPort {
        /// Chip port 0..7.
        port: u8,
    },
    /// An FXO port (line-facing; FXS signalling) on chip port `port`.
    FxoPort {
        /// Chip port 0..7.
        port: u8,
    },
    /// FXS unit 0: a relay output (never in PCM).
    DigitalOutput(u8),
    /// FXS unit 0: a digital input (never in PCM).
    DigitalInput(u8),
    /// A PRI or BRI bearer channel (clear channel, in PCM at wire bit `bit`).
    Bearer {
        /// `lines` bit in the PCM packet that carries it.
        bit: u8,
    },
    /// A PRI D-channel (an ordinary timeslot in PCM at wire bit `bit`).
    PriDchan {
        /// `lines` bit in the PCM packet.
        bit: u8,
    },
    /// A BRI D-channel (hardware HDLC through register commands; never in PCM).
    BriDchan,
}

impl ChanKind {
    /// The channel's sigcap (the reference's per-card values).
    pub fn sigcap(self) -> SigCap {
        match self {
            // Decision: the FXS unit's digital I/O channels carry the FXS port sigcap, as the
            // reference registers them as ordinary channels of the span.
            Self::FxsPort { .. } | Self::DigitalOutput(_) | Self::DigitalInput(_) => SigCap::ANALOG_FXS_PORT,
            Self::FxoPort { .. } => SigCap::ANALOG_FXO_PORT,
            Self::Bearer { .. } | Self::PriDchan { .. } => SigCap::CLEAR | SigCap::DACS | PRI_EXTRA,
            Self::BriDchan => SigCap::HARDHDLC,
        }
    }
}

/// PRI channels also accept the CAS/E&M/analog-emulation types and MTP2 (like other digital
/// drivers); BRI B-channels get the same (a superset of CLEAR | DACS).
const PRI_EXTRA: SigCap = SigCap::EM
    .union(SigCap::EM_E1)
    .union(SigCap::CAS)
    .union(SigCap::MTP2)
    .union(SigCap::HARDHDLC)
    .union(SigCap::DACS_RBS)
    .union(SigCap::ANALOG_FXS_PORT)
    .union(SigCap::ANALOG_FXO_PORT)
    .union(SigCap::FXSGS);

/// One planned XPD: address, personality, channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XpdPlan {
    pub(crate) addr: Address,
    pub(crate) kind: XpdKind,
    pub(crate) chans: Vec<(ChanKind, bool)>,
    pub(crate) subtype: u8,
}

/// Plans the XPDs of a bus from its units (see the module doc).
pub(crate) fn plan(units: &[UnitSetup]) -> Vec<XpdPlan> {
    let mut out = Vec::new();
    for u in units {
        let d = &u.descriptor;
        let unit = d.addr.unit();
        if !(1..=32).contains(&d.ports_per_chip) {
            log::warn!("unit {unit}: ports_per_chip {} out of range, no XPD", d.ports_per_chip);
            continue;
        }
        let ports = usize::from(d.numchips) * usize::from(d.ports_per_chip);
        let present = |port: usize| port < 32 && u.present & (1 << port) != 0;
        match d.card_type {
            CardType::Fxs | CardType::Fxs6 | CardType::Fxo => {
                let fxs = d.card_type != CardType::Fxo;
                let chip = if d.card_type == CardType::Fxs6 { ChipType::Type6 } else { ChipType::Type1 };
                let max = match (fxs, d.subtype) {
                    (true, 2) => 6,
                    (false, 2) => 2,
                    _ => 8,
                };
                for sub in 0..ports.div_ceil(8).min(8) {
                    let dir = d.port_dir & (1 << sub) != 0;
                    if dir != fxs {
                        log::warn!("unit {unit}/{sub}: port direction refused by the card");
                        continue;
                    }
                    let Some(addr) = Address::new(unit, sub as u8) else { continue };
                    let n = (ports - sub * 8).min(max);
                    let mut chans: Vec<(ChanKind, bool)> = (0..n)
                        .map(|p| {
                            let port = p as u8;
                            let kind =
                                if fxs { ChanKind::FxsPort { port } } else { ChanKind::FxoPort { port } };
                            (kind, present(sub * 8 + p))
                        })
                        .collect();
                    if fxs && unit == 0 && sub == 0 && d.subtype != 4 && d.numchips != 4 {
                        chans.extend((0..2).map(|i| (ChanKind::DigitalOutput(i), true)));
                        chans.extend((0..4).map(|i| (ChanKind::DigitalInput(i), true)));
                    }
                    let kind = if fxs { XpdKind::Fxs(chip) } else { XpdKind::Fxo };
                    out.push(XpdPlan { addr, kind, chans, subtype: d.subtype });
                }
            }
            CardType::Bri => {
                for sub in 0..ports.min(8) {
                    let Some(addr) = Address::new(unit, sub as u8) else { continue };
                    let s = sub as u8;
                    let chans = vec![
                        (ChanKind::Bearer { bit: 4 * s }, true),
                        (ChanKind::Bearer { bit: 4 * s + 1 }, true),
                        (ChanKind::BriDchan, true),
                    ];
                    out.push(XpdPlan {
                        addr,
                        kind: XpdKind::Bri { nt: d.port_dir & (1 << sub) != 0 },
                        chans,
                        subtype: d.subtype,
                    });
                }
            }
            CardType::Pri => {
                // Decision: J1 (rejected by the reference) and a missing protocol fall back to E1.
                let map = u.pri_protocol.and_then(|p| TimeslotMap::new(p).ok()).unwrap_or(TimeslotMap::E1);
                for sub in 0..ports.min(8) {
                    let Some(addr) = Address::new(unit, sub as u8) else { continue };
                    let chans = (0..map.channels())
                        .filter_map(|i| {
                            let bit = map.physical_bit(i)?;
                            let kind = if i == map.dchan() {
                                ChanKind::PriDchan { bit }
                            } else {
                                ChanKind::Bearer { bit }
                            };
                            Some((kind, true))
                        })
                        .collect();
                    out.push(XpdPlan { addr, kind: XpdKind::Pri(map), chans, subtype: d.subtype });
                }
            }
            CardType::Echo => {}
            other => {
                log::warn!("unit {unit}: card type {other:?} has no driver; remaining units ignored");
                break;
            }
        }
    }
    out
}

/// One span (one XPD): DAHDI's span fields (docs/reference/dahdi-span-model.md §1).
#[derive(Debug, Clone)]
pub struct Span {
    pub(crate) spanno: u32,
    pub(crate) name: String,
    pub(crate) desc: String,
    pub(crate) addr: Address,
    pub(crate) kind: XpdKind,
    pub(crate) basechan: u32,
    pub(crate) channels: u32,
    pub(crate) alarms: SpanAlarms,
    pub(crate) timing_priority: u8,
    /// Index of the first channel in the bus's channel list.
    pub(crate) first: usize,
    /// The span's own line model, beside its channels' (PRI framer, BRI port).
    pub(crate) line: SpanLine,
}

impl Span {
    /// Span number (global, from 1).
    pub fn spanno(&self) -> u32 {
        self.spanno
    }

    /// `XBUS-nn/XPD-us`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Description.
    pub fn desc(&self) -> &str {
        &self.desc
    }

    /// The XPD address.
    pub fn address(&self) -> Address {
        self.addr
    }

    /// The XPD personality.
    pub fn kind(&self) -> XpdKind {
        self.kind
    }

    /// DAHDI span type.
    pub fn spantype(&self) -> SpanType {
        match self.kind {
            XpdKind::Fxs(_) => SpanType::AnalogFxs,
            XpdKind::Fxo => SpanType::AnalogFxo,
            XpdKind::Bri { nt: true } => SpanType::BriNt,
            XpdKind::Bri { nt: false } => SpanType::BriTe,
            XpdKind::Pri(m) if m.protocol() == PriProtocol::T1 => SpanType::DigitalT1,
            XpdKind::Pri(_) => SpanType::DigitalE1,
        }
    }

    /// Default law: mu-law for analog and T1, A-law for E1 and BRI.
    pub fn deflaw(&self) -> Law {
        match self.kind {
            XpdKind::Bri { .. } => Law::Alaw,
            XpdKind::Pri(m) if m.protocol() != PriProtocol::T1 => Law::Alaw,
            _ => Law::Mulaw,
        }
    }

    /// Line configurations the span accepts (0 for analog).
    pub fn linecompat(&self) -> LineConfig {
        match self.kind {
            XpdKind::Fxs(_) | XpdKind::Fxo => LineConfig::EMPTY,
            XpdKind::Bri { .. } => LineConfig::AMI | LineConfig::CCS,
            XpdKind::Pri(m) if m.protocol() == PriProtocol::T1 => {
                LineConfig::AMI | LineConfig::B8ZS | LineConfig::D4 | LineConfig::ESF | LineConfig::CCS
            }
            XpdKind::Pri(_) => LineConfig::AMI | LineConfig::HDB3 | LineConfig::CCS | LineConfig::CRC4,
        }
    }

    /// Whether the span is digital (PRI/BRI).
    pub fn is_digital(&self) -> bool {
        matches!(self.kind, XpdKind::Pri(_) | XpdKind::Bri { .. })
    }

    /// First global channel number.
    pub fn basechan(&self) -> u32 {
        self.basechan
    }

    /// Number of channels.
    pub fn channels(&self) -> u32 {
        self.channels
    }

    /// The D-channel's `chanpos` (PRI E1 16, T1 24, BRI 3).
    pub fn dchan(&self) -> Option<u32> {
        match self.kind {
            XpdKind::Pri(m) => Some(u32::from(m.dchan()) + 1),
            XpdKind::Bri { .. } => Some(3),
            _ => None,
        }
    }

    /// The span's alarm word.
    pub fn alarms(&self) -> Alarms {
        self.alarms.alarms()
    }

    /// The timing priority (`span=` second field); 0 = never the clock source.
    pub fn timing_priority(&self) -> u8 {
        self.timing_priority
    }

    /// `cannot_provide_timing`: always `false`, every Astribank span is clocked by its bus.
    pub fn cannot_provide_timing(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(unit: u8, ty: CardType, subtype: u8, chips: u8, ppc: u8, dir: u8) -> UnitSetup {
        let mut d = UnitDescriptor::new(Address::new(unit, 0).unwrap(), ty, subtype, chips, ppc);
        d.port_dir = dir;
        UnitSetup::new(d)
    }

    #[test]
    fn layout_per_card() {
        let mut pri = unit(2, CardType::Pri, 0, 1, 2, 0);
        pri.pri_protocol = Some(PriProtocol::T1);
        let mut fxo = unit(1, CardType::Fxo, 0, 8, 1, 0);
        fxo.present = !0b100;
        let p = plan(&[
            unit(0, CardType::Fxs, 0, 8, 1, 1),
            fxo,
            pri,
            unit(3, CardType::Bri, 0, 1, 4, 0b0010),
            unit(4, CardType::Echo, 0, 1, 1, 0),
        ]);
        let summary: Vec<_> = p.iter().map(|x| (x.addr.unit(), x.addr.subunit(), x.chans.len())).collect();
        assert_eq!(
            summary,
            [(0, 0, 14), (1, 0, 8), (2, 0, 24), (2, 1, 24), (3, 0, 3), (3, 1, 3), (3, 2, 3), (3, 3, 3)]
        );
        assert_eq!(p[0].chans[8], (ChanKind::DigitalOutput(0), true));
        assert_eq!(p[0].chans[13], (ChanKind::DigitalInput(3), true));
        assert_eq!(p[1].chans[2], (ChanKind::FxoPort { port: 2 }, false), "absent chip port");
        assert_eq!(p[2].chans[23], (ChanKind::PriDchan { bit: 31 }, true));
        assert_eq!(p[2].chans[2], (ChanKind::Bearer { bit: 3 }, true));
        assert_eq!(p[2].chans[3], (ChanKind::Bearer { bit: 5 }, true), "T1 skips bit 4");
        assert_eq!(p[5].kind, XpdKind::Bri { nt: true });
        assert_eq!(p[5].chans[1], (ChanKind::Bearer { bit: 5 }, true));
        assert_eq!(p[5].chans[2], (ChanKind::BriDchan, true));
    }

    #[test]
    fn refusals() {
        // FXS with direction 0 is refused; ports_per_chip 0 creates nothing; type 7 stops.
        let p = plan(&[
            unit(0, CardType::Fxs, 0, 8, 1, 0),
            unit(1, CardType::Fxo, 0, 8, 0, 0),
            unit(2, CardType::NoModule, 0, 1, 1, 0),
            unit(3, CardType::Fxo, 0, 8, 1, 0),
        ]);
        assert!(p.is_empty());
        // Subtype 4 FXS on unit 0: no digital I/O; subtype 2 FXO: 2 channels.
        let p = plan(&[unit(0, CardType::Fxs6, 4, 8, 1, 1), unit(1, CardType::Fxo, 2, 8, 1, 0)]);
        assert_eq!(p[0].chans.len(), 8);
        assert_eq!(p[0].kind, XpdKind::Fxs(ChipType::Type6));
        assert_eq!(p[1].chans.len(), 2);
        // E1 default: 31 channels, D-channel at logical 15 = bit 16.
        let p = plan(&[unit(1, CardType::Pri, 0, 1, 1, 0)]);
        assert_eq!(p[0].chans.len(), 31);
        assert_eq!(p[0].chans[15], (ChanKind::PriDchan { bit: 16 }, true));
    }
}
