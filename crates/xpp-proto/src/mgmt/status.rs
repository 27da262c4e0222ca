//! ACK status codes (§2.3).

use super::MgmtError;
use crate::macros::wire_enum;

wire_enum! {
    /// The `stat` byte of an ACK (op 0x80). Codes 0x00–0x0C and 0x10 are xtalk-level, MPP adds
    /// 0x09, 0x0D–0x0F and 0x11. [`AckStatus::description`] gives the meaning text.
    pub enum AckStatus(u8) {
        /// Acknowledges the previous command.
        Ok = 0x00 => "OK",
        /// The last command failed.
        Fail = 0x01 => "FAIL",
        /// Reset failed.
        ResetFail = 0x02 => "RESET_FAIL",
        /// No destination selected.
        NoDest = 0x03 => "NO_DEST",
        /// Data mismatch.
        Mismatch = 0x04 => "MISMATCH",
        /// No access.
        NoAccess = 0x05 => "NO_ACCESS",
        /// Bad command.
        BadCmd = 0x06 => "BAD_CMD",
        /// Packet too short.
        TooShort = 0x07 => "TOO_SHORT",
        /// Offset error.
        OffsetError = 0x08 => "OFFSET_ERROR",
        /// Source was not burned before.
        NotBurned = 0x09 => "NOT_BURNED",
        /// Large EEPROM not found.
        NoLargeEeprom = 0x0A => "NO_LARGE_EEPROM",
        /// No EEPROM found.
        NoEeprom = 0x0B => "NO_EEPROM",
        /// Writing to the device failed.
        WriteFail = 0x0C => "WRITE_FAIL",
        /// FPGA error.
        FpgaError = 0x0D => "FPGA_ERROR",
        /// Bad capabilities key.
        BadKey = 0x0E => "BAD_KEY",
        /// No matching capability.
        NoCaps = 0x0F => "NO_CAPS",
        /// No power on the USB connector.
        NoPower = 0x10 => "NO_POWER",
        /// Capabilities set while the FPGA is loaded (not allowed).
        CapsFpgaLoaded = 0x11 => "CAPS_FPGA_LOADED",
    }
}

impl AckStatus {
    /// The meaning of the code, as §2.3 states it (`"unknown status"` for unnamed codes).
    pub const fn description(self) -> &'static str {
        match self {
            Self::Ok => "OK - acknowledges previous command",
            Self::Fail => "last command failed",
            Self::ResetFail => "reset failed",
            Self::NoDest => "no destination selected",
            Self::Mismatch => "data mismatch",
            Self::NoAccess => "no access",
            Self::BadCmd => "bad command",
            Self::TooShort => "packet too short",
            Self::OffsetError => "offset error",
            Self::NotBurned => "source was not burned before",
            Self::NoLargeEeprom => "large EEPROM not found",
            Self::NoEeprom => "no EEPROM found",
            Self::WriteFail => "writing to device failed",
            Self::FpgaError => "FPGA error",
            Self::BadKey => "bad capabilities key",
            Self::NoCaps => "no matching capability",
            Self::NoPower => "no power on USB connector",
            Self::CapsFpgaLoaded => "capabilities set while FPGA is loaded (not allowed)",
            Self::Unknown(_) => "unknown status",
        }
    }

    /// Whether this is [`AckStatus::Ok`].
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    /// `Ok(())` for status OK, else [`MgmtError::Device`] carrying this status (§2.4 rule 6).
    pub fn check(self) -> Result<(), MgmtError> {
        if self.is_ok() { Ok(()) } else { Err(MgmtError::Device(self)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_table() {
        let table: [(u8, AckStatus); 18] = [
            (0x00, AckStatus::Ok),
            (0x01, AckStatus::Fail),
            (0x02, AckStatus::ResetFail),
            (0x03, AckStatus::NoDest),
            (0x04, AckStatus::Mismatch),
            (0x05, AckStatus::NoAccess),
            (0x06, AckStatus::BadCmd),
            (0x07, AckStatus::TooShort),
            (0x08, AckStatus::OffsetError),
            (0x09, AckStatus::NotBurned),
            (0x0A, AckStatus::NoLargeEeprom),
            (0x0B, AckStatus::NoEeprom),
            (0x0C, AckStatus::WriteFail),
            (0x0D, AckStatus::FpgaError),
            (0x0E, AckStatus::BadKey),
            (0x0F, AckStatus::NoCaps),
            (0x10, AckStatus::NoPower),
            (0x11, AckStatus::CapsFpgaLoaded),
        ];
        for (code, st) in table {
            assert_eq!(AckStatus::from(code), st);
            assert_eq!(u8::from(st), code);
            assert_ne!(st.description(), "unknown status");
        }
        assert_eq!(AckStatus::from(0x12), AckStatus::Unknown(0x12));
        assert_eq!(AckStatus::from(0x12).description(), "unknown status");
    }

    #[test]
    fn check_maps_non_ok_to_device_error() {
        assert_eq!(AckStatus::Ok.check(), Ok(()));
        assert_eq!(AckStatus::BadKey.check(), Err(MgmtError::Device(AckStatus::BadKey)));
        let text = MgmtError::Device(AckStatus::NoPower).to_string();
        assert!(text.contains("NO_POWER") && text.contains("no power on USB connector"), "{text}");
    }
}
