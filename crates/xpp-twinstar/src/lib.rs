//! # xpp-twinstar: the TwinStar port-switch controller, sans-IO
//!
//! A TwinStar Astribank has two USB ports, each cabled to a different PBX host; exactly one
//! port is active at a time, and the device moves to the other one on an explicit
//! TWS_PORT_SET or when its watchdog is armed and it loses contact with the active host
//! (docs/reference/mpp-twinstar-firmware.md §4). One [`Controller`] runs on each host, for
//! all the Astribanks of that host, and decides when this host drives the lines:
//!
//! - **health-gated watchdog**: as master it arms each device's watchdog and keeps it armed
//!   only while the PBX is healthy: it asks for a health check ([`Action::CheckHealth`]) every
//!   [`Config::health_interval`]; after [`Config::health_failures`] failed or unanswered checks
//!   in a row it hands the device over deliberately (TWS_PORT_SET to the other port, only when
//!   that port has power), so a hung PBX fails over too, not only a dead host. If the device
//!   does not leave within [`Config::jump_timeout`], the data stream is released
//!   ([`Action::Release`]) so that the armed watchdog fires;
//! - **orderly stop**: [`Command::Stop`] disarms every watchdog first and only then releases
//!   the devices: a stop never causes a jump;
//! - **warm take-over**: a backup waits for its devices; each one that arrives is taken over
//!   ([`Action::TakeOver`]: attach and verify, not a cold boot, by the driver), then the
//!   watchdog is armed again (it does not survive a jump, §4.3) and the online hook runs;
//! - **anti-flap**: no deliberate hand-over within [`Config::min_dwell`] of becoming master,
//!   and at most [`Config::max_switches`] in any [`Config::switch_window`]; an operator's jump
//!   is never refused for flapping, but no jump ever goes to an unpowered port;
//! - **failback**: manual by default (an operator's jump); with [`Failback::Automatic`] a host
//!   that started as backup hands the lines back once the other port has had power for the
//!   hold-down and the peer check ([`Action::CheckPeer`]) says the other host is ready;
//! - **no partial switching**: every hand-over moves all of this host's units or none; with
//!   [`Config::expected_devices`], a unit found alone on the wrong port is moved to join the
//!   others once arrivals have settled (the host with fewer units yields, the one that started
//!   as backup on a tie);
//! - **last resort**: when the PBX is unhealthy and the other port has no power, the
//!   last-resort hook runs ([`Hook::LastResort`]) and the lines stay here;
//! - **a failover timeline**: each phase with its start and duration ([`Timeline`]).
//!
//! Sans-IO (quinn-proto style, STYLE.md §2): inputs are `handle_*` calls with the current
//! [`Instant`], outputs are polled: [`Controller::poll_action`] (MPP requests, take-over and
//! release requests, health checks, hook runs), [`Controller::poll_event`] and
//! [`Controller::poll_timeout`]. No clock, no threads, no IO: the driver executes the actions
//! and feeds back what happened, so two hosts and one emulated device run deterministically
//! on a virtual clock.
//!
//! ```
//! use xpp_proto::{Duration, Instant};
//! use xpp_twinstar::{Action, Command, Config, Controller, DeviceKey, Role};
//!
//! let t0 = Instant::from_secs(1);
//! let mut backup = Controller::new(Config::default());
//! backup.handle_command(t0, Command::Start(Role::Backup));
//! // The device jumps to this host: take it over.
//! let dev = DeviceKey(0);
//! backup.handle_device_arrived(t0 + Duration::from_millis(600), dev);
//! assert_eq!(backup.poll_action(), Some(Action::TakeOver { device: dev }));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod controller;
mod timeline;

pub use controller::{
    Action, Command, Config, Controller, DeviceKey, Event, Failback, HandOverReason, Hook, MppRequest,
    RefusalReason, Role,
};
pub use timeline::{Phase, PhaseSpan, Timeline};
pub use xpp_proto::{Duration, Instant};
