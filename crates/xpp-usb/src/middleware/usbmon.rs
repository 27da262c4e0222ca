//! The Linux usbmon capture format: the classic libpcap file and record headers, and the
//! 64-byte usbmon packet header of link type 220 (`LINKTYPE_USB_LINUX_MMAPPED`).
//!
//! Sans-IO: parse from and emit into byte slices. Facts come from the kernel's
//! `Documentation/usb/usbmon.rst` (binary interface, `struct usbmon_packet`) and the libpcap
//! file-format description; the layout is rewritten from those descriptions, not copied.
//!
//! ```text
//! pcap file header (24 bytes)         pcap record header (16 bytes)
//!  0 magic   u32  a1b2c3d4 (µs)        0 ts_sec   u32
//!                 a1b23c4d (ns)        4 ts_frac  u32  (µs or ns, from the magic)
//!  4 major   u16  2                    8 incl_len u32  bytes stored in the file
//!  6 minor   u16  4                   12 orig_len u32  bytes on the wire
//!  8 thiszone i32 0
//! 12 sigfigs u32  0
//! 16 snaplen u32
//! 20 network u32  220
//!
//! usbmon packet header (64 bytes; 48 for link type 189, which stops before `interval`)
//!  0 id        u64   URB identity, same in the submit and its completion
//!  8 type      u8    'S' submit, 'C' complete, 'E' submit error
//!  9 xfer_type u8    0 iso, 1 interrupt, 2 control, 3 bulk
//! 10 epnum     u8    endpoint number | 0x80 for IN
//! 11 devnum    u8    device address
//! 12 busnum    u16
//! 14 flag_setup i8   0 = setup[] holds a SETUP packet, '-' = none
//! 15 flag_data  i8   0 = data follows, '<' / '>' = none (IN submit / OUT completion)
//! 16 ts_sec    i64
//! 24 ts_usec   i32
//! 28 status    i32   0 or -errno; -EINPROGRESS (-115) on a submit
//! 32 length    u32   URB length: requested on submit, actual on completion
//! 36 len_cap   u32   data bytes captured after the header
//! 40 setup     [u8; 8]  (iso: error_count i32, numdesc i32)
//! 48 interval  i32
//! 52 start_frame i32
//! 56 xfer_flags u32
//! 60 ndesc     u32   iso descriptors (16 bytes each) between header and data
//! ```
//!
//! Everything is in the capturing host's byte order; [`ByteOrder`] is taken from the file
//! magic. This module writes little-endian (what an x86_64 kernel writes).

use crate::transport::TransferError;

/// Link type 220: usbmon with the full 64-byte header (what `tshark -i usbmonN` writes).
pub const LINKTYPE_USB_LINUX_MMAPPED: u32 = 220;
/// Link type 189: usbmon with the 48-byte header (older captures); read, never written.
pub const LINKTYPE_USB_LINUX: u32 = 189;
/// Length of the classic pcap file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Length of a pcap record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// Length of the usbmon packet header of link type 220.
pub const HEADER_LEN: usize = 64;
/// Length of the usbmon packet header of link type 189.
pub const HEADER_LEN_189: usize = 48;
/// Length of one isochronous descriptor following the header.
pub const ISO_DESC_LEN: usize = 16;
/// Snapshot length the writer declares (libpcap's maximum): no Astribank transfer comes close.
pub const SNAPLEN: u32 = 262_144;

/// Microsecond-resolution pcap magic.
pub const MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// Nanosecond-resolution pcap magic.
pub const MAGIC_NSEC: u32 = 0xa1b2_3c4d;

/// `status` of a submit event: `-EINPROGRESS`.
pub const STATUS_IN_PROGRESS: i32 = -errno::EINPROGRESS;

/// Linux errno values used in `status`.
mod errno {
    pub(super) const ENOENT: i32 = 2;
    pub(super) const EIO: i32 = 5;
    pub(super) const ENODEV: i32 = 19;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const EPIPE: i32 = 32;
    pub(super) const ETIME: i32 = 62;
    pub(super) const EPROTO: i32 = 71;
    pub(super) const EOVERFLOW: i32 = 75;
    pub(super) const EILSEQ: i32 = 84;
    pub(super) const EMSGSIZE: i32 = 90;
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const ESHUTDOWN: i32 = 108;
    pub(super) const ETIMEDOUT: i32 = 110;
    pub(super) const EINPROGRESS: i32 = 115;
    pub(super) const EREMOTEIO: i32 = 121;
}

/// Byte order of a capture, from its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian (x86, most ARM).
    Little,
    /// Big-endian.
    Big,
}

impl ByteOrder {
    pub(crate) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Self::Little => u16::from_le_bytes(b),
            Self::Big => u16::from_be_bytes(b),
        }
    }
    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Self::Little => u32::from_le_bytes(b),
            Self::Big => u32::from_be_bytes(b),
        }
    }
    pub(crate) fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Self::Little => u64::from_le_bytes(b),
            Self::Big => u64::from_be_bytes(b),
        }
    }
}

/// Kind of a usbmon event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `'S'`: the host submitted the URB.
    Submit,
    /// `'C'`: the URB completed (successfully or not).
    Complete,
    /// `'E'`: the submission failed; the URB never reached the device.
    Error,
    /// Any other byte, kept for the logs.
    Unknown(u8),
}

impl EventType {
    /// From the `type` byte.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            b'S' => Self::Submit,
            b'C' => Self::Complete,
            b'E' => Self::Error,
            other => Self::Unknown(other),
        }
    }
    /// The `type` byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Submit => b'S',
            Self::Complete => b'C',
            Self::Error => b'E',
            Self::Unknown(b) => b,
        }
    }
}

/// usbmon `xfer_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XferType {
    /// 0: isochronous.
    Isochronous,
    /// 1: interrupt.
    Interrupt,
    /// 2: control.
    Control,
    /// 3: bulk.
    Bulk,
    /// Any other value.
    Unknown(u8),
}

impl XferType {
    /// From the `xfer_type` byte.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Isochronous,
            1 => Self::Interrupt,
            2 => Self::Control,
            3 => Self::Bulk,
            other => Self::Unknown(other),
        }
    }
    /// The `xfer_type` byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Isochronous => 0,
            Self::Interrupt => 1,
            Self::Control => 2,
            Self::Bulk => 3,
            Self::Unknown(b) => b,
        }
    }
}

/// `flag_setup` value meaning "`setup` holds a SETUP packet".
pub const FLAG_SETUP_PRESENT: u8 = 0;
/// `flag_setup` value meaning "no SETUP packet".
pub const FLAG_SETUP_ABSENT: u8 = b'-';
/// `flag_data` value meaning "data follows the header".
pub const FLAG_DATA_PRESENT: u8 = 0;
/// `flag_data` of an IN submit (nothing to capture yet).
pub const FLAG_DATA_IN: u8 = b'<';
/// `flag_data` of an OUT completion (the data went with the submit).
pub const FLAG_DATA_OUT: u8 = b'>';

/// The usbmon packet header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UrbHeader {
    /// URB identity: the same in a submit and its completion.
    pub id: u64,
    /// Submit, complete or error.
    pub event: EventType,
    /// Transfer type.
    pub xfer_type: XferType,
    /// Endpoint address with the direction bit (0x80 = IN, also for control transfers).
    pub endpoint: u8,
    /// Device address on the bus.
    pub devnum: u8,
    /// Bus number.
    pub busnum: u16,
    /// `flag_setup` (0 when `setup` is valid).
    pub flag_setup: u8,
    /// `flag_data` (0 when data follows).
    pub flag_data: u8,
    /// Event time, seconds.
    pub ts_sec: i64,
    /// Event time, microseconds.
    pub ts_usec: i32,
    /// 0, `-EINPROGRESS` on submit, or a negative errno.
    pub status: i32,
    /// URB length: requested on submit, transferred on completion.
    pub length: u32,
    /// Data bytes captured after the header.
    pub len_cap: u32,
    /// SETUP packet (when `flag_setup == 0`) or the iso error count and descriptor count.
    pub setup: [u8; 8],
    /// Polling interval (interrupt, iso).
    pub interval: i32,
    /// Start frame (iso).
    pub start_frame: i32,
    /// URB `transfer_flags`.
    pub xfer_flags: u32,
    /// Number of iso descriptors following the header.
    pub ndesc: u32,
}

impl UrbHeader {
    /// The SETUP packet, if the record carries one.
    pub const fn setup_packet(&self) -> Option<[u8; 8]> {
        if self.flag_setup == FLAG_SETUP_PRESENT && matches!(self.xfer_type, XferType::Control) {
            Some(self.setup)
        } else {
            None
        }
    }

    /// Decodes a header of `header_len` bytes (64, or 48 for link type 189) from the start of
    /// `b`. Returns `None` if `b` is shorter.
    pub fn parse(b: &[u8], order: ByteOrder, header_len: usize) -> Option<Self> {
        let h = b.get(..header_len)?;
        let a2 = |o: usize| [h[o], h[o + 1]];
        let a4 = |o: usize| [h[o], h[o + 1], h[o + 2], h[o + 3]];
        let a8 = |o: usize| [h[o], h[o + 1], h[o + 2], h[o + 3], h[o + 4], h[o + 5], h[o + 6], h[o + 7]];
        let tail = |o: usize| if header_len >= o + 4 { order.u32(a4(o)) } else { 0 };
        Some(Self {
            id: order.u64(a8(0)),
            event: EventType::from_byte(h[8]),
            xfer_type: XferType::from_byte(h[9]),
            endpoint: h[10],
            devnum: h[11],
            busnum: order.u16(a2(12)),
            flag_setup: h[14],
            flag_data: h[15],
            ts_sec: order.u64(a8(16)) as i64,
            ts_usec: order.u32(a4(24)) as i32,
            status: order.u32(a4(28)) as i32,
            length: order.u32(a4(32)),
            len_cap: order.u32(a4(36)),
            setup: a8(40),
            interval: tail(48) as i32,
            start_frame: tail(52) as i32,
            xfer_flags: tail(56),
            ndesc: tail(60),
        })
    }

    /// Encodes the 64-byte header, little-endian.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..8].copy_from_slice(&self.id.to_le_bytes());
        out[8] = self.event.to_byte();
        out[9] = self.xfer_type.to_byte();
        out[10] = self.endpoint;
        out[11] = self.devnum;
        out[12..14].copy_from_slice(&self.busnum.to_le_bytes());
        out[14] = self.flag_setup;
        out[15] = self.flag_data;
        out[16..24].copy_from_slice(&self.ts_sec.to_le_bytes());
        out[24..28].copy_from_slice(&self.ts_usec.to_le_bytes());
        out[28..32].copy_from_slice(&self.status.to_le_bytes());
        out[32..36].copy_from_slice(&self.length.to_le_bytes());
        out[36..40].copy_from_slice(&self.len_cap.to_le_bytes());
        out[40..48].copy_from_slice(&self.setup);
        out[48..52].copy_from_slice(&self.interval.to_le_bytes());
        out[52..56].copy_from_slice(&self.start_frame.to_le_bytes());
        out[56..60].copy_from_slice(&self.xfer_flags.to_le_bytes());
        out[60..64].copy_from_slice(&self.ndesc.to_le_bytes());
    }
}

/// The classic pcap file header for a little-endian, microsecond, link-type-220 capture.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC_USEC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone and sigfigs stay 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_USB_LINUX_MMAPPED.to_le_bytes());
    h
}

/// A pcap record header (little-endian, microseconds).
pub fn record_header(ts_sec: u32, ts_usec: u32, incl_len: u32, orig_len: u32) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..4].copy_from_slice(&ts_sec.to_le_bytes());
    h[4..8].copy_from_slice(&ts_usec.to_le_bytes());
    h[8..12].copy_from_slice(&incl_len.to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    h
}

/// The usbmon `status` of a completion: 0 or a negative Linux errno. An error never maps to 0
/// (success) nor to `-EINPROGRESS` (a submit), nor to a positive value.
///
/// | status | errno |
/// |---|---|
/// | `Ok` | 0 |
/// | `Cancelled` | `-ENOENT` (-2), what `usb_kill_urb` leaves |
/// | `Stall` | `-EPIPE` (-32) |
/// | `Disconnected` | `-ENODEV` (-19) |
/// | `Fault` | `-EPROTO` (-71) |
/// | `InvalidArgument` | `-EINVAL` (-22) |
/// | `Unknown(n)`, `1 <= n <= i32::MAX`, `n != EINPROGRESS` | `-n` |
/// | `Unknown(0)`, `Unknown(115)`, `Unknown(n > i32::MAX)` | `-EIO` (-5) |
///
/// Decision: an unknown error whose code cannot be carried as a negative errno (0 would read
/// as success, 115 as "submitted", anything above `i32::MAX` as a positive status) becomes
/// `-EIO`, the generic I/O error: no host controller driver reports it for a URB, so
/// [`errno_to_status`] reads it back as `Unknown(5)`, still an unknown error. `Unknown(n)`
/// whose `n` is an errno listed in [`errno_to_status`] reads back as that error.
pub const fn status_to_errno(status: Result<(), TransferError>) -> i32 {
    match status {
        Ok(()) => 0,
        Err(TransferError::Cancelled) => -errno::ENOENT,
        Err(TransferError::Stall) => -errno::EPIPE,
        Err(TransferError::Disconnected) => -errno::ENODEV,
        Err(TransferError::Fault) => -errno::EPROTO,
        Err(TransferError::InvalidArgument) => -errno::EINVAL,
        Err(TransferError::Unknown(n)) => {
            if n == 0 || n == errno::EINPROGRESS as u32 || n > i32::MAX as u32 {
                -errno::EIO
            } else {
                -(n as i32)
            }
        }
    }
}

/// The inverse of [`status_to_errno`], accepting every errno the kernel's host controller
/// drivers report for a URB: `-ENOENT`, `-ECONNRESET`, `-ETIMEDOUT` → `Cancelled`;
/// `-EPIPE` → `Stall`; `-ENODEV`, `-ESHUTDOWN` → `Disconnected`; `-EPROTO`, `-EILSEQ`,
/// `-ETIME`, `-EOVERFLOW`, `-EREMOTEIO` → `Fault`; `-EINVAL`, `-EMSGSIZE` →
/// `InvalidArgument`; anything else → `Unknown(-status)`. `-EINPROGRESS` (a submit) and 0
/// are `Ok`.
pub const fn errno_to_status(status: i32) -> Result<(), TransferError> {
    if status == 0 || status == STATUS_IN_PROGRESS {
        return Ok(());
    }
    let e = status.wrapping_neg();
    Err(match e {
        errno::ENOENT | errno::ECONNRESET | errno::ETIMEDOUT => TransferError::Cancelled,
        errno::EPIPE => TransferError::Stall,
        errno::ENODEV | errno::ESHUTDOWN => TransferError::Disconnected,
        errno::EPROTO | errno::EILSEQ | errno::ETIME | errno::EOVERFLOW | errno::EREMOTEIO => {
            TransferError::Fault
        }
        errno::EINVAL | errno::EMSGSIZE => TransferError::InvalidArgument,
        other => TransferError::Unknown(other as u32),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn unknown_errors_never_read_as_success() {
        // Issue: `Unknown(0)` used to map to 0, a successful URB.
        assert_eq!(status_to_errno(Err(TransferError::Unknown(0))), -5);
        assert_eq!(errno_to_status(-5), Err(TransferError::Unknown(5)));
        // 115 would read as a submit (-EINPROGRESS); above i32::MAX the status turned positive.
        for n in [115, 0x8000_0000, 0x8000_0001, u32::MAX] {
            assert_eq!(status_to_errno(Err(TransferError::Unknown(n))), -5, "{n}");
        }
        assert_eq!(status_to_errno(Err(TransferError::Unknown(1))), -1);
        assert_eq!(status_to_errno(Err(TransferError::Unknown(i32::MAX as u32))), -i32::MAX);
    }

    #[test]
    fn status_mapping_round_trips() {
        for s in [
            Ok(()),
            Err(TransferError::Cancelled),
            Err(TransferError::Stall),
            Err(TransferError::Disconnected),
            Err(TransferError::Fault),
            Err(TransferError::InvalidArgument),
            Err(TransferError::Unknown(1234)),
        ] {
            assert_eq!(errno_to_status(status_to_errno(s)), s);
        }
        assert_eq!(errno_to_status(-104), Err(TransferError::Cancelled));
        assert_eq!(errno_to_status(-108), Err(TransferError::Disconnected));
        assert_eq!(errno_to_status(-75), Err(TransferError::Fault));
        assert_eq!(errno_to_status(-115), Ok(()));
        assert_eq!(errno_to_status(i32::MIN), Err(TransferError::Unknown(0x8000_0000)));
    }

    #[test]
    fn header_emit_parse() {
        let h = UrbHeader {
            id: 0x1122_3344_5566_7788,
            event: EventType::Complete,
            xfer_type: XferType::Control,
            endpoint: 0x80,
            devnum: 5,
            busnum: 3,
            flag_setup: FLAG_SETUP_PRESENT,
            flag_data: FLAG_DATA_PRESENT,
            ts_sec: 1_700_000_000,
            ts_usec: 999_999,
            status: -32,
            length: 18,
            len_cap: 18,
            setup: [0x80, 6, 0, 1, 0, 0, 18, 0],
            interval: 0,
            start_frame: 0,
            xfer_flags: 0x200,
            ndesc: 0,
        };
        let mut b = [0u8; HEADER_LEN];
        h.emit(&mut b);
        assert_eq!(UrbHeader::parse(&b, ByteOrder::Little, HEADER_LEN), Some(h));
        assert_eq!(h.setup_packet(), Some([0x80, 6, 0, 1, 0, 0, 18, 0]));
        assert_eq!(UrbHeader::parse(&b[..63], ByteOrder::Little, HEADER_LEN), None);
        let short = UrbHeader::parse(&b, ByteOrder::Little, HEADER_LEN_189).unwrap();
        assert_eq!((short.xfer_flags, short.len_cap), (0, 18));
    }

    fn arb_status() -> impl Strategy<Value = Result<(), TransferError>> {
        prop_oneof![
            Just(Ok(())),
            Just(Err(TransferError::Cancelled)),
            Just(Err(TransferError::Stall)),
            Just(Err(TransferError::Disconnected)),
            Just(Err(TransferError::Fault)),
            Just(Err(TransferError::InvalidArgument)),
            any::<u32>().prop_map(|n| Err(TransferError::Unknown(n))),
        ]
    }

    proptest! {
        #[test]
        fn errors_map_to_negative_errnos(s in arb_status()) {
            let e = status_to_errno(s);
            if s.is_ok() {
                prop_assert_eq!(e, 0);
            } else {
                prop_assert!(e < 0 && e != STATUS_IN_PROGRESS, "{s:?} -> {e}");
                prop_assert!(errno_to_status(e).is_err());
            }
        }

        /// `errno_to_status` inverts `status_to_errno` on every status it can carry: the
        /// named ones, and `Unknown(n)` for the codes it does not name.
        #[test]
        fn status_round_trip(s in arb_status()) {
            let back = errno_to_status(status_to_errno(s));
            match s {
                Err(TransferError::Unknown(_)) => prop_assert!(back.is_err()),
                _ => prop_assert_eq!(back, s),
            }
            if let Err(TransferError::Unknown(n)) = s
                && let Err(TransferError::Unknown(m)) = back
            {
                prop_assert!(m == n || m == 5, "{n} -> {m}");
            }
        }

        /// `parse(emit(h)) == h` for every header (type bytes kept through their enums).
        #[test]
        fn header_round_trip(
            id in any::<u64>(), event in any::<u8>(), xfer in any::<u8>(), endpoint in any::<u8>(),
            devnum in any::<u8>(), busnum in any::<u16>(), flags in any::<[u8; 2]>(),
            ts_sec in any::<i64>(), ts_usec in any::<i32>(), status in any::<i32>(),
            length in any::<u32>(), len_cap in any::<u32>(), setup in any::<[u8; 8]>(),
            tail in any::<[u32; 4]>(),
        ) {
            let h = UrbHeader {
                id, event: EventType::from_byte(event), xfer_type: XferType::from_byte(xfer), endpoint,
                devnum, busnum, flag_setup: flags[0], flag_data: flags[1], ts_sec, ts_usec, status,
                length, len_cap, setup, interval: tail[0] as i32, start_frame: tail[1] as i32,
                xfer_flags: tail[2], ndesc: tail[3],
            };
            let mut b = [0u8; HEADER_LEN];
            h.emit(&mut b);
            prop_assert_eq!(UrbHeader::parse(&b, ByteOrder::Little, HEADER_LEN), Some(h));
            prop_assert_eq!(h.event.to_byte(), event);
            prop_assert_eq!(h.xfer_type.to_byte(), xfer);
        }
    }
}
