//! No leaked threads: after a server with listing, importing, renumerating and abandoned
//! clients is dropped, the process has exactly the threads it had before. The only test in
//! its binary, so no other test's threads disturb the count.

mod usbip_common;

use std::time::Duration;

use usbip_common::{bounded, mpp, serve};
use xpp_emu::DeviceConfig;
use xpp_emu::config::Stage;
use xpp_proto::mgmt::Request;
use xpp_usb::{Transport, UsbIpTransport, ep};

/// Threads of this process (Linux `/proc/self/task`): a test that cannot count them fails.
#[cfg(target_os = "linux")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task (Linux) lists the threads").count()
}

// The count comes from Linux's procfs; elsewhere the test is not built rather than skipped.
#[cfg(target_os = "linux")]
#[test]
fn dropping_the_server_joins_every_thread() {
    let before = threads();
    let (during, after) = bounded(Duration::from_secs(30), move || {
        let server = serve(DeviceConfig::default().with_start_stage(Stage::Running).with_twinstar(true));
        let addr = server.local_addr();
        let _ = xpp_usb::usbip::list_devices(addr).unwrap();
        let mut a = UsbIpTransport::connect(addr, "1-1").unwrap();
        a.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        assert!(mpp(&mut a, 1, Request::StatusGet).is_ok());
        // An idle connection that never sends anything, and a client that vanishes.
        let idle = std::net::TcpStream::connect(addr).unwrap();
        let mut b = UsbIpTransport::connect(addr, "1-1").err();
        assert!(b.take().is_some(), "busy");
        // A jump ends the first import; its threads end with it.
        let mut req = [0u8; 6];
        let n = Request::TwsPortSet { port: 1 }.emit(2, &mut req).unwrap();
        a.submit(ep::MGMT_OUT, req[..n].to_vec()).unwrap();
        let _ = a.wait_next_complete(ep::DATA_IN, Duration::from_secs(5));
        let during = threads();
        drop(server);
        drop(idle);
        drop(a);
        (during, threads())
    });
    // The bounded() worker thread itself has been joined too.
    let after = after - 1;
    assert!(during > before, "the server had threads: {during}");
    assert_eq!(after, before, "threads before {before}, after {after}");
}
