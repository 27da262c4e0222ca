//! The data interface (interface 0) in stage 11x2: XPP protocol, ticks and PCM, the module
//! chips and the equipment on their ports (MODEL.md XPP, REG, TIME, FXS, FXO, PRI, BRI, ECHO,
//! EQ, PATCH rows).
// SKELETON: the contract the device core codes against; filled in by the data-interface work.

use xpp_proto::Instant;

use crate::config::DeviceConfig;

/// Tunables of the data interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DataConfig {}

/// Interface 0 of a running (11x2) device and everything behind it.
#[derive(Debug)]
pub struct DataInterface {}

impl DataInterface {
    /// Modules and equipment at power-on, from the configuration.
    pub fn new(_config: &DeviceConfig) -> Self {
        Self {}
    }

    /// One bulk OUT transfer from the host on endpoint 0x02.
    pub fn handle_out(&mut self, _now: Instant, _transfer: &[u8]) {}

    /// The next bulk IN transfer for endpoint 0x86, written into `buf`; its length.
    pub fn poll_in(&mut self, _now: Instant, _buf: &mut [u8; 512]) -> Option<usize> {
        None
    }

    /// Runs timers due at `now` (ticks, ring cadences, equipment).
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// When [`DataInterface::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// A host session starts (entry into 11x2 on the active port): sync NONE, queues empty.
    pub fn start_session(&mut self, _now: Instant) {}

    /// The host session ends (renumeration, detach, jump, power-off): stop ticking, drop
    /// queued IN transfers.
    pub fn stop_session(&mut self) {}

    /// Module chips back to power-on state; with `equipment`, lines and equipment too.
    pub fn power_on_reset(&mut self, _equipment: bool) {}
}
