//! The USB/IP front-end: [`UsbIpServer`] exports each USB port of an [`Emulator`] as a
//! USB/IP device, so `xpp_usb::UsbIpTransport` in another process, or Linux `usbip attach` /
//! `vhci_hcd`, drives the emulated Astribank over TCP.
//!
//! The protocol is the one Linux `usbipd` and `vhci_hcd` speak (version 1.1.1); every message
//! is encoded and decoded by the sans-IO codec of `xpp_usb::usbip::codec`.
//!
//! # Bus ids and numbers
//!
//! Port `p` of the emulator is exported as bus id `1-{p+1}` ([`busid`]; TwinStar's second port
//! is `1-2`), bus number [`BUSNUM`], device number `generation % 127 + 1` — the address the
//! emulator gives each enumeration, so a re-enumerated device has a new device number, as it
//! would on a real bus. Speed is high speed.
//!
//! # What a client sees
//!
//! - `OP_REQ_DEVLIST`: every port with something enumerated on it *now*, described from the
//!   device's own descriptors (device, configuration, `GET_CONFIGURATION`): the current
//!   VID/PID/bcdDevice, class triple, configuration and interfaces. Ports with a live import
//!   are listed too (Linux `usbipd` lists devices bound to `usbip-host` whatever their state).
//! - `OP_REQ_IMPORT` of a listed bus id: `OP_REP_IMPORT` with status 0 and the device record,
//!   then the connection carries URBs. Unknown or empty port: status 4 (`ST_NODEV`); a port
//!   already imported by another connection: status 2 (`ST_DEV_BUSY`); the connection then
//!   closes. Any other first message, or bytes that do not parse, close the connection.
//! - `USBIP_CMD_SUBMIT` on endpoint 0: the SETUP packet goes to the device model, which answers
//!   the standard requests (GET_DESCRIPTOR of device, configuration and strings, SET_ADDRESS,
//!   SET/GET_CONFIGURATION, SET_INTERFACE, GET_STATUS, CLEAR_FEATURE(ENDPOINT_HALT)) from its
//!   identity (MODEL.md USB-6..10) and the FX2 vendor request 0xA0. `SET_FEATURE(PORT_RESET)`
//!   addressed to the port (`bmRequestType` 0x23, as `usbip-host` receives a reset) is a USB
//!   bus reset of the port.
//! - Bulk OUT completes at once with the device's verdict. Bulk IN is queued per endpoint,
//!   any number in flight (up to [`MAX_INFLIGHT`] per connection), and completes, in
//!   submission order, when the device has a transfer for it.
//! - `USBIP_CMD_UNLINK` of a queued IN: removed, `RET_UNLINK` status `-ECONNRESET` and no
//!   `RET_SUBMIT` for it; of anything already answered: `RET_UNLINK` status 0.
//! - Errors map to Linux URB statuses through `usbmon::status_to_errno` (the workspace's one
//!   table): `Stall` → `-EPIPE`, `Fault` → `-EPROTO`, `Cancelled` (bus reset) → `-ENOENT`,
//!   `InvalidArgument` → `-EINVAL`, `Disconnected` → `-ENODEV`.
//!
//! # Re-enumeration, unplug, TwinStar jump
//!
//! When the imported device leaves its port (firmware stage change, RENUM, RESET, jump, cable
//! pulled, power-off), the connection ends the way a real device removal looks to `vhci_hcd`:
//! the socket is shut down, with no `RET_SUBMIT` for the queued URBs (Linux `usbip-host` stops
//! its threads and closes the socket before it kills a removed device's URBs). `vhci_hcd` then
//! detaches its port and gives the URBs back with `-ESHUTDOWN`; `xpp_usb::UsbIpTransport`
//! completes them with `Disconnected` and fails every later call. The port is free again; once
//! the device re-enumerates, the device list shows its new identity and a new import attaches
//! to it.
//!
//! # Threads and clock
//!
//! One acceptor thread; per connection one thread that serves it and, once imported, one reader
//! thread that parses commands into a bounded channel. The serving thread owns all URB state,
//! feeds commands to the model and polls it every millisecond while transfers are queued
//! (every [`IDLE_POLL`] otherwise, to notice a departure). The server never moves the
//! emulator's clock: give it a real-time emulator ([`UsbIpServer::serve`] makes one and owns
//! its runner, or pass one from [`Emulator::real_time`]); with a virtual clock the caller
//! advances time. Dropping the server stops accepting, closes every connection the same way,
//! and joins every thread.
//!
//! # Bounds
//!
//! At most [`MAX_CONNECTIONS`] connections that have not imported yet; when one more arrives,
//! the oldest of them is closed to make room, so idle or slow connections can never keep a
//! well-formed client out (it sends its request at once and is served within
//! [`OP_DEADLINE`]). A request (`OP_REQ_*`) must arrive whole within [`OP_DEADLINE`] of the
//! connection, and every URB message within [`MESSAGE_DEADLINE`] of its first byte, however
//! the bytes are spread: a connection that trickles them is closed. OUT transfers longer than [`MAX_URB_DATA`] are
//! refused with `-EINVAL` (their bytes are read and dropped, never buffered); an IN buffer is
//! at most [`MAX_URB_DATA`] bytes whatever the URB asks (the device sends at most 512); at most
//! [`MAX_INFLIGHT`] queued IN URBs per connection (more: `-ENOMEM`); isochronous URBs are
//! refused (`-EINVAL`, no endpoint is isochronous). Nothing from the network can panic the
//! server.
//!
//! ```no_run
//! use xpp_emu::{DeviceConfig, usbip_server::UsbIpServer};
//!
//! let server = UsbIpServer::serve(DeviceConfig::default(), xpp_emu::usbip_server::DEFAULT_ADDR)?;
//! let devices = xpp_usb::usbip::list_devices(server.local_addr())?;
//! assert_eq!(devices[0].device.busid, "1-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xpp_usb::middleware::usbmon::status_to_errno;
use xpp_usb::usbip::codec::{
    self, BasicHeader, CmdSubmit, CmdUnlink, ExportedDevice, OpReply, OpRequest, RetSubmit, RetUnlink,
    URB_HEADER_LEN, Urb, UsbDevice, UsbInterface,
};
use xpp_usb::{ControlSetup, Direction, Speed, TransferError};

use crate::config::DeviceConfig;
use crate::device::Device;
use crate::transport::{Emulator, RealTimeRunner};

/// The USB/IP port (IANA).
pub const DEFAULT_PORT: u16 = 3240;
/// Where [`UsbIpServer::start`] listens: loopback only.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, DEFAULT_PORT));
/// The bus number of every exported device.
pub const BUSNUM: u32 = 1;
/// Most simultaneous connections that have not imported (yet); one more closes the oldest.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a new connection may take to send its whole `OP_REQ_*` message.
pub const OP_DEADLINE: Duration = Duration::from_secs(2);
/// How long an imported connection may take to send one whole URB message (header and OUT
/// data), counted from its first byte; between messages it may stay silent.
pub const MESSAGE_DEADLINE: Duration = Duration::from_secs(5);
/// Most connection threads (waiting, listing or imported) at once: a bound on threads,
/// far above what eviction leaves alive.
const MAX_THREADS: usize = 8 * MAX_CONNECTIONS;
/// Most queued IN URBs per connection.
pub const MAX_INFLIGHT: usize = 1024;
/// Longest transfer the server accepts (an Astribank transfer is at most 512 bytes).
pub const MAX_URB_DATA: usize = 64 * 1024;
/// How often an idle session checks that its device is still there.
pub const IDLE_POLL: Duration = Duration::from_millis(5);

/// How often a session with queued transfers polls the model (the real-time runner's tick).
const BUSY_POLL: Duration = Duration::from_millis(1);
/// How long the acceptor sleeps when nobody is connecting.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// How long a write may block before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands parsed ahead of the serving thread.
const CHANNEL_DEPTH: usize = 64;
/// Commands handled before the model is polled and replies are written.
const BATCH: usize = 64;

/// `OP_REP_*` statuses (Linux `usbip_common.h`).
mod st {
    pub(super) const OK: u32 = 0;
    pub(super) const DEV_BUSY: u32 = 2;
    pub(super) const NODEV: u32 = 4;
}

/// Linux errno values the server reports itself.
mod errno {
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const ECONNRESET: i32 = 104;
}

/// The bus id of emulator port `port`: `1-1` for port 0, `1-2` for port 1.
pub fn busid(port: u8) -> String {
    format!("{BUSNUM}-{}", u16::from(port) + 1)
}

/// The emulator port a bus id names (the inverse of [`busid`]).
pub fn port_of_busid(busid: &str) -> Option<u8> {
    let digits = busid.strip_prefix("1-")?;
    if digits.is_empty()
        || digits.len() > 3
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n: u16 = digits.parse().ok()?;
    u8::try_from(n - 1).ok()
}

/// A URB status from a transfer result (0 or a negative Linux errno).
fn urb_status(r: Result<(), TransferError>) -> i32 {
    // Never 0 for an error (`status_to_errno` maps what no errno carries to -EIO).
    status_to_errno(r)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the acceptor and the connections share.
#[derive(Debug)]
struct Shared {
    emu: Emulator,
    stop: AtomicBool,
    /// A clone of every open connection's socket (to shut them down on stop or evict them),
    /// in arrival order, and whether it imported.
    sockets: Mutex<BTreeMap<u64, Conn>>,
    /// Ports with a live import.
    imported: Mutex<HashSet<u8>>,
}

/// An open connection, as the acceptor sees it.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// It imported a port: never evicted.
    imported: bool,
}

impl Shared {
    fn exported(&self) -> Vec<ExportedDevice> {
        self.emu.with_device(|d| (0..d.port_count()).filter_map(|p| describe(d, p)).collect())
    }

    /// Claims `port` for an import: its record and enumeration generation, or an `OP_REP`
    /// status.
    fn claim(&self, port: u8) -> Result<(UsbDevice, u64), u32> {
        let mut imported = lock(&self.imported);
        if imported.contains(&port) {
            return Err(st::DEV_BUSY);
        }
        let found = self.emu.with_device(|d| Some((describe(d, port)?, d.generation(port)?)));
        let (record, generation) = found.ok_or(st::NODEV)?;
        imported.insert(port);
        Ok((record.device, generation))
    }
}

/// The device list entry of what is enumerated on `port`, built from its descriptors.
fn describe(d: &mut Device, port: u8) -> Option<ExportedDevice> {
    let generation = d.generation(port)?;
    let speed = d.port_info(port)?.speed;
    let now = d.now();
    let mut get = |request: u8, value: u16, buf: &mut [u8]| {
        let setup = ControlSetup { request_type: 0x80, request, value, index: 0 };
        d.control_in(now, port, setup, buf).ok()
    };
    const GET_DESCRIPTOR: u8 = 6;
    const GET_CONFIGURATION: u8 = 8;
    let mut dev = [0u8; 18];
    if get(GET_DESCRIPTOR, 0x0100, &mut dev)? < dev.len() {
        return None;
    }
    let mut head = [0u8; 9];
    if get(GET_DESCRIPTOR, 0x0200, &mut head)? < head.len() {
        return None;
    }
    let total = usize::from(u16::from_le_bytes([head[2], head[3]])).clamp(9, 4096);
    let mut config = vec![0u8; total];
    let n = get(GET_DESCRIPTOR, 0x0200, &mut config)?;
    let mut value = [0u8; 1];
    let configuration_value = match get(GET_CONFIGURATION, 0, &mut value) {
        Some(1) => value[0],
        _ => 0,
    };
    let mut interfaces = Vec::new();
    let mut rest = &config[..n];
    while let [len, kind, ..] = *rest {
        let len = usize::from(len);
        if len < 2 || len > rest.len() {
            break;
        }
        if let (4, [_, _, _, 0, _, class, subclass, protocol, ..]) = (kind, &rest[..len]) {
            interfaces.push(UsbInterface { class: *class, subclass: *subclass, protocol: *protocol });
        }
        rest = &rest[len..];
    }
    let u16_at = |i: usize| u16::from_le_bytes([dev[i], dev[i + 1]]);
    let id = busid(port);
    let device = UsbDevice {
        path: format!("/sys/devices/platform/xpp-emu/usb{BUSNUM}/{id}"),
        busid: id,
        busnum: BUSNUM,
        // Decision: the device number is the address the emulator gives this enumeration
        // (device.rs `port_info`: generation % 127 + 1), new at every re-enumeration.
        devnum: (generation % 127 + 1) as u32,
        speed: codec::speed_to_usbip(if speed == Speed::Unknown { Speed::High } else { speed }),
        id_vendor: u16_at(8),
        id_product: u16_at(10),
        bcd_device: u16_at(12),
        device_class: dev[4],
        device_subclass: dev[5],
        device_protocol: dev[6],
        configuration_value,
        num_configurations: dev[17],
        num_interfaces: interfaces.len() as u8,
    };
    Some(ExportedDevice { device, interfaces })
}

/// A USB/IP server exporting the ports of an [`Emulator`] (see the module doc).
///
/// Dropping it closes every connection and joins every thread it started.
#[derive(Debug)]
pub struct UsbIpServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    // Dropped after the acceptor is joined (declared after it; `Drop` joins first anyway).
    _runner: Option<RealTimeRunner>,
}

impl UsbIpServer {
    /// Serves `emu` on [`DEFAULT_ADDR`] (127.0.0.1:3240).
    pub fn start(emu: Emulator) -> io::Result<Self> {
        Self::bind(emu, DEFAULT_ADDR)
    }

    /// Serves `emu` on 127.0.0.1:`port` (0 picks a free port; see [`UsbIpServer::local_addr`]).
    pub fn bind_loopback(emu: Emulator, port: u16) -> io::Result<Self> {
        Self::bind(emu, SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
    }

    /// Serves `emu` on `addr`, which may be any address the caller chooses (pass a loopback
    /// address unless the device must be reachable from other machines).
    pub fn bind(emu: Emulator, addr: SocketAddr) -> io::Result<Self> {
        Self::with_runner(emu, addr, None)
    }

    /// Builds a real-time emulator from `cfg` and serves it on `addr`; the server owns the
    /// emulator's runner thread.
    pub fn serve(cfg: DeviceConfig, addr: SocketAddr) -> io::Result<Self> {
        let (emu, runner) = Emulator::real_time(cfg);
        Self::with_runner(emu, addr, Some(runner))
    }

    fn with_runner(emu: Emulator, addr: SocketAddr, runner: Option<RealTimeRunner>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        // Decision: a non-blocking accept polled every 10 ms, so stopping never depends on
        // connecting to ourselves (which a firewall or an unspecified bind address can break).
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            emu,
            stop: AtomicBool::new(false),
            sockets: Mutex::new(BTreeMap::new()),
            imported: Mutex::new(HashSet::new()),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("usbip-accept".into())
            .spawn(move || accept_loop(&listener, &acceptor_shared))?;
        Ok(Self { local_addr, shared, acceptor: Some(acceptor), _runner: runner })
    }

    /// The address the server listens on.
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The emulator it serves.
    pub fn emulator(&self) -> &Emulator {
        &self.shared.emu
    }

    /// What `OP_REQ_DEVLIST` answers now.
    pub fn exported(&self) -> Vec<ExportedDevice> {
        self.shared.exported()
    }

    /// Ports with a live import.
    pub fn imported_ports(&self) -> Vec<u8> {
        let mut v: Vec<u8> = lock(&self.shared.imported).iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Open connections (importing, imported or listing).
    pub fn connections(&self) -> usize {
        lock(&self.shared.sockets).len()
    }

    /// Stops the server: the same as dropping it.
    pub fn shutdown(self) {}
}

impl Drop for UsbIpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let (done, live): (Vec<_>, Vec<_>) = conns.into_iter().partition(JoinHandle::is_finished);
        conns = live;
        for h in done {
            let _ = h.join();
        }
        let Ok((stream, _)) = listener.accept() else {
            // WouldBlock (nobody connecting) or a transient error (EMFILE, aborted).
            std::thread::sleep(ACCEPT_POLL);
            continue;
        };
        if conns.len() >= MAX_THREADS || stream.set_nonblocking(false).is_err() {
            continue; // dropping the stream closes it
        }
        let _ = stream.set_nodelay(true);
        let Ok(clone) = stream.try_clone() else { continue };
        let id = next_id;
        next_id += 1;
        let mut sockets = lock(&shared.sockets);
        evict_oldest_waiting(&mut sockets);
        sockets.insert(id, Conn { stream: clone, imported: false });
        drop(sockets);
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new().name(format!("usbip-conn-{id}")).spawn(move || {
            serve_connection(stream, &conn_shared, id);
            lock(&conn_shared.sockets).remove(&id);
        });
        match spawned {
            Ok(h) => conns.push(h),
            Err(_) => {
                if let Some(c) = lock(&shared.sockets).remove(&id) {
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
    for c in lock(&shared.sockets).values() {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    for h in conns {
        let _ = h.join();
    }
}

/// With [`MAX_CONNECTIONS`] connections waiting (not imported), closes the oldest of them:
/// its thread sees the shutdown and ends. Imported connections are never evicted.
fn evict_oldest_waiting(sockets: &mut BTreeMap<u64, Conn>) {
    let waiting: Vec<u64> = sockets.iter().filter(|(_, c)| !c.imported).map(|(&id, _)| id).collect();
    if waiting.len() < MAX_CONNECTIONS {
        return;
    }
    if let Some(c) = sockets.remove(&waiting[0]) {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
}

/// Reads exactly `buf.len()` bytes before `deadline`, however slowly they come.
fn read_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf[at..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one `OP_REQ_*` message (at most 40 bytes) before `deadline`.
fn read_op_request(s: &mut TcpStream, deadline: Instant) -> Option<OpRequest> {
    let mut buf = Vec::new();
    loop {
        match OpRequest::parse(&buf) {
            Ok((req, _)) => return Some(req),
            Err(e) => {
                let needed = e.needed().filter(|&n| n <= codec::OP_HEADER_LEN + codec::BUSID_LEN)?;
                let start = buf.len();
                buf.resize(needed, 0);
                read_by(s, &mut buf[start..], deadline).ok()?;
            }
        }
    }
}

/// Marks connection `id` imported (never evicted from now on); false if it was evicted.
fn mark_imported(shared: &Shared, id: u64) -> bool {
    lock(&shared.sockets).get_mut(&id).map(|c| c.imported = true).is_some()
}

fn serve_connection(mut stream: TcpStream, shared: &Shared, id: u64) {
    let deadline = Instant::now() + OP_DEADLINE;
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let mut out = Vec::new();
    match read_op_request(&mut stream, deadline) {
        Some(OpRequest::DevList) => {
            let reply = OpReply::DevList { status: st::OK, devices: shared.exported() };
            if reply.emit(&mut out).is_ok() {
                let _ = stream.write_all(&out);
            }
        }
        Some(OpRequest::Import { busid }) => {
            let claimed = port_of_busid(&busid).ok_or(st::NODEV).and_then(|p| Ok((p, shared.claim(p)?)));
            match claimed {
                Ok((port, (record, generation))) => {
                    let reply = OpReply::Import { status: st::OK, device: Some(record) };
                    if mark_imported(shared, id)
                        && reply.emit(&mut out).is_ok()
                        && stream.write_all(&out).is_ok()
                    {
                        serve_urbs(stream.try_clone().ok(), &stream, shared, port, generation);
                    }
                    // Also on the paths where the session never started.
                    lock(&shared.imported).remove(&port);
                }
                Err(status) => {
                    let reply = OpReply::Import { status, device: None };
                    if reply.emit(&mut out).is_ok() {
                        let _ = stream.write_all(&out);
                    }
                }
            }
        }
        // Unparseable, timed out, or a request this codec knows but the server does not serve.
        _ => {}
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A command parsed by the reader thread.
#[derive(Debug)]
enum Cmd {
    /// `CMD_SUBMIT` and its OUT data (`None`: longer than [`MAX_URB_DATA`], dropped).
    Submit(CmdSubmit, Option<Vec<u8>>),
    /// `CMD_UNLINK`.
    Unlink(CmdUnlink),
}

/// Reads and drops `n` bytes before `deadline`.
fn skip(s: &mut TcpStream, mut n: usize, deadline: Instant) -> io::Result<()> {
    let mut scratch = [0u8; 4096];
    while n > 0 {
        let k = n.min(scratch.len());
        read_by(s, &mut scratch[..k], deadline)?;
        n -= k;
    }
    Ok(())
}

/// The reader thread: parses commands until the stream ends, breaks, or the serving thread
/// stops listening. A message that does not parse ends the connection (its length, and so
/// where the next one starts, is unknowable).
fn read_commands(mut s: TcpStream, tx: &SyncSender<Cmd>) {
    let mut header = [0u8; URB_HEADER_LEN];
    loop {
        // Silence between messages is allowed; once one starts it must end in time.
        if s.set_read_timeout(None).is_err() || s.read_exact(&mut header[..1]).is_err() {
            return;
        }
        let deadline = Instant::now() + MESSAGE_DEADLINE;
        if read_by(&mut s, &mut header[1..], deadline).is_err() {
            return;
        }
        let Ok(urb) = Urb::parse(&header) else { return };
        let cmd = match urb {
            Urb::CmdSubmit(c) => {
                let data_len =
                    if c.header.direction == codec::dir::OUT { c.transfer_buffer_length as usize } else { 0 };
                let iso_len = urb.payload_len(Direction::Out).saturating_sub(data_len);
                let data = if data_len <= MAX_URB_DATA {
                    let mut v = vec![0u8; data_len];
                    if read_by(&mut s, &mut v, deadline).is_err() {
                        return;
                    }
                    Some(v)
                } else {
                    if skip(&mut s, data_len, deadline).is_err() {
                        return;
                    }
                    None
                };
                if skip(&mut s, iso_len, deadline).is_err() {
                    return;
                }
                Cmd::Submit(c, data)
            }
            Urb::CmdUnlink(u) => Cmd::Unlink(u),
            // A RET_* from the client is a protocol violation.
            _ => return,
        };
        if tx.send(cmd).is_err() {
            return;
        }
    }
}

/// An IN URB waiting for device data.
#[derive(Debug)]
struct InUrb {
    seqnum: u32,
    /// The port's bus-reset epoch when submitted.
    epoch: u64,
    buf: Vec<u8>,
    number_of_packets: u32,
}

/// The URB state of one imported connection, owned by its serving thread.
struct Session<'a> {
    shared: &'a Shared,
    port: u8,
    generation: u64,
    /// Queued IN URBs per endpoint address, in submission order.
    queues: BTreeMap<u8, VecDeque<InUrb>>,
    /// Replies to write.
    out: Vec<u8>,
}

fn ret_submit(
    out: &mut Vec<u8>,
    seqnum: u32,
    status: i32,
    data: &[u8],
    in_data: bool,
    number_of_packets: u32,
) {
    Urb::RetSubmit(RetSubmit {
        header: BasicHeader { seqnum, devid: 0, direction: 0, ep: 0 },
        status,
        actual_length: data.len() as u32,
        start_frame: 0,
        number_of_packets,
        error_count: 0,
    })
    .emit(out);
    if in_data {
        out.extend_from_slice(data);
    }
}

impl Session<'_> {
    fn inflight(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Submit(c, data) => self.submit(&c, data),
            Cmd::Unlink(u) => {
                let target = u.unlink_seqnum;
                let mut found = false;
                for q in self.queues.values_mut() {
                    if let Some(i) = q.iter().position(|u| u.seqnum == target) {
                        q.remove(i);
                        found = true;
                        break;
                    }
                }
                Urb::RetUnlink(RetUnlink {
                    header: BasicHeader { seqnum: u.header.seqnum, devid: 0, direction: 0, ep: 0 },
                    status: if found { -errno::ECONNRESET } else { 0 },
                })
                .emit(&mut self.out);
            }
        }
    }

    fn submit(&mut self, c: &CmdSubmit, data: Option<Vec<u8>>) {
        let seqnum = c.header.seqnum;
        let header_in = c.header.direction == codec::dir::IN;
        let iso = c.number_of_packets != 0 && c.number_of_packets != codec::NOT_ISO;
        // Decision: a non-isochronous reply echoes the submit's non-ISO marker (0 from Linux
        // `vhci_hcd`, 0xFFFFFFFF from the protocol document), as `usbip-host` does by copying
        // the URB's `number_of_packets`; a refused ISO submit answers 0 (no descriptors follow).
        let np = if iso { 0 } else { c.number_of_packets };
        let (Some(data), false, 0..=15) = (data, iso, c.header.ep) else {
            ret_submit(&mut self.out, seqnum, -errno::EINVAL, &[], header_in, np);
            return;
        };
        let ep = c.header.ep as u8;
        let port = self.port;
        if ep == 0 {
            self.control(c, &data, np);
            return;
        }
        if !header_in {
            let address = ep;
            let r = self.shared.emu.with_device(|d| d.bulk_out(d.now(), port, address, &data));
            let n = if r.is_ok() { data.len() } else { 0 };
            Urb::RetSubmit(RetSubmit {
                header: BasicHeader { seqnum, devid: 0, direction: 0, ep: 0 },
                status: urb_status(r),
                actual_length: n as u32,
                start_frame: 0,
                number_of_packets: np,
                error_count: 0,
            })
            .emit(&mut self.out);
            return;
        }
        // Decision: an IN URB of any length is accepted, its buffer capped at MAX_URB_DATA:
        // a device transfer is at most 512 bytes (USB-11), so the cap is invisible, and a
        // host that queues large reads (usbfs allows 16 MiB) is served rather than refused.
        let len = (c.transfer_buffer_length as usize).min(MAX_URB_DATA);
        if self.inflight() >= MAX_INFLIGHT {
            ret_submit(&mut self.out, seqnum, -errno::ENOMEM, &[], true, np);
            return;
        }
        let epoch = self.shared.emu.with_device(|d| d.reset_epoch(port));
        self.queues.entry(ep | 0x80).or_default().push_back(InUrb {
            seqnum,
            epoch,
            buf: vec![0; len],
            number_of_packets: np,
        });
    }

    fn control(&mut self, c: &CmdSubmit, data: &[u8], np: u32) {
        let seqnum = c.header.seqnum;
        let header_in = c.header.direction == codec::dir::IN;
        let (setup, wlength) = ControlSetup::from_bytes(c.setup);
        let port = self.port;
        // USB_RT_PORT SET_FEATURE(USB_PORT_FEAT_RESET): what `usbip-host` turns into a port reset.
        if (setup.request_type, setup.request, setup.value) == (0x23, 0x03, 4) {
            self.shared.emu.with_device(|d| d.usb_reset(d.now(), port));
            ret_submit(&mut self.out, seqnum, 0, &[], header_in, np);
            return;
        }
        if (setup.direction() == Direction::In) != header_in {
            ret_submit(&mut self.out, seqnum, -errno::EINVAL, &[], header_in, np);
            return;
        }
        let len = (c.transfer_buffer_length as usize).min(usize::from(wlength));
        if header_in {
            let mut buf = vec![0u8; len];
            let r = self.shared.emu.with_device(|d| d.control_in(d.now(), port, setup, &mut buf));
            match r {
                Ok(n) => ret_submit(&mut self.out, seqnum, 0, &buf[..n.min(len)], true, np),
                Err(e) => ret_submit(&mut self.out, seqnum, urb_status(Err(e)), &[], true, np),
            }
        } else {
            let data = &data[..len.min(data.len())];
            let r = self.shared.emu.with_device(|d| d.control_out(d.now(), port, setup, data));
            let (status, n) = match r {
                Ok(n) => (0, n.min(data.len())),
                Err(e) => (urb_status(Err(e)), 0),
            };
            Urb::RetSubmit(RetSubmit {
                header: BasicHeader { seqnum, devid: 0, direction: 0, ep: 0 },
                status,
                actual_length: n as u32,
                start_frame: 0,
                number_of_packets: np,
                error_count: 0,
            })
            .emit(&mut self.out);
        }
    }

    /// Completes queued IN URBs from the device; `true` once the device has left the port.
    fn progress(&mut self) -> bool {
        let (port, generation) = (self.port, self.generation);
        let (queues, out) = (&mut self.queues, &mut self.out);
        self.shared.emu.with_device(|d| {
            if d.generation(port) != Some(generation) {
                return true;
            }
            let now = d.now();
            let epoch = d.reset_epoch(port);
            for (&ep, q) in queues.iter_mut() {
                // A bus reset (USB-15) cancels what was submitted before it.
                while q.front().is_some_and(|u| u.epoch != epoch) {
                    if let Some(u) = q.pop_front() {
                        let status = urb_status(Err(TransferError::Cancelled));
                        ret_submit(out, u.seqnum, status, &[], true, u.number_of_packets);
                    }
                }
                while let Some(u) = q.front_mut() {
                    let Some(r) = d.bulk_in(now, port, ep, &mut u.buf) else { break };
                    let Some(u) = q.pop_front() else { break };
                    let (status, n) = match r {
                        Ok(n) => (0, n.min(u.buf.len())),
                        Err(e) => (urb_status(Err(e)), 0),
                    };
                    ret_submit(out, u.seqnum, status, &u.buf[..n], true, u.number_of_packets);
                }
            }
            false
        })
    }

    /// Writes what is buffered; `false` if the connection is broken.
    fn flush(&mut self, stream: &TcpStream) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let mut w = stream;
        let ok = w.write_all(&self.out).is_ok();
        self.out.clear();
        ok
    }
}

/// Serves URBs on an imported connection until the client leaves, the device leaves its port,
/// or the server stops.
fn serve_urbs(reader: Option<TcpStream>, stream: &TcpStream, shared: &Shared, port: u8, generation: u64) {
    let Some(reader) = reader else { return };
    // From here the client may stay silent for as long as it likes.
    if reader.set_read_timeout(None).is_err() {
        return;
    }
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let Ok(reader) = std::thread::Builder::new()
        .name(format!("usbip-rx-{}", busid(port)))
        .spawn(move || read_commands(reader, &tx))
    else {
        return;
    };
    let mut session =
        Session { shared, port, generation, queues: BTreeMap::new(), out: Vec::with_capacity(4096) };
    run_session(&mut session, &rx, stream);
    // Free the port before the client can see the end, so it may import again at once.
    lock(&shared.imported).remove(&port);
    // Decision: a departed device (or a stopping server) ends the connection by closing the
    // socket without answering the queued URBs, as Linux `usbip-host` does on removal: vhci_hcd
    // detaches the port and gives them back -ESHUTDOWN itself, and a client sees every pending
    // and later transfer fail at once (no window where some completed and others still wait).
    let _ = stream.shutdown(Shutdown::Both);
    // The reader may be blocked sending into a full channel: dropping the receiver frees it.
    drop(rx);
    let _ = reader.join();
}

fn run_session(session: &mut Session<'_>, rx: &Receiver<Cmd>, stream: &TcpStream) {
    loop {
        if session.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let wait = if session.inflight() > 0 { BUSY_POLL } else { IDLE_POLL };
        match rx.recv_timeout(wait) {
            Ok(cmd) => {
                session.handle(cmd);
                for cmd in rx.try_iter().take(BATCH) {
                    session.handle(cmd);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The reader ended: the client closed the connection or sent garbage.
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let gone = session.progress();
        if !session.flush(stream) || gone {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_ids() {
        assert_eq!(busid(0), "1-1");
        assert_eq!(busid(1), "1-2");
        assert_eq!(busid(255), "1-256");
        assert_eq!(port_of_busid("1-1"), Some(0));
        assert_eq!(port_of_busid("1-2"), Some(1));
        assert_eq!(port_of_busid("1-256"), Some(255));
        for bad in ["", "1-", "1-0", "2-1", "1-257", "1-+1", "1-1.2", "1-00001", "x"] {
            assert_eq!(port_of_busid(bad), None, "{bad}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(urb_status(Ok(())), 0);
        assert_eq!(urb_status(Err(TransferError::Stall)), -32);
        assert_eq!(urb_status(Err(TransferError::Disconnected)), -19);
        assert_eq!(urb_status(Err(TransferError::Unknown(0))), -5, "-EIO, never success");
        assert_eq!(DEFAULT_ADDR.to_string(), "127.0.0.1:3240");
    }
}
