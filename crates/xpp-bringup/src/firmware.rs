//! The firmware folder's contents as the sans-IO core sees them: parsed images by file name.

use std::collections::BTreeMap;

use xpp_proto::firmware::{FirmwareError, HexFile};

/// The Octasic echo-canceller image file name (docs/reference/mpp-twinstar-firmware.md §5.1).
pub const ECHO_IMAGE: &str = "OCT6104E-256D.ima";

/// The images of a firmware folder, by file name (matched case-insensitively).
///
/// A file that does not parse is kept with its error, so that bring-up fails in the phase that
/// needs it (and only if it needs it), naming the file and the line. The sans-IO core never
/// reads files: the caller fills this from memory, or with [`super::read_firmware_dir`].
///
/// ```
/// use xpp_bringup::FirmwareSet;
/// let mut fw = FirmwareSet::new();
/// fw.insert_hex("PIC_TYPE_1.hex", b":03000000010203F7\n:00000001FF\n");
/// fw.insert_hex("USB_FW.hex", b":00000001FE\n"); // bad checksum: kept as an error
/// assert!(fw.get("pic_type_1.HEX").is_some_and(|r| r.is_ok()));
/// assert!(fw.get("USB_FW.hex").is_some_and(|r| r.is_err()));
/// assert!(fw.get("FPGA_1161.hex").is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct FirmwareSet {
    images: BTreeMap<String, (String, Result<HexFile, FirmwareError>)>,
    echo: Option<Vec<u8>>,
    origin: Option<String>,
}

impl FirmwareSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the set was read from (a folder, by [`crate::read_firmware_dir`]): named in the
    /// error when a file the device needs is not in the set.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Sets [`FirmwareSet::origin`].
    pub fn set_origin(&mut self, origin: impl Into<String>) {
        self.origin = Some(origin.into());
    }

    /// Parses `bytes` as the Intel-HEX file `name` and stores the result (image or error).
    pub fn insert_hex(&mut self, name: &str, bytes: &[u8]) {
        self.insert(name, HexFile::parse(bytes));
    }

    /// Stores an already parsed image (or a parse error) under `name`.
    pub fn insert(&mut self, name: &str, image: Result<HexFile, FirmwareError>) {
        self.images.insert(name.to_ascii_uppercase(), (name.to_owned(), image));
    }

    /// Stores the echo-canceller image (the proprietary `OCT6104E-256D.ima`, raw bytes).
    pub fn set_echo_image(&mut self, bytes: Vec<u8>) {
        self.echo = Some(bytes);
    }

    /// The image named `name` (case-insensitive), or `None` if the folder has no such file.
    pub fn get(&self, name: &str) -> Option<&Result<HexFile, FirmwareError>> {
        self.images.get(&name.to_ascii_uppercase()).map(|(_, r)| r)
    }

    /// The echo-canceller image, if present.
    pub fn echo_image(&self) -> Option<&[u8]> {
        self.echo.as_deref()
    }

    /// The file names held, as given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.images.values().map(|(n, _)| n.as_str())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.echo.is_none()
    }
}
