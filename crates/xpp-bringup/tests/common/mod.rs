//! What the bring-up tests on the emulator share: a transport that records what the host sends.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use xpp_emu::{EmulatedTransport, Emulator};
use xpp_proto::{Duration, Instant};
use xpp_usb::{Completion, ControlSetup, DeviceInfo, TransferError, Transport, ep};

/// Something the host sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    Control(Instant, u16, Vec<u8>),
    Bulk(Instant, u8, Vec<u8>),
}

impl Sent {
    pub(crate) fn at(&self) -> Instant {
        match self {
            Self::Control(t, ..) | Self::Bulk(t, ..) => *t,
        }
    }
}

pub(crate) type Log = Arc<Mutex<Vec<Sent>>>;

/// A transport that records every OUT transfer and control request, and refuses a submit
/// past `bound` transfers in flight on the endpoint with `InvalidArgument`, as a backend may
/// (the `Transport` doc; rusb's bound is 128).
pub(crate) struct Recording {
    inner: EmulatedTransport,
    emu: Emulator,
    log: Log,
    bound: usize,
    /// Virtual time each data OUT transfer takes to reach the device, one after the other (a
    /// slow bus or a loaded host); zero: at once.
    out_cost: Duration,
    /// Data OUT transfers not yet handed to the device, with when they reach it.
    slow: std::collections::VecDeque<(Instant, Vec<u8>)>,
}

impl Recording {
    /// Hands the device the slow data OUT transfers due by now.
    fn pump(&mut self) {
        let now = self.emu.now();
        while self.slow.front().is_some_and(|(at, _)| *at <= now) {
            let (_, b) = self.slow.pop_front().expect("front");
            let _ = self.inner.submit(ep::DATA_OUT, b);
        }
    }

    /// When the next slow transfer reaches the device.
    fn next_release(&self) -> Option<Instant> {
        self.slow.front().map(|(at, _)| *at)
    }
}

impl Transport for Recording {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.inner.pending(endpoint) >= self.bound {
            return Err(TransferError::InvalidArgument);
        }
        if endpoint & 0x80 == 0 {
            self.log.lock().unwrap().push(Sent::Bulk(self.emu.now(), endpoint, buffer.clone()));
        }
        if endpoint == ep::DATA_OUT && self.out_cost > Duration::ZERO {
            let after = self.slow.back().map_or(self.emu.now(), |(at, _)| *at).max(self.emu.now());
            self.slow.push_back((after + self.out_cost, buffer));
            return Ok(());
        }
        self.inner.submit(endpoint, buffer)
    }
    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint) + if endpoint == ep::DATA_OUT { self.slow.len() } else { 0 }
    }
    fn wait_next_complete(&mut self, endpoint: u8, timeout: std::time::Duration) -> Option<Completion> {
        // Virtual time moves in the inner waits; stop at each slow release to hand it over.
        let end = self.emu.now() + Duration::from_micros(timeout.as_micros() as u64);
        loop {
            self.pump();
            let now = self.emu.now();
            let until = self.next_release().map_or(end, |r| r.min(end));
            let wait = std::time::Duration::from_micros((until - now).total_micros());
            if let Some(c) = self.inner.wait_next_complete(endpoint, wait) {
                return Some(c);
            }
            if self.next_release().is_none_or(|r| r > end) || self.emu.now() >= end {
                self.pump();
                return self.inner.wait_next_complete(endpoint, std::time::Duration::ZERO);
            }
            // The inner wait returned early without moving time: move it to the release.
            if self.emu.now() < until {
                self.emu.advance_to(until);
            }
        }
    }
    fn cancel_all(&mut self, endpoint: u8) {
        self.inner.cancel_all(endpoint);
    }
    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: std::time::Duration,
    ) -> Result<usize, TransferError> {
        self.log.lock().unwrap().push(Sent::Control(self.emu.now(), setup.value, data.to_vec()));
        self.inner.control_out(setup, data, timeout)
    }
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: std::time::Duration,
    ) -> Result<usize, TransferError> {
        self.inner.control_in(setup, buf, timeout)
    }
    fn reset(&mut self) -> Result<(), TransferError> {
        self.inner.reset()
    }
}

/// An opener of whatever `emu` has enumerated on `port`, recording into `log`, bounding the
/// transfers in flight per endpoint to `bound`, each data OUT transfer taking `out_cost`.
pub(crate) fn opener(
    emu: &Emulator,
    port: u8,
    log: &Log,
    bound: usize,
    out_cost: Duration,
) -> impl FnMut() -> Option<Recording> + use<> {
    let (emu, log) = (emu.clone(), log.clone());
    move || {
        emu.transport(port).map(|inner| Recording {
            inner,
            emu: emu.clone(),
            log: log.clone(),
            bound,
            out_cost,
            slow: Default::default(),
        })
    }
}
