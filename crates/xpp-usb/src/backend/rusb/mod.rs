//! [`Transport`] over [rusb](https://docs.rs/rusb) (libusb), feature `rusb`.
//!
//! # Design: libusb's asynchronous API, one event thread per transport
//!
//! **Why asynchronous.** rusb's safe API offers only libusb's synchronous bulk calls, which
//! keep *one* transfer in flight per endpoint: between two transfers the endpoint has no URB
//! queued, so every transfer pays a full submit/reap round trip, and a synchronous call that
//! times out cannot say how much it had received. The reference driver keeps 10 bulk IN URBs
//! queued. So this backend uses libusb's asynchronous API through `rusb::ffi` (`libusb1-sys`):
//! every buffer the caller submits becomes a `libusb_transfer` submitted at once, so as many
//! transfers are in flight per endpoint as the caller queued (at most `MAX_IN_FLIGHT`, 128;
//! more fail with [`TransferError::InvalidArgument`]). Through the kernel's `vhci_hcd` in the
//! QEMU test (`ci/kernel-usb-vm`), against an emulated device ticking every millisecond, the
//! synchronous design reaped about 160-290 IN transfers/s whatever the queue depth; with 10
//! queued this one reaps 880-1000/s and keeps the device's FIFO drained.
//!
//! **Threads.** [`RusbTransport::open_device`] starts one thread that calls
//! `libusb_handle_events_timeout_completed` in a loop (100 ms slices); every completion
//! callback runs there. Control transfers and reset use rusb's synchronous calls on the
//! caller's thread: libusb lets them wait for their own completion while the event thread
//! handles events, so they never queue behind bulk traffic.
//!
//! **Buffers.** The trait's `Vec<u8>` moves into the transfer's shared state on submit and
//! stays there, untouched, while libusb holds its pointer; the callback hands it back with
//! libusb's `status` and `actual_length`. The transfer's state is reference-counted and the
//! in-flight submission holds one reference itself, so nothing libusb uses (transfer, buffer,
//! device handle) can be freed before its callback, whatever the caller does. The `unsafe`
//! code is all in the `transfer` submodule, behind a safe `Transfer` type.
//!
//! **Completions.** The callback stores the result in its transfer and wakes the endpoint's
//! waiters; each endpoint keeps its submitted transfers oldest first and
//! [`Transport::wait_next_complete`] hands out only the oldest once it has finished, so
//! completions leave in submission order. Finished transfers are reused for later submits:
//! no allocation per transfer once the queue is warm. libusb's status is mapped by
//! `map_status`; an IN completion's buffer is truncated to `actual_length`, which is also
//! reported for a failed or cancelled transfer, so received bytes are never dropped.
//!
//! **Cancellation.** [`Transport::cancel_all`] calls `libusb_cancel_transfer` on every
//! transfer of the endpoint and waits (up to `CANCEL_WAIT`) until all their callbacks have
//! run; they then come back through `wait_next_complete`, `Cancelled` or with their real
//! result if they finished first. Dropping the transport cancels every endpoint, waits for
//! the callbacks, frees the transfers, stops and joins the event thread (interrupting it with
//! `libusb_interrupt_event_handler`), then closes the device.
//!
//! **Disconnect.** The first `Disconnected` from a completion (`LIBUSB_TRANSFER_NO_DEVICE`),
//! a submit, a control request or a reset marks the transport gone and cancels everything in
//! flight. From then on submits and control requests fail with `Disconnected` at once, and
//! every pending transfer that did not complete successfully comes back `Disconnected`
//! (libusb fails in-flight transfers itself when the kernel reports the unplug).
//!
//! `rusb::Context::new()` is used, never the global context (which panics on a machine
//! without USB). libusb error codes are mapped in one function, `map_error`.

mod queue;
mod transfer;

use std::ffi::c_int;
use std::sync::Arc;
use std::time::Duration;

use rusb::UsbContext;
use rusb::constants as c;

use self::queue::{EpQueue, Finished, SubmitError, deadline};
use self::transfer::{EventThread, Kind, Target, Transfer};
use crate::discovery::{Locator, bus_path, classify};
use crate::error::Error;
use crate::info::{
    DeviceInfo, Direction, EndpointInfo, InterfaceInfo, Speed, TransferType, endpoint_direction,
};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// How long [`Transport::cancel_all`] waits for the cancelled transfers' callbacks.
pub(crate) const CANCEL_WAIT: Duration = Duration::from_secs(1);

/// How long dropping the transport waits for every endpoint's cancelled transfers.
const DROP_WAIT: Duration = Duration::from_secs(2);

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

/// rusb's error for a raw `LIBUSB_ERROR_*` code (what `libusb_submit_transfer` returns).
const fn error_from_code(code: c_int) -> rusb::Error {
    use rusb::Error as R;
    match code {
        c::LIBUSB_ERROR_IO => R::Io,
        c::LIBUSB_ERROR_INVALID_PARAM => R::InvalidParam,
        c::LIBUSB_ERROR_ACCESS => R::Access,
        c::LIBUSB_ERROR_NO_DEVICE => R::NoDevice,
        c::LIBUSB_ERROR_NOT_FOUND => R::NotFound,
        c::LIBUSB_ERROR_BUSY => R::Busy,
        c::LIBUSB_ERROR_TIMEOUT => R::Timeout,
        c::LIBUSB_ERROR_OVERFLOW => R::Overflow,
        c::LIBUSB_ERROR_PIPE => R::Pipe,
        c::LIBUSB_ERROR_INTERRUPTED => R::Interrupted,
        c::LIBUSB_ERROR_NO_MEM => R::NoMem,
        c::LIBUSB_ERROR_NOT_SUPPORTED => R::NotSupported,
        _ => R::Other,
    }
}

/// Maps a finished transfer's `LIBUSB_TRANSFER_*` status to ours: the asynchronous
/// counterpart of [`map_error`].
pub(crate) const fn map_status(status: c_int) -> Result<(), TransferError> {
    match status {
        c::LIBUSB_TRANSFER_COMPLETED => Ok(()),
        // We set no libusb timeouts; a timed-out transfer is cancelled by definition.
        c::LIBUSB_TRANSFER_CANCELLED | c::LIBUSB_TRANSFER_TIMED_OUT => Err(TransferError::Cancelled),
        c::LIBUSB_TRANSFER_STALL => Err(TransferError::Stall),
        c::LIBUSB_TRANSFER_NO_DEVICE => Err(TransferError::Disconnected),
        // ERROR: CRC, babble, any other host-controller failure. OVERFLOW: the device sent
        // more than the buffer holds.
        c::LIBUSB_TRANSFER_ERROR | c::LIBUSB_TRANSFER_OVERFLOW => Err(TransferError::Fault),
        other => Err(TransferError::Unknown(other as u32)),
    }
}

/// The trait's completion for a transfer libusb finished on `endpoint`. IN data is
/// truncated to what arrived, also when the transfer failed or was cancelled; once the
/// device is `gone`, every failure is reported as [`TransferError::Disconnected`].
pub(crate) fn completion(endpoint: u8, f: Finished, gone: bool) -> Completion {
    let Finished { mut buffer, status, actual_len } = f;
    let actual_len = actual_len.min(buffer.len());
    let status = match map_status(status) {
        Err(_) if gone => Err(TransferError::Disconnected),
        s => s,
    };
    if endpoint_direction(endpoint) == Direction::In {
        buffer.truncate(actual_len);
    }
    Completion { endpoint, buffer, actual_len, status }
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

/// One bulk or interrupt endpoint: its address, type and queue.
#[derive(Debug)]
struct Endpoint {
    address: u8,
    kind: Kind,
    queue: EpQueue<Transfer>,
}

/// A [`Transport`] over libusb's asynchronous API. See the [module documentation](self).
pub struct RusbTransport {
    info: DeviceInfo,
    endpoints: Vec<Endpoint>,
    /// Stopped in `Drop` once every transfer has finished.
    events: Option<EventThread>,
    handle: Arc<rusb::DeviceHandle<rusb::Context>>,
    gone: bool,
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
    /// starts the event thread.
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
        let endpoints = info
            .interfaces
            .iter()
            .flat_map(|i| &i.endpoints)
            .filter_map(|e| {
                let kind = match e.transfer_type {
                    TransferType::Bulk => Kind::Bulk,
                    TransferType::Interrupt => Kind::Interrupt,
                    _ => return None,
                };
                Some(Endpoint { address: e.address, kind, queue: EpQueue::new() })
            })
            .collect();
        let events = EventThread::spawn(
            device.context(),
            format!("rusb {}", info.location.trim_start_matches("usb-")),
        )?;
        Ok(Self { info, endpoints, events: Some(events), handle, gone: false })
    }

    fn endpoint(&mut self, address: u8) -> Option<&mut Endpoint> {
        self.endpoints.iter_mut().find(|e| e.address == address)
    }

    /// Records a disconnect: later calls fail at once, and everything in flight is cancelled
    /// (libusb fails it too when it notices the unplug).
    fn mark_gone(&mut self) {
        if !self.gone {
            log::debug!("{}: device gone", self.info.location);
            self.gone = true;
            for e in &self.endpoints {
                e.queue.cancel_all();
            }
        }
    }

    fn note<T>(&mut self, r: Result<T, TransferError>) -> Result<T, TransferError> {
        if r.as_ref().err() == Some(&TransferError::Disconnected) {
            self.mark_gone();
        }
        r
    }

    fn is_gone(&self) -> bool {
        self.gone
    }
}

impl Drop for RusbTransport {
    fn drop(&mut self) {
        for e in &self.endpoints {
            e.queue.cancel_all();
        }
        let until = deadline(DROP_WAIT);
        let stuck: usize = self
            .endpoints
            .iter()
            .filter(|e| !e.queue.wait_all_finished(until))
            .map(|e| e.queue.pending())
            .sum();
        if stuck != 0 {
            // Their shared state keeps buffer and device handle alive until libusb lets go.
            log::warn!(
                "{}: {stuck} transfers still in flight after cancel; leaking them",
                self.info.location
            );
        }
        // Frees the finished transfers, then joins the event thread; the handle closes last.
        self.endpoints.clear();
        self.events = None;
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
        if endpoint_direction(endpoint) == Direction::In && buffer.is_empty() {
            return Err(TransferError::InvalidArgument);
        }
        let handle = Arc::clone(&self.handle);
        let ep = self.endpoint(endpoint).ok_or(TransferError::InvalidArgument)?;
        let kind = ep.kind;
        let r = ep.queue.submit(buffer, |signal| Transfer::new(signal, Target { handle, endpoint, kind }));
        let r = r.map_err(|e| match e {
            SubmitError::Full => TransferError::InvalidArgument,
            SubmitError::NoMemory => TransferError::Fault,
            SubmitError::Libusb(code) => map_error(error_from_code(code)),
        });
        self.note(r)
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.endpoints.iter().find(|e| e.address == endpoint).map_or(0, |e| e.queue.pending())
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let finished = self.endpoint(endpoint)?.queue.wait_next(timeout)?;
        if finished.status == c::LIBUSB_TRANSFER_NO_DEVICE {
            self.mark_gone();
        }
        Some(completion(endpoint, finished, self.gone))
    }

    fn cancel_all(&mut self, endpoint: u8) {
        if let Some(e) = self.endpoint(endpoint) {
            e.queue.cancel_all();
            if !e.queue.wait_all_finished(deadline(CANCEL_WAIT)) {
                log::warn!("cancel_all({endpoint:#04x}): not every transfer finished within {CANCEL_WAIT:?}");
            }
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

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        if self.is_gone() {
            return Err(TransferError::Disconnected);
        }
        if self.endpoint(endpoint).is_none() {
            return Err(TransferError::InvalidArgument);
        }
        // libusb_clear_halt: the request plus the host side's toggle reset.
        let r = self.handle.clear_halt(endpoint).map_err(map_error);
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

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

    #[test]
    fn every_submit_error_code_maps() {
        let cases = [
            (c::LIBUSB_ERROR_IO, TransferError::Fault),
            (c::LIBUSB_ERROR_INVALID_PARAM, TransferError::InvalidArgument),
            (c::LIBUSB_ERROR_ACCESS, TransferError::Fault),
            (c::LIBUSB_ERROR_NO_DEVICE, TransferError::Disconnected),
            (c::LIBUSB_ERROR_NOT_FOUND, TransferError::InvalidArgument),
            (c::LIBUSB_ERROR_BUSY, TransferError::Fault),
            (c::LIBUSB_ERROR_TIMEOUT, TransferError::Cancelled),
            (c::LIBUSB_ERROR_OVERFLOW, TransferError::Fault),
            (c::LIBUSB_ERROR_PIPE, TransferError::Stall),
            (c::LIBUSB_ERROR_INTERRUPTED, TransferError::Cancelled),
            (c::LIBUSB_ERROR_NO_MEM, TransferError::Fault),
            (c::LIBUSB_ERROR_NOT_SUPPORTED, TransferError::InvalidArgument),
            (c::LIBUSB_ERROR_OTHER, TransferError::Unknown(99)),
            (-1234, TransferError::Unknown(99)),
        ];
        for (code, ours) in cases {
            assert_eq!(map_error(error_from_code(code)), ours, "{code}");
        }
    }

    #[test]
    fn every_transfer_status_maps() {
        let cases = [
            (c::LIBUSB_TRANSFER_COMPLETED, Ok(())),
            (c::LIBUSB_TRANSFER_ERROR, Err(TransferError::Fault)),
            (c::LIBUSB_TRANSFER_TIMED_OUT, Err(TransferError::Cancelled)),
            (c::LIBUSB_TRANSFER_CANCELLED, Err(TransferError::Cancelled)),
            (c::LIBUSB_TRANSFER_STALL, Err(TransferError::Stall)),
            (c::LIBUSB_TRANSFER_NO_DEVICE, Err(TransferError::Disconnected)),
            (c::LIBUSB_TRANSFER_OVERFLOW, Err(TransferError::Fault)),
            (7, Err(TransferError::Unknown(7))),
        ];
        for (status, ours) in cases {
            assert_eq!(map_status(status), ours, "{status}");
        }
    }

    fn finished(len: usize, data: &[u8], status: c_int) -> Finished {
        let mut buffer = vec![0xEE; len];
        buffer[..data.len()].copy_from_slice(data);
        Finished { buffer, status, actual_len: data.len() }
    }

    #[test]
    fn in_completions_keep_exactly_the_received_bytes() {
        let c = completion(0x86, finished(512, &[1, 2, 3], c::LIBUSB_TRANSFER_COMPLETED), false);
        assert_eq!((c.endpoint, c.buffer, c.actual_len, c.status), (0x86, vec![1, 2, 3], 3, Ok(())));
        // Cancelled after part of the data arrived: the part is kept.
        let c = completion(0x86, finished(512, &[4, 5], c::LIBUSB_TRANSFER_CANCELLED), false);
        assert_eq!((c.buffer, c.actual_len, c.status), (vec![4, 5], 2, Err(TransferError::Cancelled)));
        // An actual length beyond the buffer (never from libusb) cannot over-read.
        let c = completion(0x86, Finished { buffer: vec![1; 4], status: 0, actual_len: 9 }, false);
        assert_eq!((c.buffer.len(), c.actual_len), (4, 4));
    }

    #[test]
    fn out_completions_return_the_whole_buffer() {
        let c = completion(0x02, finished(6, &[9; 6], c::LIBUSB_TRANSFER_COMPLETED), false);
        assert_eq!((c.buffer, c.actual_len, c.status), (vec![9; 6], 6, Ok(())));
        let c = completion(0x02, finished(6, &[9; 2], c::LIBUSB_TRANSFER_STALL), false);
        assert_eq!((c.buffer.len(), c.actual_len, c.status), (6, 2, Err(TransferError::Stall)));
    }

    #[test]
    fn after_a_disconnect_every_failure_is_disconnected() {
        for status in [c::LIBUSB_TRANSFER_CANCELLED, c::LIBUSB_TRANSFER_ERROR, c::LIBUSB_TRANSFER_NO_DEVICE] {
            let c = completion(0x86, finished(512, &[], status), true);
            assert_eq!(c.status, Err(TransferError::Disconnected), "{status}");
        }
        // Data that arrived before the unplug is still delivered as such.
        let c = completion(0x86, finished(512, &[1], c::LIBUSB_TRANSFER_COMPLETED), true);
        assert_eq!((c.buffer, c.status), (vec![1], Ok(())));
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

    /// The event thread starts and stops promptly on a real libusb context (no device
    /// needed). Skipped where libusb cannot start (no usbfs, as in most containers); the
    /// kernel USB stack test (`ci/kernel-usb-vm`) runs it with devices.
    #[test]
    fn event_thread_stops_promptly() {
        let Ok(ctx) = RusbTransport::context() else {
            eprintln!("libusb unavailable here: event thread test skipped");
            return;
        };
        let t = EventThread::spawn(&ctx, "test-events".into()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        drop(t);
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
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
