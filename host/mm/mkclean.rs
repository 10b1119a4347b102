//! Writeback: `page_mkclean_one` (mm/rmap.c, site h) as
//! `clear_page_dirty_for_io` runs it before the page's I/O is submitted, and
//! `dax_mapping_entry_mkclean` (fs/dax.c, site i) as `dax_writeback_one` runs
//! it before `dax_flush` writes the cache lines back to persistent memory.
//! The two have the same shape in 4.14 (ptep_clear_flush, wrprotect + clean,
//! set_pte_at, invalidate_range under the PTL, E) and the seed drops the same
//! call in both; the DAX page has no page cache (it *is* the storage), so its
//! `io` is the cache-line flush.
//!
//! ```text
//! start        S (the page's range in the VMA)
//! lock         page_vma_mapped_walk takes the PTL
//! clear_flush  ptep_clear_flush (CPU TLB only before 6.6)
//! set_pte      pte_wrprotect + pte_mkclean; set_pte_at
//! notify       mmu_notifier_invalidate_range(cstart, cend) under the PTL (4.14;
//!              the seed drops it: "downgrading page table protection")
//! unlock       page_vma_mapped_walk_done
//! end          E
//! io           set_page_writeback; the I/O reads the page (its word at the VA
//!              is what reaches the disk)
//! ```
//! `start` refuses, before any change, what is not a small page mapped by a
//! PTE of this process alone: a huge page, the zero page, a page another
//! process maps too, or no page (swapped out, unmapped).

use super::kernel::{Cx, HostEvent, MmError, Notify, Progress};
use super::mapping::{self, Mapping};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::PAGE_SIZE;

pub const CHECKPOINTS_MKCLEAN: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_pte",
    "notify",
    "unlock",
    "end",
    "io",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Start,
    Lock,
    ClearFlush,
    SetPte,
    Notify,
    Unlock,
    End,
    Io,
    Done,
}

/// Which writeback: the page cache's or DAX's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritebackKind {
    PageCache,
    Dax,
}

#[derive(Debug)]
pub struct WritebackOp {
    pub kind: WritebackKind,
    va: u64,
    pc: Pc,
    pte_pa: u64,
    /// The page writeback started with (what the I/O reads if the VA is
    /// unmapped by then: the page cache keeps the page).
    page: u64,
    cleared: u64,
    notify: Notify,
}

impl WritebackOp {
    pub fn new(kind: WritebackKind, va: u64) -> Self {
        WritebackOp {
            kind,
            va,
            pc: Pc::Start,
            pte_pa: 0,
            page: 0,
            cleared: 0,
            notify: Notify::default(),
        }
    }

    /// `start`: a small page mapped by a PTE (the page cache's or DAX's)
    /// and by no other process; anything else is refused before any change.
    fn check(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        let m = mapping::lookup(cx.k, &mut cx.m.mem, self.va)?;
        let action = match self.kind {
            WritebackKind::PageCache => "writeback",
            WritebackKind::Dax => "dax-writeback",
        };
        if let Some((pte_pa, pfn)) = m.small_page(cx.k) {
            if cx.m.mem.refcount(pfn) != 1 {
                return Err(mapping::refuse(
                    format!("{action} of a page another process maps too (an anonymous COW or KSM page is never written back; a private file mapping's page-cache page is not modelled)"),
                    self.va,
                    "write back a page only this process maps",
                ));
            }
            self.pte_pa = pte_pa;
            self.page = pfn;
            return Ok(());
        }
        let why = match m {
            Mapping::Huge { .. } => {
                " (anonymous THP and hugetlbfs pages are never written back; page_mkclean_one's PMD branch is for file THP and DAX PMDs)"
            }
            Mapping::Pte { .. } => " (the zero page is never written back)",
            Mapping::Absent { .. } => {
                " (the page cache, which keeps an unmapped page, is not modelled)"
            }
        };
        Err(mapping::refuse(
            format!("{action} of {}{why}", m.describe(cx.k)),
            self.va,
            "write back a small page while it is mapped",
        ))
    }
}

impl KernelPath for WritebackOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let start = self.va & !(PAGE_SIZE - 1);
        let end = start + PAGE_SIZE;
        let reached = match self.pc {
            Pc::Start => {
                self.check(cx)?;
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                spin!(path::lock(cx, self.pte_pa >> 12));
                let e = cx.m.mem.read(self.pte_pa)?.value;
                // Neither dirty nor writable (or no longer this page's
                // mapping): nothing to clean.
                let f = cx.pt();
                let mapped = f.present(e) && f.pfn(e) == self.page;
                self.pc = if mapped && (f.dirty(e) || f.writable(e)) {
                    Pc::ClearFlush
                } else {
                    Pc::Unlock
                };
                "lock"
            }
            Pc::ClearFlush => {
                if self.cleared == 0 {
                    self.cleared = path::set_entry(cx, self.pte_pa, self.va, 0)?;
                }
                spin!(self.notify.run(cx, Prim::ClearFlush, start, end)?);
                self.pc = Pc::SetPte;
                "clear_flush"
            }
            Pc::SetPte => {
                let f = cx.pt();
                let e = f.mkclean(f.wrprotect(self.cleared));
                path::set_entry(cx, self.pte_pa, self.va, e)?;
                self.pc = Pc::Notify;
                "set_pte"
            }
            Pc::Notify => {
                let prim = Prim::InvalidateRange { seed_keeps: false };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = Pc::Unlock;
                "notify"
            }
            Pc::Unlock => {
                path::unlock(cx, self.pte_pa >> 12);
                self.pc = Pc::End;
                "unlock"
            }
            Pc::End => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = Pc::Io;
                "end"
            }
            Pc::Io => {
                // The page at the VA now (a migration may have moved it);
                // unmapped since: the page the writeback started with.
                let page =
                    cx.k.mm
                        .walk(&cx.m.mem, self.va)
                        .map_or(self.page, |l| l.pfn);
                let pa = (page << 12) | (self.va & 0xff8);
                let w = cx.m.mem.read(pa)?;
                cx.events.push(HostEvent::Io {
                    tid: cx.tid,
                    va: self.va,
                    value: w.value,
                    version: w.version,
                });
                self.pc = Pc::Done;
                "io"
            }
            Pc::Done => return Ok(Progress::Done),
        };
        Ok(Progress::Reached(reached))
    }

    fn finished(&self) -> bool {
        self.pc == Pc::Done
    }
}
