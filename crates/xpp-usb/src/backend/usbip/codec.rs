//! Sans-IO codec for the USB/IP protocol (Linux `usbip`/`usbipd`/`vhci_hcd`, version 1.1.1).
//!
//! Both directions of every message are here, so the client ([`super::UsbIpTransport`])
//! and a server (the emulator's front-end) share one implementation:
//!
//! | Message | Who sends it | Type |
//! |---|---|---|
//! | `OP_REQ_DEVLIST` (0x8005), `OP_REQ_IMPORT` (0x8003) | client | [`OpRequest`] |
//! | `OP_REP_DEVLIST` (0x0005), `OP_REP_IMPORT` (0x0003) | server | [`OpReply`] |
//! | `USBIP_CMD_SUBMIT` (1), `USBIP_CMD_UNLINK` (2) | client | [`Urb::CmdSubmit`], [`Urb::CmdUnlink`] |
//! | `USBIP_RET_SUBMIT` (3), `USBIP_RET_UNLINK` (4) | server | [`Urb::RetSubmit`], [`Urb::RetUnlink`] |
//!
//! Every field is big-endian. The `OP_*` messages start with an 8-byte header
//! (`version: u16 = 0x0111`, `code: u16`, `status: u32`); a device is described by a
//! 312-byte record ([`UsbDevice`], `path[256]`, `busid[32]`, then numbers) followed, in a
//! device list, by one 4-byte record per interface ([`UsbInterface`]). URB messages have a
//! 48-byte header ([`URB_HEADER_LEN`]): a 20-byte basic header (`command`, `seqnum`, `devid`,
//! `direction`, `ep`) and 28 command-specific bytes, then the transfer data (OUT data after
//! `CMD_SUBMIT`, IN data after `RET_SUBMIT`) and, for isochronous transfers, 16-byte
//! [`IsoPacketDescriptor`]s.
//!
//! The server sets `direction` and `ep` of its replies to 0, so how much data follows a
//! `RET_SUBMIT` depends on the `CMD_SUBMIT` it answers: [`Urb::payload_len`] takes that
//! direction from the caller, who keeps it by `seqnum`.
//!
//! # Contract
//! - Parsing never panics and never allocates more than a bound: strings are read from
//!   fixed-size fields, a device list holds at most [`MAX_DEVICES`] entries, transfer lengths
//!   are at most [`MAX_TRANSFER_LEN`] and ISO packet counts at most [`MAX_ISO_PACKETS`].
//! - Errors carry the byte offset (from the start of the message) and the structure name.
//!   A short input gives [`CodecError::Truncated`] with the total length needed to go on, so a
//!   stream reader can read that much and parse again.
//! - Emitting appends to a `Vec<u8>`; it fails only on strings that do not fit their field.

use crate::info::Direction;

/// Protocol version 1.1.1, in every `OP_*` header.
pub const VERSION: u16 = 0x0111;
/// Length of an `OP_*` header.
pub const OP_HEADER_LEN: usize = 8;
/// Length of the `path` field of a device record.
pub const PATH_LEN: usize = 256;
/// Length of a `busid` field.
pub const BUSID_LEN: usize = 32;
/// Length of a device record ([`UsbDevice`]).
pub const DEVICE_LEN: usize = 312;
/// Length of an interface record ([`UsbInterface`]).
pub const INTERFACE_LEN: usize = 4;
/// Length of every URB header (`CMD_SUBMIT`, `RET_SUBMIT`, `CMD_UNLINK`, `RET_UNLINK`).
pub const URB_HEADER_LEN: usize = 48;
/// Length of one ISO packet descriptor.
pub const ISO_DESCRIPTOR_LEN: usize = 16;
/// The largest transfer this codec accepts (16 MiB, usbfs's default memory limit).
pub const MAX_TRANSFER_LEN: u32 = 16 << 20;
/// The most ISO packets per URB this codec accepts.
pub const MAX_ISO_PACKETS: u32 = 1024;
/// The most devices a device list may announce.
pub const MAX_DEVICES: u32 = 1024;
/// `number_of_packets` of a non-isochronous URB (older kernels send 0, also accepted).
pub const NOT_ISO: u32 = 0xFFFF_FFFF;
/// `RET_UNLINK` status when the URB was unlinked: `-ECONNRESET`.
pub const STATUS_UNLINKED: i32 = -104;

/// `OP_*` codes.
pub mod op {
    /// Client asks for the exported devices.
    pub const REQ_DEVLIST: u16 = 0x8005;
    /// Server lists the exported devices.
    pub const REP_DEVLIST: u16 = 0x0005;
    /// Client asks to import (attach) a device by bus id.
    pub const REQ_IMPORT: u16 = 0x8003;
    /// Server answers an import.
    pub const REP_IMPORT: u16 = 0x0003;
}

/// URB `command` codes.
pub mod command {
    /// Client submits an URB.
    pub const CMD_SUBMIT: u32 = 1;
    /// Client unlinks (cancels) an URB.
    pub const CMD_UNLINK: u32 = 2;
    /// Server returns a submitted URB.
    pub const RET_SUBMIT: u32 = 3;
    /// Server answers an unlink.
    pub const RET_UNLINK: u32 = 4;
}

/// `direction` values.
pub mod dir {
    /// Host to device.
    pub const OUT: u32 = 0;
    /// Device to host.
    pub const IN: u32 = 1;
}

/// Why bytes did not parse, or a value did not emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ends inside `what`; `needed` bytes (from the message start) are required.
    #[error("{what} truncated at offset {offset}: need {needed} bytes")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Where the missing field starts.
        offset: usize,
        /// Total bytes needed to read past it.
        needed: usize,
    },
    /// An `OP_*` header with a version other than [`VERSION`].
    #[error("unsupported USB/IP version {version:#06x} at offset {offset}")]
    Version {
        /// Offset of the version field.
        offset: usize,
        /// The version found.
        version: u16,
    },
    /// An `OP_*` code or URB command that is not the one expected here.
    #[error("unexpected {what} {code:#x} at offset {offset}")]
    UnexpectedCode {
        /// What was being read (`op code`, `urb command`).
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The value found.
        code: u32,
    },
    /// A length or count over this codec's bound.
    #[error("{what} {value} at offset {offset} exceeds {max}")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The value found.
        value: u32,
        /// The bound.
        max: u32,
    },
    /// A fixed-size string field without a terminating NUL, or not UTF-8.
    #[error("{what} at offset {offset} is not a NUL-terminated UTF-8 string")]
    BadString {
        /// The field.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
    },
    /// A field whose value is not allowed (a `CMD_SUBMIT` direction other than 0 or 1).
    #[error("invalid {what} {value:#x} at offset {offset}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The value found.
        value: u32,
    },
    /// Emitting: a string longer than its field allows (or containing NUL).
    #[error("{what} does not fit its {field_len}-byte field")]
    FieldTooLong {
        /// The field.
        what: &'static str,
        /// The field's size, NUL included.
        field_len: usize,
    },
}

impl CodecError {
    /// For a stream reader: `Some(total bytes needed)` if more input may make the parse
    /// succeed, `None` for a real error.
    pub const fn needed(&self) -> Option<usize> {
        match self {
            Self::Truncated { needed, .. } => Some(*needed),
            _ => None,
        }
    }
}

/// A bounds-checked big-endian reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or(CodecError::Truncated {
            what,
            offset: self.pos,
            needed: usize::MAX,
        })?;
        let s = self.buf.get(self.pos..end).ok_or(CodecError::Truncated {
            what,
            offset: self.pos,
            needed: end,
        })?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let s = self.take(N, what)?;
        let mut a = [0; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn string(&mut self, len: usize, what: &'static str) -> Result<String, CodecError> {
        let offset = self.pos;
        let field = self.take(len, what)?;
        let bad = CodecError::BadString { what, offset };
        let end = field.iter().position(|&b| b == 0).ok_or(bad)?;
        core::str::from_utf8(&field[..end]).map(str::to_owned).map_err(|_| bad)
    }
}

fn put_string(out: &mut Vec<u8>, s: &str, len: usize, what: &'static str) -> Result<(), CodecError> {
    if s.len() >= len || s.as_bytes().contains(&0) {
        return Err(CodecError::FieldTooLong { what, field_len: len });
    }
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + len - s.len(), 0);
    Ok(())
}

/// The 8-byte header of every `OP_*` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpHeader {
    /// Protocol version ([`VERSION`]).
    pub version: u16,
    /// [`op`] code.
    pub code: u16,
    /// Status: 0 = OK (requests always send 0).
    pub status: u32,
}

impl OpHeader {
    /// Parses the first 8 bytes of `buf`; checks the version.
    pub fn parse(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(buf);
        Self::read(&mut r)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let version = r.u16("op header")?;
        let code = r.u16("op header")?;
        let status = r.u32("op header")?;
        if version != VERSION {
            return Err(CodecError::Version { offset: 0, version });
        }
        Ok(Self { version, code, status })
    }

    /// Appends the 8 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.code.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
    }
}

/// A device as a server describes it (the 312-byte record).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UsbDevice {
    /// Sysfs path on the exporting host (at most 255 bytes).
    pub path: String,
    /// Bus id, e.g. `1-1` (at most 31 bytes): what `OP_REQ_IMPORT` names.
    pub busid: String,
    /// Bus number.
    pub busnum: u32,
    /// Device number on the bus.
    pub devnum: u32,
    /// Linux `enum usb_device_speed` ([`speed_to_usbip`]).
    pub speed: u32,
    /// `idVendor`.
    pub id_vendor: u16,
    /// `idProduct`.
    pub id_product: u16,
    /// `bcdDevice`.
    pub bcd_device: u16,
    /// `bDeviceClass`.
    pub device_class: u8,
    /// `bDeviceSubClass`.
    pub device_subclass: u8,
    /// `bDeviceProtocol`.
    pub device_protocol: u8,
    /// `bConfigurationValue` of the active configuration.
    pub configuration_value: u8,
    /// `bNumConfigurations`.
    pub num_configurations: u8,
    /// `bNumInterfaces` (of the active configuration).
    pub num_interfaces: u8,
}

impl UsbDevice {
    /// `devid` for URB headers: `(busnum << 16) | devnum`.
    pub const fn devid(&self) -> u32 {
        (self.busnum << 16) | (self.devnum & 0xFFFF)
    }

    /// Parses a 312-byte record from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, CodecError> {
        Self::read(&mut Reader::new(buf))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            path: r.string(PATH_LEN, "device path")?,
            busid: r.string(BUSID_LEN, "device busid")?,
            busnum: r.u32("device busnum")?,
            devnum: r.u32("device devnum")?,
            speed: r.u32("device speed")?,
            id_vendor: r.u16("device idVendor")?,
            id_product: r.u16("device idProduct")?,
            bcd_device: r.u16("device bcdDevice")?,
            device_class: r.u8("device bDeviceClass")?,
            device_subclass: r.u8("device bDeviceSubClass")?,
            device_protocol: r.u8("device bDeviceProtocol")?,
            configuration_value: r.u8("device bConfigurationValue")?,
            num_configurations: r.u8("device bNumConfigurations")?,
            num_interfaces: r.u8("device bNumInterfaces")?,
        })
    }

    /// Appends the 312 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        put_string(out, &self.path, PATH_LEN, "device path")?;
        put_string(out, &self.busid, BUSID_LEN, "device busid")?;
        for v in [self.busnum, self.devnum, self.speed] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [self.id_vendor, self.id_product, self.bcd_device] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&[
            self.device_class,
            self.device_subclass,
            self.device_protocol,
            self.configuration_value,
            self.num_configurations,
            self.num_interfaces,
        ]);
        Ok(())
    }
}

/// One interface in a device list (4 bytes: class, subclass, protocol, padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UsbInterface {
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
}

/// A device list entry: the record and its interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ExportedDevice {
    /// The device record; its `num_interfaces` is the length of `interfaces` on the wire.
    pub device: UsbDevice,
    /// The interfaces.
    pub interfaces: Vec<UsbInterface>,
}

/// A request a client sends before importing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpRequest {
    /// `OP_REQ_DEVLIST`.
    DevList,
    /// `OP_REQ_IMPORT` of the device with this bus id.
    Import {
        /// Bus id (at most 31 bytes).
        busid: String,
    },
}

impl OpRequest {
    /// Parses a request from the start of `buf`; returns it and the bytes it used.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), CodecError> {
        let mut r = Reader::new(buf);
        let h = OpHeader::read(&mut r)?;
        let req = match h.code {
            op::REQ_DEVLIST => Self::DevList,
            op::REQ_IMPORT => Self::Import { busid: r.string(BUSID_LEN, "import busid")? },
            code => return Err(CodecError::UnexpectedCode { what: "op code", offset: 2, code: code.into() }),
        };
        Ok((req, r.pos))
    }

    /// Appends the request.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Self::DevList => OpHeader { version: VERSION, code: op::REQ_DEVLIST, status: 0 }.emit(out),
            Self::Import { busid } => {
                OpHeader { version: VERSION, code: op::REQ_IMPORT, status: 0 }.emit(out);
                put_string(out, busid, BUSID_LEN, "import busid")?;
            }
        }
        Ok(())
    }
}

/// A server's answer to an [`OpRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpReply {
    /// `OP_REP_DEVLIST`. With a non-zero status the message ends after the header (as Linux
    /// `usbip` reads it) and `devices` is empty.
    DevList {
        /// Header status (0 = OK).
        status: u32,
        /// The exported devices.
        devices: Vec<ExportedDevice>,
    },
    /// `OP_REP_IMPORT`: status 0 and the device record, or a non-zero status alone.
    Import {
        /// Header status (0 = OK, 1 = error in Linux `usbipd`).
        status: u32,
        /// The imported device (`Some` exactly when `status == 0`).
        device: Option<UsbDevice>,
    },
}

impl OpReply {
    /// Parses a reply from the start of `buf`; returns it and the bytes it used.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), CodecError> {
        let mut r = Reader::new(buf);
        let h = OpHeader::read(&mut r)?;
        let reply = match h.code {
            op::REP_DEVLIST if h.status != 0 => Self::DevList { status: h.status, devices: Vec::new() },
            op::REP_DEVLIST => {
                let offset = r.pos;
                let n = r.u32("devlist count")?;
                if n > MAX_DEVICES {
                    return Err(CodecError::TooLarge {
                        what: "devlist count",
                        offset,
                        value: n,
                        max: MAX_DEVICES,
                    });
                }
                let room = (buf.len() - r.pos) / DEVICE_LEN + 1;
                let mut devices = Vec::with_capacity((n as usize).min(room));
                for _ in 0..n {
                    let device = UsbDevice::read(&mut r)?;
                    let mut interfaces = Vec::with_capacity(device.num_interfaces.into());
                    for _ in 0..device.num_interfaces {
                        let [class, subclass, protocol, _pad] = r.array("interface record")?;
                        interfaces.push(UsbInterface { class, subclass, protocol });
                    }
                    devices.push(ExportedDevice { device, interfaces });
                }
                Self::DevList { status: 0, devices }
            }
            op::REP_IMPORT if h.status != 0 => Self::Import { status: h.status, device: None },
            op::REP_IMPORT => Self::Import { status: 0, device: Some(UsbDevice::read(&mut r)?) },
            code => return Err(CodecError::UnexpectedCode { what: "op code", offset: 2, code: code.into() }),
        };
        Ok((reply, r.pos))
    }

    /// Appends the reply. A device list entry's interface count on the wire is
    /// `interfaces.len()` (its record's `num_interfaces` is overridden); a reply with a
    /// non-zero status carries nothing after the header.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            Self::DevList { status, devices } => {
                OpHeader { version: VERSION, code: op::REP_DEVLIST, status: *status }.emit(out);
                if *status != 0 {
                    return Ok(());
                }
                let n = u32::try_from(devices.len())
                    .ok()
                    .filter(|&n| n <= MAX_DEVICES)
                    .ok_or(CodecError::FieldTooLong { what: "devlist count", field_len: 4 })?;
                out.extend_from_slice(&n.to_be_bytes());
                for d in devices {
                    let num_interfaces = u8::try_from(d.interfaces.len())
                        .map_err(|_| CodecError::FieldTooLong { what: "bNumInterfaces", field_len: 1 })?;
                    UsbDevice { num_interfaces, ..d.device.clone() }.emit(out)?;
                    for i in &d.interfaces {
                        out.extend_from_slice(&[i.class, i.subclass, i.protocol, 0]);
                    }
                }
            }
            Self::Import { status, device } => {
                OpHeader { version: VERSION, code: op::REP_IMPORT, status: *status }.emit(out);
                if let (0, Some(d)) = (status, device) {
                    d.emit(out)?;
                }
            }
        }
        Ok(())
    }
}

/// The 20-byte basic header every URB message starts with (after `command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BasicHeader {
    /// Sequence number: identifies a `CMD_SUBMIT` and its `RET_SUBMIT`.
    pub seqnum: u32,
    /// `(busnum << 16) | devnum` from the client; 0 from the server.
    pub devid: u32,
    /// [`dir`] value from the client; 0 from the server.
    pub direction: u32,
    /// Endpoint number (0-15, no direction bit) from the client; 0 from the server and in
    /// unlinks.
    pub ep: u32,
}

/// `USBIP_CMD_SUBMIT`: the 48-byte header; OUT data (`transfer_buffer_length` bytes) and
/// ISO descriptors follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CmdSubmit {
    /// Basic header; `direction` is 0 or 1.
    pub header: BasicHeader,
    /// URB transfer flags (Linux `URB_*`).
    pub transfer_flags: u32,
    /// OUT: bytes that follow; IN: bytes asked for.
    pub transfer_buffer_length: u32,
    /// ISO start frame (0 otherwise).
    pub start_frame: u32,
    /// ISO packet count; [`NOT_ISO`] (or 0) otherwise.
    pub number_of_packets: u32,
    /// Polling interval.
    pub interval: u32,
    /// SETUP packet of a control transfer (zeros otherwise).
    pub setup: [u8; 8],
}

/// `USBIP_RET_SUBMIT`: the 48-byte header; IN data (`actual_length` bytes, if the submit
/// was IN) and ISO descriptors follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetSubmit {
    /// Basic header (`seqnum` of the submit; the rest 0).
    pub header: BasicHeader,
    /// 0 or a negative Linux errno.
    pub status: i32,
    /// Bytes transferred.
    pub actual_length: u32,
    /// ISO start frame.
    pub start_frame: u32,
    /// ISO packet count; [`NOT_ISO`] (or 0) otherwise.
    pub number_of_packets: u32,
    /// ISO error count.
    pub error_count: u32,
}

/// `USBIP_CMD_UNLINK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CmdUnlink {
    /// Basic header (its own `seqnum`).
    pub header: BasicHeader,
    /// `seqnum` of the submit to cancel.
    pub unlink_seqnum: u32,
}

/// `USBIP_RET_UNLINK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetUnlink {
    /// Basic header (`seqnum` of the unlink).
    pub header: BasicHeader,
    /// [`STATUS_UNLINKED`] if the URB was cancelled (no `RET_SUBMIT` follows for it); 0 if
    /// it had already completed.
    pub status: i32,
}

/// One URB message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Urb {
    /// `USBIP_CMD_SUBMIT`.
    CmdSubmit(CmdSubmit),
    /// `USBIP_RET_SUBMIT`.
    RetSubmit(RetSubmit),
    /// `USBIP_CMD_UNLINK`.
    CmdUnlink(CmdUnlink),
    /// `USBIP_RET_UNLINK`.
    RetUnlink(RetUnlink),
}

fn iso_len(number_of_packets: u32) -> usize {
    if number_of_packets == NOT_ISO { 0 } else { number_of_packets as usize * ISO_DESCRIPTOR_LEN }
}

impl Urb {
    /// The basic header.
    pub const fn header(&self) -> &BasicHeader {
        match self {
            Self::CmdSubmit(c) => &c.header,
            Self::RetSubmit(c) => &c.header,
            Self::CmdUnlink(c) => &c.header,
            Self::RetUnlink(c) => &c.header,
        }
    }

    /// Parses the 48-byte header at the start of `buf` (what follows is not read).
    pub fn parse(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(buf);
        // Check the whole header is there first, so a short read names the header.
        if buf.len() < URB_HEADER_LEN {
            return Err(CodecError::Truncated {
                what: "urb header",
                offset: buf.len(),
                needed: URB_HEADER_LEN,
            });
        }
        let command = r.u32("urb command")?;
        let header = BasicHeader {
            seqnum: r.u32("urb seqnum")?,
            devid: r.u32("urb devid")?,
            direction: r.u32("urb direction")?,
            ep: r.u32("urb ep")?,
        };
        let length = |r: &mut Reader<'_>, what| -> Result<u32, CodecError> {
            let offset = r.pos;
            let v = r.u32(what)?;
            if v > MAX_TRANSFER_LEN {
                return Err(CodecError::TooLarge { what, offset, value: v, max: MAX_TRANSFER_LEN });
            }
            Ok(v)
        };
        let packets = |r: &mut Reader<'_>| -> Result<u32, CodecError> {
            let offset = r.pos;
            let v = r.u32("number_of_packets")?;
            if v != NOT_ISO && v > MAX_ISO_PACKETS {
                return Err(CodecError::TooLarge {
                    what: "number_of_packets",
                    offset,
                    value: v,
                    max: MAX_ISO_PACKETS,
                });
            }
            Ok(v)
        };
        let urb = match command {
            command::CMD_SUBMIT => {
                if header.direction > dir::IN {
                    return Err(CodecError::Invalid {
                        what: "direction",
                        offset: 12,
                        value: header.direction,
                    });
                }
                Self::CmdSubmit(CmdSubmit {
                    header,
                    transfer_flags: r.u32("transfer_flags")?,
                    transfer_buffer_length: length(&mut r, "transfer_buffer_length")?,
                    start_frame: r.u32("start_frame")?,
                    number_of_packets: packets(&mut r)?,
                    interval: r.u32("interval")?,
                    setup: r.array("setup")?,
                })
            }
            command::RET_SUBMIT => Self::RetSubmit(RetSubmit {
                header,
                status: r.u32("status")? as i32,
                actual_length: length(&mut r, "actual_length")?,
                start_frame: r.u32("start_frame")?,
                number_of_packets: packets(&mut r)?,
                error_count: r.u32("error_count")?,
            }),
            command::CMD_UNLINK => {
                Self::CmdUnlink(CmdUnlink { header, unlink_seqnum: r.u32("unlink_seqnum")? })
            }
            command::RET_UNLINK => Self::RetUnlink(RetUnlink { header, status: r.u32("status")? as i32 }),
            code => return Err(CodecError::UnexpectedCode { what: "urb command", offset: 0, code }),
        };
        Ok(urb)
    }

    /// Bytes that follow the header: transfer data, then ISO descriptors. `submitted` is
    /// the direction of the `CMD_SUBMIT` a `RET_SUBMIT` answers (its own header says 0);
    /// it is ignored for the other messages.
    pub fn payload_len(&self, submitted: Direction) -> usize {
        match self {
            Self::CmdSubmit(c) => {
                let data = if c.header.direction == dir::OUT { c.transfer_buffer_length as usize } else { 0 };
                data + iso_len(c.number_of_packets)
            }
            Self::RetSubmit(c) => {
                let data = if submitted == Direction::In { c.actual_length as usize } else { 0 };
                data + iso_len(c.number_of_packets)
            }
            Self::CmdUnlink(_) | Self::RetUnlink(_) => 0,
        }
    }

    /// Appends the 48-byte header (the caller appends the payload).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let (command, h) = match self {
            Self::CmdSubmit(c) => (command::CMD_SUBMIT, c.header),
            Self::RetSubmit(c) => (command::RET_SUBMIT, c.header),
            Self::CmdUnlink(c) => (command::CMD_UNLINK, c.header),
            Self::RetUnlink(c) => (command::RET_UNLINK, c.header),
        };
        for v in [command, h.seqnum, h.devid, h.direction, h.ep] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let mut rest = [0u8; URB_HEADER_LEN - 20];
        let mut put = |i: usize, v: u32| rest[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        match self {
            Self::CmdSubmit(c) => {
                put(0, c.transfer_flags);
                put(1, c.transfer_buffer_length);
                put(2, c.start_frame);
                put(3, c.number_of_packets);
                put(4, c.interval);
                rest[20..28].copy_from_slice(&c.setup);
            }
            Self::RetSubmit(c) => {
                put(0, c.status as u32);
                put(1, c.actual_length);
                put(2, c.start_frame);
                put(3, c.number_of_packets);
                put(4, c.error_count);
            }
            Self::CmdUnlink(c) => put(0, c.unlink_seqnum),
            Self::RetUnlink(c) => put(0, c.status as u32),
        }
        out.extend_from_slice(&rest);
    }
}

/// One ISO packet descriptor (16 bytes), after the data of an isochronous URB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IsoPacketDescriptor {
    /// Offset of the packet in the transfer buffer.
    pub offset: u32,
    /// Bytes asked for (IN) or sent (OUT).
    pub length: u32,
    /// Bytes transferred.
    pub actual_length: u32,
    /// 0 or a negative errno.
    pub status: i32,
}

impl IsoPacketDescriptor {
    /// Parses 16 bytes from the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(buf);
        Ok(Self {
            offset: r.u32("iso offset")?,
            length: r.u32("iso length")?,
            actual_length: r.u32("iso actual_length")?,
            status: r.u32("iso status")? as i32,
        })
    }

    /// Appends the 16 bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for v in [self.offset, self.length, self.actual_length, self.status as u32] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Linux `enum usb_device_speed` value for our speed.
pub const fn speed_to_usbip(speed: crate::info::Speed) -> u32 {
    use crate::info::Speed;
    match speed {
        Speed::Low => 1,
        Speed::Full => 2,
        Speed::High => 3,
        Speed::Super => 5,
        _ => 0,
    }
}

/// Our speed from a Linux `enum usb_device_speed` value.
pub const fn speed_from_usbip(v: u32) -> crate::info::Speed {
    use crate::info::Speed;
    match v {
        1 => Speed::Low,
        2 => Speed::Full,
        3 | 4 => Speed::High, // 4 = wireless USB, high-speed class
        5 | 6 => Speed::Super,
        _ => Speed::Unknown,
    }
}
