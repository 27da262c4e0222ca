//! The backend's only `unsafe` code: one libusb transfer behind a safe API ([`Transfer`]),
//! and the thread that runs libusb's event loop ([`EventThread`]).
//!
//! # Ownership while in flight
//!
//! A [`Transfer`] is an `Arc<Inner>`; `Inner` owns the `libusb_transfer` (from
//! `libusb_alloc_transfer`, freed in `Inner`'s `Drop`) and a `Mutex<State>`:
//!
//! - `Idle`: libusb does not know the transfer; only here is it filled in and submitted,
//!   with the lock held across `libusb_submit_transfer`.
//! - `InFlight(buffer)`: libusb holds the pointer and length of `buffer`'s heap block. The
//!   `Vec` stays in the state (moving a `Vec` does not move its heap block) and nothing takes
//!   it out until the callback has run. `user_data` holds one extra `Arc<Inner>` (leaked by
//!   `start`, reclaimed by the callback), so neither the transfer, nor the buffer, nor the
//!   device handle in its target can be freed while libusb may still use them, whatever the
//!   owner of the [`Transfer`] does.
//! - `Done(result)`: the callback stored libusb's `status` and `actual_length` with the
//!   buffer; [`Transfer::take`] returns them and goes back to `Idle`.
//!
//! `libusb_cancel_transfer` is only called in `InFlight`, under the lock, so it never races
//! with the fill of a resubmission. The callback takes the lock after libusb has cleared its
//! own in-flight flag and holds no libusb lock, so a concurrent cancel just gets
//! `LIBUSB_ERROR_NOT_FOUND`. The callback never panics (an unwind across `extern "system"`
//! would abort).

#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusb::ffi::{self, constants};
use rusb::{Context, DeviceHandle, UsbContext};

use super::queue::{Finished, Signal, Slot};

/// How long one `libusb_handle_events_timeout_completed` call may block; stopping the thread
/// interrupts it sooner (`libusb_interrupt_event_handler`).
const EVENT_SLICE: Duration = Duration::from_millis(100);

/// The libusb transfer type of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `LIBUSB_TRANSFER_TYPE_BULK`.
    Bulk,
    /// `LIBUSB_TRANSFER_TYPE_INTERRUPT`.
    Interrupt,
}

/// Where a transfer goes: the open device, an endpoint address and its type.
pub(crate) struct Target {
    pub(crate) handle: Arc<DeviceHandle<Context>>,
    pub(crate) endpoint: u8,
    pub(crate) kind: Kind,
}

enum State {
    Idle,
    InFlight(Vec<u8>),
    Done(Finished),
}

struct Inner {
    raw: NonNull<ffi::libusb_transfer>,
    /// `None` only for the tests' detached transfers, which libusb never sees.
    target: Option<Target>,
    signal: Arc<Signal>,
    state: Mutex<State>,
}

// SAFETY: the raw transfer is only touched with `state` locked (fill and submit in `Idle`,
// cancel in `InFlight`, the callback's reads of the result), or in `Drop` when no other
// reference exists; libusb serialises its own use of it internally. The other fields are
// `Send + Sync` (`DeviceHandle<Context>` is, per rusb).
unsafe impl Send for Inner {}
// SAFETY: as for `Send`: shared access goes through `state`'s lock.
unsafe impl Sync for Inner {}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `libusb_alloc_transfer` and is freed only here, once. It is
        // not in flight: an in-flight transfer holds a reference to this `Inner` in its
        // `user_data` until its callback has run, so `Inner` cannot be dropped before then.
        unsafe { ffi::libusb_free_transfer(self.raw.as_ptr()) };
    }
}

/// One reusable libusb transfer on one endpoint. See the [module documentation](self).
#[derive(Clone)]
pub(crate) struct Transfer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer").finish_non_exhaustive()
    }
}

impl Transfer {
    /// A new idle transfer to `target`, notifying `signal` on completion; `None` if libusb
    /// cannot allocate it.
    pub(crate) fn new(signal: &Arc<Signal>, target: Target) -> Option<Self> {
        Self::alloc(signal, Some(target))
    }

    fn alloc(signal: &Arc<Signal>, target: Option<Target>) -> Option<Self> {
        // SAFETY: no preconditions; returns a zeroed transfer with no isochronous packets, or
        // NULL.
        let raw = NonNull::new(unsafe { ffi::libusb_alloc_transfer(0) })?;
        let inner = Inner { raw, target, signal: Arc::clone(signal), state: Mutex::new(State::Idle) };
        Some(Self { inner: Arc::new(inner) })
    }
}

impl Slot for Transfer {
    fn start(&self, mut buffer: Vec<u8>) -> Result<(), (c_int, Vec<u8>)> {
        let Ok(length) = c_int::try_from(buffer.len()) else {
            return Err((constants::LIBUSB_ERROR_INVALID_PARAM, buffer));
        };
        let mut state = self.inner.lock();
        if !matches!(*state, State::Idle) {
            return Err((constants::LIBUSB_ERROR_BUSY, buffer));
        }
        let raw = self.inner.raw.as_ptr();
        let data = buffer.as_mut_ptr();
        let user_data = Arc::into_raw(Arc::clone(&self.inner)).cast_mut().cast::<c_void>();
        let r = match &self.inner.target {
            Some(t) => {
                let fill = match t.kind {
                    Kind::Bulk => ffi::libusb_fill_bulk_transfer,
                    Kind::Interrupt => ffi::libusb_fill_interrupt_transfer,
                };
                // SAFETY: `raw` is a live transfer that libusb does not own (state `Idle`, lock
                // held), so we may fill and submit it. `data` points to `length` initialised
                // bytes of `buffer`, whose heap block stays put in `State::InFlight` until the
                // callback has run. The device handle outlives the transfer: `user_data` keeps
                // this `Inner`, and with it `t.handle`, alive until then. Timeout 0 = none;
                // callers cancel instead.
                unsafe {
                    fill(raw, t.handle.as_raw(), t.endpoint, data, length, on_complete, user_data, 0);
                    ffi::libusb_submit_transfer(raw)
                }
            }
            #[cfg(test)]
            None => {
                // SAFETY: as above for `raw` and `data`; this detached transfer is never given
                // to libusb: `fake_complete` plays libusb's part on the test's thread.
                unsafe {
                    (*raw).buffer = data;
                    (*raw).length = length;
                    (*raw).user_data = user_data;
                }
                0
            }
            #[cfg(not(test))]
            None => constants::LIBUSB_ERROR_NOT_SUPPORTED,
        };
        if r == 0 {
            *state = State::InFlight(buffer);
            Ok(())
        } else {
            // SAFETY: libusb refused the transfer and will never call back, so the reference
            // leaked into `user_data` above is reclaimed here, once.
            drop(unsafe { Arc::from_raw(user_data.cast_const().cast::<Inner>()) });
            Err((r, buffer))
        }
    }

    fn cancel(&self) {
        let state = self.inner.lock();
        if matches!(*state, State::InFlight(_)) && self.inner.target.is_some() {
            // SAFETY: the transfer was submitted and its callback has not finished with it
            // (state `InFlight`, lock held), so `raw` is live and not being refilled.
            // `libusb_cancel_transfer` is thread-safe; it returns NOT_FOUND if libusb has
            // already completed the transfer, whose callback then waits for our lock.
            let r = unsafe { ffi::libusb_cancel_transfer(self.inner.raw.as_ptr()) };
            if r != 0 && r != constants::LIBUSB_ERROR_NOT_FOUND {
                log::debug!("libusb_cancel_transfer: {r}");
            }
        }
    }

    fn is_finished(&self) -> bool {
        matches!(*self.inner.lock(), State::Done(_))
    }

    fn take(&self) -> Option<Finished> {
        let mut state = self.inner.lock();
        match std::mem::replace(&mut *state, State::Idle) {
            State::Done(f) => Some(f),
            other => {
                *state = other;
                None
            }
        }
    }
}

/// libusb's completion callback for every [`Transfer`]; runs on the event thread.
extern "system" fn on_complete(raw: *mut ffi::libusb_transfer) {
    // SAFETY: libusb calls this once per successful submission, with the transfer we
    // submitted; its `user_data` is the `Arc<Inner>` leaked by `Transfer::start` for this
    // call, reclaimed here exactly once.
    let inner = unsafe { Arc::from_raw((*raw).user_data.cast_const().cast::<Inner>()) };
    let mut state = inner.lock();
    // SAFETY: libusb wrote the result fields before this call and no longer uses the transfer;
    // nobody else touches `raw` while we hold the lock.
    let (status, actual) = unsafe { ((*raw).status, (*raw).actual_length) };
    match std::mem::replace(&mut *state, State::Idle) {
        State::InFlight(buffer) => {
            let actual_len = usize::try_from(actual).unwrap_or(0).min(buffer.len());
            *state = State::Done(Finished { buffer, status, actual_len });
        }
        // Cannot happen (only `start` arms the callback); keep the state as it was.
        other => *state = other,
    }
    drop(state);
    inner.signal.notify();
    // Dropping `inner` may free the transfer: libusb allows that in its callback.
}

/// A thread calling `libusb_handle_events_timeout_completed` on one context until dropped;
/// every transfer's callback runs on it.
pub(crate) struct EventThread {
    context: Context,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EventThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventThread").finish_non_exhaustive()
    }
}

impl EventThread {
    /// Starts handling events of `context`, in a thread named `name`.
    pub(crate) fn spawn(context: &Context, name: String) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ctx, flag) = (context.clone(), Arc::clone(&stop));
        let thread = std::thread::Builder::new().name(name).spawn(move || run_events(&ctx, &flag))?;
        Ok(Self { context: context.clone(), stop, thread: Some(thread) })
    }
}

fn run_events(context: &Context, stop: &AtomicBool) {
    let tv = libc::timeval { tv_sec: 0, tv_usec: EVENT_SLICE.as_micros() as libc::suseconds_t };
    let mut failing = false;
    while !stop.load(Ordering::Acquire) {
        // SAFETY: `context` is a live libusb context (we hold a reference), `tv` outlives the
        // call, and libusb accepts a NULL `completed`.
        let r = unsafe {
            ffi::libusb_handle_events_timeout_completed(context.as_raw(), &raw const tv, std::ptr::null_mut())
        };
        if r < 0 && r != constants::LIBUSB_ERROR_INTERRUPTED {
            if !failing {
                log::warn!("libusb_handle_events: error {r}");
            }
            failing = true;
            // Do not spin on a persistent error.
            std::thread::sleep(Duration::from_millis(1));
        } else {
            failing = false;
        }
    }
}

impl Drop for EventThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // SAFETY: the context is live (we hold a reference). The interrupt flag stays set
        // until an event handler sees it, so it cannot be lost between the thread's check of
        // `stop` and its next call; `EVENT_SLICE` bounds the wait anyway.
        unsafe { ffi::libusb_interrupt_event_handler(self.context.as_raw()) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
impl Transfer {
    /// A transfer that libusb never sees: `start` only arms it, `fake_complete` finishes it.
    pub(crate) fn detached(signal: &Arc<Signal>) -> Option<Self> {
        Self::alloc(signal, None)
    }

    /// Plays libusb's part for a started detached transfer: writes `received` into its
    /// buffer, sets the result fields, and runs the completion callback on this thread.
    pub(crate) fn fake_complete(&self, status: c_int, received: &[u8]) {
        let raw = self.inner.raw.as_ptr();
        assert!(self.inner.target.is_none(), "only for detached transfers");
        assert!(matches!(*self.inner.lock(), State::InFlight(_)), "not in flight");
        // SAFETY: the transfer is detached and armed, so `buffer`/`length` describe the live
        // heap block of the `Vec` in `State::InFlight`; we write at most `length` bytes into
        // it, as the kernel would, then call the callback once, as libusb would.
        unsafe {
            let n = received.len().min(usize::try_from((*raw).length).unwrap_or(0));
            std::ptr::copy_nonoverlapping(received.as_ptr(), (*raw).buffer, n);
            (*raw).status = status;
            (*raw).actual_length = n as c_int;
        }
        on_complete(raw);
    }

    /// References to the shared state (1 when idle and not cloned).
    pub(crate) fn refs(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::rusb::queue::EpQueue;

    #[test]
    fn a_detached_transfer_round_trips_its_buffer() {
        let signal = Arc::new(Signal::default());
        let t = Transfer::detached(&signal).unwrap();
        assert_eq!(t.refs(), 1);
        t.cancel(); // idle: nothing to do
        assert!(t.take().is_none());
        let buffer = vec![0u8; 16];
        let heap = buffer.as_ptr();
        t.start(buffer).unwrap();
        assert_eq!(t.refs(), 2, "user_data holds a reference while in flight");
        assert!(t.start(vec![1]).is_err(), "busy while in flight");
        assert!(!t.is_finished() && t.take().is_none());
        t.fake_complete(constants::LIBUSB_TRANSFER_COMPLETED, &[1, 2, 3]);
        assert_eq!(t.refs(), 1, "the callback released its reference");
        assert!(t.is_finished());
        let f = t.take().unwrap();
        assert_eq!(f.buffer.as_ptr(), heap, "the same heap block came back");
        assert_eq!((&f.buffer[..4], f.buffer.len(), f.actual_len), (&[1, 2, 3, 0][..], 16, 3));
        assert_eq!(f.status, constants::LIBUSB_TRANSFER_COMPLETED);
        // Reusable.
        t.start(vec![0; 4]).unwrap();
        t.fake_complete(constants::LIBUSB_TRANSFER_CANCELLED, &[5]);
        let f = t.take().unwrap();
        assert_eq!((f.status, f.actual_len, f.buffer[0]), (constants::LIBUSB_TRANSFER_CANCELLED, 1, 5));
    }

    #[test]
    fn libusb_transfers_through_the_queue_keep_order_and_partial_data() {
        let mut q = EpQueue::new();
        let mut made = Vec::new();
        for _ in 0..10 {
            q.submit(vec![0; 512], |s| {
                let t = Transfer::detached(s)?;
                made.push(t.clone());
                Some(t)
            })
            .unwrap();
        }
        // Finished in reverse order, one cancelled with partial data.
        for (i, t) in made.iter().enumerate().rev() {
            let status = if i == 4 {
                constants::LIBUSB_TRANSFER_CANCELLED
            } else {
                constants::LIBUSB_TRANSFER_COMPLETED
            };
            t.fake_complete(status, &vec![i as u8; i + 1]);
        }
        for i in 0..10 {
            let f = q.wait_next(Duration::ZERO).unwrap();
            assert_eq!((f.actual_len, f.buffer[0], f.buffer[i]), (i + 1, i as u8, i as u8));
            let cancelled = f.status == constants::LIBUSB_TRANSFER_CANCELLED;
            assert_eq!(cancelled, i == 4);
        }
        assert_eq!(q.pending(), 0);
        drop(q);
        assert!(made.iter().all(|t| t.refs() == 1));
    }
}
