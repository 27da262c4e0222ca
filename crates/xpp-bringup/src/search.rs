//! Where the firmware images are looked for: one order for every tool, example and test.

use std::path::{Path, PathBuf};

/// The environment variable naming a firmware folder; searched first.
pub const FIRMWARE_DIR_ENV: &str = "XPP_FIRMWARE_DIR";

/// The system's firmware folder (where dahdi-tools and the reference loader keep the images).
pub const SYSTEM_FIRMWARE_DIR: &str = "/usr/share/dahdi";

/// The folders searched for firmware images, in order:
///
/// 1. `$XPP_FIRMWARE_DIR`, when set;
/// 2. the repository's `testdata/firmware`, when this build comes from a checkout that is
///    still there (tests, examples and `cargo run` in a clone);
/// 3. [`SYSTEM_FIRMWARE_DIR`].
pub fn firmware_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::with_capacity(3);
    if let Some(d) = std::env::var_os(FIRMWARE_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware");
    if checkout.is_dir() {
        dirs.push(checkout);
    }
    dirs.push(PathBuf::from(SYSTEM_FIRMWARE_DIR));
    dirs
}

/// The first of [`firmware_dirs`] that is a folder, or an error naming every folder searched.
pub fn find_firmware_dir() -> Result<PathBuf, FirmwareDirNotFound> {
    first_dir(firmware_dirs())
}

fn first_dir(searched: Vec<PathBuf>) -> Result<PathBuf, FirmwareDirNotFound> {
    match searched.iter().find(|d| d.is_dir()) {
        Some(d) => {
            if let Some(env) = std::env::var_os(FIRMWARE_DIR_ENV)
                && Path::new(&env) != d
            {
                log::warn!(
                    "{FIRMWARE_DIR_ENV}={} is not a folder; using {}",
                    Path::new(&env).display(),
                    d.display()
                );
            }
            Ok(d.clone())
        }
        None => Err(FirmwareDirNotFound { searched }),
    }
}

/// No firmware folder was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no firmware folder found (searched {}); set {FIRMWARE_DIR_ENV}", list(.searched))]
pub struct FirmwareDirNotFound {
    /// Every folder searched, in order.
    pub searched: Vec<PathBuf>,
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_finds_its_testdata_and_errors_name_every_folder() {
        let dirs = firmware_dirs();
        assert_eq!(dirs.last().map(PathBuf::as_path), Some(Path::new(SYSTEM_FIRMWARE_DIR)));
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/firmware");
        assert!(dirs.contains(&checkout), "built from a checkout: {dirs:?}");
        assert!(find_firmware_dir().is_ok_and(|d| d.is_dir()));

        let missing = vec![PathBuf::from("/nonexistent/a"), PathBuf::from("/nonexistent/b")];
        let e = first_dir(missing.clone()).unwrap_err();
        assert_eq!(e.searched, missing);
        assert_eq!(
            e.to_string(),
            "no firmware folder found (searched /nonexistent/a, /nonexistent/b); set XPP_FIRMWARE_DIR"
        );
    }
}
