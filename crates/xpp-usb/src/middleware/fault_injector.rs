//! Seeded fault injection.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::info::{DeviceInfo, Direction, endpoint_direction};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// Fault probabilities for one endpoint (each in `0.0..=1.0`; 0 = never).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Lose a transfer: see [`FaultInjector`] for what that means per direction.
    pub drop: f64,
    /// Flip one random bit of the data (IN: received, OUT: sent).
    pub corrupt: f64,
    /// Hold a finished completion back for 1..=`max_delay_polls` polls.
    pub delay: f64,
    /// Upper bound of a delay, in `wait_next_complete` calls on the endpoint (at least 1).
    pub max_delay_polls: u32,
    /// Halt the endpoint at this submit: it and every later transfer fail with `Stall`
    /// until [`FaultInjector::clear_stall`], [`Transport::clear_halt`] or [`Transport::reset`].
    pub stall: f64,
}

impl Faults {
    /// No faults.
    pub const NONE: Self = Self { drop: 0.0, corrupt: 0.0, delay: 0.0, max_delay_polls: 1, stall: 0.0 };
}

/// Counts of the faults injected so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    /// Transfers lost.
    pub dropped: u64,
    /// Transfers with a bit flipped.
    pub corrupted: u64,
    /// Completions held back.
    pub delayed: u64,
    /// Endpoints halted (and control transfers stalled).
    pub stalls: u64,
    /// Transfers failed with `Stall` because their endpoint was halted.
    pub stalled_transfers: u64,
    /// Whether the injector has disconnected the device.
    pub disconnected: bool,
}

/// One host transfer in submission order.
#[derive(Debug)]
enum Entry {
    /// Forwarded to the inner transport; `unflip` restores an OUT buffer's corrupted bit.
    Inner { unflip: Option<(usize, u8)>, len: usize },
    /// Completed here, handed out when it reaches the front.
    Local(Completion),
    /// The inner completion, held back `polls` more calls.
    Held { completion: Completion, polls: u32 },
}

#[derive(Debug, Default)]
struct EndpointState {
    queue: VecDeque<Entry>,
    stalled: bool,
}

/// A [`Transport`] that forwards to `T` and injects faults drawn from a seeded generator:
/// the same seed, configuration and call sequence give the same faults.
///
/// Per endpoint ([`FaultInjector::set_faults`], or a default for all):
/// - **drop**, IN: the received data is discarded and the buffer re-queued on the inner
///   transport, so the host never sees that data (the next one fills its buffer), the way a
///   lost frame looks to a driver. OUT: the data is not forwarded to the device and the
///   transfer completes `Ok` (lost after the host's handshake). Decision: a dropped transfer
///   does not hang forever, because per-endpoint completion order would then block every
///   later transfer; a hang is what [`Faults::stall`] and a disconnect are for.
/// - **corrupt**: one random bit flipped in the received IN data, or in the OUT data before it
///   is forwarded (the host's buffer is restored when it comes back).
/// - **delay**: an inner completion is held back for 1..=`max_delay_polls` calls of
///   `wait_next_complete` on its endpoint (poll counts, not wall time, so runs are
///   reproducible); later completions queue behind it.
/// - **stall**: at a submit the endpoint halts; that transfer and all later ones complete with
///   [`TransferError::Stall`] without reaching the device, until
///   [`FaultInjector::clear_stall`], [`Transport::clear_halt`] or a reset. Control transfers (endpoint 0) use endpoint 0's
///   probabilities; a stalled control transfer fails once (a protocol stall).
///
/// **Disconnect** ([`FaultInjector::set_disconnect`], [`FaultInjector::disconnect_after`],
/// [`FaultInjector::disconnect_now`]): from then on the injector behaves as an unplugged
/// device: pending transfers complete with [`TransferError::Disconnected`] (their inner
/// transfers are cancelled to get the buffers back), every later call fails with it.
///
/// A control transfer can also be dropped (not forwarded, fails with `Cancelled`, as a
/// timeout) or corrupted (a bit of the data flipped); delay does not apply to it.
#[derive(Debug)]
pub struct FaultInjector<T: Transport> {
    inner: T,
    rng: fastrand::Rng,
    default: Faults,
    per_endpoint: BTreeMap<u8, Faults>,
    disconnect_p: f64,
    disconnect_after: Option<u64>,
    ops: u64,
    disconnected: bool,
    endpoints: BTreeMap<u8, EndpointState>,
    stats: FaultStats,
}

impl<T: Transport> FaultInjector<T> {
    /// Wraps `inner` with no faults configured, the generator seeded with `seed`.
    pub fn new(inner: T, seed: u64) -> Self {
        Self {
            inner,
            rng: fastrand::Rng::with_seed(seed),
            default: Faults::NONE,
            per_endpoint: BTreeMap::new(),
            disconnect_p: 0.0,
            disconnect_after: None,
            ops: 0,
            disconnected: false,
            endpoints: BTreeMap::new(),
            stats: FaultStats::default(),
        }
    }

    /// Faults for every endpoint without its own setting.
    #[must_use]
    pub const fn with_default_faults(mut self, faults: Faults) -> Self {
        self.default = faults;
        self
    }

    /// Faults for `endpoint` (0 for control transfers).
    pub fn set_faults(&mut self, endpoint: u8, faults: Faults) {
        self.per_endpoint.insert(endpoint, faults);
    }

    /// Probability that any operation (submit, control transfer, reset) disconnects the
    /// device first.
    pub const fn set_disconnect(&mut self, probability: f64) {
        self.disconnect_p = probability;
    }

    /// Disconnect at the `n`th operation from now (submit, control transfer, reset; counting
    /// from 1), deterministically.
    pub const fn disconnect_after(&mut self, n: u64) {
        self.disconnect_after = Some(self.ops.saturating_add(n));
    }

    /// Disconnect now.
    pub fn disconnect_now(&mut self) {
        if self.disconnected {
            return;
        }
        log::debug!("fault injector: disconnect");
        self.disconnected = true;
        self.stats.disconnected = true;
        let eps: Vec<u8> = self.endpoints.keys().copied().collect();
        for ep in eps {
            self.inner.cancel_all(ep);
        }
    }

    /// Halt `endpoint` now, as a `stall` fault would.
    pub fn stall(&mut self, endpoint: u8) {
        self.endpoints.entry(endpoint).or_default().stalled = true;
        self.stats.stalls += 1;
    }

    /// Clear a halt on `endpoint` (as CLEAR_FEATURE(ENDPOINT_HALT) would).
    pub fn clear_stall(&mut self, endpoint: u8) {
        if let Some(s) = self.endpoints.get_mut(&endpoint) {
            s.stalled = false;
        }
    }

    /// Faults injected so far.
    pub const fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped transport.
    pub const fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn faults(&self, endpoint: u8) -> Faults {
        self.per_endpoint.get(&endpoint).copied().unwrap_or(self.default)
    }

    /// Draws with probability `p`; draws nothing when `p <= 0`, so adding a fault kind with
    /// probability 0 leaves the other decisions unchanged.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits, uniform in [0, 1).
        let x = (self.rng.u64(..) >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// Flips one random bit of `data`; returns (index, mask).
    fn flip(&mut self, data: &mut [u8]) -> Option<(usize, u8)> {
        if data.is_empty() {
            return None;
        }
        let i = self.rng.usize(..data.len());
        let mask = 1u8 << self.rng.u8(..8);
        data[i] ^= mask;
        self.stats.corrupted += 1;
        Some((i, mask))
    }

    /// Counts an operation and decides whether it disconnects the device.
    fn operation(&mut self) -> Result<(), TransferError> {
        if self.disconnected {
            return Err(TransferError::Disconnected);
        }
        self.ops += 1;
        let due = self.disconnect_after.is_some_and(|n| self.ops >= n);
        let p = self.disconnect_p;
        if due || self.chance(p) {
            self.disconnect_now();
            return Err(TransferError::Disconnected);
        }
        Ok(())
    }

    /// Control-transfer faults: stall or drop as an error, else whether to corrupt.
    fn control_faults(&mut self) -> Result<bool, TransferError> {
        self.operation()?;
        let f = self.faults(0);
        if self.chance(f.stall) {
            self.stats.stalls += 1;
            return Err(TransferError::Stall);
        }
        if self.chance(f.drop) {
            self.stats.dropped += 1;
            return Err(TransferError::Cancelled);
        }
        Ok(self.chance(f.corrupt))
    }

    /// Applies completion-side faults to an inner completion; `None` if it was dropped (and
    /// its buffer re-queued).
    fn on_inner_completion(
        &mut self,
        endpoint: u8,
        mut c: Completion,
        unflip: Option<(usize, u8)>,
        len: usize,
    ) -> Option<Completion> {
        if let Some((i, mask)) = unflip
            && let Some(b) = c.buffer.get_mut(i)
        {
            *b ^= mask;
        }
        if self.disconnected {
            c.status = Err(TransferError::Disconnected);
            if endpoint_direction(endpoint) == Direction::In {
                c.buffer.clear();
                c.actual_len = 0;
            }
            return Some(c);
        }
        if endpoint_direction(endpoint) == Direction::In && c.status.is_ok() {
            let f = self.faults(endpoint);
            if self.chance(f.drop) {
                self.stats.dropped += 1;
                let mut buf = c.buffer;
                buf.resize(len, 0);
                match self.inner.submit(endpoint, buf) {
                    Ok(()) => return None,
                    Err(e) => {
                        return Some(Completion {
                            endpoint,
                            buffer: Vec::new(),
                            actual_len: 0,
                            status: Err(e),
                        });
                    }
                }
            }
            if self.chance(f.corrupt) {
                let n = c.actual_len.min(c.buffer.len());
                let _ = self.flip(&mut c.buffer[..n]);
            }
        }
        Some(c)
    }
}

impl<T: Transport> Transport for FaultInjector<T> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn submit(&mut self, endpoint: u8, mut buffer: Vec<u8>) -> Result<(), TransferError> {
        self.operation()?;
        let f = self.faults(endpoint);
        if self.chance(f.stall) {
            self.stall(endpoint);
        }
        let stalled = self.endpoints.get(&endpoint).is_some_and(|s| s.stalled);
        let entry = if stalled {
            self.stats.stalled_transfers += 1;
            if endpoint_direction(endpoint) == Direction::In {
                buffer.clear();
            }
            Entry::Local(Completion { endpoint, buffer, actual_len: 0, status: Err(TransferError::Stall) })
        } else if endpoint_direction(endpoint) == Direction::Out && self.chance(f.drop) {
            self.stats.dropped += 1;
            let n = buffer.len();
            Entry::Local(Completion { endpoint, buffer, actual_len: n, status: Ok(()) })
        } else {
            let unflip = if endpoint_direction(endpoint) == Direction::Out && self.chance(f.corrupt) {
                self.flip(&mut buffer)
            } else {
                None
            };
            let len = buffer.len();
            self.inner.submit(endpoint, buffer)?;
            Entry::Inner { unflip, len }
        };
        self.endpoints.entry(endpoint).or_default().queue.push_back(entry);
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.endpoints.get(&endpoint).map_or(0, |s| s.queue.len())
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let disconnected = self.disconnected;
            let state = self.endpoints.get_mut(&endpoint)?;
            match state.queue.front_mut()? {
                Entry::Local(_) => {
                    let Some(Entry::Local(mut c)) = state.queue.pop_front() else { return None };
                    if disconnected {
                        c.status = Err(TransferError::Disconnected);
                    }
                    return Some(c);
                }
                Entry::Held { polls, .. } if *polls > 1 && !disconnected => {
                    *polls -= 1;
                    return None;
                }
                Entry::Held { .. } => {
                    let Some(Entry::Held { mut completion, .. }) = state.queue.pop_front() else {
                        return None;
                    };
                    if disconnected {
                        completion.status = Err(TransferError::Disconnected);
                    }
                    return Some(completion);
                }
                &mut Entry::Inner { unflip, len } => {
                    let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
                    let c = self.inner.wait_next_complete(endpoint, left)?;
                    let Some(c) = self.on_inner_completion(endpoint, c, unflip, len) else {
                        // Dropped and re-queued: the host's transfer waits for the next one.
                        if left.is_zero() {
                            return None;
                        }
                        continue;
                    };
                    let f = self.faults(endpoint);
                    let hold = !self.disconnected && self.chance(f.delay);
                    let polls = if hold { self.rng.u32(1..=f.max_delay_polls.max(1)) } else { 0 };
                    let state = self.endpoints.get_mut(&endpoint)?;
                    if hold {
                        self.stats.delayed += 1;
                        if let Some(front) = state.queue.front_mut() {
                            *front = Entry::Held { completion: c, polls };
                        }
                        return None;
                    }
                    state.queue.pop_front();
                    return Some(c);
                }
            }
        }
    }

    fn cancel_all(&mut self, endpoint: u8) {
        // Forwarded transfers come back from the inner transport as Cancelled; local and
        // held ones have already finished and keep their result, as the trait allows.
        self.inner.cancel_all(endpoint);
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        let corrupt = self.control_faults()?;
        if corrupt {
            let mut copy = data.to_vec();
            let _ = self.flip(&mut copy);
            return self.inner.control_out(setup, &copy, timeout);
        }
        self.inner.control_out(setup, data, timeout)
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        let corrupt = self.control_faults()?;
        let n = self.inner.control_in(setup, buf, timeout)?;
        if corrupt {
            let end = n.min(buf.len());
            let _ = self.flip(&mut buf[..end]);
        }
        Ok(n)
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        self.operation()?;
        self.inner.reset()?;
        for s in self.endpoints.values_mut() {
            s.stalled = false;
        }
        Ok(())
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        self.operation()?;
        // The injected halt, then whatever halt the device itself may have.
        self.clear_stall(endpoint);
        self.inner.clear_halt(endpoint)
    }
}
