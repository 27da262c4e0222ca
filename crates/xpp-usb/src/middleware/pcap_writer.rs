//! Recording every transfer of a transport as a usbmon pcap file.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::usbmon::{
    self, EventType, FLAG_DATA_IN, FLAG_DATA_OUT, FLAG_DATA_PRESENT, FLAG_SETUP_ABSENT, FLAG_SETUP_PRESENT,
    HEADER_LEN, SNAPLEN, STATUS_IN_PROGRESS, UrbHeader, XferType, status_to_errno,
};
use crate::info::{DeviceInfo, Direction, TransferType, endpoint_direction};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// `transfer_flags` bit of an IN URB.
const URB_DIR_IN: u32 = 0x200;

/// The writer's time source: time since the Unix epoch.
pub type Clock = Box<dyn FnMut() -> Duration + Send>;

/// The default [`Clock`]: [`SystemTime::now`] (0 if the system clock is before 1970).
pub fn system_clock() -> Clock {
    Box::new(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// A [`Transport`] that forwards to `T` and records every transfer to `W` as a Linux usbmon
/// pcap file (link type 220), which Wireshark and `tshark` open directly.
///
/// # What is recorded
///
/// Each transfer gives two records sharing a URB id (unique per transfer, counting up):
/// - an `'S'` record when it is submitted: bulk OUT and control OUT carry their data, bulk
///   IN and control IN carry none (`flag_data = '<'`, `length` = bytes requested); control
///   transfers carry the SETUP packet;
/// - a `'C'` record when it completes (returned by `wait_next_complete`, or a control call
///   returns): IN carries the received bytes, OUT none (`flag_data = '>'`); `status` is 0 or
///   the negative errno of [`usbmon::status_to_errno`].
///
/// A submit the inner transport refuses gives one `'E'` record with the error status and no
/// completion. [`Transport::reset`] and [`Transport::cancel_all`] are not URBs and leave no
/// record of their own (the cancelled transfers' completions are recorded). Bulk endpoints not
/// in [`Transport::info`] are recorded as bulk.
///
/// # Flushing and errors
///
/// The file header is written by [`PcapWriter::new`]; each record is written with one
/// `write_all` as its event happens, so a `W` without a buffer (a `File`) holds every event
/// as soon as the call returns. With a `BufWriter`, call [`PcapWriter::flush`] (or
/// [`PcapWriter::finish`]) to push the buffered records out; dropping the writer without
/// finishing leaves flushing to `W`'s own drop. A write error does not disturb the
/// transport: recording stops, the first error is kept and returned by
/// [`PcapWriter::finish`] (and [`PcapWriter::error`] tells whether one happened).
///
/// # One file, several devices
///
/// A writer made by [`PcapSink::attach`](super::PcapSink::attach) writes into a capture
/// shared with other writers, one per device, like a `usbmon` capture of a whole bus: see
/// [`PcapSink`](super::PcapSink). Its `W` is the sink handle; URB ids, timestamps and the
/// first write error are the sink's.
pub struct PcapWriter<T: Transport, W: Write> {
    inner: T,
    out: W,
    output: Output,
    busnum: u16,
    devnum: u8,
    /// URB ids of the transfers pending per endpoint, in submission order.
    pending: BTreeMap<u8, VecDeque<u64>>,
    error: Option<io::Error>,
    buf: Vec<u8>,
}

/// Where a writer's URB ids and timestamps come from, and where its records go.
enum Output {
    /// Its own file: its clock, ids counting from 1, records written to `out`.
    Own { clock: Clock, next_id: u64 },
    /// A capture shared with other writers ([`super::PcapSink`]); `enumerated` once the
    /// device's descriptors are recorded (just before its first transfer).
    Shared { sink: Arc<dyn SharedSink>, enumerated: bool },
}

/// The part of a [`super::PcapSink`] its writers use.
pub(super) trait SharedSink: Send + Sync {
    /// A URB id unique in the capture.
    fn next_id(&self) -> u64;
    /// The next device address on the capture's bus: `(busnum, devnum)`.
    fn next_address(&self) -> (u16, u8);
    /// Writes one record under the sink's lock: `build` gets the timestamp (never earlier than
    /// the previous record's) and appends the record's bytes to the buffer.
    fn write_with(&self, build: &mut dyn FnMut(Duration, &mut Vec<u8>)) -> io::Result<()>;
}

impl<T: Transport, W: Write> core::fmt::Debug for PcapWriter<T, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let next_id = match &self.output {
            Output::Own { next_id, .. } => Some(next_id),
            Output::Shared { .. } => None,
        };
        f.debug_struct("PcapWriter")
            .field("next_id", &next_id)
            .field("busnum", &self.busnum)
            .field("devnum", &self.devnum)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T: Transport, W: Write + Send> PcapWriter<T, W> {
    /// Wraps `inner`, writing the pcap file header to `out` at once. Timestamps come from the
    /// system clock; the device is recorded as bus 1, address 1.
    pub fn new(inner: T, out: W) -> io::Result<Self> {
        Self::with_clock(inner, out, system_clock())
    }

    /// Like [`PcapWriter::new`] with a caller-supplied clock (deterministic tests, simulated
    /// time).
    pub fn with_clock(inner: T, mut out: W, clock: Clock) -> io::Result<Self> {
        out.write_all(&usbmon::file_header())?;
        Ok(Self::build(inner, out, Output::Own { clock, next_id: 1 }, (1, 1)))
    }

    /// A writer into a shared capture; the device gets its address at its first record
    /// unless `address` is given.
    pub(super) fn shared(inner: T, out: W, sink: Arc<dyn SharedSink>, address: Option<(u16, u8)>) -> Self {
        // devnum 0 (the default address, never a configured device's) marks "not yet given".
        Self::build(inner, out, Output::Shared { sink, enumerated: false }, address.unwrap_or((0, 0)))
    }

    fn build(inner: T, out: W, output: Output, (busnum, devnum): (u16, u8)) -> Self {
        Self {
            inner,
            out,
            output,
            busnum,
            devnum,
            pending: BTreeMap::new(),
            error: None,
            buf: Vec::with_capacity(HEADER_LEN + 512 + 16),
        }
    }

    /// Sets the bus number and device address written in every record (Wireshark shows them
    /// as the source/destination `bus.dev.ep`). For a writer into a [`super::PcapSink`], call
    /// it before the first transfer.
    #[must_use]
    pub fn with_address(mut self, busnum: u16, devnum: u8) -> Self {
        self.busnum = busnum;
        self.devnum = devnum;
        self
    }

    /// The wrapped transport.
    pub const fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably (transfers made through it directly are not recorded).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The bus number and device address in the records (`(0, 0)` for a writer into a
    /// [`super::PcapSink`] that has recorded nothing yet).
    pub const fn address(&self) -> (u16, u8) {
        (self.busnum, self.devnum)
    }

    /// Whether a write failed (recording stopped then).
    pub const fn error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// Flushes `W`.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the transport and the output, or the first write error.
    pub fn finish(mut self) -> io::Result<(T, W)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok((self.inner, self.out))
    }

    fn xfer_type(&self, endpoint: u8) -> XferType {
        match self.inner.info().endpoint(endpoint).map(|e| e.transfer_type) {
            Some(TransferType::Interrupt) => XferType::Interrupt,
            Some(TransferType::Isochronous) => XferType::Isochronous,
            Some(TransferType::Control) => XferType::Control,
            _ => XferType::Bulk,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        id: u64,
        event: EventType,
        xfer_type: XferType,
        endpoint: u8,
        setup: Option<[u8; 8]>,
        status: i32,
        length: usize,
        data: Option<&[u8]>,
    ) {
        if self.error.is_some() {
            return;
        }
        let rec = RecordSpec { id, event, xfer_type, endpoint, setup, status, length, data };
        let result = match &mut self.output {
            Output::Own { clock, .. } => {
                let now = clock();
                self.buf.clear();
                rec.encode(now, self.busnum, self.devnum, &mut self.buf);
                self.out.write_all(&self.buf)
            }
            Output::Shared { sink, enumerated } => {
                let sink = Arc::clone(sink);
                if self.devnum == 0 {
                    (self.busnum, self.devnum) = sink.next_address();
                }
                let (busnum, devnum) = (self.busnum, self.devnum);
                let mut r = Ok(());
                if !*enumerated {
                    *enumerated = true;
                    r = enumerate(&*sink, self.inner.info(), busnum, devnum);
                }
                r.and_then(|()| sink.write_with(&mut |now, buf| rec.encode(now, busnum, devnum, buf)))
            }
        };
        if let Err(e) = result {
            log::warn!("pcap writer: recording stopped: {e}");
            self.error = Some(e);
        }
    }

    fn new_id(&mut self) -> u64 {
        match &mut self.output {
            Output::Own { next_id, .. } => {
                let id = *next_id;
                *next_id += 1;
                id
            }
            Output::Shared { sink, .. } => sink.next_id(),
        }
    }

    fn control(
        &mut self,
        setup: ControlSetup,
        len: usize,
        out_data: Option<&[u8]>,
        run: impl FnOnce(&mut T) -> (Result<usize, TransferError>, Option<Vec<u8>>),
    ) -> Result<usize, TransferError> {
        let id = self.new_id();
        let ep = if setup.direction() == Direction::In { 0x80 } else { 0x00 };
        let packet = setup.to_bytes(u16::try_from(len).unwrap_or(u16::MAX));
        self.record(
            id,
            EventType::Submit,
            XferType::Control,
            ep,
            Some(packet),
            STATUS_IN_PROGRESS,
            len,
            out_data,
        );
        let (r, in_data) = run(&mut self.inner);
        let status = status_to_errno(r.map(drop));
        let n = r.unwrap_or(0);
        self.record(id, EventType::Complete, XferType::Control, ep, None, status, n, in_data.as_deref());
        r
    }
}

/// One record to write, before it has a timestamp and an address.
struct RecordSpec<'a> {
    id: u64,
    event: EventType,
    xfer_type: XferType,
    endpoint: u8,
    setup: Option<[u8; 8]>,
    status: i32,
    length: usize,
    data: Option<&'a [u8]>,
}

impl RecordSpec<'_> {
    /// Appends the pcap record header, the usbmon header and the captured data to `buf`.
    fn encode(&self, now: Duration, busnum: u16, devnum: u8, buf: &mut Vec<u8>) {
        let ts_sec = now.as_secs();
        let ts_usec = now.subsec_micros();
        let data = self.data.unwrap_or_default();
        let max_cap = SNAPLEN as usize - HEADER_LEN;
        let cap = &data[..data.len().min(max_cap)];
        let is_in = endpoint_direction(self.endpoint) == Direction::In;
        let flag_data = if !data.is_empty() {
            FLAG_DATA_PRESENT
        } else if is_in {
            FLAG_DATA_IN
        } else {
            FLAG_DATA_OUT
        };
        let header = UrbHeader {
            id: self.id,
            event: self.event,
            xfer_type: self.xfer_type,
            endpoint: self.endpoint,
            devnum,
            busnum,
            flag_setup: if self.setup.is_some() { FLAG_SETUP_PRESENT } else { FLAG_SETUP_ABSENT },
            flag_data,
            ts_sec: ts_sec as i64,
            ts_usec: ts_usec as i32,
            status: self.status,
            length: u32::try_from(self.length).unwrap_or(u32::MAX),
            len_cap: cap.len() as u32,
            setup: self.setup.unwrap_or_default(),
            interval: 0,
            start_frame: 0,
            // URB_DIR_IN, as the kernel sets it on IN URBs.
            xfer_flags: if is_in { URB_DIR_IN } else { 0 },
            ndesc: 0,
        };
        let mut h = [0u8; HEADER_LEN];
        header.emit(&mut h);
        let incl = (HEADER_LEN + cap.len()) as u32;
        let orig = u32::try_from(HEADER_LEN + data.len()).unwrap_or(u32::MAX);
        // pcap record timestamps are 32-bit seconds: good until 2106.
        buf.extend_from_slice(&usbmon::record_header(ts_sec as u32, ts_usec, incl, orig));
        buf.extend_from_slice(&h);
        buf.extend_from_slice(cap);
    }
}

/// The device descriptor of `info` (USB 2.0, vendor-specific class, one configuration, no
/// strings: string indexes 0).
pub(super) fn device_descriptor(info: &DeviceInfo) -> [u8; 18] {
    let [v0, v1] = info.vendor_id.to_le_bytes();
    let [p0, p1] = info.product_id.to_le_bytes();
    let [d0, d1] = info.bcd_device.to_le_bytes();
    [18, 1, 0x00, 0x02, 0xFF, 0xFF, 0xFF, 64, v0, v1, p0, p1, d0, d1, 0, 0, 0, 1]
}

/// The full configuration descriptor of `info`: configuration 1, each interface (alternate
/// setting 0, vendor-specific class) followed by its endpoints.
pub(super) fn configuration_descriptor(info: &DeviceInfo) -> Vec<u8> {
    let mut d = vec![9, 2, 0, 0, info.interfaces.len() as u8, 1, 0, 0x80, 250];
    for i in &info.interfaces {
        d.extend_from_slice(&[9, 4, i.number, 0, i.endpoints.len() as u8, 0xFF, 0xFF, 0xFF, 0]);
        for e in &i.endpoints {
            let attributes = match e.transfer_type {
                TransferType::Control => 0,
                TransferType::Isochronous => 1,
                TransferType::Bulk => 2,
                TransferType::Interrupt => 3,
            };
            let [m0, m1] = e.max_packet_size.to_le_bytes();
            d.extend_from_slice(&[7, 5, e.address, attributes, m0, m1, 0]);
        }
    }
    let total = u16::try_from(d.len()).unwrap_or(u16::MAX).to_le_bytes();
    d[2..4].copy_from_slice(&total);
    d
}

/// Records the kernel's enumeration reads of a device new on the bus: GET_DESCRIPTOR of the
/// device and of the whole configuration, each a control IN submit and its completion with
/// the descriptor built from `info` (what a `usbmon` capture shows when a device appears, and
/// what [`super::PcapReplay`] reads the device info back from).
fn enumerate(sink: &dyn SharedSink, info: &DeviceInfo, busnum: u16, devnum: u8) -> io::Result<()> {
    const GET_DESCRIPTOR: u8 = 6;
    let device = device_descriptor(info);
    let config = configuration_descriptor(info);
    for (kind, data) in [(1u16, &device[..]), (2, &config[..])] {
        let id = sink.next_id();
        let setup = ControlSetup { request_type: 0x80, request: GET_DESCRIPTOR, value: kind << 8, index: 0 };
        let len = data.len();
        let submit = RecordSpec {
            id,
            event: EventType::Submit,
            xfer_type: XferType::Control,
            endpoint: 0x80,
            setup: Some(setup.to_bytes(u16::try_from(len).unwrap_or(u16::MAX))),
            status: STATUS_IN_PROGRESS,
            length: len,
            data: None,
        };
        sink.write_with(&mut |now, buf| submit.encode(now, busnum, devnum, buf))?;
        let complete =
            RecordSpec { event: EventType::Complete, setup: None, status: 0, data: Some(data), ..submit };
        sink.write_with(&mut |now, buf| complete.encode(now, busnum, devnum, buf))?;
    }
    Ok(())
}

impl<T: Transport, W: Write + Send> Transport for PcapWriter<T, W> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        let xt = self.xfer_type(endpoint);
        let len = buffer.len();
        let is_out = endpoint_direction(endpoint) == Direction::Out;
        // The submit record is built before the buffer moves; on refusal it becomes an 'E'.
        let copy = if is_out && self.error.is_none() { Some(buffer.clone()) } else { None };
        let id = self.new_id();
        match self.inner.submit(endpoint, buffer) {
            Ok(()) => {
                self.record(
                    id,
                    EventType::Submit,
                    xt,
                    endpoint,
                    None,
                    STATUS_IN_PROGRESS,
                    len,
                    copy.as_deref(),
                );
                self.pending.entry(endpoint).or_default().push_back(id);
                Ok(())
            }
            Err(e) => {
                self.record(id, EventType::Error, xt, endpoint, None, status_to_errno(Err(e)), len, None);
                Err(e)
            }
        }
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint)
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let c = self.inner.wait_next_complete(endpoint, timeout)?;
        let id = self.pending.get_mut(&endpoint).and_then(VecDeque::pop_front);
        // A completion we never saw submitted (submitted through get_mut) still gets an id.
        let id = id.unwrap_or_else(|| self.new_id());
        let xt = self.xfer_type(endpoint);
        let status = status_to_errno(c.status);
        let data = (endpoint_direction(endpoint) == Direction::In)
            .then(|| &c.buffer[..c.actual_len.min(c.buffer.len())]);
        self.record(id, EventType::Complete, xt, endpoint, None, status, c.actual_len, data);
        Some(c)
    }

    fn cancel_all(&mut self, endpoint: u8) {
        self.inner.cancel_all(endpoint);
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        self.control(setup, data.len(), Some(data), |t| (t.control_out(setup, data, timeout), None))
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        let len = buf.len();
        self.control(setup, len, None, |t| {
            let r = t.control_in(setup, buf, timeout);
            let got = r.as_ref().ok().map(|&n| buf[..n.min(len)].to_vec());
            (r, got)
        })
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        self.inner.reset()
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        // Recorded as the control transfer usbmon shows for it.
        let setup = ControlSetup::clear_halt(endpoint);
        self.control(setup, 0, Some(&[]), |t| (t.clear_halt(endpoint).map(|()| 0), None)).map(|_| ())
    }
}
