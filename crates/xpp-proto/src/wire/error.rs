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
            Self::NoRoom { .. } => None,
        }
    }
}
