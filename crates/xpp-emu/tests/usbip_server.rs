//! The emulator's USB/IP server driven by `xpp_usb`'s client on 127.0.0.1: device list,
//! import, refusals, re-export after re-enumeration (real firmware download), TwinStar jump,
//! unplug, server shutdown. Every test is bounded by a timeout.

#[path = "../../xpp-proto/tests/support/mod.rs"]
mod support;
mod usbip_common;

use std::time::Duration;

use usbip_common::{T, bounded, mpp, next, serve, wait_for_list};
use xpp_emu::config::Stage;
use xpp_emu::usbip_server::{self, UsbIpServer};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_proto::firmware::{Fx2Load, HexFile};
use xpp_proto::mgmt::{OwnedReply, Request};
use xpp_usb::usbip::codec::UsbInterface;
use xpp_usb::{ControlSetup, Error, TransferError, Transport, UsbIpTransport, ep};

const LIMIT: Duration = Duration::from_secs(30);

fn running() -> DeviceConfig {
    DeviceConfig::default().with_start_stage(Stage::Running)
}

#[test]
fn device_list_describes_the_enumerated_device() {
    bounded(LIMIT, || {
        let server = serve(running());
        assert!(server.local_addr().ip().is_loopback());
        let list = xpp_usb::usbip::list_devices(server.local_addr()).unwrap();
        assert_eq!(list.len(), 1);
        let d = &list[0].device;
        assert_eq!(d.busid, "1-1");
        assert_eq!(d.path, "/sys/devices/platform/xpp-emu/usb1/1-1");
        assert_eq!((d.busnum, d.speed), (1, 3));
        assert_eq!((d.id_vendor, d.id_product, d.bcd_device), (0xE4E4, 0x1162, 0x0101));
        assert_eq!((d.device_class, d.device_subclass, d.device_protocol), (0, 0, 0));
        assert_eq!((d.configuration_value, d.num_configurations, d.num_interfaces), (1, 1, 2));
        let vendor = UsbInterface { class: 0xFF, subclass: 0, protocol: 0 };
        assert_eq!(list[0].interfaces, vec![vendor, vendor]);
        assert_eq!(server.exported(), list);
        // The number the emulator gives this enumeration.
        let location = server.emulator().with_device(|d| d.port_info(0).unwrap().location);
        assert!(location.ends_with(&format!("/0-{:03}", d.devnum)), "{location} vs {}", d.devnum);
    });
}

#[test]
fn import_reads_the_identity_over_ep0_and_serves_mpp() {
    bounded(LIMIT, || {
        let server = serve(running());
        let mut t = UsbIpTransport::connect(server.local_addr(), "1-1").unwrap();
        let local = server.emulator().with_device(|d| d.port_info(0).unwrap());
        let info = t.info().clone();
        assert_eq!(
            (info.vendor_id, info.product_id, info.bcd_device, info.speed),
            (local.vendor_id, local.product_id, local.bcd_device, local.speed)
        );
        assert_eq!(info.manufacturer.as_deref(), Some("Xorcom LTD"));
        assert_eq!(info.product.as_deref(), Some("Astribank"));
        assert_eq!(info.serial.as_deref(), Some("00000001"));
        assert_eq!(info.interfaces, local.interfaces);
        assert_eq!(server.imported_ports(), vec![0]);
        assert!(matches!(mpp(&mut t, 1, Request::StatusGet), Ok(OwnedReply::StatusGetReply(_))));
        // Standard requests the kernel sends while enumerating, answered from the identity.
        let std_out =
            |request_type, request, value, index| ControlSetup { request_type, request, value, index };
        t.control_out(std_out(0x00, 9, 1, 0), &[], T).unwrap(); // SET_CONFIGURATION
        t.control_out(std_out(0x01, 11, 0, 1), &[], T).unwrap(); // SET_INTERFACE
        t.control_out(std_out(0x02, 1, 0, 0x86), &[], T).unwrap(); // CLEAR_FEATURE(HALT)
        let mut b = [0u8; 2];
        assert_eq!(t.control_in(std_out(0x80, 0, 0, 0), &mut b, T), Ok(2)); // GET_STATUS
        let mut c = [0u8; 1];
        assert_eq!(t.control_in(std_out(0x80, 8, 0, 0), &mut c, T), Ok(1)); // GET_CONFIGURATION
        assert_eq!(c, [1]);
        // Anything else stalls and the connection goes on.
        assert_eq!(t.control_out(std_out(0x40, 0x55, 0, 0), &[], T), Err(TransferError::Stall));
        assert_eq!(t.reset(), Ok(()));
        assert!(matches!(mpp(&mut t, 2, Request::StatusGet), Ok(OwnedReply::StatusGetReply(_))));
    });
}

#[test]
fn imports_of_unknown_or_busy_ports_are_refused() {
    bounded(LIMIT, || {
        let server = serve(running());
        let addr = server.local_addr();
        for busid in ["1-2", "2-1", "", "1-0"] {
            match UsbIpTransport::connect(addr, busid) {
                Err(Error::ImportRefused { status: 4, .. }) => {}
                other => panic!("{busid}: {other:?}"),
            }
        }
        let first = UsbIpTransport::connect(addr, "1-1").unwrap();
        match UsbIpTransport::connect(addr, "1-1") {
            Err(Error::ImportRefused { status: 2, .. }) => {}
            other => panic!("second import: {other:?}"),
        }
        drop(first);
        // The port is free again once the server has seen the client leave.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut again = loop {
            match UsbIpTransport::connect(addr, "1-1") {
                Ok(t) => break t,
                Err(Error::ImportRefused { status: 2, .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("re-import: {e}"),
            }
        };
        assert!(mpp(&mut again, 1, Request::StatusGet).is_ok());
    });
}

/// Every pending transfer completes `Disconnected` and later calls fail, within the time bound.
fn assert_gone(t: &mut UsbIpTransport, pending: &[u8]) {
    assert!(!pending.is_empty(), "a pending transfer shows when the client has seen the end");
    for &e in pending {
        assert!(t.pending(e) > 0);
        while t.pending(e) > 0 {
            let c = next(t, e);
            assert_eq!(c.status, Err(TransferError::Disconnected), "{e:#04x}");
        }
    }
    assert_eq!(t.submit(ep::MGMT_OUT, vec![5, 0, 1, 0, 0x11]), Err(TransferError::Disconnected));
    let setup = ControlSetup { request_type: 0x80, request: 6, value: 0x0100, index: 0 };
    assert_eq!(t.control_in(setup, &mut [0; 18], T), Err(TransferError::Disconnected));
}

#[test]
fn cold_device_gets_its_firmware_through_the_client_and_is_re_exported() {
    let dir = support::firmware_dir();
    bounded(LIMIT, move || {
        let server = serve(DeviceConfig::default());
        let addr = server.local_addr();
        let cold = xpp_usb::usbip::list_devices(addr).unwrap();
        assert_eq!((cold[0].device.id_vendor, cold[0].device.id_product), (0xE4E4, 0x1160));
        let mut t = UsbIpTransport::connect(addr, "1-1").unwrap();
        assert!(t.info().interface(0).unwrap().endpoints.is_empty(), "cold: EP0 only");
        assert_eq!(t.info().serial, None);
        let bytes = std::fs::read(dir.join("USB_FW.hex")).unwrap();
        let hex = HexFile::parse(&bytes).unwrap();
        for r in Fx2Load::new(&hex).unwrap().requests() {
            let setup = ControlSetup {
                request_type: r.request_type,
                request: r.request,
                value: r.value,
                index: r.index,
            };
            assert_eq!(t.control_out(setup, r.data, T), Ok(r.data.len()));
        }
        // The CPUCS release renumerated the device: the import is over.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let setup = ControlSetup { request_type: 0xC0, request: 0xA0, value: 0xE600, index: 0 };
        loop {
            match t.control_in(setup, &mut [0; 1], T) {
                Err(TransferError::Disconnected) => break,
                other => assert!(std::time::Instant::now() < deadline, "still connected: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let list = wait_for_list(addr, |l| l.first().is_some_and(|d| d.device.id_product == 0x1161));
        let d = &list[0].device;
        assert_eq!((d.busid.as_str(), d.id_vendor, d.bcd_device), ("1-1", 0xE4E4, 0x0101));
        assert_ne!(d.devnum, cold[0].device.devnum, "a new address");
        assert_eq!(list[0].interfaces.len(), 2);
        let mut u = UsbIpTransport::connect(addr, "1-1").unwrap();
        assert_eq!(u.info().product_id, 0x1161);
        assert_eq!(u.info().serial.as_deref(), Some("00000001"));
        match mpp(&mut u, 1, Request::StatusGet) {
            Ok(OwnedReply::StatusGetReply(s)) => assert_eq!(s.status & 1, 0, "FPGA not loaded yet"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn renum_ends_the_import_and_the_device_comes_back() {
    bounded(LIMIT, || {
        let server = serve(running());
        let addr = server.local_addr();
        let before = xpp_usb::usbip::list_devices(addr).unwrap()[0].device.devnum;
        let mut t = UsbIpTransport::connect(addr, "1-1").unwrap();
        for _ in 0..4 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
        let mut req = [0u8; 5];
        Request::Renum.emit(9, &mut req).unwrap();
        t.submit(ep::MGMT_OUT, req.to_vec()).unwrap();
        assert_eq!(next(&mut t, ep::MGMT_OUT).status, Ok(()));
        assert_gone(&mut t, &[ep::DATA_IN, ep::MGMT_IN]);
        let list = wait_for_list(addr, |l| l.first().is_some_and(|d| d.device.devnum != before));
        assert_eq!(list[0].device.id_product, 0x1162);
        let mut u = UsbIpTransport::connect(addr, "1-1").unwrap();
        assert!(mpp(&mut u, 1, Request::StatusGet).is_ok());
    });
}

#[test]
fn twinstar_jump_moves_the_export_to_the_second_port() {
    bounded(LIMIT, || {
        let server = serve(running().with_twinstar(true));
        let addr = server.local_addr();
        let list = xpp_usb::usbip::list_devices(addr).unwrap();
        assert_eq!(list.iter().map(|d| d.device.busid.as_str()).collect::<Vec<_>>(), ["1-1"]);
        let mut a = UsbIpTransport::connect(addr, "1-1").unwrap();
        a.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        let mut req = [0u8; 6];
        let n = Request::TwsPortSet { port: 1 }.emit(1, &mut req).unwrap();
        a.submit(ep::MGMT_OUT, req[..n].to_vec()).unwrap();
        assert_gone(&mut a, &[ep::DATA_IN]);
        let list = wait_for_list(addr, |l| l.iter().any(|d| d.device.busid == "1-2"));
        assert_eq!(list.len(), 1, "the standby port does not enumerate");
        assert_eq!(list[0].device.id_product, 0x1162);
        let mut b = UsbIpTransport::connect(addr, "1-2").unwrap();
        assert!(matches!(mpp(&mut b, 2, Request::TwsPortGet), Ok(OwnedReply::TwsPortGetReply { port: 1 })));
        assert_eq!(server.imported_ports(), vec![1]);
        assert_eq!(usbip_server::port_of_busid("1-2"), Some(1));
    });
}

#[test]
fn unplug_ends_the_import_and_replug_re_exports() {
    bounded(LIMIT, || {
        let server = serve(running());
        let addr = server.local_addr();
        let mut t = UsbIpTransport::connect(addr, "1-1").unwrap();
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
        server.emulator().with_device(|d| d.unplug(d.now(), 0));
        assert_gone(&mut t, &[ep::MGMT_IN]);
        assert!(xpp_usb::usbip::list_devices(addr).unwrap().is_empty());
        match UsbIpTransport::connect(addr, "1-1") {
            Err(Error::ImportRefused { status: 4, .. }) => {}
            other => panic!("import of an unplugged port: {other:?}"),
        }
        server.emulator().with_device(|d| d.plug(d.now(), 0));
        wait_for_list(addr, |l| l.len() == 1);
        let mut u = UsbIpTransport::connect(addr, "1-1").unwrap();
        assert!(mpp(&mut u, 1, Request::StatusGet).is_ok());
    });
}

#[test]
fn a_server_that_goes_away_disconnects_its_clients() {
    bounded(LIMIT, || {
        let server = serve(running());
        let mut t = UsbIpTransport::connect(server.local_addr(), "1-1").unwrap();
        for _ in 0..3 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        let start = std::time::Instant::now();
        drop(server);
        assert!(start.elapsed() < Duration::from_secs(2), "drop joined promptly");
        assert_gone(&mut t, &[ep::DATA_IN]);
        assert_eq!(t.submit(ep::DATA_IN, vec![0; 512]), Err(TransferError::Disconnected));
    });
}

#[test]
fn a_virtual_clock_emulator_can_be_served_too() {
    bounded(LIMIT, || {
        // The server never moves a virtual clock; MPP answers at once (mpp_latency 0).
        let emu = Emulator::new(running());
        let server = UsbIpServer::bind_loopback(emu.clone(), 0).unwrap();
        let mut t = UsbIpTransport::connect(server.local_addr(), "1-1").unwrap();
        assert!(mpp(&mut t, 1, Request::StatusGet).is_ok());
        // A renumeration waits for the caller to advance time.
        t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
        let mut req = [0u8; 5];
        Request::Renum.emit(2, &mut req).unwrap();
        t.submit(ep::MGMT_OUT, req.to_vec()).unwrap();
        assert_eq!(next(&mut t, ep::MGMT_OUT).status, Ok(()));
        assert_gone(&mut t, &[ep::MGMT_IN]);
        assert!(server.exported().is_empty());
        emu.advance(xpp_proto::Duration::from_millis(500));
        assert_eq!(server.exported().len(), 1);
    });
}
