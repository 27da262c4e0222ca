//! What the driver tests share: bounded waits, the firmware images, opening an emulated
//! device through the driver.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use xpp_bringup::{BringUpConfig, FirmwareSet, RunOptions, read_firmware_dir};
use xpp_driver::{DeviceId, Driver, DriverEvent, Receiver};
use xpp_emu::Emulator;

/// The longest any single wait of a test may take.
pub(crate) const WAIT: StdDuration = StdDuration::from_secs(10);

/// Runs `f` on its own thread; fails the test if it does not finish within `secs`.
pub(crate) fn within<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(StdDuration::from_secs(secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("sent nothing without panicking"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out (hang)"),
    }
}

/// Receives events until `pred` matches one (bounded by [`WAIT`] per event); every event
/// seen, the matching one last.
pub(crate) fn until(
    rx: &Receiver<DriverEvent>,
    mut pred: impl FnMut(&DriverEvent) -> bool,
) -> Vec<DriverEvent> {
    let mut seen = Vec::new();
    loop {
        let e =
            rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("event not seen within {WAIT:?}; got {seen:#?}"));
        let hit = pred(&e);
        seen.push(e);
        if hit {
            return seen;
        }
    }
}

/// Polls `cond` until it holds (bounded by [`WAIT`]).
pub(crate) fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = StdInstant::now() + WAIT;
    while !cond() {
        assert!(StdInstant::now() < end, "not within {WAIT:?}: {what}");
        std::thread::sleep(StdDuration::from_millis(5));
    }
}

/// The repository's firmware images (`testdata/firmware`).
pub(crate) fn firmware() -> FirmwareSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware");
    read_firmware_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Brings the device on `emu`'s port 0 up through `drv` (on the driver's clock) and
/// attaches it.
pub(crate) fn open(drv: &Driver, emu: &Emulator) -> DeviceId {
    let e = emu.clone();
    drv.open(move || e.transport(0), BringUpConfig::default(), firmware(), RunOptions::default())
        .unwrap_or_else(|e| panic!("bring-up: {e}"))
}
