//! # xpp-kvm-guest: the kernel USB stack test, guest side
//!
//! Runs inside the QEMU guest that `ci/kernel-usb-vm/run.sh` boots (as its `/init`'s test
//! program). For each backend under test (nusb, and rusb when built with the `rusb` feature) it
//! serves emulated Astribanks with the emulator's USB/IP server on the guest's 127.0.0.1,
//! attaches them to the guest kernel's `vhci_hcd`, and drives them through the kernel's usbfs
//! as real hardware would be: enumeration, both interfaces, queued bulk IN, bulk OUT, control transfers, a
//! firmware stage's renumeration and a TwinStar jump.
//!
//! Every check prints one line `KVM-TEST <backend>.<name> PASS|FAIL <detail>`; the exit
//! status is non-zero if any failed.
//!
//! ```text
//! xpp-kvm-guest [--firmware DIR] [nusb] [rusb]
//! ```

mod backend;
mod call;
mod cold;
mod hotplug;
mod scenarios;
mod tools;
mod vhci;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut firmware = std::env::var("XPP_FIRMWARE_DIR").unwrap_or_else(|_| "/firmware".into());
    let mut wanted = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--firmware" => firmware = args.next().unwrap_or_default(),
            "nusb" | "rusb" => wanted.push(a),
            other => {
                eprintln!("usage: xpp-kvm-guest [--firmware DIR] [nusb] [rusb]; unknown {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    if wanted.is_empty() {
        wanted.push("nusb".into());
        if cfg!(feature = "rusb") {
            wanted.push("rusb".into());
        }
    }
    let mut failed = 0;
    for (i, name) in wanted.iter().enumerate() {
        let b: Box<dyn backend::Backend> = match name.as_str() {
            "nusb" => Box::new(backend::Nusb),
            #[cfg(feature = "rusb")]
            "rusb" => Box::new(backend::Rusb),
            _ => {
                println!("KVM-TEST {name}.build FAIL this binary was built without the {name} feature");
                failed += 1;
                continue;
            }
        };
        failed += scenarios::run(b.as_ref(), std::path::Path::new(&firmware), i == 0);
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
