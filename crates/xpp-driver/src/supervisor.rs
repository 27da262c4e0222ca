//! A device supervisor: keeps one [`Target`] attached to a [`Driver`] across disconnects.
//!
//! A device's run loop ends when the device goes away (unplugged, a TwinStar jump to the other
//! host, a power cut). The [`Supervisor`] outlives it: it opens its target, waits for the
//! device's run loop to end, and opens it again (bring-up from whatever stage it is found in),
//! retrying every [`SupervisorOptions::retry_interval`] while the device is absent. A device
//! that comes back gets its old span and channel numbers (the driver's first-fit numbering),
//! so the PBX sees `DeviceRemoved`, then `DeviceReady` with the same spans.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use xpp_bringup::{BringUpConfig, FirmwareSet, RunOptions};

use crate::driver::{DeviceEnd, Driver};
use crate::error::ErrorCode;
use crate::event::DeviceId;
use crate::target::Target;

/// Supervisor parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorOptions {
    /// How often an absent device is looked for again.
    // Decision: 200 ms. Opening is cheap when nothing is there (a USB listing or one TCP
    // connect), and a short interval keeps a re-plug's or a jump's downtime close to the
    // device's own re-enumeration time.
    pub retry_interval: Duration,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self { retry_interval: Duration::from_millis(200) }
    }
}

impl SupervisorOptions {
    /// Sets [`SupervisorOptions::retry_interval`].
    #[must_use]
    pub const fn with_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }
}

/// What a supervisor has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SupervisorStatus {
    /// The device while it is attached.
    pub device: Option<DeviceId>,
    /// Successful attachments so far.
    pub attachments: u64,
    /// Failed opens so far (absent device, failed bring-up).
    pub failures: u64,
    /// Why the last open failed.
    pub last_error: Option<ErrorCode>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<(bool, SupervisorStatus)>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, (bool, SupervisorStatus)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.lock().0
    }

    /// Waits `d` or until stopped; whether stopped.
    fn pause(&self, d: Duration) -> bool {
        let st = self.lock();
        let (st, _) = self.cond.wait_timeout_while(st, d, |s| !s.0).unwrap_or_else(PoisonError::into_inner);
        st.0
    }
}

/// Keeps one device attached across disconnects (see the module doc). Dropping it stops it.
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts supervising `target` on `driver` (on a thread of its own): opened now, and again
    /// each time its run loop ends.
    pub fn start(
        driver: Arc<Driver>,
        target: Target,
        config: BringUpConfig,
        firmware: FirmwareSet,
        run: RunOptions,
        options: SupervisorOptions,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let sh = Arc::clone(&shared);
        let thread =
            std::thread::Builder::new().name(format!("xpp-supervise {target}")).spawn(move || {
                supervise(&driver, &target, config, &firmware, run, options, &sh);
            })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// What it has seen so far.
    pub fn status(&self) -> SupervisorStatus {
        self.shared.lock().1
    }

    /// Stops supervising (after a bring-up in progress has finished) and joins the thread.
    /// The device stays attached to the driver; close it there.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.shared.lock().0 = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// How often the supervisor looks at its stop flag while its device runs.
const WATCH_SLICE: Duration = Duration::from_millis(50);

fn supervise(
    driver: &Driver,
    target: &Target,
    config: BringUpConfig,
    firmware: &FirmwareSet,
    run: RunOptions,
    options: SupervisorOptions,
    shared: &Shared,
) {
    while !shared.stopped() {
        let id = match driver.open_target(target, config, firmware.clone(), run) {
            Ok(id) => id,
            Err(e) => {
                log::debug!("{target}: {e}");
                let mut st = shared.lock();
                st.1.failures += 1;
                st.1.last_error = Some(e.code());
                drop(st);
                if shared.pause(options.retry_interval) {
                    return;
                }
                continue;
            }
        };
        {
            let mut st = shared.lock();
            st.1.device = Some(id);
            st.1.attachments += 1;
        }
        log::info!("{target}: attached as {id}");
        let closed = loop {
            match driver.device_end(id, WATCH_SLICE) {
                None if shared.stopped() => return,
                None => {}
                Some(end) => break end == DeviceEnd::Closed,
            }
        };
        shared.lock().1.device = None;
        if closed {
            // Closed through the driver: an orderly stop, not a disconnect.
            log::info!("{target}: {id} closed; supervision ends");
            return;
        }
        log::info!("{target}: {id} gone; looking for it again");
    }
}
