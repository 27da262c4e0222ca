//! The embedded emulated Astribank (feature `emulator`): a driver on it, and its test
//! equipment, for a PBX's tests and for the C example.
#![cfg(feature = "emulator")]

use std::ffi::{c_char, c_int};
use std::sync::Arc;

use ::xpp_driver::{Driver, DriverOptions, SystemClock};
use xpp_bringup::{BringUpConfig, RunOptions};
use xpp_emu::config::{ModuleConfig, Stage};
use xpp_emu::data::Phone;
use xpp_emu::data::g711::{Source, has_tone, level_db};
use xpp_emu::{DeviceConfig, Emulator, RealTimeRunner};

use crate::{
    boundary, boundary_void, check_out, driver_error, firmware, handle, put, xpp_driver, xpp_result,
};

/// An emulated Astribank (FXS on unit 0, FXO on unit 1) running in real time. Opaque.
pub struct xpp_emulator {
    emu: Emulator,
    runner: Option<Arc<RealTimeRunner>>,
}

/// A new emulated Astribank in real time, powered up in the running stage (`cold` non-zero:
/// with no firmware, so the bring-up loads it). Free with [`xpp_emulator_free`] after every
/// driver on it. Thread-safe.
///
/// # Safety
/// `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_new(cold: c_int, out: *mut *mut xpp_emulator) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        let stage = if cold != 0 { Stage::Cold } else { Stage::Running };
        let (emu, runner) = Emulator::real_time(DeviceConfig::default().with_start_stage(stage));
        let h = Box::new(xpp_emulator { emu, runner: Some(Arc::new(runner)) });
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, Box::into_raw(h)) }
    })
}

/// A new emulated Astribank in real time, running, with FXS on unit 0 and one E1 PRI port on
/// unit 1 (span 2, channels 15..45, the D-channel channel 30), its far end connected and,
/// with `q921` non-zero, answering Q.921 on the D-channel (SABME with UA, I-frames with RR).
/// Free with [`xpp_emulator_free`]. Thread-safe.
///
/// # Safety
/// `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_new_pri(q921: c_int, out: *mut *mut xpp_emulator) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        let slots = [Some(ModuleConfig::FXS), Some(ModuleConfig::PRI_E1), None, None];
        let cfg = DeviceConfig::default().with_start_stage(Stage::Running).with_slots(slots);
        let (emu, runner) = Emulator::real_time(cfg);
        if q921 != 0 {
            emu.with_device(|d| d.data_mut().pri_far_end_mut(1, 0).map(|f| f.set_q921(true)));
        }
        let h = Box::new(xpp_emulator { emu, runner: Some(Arc::new(runner)) });
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, Box::into_raw(h)) }
    })
}

/// Releases an emulator (its clock thread stops). `NULL` is accepted. Free the drivers on it
/// first.
///
/// # Safety
/// `emu` is `NULL` or a live emulator, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_free(emu: *mut xpp_emulator) {
    boundary_void(|| {
        if !emu.is_null() {
            // SAFETY: the caller promises a live emulator made by `Box::into_raw`, freed once.
            drop(unsafe { Box::from_raw(emu) });
        }
    });
}

/// Opens a driver on the emulated device (its USB port 0) and brings it up with the firmware
/// in `firmware_dir` (`NULL`: the default search). On success `*out` is a new driver, freed
/// with [`crate::xpp_driver_free`] before the emulator. Blocks for the bring-up.
///
/// # Safety
/// `emu` is a live emulator; `firmware_dir` is `NULL` or a NUL-terminated string; `out` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_driver_open_emulator(
    emu: *const xpp_emulator,
    firmware_dir: *const c_char,
    out: *mut *mut xpp_driver,
) -> xpp_result {
    boundary(|| {
        check_out(out)?;
        // SAFETY: the caller's promise on `emu`.
        let e = unsafe { handle(emu) }?;
        let fw = firmware(firmware_dir)?;
        let drv = Driver::new(SystemClock::new(), DriverOptions::default());
        let device = e.emu.clone();
        drv.open(move || device.transport(0), BringUpConfig::default(), fw, RunOptions::default())
            .map_err(driver_error)?;
        let mut h = xpp_driver::wrap(drv)?;
        // The driver keeps the clock thread alive as long as it runs on it.
        h.keep = e.runner.clone().map(|r| Box::new(r) as Box<dyn std::any::Any + Send + Sync>);
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, Box::into_raw(Box::new(h))) }
    })
}

fn with_phone<R>(
    emu: *const xpp_emulator,
    unit: u8,
    port: u8,
    f: impl FnOnce(&mut Phone, xpp_proto::Instant) -> R,
) -> Result<R, xpp_result> {
    // SAFETY: every caller passes its own caller's promise that `emu` is a live emulator.
    let e = unsafe { handle(emu) }?;
    e.emu.with_device(|d| {
        let now = d.now();
        d.data_mut().phone_mut(unit, port).map(|p| f(p, now)).ok_or(xpp_result::XPP_ERR_INVALID_ARGUMENT)
    })
}

/// The phone on FXS `unit`/`port` goes off hook (`off_hook` non-zero) or on hook.
/// Thread-safe.
///
/// # Safety
/// `emu` is a live emulator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_phone_hook(
    emu: *const xpp_emulator,
    unit: u8,
    port: u8,
    off_hook: c_int,
) -> xpp_result {
    boundary(|| {
        with_phone(emu, unit, port, |p, now| if off_hook != 0 { p.off_hook(now) } else { p.on_hook(now) })
    })
}

/// The phone's microphone plays a tone of `freq_hz` (0: silence). Thread-safe.
///
/// # Safety
/// `emu` is a live emulator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_phone_play(
    emu: *const xpp_emulator,
    unit: u8,
    port: u8,
    freq_hz: u32,
) -> xpp_result {
    boundary(|| {
        let source = if freq_hz == 0 { Source::Silence } else { Source::Tone { freq_hz, amplitude: 16000 } };
        with_phone(emu, unit, port, |p, _| p.play(source))
    })
}

/// What the phone's earpiece heard since the last call: `*has_tone` is 1 if its last 250 ms
/// carry a tone of `freq_hz`, `*level_centi_db` its level in hundredths of a dB (a 0 dBm0
/// tone is about -300). Thread-safe.
///
/// # Safety
/// `emu` is a live emulator; the out-parameters are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xpp_emulator_phone_heard(
    emu: *const xpp_emulator,
    unit: u8,
    port: u8,
    freq_hz: u32,
    has: *mut c_int,
    level_centi_db: *mut c_int,
) -> xpp_result {
    boundary(|| {
        check_out(has)?;
        check_out(level_centi_db)?;
        let heard = with_phone(emu, unit, port, |p, _| p.take_heard())?;
        let tail = &heard[heard.len().saturating_sub(2000)..];
        let tone = !tail.is_empty() && has_tone(tail, f64::from(freq_hz));
        // Silence (or nothing heard) reads as -100 dB.
        let db = if tail.is_empty() { -100.0 } else { level_db(tail).max(-100.0) };
        let level = (db * 100.0) as c_int;
        // SAFETY: checked not NULL; the caller promises they are writable.
        unsafe {
            put(has, c_int::from(tone))?;
            put(level_centi_db, level)
        }
    })
}
