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
        Ok(())
    }
}
