//! The crate's error type for everything that is not a single transfer: listing, opening,
//! claiming, hotplug, and the USB/IP connection set-up.

use crate::backend::usbip::codec::CodecError;
use crate::transport::TransferError;

/// Why listing, opening or connecting failed. Transfers report [`TransferError`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The USB subsystem cannot be used on this machine (no usbfs, no sysfs, libusb failed to
    /// initialise): listing and hotplug are impossible here.
    #[error("USB unavailable: {0}")]
    Unavailable(String),
    /// No device matched the locator, or it vanished while being opened.
    #[error("no such device: {0}")]
    NotFound(String),
    /// The device exists but this user may not open it (see `docs/permissions.md`).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Another driver or process holds the device or interface.
    #[error("device or interface busy: {0}")]
    Busy(String),
    /// The device is not what xpp expects (missing interface or endpoint).
    #[error("unsupported device: {0}")]
    Unsupported(String),
    /// A locator string (bus path, `BBB/DDD`, `serial:...`) did not parse.
    #[error("invalid device locator {0:?}")]
    InvalidLocator(String),
    /// A transfer during set-up failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Network or OS I/O error (USB/IP).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The USB/IP peer sent bytes that do not parse.
    #[error(transparent)]
    Protocol(#[from] CodecError),
    /// The USB/IP server refused the import of `busid` (OP_REP_IMPORT status).
    #[error("USB/IP server refused to import {busid:?} (status {status})")]
    ImportRefused {
        /// The bus id asked for.
        busid: String,
        /// The reply's status field (1 = error in Linux usbipd).
        status: u32,
    },
    /// Any other backend error, with its message.
    #[error("{0}")]
    Other(String),
}
