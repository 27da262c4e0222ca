//! One usbmon capture shared by several transports: a whole session across re-enumerations.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::pcap_writer::{Clock, PcapWriter, SharedSink, system_clock};
use super::usbmon;
use crate::transport::Transport;

/// A capture file that several [`PcapWriter`]s write into, one per device, like a `usbmon`
/// capture of a whole bus (`tshark -i usbmon1`).
///
/// A cold bring-up goes through three devices in turn: the FX2 in its boot ROM (E4E4:1160),
/// the USB firmware (11x1) and the running device (11x2), each a new enumeration, so a new
/// [`Transport`]. Attach each one to the same sink and the file holds the whole session:
///
/// - **Addresses**: each writer gets the next device address on the sink's bus (2, 3, 4, …:
///   address 1 is the root hub, as on Linux) when it records its first transfer, so a
///   transport opened and dropped unused takes none. [`PcapSink::attach_at`] picks one.
/// - **Enumeration**: just before a device's first transfer the sink records the kernel's
///   GET_DESCRIPTOR reads of its device and configuration descriptors, built from
///   [`Transport::info`] (IDs, `bcdDevice`, interfaces, endpoints; no strings), as a bus
///   capture shows a device appearing. [`PcapReplay`](super::PcapReplay) rebuilds the device
///   info from them.
/// - **Order**: URB ids are unique in the file; timestamps come from one clock and never go
///   back (a reading earlier than the previous record's is raised to it); each record is
///   written whole under the sink's lock, so writers on several threads interleave by record.
/// - **Errors**: the first write error stops the whole capture; [`PcapSink::finish`] returns
///   it.
///
/// [`PcapSink::opener`] wraps a device opener (the closure `xpp_span`'s bring-up calls after
/// each re-enumeration) so that every transport it opens is recorded.
///
/// ```
/// use xpp_usb::middleware::PcapSink;
/// # fn open() -> Option<xpp_usb::UsbIpTransport> { None }
/// let sink = PcapSink::new(Vec::new())?;
/// let mut open_recorded = sink.opener(open); // FnMut() -> Option<PcapWriter<_, PcapSink<_>>>
/// assert!(open_recorded().is_none());
/// drop(open_recorded);                       // it holds a handle on the sink
/// let bytes = sink.finish()?;                // the file header, and whatever was recorded
/// assert_eq!(bytes.len(), 24);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct PcapSink<W> {
    shared: Arc<Shared<W>>,
}

struct Shared<W> {
    state: Mutex<State<W>>,
}

struct State<W> {
    out: W,
    clock: Clock,
    last: Duration,
    next_id: u64,
    busnum: u16,
    next_devnum: u8,
    error: Option<io::Error>,
    buf: Vec<u8>,
}

impl<W> Clone for PcapSink<W> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<W> core::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = self.shared.lock();
        f.debug_struct("PcapSink")
            .field("next_id", &s.next_id)
            .field("busnum", &s.busnum)
            .field("next_devnum", &s.next_devnum)
            .field("error", &s.error)
            .finish_non_exhaustive()
    }
}

impl<W> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Copies an `io::Error` (which is not `Clone`) for a second holder.
fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl<W: Write + Send> SharedSink for Shared<W> {
    fn next_id(&self) -> u64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        id
    }

    fn next_address(&self) -> (u16, u8) {
        let mut s = self.lock();
        let devnum = s.next_devnum;
        // Addresses 1..=127; 1 is the root hub's, so wrap to 2.
        s.next_devnum = if devnum >= 127 { 2 } else { devnum + 1 };
        (s.busnum, devnum)
    }

    fn write_with(&self, build: &mut dyn FnMut(Duration, &mut Vec<u8>)) -> io::Result<()> {
        let mut s = self.lock();
        if let Some(e) = &s.error {
            return Err(copy_error(e));
        }
        let now = (s.clock)().max(s.last);
        s.last = now;
        let State { out, buf, .. } = &mut *s;
        buf.clear();
        build(now, buf);
        if let Err(e) = out.write_all(buf) {
            let copy = copy_error(&e);
            s.error = Some(e);
            return Err(copy);
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> PcapSink<W> {
    /// A capture of bus 1 written to `out` (the file header at once), timestamps from the
    /// system clock.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_clock(out, system_clock())
    }

    /// Like [`PcapSink::new`] with a caller-supplied clock (deterministic recordings).
    pub fn with_clock(mut out: W, clock: Clock) -> io::Result<Self> {
        out.write_all(&usbmon::file_header())?;
        let state = State {
            out,
            clock,
            last: Duration::ZERO,
            next_id: 1,
            busnum: 1,
            next_devnum: 2,
            error: None,
            buf: Vec::with_capacity(usbmon::HEADER_LEN + 512 + 16),
        };
        Ok(Self { shared: Arc::new(Shared { state: Mutex::new(state) }) })
    }

    /// Sets the bus number of the devices attached from now on (default 1).
    #[must_use]
    pub fn with_bus(self, busnum: u16) -> Self {
        self.shared.lock().busnum = busnum;
        self
    }

    /// Records `inner` into this capture as the next device on the bus (its address is given
    /// at its first transfer).
    pub fn attach<T: Transport>(&self, inner: T) -> PcapWriter<T, Self> {
        PcapWriter::shared(inner, self.clone(), self.shared.clone(), None)
    }

    /// Records `inner` into this capture as device `devnum` on bus `busnum`.
    pub fn attach_at<T: Transport>(&self, inner: T, busnum: u16, devnum: u8) -> PcapWriter<T, Self> {
        PcapWriter::shared(inner, self.clone(), self.shared.clone(), Some((busnum, devnum)))
    }

    /// Wraps a device opener: every transport `open` returns is attached to this capture.
    pub fn opener<T: Transport>(
        &self,
        mut open: impl FnMut() -> Option<T>,
    ) -> impl FnMut() -> Option<PcapWriter<T, Self>> {
        let sink = self.clone();
        move || open().map(|t| sink.attach(t))
    }

    /// Whether a write failed (recording stopped then for every writer).
    pub fn has_error(&self) -> bool {
        self.shared.lock().error.is_some()
    }

    /// Flushes the output and returns it, or the first write error. Every writer attached
    /// must be finished or dropped first (and every other clone of the sink), otherwise this
    /// fails with [`io::ErrorKind::Other`] after flushing.
    pub fn finish(self) -> io::Result<W> {
        {
            let mut s = self.shared.lock();
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            s.out.flush()?;
        }
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(shared.state.into_inner().unwrap_or_else(PoisonError::into_inner).out),
            Err(_) => Err(io::Error::other("PcapSink::finish: writers or clones still attached")),
        }
    }
}

/// Writes raw bytes into the capture, each call whole under the lock (what a writer's
/// [`PcapWriter::flush`] and [`PcapWriter::finish`] use; records go through the sink itself).
impl<W: Write + Send> Write for PcapSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.lock().out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.shared.lock();
        if let Some(e) = &s.error {
            return Err(copy_error(e));
        }
        s.out.flush()
    }
}
