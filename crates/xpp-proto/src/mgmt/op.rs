//! The xtalk opcode space with the MPP dialect's ops (§2.2, §3.1).

use crate::macros::wire_enum;

/// Bit 7 of `op`: set on every device -> host reply (§2.1).
pub const REPLY_BIT: u8 = 0x80;

wire_enum! {
    /// An xtalk opcode: the base layer's (PROTO_GET, ACK) and MPP's private ones (0x05..0x7F and
    /// their `| 0x80` replies).
    pub enum Op(u8) {
        /// Ask the dialect version, H->D (base layer).
        ProtoGet = 0x01 => "PROTO_GET",
        /// Start a firmware/EEPROM transfer, H->D.
        DevSendStart = 0x05 => "DEV_SEND_START",
        /// One HEX data record, H->D.
        DevSendSeg = 0x07 => "DEV_SEND_SEG",
        /// End of a transfer, H->D.
        DevSendEnd = 0x09 => "DEV_SEND_END",
        /// Re-enumerate (stage 11x1 -> 11x2), H->D, no reply.
        Renum = 0x0B => "RENUM",
        /// Write the EEPROM table, H->D.
        EepromSet = 0x0D => "EEPROM_SET",
        /// Read EEPROM table, capabilities and key, H->D.
        CapsGet = 0x0E => "CAPS_GET",
        /// Write EEPROM table, capabilities and key, H->D.
        CapsSet = 0x0F => "CAPS_SET",
        /// Read EEPROM type, FPGA state and firmware versions, H->D.
        StatusGet = 0x11 => "STATUS_GET",
        /// Read the 24-byte extra-info text, H->D.
        ExtrainfoGet = 0x13 => "EXTRAINFO_GET",
        /// Write the 24-byte extra-info text, H->D.
        ExtrainfoSet = 0x15 => "EXTRAINFO_SET",
        /// Read an EEPROM block, H->D.
        EepromBlkRd = 0x27 => "EEPROM_BLK_RD",
        /// Arm/disarm the TwinStar watchdog, H->D.
        TwsWdModeSet = 0x31 => "TWS_WD_MODE_SET",
        /// Read the TwinStar watchdog mode, H->D.
        TwsWdModeGet = 0x32 => "TWS_WD_MODE_GET",
        /// Jump to a TwinStar USB port, H->D, no reply.
        TwsPortSet = 0x34 => "TWS_PORT_SET",
        /// Read the active TwinStar port, H->D.
        TwsPortGet = 0x35 => "TWS_PORT_GET",
        /// Read TwinStar port power, H->D.
        TwsPwrGet = 0x36 => "TWS_PWR_GET",
        /// FPGA pass-through sub-command, H->D.
        SerSend = 0x37 => "SER_SEND",
        /// Reset USB and FPGA firmware, H->D, no reply.
        Reset = 0x45 => "RESET",
        /// Reset FPGA firmware only, H->D, no reply.
        HalfReset = 0x47 => "HALF_RESET",
        /// Generic acknowledgement with a status byte, D->H (base layer).
        Ack = 0x80 => "ACK",
        /// Answer to PROTO_GET, D->H (base layer).
        ProtoGetReply = 0x81 => "PROTO_GET_REPLY",
        /// Answer to CAPS_GET, D->H.
        CapsGetReply = 0x8E => "CAPS_GET_REPLY",
        /// Answer to STATUS_GET, D->H.
        StatusGetReply = 0x91 => "STATUS_GET_REPLY",
        /// Answer to EXTRAINFO_GET, D->H.
        ExtrainfoGetReply = 0x93 => "EXTRAINFO_GET_REPLY",
        /// Answer to EEPROM_BLK_RD, D->H.
        EepromBlkRdReply = 0xA7 => "EEPROM_BLK_RD_REPLY",
        /// Answer to TWS_WD_MODE_GET, D->H.
        TwsWdModeGetReply = 0xB2 => "TWS_WD_MODE_GET_REPLY",
        /// Answer to TWS_PORT_GET, D->H.
        TwsPortGetReply = 0xB5 => "TWS_PORT_GET_REPLY",
        /// Answer to TWS_PWR_GET, D->H.
        TwsPwrGetReply = 0xB6 => "TWS_PWR_GET_REPLY",
        /// Answer to SER_SEND, D->H.
        SerRecv = 0xB7 => "SER_RECV",
    }
}

/// What the host waits for after sending a request (§2.4 rules 2, 5, 6; §3.1 "Reply" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum Expect {
    /// Exactly this reply op; an ACK (even OK) is an error (rule 5).
    Reply(Op),
    /// An ACK with status OK (rule 6).
    Ack,
    /// Nothing: fire-and-forget, the device disconnects (rule 2).
    Nothing,
}

impl Op {
    /// Whether bit 7 is set, i.e. this is a device -> host op (known or not).
    pub fn is_reply(self) -> bool {
        u8::from(self) & REPLY_BIT != 0
    }

    /// Whether this is a request op the references define.
    pub fn is_request(self) -> bool {
        self.is_known() && !self.is_reply()
    }

    /// The specific reply op this request expects, if it has one (`None` for requests answered
    /// by ACK or by nothing, and for reply or unknown ops). Use [`Op::expect`] to tell those apart.
    pub const fn reply_op(self) -> Option<Self> {
        match self {
            Self::ProtoGet => Some(Self::ProtoGetReply),
            Self::CapsGet => Some(Self::CapsGetReply),
            Self::StatusGet => Some(Self::StatusGetReply),
            Self::ExtrainfoGet => Some(Self::ExtrainfoGetReply),
            Self::EepromBlkRd => Some(Self::EepromBlkRdReply),
            Self::TwsWdModeGet => Some(Self::TwsWdModeGetReply),
            Self::TwsPortGet => Some(Self::TwsPortGetReply),
            Self::TwsPwrGet => Some(Self::TwsPwrGetReply),
            Self::SerSend => Some(Self::SerRecv),
            _ => None,
        }
    }

    /// What the host waits for after sending this request; `None` if this is not a known
    /// request op.
    pub const fn expect(self) -> Option<Expect> {
        if let Some(reply) = self.reply_op() {
            return Some(Expect::Reply(reply));
        }
        match self {
            Self::DevSendStart
            | Self::DevSendSeg
            | Self::DevSendEnd
            | Self::EepromSet
            | Self::CapsSet
            | Self::ExtrainfoSet
            | Self::TwsWdModeSet => Some(Expect::Ack),
            Self::Renum | Self::TwsPortSet | Self::Reset | Self::HalfReset => Some(Expect::Nothing),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ops_are_request_ops_with_bit_7() {
        // The specific-reply pairs of §3.1 and §2.2, written out by hand.
        let pairs = [
            (0x01u8, 0x81u8),
            (0x0E, 0x8E),
            (0x11, 0x91),
            (0x13, 0x93),
            (0x27, 0xA7),
            (0x32, 0xB2),
            (0x35, 0xB5),
            (0x36, 0xB6),
            (0x37, 0xB7),
        ];
        for (req, rep) in pairs {
            let op = Op::from(req);
            assert!(op.is_request(), "{op}");
            assert_eq!(op.reply_op(), Some(Op::from(rep)));
            assert_eq!(op.expect(), Some(Expect::Reply(Op::from(rep))));
            assert!(Op::from(rep).is_reply() && Op::from(rep).is_known());
        }
    }

    #[test]
    fn ack_and_fire_and_forget_ops() {
        for req in [0x05u8, 0x07, 0x09, 0x0D, 0x0F, 0x15, 0x31] {
            assert_eq!(Op::from(req).expect(), Some(Expect::Ack), "{req:#x}");
            assert_eq!(Op::from(req).reply_op(), None);
        }
        for req in [0x0Bu8, 0x34, 0x45, 0x47] {
            assert_eq!(Op::from(req).expect(), Some(Expect::Nothing), "{req:#x}");
        }
        assert_eq!(Op::Ack.expect(), None);
        assert_eq!(Op::from(0x42).expect(), None);
        assert!(Op::from(0xC0).is_reply());
        assert!(!Op::from(0xC0).is_known());
        assert_eq!(u8::from(Op::Ack), 0x80);
        assert_eq!(Op::from(0x47), Op::HalfReset);
    }
}
