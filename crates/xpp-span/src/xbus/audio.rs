//! The PBX side of a channel's audio: the chunks of the last and the next tick, companded in
//! the channel's law or linear.

use super::{ChanError, XbusCore};
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
        let (first, n) = self.span_range(spanno)?;
        let mut done = 0;
        for (a, buf) in self.audio[first..first + n].iter().zip(out.iter_mut()) {
            let Some((x, b)) = a.pcm.filter(|_| !a.hdlc) else { continue };
            *buf = self.pcm[usize::from(x)].rx[usize::from(b)];
            if let Some(t) = g711::law_table(a.native, a.law) {
                buf.iter_mut().for_each(|s| *s = t[usize::from(*s)]);
            }
            done += 1;
        }
        Ok(done)
    }

    /// Every channel's chunk of span `spanno` for the next tick at once (`chunks[i]` to
    /// channel `basechan + i`, in its law; channels without audio and HDLC channels are
    /// skipped). The number of channels set.
    pub fn write_span_chunks(&mut self, spanno: u32, chunks: &[Chunk]) -> Result<usize, ChanError> {
        let (first, n) = self.span_range(spanno)?;
        let Self { audio, pcm, .. } = self;
        let mut done = 0;
        for (a, chunk) in audio[first..first + n].iter().zip(chunks) {
            let Some((x, b)) = a.pcm.filter(|_| !a.hdlc) else { continue };
            let tx = &mut pcm[usize::from(x)].tx[usize::from(b)];
            match g711::law_table(a.law, a.native) {
                Some(t) => tx.iter_mut().zip(chunk).for_each(|(d, s)| *d = t[usize::from(*s)]),
                None => *tx = *chunk,
            }
            done += 1;
        }
        Ok(done)
    }

    /// The channel index range of span `spanno`, when the bus runs.
    fn span_range(&self, spanno: u32) -> Result<(usize, usize), ChanError> {
        let s = self.spans.iter().find(|s| s.spanno == spanno).ok_or(ChanError::NoSuchSpan(spanno))?;
        let first_chan = s.basechan;
        self.running_index(first_chan)?;
        Ok((s.first, s.channels as usize))
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
        self.audio[ci].law = law;
        Ok(())
    }
}
