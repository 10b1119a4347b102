//! `mmu_notifier` across kernel generations: which primitive flushes the
//! secondary TLBs (IOMMU IOTLB + device ATC) under each `--notify` policy.
//!
//! A kernel path names the primitive it calls, tagged with what the seed
//! patch (Linux 4.15, 0f10851ea475) did to that call; the policy alone
//! decides whether the primitive reaches the IOMMU driver.

use std::fmt;
use std::str::FromStr;

/// Which kernel generation's `mmu_notifier` behaviour to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// 4.13/4.14: `invalidate_range` at every `*_clear_flush_notify` and
    /// again inside `invalidate_range_end`.
    Always,
    /// 4.15: the seed's choices (notify under the PTL only in cases A and
    /// B; `_only_end` where the notify already happened).
    Seed,
    /// 6.6+: `arch_invalidate_secondary_tlbs` wherever the CPU TLB is flushed.
    Arch,
    /// The bug the seed warns about: every secondary flush deferred to E.
    EndOnly,
}

impl Policy {
    pub const ALL: [Policy; 4] = [Policy::Always, Policy::Seed, Policy::Arch, Policy::EndOnly];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Always => "always",
            Policy::Seed => "seed",
            Policy::Arch => "arch",
            Policy::EndOnly => "end-only",
        }
    }

    /// Does `prim` flush the secondary TLBs under this policy?
    pub fn flushes(self, prim: Prim) -> bool {
        use Prim::*;
        match (self, prim) {
            (_, Unbind | Release | KvaRange) => true,
            (_, FlushTlbKernel) => false,
            (Policy::Always | Policy::Seed | Policy::Arch, TlbFlushMmu) => true,
            (Policy::EndOnly, TlbFlushMmu) => false,
            (Policy::Always, ClearFlushNotify { .. } | InvalidateRange { .. } | End { .. }) => true,
            (Policy::Always, ClearFlush | FlushTlbRange | TlbBatch) => false,
            (Policy::Seed, ClearFlushNotify { seed_keeps } | InvalidateRange { seed_keeps }) => {
                seed_keeps
            }
            (Policy::Seed, End { seed_only_end }) => !seed_only_end,
            (Policy::Seed, ClearFlush | FlushTlbRange | TlbBatch) => false,
            (Policy::Arch, ClearFlushNotify { .. } | ClearFlush | FlushTlbRange | TlbBatch) => true,
            (Policy::Arch, InvalidateRange { .. } | End { .. }) => false,
            (Policy::EndOnly, End { .. }) => true,
            (Policy::EndOnly, _) => false,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown notify policy '{}': use always, seed, arch or end-only",
                    s.escape_debug()
                )
            })
    }
}

/// The primitives a kernel path calls where a PTE changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    /// `ptep_clear_flush_notify` / `pmdp_huge_clear_flush_notify` (cfn).
    /// `seed_keeps`: the seed left this call a notify (false where it
    /// became a plain `*_clear_flush`).
    ClearFlushNotify { seed_keeps: bool },
    /// `ptep_clear_flush` / `pmdp_huge_clear_flush` (cf): CPU TLB only
    /// before 6.6.
    ClearFlush,
    /// An explicit `mmu_notifier_invalidate_range` (IR) call.
    InvalidateRange { seed_keeps: bool },
    /// A CPU TLB range flush outside `*_clear_flush` (`flush_tlb_range`,
    /// `flush_hugetlb_tlb_range`, `tlb_flush_mmu`).
    FlushTlbRange,
    /// `arch_tlbbatch_add_pending`: reclaim's deferred CPU flush
    /// (TTU_BATCH_FLUSH). From 6.6 it calls the secondary hook at once,
    /// under the PTL: x86 with `(0, -1UL)`, arm64 with the page.
    TlbBatch,
    /// `tlb_flush_mmu_tlbonly`: the mmu_gather's CPU TLB flush, which
    /// calls `mmu_notifier_invalidate_range` since 2014 (and, from 6.6,
    /// `arch_invalidate_secondary_tlbs` through the CPU flush).
    TlbFlushMmu,
    /// `mmu_notifier_invalidate_range_end` (E); `seed_only_end`: the seed
    /// made it `_only_end` (Eo), E without the `invalidate_range` callback.
    End { seed_only_end: bool },
    /// Not a notifier call: the IOMMU driver's unbind of the process
    /// (`iommu_sva_unbind_device`), the same under every policy.
    Unbind,
    /// `mmu_notifier_release` (exit_mmap): the driver's release callback,
    /// called under every policy, before the mm's pages are unmapped.
    Release,
    /// `flush_tlb_kernel_range`: the CPU TLB flush of a kernel range. No
    /// generation notifies a secondary TLB from it (init_mm has no
    /// notifier; 6.6's hook is in the flush of a user mm).
    FlushTlbKernel,
    /// Not a notifier call: `iommu_sva_invalidate_kva_range` (the fix of
    /// the kernel page-table free, late 2025), which calls every bound
    /// mm's `arch_invalidate_secondary_tlbs` itself, under every policy.
    KvaRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cow_under_each_policy() {
        let cfn = Prim::ClearFlushNotify { seed_keeps: true };
        let e = Prim::End {
            seed_only_end: true,
        };
        // (under the PTL, at E)
        let table = [
            (Policy::Always, true, true),
            (Policy::Seed, true, false),
            (Policy::Arch, true, false),
            (Policy::EndOnly, false, true),
        ];
        for (p, at_clear, at_end) in table {
            assert_eq!(p.flushes(cfn), at_clear, "{p} at cfn");
            assert_eq!(p.flushes(e), at_end, "{p} at E");
        }
    }

    #[test]
    fn seed_drops_downgrade_notifies() {
        let dropped = Prim::ClearFlushNotify { seed_keeps: false };
        assert!(Policy::Always.flushes(dropped));
        assert!(!Policy::Seed.flushes(dropped));
        assert!(!Policy::Seed.flushes(Prim::InvalidateRange { seed_keeps: false }));
        assert!(Policy::Seed.flushes(Prim::End {
            seed_only_end: false
        }));
        assert!(Policy::Arch.flushes(Prim::ClearFlush));
        assert!(!Policy::Arch.flushes(Prim::InvalidateRange { seed_keeps: true }));
    }

    #[test]
    fn names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert!("4.15".parse::<Policy>().is_err());
    }
}
