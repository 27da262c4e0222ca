//! The transport conformance suite: one set of assertions about the `Transport` contract, run
//! against three setups of the same emulated Astribank:
//!
//! - `emulated`: the in-process [`EmulatedTransport`](xpp_emu::EmulatedTransport) (virtual
//!   clock, auto-advancing);
//! - `usbip`: the emulator's USB/IP server on 127.0.0.1 (ephemeral port, real-time clock)
//!   driven by `xpp_usb::UsbIpTransport`;
//! - `replay`: the case is first run on the `emulated` setup wrapped in a `PcapWriter`, then
//!   run again, assertion for assertion, on a `PcapReplay` of that capture.
//!
//! Every case runs on every setup. Three sub-assertions are left out for the replay, and only
//! there: `DeviceInfo`'s strings (manufacturer, product, serial) and speed, because a replay
//! rebuilds the info from the capture's device and configuration descriptors only; and "an IN
//! transfer with no data is still unfinished before the cancel", because a replay completes
//! every transfer at submission with its recorded result (here `Cancelled`) and has no timing.
//! The disconnect case does hold for the replay: the capture records every pending transfer
//! completing `Disconnected` and the refused later submit, and a replay past its end behaves
//! as an unplugged device.

mod usbip_common;

use std::time::Duration;

use usbip_common::{T, bounded, mpp, next, serve};
use xpp_emu::config::Stage;
use xpp_emu::{ClockMode, DeviceConfig, Emulator};
use xpp_proto::mgmt::{OwnedReply, Request};
use xpp_usb::middleware::{PcapReplay, PcapWriter};
use xpp_usb::{
    ControlSetup, EndpointInfo, Speed, TransferError, TransferType, Transport, UsbIpTransport, ep,
};

/// Bound of one case on one setup.
const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Emulated,
    UsbIp,
    Replay,
}

/// What a case may ask of its setup.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    setup: Setup,
}

impl Ctx {
    /// Whether `DeviceInfo` carries the string descriptors and the speed.
    fn full_info(self) -> bool {
        self.setup != Setup::Replay
    }

    /// Whether a transfer that will be cancelled is observably unfinished before the cancel
    /// (a replay hands out the recorded `Cancelled` completion at once).
    fn live(self) -> bool {
        self.setup != Setup::Replay
    }
}

type Case = fn(&mut dyn Transport, Ctx);

fn run(setup: Setup, cfg: DeviceConfig, case: Case) {
    bounded(LIMIT, move || {
        let ctx = Ctx { setup };
        match setup {
            Setup::Emulated => {
                let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
                let mut t = emu.transport(0).expect("enumerated");
                case(&mut t, ctx);
            }
            Setup::UsbIp => {
                let server = serve(cfg);
                let mut t = UsbIpTransport::connect(server.local_addr(), "1-1").expect("import 1-1");
                case(&mut t, ctx);
                drop(t);
                drop(server);
            }
            Setup::Replay => {
                let emu = Emulator::with_mode(cfg, ClockMode::AutoAdvance);
                let t = emu.transport(0).expect("enumerated");
                let mut w = PcapWriter::new(t, Vec::new()).expect("pcap header");
                // What a kernel reads at enumeration; the replay rebuilds DeviceInfo from it.
                let mut dev = [0u8; 18];
                let get =
                    |kind: u16| ControlSetup { request_type: 0x80, request: 6, value: kind << 8, index: 0 };
                w.control_in(get(1), &mut dev, T).expect("device descriptor");
                let mut config = [0u8; 255];
                w.control_in(get(2), &mut config, T).expect("configuration descriptor");
                case(&mut w, Ctx { setup: Setup::Emulated });
                let (_, capture) = w.finish().expect("capture written");
                let mut replay = PcapReplay::from_bytes(&capture).expect("capture parses");
                case(&mut replay, ctx);
            }
        }
    });
}

fn running() -> DeviceConfig {
    DeviceConfig::default().with_start_stage(Stage::Running)
}

fn cold() -> DeviceConfig {
    DeviceConfig::default()
}

// ----- the cases ---------------------------------------------------------------------------

/// Bulk OUT + IN through the management interface: STATUS_GET and its reply.
fn mpp_round_trip(t: &mut dyn Transport, _: Ctx) {
    for seq in 1..=3 {
        match mpp(t, seq, Request::StatusGet) {
            Ok(OwnedReply::StatusGetReply(s)) => assert_eq!(s.status & 1, 1, "FPGA loaded"),
            other => panic!("STATUS_GET {seq}: {other:?}"),
        }
    }
    assert_eq!(t.pending(ep::MGMT_OUT), 0);
    assert_eq!(t.pending(ep::MGMT_IN), 0);
}

/// AB_REQUEST (XPP-8): answered with one AB_DESCRIPTION transfer each time.
const AB_REQUEST: [u8; 6] = [0x06, 0x00, 0x07, 0x00, 0x1E, 0x00];
/// Opcode byte of AB_DESCRIPTION.
const AB_DESCRIPTION: u8 = 0x08;

/// Several IN transfers queued on the data endpoint complete in order as data appears; the
/// rest stay pending until cancelled.
fn queued_data_in(t: &mut dyn Transport, _: Ctx) {
    const QUEUED: usize = 10;
    for _ in 0..QUEUED {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    assert_eq!(t.pending(ep::DATA_IN), QUEUED);
    for _ in 0..3 {
        t.submit(ep::DATA_OUT, AB_REQUEST.to_vec()).unwrap();
    }
    for _ in 0..3 {
        let c = next(t, ep::DATA_OUT);
        assert_eq!((c.status, c.actual_len), (Ok(()), AB_REQUEST.len()));
    }
    for i in 0..3 {
        let c = next(t, ep::DATA_IN);
        assert_eq!(c.status, Ok(()), "IN {i}");
        assert_eq!(c.actual_len, c.buffer.len());
        assert_eq!(c.buffer.get(2), Some(&AB_DESCRIPTION), "IN {i}: {:02x?}", c.buffer);
        assert_eq!(usize::from(u16::from_le_bytes([c.buffer[0], c.buffer[1]])), c.buffer.len());
    }
    assert_eq!(t.pending(ep::DATA_IN), QUEUED - 3, "the rest stay queued");
    t.cancel_all(ep::DATA_IN);
    for _ in 3..QUEUED {
        let c = next(t, ep::DATA_IN);
        assert_eq!((c.status, c.actual_len), (Err(TransferError::Cancelled), 0));
    }
    assert_eq!(t.pending(ep::DATA_IN), 0);
}

/// Cancelling pending transfers leaves the endpoint usable.
fn cancel_then_reuse(t: &mut dyn Transport, ctx: Ctx) {
    for _ in 0..3 {
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    }
    if ctx.live() {
        assert!(t.wait_next_complete(ep::MGMT_IN, Duration::from_millis(20)).is_none(), "nothing to read");
    }
    t.cancel_all(ep::MGMT_IN);
    for _ in 0..3 {
        assert_eq!(next(t, ep::MGMT_IN).status, Err(TransferError::Cancelled));
    }
    assert_eq!(t.pending(ep::MGMT_IN), 0);
    // An unknown endpoint is refused without disturbing the transport.
    assert_eq!(t.submit(0x83, vec![0; 64]), Err(TransferError::InvalidArgument));
    assert!(matches!(mpp(t, 4, Request::TwsPortGet), Ok(OwnedReply::TwsPortGetReply { port: 0 })));
}

/// FX2 vendor request 0xA0 on a cold device (LOAD-1..4, LOAD-6), and a STALL.
fn fx2_control(t: &mut dyn Transport, _: Ctx) {
    const CPUCS: u16 = 0xE600;
    let write = |value| ControlSetup { request_type: 0x40, request: 0xA0, value, index: 0 };
    let read = |value| ControlSetup { request_type: 0xC0, request: 0xA0, value, index: 0 };
    assert_eq!(t.control_out(write(CPUCS), &[0x01], T), Ok(1), "hold the 8051");
    assert_eq!(t.control_out(write(0x0000), &[0x02, 0x00, 0x06], T), Ok(3), "RAM write");
    let mut b = [0u8; 3];
    assert_eq!(t.control_in(read(0x0000), &mut b, T), Ok(3));
    assert_eq!(b, [0x02, 0x00, 0x06]);
    let mut c = [0u8; 1];
    assert_eq!(t.control_in(read(CPUCS), &mut c, T), Ok(1));
    assert_eq!(c, [0x01]);
    // No other vendor request exists (USB-10).
    let other = ControlSetup { request_type: 0x40, request: 0x55, value: 0, index: 0 };
    assert_eq!(t.control_out(other, &[], T), Err(TransferError::Stall));
    // Released into a 3-byte image: refused, no renumeration (LOAD-6); still there.
    assert_eq!(t.control_out(write(CPUCS), &[0x00], T), Ok(1));
    assert_eq!(t.control_in(read(0x0000), &mut b, T), Ok(3));
}

/// The identity of a running modular Astribank (USB-1, USB-4, USB-7, USB-9).
fn device_info(t: &mut dyn Transport, ctx: Ctx) {
    let info = t.info().clone();
    assert_eq!((info.vendor_id, info.product_id, info.bcd_device), (0xE4E4, 0x1162, 0x0101));
    let bulk = |address| EndpointInfo { address, transfer_type: TransferType::Bulk, max_packet_size: 512 };
    let ifs: Vec<_> = info.interfaces.iter().map(|i| (i.number, i.endpoints.clone())).collect();
    assert_eq!(
        ifs,
        vec![
            (ep::DATA_INTERFACE, vec![bulk(ep::DATA_OUT), bulk(ep::DATA_IN)]),
            (ep::MGMT_INTERFACE, vec![bulk(ep::MGMT_OUT), bulk(ep::MGMT_IN)]),
        ]
    );
    assert!(!info.location.is_empty());
    if ctx.full_info() {
        assert_eq!(info.manufacturer.as_deref(), Some("Xorcom LTD"));
        assert_eq!(info.product.as_deref(), Some("Astribank"));
        assert_eq!(info.serial.as_deref(), Some("00000001"));
        assert_eq!(info.speed, Speed::High);
    }
}

/// A re-enumeration (MPP RENUM) mid-transfer: every pending transfer completes
/// `Disconnected`, every later call fails with it, nothing blocks past its timeout.
fn disconnect_on_renumeration(t: &mut dyn Transport, _: Ctx) {
    for _ in 0..4 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    }
    for _ in 0..2 {
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
    }
    let mut req = [0u8; 5];
    Request::Renum.emit(7, &mut req).unwrap();
    t.submit(ep::MGMT_OUT, req.to_vec()).unwrap();
    assert_eq!(next(t, ep::MGMT_OUT).status, Ok(()));
    for (e, n) in [(ep::DATA_IN, 4), (ep::MGMT_IN, 2)] {
        for i in 0..n {
            assert_eq!(next(t, e).status, Err(TransferError::Disconnected), "{e:#04x} #{i}");
        }
        assert_eq!(t.pending(e), 0);
    }
    assert_eq!(t.submit(ep::MGMT_OUT, req.to_vec()), Err(TransferError::Disconnected));
    let read = ControlSetup { request_type: 0xC0, request: 0xA0, value: 0xE600, index: 0 };
    assert_eq!(t.control_in(read, &mut [0; 1], T), Err(TransferError::Disconnected));
    assert!(t.wait_next_complete(ep::DATA_IN, Duration::from_millis(10)).is_none());
}

macro_rules! suite {
    ($($case:ident($cfg:expr);)*) => {
        mod emulated {
            $(#[test] fn $case() { super::run(super::Setup::Emulated, $cfg, super::$case) })*
        }
        mod usbip {
            $(#[test] fn $case() { super::run(super::Setup::UsbIp, $cfg, super::$case) })*
        }
        mod replay {
            $(#[test] fn $case() { super::run(super::Setup::Replay, $cfg, super::$case) })*
        }
    };
}

suite! {
    mpp_round_trip(super::running());
    queued_data_in(super::running());
    cancel_then_reuse(super::running());
    fx2_control(super::cold());
    device_info(super::running());
    disconnect_on_renumeration(super::running());
}
