//! # xpp-ffi: the C ABI of the xpp driver
//!
//! A PBX written in C (Asterisk, FreeSWITCH/FreeTDM, Yate) links `libxpp` (`-lxpp`, header
//! `xpp.h`, `pkg-config --cflags --libs xpp`) and drives Astribanks through opaque handles:
//!
//! - [`xpp_driver`]: the driver with its devices ([`xpp_driver_open`] for a real device or a
//!   USB/IP address, [`xpp_driver_open_emulator`] for an embedded emulated Astribank);
//!   spans and channels with their DAHDI attributes; `system.conf`; 8-sample chunks; hook
//!   commands with DAHDI's numbers; events with DAHDI's numbers, behind a file descriptor a
//!   PBX puts in its own `poll()` loop ([`xpp_driver_event_fd`]);
//! - [`xpp_twinstar`]: TwinStar failover on that driver: role, health (a C callback), jump,
//!   the last failover's timeline;
//! - [`xpp_emulator`]: the emulated Astribank (feature `emulator`, on by default) and its
//!   test equipment (the phone on an FXS port).
//!
//! Conventions (rustls-ffi's):
//!
//! - every function returns an [`xpp_result`] (or is infallible), never unwinds into C: a
//!   panic inside becomes [`xpp_result::XPP_ERR_PANIC`];
//! - result codes are stable and never reused; `1..=99` are the driver's own
//!   (`::xpp_driver::ErrorCode`), `100..` this layer's;
//! - out-parameters are written only on success;
//! - a handle made by `_new`/`_open` is released by its `_free`, exactly once; `NULL` is
//!   accepted by every `_free`;
//! - thread safety is stated per function: the driver's functions may be called from any
//!   thread at the same time (the driver is `Sync`), except `_free`.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use ::xpp_driver::tws::{Command, Phase, Role};
use ::xpp_driver::{
    Driver, DriverError, DriverEvent, DriverOptions, SystemClock, Target, TwinStarHost, TwinStarOptions,
};
use xpp_bringup::{BringUpConfig, FirmwareSet, RunOptions, find_firmware_dir, read_firmware_dir};
use xpp_span::hook::HookMode;
use xpp_span::{HookCmd, Sig};

mod emulator;
#[cfg(feature = "emulator")]
pub use emulator::*;

/// The library's version, as the header's `XPP_VERSION_*` macros give it.
pub const XPP_VERSION_MAJOR: u32 = 0;
/// See [`XPP_VERSION_MAJOR`].
pub const XPP_VERSION_MINOR: u32 = 1;
/// See [`XPP_VERSION_MAJOR`].
pub const XPP_VERSION_PATCH: u32 = 0;

/// What a call did. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum xpp_result {
    /// Success.
    XPP_OK = 0,
    /// No such channel.
    XPP_ERR_NO_SUCH_CHANNEL = 1,
    /// No such span.
    XPP_ERR_NO_SUCH_SPAN = 2,
    /// No such device.
    XPP_ERR_NO_SUCH_DEVICE = 3,
    /// The channel's device is gone (DAHDI's ENODEV).
    XPP_ERR_CHAN_REMOVED = 4,
    /// The channel refused the operation.
    XPP_ERR_CHAN_REFUSED = 5,
    /// A configuration or hook command was refused.
    XPP_ERR_REFUSED = 6,
    /// Nothing happened within the timeout.
    XPP_ERR_TIMEOUT = 7,
    /// The device's bring-up failed.
    XPP_ERR_BRING_UP = 8,
    /// The device's units make no bus.
    XPP_ERR_SETUP = 9,
    /// A thread could not be started.
    XPP_ERR_THREAD = 10,
    /// The device could not be opened.
    XPP_ERR_OPEN = 11,
    /// A management request failed.
    XPP_ERR_MGMT = 12,
    /// The device has no management interface.
    XPP_ERR_NO_MGMT_INTERFACE = 13,
    /// The device is not on this host: its spans are registered in standby (a TwinStar
    /// backup); configuration is taken, audio and hook calls are not.
    XPP_ERR_STANDBY = 14,
    /// A pointer argument that must not be `NULL` was.
    XPP_ERR_NULL_ARGUMENT = 100,
    /// An argument is out of range or does not parse (a target, a hook command, UTF-8).
    XPP_ERR_INVALID_ARGUMENT = 101,
    /// A panic inside the library (a bug): the call did nothing that can be relied on.
    XPP_ERR_PANIC = 102,
    /// Nothing to return now (no event queued).
    XPP_ERR_WOULD_BLOCK = 103,
    /// A `system.conf` did not parse or did not apply; the message says where.
    XPP_ERR_CONFIG = 104,
    /// An operating-system error (a firmware folder, a socket).
    XPP_ERR_IO = 105,
    /// A driver error this version does not know (a newer driver).
    XPP_ERR_UNKNOWN = 199,
}

impl From<&DriverError> for xpp_result {
    fn from(e: &DriverError) -> Self {
        use ::xpp_driver::ErrorCode as C;
        match e.code() {
            C::NoSuchChannel => Self::XPP_ERR_NO_SUCH_CHANNEL,
            C::NoSuchSpan => Self::XPP_ERR_NO_SUCH_SPAN,
            C::NoSuchDevice => Self::XPP_ERR_NO_SUCH_DEVICE,
            C::ChanRemoved => Self::XPP_ERR_CHAN_REMOVED,
            C::ChanRefused => Self::XPP_ERR_CHAN_REFUSED,
            C::Refused => Self::XPP_ERR_REFUSED,
            C::Timeout => Self::XPP_ERR_TIMEOUT,
            C::BringUp => Self::XPP_ERR_BRING_UP,
            C::Setup => Self::XPP_ERR_SETUP,
            C::Thread => Self::XPP_ERR_THREAD,
            C::Open => Self::XPP_ERR_OPEN,
            C::Mgmt => Self::XPP_ERR_MGMT,
            C::NoMgmtInterface => Self::XPP_ERR_NO_MGMT_INTERFACE,
            C::Standby => Self::XPP_ERR_STANDBY,
            _ => Self::XPP_ERR_UNKNOWN,
        }
    }
}

/// Runs `body`, turning a panic into [`xpp_result::XPP_ERR_PANIC`] (never unwinding into C).
fn boundary(body: impl FnOnce() -> Result<(), xpp_result>) -> xpp_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => xpp_result::XPP_OK,
        Ok(Err(code)) => code,
        Err(_) => xpp_result::XPP_ERR_PANIC,
    }
}

/// Runs `body` for a `_free`: a panic is swallowed (a destructor has no result).
fn boundary_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

fn driver_error(e: DriverError) -> xpp_result {
    log::debug!("xpp-ffi: {e}");
    xpp_result::from(&e)
}

/// A `&str` from a C string; `NULL` or bad UTF-8 are errors.
///
/// # Safety
/// `s` is `NULL` or points to a NUL-terminated string valid for the call.
unsafe fn str_arg<'a>(s: *const c_char) -> Result<&'a str, xpp_result> {
    if s.is_null() {
        return Err(xpp_result::XPP_ERR_NULL_ARGUMENT);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for the call.
    unsafe { CStr::from_ptr(s) }.to_str().map_err(|_| xpp_result::XPP_ERR_INVALID_ARGUMENT)
}

/// A reference from a handle pointer; `NULL` is an error.
///
/// # Safety
/// `p` is `NULL` or a live handle of type `T` made by this library.
unsafe fn handle<'a, T>(p: *const T) -> Result<&'a T, xpp_result> {
    // SAFETY: the caller promises `p` is NULL or a live handle; `as_ref` handles NULL.
    unsafe { p.as_ref() }.ok_or(xpp_result::XPP_ERR_NULL_ARGUMENT)
}

/// Writes `value` to the out-parameter `out`; `NULL` is an error (checked before any work by
/// the callers, through [`check_out`]).
///
/// # Safety
/// `out` is `NULL` or valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) -> Result<(), xpp_result> {
    if out.is_null() {
        return Err(xpp_result::XPP_ERR_NULL_ARGUMENT);
    }
    // SAFETY: not NULL, and the caller promises it is valid for a write of `T`.
    unsafe { out.write(value) };
    Ok(())
}

fn check_out<T>(out: *mut T) -> Result<(), xpp_result> {
    if out.is_null() { Err(xpp_result::XPP_ERR_NULL_ARGUMENT) } else { Ok(()) }
}

/// Copies `text` into a C buffer of `len` bytes, truncated, always NUL-terminated (nothing
/// if `buf` is `NULL` or `len` is 0).
///
/// # Safety
/// `buf` is `NULL` or valid for writes of `len` bytes.
unsafe fn copy_text(text: &str, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    let n = text.len().min(len - 1);
    // SAFETY: `buf` is valid for `len` bytes (caller), `n < len`, and the source and
    // destination cannot overlap (a Rust string and a C buffer).
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buf, n);
        buf.add(n).write(0);
    }
}

/// A fixed-size NUL-terminated name for the C structs.
fn name_field(text: &str) -> [c_char; 40] {
    let mut out = [0 as c_char; 40];
    for (o, b) in out.iter_mut().zip(text.bytes().take(39)) {
        *o = b as c_char;
    }
    out
}

/// The library version as text, `"xpp <major>.<minor>.<patch>"`. Static; never free it.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xpp_version() -> *const c_char {
    static VERSION: &CStr = c"xpp 0.1.0";
    VERSION.as_ptr()
}

/// A short English text for a result code. Static; never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xpp_result_text(result: xpp_result) -> *const c_char {
    use xpp_result as R;
    let text: &'static CStr = match result {
        R::XPP_OK => c"ok",
        R::XPP_ERR_NO_SUCH_CHANNEL => c"no such channel",
        R::XPP_ERR_NO_SUCH_SPAN => c"no such span",
        R::XPP_ERR_NO_SUCH_DEVICE => c"no such device",
        R::XPP_ERR_CHAN_REMOVED => c"the channel's device is gone",
        R::XPP_ERR_CHAN_REFUSED => c"the channel refused the operation",
        R::XPP_ERR_REFUSED => c"configuration or hook command refused",
        R::XPP_ERR_TIMEOUT => c"timed out",
        R::XPP_ERR_BRING_UP => c"the device's bring-up failed",
        R::XPP_ERR_SETUP => c"the device's units make no bus",
        R::XPP_ERR_THREAD => c"a thread could not be started",
        R::XPP_ERR_OPEN => c"the device could not be opened",
        R::XPP_ERR_MGMT => c"a management request failed",
        R::XPP_ERR_NO_MGMT_INTERFACE => c"the device has no management interface",
        R::XPP_ERR_STANDBY => c"the device is not on this host (standby)",
        R::XPP_ERR_NULL_ARGUMENT => c"a required pointer argument was NULL",
        R::XPP_ERR_INVALID_ARGUMENT => c"an argument is out of range or does not parse",
        R::XPP_ERR_PANIC => c"internal error (panic) in the library",
        R::XPP_ERR_WOULD_BLOCK => c"nothing available now",
        R::XPP_ERR_CONFIG => c"the configuration did not parse or apply",
        R::XPP_ERR_IO => c"operating-system error",
        R::XPP_ERR_UNKNOWN => c"unknown driver error",
    };
    text.as_ptr()
}

// ----- the driver -------------------------------------------------------------------------

/// The driver: its devices, the event queue and the descriptor that signals it. Opaque.
pub struct xpp_driver {
    drv: Option<Arc<Driver>>,
    events: Arc<Mutex<VecDeque<DriverEvent>>>,
    /// Readable while events are queued: one byte per queued event.
    signal_rx: UnixStream,
    stop: Arc<AtomicBool>,
    forwarder: Option<JoinHandle<()>>,
    /// The emulated device's parts, dropped after the driver.
    #[cfg_attr(not(feature = "emulator"), allow(dead_code))]
    pub(crate) keep: Option<Box<dyn std::any::Any + Send + Sync>>,
    /// Per device, the read end of its tick descriptor and the thread that signals it
    /// ([`xpp_driver_tick_fd`]).
    ticks: Mutex<Vec<(u32, UnixStream, JoinHandle<()>)>>,
}

impl xpp_driver {
    /// Wraps a driver: starts the thread that moves its events into the queue and signals
    /// the descriptor.
    pub(crate) fn wrap(drv: Driver) -> Result<Self, xpp_result> {
        let (signal_tx, signal_rx) = UnixStream::pair().map_err(|_| xpp_result::XPP_ERR_IO)?;
        signal_rx.set_nonblocking(true).map_err(|_| xpp_result::XPP_ERR_IO)?;
        let rx = drv.events();
        let events = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (Arc::clone(&events), Arc::clone(&stop));
        let forwarder = std::thread::Builder::new()
            .name("xpp-ffi-events".into())
            .spawn(move || forward(&rx, &q, signal_tx, &s))
            .map_err(|_| xpp_result::XPP_ERR_THREAD)?;
        Ok(Self {
            drv: Some(Arc::new(drv)),
            events,
            signal_rx,
            stop,
            forwarder: Some(forwarder),
            keep: None,
            ticks: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn driver(&self) -> &Arc<Driver> {
        self.drv.as_ref().expect("driver present until free")
    }
}

/// The event thread: every driver event into the queue, one byte into the socket per event.
fn forward(
    rx: &::xpp_driver::channel::Receiver<DriverEvent>,
    queue: &Mutex<VecDeque<DriverEvent>>,
    mut signal: UnixStream,
    stop: &AtomicBool,
) {
    // Decision: at most this many undelivered events are kept (a PBX that never reads
    // them must not grow the process); the oldest are dropped first.
    const MAX_QUEUED: usize = 4096;
    while !stop.load(Ordering::SeqCst) {
        match rx.recv_timeout(StdDuration::from_millis(50)) {
            Ok(e) => {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                if q.len() >= MAX_QUEUED {
                    q.pop_front();
                } else {
                    // A full socket buffer only delays the signal: the queue is the truth.
                    let _ = signal.write(&[1]);
                }
                q.push_back(e);
            }
            Err(::xpp_driver::channel::RecvTimeoutError::Timeout) => {}
            Err(::xpp_driver::channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Drop for xpp_driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.forwarder.take() {
            let _ = t.join();
        }
        for (_, _, t) in self.ticks.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = t.join();
        }
        if let Some(drv) = self.drv.take() {
            match Arc::try_unwrap(drv) {
                Ok(d) => d.close(),
                Err(_) => log::warn!("xpp-ffi: driver freed while a TwinStar host still uses it"),
            }
        }
    }
}

fn firmware(dir: *const c_char) -> Result<FirmwareSet, xpp_result> {
    let dir = if dir.is_null() {
        find_firmware_dir().map_err(|e| {
            log::warn!("xpp-ffi: {e}");
            xpp_result::XPP_ERR_IO
        })?
    } else {
        // SAFETY: not NULL; the caller promises a NUL-terminated string.
        PathBuf::from(unsafe { str_arg(dir) }?)
    };
    read_firmware_dir(&dir).map_err(|e| {
        log::warn!("xpp-ffi: {}: {e}", dir.display());
        xpp_result::XPP_ERR_IO
    })
}

/// Opens the device at `target` and brings it up (the driver's target syntax: a USB bus path
/// `1-1.2`, `BBB/DDD`, `serial:LABEL`, or `usbip:HOST:PORT/BUSID`), with the firmware in
/// `firmware_dir` (`NULL`: `XPP_FIRMWARE_DIR`, the repository's `testdata/firmware`,
/// `/usr/share/dahdi`). On success `*out` is a new driver, freed with [`xpp_driver_free`].
///
/// Blocks for the bring-up (seconds for a cold device). Thread-safe.
///
/// # Safety
/// `target` is a NUL-terminated string; `firmware_dir` is `NULL` or one; `out` is valid for
/// a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_open(
    target: *const c_char,
    firmware_dir: *const c_char,
    out: *mut *mut xpp_driver,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `target`.
        let target: Target =
            unsafe { str_arg(target) }?.parse().map_err(|_| xpp_result::XPP_ERR_INVALID_ARGUMENT)?;
        let fw = firmware(firmware_dir)?;
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        drv.open_target(&target, BringUpConfig::default(), fw, RunOptions::default())
            .map_err(driver_error)?;
        let h = Box::new(xpp_driver::wrap(drv)?);
        // SAFETY: `out` checked not NULL; the caller promises it is writable.
        unsafe { put(out, Box::into_raw(h)) }
    })
}

/// Releases a driver: closes its devices (SYNC_SOURCE NONE, run loops joined). `NULL` is
/// accepted. Free every [`xpp_twinstar`] of this driver first. Not thread-safe: no other
/// call on this driver may be running or follow.
///
/// # Safety
/// `drv` is `NULL` or a driver from this library, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_free(drv: *mut xpp_driver) {
    boundary_void(|| {
        if !drv.is_null() {
            // SAFETY: the caller promises a live driver made by `Box::into_raw`, freed once.
            drop(unsafe { Box::from_raw(drv) });
        }
    });
}

/// A span and its DAHDI attributes (`DAHDI_SPANSTAT`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct xpp_span_info {
    /// Span number (1-based, across devices).
    pub spanno: u32,
    /// The first channel's number.
    pub basechan: u32,
    /// Its channel count.
    pub channels: u32,
    /// DAHDI alarm bits (`DAHDI_ALARM_*`).
    pub alarms: u32,
    /// 1 for a digital (PRI/BRI) span.
    pub is_digital: u32,
    /// Its name (`XBUS-00/XPD-00`), NUL-terminated.
    pub name: [c_char; 40],
}

/// A channel and its DAHDI attributes (`DAHDI_GET_PARAMS`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct xpp_chan_info {
    /// Channel number (1-based, across devices).
    pub channo: u32,
    /// Its span.
    pub spanno: u32,
    /// Its position in the span (1-based).
    pub chanpos: u32,
    /// Configured signalling (`DAHDI_SIG_*`; 0 = unconfigured).
    pub sig: u32,
    /// Signalling it supports (`DAHDI_SIG_*` bits).
    pub sigcap: u32,
    /// DAHDI alarm bits.
    pub alarms: u32,
    /// Its name (`XPP_FXS/00/00/0`), NUL-terminated.
    pub name: [c_char; 40],
}

/// How many spans the running devices have. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_span_count(drv: *const xpp_driver, out: *mut usize) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, d.driver().spans().len()) }
    })
}

/// The `index`th span (0-based, in span-number order). Thread-safe; the list may change
/// between calls when devices come and go.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_span_info(
    drv: *const xpp_driver,
    index: usize,
    out: *mut xpp_span_info,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let spans = d.driver().spans();
        let s = spans.get(index).ok_or(xpp_result::XPP_ERR_NO_SUCH_SPAN)?;
        let info = xpp_span_info {
            spanno: s.spanno,
            basechan: s.basechan,
            channels: s.channels,
            alarms: s.alarms.bits(),
            is_digital: u32::from(s.is_digital),
            name: name_field(&s.name),
        };
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, info) }
    })
}

/// How many channels the running devices have. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_channel_count(drv: *const xpp_driver, out: *mut usize) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, d.driver().channels().len()) }
    })
}

/// The `index`th channel (0-based, in channel-number order). Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_channel_info(
    drv: *const xpp_driver,
    index: usize,
    out: *mut xpp_chan_info,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let chans = d.driver().channels();
        let c = chans.get(index).ok_or(xpp_result::XPP_ERR_NO_SUCH_CHANNEL)?;
        let info = xpp_chan_info {
            channo: c.channo,
            spanno: c.spanno,
            chanpos: c.chanpos,
            sig: u32::from(c.sig),
            sigcap: c.sigcap.bits(),
            alarms: c.alarms.bits(),
            name: name_field(&c.name),
        };
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, info) }
    })
}

/// A span's DAHDI alarm bits. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_span_alarms(
    drv: *const xpp_driver,
    spanno: u32,
    out: *mut u32,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let alarms = d.driver().alarms(spanno).map_err(driver_error)?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, alarms.bits()) }
    })
}

/// Applies a `system.conf` (its text) the way `dahdi_cfg` does: validated as a whole,
/// applied only if valid. On [`xpp_result::XPP_ERR_CONFIG`] the message (with
/// `system.conf:line:column`) is copied into `err` (`err_len` bytes, truncated,
/// NUL-terminated; `err` may be `NULL`). Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `text` a NUL-terminated string; `err` is `NULL` or valid for
/// `err_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_apply_system_conf(
    drv: *const xpp_driver,
    text: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: the caller's promise on `text`.
        let text = unsafe { str_arg(text) }?;
        let applied = xpp_span::sysconf::parse_str("system.conf", text)
            .and_then(|conf| d.driver().apply_system_conf("system.conf", &conf));
        applied.map(|_| ()).map_err(|e| {
            // SAFETY: the caller's promise on `err`/`err_len`.
            unsafe { copy_text(&e.to_string(), err, err_len) };
            xpp_result::XPP_ERR_CONFIG
        })
    })
}

/// The 8-sample chunk `channo` received in its device's last tick, in the channel's law
/// (non-blocking). `chunk` is written only on success. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `chunk` is valid for writes of 8 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_read_chunk(
    drv: *const xpp_driver,
    channo: u32,
    chunk: *mut u8,
) -> xpp_result {
    boundary(|| {
        check_out(chunk)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let mut c = [0u8; 8];
        d.driver().read_chunk(channo, &mut c).map_err(driver_error)?;
        // SAFETY: checked not NULL; the caller promises 8 writable bytes.
        unsafe { put(chunk.cast::<[u8; 8]>(), c) }
    })
}

/// Waits up to `timeout_ms` for the next tick of `channo`'s device, then reads its chunk
/// ([`xpp_result::XPP_ERR_TIMEOUT`] if no tick came). Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `chunk` is valid for writes of 8 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_read_chunk_blocking(
    drv: *const xpp_driver,
    channo: u32,
    chunk: *mut u8,
    timeout_ms: u32,
) -> xpp_result {
    boundary(|| {
        check_out(chunk)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let mut c = [0u8; 8];
        let timeout = StdDuration::from_millis(u64::from(timeout_ms));
        d.driver().read_chunk_blocking(channo, &mut c, timeout).map_err(driver_error)?;
        // SAFETY: checked not NULL; the caller promises 8 writable bytes.
        unsafe { put(chunk.cast::<[u8; 8]>(), c) }
    })
}

/// The chunk `channo` sends in its device's next tick (non-blocking; an unwritten channel
/// sends silence). Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `chunk` is valid for reads of 8 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_write_chunk(
    drv: *const xpp_driver,
    channo: u32,
    chunk: *const u8,
) -> xpp_result {
    boundary(|| {
        if chunk.is_null() {
            return Err(xpp_result::XPP_ERR_NULL_ARGUMENT);
        }
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: not NULL; the caller promises 8 readable bytes.
        let c = unsafe { chunk.cast::<[u8; 8]>().read() };
        d.driver().write_chunk(channo, &c).map_err(driver_error)
    })
}

/// The oldest frame received on HDLC channel `channo` (a PRI D-channel configured `dchan`
/// / `hdlcfcs`) into `buf` (`len` bytes): in FCS mode with its two received FCS bytes at the
/// end, DAHDI's convention. `*out_len` is the frame's full length (more than `len`: the frame
/// was truncated, the rest dropped). [`xpp_result::XPP_ERR_WOULD_BLOCK`] when no frame waits.
/// Non-blocking; thread-safe.
///
/// # Safety
/// `drv` is a live driver; `buf` is valid for writes of `len` bytes; `out_len` is valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_read_frame(
    drv: *const xpp_driver,
    channo: u32,
    buf: *mut u8,
    len: usize,
    out_len: *mut usize,
) -> xpp_result {
    boundary(|| {
        check_out(buf)?;
        check_out(out_len)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: checked not NULL; the caller promises `len` writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        let n = d
            .driver()
            .read_frame(channo, out)
            .map_err(driver_error)?
            .ok_or(xpp_result::XPP_ERR_WOULD_BLOCK)?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out_len, n) }
    })
}

/// [`xpp_driver_read_frame`], waiting tick by tick up to `timeout_ms` for a frame
/// ([`xpp_result::XPP_ERR_TIMEOUT`] when none came). Thread-safe.
///
/// # Safety
/// As [`xpp_driver_read_frame`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_read_frame_blocking(
    drv: *const xpp_driver,
    channo: u32,
    buf: *mut u8,
    len: usize,
    out_len: *mut usize,
    timeout_ms: u32,
) -> xpp_result {
    boundary(|| {
        check_out(buf)?;
        check_out(out_len)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: checked not NULL; the caller promises `len` writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        let timeout = StdDuration::from_millis(u64::from(timeout_ms));
        let n = d.driver().read_frame_blocking(channo, out, timeout).map_err(driver_error)?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out_len, n) }
    })
}

/// Queues a frame of `len` bytes on HDLC channel `channo`; in FCS mode its last two bytes
/// are placeholders the FCS replaces (DAHDI's convention).
/// [`xpp_result::XPP_ERR_CHAN_REFUSED`] while every transmit slot is taken (try after a
/// tick) or for a frame too long or too short. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `frame` is valid for reads of `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_write_frame(
    drv: *const xpp_driver,
    channo: u32,
    frame: *const u8,
    len: usize,
) -> xpp_result {
    boundary(|| {
        if frame.is_null() {
            return Err(xpp_result::XPP_ERR_NULL_ARGUMENT);
        }
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: not NULL; the caller promises `len` readable bytes.
        let f = unsafe { std::slice::from_raw_parts(frame, len) };
        d.driver().write_frame(channo, f).map_err(driver_error)
    })
}

/// DAHDI's HDLC_RATE on channel `channo`: `kbps` 56 (the HDLC bits in the top seven bits of
/// each timeslot byte, the lowest sent as 1) or 64 (all eight, the default); anything else is
/// `XPP_ERR_INVALID_ARGUMENT`. Kept for the channel's soft HDLC now or later. Thread-safe.
///
/// # Safety
/// `drv` is a live driver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_set_hdlc_rate(
    drv: *const xpp_driver,
    channo: u32,
    kbps: u32,
) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let rate = xpp_span::xbus::HdlcRate::from_kbps(kbps).ok_or(xpp_result::XPP_ERR_INVALID_ARGUMENT)?;
        d.driver().set_hdlc_rate(channo, rate).map_err(driver_error)
    })
}

/// DAHDI's SETTXBITS: the ABCD bits (A in bit 3) sent for CAS channel `channo`.
/// Thread-safe.
///
/// # Safety
/// `drv` is a live driver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_set_tx_bits(drv: *const xpp_driver, channo: u32, abcd: u8) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        d.driver().set_tx_bits(channo, abcd).map_err(driver_error)
    })
}

/// DAHDI's GETRXBITS: `*abcd` is the ABCD bits last received for CAS channel `channo`;
/// [`xpp_result::XPP_ERR_WOULD_BLOCK`] before any were received. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `abcd` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_rx_bits(
    drv: *const xpp_driver,
    channo: u32,
    abcd: *mut u8,
) -> xpp_result {
    boundary(|| {
        check_out(abcd)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let bits =
            d.driver().rx_bits(channo).map_err(driver_error)?.ok_or(xpp_result::XPP_ERR_WOULD_BLOCK)?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(abcd, bits) }
    })
}

/// [`xpp_driver_read_chunk`] as 8 signed 16-bit linear samples (DAHDI's SETLINEAR).
/// Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `samples` is valid for writes of 8 `int16_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_read_chunk_linear(
    drv: *const xpp_driver,
    channo: u32,
    samples: *mut i16,
) -> xpp_result {
    boundary(|| {
        check_out(samples)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let mut c = [0i16; 8];
        d.driver().read_chunk_linear(channo, &mut c).map_err(driver_error)?;
        // SAFETY: checked not NULL; the caller promises 8 writable samples.
        unsafe { put(samples.cast::<[i16; 8]>(), c) }
    })
}

/// [`xpp_driver_write_chunk`] from 8 signed 16-bit linear samples. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `samples` is valid for reads of 8 `int16_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_write_chunk_linear(
    drv: *const xpp_driver,
    channo: u32,
    samples: *const i16,
) -> xpp_result {
    boundary(|| {
        if samples.is_null() {
            return Err(xpp_result::XPP_ERR_NULL_ARGUMENT);
        }
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: not NULL; the caller promises 8 readable samples.
        let c = unsafe { samples.cast::<[i16; 8]>().read() };
        d.driver().write_chunk_linear(channo, &c).map_err(driver_error)
    })
}

/// DAHDI_SETLAW on `channo`: 0 the span's default, 1 mu-law, 2 A-law; chunks are converted
/// between it and the hardware's law. Thread-safe.
///
/// # Safety
/// `drv` is a live driver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_set_law(drv: *const xpp_driver, channo: u32, law: u32) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let law = xpp_span::Law::from(law);
        if matches!(law, xpp_span::Law::Unknown(_)) {
            return Err(xpp_result::XPP_ERR_INVALID_ARGUMENT);
        }
        d.driver().set_law(channo, law).map_err(driver_error)
    })
}

/// [`xpp_driver_apply_system_conf`] from a file (at most 1 MiB is read; a device or a pipe
/// is fine). The error message names `path:line:column`. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `path` a NUL-terminated string; `err` is `NULL` or valid for
/// `err_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_load_system_conf(
    drv: *const xpp_driver,
    path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: the caller's promise on `path`.
        let path = unsafe { str_arg(path) }?;
        d.driver().load_system_conf(std::path::Path::new(path)).map(|_| ()).map_err(|e| {
            // SAFETY: the caller's promise on `err`/`err_len`.
            unsafe { copy_text(&e.to_string(), err, err_len) };
            xpp_result::XPP_ERR_CONFIG
        })
    })
}

/// DAHDI_HOOK on `channo`: `cmd` is DAHDI's number (0 ONHOOK, 1 OFFHOOK, 2 WINK, 3 FLASH,
/// 4 START, 5 RING, 6 RINGOFF). `blocking` non-zero waits until a wink/flash/start has
/// ended; otherwise it completes with a HOOKCOMPLETE event. Thread-safe.
///
/// # Safety
/// `drv` is a live driver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_set_hook(
    drv: *const xpp_driver,
    channo: u32,
    cmd: c_int,
    blocking: c_int,
) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let cmd = HookCmd::from(cmd);
        if matches!(cmd, HookCmd::Unknown(_)) {
            return Err(xpp_result::XPP_ERR_INVALID_ARGUMENT);
        }
        let mode = if blocking != 0 { HookMode::Blocking } else { HookMode::NonBlocking };
        d.driver().set_hook(channo, cmd, mode).map(|_| ()).map_err(driver_error)
    })
}

/// Sets a channel's signalling (`DAHDI_SIG_*`, as `system.conf`'s keywords do). Thread-safe.
///
/// # Safety
/// `drv` is a live driver.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_configure_channel(
    drv: *const xpp_driver,
    channo: u32,
    sig: u32,
) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let sig = Sig::from(sig);
        if matches!(sig, Sig::Unknown(_)) {
            return Err(xpp_result::XPP_ERR_INVALID_ARGUMENT);
        }
        d.driver().configure_chan(channo, sig).map_err(driver_error)
    })
}

// ----- events -----------------------------------------------------------------------------

/// [`xpp_event::kind`]: a device is up; `device`, `first_chan`..`last_chan`.
pub const XPP_EVENT_DEVICE_READY: u32 = 1;
/// A channel's DAHDI event: `channo`, `event` (DAHDI_EVENT_* number).
pub const XPP_EVENT_CHANNEL: u32 = 2;
/// A span's alarm word changed: `spanno`, `alarms`.
pub const XPP_EVENT_SPAN_ALARMS: u32 = 3;
/// A device was unplugged (every channel got REMOVED): `device`.
pub const XPP_EVENT_DEVICE_REMOVED: u32 = 4;
/// A device was closed in order: `device`.
pub const XPP_EVENT_DEVICE_CLOSED: u32 = 5;
/// A device's data endpoint kept failing and was given up: `device`.
pub const XPP_EVENT_DEVICE_FAILED: u32 = 6;
/// A TwinStar controller event (role, health, failover; see [`xpp_twinstar_status()`]).
pub const XPP_EVENT_TWINSTAR: u32 = 7;
/// A device's spans are registered in standby (in RED alarm) while it is not on this host:
/// `device`, `first_chan`, `last_chan`. `XPP_EVENT_DEVICE_READY` follows when it is back.
pub const XPP_EVENT_DEVICE_STANDBY: u32 = 8;
/// Anything else (bring-up progress, sync reports); the fields are 0.
pub const XPP_EVENT_OTHER: u32 = 99;

/// One driver event.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct xpp_event {
    /// `XPP_EVENT_*`.
    pub kind: u32,
    /// The device's number.
    pub device: u32,
    /// The channel ([`XPP_EVENT_CHANNEL`]).
    pub channo: u32,
    /// DAHDI's event number ([`XPP_EVENT_CHANNEL`]).
    pub event: i32,
    /// The span ([`XPP_EVENT_SPAN_ALARMS`]).
    pub spanno: u32,
    /// DAHDI alarm bits ([`XPP_EVENT_SPAN_ALARMS`]).
    pub alarms: u32,
    /// First channel ([`XPP_EVENT_DEVICE_READY`]).
    pub first_chan: u32,
    /// Last channel ([`XPP_EVENT_DEVICE_READY`]).
    pub last_chan: u32,
}

fn c_event(e: &DriverEvent) -> xpp_event {
    let mut out = xpp_event { kind: XPP_EVENT_OTHER, ..xpp_event::default() };
    match e {
        DriverEvent::DeviceReady { device, channels, .. } => {
            out.kind = XPP_EVENT_DEVICE_READY;
            out.device = device.0 as u32;
            (out.first_chan, out.last_chan) = (*channels.start(), *channels.end());
        }
        DriverEvent::Chan { device, channo, event, .. } => {
            out.kind = XPP_EVENT_CHANNEL;
            out.device = device.0 as u32;
            out.channo = *channo;
            out.event = event.0;
        }
        DriverEvent::SpanAlarms { device, spanno, alarms } => {
            out.kind = XPP_EVENT_SPAN_ALARMS;
            out.device = device.0 as u32;
            out.spanno = *spanno;
            out.alarms = alarms.bits();
        }
        DriverEvent::DeviceRemoved { device } => {
            out.kind = XPP_EVENT_DEVICE_REMOVED;
            out.device = device.0 as u32;
        }
        DriverEvent::DeviceClosed { device } => {
            out.kind = XPP_EVENT_DEVICE_CLOSED;
            out.device = device.0 as u32;
        }
        DriverEvent::DeviceFailed { device, .. } => {
            out.kind = XPP_EVENT_DEVICE_FAILED;
            out.device = device.0 as u32;
        }
        DriverEvent::DeviceStandby { device, channels, .. } => {
            out.kind = XPP_EVENT_DEVICE_STANDBY;
            out.device = device.0 as u32;
            (out.first_chan, out.last_chan) = (*channels.start(), *channels.end());
        }
        DriverEvent::TwinStar(_) => out.kind = XPP_EVENT_TWINSTAR,
        _ => {}
    }
    out
}

/// A file descriptor that is readable while events are queued: put it in the PBX's own
/// `poll()`/`epoll` set, then call [`xpp_driver_poll_event`] until it returns
/// [`xpp_result::XPP_ERR_WOULD_BLOCK`]. Owned by the driver: never close or read it. Valid
/// until [`xpp_driver_free`]. Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_event_fd(drv: *const xpp_driver, out: *mut c_int) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, d.signal_rx.as_raw_fd()) }
    })
}

/// A file descriptor that becomes readable at every tick of device `device` (the device's
/// number, as in [`xpp_event`]): one byte per tick, so a PBX running its own `poll()`/`epoll`
/// loop reads and writes its chunks once per wake-up and finds, in the number of bytes, the
/// ticks it fell behind (at most the socket's buffer). Owned by the driver: never close it;
/// read it to drain. The same descriptor on every call for a device; valid until
/// [`xpp_driver_free`] (after the device goes it stays quiet). Thread-safe.
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_tick_fd(
    drv: *const xpp_driver,
    device: u32,
    out: *mut c_int,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let id = ::xpp_driver::DeviceId(device as usize);
        d.driver().tick_count(id).map_err(driver_error)?;
        let mut ticks = d.ticks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, rx, _)) = ticks.iter().find(|(dev, _, _)| *dev == device) {
            // SAFETY: checked not NULL; the caller promises it is writable.
            return unsafe { put(out, rx.as_raw_fd()) };
        }
        let (mut tx, rx) = UnixStream::pair().map_err(|_| xpp_result::XPP_ERR_IO)?;
        rx.set_nonblocking(true).map_err(|_| xpp_result::XPP_ERR_IO)?;
        tx.set_nonblocking(true).map_err(|_| xpp_result::XPP_ERR_IO)?;
        let (drv, stop) = (Arc::clone(d.driver()), Arc::clone(&d.stop));
        let thread = std::thread::Builder::new()
            .name(format!("xpp-ffi-tick-{device}"))
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match drv.wait_tick(id, StdDuration::from_millis(50)) {
                        // A full buffer only means the PBX is far behind: the byte count is a
                        // hint, the chunks are the truth.
                        Ok(_) => drop(tx.write(&[1])),
                        Err(::xpp_driver::DriverError::Timeout) => {}
                        // The device went: quiet until the driver is freed.
                        Err(_) => std::thread::sleep(StdDuration::from_millis(50)),
                    }
                }
            })
            .map_err(|_| xpp_result::XPP_ERR_THREAD)?;
        let fd = rx.as_raw_fd();
        ticks.push((device, rx, thread));
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, fd) }
    })
}

/// The next queued event into `*out`, or [`xpp_result::XPP_ERR_WOULD_BLOCK`] when none is
/// queued (`*out` unchanged). Events come in the order the driver produced them; at most
/// 4096 are kept unread (the oldest are dropped). Thread-safe (one event goes to one caller).
///
/// # Safety
/// `drv` is a live driver; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_poll_event(drv: *const xpp_driver, out: *mut xpp_event) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        let e = d.events.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        let e = e.ok_or(xpp_result::XPP_ERR_WOULD_BLOCK)?;
        let mut byte = [0u8; 1];
        let _ = (&d.signal_rx).read(&mut byte);
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, c_event(&e)) }
    })
}

// ----- TwinStar ---------------------------------------------------------------------------

/// [`xpp_twinstar_start`]'s `role`: this host drives the lines.
pub const XPP_ROLE_MASTER: u32 = 0;
/// [`xpp_twinstar_start`]'s `role`: this host waits, warm, for the lines.
pub const XPP_ROLE_BACKUP: u32 = 1;

/// [`xpp_twinstar_command`]: move the lines to the other host now (refused without power).
pub const XPP_TWINSTAR_JUMP: u32 = 1;
/// [`xpp_twinstar_command`]: arm the watchdogs.
pub const XPP_TWINSTAR_ENABLE_WATCHDOG: u32 = 2;
/// [`xpp_twinstar_command`]: disarm the watchdogs.
pub const XPP_TWINSTAR_DISABLE_WATCHDOG: u32 = 3;

/// A PBX health check: returns non-zero when the PBX is healthy. Called on a worker thread of
/// the library, one call at a time, with the `user_data` given to [`xpp_twinstar_start`]; a
/// call that hangs counts as failed at its deadline.
pub type xpp_health_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> c_int>;

/// A TwinStar controller running on a driver. Opaque.
pub struct xpp_twinstar {
    host: Option<TwinStarHost>,
}

/// The user data of a health callback, sent to the library's health thread.
struct UserData(*mut c_void);
// SAFETY: the C caller promises (xpp_twinstar_start's contract) that its callback may be
// called with this pointer from another thread.
unsafe impl Send for UserData {}

impl UserData {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    const fn ptr(&self) -> *mut c_void {
        self.0
    }
}

/// Starts TwinStar failover for the device at `target` (one Astribank; its USB port on this
/// host) on `drv`, in `role` ([`XPP_ROLE_MASTER`] or [`XPP_ROLE_BACKUP`]), with `health`
/// (`NULL`: always healthy). The device is taken over when it is on this host's port.
/// Controller events reach the driver's event queue as [`XPP_EVENT_TWINSTAR`]. Thread-safe.
///
/// # Safety
/// `drv` is a live driver (freed only after this controller); `target` a NUL-terminated
/// string; `health`, if not `NULL`, may be called from another thread with `user_data`
/// until [`xpp_twinstar_free`] returns; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_twinstar_start(
    drv: *const xpp_driver,
    target: *const c_char,
    firmware_dir: *const c_char,
    role: u32,
    health: xpp_health_fn,
    user_data: *mut c_void,
    out: *mut *mut xpp_twinstar,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `drv`.
        let d = unsafe { handle(drv) }?;
        // SAFETY: the caller's promise on `target`.
        let target: Target =
            unsafe { str_arg(target) }?.parse().map_err(|_| xpp_result::XPP_ERR_INVALID_ARGUMENT)?;
        let role = match role {
            XPP_ROLE_MASTER => Role::Master,
            XPP_ROLE_BACKUP => Role::Backup,
            _ => return Err(xpp_result::XPP_ERR_INVALID_ARGUMENT),
        };
        let fw = firmware(firmware_dir)?;
        let data = UserData(user_data);
        let check = move || match health {
            // SAFETY: the caller's promise: `f` may be called with `user_data` from this
            // thread until the controller is freed (its health thread is joined before).
            Some(f) => (unsafe { f(data.ptr()) }) != 0,
            None => true,
        };
        let host =
            TwinStarHost::start(Arc::clone(d.driver()), vec![target], role, check, TwinStarOptions::new(fw))
                .map_err(|_| xpp_result::XPP_ERR_THREAD)?;
        let h = Box::new(xpp_twinstar { host: Some(host) });
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, Box::into_raw(h)) }
    })
}

/// What a TwinStar controller knows now.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xpp_twinstar_state {
    /// [`XPP_ROLE_MASTER`] or [`XPP_ROLE_BACKUP`].
    pub role: u32,
    /// 1 if the last health check passed.
    pub healthy: u32,
    /// 1 while this host holds the device.
    pub holds_device: u32,
    /// 1 once an orderly stop has completed.
    pub stopped: u32,
}

/// The controller's status. Thread-safe.
///
/// # Safety
/// `ts` is a live controller; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_twinstar_status(
    ts: *const xpp_twinstar,
    out: *mut xpp_twinstar_state,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `ts`.
        let t = unsafe { handle(ts) }?;
        let st = t.host.as_ref().ok_or(xpp_result::XPP_ERR_NULL_ARGUMENT)?.status();
        let status = xpp_twinstar_state {
            role: if st.role == Role::Master { XPP_ROLE_MASTER } else { XPP_ROLE_BACKUP },
            healthy: u32::from(st.healthy),
            holds_device: u32::from(st.devices.iter().any(Option::is_some)),
            stopped: u32::from(st.stopped),
        };
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, status) }
    })
}

/// An operator's command: [`XPP_TWINSTAR_JUMP`], [`XPP_TWINSTAR_ENABLE_WATCHDOG`] or
/// [`XPP_TWINSTAR_DISABLE_WATCHDOG`]; its outcome comes as events. Thread-safe.
///
/// # Safety
/// `ts` is a live controller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_twinstar_command(ts: *const xpp_twinstar, command: u32) -> xpp_result {
    boundary(|| {
        // SAFETY: the caller's promise on `ts`.
        let t = unsafe { handle(ts) }?;
        let command = match command {
            XPP_TWINSTAR_JUMP => Command::Jump,
            XPP_TWINSTAR_ENABLE_WATCHDOG => Command::EnableWatchdog,
            XPP_TWINSTAR_DISABLE_WATCHDOG => Command::DisableWatchdog,
            _ => return Err(xpp_result::XPP_ERR_INVALID_ARGUMENT),
        };
        t.host.as_ref().ok_or(xpp_result::XPP_ERR_NULL_ARGUMENT)?.command(command);
        Ok(())
    })
}

/// One phase of a failover timeline.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct xpp_phase {
    /// `XPP_PHASE_*`.
    pub phase: u32,
    /// Start, in microseconds of the driver's clock.
    pub start_us: u64,
    /// Duration in microseconds.
    pub duration_us: u64,
}

/// [`xpp_phase::phase`]: master, first failed health check to the decision.
pub const XPP_PHASE_DETECT: u32 = 1;
/// Master: TWS_PORT_SET (or the release) until the device left.
pub const XPP_PHASE_HAND_OVER: u32 = 2;
/// Backup: the device re-enumerating on this port.
pub const XPP_PHASE_ENUMERATE: u32 = 3;
/// Backup: attach and verify until the spans are up.
pub const XPP_PHASE_TAKE_OVER: u32 = 4;
/// Backup: spans up until the first audio frame.
pub const XPP_PHASE_FIRST_AUDIO: u32 = 5;
/// Backup: the verify failed; a full init (calls on the device lost).
pub const XPP_PHASE_FULL_INIT: u32 = 6;

/// The last failover's phases on this host into `phases` (room for `capacity`), their count
/// into `*count` (0 before any failover; more than `capacity` if the array was too small:
/// only `capacity` were written). Thread-safe.
///
/// # Safety
/// `ts` is a live controller; `phases` is valid for `capacity` writes (may be `NULL` when
/// `capacity` is 0); `count` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_twinstar_last_timeline(
    ts: *const xpp_twinstar,
    phases: *mut xpp_phase,
    capacity: usize,
    count: *mut usize,
) -> xpp_result {
    boundary(|| {
        check_out(count)?;
        if capacity > 0 {
            check_out(phases)?;
        }
        // SAFETY: the caller's promise on `ts`.
        let t = unsafe { handle(ts) }?;
        let st = t.host.as_ref().ok_or(xpp_result::XPP_ERR_NULL_ARGUMENT)?.status();
        let spans = st.last_failover.as_ref().map(|t| t.phases().to_vec()).unwrap_or_default();
        for (i, p) in spans.iter().take(capacity).enumerate() {
            let phase = match p.phase {
                Phase::Detect => XPP_PHASE_DETECT,
                Phase::HandOver => XPP_PHASE_HAND_OVER,
                Phase::Enumerate => XPP_PHASE_ENUMERATE,
                Phase::TakeOver => XPP_PHASE_TAKE_OVER,
                Phase::FirstAudio => XPP_PHASE_FIRST_AUDIO,
                Phase::FullInit => XPP_PHASE_FULL_INIT,
                _ => 0,
            };
            let c =
                xpp_phase { phase, start_us: p.start.total_micros(), duration_us: p.duration.total_micros() };
            // SAFETY: `i < capacity`, and the caller promises `capacity` writable elements.
            unsafe { phases.add(i).write(c) };
        }
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(count, spans.len()) }
    })
}

/// Stops the controller in order (watchdogs disarmed first, never a jump; waited for at
/// most 5 s) and releases it. `NULL` is accepted. Not thread-safe for this controller.
///
/// # Safety
/// `ts` is `NULL` or a live controller, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_twinstar_free(ts: *mut xpp_twinstar) {
    boundary_void(|| {
        if ts.is_null() {
            return;
        }
        // SAFETY: the caller promises a live controller made by `Box::into_raw`, freed once.
        let mut t = unsafe { Box::from_raw(ts) };
        if let Some(host) = t.host.take() {
            host.stop(StdDuration::from_secs(5));
        }
    });
}

/// For tests of the panic boundary: panics inside the boundary when `do_panic` is non-zero.
#[doc(hidden)]
#[unsafe(no_mangle)]
pub extern "C" fn xpp_test_panic_boundary(do_panic: c_int) -> xpp_result {
    boundary(|| {
        assert!(do_panic == 0, "xpp_test_panic_boundary: a panic, as asked");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_becomes_an_error_code() {
        assert_eq!(xpp_test_panic_boundary(0), xpp_result::XPP_OK);
        assert_eq!(xpp_test_panic_boundary(1), xpp_result::XPP_ERR_PANIC);
    }

    #[test]
    fn bad_arguments_give_codes_and_leave_out_parameters_alone() {
        let mut n = 77usize;
        // SAFETY: a NULL driver is one of the documented inputs; `n` is writable.
        let r = unsafe { xpp_driver_span_count(std::ptr::null(), &mut n) };
        assert_eq!(r, xpp_result::XPP_ERR_NULL_ARGUMENT);
        assert_eq!(n, 77);
        let mut drv: *mut xpp_driver = std::ptr::null_mut();
        // SAFETY: valid C strings and a writable out-parameter.
        let r = unsafe { xpp_driver_open(c"floppy:0".as_ptr(), std::ptr::null(), &mut drv) };
        assert_eq!(r, xpp_result::XPP_ERR_INVALID_ARGUMENT);
        assert!(drv.is_null());
        // SAFETY: NULL is accepted by every `_free`.
        unsafe {
            xpp_driver_free(std::ptr::null_mut());
            xpp_twinstar_free(std::ptr::null_mut());
        }
        let mut count = 5usize;
        // SAFETY: a NULL controller is a documented input.
        let r = unsafe { xpp_twinstar_last_timeline(std::ptr::null(), std::ptr::null_mut(), 0, &mut count) };
        assert_eq!((r, count), (xpp_result::XPP_ERR_NULL_ARGUMENT, 5));
    }

    #[test]
    fn result_codes_are_the_drivers_numbers_and_are_pinned() {
        use ::xpp_driver::ErrorCode as C;
        for (code, ours) in [
            (C::NoSuchChannel, xpp_result::XPP_ERR_NO_SUCH_CHANNEL),
            (C::NoSuchSpan, xpp_result::XPP_ERR_NO_SUCH_SPAN),
            (C::NoSuchDevice, xpp_result::XPP_ERR_NO_SUCH_DEVICE),
            (C::ChanRemoved, xpp_result::XPP_ERR_CHAN_REMOVED),
            (C::ChanRefused, xpp_result::XPP_ERR_CHAN_REFUSED),
            (C::Refused, xpp_result::XPP_ERR_REFUSED),
            (C::Timeout, xpp_result::XPP_ERR_TIMEOUT),
            (C::BringUp, xpp_result::XPP_ERR_BRING_UP),
            (C::Setup, xpp_result::XPP_ERR_SETUP),
            (C::Thread, xpp_result::XPP_ERR_THREAD),
            (C::Open, xpp_result::XPP_ERR_OPEN),
            (C::Mgmt, xpp_result::XPP_ERR_MGMT),
            (C::NoMgmtInterface, xpp_result::XPP_ERR_NO_MGMT_INTERFACE),
            (C::Standby, xpp_result::XPP_ERR_STANDBY),
        ] {
            assert_eq!(code as u32, ours as u32, "{code:?}");
        }
        let ours = [
            (xpp_result::XPP_ERR_NULL_ARGUMENT, 100),
            (xpp_result::XPP_ERR_INVALID_ARGUMENT, 101),
            (xpp_result::XPP_ERR_PANIC, 102),
            (xpp_result::XPP_ERR_WOULD_BLOCK, 103),
            (xpp_result::XPP_ERR_CONFIG, 104),
            (xpp_result::XPP_ERR_IO, 105),
            (xpp_result::XPP_ERR_UNKNOWN, 199),
        ];
        for (r, n) in ours {
            assert_eq!(r as u32, n);
            // SAFETY: the text is a static NUL-terminated string.
            assert!(!unsafe { CStr::from_ptr(xpp_result_text(r)) }.to_bytes().is_empty());
        }
    }

    /// A Q.921 link over the emulated E1's D-channel through the C functions: frames with
    /// DAHDI's FCS convention, WOULD_BLOCK when none waits, truncation reported by length.
    #[cfg(feature = "emulator")]
    #[test]
    fn d_channel_frames_through_the_c_abi() {
        use crate::emulator::{
            xpp_driver_open_emulator, xpp_emulator, xpp_emulator_free, xpp_emulator_new_pri,
        };
        const DCHAN: u32 = 30;
        let mut emu: *mut xpp_emulator = std::ptr::null_mut();
        let mut drv: *mut xpp_driver = std::ptr::null_mut();
        // SAFETY: writable out-parameters; the emulator outlives the driver (freed after it).
        unsafe {
            assert_eq!(xpp_emulator_new_pri(1, &mut emu), xpp_result::XPP_OK);
            assert_eq!(xpp_driver_open_emulator(emu, std::ptr::null(), &mut drv), xpp_result::XPP_OK);
        }
        let mut buf = [0u8; 64];
        let mut n = 0usize;
        // SAFETY: a live driver, buffers of the lengths given.
        unsafe {
            assert_eq!(
                xpp_driver_read_frame(drv, DCHAN, buf.as_mut_ptr(), buf.len(), &mut n),
                xpp_result::XPP_ERR_WOULD_BLOCK
            );
            assert_eq!(
                xpp_driver_read_frame(drv, 15, buf.as_mut_ptr(), buf.len(), &mut n),
                xpp_result::XPP_ERR_CHAN_REFUSED
            );
            assert_eq!(
                xpp_driver_write_frame(drv, DCHAN, [2u8, 1].as_ptr(), 2),
                xpp_result::XPP_ERR_CHAN_REFUSED
            );
            let mut up = false;
            for _ in 0..10 {
                // SABME with its two FCS placeholders; UA back (F = 1), as Q.921's T200 would retry.
                assert_eq!(
                    xpp_driver_write_frame(drv, DCHAN, [2u8, 1, 0x7F, 0, 0].as_ptr(), 5),
                    xpp_result::XPP_OK
                );
                if xpp_driver_read_frame_blocking(drv, DCHAN, buf.as_mut_ptr(), buf.len(), &mut n, 300)
                    == xpp_result::XPP_OK
                    && n == 5
                    && buf[2] == 0x73
                {
                    up = true;
                    break;
                }
            }
            assert!(up, "UA within 10 tries");
            // An I-frame with P: the RR answer, read into a 3-byte buffer: the full length
            // comes back, the bytes that fit are written.
            let i = [2u8, 1, 0, 1, 0x08, 0x01, 0x00, 0x05, 0, 0];
            let mut small = [0u8; 3];
            let mut acked = false;
            for _ in 0..10 {
                assert_eq!(xpp_driver_write_frame(drv, DCHAN, i.as_ptr(), i.len()), xpp_result::XPP_OK);
                let r =
                    xpp_driver_read_frame_blocking(drv, DCHAN, small.as_mut_ptr(), small.len(), &mut n, 300);
                if (r, n, small[2]) == (xpp_result::XPP_OK, 6, 0x01) {
                    acked = true;
                    break;
                }
            }
            assert!(acked, "RR (address, control, N(R), FCS) within 10 tries, truncated to 3 bytes");
            let mut bits = 0u8;
            assert_eq!(
                xpp_driver_rx_bits(drv, 15, &mut bits),
                xpp_result::XPP_ERR_CHAN_REFUSED,
                "a CCS span has no CAS"
            );
            // HDLC_RATE: 56 or 64 only.
            assert_eq!(xpp_driver_set_hdlc_rate(drv, DCHAN, 48), xpp_result::XPP_ERR_INVALID_ARGUMENT);
            assert_eq!(xpp_driver_set_hdlc_rate(drv, DCHAN, 56), xpp_result::XPP_OK);
            assert_eq!(xpp_driver_set_hdlc_rate(drv, DCHAN, 64), xpp_result::XPP_OK);
            assert_eq!(
                xpp_driver_set_hdlc_rate(std::ptr::null(), DCHAN, 64),
                xpp_result::XPP_ERR_NULL_ARGUMENT
            );
            // The tick descriptor: readable, about one byte per ms; the same one again.
            let mut fd: c_int = -1;
            assert_eq!(xpp_driver_tick_fd(drv, 0, &mut fd), xpp_result::XPP_OK);
            let mut again: c_int = -1;
            assert_eq!(xpp_driver_tick_fd(drv, 0, &mut again), xpp_result::XPP_OK);
            assert_eq!(fd, again);
            assert_eq!(xpp_driver_tick_fd(drv, 7, &mut again), xpp_result::XPP_ERR_NO_SUCH_DEVICE);
            std::thread::sleep(StdDuration::from_millis(100));
            use std::os::fd::FromRawFd;
            // The driver owns the descriptor: borrowed, never closed here.
            let stream = std::mem::ManuallyDrop::new(UnixStream::from_raw_fd(fd));
            let mut got = [0u8; 4096];
            let n = Read::read(&mut &*stream, &mut got).unwrap();
            assert!((20..=400).contains(&n), "{n} ticks signalled in 100 ms");
            xpp_driver_free(drv);
            xpp_emulator_free(emu);
        }
    }

    #[test]
    fn copy_text_truncates_and_terminates() {
        let mut buf = [1 as c_char; 6];
        // SAFETY: `buf` has 6 writable bytes.
        unsafe { copy_text("system.conf:2:1", buf.as_mut_ptr(), buf.len()) };
        // SAFETY: copy_text NUL-terminated it.
        assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str(), Ok("syste"));
    }
}
