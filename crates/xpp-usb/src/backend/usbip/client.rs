//! [`UsbIpTransport`]: a [`Transport`] over a USB/IP connection.
//!
//! # Threads and locking
//! One reader thread per transport reads `RET_SUBMIT`/`RET_UNLINK` from the socket and
//! files each result in a shared table (one `Mutex` + `Condvar`); the owner's calls write
//! `CMD_SUBMIT`/`CMD_UNLINK` on their own thread (only `&mut self` methods write, so writes
//! need no lock). Dropping the transport shuts the socket down, which ends the reader, and
//! joins it: no thread outlives the transport.
//!
//! # Sequence numbers and ordering
//! Every command gets the next `seqnum` (starting at 1). Results are matched by `seqnum` and
//! handed out per endpoint in submission order, whatever order the server answers in.
//! `RET_SUBMIT` says nothing about direction, so the table remembers each submit's direction
//! until its `RET_SUBMIT` (or a successful `RET_UNLINK`) arrives.
//!
//! # Cancel
//! [`Transport::cancel_all`] sends `CMD_UNLINK` for every unfinished transfer of the
//! endpoint. A `RET_UNLINK` completes its target with [`TransferError::Cancelled`] unless the
//! target's `RET_SUBMIT` came first (then the real result stands). A server that never answers
//! an unlink leaves the transfer pending; waits stay bounded by their timeouts.
//!
//! # Disconnect
//! End of stream, a socket error or bytes that do not parse mark the transport gone: every
//! unfinished transfer completes with [`TransferError::Disconnected`], and every later call
//! fails with it.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec::{
    self, BasicHeader, CmdSubmit, CmdUnlink, DEVICE_LEN, ExportedDevice, INTERFACE_LEN, MAX_DEVICES,
    OP_HEADER_LEN, OpHeader, OpReply, OpRequest, URB_HEADER_LEN, Urb, UsbDevice, op,
};
use super::descriptors::{kind, parse_configuration, parse_string};
use crate::error::Error;
use crate::info::{DeviceInfo, Direction, TransferType, endpoint_direction};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// The default deadline of one set-up operation ([`list_devices`], [`UsbIpTransport::connect`]):
/// the TCP connect, the `OP_*` exchange and the descriptor reads together.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// How long [`Transport::reset`] and [`Transport::clear_halt`] wait for their control transfer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a timed-out control transfer waits for its unlink to be answered.
const UNLINK_GRACE: Duration = Duration::from_millis(500);

/// Maps a `RET_SUBMIT` status (0 or a negative Linux errno) to ours: the one error-mapping
/// function of this backend.
pub const fn map_status(status: i32) -> Result<(), TransferError> {
    Err(match status {
        0 => return Ok(()),
        -104 | -2 => TransferError::Cancelled, // ECONNRESET (unlinked), ENOENT (killed)
        -32 => TransferError::Stall,           // EPIPE
        -19 | -108 => TransferError::Disconnected, // ENODEV, ESHUTDOWN
        -71 | -84 | -62 | -75 | -121 | -63 | -70 => TransferError::Fault, // EPROTO EILSEQ ETIME EOVERFLOW EREMOTEIO ENOSR ECOMM
        -22 | -18 | -90 => TransferError::InvalidArgument,                // EINVAL, EXDEV, EMSGSIZE
        s => TransferError::Unknown(s.unsigned_abs()),
    })
}

/// The devices a USB/IP server exports (`OP_REQ_DEVLIST`), within [`DEFAULT_DEADLINE`].
pub fn list_devices(addr: impl ToSocketAddrs) -> Result<Vec<ExportedDevice>, Error> {
    list_devices_within(addr, DEFAULT_DEADLINE)
}

/// The devices a USB/IP server exports (`OP_REQ_DEVLIST`): connecting, asking and reading
/// the whole list take at most `deadline` together, whatever the server does
/// ([`Error::TimedOut`] past it, [`Error::Refused`] if nothing listens).
pub fn list_devices_within(
    addr: impl ToSocketAddrs,
    deadline: Duration,
) -> Result<Vec<ExportedDevice>, Error> {
    let mut op = Operation::connect(addr, "device list", deadline)?;
    let mut out = Vec::new();
    OpRequest::DevList.emit(&mut out)?;
    op.write_all(&out)?;
    match op.read_op_reply()? {
        OpReply::DevList { status: 0, devices } => Ok(devices),
        OpReply::DevList { status, .. } => {
            Err(Error::Other(format!("USB/IP server {}: device list failed (status {status})", op.addr)))
        }
        other => Err(Error::Other(format!("USB/IP server {}: unexpected reply {other:?}", op.addr))),
    }
}

/// One set-up operation on a fresh connection, under one overall deadline: every read and
/// write gets the time that is left, so a server that trickles bytes cannot stretch it.
pub(super) struct Operation {
    pub(super) stream: TcpStream,
    pub(super) addr: String,
    what: String,
    limit: Duration,
    deadline: Instant,
    /// Bytes handed to the codec's parsers (a reply is parsed in fixed-size pieces, then
    /// once whole: at most twice its length).
    pub(super) parsed: usize,
}

impl Operation {
    /// Connects to the first address of `addr` that answers.
    pub(super) fn connect(addr: impl ToSocketAddrs, what: &str, limit: Duration) -> Result<Self, Error> {
        let deadline = Instant::now() + limit;
        let mut last: Option<(std::net::SocketAddr, std::io::Error)> = None;
        for a in addr.to_socket_addrs()? {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::TimedOut { addr: a.to_string(), what: what.into(), after: limit });
            }
            match TcpStream::connect_timeout(&a, left) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(Self {
                        stream,
                        addr: a.to_string(),
                        what: what.into(),
                        limit,
                        deadline,
                        parsed: 0,
                    });
                }
                Err(e) => last = Some((a, e)),
            }
        }
        Err(match last {
            None => Error::NotFound("address resolved to nothing".into()),
            Some((a, e)) => match e.kind() {
                ErrorKind::ConnectionRefused => Error::Refused { addr: a.to_string() },
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    Error::TimedOut { addr: a.to_string(), what: "connect".into(), after: limit }
                }
                _ => Error::Io(e),
            },
        })
    }

    /// Takes over an already connected stream.
    fn over(stream: TcpStream, what: &str, limit: Duration) -> Self {
        let addr = stream.peer_addr().map_or_else(|_| "(unknown)".into(), |a| a.to_string());
        Self { stream, addr, what: what.into(), limit, deadline: Instant::now() + limit, parsed: 0 }
    }

    fn timed_out(&self) -> Error {
        Error::TimedOut { addr: self.addr.clone(), what: self.what.clone(), after: self.limit }
    }

    /// The time left, or the timeout error.
    pub(super) fn left(&self) -> Result<Duration, Error> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() { Err(self.timed_out()) } else { Ok(left) }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write_all(bytes).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => self.timed_out(),
            _ => Error::Io(e),
        })
    }

    /// Appends exactly `n` bytes from the stream to `buf`, before the deadline.
    fn fill(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<(), Error> {
        let mut at = buf.len();
        buf.resize(at + n, 0);
        while at < buf.len() {
            let left = self.left()?;
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf[at..]) {
                Ok(0) => {
                    return Err(Error::Other(format!(
                        "USB/IP server {}: connection closed during the {} (after {at} bytes)",
                        self.addr, self.what
                    )));
                }
                Ok(k) => at += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
        Ok(())
    }

    /// Reads one `OP_REP_*` message: the header, then each part whose length the parts
    /// before it gave, each parsed once on its own; then the whole message once. Linear in
    /// the message's length, and never reads past its end (URBs follow an import).
    pub(super) fn read_op_reply(&mut self) -> Result<OpReply, Error> {
        let mut msg = Vec::with_capacity(OP_HEADER_LEN + DEVICE_LEN);
        self.fill(&mut msg, OP_HEADER_LEN)?;
        self.parsed += OP_HEADER_LEN;
        let h = OpHeader::parse(&msg)?;
        match (h.code, h.status) {
            (op::REP_DEVLIST, 0) => {
                self.fill(&mut msg, 4)?;
                let n = u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
                // Past MAX_DEVICES: read nothing more; the whole-message parse below says so.
                for _ in 0..if n > MAX_DEVICES { 0 } else { n } {
                    let start = msg.len();
                    self.fill(&mut msg, DEVICE_LEN)?;
                    self.parsed += DEVICE_LEN;
                    let device = UsbDevice::parse(&msg[start..])?;
                    self.fill(&mut msg, usize::from(device.num_interfaces) * INTERFACE_LEN)?;
                }
            }
            (op::REP_IMPORT, 0) => self.fill(&mut msg, DEVICE_LEN)?,
            _ => {}
        }
        self.parsed += msg.len();
        Ok(OpReply::parse(&msg)?.0)
    }
}

/// Where a result goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A bulk/interrupt queue.
    Queue(u8),
    /// A synchronous control transfer.
    Control,
    /// Nobody (already cancelled): read and drop.
    Orphan,
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    target: Target,
    direction: Direction,
    requested: usize,
}

struct Slot {
    seqnum: u32,
    buffer: Vec<u8>,
    unlinking: bool,
    done: Option<(usize, Result<(), TransferError>)>,
}

/// A control transfer's IN bytes (empty for OUT) and status.
type ControlResult = (Vec<u8>, Result<(), TransferError>);

#[derive(Default)]
struct State {
    gone: bool,
    inflight: HashMap<u32, Inflight>,
    queues: HashMap<u8, VecDeque<Slot>>,
    control: HashMap<u32, Option<ControlResult>>,
    /// Unlink seqnum → the seqnum it cancels.
    unlinks: HashMap<u32, u32>,
}

impl State {
    fn slot(&mut self, endpoint: u8, seqnum: u32) -> Option<&mut Slot> {
        self.queues.get_mut(&endpoint)?.iter_mut().find(|s| s.seqnum == seqnum)
    }

    /// Completes everything unfinished with `Disconnected`.
    fn disconnect(&mut self) {
        self.gone = true;
        for s in self.queues.values_mut().flat_map(|q| q.iter_mut()) {
            s.done.get_or_insert((0, Err(TransferError::Disconnected)));
        }
        for c in self.control.values_mut() {
            c.get_or_insert((Vec::new(), Err(TransferError::Disconnected)));
        }
        self.inflight.clear();
        self.unlinks.clear();
    }

    /// A `RET_SUBMIT` for `seqnum` with its payload (IN data, if any, first).
    fn ret_submit(&mut self, seqnum: u32, inflight: Inflight, status: i32, actual: usize, data: &[u8]) {
        let mut result = map_status(status);
        match inflight.target {
            Target::Queue(ep) => {
                let Some(slot) = self.slot(ep, seqnum) else { return };
                if slot.done.is_some() {
                    return;
                }
                let mut n = actual;
                if n > inflight.requested {
                    n = inflight.requested;
                    result = result.and(Err(TransferError::Fault));
                }
                if inflight.direction == Direction::In {
                    slot.buffer.clear();
                    slot.buffer.extend_from_slice(&data[..n.min(data.len())]);
                }
                slot.done = Some((n, result));
            }
            Target::Control => {
                if let Some(entry) = self.control.get_mut(&seqnum) {
                    let n = actual.min(inflight.requested).min(data.len());
                    entry.get_or_insert((data[..n].to_vec(), result));
                }
            }
            Target::Orphan => {}
        }
    }

    /// A `RET_UNLINK` for the unlink `seqnum`.
    fn ret_unlink(&mut self, seqnum: u32, status: i32) {
        let Some(target) = self.unlinks.remove(&seqnum) else { return };
        let Some(inflight) = self.inflight.get(&target).copied() else { return };
        if status == codec::STATUS_UNLINKED {
            // No RET_SUBMIT will follow.
            self.inflight.remove(&target);
        } else if let Some(i) = self.inflight.get_mut(&target) {
            // Already completed on the server; its RET_SUBMIT, if still to come, is dropped.
            i.target = Target::Orphan;
        }
        match inflight.target {
            Target::Queue(ep) => {
                if let Some(slot) = self.slot(ep, target)
                    && slot.done.is_none()
                {
                    slot.buffer.clear();
                    slot.done = Some((0, Err(TransferError::Cancelled)));
                }
            }
            Target::Control => {
                if let Some(entry) = self.control.get_mut(&target) {
                    entry.get_or_insert((Vec::new(), Err(TransferError::Cancelled)));
                }
            }
            Target::Orphan => {}
        }
    }
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the table inconsistent in a way that
        // matters more than losing the device; carry on with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on the condition variable until `deadline`; false once it has passed.
    fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> (MutexGuard<'a, State>, bool) {
        let now = Instant::now();
        if now >= deadline {
            return (guard, false);
        }
        let (g, _) = self.cond.wait_timeout(guard, deadline - now).unwrap_or_else(PoisonError::into_inner);
        (g, true)
    }
}

/// The reader thread: files every reply until the stream ends or breaks.
fn reader_loop(mut stream: TcpStream, shared: &Shared) {
    let mut header = [0u8; URB_HEADER_LEN];
    let mut payload = Vec::new();
    loop {
        if stream.read_exact(&mut header).is_err() {
            break;
        }
        let Ok(urb) = Urb::parse(&header) else { break };
        match urb {
            Urb::RetSubmit(r) => {
                let inflight = shared.lock().inflight.get(&r.header.seqnum).copied();
                // A RET_SUBMIT for a seqnum never submitted (or already answered): the
                // payload length is unknowable, so the stream cannot be followed.
                let Some(inflight) = inflight else { break };
                let len = urb.payload_len(inflight.direction);
                payload.resize(len, 0);
                if stream.read_exact(&mut payload).is_err() {
                    break;
                }
                let data_len = if inflight.direction == Direction::In { r.actual_length as usize } else { 0 };
                let mut st = shared.lock();
                st.inflight.remove(&r.header.seqnum);
                st.ret_submit(
                    r.header.seqnum,
                    inflight,
                    r.status,
                    r.actual_length as usize,
                    &payload[..data_len],
                );
                drop(st);
                shared.cond.notify_all();
            }
            Urb::RetUnlink(r) => {
                shared.lock().ret_unlink(r.header.seqnum, r.status);
                shared.cond.notify_all();
            }
            // A server never sends commands.
            Urb::CmdSubmit(_) | Urb::CmdUnlink(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    shared.lock().disconnect();
    shared.cond.notify_all();
}

/// A [`Transport`] to a device imported from a USB/IP server. See the
/// [module documentation](self).
pub struct UsbIpTransport {
    info: DeviceInfo,
    /// The server's description of the device.
    exported: UsbDevice,
    stream: TcpStream,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    next_seqnum: u32,
    wbuf: Vec<u8>,
}

impl std::fmt::Debug for UsbIpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsbIpTransport").field("info", &self.info).finish_non_exhaustive()
    }
}

impl UsbIpTransport {
    /// Connects to `addr`, imports the device with bus id `busid` (`OP_REQ_IMPORT`), and
    /// reads its configuration and strings over endpoint 0, all within [`DEFAULT_DEADLINE`].
    pub fn connect(addr: impl ToSocketAddrs, busid: &str) -> Result<Self, Error> {
        Self::connect_within(addr, busid, DEFAULT_DEADLINE)
    }

    /// [`UsbIpTransport::connect`] with its own deadline for the whole set-up: past it,
    /// [`Error::TimedOut`]; nothing listening, [`Error::Refused`]; a bus id the server does
    /// not export, [`Error::ImportRefused`].
    pub fn connect_within(addr: impl ToSocketAddrs, busid: &str, deadline: Duration) -> Result<Self, Error> {
        let op = Operation::connect(addr, &format!("import of {busid}"), deadline)?;
        let location = format!("usbip:{}/{busid}", op.addr);
        Self::import_op(op, busid, &location)
    }

    /// Imports `busid` over an already connected stream, within [`DEFAULT_DEADLINE`];
    /// `location` goes into [`DeviceInfo::location`].
    pub fn import(stream: TcpStream, busid: &str, location: &str) -> Result<Self, Error> {
        Self::import_op(
            Operation::over(stream, &format!("import of {busid}"), DEFAULT_DEADLINE),
            busid,
            location,
        )
    }

    fn import_op(mut op: Operation, busid: &str, location: &str) -> Result<Self, Error> {
        let mut out = Vec::new();
        OpRequest::Import { busid: busid.to_owned() }.emit(&mut out)?;
        op.write_all(&out)?;
        let exported = match op.read_op_reply()? {
            OpReply::Import { status: 0, device: Some(d) } => d,
            OpReply::Import { status, .. } => {
                return Err(Error::ImportRefused { busid: busid.to_owned(), status });
            }
            other => {
                return Err(Error::Other(format!("USB/IP server {}: unexpected reply {other:?}", op.addr)));
            }
        };
        let stream = op.stream.try_clone()?;
        // From here the reader blocks without a timeout; drop() ends it by shutdown.
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cond: Condvar::new() });
        let reader_stream = stream.try_clone()?;
        let reader_shared = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name(format!("usbip-rx {busid}"))
            .spawn(move || reader_loop(reader_stream, &reader_shared))?;
        let info = DeviceInfo {
            vendor_id: exported.id_vendor,
            product_id: exported.id_product,
            bcd_device: exported.bcd_device,
            manufacturer: None,
            product: None,
            serial: None,
            speed: codec::speed_from_usbip(exported.speed),
            location: location.to_owned(),
            interfaces: Vec::new(),
        };
        let mut t =
            Self { info, exported, stream, shared, reader: Some(reader), next_seqnum: 1, wbuf: Vec::new() };
        t.read_descriptors(&op)?;
        Ok(t)
    }

    /// The server's device record (bus id, bus and device numbers, speed).
    pub const fn exported(&self) -> &UsbDevice {
        &self.exported
    }

    fn read_descriptors(&mut self, op: &Operation) -> Result<(), Error> {
        let get = |t: &mut Self, kind: u8, index: u8, lang: u16, buf: &mut [u8]| -> Result<usize, Error> {
            let setup = ControlSetup {
                request_type: 0x80,
                request: 0x06, // GET_DESCRIPTOR
                value: u16::from(kind) << 8 | u16::from(index),
                index: lang,
            };
            match t.control_in(setup, buf, op.left()?) {
                Ok(n) => Ok(n),
                // A transfer cut short by the deadline: say so, not "cancelled".
                Err(TransferError::Cancelled) => {
                    Err(op.left().err().unwrap_or(TransferError::Cancelled.into()))
                }
                Err(e) => Err(e.into()),
            }
        };
        let mut dev = [0u8; 18];
        let n = get(self, kind::DEVICE, 0, 0, &mut dev)?;
        let mut head = [0u8; 9];
        let n_head = get(self, kind::CONFIGURATION, 0, 0, &mut head)?;
        if n_head < 4 {
            return Err(Error::Unsupported("short configuration descriptor".into()));
        }
        let total = usize::from(u16::from_le_bytes([head[2], head[3]])).max(9);
        let mut config = vec![0u8; total];
        let got = get(self, kind::CONFIGURATION, 0, 0, &mut config)?;
        self.info.interfaces = parse_configuration(&config[..got]);
        if self.info.interface(0).is_none() {
            return Err(Error::Unsupported(format!("{}: no interface 0", self.info.location)));
        }
        if n >= 17 {
            let mut langs = [0u8; 4];
            let lang = match get(self, kind::STRING, 0, 0, &mut langs) {
                Ok(4) => u16::from_le_bytes([langs[2], langs[3]]),
                _ => 0x0409,
            };
            let string = |t: &mut Self, index: u8| -> Option<String> {
                if index == 0 {
                    return None;
                }
                let mut buf = [0u8; 255];
                let n = get(t, kind::STRING, index, lang, &mut buf).ok()?;
                parse_string(&buf[..n])
            };
            self.info.manufacturer = string(self, dev[14]);
            self.info.product = string(self, dev[15]);
            self.info.serial = string(self, dev[16]);
        }
        Ok(())
    }

    fn seqnum(&mut self) -> u32 {
        let s = self.next_seqnum;
        // Zero is skipped: some servers treat it as "none".
        self.next_seqnum = self.next_seqnum.wrapping_add(1).max(1);
        s
    }

    /// Writes `wbuf`; on failure the connection is over.
    fn send(&mut self) -> Result<(), TransferError> {
        if self.stream.write_all(&self.wbuf).is_err() {
            let _ = self.stream.shutdown(Shutdown::Both);
            self.shared.lock().disconnect();
            self.shared.cond.notify_all();
            return Err(TransferError::Disconnected);
        }
        Ok(())
    }

    fn submit_header(&self, seqnum: u32, direction: Direction, ep: u8, len: usize, setup: [u8; 8]) -> Urb {
        Urb::CmdSubmit(CmdSubmit {
            header: BasicHeader {
                seqnum,
                devid: self.exported.devid(),
                direction: if direction == Direction::In { codec::dir::IN } else { codec::dir::OUT },
                ep: u32::from(ep & 0x0F),
            },
            transfer_flags: 0,
            transfer_buffer_length: len as u32,
            start_frame: 0,
            number_of_packets: codec::NOT_ISO,
            interval: 0,
            setup,
        })
    }

    fn unlink(&mut self, target: u32) -> Result<(), TransferError> {
        let seqnum = self.seqnum();
        self.shared.lock().unlinks.insert(seqnum, target);
        self.wbuf.clear();
        Urb::CmdUnlink(CmdUnlink {
            header: BasicHeader { seqnum, devid: self.exported.devid(), direction: 0, ep: 0 },
            unlink_seqnum: target,
        })
        .emit(&mut self.wbuf);
        self.send()
    }

    /// One control transfer: OUT data in `data`, or IN up to `in_len` bytes.
    fn control(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        in_len: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransferError> {
        let direction = setup.direction();
        let len = if direction == Direction::In { in_len } else { data.len() };
        let wlength = u16::try_from(len).map_err(|_| TransferError::InvalidArgument)?;
        let seqnum = self.seqnum();
        {
            let mut st = self.shared.lock();
            if st.gone {
                return Err(TransferError::Disconnected);
            }
            st.inflight.insert(seqnum, Inflight { target: Target::Control, direction, requested: len });
            st.control.insert(seqnum, None);
        }
        self.wbuf.clear();
        self.submit_header(seqnum, direction, 0, len, setup.to_bytes(wlength)).emit(&mut self.wbuf);
        if direction == Direction::Out {
            self.wbuf.extend_from_slice(data);
        }
        let sent = self.send();
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let mut st = self.shared.lock();
        if sent.is_ok() {
            loop {
                if st.control.get(&seqnum).is_some_and(Option::is_some) {
                    break;
                }
                let (g, more) = self.shared.wait_until(st, deadline);
                st = g;
                if !more {
                    timed_out = !st.control.get(&seqnum).is_some_and(Option::is_some);
                    break;
                }
            }
        }
        if timed_out {
            drop(st);
            let _ = self.unlink(seqnum);
            let grace = Instant::now() + UNLINK_GRACE.min(timeout.max(Duration::from_millis(50)));
            st = self.shared.lock();
            while !st.control.get(&seqnum).is_some_and(Option::is_some) {
                let (g, more) = self.shared.wait_until(st, grace);
                st = g;
                if !more {
                    break;
                }
            }
            if let Some(i) = st.inflight.get_mut(&seqnum) {
                i.target = Target::Orphan;
            }
        }
        let result = st.control.remove(&seqnum).flatten();
        match result {
            Some((bytes, Ok(()))) => Ok(bytes),
            Some((_, Err(e))) => Err(e),
            None => Err(if st.gone { TransferError::Disconnected } else { TransferError::Cancelled }),
        }
    }

    fn is_bulk_endpoint(&self, endpoint: u8) -> bool {
        self.info
            .endpoint(endpoint)
            .is_some_and(|e| matches!(e.transfer_type, TransferType::Bulk | TransferType::Interrupt))
    }
}

impl Transport for UsbIpTransport {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.shared.lock().gone {
            return Err(TransferError::Disconnected);
        }
        let direction = endpoint_direction(endpoint);
        if !self.is_bulk_endpoint(endpoint)
            || buffer.len() > codec::MAX_TRANSFER_LEN as usize
            || (direction == Direction::In && buffer.is_empty())
        {
            return Err(TransferError::InvalidArgument);
        }
        let seqnum = self.seqnum();
        let len = buffer.len();
        self.wbuf.clear();
        self.submit_header(seqnum, direction, endpoint, len, [0; 8]).emit(&mut self.wbuf);
        if direction == Direction::Out {
            self.wbuf.extend_from_slice(&buffer);
        }
        {
            // File the slot before sending, so a fast reply finds it; check for a disconnect
            // under the same lock, so the reader's disconnect() cannot miss the new slot.
            let mut st = self.shared.lock();
            if st.gone {
                return Err(TransferError::Disconnected);
            }
            st.inflight
                .insert(seqnum, Inflight { target: Target::Queue(endpoint), direction, requested: len });
            st.queues.entry(endpoint).or_default().push_back(Slot {
                seqnum,
                buffer,
                unlinking: false,
                done: None,
            });
        }
        if let Err(e) = self.send() {
            // The buffer is dropped on error (trait contract): take the slot back out.
            let mut st = self.shared.lock();
            if let Some(q) = st.queues.get_mut(&endpoint) {
                q.retain(|s| s.seqnum != seqnum);
            }
            return Err(e);
        }
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.shared.lock().queues.get(&endpoint).map_or(0, VecDeque::len)
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            let q = st.queues.get_mut(&endpoint)?;
            match q.front() {
                None => return None,
                Some(s) if s.done.is_some() => {
                    let s = q.pop_front()?;
                    let (actual_len, status) = s.done?;
                    return Some(Completion { endpoint, buffer: s.buffer, actual_len, status });
                }
                Some(_) => {}
            }
            let (g, more) = self.shared.wait_until(st, deadline);
            st = g;
            if !more {
                // One last look: the reply may have landed as the time ran out.
                let q = st.queues.get_mut(&endpoint)?;
                if q.front().is_some_and(|s| s.done.is_some()) {
                    let s = q.pop_front()?;
                    let (actual_len, status) = s.done?;
                    return Some(Completion { endpoint, buffer: s.buffer, actual_len, status });
                }
                return None;
            }
        }
    }

    fn cancel_all(&mut self, endpoint: u8) {
        let targets: Vec<u32> = {
            let mut st = self.shared.lock();
            if st.gone {
                return;
            }
            let Some(q) = st.queues.get_mut(&endpoint) else { return };
            q.iter_mut()
                .filter(|s| s.done.is_none() && !s.unlinking)
                .map(|s| {
                    s.unlinking = true;
                    s.seqnum
                })
                .collect()
        };
        for t in targets {
            if self.unlink(t).is_err() {
                return;
            }
        }
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if setup.direction() != Direction::Out {
            return Err(TransferError::InvalidArgument);
        }
        self.control(setup, data, 0, timeout).map(|_| data.len())
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if setup.direction() != Direction::In {
            return Err(TransferError::InvalidArgument);
        }
        let data = self.control(setup, &[], buf.len(), timeout)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// USB/IP has no reset message; like Linux `vhci_hcd`, a reset is a standard
    /// `SET_CONFIGURATION` of the current configuration, which resets the device's
    /// endpoints and toggles on the server side.
    fn reset(&mut self) -> Result<(), TransferError> {
        let setup = ControlSetup {
            request_type: 0x00,
            request: 0x09, // SET_CONFIGURATION
            value: u16::from(self.exported.configuration_value.max(1)),
            index: 0,
        };
        self.control_out(setup, &[], CONTROL_TIMEOUT).map(|_| ())
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        // The server's host stack keeps the endpoint state; over USB/IP the standard request
        // is the whole operation (Linux's vhci forwards usb_clear_halt the same way).
        self.control_out(ControlSetup::clear_halt(endpoint), &[], CONTROL_TIMEOUT).map(|_| ())
    }
}

impl Drop for UsbIpTransport {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(map_status(0), Ok(()));
        for (s, e) in [
            (-104, TransferError::Cancelled),
            (-2, TransferError::Cancelled),
            (-32, TransferError::Stall),
            (-19, TransferError::Disconnected),
            (-108, TransferError::Disconnected),
            (-71, TransferError::Fault),
            (-75, TransferError::Fault),
            (-22, TransferError::InvalidArgument),
            (-5, TransferError::Unknown(5)),
            (i32::MIN, TransferError::Unknown(1 << 31)),
            (7, TransferError::Unknown(7)),
        ] {
            assert_eq!(map_status(s), Err(e), "{s}");
        }
    }
}
