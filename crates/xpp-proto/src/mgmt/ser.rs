//! The SER_SEND / SER_RECV pass-through sub-protocol to the FPGA (§3.3).
//!
//! The payload of SER_SEND (op 0x37) is a sub-command; the device answers with SER_RECV (op
//! 0xB7) whose payload has the same layout and length, filled in:
//!
//! ```text
//! CARD_INFO_GET  [0]=0x01 [1]=addr (unit<<4 | subunit) [2]=card_full_type (type<<4 | subtype) [3]=card_status (bit0 PIC burned)
//! STAT_GET       [0]=0x03 [1]=fpga_configuration      [2]=status (bit0 watchdog ready, bit1 XPD alive)
//! ```
//!
//! The host sends zeros in the fields the device fills in.
//!
//! Answers longer than their sub-command are accepted (extra bytes dropped); commands must have
//! exactly their size.
// Decision: §3.3 says the answer has the request's length and the host copies N bytes back, so
// a longer answer is harmless (rule 7 spirit) while a shorter one is an error; the emulator-side
// command decoder is exact, like `Request::parse`.

use core::fmt;

use super::MgmtError;
use crate::codec::Reader;
use crate::macros::wire_enum;

wire_enum! {
    /// The first byte of a SER_SEND / SER_RECV payload.
    pub enum SerOp(u8) {
        /// Read a module slot's card type and PIC state.
        CardInfoGet = 0x01 => "CARD_INFO_GET",
        /// Read the FPGA configuration and watchdog / XPD status.
        StatGet = 0x03 => "STAT_GET",
    }
}

/// `card_status` bit 0: the module's PIC is burned.
const CARD_PIC_BURNED: u8 = 0x01;
/// STAT_GET status bit 0: watchdog timer ready (0 = expired).
const STAT_WATCHDOG_READY: u8 = 0x01;
/// STAT_GET status bit 1: XPD alive.
const STAT_XPD_ALIVE: u8 = 0x02;

fn out<'b>(buf: &'b mut [u8], n: usize, what: &'static str) -> Result<&'b mut [u8], MgmtError> {
    let available = buf.len();
    buf.get_mut(..n).ok_or(MgmtError::NoRoom { what, needed: n, available })
}

fn check_op(r: &mut Reader<'_>, want: SerOp, what: &'static str) -> Result<(), MgmtError> {
    let offset = r.offset();
    if SerOp::from(r.u8(what)?) == want {
        Ok(())
    } else {
        Err(MgmtError::Invalid { what, offset, reason: "wrong ser_op byte" })
    }
}

/// A SER_SEND sub-command (host -> device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum SerCommand {
    /// CARD_INFO_GET for one module address.
    CardInfoGet {
        /// `unit << 4 | subunit`; units 0..3 are the module slots, 4 the echo canceller.
        addr: u8,
    },
    /// STAT_GET.
    StatGet,
}

impl SerCommand {
    /// Longest encoding of any sub-command.
    pub const MAX_LEN: usize = CardInfo::LEN;

    /// CARD_INFO_GET for `unit` (subunit 0), as the tools send it for units 0..4.
    pub const fn card_info(unit: u8) -> Self {
        Self::CardInfoGet { addr: unit << 4 }
    }

    /// The sub-command byte.
    pub const fn op(&self) -> SerOp {
        match self {
            Self::CardInfoGet { .. } => SerOp::CardInfoGet,
            Self::StatGet => SerOp::StatGet,
        }
    }

    /// Encoded length; the SER_RECV answer has the same length.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Self::CardInfoGet { .. } => CardInfo::LEN,
            Self::StatGet => FpgaStat::LEN,
        }
    }

    /// Writes the sub-command (device-filled fields zero); returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        let n = self.buffer_len();
        let o = out(buf, n, "SER sub-command")?;
        o.fill(0);
        o[0] = self.op().into();
        if let Self::CardInfoGet { addr } = *self {
            o[1] = addr;
        }
        Ok(n)
    }

    /// The encoding in a fixed array plus its length (`&bytes[..len]` is the SER_SEND data).
    pub fn to_bytes(&self) -> ([u8; Self::MAX_LEN], usize) {
        let mut b = [0u8; Self::MAX_LEN];
        let n = self.buffer_len();
        b[0] = self.op().into();
        if let Self::CardInfoGet { addr } = *self {
            b[1] = addr;
        }
        (b, n)
    }

    /// Decodes a SER_SEND payload (the emulator's side). The length must be exact; the
    /// device-filled fields are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        let base = super::HEADER_LEN;
        let Some(&first) = data.first() else {
            return Err(MgmtError::Truncated { what: "SER sub-command", offset: base, needed: 1 });
        };
        let cmd = match SerOp::from(first) {
            SerOp::CardInfoGet => Self::CardInfoGet { addr: CardInfo::parse(data)?.addr },
            SerOp::StatGet => {
                FpgaStat::parse(data)?;
                Self::StatGet
            }
            SerOp::Unknown(_) => {
                return Err(MgmtError::Invalid {
                    what: "SER sub-command",
                    offset: base,
                    reason: "unknown ser_op",
                });
            }
        };
        if data.len() != cmd.buffer_len() {
            return Err(MgmtError::Invalid {
                what: cmd.op().name(),
                offset: base + cmd.buffer_len().min(data.len()),
                reason: "sub-command length differs from its fixed size",
            });
        }
        Ok(cmd)
    }
}

impl fmt::Display for SerCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CardInfoGet { addr } => write!(f, "CARD_INFO_GET addr=0x{addr:02x}"),
            Self::StatGet => f.write_str("STAT_GET"),
        }
    }
}

/// The CARD_INFO_GET answer: one module slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CardInfo {
    /// `unit << 4 | subunit`, echoed from the command.
    pub addr: u8,
    /// `type << 4 | subtype` (types: 1 FXS, 2 FXO, 3 BRI, 4 PRI, 5 echo canceller, 6 FXS, 7 none).
    pub card_type: u8,
    /// `card_status` bit 0 (other bits are not kept).
    pub pic_burned: bool,
}

impl CardInfo {
    /// Size of the CARD_INFO_GET payload.
    pub const LEN: usize = 4;

    /// Module unit (high nibble of `addr`).
    pub const fn unit(&self) -> u8 {
        self.addr >> 4
    }

    /// Subunit (low nibble of `addr`).
    pub const fn subunit(&self) -> u8 {
        self.addr & 0x0F
    }

    /// Card type (high nibble of `card_type`).
    pub const fn type_code(&self) -> u8 {
        self.card_type >> 4
    }

    /// Card subtype (low nibble of `card_type`).
    pub const fn subtype(&self) -> u8 {
        self.card_type & 0x0F
    }

    /// Decodes a SER_RECV payload holding a CARD_INFO_GET answer (longer payloads accepted,
    /// extra bytes ignored).
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        let mut r = Reader::with_base(data, super::HEADER_LEN);
        let mut r = r.sub(Self::LEN, "CARD_INFO_GET")?;
        check_op(&mut r, SerOp::CardInfoGet, "CARD_INFO_GET ser_op")?;
        Ok(Self {
            addr: r.u8("CARD_INFO_GET addr")?,
            card_type: r.u8("CARD_INFO_GET card_full_type")?,
            pic_burned: r.u8("CARD_INFO_GET card_status")? & CARD_PIC_BURNED != 0,
        })
    }

    /// Writes the 4-byte answer (the device's side).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        let o = out(buf, Self::LEN, "CARD_INFO_GET")?;
        o.copy_from_slice(&[
            SerOp::CardInfoGet.into(),
            self.addr,
            self.card_type,
            if self.pic_burned { CARD_PIC_BURNED } else { 0 },
        ]);
        Ok(Self::LEN)
    }
}

impl fmt::Display for CardInfo {
    /// `addr=0x10 type=4.0 PIC` (type and subtype in hex, like `astribank_tool -Q`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "addr=0x{:02x} type={:x}.{:x} {}",
            self.addr,
            self.type_code(),
            self.subtype(),
            if self.pic_burned { "PIC" } else { "NOPIC" }
        )
    }
}

/// The STAT_GET answer: FPGA state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FpgaStat {
    /// `fpga_configuration` (meaning undocumented, §10.10).
    pub configuration: u8,
    /// Status bit 0: the watchdog timer is ready (false = expired).
    pub watchdog_ready: bool,
    /// Status bit 1: XPD alive.
    pub xpd_alive: bool,
}

impl FpgaStat {
    /// Size of the STAT_GET payload.
    pub const LEN: usize = 3;

    /// Decodes a SER_RECV payload holding a STAT_GET answer (longer payloads accepted, extra
    /// bytes ignored; status bits 2..7 are not kept).
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        let mut r = Reader::with_base(data, super::HEADER_LEN);
        let mut r = r.sub(Self::LEN, "STAT_GET")?;
        check_op(&mut r, SerOp::StatGet, "STAT_GET ser_op")?;
        let configuration = r.u8("STAT_GET fpga_configuration")?;
        let status = r.u8("STAT_GET status")?;
        Ok(Self {
            configuration,
            watchdog_ready: status & STAT_WATCHDOG_READY != 0,
            xpd_alive: status & STAT_XPD_ALIVE != 0,
        })
    }

    /// Writes the 3-byte answer (the device's side).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        let o = out(buf, Self::LEN, "STAT_GET")?;
        let status = if self.watchdog_ready { STAT_WATCHDOG_READY } else { 0 }
            | if self.xpd_alive { STAT_XPD_ALIVE } else { 0 };
        o.copy_from_slice(&[SerOp::StatGet.into(), self.configuration, status]);
        Ok(Self::LEN)
    }
}

impl fmt::Display for FpgaStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration={} watchdog={} xpd_alive={}",
            self.configuration,
            if self.watchdog_ready { "ready" } else { "expired" },
            if self.xpd_alive { "yes" } else { "no" }
        )
    }
}

/// A decoded SER_RECV payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum SerAnswer {
    /// Answer to CARD_INFO_GET.
    CardInfo(CardInfo),
    /// Answer to STAT_GET.
    FpgaStat(FpgaStat),
}

impl SerAnswer {
    /// Decodes a SER_RECV payload by its first byte.
    pub fn parse(data: &[u8]) -> Result<Self, MgmtError> {
        match data.first().map(|&b| SerOp::from(b)) {
            None => Err(MgmtError::Truncated { what: "SER answer", offset: super::HEADER_LEN, needed: 1 }),
            Some(SerOp::CardInfoGet) => CardInfo::parse(data).map(Self::CardInfo),
            Some(SerOp::StatGet) => FpgaStat::parse(data).map(Self::FpgaStat),
            Some(SerOp::Unknown(_)) => Err(MgmtError::Invalid {
                what: "SER answer",
                offset: super::HEADER_LEN,
                reason: "unknown ser_op",
            }),
        }
    }

    /// Encoded length.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Self::CardInfo(_) => CardInfo::LEN,
            Self::FpgaStat(_) => FpgaStat::LEN,
        }
    }

    /// Writes the answer; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MgmtError> {
        match self {
            Self::CardInfo(c) => c.emit(buf),
            Self::FpgaStat(s) => s.emit(buf),
        }
    }
}

impl fmt::Display for SerAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CardInfo(c) => write!(f, "CARD_INFO {c}"),
            Self::FpgaStat(s) => write!(f, "STAT {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §3.3: CARD_INFO_GET for unit 1 as the host sends it (type and status zero).
    static CARD_INFO_GET_UNIT1: [u8; 4] = [0x01, 0x10, 0x00, 0x00];
    // Answer: unit 1 holds a PRI (type 4, subtype 0) with its PIC burned.
    static CARD_INFO_PRI: [u8; 4] = [0x01, 0x10, 0x40, 0x01];
    // §3.3: STAT_GET as sent, and an answer: configuration 3, watchdog ready, XPD alive.
    static STAT_GET_CMD: [u8; 3] = [0x03, 0x00, 0x00];
    static STAT_GET_ANSWER: [u8; 3] = [0x03, 0x03, 0x03];

    #[test]
    fn test_parse() {
        assert_eq!(SerCommand::parse(&CARD_INFO_GET_UNIT1), Ok(SerCommand::CardInfoGet { addr: 0x10 }));
        assert_eq!(SerCommand::parse(&STAT_GET_CMD), Ok(SerCommand::StatGet));
        let c = CardInfo::parse(&CARD_INFO_PRI).unwrap();
        assert_eq!(c, CardInfo { addr: 0x10, card_type: 0x40, pic_burned: true });
        assert_eq!((c.unit(), c.subunit(), c.type_code(), c.subtype()), (1, 0, 4, 0));
        assert_eq!(c.to_string(), "addr=0x10 type=4.0 PIC");
        let s = FpgaStat::parse(&STAT_GET_ANSWER).unwrap();
        assert_eq!(s, FpgaStat { configuration: 3, watchdog_ready: true, xpd_alive: true });
        assert_eq!(
            SerAnswer::parse(&[0x03, 0x01, 0x00]).unwrap().to_string(),
            "STAT configuration=1 watchdog=expired xpd_alive=no"
        );
    }

    #[test]
    fn test_emit() {
        let mut b = [0xFFu8; 4];
        assert_eq!(SerCommand::card_info(1).emit(&mut b), Ok(4));
        assert_eq!(b, CARD_INFO_GET_UNIT1);
        let (arr, n) = SerCommand::card_info(1).to_bytes();
        assert_eq!(&arr[..n], &CARD_INFO_GET_UNIT1);
        let (arr, n) = SerCommand::StatGet.to_bytes();
        assert_eq!(&arr[..n], &STAT_GET_CMD);
        assert_eq!(SerCommand::StatGet.emit(&mut b), Ok(3));
        assert_eq!(&b[..3], &STAT_GET_CMD);
        assert_eq!(CardInfo { addr: 0x10, card_type: 0x40, pic_burned: true }.emit(&mut b), Ok(4));
        assert_eq!(b, CARD_INFO_PRI);
        let s = SerAnswer::FpgaStat(FpgaStat { configuration: 3, watchdog_ready: true, xpd_alive: true });
        assert_eq!(s.emit(&mut b), Ok(3));
        assert_eq!(&b[..3], &STAT_GET_ANSWER);
        assert!(SerCommand::StatGet.emit(&mut b[..2]).is_err());
    }

    #[test]
    fn rejects_bad_sub_commands() {
        assert!(SerCommand::parse(&[]).is_err());
        assert!(SerCommand::parse(&[0x02, 0, 0]).is_err());
        assert!(SerCommand::parse(&[0x03, 0, 0, 0]).is_err());
        assert!(CardInfo::parse(&STAT_GET_ANSWER).is_err());
        assert!(FpgaStat::parse(&CARD_INFO_PRI).is_err());
        for v in [&CARD_INFO_GET_UNIT1[..], &STAT_GET_CMD[..]] {
            for n in 0..v.len() {
                assert!(SerCommand::parse(&v[..n]).is_err());
                assert!(SerAnswer::parse(&v[..n]).is_err());
            }
        }
        // Longer answers are accepted, extra bytes dropped.
        assert_eq!(
            SerAnswer::parse(&[0x03, 0x03, 0x03, 0xEE]),
            Ok(SerAnswer::FpgaStat(FpgaStat::parse(&STAT_GET_ANSWER).unwrap()))
        );
    }
}
