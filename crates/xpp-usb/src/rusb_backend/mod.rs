//! [`Transport`] over [rusb](https://docs.rs/rusb) (libusb), feature `rusb`.
//!
//! # Design: one worker thread per bulk endpoint, libusb's synchronous API
//! rusb 0.9 exposes only libusb's synchronous transfer functions safely; its asynchronous
//! API would mean calling `libusb1-sys` directly (`libusb_alloc_transfer`, callbacks,
//! an event-handling thread), which needs `unsafe` in this `#![forbid(unsafe_code)]`
//! crate. So each bulk endpoint gets a worker thread that owns the endpoint's FIFO of
//! submitted buffers and runs them one at a time with `read_bulk`/`write_bulk`:
//!
//! - The *queue* is as deep as the caller makes it (the reference driver keeps 10 IN
//!   buffers); libusb has one transfer in flight per endpoint at a time. For an Astribank
//!   that is enough: the FX2 buffers its IN data on chip, so nothing is lost between two
//!   transfers; only throughput above one 512-byte packet per transfer round trip suffers.
//! - Each libusb call runs with a short slice timeout (`SLICE`, 50 ms); between slices the worker
//!   looks at cancel and stop requests, so `cancel_all` takes effect within one slice and
//!   dropping the transport joins every worker within one slice. A slice that times out
//!   discards what libusb received in it (rusb reports only `Timeout`): harmless for
//!   single-packet transfers (an Astribank's are at most 512 bytes, one high-speed packet),
//!   which either arrived whole or not at all.
//! - Completions come back in submission order per endpoint, as the trait requires.
//!
//! `rusb::Context::new()` is used, never the global context (which panics on a machine
//! without USB). Errors are mapped in one function, `map_error`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusb::UsbContext;

use crate::discovery::{Locator, bus_path, classify};
use crate::error::Error;
use crate::info::{DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferType};
use crate::transport::{Completion, ControlSetup, Direction, TransferError, Transport, endpoint_direction};

/// How long one libusb call may block before the worker checks for cancel/stop.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Maps every libusb error a transfer, control request or reset can give to ours: the one
/// error-mapping function of this backend.
pub(crate) const fn map_error(e: rusb::Error) -> TransferError {
    use rusb::Error as R;
    match e {
        R::Timeout | R::Interrupted => TransferError::Cancelled,
        R::Pipe => TransferError::Stall,
        R::NoDevice => TransferError::Disconnected,
        R::Io | R::Overflow | R::NoMem | R::BadDescriptor | R::Busy | R::Access => TransferError::Fault,
        R::InvalidParam | R::NotSupported | R::NotFound => TransferError::InvalidArgument,
        // LIBUSB_ERROR_OTHER = -99.
        R::Other => TransferError::Unknown(99),
    }
}

/// Maps a libusb error while opening or claiming to the crate error.
pub(crate) fn map_open_error(e: rusb::Error, what: &str) -> Error {
    let msg = format!("{what}: {e}");
    match e {
        rusb::Error::Access => Error::PermissionDenied(msg),
        rusb::Error::NoDevice | rusb::Error::NotFound => Error::NotFound(msg),
        rusb::Error::Busy => Error::Busy(msg),
        rusb::Error::NotSupported => Error::Unsupported(msg),
        _ => Error::Other(msg),
    }
}

const fn map_speed(s: rusb::Speed) -> Speed {
    match s {
        rusb::Speed::Low => Speed::Low,
        rusb::Speed::Full => Speed::Full,
        rusb::Speed::High => Speed::High,
        rusb::Speed::Super | rusb::Speed::SuperPlus => Speed::Super,
        _ => Speed::Unknown,
    }
}

/// The raw `bcdDevice` back from rusb's decoded version (major is two BCD digits).
fn version_to_bcd(v: rusb::Version) -> u16 {
    let major = u16::from(v.major());
    (major / 10 % 10) << 12
        | (major % 10) << 8
        | u16::from(v.minor() & 0xF) << 4
        | u16::from(v.sub_minor() & 0xF)
}

/// One transfer attempt of at most `timeout` on the worker's endpoint: read into or write
/// from the buffer, returning the bytes moved.
type BulkIo = Box<dyn FnMut(&mut [u8], Duration) -> Result<usize, rusb::Error> + Send>;

struct Job {
    buffer: Vec<u8>,
    generation: u64,
}

#[derive(Default)]
struct EpState {
    queue: VecDeque<Job>,
    running: usize,
    done: VecDeque<Completion>,
    /// Bumped by `cancel_all`: jobs submitted before it are cancelled.
    generation: u64,
    stop: bool,
}

struct EpShared {
    state: Mutex<EpState>,
    cond: Condvar,
}

impl EpShared {
    fn lock(&self) -> MutexGuard<'_, EpState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bulk endpoint's queue and its worker thread.
struct Worker {
    address: u8,
    shared: Arc<EpShared>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn spawn(address: u8, io: BulkIo, gone: Arc<AtomicBool>) -> std::io::Result<Self> {
        let shared = Arc::new(EpShared { state: Mutex::new(EpState::default()), cond: Condvar::new() });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("rusb-ep{address:02x}"))
            .spawn(move || worker_loop(address, io, &s, &gone))?;
        Ok(Self { address, shared, thread: Some(thread) })
    }

    fn submit(&self, buffer: Vec<u8>) {
        let mut st = self.shared.lock();
        let generation = st.generation;
        st.queue.push_back(Job { buffer, generation });
        drop(st);
        self.shared.cond.notify_all();
    }

    fn pending(&self) -> usize {
        let st = self.shared.lock();
        st.queue.len() + st.running + st.done.len()
    }

    fn wait_next_complete(&self, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(c) = st.done.pop_front() {
                return Some(c);
            }
            if st.queue.is_empty() && st.running == 0 {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self.shared.cond.wait_timeout(st, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn cancel_all(&self) {
        let mut st = self.shared.lock();
        st.generation += 1;
        drop(st);
        self.shared.cond.notify_all();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn worker_loop(endpoint: u8, mut io: BulkIo, shared: &EpShared, gone: &AtomicBool) {
    let direction = endpoint_direction(endpoint);
    loop {
        let job = {
            let mut st = shared.lock();
            loop {
                if st.stop {
                    return;
                }
                if let Some(job) = st.queue.pop_front() {
                    st.running = 1;
                    break job;
                }
                st = shared.cond.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut buffer = job.buffer;
        let (actual_len, status) = loop {
            if gone.load(Ordering::Acquire) {
                break (0, Err(TransferError::Disconnected));
            }
            {
                let st = shared.lock();
                if st.stop || st.generation != job.generation {
                    break (0, Err(TransferError::Cancelled));
                }
            }
            match io(&mut buffer, SLICE) {
                Ok(n) => break (n, Ok(())),
                Err(rusb::Error::Timeout) => {}
                Err(e) => {
                    let e = map_error(e);
                    if e == TransferError::Disconnected {
                        gone.store(true, Ordering::Release);
                    }
                    break (0, Err(e));
                }
            }
        };
        if direction == Direction::In {
            buffer.truncate(actual_len);
        }
        let mut st = shared.lock();
        st.running = 0;
        st.done.push_back(Completion { endpoint, buffer, actual_len, status });
        drop(st);
        shared.cond.notify_all();
    }
}

/// A [`Transport`] over libusb. See the [module documentation](self).
pub struct RusbTransport {
    info: DeviceInfo,
    // Workers are dropped (joined) before the handle: field order.
    workers: Vec<Worker>,
    handle: Arc<rusb::DeviceHandle<rusb::Context>>,
    gone: Arc<AtomicBool>,
}

impl std::fmt::Debug for RusbTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RusbTransport").field("info", &self.info).finish_non_exhaustive()
    }
}

impl RusbTransport {
    /// A fresh libusb context; [`Error::Unavailable`] where libusb cannot start (no USB).
    pub fn context() -> Result<rusb::Context, Error> {
        rusb::Context::new().map_err(|e| Error::Unavailable(format!("libusb: {e}")))
    }

    /// Opens the device `locator` names, in a new libusb context. By path: any vendor; by
    /// serial: Astribank-family devices only (reading a serial means opening the device).
    pub fn open(locator: &Locator) -> Result<Self, Error> {
        let ctx = Self::context()?;
        let devices = ctx.devices().map_err(|e| Error::Unavailable(format!("libusb device list: {e}")))?;
        for d in devices.iter() {
            let ports = d.port_numbers().unwrap_or_default();
            let serial = match locator {
                Locator::Serial(_) => {
                    let Ok(desc) = d.device_descriptor() else { continue };
                    if classify(desc.vendor_id(), desc.product_id()).is_none() {
                        continue;
                    }
                    d.open().ok().and_then(|h| h.read_serial_number_string_ascii(&desc).ok())
                }
                _ => None,
            };
            if locator.matches(d.bus_number(), d.address(), &ports, serial.as_deref()) {
                return Self::open_device(&d);
            }
        }
        Err(Error::NotFound(locator.to_string()))
    }

    /// Opens `device`, claims interface 0 and (if present) 1, detaching kernel drivers, and
    /// starts a worker for each bulk endpoint.
    pub fn open_device(device: &rusb::Device<rusb::Context>) -> Result<Self, Error> {
        let desc = device.device_descriptor().map_err(|e| map_open_error(e, "device descriptor"))?;
        let handle = device.open().map_err(|e| map_open_error(e, "open"))?;
        // Not supported on every platform; claiming reports the real problem if any.
        let _ = handle.set_auto_detach_kernel_driver(true);
        let config = device.active_config_descriptor().map_err(|e| map_open_error(e, "configuration"))?;
        let mut interfaces = Vec::new();
        for iface in config.interfaces() {
            let number = iface.number();
            if number > 1 {
                continue;
            }
            let Some(alt) = iface.descriptors().find(|a| a.setting_number() == 0) else { continue };
            let endpoints = alt
                .endpoint_descriptors()
                .map(|e| EndpointInfo {
                    address: e.address(),
                    transfer_type: match e.transfer_type() {
                        rusb::TransferType::Control => TransferType::Control,
                        rusb::TransferType::Isochronous => TransferType::Isochronous,
                        rusb::TransferType::Bulk => TransferType::Bulk,
                        rusb::TransferType::Interrupt => TransferType::Interrupt,
                    },
                    max_packet_size: e.max_packet_size() & 0x07FF,
                })
                .collect();
            handle
                .claim_interface(number)
                .map_err(|e| map_open_error(e, &format!("claim interface {number}")))?;
            interfaces.push(InterfaceInfo { number, endpoints });
        }
        interfaces.sort_by_key(|i| i.number);
        let ports = device.port_numbers().unwrap_or_default();
        let strings =
            |f: fn(&rusb::DeviceHandle<rusb::Context>, &rusb::DeviceDescriptor) -> rusb::Result<String>| {
                f(&handle, &desc).ok()
            };
        let info = DeviceInfo {
            vendor_id: desc.vendor_id(),
            product_id: desc.product_id(),
            bcd_device: version_to_bcd(desc.device_version()),
            manufacturer: strings(|h, d| h.read_manufacturer_string_ascii(d)),
            product: strings(|h, d| h.read_product_string_ascii(d)),
            serial: strings(|h, d| h.read_serial_number_string_ascii(d)),
            speed: map_speed(device.speed()),
            location: format!("usb-{}", bus_path(device.bus_number(), &ports)),
            interfaces,
        };
        if info.interface(0).is_none() {
            return Err(Error::Unsupported(format!("{}: no interface 0", info.location)));
        }
        let handle = Arc::new(handle);
        let gone = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for e in info.interfaces.iter().flat_map(|i| &i.endpoints) {
            if !matches!(e.transfer_type, TransferType::Bulk | TransferType::Interrupt) {
                continue;
            }
            let h = Arc::clone(&handle);
            let address = e.address;
            let interrupt = e.transfer_type == TransferType::Interrupt;
            let io: BulkIo = match (e.direction(), interrupt) {
                (Direction::In, false) => Box::new(move |b, t| h.read_bulk(address, b, t)),
                (Direction::Out, false) => Box::new(move |b, t| h.write_bulk(address, b, t)),
                (Direction::In, true) => Box::new(move |b, t| h.read_interrupt(address, b, t)),
                (Direction::Out, true) => Box::new(move |b, t| h.write_interrupt(address, b, t)),
            };
            workers.push(Worker::spawn(address, io, Arc::clone(&gone))?);
        }
        Ok(Self { info, workers, handle, gone })
    }

    fn worker(&self, endpoint: u8) -> Option<&Worker> {
        self.workers.iter().find(|w| w.address == endpoint)
    }

    fn note<T>(&self, r: Result<T, TransferError>) -> Result<T, TransferError> {
        if r.as_ref().err() == Some(&TransferError::Disconnected) {
            self.gone.store(true, Ordering::Release);
        }
        r
    }

    fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }
}

impl Transport for RusbTransport {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.is_gone() {
            return Err(TransferError::Disconnected);
        }
        let w = self.worker(endpoint).ok_or(TransferError::InvalidArgument)?;
        if endpoint_direction(endpoint) == Direction::In && buffer.is_empty() {
            return Err(TransferError::InvalidArgument);
        }
        w.submit(buffer);
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.worker(endpoint).map_or(0, Worker::pending)
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        self.worker(endpoint)?.wait_next_complete(timeout)
    }

    fn cancel_all(&mut self, endpoint: u8) {
        if let Some(w) = self.worker(endpoint) {
            w.cancel_all();
        }
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if self.is_gone() {
            return Err(TransferError::Disconnected);
        }
        if setup.direction() != Direction::Out || data.len() > usize::from(u16::MAX) {
            return Err(TransferError::InvalidArgument);
        }
        let r = self
            .handle
            .write_control(setup.request_type, setup.request, setup.value, setup.index, data, timeout)
            .map_err(map_error);
        self.note(r)
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if self.is_gone() {
            return Err(TransferError::Disconnected);
        }
        if setup.direction() != Direction::In || buf.len() > usize::from(u16::MAX) {
            return Err(TransferError::InvalidArgument);
        }
        let r = self
            .handle
            .read_control(setup.request_type, setup.request, setup.value, setup.index, buf, timeout)
            .map_err(map_error);
        self.note(r)
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        if self.is_gone() {
            return Err(TransferError::Disconnected);
        }
        let r = self.handle.reset().map_err(|e| match e {
            // libusb: NOT_FOUND after a reset means the device re-enumerated as another.
            rusb::Error::NotFound => TransferError::Disconnected,
            e => map_error(e),
        });
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn every_libusb_error_maps() {
        use rusb::Error as R;
        let cases = [
            (R::Timeout, TransferError::Cancelled),
            (R::Interrupted, TransferError::Cancelled),
            (R::Pipe, TransferError::Stall),
            (R::NoDevice, TransferError::Disconnected),
            (R::Io, TransferError::Fault),
            (R::Overflow, TransferError::Fault),
            (R::NoMem, TransferError::Fault),
            (R::BadDescriptor, TransferError::Fault),
            (R::Busy, TransferError::Fault),
            (R::Access, TransferError::Fault),
            (R::InvalidParam, TransferError::InvalidArgument),
            (R::NotSupported, TransferError::InvalidArgument),
            (R::NotFound, TransferError::InvalidArgument),
            (R::Other, TransferError::Unknown(99)),
        ];
        for (r, ours) in cases {
            assert_eq!(map_error(r), ours, "{r:?}");
        }
        assert!(matches!(map_open_error(rusb::Error::Access, "open"), Error::PermissionDenied(_)));
        assert!(matches!(map_open_error(rusb::Error::NoDevice, "open"), Error::NotFound(_)));
        assert!(matches!(map_open_error(rusb::Error::Busy, "claim"), Error::Busy(_)));
        assert!(matches!(map_open_error(rusb::Error::Io, "x"), Error::Other(_)));
        assert_eq!(map_speed(rusb::Speed::High), Speed::High);
        assert_eq!(map_speed(rusb::Speed::Unknown), Speed::Unknown);
        for bcd in [0x0101u16, 0x0201, 0x0203, 0x1234, 0x9999, 0x0000] {
            assert_eq!(version_to_bcd(rusb::Version::from_bcd(bcd)), bcd, "{bcd:04x}");
        }
    }

    /// Without a USB subsystem this is an error (context or listing), never a panic.
    #[test]
    fn open_without_the_device_is_an_error() {
        let locator: Locator = "9-7.7.7".parse().unwrap();
        match RusbTransport::open(&locator) {
            Err(Error::Unavailable(_) | Error::NotFound(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A fake IN endpoint fed from a channel: each slice waits for one packet.
    fn fake_in(rx: mpsc::Receiver<Result<Vec<u8>, rusb::Error>>) -> BulkIo {
        Box::new(move |buf, slice| match rx.recv_timeout(slice) {
            Ok(Ok(data)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(rusb::Error::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(rusb::Error::NoDevice),
        })
    }

    #[test]
    fn worker_keeps_order_and_cancels() {
        let (tx, rx) = mpsc::channel();
        let gone = Arc::new(AtomicBool::new(false));
        let w = Worker::spawn(0x86, fake_in(rx), Arc::clone(&gone)).unwrap();
        for _ in 0..10 {
            w.submit(vec![0; 512]);
        }
        assert_eq!(w.pending(), 10);
        for i in 0..3u8 {
            tx.send(Ok(vec![i; 7])).unwrap();
        }
        for i in 0..3u8 {
            let c = w.wait_next_complete(Duration::from_secs(5)).unwrap();
            assert_eq!((c.status, c.actual_len, c.buffer), (Ok(()), 7, vec![i; 7]));
        }
        assert!(w.wait_next_complete(Duration::from_millis(10)).is_none());
        w.cancel_all();
        for _ in 0..7 {
            let c = w.wait_next_complete(Duration::from_secs(5)).unwrap();
            assert_eq!(c.status, Err(TransferError::Cancelled));
        }
        assert_eq!(w.pending(), 0);
        // Still usable after a cancel.
        w.submit(vec![0; 512]);
        tx.send(Ok(vec![9])).unwrap();
        assert_eq!(w.wait_next_complete(Duration::from_secs(5)).unwrap().buffer, vec![9]);
        // A stall is reported and the worker goes on.
        w.submit(vec![0; 512]);
        tx.send(Err(rusb::Error::Pipe)).unwrap();
        assert_eq!(w.wait_next_complete(Duration::from_secs(5)).unwrap().status, Err(TransferError::Stall));
        assert!(!gone.load(Ordering::Acquire));
    }

    #[test]
    fn worker_disconnect_fails_everything_and_drop_joins() {
        let (tx, rx) = mpsc::channel();
        let gone = Arc::new(AtomicBool::new(false));
        let w = Worker::spawn(0x86, fake_in(rx), Arc::clone(&gone)).unwrap();
        for _ in 0..4 {
            w.submit(vec![0; 512]);
        }
        tx.send(Err(rusb::Error::NoDevice)).unwrap();
        for _ in 0..4 {
            let c = w.wait_next_complete(Duration::from_secs(5)).unwrap();
            assert_eq!(c.status, Err(TransferError::Disconnected));
        }
        assert!(gone.load(Ordering::Acquire));
        // Drop with a transfer in progress returns within a slice or two.
        w.submit(vec![0; 512]);
        let t = Instant::now();
        drop(w);
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(tx);
    }

    #[test]
    fn worker_drop_with_blocked_transfer_joins_within_a_slice() {
        let (tx, rx) = mpsc::channel::<Result<Vec<u8>, rusb::Error>>();
        let w = Worker::spawn(0x86, fake_in(rx), Arc::new(AtomicBool::new(false))).unwrap();
        w.submit(vec![0; 512]);
        std::thread::sleep(SLICE);
        let t = Instant::now();
        drop(w);
        assert!(t.elapsed() < SLICE * 4, "{:?}", t.elapsed());
        drop(tx);
    }

    /// Needs an Astribank in stage 11x1 or 11x2 (management interface alive).
    #[test]
    #[ignore = "needs hardware"]
    fn hardware_mpp_proto_get() {
        let ctx = RusbTransport::context().unwrap();
        let dev = ctx
            .devices()
            .unwrap()
            .iter()
            .find(|d| d.device_descriptor().is_ok_and(|x| classify(x.vendor_id(), x.product_id()).is_some()))
            .expect("no Astribank");
        let mut t = RusbTransport::open_device(&dev).unwrap();
        crate::tests_hw::mpp_proto_get(&mut t);
    }
}
