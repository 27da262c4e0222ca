//! A sans-IO request/reply session on the management interface (§2.4, §2.5).

use std::collections::VecDeque;

use super::{Expect, HEADER_LEN, MAX_PACKET_LEN, MgmtError, Op, OwnedReply, Packet, Reply, Request};
use crate::time::{Duration, Instant};

/// Identifies one request given to [`Session::send`]; unique for the session's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RequestId(u64);

impl RequestId {
    /// The raw counter value (1 for the first request of a session).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl core::fmt::Display for RequestId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Session parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// How long to wait for a reply, measured from transmission (§2.5: 2000 ms).
    pub reply_timeout: Duration,
    /// How many requests may wait behind the outstanding one; [`Session::send`] fails with
    /// [`MgmtError::QueueFull`] beyond this.
    pub max_queued: usize,
}

impl SessionConfig {
    /// The reference host's per-transfer timeout (§2.5).
    pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_millis(2000);
    /// Default queue bound: a `-Q` query is 11 requests; firmware loads feed one segment at a time.
    pub const DEFAULT_MAX_QUEUED: usize = 32;

    /// The defaults: 2000 ms, 32 queued requests.
    pub const fn new() -> Self {
        Self { reply_timeout: Self::DEFAULT_REPLY_TIMEOUT, max_queued: Self::DEFAULT_MAX_QUEUED }
    }

    /// Sets [`SessionConfig::reply_timeout`].
    #[must_use]
    pub const fn with_reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    /// Sets [`SessionConfig::max_queued`].
    #[must_use]
    pub const fn with_max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// What a [`Session`] reports through [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "the reply is kept inline so events need no heap and can be matched in place; few are queued"
)]
pub enum Event {
    /// The request got its valid reply (for ACK-answered requests: an ACK with status OK).
    Completed {
        /// The request.
        id: RequestId,
        /// An owned copy of the reply.
        reply: OwnedReply,
    },
    /// The request failed: bad or unexpected reply, non-OK ACK, timeout, disconnect.
    Failed {
        /// The request.
        id: RequestId,
        /// Why.
        error: MgmtError,
    },
    /// A fire-and-forget request (RENUM, RESET, HALF_RESET, TWS_PORT_SET) was handed to
    /// [`Session::poll_transmit`]; no reply is expected.
    Sent {
        /// The request.
        id: RequestId,
    },
}

/// Counters of a [`Session`]; they survive [`Session::handle_disconnect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SessionStats {
    /// Requests transmitted.
    pub sent: u64,
    /// Requests completed with a valid reply.
    pub completed: u64,
    /// Requests failed (including timeouts and disconnects).
    pub failed: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// IN transfers discarded because no request was outstanding (e.g. the rule 9 flush read).
    pub unsolicited: u64,
    /// IN transfers discarded because they carried the seq of a request already given up on
    /// (timed out, failed, or fire-and-forget).
    pub stale: u64,
}

/// A request waiting to be transmitted: encoded with seq 0, patched at transmission.
#[derive(Debug)]
struct Pending {
    id: RequestId,
    op: Op,
    expect: Expect,
    /// SER_SEND: the answer must carry at least as many bytes as the command (§3.3).
    min_reply_data: usize,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    id: RequestId,
    seq: u16,
    op: Op,
    expect: Expect,
    min_reply_data: usize,
    deadline: Instant,
}

/// How many recently abandoned sequence numbers are remembered to recognise late replies.
const ABANDONED_SEQS: usize = 4;

/// A sans-IO MPP request/reply session for one opened device handle (quinn-proto style).
///
/// The session encodes requests, sends them strictly one at a time (§2.4: the reference host
/// never has two requests in flight), matches replies by §2.4 rules 3–8, and times requests out.
/// It does no IO, reads no clock and starts no threads: the caller moves bytes between it and
/// the USB endpoints and passes the current [`Instant`] in.
///
/// Method kinds:
/// - commands: [`Session::send`] queues a request (FIFO, bounded by
///   [`SessionConfig::max_queued`]) and returns its [`RequestId`];
/// - inputs (`handle_*`): [`Session::handle_input`] with each IN transfer from EP 0x88,
///   [`Session::handle_timeout`] when the time from [`Session::poll_timeout`] has come,
///   [`Session::handle_disconnect`] when the device goes away;
/// - outputs (`poll_*`): [`Session::poll_transmit`] for the next OUT transfer to EP 0x04,
///   [`Session::poll_event`] for completions, [`Session::poll_timeout`] for the next deadline.
///
/// Polling order after any command or input: drain `poll_transmit` (write each packet), then
/// drain `poll_event`, then re-arm the timer from `poll_timeout`. After claiming the interface
/// the IO layer should do one short read (rule 9) and feed it to `handle_input` before sending:
/// input while nothing is outstanding is counted and discarded.
///
/// Sequence numbers start at 1 and advance by one per transmitted request, including
/// fire-and-forget ones.
// Decision: on wrapping, seq 0 is skipped (65535 -> 1), so 0 never appears on the wire and a
// zeroed buffer can never match an outstanding request.
// Decision: a reply whose seq belongs to a recently abandoned request (timed out, failed, or
// fire-and-forget) is discarded as stale instead of failing the current request with
// SeqMismatch; any other wrong seq fails the current request (rule 8).
// Decision (§10.3): whether the device answers RENUM / RESET / HALF_RESET / TWS_PORT_SET is
// unknown; the session never waits for it, and such an answer (recognised by its seq) is
// discarded as stale.
// Decision: a reply handled at or after the request's deadline is late: the request times out
// first and the input is then discarded as stale.
///
/// ```
/// use xpp_proto::mgmt::{Event, OwnedReply, Request, Session};
/// use xpp_proto::Instant;
///
/// let mut s = Session::new();
/// let now = Instant::ZERO;
/// let id = s.send(now, Request::StatusGet).unwrap();
/// let mut out = [0u8; 512];
/// let n = s.poll_transmit(now, &mut out).unwrap();
/// assert_eq!(&out[..n], &[0x05, 0x00, 0x01, 0x00, 0x11]);
/// // The device answers STATUS_GET_REPLY, seq 1: large EEPROM, FPGA loaded.
/// let mut reply = [0u8; 25];
/// reply[..7].copy_from_slice(&[0x19, 0x00, 0x01, 0x00, 0x91, 0x10, 0x01]);
/// s.handle_input(now, &reply);
/// match s.poll_event() {
///     Some(Event::Completed { id: done, reply: OwnedReply::StatusGetReply(st) }) => {
///         assert_eq!(done, id);
///         assert!(st.fpga_loaded());
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    next_seq: u16,
    next_id: u64,
    queue: VecDeque<Pending>,
    outstanding: Option<Outstanding>,
    events: VecDeque<Event>,
    abandoned: [Option<u16>; ABANDONED_SEQS],
    abandoned_next: usize,
    stats: SessionStats,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// The first sequence number of a device handle (rule 1).
    pub const FIRST_SEQ: u16 = 1;

    /// A session with the default configuration (2000 ms timeout).
    pub fn new() -> Self {
        Self::with_config(SessionConfig::default())
    }

    /// A session with `config`.
    pub fn with_config(config: SessionConfig) -> Self {
        Self {
            config,
            next_seq: Self::FIRST_SEQ,
            next_id: 1,
            queue: VecDeque::new(),
            outstanding: None,
            events: VecDeque::new(),
            abandoned: [None; ABANDONED_SEQS],
            abandoned_next: 0,
            stats: SessionStats::default(),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The counters.
    pub const fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The seq the next transmitted request will carry.
    pub const fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// The request waiting for its reply, if any.
    pub fn outstanding(&self) -> Option<RequestId> {
        self.outstanding.map(|o| o.id)
    }

    /// Requests queued behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued, outstanding or waiting in the event queue.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.outstanding.is_none() && self.events.is_empty()
    }

    /// Queues `request`. It is encoded (and checked) now; its seq is assigned when
    /// [`Session::poll_transmit`] hands it out.
    ///
    /// Fails if the request cannot be encoded (too long, TWS_PORT_SET port ≥ 2) or the queue is
    /// full; nothing is queued then. `now` is taken for symmetry with the other commands; the
    /// timeout runs from transmission, not from queueing.
    pub fn send(&mut self, _now: Instant, request: Request<'_>) -> Result<RequestId, MgmtError> {
        if self.queue.len() >= self.config.max_queued {
            return Err(MgmtError::QueueFull { capacity: self.config.max_queued });
        }
        let mut bytes = vec![0u8; request.buffer_len().min(MAX_PACKET_LEN)];
        request.emit(0, &mut bytes)?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let min_reply_data = match request {
            Request::SerSend { data } => data.len(),
            _ => 0,
        };
        self.queue.push_back(Pending {
            id,
            op: request.op(),
            expect: request.expect(),
            min_reply_data,
            bytes,
        });
        Ok(id)
    }

    /// Writes the next packet for the OUT endpoint into `buf` and returns its length, or `None`
    /// if a reply is awaited or nothing is queued.
    ///
    /// The timeout starts now. A fire-and-forget request yields [`Event::Sent`] at once and does
    /// not block the next one. `buf` should hold [`MAX_PACKET_LEN`] bytes; a request that does
    /// not fit fails with [`MgmtError::NoRoom`].
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.outstanding.is_some() {
            return None;
        }
        while let Some(p) = self.queue.pop_front() {
            let n = p.bytes.len();
            let Some(out) = buf.get_mut(..n) else {
                self.fail(p.id, MgmtError::NoRoom { what: p.op.name(), needed: n, available: buf.len() });
                continue;
            };
            out.copy_from_slice(&p.bytes);
            let seq = self.take_seq();
            Packet::new_unchecked(out).set_seq(seq);
            self.stats.sent += 1;
            match p.expect {
                Expect::Nothing => {
                    self.abandon(seq);
                    self.events.push_back(Event::Sent { id: p.id });
                }
                expect => {
                    self.outstanding = Some(Outstanding {
                        id: p.id,
                        seq,
                        op: p.op,
                        expect,
                        min_reply_data: p.min_reply_data,
                        deadline: now + self.config.reply_timeout,
                    });
                }
            }
            return Some(n);
        }
        None
    }

    /// Takes one IN transfer from the management endpoint.
    ///
    /// With a request outstanding, the transfer is checked by §2.4 rules 3–8 and completes or
    /// fails that request. Without one, or if it carries the seq of an abandoned request, it is
    /// counted ([`SessionStats::unsolicited`], [`SessionStats::stale`]) and discarded.
    pub fn handle_input(&mut self, now: Instant, transfer: &[u8]) {
        self.handle_timeout(now);
        let seq = Packet::new_checked(transfer).ok().map(|p| p.seq());
        let stale = seq.is_some_and(|s| self.abandoned.contains(&Some(s)));
        let Some(out) = self.outstanding else {
            if stale {
                self.stats.stale += 1;
            } else {
                self.stats.unsolicited += 1;
            }
            return;
        };
        if stale && seq != Some(out.seq) {
            self.stats.stale += 1;
            return;
        }
        self.outstanding = None;
        self.abandon(out.seq);
        match Self::check_reply(&out, transfer) {
            Ok(reply) => {
                self.stats.completed += 1;
                self.events.push_back(Event::Completed { id: out.id, reply });
            }
            Err(error) => self.fail(out.id, error),
        }
    }

    /// Rules 3–8 of §2.4 for the reply to `out`.
    fn check_reply(out: &Outstanding, transfer: &[u8]) -> Result<OwnedReply, MgmtError> {
        let (seq, reply) = Reply::parse(transfer)?; // rules 3, 4, 7
        if seq != out.seq {
            return Err(MgmtError::SeqMismatch { expected: out.seq, got: seq }); // rule 8
        }
        match out.expect {
            Expect::Reply(op) if reply.op() != op => {
                return Err(MgmtError::UnexpectedReply { expected: op, got: reply.op() }); // rule 5
            }
            Expect::Ack | Expect::Nothing => match reply {
                Reply::Ack { status } => status.check()?, // rule 6
                other => return Err(MgmtError::UnexpectedReply { expected: Op::Ack, got: other.op() }),
            },
            Expect::Reply(_) => {}
        }
        // Decision: SER_RECV must carry at least as many bytes as the SER_SEND (§3.3 says the
        // same; longer is accepted as in rule 7).
        if let Reply::SerRecv { data } = reply
            && data.len() < out.min_reply_data
        {
            return Err(MgmtError::Truncated {
                what: "SER_RECV",
                offset: HEADER_LEN,
                needed: out.min_reply_data,
            });
        }
        OwnedReply::try_from(reply)
    }

    /// Fails the outstanding request with [`MgmtError::Timeout`] if its deadline is at or
    /// before `now`. Calling it early (or with nothing outstanding) does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(out) = self.outstanding
            && out.deadline <= now
        {
            self.outstanding = None;
            self.abandon(out.seq);
            self.stats.timeouts += 1;
            self.fail(out.id, MgmtError::Timeout { op: out.op });
        }
    }

    /// The device went away (unplugged, renumerated, port switch): fails the outstanding and
    /// every queued request with [`MgmtError::Disconnected`], in order.
    ///
    /// The session is then fresh again (seq back to 1, as on a newly opened handle, rule 1);
    /// request ids keep counting and the stats are kept.
    pub fn handle_disconnect(&mut self) {
        if let Some(out) = self.outstanding.take() {
            self.fail(out.id, MgmtError::Disconnected);
        }
        while let Some(p) = self.queue.pop_front() {
            self.fail(p.id, MgmtError::Disconnected);
        }
        self.next_seq = Self::FIRST_SEQ;
        self.abandoned = [None; ABANDONED_SEQS];
    }

    /// The next completion, failure or fire-and-forget transmission, in the order they happened.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called: the outstanding request's
    /// deadline. (The session has a single timer, so no timer table.)
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.outstanding.map(|o| o.deadline)
    }

    fn take_seq(&mut self) -> u16 {
        let seq = self.next_seq;
        self.next_seq = match seq.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        seq
    }

    fn abandon(&mut self, seq: u16) {
        self.abandoned[self.abandoned_next] = Some(seq);
        self.abandoned_next = (self.abandoned_next + 1) % ABANDONED_SEQS;
    }

    fn fail(&mut self, id: RequestId, error: MgmtError) {
        self.stats.failed += 1;
        self.events.push_back(Event::Failed { id, error });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mgmt::{AckStatus, CapKey, Capabilities, EepromTable, OwnedReply};

    // Hand-written device answers (§2.2, §3.1).
    static ACK_OK_SEQ1: [u8; 6] = [0x06, 0x00, 0x01, 0x00, 0x80, 0x00];
    static ACK_OK_SEQ2: [u8; 6] = [0x06, 0x00, 0x02, 0x00, 0x80, 0x00];
    static ACK_BADKEY_SEQ1: [u8; 6] = [0x06, 0x00, 0x01, 0x00, 0x80, 0x0E];
    static PORT_REPLY_SEQ1: [u8; 6] = [0x06, 0x00, 0x01, 0x00, 0xB5, 0x00];
    static PORT_REPLY_SEQ2: [u8; 6] = [0x06, 0x00, 0x02, 0x00, 0xB5, 0x01];

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn transmit(s: &mut Session, now: Instant) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        s.poll_transmit(now, &mut buf).map(|n| buf[..n].to_vec())
    }

    fn events(s: &mut Session) -> Vec<Event> {
        core::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn seq_starts_at_one_and_replies_match() {
        let mut s = Session::new();
        assert_eq!(s.next_seq(), 1);
        let id = s.send(t(0), Request::TwsPortGet).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x05, 0x00, 0x01, 0x00, 0x35]);
        assert_eq!(s.outstanding(), Some(id));
        assert_eq!(s.poll_timeout(), Some(t(2000)));
        s.handle_input(t(5), &PORT_REPLY_SEQ1);
        assert_eq!(events(&mut s), [Event::Completed { id, reply: OwnedReply::TwsPortGetReply { port: 0 } }]);
        assert!(s.is_idle());
        assert_eq!(s.poll_timeout(), None);

        let id2 = s.send(t(10), Request::TwsPortGet).unwrap();
        assert_eq!(transmit(&mut s, t(10)).unwrap(), [0x05, 0x00, 0x02, 0x00, 0x35]);
        s.handle_input(t(11), &PORT_REPLY_SEQ2);
        assert_eq!(
            events(&mut s),
            [Event::Completed { id: id2, reply: OwnedReply::TwsPortGetReply { port: 1 } }]
        );
        assert_eq!((s.stats().sent, s.stats().completed), (2, 2));
    }

    #[test]
    fn ack_requests_complete_with_ack_ok() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::TwsWdModeSet { armed: true }).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x06, 0x00, 0x01, 0x00, 0x31, 0x01]);
        s.handle_input(t(1), &ACK_OK_SEQ1);
        assert_eq!(
            events(&mut s),
            [Event::Completed { id, reply: OwnedReply::Ack { status: AckStatus::Ok } }]
        );
    }

    #[test]
    fn wrong_seq_fails() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::TwsPortGet).unwrap();
        let _ = transmit(&mut s, t(0));
        s.handle_input(t(1), &PORT_REPLY_SEQ2);
        assert_eq!(
            events(&mut s),
            [Event::Failed { id, error: MgmtError::SeqMismatch { expected: 1, got: 2 } }]
        );
        assert_eq!(s.outstanding(), None);
    }

    #[test]
    fn ack_instead_of_specific_reply_fails() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::StatusGet).unwrap();
        let _ = transmit(&mut s, t(0));
        s.handle_input(t(1), &ACK_OK_SEQ1);
        assert_eq!(
            events(&mut s),
            [Event::Failed {
                id,
                error: MgmtError::UnexpectedReply { expected: Op::StatusGetReply, got: Op::Ack }
            }]
        );
    }

    #[test]
    fn specific_reply_instead_of_ack_fails() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::DevSendEnd).unwrap();
        let _ = transmit(&mut s, t(0));
        s.handle_input(t(1), &PORT_REPLY_SEQ1);
        assert_eq!(
            events(&mut s),
            [Event::Failed {
                id,
                error: MgmtError::UnexpectedReply { expected: Op::Ack, got: Op::TwsPortGetReply }
            }]
        );
    }

    #[test]
    fn non_ok_ack_fails_with_the_status() {
        let mut s = Session::new();
        let req = Request::CapsSet {
            table: EepromTable::default(),
            caps: Capabilities::default(),
            key: CapKey::default(),
        };
        let id = s.send(t(0), req).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap().len(), 49);
        s.handle_input(t(1), &ACK_BADKEY_SEQ1);
        assert_eq!(events(&mut s), [Event::Failed { id, error: MgmtError::Device(AckStatus::BadKey) }]);
    }

    #[test]
    fn malformed_reply_fails_with_the_decode_error() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::StatusGet).unwrap();
        let _ = transmit(&mut s, t(0));
        // Protocol 1.3's 7-byte STATUS_GET_REPLY (rule 7).
        s.handle_input(t(1), &[0x07, 0x00, 0x01, 0x00, 0x91, 0x10, 0x01]);
        assert!(matches!(
            events(&mut s)[..],
            [Event::Failed { id: i, error: MgmtError::Truncated { what: "STATUS_GET_REPLY", .. } }] if i == id
        ));
        // A 1-byte reply (rule 3).
        let id = s.send(t(2), Request::StatusGet).unwrap();
        let _ = transmit(&mut s, t(2));
        s.handle_input(t(3), &[0x19]);
        assert!(
            matches!(events(&mut s)[..], [Event::Failed { id: i, error: MgmtError::Truncated { .. } }] if i == id)
        );
    }

    #[test]
    fn ser_recv_must_be_as_long_as_the_command() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::SerSend { data: &[0x01, 0x10, 0x00, 0x00] }).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x09, 0x00, 0x01, 0x00, 0x37, 0x01, 0x10, 0x00, 0x00]);
        s.handle_input(t(1), &[0x08, 0x00, 0x01, 0x00, 0xB7, 0x01, 0x10, 0x40]);
        assert!(matches!(
            events(&mut s)[..],
            [Event::Failed { error: MgmtError::Truncated { what: "SER_RECV", .. }, .. }]
        ));
        let id2 = s.send(t(2), Request::SerSend { data: &[0x01, 0x10, 0x00, 0x00] }).unwrap();
        let _ = transmit(&mut s, t(2));
        s.handle_input(t(3), &[0x09, 0x00, 0x02, 0x00, 0xB7, 0x01, 0x10, 0x40, 0x01]);
        let ev = events(&mut s);
        let [Event::Completed { id: done, reply }] = &ev[..] else { panic!("{ev:?}") };
        assert_ne!(id, id2);
        assert_eq!(*done, id2);
        assert_eq!(reply.to_string(), "SER_RECV CARD_INFO addr=0x10 type=4.0 PIC");
    }

    #[test]
    fn timeout_then_late_reply_is_stale() {
        let mut s = Session::new();
        let id = s.send(t(0), Request::StatusGet).unwrap();
        let _ = transmit(&mut s, t(100));
        assert_eq!(s.poll_timeout(), Some(t(2100)));
        s.handle_timeout(t(2099));
        assert!(events(&mut s).is_empty());
        s.handle_timeout(t(2100));
        assert_eq!(events(&mut s), [Event::Failed { id, error: MgmtError::Timeout { op: Op::StatusGet } }]);
        assert_eq!(s.stats().timeouts, 1);
        // The late ACK for seq 1 is discarded, with or without a newer request outstanding.
        s.handle_input(t(2200), &ACK_OK_SEQ1);
        assert_eq!(s.stats().stale, 1);
        let id2 = s.send(t(2300), Request::DevSendEnd).unwrap();
        assert_eq!(transmit(&mut s, t(2300)).unwrap()[2], 2);
        s.handle_input(t(2301), &ACK_OK_SEQ1);
        assert_eq!(s.stats().stale, 2);
        assert_eq!(s.outstanding(), Some(id2));
        s.handle_input(t(2302), &ACK_OK_SEQ2);
        assert_eq!(
            events(&mut s),
            [Event::Completed { id: id2, reply: OwnedReply::Ack { status: AckStatus::Ok } }]
        );
    }

    #[test]
    fn reply_at_the_deadline_is_late() {
        let cfg = SessionConfig::new().with_reply_timeout(Duration::from_millis(50));
        let mut s = Session::with_config(cfg);
        let id = s.send(t(0), Request::TwsPortGet).unwrap();
        let _ = transmit(&mut s, t(0));
        assert_eq!(s.poll_timeout(), Some(t(50)));
        s.handle_input(t(50), &PORT_REPLY_SEQ1);
        assert_eq!(events(&mut s), [Event::Failed { id, error: MgmtError::Timeout { op: Op::TwsPortGet } }]);
        assert_eq!(s.stats().stale, 1);
    }

    #[test]
    fn queued_requests_go_one_at_a_time() {
        let mut s = Session::new();
        let a = s.send(t(0), Request::StatusGet).unwrap();
        let b = s.send(t(0), Request::TwsWdModeSet { armed: false }).unwrap();
        let c = s.send(t(0), Request::TwsPortGet).unwrap();
        assert_eq!(s.queued(), 3);
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x05, 0x00, 0x01, 0x00, 0x11]);
        assert_eq!(transmit(&mut s, t(0)), None, "second request must wait for the first reply");
        let mut status = [0u8; 25];
        status[..7].copy_from_slice(&[0x19, 0x00, 0x01, 0x00, 0x91, 0x08, 0x00]);
        s.handle_input(t(1), &status);
        assert_eq!(transmit(&mut s, t(1)).unwrap(), [0x06, 0x00, 0x02, 0x00, 0x31, 0x00]);
        assert_eq!(transmit(&mut s, t(1)), None);
        s.handle_input(t(2), &ACK_OK_SEQ2);
        assert_eq!(transmit(&mut s, t(2)).unwrap(), [0x05, 0x00, 0x03, 0x00, 0x35]);
        s.handle_input(t(3), &[0x06, 0x00, 0x03, 0x00, 0xB5, 0x01]);
        let ids: Vec<_> = events(&mut s)
            .into_iter()
            .map(|e| match e {
                Event::Completed { id, .. } => id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [a, b, c]);
    }

    #[test]
    fn queue_is_bounded() {
        let cfg = SessionConfig::new().with_max_queued(2);
        let mut s = Session::with_config(cfg);
        s.send(t(0), Request::StatusGet).unwrap();
        s.send(t(0), Request::StatusGet).unwrap();
        assert_eq!(s.send(t(0), Request::StatusGet), Err(MgmtError::QueueFull { capacity: 2 }));
        // Emit errors are reported by send and queue nothing.
        let _ = transmit(&mut s, t(0));
        assert!(s.send(t(0), Request::TwsPortSet { port: 2 }).is_err());
        assert_eq!(s.queued(), 1);
    }

    #[test]
    fn fire_and_forget_completes_on_transmit() {
        let mut s = Session::new();
        let jump = s.send(t(0), Request::TwsPortSet { port: 1 }).unwrap();
        let status = s.send(t(0), Request::StatusGet).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x06, 0x00, 0x01, 0x00, 0x34, 0x01]);
        assert_eq!(events(&mut s), [Event::Sent { id: jump }]);
        assert_eq!(s.poll_timeout(), None);
        // Nothing blocks the next request.
        assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x05, 0x00, 0x02, 0x00, 0x11]);
        // A stray ACK to the jump (seq 1) is discarded; STATUS_GET stays outstanding.
        s.handle_input(t(1), &ACK_OK_SEQ1);
        assert_eq!(s.stats().stale, 1);
        assert_eq!(s.outstanding(), Some(status));
        for op in [Request::Renum, Request::Reset, Request::HalfReset] {
            let mut s = Session::new();
            let id = s.send(t(0), op).unwrap();
            assert_eq!(transmit(&mut s, t(0)).unwrap(), [0x05, 0x00, 0x01, 0x00, u8::from(op.op())]);
            assert_eq!(events(&mut s), [Event::Sent { id }]);
            assert!(s.is_idle());
        }
    }

    #[test]
    fn unsolicited_input_is_counted_and_discarded() {
        let mut s = Session::new();
        s.handle_input(t(0), &ACK_OK_SEQ1);
        s.handle_input(t(0), &[]);
        s.handle_input(t(0), &[0xFF; 3]);
        assert_eq!(s.stats().unsolicited, 3);
        assert!(events(&mut s).is_empty());
        // The session is unaffected: the first request still gets seq 1.
        s.send(t(0), Request::StatusGet).unwrap();
        assert_eq!(transmit(&mut s, t(0)).unwrap()[2..4], [0x01, 0x00]);
    }

    #[test]
    fn disconnect_fails_everything_pending_and_resets_seq() {
        let mut s = Session::new();
        let a = s.send(t(0), Request::StatusGet).unwrap();
        let b = s.send(t(0), Request::CapsGet).unwrap();
        let c = s.send(t(0), Request::ExtrainfoGet).unwrap();
        let _ = transmit(&mut s, t(0));
        s.handle_disconnect();
        assert_eq!(events(&mut s), [a, b, c].map(|id| Event::Failed { id, error: MgmtError::Disconnected }));
        assert_eq!(s.poll_timeout(), None);
        assert!(s.is_idle());
        assert_eq!(s.stats().failed, 3);
        let d = s.send(t(10), Request::StatusGet).unwrap();
        assert!(d > c);
        assert_eq!(transmit(&mut s, t(10)).unwrap()[2..4], [0x01, 0x00]);
    }

    #[test]
    fn small_transmit_buffer_fails_the_request() {
        let mut s = Session::new();
        let a = s.send(t(0), Request::ExtrainfoSet { text: [0; 24] }).unwrap();
        let b = s.send(t(0), Request::StatusGet).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(s.poll_transmit(t(0), &mut buf), Some(5));
        assert_eq!(
            events(&mut s),
            [Event::Failed {
                id: a,
                error: MgmtError::NoRoom { what: "EXTRAINFO_SET", needed: 29, available: 8 }
            }]
        );
        assert_eq!(s.outstanding(), Some(b));
    }

    #[test]
    fn seq_wraps_skipping_zero() {
        let mut s = Session::new();
        let mut buf = [0u8; 8];
        for expected in (1..=u16::MAX).chain([1, 2]) {
            s.send(t(0), Request::Renum).unwrap();
            assert_eq!(s.poll_transmit(t(0), &mut buf), Some(5));
            assert_eq!(u16::from_le_bytes([buf[2], buf[3]]), expected);
            let _ = s.poll_event();
        }
    }
}
