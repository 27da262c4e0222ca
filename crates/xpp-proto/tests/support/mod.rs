//! The one place that finds the folder of real firmware images, for the tests and benches of
//! every package (included with `#[path]` where it is not a sibling module).

use std::path::{Path, PathBuf};

/// The folder with the real Astribank images, searched in the order every tool uses
/// (`xpp_bringup::firmware_dirs`, which these tests cannot depend on from below):
/// `$XPP_FIRMWARE_DIR`, the repository's `testdata/firmware`, `/usr/share/dahdi`.
///
/// A test that needs firmware and finds none fails, naming every folder searched; it never
/// passes by skipping. A checkout always has `testdata/firmware`.
pub(crate) fn firmware_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The workspace root is the nearest ancestor holding Cargo.lock.
    let root = manifest.ancestors().find(|d| d.join("Cargo.lock").is_file()).unwrap_or(manifest);
    let mut searched: Vec<PathBuf> =
        std::env::var_os("XPP_FIRMWARE_DIR").map(PathBuf::from).into_iter().collect();
    searched.push(root.join("testdata").join("firmware"));
    searched.push(PathBuf::from("/usr/share/dahdi"));
    match searched.iter().find(|d| d.is_dir()) {
        Some(d) => d.clone(),
        None => {
            let list: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
            panic!("no firmware folder found (searched {}); set XPP_FIRMWARE_DIR", list.join(", "))
        }
    }
}
