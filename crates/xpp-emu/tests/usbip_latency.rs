//! Round-trip latency of an MPP STATUS_GET (bulk OUT 0x04 + bulk IN 0x88) through the
//! emulator's USB/IP server on 127.0.0.1 with `xpp_usb::UsbIpTransport`: 1000 exchanges after
//! a warm-up, p50/p99/max printed (`cargo test --release -p xpp-emu --test usbip_latency --
//! --nocapture`). The bound asserted is loose; the numbers are the point.

mod usbip_common;

use std::time::{Duration, Instant};

use usbip_common::{T, bounded, serve};
use xpp_emu::DeviceConfig;
use xpp_emu::config::Stage;
use xpp_proto::mgmt::{Reply, Request};
use xpp_usb::{Transport, UsbIpTransport, ep};

const ROUNDS: usize = 1000;

#[test]
fn status_get_round_trip_over_loopback() {
    bounded(Duration::from_secs(120), || {
        let server = serve(DeviceConfig::default().with_start_stage(Stage::Running));
        let mut t = UsbIpTransport::connect(server.local_addr(), "1-1").unwrap();
        let mut samples = Vec::with_capacity(ROUNDS);
        let mut req = [0u8; 5];
        let mut inbuf = Some(vec![0u8; 512]);
        for i in 0..(ROUNDS + 50) {
            let seq = (i % 0xFFFF) as u16;
            Request::StatusGet.emit(seq, &mut req).unwrap();
            let start = Instant::now();
            // The IN is queued first, as a driver keeps it, then the request goes out.
            t.submit(ep::MGMT_IN, inbuf.take().unwrap_or_else(|| vec![0; 512])).unwrap();
            t.submit(ep::MGMT_OUT, req.to_vec()).unwrap();
            let c = t.wait_next_complete(ep::MGMT_IN, T).expect("reply");
            let elapsed = start.elapsed();
            assert_eq!(c.status, Ok(()));
            assert_eq!(Reply::parse(&c.buffer).unwrap().0, seq);
            assert_eq!(t.wait_next_complete(ep::MGMT_OUT, T).unwrap().status, Ok(()));
            let mut b = c.buffer;
            b.resize(512, 0);
            inbuf = Some(b);
            if i >= 50 {
                samples.push(elapsed);
            }
        }
        samples.sort_unstable();
        let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
        let (p50, p99, max) = (pct(50), pct(99), samples[samples.len() - 1]);
        println!(
            "USB/IP loopback STATUS_GET round trip over {ROUNDS}: p50 {p50:?}, p99 {p99:?}, max {max:?} ({} build)",
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
        assert!(p50 < Duration::from_millis(50), "p50 {p50:?}");
    });
}
