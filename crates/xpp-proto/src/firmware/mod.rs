//! Astribank firmware images: the Intel-HEX variant and the load sequences.
//!
//! See mpp-twinstar-firmware.md §5.
// SKELETON: filled in by the firmware work.

/// Why a firmware file could not be parsed or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmwareError {
    /// A HEX line is malformed.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

pub(crate) fn fuzz_hex(_data: &[u8]) {}
