//! PRI PCM timeslot mapping (docs/reference/xpp-protocol.md §9.3).
//!
//! A PRI XPD's PCM `lines` bits are physical timeslots, not logical channels:
//! E1 logical channel `i` (0-based, 31 channels) is bit `i + 1` (bit 0, timeslot 0, unused);
//! T1 logical channel `i` (24 channels) is bit `i + i/3 + 1`, so bits 0, 4, 8, .., 28 are never
//! used. Samples follow ascending physical bit order, which is also ascending logical order.

use super::WireError;

/// Line protocol of a PRI port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum PriProtocol {
    /// E1: 31 channels, A-law, D-channel = logical 15 (timeslot 16).
    E1,
    /// T1: 24 channels, u-law, D-channel = logical 23 (channel 24).
    T1,
    /// J1: rejected by the reference driver.
    J1,
}

/// The logical-channel <-> physical-bit mapping of one PRI port (E1 or T1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TimeslotMap {
    t1: bool,
}

/// Physical bits an E1 uses: 1..=31.
const E1_BITS: u32 = 0xFFFF_FFFE;
/// Physical bits a T1 uses: 1..=31 except multiples of 4.
const T1_BITS: u32 = 0xEEEE_EEEE;

impl TimeslotMap {
    /// The E1 mapping.
    pub const E1: Self = Self { t1: false };
    /// The T1 mapping.
    pub const T1: Self = Self { t1: true };

    /// The mapping for `protocol`; J1 is rejected as the reference driver does.
    pub const fn new(protocol: PriProtocol) -> Result<Self, WireError> {
        match protocol {
            PriProtocol::E1 => Ok(Self::E1),
            PriProtocol::T1 => Ok(Self::T1),
            PriProtocol::J1 => {
                Err(WireError::Invalid { what: "PRI protocol", offset: 0, reason: "J1 is not supported" })
            }
        }
    }

    /// The protocol of this mapping.
    pub const fn protocol(self) -> PriProtocol {
        if self.t1 { PriProtocol::T1 } else { PriProtocol::E1 }
    }

    /// Logical channels: 31 (E1) or 24 (T1).
    pub const fn channels(self) -> u8 {
        if self.t1 { 24 } else { 31 }
    }

    /// The default D-channel as a logical channel: 15 (E1 timeslot 16) or 23 (T1 channel 24).
    pub const fn dchan(self) -> u8 {
        if self.t1 { 23 } else { 15 }
    }

    /// Every logical channel's bit set: the mask of valid logical channels.
    pub const fn logical_mask(self) -> u32 {
        if self.t1 { (1 << 24) - 1 } else { (1 << 31) - 1 }
    }

    /// The physical bits this protocol uses.
    pub const fn physical_mask(self) -> u32 {
        if self.t1 { T1_BITS } else { E1_BITS }
    }

    /// The physical `lines` bit of logical channel `logical`, or `None` if out of range.
    pub const fn physical_bit(self, logical: u8) -> Option<u8> {
        if logical >= self.channels() {
            None
        } else if self.t1 {
            Some(logical + logical / 3 + 1)
        } else {
            Some(logical + 1)
        }
    }

    /// The logical channel carried in physical bit `bit`, or `None` if the bit is unused.
    pub const fn logical_channel(self, bit: u8) -> Option<u8> {
        if bit > 31 || self.physical_mask() & (1 << bit) == 0 {
            None
        } else if self.t1 {
            Some(bit - bit / 4 - 1)
        } else {
            Some(bit - 1)
        }
    }

    /// Converts a logical-channel mask into a physical `lines` mask.
    ///
    /// Decision: bits at or above [`TimeslotMap::channels`] are ignored (they name no
    /// channel); callers that must not lose them compare with [`TimeslotMap::logical_mask`].
    // Decision: out-of-range logical bits are dropped rather than reported (see doc).
    pub const fn to_physical(self, logical: u32) -> u32 {
        let mut out = 0;
        let mut i = 0;
        while i < self.channels() {
            if logical & (1 << i) != 0
                && let Some(b) = self.physical_bit(i)
            {
                out |= 1 << b;
            }
            i += 1;
        }
        out
    }

    /// Converts a physical `lines` mask (as received in PCM_READ) into a logical mask.
    ///
    /// Decision: unused physical bits (bit 0; T1 multiples of 4) are ignored; the PCM data of
    /// such a bit, if a device sent it, belongs to no channel. Compare with
    /// [`TimeslotMap::physical_mask`] to detect them.
    // Decision: unused physical bits are dropped rather than reported (see doc).
    pub const fn to_logical(self, physical: u32) -> u32 {
        let mut out = 0;
        let mut b = 0;
        while b < 32 {
            if physical & (1 << b) != 0
                && let Some(i) = self.logical_channel(b)
            {
                out |= 1 << i;
            }
            b += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j1_rejected() {
        assert!(TimeslotMap::new(PriProtocol::J1).is_err());
        assert_eq!(TimeslotMap::new(PriProtocol::E1), Ok(TimeslotMap::E1));
        assert_eq!(TimeslotMap::new(PriProtocol::T1).map(TimeslotMap::protocol), Ok(PriProtocol::T1));
    }

    #[test]
    fn e1_exhaustive() {
        let m = TimeslotMap::E1;
        for i in 0..31u8 {
            let b = m.physical_bit(i).unwrap();
            assert_eq!(b, i + 1);
            assert_eq!(m.logical_channel(b), Some(i));
            assert_eq!(m.to_physical(1 << i), 1 << b);
            assert_eq!(m.to_logical(1 << b), 1 << i);
        }
        assert_eq!(m.physical_bit(31), None);
        assert_eq!(m.logical_channel(0), None);
        assert_eq!(m.logical_channel(32), None);
        // All 31 channels: the §14 observed E1 packet's lines = 0xFFFFFFFE.
        assert_eq!(m.to_physical(m.logical_mask()), 0xFFFF_FFFE);
        assert_eq!(m.to_logical(0xFFFF_FFFF), m.logical_mask());
        // D-channel: timeslot 16.
        assert_eq!(m.physical_bit(m.dchan()), Some(16));
    }

    #[test]
    fn t1_exhaustive() {
        let m = TimeslotMap::T1;
        let mut seen = 0u32;
        let mut prev = 0u8;
        for i in 0..24u8 {
            let b = m.physical_bit(i).unwrap();
            assert_eq!(b, i + i / 3 + 1);
            assert_ne!(b % 4, 0, "T1 never uses multiples of 4");
            assert!(i == 0 || b > prev, "ascending");
            prev = b;
            assert_eq!(m.logical_channel(b), Some(i));
            assert_eq!(m.to_physical(1 << i), 1 << b);
            assert_eq!(m.to_logical(1 << b), 1 << i);
            seen |= 1 << b;
        }
        assert_eq!(seen, m.physical_mask());
        assert_eq!(m.physical_bit(24), None);
        for b in (0..32).step_by(4) {
            assert_eq!(m.logical_channel(b), None);
        }
        assert_eq!(m.physical_bit(23), Some(31));
        assert_eq!(m.to_physical(m.logical_mask()), T1_BITS);
        assert_eq!(m.to_logical(u32::MAX), m.logical_mask());
    }

    #[test]
    fn masks_round_trip() {
        for m in [TimeslotMap::E1, TimeslotMap::T1] {
            for mask in [0u32, 1, 0x5555_5555, 0xAAAA_AAAA, 0x0012_3456, u32::MAX] {
                let logical = mask & m.logical_mask();
                assert_eq!(m.to_logical(m.to_physical(mask)), logical);
                assert_eq!(m.to_physical(mask).count_ones(), logical.count_ones());
            }
        }
    }
}
