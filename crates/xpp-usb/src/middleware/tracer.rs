//! Logging every transfer, decoded.

use core::fmt;
use std::time::Duration;

use log::{Level, log_enabled, trace};

use crate::ep;
use crate::info::DeviceInfo;
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// The `log` target of every [`Tracer`] line: filter with `RUST_LOG=xpp_usb::tracer=trace`.
pub const TRACE_TARGET: &str = "xpp_usb::tracer";

/// A [`Transport`] that forwards to `T` and logs each submit, completion and control
/// transfer at `trace` level under [`TRACE_TARGET`], with the packets decoded:
/// data-interface transfers (endpoints 0x02/0x86) through [`xpp_proto::wire::parse_transfer`],
/// management transfers (0x04/0x88) through [`xpp_proto::mgmt::describe`], anything else (and
/// control data) as hex.
///
/// Lines look like `submit ep=0x02 len=8: <packet>; <packet>` and
/// `complete ep=0x86 len=64 status=ok: <packet>`. When `trace` is off for the target, nothing
/// is formatted: each call costs one `log_enabled!` check.
#[derive(Debug)]
pub struct Tracer<T: Transport> {
    inner: T,
}

impl<T: Transport> Tracer<T> {
    /// Wraps `inner`.
    pub const fn new(inner: T) -> Self {
        Self { inner }
    }

    /// The wrapped transport.
    pub const fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

fn enabled() -> bool {
    log_enabled!(target: TRACE_TARGET, Level::Trace)
}

/// Bytes as lowercase hex pairs separated by spaces.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i != 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One transfer on `endpoint`, decoded as the protocol of its interface.
pub struct Decoded<'a> {
    endpoint: u8,
    data: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// Decodes `data` as carried on `endpoint`.
    pub const fn new(endpoint: u8, data: &'a [u8]) -> Self {
        Self { endpoint, data }
    }
}

impl fmt::Display for Decoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.endpoint {
            ep::DATA_OUT | ep::DATA_IN => {
                for (i, r) in xpp_proto::wire::parse_transfer(self.data).enumerate() {
                    if i != 0 {
                        f.write_str("; ")?;
                    }
                    match r {
                        Ok((_, repr)) => write!(f, "{repr}")?,
                        Err(e) => write!(f, "malformed ({e}): {}", Hex(self.data))?,
                    }
                }
                Ok(())
            }
            ep::MGMT_OUT | ep::MGMT_IN => write!(f, "{}", xpp_proto::mgmt::describe(self.data)),
            _ => write!(f, "{}", Hex(self.data)),
        }
    }
}

impl fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct Status(Result<(), TransferError>);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(()) => f.write_str("ok"),
            Err(e) => write!(f, "{e:?}"),
        }
    }
}

fn setup_str(s: &ControlSetup) -> String {
    format!(
        "type={:#04x} req={:#04x} value={:#06x} index={:#06x}",
        s.request_type, s.request, s.value, s.index
    )
}

impl<T: Transport> Transport for Tracer<T> {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }

    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if !enabled() {
            return self.inner.submit(endpoint, buffer);
        }
        let len = buffer.len();
        if endpoint & 0x80 == 0 {
            trace!(target: TRACE_TARGET, "submit ep={endpoint:#04x} len={len}: {}", Decoded::new(endpoint, &buffer));
        } else {
            trace!(target: TRACE_TARGET, "submit ep={endpoint:#04x} len={len}");
        }
        let r = self.inner.submit(endpoint, buffer);
        if let Err(e) = r {
            trace!(target: TRACE_TARGET, "submit ep={endpoint:#04x} refused: {e:?}");
        }
        r
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.inner.pending(endpoint)
    }

    fn wait_next_complete(&mut self, endpoint: u8, timeout: Duration) -> Option<Completion> {
        let c = self.inner.wait_next_complete(endpoint, timeout)?;
        if enabled() {
            let data = &c.buffer[..c.actual_len.min(c.buffer.len())];
            if endpoint & 0x80 != 0 && c.status.is_ok() {
                trace!(
                    target: TRACE_TARGET,
                    "complete ep={endpoint:#04x} len={} status={}: {}",
                    c.actual_len,
                    Status(c.status),
                    Decoded::new(endpoint, data)
                );
            } else {
                trace!(
                    target: TRACE_TARGET,
                    "complete ep={endpoint:#04x} len={} status={}",
                    c.actual_len,
                    Status(c.status)
                );
            }
        }
        Some(c)
    }

    fn cancel_all(&mut self, endpoint: u8) {
        trace!(target: TRACE_TARGET, "cancel_all ep={endpoint:#04x}");
        self.inner.cancel_all(endpoint);
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        let r = self.inner.control_out(setup, data, timeout);
        if enabled() {
            trace!(
                target: TRACE_TARGET,
                "control_out {} len={}: {} -> {:?}",
                setup_str(&setup),
                data.len(),
                Hex(data),
                r
            );
        }
        r
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransferError> {
        let r = self.inner.control_in(setup, buf, timeout);
        if enabled() {
            let got = r.as_ref().map_or(&[][..], |&n| &buf[..n.min(buf.len())]);
            trace!(
                target: TRACE_TARGET,
                "control_in {} len={} -> {:?}: {}",
                setup_str(&setup),
                buf.len(),
                r,
                Hex(got)
            );
        }
        r
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        let r = self.inner.reset();
        trace!(target: TRACE_TARGET, "reset -> {r:?}");
        r
    }

    fn clear_halt(&mut self, endpoint: u8) -> Result<(), TransferError> {
        let r = self.inner.clear_halt(endpoint);
        trace!(target: TRACE_TARGET, "clear_halt ep={endpoint:#04x} -> {r:?}");
        r
    }
}
