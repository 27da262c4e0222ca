//! The boot/licence EEPROM (MODEL.md MPP-14, MPP-18, USB-2, USB-3, USB-5).
//!
//! Raw layout (MPP-18): Small = 256 bytes, Large = 8192 bytes; 0x00–0x0F eeprom_table (FX2
//! boot header + label), 0x10–0x1B capabilities, 0x1C–0x2B capkey, 0x2C–0x43 extrainfo, the
//! rest 0xFF (erased).

use sha2::{Digest, Sha256};
use xpp_proto::mgmt::{CapKey, Capabilities, EepromTable};

use crate::config::{DeviceConfig, EepromKind, FxsChip, ModuleConfig};

pub(crate) const TABLE: core::ops::Range<usize> = 0x00..0x10;
pub(crate) const CAPS: core::ops::Range<usize> = 0x10..0x1C;
pub(crate) const KEY: core::ops::Range<usize> = 0x1C..0x2C;
const EXTRAINFO: core::ops::Range<usize> = 0x2C..0x44;

/// The emulator's capkey oracle (MPP-14): the first 16 bytes of
/// SHA-256("xpp-emu capkey v1" ‖ eeprom_table ‖ capabilities).
///
/// This is **not** Xorcom's algorithm (which is unknown, MT §10.8); it only lets tests and demos
/// make licences the emulated device accepts.
pub fn key_oracle(table: &EepromTable, caps: &Capabilities) -> CapKey {
    let mut h = Sha256::new();
    h.update(b"xpp-emu capkey v1");
    h.update(table.to_bytes());
    h.update(caps.to_bytes());
    let d = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&d[..16]);
    CapKey(key)
}

/// The capabilities a configured device ships with: port counts of its modules, the TwinStar
/// bit, 128 echo channels with an echo module (ECHO-1).
pub fn default_capabilities(cfg: &DeviceConfig) -> Capabilities {
    let mut c = Capabilities::default();
    for m in cfg.slots.iter().flatten() {
        match *m {
            ModuleConfig::Fxs { .. } => c.ports_fxs = c.ports_fxs.saturating_add(8),
            ModuleConfig::Fxo { .. } => c.ports_fxo = c.ports_fxo.saturating_add(8),
            ModuleConfig::Pri { ports, .. } => c.ports_pri = c.ports_pri.saturating_add(ports),
            ModuleConfig::Bri { ports, .. } => c.ports_bri = c.ports_bri.saturating_add(ports),
        }
    }
    c.extra_features = u8::from(cfg.twinstar);
    c.ports_echo = if cfg.echo { 128 } else { 0 };
    c
}

/// The EEPROM table a configured device ships with (MODEL.md configuration inputs).
pub fn default_table(cfg: &DeviceConfig) -> EepromTable {
    EepromTable {
        source: 0xC0,
        vendor: 0xE4E4,
        product: cfg.cold_product.unwrap_or(cfg.family.base_product()),
        // MODEL: USB-5 — release = bcdDevice.
        release: cfg.hw_revision,
        config: 0,
        label: cfg.label,
    }
}

/// The module type code of CARD_INFO (MT §3.3): 1 FXS, 2 FXO, 3 BRI, 4 PRI, 6 FXS type 6.
pub(crate) const fn module_type(m: &ModuleConfig) -> (u8, u8) {
    match *m {
        ModuleConfig::Fxs { chip: FxsChip::Type6, subtype, .. } => (6, subtype),
        ModuleConfig::Fxs { subtype, .. } => (1, subtype),
        ModuleConfig::Fxo { subtype, .. } => (2, subtype),
        ModuleConfig::Bri { .. } => (3, 0),
        ModuleConfig::Pri { .. } => (4, 0),
    }
}

/// The EEPROM contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Eeprom {
    kind: EepromKind,
    raw: Vec<u8>,
    /// Changed since the last [`Eeprom::take_dirty`].
    dirty: bool,
}

impl Eeprom {
    pub(crate) fn new(cfg: &DeviceConfig) -> Self {
        let size = match cfg.eeprom {
            EepromKind::None => 0,
            EepromKind::Small => 256,
            _ => 8192,
        };
        let mut e = Self { kind: cfg.eeprom, raw: vec![0xFF; size], dirty: false };
        let table = default_table(cfg);
        e.write(TABLE.start, &table.to_bytes());
        if e.kind == EepromKind::Large {
            let caps = default_capabilities(cfg);
            e.write(CAPS.start, &caps.to_bytes());
            e.write(KEY.start, &key_oracle(&table, &caps).0);
        }
        e.dirty = false;
        e
    }

    /// Whether anything was written since the last call; clears the flag.
    pub(crate) fn take_dirty(&mut self) -> bool {
        core::mem::take(&mut self.dirty)
    }

    /// MODEL: MPP-18, LOAD-13 — replaces the contents with the file at `path`.
    ///
    /// `Ok(false)` if the file does not exist (the contents stay as they are; the file is
    /// created by the first write). A file of the wrong size or that cannot be read is an
    /// error and changes nothing. At most one byte more than the image is read (the file may
    /// be a pipe or a device).
    // Decision: the file is the raw EEPROM image, byte for byte (256 or 8192 bytes), so it can
    // be inspected with a hex dump and made from a real device's EEPROM_BLK_RD dump.
    pub(crate) fn load_file(&mut self, path: &std::path::Path) -> Result<bool, String> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.to_string()),
        };
        self.load_from(file).map(|()| true)
    }

    /// Replaces the contents with an image read from `reader`: exactly the EEPROM's size,
    /// at most one byte more read; anything else is an error and changes nothing.
    pub(crate) fn load_from(&mut self, reader: impl std::io::Read) -> Result<(), String> {
        let bytes = match xpp_proto::input::read_capped(reader, self.raw.len()) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(format!("{e}, expected {}", self.raw.len()));
            }
            Err(e) => return Err(e.to_string()),
        };
        if bytes.len() != self.raw.len() {
            return Err(format!("{} bytes, expected {}", bytes.len(), self.raw.len()));
        }
        self.raw = bytes;
        Ok(())
    }

    /// MODEL: MPP-18 — writes the contents to `path` (through a temporary file and a rename,
    /// so a crash never leaves a half-written image).
    pub(crate) fn save_file(&self, path: &std::path::Path) -> Result<(), String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, &self.raw).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            e.to_string()
        })
    }

    pub(crate) const fn kind(&self) -> EepromKind {
        self.kind
    }

    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub(crate) fn read(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.raw.get(offset..offset.checked_add(len)?)
    }

    /// Writes `data` at `offset`; false (nothing written) if it does not fit.
    pub(crate) fn write(&mut self, offset: usize, data: &[u8]) -> bool {
        let Some(end) = offset.checked_add(data.len()) else { return false };
        match self.raw.get_mut(offset..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    fn array<const N: usize>(&self, r: core::ops::Range<usize>) -> [u8; N] {
        let mut a = [0xFF; N];
        if let Some(s) = self.raw.get(r) {
            a.copy_from_slice(s);
        }
        a
    }

    pub(crate) fn table(&self) -> EepromTable {
        EepromTable::from_bytes(&self.array(TABLE))
    }

    pub(crate) fn caps(&self) -> Capabilities {
        Capabilities::parse(&self.array::<12>(CAPS)).unwrap_or_default()
    }

    pub(crate) fn key(&self) -> CapKey {
        CapKey(self.array(KEY))
    }

    pub(crate) fn extrainfo(&self) -> [u8; 24] {
        self.array(EXTRAINFO)
    }

    pub(crate) fn set_table(&mut self, t: &EepromTable) {
        self.write(TABLE.start, &t.to_bytes());
    }

    pub(crate) fn set_caps(&mut self, caps: &Capabilities, key: &CapKey) {
        self.write(CAPS.start, &caps.to_bytes());
        self.write(KEY.start, &key.0);
    }

    pub(crate) fn set_extrainfo(&mut self, text: &[u8; 24]) {
        self.write(EXTRAINFO.start, text);
    }

    /// The FX2 boot header (USB-2, USB-3): `Some((vendor, product))` if byte 0 is 0xC0 or
    /// 0xC2, else `None` (the FX2 then enumerates as 04B4:8613).
    // Decision: with no EEPROM fitted the FX2 finds no boot header either, so it is 8613.
    pub(crate) fn boot_ids(&self) -> Option<(u16, u16)> {
        match self.raw.first() {
            Some(0xC0 | 0xC2) => {
                let t = self.table();
                Some((t.vendor, t.product))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device (no size in its metadata) is read one byte past the image and refused; a
    /// regular file of the wrong size too; neither changes the contents.
    #[cfg(target_os = "linux")]
    #[test]
    fn load_file_reads_at_most_one_byte_past_the_image() {
        let mut e = Eeprom::new(&DeviceConfig::default());
        let before = e.raw().to_vec();
        let err = e.load_file(std::path::Path::new("/dev/zero")).expect_err("endless");
        assert_eq!(err, "more than 8192 bytes, expected 8192");
        let path = std::env::temp_dir().join(format!("xpp-emu-eeprom-{}.bin", std::process::id()));
        std::fs::write(&path, [0u8; 100]).expect("write");
        assert_eq!(e.load_file(&path), Err("100 bytes, expected 8192".into()));
        assert_eq!(e.raw(), &before[..]);
        std::fs::write(&path, [0x5Au8; 8192]).expect("write");
        assert_eq!(e.load_file(&path), Ok(true));
        assert_eq!(e.raw(), &[0x5A; 8192][..]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(e.load_file(&path), Ok(false));
    }

    #[test]
    fn default_layout() {
        let cfg = DeviceConfig::default();
        let e = Eeprom::new(&cfg);
        assert_eq!(e.raw().len(), 8192);
        assert_eq!(&e.raw()[..8], &[0xC0, 0xE4, 0xE4, 0x60, 0x11, 0x01, 0x01, 0x00]);
        assert_eq!(&e.raw()[8..16], b"00000001");
        assert_eq!(&e.raw()[0x10..0x16], &[8, 8, 0, 0, 0, 0]);
        assert_eq!(e.key(), key_oracle(&e.table(), &e.caps()));
        assert_eq!(e.extrainfo(), [0xFF; 24]);
        assert!(e.raw()[0x44..].iter().all(|&b| b == 0xFF));
        assert_eq!(e.boot_ids(), Some((0xE4E4, 0x1160)));
        let none = Eeprom::new(&DeviceConfig::default().with_eeprom(EepromKind::None));
        assert_eq!(none.boot_ids(), None);
        assert_eq!(Eeprom::new(&DeviceConfig::default().with_eeprom(EepromKind::Small)).raw().len(), 256);
    }
}
