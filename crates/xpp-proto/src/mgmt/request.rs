//! Host -> device MPP requests (§3.1, §4.2): encoding for the host, decoding for the emulator.

use core::fmt;

use super::display::{Ascii, Hex};
use super::{
    CapKey, Capabilities, DevDest, EepromTable, Expect, HEADER_LEN, Header, MAX_PACKET_LEN, MgmtError, Op,
    SerCommand, frame,
};

/// Largest DEV_SEND_SEG data that fits one 512-byte transfer (512 − 5 header − 2 offset).
pub const MAX_SEG_DATA: usize = MAX_PACKET_LEN - HEADER_LEN - 2;
/// Largest SER_SEND data that fits one 512-byte transfer.
pub const MAX_SER_DATA: usize = MAX_PACKET_LEN - HEADER_LEN;
/// Number of TwinStar USB ports; TWS_PORT_SET takes 0 or 1 (§4.2).
pub const TWS_PORTS: u8 = 2;

/// A host -> device MPP command (§3.1), borrowing any variable-length data.
///
/// Lengths on the wire (header included) are fixed except for DEV_SEND_SEG (7 + N) and
/// SER_SEND (5 + N); [`Request::emit`] refuses what would not fit a 512-byte transfer and a
/// TWS_PORT_SET port ≥ 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Request<'a> {
    /// PROTO_GET (xtalk base layer, 0x01): the host's expected dialect version.
    ProtoGet {
        /// Dialect version (MPP 0x14).
        version: u8,
    },
    /// DEV_SEND_START (0x05).
    DevSendStart {
        /// Where the data goes.
        dest: DevDest,
        /// First 6 bytes of the image's version string, NUL padded.
        version: [u8; 6],
    },
    /// DEV_SEND_SEG (0x07): one HEX data record.
    DevSendSeg {
        /// The record's 16-bit address field.
        offset: u16,
        /// The record's data bytes (at most [`MAX_SEG_DATA`]).
        data: &'a [u8],
    },
    /// DEV_SEND_END (0x09).
    DevSendEnd,
    /// RENUM (0x0B): re-enumerate; no reply.
    Renum,
    /// EEPROM_SET (0x0D).
    EepromSet {
        /// The new EEPROM table.
        table: EepromTable,
    },
    /// CAPS_GET (0x0E).
    CapsGet,
    /// CAPS_SET (0x0F).
    CapsSet {
        /// EEPROM table.
        table: EepromTable,
        /// Capabilities.
        caps: Capabilities,
        /// Licence key.
        key: CapKey,
    },
    /// STATUS_GET (0x11).
    StatusGet,
    /// EXTRAINFO_GET (0x13).
    ExtrainfoGet,
    /// EXTRAINFO_SET (0x15).
    ExtrainfoSet {
        /// 24 bytes of free text.
        text: [u8; 24],
    },
    /// EEPROM_BLK_RD (0x27).
    EepromBlkRd {
        /// EEPROM offset.
        offset: u16,
        /// Bytes wanted.
        len: u16,
    },
    /// TWS_WD_MODE_SET (0x31).
    TwsWdModeSet {
        /// Arm (true) or disarm the TwinStar watchdog.
        armed: bool,
    },
    /// TWS_WD_MODE_GET (0x32).
    TwsWdModeGet,
    /// TWS_PORT_SET (0x34): jump to a USB port; no reply.
    TwsPortSet {
        /// 0 or 1.
        port: u8,
    },
    /// TWS_PORT_GET (0x35).
    TwsPortGet,
    /// TWS_PWR_GET (0x36).
    TwsPwrGet,
    /// SER_SEND (0x37): FPGA pass-through sub-command.
    SerSend {
        /// The sub-command bytes (§3.3 table; see [`SerCommand`]), at most [`MAX_SER_DATA`].
        data: &'a [u8],
    },
    /// RESET (0x45): reset USB and FPGA firmware; no reply.
    Reset,
    /// HALF_RESET (0x47): reset FPGA firmware only; no reply.
    HalfReset,
}

impl<'a> Request<'a> {
    /// The request's op.
    pub const fn op(&self) -> Op {
        match self {
            Self::ProtoGet { .. } => Op::ProtoGet,
            Self::DevSendStart { .. } => Op::DevSendStart,
            Self::DevSendSeg { .. } => Op::DevSendSeg,
            Self::DevSendEnd => Op::DevSendEnd,
            Self::Renum => Op::Renum,
            Self::EepromSet { .. } => Op::EepromSet,
            Self::CapsGet => Op::CapsGet,
            Self::CapsSet { .. } => Op::CapsSet,
            Self::StatusGet => Op::StatusGet,
            Self::ExtrainfoGet => Op::ExtrainfoGet,
            Self::ExtrainfoSet { .. } => Op::ExtrainfoSet,
            Self::EepromBlkRd { .. } => Op::EepromBlkRd,
            Self::TwsWdModeSet { .. } => Op::TwsWdModeSet,
            Self::TwsWdModeGet => Op::TwsWdModeGet,
            Self::TwsPortSet { .. } => Op::TwsPortSet,
            Self::TwsPortGet => Op::TwsPortGet,
            Self::TwsPwrGet => Op::TwsPwrGet,
            Self::SerSend { .. } => Op::SerSend,
            Self::Reset => Op::Reset,
            Self::HalfReset => Op::HalfReset,
        }
    }

    /// What the host waits for after sending this request.
    pub const fn expect(&self) -> Expect {
        match self.op().expect() {
            Some(e) => e,
            // Every request op has an entry in `Op::expect`.
            None => Expect::Ack,
        }
    }

    /// Whether this request is fire-and-forget (RENUM, RESET, HALF_RESET, TWS_PORT_SET).
    pub const fn is_fire_and_forget(&self) -> bool {
        matches!(self.expect(), Expect::Nothing)
    }

    /// Payload length (after the header).
    const fn payload_len(&self) -> usize {
        match self {
            Self::DevSendEnd
            | Self::Renum
            | Self::CapsGet
            | Self::StatusGet
            | Self::ExtrainfoGet
            | Self::TwsWdModeGet
            | Self::TwsPortGet
            | Self::TwsPwrGet
            | Self::Reset
            | Self::HalfReset => 0,
            Self::TwsWdModeSet { .. } | Self::TwsPortSet { .. } => 1,
            Self::ProtoGet { .. } => 2,
            Self::EepromBlkRd { .. } => 4,
            Self::DevSendStart { .. } => 7,
            Self::EepromSet { .. } => EepromTable::LEN,
            Self::ExtrainfoSet { .. } => 24,
            Self::CapsSet { .. } => EepromTable::LEN + Capabilities::LEN + CapKey::LEN,
            Self::DevSendSeg { data, .. } => 2 + data.len(),
            Self::SerSend { data } => data.len(),
        }
    }

    /// Total length on the wire, header included (the `len` field).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Checks what `emit` would refuse regardless of the buffer.
    fn validate(&self) -> Result<(), MgmtError> {
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(MgmtError::TooLong { what: self.op().name(), len, max: MAX_PACKET_LEN });
        }
        if let Self::TwsPortSet { port } = *self
            && port >= TWS_PORTS
        {
            return Err(MgmtError::Invalid {
                what: "TWS_PORT_SET portnum",
                offset: HEADER_LEN,
                reason: "port must be 0 or 1",
            });
        }
        Ok(())
    }

    /// Writes the request with sequence number `seq` into the start of `buf`; returns the
    /// number of bytes written ([`Request::buffer_len`]).
    pub fn emit(&self, seq: u16, buf: &mut [u8]) -> Result<usize, MgmtError> {
        self.validate()?;
        let n = self.buffer_len();
        let available = buf.len();
        let Some(out) = buf.get_mut(..n) else {
            return Err(MgmtError::NoRoom { what: self.op().name(), needed: n, available });
        };
        Header { len: n as u16, seq, op: self.op() }.emit(out);
        let p = &mut out[HEADER_LEN..];
        match *self {
            Self::DevSendEnd
            | Self::Renum
            | Self::CapsGet
            | Self::StatusGet
            | Self::ExtrainfoGet
            | Self::TwsWdModeGet
            | Self::TwsPortGet
            | Self::TwsPwrGet
            | Self::Reset
            | Self::HalfReset => {}
            Self::ProtoGet { version } => p.copy_from_slice(&[version, 0]),
            Self::DevSendStart { dest, version } => {
                p[0] = dest.into();
                p[1..].copy_from_slice(&version);
            }
            Self::DevSendSeg { offset, data } => {
                p[..2].copy_from_slice(&offset.to_le_bytes());
                p[2..].copy_from_slice(data);
            }
            Self::EepromSet { table } => p.copy_from_slice(&table.to_bytes()),
            Self::CapsSet { table, caps, key } => {
                p[..16].copy_from_slice(&table.to_bytes());
                p[16..28].copy_from_slice(&caps.to_bytes());
                p[28..].copy_from_slice(&key.0);
            }
            Self::ExtrainfoSet { text } => p.copy_from_slice(&text),
            Self::EepromBlkRd { offset, len } => {
                p[..2].copy_from_slice(&offset.to_le_bytes());
                p[2..].copy_from_slice(&len.to_le_bytes());
            }
            Self::TwsWdModeSet { armed } => p[0] = u8::from(armed),
            Self::TwsPortSet { port } => p[0] = port,
            Self::SerSend { data } => p.copy_from_slice(data),
        }
        Ok(n)
    }

    /// Decodes one OUT transfer as a request (the emulator's side); returns its `seq` and the
    /// request.
    ///
    /// The `len` field must equal `data.len()` and fixed-size requests must have exactly their
    /// size.
    // Decision: unlike replies (rule 7), requests are decoded strictly: the reference tools send
    // packed structs of exact size, so extra bytes mean a host bug the emulator should report.
    // Decision (§10.9): an op that is not a known request yields `MgmtError::UnknownOp` (a reply
    // op `MgmtError::NotARequest`); the emulator, having read the seq with `Packet`, answers
    // those with ACK `BadCmd`, and short packets (`Truncated`) with ACK `TooShort`.
    // Decision: TWS_WD_MODE_SET with any non-zero byte decodes as armed, like the host's own
    // "non-zero ⇒ 1" rule; TWS_PORT_SET with port ≥ 2 is rejected here too, so every decoded
    // request re-encodes. PROTO_GET's reserved byte is ignored.
    pub fn parse(data: &'a [u8]) -> Result<(u16, Self), MgmtError> {
        let (h, mut r) = frame(data)?;
        if h.op.is_reply() {
            return Err(MgmtError::NotARequest { op: h.op.into() });
        }
        let what = h.op.name();
        let req = match h.op {
            Op::ProtoGet => {
                let version = r.u8("PROTO_GET proto_version")?;
                r.u8("PROTO_GET reserved")?;
                Self::ProtoGet { version }
            }
            Op::DevSendStart => Self::DevSendStart {
                dest: DevDest::from(r.u8("DEV_SEND_START dest")?),
                version: r.array("DEV_SEND_START ihex_version")?,
            },
            Op::DevSendSeg => {
                Self::DevSendSeg { offset: r.u16_le("DEV_SEND_SEG offset")?, data: r.take_rest() }
            }
            Op::DevSendEnd => Self::DevSendEnd,
            Op::Renum => Self::Renum,
            Op::EepromSet => Self::EepromSet { table: EepromTable::read(&mut r)? },
            Op::CapsGet => Self::CapsGet,
            Op::CapsSet => Self::CapsSet {
                table: EepromTable::read(&mut r)?,
                caps: Capabilities::read(&mut r)?,
                key: CapKey::read(&mut r)?,
            },
            Op::StatusGet => Self::StatusGet,
            Op::ExtrainfoGet => Self::ExtrainfoGet,
            Op::ExtrainfoSet => Self::ExtrainfoSet { text: r.array("EXTRAINFO_SET text")? },
            Op::EepromBlkRd => Self::EepromBlkRd {
                offset: r.u16_le("EEPROM_BLK_RD offset")?,
                len: r.u16_le("EEPROM_BLK_RD len")?,
            },
            Op::TwsWdModeSet => Self::TwsWdModeSet { armed: r.u8("TWS_WD_MODE_SET wd_active")? != 0 },
            Op::TwsWdModeGet => Self::TwsWdModeGet,
            Op::TwsPortSet => Self::TwsPortSet { port: r.u8("TWS_PORT_SET portnum")? },
            Op::TwsPortGet => Self::TwsPortGet,
            Op::TwsPwrGet => Self::TwsPwrGet,
            Op::SerSend => Self::SerSend { data: r.take_rest() },
            Op::Reset => Self::Reset,
            Op::HalfReset => Self::HalfReset,
            other => return Err(MgmtError::UnknownOp { op: other.into() }),
        };
        if !r.is_empty() {
            return Err(MgmtError::Invalid {
                what,
                offset: r.offset(),
                reason: "bytes after the end of a fixed-size request",
            });
        }
        req.validate()?;
        Ok((h.seq, req))
    }

    /// A one-line rendering including the sequence number: `STATUS_GET seq=1`.
    pub fn display(&self, seq: u16) -> impl fmt::Display + '_ {
        super::display::DisplayFn(move |f| self.fmt_line(Some(seq), f))
    }

    fn fmt_line(&self, seq: Option<u16>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op().name())?;
        if let Some(seq) = seq {
            write!(f, " seq={seq}")?;
        }
        match *self {
            Self::DevSendEnd
            | Self::Renum
            | Self::CapsGet
            | Self::StatusGet
            | Self::ExtrainfoGet
            | Self::TwsWdModeGet
            | Self::TwsPortGet
            | Self::TwsPwrGet
            | Self::Reset
            | Self::HalfReset => Ok(()),
            Self::ProtoGet { version } => write!(f, " version=0x{version:02x}"),
            Self::DevSendStart { dest, version } => {
                write!(f, " dest={dest} version='{}'", Ascii(super::trim_nul(&version)))
            }
            Self::DevSendSeg { offset, data } => {
                write!(f, " offset=0x{offset:04x} len={} data={}", data.len(), Hex(data))
            }
            Self::EepromSet { table } => write!(f, " {table}"),
            Self::CapsSet { table, caps, key } => write!(f, " {table} {caps} key={key}"),
            Self::ExtrainfoSet { text } => write!(f, " text='{}'", Ascii(&text)),
            Self::EepromBlkRd { offset, len } => write!(f, " offset=0x{offset:04x} len={len}"),
            Self::TwsWdModeSet { armed } => write!(f, " armed={}", u8::from(armed)),
            Self::TwsPortSet { port } => write!(f, " port={port}"),
            Self::SerSend { data } => match SerCommand::parse(data) {
                Ok(cmd) => write!(f, " {cmd}"),
                Err(_) => write!(f, " data={}", Hex(data)),
            },
        }
    }
}

impl fmt::Display for Request<'_> {
    /// One line: the op name and the fields (`EEPROM_BLK_RD offset=0x0000 len=16`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_line(None, f)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::mgmt::Packet;
    use proptest::prelude::*;

    // §7.1 sample EEPROM table: C0, E4E4, 1160, release 1.1, config 0, label "00000123".
    pub(crate) const TABLE: [u8; 16] =
        [0xC0, 0xE4, 0xE4, 0x60, 0x11, 0x01, 0x01, 0x00, 0x30, 0x30, 0x30, 0x30, 0x30, 0x31, 0x32, 0x33];
    // 8 FXS, 0 FXO, 0 BRI, 4 PRI, extra 0x01 (TwinStar), 128 echo, reserved 0, timestamp 1234567890.
    pub(crate) const CAPS: [u8; 12] =
        [0x08, 0x00, 0x00, 0x04, 0x01, 0x80, 0x00, 0x00, 0xD2, 0x02, 0x96, 0x49];
    pub(crate) const KEY: [u8; 16] =
        [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF];

    pub(crate) fn sample_table() -> EepromTable {
        EepromTable {
            source: 0xC0,
            vendor: 0xE4E4,
            product: 0x1160,
            release: 0x0101,
            config: 0,
            label: *b"00000123",
        }
    }

    pub(crate) fn sample_caps() -> Capabilities {
        Capabilities {
            ports_fxs: 8,
            ports_fxo: 0,
            ports_bri: 0,
            ports_pri: 4,
            extra_features: 1,
            ports_echo: 128,
            reserved: [0, 0],
            timestamp: 1_234_567_890,
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    static SEG_DATA: [u8; 3] = [0xDE, 0xAD, 0xBE];
    static SER_CARD_INFO_UNIT1: [u8; 4] = [0x01, 0x10, 0x00, 0x00];

    /// Every request, written by hand from §3.1 / §4.2: (bytes, seq, request).
    fn vectors() -> Vec<(Vec<u8>, u16, Request<'static>)> {
        let mut text = [0u8; 24];
        text[..5].copy_from_slice(b"hello");
        vec![
            (vec![0x07, 0x00, 0x01, 0x00, 0x01, 0x14, 0x00], 1, Request::ProtoGet { version: 0x14 }),
            (
                vec![0x0C, 0x00, 0x02, 0x00, 0x05, 0x01, 0x39, 0x37, 0x33, 0x32, 0x00, 0x00],
                2,
                Request::DevSendStart { dest: DevDest::Fpga, version: *b"9732\0\0" },
            ),
            (
                vec![0x0A, 0x00, 0x03, 0x00, 0x07, 0x10, 0x00, 0xDE, 0xAD, 0xBE],
                3,
                Request::DevSendSeg { offset: 0x0010, data: &SEG_DATA },
            ),
            (vec![0x05, 0x00, 0x04, 0x00, 0x09], 4, Request::DevSendEnd),
            (vec![0x05, 0x00, 0x05, 0x00, 0x0B], 5, Request::Renum),
            (
                cat(&[&[0x15, 0x00, 0x06, 0x00, 0x0D], &TABLE]),
                6,
                Request::EepromSet { table: sample_table() },
            ),
            (vec![0x05, 0x00, 0x07, 0x00, 0x0E], 7, Request::CapsGet),
            (
                cat(&[&[0x31, 0x00, 0x08, 0x00, 0x0F], &TABLE, &CAPS, &KEY]),
                8,
                Request::CapsSet { table: sample_table(), caps: sample_caps(), key: CapKey(KEY) },
            ),
            (vec![0x05, 0x00, 0x01, 0x00, 0x11], 1, Request::StatusGet),
            (vec![0x05, 0x00, 0x0A, 0x00, 0x13], 10, Request::ExtrainfoGet),
            (
                cat(&[&[0x1D, 0x00, 0x0B, 0x00, 0x15, b'h', b'e', b'l', b'l', b'o'], &[0u8; 19]]),
                11,
                Request::ExtrainfoSet { text },
            ),
            (
                vec![0x09, 0x00, 0x0C, 0x00, 0x27, 0x00, 0x01, 0x10, 0x00],
                12,
                Request::EepromBlkRd { offset: 0x0100, len: 16 },
            ),
            (vec![0x06, 0x00, 0x0D, 0x00, 0x31, 0x01], 13, Request::TwsWdModeSet { armed: true }),
            (vec![0x06, 0x00, 0x0D, 0x00, 0x31, 0x00], 13, Request::TwsWdModeSet { armed: false }),
            (vec![0x05, 0x00, 0x0E, 0x00, 0x32], 14, Request::TwsWdModeGet),
            (vec![0x06, 0x00, 0x0F, 0x00, 0x34, 0x01], 15, Request::TwsPortSet { port: 1 }),
            (vec![0x05, 0x00, 0x10, 0x00, 0x35], 16, Request::TwsPortGet),
            (vec![0x05, 0x00, 0x11, 0x00, 0x36], 17, Request::TwsPwrGet),
            (
                vec![0x09, 0x00, 0x12, 0x00, 0x37, 0x01, 0x10, 0x00, 0x00],
                18,
                Request::SerSend { data: &SER_CARD_INFO_UNIT1 },
            ),
            (vec![0x05, 0x00, 0x13, 0x00, 0x45], 19, Request::Reset),
            (vec![0x05, 0x00, 0x14, 0x00, 0x47], 0x1234, Request::HalfReset),
        ]
        .into_iter()
        .map(|(mut b, seq, r)| {
            // The last vector uses a two-byte seq to pin the byte order.
            if seq == 0x1234 {
                b[2..4].copy_from_slice(&[0x34, 0x12]);
            }
            (b, seq, r)
        })
        .collect()
    }

    #[test]
    fn test_deconstruct() {
        let v = [0x09u8, 0x00, 0x12, 0x00, 0x37, 0x01, 0x10, 0x00, 0x00];
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!((p.len(), p.seq(), p.op()), (9, 18, Op::SerSend));
        assert_eq!(p.payload(), &SER_CARD_INFO_UNIT1);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 6];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_len(6);
        p.set_seq(15);
        p.set_op(Op::TwsPortSet);
        p.payload_mut()[0] = 1;
        assert_eq!(buf, [0x06, 0x00, 0x0F, 0x00, 0x34, 0x01]);
    }

    #[test]
    fn test_parse() {
        for (bytes, seq, req) in vectors() {
            assert_eq!(Request::parse(&bytes), Ok((seq, req)), "{req}");
            assert_eq!(req.buffer_len(), bytes.len(), "{req}");
        }
    }

    #[test]
    fn test_emit() {
        for (bytes, seq, req) in vectors() {
            let mut buf = [0xAAu8; MAX_PACKET_LEN];
            assert_eq!(req.emit(seq, &mut buf), Ok(bytes.len()), "{req}");
            assert_eq!(&buf[..bytes.len()], &bytes[..], "{req}");
            assert!(matches!(req.emit(seq, &mut buf[..bytes.len() - 1]), Err(MgmtError::NoRoom { .. })));
        }
    }

    #[test]
    fn every_prefix_is_an_error() {
        for (bytes, _, req) in vectors() {
            for n in 0..bytes.len() {
                assert!(Request::parse(&bytes[..n]).is_err(), "{req} prefix {n}");
                // Same prefix with `len` patched to match: fixed-size requests are still short.
                if n >= HEADER_LEN && !matches!(req, Request::DevSendSeg { .. } | Request::SerSend { .. }) {
                    let mut short = bytes[..n].to_vec();
                    short[..2].copy_from_slice(&(n as u16).to_le_bytes());
                    assert!(Request::parse(&short).is_err(), "{req} patched prefix {n}");
                }
            }
        }
    }

    #[test]
    fn rejects_what_the_host_never_sends() {
        // Trailing byte after a fixed-size request.
        assert_eq!(
            Request::parse(&[0x06, 0x00, 0x01, 0x00, 0x11, 0x00]),
            Err(MgmtError::Invalid {
                what: "STATUS_GET",
                offset: 5,
                reason: "bytes after the end of a fixed-size request"
            })
        );
        // len field disagrees with the transfer (rule 3).
        assert_eq!(
            Request::parse(&[0x05, 0x00, 0x01, 0x00, 0x11, 0x00]),
            Err(MgmtError::LengthMismatch { len: 5, actual: 6 })
        );
        assert_eq!(
            Request::parse(&[0x06, 0x00, 0x01, 0x00, 0x80, 0x00]),
            Err(MgmtError::NotARequest { op: 0x80 })
        );
        assert_eq!(Request::parse(&[0x05, 0x00, 0x01, 0x00, 0x42]), Err(MgmtError::UnknownOp { op: 0x42 }));
        assert!(Request::parse(&[0x06, 0x00, 0x01, 0x00, 0x34, 0x02]).is_err());
        // Non-zero wd_active decodes as armed.
        assert_eq!(
            Request::parse(&[0x06, 0x00, 0x01, 0x00, 0x31, 0x07]),
            Ok((1, Request::TwsWdModeSet { armed: true }))
        );
    }

    #[test]
    fn emit_refuses_oversized_and_bad_port() {
        let mut buf = [0u8; 1024];
        let big = [0u8; MAX_SEG_DATA + 1];
        assert_eq!(
            Request::DevSendSeg { offset: 0, data: &big }.emit(1, &mut buf),
            Err(MgmtError::TooLong { what: "DEV_SEND_SEG", len: 513, max: 512 })
        );
        assert_eq!(Request::DevSendSeg { offset: 0, data: &big[..MAX_SEG_DATA] }.emit(1, &mut buf), Ok(512));
        assert!(Request::SerSend { data: &[0u8; MAX_SER_DATA + 1] }.emit(1, &mut buf).is_err());
        assert!(matches!(Request::TwsPortSet { port: 2 }.emit(1, &mut buf), Err(MgmtError::Invalid { .. })));
        // A 513-byte transfer is refused even with a consistent len field.
        let mut v = vec![0u8; 513];
        v[..5].copy_from_slice(&[0x01, 0x02, 0x01, 0x00, 0x07]);
        assert!(matches!(Request::parse(&v), Err(MgmtError::TooLong { .. })));
    }

    #[test]
    fn display_is_one_line() {
        let lines: Vec<String> = vectors().iter().map(|(_, seq, r)| r.display(*seq).to_string()).collect();
        assert_eq!(lines[0], "PROTO_GET seq=1 version=0x14");
        assert_eq!(lines[1], "DEV_SEND_START seq=2 dest=FPGA version='9732'");
        assert_eq!(lines[2], "DEV_SEND_SEG seq=3 offset=0x0010 len=3 data=deadbe");
        assert_eq!(lines[8], "STATUS_GET seq=1");
        assert_eq!(lines[18], "SER_SEND seq=18 CARD_INFO_GET addr=0x10");
        assert!(lines.iter().all(|l| !l.contains('\n')));
        assert_eq!(Request::TwsPortSet { port: 1 }.to_string(), "TWS_PORT_SET port=1");
    }

    /// Builds any request from generated parts (the data slice is borrowed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build<'a>(
        kind: u8,
        data: &'a [u8],
        a16: [u8; 16],
        b12: [u8; 12],
        c16: [u8; 16],
        t24: [u8; 24],
        x: u16,
        y: u16,
        z: u8,
    ) -> Request<'a> {
        let table = EepromTable::from_bytes(&a16);
        match kind % 20 {
            0 => Request::ProtoGet { version: z },
            1 => Request::DevSendStart {
                dest: DevDest::from(z),
                version: [a16[0], a16[1], a16[2], a16[3], a16[4], a16[5]],
            },
            2 => Request::DevSendSeg { offset: x, data: &data[..data.len().min(MAX_SEG_DATA)] },
            3 => Request::DevSendEnd,
            4 => Request::Renum,
            5 => Request::EepromSet { table },
            6 => Request::CapsGet,
            7 => Request::CapsSet { table, caps: Capabilities::parse(&b12).unwrap(), key: CapKey(c16) },
            8 => Request::StatusGet,
            9 => Request::ExtrainfoGet,
            10 => Request::ExtrainfoSet { text: t24 },
            11 => Request::EepromBlkRd { offset: x, len: y },
            12 => Request::TwsWdModeSet { armed: z & 1 != 0 },
            13 => Request::TwsWdModeGet,
            14 => Request::TwsPortSet { port: z % 2 },
            15 => Request::TwsPortGet,
            16 => Request::TwsPwrGet,
            17 => Request::SerSend { data },
            18 => Request::Reset,
            _ => Request::HalfReset,
        }
    }

    proptest! {
        #[test]
        fn roundtrip(
            kind in 0u8..20,
            data in proptest::collection::vec(any::<u8>(), 0..=MAX_SER_DATA),
            a16 in any::<[u8; 16]>(),
            b12 in any::<[u8; 12]>(),
            c16 in any::<[u8; 16]>(),
            t24 in any::<[u8; 24]>(),
            x in any::<u16>(),
            y in any::<u16>(),
            z in any::<u8>(),
            seq in any::<u16>(),
        ) {
            let req = build(kind, &data, a16, b12, c16, t24, x, y, z);
            let mut buf = [0u8; MAX_PACKET_LEN];
            let n = req.emit(seq, &mut buf).unwrap();
            prop_assert_eq!(n, req.buffer_len());
            prop_assert_eq!(Request::parse(&buf[..n]), Ok((seq, req)));
        }
    }
}
