//! Errors of the data-interface decoder.

use crate::codec::Truncated;

/// Why bytes from the data interface (interface 0) could not be decoded.
///
/// Every variant says where: `offset` is the byte offset from the start of the USB transfer
/// (or of the buffer handed to the decoder). The enum is small and `Copy` so that a run loop can
/// count and log errors without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended before a structure was complete.
    #[error("truncated {what} at byte {offset}: {needed} bytes needed")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset where it starts.
        offset: usize,
        /// Bytes it needs from `offset`.
        needed: usize,
    },
    /// A packet header's `packet_len` is below the 4-byte header, or runs past the transfer.
    #[error("bad packet length {len} at byte {offset}: {reason}")]
    BadLength {
        /// Byte offset of the packet header.
        offset: usize,
        /// The `packet_len` field.
        len: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field holds a value the structure does not allow.
    #[error("invalid {what} at byte {offset}: {reason}")]
    Invalid {
        /// The field or structure.
        what: &'static str,
        /// Byte offset of the packet (or of the field, where more precise).
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A transfer mixes PCM and command packets in a way the protocol forbids.
    #[error("frame class violation at byte {offset}: {reason}")]
    FrameClass {
        /// Byte offset of the offending packet.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A received transfer is longer than the 512-byte xframe limit (§2.3, §3).
    #[error("transfer of {len} bytes exceeds the {max}-byte limit")]
    TransferTooLong {
        /// Length of the transfer.
        len: usize,
        /// The limit ([`crate::wire::MAX_TRANSFER`]).
        max: usize,
    },
    /// A message does not fit the buffer it is emitted into, or a transfer size limit.
    #[error("{what} needs {needed} bytes, only {available} available")]
    NoRoom {
        /// What was being emitted.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
}

impl From<Truncated> for WireError {
    fn from(t: Truncated) -> Self {
        Self::Truncated { what: t.what, offset: t.offset, needed: t.needed }
    }
}

impl WireError {
    /// The byte offset the error refers to (`None` for [`WireError::NoRoom`]).
    pub const fn offset(&self) -> Option<usize> {
        match *self {
            Self::Truncated { offset, .. }
            | Self::BadLength { offset, .. }
            | Self::Invalid { offset, .. }
            | Self::FrameClass { offset, .. } => Some(offset),
            Self::TransferTooLong { max, .. } => Some(max),
            Self::NoRoom { .. } => None,
        }
    }

    /// The same error with its offset moved by `base` bytes: turns an offset relative to a
    /// packet into one relative to the transfer that holds it.
    #[must_use]
    pub const fn offset_by(self, base: usize) -> Self {
        match self {
            Self::Truncated { what, offset, needed } => {
                Self::Truncated { what, offset: offset.saturating_add(base), needed }
            }
            Self::BadLength { offset, len, reason } => {
                Self::BadLength { offset: offset.saturating_add(base), len, reason }
            }
            Self::Invalid { what, offset, reason } => {
                Self::Invalid { what, offset: offset.saturating_add(base), reason }
            }
            Self::FrameClass { offset, reason } => {
                Self::FrameClass { offset: offset.saturating_add(base), reason }
            }
            other @ (Self::TransferTooLong { .. } | Self::NoRoom { .. }) => other,
        }
    }
}
