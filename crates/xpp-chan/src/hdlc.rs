//! Software HDLC for the PRI D-channel (docs/reference/dahdi-span-model.md §10).
//!
//! A PRI D-channel travels as an ordinary 64 kbit/s timeslot, so the host does the framing:
//! opening/closing flags (`0x7E`), zero-bit stuffing after five ones, the CRC-16 frame check
//! sequence (ITU-T X.25/Q.921: reflected polynomial 0x1021, preset 0xFFFF, complemented,
//! sent low byte first), aborts (seven or more ones) and idle fill (continuous flags).
//!
//! Both halves are fed one tick at a time (8 timeslot bytes per millisecond) and never allocate
//! after construction: the receiver assembles into a fixed buffer and hands each finished frame
//! to a callback as a borrowed slice; the transmitter holds one frame at a time.
//!
//! Conventions are DAHDI's userspace ones (§10): a received frame keeps its two FCS bytes at
//! the end, a frame with a wrong FCS is reported as [`RxEvent::BadFcs`], a frame cut by seven
//! ones as [`RxEvent::Abort`], one longer than the buffer as [`RxEvent::Overrun`]; a frame
//! handed to [`HdlcTx::send`] carries two trailing placeholder bytes that the transmitter
//! overwrites with the FCS.
//!
//! Bit order: inside a frame each octet goes least significant bit first (HDLC, ISO 3309); the
//! timeslot byte carries the line bits first bit in its most significant bit (G.704 transmits
//! bit 1 first). This is the decision the emulator's D-channel peer documents (xpp-emu MODEL.md
//! PRI-8), so both ends agree; a hardware capture would confirm it. Decision (the reference does not state it): a frame whose bit count
//! between flags is not a multiple of eight, or that is too short to hold an FCS and one byte,
//! is reported as [`RxEvent::BadFcs`] (DAHDI reports no separate "misaligned" event).
//!
//! Rate ([`HdlcRate`], DAHDI's HDLC_RATE): at 64 kbit/s all eight bits of a timeslot byte
//! carry the bit stream; at 56 kbit/s (a T1 line without B8ZS, where robbed bits and ones
//! density spoil the least significant bit) only the seven most significant do, first bit in
//! bit 7 as at 64k; the least significant bit is sent as 1 and ignored when received (the
//! reference core's placement, restated in docs/reference/dahdi-span-model.md §10).
//!
//! ```
//! use xpp_chan::hdlc::{HdlcRx, HdlcTx, RxEvent};
//!
//! let mut tx = HdlcTx::new(260, true);
//! tx.send(&[0x00, 0x01, 0x7F, 0x00, 0, 0]).unwrap(); // SABME + 2 FCS placeholders
//! let mut rx = HdlcRx::new(260, true);
//! let mut got = Vec::new();
//! for _ in 0..4 {
//!     let mut chunk = [0u8; 8];
//!     tx.fill(&mut chunk);
//!     rx.feed(&chunk, |ev| if let RxEvent::Frame(f) = ev { got.push(f.to_vec()) });
//! }
//! assert_eq!(&got[0][..4], &[0x00, 0x01, 0x7F, 0x00]);
//! ```

use thiserror::Error;

/// How many bits of each timeslot byte carry the HDLC bit stream (DAHDI's HDLC_RATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HdlcRate {
    /// 64 kbit/s: all eight bits.
    #[default]
    Kbps64,
    /// 56 kbit/s: bits 7..1 (first bit in bit 7); bit 0 is sent as 1 and ignored.
    Kbps56,
}

impl HdlcRate {
    /// From DAHDI's HDLC_RATE argument (56 or 64); `None` for anything else.
    pub fn from_kbps(kbps: u32) -> Option<Self> {
        match kbps {
            64 => Some(Self::Kbps64),
            56 => Some(Self::Kbps56),
            _ => None,
        }
    }

    /// 56 or 64.
    pub fn kbps(self) -> u32 {
        match self {
            Self::Kbps64 => 64,
            Self::Kbps56 => 56,
        }
    }

    /// Stream bits per timeslot byte.
    fn bits(self) -> u32 {
        match self {
            Self::Kbps64 => 8,
            Self::Kbps56 => 7,
        }
    }
}

/// The FCS register left by a CRC over a frame and its own (complemented) FCS.
pub const GOOD_FCS: u16 = 0xF0B8;
/// Preset of the FCS register.
pub const FCS_INIT: u16 = 0xFFFF;

const fn fcs_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x8408 } else { crc >> 1 };
            b += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static FCS_TABLE: [u16; 256] = fcs_table();

/// Runs the FCS register over `data` (start with [`FCS_INIT`]).
#[inline]
pub fn fcs_update(mut fcs: u16, data: &[u8]) -> u16 {
    for &b in data {
        fcs = (fcs >> 8) ^ FCS_TABLE[usize::from((fcs ^ u16::from(b)) as u8)];
    }
    fcs
}

/// The two FCS bytes to append to `data`, in line order.
pub fn fcs_bytes(data: &[u8]) -> [u8; 2] {
    (!fcs_update(FCS_INIT, data)).to_le_bytes()
}

/// What the receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxEvent<'a> {
    /// A whole frame; in FCS mode it ends with its two (checked) FCS bytes.
    Frame(&'a [u8]),
    /// A frame whose FCS was wrong (or that was misaligned or too short for one).
    BadFcs,
    /// A frame was cut short by an abort sequence (seven or more ones).
    Abort,
    /// A frame outgrew the receive buffer; it is dropped up to the next flag.
    Overrun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RxState {
    /// No flag seen since start, an abort or an overrun: wait for one.
    Hunt,
    /// Between flags: bits are frame data.
    Frame,
    /// The frame outgrew the buffer: drop bits until the next flag.
    Drop,
}

/// The receiving half: turns timeslot bytes into frames.
#[derive(Debug, Clone)]
pub struct HdlcRx {
    fcs_mode: bool,
    /// The lowest bit of a timeslot byte that carries the stream (0 at 64k, 1 at 56k).
    low_bit: u32,
    state: RxState,
    /// Consecutive one bits not yet classified (data, flag or abort).
    ones: u8,
    /// Whether the most recent bit stored in `acc` is the zero right before the current run
    /// of ones (the opening zero of a flag if the run ends up being one).
    zero_before_run: bool,
    /// Unstuffed data bits not yet moved into `buf`, least significant first.
    acc: u32,
    nbits: u32,
    buf: Box<[u8]>,
    len: usize,
    fcs: u16,
}

impl HdlcRx {
    /// A receiver for frames of up to `max_frame` bytes (FCS included); `fcs_mode` checks the
    /// FCS (HDLCFCS, the D-channel) or leaves it to the caller (HDLCRAW).
    pub fn new(max_frame: usize, fcs_mode: bool) -> Self {
        Self {
            fcs_mode,
            low_bit: 0,
            state: RxState::Hunt,
            ones: 0,
            zero_before_run: false,
            acc: 0,
            nbits: 0,
            buf: vec![0; max_frame.max(1)].into_boxed_slice(),
            len: 0,
            fcs: FCS_INIT,
        }
    }

    /// Sets the rate; a partial frame is dropped (as [`reset`](Self::reset)).
    pub fn set_rate(&mut self, rate: HdlcRate) {
        self.low_bit = 8 - rate.bits();
        self.reset();
    }

    /// Back to flag hunting; a partial frame is dropped silently.
    pub fn reset(&mut self) {
        self.state = RxState::Hunt;
        self.ones = 0;
        self.start_frame();
    }

    /// Whether the receiver is between flags (in frame sync).
    pub fn in_sync(&self) -> bool {
        self.state != RxState::Hunt
    }

    fn start_frame(&mut self) {
        self.acc = 0;
        self.nbits = 0;
        self.len = 0;
        self.fcs = FCS_INIT;
        self.zero_before_run = false;
    }

    /// Stores `n` data bits (the low `n` of `bits`).
    #[inline]
    fn push_bits(&mut self, bits: u32, n: u32) {
        if self.state != RxState::Frame {
            return;
        }
        self.acc |= bits << self.nbits;
        self.nbits += n;
        // Keep at least 8 bits back so the opening zero of a flag can still be taken back.
        while self.nbits >= 16 {
            if self.len == self.buf.len() {
                self.state = RxState::Drop;
                return;
            }
            let byte = self.acc as u8;
            self.buf[self.len] = byte;
            self.len += 1;
            self.fcs = (self.fcs >> 8) ^ FCS_TABLE[usize::from((self.fcs ^ u16::from(byte)) as u8)];
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    /// Feeds received timeslot bytes; `on_event` sees every finished frame or error in order.
    pub fn feed(&mut self, data: &[u8], mut on_event: impl FnMut(RxEvent<'_>)) {
        let low = self.low_bit;
        for &byte in data {
            // Fast paths for an idle line: a byte of ones inside a long run of ones, and (at
            // 64k) an aligned flag right after a flag (an empty frame), leave the state
            // unchanged.
            if byte | ((1 << low) - 1) == 0xFF && self.ones >= 7 {
                continue;
            }
            if byte == 0x7E
                && low == 0
                && self.ones == 0
                && self.state == RxState::Frame
                && self.nbits == 0
                && self.len == 0
            {
                continue;
            }
            for i in (low..8).rev() {
                let bit = (byte >> i) & 1;
                if bit == 1 {
                    self.ones += 1;
                    if self.ones == 7 {
                        if self.state == RxState::Frame && (self.nbits > 0 || self.len > 0) {
                            on_event(RxEvent::Abort);
                        }
                        self.state = RxState::Hunt;
                    } else if self.ones > 7 {
                        self.ones = 8; // saturate: idle mark
                    }
                    continue;
                }
                // A zero ends the run of ones.
                match self.ones {
                    0..=4 => {
                        let run = u32::from(self.ones);
                        self.push_bits((1 << run) - 1, run + 1);
                        self.zero_before_run = true;
                    }
                    5 => {
                        // Stuffed zero: the five ones are data, the zero is dropped.
                        self.push_bits(0x1F, 5);
                        self.zero_before_run = false;
                    }
                    6 => self.flag(&mut on_event),
                    _ => {
                        // The end of an abort or idle run: the zero may open a flag.
                        self.zero_before_run = false;
                    }
                }
                self.ones = 0;
            }
        }
    }

    fn flag(&mut self, on_event: &mut impl FnMut(RxEvent<'_>)) {
        match self.state {
            RxState::Hunt => {}
            RxState::Drop => on_event(RxEvent::Overrun),
            RxState::Frame => {
                if self.zero_before_run && self.nbits > 0 {
                    // That zero was the flag's opening bit, not data.
                    self.nbits -= 1;
                    self.acc &= (1u32 << self.nbits) - 1;
                }
                if !self.nbits.is_multiple_of(8) {
                    on_event(RxEvent::BadFcs);
                } else {
                    let mut overrun = false;
                    while self.nbits > 0 {
                        if self.len == self.buf.len() {
                            overrun = true;
                            break;
                        }
                        let byte = self.acc as u8;
                        self.buf[self.len] = byte;
                        self.len += 1;
                        self.fcs = fcs_update(self.fcs, &[byte]);
                        self.acc >>= 8;
                        self.nbits -= 8;
                    }
                    if overrun {
                        on_event(RxEvent::Overrun);
                    } else if self.len == 0 {
                        // Back-to-back flags: no frame.
                    } else if !self.fcs_mode {
                        on_event(RxEvent::Frame(&self.buf[..self.len]));
                    } else if self.len < 3 || self.fcs != GOOD_FCS {
                        on_event(RxEvent::BadFcs);
                    } else {
                        on_event(RxEvent::Frame(&self.buf[..self.len]));
                    }
                }
            }
        }
        self.state = RxState::Frame;
        self.start_frame();
    }
}

/// Why [`HdlcTx::send`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TxError {
    /// A frame is still going out; try again after [`HdlcTx::is_idle`].
    #[error("a frame is still being sent")]
    Busy,
    /// The frame does not fit the transmit buffer.
    #[error("frame of {len} bytes exceeds the {max}-byte buffer")]
    TooLong {
        /// The refused length.
        len: usize,
        /// The buffer size.
        max: usize,
    },
    /// In FCS mode a frame needs at least one byte and the two FCS placeholders.
    #[error("frame of {len} bytes is too short (FCS mode needs at least 3)")]
    TooShort {
        /// The refused length.
        len: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Idle,
    /// Sending `buf[pos..len]`, the opening flag already out.
    Data,
    /// Data out: the closing flag is next.
    Close,
}

/// The transmitting half: turns frames into timeslot bytes, flags when idle.
#[derive(Debug, Clone)]
pub struct HdlcTx {
    fcs_mode: bool,
    /// Stream bits per timeslot byte (8, or 7 at 56k).
    bits: u32,
    state: TxState,
    buf: Box<[u8]>,
    len: usize,
    pos: usize,
    /// Line bits not yet output, least significant first.
    out: u32,
    nout: u32,
    /// Consecutive data ones sent (for stuffing).
    ones: u8,
    frames_sent: u64,
}

impl HdlcTx {
    /// A transmitter for frames of up to `max_frame` bytes (FCS placeholders included).
    pub fn new(max_frame: usize, fcs_mode: bool) -> Self {
        Self {
            fcs_mode,
            bits: 8,
            state: TxState::Idle,
            buf: vec![0; max_frame.max(3)].into_boxed_slice(),
            len: 0,
            pos: 0,
            out: 0,
            nout: 0,
            ones: 0,
            frames_sent: 0,
        }
    }

    /// Sets the rate; a frame in progress is dropped (no abort: the far end's receiver at the
    /// old rate would not read it anyway) and the line goes back to flags.
    pub fn set_rate(&mut self, rate: HdlcRate) {
        self.bits = rate.bits();
        self.state = TxState::Idle;
        self.out = 0;
        self.nout = 0;
        self.ones = 0;
    }

    /// Whether a new frame can be sent.
    pub fn is_idle(&self) -> bool {
        self.state == TxState::Idle
    }

    /// Frames completely sent (closing flag out) since construction.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Queues one frame (DAHDI write convention: in FCS mode the last two bytes are
    /// placeholders, replaced by the FCS).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), TxError> {
        if self.state != TxState::Idle {
            return Err(TxError::Busy);
        }
        if frame.len() > self.buf.len() {
            return Err(TxError::TooLong { len: frame.len(), max: self.buf.len() });
        }
        if self.fcs_mode && frame.len() < 3 {
            return Err(TxError::TooShort { len: frame.len() });
        }
        if frame.is_empty() {
            return Ok(());
        }
        self.buf[..frame.len()].copy_from_slice(frame);
        self.len = frame.len();
        if self.fcs_mode {
            let n = self.len - 2;
            let fcs = fcs_bytes(&self.buf[..n]);
            self.buf[n..self.len].copy_from_slice(&fcs);
        }
        self.pos = 0;
        self.ones = 0;
        self.push_raw(0x7E, 8); // opening flag
        self.state = TxState::Data;
        Ok(())
    }

    /// Drops the frame in progress and sends an abort (eight ones), then flags again.
    pub fn abort(&mut self) {
        if self.state != TxState::Idle {
            self.push_raw(0xFF, 8);
            self.state = TxState::Idle;
            self.ones = 0;
        }
    }

    #[inline]
    fn push_raw(&mut self, bits: u32, n: u32) {
        self.out |= bits << self.nout;
        self.nout += n;
    }

    /// Moves one data byte (stuffed) into the line bits.
    #[inline]
    fn push_data_byte(&mut self, byte: u8) {
        for i in 0..8 {
            let bit = u32::from((byte >> i) & 1);
            self.push_raw(bit, 1);
            if bit == 1 {
                self.ones += 1;
                if self.ones == 5 {
                    self.push_raw(0, 1);
                    self.ones = 0;
                }
            } else {
                self.ones = 0;
            }
        }
    }

    /// Fills `out` (a tick's 8 timeslot bytes, or any length) with line bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for slot in out {
            while self.nout < 8 {
                match self.state {
                    TxState::Idle => self.push_raw(0x7E, 8),
                    TxState::Data => {
                        let b = self.buf[self.pos];
                        self.pos += 1;
                        self.push_data_byte(b);
                        if self.pos == self.len {
                            self.state = TxState::Close;
                        }
                    }
                    TxState::Close => {
                        self.push_raw(0x7E, 8);
                        self.frames_sent += 1;
                        self.state = TxState::Idle;
                    }
                }
            }
            // `out` holds line bits first-in-LSB; the timeslot byte wants the first bit in
            // its MSB. At 56k seven bits go out, in bits 7..1, and bit 0 is a one.
            if self.bits == 8 {
                *slot = (self.out as u8).reverse_bits();
            } else {
                *slot = (self.out as u8 & 0x7F).reverse_bits() | 1;
            }
            self.out >>= self.bits;
            self.nout -= self.bits;
        }
    }
}

/// Whole frames waiting in a ring of fixed slots, allocated once: the D-channel's receive and
/// transmit queues without allocation on the tick path.
#[derive(Debug, Clone)]
pub struct FrameRing {
    data: Box<[u8]>,
    lens: Box<[usize]>,
    slot: usize,
    head: usize,
    len: usize,
}

impl FrameRing {
    /// `slots` frames of at most `max_frame` bytes each.
    pub fn new(slots: usize, max_frame: usize) -> Self {
        let slots = slots.max(1);
        Self {
            data: vec![0; slots * max_frame].into_boxed_slice(),
            lens: vec![0; slots].into_boxed_slice(),
            slot: max_frame,
            head: 0,
            len: 0,
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No frame waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len == self.lens.len()
    }

    /// Appends a copy of `frame`; `false` (nothing kept) when the ring is full or the frame is
    /// longer than a slot.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if self.is_full() || frame.len() > self.slot {
            return false;
        }
        let at = (self.head + self.len) % self.lens.len();
        self.data[at * self.slot..][..frame.len()].copy_from_slice(frame);
        self.lens[at] = frame.len();
        self.len += 1;
        true
    }

    /// The oldest frame.
    pub fn front(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.data[self.head * self.slot..][..self.lens[self.head]])
    }

    /// Takes the oldest frame into `out` (truncated to it, the rest dropped); its full length,
    /// or `None` when no frame waits.
    pub fn pop_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let f = self.front()?;
        let (len, n) = (f.len(), f.len().min(out.len()));
        out[..n].copy_from_slice(&f[..n]);
        self.pop();
        Some(len)
    }

    /// Drops the oldest frame.
    pub fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % self.lens.len();
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(tx: &mut HdlcTx, rx: &mut HdlcRx, ticks: usize, evs: &mut Vec<Result<Vec<u8>, String>>) {
        for _ in 0..ticks {
            let mut chunk = [0u8; 8];
            tx.fill(&mut chunk);
            rx.feed(&chunk, |ev| match ev {
                RxEvent::Frame(f) => evs.push(Ok(f.to_vec())),
                other => evs.push(Err(format!("{other:?}"))),
            });
        }
    }

    #[test]
    fn fcs_known_vector() {
        // CRC-16/X-25 check value of "123456789" is 0x906E.
        assert_eq!(!fcs_update(FCS_INIT, b"123456789"), 0x906E);
        let mut f = b"123456789".to_vec();
        f.extend_from_slice(&fcs_bytes(b"123456789"));
        assert_eq!(fcs_update(FCS_INIT, &f), GOOD_FCS);
    }

    #[test]
    fn line_order_matches_the_emulator_peer() {
        // xpp-emu MODEL.md PRI-8: frame [0xFF] after its opening flag is 1 1 1 1 1 (stuffed 0)
        // 1 1 1 on the line, first bit in the MSB of the timeslot byte.
        let mut tx = HdlcTx::new(8, false);
        tx.send(&[0xFF]).unwrap();
        let mut out = [0u8; 2];
        tx.fill(&mut out);
        assert_eq!(out, [0x7E, 0b1111_1011]);
    }

    #[test]
    fn at_56k_the_stream_fills_the_top_seven_bits_and_bit_0_is_one() {
        // Flags on the line: 0111 1110 0111 1110 ...; seven per byte into bits 7..1.
        let mut tx = HdlcTx::new(8, false);
        tx.set_rate(HdlcRate::Kbps56);
        let mut out = [0u8; 2];
        tx.fill(&mut out);
        assert_eq!(out, [0b0111_1111, 0b0011_1111]);
        // The receiver ignores bit 0: frames arrive whatever it carries.
        tx.send(&[0xA5, 0x00, 0xFF]).unwrap();
        let mut line = [0u8; 16];
        tx.fill(&mut line);
        line.iter_mut().step_by(3).for_each(|b| *b &= 0xFE);
        let mut rx = HdlcRx::new(8, false);
        rx.set_rate(HdlcRate::Kbps56);
        let mut got = Vec::new();
        rx.feed(&[0x7F, 0x3F], |_| {});
        rx.feed(&line, |ev| got.push(format!("{ev:?}")));
        assert_eq!(got, [format!("{:?}", RxEvent::Frame(&[0xA5, 0x00, 0xFF]))]);
        assert_eq!((HdlcRate::from_kbps(56), HdlcRate::from_kbps(48)), (Some(HdlcRate::Kbps56), None));
        assert_eq!(HdlcRate::default().kbps(), 64);
    }

    #[test]
    fn idle_is_flags() {
        let mut tx = HdlcTx::new(64, true);
        let mut out = [0u8; 8];
        tx.fill(&mut out);
        assert_eq!(out, [0x7E; 8]);
    }

    #[test]
    fn stuffing_of_ones() {
        // 0xFF data needs stuffing: no run of six ones may appear inside the frame.
        let mut tx = HdlcTx::new(64, false);
        tx.send(&[0xFF, 0xFF]).unwrap();
        let mut out = [0u8; 8];
        tx.fill(&mut out);
        let bits: Vec<u8> = out.iter().flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1)).collect();
        // skip the opening flag, then look for 111111 inside data (before the closing flag)
        let data = &bits[8..8 + 16 + 3];
        assert!(!data.windows(6).any(|w| w.iter().all(|&b| b == 1)), "{data:?}");
    }

    #[test]
    fn bad_fcs_and_abort_are_reported() {
        let mut tx = HdlcTx::new(64, false);
        let mut rx = HdlcRx::new(64, true);
        let mut evs = Vec::new();
        // raw tx: the "FCS" is garbage for an FCS receiver
        tx.send(&[1, 2, 3, 4, 5]).unwrap();
        run(&mut tx, &mut rx, 3, &mut evs);
        assert_eq!(evs, vec![Err("BadFcs".into())]);
        evs.clear();
        let mut tx = HdlcTx::new(64, true);
        tx.send(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0]).unwrap();
        let mut chunk = [0u8; 8];
        tx.fill(&mut chunk);
        rx.feed(&chunk, |_| panic!("no event before the abort"));
        tx.abort();
        run(&mut tx, &mut rx, 3, &mut evs);
        assert_eq!(evs, vec![Err("Abort".into())]);
    }

    #[test]
    fn overrun_is_reported_then_recovers() {
        let mut tx = HdlcTx::new(64, true);
        let mut rx = HdlcRx::new(8, true);
        let mut evs = Vec::new();
        tx.send(&[0x55; 20]).unwrap();
        run(&mut tx, &mut rx, 5, &mut evs);
        assert_eq!(evs, vec![Err("Overrun".into())]);
        evs.clear();
        tx.send(&[9, 8, 7, 0, 0]).unwrap();
        run(&mut tx, &mut rx, 3, &mut evs);
        assert_eq!(evs.len(), 1);
        assert_eq!(&evs[0].as_ref().unwrap()[..3], &[9, 8, 7]);
    }

    #[test]
    fn shared_zero_between_flags() {
        // flag, one byte 0x01 + FCS, closing flag sharing its zero with the next flag
        let mut f = vec![0x01];
        f.extend_from_slice(&fcs_bytes(&[0x01]));
        let mut bits: Vec<u8> = vec![0, 1, 1, 1, 1, 1, 1, 0];
        let mut ones = 0;
        for b in &f {
            for i in 0..8 {
                let bit = (b >> i) & 1;
                bits.push(bit);
                ones = if bit == 1 { ones + 1 } else { 0 };
                if ones == 5 {
                    bits.push(0);
                    ones = 0;
                }
            }
        }
        bits.extend_from_slice(&[0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]);
        while !bits.len().is_multiple_of(8) {
            bits.push(1);
        }
        let bytes: Vec<u8> =
            bits.chunks(8).map(|c| c.iter().enumerate().fold(0, |a, (i, &b)| a | (b << (7 - i)))).collect();
        let mut rx = HdlcRx::new(16, true);
        let mut frames = Vec::new();
        rx.feed(&bytes, |ev| frames.push(format!("{ev:?}")));
        assert_eq!(frames, vec![format!("{:?}", RxEvent::Frame(&f))]);
    }

    /// A receiver's events as they come: whole frames, or the other events by name.
    fn record(got: &mut Vec<Result<Vec<u8>, String>>) -> impl FnMut(RxEvent<'_>) + '_ {
        |ev| {
            got.push(match ev {
                RxEvent::Frame(f) => Ok(f.to_vec()),
                other => Err(format!("{other:?}")),
            });
        }
    }

    proptest! {
        #[test]
        fn frames_survive_stuffing_and_fcs(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..6)
        ) {
            let mut tx = HdlcTx::new(302, true);
            let mut rx = HdlcRx::new(302, true);
            let mut got = Vec::new();
            for f in &frames {
                let mut w = f.clone();
                w.extend_from_slice(&[0, 0]);
                tx.send(&w).unwrap();
                while !tx.is_idle() {
                    let mut chunk = [0u8; 8];
                    tx.fill(&mut chunk);
                    rx.feed(&chunk, record(&mut got));
                }
            }
            // flush the closing flag through
            let mut chunk = [0u8; 8];
            tx.fill(&mut chunk);
            rx.feed(&chunk, record(&mut got));
            prop_assert_eq!(got.len(), frames.len());
            for (g, f) in got.iter().zip(&frames) {
                let g = g.as_ref().unwrap();
                prop_assert_eq!(&g[..g.len() - 2], &f[..]);
                prop_assert_eq!(&g[g.len() - 2..], &fcs_bytes(f)[..]);
            }
        }

        #[test]
        fn frames_survive_56k_whatever_bit_0_carries(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..100), 1..4),
            noise in any::<u64>(),
        ) {
            let mut tx = HdlcTx::new(102, true);
            let mut rx = HdlcRx::new(102, true);
            tx.set_rate(HdlcRate::Kbps56);
            rx.set_rate(HdlcRate::Kbps56);
            let mut got = Vec::new();
            let mut k = 0u32;
            for f in &frames {
                let mut w = f.clone();
                w.extend_from_slice(&[0, 0]);
                tx.send(&w).unwrap();
                // Until the closing flag is out, and one chunk more to carry it through.
                let mut tail = 2;
                while tail > 0 {
                    tail -= u32::from(tx.is_idle());
                    let mut chunk = [0u8; 8];
                    tx.fill(&mut chunk);
                    for b in &mut chunk {
                        prop_assert_eq!(*b & 1, 1);
                        *b ^= u8::from(noise >> (k % 64) & 1 == 1);
                        k += 1;
                    }
                    rx.feed(&chunk, record(&mut got));
                }
            }
            prop_assert_eq!(got.len(), frames.len());
            for (g, f) in got.iter().zip(&frames) {
                let g = g.as_ref().unwrap();
                prop_assert_eq!(&g[..g.len() - 2], &f[..]);
            }
        }

        #[test]
        fn receiver_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), fcs in any::<bool>()) {
            let mut rx = HdlcRx::new(64, fcs);
            let mut n = 0usize;
            rx.feed(&data, |ev| if let RxEvent::Frame(f) = ev { n += f.len() });
            prop_assert!(n <= data.len());
        }

        #[test]
        fn a_bit_error_is_never_a_good_frame(
            f in proptest::collection::vec(any::<u8>(), 1..64), flip in any::<prop::sample::Index>()
        ) {
            let mut tx = HdlcTx::new(80, true);
            let mut w = f.clone();
            w.extend_from_slice(&[0, 0]);
            tx.send(&w).unwrap();
            let mut line = vec![0u8; 96];
            tx.fill(&mut line);
            let bit = flip.index(line.len() * 8);
            line[bit / 8] ^= 1 << (bit % 8);
            let mut rx = HdlcRx::new(80, true);
            let mut good = Vec::new();
            rx.feed(&line, |ev| if let RxEvent::Frame(g) = ev { good.push(g.to_vec()) });
            // A single bit error is caught by the FCS, or it hit a flag/idle bit and the
            // frame still arrives intact.
            for g in good {
                prop_assert_eq!(&g[..g.len() - 2], &f[..]);
            }
        }
    }
}
