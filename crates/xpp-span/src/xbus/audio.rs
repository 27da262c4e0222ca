//! The PBX side of a channel's audio: the chunks of the last and the next tick, companded in
//! the channel's law or linear.

use super::{ChanError, ChunkRun, XbusCore};
use crate::dahdi::Law;
use crate::g711;
use crate::pcm::{Chunk, LinearChunk};

impl XbusCore {
    /// Where `channo`'s audio sits (XPD index, line bit) and its span's and its own law.
    fn audio(&self, channo: u32) -> Result<(usize, usize, Law, Law), ChanError> {
        let ch = &self.chans[self.running_index(channo)?];
        let (x, b) = ch.pcm.ok_or(ChanError::NoAudio)?;
        Ok((usize::from(x), usize::from(b), ch.native, ch.law))
    }

    /// The chunk received for `channel` in the last tick (silence when it is not in PCM).
    pub fn read_chunk(&self, channo: u32, buf: &mut Chunk) -> Result<(), ChanError> {
        let (x, b, native, law) = self.audio(channo)?;
        *buf = self.pcm[x].rx[b];
        if let Some(t) = g711::law_table(native, law) {
            buf.iter_mut().for_each(|s| *s = t[usize::from(*s)]);
        }
        Ok(())
    }

    /// The chunk to send on `channel` in the next tick, in the channel's law.
    pub fn write_chunk(&mut self, channo: u32, chunk: &Chunk) -> Result<(), ChanError> {
        let (x, b, native, law) = self.audio(channo)?;
        let tx = &mut self.pcm[x].tx[b];
        match g711::law_table(law, native) {
            Some(t) => tx.iter_mut().zip(chunk).for_each(|(d, s)| *d = t[usize::from(*s)]),
            None => *tx = *chunk,
        }
        Ok(())
    }

    /// The last received chunk of `channo` as 16-bit linear samples (DAHDI's SETLINEAR).
    pub fn read_linear(&self, channo: u32, buf: &mut LinearChunk) -> Result<(), ChanError> {
        let (x, b, native, _) = self.audio(channo)?;
        buf.iter_mut().zip(&self.pcm[x].rx[b]).for_each(|(d, s)| *d = g711::to_linear(native, *s));
        Ok(())
    }

    /// The chunk to send on `channo` in the next tick, from 16-bit linear samples.
    pub fn write_linear(&mut self, channo: u32, samples: &LinearChunk) -> Result<(), ChanError> {
        let (x, b, native, _) = self.audio(channo)?;
        self.pcm[x].tx[b].iter_mut().zip(samples).for_each(|(d, s)| *d = g711::from_linear(native, *s));
        Ok(())
    }

    /// Every channel's chunk of span `spanno` at once (channel `basechan + i` into `out[i]`;
    /// a channel without audio, a D-channel for one, is left as it is in `out`): one call per
    /// span and tick instead of one per channel, in each channel's law. The number of
    /// channels written.
    pub fn read_span_chunks(&self, spanno: u32, out: &mut [Chunk]) -> Result<usize, ChanError> {
        let si = self.running_span(spanno)?;
        let mut done = 0;
        for r in &self.runs[si] {
            let (Some(out), Some(rx)) = (
                out.get_mut(usize::from(r.at)..),
                self.pcm.get(usize::from(r.first.x)).and_then(|p| p.rx.get(r.bits())),
            ) else {
                break;
            };
            done += copy_chunks(out, rx, r.first.rx);
        }
        Ok(done)
    }

    /// Every channel's chunk of span `spanno` for the next tick at once (`chunks[i]` to
    /// channel `basechan + i`, in its law; channels without audio and HDLC channels are
    /// skipped). The number of channels set.
    pub fn write_span_chunks(&mut self, spanno: u32, chunks: &[Chunk]) -> Result<usize, ChanError> {
        let si = self.running_span(spanno)?;
        let Self { runs, pcm, .. } = self;
        let mut done = 0;
        for r in &runs[si] {
            let (Some(src), Some(tx)) = (
                chunks.get(usize::from(r.at)..),
                pcm.get_mut(usize::from(r.first.x)).and_then(|p| p.tx.get_mut(r.bits())),
            ) else {
                break;
            };
            done += copy_chunks(tx, src, r.first.tx);
        }
        Ok(done)
    }

    /// The index of span `spanno`, when the bus runs.
    fn running_span(&self, spanno: u32) -> Result<usize, ChanError> {
        let si = self.spans.iter().position(|s| s.spanno == spanno).ok_or(ChanError::NoSuchSpan(spanno))?;
        self.running_index(self.spans[si].basechan)?;
        Ok(si)
    }

    /// Whether span `si`'s runs cover exactly its channels with chunks, each where its slot
    /// says (a check for tests; allocation-free).
    pub(super) fn runs_agree(&self, si: usize) -> bool {
        let span = &self.spans[si];
        let slots = &self.slots[span.first..span.first + span.channels as usize];
        let covered: usize = self.runs[si].iter().map(|r| usize::from(r.len)).sum();
        covered == slots.iter().filter(|s| s.chunks.is_some()).count()
            && self.runs[si].iter().all(|r| {
                (0..r.len)
                    .all(|k| slots.get(usize::from(r.at + k)).is_some_and(|s| s.chunks == Some(r.path(k))))
            })
    }

    /// Span `si`'s chunk runs, from its channels' slots (see [`ChunkRun`]).
    pub(super) fn chunk_runs(&self, si: usize) -> Vec<ChunkRun> {
        let span = &self.spans[si];
        let mut runs: Vec<ChunkRun> = Vec::new();
        for (i, slot) in self.slots[span.first..span.first + span.channels as usize].iter().enumerate() {
            let Some(p) = slot.chunks else { continue };
            let Ok(at) = u8::try_from(i) else { break };
            if let Some(r) = runs.last_mut()
                && usize::from(r.at) + usize::from(r.len) == i
                && r.path(r.len) == p
            {
                r.len += 1;
            } else {
                runs.push(ChunkRun { at, len: 1, first: p });
            }
        }
        runs
    }

    /// Sets the law of `channo`'s chunks (DAHDI's SETLAW; `system.conf` `alaw=`/`mulaw=`/
    /// `deflaw=`): [`Law::Default`] is the span's `deflaw`. Chunks are converted between it and
    /// the span's law on [`read_chunk`](Self::read_chunk)/[`write_chunk`](Self::write_chunk).
    pub fn set_law(&mut self, channo: u32, law: Law) -> Result<(), ChanError> {
        let ci = self.index(channo)?;
        let law = match law {
            Law::Mulaw | Law::Alaw => law,
            Law::Default => self.chans[ci].native,
            _ => return Err(ChanError::BadLaw(law.raw())),
        };
        self.chans[ci].law = law;
        self.refresh(ci);
        Ok(())
    }
}

/// Copies chunks from `src` to `dst`, as many as both hold, through `table` when the laws
/// differ; how many.
fn copy_chunks(dst: &mut [Chunk], src: &[Chunk], table: Option<&[u8; 256]>) -> usize {
    let n = dst.len().min(src.len());
    match table {
        Some(t) => dst.iter_mut().zip(src).for_each(|(d, s)| {
            d.iter_mut().zip(s).for_each(|(d, s)| *d = t[usize::from(*s)]);
        }),
        None => dst[..n].copy_from_slice(&src[..n]),
    }
    n
}
