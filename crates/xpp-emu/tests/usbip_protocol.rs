//! The server at the byte level, as `vhci_hcd` drives it: a raw TCP client writes URB
//! headers and checks each reply's fields (seqnum, zeroed devid/direction/ep, status,
//! actual_length, data, number_of_packets echo); UNLINK of one URB among several; refusals
//! that keep the stream in sync; hostile input that ends one connection and nothing else.

mod usbip_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use usbip_common::{bounded, serve};
use xpp_emu::DeviceConfig;
use xpp_emu::config::Stage;
use xpp_emu::usbip_server::UsbIpServer;
use xpp_proto::mgmt::{Reply, Request};
use xpp_usb::usbip::codec::{
    BasicHeader, CmdSubmit, CmdUnlink, NOT_ISO, OpReply, OpRequest, RetSubmit, RetUnlink, URB_HEADER_LEN,
    Urb, UsbDevice, dir,
};

const LIMIT: Duration = Duration::from_secs(30);

fn running() -> DeviceConfig {
    DeviceConfig::default().with_start_stage(Stage::Running)
}

/// A raw imported connection.
struct Raw {
    s: TcpStream,
    devid: u32,
}

impl Raw {
    fn import(addr: SocketAddr, busid: &str) -> (Self, UsbDevice) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        OpRequest::Import { busid: busid.into() }.emit(&mut out).unwrap();
        s.write_all(&out).unwrap();
        let mut reply = vec![0u8; 8 + 312];
        s.read_exact(&mut reply).unwrap();
        let (OpReply::Import { status: 0, device: Some(d) }, 320) = OpReply::parse(&reply).unwrap() else {
            panic!("import refused");
        };
        (Self { s, devid: d.devid() }, d)
    }

    #[expect(clippy::too_many_arguments, reason = "one argument per CMD_SUBMIT field the tests vary")]
    fn submit(
        &mut self,
        seqnum: u32,
        ep: u32,
        direction: u32,
        len: usize,
        setup: [u8; 8],
        data: &[u8],
        np: u32,
    ) {
        let mut out = Vec::new();
        Urb::CmdSubmit(CmdSubmit {
            header: BasicHeader { seqnum, devid: self.devid, direction, ep },
            transfer_flags: 0,
            transfer_buffer_length: len as u32,
            start_frame: 0,
            number_of_packets: np,
            interval: 0,
            setup,
        })
        .emit(&mut out);
        out.extend_from_slice(data);
        self.s.write_all(&out).unwrap();
    }

    fn unlink(&mut self, seqnum: u32, target: u32) {
        let mut out = Vec::new();
        Urb::CmdUnlink(CmdUnlink {
            header: BasicHeader { seqnum, devid: self.devid, direction: 0, ep: 0 },
            unlink_seqnum: target,
        })
        .emit(&mut out);
        self.s.write_all(&out).unwrap();
    }

    /// The next reply; `in_data` says whether the submit it answers was IN.
    fn reply(&mut self, in_data: impl Fn(u32) -> bool) -> (Urb, Vec<u8>) {
        let mut h = [0u8; URB_HEADER_LEN];
        self.s.read_exact(&mut h).unwrap();
        let urb = Urb::parse(&h).unwrap();
        assert_eq!(
            (urb.header().devid, urb.header().direction, urb.header().ep),
            (0, 0, 0),
            "server replies zero devid, direction and ep"
        );
        let n = match urb {
            Urb::RetSubmit(r) if in_data(r.header.seqnum) => r.actual_length as usize,
            _ => 0,
        };
        let mut data = vec![0u8; n];
        self.s.read_exact(&mut data).unwrap();
        (urb, data)
    }

    fn ret_submit(&mut self, in_data: impl Fn(u32) -> bool) -> (RetSubmit, Vec<u8>) {
        match self.reply(in_data) {
            (Urb::RetSubmit(r), d) => (r, d),
            other => panic!("expected RET_SUBMIT, got {other:?}"),
        }
    }

    fn ret_unlink(&mut self) -> RetUnlink {
        match self.reply(|_| false) {
            (Urb::RetUnlink(r), _) => r,
            other => panic!("expected RET_UNLINK, got {other:?}"),
        }
    }
}

fn status_get(seq: u16) -> Vec<u8> {
    let mut b = [0u8; 5];
    Request::StatusGet.emit(seq, &mut b).unwrap();
    b.to_vec()
}

#[test]
fn submit_unlink_and_control_on_the_wire() {
    bounded(LIMIT, || {
        let server = serve(running());
        let (mut c, dev) = Raw::import(server.local_addr(), "1-1");
        assert_eq!((dev.busnum, dev.id_product), (1, 0x1162));
        // Two IN URBs on 0x88 (vhci_hcd sends number_of_packets 0 for non-ISO), unlink the first.
        c.submit(1, 8, dir::IN, 512, [0; 8], &[], 0);
        c.submit(2, 8, dir::IN, 512, [0; 8], &[], 0);
        c.unlink(3, 1);
        let u = c.ret_unlink();
        assert_eq!((u.header.seqnum, u.status), (3, -104), "unlinked: -ECONNRESET");
        // A STATUS_GET (protocol document's NOT_ISO marker this time): the OUT returns first.
        c.submit(4, 4, dir::OUT, 5, [0; 8], &status_get(0x42), NOT_ISO);
        let (r, d) = c.ret_submit(|s| s == 2);
        assert_eq!((r.header.seqnum, r.status, r.actual_length, r.number_of_packets), (4, 0, 5, NOT_ISO));
        assert!(d.is_empty());
        // Seq 2 (not the unlinked 1) gets the reply.
        let (r, d) = c.ret_submit(|s| s == 2);
        assert_eq!((r.header.seqnum, r.status, r.number_of_packets), (2, 0, 0));
        assert_eq!(r.actual_length as usize, d.len());
        let (seq, reply) = Reply::parse(&d).unwrap();
        assert_eq!(seq, 0x42);
        assert!(matches!(reply, Reply::StatusGetReply(_)));
        // Unlinking what has completed: status 0.
        c.unlink(5, 2);
        assert_eq!(c.ret_unlink().status, 0);
        // GET_DESCRIPTOR(device) on EP0 with wLength 64: the 18-byte descriptor.
        c.submit(6, 0, dir::IN, 64, [0x80, 6, 0, 1, 0, 0, 64, 0], &[], 0);
        let (r, d) = c.ret_submit(|_| true);
        assert_eq!((r.header.seqnum, r.status, r.actual_length), (6, 0, 18));
        assert_eq!(&d[..2], &[18, 1]);
        assert_eq!(&d[8..12], &[0xE4, 0xE4, 0x62, 0x11]);
        // String descriptor 3: the serial, UTF-16LE.
        c.submit(7, 0, dir::IN, 255, [0x80, 6, 3, 3, 0x09, 0x04, 255, 0], &[], 0);
        let (r, d) = c.ret_submit(|_| true);
        assert_eq!((r.status, d.len(), d[1], d[2]), (0, 18, 3, b'0'));
        // An unknown vendor request stalls: -EPIPE.
        c.submit(8, 0, dir::OUT, 0, [0x40, 0x55, 0, 0, 0, 0, 0, 0], &[], 0);
        assert_eq!(c.ret_submit(|_| false).0.status, -32);
        // Port reset as usbip-host receives it (USB_RT_PORT SET_FEATURE(PORT_RESET)).
        c.submit(9, 0, dir::OUT, 0, [0x23, 3, 4, 0, 1, 0, 0, 0], &[], 0);
        assert_eq!(c.ret_submit(|_| false).0.status, 0);
        // Refusals that keep the stream in sync: ISO, an oversize OUT (its bytes are skipped),
        // an endpoint number over 15, a direction that contradicts the SETUP packet.
        c.submit(10, 2, dir::OUT, 4, [0; 8], &[0; 4 + 16], 1);
        let (r, _) = c.ret_submit(|_| false);
        assert_eq!((r.header.seqnum, r.status, r.number_of_packets), (10, -22, 0));
        let big = vec![0xAA; 100_000];
        c.submit(11, 2, dir::OUT, big.len(), [0; 8], &big, 0);
        assert_eq!(c.ret_submit(|_| false).0.status, -22);
        c.submit(12, 16, dir::IN, 512, [0; 8], &[], 0);
        assert_eq!(c.ret_submit(|_| true).0.status, -22);
        c.submit(13, 0, dir::OUT, 18, [0x80, 6, 0, 1, 0, 0, 18, 0], &[0; 18], 0);
        assert_eq!(c.ret_submit(|_| false).0.status, -22);
        // A short IN buffer for a longer device transfer: overflow (USB-13), -EPROTO.
        c.submit(14, 8, dir::IN, 4, [0; 8], &[], 0);
        c.submit(15, 4, dir::OUT, 5, [0; 8], &status_get(1), 0);
        let mut statuses = [(0, 0); 2];
        for s in &mut statuses {
            let (r, _) = c.ret_submit(|s| s == 14);
            *s = (r.header.seqnum, r.status);
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [(14, -71), (15, 0)]);
        // Still in sync.
        c.submit(16, 0, dir::IN, 1, [0x80, 8, 0, 0, 0, 0, 1, 0], &[], 0);
        let (r, d) = c.ret_submit(|_| true);
        assert_eq!((r.header.seqnum, r.status, d), (16, 0, vec![1]));
        // A 1 MiB IN read is served (the server's buffer is capped; the device sends 25 bytes).
        c.submit(17, 8, dir::IN, 1 << 20, [0; 8], &[], 0);
        c.submit(18, 4, dir::OUT, 5, [0; 8], &status_get(2), 0);
        assert_eq!(c.ret_submit(|_| false).0.header.seqnum, 18);
        let (r, d) = c.ret_submit(|s| s == 17);
        assert_eq!((r.header.seqnum, r.status, d.len()), (17, 0, 25));
    });
}

/// The server still lists its device after `bytes` were sent on a fresh connection.
fn survives(server: &UsbIpServer, bytes: &[u8], import_first: bool) {
    let addr = server.local_addr();
    let mut s = if import_first { Raw::import(addr, "1-1").0.s } else { TcpStream::connect(addr).unwrap() };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Read whatever the server says until it closes.
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    drop(s);
    assert_eq!(xpp_usb::usbip::list_devices(addr).unwrap().len(), 1, "after {bytes:02x?}");
}

#[test]
fn hostile_input_ends_one_connection_and_nothing_else() {
    bounded(LIMIT, || {
        let server = serve(running());
        // Before import: nothing, a short header, a bad version, a reply code, an unknown
        // op, an import with an unterminated bus id.
        survives(&server, &[], false);
        survives(&server, &[0x01, 0x11, 0x80], false);
        survives(&server, &[0x01, 0x06, 0x80, 0x05, 0, 0, 0, 0], false);
        survives(&server, &[0x01, 0x11, 0x00, 0x05, 0, 0, 0, 0], false);
        survives(&server, &[0x01, 0x11, 0x80, 0x07, 0, 0, 0, 0], false);
        let mut unterminated = vec![0x01, 0x11, 0x80, 0x03, 0, 0, 0, 0];
        unterminated.extend([b'1'; 32]);
        survives(&server, &unterminated, false);
        // After import: an unknown command, a RET_SUBMIT from the client, a bad direction,
        // a huge length, a truncated header, a truncated OUT payload.
        let mut h = vec![0u8; URB_HEADER_LEN];
        h[3] = 9;
        survives(&server, &h, true);
        let mut ret = Vec::new();
        Urb::RetSubmit(RetSubmit::default()).emit(&mut ret);
        survives(&server, &ret, true);
        let mut bad_dir = Vec::new();
        Urb::CmdSubmit(CmdSubmit {
            header: BasicHeader { direction: 7, ..Default::default() },
            ..Default::default()
        })
        .emit(&mut bad_dir);
        survives(&server, &bad_dir, true);
        let mut huge = Vec::new();
        Urb::CmdSubmit(CmdSubmit { transfer_buffer_length: u32::MAX, ..Default::default() }).emit(&mut huge);
        survives(&server, &huge, true);
        survives(&server, &[0, 0, 0, 1, 0, 0], true);
        let mut short = Vec::new();
        Urb::CmdSubmit(CmdSubmit {
            header: BasicHeader { seqnum: 1, ep: 4, ..Default::default() },
            transfer_buffer_length: 100,
            ..Default::default()
        })
        .emit(&mut short);
        short.extend([0; 10]);
        survives(&server, &short, true);
        assert_eq!(server.imported_ports(), Vec::<u8>::new());
    });
}

/// Waits until the server counts `n` connections.
fn wait_connections(server: &UsbIpServer, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.connections() != n {
        assert!(std::time::Instant::now() < deadline, "{} connections, want {n}", server.connections());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True once the server has closed `s` (end of stream or reset).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn idle_connections_never_keep_a_client_out() {
    use xpp_emu::usbip_server::MAX_CONNECTIONS;
    bounded(LIMIT, || {
        let server = serve(running());
        let addr = server.local_addr();
        let mut idle: Vec<TcpStream> =
            (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        wait_connections(&server, MAX_CONNECTIONS);
        // A well-formed client still gets its list and its import: the oldest idle
        // connection makes room (it was turned away before).
        assert_eq!(xpp_usb::usbip::list_devices(addr).unwrap().len(), 1);
        let t = xpp_usb::UsbIpTransport::connect(addr, "1-1").unwrap();
        assert!(closed(&mut idle[0]), "the oldest idle connection is closed");
        assert!(closed(&mut idle[1]), "and the next one, for the second client");
        // The imported connection is never evicted: another flood leaves it alone.
        let flood: Vec<TcpStream> =
            (0..MAX_CONNECTIONS * 4).map(|_| TcpStream::connect(addr).unwrap()).collect();
        wait_connections(&server, MAX_CONNECTIONS + 1);
        assert_eq!(server.imported_ports(), vec![0]);
        assert_eq!(xpp_usb::usbip::list_devices(addr).unwrap()[0].device.busid, "1-1");
        drop((flood, idle, t));
        wait_connections(&server, 0);
    });
}

#[test]
fn a_request_trickled_a_byte_at_a_time_is_cut_off() {
    bounded(LIMIT, || {
        let server = serve(running());
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        let mut req = Vec::new();
        OpRequest::Import { busid: "1-1".into() }.emit(&mut req).unwrap();
        // One byte every 250 ms: 10 s for the 40 bytes, each read well inside any per-read
        // timeout; the request's deadline (2 s) closes the connection long before the end.
        let mut sent = 0;
        for b in &req {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(250));
            s.set_nonblocking(true).unwrap();
            let gone = matches!(s.read(&mut [0u8; 1]), Ok(0));
            s.set_nonblocking(false).unwrap();
            if gone {
                break;
            }
        }
        assert!(sent < req.len(), "the whole request went through ({sent} bytes)");
        assert!(server.imported_ports().is_empty());
    });
}

#[test]
fn an_urb_trickled_after_an_import_is_cut_off() {
    bounded(LIMIT, || {
        let server = serve(running());
        let (mut raw, _) = Raw::import(server.local_addr(), "1-1");
        assert_eq!(server.imported_ports(), vec![0]);
        let mut out = Vec::new();
        Urb::CmdUnlink(CmdUnlink {
            header: BasicHeader { seqnum: 1, devid: raw.devid, direction: 0, ep: 0 },
            unlink_seqnum: 9,
        })
        .emit(&mut out);
        // 48 bytes at one every 250 ms: 12 s; the message deadline (5 s) ends the session.
        let mut sent = 0;
        for b in &out {
            if raw.s.write_all(&[*b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(250));
            if server.imported_ports().is_empty() {
                break;
            }
        }
        assert!(sent < out.len(), "the whole message went through ({sent} bytes)");
        assert!(closed(&mut raw.s));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Arbitrary bytes after an import never take the server down.
    #[test]
    fn arbitrary_urb_bytes_never_break_the_server(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let server = serve(running());
        bounded(LIMIT, move || survives(&server, &bytes, true));
    }
}
