//! PcapSink and PcapSession: one capture holding several devices in turn (a cold bring-up's
//! re-enumerations), recorded and replayed device after device.

mod middleware_support;

use std::io::{self, Write};
use std::time::Duration;

use middleware_support::{Loopback, MPP_TWS_PORT_SET, XPP_REG_WRITE, decode_capture, test_clock};
use xpp_usb::middleware::usbmon::{EventType, XferType};
use xpp_usb::middleware::{OutCheck, PcapReader, PcapReplay, PcapSession, PcapSink};
use xpp_usb::{ControlSetup, TransferError, Transport, ep};

const T: Duration = Duration::from_millis(10);
const CPUCS: ControlSetup = ControlSetup { request_type: 0x40, request: 0xA0, value: 0xE600, index: 0 };

/// A "cold" device: control endpoint only, E4E4:1160.
fn cold() -> Loopback {
    let mut l = Loopback::new();
    l.info.product_id = 0x1160;
    l.info.interfaces.clear();
    l
}

/// The first device's session: the FX2 download (CPUCS <- 1, a write, CPUCS <- 0).
fn fx2_session<X: Transport>(t: &mut X) -> Vec<String> {
    let write = ControlSetup { value: 0x0000, ..CPUCS };
    [(CPUCS, &[1u8][..]), (write, &[0x02, 0x00, 0x06][..]), (CPUCS, &[0u8][..])]
        .into_iter()
        .map(|(s, d)| format!("{:?}", t.control_out(s, d, T)))
        .collect()
}

/// The second device's session: one XPP and one MPP round trip, then an IN read left pending
/// (the device leaves).
fn running_session<X: Transport>(t: &mut X) -> Vec<String> {
    let mut seen = Vec::new();
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 64]).unwrap();
    t.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    t.submit(ep::MGMT_OUT, MPP_TWS_PORT_SET.to_vec()).unwrap();
    for e in [ep::DATA_OUT, ep::MGMT_OUT, ep::DATA_IN, ep::MGMT_IN] {
        let c = t.wait_next_complete(e, T).unwrap();
        seen.push(format!("{e:#04x} {:?} {:02x?}", c.status, &c.buffer[..c.actual_len]));
    }
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    seen
}

/// Records both devices into one sink, as a bring-up would (the first dropped before the
/// second is opened).
fn recorded() -> (Vec<u8>, Vec<String>, Vec<String>) {
    let sink = PcapSink::with_clock(Vec::new(), test_clock()).unwrap();
    let mut devices = vec![Loopback::new(), cold()];
    let mut open = sink.opener(move || devices.pop());
    let mut first = open().unwrap();
    let a = fx2_session(&mut first);
    assert_eq!(first.address(), (1, 2));
    drop(first);
    let mut second = open().unwrap();
    let b = running_session(&mut second);
    assert_eq!(second.address(), (1, 3));
    assert!(open().is_none());
    drop((second, open));
    (sink.finish().unwrap(), a, b)
}

#[test]
fn one_file_two_devices() {
    let (bytes, _, _) = recorded();
    let recs: Vec<_> = PcapReader::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    // Each device: 2 GET_DESCRIPTOR (S + C each) first. Device 2: 3 control writes (S + C).
    // Device 3: 4 descriptor records, 4 submits + 4 completions, 1 pending IN submit.
    assert_eq!(recs.len(), (4 + 6) + (4 + 9));
    let dev = |r: &xpp_usb::middleware::Record<'_>| (r.header.busnum, r.header.devnum);
    assert!(recs[..10].iter().all(|r| dev(r) == (1, 2)));
    assert!(recs[10..].iter().all(|r| dev(r) == (1, 3)));
    for first in [0, 10] {
        let r = &recs[first];
        assert_eq!((r.header.event, r.header.xfer_type), (EventType::Submit, XferType::Control));
        assert_eq!(r.header.setup_packet().map(|s| (s[0], s[1], s[3])), Some((0x80, 6, 1)));
    }
    // The descriptors say what each device is.
    assert_eq!(&recs[1].data[8..12], &[0xE4, 0xE4, 0x60, 0x11]);
    assert_eq!(&recs[11].data[8..12], &[0xE4, 0xE4, 0x62, 0x11]);
    // Timestamps never go back; a submit and its completion share an id, ids are unique.
    assert!(recs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let mut submits: Vec<u64> =
        recs.iter().filter(|r| r.header.event == EventType::Submit).map(|r| r.header.id).collect();
    let n = submits.len();
    submits.sort_unstable();
    submits.dedup();
    assert_eq!(submits.len(), n);
    assert_eq!(PcapReplay::devices(&bytes).unwrap(), [(1, 2), (1, 3)]);
    assert_eq!(decode_capture(&bytes), Ok(4 + 3));
}

#[test]
fn session_replays_each_device_in_turn() {
    let (bytes, live_a, live_b) = recorded();
    let mut session = PcapSession::from_bytes(&bytes).unwrap().with_out_check(OutCheck::Verify);
    assert_eq!(session.devices(), [(1, 2), (1, 3)]);
    let mut a = session.open().unwrap();
    assert_eq!((a.info().vendor_id, a.info().product_id), (0xE4E4, 0x1160));
    assert!(a.info().interfaces.is_empty());
    // The next device appears only once this one has left.
    assert!(session.open().is_none());
    assert_eq!(fx2_session(&mut a), live_a);
    assert!(a.is_disconnected());
    assert_eq!(a.control_out(CPUCS, &[1], T), Err(TransferError::Disconnected));
    let mut b = session.open().unwrap();
    assert_eq!(b.address(), Some((1, 3)));
    assert_eq!((b.info().product_id, b.info().interfaces.len()), (0x1162, 2));
    assert_eq!(b.info().endpoint(ep::MGMT_IN).map(|e| e.max_packet_size), Some(512));
    assert_eq!(running_session(&mut b), live_b);
    // The read the device never answered: the capture's disconnect point.
    let c = b.wait_next_complete(ep::DATA_IN, T).unwrap();
    assert_eq!(c.status, Err(TransferError::Disconnected));
    assert_eq!(b.stats().out_mismatches, 0);
    drop(b);
    assert!(session.open().is_none());
    assert_eq!(session.remaining_devices(), 0);
}

#[test]
fn dropping_a_device_hands_out_the_next() {
    let (bytes, _, _) = recorded();
    let mut open = PcapSession::from_bytes(&bytes).unwrap().into_opener();
    let a = open().unwrap();
    assert!(open().is_none());
    drop(a);
    assert_eq!(open().map(|b| b.info().product_id), Some(0x1162));
    let mut session = PcapSession::from_bytes(&bytes).unwrap();
    let _a = session.next_device().unwrap();
    assert_eq!(session.next_device().and_then(|b| b.address()), Some((1, 3)));
}

#[test]
fn explicit_addresses_and_a_clock_that_goes_back() {
    let mut t = Duration::from_secs(1_704_067_200);
    let clock = Box::new(move || {
        // Forward 3 s, back 1 s, forward 3 s, ...
        t = if t.as_secs().is_multiple_of(2) {
            t + Duration::from_secs(3)
        } else {
            t - Duration::from_secs(1)
        };
        t
    });
    let sink = PcapSink::with_clock(Vec::new(), clock).unwrap().with_bus(3);
    let mut w = sink.attach_at(Loopback::new(), 7, 42);
    w.control_out(CPUCS, &[1], T).unwrap();
    let mut x = sink.attach(Loopback::new());
    x.control_out(CPUCS, &[1], T).unwrap();
    assert_eq!((w.address(), x.address()), ((7, 42), (3, 2)));
    drop((w, x));
    let bytes = sink.finish().unwrap();
    let recs: Vec<_> = PcapReader::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(recs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(PcapReplay::devices(&bytes).unwrap(), [(7, 42), (3, 2)]);
}

#[test]
fn finish_needs_every_writer_gone() {
    let sink = PcapSink::with_clock(Vec::new(), test_clock()).unwrap();
    let w = sink.attach(Loopback::new());
    let e = sink.clone().finish().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other);
    let (_, handle) = w.finish().unwrap();
    drop(handle);
    assert_eq!(sink.finish().unwrap().len(), 24);
}

/// Accepts `left` bytes, then fails.
#[derive(Debug)]
struct Failing {
    left: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.left {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        self.left -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_error_stops_every_writer_and_is_returned() {
    let sink = PcapSink::with_clock(Failing { left: 24 + 200 }, test_clock()).unwrap();
    let mut w = sink.attach(Loopback::new());
    // The transport keeps working.
    assert_eq!(w.control_out(CPUCS, &[1], T), Ok(1));
    assert!(w.error().is_some());
    assert!(sink.has_error());
    let mut x = sink.attach(Loopback::new());
    assert_eq!(x.control_out(CPUCS, &[1], T), Ok(1));
    assert_eq!(x.error().map(io::Error::kind), Some(io::ErrorKind::StorageFull));
    drop((w, x));
    assert_eq!(sink.finish().unwrap_err().kind(), io::ErrorKind::StorageFull);
}

/// An IN answer is not handed out before the host has made the request that preceded it in
/// the capture, whenever the host queued its read.
#[test]
fn answers_wait_for_their_request() {
    let mut w =
        xpp_usb::middleware::PcapWriter::with_clock(Loopback::new(), Vec::new(), test_clock()).unwrap();
    w.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    w.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    assert!(w.wait_next_complete(ep::DATA_OUT, T).is_some());
    assert!(w.wait_next_complete(ep::DATA_IN, T).is_some());
    w.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    w.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    assert!(w.wait_next_complete(ep::DATA_OUT, T).is_some());
    assert!(w.wait_next_complete(ep::DATA_IN, T).is_some());
    let (_, bytes) = w.finish().unwrap();

    let mut r = PcapReplay::from_bytes(&bytes).unwrap();
    r.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    r.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    assert!(r.wait_next_complete(ep::DATA_IN, T).is_none(), "answered before the request");
    r.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    let c = r.wait_next_complete(ep::DATA_IN, T).unwrap();
    assert_eq!(c.buffer, XPP_REG_WRITE);
    assert!(r.wait_next_complete(ep::DATA_IN, T).is_none());
    // Cancelling hands the matched answer out at once, with its recorded result.
    r.cancel_all(ep::DATA_IN);
    assert_eq!(r.wait_next_complete(ep::DATA_IN, T).map(|c| c.status), Some(Ok(())));
    assert_eq!(r.pending(ep::DATA_IN), 0);
}
