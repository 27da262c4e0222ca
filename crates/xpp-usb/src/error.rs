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
    /// The USB/IP server refused the import of `busid` (OP_REP_IMPORT status): status 1
    /// (`ST_NA`) or 4 (`ST_NODEV`) means the bus id is not exported, 2 (`ST_DEV_BUSY`) that
    /// another client imported it.
    #[error("{}", import_refused(busid, *status))]
    ImportRefused {
        /// The bus id asked for.
        busid: String,
        /// The reply's status field (1 = error in Linux usbipd).
        status: u32,
    },
    /// Nothing listens at the USB/IP server's address (TCP connection refused).
    #[error("USB/IP server {addr}: connection refused")]
    Refused {
        /// The address connected to.
        addr: String,
    },
    /// A USB/IP operation (connecting, listing, importing) did not finish within its deadline:
    /// the server is silent or too slow.
    #[error("USB/IP server {addr}: {what} timed out after {after:?}")]
    TimedOut {
        /// The server's address.
        addr: String,
        /// The operation: "connect", "device list", "import of 1-1".
        what: String,
        /// The operation's deadline.
        after: std::time::Duration,
    },
    /// Any other backend error, with its message.
    #[error("{0}")]
    Other(String),
}

/// The message of [`Error::ImportRefused`].
fn import_refused(busid: &str, status: u32) -> String {
    match status {
        1 | 4 => format!("USB/IP: bus id {busid} is not exported by the server (status {status})"),
        2 => format!("USB/IP: bus id {busid} is busy: another client imported it (status 2)"),
        _ => format!("USB/IP server refused to import bus id {busid} (status {status})"),
    }
}
