//! The one place that finds the shared folder of real firmware images, for the tests and
//! benches of every package (included with `#[path]` where it is not a sibling module).

use std::path::{Path, PathBuf};

/// The folder with the real Astribank images: env `XPP_FIRMWARE_DIR`, else
/// `<workspace>/../shared/firmware`.
///
/// When the folder is missing this prints a message and returns `None` so the caller skips,
/// except with env `CI=true`, where a missing folder is a failure (panic).
pub(crate) fn firmware_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("XPP_FIRMWARE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            // The workspace root is the nearest ancestor holding Cargo.lock.
            let root = manifest.ancestors().find(|d| d.join("Cargo.lock").is_file()).unwrap_or(manifest);
            root.join("..").join("shared").join("firmware")
        }
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("firmware folder {} not found (set XPP_FIRMWARE_DIR)", dir.display());
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{msg}");
    eprintln!("skipping: {msg}");
    None
}
