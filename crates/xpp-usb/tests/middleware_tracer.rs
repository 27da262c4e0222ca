//! Tracer: decoded packets in the trace log, nothing formatted when trace is off.

mod middleware_support;

use std::cell::{Cell, RefCell};
use std::sync::Once;
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use middleware_support::{Loopback, MPP_TWS_PORT_SET, XPP_REG_WRITE};
use xpp_usb::middleware::{Decoded, TRACE_TARGET, Tracer};
use xpp_usb::{ControlSetup, Transport, ep};

const T: Duration = Duration::from_millis(10);

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static TRACE_ON: Cell<bool> = const { Cell::new(true) };
    static LOG_CALLS: Cell<usize> = const { Cell::new(0) };
}

/// Collects the tracer's lines of the current thread (tests run on parallel threads).
struct TestLogger;

impl Log for TestLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == TRACE_TARGET && m.level() <= Level::Trace && TRACE_ON.with(Cell::get)
    }
    fn log(&self, r: &Record<'_>) {
        LOG_CALLS.with(|c| c.set(c.get() + 1));
        if self.enabled(r.metadata()) {
            LINES.with(|l| l.borrow_mut().push(format!("{}", r.args())));
        }
    }
    fn flush(&self) {}
}

static LOGGER: TestLogger = TestLogger;
static INIT: Once = Once::new();

fn take_lines() -> Vec<String> {
    INIT.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(LevelFilter::Trace);
    });
    LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

#[test]
fn trace_lines_show_decoded_packets() {
    let _ = take_lines();
    let mut t = Tracer::new(Loopback::new());
    t.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    t.wait_next_complete(ep::DATA_OUT, T).unwrap();
    t.wait_next_complete(ep::DATA_IN, T).unwrap();
    t.submit(ep::MGMT_OUT, MPP_TWS_PORT_SET.to_vec()).unwrap();
    t.submit(ep::MGMT_IN, vec![0; 64]).unwrap();
    t.wait_next_complete(ep::MGMT_IN, T).unwrap();
    let mut buf = [0u8; 4];
    let vendor = ControlSetup { request_type: 0xC0, request: 0x10, value: 0x1234, index: 0 };
    t.control_in(vendor, &mut buf, T).unwrap();
    t.submit(ep::DATA_OUT, vec![0xff, 0xff]).unwrap();
    let lines = take_lines();
    let expected = [
        "submit ep=0x02 len=10: REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01",
        "submit ep=0x86 len=512",
        "complete ep=0x02 len=10 status=ok",
        "complete ep=0x86 len=10 status=ok: REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01",
    ];
    assert_eq!(&lines[..4], &expected, "{lines:#?}");
    assert!(lines[4].starts_with("submit ep=0x04 len=6: TWS_PORT_SET"), "{}", lines[4]);
    assert_eq!(lines[6], "complete ep=0x88 len=6 status=ok: ACK seq=1 status=OK");
    assert_eq!(
        lines[7],
        "control_in type=0xc0 req=0x10 value=0x1234 index=0x0000 len=4 -> Ok(4): 34 12 aa 55"
    );
    assert!(lines[8].starts_with("submit ep=0x02 len=2: malformed ("), "{}", lines[8]);
    assert!(lines[8].ends_with("ff ff"), "{}", lines[8]);
}

#[test]
fn decoded_falls_back_to_hex_off_the_astribank_endpoints() {
    assert_eq!(Decoded::new(0x81, &[1, 0xab]).to_string(), "01 ab");
    assert_eq!(
        Decoded::new(ep::MGMT_IN, &[0x06, 0x00, 0x07, 0x00, 0x80, 0x00]).to_string(),
        "ACK seq=7 status=OK"
    );
}

#[test]
fn nothing_logged_when_trace_is_off_for_the_target() {
    let _ = take_lines();
    // Trace off for this thread's target: `log_enabled!` says no, so the tracer must not
    // call the logger (nor format anything) at all.
    TRACE_ON.with(|c| c.set(false));
    let calls = LOG_CALLS.with(Cell::get);
    let mut t = Tracer::new(Loopback::new());
    t.submit(ep::DATA_OUT, XPP_REG_WRITE.to_vec()).unwrap();
    t.submit(ep::DATA_IN, vec![0; 512]).unwrap();
    t.wait_next_complete(ep::DATA_IN, T).unwrap();
    TRACE_ON.with(|c| c.set(true));
    assert_eq!(LOG_CALLS.with(Cell::get), calls);
    assert!(take_lines().is_empty());
    assert_eq!(t.into_inner().pending(ep::DATA_OUT), 1);
}
