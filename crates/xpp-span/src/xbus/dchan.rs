//! Soft HDLC on a channel's timeslot (DAHDI's HDLCFCS and HDLCRAW): how a PRI D-channel, an
//! ordinary timeslot inside PCM (docs/reference/xpp-protocol.md §9.3), carries whole frames to
//! and from the PBX (docs/reference/dahdi-span-model.md §10).
//!
//! Each tick the channel's 8 received bytes go through the receiver ([`HdlcRx`]) and its 8
//! transmitted bytes come from the transmitter ([`HdlcTx`], flags when idle). The PBX reads
//! one frame at a time, in FCS mode with its two received FCS bytes at the end, and writes one
//! frame at a time with two trailing placeholder bytes (overwritten with the FCS): DAHDI's
//! userspace convention. A bad FCS, an abort or a frame that outgrew the buffers is a BADFCS,
//! ABORT or OVERRUN event on the channel, not reported while the span is in alarm. Frames wait
//! in fixed rings allocated with the channel's configuration: the tick path allocates nothing.

use xpp_chan::hdlc::{FrameRing, HdlcRate, HdlcRx, HdlcTx, RxEvent};

use crate::dahdi::Event;

/// Longest frame, FCS included (DAHDI's D-channel buffer size).
pub const MAX_FRAME: usize = 1024;
/// Received frames that wait for the PBX; a frame arriving to a full ring is dropped (OVERRUN).
pub const RX_FRAMES: usize = 16;
/// Frames the PBX has written that wait for the transmitter (beside the one going out).
pub const TX_FRAMES: usize = 8;

/// Counters of one soft-HDLC channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HdlcStats {
    /// Good frames received.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Frames with a bad FCS (or misaligned, or too short for one).
    pub bad_fcs: u64,
    /// Frames cut short by an abort sequence.
    pub aborts: u64,
    /// Frames dropped: too long for the buffer, or the receive ring was full.
    pub overruns: u64,
}

/// Why a frame was not accepted for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// Every transmit slot is taken (EAGAIN).
    Full,
    /// Too long, or in FCS mode shorter than one byte plus the two FCS placeholders.
    BadLength,
}

/// One channel's soft HDLC: receiver, transmitter and their frame rings.
#[derive(Debug, Clone)]
pub(crate) struct SoftHdlc {
    fcs: bool,
    rx: HdlcRx,
    tx: HdlcTx,
    rx_frames: FrameRing,
    tx_frames: FrameRing,
    stats: HdlcStats,
}

impl SoftHdlc {
    /// HDLCFCS (`fcs`: the FCS is checked on receive and generated on send) or HDLCRAW, at
    /// `rate`.
    pub(crate) fn new(fcs: bool, rate: HdlcRate) -> Self {
        let mut h = Self {
            fcs,
            rx: HdlcRx::new(MAX_FRAME, fcs),
            tx: HdlcTx::new(MAX_FRAME, fcs),
            rx_frames: FrameRing::new(RX_FRAMES, MAX_FRAME),
            tx_frames: FrameRing::new(TX_FRAMES, MAX_FRAME),
            stats: HdlcStats::default(),
        };
        h.set_rate(rate);
        h
    }

    /// DAHDI's HDLC_RATE: a frame half received or half sent is dropped; frames waiting in
    /// the rings stay.
    pub(crate) fn set_rate(&mut self, rate: HdlcRate) {
        self.rx.set_rate(rate);
        self.tx.set_rate(rate);
    }

    /// Whether this is an FCS channel (HDLCFCS).
    pub(crate) fn fcs(&self) -> bool {
        self.fcs
    }

    pub(crate) fn stats(&self) -> HdlcStats {
        self.stats
    }

    /// One tick: `rx` (the timeslot's received bytes) through the receiver, the errors to
    /// `on_error` as DAHDI events; `tx` filled from the transmitter.
    pub(crate) fn tick(&mut self, rx: &[u8], tx: &mut [u8], mut on_error: impl FnMut(Event)) {
        let Self { rx: receiver, rx_frames, stats, .. } = self;
        receiver.feed(rx, |e| match e {
            RxEvent::Frame(f) => {
                if rx_frames.push(f) {
                    stats.rx_frames += 1;
                } else {
                    stats.overruns += 1;
                    on_error(Event::OVERRUN);
                }
            }
            RxEvent::BadFcs => {
                stats.bad_fcs += 1;
                on_error(Event::BADFCS);
            }
            RxEvent::Abort => {
                stats.aborts += 1;
                on_error(Event::ABORT);
            }
            RxEvent::Overrun => {
                stats.overruns += 1;
                on_error(Event::OVERRUN);
            }
        });
        self.next_frame();
        self.tx.fill(tx);
    }

    /// Hands the next waiting frame to an idle transmitter.
    fn next_frame(&mut self) {
        if self.tx.is_idle()
            && let Some(f) = self.tx_frames.front()
        {
            // Lengths were checked when the frame was written.
            if self.tx.send(f).is_ok() {
                self.stats.tx_frames += 1;
            }
            self.tx_frames.pop();
        }
    }

    /// The oldest received frame into `out` (truncated to `out`, the rest dropped, as a short
    /// `read()` on DAHDI); its full length, or `None` when no frame waits.
    pub(crate) fn read_frame(&mut self, out: &mut [u8]) -> Option<usize> {
        self.rx_frames.pop_into(out)
    }

    /// Queues `frame` for sending (in FCS mode its last two bytes are placeholders for the
    /// FCS).
    pub(crate) fn write_frame(&mut self, frame: &[u8]) -> Result<(), WriteError> {
        let min = if self.fcs { 3 } else { 1 };
        if frame.len() < min || frame.len() > MAX_FRAME {
            return Err(WriteError::BadLength);
        }
        if !self.tx_frames.push(frame) {
            return Err(WriteError::Full);
        }
        self.next_frame();
        Ok(())
    }

    /// Received frames waiting.
    pub(crate) fn frames_waiting(&self) -> usize {
        self.rx_frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two soft-HDLC ends wired back to back: what each sent in one tick, the other receives
    /// in the next.
    struct Link {
        ab: [u8; 8],
        ba: [u8; 8],
        errors: Vec<Event>,
    }

    impl Link {
        fn new() -> Self {
            Self { ab: [0xFF; 8], ba: [0xFF; 8], errors: Vec::new() }
        }

        fn run(&mut self, a: &mut SoftHdlc, b: &mut SoftHdlc, ticks: usize) {
            for _ in 0..ticks {
                let (mut out_a, mut out_b) = ([0u8; 8], [0u8; 8]);
                a.tick(&self.ba, &mut out_a, |e| self.errors.push(e));
                b.tick(&self.ab, &mut out_b, |e| self.errors.push(e));
                (self.ab, self.ba) = (out_a, out_b);
            }
        }
    }

    #[test]
    fn frames_go_through_with_the_dahdi_fcs_convention() {
        let (mut a, mut b) = (SoftHdlc::new(true, HdlcRate::Kbps64), SoftHdlc::new(true, HdlcRate::Kbps64));
        // SABME, address 0x00 0x01 (SAPI 0, TEI 0), with two FCS placeholders.
        a.write_frame(&[0x00, 0x01, 0x7F, 0, 0]).unwrap();
        a.write_frame(&[0x02, 0x01, 0x73, 0, 0]).unwrap();
        let mut link = Link::new();
        link.run(&mut a, &mut b, 10);
        assert!(link.errors.is_empty(), "{:?}", link.errors);
        let mut buf = [0u8; 64];
        let n = b.read_frame(&mut buf).unwrap();
        assert_eq!(n, 5, "the frame with its two received FCS bytes");
        assert_eq!(&buf[..3], [0x00, 0x01, 0x7F]);
        assert_eq!(xpp_chan::hdlc::fcs_bytes(&buf[..3]), [buf[3], buf[4]]);
        assert_eq!(b.read_frame(&mut buf), Some(5));
        assert_eq!(&buf[..3], [0x02, 0x01, 0x73]);
        assert_eq!(b.read_frame(&mut buf), None);
        assert_eq!((a.stats().tx_frames, b.stats().rx_frames), (2, 2));
    }

    #[test]
    fn a_damaged_frame_is_badfcs_and_an_aborted_one_abort() {
        let mut tx = HdlcTx::new(MAX_FRAME, true);
        let mut rx = SoftHdlc::new(true, HdlcRate::Kbps64);
        let mut errors = Vec::new();
        let mut out = [0u8; 8];
        // A frame with one bit flipped on the line.
        tx.send(&[0x00, 0x01, 0x7F, 0, 0]).unwrap();
        for tick in 0..6 {
            tx.fill(&mut out);
            if tick == 0 {
                // Inside the frame (the opening flag is the first byte).
                out[2] ^= 0x08;
            }
            rx.tick(&out, &mut [0; 8], |e| errors.push(e));
        }
        // A frame cut short by an abort.
        tx.send(&[0x00, 0x01, 0x7F, 0x55, 0x55, 0x55, 0x55, 0x55, 0, 0]).unwrap();
        tx.fill(&mut out);
        rx.tick(&out, &mut [0; 8], |e| errors.push(e));
        tx.abort();
        for _ in 0..4 {
            tx.fill(&mut out);
            rx.tick(&out, &mut [0; 8], |e| errors.push(e));
        }
        assert_eq!(errors, [Event::BADFCS, Event::ABORT]);
        assert_eq!((rx.stats().bad_fcs, rx.stats().aborts, rx.stats().rx_frames), (1, 1, 0));
    }

    #[test]
    fn the_rings_bound_what_waits() {
        let mut a = SoftHdlc::new(true, HdlcRate::Kbps64);
        assert_eq!(a.write_frame(&[1, 0]), Err(WriteError::BadLength));
        assert_eq!(a.write_frame(&[0; MAX_FRAME + 1]), Err(WriteError::BadLength));
        // One frame goes to the transmitter at once, TX_FRAMES more wait.
        for _ in 0..=TX_FRAMES {
            a.write_frame(&[0x55; 100]).unwrap();
        }
        assert_eq!(a.write_frame(&[0x55; 100]), Err(WriteError::Full));
        // A receiver nobody reads: frames past RX_FRAMES are OVERRUN.
        let mut b = SoftHdlc::new(true, HdlcRate::Kbps64);
        let mut link = Link::new();
        let mut written = TX_FRAMES + 1;
        while written < RX_FRAMES + 4 {
            if a.write_frame(&[0x55; 100]).is_ok() {
                written += 1;
            }
            link.run(&mut a, &mut b, 1);
        }
        link.run(&mut a, &mut b, 2000);
        assert_eq!(a.stats().tx_frames as usize, RX_FRAMES + 4);
        assert_eq!(b.frames_waiting(), RX_FRAMES);
        assert_eq!(b.stats().overruns, 4);
        assert_eq!(link.errors, [Event::OVERRUN; 4]);
        let mut short = [0u8; 4];
        assert_eq!(b.read_frame(&mut short), Some(100), "the full length, the rest dropped");
        assert_eq!(short, [0x55; 4]);
    }
}
