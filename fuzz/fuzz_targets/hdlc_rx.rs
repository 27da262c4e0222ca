//! The software HDLC receiver of the PRI D-channel (`xpp_chan::hdlc::HdlcRx`) on arbitrary
//! line bytes, fed in 8-byte ticks like the span layer does: it must never panic, a frame it
//! accepts in FCS mode must carry a good FCS, and every accepted frame must survive a
//! transmit/receive round trip unchanged. The first byte's low bit picks the rate (64k or
//! 56k, DAHDI's HDLC_RATE) for the whole run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xpp_chan::hdlc::{FCS_INIT, GOOD_FCS, HdlcRate, HdlcRx, HdlcTx, RxEvent, fcs_update};

fuzz_target!(|data: &[u8]| {
    let rate = if data.first().is_some_and(|b| b & 1 == 1) { HdlcRate::Kbps56 } else { HdlcRate::Kbps64 };
    let mut rx = HdlcRx::new(260, true);
    rx.set_rate(rate);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for chunk in data.chunks(8) {
        rx.feed(chunk, |ev| {
            if let RxEvent::Frame(f) = ev {
                assert_eq!(fcs_update(FCS_INIT, f), GOOD_FCS);
                frames.push(f.to_vec());
            }
        });
    }
    let mut raw = HdlcRx::new(64, false);
    raw.set_rate(rate);
    raw.feed(data, |_| {});

    let mut tx = HdlcTx::new(260, true);
    let mut echo = HdlcRx::new(260, true);
    tx.set_rate(rate);
    echo.set_rate(rate);
    for f in &frames {
        tx.send(f).unwrap();
        let mut got = None;
        for _ in 0..300 {
            let mut chunk = [0u8; 8];
            tx.fill(&mut chunk);
            echo.feed(&chunk, |ev| {
                if let RxEvent::Frame(g) = ev {
                    got = Some(g.to_vec());
                }
            });
            if got.is_some() {
                break;
            }
        }
        assert_eq!(got.as_ref(), Some(f));
    }
});
