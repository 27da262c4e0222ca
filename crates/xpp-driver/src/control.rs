//! The control socket of a TwinStar host: a Unix-domain socket through which the `twinstar`
//! CLI and cluster managers (Pacemaker's resource agent, keepalived's scripts) query and
//! command a running driver, which holds the device (both interfaces claimed) so that
//! nothing else can talk MPP to it.
//!
//! # Protocol
//!
//! One request per line (UTF-8, at most [`MAX_LINE`] bytes); each answer is one JSON object
//! on one line. The connection stays open after an answer, and after an error.
//!
//! | Request | Answer |
//! |---|---|
//! | `status` | `{"role":"master","healthy":true,"stopped":false,"devices":[0],"present":[true]}` (`devices`: per target, the driver's device number or `null`; `present`: per target, whether the device is on this host's port, taken over or not yet) |
//! | `jump`, `enable-wd`, `disable-wd` | `{"ok":true}` once the command was handed to the controller |
//! | `timeline` | `{"phases":[{"phase":"detect","start_us":…,"duration_us":…},…],"total_us":…}` (the last failover; no phases before one) |
//! | `watch` | `{"ok":true}`, then one object per controller event (`{"event":"role","role":"backup"}` …) until the client closes |
//! | anything else | `{"error":"…"}` |
//!
//! The socket file is created with mode 0660 (the group of the udev rule, `docs/permissions.md`).
//! At most [`MAX_CLIENTS`] connections are served at once: a client above that gets
//! `{"error":"busy"}` and is closed. A connection without a request for [`IDLE_LIMIT`] is
//! closed (`watch` excepted). A line longer than [`MAX_LINE`] closes the connection.

use std::io::{BufRead, BufReader, ErrorKind, Read as _, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xpp_twinstar::{Command, Event, Role, Timeline};

use crate::twinstar::TwinStarHost;

/// Longest request line.
pub const MAX_LINE: usize = 256;
/// Most connections served at once.
pub const MAX_CLIENTS: usize = 32;
/// A connection without a request for this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);
/// How often blocked threads look at the stop flag.
const SLICE: Duration = Duration::from_millis(50);

/// A served control socket; dropping it stops serving and removes the socket file.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlSocket {
    /// Serves `host` on a new socket at `path` (an existing socket file there is replaced).
    pub fn bind(path: impl AsRef<Path>, host: Arc<TwinStarHost>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("xpp-control".into())
            .spawn(move || accept_loop(&listener, &host, &s))?;
        Ok(Self { path, stop, thread: Some(thread) })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving (open connections end within a fraction of a second), joins, and
    /// removes the socket file.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn accept_loop(listener: &UnixListener, host: &Arc<TwinStarHost>, stop: &Arc<AtomicBool>) {
    let clients = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        threads.retain(|t| !t.is_finished());
        match listener.accept() {
            Ok((mut stream, _)) => {
                if clients.load(Ordering::SeqCst) >= MAX_CLIENTS {
                    let _ = writeln!(stream, "{}", json!({ "error": "busy" }));
                    continue;
                }
                clients.fetch_add(1, Ordering::SeqCst);
                let (h, s, c) = (Arc::clone(host), Arc::clone(stop), Arc::clone(&clients));
                let spawned =
                    std::thread::Builder::new().name("xpp-control-client".into()).spawn(move || {
                        serve(stream, &h, &s);
                        c.fetch_sub(1, Ordering::SeqCst);
                    });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => {
                        clients.fetch_sub(1, Ordering::SeqCst);
                        log::warn!("control socket: {e}");
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(SLICE),
            Err(e) => {
                log::warn!("control socket: accept: {e}");
                std::thread::sleep(SLICE);
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// One connection: requests until the client closes, idles out, sends a line too long, or
/// the socket stops.
fn serve(stream: UnixStream, host: &TwinStarHost, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(SLICE)).is_err() {
        return;
    }
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // Read up to the end of the line, never more than the limit (+1 to see it exceeded).
        let room = (MAX_LINE + 1).saturating_sub(line.len()) as u64;
        match (&mut reader).take(room).read_until(b'\n', &mut line) {
            Ok(0) => return, // closed (a partial request is dropped with it)
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last.elapsed() > IDLE_LIMIT {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_LINE {
                let _ =
                    writeln!(out, "{}", json!({ "error": format!("request longer than {MAX_LINE} bytes") }));
                return;
            }
            continue; // the rest of the line is still coming
        }
        last = Instant::now();
        let request = String::from_utf8_lossy(&line).trim().to_owned();
        line.clear();
        if request == "watch" {
            return watch(&mut out, host, stop);
        }
        if writeln!(out, "{}", answer(&request, host)).is_err() {
            return;
        }
    }
}

fn answer(request: &str, host: &TwinStarHost) -> Value {
    let command = |c: Command| {
        host.command(c);
        json!({ "ok": true })
    };
    match request {
        "status" => {
            let st = host.status();
            json!({
                "role": role(st.role),
                "healthy": st.healthy,
                "stopped": st.stopped,
                "devices": st.devices.iter().map(|d| d.map(|d| d.0)).collect::<Vec<_>>(),
                "present": st.present,
            })
        }
        "jump" => command(Command::Jump),
        "enable-wd" => command(Command::EnableWatchdog),
        "disable-wd" => command(Command::DisableWatchdog),
        "timeline" => timeline(host.status().last_failover.as_ref()),
        "" => json!({ "error": "empty request" }),
        other => {
            json!({ "error": format!("unknown request {other:?} (status, jump, enable-wd, disable-wd, timeline, watch)") })
        }
    }
}

const fn role(r: Role) -> &'static str {
    match r {
        Role::Master => "master",
        Role::Backup => "backup",
    }
}

fn timeline(t: Option<&Timeline>) -> Value {
    let Some(t) = t else { return json!({ "phases": [], "total_us": 0 }) };
    let phases: Vec<Value> = t
        .phases()
        .iter()
        .map(|p| {
            json!({
                "phase": p.phase.to_string(),
                "start_us": p.start.total_micros(),
                "duration_us": p.duration.total_micros(),
            })
        })
        .collect();
    json!({ "phases": phases, "total_us": t.total().total_micros() })
}

fn event(e: &Event) -> Value {
    match e {
        Event::RoleChanged { role: r } => json!({ "event": "role", "role": role(*r) }),
        Event::HealthChanged { healthy } => json!({ "event": "health", "healthy": healthy }),
        Event::WatchdogChanged { device, armed } => {
            json!({ "event": "watchdog", "device": device.0, "armed": armed })
        }
        Event::HandOverStarted { reason } => json!({ "event": "hand-over", "reason": format!("{reason:?}") }),
        Event::HandOverRefused { reason } => {
            json!({ "event": "hand-over-refused", "reason": format!("{reason:?}") })
        }
        Event::Failover { timeline: t } => json!({ "event": "failover", "timeline": timeline(Some(t)) }),
        Event::TakeOverFailed { device } => json!({ "event": "take-over-failed", "device": device.0 }),
        Event::FullInit { device } => json!({ "event": "full-init", "device": device.0 }),
        Event::MppFailed { device, request } => {
            json!({ "event": "mpp-failed", "device": device.0, "request": format!("{request:?}") })
        }
        Event::Stopped => json!({ "event": "stopped" }),
        other => json!({ "event": "other", "debug": format!("{other:?}") }),
    }
}

fn watch(out: &mut UnixStream, host: &TwinStarHost, stop: &AtomicBool) {
    let events = host.subscribe();
    if writeln!(out, "{}", json!({ "ok": true })).is_err() {
        return;
    }
    let mut probe = [0u8; 64];
    while !stop.load(Ordering::SeqCst) {
        loop {
            match events.try_recv() {
                Ok(e) => {
                    if writeln!(out, "{}", event(&e)).is_err() {
                        return; // the client went away
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        // Waits a slice for the client: a close ends the watch (what it sends is ignored).
        match out.read(&mut probe) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}
