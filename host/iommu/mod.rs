//! The host's IOMMU drivers: how an `mmu_notifier` flush becomes commands in
//! the RTL's in-memory command queue.
//!
//! [`SvaDriver`] owns the queue (one CPU at a time, from the first command
//! to the last fence's completion) and runs a flush as a sequence of
//! *parts*: it writes a part's commands, then an IOFENCE.C with AV=1 on the
//! completion word, spins until the word holds that fence's DATA, and only
//! then writes the next part. Which commands go into which part is the
//! driver model, a [`DriverKind`]:
//!
//! | kind | model of | parts |
//! |---|---|---|
//! | `generic` | none: one fenced batch (the seed's driver) | IOTINVAL.VMA x pages (or whole PASID), ATS.INVAL; fence |
//! | `amd` | `amd_iommu_v2.c` `mn_invalidate_range` (4.14/4.15) | INVALIDATE_IOMMU_PAGES; COMPLETION_WAIT / INVALIDATE_IOTLB_PAGES; COMPLETION_WAIT |
//! | `intel` | `intel-svm.c` `intel_flush_svm_range_dev` (4.14) | PASID-IOTLB; wait / PASID device-TLB; wait |
//! | `arm` | `arm-smmu-v3-sva.c` `arm_smmu_mm_invalidate_range` (5.11+, with `CMDQ_MAX_TLBI_OPS`) | TLBI x pages (or ASID); CMD_SYNC / ATC_INV; CMD_SYNC |
//! | `arm-btm` | the same, SMMU snooping CPU TLBIs (BTM) | ATC_INV; CMD_SYNC |
//! | `batched` | a driver batching per-page invalidations: AMD's NpCache split (`amd_iommu_domain_flush_pages`) down to pages, batched as `arm_smmu_atc_inv_domain` and VT-d's `qi_batch` batch several ATS invalidations before one sync | (IOTINVAL.VMA, ATS.INVAL) x pages (the generic batch above 64 pages); fence |
//!
//! Only `batched` has several ATS invalidations outstanding before one
//! fence (one ITag each; the queue stalls at `ats_itags` outstanding and
//! goes on as completions return); every other model fences each ATS.INVAL
//! before it sends the next.
//!
//! Each vendor's command maps onto this project's queue: COMPLETION_WAIT,
//! the VT-d wait descriptor and CMD_SYNC become IOFENCE.C (AV=1);
//! INVALIDATE_IOMMU_PAGES, the PASID-IOTLB descriptor and TLBI become
//! IOTINVAL.VMA (one page, a naturally aligned range, or the whole PASID);
//! INVALIDATE_IOTLB_PAGES, the device-TLB descriptor and ATC_INV become
//! ATS.INVAL. The range arithmetic of each model is in its own file
//! (`amd.rs`, `intel.rs`, `arm.rs`, `generic.rs`, `batched.rs`), written
//! after the Linux function it names (not copied from it).

mod amd;
mod arm;
mod batched;
mod driver;
mod generic;
mod intel;

pub use driver::{ats_range, DriverError, DriverStats, FlushTicket, SvaDriver};

use crate::mem::PAGE_SIZE;
use std::fmt;
use std::str::FromStr;

/// Which Linux IOMMU driver's invalidation sequence [`SvaDriver`] follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// The seed's driver: per-page IOTINVAL.VMA (whole PASID above
    /// [`SvaDriver::max_pages`]), one ATS.INVAL, one IOFENCE.C.
    #[default]
    Generic,
    /// AMD IOMMUv2 (`drivers/iommu/amd_iommu_v2.c`).
    Amd,
    /// AMD SVA as it returned in 6.10 (`drivers/iommu/amd/pasid.c`), named
    /// `amd@6.10` (`amd.rs`).
    AmdSva,
    /// Intel VT-d SVM (`drivers/iommu/intel-svm.c`, later
    /// `drivers/iommu/intel/svm.c`) as of `release` (`intel.rs`).
    Intel { release: IntelRelease },
    /// ARM SMMUv3 SVA (`drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c`);
    /// `btm`: the SMMU snoops the CPU's broadcast TLB invalidations, so the
    /// driver sends no TLBI (`ARM_SMMU_FEAT_BTM`, off by default).
    Arm { btm: bool },
    /// ARM SMMUv3 SVA as it was from 5.11 until the 2022 size fix, named
    /// `arm@5.11` (`arm.rs`): `size = end - start + 1`, and no whole-ASID
    /// threshold.
    Arm511,
    /// Per-page IOTINVAL.VMA and ATS.INVAL, one IOFENCE.C for all
    /// (`batched.rs`): several Invalidate Requests outstanding at once.
    Batched,
}

/// The Linux releases at which Intel's SVM invalidation changed (the
/// table in docs/drivers.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntelRelease {
    /// 4.14 (through 5.10): one page-selective descriptor whose address
    /// mask covers the 2^AM block holding `start`, so an unaligned range
    /// leaves pages out.
    #[default]
    V4_14,
    /// 5.11 (2d6ffc63f124, "iommu/vt-d: Fix unaligned addresses for
    /// intel_flush_svm_range_dev()"): the range rounded out to aligned
    /// blocks of that size, one or two, each with its device-TLB
    /// invalidation.
    V5_11,
    /// 6.6 (6bbd42e2df8f moves the notifier into the CPU's TLB flush,
    /// which passes `(0, -1UL)` for a long range): 5.11's blocks, but the
    /// page count of `(0, -1UL)` wraps to 0 and nothing is invalidated.
    V6_6,
    /// 6.7 (e7ad6c2a4b1a, "iommu/vt-d: Fix incorrect cache invalidation for
    /// mm notification"): `(0, -1UL)` invalidates the whole PASID.
    V6_7,
    /// 6.10 (cache tags, 4f609dbff51b): one aligned block per range, whose
    /// IOTLB descriptor gets too few pages when the range is unaligned.
    V6_10,
    /// 6.11 (0a3f6b346301, "iommu/vt-d: Fix aligned pages in
    /// calculate_psi_aligned_address()"): the IOTLB descriptor covers the
    /// block.
    V6_11,
    /// 6.12 (705c1cdf1e73, batched invalidation): both descriptors in one
    /// batch, one wait.
    V6_12,
    /// 6.17 (b33125296b50, "iommu/vt-d: Create unique domain ops for each
    /// stage"): an SVA domain's IOTLB tag is flushed with the second-stage
    /// IOTLB descriptor, by domain ID (`qi_batch_add_iotlb`,
    /// `DMA_TLB_PSI_FLUSH`), which in scalable mode drops no first-stage
    /// translation: the IOTLB keeps the PASID's entries. Only the
    /// device-TLB descriptor invalidates anything.
    V6_17,
    /// 7.0 (04b1b069f151, "iommu/vt-d: Flush piotlb for SVM and Nested
    /// domain"; in 6.18.y): the PASID-IOTLB descriptor again, as 6.12.
    V7_0,
}

impl IntelRelease {
    /// Every release after 4.14, by its `intel@` name.
    pub const LATER: [(IntelRelease, &'static str); 8] = [
        (IntelRelease::V5_11, "intel@5.11"),
        (IntelRelease::V6_6, "intel@6.6"),
        (IntelRelease::V6_7, "intel@6.7"),
        (IntelRelease::V6_10, "intel@6.10"),
        (IntelRelease::V6_11, "intel@6.11"),
        (IntelRelease::V6_12, "intel@6.12"),
        (IntelRelease::V6_17, "intel@6.17"),
        (IntelRelease::V7_0, "intel@7.0"),
    ];
}

impl DriverKind {
    /// Intel as `intel` names it (4.14).
    pub const INTEL: DriverKind = DriverKind::Intel {
        release: IntelRelease::V4_14,
    };

    /// Every kind, in the order of their names in messages (the latest
    /// model of each driver is not here: see [`DriverKind::RELEASES`]).
    pub const ALL: [DriverKind; 6] = [
        DriverKind::Generic,
        DriverKind::Amd,
        DriverKind::INTEL,
        DriverKind::Arm { btm: false },
        DriverKind::Arm { btm: true },
        DriverKind::Batched,
    ];

    /// The name a scenario's `driver:` uses.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Generic => "generic",
            DriverKind::Amd => "amd",
            DriverKind::AmdSva => "amd@6.10",
            DriverKind::Intel {
                release: IntelRelease::V4_14,
            } => "intel",
            DriverKind::Intel { release } => IntelRelease::LATER
                .iter()
                .find(|(r, _)| *r == release)
                .map_or("intel", |(_, n)| n),
            DriverKind::Arm { btm: false } => "arm",
            DriverKind::Arm { btm: true } => "arm-btm",
            DriverKind::Arm511 => "arm@5.11",
            DriverKind::Batched => "batched",
        }
    }

    /// The commands of a flush of `[start, end)`, part by part; the driver
    /// follows each part with a fence and waits for it before the next.
    /// `max_pages` is the generic (and batched) driver's threshold for a
    /// whole-PASID invalidation (the vendor models have their own).
    pub fn plan(self, start: u64, end: u64, max_pages: u64) -> Vec<Vec<Cmd>> {
        match self {
            DriverKind::Generic => generic::plan(start, end, max_pages),
            DriverKind::Amd => amd::plan(start, end),
            DriverKind::AmdSva => amd::plan_sva(start, end),
            DriverKind::Intel { release } => intel::plan(release, start, end),
            DriverKind::Arm { btm } => arm::plan(start, end, btm),
            DriverKind::Arm511 => arm::plan_5_11(start, end),
            DriverKind::Batched => batched::plan(start, end, max_pages),
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DriverKind {
    /// The models of a driver at a later release, by `name@release`
    /// (docs/drivers.md): Intel's (`intel@4.14` is `intel`), then
    /// `amd@6.10` and `arm@5.11`.
    pub const RELEASES: [DriverKind; 10] = {
        let mut r = [DriverKind::AmdSva; 10];
        r[9] = DriverKind::Arm511;
        let mut i = 0;
        while i < IntelRelease::LATER.len() {
            r[i] = DriverKind::Intel {
                release: IntelRelease::LATER[i].0,
            };
            i += 1;
        }
        r
    };
}

impl FromStr for DriverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "intel@4.14" {
            return Ok(DriverKind::INTEL);
        }
        DriverKind::ALL
            .into_iter()
            .chain(DriverKind::RELEASES)
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = DriverKind::ALL
                    .into_iter()
                    .chain(DriverKind::RELEASES)
                    .map(DriverKind::name)
                    .collect();
                format!(
                    "unknown IOMMU driver '{}': use one of {} (docs/drivers.md)",
                    s.escape_debug(),
                    names.join(", ")
                )
            })
    }
}

/// One command of a driver model, before it is encoded for the queue (the
/// driver adds the PASID and the fences).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// IOTINVAL.VMA of the 4 KiB page holding `va` (or the 2 MiB entry
    /// holding it).
    IotlbPage { va: u64 },
    /// IOTINVAL.VMA, range form: every IOTLB entry overlapping the naturally
    /// aligned block `[base, base + size)` (`size` a power of two >= 8 KiB).
    IotlbRange { base: u64, size: u64 },
    /// IOTINVAL.VMA of every address of the PASID.
    IotlbPasid,
    /// ATS.INVAL of the naturally aligned block `[base, base + size)`
    /// (`size` a power of two >= 4 KiB; 4 KiB is sent with S=0).
    Atc { base: u64, size: u64 },
    /// ATS.INVAL of the PASID's whole address space.
    AtcAll,
    /// ATS.INVAL of the whole address space without a PASID (PV clear):
    /// every PASID's translations (Intel's `cache_tag_flush_all`, 6.10 to
    /// 6.16).
    AtcAllNoPasid,
    /// Not a driver command: an IOTINVAL.VMA that stands for an SMMU with
    /// BTM snooping the CPU's broadcast TLBI (the RTL has no DVM port), of
    /// the block `[base, base + size)` or, with `size` 0, the whole PASID.
    Snoop { base: u64, size: u64 },
    /// The device's cached context of the PASID (RISC-V IODIR.INVAL_PDT of
    /// the device and process ID): sent when the PASID is unbound.
    ProcessContext,
    /// Not an invalidation: the PRG Response to the device's Page Request
    /// `prgi` (ATS.PRGR; `code` 0 Success, 1 Invalid Request).
    PageResponse { prgi: u8, code: u8 },
}

/// The smallest naturally aligned power-of-two block of 4 KiB pages that
/// holds the pages of `first..=last` (addresses): `(base, size)`. The
/// "most significant differing bit" rule every driver uses for ATS.
pub(crate) fn napot_pages(first: u64, last: u64) -> (u64, u64) {
    let (ps, pe) = (first / PAGE_SIZE, last / PAGE_SIZE);
    let log2 = 64 - (ps ^ pe).leading_zeros();
    if log2 >= 52 {
        return (0, 1 << 63);
    }
    let pages = 1u64 << log2;
    ((ps & !(pages - 1)) * PAGE_SIZE, pages * PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_them() {
        for k in DriverKind::ALL {
            assert_eq!(k.name().parse::<DriverKind>(), Ok(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(DriverKind::default(), DriverKind::Generic);
        let e = "vtd".parse::<DriverKind>().unwrap_err();
        assert!(e.contains("'vtd'"), "{e}");
        for k in DriverKind::ALL {
            assert!(e.contains(k.name()), "{e}");
        }
    }

    #[test]
    fn napot_blocks() {
        assert_eq!(napot_pages(0x3000, 0x3fff), (0x3000, 0x1000));
        assert_eq!(napot_pages(0x3000, 0x5fff), (0x0, 0x8000));
        assert_eq!(napot_pages(0x4000, 0x7fff), (0x4000, 0x4000));
        assert_eq!(napot_pages(0x20_0000, 0x3f_ffff), (0x20_0000, 0x20_0000));
        for (s, e) in [(0x1000u64, 0x9000u64), (0x1f_f000, 0x20_1000)] {
            assert_eq!(napot_pages(s, e - 1), ats_range(s, e), "{s:#x}..{e:#x}");
        }
    }
}
