//! The [`Transport`] trait and its transfer types.

use std::time::Duration;

use crate::info::{DeviceInfo, Direction, endpoint_direction};

/// How long [`Transport::clear_halt`]'s control transfer may take (a standard request the
/// device answers from its USB core; 1 s as libusb's and usbfs's usual control timeout).
const CLEAR_HALT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a transfer failed. One function per backend maps its OS or library codes to these
/// (nusb's `TransferError`, which this mirrors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Cancelled by [`Transport::cancel_all`] or timed out.
    #[error("transfer cancelled")]
    Cancelled,
    /// The endpoint is halted (STALL handshake).
    #[error("endpoint stalled")]
    Stall,
    /// The device is gone: unplugged, re-enumerated, or its port switched away.
    #[error("device disconnected")]
    Disconnected,
    /// Hardware fault or protocol violation (CRC, babble, overflow).
    #[error("hardware fault or protocol violation")]
    Fault,
    /// Invalid argument: unknown endpoint, wrong direction, oversize buffer.
    #[error("invalid or unsupported argument")]
    InvalidArgument,
    /// A code the backend could not map, kept for the logs.
    #[error("unknown transfer error {0}")]
    Unknown(u32),
}

/// A finished transfer, handed back with its buffer for reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The endpoint it was submitted on.
    pub endpoint: u8,
    /// IN: the received bytes (`buffer.len() == actual_len`). OUT: the bytes that were
    /// submitted, returned for reuse.
    pub buffer: Vec<u8>,
    /// Bytes actually transferred (may be non-zero even when `status` is an error).
    pub actual_len: usize,
    /// Whether it succeeded.
    pub status: Result<(), TransferError>,
}

/// The SETUP stage of a control transfer on endpoint 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlSetup {
    /// `bmRequestType`: bit 7 direction (1 = IN), bits 5-6 type (2 = vendor), bits 0-4 recipient.
    #[doc(alias = "bmRequestType")]
    pub request_type: u8,
    /// `bRequest`.
    #[doc(alias = "bRequest")]
    pub request: u8,
    /// `wValue`.
    #[doc(alias = "wValue")]
    pub value: u16,
    /// `wIndex`.
    #[doc(alias = "wIndex")]
    pub index: u16,
}

impl ControlSetup {
    /// The data-stage direction.
    pub const fn direction(&self) -> Direction {
        endpoint_direction(self.request_type)
    }

    /// The 8-byte SETUP packet with `wLength = length` (as USB/IP and usbmon carry it).
    pub const fn to_bytes(&self, length: u16) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = length.to_le_bytes();
        [self.request_type, self.request, v[0], v[1], i[0], i[1], l[0], l[1]]
    }

    /// CLEAR_FEATURE(ENDPOINT_HALT) to `endpoint` (USB 2.0 §9.4.1, §9.4.5): standard request
    /// to an endpoint (`bmRequestType` 0x02), `bRequest` 1, `wValue` 0 (the ENDPOINT_HALT
    /// feature selector), `wIndex` the endpoint address; no data stage.
    #[doc(alias = "CLEAR_FEATURE")]
    pub const fn clear_halt(endpoint: u8) -> Self {
        Self { request_type: 0x02, request: 0x01, value: 0, index: endpoint as u16 }
    }

    /// Parses an 8-byte SETUP packet into the setup and its `wLength`.
    pub const fn from_bytes(b: [u8; 8]) -> (Self, u16) {
        (
            Self {
                request_type: b[0],
                request: b[1],
                value: u16::from_le_bytes([b[2], b[3]]),
                index: u16::from_le_bytes([b[4], b[5]]),
            },
            u16::from_le_bytes([b[6], b[7]]),
        )
    }
}

/// A USB device as xpp uses it: bulk endpoint queues, control transfers, reset.
///
/// # Legal call sequence
///
/// 1. A backend's constructor opens the device and claims the interfaces xpp uses
///    (0 and, where present, 1); [`Transport::info`] describes what it found.
/// 2. [`Transport::submit`] queues a buffer on a bulk endpoint. For an IN endpoint the buffer's
///    *length* is how many bytes to read (its contents are ignored and replaced); for an OUT
///    endpoint its contents are sent. Many may be in flight per endpoint (a backend may set a
///    bound, e.g. 128 for rusb, and refuse more with `InvalidArgument`); each endpoint
///    completes its transfers in submission order.
/// 3. [`Transport::wait_next_complete`] returns the oldest finished transfer of an endpoint,
///    waiting up to `timeout` (zero = poll). Every submitted buffer comes back exactly once, in
///    a [`Completion`], unless the transport is dropped.
/// 4. [`Transport::cancel_all`] makes every pending transfer of an endpoint complete with
///    [`TransferError::Cancelled`] (or its real result if it already finished).
/// 5. Control transfers, [`Transport::clear_halt`] and [`Transport::reset`] are synchronous.
/// 6. A transfer that completed with [`TransferError::Stall`] leaves its endpoint halted: every
///    later transfer on it fails the same way until [`Transport::clear_halt`] (best called once
///    nothing is pending on the endpoint, e.g. after [`Transport::cancel_all`]).
///
/// **Disconnect**: once the device is gone, every pending transfer completes with
/// [`TransferError::Disconnected`], and every later call fails with it; nothing blocks past its
/// timeout and nothing panics. A re-enumerated device (new firmware stage, TwinStar jump) is a
/// new device: open a new transport for it.
pub trait Transport: Send {
    /// Identity, interfaces and endpoints of the device.
    fn info(&self) -> &DeviceInfo;

    /// Queues `buffer` on bulk endpoint `endpoint` (IN: read `buffer.len()` bytes; OUT: send it).
    ///
    /// On error the buffer is dropped; the transport stays usable unless the error is
    /// [`TransferError::Disconnected`].
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError>;

    /// Transfers submitted on `endpoint` and not yet returned by `wait_next_complete`.
    fn pending(&self, endpoint: u8) -> usize;

    /// The oldest finished transfer on `endpoint`, waiting up to `timeout`. `None` if nothing
    /// finished in time (or nothing is pending).
    #[must_use = "a completion comes back once: dropping it loses its status and buffer"]
    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion>;

    /// Cancels every pending transfer on `endpoint`; they still come back through
    /// `wait_next_complete`.
    fn cancel_all(&mut self, endpoint: u8);

    /// A control transfer with an OUT (or no) data stage. Returns the bytes sent.
    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError>;

    /// A control transfer with an IN data stage of up to `buf.len()` bytes. Returns the bytes
    /// received into `buf`.
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError>;

    /// USB port reset of the device (the reference driver resets at probe).
    fn reset(&mut self) -> Result<(), TransferError>;

    /// Clears a halt (STALL) of bulk endpoint `endpoint`: CLEAR_FEATURE(ENDPOINT_HALT) to the
    /// device (USB 2.0 §9.4.1; the device resets the endpoint's data toggle, §9.4.5) and,
    /// where the host keeps state per endpoint, the host side's toggle and halt as well.
    ///
    /// The provided implementation sends the standard request ([`ControlSetup::clear_halt`])
    /// through [`Transport::control_out`], which is all a transport without host-side endpoint
    /// state needs; the usbfs and libusb backends use their stacks' own call instead.
    // Decision: provided rather than required, so that a transport written outside this crate
    // (test doubles, recorders) keeps compiling and still does the right thing on the wire.
    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        self.control_out(ControlSetup::clear_halt(endpoint), &[], CLEAR_HALT_TIMEOUT).map(|_| ())
    }

    /// Submits one buffer and waits for it: a blocking single transfer, for control-plane
    /// exchanges (MPP) where nothing else is queued on the endpoint.
    ///
    /// Fails with [`TransferError::InvalidArgument`] if transfers are already pending on
    /// `endpoint`. On timeout the transfer is cancelled and its completion returned
    /// (normally [`TransferError::Cancelled`]).
    fn transfer_blocking(&mut self, endpoint: u8, buffer: Vec<u8>, timeout: Duration) -> Completion {
        let failed = |status| Completion { endpoint, buffer: Vec::new(), actual_len: 0, status: Err(status) };
        if self.pending(endpoint) != 0 {
            return failed(TransferError::InvalidArgument);
        }
        if let Err(status) = self.submit(endpoint, buffer) {
            return failed(status);
        }
        if let Some(c) = self.wait_next_complete(endpoint, timeout) {
            return c;
        }
        self.cancel_all(endpoint);
        // Backends complete a cancelled transfer promptly; bound the wait anyway.
        self.wait_next_complete(endpoint, timeout).unwrap_or_else(|| failed(TransferError::Cancelled))
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn info(&self) -> &DeviceInfo {
        (**self).info()
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        (**self).submit(endpoint, buffer)
    }
    fn pending(&self, endpoint: u8) -> usize {
        (**self).pending(endpoint)
    }
    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        (**self).wait_next_complete(endpoint, timeout)
    }
    fn cancel_all(&mut self, endpoint: u8) {
        (**self).cancel_all(endpoint);
    }
    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        (**self).control_out(setup, data, timeout)
    }
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        (**self).control_in(setup, buf, timeout)
    }
    fn reset(&mut self) -> Result<(), TransferError> {
        (**self).reset()
    }
    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        (**self).clear_halt(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::info::{EndpointInfo, InterfaceInfo, Speed, TransferType};

    /// A transport whose OUT endpoint 0x02 loops back to IN endpoint 0x86, completing only
    /// when an IN buffer is queued; enough to exercise the provided method and the Box impl.
    struct Loopback {
        info: DeviceInfo,
        sent: VecDeque<Vec<u8>>,
        done: VecDeque<Completion>,
        pending_in: VecDeque<Vec<u8>>,
        gone: bool,
        /// Every control OUT setup received.
        controls: Vec<ControlSetup>,
    }

    impl Loopback {
        fn new() -> Self {
            let ep =
                |address| EndpointInfo { address, transfer_type: TransferType::Bulk, max_packet_size: 512 };
            Self {
                info: DeviceInfo {
                    vendor_id: 0xE4E4,
                    product_id: 0x1162,
                    bcd_device: 0x0101,
                    manufacturer: None,
                    product: None,
                    serial: None,
                    speed: Speed::High,
                    location: "test".into(),
                    interfaces: vec![InterfaceInfo { number: 0, endpoints: vec![ep(0x02), ep(0x86)] }],
                },
                sent: VecDeque::new(),
                done: VecDeque::new(),
                pending_in: VecDeque::new(),
                gone: false,
                controls: Vec::new(),
            }
        }

        fn pump(&mut self) {
            while !self.sent.is_empty() && !self.pending_in.is_empty() {
                let data = self.sent.pop_front().unwrap();
                let mut buf = self.pending_in.pop_front().unwrap();
                let n = data.len().min(buf.len());
                buf.truncate(n);
                buf.copy_from_slice(&data[..n]);
                self.done.push_back(Completion {
                    endpoint: 0x86,
                    buffer: buf,
                    actual_len: n,
                    status: Ok(()),
                });
            }
        }
    }

    impl Transport for Loopback {
        fn info(&self) -> &DeviceInfo {
            &self.info
        }
        fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
            if self.gone {
                return Err(TransferError::Disconnected);
            }
            match endpoint {
                0x02 => {
                    let n = buffer.len();
                    self.sent.push_back(buffer.clone());
                    self.done.push_back(Completion { endpoint, buffer, actual_len: n, status: Ok(()) });
                }
                0x86 => self.pending_in.push_back(buffer),
                _ => return Err(TransferError::InvalidArgument),
            }
            self.pump();
            Ok(())
        }
        fn pending(&self, endpoint: u8) -> usize {
            let queued = if endpoint == 0x86 { self.pending_in.len() } else { 0 };
            queued + self.done.iter().filter(|c| c.endpoint == endpoint).count()
        }
        fn wait_next_complete(&mut self, endpoint: u8, _timeout: Duration) -> Option<Completion> {
            let i = self.done.iter().position(|c| c.endpoint == endpoint)?;
            self.done.remove(i)
        }
        fn cancel_all(&mut self, endpoint: u8) {
            if endpoint == 0x86 {
                let status =
                    Err(if self.gone { TransferError::Disconnected } else { TransferError::Cancelled });
                for buffer in self.pending_in.drain(..) {
                    self.done.push_back(Completion {
                        endpoint,
                        buffer: buffer[..0].to_vec(),
                        actual_len: 0,
                        status,
                    });
                }
            }
        }
        fn control_out(
            &mut self,
            setup: ControlSetup,
            data: &[u8],
            _: Duration,
        ) -> Result<usize, TransferError> {
            self.controls.push(setup);
            Ok(data.len())
        }
        fn control_in(&mut self, _: ControlSetup, _: &mut [u8], _: Duration) -> Result<usize, TransferError> {
            Err(TransferError::Stall)
        }
        fn reset(&mut self) -> Result<(), TransferError> {
            Ok(())
        }
    }

    #[test]
    fn transfer_blocking_round_trip_through_box() {
        let mut t: Box<dyn Transport> = Box::new(Loopback::new());
        let c = t.transfer_blocking(0x02, vec![1, 2, 3], Duration::from_millis(10));
        assert_eq!((c.actual_len, c.status), (3, Ok(())));
        let c = t.transfer_blocking(0x86, vec![0; 512], Duration::from_millis(10));
        assert_eq!(c.status, Ok(()));
        assert_eq!(c.buffer, vec![1, 2, 3]);
        assert_eq!(t.pending(0x86), 0);
    }

    #[test]
    fn transfer_blocking_times_out_with_cancelled() {
        let mut t = Loopback::new();
        let c = t.transfer_blocking(0x86, vec![0; 64], Duration::ZERO);
        assert_eq!(c.status, Err(TransferError::Cancelled));
        assert_eq!(t.pending(0x86), 0);
    }

    #[test]
    fn transfer_blocking_refuses_when_busy_and_reports_submit_errors() {
        let mut t = Loopback::new();
        t.submit(0x86, vec![0; 64]).unwrap();
        assert_eq!(
            t.transfer_blocking(0x86, vec![0; 64], Duration::ZERO).status,
            Err(TransferError::InvalidArgument)
        );
        assert_eq!(
            t.transfer_blocking(0x99, vec![0; 64], Duration::ZERO).status,
            Err(TransferError::InvalidArgument)
        );
        t.gone = true;
        assert_eq!(
            t.transfer_blocking(0x02, vec![1], Duration::ZERO).status,
            Err(TransferError::Disconnected)
        );
    }

    #[test]
    fn provided_clear_halt_sends_clear_feature_endpoint_halt() {
        let mut t: Box<dyn Transport> = Box::new(Loopback::new());
        t.clear_halt(0x86).unwrap();
        let mut inner = Loopback::new();
        inner.clear_halt(0x86).unwrap();
        // USB 2.0 §9.4.1: standard, to an endpoint; CLEAR_FEATURE; ENDPOINT_HALT; the endpoint.
        assert_eq!(
            inner.controls,
            vec![ControlSetup { request_type: 0x02, request: 1, value: 0, index: 0x86 }]
        );
        assert_eq!(ControlSetup::clear_halt(0x86).to_bytes(0), [0x02, 0x01, 0, 0, 0x86, 0, 0, 0]);
    }

    #[test]
    fn setup_packet_bytes() {
        // FX2 "firmware load" vendor request writing CPUCS (docs/reference/mpp-twinstar-firmware.md §5.3).
        let s = ControlSetup { request_type: 0x40, request: 0xA0, value: 0xE600, index: 0 };
        assert_eq!(s.to_bytes(1), [0x40, 0xA0, 0x00, 0xE6, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(ControlSetup::from_bytes(s.to_bytes(1)), (s, 1));
        assert_eq!(s.direction(), Direction::Out);
        assert_eq!(endpoint_direction(0x86), Direction::In);
    }
}
