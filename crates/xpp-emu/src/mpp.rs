//! The management interface (interface 1, MODEL.md MPP rows and the TWS_* ops).
//!
//! Every request is decoded with [`xpp_proto::mgmt::Request::parse`] and every reply encoded
//! with [`xpp_proto::mgmt::Reply::emit`]; this module only decides what the device answers.

use sha2::Digest;
use xpp_proto::Instant;
use xpp_proto::mgmt::{
    AckStatus, CardInfo, DevDest, DeviceStatus, ExtraInfo, FirmwareVersions, HEADER_LEN, MAX_PACKET_LEN,
    MPP_PROTO_VERSION, MgmtError, Op, Reply, Request, SerOp, TwsPower,
};

use crate::config::EepromKind;
use crate::device::{DevSend, Device, DeviceEvent, FirmwareKind, JumpReason};
use crate::eeprom::{key_oracle, module_type};
use crate::loader::{fpga_image_for, judge};
use crate::usb::UsbStage;

/// Largest EEPROM_BLK_RD answer: one 512-byte transfer minus the 7-byte reply header (MPP-17).
const MAX_BLK_RD: usize = MAX_PACKET_LEN - HEADER_LEN - 2;

/// The fixed request size of `op` (MT §3.1), and whether the op is variable-length (then the
/// size is the minimum).
fn request_size(op: Op) -> Option<(usize, bool)> {
    Some(match op {
        Op::ProtoGet => (7, false),
        Op::DevSendStart => (12, false),
        Op::DevSendSeg => (7, true),
        Op::EepromSet => (21, false),
        Op::CapsSet => (49, false),
        Op::ExtrainfoSet => (29, false),
        Op::EepromBlkRd => (9, false),
        Op::TwsWdModeSet | Op::TwsPortSet => (6, false),
        Op::SerSend => (5, true),
        Op::DevSendEnd
        | Op::Renum
        | Op::CapsGet
        | Op::StatusGet
        | Op::ExtrainfoGet
        | Op::TwsWdModeGet
        | Op::TwsPortGet
        | Op::TwsPwrGet
        | Op::Reset
        | Op::HalfReset => (5, false),
        _ => return None,
    })
}

/// What a request gets back.
enum Answer<'a> {
    Reply(Reply<'a>),
    Ack(AckStatus),
    Nothing,
}

impl Device {
    /// One OUT transfer on 0x04 (MPP-1).
    pub(crate) fn handle_mpp(&mut self, now: Instant, port: u8, t: &[u8]) {
        self.counters.mpp_requests += 1;
        let seq_of = |t: &[u8]| if t.len() >= 4 { u16::from_le_bytes([t[2], t[3]]) } else { 0 };
        if t.len() < HEADER_LEN {
            // MODEL: MPP-4.
            return self.answer(now, port, seq_of(t), Answer::Ack(AckStatus::TooShort));
        }
        let seq = seq_of(t);
        let len = usize::from(u16::from_le_bytes([t[0], t[1]]));
        if len < HEADER_LEN || len > t.len() {
            // MODEL: MPP-5.
            return self.answer(now, port, seq, Answer::Ack(AckStatus::TooShort));
        }
        // MODEL: MPP-5 — bytes after `len` are ignored.
        let t = &t[..len];
        let op = Op::from(t[4]);
        // MODEL: MPP-6 — unknown, reply-bit and non-MPP base ops.
        let Some((size, variable)) = request_size(op).filter(|_| op.is_request()) else {
            return self.answer(now, port, seq, Answer::Ack(AckStatus::BadCmd));
        };
        if len < size {
            return self.answer(now, port, seq, Answer::Ack(AckStatus::TooShort));
        }
        // Decision: a fixed-size request longer than its size is read up to its size (the
        // firmware reads a packed struct); MPP-5 only rules on shorter ones.
        let mut fixed = [0u8; MAX_PACKET_LEN];
        let body: &[u8] = if !variable && len > size {
            fixed[..size].copy_from_slice(&t[..size]);
            fixed[..2].copy_from_slice(&(size as u16).to_le_bytes());
            &fixed[..size]
        } else {
            t
        };
        if op == Op::TwsPortSet {
            // MODEL: TWS-8 — read the raw byte (≥ 2 is ignored); never answered.
            return self.tws_port_set(now, body[5]);
        }
        let mut scratch = [0u8; MAX_PACKET_LEN];
        let answer = match Request::parse(body) {
            Ok((_, req)) => self.request(now, req, &mut scratch),
            Err(MgmtError::Truncated { .. }) => Answer::Ack(AckStatus::TooShort),
            Err(_) => Answer::Ack(AckStatus::BadCmd),
        };
        self.answer(now, port, seq, answer);
    }

    fn answer(&mut self, now: Instant, port: u8, seq: u16, a: Answer<'_>) {
        let mut out = [0u8; MAX_PACKET_LEN];
        let n = match a {
            Answer::Nothing => return,
            Answer::Ack(status) => {
                if !status.is_ok() {
                    self.counters.mpp_errors += 1;
                }
                Reply::Ack { status }.emit(seq, &mut out)
            }
            Answer::Reply(r) => r.emit(seq, &mut out),
        };
        if let Ok(n) = n {
            self.mpp_reply(now, port, out[..n].to_vec());
        }
    }

    /// EEPROM refusal for the Large-only ops (MPP-10, MPP-16).
    fn need_large(&self) -> Option<AckStatus> {
        match self.eeprom_kind() {
            EepromKind::None => Some(AckStatus::NoEeprom),
            EepromKind::Small => Some(AckStatus::NoLargeEeprom),
            _ => None,
        }
    }

    fn request<'s>(
        &mut self,
        now: Instant,
        req: Request<'_>,
        scratch: &'s mut [u8; MAX_PACKET_LEN],
    ) -> Answer<'s> {
        use Answer::{Ack, Nothing, Reply as R};
        match req {
            // MODEL: MPP-8.
            Request::ProtoGet { .. } => R(Reply::ProtoGetReply { version: MPP_PROTO_VERSION }),
            // MODEL: MPP-9.
            Request::StatusGet => {
                let i2cs_data = match self.eeprom_kind() {
                    EepromKind::None => 0x00,
                    EepromKind::Small => 0x08,
                    _ => 0x10,
                };
                R(Reply::StatusGetReply(DeviceStatus {
                    i2cs_data,
                    status: u8::from(self.fw.fpga_loaded),
                    versions: FirmwareVersions {
                        usb: self.fw.usb_version,
                        fpga: if self.fw.fpga_loaded { self.fw.fpga_version } else { [0; 6] },
                        eeprom: self.cfg.core.eeprom_version,
                    },
                }))
            }
            // MODEL: MPP-10.
            Request::CapsGet => match self.need_large() {
                Some(s) => Ack(s),
                None => R(Reply::CapsGetReply {
                    table: self.eeprom.table(),
                    caps: self.eeprom.caps(),
                    key: self.eeprom.key(),
                }),
            },
            // MODEL: MPP-11.
            Request::CapsSet { table, caps, key } => {
                if self.fw.fpga_loaded {
                    return Ack(AckStatus::CapsFpgaLoaded);
                }
                if let Some(s) = self.need_large() {
                    return Ack(s);
                }
                let stored = self.eeprom.table();
                let literal = self
                    .cfg
                    .core
                    .licence_keys
                    .iter()
                    .any(|l| l.table == stored && l.caps == caps && l.key == key);
                if table != stored || (key != key_oracle(&stored, &caps) && !literal) {
                    return Ack(AckStatus::BadKey);
                }
                self.eeprom.set_caps(&caps, &key);
                Ack(AckStatus::Ok)
            }
            // MODEL: MPP-15.
            Request::EepromSet { table } => {
                if self.eeprom_kind() == EepromKind::None {
                    return Ack(AckStatus::NoEeprom);
                }
                self.eeprom.set_table(&table);
                Ack(AckStatus::Ok)
            }
            // MODEL: MPP-16.
            Request::ExtrainfoGet => match self.need_large() {
                Some(s) => Ack(s),
                None => R(Reply::ExtrainfoGetReply(ExtraInfo { text: self.eeprom.extrainfo() })),
            },
            Request::ExtrainfoSet { text } => match self.need_large() {
                Some(s) => Ack(s),
                None => {
                    self.eeprom.set_extrainfo(&text);
                    Ack(AckStatus::Ok)
                }
            },
            // MODEL: MPP-17.
            Request::EepromBlkRd { offset, len } => {
                if self.eeprom_kind() == EepromKind::None {
                    return Ack(AckStatus::NoEeprom);
                }
                let (o, n) = (usize::from(offset), usize::from(len));
                match self.eeprom.read(o, n).filter(|_| n <= MAX_BLK_RD) {
                    Some(bytes) => {
                        scratch[..n].copy_from_slice(bytes);
                        R(Reply::EepromBlkRdReply { offset, data: &scratch[..n] })
                    }
                    None => Ack(AckStatus::OffsetError),
                }
            }
            Request::DevSendStart { dest, version } => Ack(self.dev_send_start(dest, version)),
            Request::DevSendSeg { offset, data } => Ack(self.dev_send_seg(offset, data)),
            Request::DevSendEnd => Ack(self.dev_send_end(now)),
            // MODEL: MPP-23, LOAD-9, LOAD-10.
            Request::Renum => {
                if self.fw.stage == UsbStage::UsbFirmware && self.fw.fpga_loaded {
                    self.fw.stage = UsbStage::Running;
                    self.data.power_on_reset(false);
                }
                self.dev_send = None;
                self.renumerate(now);
                Nothing
            }
            // MODEL: MPP-23, LOAD-11.
            Request::Reset => {
                self.full_reset(now);
                Nothing
            }
            // MODEL: MPP-23, LOAD-12.
            Request::HalfReset => {
                self.fw.stage = UsbStage::UsbFirmware;
                self.fw.fpga_loaded = false;
                self.fw.fpga_version = [0; 6];
                self.dev_send = None;
                self.data.power_on_reset(false);
                self.renumerate(now);
                Nothing
            }
            // MODEL: TWS-6.
            Request::TwsWdModeSet { armed } => {
                self.watchdog_set(now, armed);
                Ack(AckStatus::Ok)
            }
            // MODEL: TWS-7.
            Request::TwsWdModeGet => R(Reply::TwsWdModeGetReply { wd_active: u8::from(self.wd.armed) }),
            // MODEL: TWS-5, TWS-15.
            Request::TwsPortGet => R(Reply::TwsPortGetReply { port: self.active }),
            // MODEL: TWS-4, TWS-15.
            Request::TwsPwrGet => R(Reply::TwsPwrGetReply(TwsPower(self.power_bits()))),
            Request::TwsPortSet { port } => {
                self.tws_port_set(now, port);
                Nothing
            }
            Request::SerSend { data } => self.ser_send(now, data, scratch),
            _ => Ack(AckStatus::BadCmd),
        }
    }

    /// MODEL: TWS-8, TWS-15.
    fn tws_port_set(&mut self, now: Instant, port: u8) {
        if self.cfg.twinstar && port < 2 && port != self.active && self.port_power(port) {
            self.jump(now, port, JumpReason::Command);
        }
    }

    /// MODEL: MPP-19.
    fn dev_send_start(&mut self, dest: DevDest, version: [u8; 6]) -> AckStatus {
        match dest {
            DevDest::Fpga if self.fw.stage == UsbStage::Running => AckStatus::Fail,
            DevDest::Fpga => {
                self.fw.fpga_loaded = false;
                self.fw.fpga_version = [0; 6];
                self.dev_send =
                    Some(DevSend::Fpga { version, hasher: sha2::Sha256::new(), len: 0, next_offset: 0 });
                AckStatus::Ok
            }
            DevDest::Eeprom => {
                self.dev_send = Some(DevSend::Eeprom);
                AckStatus::Ok
            }
            _ => AckStatus::NoDest,
        }
    }

    /// MODEL: MPP-20.
    fn dev_send_seg(&mut self, offset: u16, data: &[u8]) -> AckStatus {
        let Some(session) = self.dev_send.as_mut() else { return AckStatus::NoDest };
        if data.is_empty() {
            return AckStatus::TooShort;
        }
        match session {
            DevSend::Fpga { hasher, len, next_offset, .. } => {
                if offset != *next_offset {
                    self.dev_send = None;
                    return AckStatus::OffsetError;
                }
                hasher.update(data);
                *len += data.len();
                *next_offset = offset.wrapping_add(data.len() as u16);
                AckStatus::Ok
            }
            // Decision: EEPROM segments are addressed writes (no continuity check), MPP-20.
            DevSend::Eeprom => {
                if self.eeprom.write(usize::from(offset), data) {
                    AckStatus::Ok
                } else {
                    AckStatus::WriteFail
                }
            }
        }
    }

    /// MODEL: MPP-21, MPP-22, LOAD-8.
    fn dev_send_end(&mut self, now: Instant) -> AckStatus {
        match self.dev_send.take() {
            None => AckStatus::NoDest,
            Some(DevSend::Eeprom) => AckStatus::Ok,
            Some(DevSend::Fpga { version, hasher, len, .. }) => {
                let digest: [u8; 32] = hasher.finalize().into();
                let expected = fpga_image_for(self.cfg.family, self.cfg.hw_revision);
                let policy = self.cfg.core.fpga_image_check;
                if judge(&digest, len, expected, &self.cfg.core.extra_fpga_digests, policy).is_some() {
                    self.fw.fpga_loaded = true;
                    self.fw.fpga_version = version;
                    let v = FirmwareVersions::trimmed(&version);
                    let version = String::from_utf8_lossy(v).into_owned();
                    self.event(DeviceEvent::FirmwareLoaded { at: now, kind: FirmwareKind::Fpga, version });
                    AckStatus::Ok
                } else {
                    self.event(DeviceEvent::FirmwareRefused { at: now, kind: FirmwareKind::Fpga });
                    AckStatus::FpgaError
                }
            }
        }
    }

    /// MODEL: MPP-24, MPP-25, MPP-27.
    fn ser_send<'s>(
        &mut self,
        now: Instant,
        data: &[u8],
        scratch: &'s mut [u8; MAX_PACKET_LEN],
    ) -> Answer<'s> {
        if !self.fw.fpga_loaded {
            return Answer::Ack(AckStatus::FpgaError);
        }
        let Some(&first) = data.first() else { return Answer::Ack(AckStatus::TooShort) };
        let n = data.len();
        let out = &mut scratch[..n];
        // Decision: bytes after the sub-command's own fields are echoed (MPP-25, MPP-27).
        out.copy_from_slice(data);
        match SerOp::from(first) {
            SerOp::CardInfoGet => {
                if n < CardInfo::LEN {
                    return Answer::Ack(AckStatus::TooShort);
                }
                let addr = data[1];
                let unit = usize::from(addr >> 4);
                let (card_type, burned) = match unit {
                    0..=3 => match self.cfg.slots[unit].as_ref().map(module_type) {
                        Some((t, sub)) => ((t << 4) | (sub & 0x0F), self.pic_burned[unit]),
                        None => (0x70, false),
                    },
                    4 if self.cfg.echo => (0x50, self.pic_burned[4]),
                    _ => (0x70, false),
                };
                let info = CardInfo { addr, card_type, pic_burned: burned };
                if info.emit(out).is_err() {
                    return Answer::Ack(AckStatus::Fail);
                }
            }
            SerOp::StatGet => {
                if n < 3 {
                    return Answer::Ack(AckStatus::TooShort);
                }
                out[1] = self.cfg.core.fpga_configuration;
                // MODEL: TWS-18, TWS-19 — bit 0 watchdog ready, bit 1 XPD alive.
                out[2] = u8::from(!self.wd.expired) | (u8::from(self.xpd_alive(now)) << 1);
            }
            _ => return Answer::Ack(AckStatus::BadCmd),
        }
        Answer::Reply(Reply::SerRecv { data: &scratch[..n] })
    }
}
