//! Audio-only bridges (MODEL.md PATCH-6) and BRI TE↔NT patches (PATCH-5).

mod data_common;

use data_common::{Host, pcm_reads};
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{AudioChannel, PatchError, PortRef};

const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

#[test]
fn a_bridge_carries_audio_between_two_phones() {
    let mut h = Host::new(FXS_FXO);
    for p in [2, 3] {
        h.write(0, p, 0x40, 0x01);
        h.d.phone_mut(0, p).unwrap().off_hook(h.now);
    }
    let (a, b) = (AudioChannel::Phone(PortRef::new(0, 2)), AudioChannel::Phone(PortRef::new(0, 3)));
    h.d.bridge(a, b).unwrap();
    // Refusals: a channel in a bridge, a missing channel, itself.
    let c = AudioChannel::Pstn(PortRef::new(1, 0));
    assert_eq!(h.d.bridge(a, c), Err(PatchError::AlreadyPatched(PortRef::new(0, 2))));
    let none = AudioChannel::Pstn(PortRef::new(0, 0));
    assert_eq!(h.d.bridge(none, c), Err(PatchError::NoSuchPort(PortRef::new(0, 0))));
    assert!(matches!(h.d.bridge(c, c), Err(PatchError::Unsupported(..))));
    h.sync(0x01, 0);
    // The host plays 0x9A to port 2: port 2's phone hears it, port 3's phone says it.
    let mut read3 = Vec::new();
    for _ in 0..10 {
        h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
        h.advance_ms(1);
        for t in h.drain() {
            for (_, _, lines, samples) in pcm_reads(&t) {
                if lines == 0b1100 {
                    read3.push(samples[8..16].to_vec());
                }
            }
        }
    }
    assert!(read3.len() >= 8);
    assert!(read3[read3.len() - 5..].iter().all(|s| s == &[0x9A; 8]), "{read3:?}");
    // Unbridged: silence again.
    assert!(h.d.unbridge(b));
    assert!(!h.d.unbridge(b));
    for _ in 0..3 {
        h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
        h.advance_ms(1);
        h.drain();
    }
    h.pcm_write(&[(0, 0, 0b1100, [0x9A; 8])]);
    h.advance_ms(1);
    let t = h.drain();
    let last = pcm_reads(t.last().unwrap());
    assert_eq!(&last[0].3[8..16], &[0xFF; 8]);
}

fn bri_two_ports() -> Host {
    // Port 0 TE, port 1 NT; PCM_READ of every channel.
    let mut data = xpp_emu::data::DataConfig::default();
    data.pcm_read_mask = xpp_emu::data::PcmReadMask::AllChannels;
    Host::with_data([Some(ModuleConfig::Bri { ports: 2, nt_mask: 0b10 }), None, None, None], data)
}

fn enable(h: &mut Host, port: u8, v: u8) {
    h.write_sub(0, port, xpp_proto::wire::RegAccess::write(port, 0x30, v));
}

#[test]
fn bri_te_nt_patch_activates_and_carries_d_and_b_channels() {
    use xpp_proto::wire::{Message, Multibyte, RegCmd};
    let mut h = bri_two_ports();
    h.d.patch(PortRef::new(0, 0), PortRef::new(0, 1)).unwrap();
    enable(&mut h, 0, 0x00);
    enable(&mut h, 1, 0x00);
    h.advance_ms(5);
    assert!(!h.d.bri_state(0, 0).unwrap().active, "nothing activates on its own");
    // The NT activates (host write): the TE follows without a host write (BRI-6).
    enable(&mut h, 1, 0xE0);
    h.advance_ms(30);
    assert!(h.d.bri_state(0, 0).unwrap().active, "TE F7");
    assert!(h.d.bri_state(0, 1).unwrap().active, "NT G3");
    h.drain();
    // D channel: a frame the host sends on the TE port arrives from the NT port, with FCS.
    let frame = [0x02, 0x01, 0x7F, 0x10, 0x20, 0x30];
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Multibyte(Multibyte::new(0, false, &frame[..5]).unwrap())));
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Multibyte(Multibyte::new(0, true, &frame[5..]).unwrap())));
    let mut got = Vec::new();
    for t in h.advance_cmds(3) {
        for (_, r) in xpp_proto::wire::parse_transfer(&t).map(Result::unwrap) {
            if let Message::RegisterReply(RegCmd::Multibyte(m)) = r.message {
                assert_eq!((r.addr.unit(), r.addr.subunit(), m.port), (0, 1, 1));
                got.extend_from_slice(m.data());
            }
        }
    }
    let fcs = xpp_emu::data::g711::fcs16(&frame).to_le_bytes();
    assert_eq!(got, [&frame[..], &fcs, &[0x00]].concat());
    // B channels: host audio on TE B1 is heard on NT B1, NT B2 on TE B2.
    h.sync(0x01, 0);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let mut samples = [0xD5u8; 8];
        samples[0] = 0x11;
        h.pcm_write(&[(0, 0, 0b0001, samples)]);
        h.advance_ms(1);
        for t in h.drain() {
            for (addr, _, lines, s) in pcm_reads(&t) {
                if addr.unit() == 0 && lines & 0b1_0001 == 0b1_0001 {
                    let i = (lines & 0b0_1111).count_ones() as usize;
                    seen.push((s[0], s[i * 8]));
                }
            }
        }
    }
    // (TE B1 receive, NT B1 receive): only the NT hears the TE.
    assert!(seen.contains(&(0xD5, 0x11)), "{seen:?}");
    assert!(seen.iter().all(|&(te, _)| te == 0xD5), "{seen:?}");
    // Unpatched: the ports fall back to their (idle) far ends and deactivate.
    assert!(h.d.unpatch(PortRef::new(0, 0)));
    h.advance_ms(5);
    assert!(!h.d.bri_state(0, 0).unwrap().active);
}

#[test]
fn bri_te_te_patch_never_activates() {
    let mut h = Host::new([Some(ModuleConfig::Bri { ports: 2, nt_mask: 0 }), None, None, None]);
    h.d.patch(PortRef::new(0, 0), PortRef::new(0, 1)).unwrap();
    for p in 0..2 {
        enable(&mut h, p, 0x00);
        enable(&mut h, p, 0x60);
    }
    for _ in 0..30 {
        h.advance_ms(1);
        assert!(!h.d.bri_state(0, 0).unwrap().active && !h.d.bri_state(0, 1).unwrap().active);
    }
    // Not connected to anything it can sync to: INFO0.
    assert_eq!(h.read_at(0, 0, 0, 0x30) & 0x40, 0x40);
}

/// Two devices, each with a phone off-hook on FXS port 0, bridged through a `CrossLink`;
/// device A's host plays 0x9A; returns (what B's host reads on port 0 at the end, slips
/// toward A, slips toward B) after `ms` virtual ms.
fn two_devices(ppm_a: i32, ppm_b: i32, ms: u32) -> (Vec<u8>, u64, u64) {
    use xpp_emu::data::{CrossLink, DataConfig, LinkSide};
    let host = |ppm| {
        let mut data = DataConfig::default();
        data.crystal_ppm = ppm;
        let mut h = Host::with_data(FXS_FXO, data);
        h.write(0, 0, 0x40, 0x01);
        h.d.phone_mut(0, 0).unwrap().off_hook(h.now);
        h.sync(0x01, 0);
        h
    };
    let (mut a, mut b) = (host(ppm_a), host(ppm_b));
    let link = CrossLink::new();
    let ch = AudioChannel::Phone(PortRef::new(0, 0));
    a.d.bridge_remote(ch, &link, LinkSide::A).unwrap();
    b.d.bridge_remote(ch, &link, LinkSide::B).unwrap();
    assert_eq!(
        b.d.bridge_remote(ch, &link, LinkSide::B),
        Err(PatchError::AlreadyPatched(PortRef::new(0, 0)))
    );
    let mut last = Vec::new();
    for _ in 0..ms {
        a.pcm_write(&[(0, 0, 0b1, [0x9A; 8])]);
        b.pcm_write(&[(0, 0, 0b1, [0xFF; 8])]);
        a.advance_ms(1);
        b.advance_ms(1);
        a.drain();
        for t in b.drain() {
            if let Some(r) = pcm_reads(&t).first() {
                last = r.3.clone();
            }
        }
    }
    (last, link.slips(LinkSide::A), link.slips(LinkSide::B))
}

#[test]
fn audio_between_two_devices_through_the_elastic_buffer() {
    // Same clocks: audio passes, no slips.
    let (heard, to_a, to_b) = two_devices(0, 0, 2000);
    assert_eq!(heard, [0x9A; 8]);
    assert_eq!((to_a, to_b), (0, 0));
    // A runs 500 ppm slow and B 500 ppm fast: over 10 s B reads ~10 ms more than A writes.
    // The buffer starts half full (2 ms), so the first underflow toward B comes after ~2 ms
    // of drift, then about one per ms of drift; toward A, B's extra chunks overflow.
    let (heard, to_a, to_b) = two_devices(500, -500, 10_000);
    assert_eq!(heard, [0x9A; 8]);
    assert!((6..=10).contains(&to_b), "slips toward B: {to_b}");
    assert!((6..=10).contains(&to_a), "slips toward A: {to_a}");
}

fn sig(t: &[Vec<u8>]) -> Vec<Vec<u8>> {
    t.iter().filter(|t| t.len() == 12 && t[2] == 0x06).cloned().collect()
}

#[test]
fn fxs_to_fxo_line_between_two_devices() {
    use xpp_emu::data::{CrossLink, LinkSide};
    // Device A: FXS 0/0; device B: FXO 1/0, cabled through a link.
    let (mut a, mut b) = (Host::new(FXS_FXO), Host::new(FXS_FXO));
    let link = CrossLink::new();
    a.d.patch_remote(PortRef::new(0, 0), &link, LinkSide::A).unwrap();
    b.d.patch_remote(PortRef::new(1, 0), &link, LinkSide::B).unwrap();
    assert_eq!(
        a.d.patch(PortRef::new(0, 0), PortRef::new(1, 1)),
        Err(PatchError::AlreadyPatched(PortRef::new(0, 0)))
    );
    for h in [&mut a, &mut b] {
        h.sync(0x01, 0);
    }
    let step = |a: &mut Host, b: &mut Host| {
        a.advance_ms(1);
        b.advance_ms(1);
        let (ta, tb) = (a.drain(), b.drain());
        (sig(&ta), sig(&tb), ta, tb)
    };
    // A rings its FXS port: B's FXO port reports ring.
    a.write(0, 0, 0x40, 0x04);
    let mut ring = Vec::new();
    for _ in 0..3 {
        ring.extend(step(&mut a, &mut b).1);
    }
    assert_eq!(ring, vec![vec![0x0C, 0x00, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]]);
    // B answers: A's FXS port reports off-hook; B sees loop voltage.
    a.write(0, 0, 0x40, 0x01);
    b.write(1, 0, 0x05, 0x09);
    let mut hook = Vec::new();
    for _ in 0..3 {
        hook.extend(step(&mut a, &mut b).0);
    }
    assert!(
        hook.contains(&vec![0x0C, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]),
        "{hook:?}"
    );
    assert_eq!(b.read(1, 0, 0x1D), 8);
    // Audio both ways through the elastic buffer (a few ms of latency).
    let (mut to_b, mut to_a) = (false, false);
    for _ in 0..10 {
        a.pcm_write(&[(0, 0, 0b1, [0x9A; 8])]);
        b.pcm_write(&[(1, 0, 0b1, [0x2B; 8])]);
        let (_, _, ta, tb) = step(&mut a, &mut b);
        to_a |= ta.iter().flat_map(|t| pcm_reads(t)).any(|r| r.0.unit() == 0 && r.3[..8] == [0x2B; 8]);
        to_b |= tb.iter().flat_map(|t| pcm_reads(t)).any(|r| r.0.unit() == 1 && r.3[..8] == [0x9A; 8]);
    }
    assert!(to_a && to_b);
    assert_eq!((link.slips(LinkSide::A), link.slips(LinkSide::B)), (0, 0));
    // B hangs up: A reports on-hook; unpatched, A's phone is back.
    b.write(1, 0, 0x05, 0x08);
    let mut hook = Vec::new();
    for _ in 0..3 {
        hook.extend(step(&mut a, &mut b).0);
    }
    assert!(
        hook.contains(&vec![0x0C, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]),
        "{hook:?}"
    );
    assert!(a.d.unpatch(PortRef::new(0, 0)));
    assert!(!a.d.unpatch(PortRef::new(0, 0)));
}
