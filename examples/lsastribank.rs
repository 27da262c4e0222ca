//! `lsastribank`: list the Astribank-family USB devices, local or exported over USB/IP.
//!
//! ```text
//! cargo run --example lsastribank -- [--json] [--usbip ADDR] [--watch SECONDS]
//! ```
//!
//! One line per device: bus path, `BBB/DDD`, `vendor:product/bcd`, model family, firmware
//! stage, serial and speed; `--json` prints one JSON array instead. `--usbip ADDR` lists what a
//! USB/IP server (`usbipd`, or the emulator) exports. `--watch N` then prints arrivals and
//! departures for N seconds; with `--json` the run prints one document when the watch ends,
//! `{"devices": [..], "events": [{"arrived": ..} | {"left": ..}]}`. Where listing is impossible (no USB subsystem, server
//! unreachable) it prints one line `lsastribank: ...` on stderr and exits with status 1.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use xpp::usb::Speed;
use xpp::usb::backend::nusb::{self, Hotplug, HotplugEvent};
use xpp::usb::discovery::{Astribank, Model, bcd_string, classify};
use xpp::usb::usbip::{codec::ExportedDevice, list_devices};

/// List Astribank-family USB devices (vendor e4e4, and 04b4:8613 in recovery).
#[derive(Parser)]
#[command(name = "lsastribank")]
struct Args {
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
    /// List the devices a USB/IP server exports (e.g. 127.0.0.1:3240) instead of local ones.
    #[arg(long, value_name = "ADDR")]
    usbip: Option<String>,
    /// After listing, print arrivals and departures for this many seconds (local only).
    #[arg(long, value_name = "SECONDS")]
    watch: Option<u64>,
}

const fn speed_name(s: Speed) -> &'static str {
    match s {
        Speed::Low => "low",
        Speed::Full => "full",
        Speed::High => "high",
        Speed::Super => "super",
        _ => "unknown",
    }
}

fn model_json(m: Model) -> Value {
    json!({ "family": m.family.description(), "stage": m.stage.name() })
}

fn local_text(a: &Astribank) -> String {
    format!(
        "{:<10} {}  {:04x}:{:04x}/{:<4} {:<18} {:<16} serial {:<10} {}",
        a.bus_path(),
        a.dev_path(),
        a.vendor_id,
        a.product_id,
        bcd_string(a.bcd_device),
        a.model.family.description(),
        a.model.stage.name(),
        a.serial.as_deref().unwrap_or("-"),
        speed_name(a.speed),
    )
}

fn local_json(a: &Astribank) -> Value {
    json!({
        "bus_path": a.bus_path(),
        "dev_path": a.dev_path(),
        "vendor_id": format!("{:04x}", a.vendor_id),
        "product_id": format!("{:04x}", a.product_id),
        "bcd_device": bcd_string(a.bcd_device),
        "model": model_json(a.model),
        "serial": a.serial,
        "speed": speed_name(a.speed),
    })
}

/// An exported device that is an Astribank, with its model.
fn exported_model(d: &ExportedDevice) -> Option<Model> {
    classify(d.device.id_vendor, d.device.id_product)
}

fn exported_text(addr: &str, d: &ExportedDevice, m: Model) -> String {
    format!(
        "usbip:{addr}/{:<6} {:04x}:{:04x}/{:<4} {:<18} {:<16} {}",
        d.device.busid,
        d.device.id_vendor,
        d.device.id_product,
        bcd_string(d.device.bcd_device),
        m.family.description(),
        m.stage.name(),
        speed_name(xpp::usb::usbip::codec::speed_from_usbip(d.device.speed)),
    )
}

fn exported_json(addr: &str, d: &ExportedDevice, m: Model) -> Value {
    json!({
        "usbip": addr,
        "busid": d.device.busid,
        "vendor_id": format!("{:04x}", d.device.id_vendor),
        "product_id": format!("{:04x}", d.device.id_product),
        "bcd_device": bcd_string(d.device.bcd_device),
        "model": model_json(m),
        "speed": speed_name(xpp::usb::usbip::codec::speed_from_usbip(d.device.speed)),
    })
}

fn run(args: &Args) -> Result<(), String> {
    let mut hotplug = None;
    let (text, json): (Vec<String>, Vec<Value>) = if let Some(addr) = &args.usbip {
        let devices = list_devices(addr.as_str()).map_err(|e| e.to_string())?;
        devices
            .iter()
            .filter_map(|d| exported_model(d).map(|m| (exported_text(addr, d, m), exported_json(addr, d, m))))
            .unzip()
    } else {
        let found = if args.watch.is_some() {
            let (h, found) = Hotplug::new().map_err(|e| e.to_string())?;
            hotplug = Some(h);
            found
        } else {
            nusb::list().map_err(|e| e.to_string())?
        };
        found.iter().map(|a| (local_text(a), local_json(a))).unzip()
    };
    let watching = hotplug.is_some() && args.watch.is_some();
    if args.json && !watching {
        println!("{}", Value::Array(json));
        return Ok(());
    }
    if !args.json {
        for line in text {
            println!("{line}");
        }
    }
    let mut events = Vec::new();
    if let (Some(mut h), Some(secs)) = (hotplug, args.watch) {
        let end = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match h.next_event(left) {
                Some(HotplugEvent::Arrived(a)) if args.json => {
                    events.push(json!({ "arrived": local_json(&a) }));
                }
                Some(HotplugEvent::Left(a)) if args.json => {
                    events.push(json!({ "left": local_json(&a) }));
                }
                Some(HotplugEvent::Arrived(a)) => println!("+ {}", local_text(&a)),
                Some(HotplugEvent::Left(a)) => println!("- {}", local_text(&a)),
                _ => {}
            }
        }
    }
    if args.json {
        println!("{}", watch_document(json, events));
    }
    Ok(())
}

/// `--json --watch`: one document for the run (issue 14 item 5), printed when the watch ends:
/// the devices found at start and the arrivals and departures in order.
fn watch_document(devices: Vec<Value>, events: Vec<Value>) -> Value {
    json!({ "devices": devices, "events": events })
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lsastribank: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use xpp::usb::usbip::codec::UsbDevice;

    use super::*;

    fn modular() -> Astribank {
        Astribank {
            model: classify(0xE4E4, 0x1162).unwrap(),
            vendor_id: 0xE4E4,
            product_id: 0x1162,
            bcd_device: 0x0201,
            bus: 1,
            address: 10,
            ports: vec![1, 2],
            serial: Some("00000123".into()),
            speed: Speed::High,
        }
    }

    #[test]
    fn local_rows() {
        let a = modular();
        let line = local_text(&a);
        for part in ["1-1.2", "001/010", "e4e4:1162/201", "Astribank-modular", "running", "00000123", "high"]
        {
            assert!(line.contains(part), "{line}");
        }
        let v = local_json(&a);
        assert_eq!(v["bus_path"], "1-1.2");
        assert_eq!(v["model"]["stage"], "running");
        assert_eq!(v["bcd_device"], "201");
    }

    #[test]
    fn exported_rows_and_filter() {
        let d = ExportedDevice {
            device: UsbDevice {
                busid: "1-1".into(),
                id_vendor: 0xE4E4,
                id_product: 0x1161,
                speed: 3,
                ..Default::default()
            },
            interfaces: vec![],
        };
        let m = exported_model(&d).unwrap();
        let line = exported_text("127.0.0.1:3240", &d, m);
        assert!(line.starts_with("usbip:127.0.0.1:3240/1-1"), "{line}");
        assert!(line.contains("usb-firmware"), "{line}");
        assert_eq!(exported_json("a", &d, m)["model"]["family"], "Astribank-modular");
        let other = ExportedDevice {
            device: UsbDevice { id_vendor: 0x1d6b, id_product: 0x0002, ..Default::default() },
            interfaces: vec![],
        };
        assert!(exported_model(&other).is_none());
    }

    /// Without a USB subsystem listing is an error (printed as one line), never a panic.
    #[test]
    fn no_usb_is_an_error_not_a_panic() {
        let args = Args { json: false, usbip: None, watch: None };
        if let Err(e) = run(&args) {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    /// `--json --watch` is one document: the devices, then the events (issue 14 item 5).
    #[test]
    fn watch_json_is_one_document() {
        let a = modular();
        let doc = watch_document(vec![local_json(&a)], vec![json!({ "left": local_json(&a) })]);
        let text = doc.to_string();
        assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["devices"][0], local_json(&a));
        assert_eq!(back["events"][0]["left"], local_json(&a));
    }
}
