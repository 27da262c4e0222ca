//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! Each takes arbitrary bytes and must never panic. A unit test calls each one so that the
//! stable test run exercises them too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use xpp_proto::Instant;
use xpp_proto::mgmt::{CapKey, Capabilities, EepromTable, EepromType, twinstar_capable};

use crate::config::{EepromKind, Stage};
use crate::data::callerid::{CidReceiver, CidStandard, dtmf_digits, parse_message};
use crate::eeprom::{CAPS, Eeprom, KEY, TABLE, key_oracle};
use crate::usbip_server::UsbIpServer;
use crate::{DeviceConfig, script};

/// Reads bytes as a scenario file (the bounded reader, then the parser) and builds the
/// scenario; an error names a line and column inside the text.
pub fn scenario_script(data: &[u8]) {
    let Ok(text) = script::read_text(data) else { return };
    match script::parse(&text) {
        Ok(events) => drop(crate::scenario::Scenario::new(events, Instant::ZERO)),
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{e:?}");
            assert!(e.column >= 1, "{e:?}");
        }
    }
}

/// Reads bytes as an EEPROM image file of each size, and the table, capabilities and key
/// the device serves from it.
pub fn eeprom_file(data: &[u8]) {
    for kind in [EepromKind::Small, EepromKind::Large] {
        let mut e = Eeprom::new(&DeviceConfig::default().with_eeprom(kind));
        if e.load_from(data).is_err() {
            continue;
        }
        let raw = e.raw();
        let (Ok(table), Ok(caps), Ok(key)) =
            (EepromTable::parse(&raw[TABLE]), Capabilities::parse(&raw[CAPS]), CapKey::parse(&raw[KEY]))
        else {
            panic!("an image of the right size always holds a table, capabilities and a key");
        };
        let _ = (table.to_string(), table.label_str(), caps.to_string(), key.to_string());
        let _ =
            (key_oracle(&table, &caps) == key, twinstar_capable(EepromType::from_i2cs(0x41), &table, &caps));
    }
}

/// Reads bytes as one caller-ID message (SDMF or MDMF), and as 16-bit samples through the
/// FSK receiver of each standard.
pub fn caller_id(data: &[u8]) {
    if let Some(cid) = parse_message(data) {
        let _ = dtmf_digits(&cid);
    }
    let samples: Vec<i16> = data.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect();
    for standard in [CidStandard::Bell202, CidStandard::EtsiV23] {
        let mut rx = CidReceiver::new(standard);
        let _ = rx.push_all(&samples);
    }
}

/// Sends bytes to a USB/IP server (one per process, on loopback, serving an emulator in
/// the running stage) as one client connection, ends it, and reads what comes back: the
/// server's request handling, import and URB session. A panic on any of the server's threads
/// aborts the process, so the fuzzer sees it.
pub fn usbip_server_request(data: &[u8]) {
    static SERVER: OnceLock<UsbIpServer> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default_hook(info);
            if std::thread::current().name().is_some_and(|n| n.starts_with("usbip-")) {
                std::process::abort();
            }
        }));
        let cfg = DeviceConfig::default().with_start_stage(Stage::Running);
        UsbIpServer::serve(cfg, "127.0.0.1:0".parse().expect("address")).expect("a loopback server")
    });
    let Ok(mut s) = TcpStream::connect(server.local_addr()) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    // The server still serves a well-formed client (checked now and then: each connection
    // waits for the acceptor's poll, up to 10 ms).
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(64) {
        let list =
            xpp_usb::usbip::list_devices(server.local_addr()).expect("the server answers a device list");
        assert_eq!(list.len(), 1);
    }
}

#[cfg(test)]
mod tests {
    use xpp_usb::usbip::codec::{BasicHeader, CmdSubmit, OpRequest, Urb};

    #[test]
    fn entry_points_survive_odd_input() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\xff\xfe",
            b"0ms phone 0/1 offhook\n10ms line 1/0 ring\n",
            b"5s\n-1ms x\n0ms phone 9999/9999 offhook #\n",
            &[0x80, 0x05, 0x02, 0x02, b'1', b'2', 0x00],
            &[0xFF; 300],
        ];
        for i in inputs {
            super::scenario_script(i);
            super::eeprom_file(i);
            super::caller_id(i);
        }
        super::eeprom_file(&[0xFF; 256]);
        super::eeprom_file(&[0x00; 8192]);
    }

    #[test]
    fn the_server_entry_point_survives_odd_input() {
        let mut import = Vec::new();
        OpRequest::Import { busid: "1-1".into() }.emit(&mut import).unwrap();
        let mut session = import.clone();
        Urb::CmdSubmit(CmdSubmit {
            header: BasicHeader { seqnum: 1, devid: 0x1_0002, direction: 1, ep: 6 },
            transfer_buffer_length: 512,
            number_of_packets: 0xFFFF_FFFF,
            ..Default::default()
        })
        .emit(&mut session);
        for input in
            [&b""[..], &[0x01, 0x11, 0x80, 0x05, 0, 0, 0, 0], &import, &session, &session[..50], &[0xFF; 100]]
        {
            super::usbip_server_request(input);
        }
    }
}
