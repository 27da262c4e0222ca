//! nusb's errors and speeds in our types: every mapping of this backend in one place.

use crate::error::Error;
use crate::info::Speed;
use crate::transport::TransferError;

/// Anything nusb can fail with once a device is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NusbFailure {
    /// A transfer or control request result.
    Transfer(nusb::transfer::TransferError),
    /// A device-level operation (reset, clear halt) error kind.
    Device(nusb::ErrorKind),
}

/// Maps every nusb failure of an open device to ours: the one error-mapping function of
/// this backend.
pub(super) fn map_error(e: NusbFailure) -> TransferError {
    use nusb::transfer::TransferError as N;
    match e {
        NusbFailure::Transfer(N::Cancelled) => TransferError::Cancelled,
        NusbFailure::Transfer(N::Stall) => TransferError::Stall,
        NusbFailure::Transfer(N::Disconnected) => TransferError::Disconnected,
        NusbFailure::Transfer(N::Fault) => TransferError::Fault,
        NusbFailure::Transfer(N::InvalidArgument) => TransferError::InvalidArgument,
        NusbFailure::Transfer(N::Unknown(code)) => TransferError::Unknown(code),
        NusbFailure::Device(kind) => match kind {
            nusb::ErrorKind::Disconnected | nusb::ErrorKind::NotFound => TransferError::Disconnected,
            nusb::ErrorKind::Unsupported => TransferError::InvalidArgument,
            // Busy, PermissionDenied, Other, and kinds added later.
            _ => TransferError::Fault,
        },
    }
}

/// Maps an nusb error while listing, opening or claiming to the crate error. `what` names
/// the operation for the message.
pub(super) fn map_open_error(e: &nusb::Error, what: &str) -> Error {
    let msg = format!("{what}: {e}");
    match e.kind() {
        nusb::ErrorKind::Disconnected | nusb::ErrorKind::NotFound => Error::NotFound(msg),
        nusb::ErrorKind::PermissionDenied => Error::PermissionDenied(msg),
        nusb::ErrorKind::Busy => Error::Busy(msg),
        nusb::ErrorKind::Unsupported => Error::Unsupported(msg),
        _ => Error::Other(msg),
    }
}

/// Our speed from nusb's.
pub(super) fn map_speed(s: Option<nusb::Speed>) -> Speed {
    match s {
        Some(nusb::Speed::Low) => Speed::Low,
        Some(nusb::Speed::Full) => Speed::Full,
        Some(nusb::Speed::High) => Speed::High,
        Some(nusb::Speed::Super | nusb::Speed::SuperPlus) => Speed::Super,
        _ => Speed::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nusb_transfer_error_maps() {
        use nusb::transfer::TransferError as N;
        let cases = [
            (N::Cancelled, TransferError::Cancelled),
            (N::Stall, TransferError::Stall),
            (N::Disconnected, TransferError::Disconnected),
            (N::Fault, TransferError::Fault),
            (N::InvalidArgument, TransferError::InvalidArgument),
            (N::Unknown(71), TransferError::Unknown(71)),
        ];
        for (n, ours) in cases {
            assert_eq!(map_error(NusbFailure::Transfer(n)), ours, "{n:?}");
        }
    }

    #[test]
    fn every_nusb_error_kind_maps() {
        use nusb::ErrorKind as K;
        let cases = [
            (K::Disconnected, TransferError::Disconnected),
            (K::NotFound, TransferError::Disconnected),
            (K::Unsupported, TransferError::InvalidArgument),
            (K::Busy, TransferError::Fault),
            (K::PermissionDenied, TransferError::Fault),
            (K::Other, TransferError::Fault),
        ];
        for (k, ours) in cases {
            assert_eq!(map_error(NusbFailure::Device(k)), ours, "{k:?}");
        }
    }

    #[test]
    fn speeds_map() {
        assert_eq!(map_speed(Some(nusb::Speed::High)), Speed::High);
        assert_eq!(map_speed(Some(nusb::Speed::Full)), Speed::Full);
        assert_eq!(map_speed(Some(nusb::Speed::Low)), Speed::Low);
        assert_eq!(map_speed(Some(nusb::Speed::SuperPlus)), Speed::Super);
        assert_eq!(map_speed(None), Speed::Unknown);
    }
}
