//! A driver that batches per-page invalidations: for a flush of N pages,
//! IOTINVAL.VMA and ATS.INVAL of each page in turn (N Invalidate Requests,
//! one ITag each), then one IOFENCE.C for all of them. It is the hardware
//! stimulus the other models never give: several ATS invalidations
//! outstanding before one fence.
//!
//! A model, not one Linux function. Linux does put several ATS
//! invalidations in one batch ahead of one sync:
//! - AMD (`drivers/iommu/amd/iommu.c`, `amd_iommu_domain_flush_pages`; from
//!   "iommu/amd: Use only natural aligned flushes in a VM", 5.15): with
//!   `amd_iommu_np_cache` (NpCache: a vIOMMU in a VM) a range is split into
//!   naturally aligned chunks, and `__domain_flush_pages` queues, for each
//!   chunk, INVALIDATE_IOMMU_PAGES and one INVALIDATE_IOTLB_PAGES per ATS
//!   device (`device_flush_iotlb`) without waiting; one COMPLETION_WAIT
//!   (`domain_flush_complete`) follows the last chunk.
//! - ARM SMMUv3 (`arm-smmu-v3.c`, `arm_smmu_atc_inv_domain`): one ATC_INV per
//!   stream of every ATS master of the domain, each added with
//!   `arm_smmu_cmdq_batch_add` (a full batch of `CMDQ_BATCH_ENTRIES` goes to
//!   the queue without a sync), then `arm_smmu_cmdq_batch_submit`, which ends
//!   the batch with one CMD_SYNC; `__arm_smmu_tlb_inv_range` batches its
//!   per-page TLBIs the same way.
//! - Intel VT-d (`drivers/iommu/intel/cache.c`, `cache_tag_flush_range`
//!   with `domain->qi_batch`, 6.12+): the device-TLB descriptor of every
//!   cache tag goes into one batch (`qi_batch_add_dev_iotlb`, flushed when
//!   `QI_MAX_BATCHED_DESC_COUNT` fill it) that ends with one wait descriptor;
//!   for a device with `dtlb_extra_inval` (an erratum,
//!   `dev_needs_extra_dtlb_flush`) the same descriptor is added twice, two
//!   invalidations of one device outstanding before one wait.
//!
//! The RTL has one ATS device, so here the chunks are pages: AMD's NpCache
//! split taken down to 4 KiB, each chunk's IOTLB command ahead of its ATS
//! one (so the device cannot refill its ATC from a stale IOTLB entry), and
//! the Invalidate Requests outstanding together as ARM's and Intel's batches
//! leave them for several devices. Above [`SvaDriver::max_pages`] pages (64)
//! the flush is the generic driver's single batch (the whole PASID in the
//! IOTLB, one ATS.INVAL of the covering block), as Linux drivers give up
//! per-page commands for large ranges (ARM from `CMDQ_MAX_TLBI_OPS` pages).
//!
//! The ITag limit needs nothing from the driver: the IOMMU's queue stalls on
//! an ATS.INVAL while `ats_itags` are outstanding and goes on as the device's
//! Invalidate Completions free them, and the driver writes the ring only as
//! far as it has room ([`SvaDriver`]), so a batch larger than the ITags or
//! the ring drains without a fence in between. A device that never answers
//! (`drop-inv-cpl`) with a timeout keeps every timed-out ITag reserved, so
//! this driver reaches the stall that docs/socket.md describes after one
//! flush of `ats_itags` pages, where the others take that many flushes.
//!
//! [`SvaDriver`]: super::SvaDriver
//! [`SvaDriver::max_pages`]: super::SvaDriver::max_pages

use super::{generic, Cmd};
use crate::mem::PAGE_SIZE;

pub(super) fn plan(start: u64, end: u64, max_pages: u64) -> Vec<Vec<Cmd>> {
    let first = start & !(PAGE_SIZE - 1);
    let pages = end.max(start + 1).saturating_sub(first).div_ceil(PAGE_SIZE);
    if pages > max_pages {
        return generic::plan(start, end, max_pages);
    }
    let part = (0..pages)
        .flat_map(|p| {
            let va = first + p * PAGE_SIZE;
            [
                Cmd::IotlbPage { va },
                Cmd::Atc {
                    base: va,
                    size: PAGE_SIZE,
                },
            ]
        })
        .collect();
    vec![part]
}

#[cfg(test)]
mod tests {
    use super::super::driver::testkit::*;
    use super::super::DriverKind;
    use crate::rtl::Command;

    #[test]
    fn one_page_is_the_generic_batch() {
        let f = run(DriverKind::Batched, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 1);
        assert_eq!(
            f.body(0),
            [page(0x7f00_0000_1000), ats(0x7f00_0000_1000, 12)]
        );
        let g = run(DriverKind::Generic, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts, g.parts);
        assert_eq!(f.stats.max_ats_per_fence, 1);
    }

    #[test]
    fn three_unaligned_pages_three_ats_invals_one_fence() {
        let f = run(DriverKind::Batched, 0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(f.parts.len(), 1, "one IOFENCE.C");
        assert_eq!(
            f.body(0),
            [
                page(0x7f00_0000_3000),
                ats(0x7f00_0000_3000, 12),
                page(0x7f00_0000_4000),
                ats(0x7f00_0000_4000, 12),
                page(0x7f00_0000_5000),
                ats(0x7f00_0000_5000, 12),
            ],
            "exactly the pages, each IOTLB command ahead of its ATS one"
        );
        assert_eq!(
            (f.stats.iotinval, f.stats.ats_inval, f.stats.fences),
            (3, 3, 1)
        );
        assert_eq!(f.stats.max_ats_per_fence, 3);
        assert_eq!(f.stats.whole_pasid, 0);
    }

    #[test]
    fn an_unaligned_start_and_end_cover_every_touched_page() {
        let f = run(DriverKind::Batched, 0x7f00_0000_3800, 0x7f00_0000_4001);
        assert_eq!(
            f.body(0),
            [
                page(0x7f00_0000_3000),
                ats(0x7f00_0000_3000, 12),
                page(0x7f00_0000_4000),
                ats(0x7f00_0000_4000, 12),
            ]
        );
    }

    #[test]
    fn above_max_pages_the_generic_batch() {
        // 64 pages: per page, 64 ATS.INVALs before the fence
        let f = run(DriverKind::Batched, 0x40_0000, 0x44_0000);
        assert_eq!(f.parts.len(), 1);
        assert_eq!(f.body(0).len(), 128);
        assert_eq!(f.stats.max_ats_per_fence, 64);
        // 2 MiB: the whole PASID and one ATS.INVAL of the 2 MiB block
        let f = run(DriverKind::Batched, 0x7f00_0020_0000, 0x7f00_0040_0000);
        assert_eq!(
            f.body(0),
            [
                Command::IotinvalVma {
                    pasid: Some(PASID),
                    range: None
                },
                ats(0x7f00_0020_0000, 21),
            ]
        );
        assert_eq!(f.stats.whole_pasid, 1);
        assert_eq!(f.stats.max_ats_per_fence, 1);
    }
}
