//! The SVA driver: turns one secondary-TLB flush of `[start, end)` into
//! IOTINVAL.VMA, ATS.INVAL and IOFENCE.C commands, in the order every Linux
//! driver uses (IOMMU's own TLB first, so the device cannot refill its ATC
//! from a stale IOTLB entry; then the ATC; then a fence), and spins on the
//! fence's completion word while the RTL runs.
//!
//! The queue is a ring in [`PhysMem`]; the tail is the register the RTL
//! reads (`cq_tail_i`). Like `qi_submit_sync` (Intel) or the AMD driver's
//! `iommu->lock`, one CPU at a time owns the queue from the first command
//! to the fence's completion: the owner is recorded here and other CPUs
//! spin until it is released.

use crate::mem::{MemError, PAGE_SIZE};
use crate::rtl::{cmd_ats_inval, cmd_iofence_c, cmd_iotinval_vma};
use crate::sim::machine::{IommuLayout, Machine};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DriverError {
    #[error("[driver] command queue write failed: {source}")]
    Queue { source: MemError },
}

/// Counters for the cost rows of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Secondary-TLB flushes requested (one per notify that reached the driver).
    pub flushes: u64,
    /// Commands written to the queue.
    pub commands: u64,
    pub iotinval: u64,
    pub ats_inval: u64,
    pub fences: u64,
}

/// A flush in progress: the fence DATA the owner waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushTicket {
    pub data: u32,
    pub owner: usize,
}

pub struct SvaDriver {
    layout: IommuLayout,
    completion_pa: u64,
    tail: u32,
    next_data: u32,
    owner: Option<usize>,
    /// Ranges of more pages than this invalidate the whole PASID.
    pub max_pages: u64,
    pub stats: DriverStats,
}

/// The naturally aligned power-of-two range that covers `[start, end)`,
/// as one ATS Invalidate Request can carry it: (base, size in bytes).
pub fn ats_range(start: u64, end: u64) -> (u64, u64) {
    let start = start & !(PAGE_SIZE - 1);
    let end = end.max(start + 1);
    let mut size = (end - start).next_power_of_two().max(PAGE_SIZE);
    loop {
        let base = start & !(size - 1);
        if base + size >= end {
            return (base, size);
        }
        size <<= 1;
    }
}

impl SvaDriver {
    pub fn new(layout: IommuLayout, completion_pa: u64) -> Self {
        SvaDriver {
            layout,
            completion_pa,
            tail: 0,
            next_data: 1,
            owner: None,
            max_pages: 64,
            stats: DriverStats::default(),
        }
    }

    fn entries(&self) -> u32 {
        1 << self.layout.cq_log2n
    }

    /// Which CPU thread owns the queue now.
    pub fn owner(&self) -> Option<usize> {
        self.owner
    }

    /// Start a flush for CPU thread `owner`; `None` while another thread
    /// owns the queue or the ring has no room (the caller spins and retries).
    pub fn try_begin(
        &mut self,
        m: &mut Machine,
        owner: usize,
        pasid: u32,
        start: u64,
        end: u64,
    ) -> Result<Option<FlushTicket>, DriverError> {
        if self.owner.is_some() {
            return Ok(None);
        }
        let pages = end.saturating_sub(start).div_ceil(PAGE_SIZE).max(1);
        let mut cmds: Vec<[u64; 2]> = Vec::new();
        if pages > self.max_pages {
            cmds.push(cmd_iotinval_vma(Some(pasid), None));
            self.stats.iotinval += 1;
        } else {
            for p in 0..pages {
                cmds.push(cmd_iotinval_vma(Some(pasid), Some(start + p * PAGE_SIZE)));
                self.stats.iotinval += 1;
            }
        }
        let (base, size) = ats_range(start, end);
        cmds.push(cmd_ats_inval(pasid, base, size));
        self.stats.ats_inval += 1;
        let data = self.next_data;
        cmds.push(cmd_iofence_c(Some(self.completion_pa), data));
        self.stats.fences += 1;

        let n = self.entries();
        let used = self.tail.wrapping_sub(m.cq_head()) & (n - 1);
        if used + cmds.len() as u32 >= n {
            return Ok(None);
        }
        m.mem
            .write(self.completion_pa, 0, 0)
            .map_err(|source| DriverError::Queue { source })?;
        for c in &cmds {
            let pa = self.layout.cq_base + u64::from(self.tail) * 16;
            for (i, dw) in c.iter().enumerate() {
                m.mem
                    .write(pa + 8 * i as u64, *dw, 0)
                    .map_err(|source| DriverError::Queue { source })?;
            }
            self.tail = (self.tail + 1) & (n - 1);
        }
        m.set_cq_tail(self.tail);
        self.stats.commands += cmds.len() as u64;
        self.stats.flushes += 1;
        self.next_data = self.next_data.wrapping_add(1).max(1);
        self.owner = Some(owner);
        Ok(Some(FlushTicket { data, owner }))
    }

    /// One spin of the owner on the completion word; true (and the queue
    /// released) once the fence has written it.
    pub fn poll(&mut self, m: &Machine, t: FlushTicket) -> bool {
        let done = m
            .mem
            .read(self.completion_pa)
            .is_ok_and(|w| w.value == u64::from(t.data));
        if done && self.owner == Some(t.owner) {
            self.owner = None;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ats_range_covers_and_aligns() {
        assert_eq!(
            ats_range(0x7f00_0000_1000, 0x7f00_0000_2000),
            (0x7f00_0000_1000, 0x1000)
        );
        // two pages straddling an 8K boundary need 16K
        assert_eq!(ats_range(0x3000, 0x5000), (0x0, 0x8000));
        assert_eq!(ats_range(0x20_0000, 0x40_0000), (0x20_0000, 0x20_0000));
        for (s, e) in [
            (0x1000u64, 0x9000u64),
            (0x5000, 0x6000),
            (0x1f_f000, 0x20_1000),
        ] {
            let (b, sz) = ats_range(s, e);
            assert!(
                sz.is_power_of_two() && b % sz == 0 && b <= s && b + sz >= e,
                "{s:#x}..{e:#x}"
            );
        }
    }
}
