//! Splitting one USB transfer (an xframe) into packets, docs/reference/xpp-protocol.md §3 and §10.

use super::{HEADER_LEN, Opcode, Packet, Repr, WireError};

/// Largest transfer (xframe) in either direction: `XFRAME_DATASIZE` (§2.3, §3).
pub const MAX_TRANSFER: usize = 512;

/// The class of a transfer, decided by the first packet's `is_pcm` bit (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum FrameKind {
    /// Every packet is PCM_READ or PCM_WRITE.
    Pcm,
    /// No packet is PCM_READ or PCM_WRITE.
    Command,
}

/// Checks the transfer-size limit of an inbound transfer.
pub const fn check_transfer_len(transfer: &[u8]) -> Result<(), WireError> {
    if transfer.len() > MAX_TRANSFER {
        return Err(WireError::TransferTooLong { len: transfer.len(), max: MAX_TRANSFER });
    }
    Ok(())
}

/// Walks one transfer packet by packet. See [`deframe`].
#[derive(Debug, Clone)]
pub struct Deframer<'a> {
    data: &'a [u8],
    pos: usize,
    kind: Option<FrameKind>,
    done: bool,
}

/// Splits a transfer into packets: yields `(offset, packet)` for each, where `offset` is the
/// packet's byte offset in the transfer, and stops after the first error.
///
/// Checks, each reported with the byte offset it concerns:
/// * the transfer is at most [`MAX_TRANSFER`] bytes ([`WireError::TransferTooLong`]);
/// * at least 4 bytes remain for each header — so an empty or 1..3-byte transfer is an error
///   ([`WireError::Truncated`]); Decision: an empty transfer is reported rather than silently
///   yielding nothing, since the driver counts and drops it (§2.3);
/// * `packet_len` is at least 4 and within the transfer ([`WireError::BadLength`]);
/// * frame class (§3, §10): the first packet's `is_pcm` decides. In a PCM frame every packet
///   must be PCM_READ/PCM_WRITE with `is_pcm` set; in a command frame no packet may be
///   PCM_READ/PCM_WRITE or have `is_pcm` set ([`WireError::FrameClass`]).
///
/// Packets yielded before an error are valid and may be used (the driver keeps them).
pub fn deframe(transfer: &[u8]) -> Deframer<'_> {
    Deframer { data: transfer, pos: 0, kind: None, done: false }
}

impl<'a> Deframer<'a> {
    /// The class of this transfer, known once the first packet has been yielded.
    pub const fn kind(&self) -> Option<FrameKind> {
        self.kind
    }

    /// Byte offset of the next packet.
    pub const fn offset(&self) -> usize {
        self.pos
    }

    /// Decodes every packet as it is split: yields `(offset, repr)` and stops after the first
    /// error, whose offset is relative to the transfer.
    pub fn reprs(self) -> ReprIter<'a> {
        ReprIter { inner: self, done: false }
    }

    // Decision: an empty transfer is an error (Truncated at 0), not an empty iterator, so the
    // caller counts it like the driver does (§2.3). A command frame may contain no packet with
    // `is_pcm` set, and a PCM frame only PCM opcodes with `is_pcm` set (stricter than the
    // driver, which only checks the opcode, as §10's robust-decoder paragraph recommends).
    fn step(&mut self) -> Result<(usize, Packet<&'a [u8]>), WireError> {
        check_transfer_len(self.data)?;
        let offset = self.pos;
        let rest = &self.data[offset..];
        if rest.len() < HEADER_LEN {
            return Err(WireError::Truncated { what: "packet header", offset, needed: HEADER_LEN });
        }
        let packet = Packet::new_checked(rest).map_err(|e| e.offset_by(offset))?;
        let len = usize::from(packet.packet_len());
        let packet = Packet::new_unchecked(&rest[..len]);
        let pcm_opcode = matches!(packet.opcode(), Opcode::PcmRead | Opcode::PcmWrite);
        let kind = match self.kind {
            Some(k) => k,
            None if packet.is_pcm() => FrameKind::Pcm,
            None if pcm_opcode => {
                return Err(WireError::FrameClass {
                    offset,
                    reason: "PCM packet without is_pcm starts the frame",
                });
            }
            None => FrameKind::Command,
        };
        self.kind = Some(kind);
        match kind {
            FrameKind::Pcm if !pcm_opcode => {
                return Err(WireError::FrameClass { offset, reason: "non-PCM packet in a PCM frame" });
            }
            FrameKind::Pcm if !packet.is_pcm() => {
                return Err(WireError::FrameClass {
                    offset,
                    reason: "PCM packet without is_pcm in a PCM frame",
                });
            }
            FrameKind::Command if pcm_opcode || packet.is_pcm() => {
                return Err(WireError::FrameClass { offset, reason: "PCM packet in a command frame" });
            }
            _ => {}
        }
        self.pos += len;
        Ok((offset, packet))
    }
}

impl<'a> Iterator for Deframer<'a> {
    type Item = Result<(usize, Packet<&'a [u8]>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || (self.pos == self.data.len() && self.pos > 0) {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for Deframer<'_> {}

/// Iterator of `(offset, Repr)` over one transfer. See [`Deframer::reprs`].
#[derive(Debug, Clone)]
pub struct ReprIter<'a> {
    inner: Deframer<'a>,
    done: bool,
}

impl ReprIter<'_> {
    /// The class of this transfer, once known.
    pub const fn kind(&self) -> Option<FrameKind> {
        self.inner.kind
    }
}

impl<'a> Iterator for ReprIter<'a> {
    type Item = Result<(usize, Repr<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = match self.inner.next()? {
            Ok((offset, packet)) => {
                Repr::parse(&packet).map(|r| (offset, r)).map_err(|e| e.offset_by(offset))
            }
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

impl core::iter::FusedIterator for ReprIter<'_> {}

/// Decodes every packet of a transfer: shorthand for `deframe(transfer).reprs()`.
pub fn parse_transfer(transfer: &[u8]) -> ReprIter<'_> {
    deframe(transfer).reprs()
}
