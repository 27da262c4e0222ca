//! The control socket of a TwinStar host on an emulated TwinStar Astribank (USB/IP on
//! loopback): every request, errors that keep the connection, a line too long, a client gone
//! mid-request, `watch`, the client limit, the socket file's mode.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde_json::Value;
use xpp_driver::control::{MAX_CLIENTS, MAX_LINE};
use xpp_driver::tws::Role;
use xpp_driver::{ControlSocket, Driver, DriverOptions, Target, TwinStarHost, TwinStarOptions};
use xpp_emu::config::Stage as EmuStage;
use xpp_emu::usbip_server::{UsbIpServer, busid};
use xpp_emu::{DeviceConfig, Emulator};
use xpp_usb::SystemClock;

mod common;
use common::{eventually, firmware, within};

struct Client(BufReader<UnixStream>);

impl Client {
    fn connect(path: &PathBuf) -> Self {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(StdDuration::from_secs(10))).unwrap();
        Self(BufReader::new(s))
    }
    fn send(&mut self, line: &str) {
        // A server that closed the connection (a line too long) makes this fail: the answer says why.
        let _ = self.0.get_mut().write_all(line.as_bytes());
    }
    fn read(&mut self) -> Value {
        let mut l = String::new();
        self.0.read_line(&mut l).expect("an answer");
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"))
    }
    fn ask(&mut self, line: &str) -> Value {
        self.send(&format!("{line}\n"));
        self.read()
    }
}

#[test]
fn every_request_and_every_misuse() {
    within(120, || {
        let cfg = DeviceConfig::default().with_twinstar(true).with_start_stage(EmuStage::Running);
        let (emu, _runner) = Emulator::real_time(cfg);
        let server = UsbIpServer::bind_loopback(emu.clone(), 0).unwrap();
        let target: Target = format!("usbip:{}/{}", server.local_addr(), busid(0)).parse().unwrap();
        let drv = Arc::new(Driver::new(SystemClock::new(), DriverOptions::default()));
        let host = Arc::new(
            TwinStarHost::start(
                Arc::clone(&drv),
                vec![target],
                Role::Master,
                || true,
                TwinStarOptions::new(firmware()),
            )
            .unwrap(),
        );
        let path = std::env::temp_dir().join(format!("xpp-control-{}.sock", std::process::id()));
        let socket = ControlSocket::bind(&path, Arc::clone(&host)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
        eventually("master", || host.status().role == Role::Master);

        let mut c = Client::connect(&path);
        let st = c.ask("status");
        assert_eq!((st["role"].as_str(), st["devices"][0].as_u64()), (Some("master"), Some(0)), "{st}");
        assert_eq!(st["present"], serde_json::json!([true]), "{st}");
        assert_eq!(c.ask("timeline")["phases"], serde_json::json!([]));
        // Errors keep the connection.
        assert!(c.ask("explode")["error"].as_str().unwrap().contains("unknown request"));
        assert!(c.ask("")["error"].is_string());
        assert_eq!(c.ask("status")["role"], "master");

        // watch: the watchdog commands of another client show up as events.
        let mut w = Client::connect(&path);
        assert_eq!(w.ask("watch")["ok"], true);
        assert_eq!(c.ask("disable-wd")["ok"], true);
        let e = w.read();
        assert_eq!((e["event"].as_str(), e["armed"].as_bool()), (Some("watchdog"), Some(false)), "{e}");
        assert_eq!(c.ask("enable-wd")["ok"], true);
        assert_eq!(w.read()["armed"], true);

        // A client that goes away mid-request harms nobody.
        let mut gone = Client::connect(&path);
        gone.send("sta");
        drop(gone);
        assert_eq!(c.ask("status")["role"], "master");

        // A line too long: an error, then the connection is closed.
        let mut long = Client::connect(&path);
        long.send(&"x".repeat(MAX_LINE + 10));
        assert!(long.read()["error"].as_str().unwrap().contains("longer than"));
        let mut rest = String::new();
        assert_eq!(long.0.read_line(&mut rest).unwrap(), 0, "closed");

        // The client limit: above it a client is told "busy" and closed; the served ones work.
        drop(w);
        let mut many: Vec<Client> = (0..MAX_CLIENTS - 1).map(|_| Client::connect(&path)).collect();
        for m in &mut many {
            assert_eq!(m.ask("status")["role"], "master");
        }
        let mut extra = Client::connect(&path);
        assert_eq!(extra.read()["error"], "busy");
        drop(many);
        eventually("room again", || Client::connect(&path).ask("status")["role"] == "master");

        drop(c);
        socket.shutdown();
        assert!(!path.exists(), "the socket file is removed");
        Arc::try_unwrap(host).expect("only the test holds the host").stop(StdDuration::from_secs(5));
        Arc::try_unwrap(drv).expect("released").close();
        server.shutdown();
    });
}
