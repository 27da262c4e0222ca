//! Every capture under `hardware-captures/` at the workspace root decodes without error, every
//! device in it replays to its end, and `tshark` opens it (issue 4, item 6). Passes on a
//! folder with no captures yet; checks each `*.pcap` found, whether recorded by the emulator
//! or by usbmon on real hardware.

mod middleware_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use middleware_support::{decode_capture, tshark_required, workspace_root};
use xpp_usb::middleware::usbmon::{EventType, XferType};
use xpp_usb::middleware::{OutCheck, PcapReader, PcapReplay, PcapSession, Record};
use xpp_usb::{ControlSetup, Direction, Transport, endpoint_direction};

fn captures() -> Vec<PathBuf> {
    let dir = workspace_root().join("hardware-captures");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("{} not found: nothing to check", dir.display());
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("pcap")))
        .collect();
    paths.sort();
    paths
}

/// Runs `check` on every capture; fails listing every capture it failed on.
fn for_each_capture(what: &str, mut check: impl FnMut(&Path, &[u8]) -> Result<String, String>) {
    let paths = captures();
    let mut failures = Vec::new();
    for path in &paths {
        match std::fs::read(path).map_err(|e| e.to_string()).and_then(|b| check(path, &b)) {
            Ok(note) => eprintln!("{}: {note}", path.display()),
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!("{} capture(s) checked", paths.len());
    assert!(failures.is_empty(), "captures that fail {what}:\n{}", failures.join("\n"));
}

#[test]
fn every_capture_decodes() {
    for_each_capture("to decode", |_, bytes| {
        let n = decode_capture(bytes)?;
        // The replay reads it too and finds the recorded device's endpoints.
        let replay = PcapReplay::from_bytes(bytes).map_err(|e| e.to_string())?;
        if n > 0 && replay.info().interfaces.is_empty() {
            return Err("replay found no endpoints".into());
        }
        Ok(format!("{n} transfers decoded"))
    });
}

/// Plays the host side of one device's recording against its replay: every recorded submit
/// (and refused submit) and every vendor or class control transfer, in capture order,
/// collecting completions as they become due. Returns the number of host requests made.
fn drive(replay: &mut PcapReplay, records: &[Record<'_>]) -> Result<usize, String> {
    let mut made = 0;
    let mut endpoints = BTreeSet::new();
    for r in records {
        let h = &r.header;
        let at = |e: &dyn std::fmt::Display| format!("record at byte {}: {e}", r.offset);
        match (h.event, h.xfer_type) {
            (EventType::Submit, XferType::Control) => {
                let Some(setup) = h.setup_packet() else { continue };
                let (setup, len) = ControlSetup::from_bytes(setup);
                if setup.request_type & 0x60 == 0 {
                    continue; // standard requests (enumeration) are not replayed
                }
                let t = Duration::ZERO;
                let result = if setup.direction() == Direction::In {
                    replay.control_in(setup, &mut vec![0; usize::from(len)], t)
                } else {
                    replay.control_out(setup, r.data, t)
                };
                if let Err(e) = result
                    && r.header.status != 0
                {
                    return Err(at(&format!("control transfer failed: {e}")));
                }
                made += 1;
            }
            (EventType::Submit | EventType::Error, _) => {
                let buffer = match endpoint_direction(h.endpoint) {
                    Direction::In => vec![0; h.length as usize],
                    Direction::Out => r.data.to_vec(),
                };
                let refused = replay.submit(h.endpoint, buffer).is_err();
                if refused != (h.event == EventType::Error) {
                    return Err(at(&format!("submit on {:#04x}: refused = {refused}", h.endpoint)));
                }
                endpoints.insert(h.endpoint);
                made += 1;
            }
            _ => {}
        }
        for &e in &endpoints {
            while replay.wait_next_complete(e, Duration::ZERO).is_some() {}
        }
    }
    Ok(made)
}

#[test]
fn every_device_of_every_capture_replays_to_its_end() {
    for_each_capture("to replay", |_, bytes| {
        let records: Vec<_> = PcapReader::new(bytes)
            .and_then(Iterator::collect)
            .map_err(|e: xpp_usb::middleware::PcapError| e.to_string())?;
        let mut session =
            PcapSession::from_bytes(bytes).map_err(|e| e.to_string())?.with_out_check(OutCheck::Verify);
        let devices = session.devices().to_vec();
        let mut notes = Vec::new();
        for &(bus, dev) in &devices {
            let mut replay = session.open().ok_or(format!("device {bus}.{dev} not handed out"))?;
            let mine: Vec<_> = records
                .iter()
                .filter(|r| (r.header.busnum, r.header.devnum) == (bus, dev))
                .copied()
                .collect();
            let made = drive(&mut replay, &mine).map_err(|e| format!("device {bus}.{dev}: {e}"))?;
            let s = replay.stats();
            if !replay.is_disconnected() || s.out_mismatches != 0 || s.control_misses != 0 {
                return Err(format!(
                    "device {bus}.{dev}: ended {}, {} left, {s:?}",
                    replay.is_disconnected(),
                    replay.remaining()
                ));
            }
            let info = replay.info();
            notes.push(format!("{bus}.{dev} {:04x}:{:04x} {made} requests", info.vendor_id, info.product_id));
        }
        if session.open().is_some() {
            return Err("a device beyond the list".into());
        }
        Ok(notes.join(", "))
    });
}

/// The cold bring-up capture holds the three stages, each a device of its own.
#[test]
fn cold_bringup_capture_goes_through_three_devices() {
    let path = workspace_root().join("hardware-captures").join("emu-cold-fxs-fxo-bringup.pcap");
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!("{} not found: skipped", path.display());
        return;
    };
    let mut session = PcapSession::from_bytes(&bytes).unwrap();
    assert_eq!(session.devices(), [(1, 2), (1, 3), (1, 4)]);
    let mut products = Vec::new();
    while let Some(r) = session.next_device() {
        products.push(r.info().product_id);
    }
    assert_eq!(products, [0x1160, 0x1161, 0x1162]);
    // FX2 writes on the first device, MPP and XPP on the second, XPP on the third.
    let records: Vec<_> = PcapReader::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
    let eps = |dev: u8| -> BTreeSet<u8> {
        records.iter().filter(|r| r.header.devnum == dev).map(|r| r.header.endpoint).collect()
    };
    assert_eq!(eps(2), [0x00, 0x80].into());
    assert_eq!(eps(3), [0x02, 0x04, 0x80, 0x86, 0x88].into());
    assert!(eps(4).is_superset(&[0x02, 0x86].into()));
    assert!(decode_capture(&bytes).unwrap() > 2000);
}

/// `tshark` opens every capture and sees every record, with the same device addresses.
#[test]
fn tshark_opens_every_capture() {
    if std::process::Command::new("tshark").arg("--version").output().is_err() {
        assert!(!tshark_required(), "tshark not installed but XPP_REQUIRE_TSHARK=1");
        eprintln!("tshark not installed: skipped");
        return;
    }
    for_each_capture("to open in tshark", |path, bytes| {
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(path)
            .args(["-T", "fields", "-e", "usb.bus_id", "-e", "usb.device_address", "-e", "usb.urb_type"])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("tshark failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let records: Vec<_> = PcapReader::new(bytes)
            .and_then(Iterator::collect)
            .map_err(|e: xpp_usb::middleware::PcapError| e.to_string())?;
        let lines: Vec<&str> = stdout.lines().collect();
        if lines.len() != records.len() {
            return Err(format!(
                "tshark shows {} packets, the file has {} records",
                lines.len(),
                records.len()
            ));
        }
        for (line, r) in lines.iter().zip(&records) {
            let want = format!("{}\t{}\t", r.header.busnum, r.header.devnum);
            if !line.starts_with(&want) {
                return Err(format!("record at byte {}: tshark shows {line:?}, want {want:?}…", r.offset));
            }
        }
        let devices: BTreeSet<_> = records.iter().map(|r| r.header.devnum).collect();
        Ok(format!("tshark: {} packets, devices {devices:?}", lines.len()))
    });
}
