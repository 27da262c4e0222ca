//! `reg_cmd`: the body of REGISTER_REQUEST (0x0F) and REGISTER_REPLY (0x10), docs/reference/xpp-protocol.md §6.3.
//!
//! One header byte, then a variant body. The header byte (packet offset 4):
//!
//! ```text
//!   bit 7          bits 6..4   bit 3     bits 2..0
//! +--------------+-----------+---------+-----------+
//! | is_multibyte |  portnum  | eoframe |   bytes   |
//! +--------------+-----------+---------+-----------+
//! ```
//!
//! * `bytes` = 5: [`RegAccess`] (direct, sub-register or I/O-expander register), packet length 10.
//! * `bytes` = 7: [`RamAccess`] (type-6 SLIC RAM), packet length 12.
//! * `is_multibyte` = 1: [`Multibyte`], `bytes` = 0..5 raw data bytes (BRI D-channel), packet
//!   length 10. `bytes` = 0 is the "magic" D-channel delivery on/off command.
//!
//! REG flag byte (packet offset 5): bits 0-2 reserved, bit 3 `do_expander`, bit 4 `do_datah`,
//! bit 5 `do_subreg`, bit 6 `read_request`, bit 7 `all_ports_broadcast`. The RAM flag byte has
//! the same bits 4-7 (bits 0-3 reserved).

use super::WireError;

/// Packet length of a REG or multibyte register command (header + 6 bytes).
pub const REG_PACKET_LEN: usize = 10;
/// Packet length of a RAM register command (header + 8 bytes).
pub const RAM_PACKET_LEN: usize = 12;
/// Most data bytes one multibyte command carries ("FPGA firmware limitation").
pub const MULTIBYTE_MAX: usize = 5;

const BYTES_MASK: u8 = 0x07;
const EOFRAME: u8 = 0x08;
const PORT_SHIFT: u8 = 4;
const PORT_MASK: u8 = 0x07;
const MULTIBYTE: u8 = 0x80;

const BYTES_REG: u8 = 5;
const BYTES_RAM: u8 = 7;

const DO_EXPANDER: u8 = 0x08;
const DO_DATAH: u8 = 0x10;
const DO_SUBREG: u8 = 0x20;
const READ_REQUEST: u8 = 0x40;
const BROADCAST: u8 = 0x80;

/// Offset of the reg_cmd inside the packet (right after the header).
const BASE: usize = super::HEADER_LEN;

/// A register command, as carried by REGISTER_REQUEST and REGISTER_REPLY.
#[doc(alias = "reg_cmd")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum RegCmd {
    /// `bytes` = 5: a chip register (direct, sub-register or expander).
    Reg(RegAccess),
    /// `bytes` = 7: a 16-bit RAM address and a 32-bit value.
    Ram(RamAccess),
    /// `is_multibyte` = 1: up to 5 raw data bytes.
    Multibyte(Multibyte),
}

/// The REG variant: one chip register, optionally through a sub-register or the I/O expander.
///
/// Every wire field is kept as received, including the bytes whose flag says they are unused
/// (`subreg` without `do_subreg`, `data_high` without `do_datah`), so that a reply can be echoed
/// exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegAccess {
    /// Chip port 0..7 (`portnum`; 0 when broadcasting).
    #[doc(alias = "portnum")]
    pub port: u8,
    /// `all_ports_broadcast`: apply to all ports of the unit.
    #[doc(alias = "all_ports_broadcast")]
    pub broadcast: bool,
    /// `read_request`: 1 = read, 0 = write.
    #[doc(alias = "read_request")]
    pub read: bool,
    /// `do_expander`: access the type-6 FXS I/O expander instead of a SLIC.
    #[doc(alias = "do_expander")]
    pub expander: bool,
    /// `do_subreg`: the `subreg` byte is valid (indirect access).
    pub do_subreg: bool,
    /// `do_datah`: the `data_high` byte is valid.
    pub do_datah: bool,
    /// Register number.
    #[doc(alias = "regnum")]
    pub reg: u8,
    /// Sub-register / indirect register number.
    pub subreg: u8,
    /// Data to write, or the value read (in a reply).
    pub data_low: u8,
    /// Second data byte.
    pub data_high: u8,
}

impl RegAccess {
    /// A direct write (`WD`): `reg := data` on `port`.
    pub const fn write(port: u8, reg: u8, data: u8) -> Self {
        Self {
            port,
            broadcast: false,
            read: false,
            expander: false,
            do_subreg: false,
            do_datah: false,
            reg,
            subreg: 0,
            data_low: data,
            data_high: 0,
        }
    }

    /// A direct read (`RD`) of `reg` on `port`; the data bytes are sent as 0.
    pub const fn read(port: u8, reg: u8) -> Self {
        let mut r = Self::write(port, reg, 0);
        r.read = true;
        r
    }

    /// A sub-register write (`WS`): `reg`/`subreg` := `data_low`, `data_high` (with `do_datah`).
    pub const fn write_sub(port: u8, reg: u8, subreg: u8, data_low: u8, data_high: u8) -> Self {
        let mut r = Self::write(port, reg, data_low);
        r.do_subreg = true;
        r.subreg = subreg;
        r.do_datah = true;
        r.data_high = data_high;
        r
    }

    /// A sub-register read (`RS`).
    pub const fn read_sub(port: u8, reg: u8, subreg: u8) -> Self {
        let mut r = Self::read(port, reg);
        r.do_subreg = true;
        r.subreg = subreg;
        r
    }

    /// The same command sent to every port (portnum 0 with `all_ports_broadcast`).
    #[must_use]
    pub const fn broadcast(mut self) -> Self {
        self.port = 0;
        self.broadcast = true;
        self
    }

    /// The same command addressed to the I/O expander (`WX` / `RX`).
    #[must_use]
    pub const fn via_expander(mut self) -> Self {
        self.expander = true;
        self
    }

    fn flags(&self) -> u8 {
        flag(self.expander, DO_EXPANDER)
            | flag(self.do_datah, DO_DATAH)
            | flag(self.do_subreg, DO_SUBREG)
            | flag(self.read, READ_REQUEST)
            | flag(self.broadcast, BROADCAST)
    }
}

/// The RAM variant: a 16-bit address and a 32-bit value (type-6 FXS SLIC RAM).
///
/// The host always sets `do_datah` and `do_subreg` in the flag byte; they are not kept here and
/// emitting always sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RamAccess {
    /// Chip port 0..7 (`portnum`).
    #[doc(alias = "portnum")]
    pub port: u8,
    /// `all_ports_broadcast`.
    pub broadcast: bool,
    /// `read_request`: 1 = read.
    pub read: bool,
    /// RAM address (`addr_low` | `addr_high` << 8).
    pub addr: u16,
    /// The 32-bit value (little-endian on the wire). In read requests its content is
    /// unspecified (§13.14); it is kept as received.
    pub data: u32,
}

impl RamAccess {
    /// A RAM write (`WR`).
    pub const fn write(port: u8, addr: u16, data: u32) -> Self {
        Self { port, broadcast: false, read: false, addr, data }
    }

    /// A RAM read (`RR`); data sent as 0.
    pub const fn read(port: u8, addr: u16) -> Self {
        Self { port, broadcast: false, read: true, addr, data: 0 }
    }
}

/// The multibyte variant: 0..5 raw bytes (a BRI D-channel chunk), or with 0 bytes the "magic"
/// D-channel delivery command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Multibyte {
    /// Chip port 0..7 (`portnum`; the BRI subunit).
    #[doc(alias = "portnum")]
    pub port: u8,
    /// `eoframe`: last chunk of a D-channel frame (or the magic command's flag, §9.4/§13.10).
    pub eoframe: bool,
    data: [u8; MULTIBYTE_MAX],
    len: u8,
}

#[cfg(feature = "serde")]
impl serde::Serialize for Multibyte {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Multibyte", 3)?;
        st.serialize_field("port", &self.port)?;
        st.serialize_field("eoframe", &self.eoframe)?;
        st.serialize_field("data", &super::serde_hex::Hex(self.data()))?;
        st.end()
    }
}

impl Multibyte {
    /// A chunk of `data` (at most 5 bytes) for `port`; `None` if `data` is longer.
    pub fn new(port: u8, eoframe: bool, data: &[u8]) -> Option<Self> {
        if data.len() > MULTIBYTE_MAX {
            return None;
        }
        let mut buf = [0u8; MULTIBYTE_MAX];
        buf[..data.len()].copy_from_slice(data);
        Some(Self { port, eoframe, data: buf, len: data.len() as u8 })
    }

    // Decision: §13.10 leaves open which eoframe value starts D-channel delivery; this layer
    // exposes only the bit and the chipregs names (`WM` = 0, `Wm` = 1); the BRI line model
    // decides. Unused body bytes (uninitialised in the reference host, §13.14) are sent as 0.
    /// The magic command (bytes = 0): `WM` (`eoframe` = false) or `Wm` (`eoframe` = true).
    /// Which of the two starts D-channel delivery is an open question (§13.10).
    pub const fn magic(port: u8, eoframe: bool) -> Self {
        Self { port, eoframe, data: [0; MULTIBYTE_MAX], len: 0 }
    }

    /// The data bytes (`bytes` of them).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// Whether this is the magic command (no data bytes).
    pub const fn is_magic(&self) -> bool {
        self.len == 0
    }
}

const fn flag(v: bool, bit: u8) -> u8 {
    if v { bit } else { 0 }
}

fn check_port(port: u8) -> Result<(), WireError> {
    if port > PORT_MASK {
        return Err(WireError::Invalid { what: "reg_cmd portnum", offset: BASE, reason: "above 7" });
    }
    Ok(())
}

impl RegCmd {
    /// The total packet length this command is emitted with (10 or 12).
    pub const fn packet_len(&self) -> usize {
        match self {
            Self::Ram(_) => RAM_PACKET_LEN,
            Self::Reg(_) | Self::Multibyte(_) => REG_PACKET_LEN,
        }
    }

    /// The chip port the command addresses.
    pub const fn port(&self) -> u8 {
        match self {
            Self::Reg(r) => r.port,
            Self::Ram(r) => r.port,
            Self::Multibyte(m) => m.port,
        }
    }

    /// Parses a `reg_cmd` from a packet payload (the bytes after the 4-byte header).
    ///
    /// `exact` selects the length policy: for a REGISTER_REQUEST the payload must be exactly as
    /// long as the variant (packet length 10 or 12); for a REGISTER_REPLY it must be at least as
    /// long, and extra bytes are ignored. Error offsets are relative to the packet start.
    pub fn parse(payload: &[u8], exact: bool) -> Result<Self, WireError> {
        let Some(&head) = payload.first() else {
            return Err(WireError::Truncated { what: "reg_cmd header", offset: BASE, needed: 1 });
        };
        let bytes = head & BYTES_MASK;
        let port = (head >> PORT_SHIFT) & PORT_MASK;
        let multibyte = head & MULTIBYTE != 0;
        let (needed, what) = if multibyte {
            if usize::from(bytes) > MULTIBYTE_MAX {
                return Err(WireError::Invalid {
                    what: "reg_cmd bytes",
                    offset: BASE,
                    reason: "multibyte count above 5",
                });
            }
            // Decision: a multibyte command occupies a 10-byte packet whatever its count
            // (§6.3). A request must be exactly 10 bytes; a reply only needs to hold its `bytes`
            // data bytes (the host reads no further).
            let needed = if exact { REG_PACKET_LEN - BASE } else { 1 + usize::from(bytes) };
            (needed, "reg_cmd multibyte body")
        } else if bytes == BYTES_REG {
            (REG_PACKET_LEN - BASE, "reg_cmd REG body")
        } else if bytes == BYTES_RAM {
            (RAM_PACKET_LEN - BASE, "reg_cmd RAM body")
        } else {
            // §10: verify reg_cmd.bytes is 5 or 7 unless multibyte.
            return Err(WireError::Invalid {
                what: "reg_cmd bytes",
                offset: BASE,
                reason: "not 5 (REG) or 7 (RAM)",
            });
        };
        if payload.len() < needed {
            return Err(WireError::Truncated { what, offset: BASE, needed });
        }
        if exact && payload.len() != needed {
            return Err(WireError::BadLength {
                offset: 0,
                len: (BASE + payload.len()) as u16,
                reason: "REGISTER_REQUEST must be 10 bytes (REG, multibyte) or 12 (RAM)",
            });
        }
        // Decision: reserved bits (eoframe outside multibyte, flag bits 0-2 of REG and 0-3 of
        // RAM) are ignored on parse and written as 0 on emit.
        let body = &payload[1..];
        Ok(if multibyte {
            let mut data = [0u8; MULTIBYTE_MAX];
            let n = usize::from(bytes);
            data[..n].copy_from_slice(&body[..n]);
            Self::Multibyte(Multibyte { port, eoframe: head & EOFRAME != 0, data, len: bytes })
        } else if bytes == BYTES_REG {
            let f = body[0];
            Self::Reg(RegAccess {
                port,
                broadcast: f & BROADCAST != 0,
                read: f & READ_REQUEST != 0,
                expander: f & DO_EXPANDER != 0,
                do_subreg: f & DO_SUBREG != 0,
                do_datah: f & DO_DATAH != 0,
                reg: body[1],
                subreg: body[2],
                data_low: body[3],
                data_high: body[4],
            })
        } else {
            let f = body[0];
            // Decision: do_datah/do_subreg of a RAM command are not checked (the host always
            // sets them; a device reply might not echo them).
            Self::Ram(RamAccess {
                port,
                broadcast: f & BROADCAST != 0,
                read: f & READ_REQUEST != 0,
                addr: u16::from_le_bytes([body[1], body[2]]),
                data: u32::from_le_bytes([body[3], body[4], body[5], body[6]]),
            })
        })
    }

    /// Checks that every field fits its wire width.
    pub fn check(&self) -> Result<(), WireError> {
        check_port(self.port())?;
        if let Self::Multibyte(m) = self
            && usize::from(m.len) > MULTIBYTE_MAX
        {
            return Err(WireError::Invalid { what: "reg_cmd bytes", offset: BASE, reason: "above 5" });
        }
        Ok(())
    }

    /// Writes the `reg_cmd` into `payload`, which must be exactly `packet_len() - 4` bytes.
    /// Reserved bits are written as 0; unused multibyte body bytes as 0.
    pub(crate) fn emit(&self, payload: &mut [u8]) -> Result<(), WireError> {
        self.check()?;
        let need = self.packet_len() - BASE;
        if payload.len() != need {
            return Err(WireError::NoRoom { what: "reg_cmd", needed: need, available: payload.len() });
        }
        match self {
            Self::Reg(r) => {
                payload[0] = BYTES_REG | (r.port << PORT_SHIFT);
                payload[1] = r.flags();
                payload[2] = r.reg;
                payload[3] = r.subreg;
                payload[4] = r.data_low;
                payload[5] = r.data_high;
            }
            Self::Ram(r) => {
                payload[0] = BYTES_RAM | (r.port << PORT_SHIFT);
                payload[1] = DO_DATAH | DO_SUBREG | flag(r.read, READ_REQUEST) | flag(r.broadcast, BROADCAST);
                payload[2..4].copy_from_slice(&r.addr.to_le_bytes());
                payload[4..8].copy_from_slice(&r.data.to_le_bytes());
            }
            Self::Multibyte(m) => {
                payload[0] = MULTIBYTE | (m.port << PORT_SHIFT) | flag(m.eoframe, EOFRAME) | m.len;
                payload[1..].copy_from_slice(&m.data);
            }
        }
        Ok(())
    }

    /// Writes the command in the chipregs grammar (§8.4): `port=3 WD reg=0x40 data=0x01`.
    /// `show_read_data` prints the data bytes of reads too (they are the result in a reply).
    pub(crate) fn fmt_line(
        &self,
        f: &mut core::fmt::Formatter<'_>,
        show_read_data: bool,
    ) -> core::fmt::Result {
        match self {
            Self::Reg(r) => {
                write_port(f, r.port, r.broadcast)?;
                let kind = if r.expander {
                    'X'
                } else if r.do_subreg {
                    'S'
                } else {
                    'D'
                };
                write!(f, " {}{kind} reg=0x{:02x}", if r.read { 'R' } else { 'W' }, r.reg)?;
                if r.do_subreg {
                    write!(f, " sub=0x{:02x}", r.subreg)?;
                }
                if !r.read || show_read_data {
                    write!(f, " data=0x{:02x}", r.data_low)?;
                    if r.do_datah {
                        write!(f, " datah=0x{:02x}", r.data_high)?;
                    }
                }
                Ok(())
            }
            Self::Ram(r) => {
                write_port(f, r.port, r.broadcast)?;
                write!(f, " {}R addr=0x{:04x}", if r.read { 'R' } else { 'W' }, r.addr)?;
                if !r.read || show_read_data {
                    write!(f, " data=0x{:08x}", r.data)?;
                }
                Ok(())
            }
            Self::Multibyte(m) if m.is_magic() => {
                write_port(f, m.port, false)?;
                f.write_str(if m.eoframe { " Wm" } else { " WM" })
            }
            Self::Multibyte(m) => {
                write_port(f, m.port, false)?;
                f.write_str(" MB")?;
                if m.eoframe {
                    f.write_str(" eoframe")?;
                }
                f.write_str(" data=[")?;
                for (i, b) in m.data().iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

fn write_port(f: &mut core::fmt::Formatter<'_>, port: u8, broadcast: bool) -> core::fmt::Result {
    if broadcast && port == 0 {
        f.write_str("port=*")
    } else if broadcast {
        write!(f, "port=*{port}")
    } else {
        write!(f, "port={port}")
    }
}
