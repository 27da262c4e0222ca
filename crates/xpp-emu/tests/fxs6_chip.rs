//! The type-6 FXS chip's read-back registers (MODEL: FXS-3, FXS-5), written from the bytes of
//! docs/reference/xpp-protocol.md §6.3 (REGISTER_REQUEST 0x0F, REG variant) and §8.4 (type-6
//! registers read back).

mod data_common;

use data_common::Host;
use xpp_emu::config::{FxsChip, ModuleConfig};

/// Type-6 FXS in slot 0 (unit 0), port 7 absent.
fn host() -> Host {
    Host::new([
        Some(ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0x80 }),
        None,
        None,
        None,
    ])
}

/// §6.3: `0A 00 0F 00 <0x05 | port<<4> 00 <reg> 00 <data> 00`: a direct write on unit 0.
fn wd(h: &mut Host, port: u8, reg: u8, data: u8) {
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x00, 0x05 | (port << 4), 0x00, reg, 0x00, data, 0x00]);
}

/// §6.3: a direct read (read_request bit 0x40); the answer is `data_low` (offset 8) of the
/// REGISTER_REPLY (opcode 0x10) that echoes the request.
fn rd(h: &mut Host, port: u8, reg: u8) -> u8 {
    h.drain();
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x00, 0x05 | (port << 4), 0x40, reg, 0x00, 0x00, 0x00]);
    let t = h.drain();
    assert_eq!(t.len(), 1, "one REGISTER_REPLY");
    assert_eq!(&t[0][..8], &[0x0A, 0x00, 0x10, 0x00, 0x05 | (port << 4), 0x40, reg, 0x00]);
    t[0][8]
}

#[test]
fn chip_detect_answers_all_three_checks() {
    let mut h = host();
    for port in 0..7 {
        assert_eq!(rd(&mut h, port, 0x00), 0xC3, "port {port}: chip id");
        wd(&mut h, port, 0x0E, 0x40);
        assert_eq!(rd(&mut h, port, 0x0E), 0x40, "port {port}: 0x0E read-back");
        assert_eq!(rd(&mut h, port, 0x03) & 0x1F, 0x1F, "port {port}: master status");
    }
    // An absent chip answers none of them.
    assert_eq!(rd(&mut h, 7, 0x00), 0xFF);
    wd(&mut h, 7, 0x0E, 0x40);
    assert_ne!(rd(&mut h, 7, 0x0E), 0x40);
    assert_eq!(rd(&mut h, 7, 0x03), 0xFF, "absent reads 0xFF");
}

#[test]
fn calibration_clears_cal_en_when_done() {
    let mut h = host();
    // Calibration registers 0x1A-0x1D, start bit 0x80 in 0x1D.
    wd(&mut h, 2, 0x1A, 0x00);
    wd(&mut h, 2, 0x1B, 0x00);
    wd(&mut h, 2, 0x1C, 0x01);
    wd(&mut h, 2, 0x1D, 0x80);
    assert_eq!(rd(&mut h, 2, 0x1D) & 0x80, 0x80, "running right after the start");
    // Other ports did not start.
    assert_eq!(rd(&mut h, 3, 0x1D) & 0x80, 0x00);
    // Polled until done: it ends by itself, within the script's 600 passes (1 ms apart here).
    let mut polls = 0;
    while rd(&mut h, 2, 0x1D) & 0x80 != 0 {
        polls += 1;
        assert!(polls < 600, "CAL_EN never cleared");
        h.advance_ms(1);
    }
    assert!(polls > 0, "a calibration takes time");
    // It stays done.
    h.advance_ms(1000);
    assert_eq!(rd(&mut h, 2, 0x1D) & 0x80, 0x00);
}

#[test]
fn user_mode_toggles_with_the_sequence_only() {
    let mut h = host();
    let seq = [0x02, 0x08, 0x0E, 0x00];
    assert_eq!(rd(&mut h, 1, 0x7E) & 1, 0, "power-on: user mode off");
    for v in seq {
        wd(&mut h, 1, 0x7E, v);
    }
    assert_eq!(rd(&mut h, 1, 0x7E) & 1, 1, "on after the sequence");
    assert_eq!(rd(&mut h, 0, 0x7E) & 1, 0, "per chip port");
    // A broken sequence changes nothing.
    for v in [0x02, 0x08, 0x0F, 0x00] {
        wd(&mut h, 1, 0x7E, v);
    }
    assert_eq!(rd(&mut h, 1, 0x7E) & 1, 1);
    // A partial sequence followed by the whole one toggles once.
    wd(&mut h, 1, 0x7E, 0x02);
    for v in seq {
        wd(&mut h, 1, 0x7E, v);
    }
    assert_eq!(rd(&mut h, 1, 0x7E) & 1, 0, "off after the second sequence");
}
