//! A minimal USB/IP server for one emulated Astribank, enough for `vhci_hcd`: one busid per
//! emulated USB port (`1-1`, `1-2`), IN URBs kept queued until the emulator has data, UNLINK
//! that really cancels, and a departure (renumeration, TwinStar jump) seen by the kernel as
//! an unplug: the server closes the connection and exports the port again once the device
//! is back on it, with its new identity.
//!
//! This is the kernel VM test's own stand-in, used until the emulator's real USB/IP server
//! is available; it runs on a real-time clock on 127.0.0.1 only.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use xpp_emu::{DeviceConfig, EmulatedTransport, Emulator, RealTimeRunner};
use xpp_usb::usbip::codec::{
    self, BasicHeader, ExportedDevice, OpReply, OpRequest, RetSubmit, RetUnlink, URB_HEADER_LEN, Urb,
    UsbDevice, UsbInterface,
};
use xpp_usb::{ControlSetup, Direction, TransferError, Transport};

/// How often the URB loop looks at the emulator when the host sends nothing.
const POLL: Duration = Duration::from_millis(2);

/// A running server; dropping it stops accepting, closes every connection and joins.
pub(crate) struct MiniServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    _runner: RealTimeRunner,
}

impl MiniServer {
    /// Serves a new emulated device built from `cfg` on `127.0.0.1` (an ephemeral port).
    pub(crate) fn spawn(cfg: DeviceConfig) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (emu, runner) = Emulator::real_time(cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(Mutex::new(vec![false; usize::from(emu.with_device(|d| d.port_count()))]));
        let accept_stop = stop.clone();
        let accept = std::thread::Builder::new().name("mini-usbip-accept".into()).spawn(move || {
            let mut conns = Vec::new();
            while !accept_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (emu, busy, stop) = (emu.clone(), busy.clone(), accept_stop.clone());
                        if let Ok(h) = std::thread::Builder::new()
                            .name("mini-usbip-conn".into())
                            .spawn(move || connection(s, &emu, &busy, &stop))
                        {
                            conns.push(h);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL * 5),
                    Err(_) => break,
                }
                conns.retain(|h: &JoinHandle<()>| !h.is_finished());
            }
            for h in conns {
                let _ = h.join();
            }
        })?;
        Ok(Self { addr, stop, accept: Some(accept), _runner: runner })
    }

    /// Where it listens.
    pub(crate) const fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MiniServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn busid(port: u8) -> String {
    format!("1-{}", port + 1)
}

fn record(port: u8, t: &EmulatedTransport) -> ExportedDevice {
    let info = t.info();
    let device = UsbDevice {
        path: format!("/sys/devices/xpp-emu/usb1/{}", busid(port)),
        busid: busid(port),
        busnum: 1,
        devnum: u32::from(port) + 1,
        speed: codec::speed_to_usbip(info.speed),
        id_vendor: info.vendor_id,
        id_product: info.product_id,
        bcd_device: info.bcd_device,
        device_class: 0,
        device_subclass: 0,
        device_protocol: 0,
        configuration_value: 1,
        num_configurations: 1,
        num_interfaces: info.interfaces.len() as u8,
    };
    let interfaces =
        info.interfaces.iter().map(|_| UsbInterface { class: 0xFF, subclass: 0, protocol: 0 }).collect();
    ExportedDevice { device, interfaces }
}

fn read_op_request(s: &mut TcpStream) -> io::Result<OpRequest> {
    let mut buf = Vec::new();
    loop {
        match OpRequest::parse(&buf) {
            Ok((req, _)) => return Ok(req),
            Err(e) => {
                let needed = e.needed().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let start = buf.len();
                buf.resize(needed, 0);
                s.read_exact(&mut buf[start..])?;
            }
        }
    }
}

fn send_op_reply(s: &mut TcpStream, reply: &OpReply) -> io::Result<()> {
    let mut out = Vec::new();
    reply.emit(&mut out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    s.write_all(&out)
}

fn connection(mut s: TcpStream, emu: &Emulator, busy: &Mutex<Vec<bool>>, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(req) = read_op_request(&mut s) else { return };
    let lock = || busy.lock().unwrap_or_else(PoisonError::into_inner);
    match req {
        OpRequest::DevList => {
            let free = lock().clone();
            let devices = (0..free.len() as u8)
                .filter(|&p| !free[usize::from(p)])
                .filter_map(|p| emu.transport(p).map(|t| record(p, &t)))
                .collect();
            let _ = send_op_reply(&mut s, &OpReply::DevList { status: 0, devices });
        }
        OpRequest::Import { busid: wanted } => {
            let port = (0..lock().len() as u8).find(|&p| busid(p) == wanted);
            let claimed = port.and_then(|p| {
                let mut b = lock();
                let slot = &mut b[usize::from(p)];
                if *slot {
                    return None;
                }
                let t = emu.transport(p)?;
                *slot = true;
                Some((p, t))
            });
            let Some((port, t)) = claimed else {
                let _ = send_op_reply(&mut s, &OpReply::Import { status: 1, device: None });
                return;
            };
            let generation = emu.with_device(|d| d.generation(port));
            let rec = record(port, &t);
            if send_op_reply(&mut s, &OpReply::Import { status: 0, device: Some(rec.device) }).is_ok() {
                let _ = s.set_read_timeout(None);
                serve_urbs(s, t, || emu.with_device(|d| d.generation(port)) != generation, stop);
            }
            lock()[usize::from(port)] = false;
        }
        _ => {}
    }
}

/// What the reader thread hands the URB loop.
enum Incoming {
    Urb(Urb, Vec<u8>),
    Closed,
}

fn reader(mut s: TcpStream, tx: &mpsc::Sender<Incoming>) {
    let mut header = [0u8; URB_HEADER_LEN];
    loop {
        if s.read_exact(&mut header).is_err() {
            break;
        }
        let Ok(urb) = Urb::parse(&header) else { break };
        let mut payload = vec![0; urb.payload_len(Direction::Out)];
        if s.read_exact(&mut payload).is_err() || tx.send(Incoming::Urb(urb, payload)).is_err() {
            break;
        }
    }
    let _ = tx.send(Incoming::Closed);
}

/// Linux errno for a transfer error, as `RET_SUBMIT` carries it.
const fn errno(e: TransferError) -> i32 {
    match e {
        TransferError::Cancelled => -104,
        TransferError::Stall => -32,
        TransferError::Disconnected => -19,
        TransferError::InvalidArgument => -22,
        _ => -71,
    }
}

struct Loop<W: Write> {
    out: W,
    t: EmulatedTransport,
    /// Bulk IN URBs in flight, per endpoint address: (seqnum, requested length), oldest first.
    inflight: HashMap<u8, VecDeque<(u32, usize)>>,
}

impl<W: Write> Loop<W> {
    fn ret_submit(&mut self, seqnum: u32, status: i32, actual: usize, data: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(URB_HEADER_LEN + data.len());
        Urb::RetSubmit(RetSubmit {
            header: BasicHeader { seqnum, ..BasicHeader::default() },
            status,
            actual_length: actual as u32,
            ..RetSubmit::default()
        })
        .emit(&mut out);
        out.extend_from_slice(data);
        self.out.write_all(&out)
    }

    fn ret_unlink(&mut self, seqnum: u32, status: i32) -> io::Result<()> {
        let mut out = Vec::with_capacity(URB_HEADER_LEN);
        Urb::RetUnlink(RetUnlink { header: BasicHeader { seqnum, ..BasicHeader::default() }, status })
            .emit(&mut out);
        self.out.write_all(&out)
    }

    fn submit(&mut self, urb: &codec::CmdSubmit, data: Vec<u8>) -> io::Result<()> {
        let seq = urb.header.seqnum;
        let len = urb.transfer_buffer_length as usize;
        let number = urb.header.ep as u8 & 0x0F;
        if number == 0 {
            let (setup, w_length) = ControlSetup::from_bytes(urb.setup);
            let timeout = Duration::from_secs(1);
            return if setup.direction() == Direction::In {
                let mut buf = vec![0; usize::from(w_length).min(len)];
                match self.t.control_in(setup, &mut buf, timeout) {
                    Ok(n) => self.ret_submit(seq, 0, n, &buf[..n]),
                    Err(e) => self.ret_submit(seq, errno(e), 0, &[]),
                }
            } else {
                match self.t.control_out(setup, &data, timeout) {
                    Ok(n) => self.ret_submit(seq, 0, n, &[]),
                    Err(e) => self.ret_submit(seq, errno(e), 0, &[]),
                }
            };
        }
        if urb.header.direction == codec::dir::IN {
            let ep = number | 0x80;
            match self.t.submit(ep, vec![0; len]) {
                Ok(()) => {
                    self.inflight.entry(ep).or_default().push_back((seq, len));
                    Ok(())
                }
                Err(e) => self.ret_submit(seq, errno(e), 0, &[]),
            }
        } else {
            let r = self.t.submit(number, data);
            let c = r.ok().and_then(|()| self.t.wait_next_complete(number, Duration::ZERO));
            match c {
                Some(c) => {
                    let status = c.status.err().map_or(0, errno);
                    self.ret_submit(seq, status, c.actual_len, &[])
                }
                None => self.ret_submit(seq, errno(TransferError::Disconnected), 0, &[]),
            }
        }
    }

    /// Cancels one IN URB: the emulator cancels a whole endpoint, so the others cancelled
    /// with it are submitted again, in order.
    fn unlink(&mut self, seqnum: u32, target: u32) -> io::Result<()> {
        let Some(ep) =
            self.inflight.iter().find(|(_, q)| q.iter().any(|&(s, _)| s == target)).map(|(&e, _)| e)
        else {
            return self.ret_unlink(seqnum, 0);
        };
        self.t.cancel_all(ep);
        let queue = self.inflight.remove(&ep).unwrap_or_default();
        let mut again = VecDeque::new();
        let mut unlink_status = 0;
        for (seq, len) in queue {
            let c = self.t.wait_next_complete(ep, Duration::ZERO);
            match c {
                Some(c) if c.status == Err(TransferError::Cancelled) => {
                    if seq == target {
                        unlink_status = codec::STATUS_UNLINKED;
                    } else if self.t.submit(ep, vec![0; len]).is_ok() {
                        again.push_back((seq, len));
                    } else {
                        self.ret_submit(seq, errno(TransferError::Disconnected), 0, &[])?;
                    }
                }
                Some(c) => {
                    let status = c.status.err().map_or(0, errno);
                    self.ret_submit(seq, status, c.actual_len, &c.buffer)?;
                }
                None => self.ret_submit(seq, errno(TransferError::Disconnected), 0, &[])?,
            }
        }
        self.inflight.insert(ep, again);
        self.ret_unlink(seqnum, unlink_status)
    }

    fn complete_ready(&mut self) -> io::Result<()> {
        let eps: Vec<u8> = self.inflight.keys().copied().collect();
        for ep in eps {
            while self.inflight.get(&ep).is_some_and(|q| !q.is_empty()) {
                let Some(c) = self.t.wait_next_complete(ep, Duration::ZERO) else { break };
                let Some((seq, _)) = self.inflight.get_mut(&ep).and_then(VecDeque::pop_front) else { break };
                let status = c.status.err().map_or(0, errno);
                self.ret_submit(seq, status, c.actual_len, &c.buffer)?;
            }
        }
        Ok(())
    }

    fn run(&mut self, rx: &Receiver<Incoming>, gone: impl Fn() -> bool, stop: &AtomicBool) -> io::Result<()> {
        while !stop.load(Ordering::Relaxed) && !gone() && !self.t.is_disconnected() {
            match rx.recv_timeout(POLL) {
                Ok(Incoming::Urb(Urb::CmdSubmit(c), data)) => self.submit(&c, data)?,
                Ok(Incoming::Urb(Urb::CmdUnlink(u), _)) => self.unlink(u.header.seqnum, u.unlink_seqnum)?,
                Ok(Incoming::Urb(..)) | Ok(Incoming::Closed) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.complete_ready()?;
        }
        Ok(())
    }
}

/// Serves URBs on `s` until the host closes it, the device leaves (`gone`) or `stop`.
fn serve_urbs(s: TcpStream, t: EmulatedTransport, gone: impl Fn() -> bool, stop: &AtomicBool) {
    let Ok(read_half) = s.try_clone() else { return };
    let (tx, rx) = mpsc::channel();
    let Ok(reader) =
        std::thread::Builder::new().name("mini-usbip-rx".into()).spawn(move || reader(read_half, &tx))
    else {
        return;
    };
    let mut l = Loop { out: &s, t, inflight: HashMap::new() };
    let _ = l.run(&rx, gone, stop);
    // The kernel sees the connection end as an unplug of its vhci port.
    let _ = s.shutdown(Shutdown::Both);
    let _ = reader.join();
}
