//! The memory-mapped registers (specification chapter 5): offsets in the
//! IOMMU's 4 KiB register page, and the fields the host writes to set up
//! the device directory and the queues.

use super::{Field, PPN};

pub const CAPABILITIES: u32 = 0x000;
pub const FCTL: u32 = 0x008;
pub const DDTP: u32 = 0x010;
pub const CQB: u32 = 0x018;
pub const CQH: u32 = 0x020;
pub const CQT: u32 = 0x024;
pub const FQB: u32 = 0x028;
pub const FQH: u32 = 0x030;
pub const FQT: u32 = 0x034;
pub const PQB: u32 = 0x038;
pub const PQH: u32 = 0x040;
pub const PQT: u32 = 0x044;
pub const CQCSR: u32 = 0x048;
pub const FQCSR: u32 = 0x04c;
pub const PQCSR: u32 = 0x050;
pub const IPSR: u32 = 0x054;
pub const ICVEC: u32 = 0x2f8;

/// Every register this module names, with its name and width in bytes (as
/// the specification's register table lays them out).
pub const ALL: [(&str, u32, u8); 17] = [
    ("capabilities", CAPABILITIES, 8),
    ("fctl", FCTL, 4),
    ("ddtp", DDTP, 8),
    ("cqb", CQB, 8),
    ("cqh", CQH, 4),
    ("cqt", CQT, 4),
    ("fqb", FQB, 8),
    ("fqh", FQH, 4),
    ("fqt", FQT, 4),
    ("pqb", PQB, 8),
    ("pqh", PQH, 4),
    ("pqt", PQT, 4),
    ("cqcsr", CQCSR, 4),
    ("fqcsr", FQCSR, 4),
    ("pqcsr", PQCSR, 4),
    ("ipsr", IPSR, 4),
    ("icvec", ICVEC, 8),
];

/// `capabilities` bits the host checks before it uses a mode.
pub mod caps {
    pub const VERSION: super::Field = super::Field::new(7, 0);
    pub const SV39: u64 = 1 << 9;
    pub const SV48: u64 = 1 << 10;
    /// Extended (64-byte) device contexts: MSI address translation.
    pub const MSI_FLAT: u64 = 1 << 22;
    pub const ATS: u64 = 1 << 25;
    /// Interrupt generation: 0 MSI, 1 wired, 2 both.
    pub const IGS: super::Field = super::Field::new(29, 28);
    /// Process directories of 8, 17 and 20-bit process IDs.
    pub const PD8: u64 = 1 << 38;
    pub const PD17: u64 = 1 << 39;
    pub const PD20: u64 = 1 << 40;
}

/// `fctl`: wired-signalled interrupts instead of MSIs.
pub const FCTL_WSI: u32 = 1 << 1;

/// `ddtp.iommu_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DdtMode {
    Off = 0,
    Bare = 1,
    OneLevel = 2,
    TwoLevel = 3,
    ThreeLevel = 4,
}

const DDTP_MODE: Field = Field::new(3, 0);
/// `ddtp.busy`: a write of ddtp is still taking effect.
pub const DDTP_BUSY: u64 = 1 << 4;

/// The `ddtp` value for a device directory rooted at page `ppn`; None when
/// the page number does not fit.
pub fn ddtp(mode: DdtMode, ppn: u64) -> Option<u64> {
    Some(DDTP_MODE.put(mode as u64)? | PPN.put(ppn)?)
}

/// A `cqb`/`fqb`/`pqb` value: a queue of `entries` (a power of two, at
/// least 2) at page `ppn`. The register holds log2(entries) - 1.
pub fn queue_base(entries: u64, ppn: u64) -> Option<u64> {
    if entries < 2 || !entries.is_power_of_two() {
        return None;
    }
    let log2sz_minus_1 = u64::from(entries.trailing_zeros()) - 1;
    Some(Field::new(4, 0).put(log2sz_minus_1)? | PPN.put(ppn)?)
}

/// `cqcsr`/`fqcsr`/`pqcsr` bits.
pub mod csr {
    /// Enable the queue (software).
    pub const EN: u32 = 1 << 0;
    /// Interrupt on a new entry (software).
    pub const IE: u32 = 1 << 1;
    /// A memory fault reading or writing the queue (hardware; write 1 to
    /// clear).
    pub const MF: u32 = 1 << 8;
    /// `cqcsr`: a command timed out (an ATS invalidation).
    pub const CMD_TO: u32 = 1 << 9;
    /// `cqcsr`: an illegal or unsupported command.
    pub const CMD_ILL: u32 = 1 << 10;
    /// `cqcsr`: an IOFENCE.C with WSI completed (write 1 to clear).
    pub const FENCE_W_IP: u32 = 1 << 11;
    /// The queue is on (hardware's answer to EN).
    pub const ON: u32 = 1 << 16;
    /// The queue is busy taking a change of EN.
    pub const BUSY: u32 = 1 << 17;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_to_their_width_and_do_not_overlap() {
        for (i, (name, off, width)) in ALL.iter().enumerate() {
            assert_eq!(off % u32::from(*width), 0, "{name}");
            for (other, o2, w2) in &ALL[i + 1..] {
                let apart = off + u32::from(*width) <= *o2 || o2 + u32::from(*w2) <= *off;
                assert!(apart, "{name} and {other} overlap");
            }
        }
    }

    #[test]
    fn ddtp_and_queue_bases_encode_as_the_specification_lays_them_out() {
        // three-level directory at page 0x80001: mode 4, PPN at bit 10
        assert_eq!(ddtp(DdtMode::ThreeLevel, 0x80001), Some(4 | 0x80001 << 10));
        assert_eq!(ddtp(DdtMode::OneLevel, 1 << 44), None);
        // 1024 entries: log2 = 10, the register holds 9
        assert_eq!(queue_base(1024, 0x1234), Some(9 | 0x1234 << 10));
        assert_eq!(queue_base(2, 1), Some(1 << 10));
        assert_eq!(queue_base(3, 1), None);
        assert_eq!(queue_base(1, 1), None);
    }
}
