//! Why a driver call failed.

use xpp_bringup::BringUpError;
use xpp_span::xbus::{ChanError, SetupError};

use crate::event::DeviceId;

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// No device of the driver has this channel.
    #[error("no channel {0}")]
    NoSuchChannel(u32),
    /// No device of the driver has this span.
    #[error("no span {0}")]
    NoSuchSpan(u32),
    /// No such device.
    #[error("no {0}")]
    NoSuchDevice(DeviceId),
    /// The channel refused the operation (removed, no audio...).
    #[error(transparent)]
    Chan(#[from] ChanError),
    /// Configuration or hook command refused.
    #[error(transparent)]
    Span(#[from] xpp_span::Error),
    /// A blocking call saw no tick in time.
    #[error("no tick within the timeout")]
    Timeout,
    /// Bring-up failed.
    #[error(transparent)]
    BringUp(#[from] BringUpError),
    /// The device's units make no bus.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The run-loop thread could not be started.
    #[error("cannot start the run loop: {0}")]
    Thread(#[from] std::io::Error),
}
