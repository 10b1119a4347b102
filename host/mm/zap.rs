//! munmap / MADV_DONTNEED: `zap_pte_range` with its `mmu_gather`
//! (mm/memory.c, Linux 4.14/4.15), the textbook case A.
//!
//! ```text
//! start    mmu_notifier_invalidate_range_start (S)
//! lock     pte_offset_map_lock
//! clear    ptep_get_and_clear_full (no flush); page_remove_rmap; __tlb_remove_page
//!          (once per mapped page; a full batch ends the loop: force_flush)
//! flush    force_flush: tlb_flush_mmu_tlbonly under the PTL: CPU TLB flush and
//!          mmu_notifier_invalidate_range (6.6+: the secondary flush inside the CPU flush)
//! unlock   pte_unmap_unlock
//! free     force_flush: tlb_flush_mmu_free: the batch's pages are freed, BEFORE E;
//!          then `goto again` if the range is not done
//! end      mmu_notifier_invalidate_range_end (E; 4.15 keeps the full E here)
//! finish   tlb_finish_mmu: flush (+notify) what is left and free the last batch
//! ```
//! `start` refuses a range that a huge PMD maps in part or whole
//! (`zap_huge_pmd` and `__unmap_hugepage_range` are not modelled yet) or
//! where nothing is mapped; the loop skips a region without a page table
//! (`pmd_none`) and clears a swap or migration entry without a flush. The
//! zero page's PTE is cleared and flushed, but no reference is dropped.
//!
//! The batch size is `params.gather_batch`: Linux gathers into one page of
//! pointers and grows it, so a batch fills before E only for large ranges
//! or when no batch page can be allocated; a small batch stands for that.

use super::kernel::{Cx, MmError, Notify, Progress};
use super::mapping::{self, HugeKind, Mapping};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{Pfn, PAGE_SIZE};

pub const CHECKPOINTS_ZAP: &[&str] = &[
    "start", "lock", "clear", "flush", "unlock", "free", "end", "finish",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Start,
    Lock,
    Clear,
    Flush,
    Unlock,
    Free,
    End,
    Finish,
    Done,
}

#[derive(Debug)]
pub struct ZapOp {
    start: u64,
    end: u64,
    addr: u64,
    pc: Pc,
    ptl: u64,
    batch: Vec<Pfn>,
    batch_max: usize,
    force_flush: bool,
    /// `tlb->start/end`: what the next TLB flush must cover.
    range: Option<(u64, u64)>,
    notify: Notify,
}

impl ZapOp {
    /// Unmap `[start, end)` (page aligned).
    pub fn new(start: u64, end: u64, batch_max: usize) -> Self {
        ZapOp {
            start,
            end,
            addr: start,
            pc: Pc::Start,
            ptl: 0,
            batch: Vec::new(),
            batch_max: batch_max.max(1),
            force_flush: false,
            range: None,
            notify: Notify::default(),
        }
    }

    /// The flush half of `tlb_flush_mmu`: CPU TLB and, per policy, the
    /// secondary TLBs for the gathered range. Some(wait) while in progress.
    fn flush(&mut self, cx: &mut Cx) -> Result<Option<Progress>, MmError> {
        let Some((s, e)) = self.range else {
            return Ok(None);
        };
        if let Some(w) = self.notify.run(cx, Prim::TlbFlushMmu, s, e)? {
            return Ok(Some(Progress::Wait(w)));
        }
        self.range = None;
        Ok(None)
    }

    fn free_batch(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        for pfn in std::mem::take(&mut self.batch) {
            path::put_page(cx, pfn)?;
        }
        Ok(())
    }

    /// The page table mapping `addr`, if any (`zap_pmd_range` skips an
    /// empty PMD); a huge PMD is refused.
    fn table(&self, cx: &mut Cx, addr: u64) -> Result<Option<u64>, MmError> {
        match mapping::lookup(cx.k, &mut cx.m.mem, addr)? {
            m @ Mapping::Huge { kind, .. } => Err(mapping::refuse(
                format!(
                    "munmap of {} ({})",
                    m.describe(cx.k),
                    match kind {
                        HugeKind::Hugetlb => "__unmap_hugepage_range",
                        HugeKind::Thp | HugeKind::HugeZero => "zap_huge_pmd",
                    }
                ),
                addr,
                "THP and hugetlb munmap is planned, not modelled yet; munmap only small pages",
            )),
            Mapping::Absent { level: 2.., .. } => Ok(None),
            Mapping::Pte { pte_pa, .. }
            | Mapping::Absent {
                entry_pa: pte_pa, ..
            } => Ok(Some(pte_pa >> 12)),
        }
    }

    /// `start`: refuse a range with a huge page in it, or with nothing to
    /// unmap, before anything changes.
    fn check(&self, cx: &mut Cx) -> Result<(), MmError> {
        let mut addr = self.start;
        let mut anything = false;
        while addr < self.end {
            let table_end = ((addr | 0x1f_ffff) + 1).min(self.end);
            if let Some(table) = self.table(cx, addr)? {
                while addr < table_end && !anything {
                    anything = cx.m.mem.read(entry_in(table, addr))?.value != 0;
                    addr += PAGE_SIZE;
                }
            }
            addr = table_end;
        }
        if anything {
            return Ok(());
        }
        Err(mapping::refuse(
            format!(
                "munmap of [{:#x}, {:#x}), where no page is mapped (already unmapped; Linux would change no entry)",
                self.start, self.end
            ),
            self.start,
            "munmap a range while a page in it is mapped, or drop the step",
        ))
    }
}

/// The address of `addr`'s PTE in the page table `table`.
fn entry_in(table: u64, addr: u64) -> u64 {
    (table << 12) + ((addr >> 12) & 0x1ff) * 8
}

impl KernelPath for ZapOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let reached = match self.pc {
            Pc::Start => {
                self.check(cx)?;
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                // The next page table in the range.
                let mut table = None;
                while self.addr < self.end && table.is_none() {
                    table = self.table(cx, self.addr)?;
                    if table.is_none() {
                        self.addr = (self.addr | 0x1f_ffff) + 1;
                    }
                }
                let Some(table) = table else {
                    self.pc = Pc::End;
                    return self.step(cx);
                };
                self.ptl = table;
                spin!(path::lock(cx, self.ptl));
                self.pc = Pc::Clear;
                "lock"
            }
            Pc::Clear => {
                // The next PTE of this page table in the range that is not none.
                let table_end = (self.addr | 0x1f_ffff) + 1;
                let mut found = None;
                while self.addr < self.end.min(table_end) {
                    let pa = entry_in(self.ptl, self.addr);
                    let e = cx.m.mem.read(pa)?.value;
                    let va = self.addr;
                    self.addr += PAGE_SIZE;
                    if e != 0 {
                        found = Some((pa, va, e));
                        break;
                    }
                }
                match found {
                    Some((pa, va, e)) if cx.pt().present(e) => {
                        path::set_entry(cx, pa, va, 0)?;
                        let (s, t) = self.range.unwrap_or((va, va + PAGE_SIZE));
                        self.range = Some((s.min(va), t.max(va + PAGE_SIZE)));
                        // The zero page is no normal page (vm_normal_page):
                        // its TLB entry goes, no reference is dropped.
                        let pfn = cx.pt().pfn(e);
                        if pfn != cx.k.zero_pfn {
                            self.batch.push(pfn);
                        }
                        if self.batch.len() >= self.batch_max {
                            self.force_flush = true;
                            self.pc = Pc::Flush;
                        }
                        "clear"
                    }
                    Some((pa, va, _)) => {
                        // A swap or migration entry: pte_clear_not_present_full
                        // (free_swap_and_cache); no translation to flush.
                        path::set_entry(cx, pa, va, 0)?;
                        "clear"
                    }
                    None => {
                        self.pc = if self.force_flush {
                            Pc::Flush
                        } else {
                            Pc::Unlock
                        };
                        return self.step(cx);
                    }
                }
            }
            Pc::Flush => {
                if let Some(p) = self.flush(cx)? {
                    return Ok(p);
                }
                self.pc = Pc::Unlock;
                "flush"
            }
            Pc::Unlock => {
                path::unlock(cx, self.ptl);
                self.pc = if self.force_flush {
                    Pc::Free
                } else if self.addr < self.end {
                    Pc::Lock
                } else {
                    Pc::End
                };
                "unlock"
            }
            Pc::Free => {
                self.free_batch(cx)?;
                self.force_flush = false;
                self.pc = if self.addr < self.end {
                    Pc::Lock
                } else {
                    Pc::End
                };
                "free"
            }
            Pc::End => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, self.start, self.end)?);
                self.pc = Pc::Finish;
                "end"
            }
            Pc::Finish => {
                if let Some(p) = self.flush(cx)? {
                    return Ok(p);
                }
                self.free_batch(cx)?;
                self.pc = Pc::Done;
                "finish"
            }
            Pc::Done => return Ok(Progress::Done),
        };
        Ok(Progress::Reached(reached))
    }

    fn finished(&self) -> bool {
        self.pc == Pc::Done
    }
}
