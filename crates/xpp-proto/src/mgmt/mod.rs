//! The management interface (interface 1): xtalk framing and the MPP dialect.
//!
//! See mpp-twinstar-firmware.md §2 (xtalk) and §3 (MPP). One xtalk packet is one USB bulk
//! transfer: a 5-byte header (`len` u16 LE including the header, `seq` u16 LE, `op` u8) and
//! a payload. Replies set bit 7 of `op`.
// SKELETON: the types below are the contract other modules code against; encoding, decoding,
// the status enum and the Session are filled in by the mgmt work.

use crate::macros::enum_with_unknown;

enum_with_unknown! {
    /// Destination of a DEV_SEND transfer (§3.3).
    pub enum DevDest(u8) {
        /// No destination.
        None = 0 => "NONE",
        /// The FPGA (stage 2 firmware).
        Fpga = 1 => "FPGA",
        /// The boot EEPROM.
        Eeprom = 2 => "EEPROM",
    }
}

/// The 16-byte EEPROM table (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EepromTable {
    /// 0xC0 small EEPROM, 0xC2 large EEPROM.
    pub source: u8,
    /// USB vendor ID (0xE4E4).
    pub vendor: u16,
    /// The cold product ID (e.g. 0x1160).
    pub product: u16,
    /// BCD release, high byte major, low byte minor.
    pub release: u16,
    /// Must be 0.
    pub config: u8,
    /// 8-character label (= USB serial string), not NUL terminated.
    pub label: [u8; 8],
}

/// The 12-byte capabilities block (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Capabilities {
    /// Licensed FXS ports.
    pub ports_fxs: u8,
    /// Licensed FXO ports.
    pub ports_fxo: u8,
    /// Licensed BRI ports.
    pub ports_bri: u8,
    /// Licensed PRI ports.
    pub ports_pri: u8,
    /// Bit 0: TwinStar licensed.
    pub extra_features: u8,
    /// Licensed echo-canceller channels.
    pub ports_echo: u8,
    /// Reserved bytes, kept as received.
    pub reserved: [u8; 2],
    /// Licence timestamp.
    pub timestamp: u32,
}

/// The opaque 16-byte licence key (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CapKey(pub [u8; 16]);

/// A host -> device MPP command (§3.1), borrowing any variable-length data.
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
        /// The record's data bytes.
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
        /// The sub-command bytes (§3.3 table).
        data: &'a [u8],
    },
    /// RESET (0x45): reset USB and FPGA firmware; no reply.
    Reset,
    /// HALF_RESET (0x47): reset FPGA firmware only; no reply.
    HalfReset,
}

/// Why a management packet could not be decoded or a management exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MgmtError {
    /// The input ended early.
    #[error("truncated {what} at byte {offset}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
}

pub(crate) fn fuzz_packet(_data: &[u8]) {}
