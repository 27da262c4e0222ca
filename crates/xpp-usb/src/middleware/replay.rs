//! Replaying a usbmon capture as a [`Transport`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::pcap_reader::{PcapError, PcapReader, Record};
use super::usbmon::{EventType, XferType, errno_to_status};
use crate::ep;
use crate::info::{
    DeviceInfo, Direction, EndpointInfo, InterfaceInfo, Speed, TransferType, endpoint_direction,
};
use crate::transport::{Completion, ControlSetup, TransferError, Transport};

/// What [`PcapReplay`] does when the host's OUT data (bulk or control) differs from the
/// recorded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OutCheck {
    /// Count the mismatch ([`ReplayStats::out_mismatches`]) and complete the transfer with
    /// the recorded result. The default: a driver's OUT data legitimately differs between
    /// runs (sequence numbers, PCM samples), and the replay still drives its IN side.
    #[default]
    Accept,
    /// Count it and fail the transfer with [`TransferError::Fault`].
    Verify,
}

/// Counters of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayStats {
    /// Recorded transfers matched to a host request.
    pub matched: u64,
    /// OUT transfers whose data differed from the recording.
    pub out_mismatches: u64,
    /// Control transfers the recording did not have (answered with `Stall`).
    pub control_misses: u64,
    /// Bulk submits beyond the recording of their endpoint.
    pub beyond_capture: u64,
}

/// How a recorded transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// `'E'`: the submission was refused.
    Refused(TransferError),
    /// `'C'`: completed with this status and (IN) data.
    Completed { status: Result<(), TransferError>, data: Vec<u8>, actual_len: usize },
    /// No completion before the capture ended.
    Pending,
}

/// One transfer of the capture.
#[derive(Debug, Clone)]
struct Recorded {
    setup: Option<[u8; 8]>,
    out_data: Vec<u8>,
    outcome: Outcome,
    /// Host requests (bulk OUT submits, vendor or class control transfers) recorded before
    /// the completion: it is handed out only once the host has made as many.
    after: u64,
}

/// A host transfer waiting in a replay queue.
#[derive(Debug)]
enum Slot {
    /// Finished; `recorded` when the capture's completion (counts towards its end), handed
    /// out once the host has made `after` requests.
    Done { completion: Completion, recorded: bool, after: u64 },
    /// No recorded completion: finishes on cancel or at the end of the capture.
    Waiting(Vec<u8>),
}

/// A [`Transport`] that plays a usbmon capture back: the device side of a recorded session.
///
/// # Matching
///
/// The capture is read into per-endpoint queues of recorded transfers (submit and completion
/// paired by URB id; `'E'` records are refused submits). One device is replayed: by default
/// the first one with traffic on an Astribank endpoint (0x02, 0x86, 0x04, 0x88), or the one
/// named in [`PcapReplay::from_bytes_for_device`].
/// - A bulk submit takes the next recorded transfer of its endpoint. IN gets the recorded
///   data (cut to the host's buffer; a longer recording fails with `Fault`, an overflow)
///   and status; OUT data is compared with the recording, see [`OutCheck`]; a refused
///   recording refuses the submit with its error. A recording without completion, or a
///   submit beyond the recording, stays pending until cancelled or the capture ends.
/// - A control transfer takes the first recorded non-standard (vendor or class) control
///   transfer with the same `bmRequestType`, `bRequest`, `wValue`, `wIndex`. None left at all
///   is the end of the capture; none matching fails with `Stall`. Standard requests (the
///   kernel's enumeration) are not replayed; they feed [`Transport::info`].
/// - Timestamps are ignored and `wait_next_complete` never blocks, but causality is kept: a
///   recorded completion is handed out only once the host has made as many requests (bulk
///   OUT submits, vendor or class control transfers) as the capture shows before it, so an
///   IN answer never overtakes the request it answers. Until then, and for a transfer with
///   no recorded completion, `wait_next_complete` returns `None` at once.
///   [`Transport::cancel_all`] hands out the endpoint's answers not due yet at once.
///
/// # End of capture
///
/// Once the host has collected every recorded completion and made every recorded submit that
/// has none, or a control transfer finds none left, the replay behaves as an unplugged
/// device: transfers still pending complete with [`TransferError::Disconnected`] and every
/// later call fails with it (completions matched earlier are still handed out). An empty
/// capture is disconnected from the start.
///
/// # Device info
///
/// Reconstructed from the capture's GET_DESCRIPTOR(device) and (configuration) answers when
/// present: IDs, `bcdDevice`, interfaces and endpoints. Otherwise the IDs are 0 and the
/// interfaces are guessed from the endpoints seen (0x02/0x86 on interface 0, 0x04/0x88 on
/// interface 1, any other on 0). Supply the real one with [`PcapReplay::with_info`].
///
/// A capture of several devices (a bus, or a [`PcapSink`](super::PcapSink) recording of a
/// cold bring-up through its re-enumerations): [`PcapReplay::devices`] lists them, and
/// [`PcapSession`] replays them one after the other.
#[derive(Debug)]
pub struct PcapReplay {
    info: DeviceInfo,
    bulk: BTreeMap<u8, VecDeque<Recorded>>,
    control: VecDeque<Recorded>,
    queues: BTreeMap<u8, VecDeque<Slot>>,
    remaining: usize,
    disconnected: bool,
    out_check: OutCheck,
    stats: ReplayStats,
    /// Host requests made so far (see `Recorded::after`).
    requests: u64,
    /// Set once the replay has ended or is dropped ([`PcapSession`] waits for it).
    gone: Option<Arc<AtomicBool>>,
    /// The device replayed.
    device: Option<(u16, u8)>,
}

impl Drop for PcapReplay {
    fn drop(&mut self) {
        if let Some(g) = &self.gone {
            g.store(true, Ordering::Release);
        }
    }
}

/// The device of a record.
fn address(r: &Record<'_>) -> (u16, u8) {
    (r.header.busnum, r.header.devnum)
}

impl PcapReplay {
    /// Reads a whole capture (the bytes of a `.pcap` file) and replays its Astribank.
    pub fn from_bytes(capture: &[u8]) -> Result<Self, PcapError> {
        Self::build(capture, None)
    }

    /// Reads a whole capture and replays the device at `busnum`/`devnum`.
    pub fn from_bytes_for_device(capture: &[u8], busnum: u16, devnum: u8) -> Result<Self, PcapError> {
        Self::build(capture, Some((busnum, devnum)))
    }

    /// Replaces the reconstructed device info.
    #[must_use]
    pub fn with_info(mut self, info: DeviceInfo) -> Self {
        self.info = info;
        self
    }

    /// Sets the OUT-data policy (default [`OutCheck::Accept`]).
    #[must_use]
    pub const fn with_out_check(mut self, check: OutCheck) -> Self {
        self.out_check = check;
        self
    }

    /// The device replayed, `(busnum, devnum)` (`None` for an empty capture).
    pub const fn address(&self) -> Option<(u16, u8)> {
        self.device
    }

    /// Counters so far.
    pub const fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Recorded completions not handed to the host yet, and recorded submits without a
    /// completion not made yet; 0 once the capture has ended.
    pub const fn remaining(&self) -> usize {
        self.remaining
    }

    /// Whether the replay has reached the end of the capture.
    pub const fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// The devices (`(busnum, devnum)`) that have records in a capture, in the order of their
    /// first record.
    pub fn devices(capture: &[u8]) -> Result<Vec<(u16, u8)>, PcapError> {
        let records = PcapReader::new(capture)?.collect::<Result<Vec<_>, _>>()?;
        Ok(devices_of(&records))
    }

    fn build(capture: &[u8], device: Option<(u16, u8)>) -> Result<Self, PcapError> {
        let records = PcapReader::new(capture)?.collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_records(&records, device))
    }

    fn from_records(records: &[Record<'_>], device: Option<(u16, u8)>) -> Self {
        let is_astribank_ep = |e: u8| matches!(e, ep::DATA_OUT | ep::DATA_IN | ep::MGMT_OUT | ep::MGMT_IN);
        let device = device
            .or_else(|| {
                records
                    .iter()
                    .find(|r| r.header.xfer_type == XferType::Bulk && is_astribank_ep(r.header.endpoint))
                    .map(|r| (r.header.busnum, r.header.devnum))
            })
            .or_else(|| records.first().map(|r| (r.header.busnum, r.header.devnum)));

        // Transfers in submission order, with their endpoint and transfer type.
        let mut transfers: Vec<(u8, XferType, Recorded)> = Vec::new();
        let mut open: HashMap<u64, usize> = HashMap::new();
        let mut requests = 0;
        for r in records.iter().filter(|r| Some(address(r)) == device) {
            let h = &r.header;
            // Control transfers carry their direction in bit 7 like other endpoints.
            let endpoint = h.endpoint;
            match h.event {
                EventType::Submit => {
                    let out_data = if endpoint_direction(endpoint) == Direction::Out {
                        r.data.to_vec()
                    } else {
                        Vec::new()
                    };
                    let setup = h.setup_packet();
                    if is_host_request(h.xfer_type, endpoint, setup) {
                        requests += 1;
                    }
                    open.insert(h.id, transfers.len());
                    transfers.push((
                        endpoint,
                        h.xfer_type,
                        Recorded { setup, out_data, outcome: Outcome::Pending, after: 0 },
                    ));
                }
                EventType::Complete | EventType::Error => {
                    let outcome = if h.event == EventType::Error {
                        Outcome::Refused(errno_to_status(h.status).err().unwrap_or(TransferError::Unknown(0)))
                    } else {
                        let data = if endpoint_direction(endpoint) == Direction::In {
                            r.data.to_vec()
                        } else {
                            Vec::new()
                        };
                        Outcome::Completed {
                            status: errno_to_status(h.status),
                            data,
                            actual_len: h.length as usize,
                        }
                    };
                    if let Some(i) = open.remove(&h.id) {
                        transfers[i].2.outcome = outcome;
                        transfers[i].2.after = requests;
                    } else {
                        // Submitted before the capture started.
                        transfers.push((
                            endpoint,
                            h.xfer_type,
                            Recorded { setup: None, out_data: Vec::new(), outcome, after: requests },
                        ));
                    }
                }
                EventType::Unknown(_) => {}
            }
        }

        let mut info = DeviceInfo {
            vendor_id: 0,
            product_id: 0,
            bcd_device: 0,
            manufacturer: None,
            product: None,
            serial: None,
            speed: Speed::Unknown,
            location: device.map_or_else(|| "pcap".to_owned(), |(b, d)| format!("pcap:{b}-{d}")),
            interfaces: Vec::new(),
        };
        let mut bulk: BTreeMap<u8, VecDeque<Recorded>> = BTreeMap::new();
        let mut control = VecDeque::new();
        let mut seen: BTreeMap<u8, TransferType> = BTreeMap::new();
        for (endpoint, xfer_type, rec) in transfers {
            if xfer_type == XferType::Control {
                let setup = rec.setup.map(ControlSetup::from_bytes);
                if let (Some((s, _)), Outcome::Completed { status: Ok(()), data, .. }) = (setup, &rec.outcome)
                    && s.request_type & 0x60 == 0
                {
                    describe_from(&mut info, s, data);
                }
                if setup.is_some_and(|(s, _)| s.request_type & 0x60 != 0) {
                    control.push_back(rec);
                }
                continue;
            }
            let tt = match xfer_type {
                XferType::Interrupt => TransferType::Interrupt,
                XferType::Isochronous => TransferType::Isochronous,
                _ => TransferType::Bulk,
            };
            seen.entry(endpoint).or_insert(tt);
            bulk.entry(endpoint).or_default().push_back(rec);
        }
        if info.interfaces.is_empty() {
            info.interfaces = guess_interfaces(&seen);
        }
        let completed = |r: &Recorded| matches!(r.outcome, Outcome::Completed { .. });
        // A bulk submit recorded without completion (the device left, or the capture stopped,
        // while it was pending) is a step of the recording too: the host making it is the
        // recording's last event on that endpoint.
        let pending = |r: &Recorded| matches!(r.outcome, Outcome::Pending);
        let remaining = bulk.values().flatten().filter(|r| completed(r) || pending(r)).count()
            + control.iter().filter(|r| completed(r)).count();
        Self {
            info,
            bulk,
            control,
            queues: BTreeMap::new(),
            remaining,
            disconnected: remaining == 0,
            out_check: OutCheck::Accept,
            stats: ReplayStats::default(),
            requests: 0,
            gone: None,
            device,
        }
    }

    /// Marks one recorded completion handed to the host; the last one ends the capture.
    fn delivered(&mut self) {
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 {
            self.end_of_capture();
        }
    }

    fn end_of_capture(&mut self) {
        if self.disconnected {
            return;
        }
        self.disconnected = true;
        self.remaining = 0;
        if let Some(g) = &self.gone {
            g.store(true, Ordering::Release);
        }
        for (&endpoint, q) in &mut self.queues {
            for slot in q.iter_mut() {
                if let Slot::Waiting(buf) = slot {
                    let mut buffer = core::mem::take(buf);
                    if endpoint_direction(endpoint) == Direction::In {
                        buffer.clear();
                    }
                    let status = Err(TransferError::Disconnected);
                    let completion = Completion { endpoint, buffer, actual_len: 0, status };
                    *slot = Slot::Done { completion, recorded: false, after: 0 };
                }
            }
        }
    }

    fn out_matches(&mut self, recorded: &[u8], sent: &[u8]) -> bool {
        if recorded == sent {
            return true;
        }
        self.stats.out_mismatches += 1;
        self.out_check == OutCheck::Accept
    }

    fn take_control(&mut self, setup: ControlSetup) -> Result<Recorded, TransferError> {
        if self.disconnected {
            return Err(TransferError::Disconnected);
        }
        if self.control.is_empty() {
            self.end_of_capture();
            return Err(TransferError::Disconnected);
        }
        let same = |r: &Recorded| r.setup.map(|b| ControlSetup::from_bytes(b).0) == Some(setup);
        let Some(i) = self.control.iter().position(same) else {
            self.stats.control_misses += 1;
            return Err(TransferError::Stall);
        };
        let Some(rec) = self.control.remove(i) else { return Err(TransferError::Stall) };
        match rec.outcome {
            Outcome::Refused(e) => Err(e),
            Outcome::Pending => {
                self.end_of_capture();
                Err(TransferError::Disconnected)
            }
            Outcome::Completed { .. } => Ok(rec),
        }
    }
}

/// Whether a recorded submit is one the host's requests are counted by: a bulk (or interrupt,
/// iso) OUT, or a vendor or class control transfer (standard ones are not replayed).
fn is_host_request(xfer_type: XferType, endpoint: u8, setup: Option<[u8; 8]>) -> bool {
    if xfer_type == XferType::Control {
        setup.is_some_and(|s| s[0] & 0x60 != 0)
    } else {
        endpoint_direction(endpoint) == Direction::Out
    }
}

/// The devices of `records`, in the order of their first record.
fn devices_of(records: &[Record<'_>]) -> Vec<(u16, u8)> {
    let mut seen = BTreeSet::new();
    records.iter().map(address).filter(|&a| seen.insert(a)).collect()
}

/// Every Astribank of a capture replayed in turn, as the devices a host sees one after the
/// other: a cold bring-up's boot-ROM FX2 (E4E4:1160), then the USB firmware (11x1), then the
/// running device (11x2), each a new address on the bus.
///
/// [`PcapSession::open`] is a device opener (the closure `xpp_span`'s bring-up takes): it
/// hands out a [`PcapReplay`] of the first device, then `None` while that replay is connected,
/// and the next device once it has reached the end of its recording (where it reports
/// [`TransferError::Disconnected`], the capture's disconnect point) or has been dropped.
/// [`PcapSession::next_device`] hands out the next one unconditionally.
///
/// The devices replayed are those whose recorded device descriptor says vendor E4E4, and
/// those without a recorded descriptor that have vendor or bulk transfers, in the order of
/// their first record (other devices of a bus capture, hubs, keyboards, are left out).
#[derive(Debug)]
pub struct PcapSession {
    devices: Vec<(u16, u8)>,
    next: VecDeque<PcapReplay>,
    current: Option<Arc<AtomicBool>>,
}

impl PcapSession {
    /// Reads a whole capture and prepares the replay of each of its Astribanks.
    pub fn from_bytes(capture: &[u8]) -> Result<Self, PcapError> {
        let records = PcapReader::new(capture)?.collect::<Result<Vec<_>, _>>()?;
        let next: VecDeque<PcapReplay> = devices_of(&records)
            .into_iter()
            .map(|d| PcapReplay::from_records(&records, Some(d)))
            .filter(|r| {
                let id = r.info.vendor_id;
                id == ASTRIBANK_VENDOR || (id == 0 && (!r.bulk.is_empty() || !r.control.is_empty()))
            })
            .collect();
        let devices = next.iter().filter_map(PcapReplay::address).collect();
        Ok(Self { devices, next, current: None })
    }

    /// The devices replayed, `(busnum, devnum)`, in order.
    pub fn devices(&self) -> &[(u16, u8)] {
        &self.devices
    }

    /// Devices not handed out yet.
    pub fn remaining_devices(&self) -> usize {
        self.next.len()
    }

    /// Sets the OUT-data policy of every device (default [`OutCheck::Accept`]).
    #[must_use]
    pub fn with_out_check(mut self, check: OutCheck) -> Self {
        for r in &mut self.next {
            r.out_check = check;
        }
        self
    }

    /// The next device, whatever the state of the previous one.
    pub fn next_device(&mut self) -> Option<PcapReplay> {
        let mut r = self.next.pop_front()?;
        let gone = Arc::new(AtomicBool::new(r.disconnected));
        r.gone = Some(Arc::clone(&gone));
        self.current = Some(gone);
        Some(r)
    }

    /// The next device once the previous one has ended or been dropped; `None` before, and
    /// after the last device.
    pub fn open(&mut self) -> Option<PcapReplay> {
        if self.current.as_ref().is_some_and(|g| !g.load(Ordering::Acquire)) {
            return None;
        }
        self.next_device()
    }

    /// [`PcapSession::open`] as a closure.
    pub fn into_opener(mut self) -> impl FnMut() -> Option<PcapReplay> + Send {
        move || self.open()
    }
}

/// The vendor ID of every Astribank stage.
const ASTRIBANK_VENDOR: u16 = 0xE4E4;

/// Fills IDs and interfaces from a standard GET_DESCRIPTOR answer.
fn describe_from(info: &mut DeviceInfo, s: ControlSetup, data: &[u8]) {
    const GET_DESCRIPTOR: u8 = 6;
    if s.request_type != 0x80 || s.request != GET_DESCRIPTOR {
        return;
    }
    let u16_at = |i: usize| data.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    match s.value >> 8 {
        1 => {
            if let (Some(v), Some(p), Some(d)) = (u16_at(8), u16_at(10), u16_at(12)) {
                (info.vendor_id, info.product_id, info.bcd_device) = (v, p, d);
            }
        }
        2 => {
            let mut interfaces: Vec<InterfaceInfo> = Vec::new();
            let mut alt0 = false;
            let mut rest = data;
            while let [len, kind, ..] = *rest {
                let len = usize::from(len);
                if len < 2 || len > rest.len() {
                    break;
                }
                let d = &rest[..len];
                match (kind, d) {
                    (4, [_, _, number, alt, ..]) => {
                        alt0 = *alt == 0;
                        if alt0 {
                            interfaces.push(InterfaceInfo { number: *number, endpoints: Vec::new() });
                        }
                    }
                    (5, [_, _, address, attributes, m0, m1, ..]) if alt0 => {
                        if let Some(i) = interfaces.last_mut() {
                            i.endpoints.push(EndpointInfo {
                                address: *address,
                                transfer_type: TransferType::from_attributes(*attributes),
                                max_packet_size: u16::from_le_bytes([*m0, *m1]),
                            });
                        }
                    }
                    _ => {}
                }
                rest = &rest[len..];
            }
            if !interfaces.is_empty() {
                info.interfaces = interfaces;
            }
        }
        _ => {}
    }
}

/// Interfaces from the endpoints a capture used.
fn guess_interfaces(seen: &BTreeMap<u8, TransferType>) -> Vec<InterfaceInfo> {
    let mut by_if: BTreeMap<u8, Vec<EndpointInfo>> = BTreeMap::new();
    let mgmt: BTreeSet<u8> = [ep::MGMT_OUT, ep::MGMT_IN].into();
    for (&address, &transfer_type) in seen {
        let number = if mgmt.contains(&address) { ep::MGMT_INTERFACE } else { ep::DATA_INTERFACE };
        by_if.entry(number).or_default().push(EndpointInfo { address, transfer_type, max_packet_size: 512 });
    }
    by_if.into_iter().map(|(number, endpoints)| InterfaceInfo { number, endpoints }).collect()
}

impl Transport for PcapReplay {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn submit(&mut self, endpoint: u8, mut buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.disconnected {
            return Err(TransferError::Disconnected);
        }
        let rec = self.bulk.get_mut(&endpoint).and_then(VecDeque::pop_front);
        let refused = matches!(rec, Some(Recorded { outcome: Outcome::Refused(_), .. }));
        if endpoint_direction(endpoint) == Direction::Out && !refused {
            self.requests += 1;
        }
        let slot = match rec {
            None => {
                self.stats.beyond_capture += 1;
                Slot::Waiting(buffer)
            }
            Some(Recorded { outcome: Outcome::Refused(e), .. }) => return Err(e),
            Some(Recorded { outcome: Outcome::Pending, .. }) => {
                self.stats.matched += 1;
                self.queues.entry(endpoint).or_default().push_back(Slot::Waiting(buffer));
                // If it was the recording's last step, it completes Disconnected at once.
                self.delivered();
                return Ok(());
            }
            Some(Recorded {
                outcome: Outcome::Completed { mut status, data, actual_len },
                out_data,
                after,
                ..
            }) => {
                let actual_len = if endpoint_direction(endpoint) == Direction::In {
                    let n = data.len().min(buffer.len());
                    if data.len() > buffer.len() && status.is_ok() {
                        status = Err(TransferError::Fault);
                    }
                    buffer.clear();
                    buffer.extend_from_slice(&data[..n]);
                    n
                } else if self.out_matches(&out_data, &buffer) {
                    actual_len.min(buffer.len())
                } else {
                    status = Err(TransferError::Fault);
                    0
                };
                self.stats.matched += 1;
                let completion = Completion { endpoint, buffer, actual_len, status };
                let slot = Slot::Done { completion, recorded: true, after };
                self.queues.entry(endpoint).or_default().push_back(slot);
                return Ok(());
            }
        };
        self.queues.entry(endpoint).or_default().push_back(slot);
        Ok(())
    }

    fn pending(&self, endpoint: u8) -> usize {
        self.queues.get(&endpoint).map_or(0, VecDeque::len)
    }

    fn wait_next_complete(&mut self, endpoint: u8, _timeout: Duration) -> Option<Completion> {
        let q = self.queues.get_mut(&endpoint)?;
        if !matches!(q.front(), Some(Slot::Done { after, .. }) if *after <= self.requests) {
            return None;
        }
        let Some(Slot::Done { completion, recorded, .. }) = q.pop_front() else { return None };
        if recorded {
            self.delivered();
        }
        Some(completion)
    }

    fn cancel_all(&mut self, endpoint: u8) {
        if let Some(q) = self.queues.get_mut(&endpoint) {
            for slot in q.iter_mut() {
                // A recorded answer not due yet comes back now, with its recorded result.
                if let Slot::Done { after, .. } = slot {
                    *after = 0;
                }
                if let Slot::Waiting(buf) = slot {
                    let mut buffer = core::mem::take(buf);
                    if endpoint_direction(endpoint) == Direction::In {
                        buffer.clear();
                    }
                    let status = Err(TransferError::Cancelled);
                    let completion = Completion { endpoint, buffer, actual_len: 0, status };
                    *slot = Slot::Done { completion, recorded: false, after: 0 };
                }
            }
        }
    }

    fn control_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
        _timeout: Duration,
    ) -> Result<usize, TransferError> {
        let rec = self.take_control(setup)?;
        self.requests += 1;
        let Outcome::Completed { status, actual_len, .. } = rec.outcome else {
            return Err(TransferError::Disconnected);
        };
        let ok = self.out_matches(&rec.out_data, data);
        self.stats.matched += 1;
        self.delivered();
        if !ok {
            return Err(TransferError::Fault);
        }
        status.map(|()| actual_len.min(data.len()))
    }

    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        _timeout: Duration,
    ) -> Result<usize, TransferError> {
        let rec = self.take_control(setup)?;
        self.requests += 1;
        let Outcome::Completed { status, data, .. } = rec.outcome else {
            return Err(TransferError::Disconnected);
        };
        self.stats.matched += 1;
        self.delivered();
        status?;
        if data.len() > buf.len() {
            return Err(TransferError::Fault);
        }
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn reset(&mut self) -> Result<(), TransferError> {
        if self.disconnected { Err(TransferError::Disconnected) } else { Ok(()) }
    }
}
