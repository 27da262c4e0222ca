//! Why a driver call failed.

use xpp_bringup::BringUpError;
use xpp_proto::mgmt::MgmtError;
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
    /// The device could not be opened ([`Driver::open_target`](crate::Driver::open_target)).
    #[error("cannot open the device: {0}")]
    Open(#[source] xpp_usb::Error),
    /// A management request failed: refused, a bad or missing reply, the device gone
    /// ([`Driver::mgmt_request`](crate::Driver::mgmt_request)).
    #[error("management request: {0}")]
    Mgmt(#[from] MgmtError),
    /// The device's management interface is not open (a device without interface 1).
    #[error("{0} has no management interface")]
    NoMgmtInterface(DeviceId),
    /// The device is not on this host: its spans are registered in standby
    /// ([`Driver::register_standby`](crate::Driver::register_standby)).
    #[error("{0} is not on this host (standby)")]
    Standby(DeviceId),
}

/// A stable number for each kind of [`DriverError`], for callers that cannot match on the
/// enum: the C ABI's result codes, command-line exit statuses, logs parsed by scripts.
/// Numbers are never reused; new kinds get new numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum ErrorCode {
    /// [`DriverError::NoSuchChannel`].
    NoSuchChannel = 1,
    /// [`DriverError::NoSuchSpan`].
    NoSuchSpan = 2,
    /// [`DriverError::NoSuchDevice`].
    NoSuchDevice = 3,
    /// [`DriverError::Chan`]: the channel is gone ([`ChanError::Removed`]).
    ChanRemoved = 4,
    /// [`DriverError::Chan`]: any other refusal of a channel operation.
    ChanRefused = 5,
    /// [`DriverError::Span`]: a configuration or hook command refused.
    Refused = 6,
    /// [`DriverError::Timeout`].
    Timeout = 7,
    /// [`DriverError::BringUp`].
    BringUp = 8,
    /// [`DriverError::Setup`].
    Setup = 9,
    /// [`DriverError::Thread`].
    Thread = 10,
    /// [`DriverError::Open`].
    Open = 11,
    /// [`DriverError::Mgmt`].
    Mgmt = 12,
    /// [`DriverError::NoMgmtInterface`].
    NoMgmtInterface = 13,
    /// [`DriverError::Standby`], or [`DriverError::Chan`] with [`ChanError::Standby`]: the
    /// device is not on this host (warm standby).
    Standby = 14,
}

impl DriverError {
    /// This error's stable number.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::NoSuchChannel(_) => ErrorCode::NoSuchChannel,
            Self::NoSuchSpan(_) => ErrorCode::NoSuchSpan,
            Self::NoSuchDevice(_) => ErrorCode::NoSuchDevice,
            Self::Chan(ChanError::Removed) => ErrorCode::ChanRemoved,
            Self::Chan(ChanError::Standby(_))
            | Self::Span(xpp_span::Error::Chan(ChanError::Standby(_)))
            | Self::Standby(_) => ErrorCode::Standby,
            Self::Chan(_) => ErrorCode::ChanRefused,
            Self::Span(_) => ErrorCode::Refused,
            Self::Timeout => ErrorCode::Timeout,
            Self::BringUp(_) => ErrorCode::BringUp,
            Self::Setup(_) => ErrorCode::Setup,
            Self::Thread(_) => ErrorCode::Thread,
            Self::Open(_) => ErrorCode::Open,
            Self::Mgmt(_) => ErrorCode::Mgmt,
            Self::NoMgmtInterface(_) => ErrorCode::NoMgmtInterface,
        }
    }

    /// The errno a DAHDI ioctl would fail with for this error (ENXIO for an unknown
    /// channel or span, ENODEV for a removed device, EINVAL for a refused command,
    /// ETIMEDOUT, EIO for a failed bring-up, open or management request).
    pub const fn errno(&self) -> i32 {
        match self {
            Self::NoSuchChannel(_) | Self::NoSuchSpan(_) | Self::NoSuchDevice(_) => 6, // ENXIO
            Self::Chan(e) | Self::Span(xpp_span::Error::Chan(e @ ChanError::Standby(_))) => e.errno(),
            Self::Span(_) | Self::Setup(_) => 22, // EINVAL
            Self::Timeout => 110,                 // ETIMEDOUT
            Self::BringUp(_) | Self::Open(_) | Self::Mgmt(_) => 5, // EIO
            Self::NoMgmtInterface(_) => 95,       // EOPNOTSUPP
            Self::Standby(_) => 16,               // EBUSY, as ChanError::Standby
            Self::Thread(_) => 11,                // EAGAIN (pthread_create's)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_errnos_are_pinned() {
        let cases = [
            (DriverError::NoSuchChannel(9), 1, 6),
            (DriverError::NoSuchSpan(9), 2, 6),
            (DriverError::NoSuchDevice(DeviceId(3)), 3, 6),
            (DriverError::Chan(ChanError::Removed), 4, 19),
            (DriverError::Chan(ChanError::NoAudio), 5, 22),
            (DriverError::Timeout, 7, 110),
            (DriverError::Setup(SetupError::TooMany), 9, 22),
            (DriverError::Thread(std::io::Error::other("x")), 10, 11),
            (DriverError::Open(xpp_usb::Error::NotFound("1-1".into())), 11, 5),
            (DriverError::Mgmt(MgmtError::Disconnected), 12, 5),
            (DriverError::NoMgmtInterface(DeviceId(0)), 13, 95),
            (DriverError::Standby(DeviceId(1)), 14, 16),
            (DriverError::Chan(ChanError::Standby(3)), 14, 16),
        ];
        for (e, code, errno) in cases {
            assert_eq!((e.code() as u32, e.errno()), (code, errno), "{e}");
        }
    }
}
