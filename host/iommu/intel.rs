//! Intel VT-d SVM: `drivers/iommu/intel-svm.c` (Linux 4.14),
//! `intel_invalidate_range` -> `intel_flush_svm_range` ->
//! `intel_flush_svm_range_dev`, once per device bound to the PASID.
//!
//! - Page count (`intel_invalidate_range`): `pages = (end - start +
//!   PAGE_SIZE - 1) >> VTD_PAGE_SHIFT`.
//! - PASID-IOTLB descriptor: with `pages == -1`, PASID-selective
//!   (`QI_GRAN_NONG_PASID`, every address of the PASID); else
//!   page-selective-within-PASID (`QI_GRAN_PSI_PASID`) with address =
//!   `start` and address mask `AM = ilog2(__roundup_pow_of_two(pages))`.
//!   The hardware ignores the low AM bits of the page address, so the
//!   descriptor covers the 2^AM-page block *containing `start`*, aligned to
//!   its size, which for an unaligned range does not cover `[start, end)`:
//!   e.g. 3 pages at 0x7f0000003000 give AM=2, the block
//!   0x7f0000000000..0x7f0000004000, and pages 0x...4000 and 0x...5000 stay
//!   in the IOTLB. Modelled literally; the later fix (Linux 5.11,
//!   "iommu/vt-d: Fix unaligned addresses for intel_flush_svm_range_dev()")
//!   loops over aligned blocks instead.
//! - Then `qi_submit_sync`: the descriptor plus a wait descriptor whose
//!   status write the CPU spins on.
//! - For a device with a device TLB (ATS): a PASID-based device-TLB
//!   descriptor, S=0 at `start` for one page; for more, address
//!   `(start & ~mask) | (mask - 1)` with S=1, `mask =
//!   __rounddown_pow_of_two(start ^ last)` and `last` the last page: the
//!   least significant zero bit names the size, i.e. the smallest naturally
//!   aligned power-of-two block holding the range. Then another
//!   `qi_submit_sync`.
//!
//! `pages == -1` is what unbind and mm release pass in 4.14; the notifier
//! never does. Here a flush of the whole address space (`start == 0`,
//! `end == u64::MAX`, how later kernels' notifiers say "everything") takes
//! that path. The ECS-era "deferred invalidate" shortcut of
//! `intel_flush_svm_range` (a PASID-state table, hardware that never
//! shipped) and the per-IOMMU `cap_max_amask_val` of older kernels are not
//! modelled.
//!
//! Here: part 1 = IOTINVAL.VMA (one page, the AM block in the range form,
//! or the whole PASID); part 2 = ATS.INVAL; each followed by an IOFENCE.C
//! the driver waits for.
//!
//! `intel@5.11` (2d6ffc63f124, "iommu/vt-d: Fix unaligned addresses for
//! intel_flush_svm_range_dev()", Linux 5.11; [`IntelRelease::V5_11`]):
//! `shift = ilog2(__roundup_pow_of_two(pages))`, `align = 1 << (12 +
//! shift)`, the range rounded out to `[ALIGN_DOWN(start, align),
//! ALIGN(start + pages * 4K, align))`, and for each aligned block of
//! `align` bytes `__flush_svm_range_dev`: its PASID-IOTLB descriptor and,
//! with ATS, its device-TLB descriptor, each waited for. An unaligned range
//! is one or two blocks; every page of it is covered.

use super::{Cmd, IntelRelease};
use crate::mem::PAGE_SIZE;
use crate::rtl::{ats_inval_range, ATS_S};

/// The address mask of a page-selective PASID-IOTLB descriptor for `pages`
/// pages: `ilog2(__roundup_pow_of_two(pages))`.
pub(super) fn address_mask(pages: u64) -> u32 {
    pages.max(1).next_power_of_two().trailing_zeros()
}

pub(super) fn plan(release: IntelRelease, start: u64, end: u64) -> Vec<Vec<Cmd>> {
    use IntelRelease::*;
    // The whole address space: 4.14's `pages == -1`, 6.7's
    // intel_flush_svm_all (e7ad6c2a4b1a), 6.10's cache_tag_flush_all: the
    // PASID-selective IOTLB descriptor, then the whole device TLB. From
    // 6.10 to 6.16 cache_tag_flush_all sends that device-TLB descriptor
    // without a PASID (qi_flush_dev_iotlb; 3141153816bf, 6.17, gives it the
    // PASID again): an Invalidate Request every PASID's translations obey.
    // 6.6 has no such case: its page count wraps (below).
    if start == 0 && end == u64::MAX && release != V6_6 {
        let atc = if (V6_10..V6_17).contains(&release) {
            Cmd::AtcAllNoPasid
        } else {
            Cmd::AtcAll
        };
        return parts(release, [Cmd::IotlbPasid, atc]);
    }
    if release >= V6_10 {
        return cache_tags(release, start, end);
    }
    // intel_invalidate_range / intel_arch_invalidate_secondary_tlbs: `(end
    // - start + PAGE_SIZE - 1) >> VTD_PAGE_SHIFT`, in unsigned long. For
    // 6.6's (0, -1UL) it wraps to 0, and the aligned-block loop of 5.11
    // runs no time: nothing is invalidated (fixed in 6.7).
    let pages = end.wrapping_sub(start).wrapping_add(PAGE_SIZE - 1) / PAGE_SIZE;
    match release {
        V6_6 => return aligned_blocks(start, pages),
        V5_11 | V6_7 => return aligned_blocks(start, pages.max(1)),
        _ => {}
    }
    let pages = pages.max(1);
    let iotlb = psi(start, address_mask(pages));
    let atc = if pages == 1 {
        Cmd::Atc {
            base: start & !(PAGE_SIZE - 1),
            size: PAGE_SIZE,
        }
    } else {
        let last = start + (pages - 1) * PAGE_SIZE;
        let mask = 1u64 << (63 - (start ^ last).leading_zeros());
        let addr = (start & !mask) | (mask - 1);
        // what the device decodes from that Invalidate Request
        let (base, log2) = ats_inval_range((addr & !(PAGE_SIZE - 1)) | ATS_S);
        Cmd::Atc {
            base,
            size: 1 << log2,
        }
    };
    vec![vec![iotlb], vec![atc]]
}

/// 6.10's `cache_tag_flush_range(domain, start, end - 1, 0)` for an SVA
/// domain: `calculate_psi_aligned_address` gives one aligned block (its
/// address, `mask` = log2 of its pages, and the page count the IOTLB
/// descriptor gets), then, tag by tag, the IOTLB tag's `qi_flush_piotlb`
/// and the device-TLB tag's `qi_flush_dev_iotlb_pasid`, each its own
/// `qi_submit_sync` (one batch from 6.12).
///
/// For a range whose first page is not aligned to the rounded-up count,
/// the block grows to the first bit above the count that the first and
/// last pages share; 6.10 still hands `qi_flush_piotlb` the rounded-up
/// count, so the IOTLB descriptor covers only the start of the block and
/// may miss the range (fixed in 6.11 by 0a3f6b346301, "iommu/vt-d: Fix
/// aligned pages in calculate_psi_aligned_address()"). The device-TLB
/// descriptor gets `mask` and covers the block.
fn cache_tags(release: IntelRelease, start: u64, end: u64) -> Vec<Vec<Cmd>> {
    let first = start / PAGE_SIZE;
    let last = (end.max(start + 1) - 1) / PAGE_SIZE;
    let pages = last - first + 1;
    let aligned = pages.next_power_of_two();
    let mut mask = aligned.trailing_zeros();
    let mut iotlb_pages = aligned;
    if first & (aligned - 1) != 0 {
        let shared = !(first ^ last) & !(aligned - 1);
        mask = if shared == 0 {
            64
        } else {
            shared.trailing_zeros()
        };
        if release >= IntelRelease::V6_11 {
            iotlb_pages = 1u64.checked_shl(mask).unwrap_or(0);
        }
    }
    // c420a2b4e8be (6.11) caps the mask; a block that wide is everything
    if mask >= 52 {
        return parts(release, [Cmd::IotlbPasid, Cmd::AtcAll]);
    }
    let block = PAGE_SIZE << mask;
    let base = (first * PAGE_SIZE) & !(block - 1);
    // qi_flush_piotlb: AM = ilog2(roundup_pow_of_two(npages)), the address
    // aligned down to it
    let iotlb = psi(base, address_mask(iotlb_pages));
    parts(release, [iotlb, Cmd::Atc { base, size: block }])
}

/// A page-selective PASID-IOTLB descriptor at `addr` with address mask
/// `am`: the hardware drops the low `am` bits of the page number, so it
/// names the naturally aligned block of 2^am pages holding `addr`.
fn psi(addr: u64, am: u32) -> Cmd {
    if am == 0 {
        Cmd::IotlbPage { va: addr }
    } else {
        let size = PAGE_SIZE << am;
        Cmd::IotlbRange {
            base: addr & !(size - 1),
            size,
        }
    }
}

/// The two descriptors each waited for, or (6.12's `qi_batch`) one batch.
/// 6.17's IOTLB descriptor names the domain ID of a second-stage
/// translation the SVA domain does not have: the IOMMU's first-stage
/// entries stay, and the model sends no command for it.
fn parts(release: IntelRelease, [iotlb, atc]: [Cmd; 2]) -> Vec<Vec<Cmd>> {
    if release == IntelRelease::V6_17 {
        vec![vec![atc]]
    } else if release >= IntelRelease::V6_12 {
        vec![vec![iotlb, atc]]
    } else {
        vec![vec![iotlb], vec![atc]]
    }
}

/// 5.11's `intel_flush_svm_range_dev`: the aligned blocks of `2^AM` pages
/// that hold `[start, start + pages * 4K)`, each one's IOTLB descriptor and
/// device-TLB descriptor waited for in turn.
fn aligned_blocks(start: u64, pages: u64) -> Vec<Vec<Cmd>> {
    let am = address_mask(pages);
    let align = PAGE_SIZE << am;
    let first = start & !(align - 1);
    let end = start
        .saturating_add(pages.saturating_mul(PAGE_SIZE))
        .div_ceil(align)
        .saturating_mul(align);
    let mut parts = Vec::new();
    let mut base = first;
    while base < end {
        parts.push(vec![psi(base, am)]);
        parts.push(vec![Cmd::Atc { base, size: align }]);
        base += align;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::super::driver::testkit::*;
    use super::super::DriverKind;
    use super::*;
    use crate::rtl::Command;

    fn iotlb(base: u64, log2: u32) -> Command {
        Command::IotinvalVma {
            pasid: Some(PASID),
            range: Some((base, log2)),
        }
    }

    /// Does a decoded IOTINVAL.VMA range cover the page of `va`?
    fn covers(c: &Command, va: u64) -> bool {
        match c {
            Command::IotinvalVma {
                range: Some((b, l)),
                ..
            } => va >> l == b >> l,
            Command::IotinvalVma { range: None, .. } => true,
            _ => false,
        }
    }

    #[test]
    fn release_5_11_rounds_an_unaligned_range_out_to_aligned_blocks() {
        let parts = plan(IntelRelease::V5_11, 0x7f00_0000_3000, 0x7f00_0000_6000);
        let block = |base| {
            [
                vec![Cmd::IotlbRange { base, size: 0x4000 }],
                vec![Cmd::Atc { base, size: 0x4000 }],
            ]
        };
        let want: Vec<Vec<Cmd>> = block(0x7f00_0000_0000)
            .into_iter()
            .chain(block(0x7f00_0000_4000))
            .collect();
        assert_eq!(parts, want);
        // one page stays one page; an aligned range is one block
        assert_eq!(
            plan(IntelRelease::V5_11, 0x1000, 0x2000),
            vec![
                vec![Cmd::IotlbPage { va: 0x1000 }],
                vec![Cmd::Atc {
                    base: 0x1000,
                    size: 0x1000
                }]
            ]
        );
        assert_eq!(plan(IntelRelease::V5_11, 0x4000, 0x8000).len(), 2);
    }

    #[test]
    fn address_mask_rounds_up() {
        let am: Vec<u32> = [1u64, 2, 3, 4, 5, 511, 512, 513]
            .iter()
            .map(|&p| address_mask(p))
            .collect();
        assert_eq!(am, vec![0, 1, 2, 2, 3, 9, 9, 10]);
    }

    #[test]
    fn one_page_piotlb_wait_devtlb_wait() {
        let f = run(DriverKind::INTEL, 0x7f00_0000_1000, 0x7f00_0000_2000);
        assert_eq!(f.parts.len(), 2, "two qi_submit_sync waits");
        assert_eq!(f.body(0), [iotlb(0x7f00_0000_1000, 12)]);
        assert_eq!(f.body(1), [ats(0x7f00_0000_1000, 12)]);
        assert_eq!((f.stats.commands, f.stats.fences), (4, 2));
    }

    #[test]
    fn three_unaligned_pages_am_block_misses_two_of_them() {
        let (s, e) = (0x7f00_0000_3000, 0x7f00_0000_6000);
        let f = run(DriverKind::INTEL, s, e);
        // AM = 2: the 16 KiB block holding `start`
        assert_eq!(f.body(0), [iotlb(0x7f00_0000_0000, 14)]);
        let inv = &f.body(0)[0];
        assert!(covers(inv, 0x7f00_0000_3000));
        assert!(
            !covers(inv, 0x7f00_0000_4000) && !covers(inv, 0x7f00_0000_5000),
            "the PASID-IOTLB block does not cover [start, end): pages 4 and 5 stay cached"
        );
        // the device-TLB descriptor does cover it: 32 KiB at 0x...0000
        assert_eq!(f.body(1), [ats(0x7f00_0000_0000, 15)]);
        assert_eq!(f.stats.whole_pasid, 0);
    }

    #[test]
    fn two_mib_is_am_9() {
        let f = run(DriverKind::INTEL, 0x7f00_0020_0000, 0x7f00_0040_0000);
        assert_eq!(f.body(0), [iotlb(0x7f00_0020_0000, 21)]);
        assert_eq!(f.body(1), [ats(0x7f00_0020_0000, 21)]);
        // 2 MiB starting one page into a region: AM 9 still names the
        // aligned 2 MiB block of `start`, so the last page is left out,
        // while the device-TLB descriptor grows to 4 MiB
        let f = run(DriverKind::INTEL, 0x7f00_0020_1000, 0x7f00_0040_1000);
        assert_eq!(f.body(0), [iotlb(0x7f00_0020_0000, 21)]);
        assert!(!covers(&f.body(0)[0], 0x7f00_0040_0000));
        assert_eq!(f.body(1), [ats(0x7f00_0000_0000, 23)]);
    }

    #[test]
    fn the_whole_address_space_is_pasid_selective() {
        let f = run(DriverKind::INTEL, 0, u64::MAX);
        assert_eq!(
            f.body(0),
            [Command::IotinvalVma {
                pasid: Some(PASID),
                range: None
            }]
        );
        assert_eq!(f.body(1), [ats(0, 48)]);
        assert_eq!(f.stats.whole_pasid, 1);
        // a large range is still page-selective (4.14 has no AM limit)
        let f = run(DriverKind::INTEL, 0x4000_0000, 0x4100_0000);
        assert_eq!(f.body(0), [iotlb(0x4000_0000, 24)]);
    }

    #[test]
    fn release_6_6_wraps_the_whole_address_space_to_nothing() {
        assert_eq!(
            plan(IntelRelease::V6_6, 0, u64::MAX),
            Vec::<Vec<Cmd>>::new()
        );
        let f = run(
            DriverKind::Intel {
                release: IntelRelease::V6_6,
            },
            0,
            u64::MAX,
        );
        assert!(f.parts.is_empty(), "no command, no wait");
        assert_eq!(
            (f.stats.flushes, f.stats.silent, f.stats.commands),
            (1, 1, 0)
        );
        // any other range is 5.11's
        let (s, e) = (0x7f00_0000_3000, 0x7f00_0000_6000);
        assert_eq!(
            plan(IntelRelease::V6_6, s, e),
            plan(IntelRelease::V5_11, s, e)
        );
        // 6.7 invalidates the PASID, then its whole device TLB
        assert_eq!(
            plan(IntelRelease::V6_7, 0, u64::MAX),
            vec![vec![Cmd::IotlbPasid], vec![Cmd::AtcAll]]
        );
    }

    #[test]
    fn release_6_10_gives_the_iotlb_too_few_pages_of_an_unaligned_block() {
        // pages 3..=5: rounded up to 4, but pfn 3 is not 4-aligned, so the
        // block grows to 8 pages at page 0; 6.10 tells the IOTLB 4 pages
        let (s, e) = (0x7f00_0000_3000, 0x7f00_0000_6000);
        let atc = Cmd::Atc {
            base: 0x7f00_0000_0000,
            size: 0x8000,
        };
        assert_eq!(
            plan(IntelRelease::V6_10, s, e),
            vec![
                vec![Cmd::IotlbRange {
                    base: 0x7f00_0000_0000,
                    size: 0x4000
                }],
                vec![atc]
            ]
        );
        let fixed = Cmd::IotlbRange {
            base: 0x7f00_0000_0000,
            size: 0x8000,
        };
        assert_eq!(
            plan(IntelRelease::V6_11, s, e),
            vec![vec![fixed], vec![atc]]
        );
        // 6.12: one batch, one wait
        assert_eq!(plan(IntelRelease::V6_12, s, e), vec![vec![fixed, atc]]);
        // an aligned range is one block at any release
        let (s, e) = (0x7f00_0000_4000, 0x7f00_0000_8000);
        let block = |size| Cmd::IotlbRange { base: s, size };
        assert_eq!(
            plan(IntelRelease::V6_10, s, e),
            vec![
                vec![block(0x4000)],
                vec![Cmd::Atc {
                    base: s,
                    size: 0x4000
                }]
            ]
        );
        // one page is page-selective
        assert_eq!(
            plan(IntelRelease::V6_10, s, s + 0x1000)[0],
            vec![Cmd::IotlbPage { va: s }]
        );
        // the whole address space: cache_tag_flush_all, whose device-TLB
        // descriptor has no PASID until 6.17
        for r in [IntelRelease::V6_10, IntelRelease::V6_11] {
            assert_eq!(
                plan(r, 0, u64::MAX),
                vec![vec![Cmd::IotlbPasid], vec![Cmd::AtcAllNoPasid]]
            );
        }
        assert_eq!(
            plan(IntelRelease::V6_12, 0, u64::MAX),
            vec![vec![Cmd::IotlbPasid, Cmd::AtcAllNoPasid]]
        );
        assert_eq!(
            plan(IntelRelease::V7_0, 0, u64::MAX),
            vec![vec![Cmd::IotlbPasid, Cmd::AtcAll]]
        );
        // pages 0x7fffff..=0x800000 straddle a 64 GiB boundary: the block
        // is 2^24 pages
        let wide = plan(IntelRelease::V6_11, 0x7_ffff_f000, 0x8_0000_1000);
        assert_eq!(
            wide[0],
            vec![Cmd::IotlbRange {
                base: 0,
                size: 0x10_0000_0000
            }]
        );
    }

    /// 6.17 sends no first-stage IOTLB invalidation (its descriptor names a
    /// domain ID), only the device-TLB one; 7.0 is 6.12 again.
    #[test]
    fn release_6_17_invalidates_only_the_device_tlb() {
        let (s, e) = (0x7f00_0000_3000, 0x7f00_0000_6000);
        let atc = Cmd::Atc {
            base: 0x7f00_0000_0000,
            size: 0x8000,
        };
        assert_eq!(plan(IntelRelease::V6_17, s, e), vec![vec![atc]]);
        assert_eq!(
            plan(IntelRelease::V6_17, 0, u64::MAX),
            vec![vec![Cmd::AtcAll]]
        );
        for (a, b) in [(s, e), (s, s + 0x1000)] {
            assert_eq!(
                plan(IntelRelease::V7_0, a, b),
                plan(IntelRelease::V6_12, a, b)
            );
        }
    }
}
