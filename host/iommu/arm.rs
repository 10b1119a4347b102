//! ARM SMMUv3 SVA: `drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c`,
//! `arm_smmu_mm_invalidate_range` (Linux 5.11+; named
//! `arm_smmu_mm_arch_invalidate_secondary_tlbs` from 6.6), as it stands
//! after "iommu/arm-smmu-v3: Fix soft lockup triggered by
//! arm_smmu_mm_invalidate_range" (d5afb4b47e13, 6.6, in stable) and the
//! `size = end - start` fix.
//!
//! - `size = end - start`; an SMMU without range invalidation (no
//!   `ARM_SMMU_FEAT_RANGE_INV`, as here) turns `size >= CMDQ_MAX_TLBI_OPS *
//!   PAGE_SIZE` (512 pages of 4 KiB) into `size = 0`, "everything".
//! - Unless the SMMU snoops the CPU's broadcast TLBI (`ARM_SMMU_FEAT_BTM`):
//!   `size == 0`: one CMD_TLBI_NH_ASID (`arm_smmu_tlb_inv_asid`) and a
//!   CMD_SYNC; else `arm_smmu_tlb_inv_range_asid` -> `__arm_smmu_tlb_inv_range`:
//!   one CMD_TLBI_NH_VA per page of `[start, start + size)`, batched
//!   (`arm_smmu_cmdq_batch_add`: a full batch is issued without a sync),
//!   then `arm_smmu_cmdq_batch_submit`, which ends with one CMD_SYNC.
//! - Then `arm_smmu_atc_inv_domain`: one ATC_INV per ATS stream from
//!   `arm_smmu_atc_inv_to_cmd` (`size == 0`: `ATC_INV_SIZE_ALL`; else the
//!   span `fls_long(page_start ^ page_end)` pages, the smallest naturally
//!   aligned power of two holding the range, base aligned down to it), then
//!   a CMD_SYNC.
//!
//! `arm@5.11` ([`plan_5_11`]) is the driver from SVA's arrival (5.11)
//! until "iommu/arm-smmu-v3: Fix size calculation in
//! arm_smmu_mm_invalidate_range()" (Nicolin Chen, 2022, in stable): `size
//! = end - start + 1`, one byte more, read as the last address. A
//! page-aligned range gets one extra TLBI (the page at `end`) and an ATC
//! span over one page more, which can double (one page at 0x...3000 spans
//! 0x...3000..=0x...4000: 8 pages). It has no whole-ASID threshold either
//! (d5afb4b47e13 added it), so a long range is a TLBI per page, and `(0,
//! -1UL)` wraps the size to 0: no TLBI at all, and the whole ATC.
//!
//! Here: part 1 = IOTINVAL.VMA x pages (or whole PASID); part 2 =
//! ATS.INVAL; each followed by an IOFENCE.C the driver waits for. With BTM
//! there is no part 1. The RTL has no port for the DVM messages a broadcast
//! TLBI sends, so the snoop is stood in for by one IOTINVAL.VMA
//! ([`Cmd::Snoop`]: the aligned block of the range, or the whole PASID from
//! 512 pages as arm64's `__flush_tlb_range` does with `MAX_TLBI_OPS`),
//! written ahead of the ATC_INV. It is not a driver command, and on
//! hardware it happens at the CPU's TLB flush, which a deferring policy
//! runs earlier than the notify: the IOTLB window of `arm-btm` under such
//! a policy is an upper bound.

use super::{napot_pages, Cmd};
use crate::mem::PAGE_SIZE;

/// `CMDQ_MAX_TLBI_OPS` for 4 KiB pages: `1 << (PAGE_SHIFT - 3)`.
pub(super) const CMDQ_MAX_TLBI_OPS: u64 = 1 << (12 - 3);

pub(super) fn plan(start: u64, end: u64, btm: bool) -> Vec<Vec<Cmd>> {
    let mut size = end.wrapping_sub(start);
    if size >= CMDQ_MAX_TLBI_OPS * PAGE_SIZE {
        size = 0;
    }
    let span = (size != 0).then(|| napot_pages(start, start + size - 1));
    let atc = match span {
        None => Cmd::AtcAll,
        Some((base, size)) => Cmd::Atc { base, size },
    };
    if btm {
        let (base, size) = span.unwrap_or((0, 0));
        return vec![vec![Cmd::Snoop { base, size }, atc]];
    }
    let tlbi = if size == 0 {
        vec![Cmd::IotlbPasid]
    } else {
        (0..size.div_ceil(PAGE_SIZE))
            .map(|p| Cmd::IotlbPage {
                va: start + p * PAGE_SIZE,
            })
            .collect()
    };
    vec![tlbi, vec![atc]]
}

/// The 5.11 driver: `size = end - start + 1`, a TLBI per page of
/// `[start, start + size)` and the span of its pages, with no threshold;
/// a size of 0 (`(0, -1UL)`) sends no TLBI (`__arm_smmu_tlb_inv_range`'s
/// loop does not run) and invalidates the whole ATC.
pub(super) fn plan_5_11(start: u64, end: u64) -> Vec<Vec<Cmd>> {
    let size = end.wrapping_sub(start).wrapping_add(1);
    if size == 0 {
        return vec![vec![], vec![Cmd::AtcAll]];
    }
    let (base, span) = napot_pages(start, start + (size - 1));
    let tlbi = (0..size.div_ceil(PAGE_SIZE))
        .map(|p| Cmd::IotlbPage {
            va: start + p * PAGE_SIZE,
        })
        .collect();
    vec![tlbi, vec![Cmd::Atc { base, size: span }]]
}

#[cfg(test)]
mod tests {
    use super::super::driver::testkit::*;
    use super::super::DriverKind;
    use crate::rtl::Command;

    const ARM: DriverKind = DriverKind::Arm { btm: false };
    const BTM: DriverKind = DriverKind::Arm { btm: true };
    const ARM_5_11: DriverKind = DriverKind::Arm511;

    #[test]
    fn before_the_size_fix_one_page_more() {
        // one page: a TLBI of it and of the next, and an 8-page ATC span
        // (pages 3..=4: fls(3 ^ 4) = 3) where the fix sends one page
        let f = run(ARM_5_11, 0x7f00_0000_3000, 0x7f00_0000_4000);
        assert_eq!(f.body(0), [page(0x7f00_0000_3000), page(0x7f00_0000_4000)]);
        assert_eq!(f.body(1), [ats(0x7f00_0000_0000, 15)]);
        let fixed = run(ARM, 0x7f00_0000_3000, 0x7f00_0000_4000);
        assert_eq!(fixed.body(1), [ats(0x7f00_0000_3000, 12)]);
        // no threshold: 512 pages are 513 TLBIs, not the whole ASID
        let f = run(ARM_5_11, 0x7f00_0020_0000, 0x7f00_0040_0000);
        assert_eq!(f.body(0).len(), 513);
        assert_eq!(f.stats.whole_pasid, 0);
    }

    #[test]
    fn before_the_size_fix_the_whole_space_wraps_to_no_tlbi() {
        let f = run(ARM_5_11, 0, u64::MAX);
        assert!(f.body(0).is_empty(), "size 0: the TLBI loop never runs");
        assert_eq!(f.body(1), [ats(0, 48)]);
        assert_eq!(f.stats.iotinval, 0);
    }
    const WHOLE_IOTLB: Command = Command::IotinvalVma {
        pasid: Some(PASID),
        range: None,
    };

    #[test]
    fn one_page_tlbi_sync_atc_inv_sync() {
        let f = run(ARM, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 2, "two CMD_SYNCs");
        assert_eq!(f.body(0), [page(0x7f00_0000_1000)]);
        assert_eq!(f.body(1), [ats(0x7f00_0000_1000, 12)]);
        assert_eq!((f.stats.commands, f.stats.fences), (4, 2));
    }

    #[test]
    fn three_unaligned_pages_one_tlbi_each_and_the_covering_span() {
        let f = run(ARM, 0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(
            f.body(0),
            [
                page(0x7f00_0000_3000),
                page(0x7f00_0000_4000),
                page(0x7f00_0000_5000)
            ]
        );
        // pages 3..=5: fls(3 ^ 5) = 3, an 8-page span at 0
        assert_eq!(f.body(1), [ats(0x7f00_0000_0000, 15)]);
    }

    #[test]
    fn from_512_pages_the_whole_asid_and_the_whole_atc() {
        // 511 pages: per page
        let f = run(ARM, 0x7f00_0020_0000, 0x7f00_0020_0000 + 511 * 4096);
        assert_eq!(f.body(0).len(), 511);
        assert_eq!(f.body(0)[510], page(0x7f00_0020_0000 + 510 * 4096));
        assert_eq!(f.body(1), [ats(0x7f00_0020_0000, 21)]);
        assert_eq!(f.stats.whole_pasid, 0);
        // 2 MiB = 512 pages, and 513 pages: CMD_TLBI_NH_ASID, ATC_INV all
        for (s, e) in [
            (0x7f00_0020_0000u64, 0x7f00_0040_0000u64),
            (0x7f00_0020_0000, 0x7f00_0040_1000),
        ] {
            let f = run(ARM, s, e);
            assert_eq!(f.body(0), [WHOLE_IOTLB], "{s:#x}..{e:#x}");
            assert_eq!(f.body(1), [ats(0, 48)], "{s:#x}..{e:#x}");
            assert_eq!(f.stats.whole_pasid, 1);
            assert_eq!(f.stats.commands, 4);
        }
    }

    #[test]
    fn btm_sends_no_tlbi_and_one_sync() {
        let f = run(BTM, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 1, "one CMD_SYNC");
        // the snoop stand-in, then the ATC_INV
        assert_eq!(
            f.body(0),
            [page(0x7f00_0000_1000), ats(0x7f00_0000_1000, 12)]
        );
        assert_eq!(f.stats.iotinval, 0, "no TLBI from the driver");
        assert_eq!(f.stats.btm_snoops, 1);
        assert_eq!((f.stats.commands, f.stats.fences), (2, 1));

        let f = run(BTM, 0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(
            f.body(0),
            [
                Command::IotinvalVma {
                    pasid: Some(PASID),
                    range: Some((0x7f00_0000_0000, 15))
                },
                ats(0x7f00_0000_0000, 15)
            ]
        );
        let f = run(BTM, 0x7f00_0020_0000, 0x7f00_0040_0000);
        assert_eq!(f.body(0), [WHOLE_IOTLB, ats(0, 48)]);
        assert_eq!(f.stats.iotinval, 0);
    }
}
