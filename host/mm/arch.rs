//! The CPU's TLB flush as Linux 6.6+ hands it to the secondary TLBs.
//!
//! From 6.6 (6bbd42e2df8f, "mmu_notifiers: call invalidate_range() when
//! invalidating TLBs") the architecture's TLB-flush code calls
//! `mmu_notifier_arch_invalidate_secondary_tlbs(mm, start, end)` itself,
//! after it has decided how to flush the CPU. A range too long to flush
//! entry by entry becomes a flush of the whole address space, and the
//! notifier then gets `(0, -1UL)`:
//!
//! - x86 (`arch/x86/mm/tlb.c` `flush_tlb_mm_range`): more than
//!   `tlb_single_page_flush_ceiling` (33) entries of the flush's stride;
//! - arm64 (`arch/arm64/include/asm/tlbflush.h` `__flush_tlb_range`, a CPU
//!   without FEAT_TLBIRANGE): `MAX_TLBI_OPS` (512) entries or more, flushed
//!   by `flush_tlb_mm`.
//!
//! The stride is the size of one flushed entry: 4 KiB for `flush_tlb_range`
//! of small pages and for an mmu_gather of PTEs, 2 MiB for a hugetlb VMA
//! and for `flush_pmd_tlb_range`. A `*_clear_flush` flushes one entry.
//!
//! Which CPU follows from the IOMMU driver: the Intel and AMD drivers run on
//! x86, the SMMUv3 on arm64. The generic and batched drivers stand for no
//! platform and get the range as the path gives it.

use crate::iommu::DriverKind;

/// The CPU architecture whose TLB-flush code calls the 6.6+ hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cpu {
    /// x86-64: `flush_tlb_mm_range`.
    X86,
    /// arm64 without FEAT_TLBIRANGE: `__flush_tlb_range`.
    Arm64,
    /// No architecture: the range as given.
    Unspecified,
}

/// x86's `tlb_single_page_flush_ceiling` (its default).
pub const X86_FLUSH_CEILING: u64 = 33;
/// arm64's `MAX_TLBI_OPS` (`PTRS_PER_PTE`).
pub const ARM64_MAX_TLBI_OPS: u64 = 512;

impl Cpu {
    /// The CPU the IOMMU driver `kind` is found with.
    pub fn of(kind: DriverKind) -> Cpu {
        match kind {
            DriverKind::Intel { .. } | DriverKind::Amd | DriverKind::AmdSva => Cpu::X86,
            DriverKind::Arm { .. } | DriverKind::Arm511 => Cpu::Arm64,
            DriverKind::Generic | DriverKind::Batched => Cpu::Unspecified,
        }
    }

    /// The range `arch_invalidate_secondary_tlbs` gets from
    /// `arch_tlbbatch_add_pending` for the page `[start, end)`: x86 passes
    /// `(0, -1UL)` (its batch flushes whole address spaces), arm64 the page
    /// (`__flush_tlb_page_nosync`).
    pub fn batched_range(self, start: u64, end: u64) -> (u64, u64) {
        match self {
            Cpu::X86 => (0, u64::MAX),
            Cpu::Arm64 | Cpu::Unspecified => (start, end),
        }
    }

    /// The range `arch_invalidate_secondary_tlbs` gets for a CPU flush of
    /// `[start, end)` in entries of `stride` bytes: the same range, or
    /// `(0, u64::MAX)` where the CPU flushes the whole address space.
    pub fn secondary_range(self, start: u64, end: u64, stride: u64) -> (u64, u64) {
        let entries = end.saturating_sub(start) / stride.max(1);
        let whole = match self {
            Cpu::X86 => entries > X86_FLUSH_CEILING,
            Cpu::Arm64 => entries >= ARM64_MAX_TLBI_OPS,
            Cpu::Unspecified => false,
        };
        if whole {
            (0, u64::MAX)
        } else {
            (start, end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::PAGE_SIZE;

    const HUGE: u64 = 2 << 20;

    #[test]
    fn x86_flushes_everything_above_33_entries() {
        let a = 0x7f00_0000_0000;
        let x86 = Cpu::X86;
        assert_eq!(
            x86.secondary_range(a, a + 33 * PAGE_SIZE, PAGE_SIZE),
            (a, a + 33 * PAGE_SIZE)
        );
        assert_eq!(
            x86.secondary_range(a, a + 34 * PAGE_SIZE, PAGE_SIZE),
            (0, u64::MAX)
        );
        // a 2 MiB entry is one entry at its own stride, 512 at 4 KiB
        assert_eq!(x86.secondary_range(a, a + HUGE, HUGE), (a, a + HUGE));
        assert_eq!(x86.secondary_range(a, a + HUGE, PAGE_SIZE), (0, u64::MAX));
    }

    #[test]
    fn arm64_flushes_everything_from_512_entries() {
        let a = 0x7f00_0000_0000;
        let arm = Cpu::Arm64;
        assert_eq!(
            arm.secondary_range(a, a + 511 * PAGE_SIZE, PAGE_SIZE),
            (a, a + 511 * PAGE_SIZE)
        );
        assert_eq!(arm.secondary_range(a, a + HUGE, PAGE_SIZE), (0, u64::MAX));
        assert_eq!(
            arm.secondary_range(a, a + 4 * HUGE, HUGE),
            (a, a + 4 * HUGE)
        );
    }

    #[test]
    fn reclaim_s_batch_is_everything_on_x86_only() {
        let a = 0x7f00_0000_0000;
        assert_eq!(Cpu::X86.batched_range(a, a + PAGE_SIZE), (0, u64::MAX));
        assert_eq!(
            Cpu::Arm64.batched_range(a, a + PAGE_SIZE),
            (a, a + PAGE_SIZE)
        );
        assert_eq!(
            Cpu::Unspecified.batched_range(a, a + PAGE_SIZE),
            (a, a + PAGE_SIZE)
        );
    }

    #[test]
    fn the_driver_names_the_cpu() {
        assert_eq!(Cpu::of(DriverKind::INTEL), Cpu::X86);
        assert_eq!(Cpu::of(DriverKind::Amd), Cpu::X86);
        assert_eq!(Cpu::of(DriverKind::Arm { btm: true }), Cpu::Arm64);
        let a = 0x7f00_0000_0000;
        let far = a + 4096 * PAGE_SIZE;
        assert_eq!(
            Cpu::of(DriverKind::Generic).secondary_range(a, far, PAGE_SIZE),
            (a, far)
        );
    }
}
