//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! Each takes arbitrary bytes and must never panic. A unit test calls each one so that the
//! stable test run exercises them too.

use std::time::Duration;

use super::{PcapReader, PcapReplay, PcapSession};
use crate::ep;
use crate::transport::{ControlSetup, Transport};

/// Reads bytes as a usbmon pcap file: every record, then the replay of every device in it,
/// driven through each transport call.
pub fn pcap_file(data: &[u8]) {
    let Ok(reader) = PcapReader::new(data) else { return };
    let mut setups = Vec::new();
    for record in reader {
        let Ok(r) = record else { break };
        if let Some(s) = r.header.setup_packet() {
            setups.push(ControlSetup::from_bytes(s));
        }
    }
    let _ = PcapReplay::devices(data);
    if let Ok(r) = PcapReplay::from_bytes(data) {
        exercise(r, &setups);
    }
    let Ok(mut session) = PcapSession::from_bytes(data) else { return };
    while let Some(r) = session.next_device() {
        exercise(r, &setups);
    }
}

/// Every transport call on a replay: submits on the Astribank endpoints, completions, the
/// control transfers the capture holds, cancel, reset.
fn exercise(mut r: PcapReplay, setups: &[(ControlSetup, u16)]) {
    let _ = r.info();
    for round in 0..4u8 {
        for e in [ep::DATA_OUT, ep::MGMT_OUT] {
            let _ = r.submit(e, vec![round; 8]);
        }
        for e in [ep::DATA_IN, ep::MGMT_IN] {
            let _ = r.submit(e, vec![0; 512]);
        }
        for e in [ep::DATA_OUT, ep::MGMT_OUT, ep::DATA_IN, ep::MGMT_IN] {
            while r.wait_next_complete(e, Duration::ZERO).is_some() {}
        }
    }
    for &(s, len) in setups.iter().take(64) {
        let mut buf = vec![0; usize::from(len.min(4096))];
        let _ = r.control_in(s, &mut buf, Duration::ZERO);
        let _ = r.control_out(s, &buf, Duration::ZERO);
    }
    for e in [ep::DATA_IN, ep::MGMT_IN] {
        r.cancel_all(e);
        while r.wait_next_complete(e, Duration::ZERO).is_some() {}
    }
    let _ = (r.reset(), r.stats(), r.remaining(), r.is_disconnected());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::usbmon::{file_header, record_header};

    #[test]
    fn entry_points_survive_odd_input() {
        let header = file_header();
        let mut garbage_record = header.to_vec();
        garbage_record.extend_from_slice(&[0xFF; 200]);
        let mut zero_record = header.to_vec();
        zero_record.extend_from_slice(&record_header(0, 0, 80, 80));
        zero_record.extend_from_slice(&[0; 80]);
        for input in [&b""[..], &[0xD4, 0xC3, 0xB2, 0xA1], &header, &garbage_record, &zero_record] {
            pcap_file(input);
        }
        // The fuzz seeds, when the workspace is around, and prefixes of them.
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/pcap_file");
        for entry in std::fs::read_dir(seeds).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            for cut in (0..bytes.len()).step_by(97) {
                pcap_file(&bytes[..cut]);
            }
            pcap_file(&bytes);
        }
    }
}
