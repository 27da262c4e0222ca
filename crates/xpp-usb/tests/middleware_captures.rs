//! Every capture under `hardware-captures/` at the workspace root decodes without error
//! (issue 4, item 6). Passes on a folder with no captures yet; checks each `*.pcap` found,
//! whether recorded by the emulator or by usbmon on real hardware.

mod middleware_support;

use middleware_support::{decode_capture, workspace_root};
use xpp_usb::Transport;
use xpp_usb::middleware::PcapReplay;

#[test]
fn every_capture_decodes() {
    let dir = workspace_root().join("hardware-captures");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("{} not found: nothing to check", dir.display());
        return;
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pcap")))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let result = std::fs::read(path).map_err(|e| e.to_string()).and_then(|bytes| {
            let n = decode_capture(&bytes)?;
            // The replay reads it too and finds the recorded device's endpoints.
            let replay = PcapReplay::from_bytes(&bytes).map_err(|e| e.to_string())?;
            if n > 0 && replay.info().interfaces.is_empty() {
                return Err("replay found no endpoints".into());
            }
            Ok(n)
        });
        match result {
            Ok(n) => eprintln!("{}: {n} transfers decoded", path.display()),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!("{} capture(s) checked in {}", paths.len(), dir.display());
    assert!(failures.is_empty(), "captures that do not decode:\n{}", failures.join("\n"));
}
