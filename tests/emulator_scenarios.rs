//! The sample scenarios in `examples/scenarios/` parse and play without errors on a virtual
//! clock against the configuration they name.

use std::path::Path;

use xpp::Instant;
use xpp::emu::data::EventKind;
use xpp::emu::report;
use xpp::emu::scenario::Scenario;
use xpp::emu::{Emulator, script};

fn play(file: &str, modules: &str) -> (Vec<String>, Vec<EventKind>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios").join(file);
    let text = std::fs::read_to_string(&path).expect("scenario file");
    let events = script::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let emu = Emulator::new(report::device_config(modules, false, false, "running", None, 0).unwrap());
    let mut sc = Scenario::new(events, Instant::ZERO);
    let end = sc.end() + xpp::Duration::from_secs(1);
    let applied = sc.run_virtual(&emu, end);
    assert!(sc.is_done());
    let lines: Vec<String> = applied.iter().map(report::applied).collect();
    for (a, l) in applied.iter().zip(&lines) {
        assert!(a.result.is_ok(), "{l}");
    }
    let kinds =
        emu.with_device(|d| core::iter::from_fn(|| d.data_mut().poll_event()).map(|e| e.kind).collect());
    (lines, kinds)
}

#[test]
fn fxs_fxo_call_plays_cleanly() {
    let (lines, kinds) = play("fxs-fxo-call.scn", "fxs,fxo");
    assert_eq!(lines.len(), 15);
    assert_eq!(lines[0], "scenario line 8: line 1/0 cid 5551234 Jane Doe");
    assert!(kinds.contains(&EventKind::Hook(true)));
    assert!(kinds.contains(&EventKind::Hook(false)));
}

#[test]
fn every_sample_scenario_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "scn") {
            let text = std::fs::read_to_string(&path).unwrap();
            script::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}
