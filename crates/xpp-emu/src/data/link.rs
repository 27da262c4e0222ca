//! Audio between two devices (MODEL.md PATCH-7): a [`CrossLink`] shared by two
//! [`DataInterface`](super::DataInterface)s, each ticking it on its own internal clock, with a
//! 4 ms elastic buffer per direction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Chunks (1 ms of 8 samples) a direction holds at most.
const CAPACITY: usize = 4;
/// Chunks a direction fills before its reader starts (half the buffer).
const PRIME: usize = 2;

#[derive(Debug, Default)]
struct Direction {
    fifo: VecDeque<[i16; 8]>,
    started: bool,
    last: [i16; 8],
    slips: u64,
    /// The latest line state of the sending side (line patches only).
    signal: Option<LineSignal>,
}

/// The line state one end of a cross-device line patch presents (PATCH-7 with PATCH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineSignal {
    /// An FXS port: battery (`Some(reversed)`) and ring voltage.
    Fxs { battery: Option<bool>, ringing: bool },
    /// An FXO port: its hook.
    Fxo { off_hook: bool },
}

/// One side of a [`CrossLink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkSide {
    /// Side A.
    A,
    /// Side B.
    B,
}

impl LinkSide {
    const fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
        }
    }
}

/// A cable between an audio channel or a line of one device and one of another (MODEL:
/// PATCH-7).
///
/// Clone it and give one clone to each device's
/// [`DataInterface::bridge_remote`](super::DataInterface::bridge_remote) (audio) or
/// [`DataInterface::patch_remote`](super::DataInterface::patch_remote) (an FXS↔FXO line), one as
/// [`LinkSide::A`] and one as [`LinkSide::B`]; a link serves one such pair. Each device moves one 1 ms chunk each way per
/// tick of its own clock; when the clocks differ (`crystal_ppm`, PLL) a direction's 4 ms
/// buffer overflows (the oldest chunk is dropped) or runs dry (the last chunk is repeated):
/// a slip, counted per direction.
#[derive(Debug, Clone, Default)]
pub struct CrossLink {
    // Decision: a mutex, not a lock-free ring: the two devices may run on two real-time
    // runner threads, and one lock per device per ms is cheap next to a tick.
    inner: Arc<Mutex<[Direction; 2]>>,
}

impl CrossLink {
    /// A new, empty link.
    pub fn new() -> Self {
        Self::default()
    }

    /// Slips so far toward `side` (drops on overflow plus repeats on underflow).
    pub fn slips(&self, toward: LinkSide) -> u64 {
        self.with(|d| d[toward.index()].slips)
    }

    fn with<R>(&self, f: impl FnOnce(&mut [Direction; 2]) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut g)
    }

    /// One ms of a line-patch end on `side`: publishes its line state `mine` and its audio;
    /// returns the other end's latest line state and the chunk to receive.
    // Decision: line state crosses as the latest value (a level, not a stream: no slips);
    // only audio goes through the elastic buffer.
    pub(crate) fn exchange_line(
        &self,
        side: LinkSide,
        mine: LineSignal,
        audio: &[i16],
    ) -> (Option<LineSignal>, Option<[i16; 8]>) {
        let peer = self.with(|d| {
            d[1 - side.index()].signal = Some(mine);
            d[side.index()].signal
        });
        (peer, self.exchange(side, audio))
    }

    /// One ms of `side`: `heard` (what its equipment received) goes toward the other side;
    /// returns the chunk its equipment plays, if any.
    pub(crate) fn exchange(&self, side: LinkSide, heard: &[i16]) -> Option<[i16; 8]> {
        self.with(|d| {
            let out = &mut d[1 - side.index()];
            for c in heard.chunks_exact(8) {
                let mut chunk = [0i16; 8];
                chunk.copy_from_slice(c);
                if out.fifo.len() >= CAPACITY {
                    // MODEL: PATCH-7 — overflow: drop the oldest ms.
                    out.fifo.pop_front();
                    out.slips += 1;
                }
                out.fifo.push_back(chunk);
            }
            let inp = &mut d[side.index()];
            if !inp.started {
                if inp.fifo.len() < PRIME {
                    return None;
                }
                inp.started = true;
            }
            match inp.fifo.pop_front() {
                Some(c) => {
                    inp.last = c;
                    Some(c)
                }
                None => {
                    // MODEL: PATCH-7 — underflow: repeat the last ms.
                    inp.slips += 1;
                    Some(inp.last)
                }
            }
        })
    }
}
