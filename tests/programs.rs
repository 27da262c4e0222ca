//! The example programs' shared conventions (issue 14, items 4 and 5; issue 13's bench
//! programs too), on the built
//! programs themselves: a closed output pipe ends them quietly, `RUST_LOG` reaches stderr,
//! `--json` gives one JSON document, the same option means the same thing everywhere, and a
//! failed scenario action makes `emulator` exit non-zero.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A built example program (cargo builds the examples before the integration tests).
fn program(name: &str) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path: PathBuf = debug.join("examples").join(name);
    assert!(path.exists(), "{} is built", path.display());
    let mut cmd = Command::new(path);
    cmd.env_remove("RUST_LOG").env("XPP_FIRMWARE_DIR", firmware_dir());
    cmd
}

fn firmware_dir() -> PathBuf {
    std::env::var_os("XPP_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/firmware"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("program runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `prog | head` with a reader that is already gone: the first write fails with EPIPE.
/// The reader is closed before the program starts, so the result does not depend on whether
/// its first write comes before or after the parent closes its end (a race that made a fast
/// program's write land in the pipe buffer and exit 0).
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = cmd.stdin(Stdio::null()).stdout(writer).stderr(Stdio::piped()).spawn().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_program_quietly() {
    let fw = firmware_dir().join("USB_FW.hex");
    let fpga = firmware_dir().join("FPGA_1161.hex").display().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("fwinfo", vec![fw.display().to_string()]),
        ("demo", vec!["--virtual".into()]),
        ("timing", vec!["--emulator".into(), "--seconds".into(), "1".into()]),
        ("emulator", vec!["--stage".into(), "running".into(), "--seconds".into(), "0.2".into()]),
        ("xpp-dump", vec!["0A 00 0F 10 35 00 40 00 01 00".into()]),
        ("xpp-tool", vec!["--emulator".into(), "-Q".into()]),
        ("hexload", vec!["--emulator".into(), "--json".into(), "-F".into(), fpga.clone()]),
        ("blink", vec!["on".into(), "--emulator".into(), "--json".into()]),
        ("lsdahdi", vec!["--emulator".into()]),
        (
            "span-monitor",
            vec!["--emulator".into(), "--count".into(), "1".into(), "--interval".into(), "0.2".into()],
        ),
    ];
    for (name, args) in cases {
        let mut cmd = program(name);
        cmd.args(&args);
        let out = with_closed_stdout(cmd);
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(out.status.code(), Some(141), "{name}: {:?} {err}", out.status);
    }
}

#[test]
fn rust_log_reaches_stderr() {
    let quiet = run(program("demo").arg("--virtual"));
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(!text(&quiet.stderr).contains("DEBUG"), "no debug lines without RUST_LOG");
    let loud = run(program("demo").arg("--virtual").env("RUST_LOG", "debug"));
    assert!(loud.status.success());
    assert!(text(&loud.stderr).contains("DEBUG"), "RUST_LOG=debug gives debug lines");
}

#[test]
fn json_is_one_document() {
    let out = run(program("timing").args(["--emulator", "--seconds", "1", "--json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("timing --json is one document");
    let summed: u64 = doc["passes"].as_array().unwrap().iter().map(|p| p["missed"].as_u64().unwrap()).sum();
    assert!(summed <= doc["summary"]["overall"]["missed"].as_u64().unwrap());
    assert!(doc["bring_up"].is_array() && doc["device"].is_string(), "{doc}");

    let out = run(program("emulator").args(["--stage", "running", "--seconds", "0.2", "--json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("emulator --json is one document");
    assert_eq!(doc["failed_actions"], 0);
    assert!(doc["events"][0]["line"].as_str().unwrap().contains("attached"), "{doc}");
    // Without an end there is no end to print the document at: a usage error.
    let out = run(program("emulator").arg("--json"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(program("span-monitor").args(["--emulator", "--json"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    // The bench programs (issue 13): one document each, whatever the device has.
    let fpga = firmware_dir().join("FPGA_1161.hex").display().to_string();
    let cases: [(&str, Vec<&str>, &str); 5] = [
        ("xpp-tool", vec!["--emulator", "--twinstar", "--module", "pri", "-Q"], "query"),
        ("hexload", vec!["--emulator", "-F", &fpga], "loads"),
        ("blink", vec!["--emulator", "--seconds", "0.1", "--period", "20"], "units"),
        ("lsdahdi", vec!["--emulator", "--module", "fxs", "--module", "bri"], "spans"),
        ("span-monitor", vec!["--emulator", "--count", "2", "--interval", "0.2"], "refreshes"),
    ];
    for (name, args, key) in cases {
        let out = run(program(name).args(&args).arg("--json"));
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name} --json is one document: {e}: {}", text(&out.stdout)));
        assert!(!doc[key].is_null(), "{name}: {doc}");
        assert_eq!(doc["device"], "emulator:0", "{name}");
    }
}

#[test]
fn a_failed_scenario_action_fails_the_emulator() {
    let dir = std::env::temp_dir().join(format!("xpp-programs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("bad.scn");
    std::fs::write(&script, "0ms phone 0/0 offhook\n10ms phone 4/0 onhook\n").unwrap();
    let out = run(program("emulator").args(["--stage", "running"]).arg("--script").arg(&script));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("FAILED"));
    assert!(text(&out.stderr).contains("1 scenario action(s) FAILED"), "{}", text(&out.stderr));
    let good = dir.join("good.scn");
    std::fs::write(&good, "0ms phone 0/0 offhook\n").unwrap();
    let out = run(program("emulator").args(["--stage", "running"]).arg("--script").arg(&good));
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_option_one_meaning() {
    // The server takes `--usbip ADDR` like its clients (`--listen` still works).
    for flag in ["--usbip", "--listen"] {
        let out = run(program("usbip-serve").args([flag, "127.0.0.1:0", "--seconds", "1"]));
        assert!(out.status.success(), "{flag}: {}", text(&out.stderr));
    }
    // One `--stage` parser: the same values everywhere, a bad one is a usage error naming them.
    for name in ["demo", "emulator", "usbip-serve"] {
        let out = run(program(name).args(["--stage", "warm"]));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = text(&out.stderr);
        assert!(
            err.contains("cold") && err.contains("usb") && err.contains("fpga") && err.contains("running"),
            "{name}: {err}"
        );
    }
}
