//! Helpers shared by the USB/IP tests and the transport suite: time bounds, a blocking MPP
//! exchange over any transport, loopback servers.
#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use xpp_emu::DeviceConfig;
use xpp_emu::usbip_server::UsbIpServer;
use xpp_proto::mgmt::{OwnedReply, Reply, Request};
use xpp_usb::usbip::codec::ExportedDevice;
use xpp_usb::{Completion, TransferError, Transport, ep};

/// Every wait of one transfer.
pub const T: Duration = Duration::from_secs(2);

/// 127.0.0.1 with an ephemeral port.
pub const LOOPBACK_ANY: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

/// Runs `f` on its own thread and fails the test if it takes longer than `limit` (the
/// thread is left behind then, but the test fails instead of hanging).
pub fn bounded<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => {
            let _ = h.join();
            r
        }
        // The closure panicked: re-raise its panic.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("sender dropped without a result"),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("test exceeded its {limit:?} bound"),
    }
}

/// A real-time emulator of `cfg` served on 127.0.0.1 (ephemeral port).
pub fn serve(cfg: DeviceConfig) -> UsbIpServer {
    UsbIpServer::serve(cfg, LOOPBACK_ANY).expect("bind 127.0.0.1")
}

/// Sends `req` on the MPP OUT endpoint and waits for the reply on MPP IN.
pub fn mpp(t: &mut dyn Transport, seq: u16, req: Request<'_>) -> Result<OwnedReply, TransferError> {
    let mut buf = [0u8; 512];
    let n = req.emit(seq, &mut buf).expect("request encodes");
    let c = t.transfer_blocking(ep::MGMT_OUT, buf[..n].to_vec(), T);
    c.status?;
    assert_eq!(c.actual_len, n);
    let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], T);
    c.status?;
    let (rseq, reply) = Reply::parse(&c.buffer).expect("reply parses");
    assert_eq!(rseq, seq, "seq echoed");
    Ok(OwnedReply::try_from(reply).expect("owned reply"))
}

/// Waits (up to `T`) for the next completion on `endpoint`.
pub fn next(t: &mut dyn Transport, endpoint: u8) -> Completion {
    t.wait_next_complete(endpoint, T)
        .unwrap_or_else(|| panic!("no completion on {endpoint:#04x} within {T:?}"))
}

/// Polls the server's device list until `pred` holds (up to 10 s).
pub fn wait_for_list(
    addr: SocketAddr,
    mut pred: impl FnMut(&[ExportedDevice]) -> bool,
) -> Vec<ExportedDevice> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = xpp_usb::usbip::list_devices(addr).expect("device list");
        if pred(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "device list never matched; last: {list:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
