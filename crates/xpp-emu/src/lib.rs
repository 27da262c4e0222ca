//! # xpp-emu: the emulated Astribank
//!
//! A model of the Astribank's **device firmware** — USB stages and firmware loading, the
//! management (MPP) and data (XPP) interfaces, the module chips, the equipment plugged into
//! the ports, TwinStar — written from the references on its own (it never reuses host logic),
//! so that every test, benchmark and demo can run the whole xpp stack without hardware.
//! `MODEL.md` in this crate is the behaviour table it implements; code cites its row ids
//! (`// MODEL: FXS-9`).
//!
//! The model is sans-IO: it has no clock and no threads. Every input carries an
//! [`Instant`](xpp_proto::Instant), `poll_timeout` says when it next needs to run, and the
//! caller advances it with `handle_timeout`. Front-ends add the IO: an in-process
//! [`Transport`](xpp_usb::Transport) per USB port on a virtual clock (tests), and a real-time
//! runner (demos).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod data;
pub mod device;
pub mod eeprom;
pub mod fault;
pub mod fuzzing;
mod loader;
mod mpp;
pub mod report;
pub mod scenario;
pub mod script;
pub mod transport;
pub mod usb;
pub mod usbip_server;

pub use config::DeviceConfig;
pub use device::{Counters, DetachReason, Device, DeviceEvent, FirmwareKind, JumpReason};
pub use transport::{ClockMode, EmulatedTransport, Emulator, RealTimeRunner};
pub use usb::UsbStage;
