//! Device identity as a transport reports it, and the direction of an endpoint address.
//!
//! A leaf: the transport trait and every backend build on these types.

/// Transfer direction, from the host's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device to host.
    In,
    /// Host to device.
    Out,
}

/// The direction of endpoint address `ep` (bit 7 set = IN).
pub const fn endpoint_direction(ep: u8) -> Direction {
    if ep & 0x80 != 0 { Direction::In } else { Direction::Out }
}

/// USB bus speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Speed {
    /// 1.5 Mbit/s.
    Low,
    /// 12 Mbit/s (USB 1.1): Astribanks refuse to run PCM at this speed.
    Full,
    /// 480 Mbit/s (USB 2.0): what an Astribank needs.
    High,
    /// 5 Gbit/s or more.
    Super,
    /// The backend cannot tell.
    Unknown,
}

/// Endpoint transfer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferType {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk: every Astribank data and management endpoint.
    Bulk,
    /// Interrupt.
    Interrupt,
}

impl TransferType {
    /// From the two low bits of `bmAttributes`.
    pub const fn from_attributes(attributes: u8) -> Self {
        match attributes & 0x03 {
            0 => Self::Control,
            1 => Self::Isochronous,
            2 => Self::Bulk,
            _ => Self::Interrupt,
        }
    }
}

/// One endpoint of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointInfo {
    /// `bEndpointAddress`: number plus direction bit 7.
    pub address: u8,
    /// Transfer type.
    pub transfer_type: TransferType,
    /// `wMaxPacketSize` (512 for a high-speed bulk endpoint).
    pub max_packet_size: u16,
}

impl EndpointInfo {
    /// Direction from the address's bit 7.
    pub const fn direction(&self) -> Direction {
        endpoint_direction(self.address)
    }
}

/// One interface (alternate setting 0) of the active configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceInfo {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// Its endpoints, in descriptor order.
    pub endpoints: Vec<EndpointInfo>,
}

/// What a transport knows about the device it is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceInfo {
    /// `idVendor` (0xE4E4 for every Astribank stage).
    #[doc(alias = "idVendor")]
    pub vendor_id: u16,
    /// `idProduct`: model family and firmware stage (e.g. 0x1162 = modular, running).
    #[doc(alias = "idProduct")]
    pub product_id: u16,
    /// `bcdDevice`: hardware revision (0x0101, 0x0201...).
    #[doc(alias = "bcdDevice")]
    pub bcd_device: u16,
    /// Manufacturer string, if the device has one.
    pub manufacturer: Option<String>,
    /// Product string, if the device has one.
    pub product: Option<String>,
    /// Serial number string: the Astribank's 8-character label once firmware runs.
    pub serial: Option<String>,
    /// Bus speed.
    pub speed: Speed,
    /// Where the device sits, e.g. `usb-1-1.2` or `usbip:127.0.0.1:3240/1-1`.
    pub location: String,
    /// Interfaces of the active configuration.
    pub interfaces: Vec<InterfaceInfo>,
}

impl DeviceInfo {
    /// The interface with number `n`.
    pub fn interface(&self, n: u8) -> Option<&InterfaceInfo> {
        self.interfaces.iter().find(|i| i.number == n)
    }

    /// The endpoint with address `address`, on any interface.
    pub fn endpoint(&self, address: u8) -> Option<&EndpointInfo> {
        self.interfaces.iter().flat_map(|i| i.endpoints.iter()).find(|e| e.address == address)
    }
}
