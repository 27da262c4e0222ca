//! Debian's unmodified `astribank_tool` (package dahdi) as an independent MPP client of the
//! emulated device: the runner used by `astribank_tool-Q`, and the checks of its commands
//! that act on the device (docs/reference/mpp-twinstar-firmware.md §7.1), on device A (TwinStar, in the USB
//! firmware stage after the earlier checks):
//!
//! - `astribank_tool-w`: `-w 1` then `-w 0` (TWS_WD_MODE_SET), each seen by `-Q` as
//!   `TwinStar: Watchdog : on-guard` / `off-guard`;
//! - `astribank_tool-p`: `-p <the other port>` (TWS_PORT_SET): the device leaves its bus path
//!   and arrives on the other one, where `-Q` reports the new port;
//! - `astribank_tool-n`: `-n` (RENUM): the device leaves and comes back on the same bus path
//!   with a new address.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::backend::Found;
use crate::scenarios::{Ctx, USB_FW, ensure, short};

/// Debian's `astribank_tool` (package dahdi), when build-guest.sh put it in the guest.
pub(crate) const ASTRIBANK_TOOL: &str = "/usr/sbin/astribank_tool";
/// One run of the tool (it does a handful of MPP exchanges).
const TOOL_LIMIT: Duration = Duration::from_secs(30);

/// Runs `astribank_tool -D BBB/DDD <args>` (bounded by [`TOOL_LIMIT`]); its exit status,
/// stdout and stderr.
pub(crate) fn astribank_tool(f: &Found, args: &[&str]) -> Result<(ExitStatus, String, String), String> {
    use std::io::Read;
    let mut child = std::process::Command::new(ASTRIBANK_TOOL)
        .args(["-D", &format!("{:03}/{:03}", f.bus, f.address)])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{ASTRIBANK_TOOL}: {e}"))?;
    let end = Instant::now() + TOOL_LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("astribank_tool {args:?} still running after {TOOL_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    Ok((status, out, err))
}

/// Runs the tool, prints its stderr and the `TwinStar:` lines of its stdout as
/// `KVM-LOG astribank_tool <args>:` lines (all of stdout if it fails), and fails unless it
/// exits 0; its stdout.
fn run_ok(f: &Found, args: &[&str]) -> Result<String, String> {
    let (status, out, err) = astribank_tool(f, args)?;
    let cmd = args.join(" ");
    let shown = out.lines().filter(|l| !status.success() || l.starts_with("TwinStar:"));
    for l in err.lines().chain(shown) {
        println!("KVM-LOG astribank_tool {cmd}: {l}");
    }
    ensure(status.success(), || format!("astribank_tool {cmd} on {}: exit status {status}", short(f)))?;
    Ok(out)
}

/// The value of the `-Q` line starting with `label` (what follows its `:`), trimmed.
fn value<'a>(out: &'a str, label: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.starts_with(label))
        .and_then(|l| l[label.len()..].split_once(':'))
        .map(|(_, v)| v.trim())
}

/// The TwinStar port `-Q` reports the device connected to.
fn connected_port(out: &str) -> Result<u8, String> {
    let v = value(out, "TwinStar: Connected to").ok_or("no 'TwinStar: Connected to' line")?;
    match v.to_ascii_uppercase().as_str() {
        "USB-0" => Ok(0),
        "USB-1" => Ok(1),
        _ => Err(format!("'TwinStar: Connected to : {v}'")),
    }
}

/// The three checks (see the module doc).
pub(crate) fn checks(cx: &mut Ctx<'_>) {
    cx.check("astribank_tool-w", |cx| {
        let f = cx.wait_for(USB_FW, |_| true)?;
        let mut seen = Vec::new();
        for (v, want) in [("1", "on-guard"), ("0", "off-guard")] {
            run_ok(&f, &["-w", v])?;
            let out = run_ok(&f, &["-Q"])?;
            let wd = value(&out, "TwinStar: Watchdog").unwrap_or("(no line)");
            ensure(wd.starts_with(want), || {
                format!("after -w {v}: 'TwinStar: Watchdog : {wd}', not {want}")
            })?;
            seen.push(format!("-w {v}: exit 0, -Q: Watchdog {wd}"));
        }
        Ok(format!("{} on {}", seen.join("; "), short(&f)))
    });

    cx.check("astribank_tool-p", |cx| {
        let old = cx.wait_for(USB_FW, |_| true)?;
        let from = connected_port(&run_ok(&old, &["-Q"])?)?;
        let to = 1 - from;
        let start = Instant::now();
        run_ok(&old, &["-p", &to.to_string()])?;
        let new = cx.wait_for(USB_FW, |f| f.bus_path != old.bus_path)?;
        let appeared = start.elapsed();
        let list = cx.backend.list()?;
        ensure(!list.iter().any(|f| f.bus_path == old.bus_path), || format!("old port still listed: {list:?}"))?;
        let now = connected_port(&run_ok(&new, &["-Q"])?)?;
        ensure(now == to, || format!("-Q on the new bus path says USB-{now}, not USB-{to}"))?;
        Ok(format!(
            "-p {to}: exit 0; jump USB-{from} -> USB-{to}: {} left, {} arrived after {appeared:?}; -Q there: Connected to USB-{now}",
            short(&old),
            short(&new)
        ))
    });

    cx.check("astribank_tool-n", |cx| {
        let old = cx.wait_for(USB_FW, |_| true)?;
        let start = Instant::now();
        run_ok(&old, &["-n"])?;
        let new = cx.wait_for(USB_FW, |f| f.bus_path == old.bus_path && f.address != old.address)?;
        let appeared = start.elapsed();
        run_ok(&new, &["-Q"])?;
        Ok(format!(
            "-n: exit 0; renumeration: {} -> {} after {appeared:?}; -Q answers there",
            short(&old),
            short(&new)
        ))
    });
}
