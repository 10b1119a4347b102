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

use super::Cmd;
use crate::mem::PAGE_SIZE;

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
        pasid: PASID,
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
                pasid: PASID,
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
                pasid: PASID,
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
}
