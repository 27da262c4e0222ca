//! A [`BusSetup`] as text: the layout file a TwinStar backup host keeps for each Astribank
//! so it can register the device's spans (in standby, [`XbusCore::new_standby`]) before the
//! device is on its port.
//!
//! ```text
//! # xpp bus layout: one line per unit
//! unit 0.0 type=FXS subtype=0 chips=8 ports=1 dir=0xff present=0xff
//! unit 1.0 type=PRI subtype=0 chips=1 ports=1 dir=0x00 present=0xffffffff protocol=e1
//! ```
//!
//! One `unit U.S` line per unit descriptor, in descriptor order, then `key=value` fields:
//! `type` (a card type name as the references spell it, `FXS`, `FXO`, `BRI`, `PRI`, `ECHO`,
//! `FXS6`, `NONE`, or its number 0..15), `subtype` (0..15, default 0), `chips` and `ports`
//! (ports per chip; required, 0..255), `dir` (port directions, 0..255, default 0), `present`
//! (the chip ports that answered detection, a 32-bit mask, default all), `protocol` (`e1`,
//! `t1`, `j1`; PRI units). Numbers are decimal or `0x` hex. `#` starts a comment. The first
//! unit must be 0.0 and at most 6 units may be given (as in AB_DESCRIPTION). Errors give
//! `line:column`.
//!
//! [`XbusCore::new_standby`]: super::XbusCore::new_standby

use std::fmt::Write as _;

use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{AbDescription, Address, CardType, UnitDescriptor};

use super::BusSetup;
use crate::span::UnitSetup;

/// Why a layout text was refused, and where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct LayoutTextError {
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl BusSetup {
    /// The setup as layout text ([`from_text`](Self::from_text) gives the format and reads
    /// it back). The sync state is not written (a layout is read for a device that is
    /// not here, so not ticking).
    pub fn to_text(&self) -> String {
        let mut out = String::from("# xpp bus layout: one line per unit\n");
        for u in &self.units {
            let d = &u.descriptor;
            let _ = write!(
                out,
                "unit {}.{} type={} subtype={} chips={} ports={} dir=0x{:02x} present=0x{:08x}",
                d.addr.unit(),
                d.addr.subunit(),
                card_type_text(d.card_type),
                d.subtype,
                d.numchips,
                d.ports_per_chip,
                d.port_dir,
                u.present
            );
            if let Some(p) = u.pri_protocol {
                let _ = write!(out, " protocol={}", protocol_text(p));
            }
            out.push('\n');
        }
        out
    }

    /// Reads layout text: one `unit U.S` line per unit descriptor, in descriptor order, then
    /// `key=value` fields: `type` (a card type name as the references spell it, `FXS`, `FXO`,
    /// `BRI`, `PRI`, `ECHO`, `FXS6`, `NONE`, or its number 0..15), `subtype` (0..15, default
    /// 0), `chips` and `ports` (ports per chip; required, 0..255), `dir` (port directions,
    /// 0..255, default 0), `present` (the chip ports that answered detection, a 32-bit mask,
    /// default all), `protocol` (`e1`, `t1`, `j1`; PRI units). Numbers are decimal or `0x`
    /// hex; `#` starts a comment; the first unit must be 0.0, at most 6 units:
    ///
    /// ```text
    /// # xpp bus layout: one line per unit
    /// unit 0.0 type=FXS subtype=0 chips=8 ports=1 dir=0xff present=0xff
    /// unit 1.0 type=PRI subtype=0 chips=1 ports=1 dir=0x00 present=0xffffffff protocol=e1
    /// ```
    ///
    /// Untrusted input: every refusal is an error with its `line:column`, never a panic.
    pub fn from_text(text: &str) -> Result<Self, LayoutTextError> {
        let mut units: Vec<UnitSetup> = Vec::new();
        let mut last_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            last_line = line;
            let content = raw.split('#').next().unwrap_or("");
            let mut words = Words::new(content);
            let Some((col, first)) = words.next() else { continue };
            let err = |column: usize, message: String| LayoutTextError { line, column, message };
            if first != "unit" {
                return Err(err(col, format!("expected `unit`, found `{first}`")));
            }
            let (col, addr) =
                words.next().ok_or_else(|| err(raw.len() + 1, "unit address missing".into()))?;
            let addr = parse_addr(addr)
                .ok_or_else(|| err(col, format!("bad unit address `{addr}` (U.S, 0..7 each)")))?;
            if units.iter().any(|u| u.descriptor.addr == addr) {
                return Err(err(col, format!("unit {}.{} given twice", addr.unit(), addr.subunit())));
            }
            if units.len() == xpp_proto::wire::MAX_UNITS {
                return Err(err(1, format!("more than {} units", xpp_proto::wire::MAX_UNITS)));
            }
            let mut fields = Fields::default();
            for (col, word) in words {
                fields.set(word).map_err(|m| err(col, m))?;
            }
            let end = raw.trim_end().chars().count() + 1;
            let card_type = fields.card_type.ok_or_else(|| err(end, "`type=` missing".into()))?;
            let numchips = fields.chips.ok_or_else(|| err(end, "`chips=` missing".into()))?;
            let ports = fields.ports.ok_or_else(|| err(end, "`ports=` missing".into()))?;
            let mut descriptor =
                UnitDescriptor::new(addr, card_type, fields.subtype.unwrap_or(0), numchips, ports);
            descriptor.port_dir = fields.dir.unwrap_or(0);
            units.push(UnitSetup {
                descriptor,
                present: fields.present.unwrap_or(u32::MAX),
                pri_protocol: fields.protocol,
            });
        }
        let descriptors: Vec<UnitDescriptor> = units.iter().map(|u| u.descriptor).collect();
        let at_end =
            |message: &str| LayoutTextError { line: last_line.max(1), column: 1, message: message.into() };
        let description = AbDescription::new(&descriptors).ok_or_else(|| at_end("no unit given"))?;
        description.host_check().map_err(at_end)?;
        Ok(Self::new(units))
    }
}

/// The words of a line with their 1-based columns.
struct Words<'a> {
    rest: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text.char_indices().peekable(), text }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while self.rest.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let (start, _) = *self.rest.peek()?;
        let mut end = self.text.len();
        while let Some(&(i, c)) = self.rest.peek() {
            if c.is_whitespace() {
                end = i;
                break;
            }
            self.rest.next();
        }
        let column = self.text[..start].chars().count() + 1;
        Some((column, &self.text[start..end]))
    }
}

#[derive(Default)]
struct Fields {
    card_type: Option<CardType>,
    subtype: Option<u8>,
    chips: Option<u8>,
    ports: Option<u8>,
    dir: Option<u8>,
    present: Option<u32>,
    protocol: Option<PriProtocol>,
}

impl Fields {
    fn set(&mut self, word: &str) -> Result<(), String> {
        let (key, value) =
            word.split_once('=').ok_or_else(|| format!("expected key=value, found `{word}`"))?;
        let small = |max: u8| {
            parse_number(value)
                .and_then(|v| u8::try_from(v).ok())
                .filter(|v| *v <= max)
                .ok_or_else(|| format!("`{key}`: `{value}` is not a number 0..{max}"))
        };
        let dup = |set: bool| if set { Err(format!("`{key}` given twice")) } else { Ok(()) };
        match key {
            "type" => {
                dup(self.card_type.is_some())?;
                self.card_type = Some(parse_card_type(value).ok_or_else(|| {
                    format!(
                        "`type`: `{value}` is not a card type (FXS, FXO, BRI, PRI, ECHO, FXS6, NONE or 0..15)"
                    )
                })?);
            }
            "subtype" => {
                dup(self.subtype.is_some())?;
                self.subtype = Some(small(15)?);
            }
            "chips" => {
                dup(self.chips.is_some())?;
                self.chips = Some(small(u8::MAX)?);
            }
            "ports" => {
                dup(self.ports.is_some())?;
                self.ports = Some(small(u8::MAX)?);
            }
            "dir" => {
                dup(self.dir.is_some())?;
                self.dir = Some(small(u8::MAX)?);
            }
            "present" => {
                dup(self.present.is_some())?;
                self.present = Some(
                    parse_number(value)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or_else(|| format!("`present`: `{value}` is not a 32-bit mask"))?,
                );
            }
            "protocol" => {
                dup(self.protocol.is_some())?;
                self.protocol = Some(match value {
                    "e1" | "E1" => PriProtocol::E1,
                    "t1" | "T1" => PriProtocol::T1,
                    "j1" | "J1" => PriProtocol::J1,
                    _ => return Err(format!("`protocol`: `{value}` is not e1, t1 or j1")),
                });
            }
            _ => return Err(format!("unknown field `{key}`")),
        }
        Ok(())
    }
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_addr(s: &str) -> Option<Address> {
    let (u, su) = s.split_once('.')?;
    Address::new(u.parse().ok()?, su.parse().ok()?)
}

fn parse_card_type(s: &str) -> Option<CardType> {
    if let Some(t) = CardType::ALL.iter().find(|t| t.name().eq_ignore_ascii_case(s)) {
        return Some(*t);
    }
    parse_number(s).and_then(|v| u8::try_from(v).ok()).filter(|v| *v <= 15).map(CardType::from)
}

fn card_type_text(t: CardType) -> String {
    if t.is_known() { t.name().to_owned() } else { u8::from(t).to_string() }
}

const fn protocol_text(p: PriProtocol) -> &'static str {
    match p {
        PriProtocol::T1 => "t1",
        PriProtocol::J1 => "j1",
        _ => "e1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(unit: u8, t: CardType, chips: u8) -> UnitSetup {
        UnitSetup::new(UnitDescriptor::new(Address::new(unit, 0).unwrap(), t, 0, chips, 1))
    }

    #[test]
    fn reads_the_documented_example() {
        let text = "# xpp bus layout: one line per unit\n\
                    unit 0.0 type=FXS subtype=0 chips=8 ports=1 dir=0xff present=0xff\n\
                    unit 1.0 type=PRI chips=1 ports=1 protocol=e1   # the trunk\n";
        let setup = BusSetup::from_text(text).unwrap();
        assert_eq!(setup.units.len(), 2);
        let fxs = &setup.units[0];
        assert_eq!(fxs.descriptor.card_type, CardType::Fxs);
        assert_eq!(
            (fxs.descriptor.numchips, fxs.descriptor.ports_per_chip, fxs.descriptor.port_dir),
            (8, 1, 0xff)
        );
        assert_eq!(fxs.present, 0xff);
        let pri = &setup.units[1];
        assert_eq!(pri.descriptor.addr, Address::new(1, 0).unwrap());
        assert_eq!((pri.present, pri.pri_protocol), (u32::MAX, Some(PriProtocol::E1)));
    }

    #[test]
    fn writes_what_it_reads() {
        let mut pri = unit(1, CardType::Pri, 1);
        pri.pri_protocol = Some(PriProtocol::T1);
        let mut fxo = unit(2, CardType::Fxo, 8);
        fxo.present = 0x0f;
        fxo.descriptor.subtype = 3;
        let setup = BusSetup::new(vec![unit(0, CardType::Fxs, 8), pri, fxo, unit(3, CardType::from(12), 1)]);
        let text = setup.to_text();
        assert!(
            text.contains(
                "unit 1.0 type=PRI subtype=0 chips=1 ports=1 dir=0x00 present=0xffffffff protocol=t1"
            ),
            "{text}"
        );
        assert!(text.contains("type=12 "), "{text}");
        assert_eq!(BusSetup::from_text(&text).unwrap(), setup);
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("unit 0.0 type=FXS chips=8\n", "1:26: `ports=` missing"),
            ("\n  unit 0.0 type=FXS chips=8 ports=1 colour=red\n", "2:37: unknown field `colour`"),
            ("unit 0.9 type=FXS chips=8 ports=1\n", "1:6: bad unit address `0.9` (U.S, 0..7 each)"),
            ("unit 0.0 type=FXS chips=300 ports=1\n", "1:19: `chips`: `300` is not a number 0..255"),
            ("unit 0.0 type=FXS subtype=16 chips=1 ports=1\n", "1:19: `subtype`: `16` is not a number 0..15"),
            (
                "unit 0.0 type=XYZ chips=1 ports=1\n",
                "1:10: `type`: `XYZ` is not a card type (FXS, FXO, BRI, PRI, ECHO, FXS6, NONE or 0..15)",
            ),
            ("unit 0.0 type=FXS type=FXO chips=1 ports=1\n", "1:19: `type` given twice"),
            ("unit 0.0 type=PRI chips=1 ports=1 protocol=x1\n", "1:35: `protocol`: `x1` is not e1, t1 or j1"),
            ("units 0.0\n", "1:1: expected `unit`, found `units`"),
            (
                "unit 0.0 type=FXS chips=1 ports=1\nunit 0.0 type=FXS chips=1 ports=1\n",
                "2:6: unit 0.0 given twice",
            ),
            ("unit 1.0 type=FXS chips=1 ports=1\n", "1:1: no first module (first descriptor is not 0/0)"),
            ("# nothing\n", "1:1: no unit given"),
            (
                "unit 0.0 type=FXS chips=1 ports=1 present=0x1ffffffff\n",
                "1:35: `present`: `0x1ffffffff` is not a 32-bit mask",
            ),
            ("unit 0.0 type=FXS chips=1 ports\n", "1:27: expected key=value, found `ports`"),
        ];
        for (text, want) in cases {
            assert_eq!(BusSetup::from_text(text).unwrap_err().to_string(), want, "{text:?}");
        }
        let seven: String = (0..7).map(|u| format!("unit {u}.0 type=FXS chips=1 ports=1\n")).collect();
        assert_eq!(BusSetup::from_text(&seven).unwrap_err().to_string(), "7:1: more than 6 units");
    }
}
