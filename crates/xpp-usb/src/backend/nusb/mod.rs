//! [`Transport`] over [nusb](https://docs.rs/nusb) (usbfs on Linux, no C library), with
//! nusb's listing of Astribanks ([`list`]) and hotplug stream ([`Hotplug`]).
//!
//! nusb's endpoint queue is the model the trait copies, so this backend is thin: each bulk
//! endpoint of the claimed interfaces is a `nusb::Endpoint` whose queue holds the caller's
//! buffers; [`Transport::pending`], `wait_next_complete` and `cancel_all` are nusb's own.
//! What it adds:
//!
//! - IN lengths: usbfs wants an IN request to be a multiple of `wMaxPacketSize`; a buffer of
//!   another length is requested rounded up, and a device that sends more than the caller asked
//!   for gets the transfer truncated and failed with [`TransferError::Fault`] (what a babble or
//!   overflow would give on a real controller).
//! - Disconnect: the first `Disconnected` (from any transfer, control request or reset) marks
//!   the transport gone; later submits and control requests fail at once, and transfers still
//!   queued complete with `Disconnected` (usbfs fails them with `ENODEV`/`ESHUTDOWN`).
//! - Errors: every nusb error a transfer, control request or reset can give is mapped in one
//!   function, `map_error`; open-time errors (listing, opening, claiming) are mapped to
//!   [`Error`] by `map_open_error` (both in the `map` submodule, with the speed).
//!
//! Listing and hotplug apply the pure identity tables of [`discovery`](crate::discovery) to
//! what nusb reports; they live here so that `discovery` needs no backend.

mod discovery;
mod map;

use std::collections::VecDeque;
use std::time::Duration;

use nusb::MaybeFuture;
use nusb::transfer::{Buffer, Bulk, ControlIn, ControlOut, ControlType, In, Out, Recipient};

pub use self::discovery::{Hotplug, HotplugEvent, from_nusb, list};
use self::map::{NusbFailure, map_error, map_open_error, map_speed};
use crate::discovery::{Locator, bus_path};
use crate::error::Error;
use crate::info::{DeviceInfo, Direction, EndpointInfo, InterfaceInfo, TransferType, endpoint_direction};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// Interfaces this backend claims when present: data (0, required) and management (1).
const CLAIMED_INTERFACES: [u8; 2] = [0, 1];

/// nusb's control type and recipient from `bmRequestType`, checking the direction bit.
fn split_request_type(request_type: u8, want: Direction) -> Result<(ControlType, Recipient), TransferError> {
    if endpoint_direction(request_type) != want {
        return Err(TransferError::InvalidArgument);
    }
    let control_type = match (request_type >> 5) & 0x03 {
        0 => ControlType::Standard,
        1 => ControlType::Class,
        2 => ControlType::Vendor,
        _ => return Err(TransferError::InvalidArgument),
    };
    let recipient = match request_type & 0x1F {
        0 => Recipient::Device,
        1 => Recipient::Interface,
        2 => Recipient::Endpoint,
        3 => Recipient::Other,
        _ => return Err(TransferError::InvalidArgument),
    };
    Ok((control_type, recipient))
}

/// `len` rounded up to a multiple of `max_packet_size` (usbfs's rule for IN requests).
fn in_request_len(len: usize, max_packet_size: usize) -> usize {
    let mps = max_packet_size.max(1);
    len.div_ceil(mps) * mps
}

enum Queue {
    In {
        ep: nusb::Endpoint<Bulk, In>,
        /// The caller's length of every queued IN buffer, oldest first.
        wanted: VecDeque<usize>,
    },
    Out(nusb::Endpoint<Bulk, Out>),
}

struct Ep {
    address: u8,
    queue: Queue,
}

/// A [`Transport`] over nusb. See the [module documentation](self).
pub struct NusbTransport {
    info: DeviceInfo,
    device: nusb::Device,
    interfaces: Vec<nusb::Interface>,
    endpoints: Vec<Ep>,
    gone: bool,
}

impl std::fmt::Debug for NusbTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NusbTransport").field("info", &self.info).field("gone", &self.gone).finish()
    }
}

impl NusbTransport {
    /// Opens the device `locator` names (any vendor: as in dahdi-tools, opening by path does
    /// not filter on IDs). A machine without USB gives [`Error::Unavailable`].
    pub fn open(locator: &Locator) -> Result<Self, Error> {
        let devices = nusb::list_devices().wait().map_err(|e| Error::Unavailable(e.to_string()))?;
        for d in devices {
            let bus = d.bus_id().parse().unwrap_or(0);
            if locator.matches(bus, d.device_address(), d.port_chain(), d.serial_number()) {
                return Self::open_info(&d);
            }
        }
        Err(Error::NotFound(locator.to_string()))
    }

    /// Opens the first Astribank-family device in `stage` order of listing (bus path), any
    /// stage. Convenient for tools and hardware tests.
    pub fn open_first_astribank() -> Result<Self, Error> {
        let found = discovery::list_nusb()?;
        let (d, _) = found.first().ok_or_else(|| Error::NotFound("no Astribank".into()))?;
        Self::open_info(d)
    }

    /// Opens the device nusb described, detaching a kernel driver (e.g. `xpp_usb`) from
    /// interfaces 0 and 1 and claiming them (interface 1 only if the device has it).
    pub fn open_info(d: &nusb::DeviceInfo) -> Result<Self, Error> {
        let device = d.open().wait().map_err(|e| map_open_error(&e, "open"))?;
        let bus = d.bus_id().parse().unwrap_or(0);
        let location = format!("usb-{}", bus_path(bus, d.port_chain()));
        let desc = device.device_descriptor();
        let config = device
            .active_configuration()
            .map_err(|e| Error::Unsupported(format!("active configuration: {e}")))?;
        let mut info = DeviceInfo {
            vendor_id: desc.vendor_id(),
            product_id: desc.product_id(),
            bcd_device: desc.device_version(),
            manufacturer: d.manufacturer_string().map(str::to_owned),
            product: d.product_string().map(str::to_owned),
            serial: d.serial_number().map(str::to_owned),
            speed: map_speed(device.speed().or(d.speed())),
            location,
            interfaces: Vec::new(),
        };
        let mut interfaces = Vec::new();
        let mut endpoints = Vec::new();
        for group in config.interfaces() {
            let number = group.interface_number();
            if !CLAIMED_INTERFACES.contains(&number) {
                continue;
            }
            let alt = group.first_alt_setting();
            let eps: Vec<EndpointInfo> = alt
                .endpoints()
                .map(|e| EndpointInfo {
                    address: e.address(),
                    transfer_type: TransferType::from_attributes(e.attributes()),
                    max_packet_size: e.max_packet_size() as u16,
                })
                .collect();
            let iface = device
                .detach_and_claim_interface(number)
                .wait()
                .map_err(|e| map_open_error(&e, &format!("claim interface {number}")))?;
            for e in eps.iter().filter(|e| e.transfer_type == TransferType::Bulk) {
                let queue = match e.direction() {
                    Direction::In => Queue::In {
                        ep: iface
                            .endpoint::<Bulk, In>(e.address)
                            .map_err(|err| map_open_error(&err, "open IN endpoint"))?,
                        wanted: VecDeque::new(),
                    },
                    Direction::Out => Queue::Out(
                        iface
                            .endpoint::<Bulk, Out>(e.address)
                            .map_err(|err| map_open_error(&err, "open OUT endpoint"))?,
                    ),
                };
                endpoints.push(Ep { address: e.address, queue });
            }
            info.interfaces.push(InterfaceInfo { number, endpoints: eps });
            interfaces.push(iface);
        }
        if info.interface(0).is_none() {
            return Err(Error::Unsupported(format!("{}: no interface 0", info.location)));
        }
        info.interfaces.sort_by_key(|i| i.number);
        Ok(Self { info, device, interfaces, endpoints, gone: false })
    }

    fn ep(&mut self, address: u8) -> Option<&mut Ep> {
        self.endpoints.iter_mut().find(|e| e.address == address)
    }

    /// Records a disconnect seen in `r` and returns it unchanged.
    fn note<T>(&mut self, r: Result<T, TransferError>) -> Result<T, TransferError> {
        if r.as_ref().err() == Some(&TransferError::Disconnected) {
            self.gone = true;
        }
        r
    }

    fn control_interface(&self) -> Result<&nusb::Interface, TransferError> {
        self.interfaces.first().ok_or(TransferError::InvalidArgument)
    }
}

impl Transport for NusbTransport {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn submit(&mut self, endpoint: u8, mut buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        if buffer.len() > u32::MAX as usize / 2 {
            return Err(TransferError::InvalidArgument);
        }
        let ep = self.ep(endpoint).ok_or(TransferError::InvalidArgument)?;
        match &mut ep.queue {
            Queue::In { ep, wanted } => {
                let len = buffer.len();
                if len == 0 {
                    return Err(TransferError::InvalidArgument);
                }
                let request = in_request_len(len, ep.max_packet_size());
                buffer.clear();
                buffer.reserve(request);
                let mut b = Buffer::from(buffer);
                b.set_requested_len(request);
                wanted.push_back(len);
                ep.submit(b);
            }
            Queue::Out(ep) => ep.submit(Buffer::from(buffer)),
        }
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        match self.endpoints.iter().find(|e| e.address == endpoint).map(|e| &e.queue) {
            Some(Queue::In { ep, .. }) => ep.pending(),
            Some(Queue::Out(ep)) => ep.pending(),
            None => 0,
        }
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let ep = self.ep(endpoint)?;
        let (c, wanted) = match &mut ep.queue {
            Queue::In { ep, wanted } => {
                if ep.pending() == 0 {
                    return None;
                }
                let c = ep.wait_next_complete(timeout)?;
                (c, wanted.pop_front())
            }
            Queue::Out(ep) => {
                if ep.pending() == 0 {
                    return None;
                }
                (ep.wait_next_complete(timeout)?, None)
            }
        };
        let mut buffer = c.buffer.into_vec();
        let mut actual_len = c.actual_len;
        let mut status = c.status.map_err(|e| map_error(NusbFailure::Transfer(e)));
        if let Some(wanted) = wanted {
            buffer.truncate(actual_len);
            if actual_len > wanted {
                buffer.truncate(wanted);
                actual_len = wanted;
                status = status.and(Err(TransferError::Fault));
            }
        }
        let status = self.note(status);
        Some(Completion { endpoint, buffer, actual_len, status })
    }

    fn cancel_all(&mut self, endpoint: u8) {
        match self.ep(endpoint).map(|e| &mut e.queue) {
            Some(Queue::In { ep, .. }) => ep.cancel_all(),
            Some(Queue::Out(ep)) => ep.cancel_all(),
            None => {}
        }
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        let (control_type, recipient) = split_request_type(setup.request_type, Direction::Out)?;
        if data.len() > usize::from(u16::MAX) {
            return Err(TransferError::InvalidArgument);
        }
        let req = ControlOut {
            control_type,
            recipient,
            request: setup.request,
            value: setup.value,
            index: setup.index,
            data,
        };
        let r = self.control_interface()?.control_out(req, timeout).wait();
        let r = r.map(|()| data.len()).map_err(|e| map_error(NusbFailure::Transfer(e)));
        self.note(r)
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        let (control_type, recipient) = split_request_type(setup.request_type, Direction::In)?;
        let length = u16::try_from(buf.len()).map_err(|_| TransferError::InvalidArgument)?;
        let req = ControlIn {
            control_type,
            recipient,
            request: setup.request,
            value: setup.value,
            index: setup.index,
            length,
        };
        let r = self.control_interface()?.control_in(req, timeout).wait();
        let r = r.map_err(|e| map_error(NusbFailure::Transfer(e))).map(|data| {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            n
        });
        self.note(r)
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        // USBDEVFS_RESET: the kernel re-binds the interfaces usbfs holds, so on Linux the
        // handle normally stays usable; a device that re-enumerates instead shows up as
        // `Disconnected` on the next transfer.
        let r = self.device.reset().wait().map_err(|e| map_error(NusbFailure::Device(e.kind())));
        self.note(r)
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        // nusb's endpoint call: USBDEVFS_CLEAR_HALT on Linux, which sends the request and
        // resets the host controller's toggle for the endpoint too.
        let ep = self.ep(endpoint).ok_or(TransferError::InvalidArgument)?;
        let r = match &mut ep.queue {
            Queue::In { ep, .. } => ep.clear_halt().wait(),
            Queue::Out(ep) => ep.clear_halt().wait(),
        };
        let r = r.map_err(|e| map_error(NusbFailure::Device(e.kind())));
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_type_split() {
        // FX2 firmware download: vendor, device, OUT.
        assert_eq!(split_request_type(0x40, Direction::Out), Ok((ControlType::Vendor, Recipient::Device)));
        assert_eq!(split_request_type(0xC0, Direction::In), Ok((ControlType::Vendor, Recipient::Device)));
        assert_eq!(split_request_type(0x80, Direction::In), Ok((ControlType::Standard, Recipient::Device)));
        assert_eq!(split_request_type(0x21, Direction::Out), Ok((ControlType::Class, Recipient::Interface)));
        assert_eq!(
            split_request_type(0x02, Direction::Out),
            Ok((ControlType::Standard, Recipient::Endpoint))
        );
        assert_eq!(split_request_type(0x03, Direction::Out), Ok((ControlType::Standard, Recipient::Other)));
        // Direction bit disagrees with the call, reserved type 3, reserved recipients.
        assert_eq!(split_request_type(0xC0, Direction::Out), Err(TransferError::InvalidArgument));
        assert_eq!(split_request_type(0x40, Direction::In), Err(TransferError::InvalidArgument));
        assert_eq!(split_request_type(0x60, Direction::Out), Err(TransferError::InvalidArgument));
        assert_eq!(split_request_type(0x44, Direction::Out), Err(TransferError::InvalidArgument));
        assert_eq!(split_request_type(0x5F, Direction::Out), Err(TransferError::InvalidArgument));
    }

    #[test]
    fn in_request_lengths_round_up_to_packets() {
        assert_eq!(in_request_len(512, 512), 512);
        assert_eq!(in_request_len(1, 512), 512);
        assert_eq!(in_request_len(513, 512), 1024);
        assert_eq!(in_request_len(64, 64), 64);
        assert_eq!(in_request_len(7, 0), 7);
    }

    /// On a machine without a USB subsystem (CI) opening is an error, never a panic; with
    /// USB but no such device it is `NotFound`.
    #[test]
    fn open_without_the_device_is_an_error() {
        let locator: Locator = "9-7.7.7".parse().unwrap();
        match NusbTransport::open(&locator) {
            Err(Error::Unavailable(_) | Error::NotFound(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
        let serial: Locator = "serial:no-such-astribank".parse().unwrap();
        assert!(NusbTransport::open(&serial).is_err());
    }

    /// Needs an Astribank in stage 11x1 or 11x2 (management interface alive).
    #[test]
    #[ignore = "needs hardware"]
    fn hardware_mpp_proto_get() {
        let mut t = NusbTransport::open_first_astribank().unwrap();
        crate::tests_hw::mpp_proto_get(&mut t);
    }
}
