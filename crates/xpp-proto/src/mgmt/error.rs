//! Errors of the management interface: decoding, encoding and request/reply exchanges.

use super::{AckStatus, Op};
use crate::codec::Truncated;

/// Why a management packet could not be decoded or encoded, or an exchange failed.
///
/// Decoding variants say where: `offset` is the byte offset from the start of the USB transfer,
/// `what` names the structure. The enum is small and `Copy` so that a session can count, log and
/// report errors without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum MgmtError {
    /// The input ended before a structure was complete (for a reply: its `len` is below the
    /// fixed size of the expected structure, §2.4 rule 7).
    #[error("truncated {what} at byte {offset}: {needed} bytes needed")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Byte offset where it starts.
        offset: usize,
        /// Bytes it needs from `offset`.
        needed: usize,
    },
    /// The header's `len` is below 5 or differs from the number of bytes transferred (§2.4
    /// rule 3).
    #[error("xtalk len field {len} does not match the {actual}-byte transfer")]
    LengthMismatch {
        /// The `len` field.
        len: u16,
        /// Bytes actually transferred.
        actual: usize,
    },
    /// A field holds a value the structure does not allow, or bytes are left over.
    #[error("invalid {what} at byte {offset}: {reason}")]
    Invalid {
        /// The field or structure.
        what: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A message does not fit the buffer it is emitted into.
    #[error("{what} needs {needed} bytes, only {available} available")]
    NoRoom {
        /// What was being emitted.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A message would exceed the 512-byte transfer limit ([`super::MAX_PACKET_LEN`]).
    #[error("{what} of {len} bytes exceeds the {max}-byte packet limit")]
    TooLong {
        /// The message.
        what: &'static str,
        /// Its total length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Bit 7 of the op (byte 4) is clear where a reply was required (§2.4 rule 4).
    #[error("op 0x{op:02x} at byte 4 is not a reply")]
    NotAReply {
        /// The raw op.
        op: u8,
    },
    /// Bit 7 of the op (byte 4) is set where a request was required.
    #[error("op 0x{op:02x} at byte 4 is a reply, not a request")]
    NotARequest {
        /// The raw op.
        op: u8,
    },
    /// The op (byte 4) is not one the references define (§2.4 rule 4, §10.9).
    #[error("unknown op 0x{op:02x} at byte 4")]
    UnknownOp {
        /// The raw op.
        op: u8,
    },
    /// No reply arrived within the request timeout (§2.5).
    #[error("no reply to {op} before the timeout")]
    Timeout {
        /// The request's op.
        op: Op,
    },
    /// The reply's `seq` does not echo the request's (§2.4 rule 8).
    #[error("reply seq {got} does not match request seq {expected}")]
    SeqMismatch {
        /// The request's seq.
        expected: u16,
        /// The reply's seq.
        got: u16,
    },
    /// The reply op is not the one the request expects (§2.4 rules 5, 6).
    #[error("expected {expected}, got {got}")]
    UnexpectedReply {
        /// The op the request expects ([`Op::Ack`] for ACK-answered requests).
        expected: Op,
        /// The op received.
        got: Op,
    },
    /// The device answered with a non-OK ACK status (§2.4 rule 6).
    #[error("device answered {0}: {desc}", desc = .0.description())]
    Device(AckStatus),
    /// The session's request queue is full.
    #[error("request queue full ({capacity} requests)")]
    QueueFull {
        /// The configured capacity.
        capacity: usize,
    },
    /// The device went away (or renumerated) before the request completed.
    #[error("device disconnected")]
    Disconnected,
}

impl From<Truncated> for MgmtError {
    fn from(t: Truncated) -> Self {
        Self::Truncated { what: t.what, offset: t.offset, needed: t.needed }
    }
}

impl MgmtError {
    /// The byte offset a decoding error refers to, if any.
    pub const fn offset(&self) -> Option<usize> {
        match *self {
            Self::Truncated { offset, .. } | Self::Invalid { offset, .. } => Some(offset),
            Self::LengthMismatch { .. } => Some(0),
            Self::NotAReply { .. } | Self::NotARequest { .. } | Self::UnknownOp { .. } => Some(4),
            _ => None,
        }
    }
}
