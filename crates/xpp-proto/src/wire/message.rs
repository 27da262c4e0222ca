//! Typed messages for every opcode of docs/reference/xpp-protocol.md §5.1 and §5.2, and [`Repr`], one packet.
//!
//! Length policy (§10, "robust decoder"), per opcode:
//!
//! | Opcode | Dir | Accepted `packet_len` |
//! |---|---|---|
//! | AB_REQUEST 0x07 | H->D | exactly 6 |
//! | AB_DESCRIPTION 0x08 | D->H | 8 + 8*N, N = 1..6, plus up to 7 ignored bytes (host divides) |
//! | REGISTER_REQUEST 0x0F | H->D | exactly 10 (REG, multibyte) or 12 (RAM) |
//! | REGISTER_REPLY 0x10 | D->H | at least 10 (REG) / 12 (RAM) / 5 + count (multibyte); rest ignored |
//! | PCM_WRITE 0x11, PCM_READ 0x12 | both | exactly 8 + 8*popcount(lines) |
//! | SYNC_SOURCE 0x19 | H->D | exactly 6 |
//! | SYNC_REPLY 0x1A | D->H | at least 6; rest ignored |
//! | ERROR_CODE 0x22 | D->H | at least 6; the rest is the copied packet |
//! | XBUS_RESET 0x23 | H->D | exactly 5 |
//! | NULL_REPLY 0xFE | D->H | at least 4; rest ignored |
//! | SIG_CHANGED 0x06 | D->H | at least 12; rest ignored |
//! | SET_LED 0x33 | H->D | exactly 5 |
//! | ECHO SET 0x39 | H->D | exactly 132 |
//! | ECHO SET_REPLY 0x3A | D->H | at least 6; rest ignored |
//! | anything else | | any (kept as [`Message::Other`]) |
//!
//! Decision: messages the reference host sends (H->D) are checked strictly — the host always
//! emits exactly these lengths, so anything else reaching the emulator is a bug worth flagging.
//! Messages the host receives (D->H) but whose length it does not check (§10: handlers read
//! fixed offsets) must be long enough for their fields; trailing bytes are ignored, as the host
//! ignores them. PCM lengths are validated by the host and are exact both ways.
//!
//! Decision: the `is_pcm` header flag must agree with the opcode: set on PCM_READ/PCM_WRITE,
//! clear on every other typed opcode (the host would treat either mismatch as a frame-class
//! error, §3/§10). For [`Message::Other`] the flag is kept as received. `pcmslot`, header byte
//! 1 bit 2 and address bit 3 are ignored on parse and written as 0 (§13.4).

use core::fmt;

use super::pcm::fmt_bits;
use super::{Address, HEADER_LEN, Header, Opcode, Packet, Pcm, RegCmd, WireError};
use crate::macros::wire_enum;

/// `XPP_PROTOCOL_VERSION`: the revision in AB_REQUEST and AB_DESCRIPTION.
pub const PROTOCOL_REVISION: u8 = 30;
/// Most unit descriptors in one AB_DESCRIPTION.
pub const MAX_UNITS: usize = 6;
/// Size of one unit descriptor.
pub const UNIT_DESCRIPTOR_LEN: usize = 8;
/// Entries in the ECHO SET timeslot map.
pub const ECHO_MAP_LEN: usize = 128;

/// AB_REQUEST (0x07, H->D): ask the device to describe itself (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AbRequest {
    /// Protocol revision, [`PROTOCOL_REVISION`].
    pub rev: u8,
    /// Reserved byte (host sends 0; kept as received).
    pub reserved: u8,
}

impl Default for AbRequest {
    fn default() -> Self {
        Self { rev: PROTOCOL_REVISION, reserved: 0 }
    }
}

wire_enum! {
    /// Hardware type nibble of a unit descriptor (§6.2).
    pub enum CardType(u8) {
        /// FXS, SLIC with direct and indirect registers ("type 1").
        Fxs = 1 => "FXS",
        /// FXO (DAA).
        Fxo = 2 => "FXO",
        /// BRI S/T ports.
        Bri = 3 => "BRI",
        /// PRI E1/T1 span(s).
        Pri = 4 => "PRI",
        /// Echo canceller.
        Echo = 5 => "ECHO",
        /// FXS, newer SLIC with RAM access and I/O expander ("type 6").
        Fxs6 = 6 => "FXS6",
        /// No module in this position.
        NoModule = 7 => "NONE",
    }
}

/// One 8-byte unit descriptor of AB_DESCRIPTION (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct UnitDescriptor {
    /// The unit (and subunit) the descriptor is about. Decision: the address byte's reserved
    /// bits 3 and 7 are ignored on parse and written as 0.
    pub addr: Address,
    /// Hardware sub-variant (byte 1 bits 0-3).
    pub subtype: u8,
    /// Hardware type (byte 1 bits 4-7).
    #[doc(alias = "type")]
    pub card_type: CardType,
    /// Number of chips.
    pub numchips: u8,
    /// Ports per chip.
    pub ports_per_chip: u8,
    /// Bit i = direction of subunit i: 1 toward phone (FXS, BRI NT), 0 toward PSTN.
    pub port_dir: u8,
    /// Reserved bytes 5-6, kept as received.
    pub reserved: [u8; 2],
    /// `ec_addr`: raw address byte of an echo canceller (unused by the driver), kept as received.
    pub ec_addr: u8,
}

impl UnitDescriptor {
    /// A descriptor with reserved bytes and `ec_addr` zero.
    pub const fn new(
        addr: Address,
        card_type: CardType,
        subtype: u8,
        numchips: u8,
        ports_per_chip: u8,
    ) -> Self {
        Self { addr, subtype, card_type, numchips, ports_per_chip, port_dir: 0, reserved: [0; 2], ec_addr: 0 }
    }

    fn parse(b: &[u8; UNIT_DESCRIPTOR_LEN]) -> Self {
        // Decision: address bits 3 and 7 are dropped (written back as 0); reserved bytes 5-6
        // and `ec_addr` (§13.4) are kept raw and emitted as given, so dumps show them and an
        // emulator can reproduce a captured descriptor byte for byte.
        Self {
            addr: Address::from_byte(b[0]),
            subtype: b[1] & 0x0F,
            card_type: CardType::from(b[1] >> 4),
            numchips: b[2],
            ports_per_chip: b[3],
            port_dir: b[4],
            reserved: [b[5], b[6]],
            ec_addr: b[7],
        }
    }

    fn check(&self) -> Result<(), WireError> {
        if self.subtype > 0x0F || u8::from(self.card_type) > 0x0F {
            return Err(WireError::Invalid {
                what: "unit descriptor",
                offset: 0,
                reason: "type or subtype above 15",
            });
        }
        Ok(())
    }

    fn emit(&self, b: &mut [u8]) {
        b[0] = self.addr.to_byte();
        b[1] = (u8::from(self.card_type) << 4) | self.subtype;
        b[2] = self.numchips;
        b[3] = self.ports_per_chip;
        b[4] = self.port_dir;
        b[5..7].copy_from_slice(&self.reserved);
        b[7] = self.ec_addr;
    }
}

/// AB_DESCRIPTION (0x08, D->H): the device's 1..6 unit descriptors (§6.2).
///
/// Stored in a fixed array (no heap). The decoder checks only the wire structure (1..6
/// descriptors); the host's semantic checks (rev 30, first descriptor at 0/0, bus state) belong
/// to the session layer, see [`AbDescription::host_check`].
///
/// Unused array entries are always a fixed filler, so the derived equality compares exactly
/// the descriptors in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbDescription {
    /// Protocol revision ([`PROTOCOL_REVISION`]).
    pub rev: u8,
    /// Reserved bytes, kept as received.
    pub reserved: [u8; 3],
    units: [UnitDescriptor; MAX_UNITS],
    count: u8,
}

const EMPTY_UNIT: UnitDescriptor = UnitDescriptor::new(Address::ZERO, CardType::NoModule, 0, 0, 0);

impl AbDescription {
    /// A description of `units` (1..=6 of them), rev 30, reserved 0.
    pub fn new(units: &[UnitDescriptor]) -> Option<Self> {
        if units.is_empty() || units.len() > MAX_UNITS {
            return None;
        }
        let mut arr = [EMPTY_UNIT; MAX_UNITS];
        arr[..units.len()].copy_from_slice(units);
        Some(Self { rev: PROTOCOL_REVISION, reserved: [0; 3], units: arr, count: units.len() as u8 })
    }

    /// The unit descriptors, in wire order.
    pub fn units(&self) -> &[UnitDescriptor] {
        &self.units[..usize::from(self.count)]
    }

    /// The reference host's acceptance rules beyond the wire structure (§6.2 items 1 and 3):
    /// rev must be 30 and the first descriptor must be unit 0, subunit 0.
    pub fn host_check(&self) -> Result<(), &'static str> {
        if self.rev != PROTOCOL_REVISION {
            return Err("revision is not 30");
        }
        if self.units().first().map(|u| u.addr) != Some(Address::ZERO) {
            return Err("no first module (first descriptor is not 0/0)");
        }
        Ok(())
    }

    fn payload_len(&self) -> usize {
        4 + UNIT_DESCRIPTOR_LEN * usize::from(self.count)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for AbDescription {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("AbDescription", 3)?;
        st.serialize_field("rev", &self.rev)?;
        st.serialize_field("reserved", &self.reserved)?;
        st.serialize_field("units", self.units())?;
        st.end()
    }
}

wire_enum! {
    /// SYNC_SOURCE / SYNC_REPLY `sync_mode` (§6.5).
    pub enum SyncMode(u8) {
        /// The device must not tick; the host runs its own timer.
        None = 0x00 => "NONE",
        /// The device is sync master, ticking on its own clock.
        Ab = 0x01 => "AB",
        /// The device ticks, trimmed by the host's drift value.
        Pll = 0x03 => "PLL",
        /// Ask the current mode.
        Query = 0x80 => "QUERY",
    }
}

/// SYNC_SOURCE (0x19, H->D) / SYNC_REPLY (0x1A, D->H) payload (§6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SyncState {
    /// Timing mode; unknown values are kept (the host logs and ignores them).
    pub mode: SyncMode,
    /// PLL clock adjustment (host sends -20..=20).
    pub drift: i8,
}

/// ERROR_CODE (0x22, D->H): the device reports an error (§6.7; meanings unknown, §13.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ErrorCode<'a> {
    /// `category_code`.
    pub category: u8,
    /// `errorbits`.
    pub errorbits: u8,
    /// The rest of the packet: a copy of the offending packet, borrowed.
    #[cfg_attr(feature = "serde", serde(serialize_with = "super::serde_hex::hex"))]
    pub copy: &'a [u8],
}

/// SIG_CHANGED (0x06, D->H, FXS/FXO): hook (FXS) or ring (FXO) state (§5.2, §9.1, §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SigChanged {
    /// Bit n: line n off-hook (FXS) / ringing (FXO).
    #[doc(alias = "sig_status")]
    pub status: u32,
    /// Bit n: line n changed.
    #[doc(alias = "sig_toggles")]
    pub toggles: u32,
}

/// PRI LED selector (SET_LED bits 2-3, §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum PriLed {
    /// Select 0.
    BottomRed,
    /// Select 1.
    BottomGreen,
    /// Select 2.
    TopRed,
    /// Select 3.
    TopGreen,
}

/// BRI LED selector (SET_LED bit 2, §9.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum BriLed {
    /// Select 0.
    Green,
    /// Select 1.
    Red,
}

/// SET_LED (0x33, H->D, PRI and BRI): one raw byte; its layout depends on the card (§5.2).
///
/// PRI: bits 0-1 state, bits 2-3 select, bits 4-7 reserved. BRI: bits 0-1 state, bit 2 select,
/// bits 3-7 reserved. Decision: the byte is kept raw both ways (the BRI host does not clear its
/// reserved bits, so a decoder must not reject them); the constructors write reserved bits 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SetLed(pub u8);

impl SetLed {
    /// A PRI LED command.
    pub const fn pri(led: PriLed, on: bool) -> Self {
        let select = match led {
            PriLed::BottomRed => 0,
            PriLed::BottomGreen => 1,
            PriLed::TopRed => 2,
            PriLed::TopGreen => 3,
        };
        Self((select << 2) | on as u8)
    }

    /// A BRI LED command.
    pub const fn bri(led: BriLed, on: bool) -> Self {
        let select = match led {
            BriLed::Green => 0,
            BriLed::Red => 1,
        };
        Self((select << 2) | on as u8)
    }

    /// Bits 0-1: 0 off, 1 on (same on PRI and BRI).
    pub const fn state(self) -> u8 {
        self.0 & 0x03
    }

    /// Whether the state is "on" (1).
    pub const fn is_on(self) -> bool {
        self.state() == 1
    }

    /// Bits 2-3 read as a PRI LED selector.
    pub const fn pri_led(self) -> PriLed {
        match (self.0 >> 2) & 0x03 {
            0 => PriLed::BottomRed,
            1 => PriLed::BottomGreen,
            2 => PriLed::TopRed,
            _ => PriLed::TopGreen,
        }
    }

    /// Bit 2 read as a BRI LED selector.
    pub const fn bri_led(self) -> BriLed {
        if self.0 & 0x04 == 0 { BriLed::Green } else { BriLed::Red }
    }
}

/// ECHO SET (0x39, H->D): the 128-entry timeslot map, borrowed (§9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EchoSet<'a> {
    /// One byte per timeslot: bit 0 = channel on unit 0, bit 1 = channel on another unit.
    #[cfg_attr(feature = "serde", serde(serialize_with = "super::serde_hex::hex"))]
    pub map: &'a [u8; ECHO_MAP_LEN],
}

/// ECHO SET_REPLY (0x3A, D->H).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EchoSetReply {
    /// Status (only logged by the host).
    pub status: u8,
    /// Reserved byte, kept as received.
    pub reserved: u8,
}

/// XBUS_RESET masks used by the reference host (§6.6).
pub mod xbus_reset {
    /// Assert the SPI reset line (followed by [`RELEASE`]).
    pub const RESET_SPI: u8 = 0x04;
    /// Release the reset lines.
    pub const RELEASE: u8 = 0x00;
    /// Reset the sync counters/LEDs, sent every 1000 ticks.
    pub const RESET_SYNC_COUNTERS: u8 = 0x10;
}

/// The payload of one packet, by opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Message<'a> {
    /// 0x07 AB_REQUEST.
    AbRequest(AbRequest),
    /// 0x08 AB_DESCRIPTION.
    AbDescription(AbDescription),
    /// 0x0F REGISTER_REQUEST.
    RegisterRequest(RegCmd),
    /// 0x10 REGISTER_REPLY.
    RegisterReply(RegCmd),
    /// 0x11 PCM_WRITE.
    PcmWrite(Pcm<'a>),
    /// 0x12 PCM_READ.
    PcmRead(Pcm<'a>),
    /// 0x19 SYNC_SOURCE.
    SyncSource(SyncState),
    /// 0x1A SYNC_REPLY.
    SyncReply(SyncState),
    /// 0x22 ERROR_CODE.
    ErrorCode(ErrorCode<'a>),
    /// 0x23 XBUS_RESET.
    XbusReset {
        /// Reset-line mask (see [`xbus_reset`]).
        mask: u8,
    },
    /// 0xFE NULL_REPLY.
    NullReply,
    /// 0x06 SIG_CHANGED (FXS/FXO).
    SigChanged(SigChanged),
    /// 0x33 SET_LED (PRI/BRI).
    SetLed(SetLed),
    /// 0x39 ECHO SET.
    EchoSet(EchoSet<'a>),
    /// 0x3A ECHO SET_REPLY.
    EchoSetReply(EchoSetReply),
    /// Any other opcode: unknown ones and the loader-stage opcodes (0x09, 0x0A, 0x35, 0x36)
    /// that the firmware module decodes. Never rejected.
    Other {
        /// The opcode; never one of the typed opcodes above.
        opcode: Opcode,
        /// The header's `is_pcm` flag, as received.
        is_pcm: bool,
        /// The payload after the header, borrowed.
        #[cfg_attr(feature = "serde", serde(serialize_with = "super::serde_hex::hex"))]
        payload: &'a [u8],
    },
}

/// Whether `op` has a typed [`Message`] variant (so [`Message::Other`] must not carry it).
pub(crate) const fn is_typed(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::AbRequest
            | Opcode::AbDescription
            | Opcode::RegisterRequest
            | Opcode::RegisterReply
            | Opcode::PcmWrite
            | Opcode::PcmRead
            | Opcode::SyncSource
            | Opcode::SyncReply
            | Opcode::ErrorCode
            | Opcode::XbusReset
            | Opcode::NullReply
            | Opcode::SigChanged
            | Opcode::SetLed
            | Opcode::EchoSet
            | Opcode::EchoSetReply
    )
}

impl Message<'_> {
    /// The opcode this message is sent with.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Self::AbRequest(_) => Opcode::AbRequest,
            Self::AbDescription(_) => Opcode::AbDescription,
            Self::RegisterRequest(_) => Opcode::RegisterRequest,
            Self::RegisterReply(_) => Opcode::RegisterReply,
            Self::PcmWrite(_) => Opcode::PcmWrite,
            Self::PcmRead(_) => Opcode::PcmRead,
            Self::SyncSource(_) => Opcode::SyncSource,
            Self::SyncReply(_) => Opcode::SyncReply,
            Self::ErrorCode(_) => Opcode::ErrorCode,
            Self::XbusReset { .. } => Opcode::XbusReset,
            Self::NullReply => Opcode::NullReply,
            Self::SigChanged(_) => Opcode::SigChanged,
            Self::SetLed(_) => Opcode::SetLed,
            Self::EchoSet(_) => Opcode::EchoSet,
            Self::EchoSetReply(_) => Opcode::EchoSetReply,
            Self::Other { opcode, .. } => *opcode,
        }
    }

    /// The header's `is_pcm` flag for this message.
    pub const fn is_pcm(&self) -> bool {
        match self {
            Self::PcmWrite(_) | Self::PcmRead(_) => true,
            Self::Other { is_pcm, .. } => *is_pcm,
            _ => false,
        }
    }

    /// The PCM payload, for PCM_WRITE and PCM_READ.
    pub const fn pcm(&self) -> Option<&Pcm<'_>> {
        match self {
            Self::PcmWrite(p) | Self::PcmRead(p) => Some(p),
            _ => None,
        }
    }

    /// Bytes after the header.
    pub fn payload_len(&self) -> usize {
        match self {
            Self::AbRequest(_) | Self::SyncSource(_) | Self::SyncReply(_) | Self::EchoSetReply(_) => 2,
            Self::AbDescription(d) => d.payload_len(),
            Self::RegisterRequest(c) | Self::RegisterReply(c) => c.packet_len() - HEADER_LEN,
            Self::PcmWrite(p) | Self::PcmRead(p) => 4 + p.samples().len(),
            Self::ErrorCode(e) => 2 + e.copy.len(),
            Self::XbusReset { .. } | Self::SetLed(_) => 1,
            Self::NullReply => 0,
            Self::SigChanged(_) => 8,
            Self::EchoSet(_) => ECHO_MAP_LEN,
            Self::Other { payload, .. } => payload.len(),
        }
    }
}

/// One packet, decoded: address, tick flag and message.
///
/// `is_pcm` and `opcode` of the header follow from [`Repr::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Repr<'a> {
    /// Target (H->D) or source (D->H) XPD.
    pub addr: Address,
    // Decision: the sync bit is kept on every opcode (not forced to 0 on commands) so that a
    // capture re-emits byte for byte; builders set it only on the first PCM packet of a tick.
    /// `sync_master`: first PCM packet of a tick (host writes 0 on commands; kept as received).
    #[doc(alias = "sync_master")]
    pub sync: bool,
    /// The message.
    pub message: Message<'a>,
}

// Decision: H->D opcodes (which the reference host always emits at one length) are parsed
// with `exact`; D->H opcodes whose length the host does not check (§10) with `need`, ignoring
// trailing bytes; PCM is exact both ways (validated by the host). See the module table.
fn need(payload: &[u8], n: usize, what: &'static str) -> Result<(), WireError> {
    if payload.len() < n {
        return Err(WireError::Truncated { what, offset: HEADER_LEN, needed: n });
    }
    Ok(())
}

fn exact(payload: &[u8], n: usize, reason: &'static str) -> Result<(), WireError> {
    need(payload, n, reason)?;
    if payload.len() != n {
        return Err(WireError::BadLength { offset: 0, len: (HEADER_LEN + payload.len()) as u16, reason });
    }
    Ok(())
}

impl<'a> Repr<'a> {
    /// A command (not PCM, no sync bit) to `addr`.
    pub const fn command(addr: Address, message: Message<'a>) -> Self {
        Self { addr, sync: false, message }
    }

    /// Decodes a checked packet. Error offsets are relative to the packet start (the
    /// deframer shifts them to the transfer).
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Self, WireError> {
        packet.check_len()?;
        let header = Header::parse(packet);
        let bytes: &'a [u8] = packet.into_inner();
        let payload = &bytes[HEADER_LEN..usize::from(header.len)];
        let opcode = header.opcode;
        let pcm_opcode = matches!(opcode, Opcode::PcmRead | Opcode::PcmWrite);
        // Decision: `is_pcm` must match the opcode on typed messages (the host would reject
        // either mismatch as a frame-class error); unknown opcodes keep it as received.
        // pcmslot and the reserved header bits are ignored here and emitted as 0 (§13.4).
        if is_typed(opcode) && header.is_pcm != pcm_opcode {
            return Err(WireError::Invalid {
                what: "header is_pcm",
                offset: 1,
                reason: if pcm_opcode { "clear on a PCM packet" } else { "set on a command packet" },
            });
        }
        let message = match opcode {
            Opcode::AbRequest => {
                exact(payload, 2, "AB_REQUEST must be 6 bytes")?;
                // Decision: reserved bytes (here and in AB_DESCRIPTION, ECHO SET_REPLY) are
                // fields kept as received and emitted as given; constructors set them to 0.
                // rev is not checked here (the session rejects rev != 30, §6.2).
                Message::AbRequest(AbRequest { rev: payload[0], reserved: payload[1] })
            }
            Opcode::AbDescription => {
                need(payload, 4 + UNIT_DESCRIPTOR_LEN, "AB_DESCRIPTION with one unit")?;
                // Decision: like the host, N = (packet_len - 8) / 8; up to 7 trailing bytes
                // are ignored. N > 6 is rejected (the host fails the bus on it).
                let n = (payload.len() - 4) / UNIT_DESCRIPTOR_LEN;
                if n > MAX_UNITS {
                    return Err(WireError::Invalid {
                        what: "AB_DESCRIPTION",
                        offset: 0,
                        reason: "more than 6 unit descriptors",
                    });
                }
                let mut units = [EMPTY_UNIT; MAX_UNITS];
                for (u, chunk) in units.iter_mut().zip(payload[4..].chunks_exact(UNIT_DESCRIPTOR_LEN)) {
                    if let Ok(b) = chunk.try_into() {
                        *u = UnitDescriptor::parse(b);
                    }
                }
                Message::AbDescription(AbDescription {
                    rev: payload[0],
                    reserved: [payload[1], payload[2], payload[3]],
                    units,
                    count: n as u8,
                })
            }
            Opcode::RegisterRequest => Message::RegisterRequest(RegCmd::parse(payload, true)?),
            Opcode::RegisterReply => Message::RegisterReply(RegCmd::parse(payload, false)?),
            Opcode::PcmWrite => Message::PcmWrite(Pcm::parse(payload)?),
            Opcode::PcmRead => Message::PcmRead(Pcm::parse(payload)?),
            Opcode::SyncSource => {
                exact(payload, 2, "SYNC_SOURCE must be 6 bytes")?;
                Message::SyncSource(SyncState { mode: SyncMode::from(payload[0]), drift: payload[1] as i8 })
            }
            Opcode::SyncReply => {
                need(payload, 2, "SYNC_REPLY body")?;
                Message::SyncReply(SyncState { mode: SyncMode::from(payload[0]), drift: payload[1] as i8 })
            }
            Opcode::ErrorCode => {
                need(payload, 2, "ERROR_CODE body")?;
                Message::ErrorCode(ErrorCode {
                    category: payload[0],
                    errorbits: payload[1],
                    copy: &payload[2..],
                })
            }
            Opcode::XbusReset => {
                exact(payload, 1, "XBUS_RESET must be 5 bytes")?;
                Message::XbusReset { mask: payload[0] }
            }
            Opcode::NullReply => Message::NullReply,
            Opcode::SigChanged => {
                need(payload, 8, "SIG_CHANGED body")?;
                Message::SigChanged(SigChanged {
                    status: u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
                    toggles: u32::from_le_bytes([payload[4], payload[5], payload[6], payload[7]]),
                })
            }
            Opcode::SetLed => {
                exact(payload, 1, "SET_LED must be 5 bytes")?;
                // Decision: kept as one raw byte; PRI/BRI accessors interpret it, since the
                // card type is not known at this layer and BRI leaves bits 3-7 uncleared.
                Message::SetLed(SetLed(payload[0]))
            }
            Opcode::EchoSet => {
                exact(payload, ECHO_MAP_LEN, "ECHO SET must be 132 bytes")?;
                let Ok(map) = payload.try_into() else {
                    return Err(WireError::Truncated {
                        what: "ECHO SET map",
                        offset: HEADER_LEN,
                        needed: 128,
                    });
                };
                Message::EchoSet(EchoSet { map })
            }
            Opcode::EchoSetReply => {
                need(payload, 2, "ECHO SET_REPLY body")?;
                Message::EchoSetReply(EchoSetReply { status: payload[0], reserved: payload[1] })
            }
            other => Message::Other { opcode: other, is_pcm: header.is_pcm, payload },
        };
        Ok(Self { addr: header.addr, sync: header.sync, message })
    }

    /// The packet length this repr is emitted with.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.message.payload_len()
    }

    /// The header this repr is emitted with.
    pub fn header(&self) -> Header {
        Header {
            len: self.buffer_len() as u16,
            is_pcm: self.message.is_pcm(),
            pcmslot: 0,
            opcode: self.message.opcode(),
            addr: self.addr,
            sync: self.sync,
        }
    }

    /// Checks that the repr can be emitted: every field fits its wire width, the length fits
    /// the 10-bit field, and [`Message::Other`] does not carry a typed opcode.
    pub fn check(&self) -> Result<(), WireError> {
        if self.buffer_len() > super::MAX_PACKET_LEN {
            return Err(WireError::Invalid { what: "packet", offset: 0, reason: "longer than 1023 bytes" });
        }
        match &self.message {
            Message::RegisterRequest(c) | Message::RegisterReply(c) => c.check(),
            Message::AbDescription(d) => d.units().iter().try_for_each(UnitDescriptor::check),
            Message::Other { opcode, .. } if is_typed(*opcode) => Err(WireError::Invalid {
                what: "Message::Other opcode",
                offset: 2,
                reason: "has a typed message variant",
            }),
            _ => Ok(()),
        }
    }

    /// Writes the packet into the first [`Repr::buffer_len`] bytes of `buf` and returns that
    /// length. Reserved bits are written as 0. Never panics: a short buffer is
    /// [`WireError::NoRoom`], an unencodable field [`WireError::Invalid`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        self.check()?;
        let len = self.buffer_len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(WireError::NoRoom { what: "packet", needed: len, available: buf.len() });
        };
        self.header().emit(out);
        let p = &mut out[HEADER_LEN..];
        match &self.message {
            Message::AbRequest(r) => p.copy_from_slice(&[r.rev, r.reserved]),
            Message::AbDescription(d) => {
                p[0] = d.rev;
                p[1..4].copy_from_slice(&d.reserved);
                for (u, chunk) in d.units().iter().zip(p[4..].chunks_exact_mut(UNIT_DESCRIPTOR_LEN)) {
                    u.emit(chunk);
                }
            }
            Message::RegisterRequest(c) | Message::RegisterReply(c) => c.emit(p)?,
            Message::PcmWrite(pcm) | Message::PcmRead(pcm) => pcm.emit(p),
            Message::SyncSource(s) | Message::SyncReply(s) => {
                p.copy_from_slice(&[s.mode.into(), s.drift as u8]);
            }
            Message::ErrorCode(e) => {
                p[0] = e.category;
                p[1] = e.errorbits;
                p[2..].copy_from_slice(e.copy);
            }
            Message::XbusReset { mask } => p[0] = *mask,
            Message::NullReply => {}
            Message::SigChanged(s) => {
                p[..4].copy_from_slice(&s.status.to_le_bytes());
                p[4..].copy_from_slice(&s.toggles.to_le_bytes());
            }
            Message::SetLed(l) => p[0] = l.0,
            Message::EchoSet(e) => p.copy_from_slice(e.map),
            Message::EchoSetReply(r) => p.copy_from_slice(&[r.status, r.reserved]),
            Message::Other { payload, .. } => p.copy_from_slice(payload),
        }
        Ok(len)
    }
}

impl fmt::Display for Repr<'_> {
    /// One line: `PCM_READ 0/0 sync lines=0x00000005 [0,2]`,
    /// `REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.message.opcode(), self.addr)?;
        if self.sync {
            f.write_str(" sync")?;
        }
        match &self.message {
            Message::AbRequest(r) => write!(f, " rev={}", r.rev),
            Message::AbDescription(d) => {
                write!(f, " rev={} units={}", d.rev, d.units().len())?;
                for u in d.units() {
                    write!(
                        f,
                        " [{} {}/{} chips={} ppc={} dir=0x{:02x}]",
                        u.addr, u.card_type, u.subtype, u.numchips, u.ports_per_chip, u.port_dir
                    )?;
                }
                Ok(())
            }
            Message::RegisterRequest(c) => {
                f.write_str(" ")?;
                c.fmt_line(f, false)
            }
            Message::RegisterReply(c) => {
                f.write_str(" ")?;
                c.fmt_line(f, true)
            }
            Message::PcmWrite(p) | Message::PcmRead(p) => {
                write!(f, " lines=0x{:08x} ", p.lines())?;
                fmt_bits(f, p.lines())
            }
            Message::SyncSource(s) | Message::SyncReply(s) => write!(f, " mode={} drift={}", s.mode, s.drift),
            Message::ErrorCode(e) => write!(
                f,
                " category=0x{:02x} errorbits=0x{:02x} copy={}B",
                e.category,
                e.errorbits,
                e.copy.len()
            ),
            Message::XbusReset { mask } => write!(f, " mask=0x{mask:02x}"),
            Message::NullReply => Ok(()),
            Message::SigChanged(s) => {
                f.write_str(" status=")?;
                fmt_bits(f, s.status)?;
                f.write_str(" toggles=")?;
                fmt_bits(f, s.toggles)
            }
            Message::SetLed(l) => write!(f, " raw=0x{:02x} state={}", l.0, l.state()),
            Message::EchoSet(e) => {
                let on = e.map.iter().filter(|&&b| b != 0).count();
                write!(f, " timeslots_on={on}")
            }
            Message::EchoSetReply(r) => write!(f, " status=0x{:02x}", r.status),
            Message::Other { is_pcm, payload, .. } => {
                if *is_pcm {
                    f.write_str(" pcm")?;
                }
                write!(f, " payload={}B", payload.len())
            }
        }
    }
}
