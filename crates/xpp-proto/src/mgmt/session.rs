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
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { reply_timeout: Self::DEFAULT_REPLY_TIMEOUT, max_queued: Self::DEFAULT_MAX_QUEUED }
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
    /// full; nothing is queued then.
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
