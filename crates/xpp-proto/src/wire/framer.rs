//! Packing packets into transfers of at most 512 bytes, and the per-tick PCM_WRITE round
//! (docs/reference/xpp-protocol.md §3, §7.3 item 4). No allocation: packets are written into a caller-owned
//! buffer and each finished transfer is handed to a caller's closure (the "sink") as a slice.

use super::deframe::{FrameKind, MAX_TRANSFER};
use super::pcm::{PCM_OVERHEAD, SAMPLES_PER_TICK};
use super::{Address, Message, Opcode, Pcm, Repr, WireError};

/// Header byte 1 `is_pcm`.
const IS_PCM: u8 = 0x08;
/// Header byte 3 `sync_master`.
const SYNC_MASTER: u8 = 0x80;

/// Packs packets back to back into one transfer buffer.
///
/// A transfer never exceeds `min(buffer length, 512)` bytes and never mixes PCM and command
/// packets (§3): pushing a packet that does not fit, or of the other class, first hands the
/// pending transfer to the sink. Call [`Framer::flush`] to send the last one.
#[derive(Debug)]
pub struct Framer<'b> {
    buf: &'b mut [u8],
    cap: usize,
    len: usize,
    kind: Option<FrameKind>,
}

impl<'b> Framer<'b> {
    /// A framer writing into `buf`; transfers are at most `min(buf.len(), 512)` bytes.
    pub fn new(buf: &'b mut [u8]) -> Self {
        let cap = buf.len().min(MAX_TRANSFER);
        Self { buf, cap, len: 0, kind: None }
    }

    /// Largest transfer this framer produces.
    pub const fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes in the pending transfer.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no packet is pending.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pending (not yet flushed) transfer.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Hands the pending transfer (if any) to `sink` and starts a new one.
    pub fn flush(&mut self, mut sink: impl FnMut(&[u8])) {
        if self.len > 0 {
            sink(&self.buf[..self.len]);
        }
        self.len = 0;
        self.kind = None;
    }

    /// Makes room for a packet of `len` bytes of class `kind`, flushing if needed.
    fn reserve(
        &mut self,
        len: usize,
        kind: FrameKind,
        sink: impl FnMut(&[u8]),
    ) -> Result<&mut [u8], WireError> {
        if len > self.cap {
            return Err(WireError::NoRoom { what: "packet in a transfer", needed: len, available: self.cap });
        }
        if self.len + len > self.cap || self.kind.is_some_and(|k| k != kind) {
            self.flush(sink);
        }
        self.kind = Some(kind);
        let start = self.len;
        self.len += len;
        Ok(&mut self.buf[start..start + len])
    }

    /// Appends one packet, flushing the pending transfer first if the packet does not fit or
    /// is of the other class.
    pub fn push(&mut self, repr: &Repr<'_>, sink: impl FnMut(&[u8])) -> Result<(), WireError> {
        repr.check()?;
        let kind = match repr.message {
            Message::PcmRead(_) | Message::PcmWrite(_) => FrameKind::Pcm,
            // Decision: an unknown opcode with is_pcm set parses (kept as received) but cannot
            // be framed: no frame class admits it (§3).
            Message::Other { is_pcm: true, .. } => {
                return Err(WireError::Invalid {
                    what: "header is_pcm",
                    offset: 1,
                    reason: "a non-PCM opcode with is_pcm set cannot be framed",
                });
            }
            _ => FrameKind::Command,
        };
        let len = repr.buffer_len();
        let out = self.reserve(len, kind, sink)?;
        repr.emit(out)?;
        Ok(())
    }

    /// Starts the PCM_WRITE round of one tick. See [`PcmRound`].
    pub fn pcm_round(&mut self) -> PcmRound<'_, 'b> {
        PcmRound { framer: self, first: true, last: None }
    }
}

/// Builds the PCM_WRITE packets of one tick: one packet per XPD in XPD-index order, the
/// `sync_master` bit on the very first packet only, a new transfer whenever 512 bytes would be
/// exceeded (§7.3 item 4).
///
/// ```
/// use xpp_proto::wire::{Address, Framer, Pcm};
/// let mut buf = [0u8; 512];
/// let mut framer = Framer::new(&mut buf);
/// let mut sent = 0;
/// let mut round = framer.pcm_round();
/// round.push(Address::ZERO, &Pcm::new(0b1, &[0x7F; 8])?, |t: &[u8]| sent += t.len())?;
/// round.finish(|t: &[u8]| sent += t.len());
/// assert_eq!(sent, 16);
/// # Ok::<(), xpp_proto::wire::WireError>(())
/// ```
#[derive(Debug)]
pub struct PcmRound<'f, 'b> {
    framer: &'f mut Framer<'b>,
    first: bool,
    last: Option<u8>,
}

impl PcmRound<'_, '_> {
    // Decision: XPDs out of ascending XPD-index order are refused (§7.3 item 4 fixes the
    // order; the device's expectations for any other order are unknown).
    fn begin(&mut self, addr: Address, lines: u32, sink: impl FnMut(&[u8])) -> Result<&mut [u8], WireError> {
        if self.last.is_some_and(|l| l >= addr.xpd_index()) {
            return Err(WireError::Invalid {
                what: "PCM round",
                offset: 0,
                reason: "XPDs must be pushed in ascending XPD-index order",
            });
        }
        let len = Pcm::packet_len_for(lines);
        let sync = self.first;
        let out = self.framer.reserve(len, FrameKind::Pcm, sink)?;
        out[0] = len as u8;
        out[1] = (len >> 8) as u8 | IS_PCM;
        out[2] = Opcode::PcmWrite.into();
        out[3] = addr.to_byte() | if sync { SYNC_MASTER } else { 0 };
        out[4..PCM_OVERHEAD].copy_from_slice(&lines.to_le_bytes());
        self.first = false;
        self.last = Some(addr.xpd_index());
        Ok(&mut out[PCM_OVERHEAD..])
    }

    /// Appends the PCM_WRITE packet of the XPD at `addr`.
    pub fn push(&mut self, addr: Address, pcm: &Pcm<'_>, sink: impl FnMut(&[u8])) -> Result<(), WireError> {
        let out = self.begin(addr, pcm.lines(), sink)?;
        out.copy_from_slice(pcm.samples());
        Ok(())
    }

    /// Appends the PCM_WRITE packet of the XPD at `addr`, taking the samples of each set bit of
    /// `lines` from `chunks[line]` (one 8-sample chunk per channel, as DAHDI keeps them).
    pub fn push_chunks(
        &mut self,
        addr: Address,
        lines: u32,
        chunks: &[[u8; SAMPLES_PER_TICK]; 32],
        sink: impl FnMut(&[u8]),
    ) -> Result<(), WireError> {
        let out = self.begin(addr, lines, sink)?;
        let mut mask = lines;
        for dst in out.chunks_exact_mut(SAMPLES_PER_TICK) {
            let line = mask.trailing_zeros() as usize;
            mask &= mask.wrapping_sub(1);
            if let Some(src) = chunks.get(line) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }

    /// Whether no packet has been pushed yet.
    pub const fn is_empty(&self) -> bool {
        self.first
    }

    /// Hands the last transfer of the round to `sink`.
    pub fn finish(self, sink: impl FnMut(&[u8])) {
        self.framer.flush(sink);
    }
}

/// Builds a whole PCM_WRITE round into `buf` (at most 512 bytes used) from `(address, pcm)`
/// pairs in XPD-index order, handing each transfer to `sink`.
pub fn build_pcm_round<'s>(
    buf: &mut [u8],
    xpds: impl IntoIterator<Item = (Address, Pcm<'s>)>,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), WireError> {
    let mut framer = Framer::new(buf);
    let mut round = framer.pcm_round();
    for (addr, pcm) in xpds {
        round.push(addr, &pcm, &mut sink)?;
    }
    round.finish(sink);
    Ok(())
}
