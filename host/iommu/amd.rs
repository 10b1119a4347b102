//! AMD IOMMUv2: `drivers/iommu/amd_iommu_v2.c`, `mn_invalidate_range`
//! (Linux 4.14/4.15, the `invalidate_range` notifier), which calls
//! `amd_iommu_flush_page` or `amd_iommu_flush_tlb`; both end in
//! `__flush_pasid` (`drivers/iommu/amd_iommu.c`).
//!
//! - Range choice (`mn_invalidate_range`): if `start` and `end - 1` lie in
//!   the same page (`(start ^ (end - 1)) < PAGE_SIZE`), flush that one page
//!   (`amd_iommu_flush_page`, address = `start`, S=0); otherwise flush the
//!   whole PASID (`amd_iommu_flush_tlb`: address
//!   `CMD_INV_IOMMU_ALL_PAGES_ADDRESS` with S=1). There is no multi-page
//!   range: two pages already cost a whole-PASID flush.
//! - Order (`__flush_pasid`): INVALIDATE_IOMMU_PAGES to every IOMMU of the
//!   domain, then COMPLETION_WAIT (`domain_flush_complete`: "IOMMU TLB needs
//!   to be flushed before Device TLB to prevent device TLB refill from IOMMU
//!   TLB"), then INVALIDATE_IOTLB_PAGES to every ATS device with the same
//!   address and S bit, then COMPLETION_WAIT again.
//!
//! Here: part 1 = IOTINVAL.VMA (one page, or the whole PASID); part 2 =
//! ATS.INVAL (one page S=0, or the whole address space); each part is
//! followed by an IOFENCE.C the driver waits for.
//!
//! `amd@6.10` ([`plan_sva`]): IOMMUv2 was removed in 6.7 (5a0b11a180a9) and
//! SVA came back in 6.10 (a5a91e54846d, `drivers/iommu/amd/pasid.c`):
//! `sva_arch_invalidate_secondary_tlbs` calls, per device,
//! `amd_iommu_dev_flush_pasid_pages(dev_data, pasid, start, end - start)`:
//! INVALIDATE_IOMMU_PAGES of the range as `build_inv_address` encodes it
//! (one page; else the smallest naturally aligned block holding it, every
//! page above bit 51 of difference), then, with ATS,
//! INVALIDATE_IOTLB_PAGES of the same block, then one COMPLETION_WAIT: one
//! part, no wait between the two.

use super::{napot_pages, Cmd};
use crate::mem::PAGE_SIZE;

/// 6.10's SVA flush of `[start, end)`: both invalidations, one wait.
pub(super) fn plan_sva(start: u64, end: u64) -> Vec<Vec<Cmd>> {
    let last = end.max(start + 1) - 1;
    let (base, size) = napot_pages(start, last);
    if size >= 1 << 52 {
        return vec![vec![Cmd::IotlbPasid, Cmd::AtcAll]];
    }
    let iotlb = if size == PAGE_SIZE {
        Cmd::IotlbPage { va: base }
    } else {
        Cmd::IotlbRange { base, size }
    };
    vec![vec![iotlb, Cmd::Atc { base, size }]]
}

pub(super) fn plan(start: u64, end: u64) -> Vec<Vec<Cmd>> {
    if (start ^ end.wrapping_sub(1)) < PAGE_SIZE {
        vec![
            vec![Cmd::IotlbPage { va: start }],
            vec![Cmd::Atc {
                base: start & !(PAGE_SIZE - 1),
                size: PAGE_SIZE,
            }],
        ]
    } else {
        vec![vec![Cmd::IotlbPasid], vec![Cmd::AtcAll]]
    }
}

#[cfg(test)]
mod tests {
    use super::super::driver::testkit::*;
    use super::super::DriverKind;
    use crate::rtl::Command;

    const WHOLE_IOTLB: Command = Command::IotinvalVma {
        pasid: Some(PASID),
        range: None,
    };
    const WHOLE_ATC: Command = Command::AtsInval {
        pasid: Some(PASID),
        range: (0, 48),
    };

    #[test]
    fn one_page_iommu_pages_then_device_iotlb_each_waited_for() {
        let f = run(DriverKind::Amd, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 2, "two COMPLETION_WAITs");
        assert_eq!(
            f.body(0),
            [Command::IotinvalVma {
                pasid: Some(PASID),
                range: Some((0x7f00_0000_1000, 12))
            }]
        );
        assert_eq!(
            f.body(1),
            [Command::AtsInval {
                pasid: Some(PASID),
                range: (0x7f00_0000_1000, 12)
            }]
        );
        assert_eq!(
            (f.stats.commands, f.stats.fences, f.stats.whole_pasid),
            (4, 2, 0)
        );
        // a sub-page range is the page too
        let f = run(DriverKind::Amd, 0x7f00_0000_1008, 0x7f00_0000_1010);
        assert_eq!(
            f.body(1),
            [Command::AtsInval {
                pasid: Some(PASID),
                range: (0x7f00_0000_1000, 12)
            }]
        );
        assert!(matches!(
            f.body(0),
            [Command::IotinvalVma {
                range: Some((0x7f00_0000_1000, 12)),
                ..
            }]
        ));
    }

    #[test]
    fn more_than_one_page_flushes_the_whole_pasid() {
        for (s, e) in [
            (0x7f00_0000_3000u64, 0x7f00_0000_6000u64), // 3 pages, unaligned
            (0x7f00_0000_0000, 0x7f00_0000_2000),       // 2 aligned pages
            (0x7f00_0020_0000, 0x7f00_0040_0000),       // 2 MiB
        ] {
            let f = run(DriverKind::Amd, s, e);
            assert_eq!(f.parts.len(), 2);
            assert_eq!(f.body(0), [WHOLE_IOTLB], "{s:#x}..{e:#x}");
            assert_eq!(f.body(1), [WHOLE_ATC], "{s:#x}..{e:#x}");
            assert_eq!(f.stats.whole_pasid, 1);
        }
    }

    #[test]
    fn sva_at_6_10_sends_one_aligned_block_to_both_tlbs_then_one_wait() {
        let sva = DriverKind::AmdSva;
        // 3 unaligned pages: the 8-page block at 0, both TLBs, one fence
        let f = run(sva, 0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(f.parts.len(), 1, "one COMPLETION_WAIT");
        assert_eq!(
            f.body(0),
            [
                Command::IotinvalVma {
                    pasid: Some(PASID),
                    range: Some((0x7f00_0000_0000, 15))
                },
                Command::AtsInval {
                    pasid: Some(PASID),
                    range: (0x7f00_0000_0000, 15)
                }
            ]
        );
        assert_eq!(f.stats.whole_pasid, 0);
        // one page is page-selective
        let f = run(sva, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(
            f.body(0),
            [
                Command::IotinvalVma {
                    pasid: Some(PASID),
                    range: Some((0x7f00_0000_1000, 12))
                },
                Command::AtsInval {
                    pasid: Some(PASID),
                    range: (0x7f00_0000_1000, 12)
                }
            ]
        );
        // (0, -1UL): everything
        let f = run(sva, 0, u64::MAX);
        assert_eq!(f.body(0), [WHOLE_IOTLB, WHOLE_ATC]);
        assert_eq!(f.stats.whole_pasid, 1);
    }
}
