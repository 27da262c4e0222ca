//! PcapReplay: a recorded session played back as a transport, through the decoders.

mod middleware_support;

use std::time::Duration;

use middleware_support::{Loopback, MPP_TWS_PORT_SET, XPP_REG_WRITE, decode_capture, test_clock};
use xpp_usb::middleware::{OutCheck, PcapReplay, PcapWriter, Tracer};
use xpp_usb::{ControlSetup, TransferError, TransferType, Transport, ep};

const T: Duration = Duration::from_millis(10);
const GET_DEVICE: ControlSetup = ControlSetup { request_type: 0x80, request: 6, value: 0x0100, index: 0 };
const VENDOR_READ: ControlSetup = ControlSetup { request_type: 0xC0, request: 0x10, value: 0x1234, index: 0 };
const CPUCS: ControlSetup = ControlSetup { request_type: 0x40, request: 0xA0, value: 0xE600, index: 0 };

/// The host side of a session; run against the recorder and then against the replay, it
/// returns what the host saw.
fn host_session<X: Transport>(t: &mut X) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    seen.push(format!("{:?}", t.control_in(VENDOR_READ, &mut buf[..4], T).map(|n| buf[..n].to_vec())));
    seen.push(format!("{:?}", t.control_out(CPUCS, &[0x01], T)));
    // Two IN buffers queued on each IN endpoint, as a driver keeps them.
    for _ in 0..2 {
        t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
        t.submit(ep::MGMT_IN, vec![0; 64]).unwrap();
    }
    for round in 0..3u8 {
        let mut cmd = XPP_REG_WRITE.to_vec();
        cmd[8] = round;
        t.submit(ep::DATA_OUT, cmd).unwrap();
        let mut req = MPP_TWS_PORT_SET.to_vec();
        req[2] = round;
        t.submit(ep::MGMT_OUT, req).unwrap();
        for e in [ep::DATA_OUT, ep::MGMT_OUT, ep::DATA_IN, ep::MGMT_IN] {
            let c = t.wait_next_complete(e, T).unwrap();
            seen.push(format!("{e:#04x} {:?} {:02x?}", c.status, &c.buffer[..c.actual_len]));
            // Recycle IN buffers, except after the last round (where the capture ends).
            if e & 0x80 != 0 && round < 2 {
                t.submit(e, c.buffer).unwrap();
            }
        }
    }
    seen
}

/// Records `host_session` against the loopback device, with a GET_DESCRIPTOR first (as the
/// kernel's enumeration would appear in a usbmon capture).
fn recorded() -> (Vec<u8>, Vec<String>) {
    let mut w = PcapWriter::with_clock(Loopback::new(), Vec::new(), test_clock()).unwrap();
    let mut d = [0u8; 18];
    w.control_in(GET_DEVICE, &mut d, T).unwrap();
    let seen = host_session(&mut w);
    let (_, bytes) = w.finish().unwrap();
    (bytes, seen)
}

#[test]
fn replay_gives_the_host_what_the_device_said() {
    let (bytes, live) = recorded();
    let mut replay = PcapReplay::from_bytes(&bytes).unwrap().with_out_check(OutCheck::Verify);
    assert_eq!(host_session(&mut replay), live);
    assert_eq!(replay.stats().out_mismatches, 0);
    assert_eq!(replay.stats().control_misses, 0);
}

#[test]
fn replayed_session_decodes() {
    let (bytes, _) = recorded();
    // 3 rounds x (XPP out + XPP in + MPP request + MPP reply), and the CPUCS write.
    assert_eq!(decode_capture(&bytes), Ok(13));
    // And through the tracer (decoding every packet if trace is on) on top of the replay.
    let mut t = Tracer::new(PcapReplay::from_bytes(&bytes).unwrap());
    let seen = host_session(&mut t);
    assert!(seen.iter().any(|s| s.starts_with("0x88 Ok(())")), "{seen:?}");
}

#[test]
fn device_info_comes_from_the_descriptors_in_the_capture() {
    let (bytes, _) = recorded();
    let r = PcapReplay::from_bytes(&bytes).unwrap();
    let info = r.info();
    assert_eq!((info.vendor_id, info.product_id, info.bcd_device), (0xE4E4, 0x1162, 0x0101));
    assert_eq!(info.location, "pcap:1-1");
    // No configuration descriptor recorded: interfaces guessed from the endpoints used.
    assert_eq!(info.interface(0).unwrap().endpoints.len(), 2);
    assert_eq!(info.endpoint(ep::MGMT_IN).unwrap().transfer_type, TransferType::Bulk);
    assert_eq!(info.interface(1).unwrap().endpoints.len(), 2);
    let supplied = middleware_support::astribank_info();
    assert_eq!(r.with_info(supplied.clone()).info(), &supplied);
}

#[test]
fn end_of_capture_is_a_disconnect() {
    let (bytes, _) = recorded();
    let mut r = PcapReplay::from_bytes(&bytes).unwrap();
    host_session(&mut r);
    // The recorder left one IN buffer per endpoint queued without a completion; the host
    // has collected the capture's last completion, so it finishes as Disconnected.
    assert!(r.is_disconnected());
    assert_eq!(r.remaining(), 0);
    for e in [ep::DATA_IN, ep::MGMT_IN] {
        assert_eq!(r.pending(e), 1);
        assert_eq!(r.wait_next_complete(e, T).unwrap().status, Err(TransferError::Disconnected));
        assert_eq!(r.pending(e), 0);
    }
    assert_eq!(r.submit(ep::DATA_OUT, vec![1]), Err(TransferError::Disconnected));
    assert_eq!(r.control_out(CPUCS, &[1], T), Err(TransferError::Disconnected));
    assert_eq!(r.reset(), Err(TransferError::Disconnected));
}

#[test]
fn out_data_mismatch_policy() {
    let (bytes, _) = recorded();
    let differs = |check| {
        let mut r = PcapReplay::from_bytes(&bytes).unwrap().with_out_check(check);
        let c = r.control_out(CPUCS, &[0x00], T);
        (c, r.stats().out_mismatches)
    };
    assert_eq!(differs(OutCheck::Accept), (Ok(1), 1));
    assert_eq!(differs(OutCheck::Verify), (Err(TransferError::Fault), 1));
    // A request the capture never saw stalls; an unmatched bulk submit stays pending.
    let mut r = PcapReplay::from_bytes(&bytes).unwrap();
    let other = ControlSetup { request_type: 0x40, request: 0x77, value: 0, index: 0 };
    assert_eq!(r.control_out(other, &[], T), Err(TransferError::Stall));
    assert_eq!(r.stats().control_misses, 1);
    r.submit(0x01, vec![1]).unwrap();
    assert!(r.wait_next_complete(0x01, T).is_none());
    r.cancel_all(0x01);
    assert_eq!(r.wait_next_complete(0x01, T).unwrap().status, Err(TransferError::Cancelled));
}

#[test]
fn empty_capture_is_disconnected_from_the_start() {
    let w = PcapWriter::with_clock(Loopback::new(), Vec::new(), test_clock()).unwrap();
    let (_, bytes) = w.finish().unwrap();
    let mut r = PcapReplay::from_bytes(&bytes).unwrap();
    assert_eq!(r.submit(ep::DATA_IN, vec![0; 512]), Err(TransferError::Disconnected));
    assert!(PcapReplay::from_bytes(&bytes[..10]).is_err());
}

#[test]
fn replay_preserves_recorded_errors() {
    let mut w = PcapWriter::with_clock(Loopback::new(), Vec::new(), test_clock()).unwrap();
    w.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    w.cancel_all(ep::DATA_IN);
    assert_eq!(w.wait_next_complete(ep::DATA_IN, T).unwrap().status, Err(TransferError::Cancelled));
    assert_eq!(w.submit(0x0F, vec![1]), Err(TransferError::InvalidArgument));
    w.submit(ep::DATA_OUT, vec![1, 2]).unwrap();
    w.wait_next_complete(ep::DATA_OUT, T).unwrap();
    let (_, bytes) = w.finish().unwrap();
    let mut r = PcapReplay::from_bytes(&bytes).unwrap();
    r.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    assert_eq!(r.wait_next_complete(ep::DATA_IN, T).unwrap().status, Err(TransferError::Cancelled));
    assert_eq!(r.submit(0x0F, vec![1]), Err(TransferError::InvalidArgument));
    r.submit(ep::DATA_OUT, vec![1, 2]).unwrap();
    assert_eq!(r.wait_next_complete(ep::DATA_OUT, T).unwrap().status, Ok(()));
    assert!(r.is_disconnected());
}
