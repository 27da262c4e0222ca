//! The client against hostile servers on loopback: huge device lists, trickled bytes,
//! silence, a closed port, a refused bus id. Every bound is checked by counting or by the
//! error returned, never by timing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::client::{Operation, UsbIpTransport, list_devices_within};
use super::codec::{ExportedDevice, OpReply, OpRequest, UsbDevice, UsbInterface};
use crate::error::Error;

/// A short deadline, so the tests of the deadline stay short.
const SHORT: Duration = Duration::from_millis(300);

/// A server thread that accepts one connection and runs `serve` on it.
fn server(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        serve(s);
    });
    (addr, h)
}

fn record(i: usize, interfaces: u8) -> UsbDevice {
    UsbDevice {
        path: format!("/sys/devices/hostile/{i}"),
        busid: format!("{}-{}", i / 100 + 1, i % 100 + 1),
        busnum: 1,
        devnum: 2,
        speed: 3,
        id_vendor: 0xE4E4,
        id_product: 0x1162,
        num_interfaces: interfaces,
        ..UsbDevice::default()
    }
}

/// The largest device list the codec accepts: 1024 devices of 255 interfaces (1.3 MB).
fn max_list() -> Vec<u8> {
    let devices = (0..super::codec::MAX_DEVICES as usize)
        .map(|i| ExportedDevice {
            device: record(i, 255),
            interfaces: vec![UsbInterface { class: 0xFF, subclass: 0, protocol: 0 }; 255],
        })
        .collect();
    let mut out = Vec::new();
    OpReply::DevList { status: 0, devices }.emit(&mut out).unwrap();
    out
}

fn read_request(s: &mut std::net::TcpStream) -> OpRequest {
    let mut head = [0u8; 8];
    s.read_exact(&mut head).unwrap();
    if head[3] == 0x03 {
        let mut busid = [0u8; 32];
        s.read_exact(&mut busid).unwrap();
        return OpRequest::parse(&[&head[..], &busid[..]].concat()).unwrap().0;
    }
    OpRequest::parse(&head).unwrap().0
}

#[test]
fn a_maximum_size_device_list_is_parsed_in_linear_work() {
    let reply = max_list();
    let len = reply.len();
    let (addr, h) = server(move |mut s| {
        assert_eq!(read_request(&mut s), OpRequest::DevList);
        // In small pieces, as a slow network would deliver them.
        for chunk in reply.chunks(1000) {
            if s.write_all(chunk).is_err() {
                return;
            }
        }
    });
    let mut op = Operation::connect(addr, "device list", Duration::from_secs(30)).unwrap();
    let mut req = Vec::new();
    OpRequest::DevList.emit(&mut req).unwrap();
    op.stream.write_all(&req).unwrap();
    match op.read_op_reply().unwrap() {
        OpReply::DevList { status: 0, devices } => {
            assert_eq!(devices.len(), 1024);
            assert!(devices.iter().all(|d| d.interfaces.len() == 255));
        }
        other => panic!("{other:?}"),
    }
    // Each byte is parsed at most twice (its piece, then the whole message once); the old
    // reader re-parsed the whole buffer after every 4-byte read: about 340,000 parses of
    // up to 1.3 MB.
    assert!(op.parsed <= 2 * len, "{} bytes parsed for a {len}-byte reply", op.parsed);
    h.join().unwrap();
}

#[test]
fn an_oversized_device_count_is_refused_without_reading_on() {
    let (addr, h) = server(|mut s| {
        read_request(&mut s);
        let mut out = vec![0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0];
        out.extend_from_slice(&u32::MAX.to_be_bytes());
        let _ = s.write_all(&out);
        // Then nothing more: the client must not wait for 4 billion records.
        let _ = s.read(&mut [0u8; 1]);
    });
    match list_devices_within(addr, Duration::from_secs(30)) {
        Err(Error::Protocol(e)) => assert!(e.to_string().contains("devlist count"), "{e}"),
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}

/// Sends `bytes` one at a time, `gap` apart, until the client goes away.
fn trickle(mut s: std::net::TcpStream, bytes: &[u8], gap: Duration) {
    for b in bytes {
        if s.write_all(&[*b]).is_err() {
            return;
        }
        thread::sleep(gap);
    }
}

#[test]
fn a_trickling_server_hits_the_device_list_deadline() {
    let mut reply = Vec::new();
    OpReply::DevList {
        status: 0,
        devices: vec![ExportedDevice { device: record(0, 1), interfaces: vec![UsbInterface::default()] }],
    }
    .emit(&mut reply)
    .unwrap();
    // 324 bytes, one every 20 ms: 6.5 s, far past the deadline; each read gets a byte well
    // within any per-read timeout, so only an overall deadline ends it.
    let (addr, h) = server(move |mut s| {
        read_request(&mut s);
        trickle(s, &reply, Duration::from_millis(20));
    });
    match list_devices_within(addr, SHORT) {
        Err(Error::TimedOut { what, after, .. }) => {
            assert_eq!(what, "device list");
            assert_eq!(after, SHORT);
        }
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}

#[test]
fn a_trickling_server_hits_the_import_deadline() {
    let mut reply = Vec::new();
    OpReply::Import { status: 0, device: Some(record(0, 2)) }.emit(&mut reply).unwrap();
    let (addr, h) = server(move |mut s| {
        read_request(&mut s);
        trickle(s, &reply, Duration::from_millis(20));
    });
    match UsbIpTransport::connect_within(addr, "1-1", SHORT) {
        Err(e @ Error::TimedOut { .. }) => {
            assert!(e.to_string().contains("import of 1-1 timed out after 300ms"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}

#[test]
fn a_silent_server_after_the_import_reply_hits_the_deadline() {
    // The import is answered, then no descriptor request ever is.
    let (addr, h) = server(|mut s| {
        read_request(&mut s);
        let mut out = Vec::new();
        OpReply::Import { status: 0, device: Some(record(0, 2)) }.emit(&mut out).unwrap();
        s.write_all(&out).unwrap();
        let mut sink = [0u8; 512];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    });
    match UsbIpTransport::connect_within(addr, "1-1", SHORT) {
        Err(Error::TimedOut { what, .. }) => assert_eq!(what, "import of 1-1"),
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}

#[test]
fn a_closed_port_is_refused_at_once() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for r in [
        list_devices_within(addr, SHORT).map(drop),
        UsbIpTransport::connect_within(addr, "1-1", SHORT).map(drop),
    ] {
        match r {
            Err(e @ Error::Refused { .. }) => {
                assert_eq!(e.to_string(), format!("USB/IP server {addr}: connection refused"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_unknown_bus_id_is_not_exported() {
    let (addr, h) = server(|mut s| {
        assert_eq!(read_request(&mut s), OpRequest::Import { busid: "1-9".into() });
        let mut out = Vec::new();
        OpReply::Import { status: 4, device: None }.emit(&mut out).unwrap();
        s.write_all(&out).unwrap();
    });
    match UsbIpTransport::connect_within(addr, "1-9", SHORT) {
        Err(e @ Error::ImportRefused { status: 4, .. }) => {
            assert!(e.to_string().contains("bus id 1-9 is not exported"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}
