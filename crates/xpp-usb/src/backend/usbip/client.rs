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
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::codec::{
    self, BasicHeader, CmdSubmit, CmdUnlink, ExportedDevice, OpReply, OpRequest, URB_HEADER_LEN, Urb,
    UsbDevice,
};
use super::descriptors::{kind, parse_configuration, parse_string};
use crate::error::Error;
use crate::info::{DeviceInfo, Direction, TransferType, endpoint_direction};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// How long the `OP_*` exchange and the descriptor reads may take before connecting fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
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

/// The devices a USB/IP server exports (`OP_REQ_DEVLIST`).
pub fn list_devices(addr: impl ToSocketAddrs) -> Result<Vec<ExportedDevice>, Error> {
    let mut s = connect_tcp(addr)?;
    let mut out = Vec::new();
    OpRequest::DevList.emit(&mut out)?;
    s.write_all(&out)?;
    match read_op_reply(&mut s)? {
        OpReply::DevList { status: 0, devices } => Ok(devices),
        OpReply::DevList { status, .. } => {
            Err(Error::Other(format!("USB/IP device list failed (status {status})")))
        }
        other => Err(Error::Other(format!("USB/IP: unexpected reply {other:?}"))),
    }
}

fn connect_tcp(addr: impl ToSocketAddrs) -> Result<TcpStream, Error> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, SETUP_TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(SETUP_TIMEOUT))?;
                s.set_write_timeout(Some(SETUP_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| Error::NotFound("address resolved to nothing".into()), Error::Io))
}

/// Reads one `OP_REP_*` message, as many bytes as the parser asks for.
fn read_op_reply(s: &mut TcpStream) -> Result<OpReply, Error> {
    let mut buf = Vec::new();
    loop {
        match OpReply::parse(&buf) {
            Ok((reply, _)) => return Ok(reply),
            Err(e) => {
                let needed = e.needed().ok_or(e)?;
                let start = buf.len();
                buf.resize(needed, 0);
                s.read_exact(&mut buf[start..])?;
            }
        }
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
    /// reads its configuration and strings over endpoint 0.
    pub fn connect(addr: impl ToSocketAddrs, busid: &str) -> Result<Self, Error> {
        let stream = connect_tcp(addr)?;
        let peer = stream.peer_addr()?;
        Self::import(stream, busid, &format!("usbip:{peer}/{busid}"))
    }

    /// Imports `busid` over an already connected stream; `location` goes into
    /// [`DeviceInfo::location`].
    pub fn import(mut stream: TcpStream, busid: &str, location: &str) -> Result<Self, Error> {
        let mut out = Vec::new();
        OpRequest::Import { busid: busid.to_owned() }.emit(&mut out)?;
        stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
        stream.write_all(&out)?;
        let exported = match read_op_reply(&mut stream)? {
            OpReply::Import { status: 0, device: Some(d) } => d,
            OpReply::Import { status, .. } => {
                return Err(Error::ImportRefused { busid: busid.to_owned(), status });
            }
            other => return Err(Error::Other(format!("USB/IP: unexpected reply {other:?}"))),
        };
        // From here the reader blocks without a timeout; drop() ends it by shutdown.
        stream.set_read_timeout(None)?;
        stream.set_nodelay(true)?;
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
        t.read_descriptors()?;
        Ok(t)
    }

    /// The server's device record (bus id, bus and device numbers, speed).
    pub const fn exported(&self) -> &UsbDevice {
        &self.exported
    }

    fn read_descriptors(&mut self) -> Result<(), Error> {
        let get = |t: &mut Self, kind: u8, index: u8, lang: u16, buf: &mut [u8]| {
            let setup = ControlSetup {
                request_type: 0x80,
                request: 0x06, // GET_DESCRIPTOR
                value: u16::from(kind) << 8 | u16::from(index),
                index: lang,
            };
            t.control_in(setup, buf, SETUP_TIMEOUT)
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
        self.control_out(setup, &[], SETUP_TIMEOUT).map(|_| ())
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        // The server's host stack keeps the endpoint state; over USB/IP the standard request
        // is the whole operation (Linux's vhci forwards usb_clear_halt the same way).
        self.control_out(ControlSetup::clear_halt(endpoint), &[], SETUP_TIMEOUT).map(|_| ())
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
