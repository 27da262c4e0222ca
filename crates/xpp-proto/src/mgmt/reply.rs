//! Device -> host MPP replies (§2.2, §3.1, §3.3, §4.2): decoding for the host, encoding for the
//! emulator, and an owned copy for [`super::Session`] events.

use core::fmt;

use super::display::{Ascii, DisplayFn, Hex};
use super::{
    AckStatus, CapKey, Capabilities, EepromTable, EepromType, FirmwareVersions, HEADER_LEN, Header,
    MAX_PACKET_LEN, MgmtError, Op, SerAnswer, frame, trim_nul,
};

/// Largest variable-length reply data (SER_RECV) that fits one 512-byte transfer.
pub const MAX_REPLY_DATA: usize = MAX_PACKET_LEN - HEADER_LEN;

/// STATUS_GET_REPLY status bit 0: FPGA loaded.
const STATUS_FPGA_LOADED: u8 = 0x01;

/// The body of STATUS_GET_REPLY (op 0x91, len 25).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceStatus {
    /// `i2cs_data`: bits 4..3 = EEPROM type.
    pub i2cs_data: u8,
    /// `status`: bit 0 = FPGA loaded.
    pub status: u8,
    /// USB, FPGA and EEPROM firmware version strings.
    pub versions: FirmwareVersions,
}

impl DeviceStatus {
    /// Fixed size of the body.
    pub const LEN: usize = 2 + FirmwareVersions::LEN;

    /// EEPROM type from `(i2cs_data >> 3) & 3`.
    pub const fn eeprom_type(&self) -> EepromType {
        EepromType::from_i2cs(self.i2cs_data)
    }

    /// Whether the FPGA is loaded (`status` bit 0).
    pub const fn fpga_loaded(&self) -> bool {
        self.status & STATUS_FPGA_LOADED != 0
    }
}

impl fmt::Display for DeviceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "eeprom={} fpga={} i2cs=0x{:02x} status=0x{:02x} usb_version='{}' fpga_version='{}' eeprom_version='{}'",
            self.eeprom_type(),
            if self.fpga_loaded() { "loaded" } else { "empty" },
            self.i2cs_data,
            self.status,
            Ascii(trim_nul(&self.versions.usb)),
            Ascii(trim_nul(&self.versions.fpga)),
            Ascii(trim_nul(&self.versions.eeprom)),
        )
    }
}

/// The 24-byte extra-info text of EXTRAINFO_GET_REPLY (op 0x93).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExtraInfo {
    /// The raw bytes; erased EEPROM reads as 0xFF.
    pub text: [u8; 24],
}

impl ExtraInfo {
    /// Size on the wire.
    pub const LEN: usize = 24;

    /// The text as the tools print it: trailing 0xFF bytes (erased EEPROM) removed, then cut at
    /// the first NUL.
    pub fn text(&self) -> &[u8] {
        let end = self.text.iter().rposition(|&b| b != 0xFF).map_or(0, |i| i + 1);
        trim_nul(&self.text[..end])
    }

    /// [`ExtraInfo::text`] as `str`, if it is valid UTF-8.
    pub fn text_str(&self) -> Option<&str> {
        core::str::from_utf8(self.text()).ok()
    }
}

/// The power bitmask of TWS_PWR_GET_REPLY (op 0xB6): bit i set ⇒ VBUS present on USB-i.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TwsPower(pub u8);

impl TwsPower {
    /// Whether USB port `port` (0 or 1) has power; false for ports ≥ 8.
    pub const fn has_power(self, port: u8) -> bool {
        port < 8 && self.0 & (1 << port) != 0
    }
}

/// A device -> host MPP reply, borrowing any variable-length data.
///
/// [`Reply::parse`] follows rules 3, 4 and 7 of §2.4: `len` equals the transfer length, the op
/// has bit 7 and is known, and `len` is at least the fixed size of the reply.
// Decision (§2.4 rule 7): replies longer than their fixed size are accepted and the extra bytes
// are dropped (not kept in the repr), so re-encoding gives the fixed size. Variable-size replies
// (EEPROM_BLK_RD_REPLY, SER_RECV) keep every byte; EEPROM_BLK_RD_REPLY data is not truncated
// to the requested length here (the reference host does that itself, §3.3), so callers see
// exactly what the device sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Reply<'a> {
    /// ACK (0x80, len 6).
    Ack {
        /// The status byte.
        status: AckStatus,
    },
    /// PROTO_GET_REPLY (0x81, len 7).
    ProtoGetReply {
        /// The device's dialect version (0x14).
        version: u8,
    },
    /// CAPS_GET_REPLY (0x8E, len 49).
    CapsGetReply {
        /// EEPROM table.
        table: EepromTable,
        /// Capabilities.
        caps: Capabilities,
        /// Licence key.
        key: CapKey,
    },
    /// STATUS_GET_REPLY (0x91, len 25).
    StatusGetReply(DeviceStatus),
    /// EXTRAINFO_GET_REPLY (0x93, len 29).
    ExtrainfoGetReply(ExtraInfo),
    /// EEPROM_BLK_RD_REPLY (0xA7, len 7 + M).
    EepromBlkRdReply {
        /// EEPROM offset.
        offset: u16,
        /// The bytes read, as received (the host may truncate to what it asked for).
        data: &'a [u8],
    },
    /// TWS_WD_MODE_GET_REPLY (0xB2, len 6).
    TwsWdModeGetReply {
        /// 1 = armed ("on-guard"); anything else = disarmed.
        wd_active: u8,
    },
    /// TWS_PORT_GET_REPLY (0xB5, len 6).
    TwsPortGetReply {
        /// The USB port currently connected (0 or 1).
        port: u8,
    },
    /// TWS_PWR_GET_REPLY (0xB6, len 6).
    TwsPwrGetReply(TwsPower),
    /// SER_RECV (0xB7, len 5 + N): the answer to SER_SEND (see [`SerAnswer`]).
    SerRecv {
        /// The sub-command answer bytes.
        data: &'a [u8],
    },
}

impl<'a> Reply<'a> {
    /// The reply's op.
    pub const fn op(&self) -> Op {
        match self {
            Self::Ack { .. } => Op::Ack,
            Self::ProtoGetReply { .. } => Op::ProtoGetReply,
            Self::CapsGetReply { .. } => Op::CapsGetReply,
            Self::StatusGetReply(_) => Op::StatusGetReply,
            Self::ExtrainfoGetReply(_) => Op::ExtrainfoGetReply,
            Self::EepromBlkRdReply { .. } => Op::EepromBlkRdReply,
            Self::TwsWdModeGetReply { .. } => Op::TwsWdModeGetReply,
            Self::TwsPortGetReply { .. } => Op::TwsPortGetReply,
            Self::TwsPwrGetReply(_) => Op::TwsPwrGetReply,
            Self::SerRecv { .. } => Op::SerRecv,
        }
    }

    /// The fixed (minimum) total length of a reply with op `op`, or `None` for ops that are not
    /// known replies.
    pub const fn min_len(op: Op) -> Option<usize> {
        let payload = match op {
            Op::SerRecv => 0,
            Op::Ack | Op::TwsWdModeGetReply | Op::TwsPortGetReply | Op::TwsPwrGetReply => 1,
            Op::ProtoGetReply | Op::EepromBlkRdReply => 2,
            Op::StatusGetReply => DeviceStatus::LEN,
            Op::ExtrainfoGetReply => ExtraInfo::LEN,
            Op::CapsGetReply => EepromTable::LEN + Capabilities::LEN + CapKey::LEN,
            _ => return None,
        };
        Some(HEADER_LEN + payload)
    }

    /// Total length on the wire, header included.
    pub const fn buffer_len(&self) -> usize {
        let fixed = match Self::min_len(self.op()) {
            Some(n) => n,
            None => HEADER_LEN,
        };
        match self {
            Self::EepromBlkRdReply { data, .. } | Self::SerRecv { data } => fixed + data.len(),
            _ => fixed,
        }
    }

    /// For TWS_WD_MODE_GET_REPLY: whether the watchdog is armed (`wd_active == 1`).
    pub const fn watchdog_armed(&self) -> Option<bool> {
        match self {
            Self::TwsWdModeGetReply { wd_active } => Some(*wd_active == 1),
            _ => None,
        }
    }

    /// For SER_RECV: the decoded sub-command answer.
    pub fn ser_answer(&self) -> Option<Result<SerAnswer, MgmtError>> {
        match self {
            Self::SerRecv { data } => Some(SerAnswer::parse(data)),
            _ => None,
        }
    }

    /// Writes the reply with sequence number `seq` into the start of `buf` (the emulator's
    /// side); returns the number of bytes written ([`Reply::buffer_len`]).
    pub fn emit(&self, seq: u16, buf: &mut [u8]) -> Result<usize, MgmtError> {
        let n = self.buffer_len();
        if n > MAX_PACKET_LEN {
            return Err(MgmtError::TooLong { what: self.op().name(), len: n, max: MAX_PACKET_LEN });
        }
        let available = buf.len();
        let Some(out) = buf.get_mut(..n) else {
            return Err(MgmtError::NoRoom { what: self.op().name(), needed: n, available });
        };
        Header { len: n as u16, seq, op: self.op() }.emit(out);
        let p = &mut out[HEADER_LEN..];
        match *self {
            Self::Ack { status } => p[0] = status.into(),
            Self::ProtoGetReply { version } => p.copy_from_slice(&[version, 0]),
            Self::CapsGetReply { table, caps, key } => {
                p[..16].copy_from_slice(&table.to_bytes());
                p[16..28].copy_from_slice(&caps.to_bytes());
                p[28..].copy_from_slice(&key.0);
            }
            Self::StatusGetReply(s) => {
                p[0] = s.i2cs_data;
                p[1] = s.status;
                s.versions.write(&mut p[2..]);
            }
            Self::ExtrainfoGetReply(e) => p.copy_from_slice(&e.text),
            Self::EepromBlkRdReply { offset, data } => {
                p[..2].copy_from_slice(&offset.to_le_bytes());
                p[2..].copy_from_slice(data);
            }
            Self::TwsWdModeGetReply { wd_active: v } | Self::TwsPortGetReply { port: v } => p[0] = v,
            Self::TwsPwrGetReply(TwsPower(v)) => p[0] = v,
            Self::SerRecv { data } => p.copy_from_slice(data),
        }
        Ok(n)
    }

    /// Decodes one IN transfer as a reply; returns its `seq` and the reply.
    ///
    /// Checks §2.4 rules 3 (`len` = transfer length), 4 (bit 7 set, op known) and 7 (at least
    /// the fixed size; longer accepted). Rules 5, 6 and 8 need the request: see
    /// [`super::Session`].
    pub fn parse(data: &'a [u8]) -> Result<(u16, Self), MgmtError> {
        let (h, mut r) = frame(data)?;
        if !h.op.is_reply() {
            return Err(MgmtError::NotAReply { op: h.op.into() });
        }
        let Some(min) = Self::min_len(h.op) else {
            return Err(MgmtError::UnknownOp { op: h.op.into() });
        };
        // Rule 7, named after the reply structure.
        let what = h.op.name();
        let mut fixed = r.sub(min - HEADER_LEN, what)?;
        let reply = match h.op {
            Op::Ack => Self::Ack { status: AckStatus::from(fixed.u8("ACK stat")?) },
            Op::ProtoGetReply => {
                let version = fixed.u8("PROTO_GET_REPLY proto_version")?;
                Self::ProtoGetReply { version }
            }
            Op::CapsGetReply => Self::CapsGetReply {
                table: EepromTable::read(&mut fixed)?,
                caps: Capabilities::read(&mut fixed)?,
                key: CapKey::read(&mut fixed)?,
            },
            Op::StatusGetReply => Self::StatusGetReply(DeviceStatus {
                i2cs_data: fixed.u8("STATUS_GET_REPLY i2cs_data")?,
                status: fixed.u8("STATUS_GET_REPLY status")?,
                versions: FirmwareVersions::read(&mut fixed)?,
            }),
            Op::ExtrainfoGetReply => {
                Self::ExtrainfoGetReply(ExtraInfo { text: fixed.array("EXTRAINFO_GET_REPLY text")? })
            }
            Op::EepromBlkRdReply => Self::EepromBlkRdReply {
                offset: fixed.u16_le("EEPROM_BLK_RD_REPLY offset")?,
                data: r.take_rest(),
            },
            Op::TwsWdModeGetReply => {
                Self::TwsWdModeGetReply { wd_active: fixed.u8("TWS_WD_MODE_GET_REPLY")? }
            }
            Op::TwsPortGetReply => Self::TwsPortGetReply { port: fixed.u8("TWS_PORT_GET_REPLY portnum")? },
            Op::TwsPwrGetReply => Self::TwsPwrGetReply(TwsPower(fixed.u8("TWS_PWR_GET_REPLY power")?)),
            Op::SerRecv => Self::SerRecv { data: r.take_rest() },
            other => return Err(MgmtError::UnknownOp { op: other.into() }),
        };
        Ok((h.seq, reply))
    }

    /// A one-line rendering including the sequence number: `ACK seq=1 status=OK`.
    pub fn display(&self, seq: u16) -> impl fmt::Display + '_ {
        DisplayFn(move |f| self.fmt_line(Some(seq), f))
    }

    fn fmt_line(&self, seq: Option<u16>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op().name())?;
        if let Some(seq) = seq {
            write!(f, " seq={seq}")?;
        }
        match *self {
            Self::Ack { status } => write!(f, " status={status}"),
            Self::ProtoGetReply { version } => write!(f, " version=0x{version:02x}"),
            Self::CapsGetReply { table, caps, key } => write!(f, " {table} {caps} key={key}"),
            Self::StatusGetReply(s) => write!(f, " {s}"),
            Self::ExtrainfoGetReply(e) => write!(f, " text='{}'", Ascii(e.text())),
            Self::EepromBlkRdReply { offset, data } => {
                write!(f, " offset=0x{offset:04x} len={} data={}", data.len(), Hex(data))
            }
            Self::TwsWdModeGetReply { wd_active } => write!(
                f,
                " wd_active={wd_active} ({})",
                if wd_active == 1 { "on-guard" } else { "off-guard" }
            ),
            Self::TwsPortGetReply { port } => write!(f, " port={port}"),
            Self::TwsPwrGetReply(p) => write!(
                f,
                " power=0x{:02x} usb0={} usb1={}",
                p.0,
                if p.has_power(0) { "on" } else { "off" },
                if p.has_power(1) { "on" } else { "off" }
            ),
            Self::SerRecv { data } => match SerAnswer::parse(data) {
                Ok(a) => write!(f, " {a}"),
                Err(_) => write!(f, " data={}", Hex(data)),
            },
        }
    }
}

impl fmt::Display for Reply<'_> {
    /// One line: the op name and the fields (`TWS_PORT_GET_REPLY port=0`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_line(None, f)
    }
}

/// Variable-length reply data kept inline (at most [`MAX_REPLY_DATA`] bytes, no heap).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Payload {
    len: u16,
    bytes: [u8; MAX_REPLY_DATA],
}

impl Payload {
    /// Copies `data`, or `None` if it is longer than [`MAX_REPLY_DATA`].
    pub fn new(data: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; MAX_REPLY_DATA];
        bytes.get_mut(..data.len())?.copy_from_slice(data);
        Some(Self { len: data.len() as u16, bytes })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

/// An owned copy of a [`Reply`], as [`super::Event::Completed`] carries it. Borrow it back with
/// [`OwnedReply::as_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum OwnedReply {
    /// See [`Reply::Ack`].
    Ack {
        /// The status byte.
        status: AckStatus,
    },
    /// See [`Reply::ProtoGetReply`].
    ProtoGetReply {
        /// The device's dialect version.
        version: u8,
    },
    /// See [`Reply::CapsGetReply`].
    CapsGetReply {
        /// EEPROM table.
        table: EepromTable,
        /// Capabilities.
        caps: Capabilities,
        /// Licence key.
        key: CapKey,
    },
    /// See [`Reply::StatusGetReply`].
    StatusGetReply(DeviceStatus),
    /// See [`Reply::ExtrainfoGetReply`].
    ExtrainfoGetReply(ExtraInfo),
    /// See [`Reply::EepromBlkRdReply`].
    EepromBlkRdReply {
        /// EEPROM offset.
        offset: u16,
        /// The bytes read.
        data: Payload,
    },
    /// See [`Reply::TwsWdModeGetReply`].
    TwsWdModeGetReply {
        /// 1 = armed.
        wd_active: u8,
    },
    /// See [`Reply::TwsPortGetReply`].
    TwsPortGetReply {
        /// The connected port.
        port: u8,
    },
    /// See [`Reply::TwsPwrGetReply`].
    TwsPwrGetReply(TwsPower),
    /// See [`Reply::SerRecv`].
    SerRecv {
        /// The sub-command answer bytes.
        data: Payload,
    },
}

impl OwnedReply {
    /// Borrows the reply.
    pub fn as_reply(&self) -> Reply<'_> {
        match self {
            Self::Ack { status } => Reply::Ack { status: *status },
            Self::ProtoGetReply { version } => Reply::ProtoGetReply { version: *version },
            Self::CapsGetReply { table, caps, key } => {
                Reply::CapsGetReply { table: *table, caps: *caps, key: *key }
            }
            Self::StatusGetReply(s) => Reply::StatusGetReply(*s),
            Self::ExtrainfoGetReply(e) => Reply::ExtrainfoGetReply(*e),
            Self::EepromBlkRdReply { offset, data } => Reply::EepromBlkRdReply { offset: *offset, data },
            Self::TwsWdModeGetReply { wd_active } => Reply::TwsWdModeGetReply { wd_active: *wd_active },
            Self::TwsPortGetReply { port } => Reply::TwsPortGetReply { port: *port },
            Self::TwsPwrGetReply(p) => Reply::TwsPwrGetReply(*p),
            Self::SerRecv { data } => Reply::SerRecv { data },
        }
    }
}

impl TryFrom<Reply<'_>> for OwnedReply {
    type Error = MgmtError;

    /// Copies the reply; fails only if its data exceeds [`MAX_REPLY_DATA`] (never for a parsed
    /// reply).
    fn try_from(r: Reply<'_>) -> Result<Self, MgmtError> {
        let payload = |data: &[u8]| {
            Payload::new(data).ok_or(MgmtError::TooLong {
                what: r.op().name(),
                len: r.buffer_len(),
                max: MAX_PACKET_LEN,
            })
        };
        Ok(match r {
            Reply::Ack { status } => Self::Ack { status },
            Reply::ProtoGetReply { version } => Self::ProtoGetReply { version },
            Reply::CapsGetReply { table, caps, key } => Self::CapsGetReply { table, caps, key },
            Reply::StatusGetReply(s) => Self::StatusGetReply(s),
            Reply::ExtrainfoGetReply(e) => Self::ExtrainfoGetReply(e),
            Reply::EepromBlkRdReply { offset, data } => {
                Self::EepromBlkRdReply { offset, data: payload(data)? }
            }
            Reply::TwsWdModeGetReply { wd_active } => Self::TwsWdModeGetReply { wd_active },
            Reply::TwsPortGetReply { port } => Self::TwsPortGetReply { port },
            Reply::TwsPwrGetReply(p) => Self::TwsPwrGetReply(p),
            Reply::SerRecv { data } => Self::SerRecv { data: payload(data)? },
        })
    }
}

impl fmt::Display for OwnedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_reply().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mgmt::request::tests::{CAPS, KEY, TABLE, sample_caps, sample_table};
    use crate::mgmt::{CardInfo, Packet, SerCommand};
    use proptest::prelude::*;

    static BLK: [u8; 4] = [0xC0, 0xE4, 0xE4, 0x60];
    static SER_CARD_INFO_PRI: [u8; 4] = [0x01, 0x10, 0x40, 0x01];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn status() -> DeviceStatus {
        DeviceStatus {
            i2cs_data: 0x10,
            status: 0x01,
            versions: FirmwareVersions { usb: *b"1.0\0\0\0", fpga: *b"9732\0\0", eeprom: [0; 6] },
        }
    }

    fn extrainfo() -> ExtraInfo {
        let mut text = [0xFFu8; 24];
        text[..6].copy_from_slice(b"Rack-7");
        ExtraInfo { text }
    }

    /// Every reply, written by hand from §2.2 / §3.1 / §3.3 / §4.2: (bytes, seq, reply).
    fn vectors() -> Vec<(Vec<u8>, u16, Reply<'static>)> {
        vec![
            (vec![0x06, 0x00, 0x01, 0x00, 0x80, 0x00], 1, Reply::Ack { status: AckStatus::Ok }),
            (vec![0x06, 0x00, 0x02, 0x00, 0x80, 0x0E], 2, Reply::Ack { status: AckStatus::BadKey }),
            (vec![0x07, 0x00, 0x01, 0x00, 0x81, 0x14, 0x00], 1, Reply::ProtoGetReply { version: 0x14 }),
            (
                cat(&[&[0x31, 0x00, 0x02, 0x00, 0x8E], &TABLE, &CAPS, &KEY]),
                2,
                Reply::CapsGetReply { table: sample_table(), caps: sample_caps(), key: CapKey(KEY) },
            ),
            (
                cat(&[
                    &[0x19, 0x00, 0x01, 0x00, 0x91, 0x10, 0x01],
                    &[0x31, 0x2E, 0x30, 0x00, 0x00, 0x00],
                    &[0x39, 0x37, 0x33, 0x32, 0x00, 0x00],
                    &[0x00; 6],
                ]),
                1,
                Reply::StatusGetReply(status()),
            ),
            (
                cat(&[&[0x1D, 0x00, 0x03, 0x00, 0x93, 0x52, 0x61, 0x63, 0x6B, 0x2D, 0x37], &[0xFF; 18]]),
                3,
                Reply::ExtrainfoGetReply(extrainfo()),
            ),
            (
                vec![0x0B, 0x00, 0x04, 0x00, 0xA7, 0x00, 0x01, 0xC0, 0xE4, 0xE4, 0x60],
                4,
                Reply::EepromBlkRdReply { offset: 0x0100, data: &BLK },
            ),
            (vec![0x06, 0x00, 0x05, 0x00, 0xB2, 0x01], 5, Reply::TwsWdModeGetReply { wd_active: 1 }),
            (vec![0x06, 0x00, 0x06, 0x00, 0xB5, 0x01], 6, Reply::TwsPortGetReply { port: 1 }),
            (vec![0x06, 0x00, 0x07, 0x00, 0xB6, 0x03], 7, Reply::TwsPwrGetReply(TwsPower(0x03))),
            (
                vec![0x09, 0x00, 0x08, 0x00, 0xB7, 0x01, 0x10, 0x40, 0x01],
                8,
                Reply::SerRecv { data: &SER_CARD_INFO_PRI },
            ),
        ]
    }

    #[test]
    fn test_deconstruct() {
        let v = vectors();
        let p = Packet::new_checked(&v[4].0[..]).unwrap();
        assert_eq!((p.len(), p.seq(), p.op()), (25, 1, Op::StatusGetReply));
        assert_eq!(p.payload()[..2], [0x10, 0x01]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 6];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_len(6);
        p.set_seq(1);
        p.set_op(Op::Ack);
        p.payload_mut()[0] = 0;
        assert_eq!(buf, [0x06, 0x00, 0x01, 0x00, 0x80, 0x00]);
    }

    #[test]
    fn test_parse() {
        for (bytes, seq, reply) in vectors() {
            assert_eq!(Reply::parse(&bytes), Ok((seq, reply)), "{reply}");
            assert_eq!(reply.buffer_len(), bytes.len(), "{reply}");
        }
        let Reply::StatusGetReply(s) = Reply::parse(&vectors()[4].0).unwrap().1 else { panic!() };
        assert_eq!(s.eeprom_type(), EepromType::Large);
        assert!(s.fpga_loaded());
        let Reply::ExtrainfoGetReply(e) = Reply::parse(&vectors()[5].0).unwrap().1 else { panic!() };
        assert_eq!(e.text_str(), Some("Rack-7"));
        let Reply::TwsPwrGetReply(p) = Reply::parse(&vectors()[9].0).unwrap().1 else { panic!() };
        assert!(p.has_power(0) && p.has_power(1) && !p.has_power(2) && !p.has_power(9));
        let v = vectors();
        let r = Reply::parse(&v[10].0).unwrap().1;
        assert_eq!(
            r.ser_answer(),
            Some(Ok(SerAnswer::CardInfo(CardInfo { addr: 0x10, card_type: 0x40, pic_burned: true })))
        );
        assert_eq!(Reply::parse(&vectors()[7].0).unwrap().1.watchdog_armed(), Some(true));
    }

    #[test]
    fn test_emit() {
        for (bytes, seq, reply) in vectors() {
            let mut buf = [0xAAu8; MAX_PACKET_LEN];
            assert_eq!(reply.emit(seq, &mut buf), Ok(bytes.len()), "{reply}");
            assert_eq!(&buf[..bytes.len()], &bytes[..], "{reply}");
            assert!(matches!(reply.emit(seq, &mut buf[..bytes.len() - 1]), Err(MgmtError::NoRoom { .. })));
        }
    }

    #[test]
    fn every_prefix_is_an_error() {
        for (bytes, _, reply) in vectors() {
            for n in 0..bytes.len() {
                assert!(Reply::parse(&bytes[..n]).is_err(), "{reply} prefix {n}");
                if n >= HEADER_LEN && !matches!(reply, Reply::SerRecv { .. }) {
                    // `len` patched to the prefix: below the fixed size (rule 7), except that an
                    // EEPROM_BLK_RD_REPLY may carry fewer data bytes.
                    let mut short = bytes[..n].to_vec();
                    short[..2].copy_from_slice(&(n as u16).to_le_bytes());
                    let res = Reply::parse(&short);
                    if matches!(reply, Reply::EepromBlkRdReply { .. }) && n >= 7 {
                        assert!(res.is_ok());
                    } else {
                        assert!(
                            matches!(res, Err(MgmtError::Truncated { .. })),
                            "{reply} patched {n}: {res:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn framing_rules() {
        // Rule 3: a 1-byte transfer ("Old USB firmware?") and a zero-length one.
        assert!(Reply::parse(&[0x06]).is_err());
        assert!(Reply::parse(&[]).is_err());
        assert_eq!(
            Reply::parse(&[0x07, 0x00, 0x01, 0x00, 0x80, 0x00]),
            Err(MgmtError::LengthMismatch { len: 7, actual: 6 })
        );
        // Rule 4: bit 7 and a known op.
        assert_eq!(Reply::parse(&[0x05, 0x00, 0x01, 0x00, 0x11]), Err(MgmtError::NotAReply { op: 0x11 }));
        assert_eq!(
            Reply::parse(&[0x06, 0x00, 0x01, 0x00, 0x85, 0x00]),
            Err(MgmtError::UnknownOp { op: 0x85 })
        );
        // Rule 7: protocol 1.3's 7-byte STATUS_GET_REPLY is rejected, naming the structure.
        assert_eq!(
            Reply::parse(&[0x07, 0x00, 0x01, 0x00, 0x91, 0x10, 0x01]),
            Err(MgmtError::Truncated { what: "STATUS_GET_REPLY", offset: 5, needed: 20 })
        );
        // ... and a longer reply is accepted, the extra bytes dropped.
        let mut long = vectors()[4].0.clone();
        long.extend_from_slice(&[0xEE, 0xEE]);
        long[0] = 27;
        assert_eq!(Reply::parse(&long), Ok((1, Reply::StatusGetReply(status()))));
    }

    #[test]
    fn extrainfo_text_rules() {
        assert_eq!(ExtraInfo { text: [0xFF; 24] }.text(), b"");
        let mut t = [0u8; 24];
        t[..3].copy_from_slice(b"abc");
        assert_eq!(ExtraInfo { text: t }.text(), b"abc");
        let mut t = [0xFFu8; 24];
        t[..4].copy_from_slice(&[b'a', 0xFF, b'b', 0x00]);
        assert_eq!(ExtraInfo { text: t }.text(), &[b'a', 0xFF, b'b']);
    }

    #[test]
    fn display_is_one_line() {
        let lines: Vec<String> = vectors().iter().map(|(_, seq, r)| r.display(*seq).to_string()).collect();
        assert_eq!(lines[0], "ACK seq=1 status=OK");
        assert_eq!(lines[1], "ACK seq=2 status=BAD_KEY");
        assert_eq!(
            lines[4],
            "STATUS_GET_REPLY seq=1 eeprom=LARGE fpga=loaded i2cs=0x10 status=0x01 usb_version='1.0' \
             fpga_version='9732' eeprom_version=''"
        );
        assert_eq!(lines[5], "EXTRAINFO_GET_REPLY seq=3 text='Rack-7'");
        assert_eq!(lines[9], "TWS_PWR_GET_REPLY seq=7 power=0x03 usb0=on usb1=on");
        assert_eq!(lines[10], "SER_RECV seq=8 CARD_INFO addr=0x10 type=4.0 PIC");
        assert!(lines.iter().all(|l| !l.contains('\n')));
    }

    #[test]
    fn owned_roundtrip() {
        for (_, _, reply) in vectors() {
            let owned = OwnedReply::try_from(reply).unwrap();
            assert_eq!(owned.as_reply(), reply);
            assert_eq!(owned.to_string(), reply.to_string());
        }
        let big = [0u8; MAX_REPLY_DATA + 1];
        assert!(OwnedReply::try_from(Reply::SerRecv { data: &big }).is_err());
        assert!(Reply::SerRecv { data: &big }.emit(1, &mut [0u8; 1024]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(
            kind in 0u8..10,
            data in proptest::collection::vec(any::<u8>(), 0..=MAX_REPLY_DATA),
            a16 in any::<[u8; 16]>(),
            b12 in any::<[u8; 12]>(),
            c16 in any::<[u8; 16]>(),
            v18 in any::<[u8; 18]>(),
            t24 in any::<[u8; 24]>(),
            x in any::<u16>(),
            z in any::<u8>(),
            z2 in any::<u8>(),
            seq in any::<u16>(),
        ) {
            let versions = FirmwareVersions::read(&mut crate::codec::Reader::new(&v18)).unwrap();
            let reply = match kind {
                0 => Reply::Ack { status: AckStatus::from(z) },
                1 => Reply::ProtoGetReply { version: z },
                2 => Reply::CapsGetReply {
                    table: EepromTable::from_bytes(&a16),
                    caps: Capabilities::parse(&b12).unwrap(),
                    key: CapKey(c16),
                },
                3 => Reply::StatusGetReply(DeviceStatus { i2cs_data: z, status: z2, versions }),
                4 => Reply::ExtrainfoGetReply(ExtraInfo { text: t24 }),
                5 => Reply::EepromBlkRdReply { offset: x, data: &data[..data.len().min(MAX_REPLY_DATA - 2)] },
                6 => Reply::TwsWdModeGetReply { wd_active: z },
                7 => Reply::TwsPortGetReply { port: z },
                8 => Reply::TwsPwrGetReply(TwsPower(z)),
                _ => Reply::SerRecv { data: &data },
            };
            let mut buf = [0u8; MAX_PACKET_LEN];
            let n = reply.emit(seq, &mut buf).unwrap();
            prop_assert_eq!(n, reply.buffer_len());
            prop_assert_eq!(Reply::parse(&buf[..n]), Ok((seq, reply)));
            let owned = OwnedReply::try_from(reply).unwrap();
            prop_assert_eq!(owned.as_reply(), reply);
        }

        #[test]
        fn ser_roundtrip(addr in any::<u8>(), ty in any::<u8>(), b1 in any::<bool>(), b2 in any::<bool>(), b3 in any::<bool>()) {
            let mut buf = [0u8; 4];
            let cmd = SerCommand::CardInfoGet { addr };
            let n = cmd.emit(&mut buf).unwrap();
            prop_assert_eq!(SerCommand::parse(&buf[..n]), Ok(cmd));
            let n = SerCommand::StatGet.emit(&mut buf).unwrap();
            prop_assert_eq!(SerCommand::parse(&buf[..n]), Ok(SerCommand::StatGet));
            for a in [
                SerAnswer::CardInfo(CardInfo { addr, card_type: ty, pic_burned: b1 }),
                SerAnswer::FpgaStat(crate::mgmt::FpgaStat { configuration: ty, watchdog_ready: b2, xpd_alive: b3 }),
            ] {
                let n = a.emit(&mut buf).unwrap();
                prop_assert_eq!(n, a.buffer_len());
                prop_assert_eq!(SerAnswer::parse(&buf[..n]), Ok(a));
            }
        }
    }
}
