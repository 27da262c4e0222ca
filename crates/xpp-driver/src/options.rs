//! Driver parameters.

use xpp_proto::Duration;

/// Longest wait of a blocking [`Driver::set_hook`](crate::Driver::set_hook) (a wink, flash or start lasts at most a
/// few seconds with any configured timing).
pub const HOOK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How a run loop relates to the PBX (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// The loop follows the device only.
    #[default]
    FreeRunning,
    /// After each tick the loop waits until a blocking PBX call finished with it (at most
    /// [`DriverOptions::lockstep_guard`] of real time).
    Lockstep,
}

/// Driver parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverOptions {
    /// Bulk IN transfers kept queued on the data endpoint.
    // Decision: 10 — ten ms of slack before the device has nowhere to put a frame, about
    // what the reference's URB pool gives.
    pub in_transfers: usize,
    /// Longest single wait of the loop before it looks at timers and the stop flag again.
    pub max_wait: Duration,
    /// See [`Pacing`](crate::Pacing).
    pub pacing: Pacing,
    /// In [`Pacing::Lockstep`](crate::Pacing::Lockstep), how long (real time) the loop waits for the PBX before it
    /// moves on anyway, so that a PBX that stopped calling cannot hang the device.
    // Decision: 1 s — far above a PBX step, short enough that a test with a dead PBX thread
    // still ends.
    pub lockstep_guard: std::time::Duration,
    /// Configure every channel with its natural signalling when a device is attached
    /// ([`XbusCore::configure_defaults`](xpp_span::xbus::XbusCore::configure_defaults)).
    pub configure_defaults: bool,
    /// On close, how long (real time) to wait for the final OUT transfers.
    pub close_timeout: std::time::Duration,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            in_transfers: 10,
            max_wait: Duration::from_millis(5),
            pacing: Pacing::FreeRunning,
            lockstep_guard: std::time::Duration::from_secs(1),
            configure_defaults: true,
            close_timeout: std::time::Duration::from_millis(200),
        }
    }
}

impl DriverOptions {
    /// Sets the pacing (builder style).
    #[must_use]
    pub const fn with_pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// Sets whether channels get their default signalling at attach (builder style).
    #[must_use]
    pub const fn with_configure_defaults(mut self, on: bool) -> Self {
        self.configure_defaults = on;
        self
    }
}
