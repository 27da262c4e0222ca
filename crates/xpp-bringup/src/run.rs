//! The IO driver of [`BringUp`]: executes its actions on a [`Transport`], reopening the device
//! after each re-enumeration through a caller-supplied opener, on an injected [`Clock`] (the
//! stack's one clock, from `xpp-usb`).
//!
//! This is the one place bring-up blocks and reads a clock. With [`SystemClock`](xpp_usb::SystemClock) it runs on a
//! real device (or USB/IP); with a clock over the emulator's virtual time (and the emulator in
//! its auto-advancing mode, where a transport's waits move virtual time) the same code runs
//! deterministically in tests.

use std::path::Path;

use xpp_proto::{Duration, Instant};
use xpp_usb::{Clock, Completion, TransferError, Transport, ep};

use super::{Action, BringUp, BringUpConfig, BringUpError, BringUpResult, Event, FirmwareSet};

/// Driver parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// How often the opener is tried while a device is awaited.
    // Decision: 20 ms. The reference loader polls once per second; an in-process opener is
    // cheap, and a short interval keeps the measured re-enumeration time close to the device's.
    pub reopen_interval: Duration,
    /// IN transfers kept queued on the data endpoint.
    pub data_reads: usize,
    /// Longest single wait before the driver looks at every endpoint again.
    pub max_wait: Duration,
    /// Timeout of one control transfer.
    pub control_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            reopen_interval: Duration::from_millis(20),
            data_reads: 4,
            max_wait: Duration::from_millis(10),
            control_timeout: Duration::from_secs(1),
        }
    }
}

/// A device after a successful bring-up: its open transport (with IN transfers still queued
/// on its IN endpoints, for the run loop to keep) and what bring-up found.
#[derive(Debug)]
pub struct Ready<T> {
    /// The transport to the running device.
    pub transport: T,
    /// The result.
    pub result: BringUpResult,
}

/// Size of every IN buffer (one xframe / one MPP packet).
const IN_LEN: usize = 512;
/// Most OUT transfers kept in flight per endpoint.
// Decision: 32, well under any backend's bound (rusb's is 128) and more than the bring-up ever
// needs to keep the device busy: an OUT transfer completes as soon as the device took it.
const MAX_OUT_IN_FLIGHT: usize = 32;

struct Driver<'a, T, C: ?Sized, E> {
    core: BringUp,
    clock: &'a C,
    options: RunOptions,
    on_event: E,
    transport: Option<T>,
}

/// Brings a device up: from whatever stage `open` finds it in to a running, ticking device.
///
/// `open` returns the device enumerated now (or `None`); it is called at start and, after the
/// core announces a re-enumeration, every [`RunOptions::reopen_interval`] until the core
/// accepts what it returns. Every [`Event`] is handed to `on_event` as it happens.
///
/// ```no_run
/// use xpp_bringup::{bring_up, read_firmware_dir, BringUpConfig, RunOptions};
/// use xpp_usb::SystemClock;
/// # fn open() -> Option<Box<dyn xpp_usb::Transport>> { None } // any backend
/// let fw = read_firmware_dir("/usr/share/dahdi".as_ref())?;
/// let ready = bring_up(open, &SystemClock::new(), BringUpConfig::default(), fw,
///                      RunOptions::default(), |e| println!("{e:?}"));
/// match ready {
///     Ok(r) => for t in &r.result.timeline { println!("{t}") },
///     Err(e) => eprintln!("{e}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn bring_up<T, C, E>(
    open: impl FnMut() -> Option<T>,
    clock: &C,
    config: BringUpConfig,
    firmware: FirmwareSet,
    options: RunOptions,
    on_event: E,
) -> Result<Ready<T>, BringUpError>
where
    T: Transport,
    C: Clock + ?Sized,
    E: FnMut(&Event),
{
    let now = clock.now();
    let core = BringUp::new(now, config, firmware);
    Driver { core, clock, options, on_event, transport: None }.run(open)
}

/// Verifies a device found running without resetting anything, as [`bring_up`] with
/// [`OnRunning::Verify`](crate::OnRunning::Verify) does: quiesced if it is ticking,
/// AB_DESCRIPTION validated (and compared with [`BringUpConfig::expected_description`] if
/// given), per unit only reads that show its chips answer ([`Phase::Verify`](crate::Phase::Verify)),
/// then the sync step of [`BringUpConfig::sync`]. No XBUS_RESET and no register write is sent,
/// so calls in progress survive: a TwinStar take-over's "attach + verify".
///
/// `transport` is the device as opened; one that is not in the running stage (11x2) fails at
/// once with [`Failure::NotRunning`](crate::Failure::NotRunning) (and is dropped). No firmware
/// is needed.
///
/// ```no_run
/// use xpp_bringup::{verify_running, BringUpConfig, BringUpResult};
/// use xpp_usb::{SystemClock, Transport};
///
/// /// The backup host takes over `device`, which the master brought up with `previous`.
/// fn take_over<T: Transport>(device: T, previous: &BringUpResult) {
///     let config = BringUpConfig::default().with_expected_description(Some(previous.description));
///     match verify_running(device, &SystemClock::new(), config, |e| println!("{e:?}")) {
///         Ok(r) => for t in &r.result.timeline { println!("{t}") },
///         Err(e) => eprintln!("take-over: {e}"),
///     }
/// }
/// ```
pub fn verify_running<T: Transport, C: Clock + ?Sized>(
    transport: T,
    clock: &C,
    config: BringUpConfig,
    on_event: impl FnMut(&Event),
) -> Result<Ready<T>, BringUpError> {
    let core = BringUp::verify_running(clock.now(), config);
    let mut once = Some(transport);
    Driver { core, clock, options: RunOptions::default(), on_event, transport: None }.run(move || once.take())
}

impl<T: Transport, C: Clock + ?Sized, E: FnMut(&Event)> Driver<'_, T, C, E> {
    fn run(mut self, mut open: impl FnMut() -> Option<T>) -> Result<Ready<T>, BringUpError> {
        let mut next_open = self.clock.now();
        loop {
            let now = self.clock.now();
            self.core.handle_timeout(now);
            if self.core.awaiting_device() && self.transport.is_none() && now >= next_open {
                next_open = now + self.options.reopen_interval;
                if let Some(t) = open()
                    && self.core.handle_device(now, t.info())
                {
                    self.transport = Some(t);
                    self.queue_reads();
                }
            }
            let mut busy = false;
            while let Some(action) = self.core.poll_action() {
                busy = true;
                if let Some(end) = self.execute(action) {
                    self.drain_events();
                    return end;
                }
            }
            self.drain_events();
            if self.core.is_finished() {
                // The core ends with Done or Failed, returned above; never spin after it.
                let now = self.clock.now();
                return Err(BringUpError {
                    phase: self.core.phase(),
                    at: now,
                    reason: super::Failure::Disconnected,
                    last_answer: self.core.last_answer().cloned(),
                });
            }
            if self.collect() {
                continue;
            }
            if busy {
                continue;
            }
            self.wait(next_open);
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            (self.on_event)(&e);
        }
    }

    /// Executes one action; `Some` ends the run.
    fn execute(&mut self, action: Action) -> Option<Result<Ready<T>, BringUpError>> {
        match action {
            Action::ControlOut { setup, data } => {
                let timeout = self.options.control_timeout.into();
                let r = match self.transport.as_mut() {
                    Some(t) => t.control_out(setup, &data, timeout),
                    None => Err(TransferError::Disconnected),
                };
                let now = self.clock.now();
                self.core.handle_control_result(now, r);
            }
            Action::MppOut(bytes) => self.submit(ep::MGMT_OUT, bytes),
            Action::DataOut(bytes) => self.submit(ep::DATA_OUT, bytes),
            Action::ClearHalt(endpoint) => {
                if let Some(Err(e)) = self.transport.as_mut().map(|t| t.clear_halt(endpoint)) {
                    log::warn!("bring-up: clearing the halt of endpoint 0x{endpoint:02X} failed: {e}");
                }
            }
            Action::WaitForReenumeration { .. } => {
                // The handle is stale once the device leaves (MT §1.2): close it.
                self.transport = None;
            }
            Action::Done(result) => {
                let now = self.clock.now();
                return Some(match self.transport.take() {
                    Some(transport) => Ok(Ready { transport, result: *result }),
                    None => Err(BringUpError {
                        phase: super::Phase::Ready,
                        at: now,
                        reason: super::Failure::Disconnected,
                        last_answer: self.core.last_answer().cloned(),
                    }),
                });
            }
            Action::Failed(e) => return Some(Err(e)),
        }
        None
    }

    fn submit(&mut self, endpoint: u8, bytes: Vec<u8>) {
        // A backend may refuse transfers past its in-flight bound (the `Transport` doc; rusb:
        // 128), and a PIC image goes out as one burst of hundreds of packets: reap finished
        // OUT transfers of this endpoint before going past `MAX_OUT_IN_FLIGHT`.
        while self.transport.as_ref().is_some_and(|t| t.pending(endpoint) >= MAX_OUT_IN_FLIGHT) {
            let timeout = self.options.control_timeout.into();
            let Some(c) = self.transport.as_mut().and_then(|t| t.wait_next_complete(endpoint, timeout))
            else {
                break;
            };
            self.feed(c);
        }
        if self.core.is_finished() {
            return;
        }
        let r = match self.transport.as_mut() {
            Some(t) => t.submit(endpoint, bytes),
            None => Err(TransferError::Disconnected),
        };
        if let Err(e) = r {
            let now = self.clock.now();
            self.core.handle_transfer_error(now, endpoint, e);
        }
    }

    /// Keeps reads queued on the IN endpoints the device has.
    fn queue_reads(&mut self) {
        let Some(t) = self.transport.as_mut() else { return };
        for (endpoint, want) in [(ep::MGMT_IN, 1), (ep::DATA_IN, self.options.data_reads.max(1))] {
            if t.info().endpoint(endpoint).is_none() {
                continue;
            }
            while t.pending(endpoint) < want {
                if t.submit(endpoint, vec![0; IN_LEN]).is_err() {
                    break;
                }
            }
        }
    }

    /// Takes every finished transfer; whether there was any.
    fn collect(&mut self) -> bool {
        let mut any = false;
        for endpoint in [ep::MGMT_OUT, ep::DATA_OUT, ep::MGMT_IN, ep::DATA_IN] {
            loop {
                let Some(t) = self.transport.as_mut() else { return any };
                let Some(c) = t.wait_next_complete(endpoint, std::time::Duration::ZERO) else { break };
                any = true;
                self.feed(c);
            }
        }
        if any {
            self.queue_reads();
        }
        any
    }

    fn feed(&mut self, c: Completion) {
        let now = self.clock.now();
        match c.status {
            Ok(()) if c.endpoint == ep::MGMT_IN => {
                self.core.handle_mpp_in(now, c.buffer.get(..c.actual_len).unwrap_or(&c.buffer));
            }
            Ok(()) if c.endpoint == ep::DATA_IN => {
                self.core.handle_data_in(now, c.buffer.get(..c.actual_len).unwrap_or(&c.buffer));
            }
            Ok(()) => {
                // An OUT endpoint ran empty: what was queued on it has gone out.
                if self.transport.as_ref().is_some_and(|t| t.pending(c.endpoint) == 0) {
                    self.core.handle_out_idle(now, c.endpoint);
                }
            }
            Err(TransferError::Disconnected) => {
                self.core.handle_disconnect(now);
                if self.core.awaiting_device() || self.core.is_finished() {
                    self.transport = None;
                }
            }
            Err(e) => self.core.handle_transfer_error(now, c.endpoint, e),
        }
    }

    /// Waits for the next timer, an IN completion, or the next opener try.
    fn wait(&mut self, next_open: Instant) {
        let now = self.clock.now();
        let mut until = self.core.poll_timeout().unwrap_or(now + self.options.max_wait);
        until = until.min(now + self.options.max_wait);
        if self.core.awaiting_device() && self.transport.is_none() {
            until = until.min(next_open);
        }
        // Always move on: a due timer was just handled.
        if until <= now {
            until = now + Duration::from_micros(100);
        }
        let endpoint = if self.core.expects_mgmt() { ep::MGMT_IN } else { ep::DATA_IN };
        if let Some(t) = self.transport.as_mut()
            && t.pending(endpoint) > 0
        {
            if let Some(c) = t.wait_next_complete(endpoint, (until - now).into()) {
                self.feed(c);
                self.queue_reads();
            }
            return;
        }
        self.clock.sleep_until(until);
    }
}

/// Reads a firmware folder (`/usr/share/dahdi` by default in the reference): every `*.hex`
/// file, parsed (a file that does not parse is kept as its error), and the echo-canceller image
/// `OCT6104E-256D.ima` if present. Other files are ignored.
///
/// Each file is read through a cap ([`xpp_proto::firmware::MAX_HEX_FILE_LEN`],
/// [`xpp_proto::firmware::echo::MAX_IMAGE_LEN`]): a larger one is an
/// [`std::io::ErrorKind::FileTooLarge`] error naming the file and the cap.
pub fn read_firmware_dir(dir: &Path) -> std::io::Result<FirmwareSet> {
    use xpp_proto::firmware::{MAX_HEX_FILE_LEN, echo::MAX_IMAGE_LEN};
    let read = |path: &Path, cap| {
        std::fs::File::open(path)
            .and_then(|f| xpp_proto::input::read_capped(f, cap))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    let mut fw = FirmwareSet::new();
    fw.set_origin(dir.display().to_string());
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        if name.to_ascii_lowercase().ends_with(".hex") {
            fw.insert_hex(&name, &read(&path, MAX_HEX_FILE_LEN)?);
        } else if name.eq_ignore_ascii_case(super::ECHO_IMAGE) {
            fw.set_echo_image(read(&path, MAX_IMAGE_LEN)?);
        }
    }
    Ok(fw)
}
