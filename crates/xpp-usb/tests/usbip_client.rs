//! End-to-end tests of `UsbIpTransport` against a small test-only USB/IP server on
//! 127.0.0.1 (ephemeral port), built on the same codec from the server's side.
//!
//! The served device is a loopback Astribank look-alike: interface 0 (bulk OUT 0x02, IN 0x86)
//! and interface 1 (OUT 0x04, IN 0x88); what is written on an OUT endpoint comes back on the
//! IN endpoint of the same interface, and IN URBs stay pending until data exists (as a real
//! device NAKs). Endpoint 0 answers GET_DESCRIPTOR and the FX2 `0xA0` RAM read/write, plus
//! test hooks: `0xED` stalls, `0xEC` is never answered, `0xEE` makes the server close the
//! socket at once. Every test body runs under a watchdog, so a hang fails instead of blocking.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use xpp_usb::usbip::codec::{
    BasicHeader, ExportedDevice, OpHeader, OpReply, OpRequest, RetSubmit, RetUnlink, URB_HEADER_LEN, Urb,
    UsbDevice, UsbInterface, op,
};
use xpp_usb::usbip::{UsbIpTransport, list_devices};
use xpp_usb::{ControlSetup, Direction, Error, Speed, TransferError, Transport, ep};

const BUSID: &str = "1-1";
const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- the test server

fn device_record() -> UsbDevice {
    UsbDevice {
        path: "/sys/devices/platform/xpp-test/usb1/1-1".into(),
        busid: BUSID.into(),
        busnum: 1,
        devnum: 2,
        speed: 3,
        id_vendor: 0xE4E4,
        id_product: 0x1162,
        bcd_device: 0x0101,
        device_class: 0xFF,
        device_subclass: 0,
        device_protocol: 0,
        configuration_value: 1,
        num_configurations: 1,
        num_interfaces: 2,
    }
}

const DEVICE_DESCRIPTOR: [u8; 18] =
    [18, 1, 0x00, 0x02, 0xFF, 0, 0, 64, 0xE4, 0xE4, 0x62, 0x11, 0x01, 0x01, 1, 2, 3, 1];

const CONFIG: &[u8] = &[
    0x09, 0x02, 0x37, 0x00, 0x02, 0x01, 0x00, 0x80, 0x32, //
    0x09, 0x04, 0x00, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00, //
    0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00, //
    0x07, 0x05, 0x86, 0x02, 0x00, 0x02, 0x00, //
    0x09, 0x04, 0x01, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00, //
    0x07, 0x05, 0x04, 0x02, 0x00, 0x02, 0x00, //
    0x07, 0x05, 0x88, 0x02, 0x00, 0x02, 0x00, //
];

fn string_descriptor(s: &str) -> Vec<u8> {
    let mut d = vec![0, 3];
    for u in s.encode_utf16() {
        d.extend(u.to_le_bytes());
    }
    d[0] = d.len() as u8;
    d
}

/// Serves `connections` connections one after another, then returns.
fn spawn_server(connections: usize) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = thread::spawn(move || {
        for _ in 0..connections {
            let Ok((s, _)) = listener.accept() else { return };
            serve(s);
        }
    });
    (addr, h)
}

fn serve(mut s: TcpStream) {
    s.set_nodelay(true).unwrap();
    let mut head = [0u8; 8];
    if s.read_exact(&mut head).is_err() {
        return;
    }
    let h = OpHeader::parse(&head).unwrap();
    let mut out = Vec::new();
    match h.code {
        op::REQ_DEVLIST => {
            let d = ExportedDevice {
                device: device_record(),
                interfaces: vec![UsbInterface { class: 0xFF, subclass: 0, protocol: 0 }; 2],
            };
            OpReply::DevList { status: 0, devices: vec![d] }.emit(&mut out).unwrap();
            s.write_all(&out).unwrap();
        }
        op::REQ_IMPORT => {
            let mut busid = [0u8; 32];
            s.read_exact(&mut busid).unwrap();
            let mut req = head.to_vec();
            req.extend(busid);
            let (OpRequest::Import { busid }, _) = OpRequest::parse(&req).unwrap() else { panic!() };
            if busid != BUSID {
                OpReply::Import { status: 1, device: None }.emit(&mut out).unwrap();
                s.write_all(&out).unwrap();
                return;
            }
            OpReply::Import { status: 0, device: Some(device_record()) }.emit(&mut out).unwrap();
            s.write_all(&out).unwrap();
            urb_loop(s);
        }
        _ => {}
    }
}

fn ret_submit(
    s: &mut TcpStream,
    seqnum: u32,
    status: i32,
    actual: usize,
    data: &[u8],
) -> std::io::Result<()> {
    let mut out = Vec::new();
    Urb::RetSubmit(RetSubmit {
        header: BasicHeader { seqnum, ..Default::default() },
        status,
        actual_length: actual as u32,
        start_frame: 0,
        number_of_packets: 0xFFFF_FFFF,
        error_count: 0,
    })
    .emit(&mut out);
    out.extend_from_slice(data);
    s.write_all(&out)
}

/// Loopback queues of one interface: IN URBs waiting, data waiting.
#[derive(Default)]
struct Pipe {
    urbs: VecDeque<(u32, usize)>,
    data: VecDeque<Vec<u8>>,
}

fn urb_loop(mut s: TcpStream) {
    let mut pipes = [Pipe::default(), Pipe::default()]; // IN ep 6 (iface 0), IN ep 8 (iface 1)
    let mut ram = vec![0u8; 0x10000];
    let mut silent_controls: Vec<u32> = Vec::new();
    let mut header = [0u8; URB_HEADER_LEN];
    loop {
        if s.read_exact(&mut header).is_err() {
            return;
        }
        let urb = Urb::parse(&header).unwrap();
        let mut payload = vec![0u8; urb.payload_len(Direction::Out)];
        if s.read_exact(&mut payload).is_err() {
            return;
        }
        let r = match urb {
            Urb::CmdSubmit(c) if c.header.ep == 0 => {
                let (setup, wlength) = ControlSetup::from_bytes(c.setup);
                let wlength = usize::from(wlength);
                match (setup.request_type, setup.request) {
                    (0x80, 0x06) => {
                        let d: Vec<u8> = match (setup.value >> 8, setup.value & 0xFF) {
                            (1, _) => DEVICE_DESCRIPTOR.to_vec(),
                            (2, _) => CONFIG.to_vec(),
                            (3, 0) => vec![4, 3, 0x09, 0x04],
                            (3, 1) => string_descriptor("Xorcom LTD"),
                            (3, 2) => string_descriptor("Astribank"),
                            (3, 3) => string_descriptor("00000123"),
                            _ => Vec::new(),
                        };
                        if d.is_empty() {
                            ret_submit(&mut s, c.header.seqnum, -32, 0, &[])
                        } else {
                            let n = d.len().min(wlength);
                            ret_submit(&mut s, c.header.seqnum, 0, n, &d[..n])
                        }
                    }
                    (0x00, 0x09) => ret_submit(&mut s, c.header.seqnum, 0, 0, &[]),
                    (0x40, 0xA0) => {
                        let at = usize::from(setup.value);
                        let n = payload.len().min(ram.len() - at);
                        ram[at..at + n].copy_from_slice(&payload[..n]);
                        ret_submit(&mut s, c.header.seqnum, 0, n, &[])
                    }
                    (0xC0, 0xA0) => {
                        let at = usize::from(setup.value);
                        let n = wlength.min(ram.len() - at);
                        let d = ram[at..at + n].to_vec();
                        ret_submit(&mut s, c.header.seqnum, 0, n, &d)
                    }
                    (0x40, 0xED) => ret_submit(&mut s, c.header.seqnum, -32, 0, &[]),
                    (0x40, 0xEC) => {
                        silent_controls.push(c.header.seqnum);
                        Ok(())
                    }
                    (0x40, 0xEE) => return,
                    _ => ret_submit(&mut s, c.header.seqnum, -32, 0, &[]),
                }
            }
            Urb::CmdSubmit(c) => {
                let pipe = match c.header.ep {
                    2 | 6 => 0,
                    4 | 8 => 1,
                    _ => {
                        ret_submit(&mut s, c.header.seqnum, -22, 0, &[]).ok();
                        continue;
                    }
                };
                let r = if c.header.direction == 0 {
                    let n = payload.len();
                    pipes[pipe].data.push_back(payload);
                    ret_submit(&mut s, c.header.seqnum, 0, n, &[])
                } else {
                    pipes[pipe].urbs.push_back((c.header.seqnum, c.transfer_buffer_length as usize));
                    Ok(())
                };
                // Complete IN URBs for which data exists.
                let p = &mut pipes[pipe];
                let mut r2 = Ok(());
                while !p.urbs.is_empty() && !p.data.is_empty() {
                    let (seq, len) = p.urbs.pop_front().unwrap();
                    let d = p.data.pop_front().unwrap();
                    let n = d.len().min(len);
                    r2 = r2.and(ret_submit(&mut s, seq, 0, n, &d[..n]));
                }
                r.and(r2)
            }
            Urb::CmdUnlink(u) => {
                let target = u.unlink_seqnum;
                let mut found = false;
                for p in &mut pipes {
                    if let Some(i) = p.urbs.iter().position(|&(seq, _)| seq == target) {
                        p.urbs.remove(i);
                        found = true;
                    }
                }
                if let Some(i) = silent_controls.iter().position(|&seq| seq == target) {
                    silent_controls.remove(i);
                    found = true;
                }
                let mut out = Vec::new();
                Urb::RetUnlink(RetUnlink {
                    header: BasicHeader { seqnum: u.header.seqnum, ..Default::default() },
                    status: if found { -104 } else { 0 },
                })
                .emit(&mut out);
                s.write_all(&out)
            }
            _ => return,
        };
        if r.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------- helpers

/// Runs `f` on its own thread and fails the test if it takes longer than `limit`.
fn watchdog<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test hung for {limit:?}"),
    }
}

fn connect() -> (UsbIpTransport, JoinHandle<()>) {
    let (addr, server) = spawn_server(1);
    (UsbIpTransport::connect(addr, BUSID).unwrap(), server)
}

const fn vendor(request_type: u8, request: u8, value: u16) -> ControlSetup {
    ControlSetup { request_type, request, value, index: 0 }
}

// ---------------------------------------------------------------- tests

#[test]
fn devlist_and_refused_import() {
    watchdog(Duration::from_secs(20), || {
        let (addr, server) = spawn_server(2);
        let list = list_devices(addr).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].device.busid, BUSID);
        assert_eq!((list[0].device.id_vendor, list[0].device.id_product), (0xE4E4, 0x1162));
        assert_eq!(list[0].interfaces.len(), 2);
        match UsbIpTransport::connect(addr, "9-9") {
            Err(Error::ImportRefused { busid, status: 1 }) => assert_eq!(busid, "9-9"),
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    });
}

#[test]
fn import_reads_descriptors_and_strings() {
    watchdog(Duration::from_secs(20), || {
        let (t, server) = connect();
        let info = t.info();
        assert_eq!((info.vendor_id, info.product_id, info.bcd_device), (0xE4E4, 0x1162, 0x0101));
        assert_eq!(info.speed, Speed::High);
        assert_eq!(info.manufacturer.as_deref(), Some("Xorcom LTD"));
        assert_eq!(info.product.as_deref(), Some("Astribank"));
        assert_eq!(info.serial.as_deref(), Some("00000123"));
        assert!(info.location.starts_with("usbip:127.0.0.1:"), "{}", info.location);
        for a in [ep::DATA_OUT, ep::DATA_IN, ep::MGMT_OUT, ep::MGMT_IN] {
            assert_eq!(info.endpoint(a).map(|e| e.max_packet_size), Some(512), "{a:#x}");
        }
        assert_eq!(t.exported().devid(), 0x0001_0002);
        drop(t);
        server.join().unwrap();
    });
}

#[test]
fn ten_in_transfers_queued_with_bulk_out_loopback() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        for _ in 0..10 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        assert_eq!(t.pending(ep::DATA_IN), 10);
        // Nothing arrives while no data was sent: the IN URBs stay queued.
        assert!(t.wait_next_complete(ep::DATA_IN, Duration::from_millis(50)).is_none());
        for i in 0..30u8 {
            t.submit(ep::DATA_OUT, vec![i; 1 + usize::from(i) * 10]).unwrap();
        }
        for i in 0..30u8 {
            let c = t.wait_next_complete(ep::DATA_OUT, T).unwrap();
            assert_eq!(
                (c.status, c.actual_len, c.buffer.len()),
                (Ok(()), 1 + usize::from(i) * 10, c.actual_len)
            );
        }
        for i in 0..30u8 {
            let c = t.wait_next_complete(ep::DATA_IN, T).unwrap();
            assert_eq!(c.status, Ok(()));
            assert_eq!(c.buffer, vec![i; 1 + usize::from(i) * 10]);
            // Recycle the buffer, keeping 10 queued.
            let mut b = c.buffer;
            b.resize(512, 0);
            t.submit(ep::DATA_IN, b).unwrap();
        }
        assert_eq!(t.pending(ep::DATA_IN), 10);
        t.cancel_all(ep::DATA_IN);
        for _ in 0..10 {
            assert_eq!(t.wait_next_complete(ep::DATA_IN, T).unwrap().status, Err(TransferError::Cancelled));
        }
        assert_eq!(t.pending(ep::DATA_IN), 0);
        drop(t);
        server.join().unwrap();
    });
}

#[test]
fn control_transfers_fx2_ram_stall_and_reset() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        let data: Vec<u8> = (1..=64).collect();
        assert_eq!(t.control_out(vendor(0x40, 0xA0, 0x1000), &data, T), Ok(64));
        let mut back = [0u8; 64];
        assert_eq!(t.control_in(vendor(0xC0, 0xA0, 0x1000), &mut back, T), Ok(64));
        assert_eq!(back.to_vec(), data);
        // CPUCS write, as the firmware loader does to start the FX2.
        assert_eq!(t.control_out(vendor(0x40, 0xA0, 0xE600), &[0], T), Ok(1));
        assert_eq!(t.control_out(vendor(0x40, 0xED, 0), &[], T), Err(TransferError::Stall));
        assert_eq!(t.control_out(vendor(0xC0, 0xA0, 0), &[], T), Err(TransferError::InvalidArgument));
        assert_eq!(t.control_in(vendor(0x40, 0xA0, 0), &mut back, T), Err(TransferError::InvalidArgument));
        assert_eq!(t.reset(), Ok(()));
        // Still usable after all that.
        assert_eq!(t.control_in(vendor(0xC0, 0xA0, 0x1000), &mut back[..4], T), Ok(4));
        drop(t);
        server.join().unwrap();
    });
}

#[test]
fn invalid_submits() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        assert_eq!(t.submit(0x81, vec![0; 512]), Err(TransferError::InvalidArgument));
        assert_eq!(t.submit(0x00, vec![0; 8]), Err(TransferError::InvalidArgument));
        assert_eq!(t.submit(ep::DATA_IN, Vec::new()), Err(TransferError::InvalidArgument));
        assert_eq!(t.pending(0x81), 0);
        assert!(t.wait_next_complete(0x81, Duration::ZERO).is_none());
        drop(t);
        server.join().unwrap();
    });
}

#[test]
fn cancel_unlinks_and_transport_stays_usable() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        for _ in 0..5 {
            t.submit(ep::MGMT_IN, vec![0; 512]).unwrap();
        }
        t.cancel_all(ep::MGMT_IN);
        t.cancel_all(ep::MGMT_IN); // twice: no second unlink, no harm
        for _ in 0..5 {
            assert_eq!(t.wait_next_complete(ep::MGMT_IN, T).unwrap().status, Err(TransferError::Cancelled));
        }
        // A blocking transfer that times out is unlinked and reported cancelled.
        let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], Duration::from_millis(30));
        assert_eq!(c.status, Err(TransferError::Cancelled));
        // A control request the device never answers times out as cancelled.
        let start = Instant::now();
        assert_eq!(
            t.control_out(vendor(0x40, 0xEC, 0), &[], Duration::from_millis(100)),
            Err(TransferError::Cancelled)
        );
        assert!(start.elapsed() < Duration::from_secs(2));
        // The management loopback still works.
        let c = t.transfer_blocking(ep::MGMT_OUT, vec![7, 0, 1, 0, 0x01, 0x14, 0], T);
        assert_eq!(c.status, Ok(()));
        let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], T);
        assert_eq!((c.status, c.buffer), (Ok(()), vec![7, 0, 1, 0, 0x01, 0x14, 0]));
        drop(t);
        server.join().unwrap();
    });
}

#[test]
fn server_closing_the_socket_disconnects_everything() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        for _ in 0..4 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        // The server closes instead of answering this one.
        assert_eq!(t.control_out(vendor(0x40, 0xEE, 0), &[], T), Err(TransferError::Disconnected));
        server.join().unwrap();
        for _ in 0..4 {
            let c = t.wait_next_complete(ep::DATA_IN, T).unwrap();
            assert_eq!(c.status, Err(TransferError::Disconnected));
        }
        assert_eq!(t.pending(ep::DATA_IN), 0);
        assert_eq!(t.submit(ep::DATA_OUT, vec![1]), Err(TransferError::Disconnected));
        assert_eq!(t.submit(ep::DATA_IN, vec![0; 512]), Err(TransferError::Disconnected));
        let mut b = [0u8; 8];
        assert_eq!(t.control_in(vendor(0xC0, 0xA0, 0), &mut b, T), Err(TransferError::Disconnected));
        assert_eq!(t.reset(), Err(TransferError::Disconnected));
        t.cancel_all(ep::DATA_IN);
        let start = Instant::now();
        assert!(t.wait_next_complete(ep::DATA_IN, T).is_none());
        assert!(start.elapsed() < Duration::from_millis(100), "nothing pending: no wait");
    });
}

#[test]
fn server_closing_while_idle_then_drop() {
    watchdog(Duration::from_secs(20), || {
        // A server that imports and closes at once.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 40];
            s.read_exact(&mut req).unwrap();
            let mut out = Vec::new();
            OpReply::Import { status: 0, device: Some(device_record()) }.emit(&mut out).unwrap();
            s.write_all(&out).unwrap();
        });
        // The descriptor reads fail: connecting is an error, not a hang or a panic.
        match UsbIpTransport::connect(addr, BUSID) {
            Err(Error::Transfer(TransferError::Disconnected)) => {}
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    });
}

#[test]
fn drop_with_pending_transfers_joins_the_reader() {
    watchdog(Duration::from_secs(20), || {
        let (mut t, server) = connect();
        for _ in 0..10 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        let start = Instant::now();
        drop(t);
        assert!(start.elapsed() < Duration::from_secs(1));
        // The server sees the connection end.
        server.join().unwrap();
    });
}

/// Round-trip latency of a bulk OUT + IN through USB/IP on loopback, 10 IN transfers kept
/// queued. Prints p50/p99 (run with `--nocapture`); asserts only a generous bound.
#[test]
fn round_trip_latency_on_loopback() {
    watchdog(Duration::from_secs(60), || {
        let (mut t, server) = connect();
        for _ in 0..10 {
            t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        }
        let mut out = vec![0x5A; 64];
        let mut samples = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let start = Instant::now();
            t.submit(ep::DATA_OUT, out).unwrap();
            let c = t.wait_next_complete(ep::DATA_IN, T).unwrap();
            samples.push(start.elapsed());
            assert_eq!(c.actual_len, 64);
            out = t.wait_next_complete(ep::DATA_OUT, T).unwrap().buffer;
            let mut b = c.buffer;
            b.resize(512, 0);
            t.submit(ep::DATA_IN, b).unwrap();
        }
        samples.sort();
        let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
        eprintln!(
            "usbip loopback OUT+IN round trip: p50 {:?}, p99 {:?}, max {:?} (10 IN queued, 2000 samples)",
            p(0.50),
            p(0.99),
            samples[samples.len() - 1]
        );
        assert!(p(0.50) < Duration::from_millis(50));
        drop(t);
        server.join().unwrap();
    });
}
