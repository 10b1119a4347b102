//! The Linux RISC-V IOMMU driver's invalidation sequence, as
//! `drivers/iommu/riscv/iommu.c` has it in Linux 6.13 (the release that
//! merged the driver): `riscv_iommu_iotlb_inval()` sends, to each IOMMU the
//! domain is bound to, one IOTINVAL.VMA per 4 KiB page of a range shorter
//! than 2 MiB (`RISCV_IOMMU_IOTLB_INVAL_LIMIT`), tagged with the domain's
//! PSCID, or one IOTINVAL.VMA of the whole PSCID for a longer (or empty)
//! one; then `riscv_iommu_cmd_sync()`: an IOFENCE.C with PR and PW set and
//! no write (AV clear), and a poll of the command queue's head until it has
//! passed the fence (with a timeout; the driver reports one and goes on).
//!
//! 6.13 binds paging domains only: it has no SVA (no mmu_notifier). A
//! shared address space would reach the same function from
//! `arch_invalidate_secondary_tlbs()`; that use is shootdown's model, not
//! a release's code, and says so where it is used.

use super::cmd::Command;

/// The release this model follows.
pub const RELEASE: &str = "6.13";

/// Ranges of at least this many bytes invalidate the whole PSCID.
pub const INVAL_LIMIT: u64 = 2 << 20;

const PAGE: u64 = 4096;

/// The commands `riscv_iommu_iotlb_inval(domain, start, end)` queues for
/// one IOMMU, `end` inclusive as the driver takes it (`len = end - start +
/// 1`; pages `start, start + 4 KiB, ...` while below `end`).
pub fn iotlb_inval(pscid: u32, start: u64, end: u64) -> Vec<Command> {
    let len = end.wrapping_sub(start).wrapping_add(1);
    let whole = Command::IotinvalVma {
        pscid: Some(pscid),
        addr: None,
        gscid: None,
    };
    if len == 0 || len >= INVAL_LIMIT {
        return vec![whole];
    }
    let first = start & !(PAGE - 1);
    (0..)
        .map(|i| first + i * PAGE)
        .take_while(|&iova| iova < end)
        .map(|iova| Command::IotinvalVma {
            pscid: Some(pscid),
            addr: Some(iova),
            gscid: None,
        })
        .collect()
}

/// The fence `riscv_iommu_cmd_sync()` queues after the invalidations; the
/// driver then waits for the queue head to pass it.
pub fn sync() -> Command {
    Command::IofenceC {
        pr: true,
        pw: true,
        wsi: false,
        write: None,
    }
}

/// One flush of `[start, end]` (inclusive) on one IOMMU: the invalidations
/// and the fence, in queue order.
pub fn flush(pscid: u32, start: u64, end: u64) -> Vec<Command> {
    let mut cmds = iotlb_inval(pscid, start, end);
    cmds.push(sync());
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(cmds: &[Command]) -> Vec<Option<u64>> {
        cmds.iter()
            .map(|c| match c {
                Command::IotinvalVma {
                    pscid: Some(7),
                    addr,
                    gscid: None,
                } => *addr,
                other => panic!("not an IOTINVAL.VMA of PSCID 7: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_short_range_is_invalidated_page_by_page() {
        // one page, end inclusive
        assert_eq!(
            addrs(&iotlb_inval(7, 0x7f00_0000_1000, 0x7f00_0000_1fff)),
            vec![Some(0x7f00_0000_1000)]
        );
        // three pages
        assert_eq!(
            addrs(&iotlb_inval(7, 0x1000, 0x3fff)),
            vec![Some(0x1000), Some(0x2000), Some(0x3000)]
        );
        // a byte under 2 MiB: every one of its 512 pages
        let cmds = iotlb_inval(7, 0, INVAL_LIMIT - 2);
        assert_eq!(cmds.len(), 512);
    }

    #[test]
    fn a_long_or_empty_range_invalidates_the_whole_pscid() {
        assert_eq!(addrs(&iotlb_inval(7, 0, INVAL_LIMIT - 1)), vec![None]);
        assert_eq!(addrs(&iotlb_inval(7, 0x20_0000, 0x7f_ffff)), vec![None]);
        // flush_iotlb_all: [0, ULONG_MAX], len wraps to 0
        assert_eq!(addrs(&iotlb_inval(7, 0, u64::MAX)), vec![None]);
    }

    #[test]
    fn a_flush_ends_with_an_iofence_c_that_orders_reads_and_writes() {
        let cmds = flush(7, 0x1000, 0x1fff);
        assert_eq!(cmds.len(), 2);
        assert_eq!(
            cmds[1],
            Command::IofenceC {
                pr: true,
                pw: true,
                wsi: false,
                write: None
            }
        );
        // every command encodes (IDs fit, addresses aligned)
        for c in cmds {
            c.encode().unwrap();
        }
    }
}
