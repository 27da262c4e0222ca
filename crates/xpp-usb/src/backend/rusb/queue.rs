//! One endpoint's queue of submitted transfers, in submission order (no `unsafe`).
//!
//! The queue is generic over [`Slot`], a transfer that can be started, cancelled and reaped:
//! the backend's slot is the libusb transfer of [`super::transfer`], the tests' a fake. A
//! slot finishes on the event thread (its callback stores the result and calls
//! [`Signal::notify`]); the queue only ever hands back its *oldest* slot, so completions leave
//! in submission order even when libusb finishes a cancelled transfer out of turn.

use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most transfers one endpoint may have submitted and not yet reaped. The reference driver
/// keeps 10 IN transfers queued; usbfs bounds a process's URB memory (16 MiB by default),
/// which 128 transfers of 512 bytes are far from.
pub(crate) const MAX_IN_FLIGHT: usize = 128;

/// A finished transfer as libusb left it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    /// The buffer that was submitted, whole (the caller truncates IN data to `actual_len`).
    pub(crate) buffer: Vec<u8>,
    /// libusb's `LIBUSB_TRANSFER_*` status.
    pub(crate) status: c_int,
    /// libusb's `actual_length`: bytes moved, also for a failed or cancelled transfer.
    pub(crate) actual_len: usize,
}

/// What completions notify and waiters wait on: a lock and a condition variable.
///
/// Waiters check their slot *while holding* the lock, and a completion takes the lock after
/// storing its result, so a completion between the check and the wait is never missed.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    lock: Mutex<()>,
    cond: Condvar,
}

impl Signal {
    /// Wakes every waiter. Called from libusb callbacks: never panics.
    pub(crate) fn notify(&self) {
        drop(self.lock());
        self.cond.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on `guard` until notified or `deadline`; `None` once the deadline has passed.
    fn wait<'a>(&self, guard: MutexGuard<'a, ()>, deadline: Instant) -> Option<MutexGuard<'a, ()>> {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        Some(self.cond.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0)
    }
}

/// A transfer the queue can run: started with a buffer, finished by some other thread.
pub(crate) trait Slot: Send {
    /// Starts a transfer of `buffer`. On failure the buffer comes back with libusb's error code.
    fn start(&self, buffer: Vec<u8>) -> Result<(), (c_int, Vec<u8>)>;
    /// Asks for the transfer to end early; it still finishes (with its real result if it
    /// already had one). No effect on a slot that is not in flight.
    fn cancel(&self);
    /// Whether the transfer has finished and not been taken yet.
    fn is_finished(&self) -> bool;
    /// The finished transfer, leaving the slot idle for reuse; `None` while in flight.
    fn take(&self) -> Option<Finished>;
}

/// Why [`EpQueue::submit`] refused a buffer (the buffer is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubmitError {
    /// [`MAX_IN_FLIGHT`] transfers are already submitted on this endpoint.
    Full,
    /// No slot could be allocated.
    NoMemory,
    /// libusb refused the transfer with this `LIBUSB_ERROR_*` code.
    Libusb(c_int),
}

/// The transfers of one endpoint: submitted ones oldest first, and idle slots for reuse.
#[derive(Debug)]
pub(crate) struct EpQueue<S> {
    signal: Arc<Signal>,
    submitted: VecDeque<S>,
    idle: Vec<S>,
}

impl<S: Slot> EpQueue<S> {
    pub(crate) fn new() -> Self {
        Self { signal: Arc::new(Signal::default()), submitted: VecDeque::new(), idle: Vec::new() }
    }

    /// Starts `buffer` on an idle slot, or on a new one from `new_slot` (which gets the signal
    /// its completions must notify).
    pub(crate) fn submit(
        &mut self,
        buffer: Vec<u8>,
        new_slot: impl FnOnce(&Arc<Signal>) -> Option<S>,
    ) -> Result<(), SubmitError> {
        if self.submitted.len() >= MAX_IN_FLIGHT {
            return Err(SubmitError::Full);
        }
        let slot = match self.idle.pop() {
            Some(s) => s,
            None => new_slot(&self.signal).ok_or(SubmitError::NoMemory)?,
        };
        match slot.start(buffer) {
            Ok(()) => {
                self.submitted.push_back(slot);
                Ok(())
            }
            Err((code, _buffer)) => {
                self.idle.push(slot);
                Err(SubmitError::Libusb(code))
            }
        }
    }

    /// Transfers submitted and not yet reaped.
    pub(crate) fn pending(&self) -> usize {
        self.submitted.len()
    }

    /// The oldest submitted transfer once it has finished, waiting up to `timeout`.
    pub(crate) fn wait_next(&mut self, timeout: Duration) -> Option<Finished> {
        let deadline = deadline(timeout);
        let mut guard = self.signal.lock();
        loop {
            let front = self.submitted.front()?;
            if let Some(done) = front.take() {
                drop(guard);
                if let Some(slot) = self.submitted.pop_front() {
                    self.idle.push(slot);
                }
                return Some(done);
            }
            guard = self.signal.wait(guard, deadline)?;
        }
    }

    /// Asks every submitted transfer to end; they finish asynchronously.
    pub(crate) fn cancel_all(&self) {
        for slot in &self.submitted {
            slot.cancel();
        }
    }

    /// Waits until every submitted transfer has finished (callbacks ran), up to `deadline`.
    /// Whether they all did.
    pub(crate) fn wait_all_finished(&self, deadline: Instant) -> bool {
        let mut guard = self.signal.lock();
        loop {
            if self.submitted.iter().all(Slot::is_finished) {
                return true;
            }
            match self.signal.wait(guard, deadline) {
                Some(g) => guard = g,
                None => return self.submitted.iter().all(Slot::is_finished),
            }
        }
    }
}

/// `now + timeout`, saturating far in the future.
pub(crate) fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot finished by the test (or by a thread it spawns), as libusb's event thread would.
    #[derive(Clone)]
    struct Fake(Arc<FakeInner>);

    struct FakeInner {
        signal: Arc<Signal>,
        state: Mutex<FakeState>,
        /// What `cancel` does: finish at once with CANCELLED (like usbfs), or nothing (a
        /// transfer whose cancellation never completes).
        cancel_completes: bool,
        /// `start` fails with this code, if set.
        refuse: Option<c_int>,
    }

    #[derive(Default)]
    struct FakeState {
        in_flight: Option<Vec<u8>>,
        done: Option<Finished>,
        cancels: usize,
    }

    const COMPLETED: c_int = 0;
    const CANCELLED: c_int = 3;

    impl Fake {
        fn new(signal: &Arc<Signal>) -> Self {
            Self(Arc::new(FakeInner {
                signal: Arc::clone(signal),
                state: Mutex::default(),
                cancel_completes: true,
                refuse: None,
            }))
        }

        /// Finishes the in-flight transfer with `data` received (IN) and `status`.
        fn finish(&self, data: &[u8], status: c_int) {
            let mut st = self.0.state.lock().unwrap();
            let mut buffer = st.in_flight.take().expect("not in flight");
            buffer[..data.len()].copy_from_slice(data);
            st.done = Some(Finished { buffer, status, actual_len: data.len() });
            drop(st);
            self.0.signal.notify();
        }
    }

    impl Slot for Fake {
        fn start(&self, buffer: Vec<u8>) -> Result<(), (c_int, Vec<u8>)> {
            if let Some(code) = self.0.refuse {
                return Err((code, buffer));
            }
            let mut st = self.0.state.lock().unwrap();
            assert!(st.in_flight.is_none() && st.done.is_none(), "slot reused while busy");
            st.in_flight = Some(buffer);
            Ok(())
        }
        fn cancel(&self) {
            let mut st = self.0.state.lock().unwrap();
            st.cancels += 1;
            let in_flight = st.in_flight.is_some();
            drop(st);
            if self.0.cancel_completes && in_flight {
                let me = self.clone();
                // Finish on another thread a little later, as the event thread would.
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    me.finish(&[], CANCELLED);
                });
            }
        }
        fn is_finished(&self) -> bool {
            self.0.state.lock().unwrap().done.is_some()
        }
        fn take(&self) -> Option<Finished> {
            self.0.state.lock().unwrap().done.take()
        }
    }

    /// A queue with `n` IN buffers of 8 bytes submitted; the fakes, oldest first.
    fn queue_with(n: usize) -> (EpQueue<Fake>, Vec<Fake>) {
        let mut q = EpQueue::new();
        let mut fakes = Vec::new();
        for _ in 0..n {
            q.submit(vec![0; 8], |s| {
                let f = Fake::new(s);
                fakes.push(f.clone());
                Some(f)
            })
            .unwrap();
        }
        (q, fakes)
    }

    #[test]
    fn completions_leave_in_submission_order() {
        let (mut q, f) = queue_with(3);
        assert_eq!(q.pending(), 3);
        // The newest finishes first: nothing is handed out until the oldest has.
        f[2].finish(&[3], COMPLETED);
        f[1].finish(&[2, 2], COMPLETED);
        assert_eq!(q.wait_next(Duration::ZERO), None);
        f[0].finish(&[1, 1, 1], COMPLETED);
        for (i, len) in [(1u8, 3), (2, 2), (3, 1)] {
            let d = q.wait_next(Duration::ZERO).unwrap();
            assert_eq!((d.buffer[0], d.actual_len, d.status, d.buffer.len()), (i, len, COMPLETED, 8));
        }
        assert_eq!((q.pending(), q.idle.len()), (0, 3));
        assert_eq!(q.wait_next(Duration::from_secs(5)), None, "nothing pending: no wait");
    }

    #[test]
    fn wait_wakes_on_a_completion_from_another_thread() {
        let (mut q, f) = queue_with(1);
        let f0 = f[0].clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            f0.finish(&[7; 8], COMPLETED);
        });
        let start = Instant::now();
        let d = q.wait_next(Duration::from_secs(10)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(d.buffer, vec![7; 8]);
        t.join().unwrap();
    }

    #[test]
    fn wait_times_out_and_keeps_the_transfer() {
        let (mut q, f) = queue_with(1);
        let start = Instant::now();
        assert_eq!(q.wait_next(Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(q.pending(), 1);
        f[0].finish(&[], COMPLETED);
        assert!(q.wait_next(Duration::ZERO).is_some());
    }

    #[test]
    fn slots_are_reused_and_the_queue_is_bounded() {
        let (mut q, f) = queue_with(MAX_IN_FLIGHT);
        assert_eq!(q.submit(vec![0; 8], |s| Some(Fake::new(s))), Err(SubmitError::Full));
        f[0].finish(&[], COMPLETED);
        q.wait_next(Duration::ZERO).unwrap();
        // The freed slot is reused: no new one is made.
        q.submit(vec![0; 8], |_| panic!("a new slot")).unwrap();
        assert_eq!(q.pending(), MAX_IN_FLIGHT);
    }

    #[test]
    fn a_refused_submit_keeps_the_slot_and_reports_the_code() {
        let mut q = EpQueue::new();
        let r = q.submit(vec![1], |s| {
            let mut f = Fake::new(s);
            Arc::get_mut(&mut f.0).unwrap().refuse = Some(-4);
            Some(f)
        });
        assert_eq!(r, Err(SubmitError::Libusb(-4)));
        assert_eq!((q.pending(), q.idle.len()), (0, 1));
        let mut q = EpQueue::<Fake>::new();
        assert_eq!(q.submit(vec![1], |_| None), Err(SubmitError::NoMemory));
    }

    #[test]
    fn cancel_all_then_every_transfer_comes_back_in_order() {
        let (mut q, f) = queue_with(4);
        // The oldest already has data: it keeps its real result.
        f[0].finish(&[9, 9], COMPLETED);
        q.cancel_all();
        assert!(q.wait_all_finished(deadline(Duration::from_secs(5))));
        assert_eq!(f.iter().map(|f| f.0.state.lock().unwrap().cancels).sum::<usize>(), 4);
        let d = q.wait_next(Duration::ZERO).unwrap();
        assert_eq!((d.status, d.actual_len), (COMPLETED, 2));
        for _ in 1..4 {
            assert_eq!(q.wait_next(Duration::ZERO).unwrap().status, CANCELLED);
        }
        assert_eq!(q.pending(), 0);
        // Usable afterwards.
        q.submit(vec![0; 8], |_| panic!("a new slot")).unwrap();
        assert_eq!(q.pending(), 1);
    }

    #[test]
    fn waiting_for_cancellation_is_bounded() {
        let mut q = EpQueue::new();
        q.submit(vec![0; 8], |s| {
            let mut f = Fake::new(s);
            Arc::get_mut(&mut f.0).unwrap().cancel_completes = false;
            Some(f)
        })
        .unwrap();
        q.cancel_all();
        let start = Instant::now();
        assert!(!q.wait_all_finished(deadline(Duration::from_millis(30))));
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(q.pending(), 1);
    }

    proptest::proptest! {
        /// Whatever order transfers finish in, and however reaping interleaves with
        /// submitting, each buffer comes back exactly once, in submission order.
        #[test]
        fn any_completion_order_reaps_in_submission_order(
            ops in proptest::collection::vec((0u8..3, 0usize..64), 1..200),
        ) {
            let mut q = EpQueue::<Fake>::new();
            let mut in_flight: Vec<(u32, Fake)> = Vec::new();
            let (mut next, mut expected) = (0u32, 0u32);
            for (op, pick) in ops {
                match op {
                    0 => {
                        let r = q.submit(vec![0; 4], |s| Some(Fake::new(s)));
                        if r.is_ok() {
                            // The slot just started is the newest submitted one.
                            let slot = q.submitted.back().unwrap().clone();
                            in_flight.push((next, slot));
                            next += 1;
                        }
                    }
                    1 if !in_flight.is_empty() => {
                        let (tag, slot) = in_flight.swap_remove(pick % in_flight.len());
                        slot.finish(&tag.to_le_bytes(), COMPLETED);
                    }
                    _ => {
                        while let Some(d) = q.wait_next(Duration::ZERO) {
                            proptest::prop_assert_eq!(d.buffer, expected.to_le_bytes().to_vec());
                            expected += 1;
                        }
                    }
                }
                proptest::prop_assert_eq!(q.pending(), (next - expected) as usize);
            }
            for (tag, slot) in in_flight.drain(..) {
                slot.finish(&tag.to_le_bytes(), COMPLETED);
            }
            while let Some(d) = q.wait_next(Duration::ZERO) {
                proptest::prop_assert_eq!(d.buffer, expected.to_le_bytes().to_vec());
                expected += 1;
            }
            proptest::prop_assert_eq!((expected, q.pending()), (next, 0));
        }
    }
}
