//! `try_to_unmap_one` (mm/rmap.c, site j) as reclaim and migration run it,
//! with the caller's work after it: the swap-out I/O, or the copy to the new
//! page and `remove_migration_ptes`, and the final put of the old page.
//!
//! ```text
//! start        S (the page); the caller holds its own reference (isolated
//!              from the LRU, locked) until after E
//! lock         page_vma_mapped_walk takes the PTL
//! clear_flush  ptep_clear_flush (CPU TLB only before 6.6); the dirty bit moves to the page
//! set_entry    reclaim: the swap entry; migration: the migration entry; a file
//!              page: none (dec_mm_counter; the page cache keeps the page)
//! remove_rmap  page_remove_rmap; put_page (the mapping's reference)
//! notify       mmu_notifier_invalidate_range(address, +PAGE_SIZE) under the PTL (4.14);
//!              the seed's diff drops it from the swap and migration branches
//!              ("replacing a present pte with a non present one") and keeps
//!              it only for file pages. Merged 4.15 differs: it notifies in the
//!              swap and MADV_FREE branches and not for file pages (see the
//!              closing note of the call-site issue); `seed` models the diff.
//! unlock       page_vma_mapped_walk_done
//! end          E
//! reclaim:   pageout  the swap-out (or, for a file page, writepage) I/O reads the page
//!            free     the caller's put_page: the frame is freed
//! migration: copy     alloc the new page; migrate_page_copy(new, old)
//!            remap    remove_migration_ptes: under the PTL the PTE maps the new page
//!                     (where the migration entry still is: after a munmap the
//!                     new page is not mapped and goes back)
//!            free     putback of the old page: the frame is freed
//! ```
//! `start` refuses, before anything changes, a page this path is not
//! modelled for: a huge page, the zero page, a page another process maps
//! too (try_to_unmap walks every mapping), or no present page (swapped out,
//! under migration, unmapped).

use super::kernel::{Cx, HostEvent, MmError, Notify, Progress};
use super::mapping::{self, Mapping, MIGRATION_ENTRY, SWAP_ENTRY};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{Pfn, PAGE_SIZE};

/// Checkpoints of `reclaim`.
pub const CHECKPOINTS_RECLAIM: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_entry",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "pageout",
    "free",
];

/// Checkpoints of `reclaim` of a page MADV_FREE made lazily freeable.
pub const CHECKPOINTS_DISCARD: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "discard",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "free",
];

/// Checkpoints of `migrate`.
pub const CHECKPOINTS_MIGRATE: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_entry",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "copy",
    "remap",
    "free",
];

/// Which caller of try_to_unmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapKind {
    /// Reclaim of an anonymous page to swap.
    Reclaim,
    /// Page migration (compaction, NUMA balancing, hot-unplug).
    Migrate,
    /// Reclaim of a lazily freeable (MADV_FREE) anonymous page: discarded
    /// without I/O unless its PTE was dirtied again since, in which case the
    /// PTE is put back and the page kept (`discard`).
    Discard,
    /// Reclaim of a file page: the PTE is simply cleared (the page cache
    /// keeps the page); the one branch where the seed's diff keeps the
    /// notify ("just to be safe").
    ReclaimFile,
}

#[derive(Debug)]
pub struct UnmapOp {
    kind: UnmapKind,
    va: u64,
    step: usize,
    pte_pa: u64,
    old: Pfn,
    cleared: u64,
    new: Pfn,
    notify: Notify,
}

impl UnmapOp {
    pub fn new(kind: UnmapKind, va: u64) -> Self {
        UnmapOp {
            kind,
            va,
            step: 0,
            pte_pa: 0,
            old: 0,
            cleared: 0,
            new: 0,
            notify: Notify::default(),
        }
    }

    fn checkpoints(&self) -> &'static [&'static str] {
        match self.kind {
            UnmapKind::Reclaim | UnmapKind::ReclaimFile => CHECKPOINTS_RECLAIM,
            UnmapKind::Discard => CHECKPOINTS_DISCARD,
            UnmapKind::Migrate => CHECKPOINTS_MIGRATE,
        }
    }

    fn ptl(&self) -> u64 {
        self.pte_pa >> 12
    }
}

impl KernelPath for UnmapOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let start = self.va & !(PAGE_SIZE - 1);
        let end = start + PAGE_SIZE;
        let Some(&name) = self.checkpoints().get(self.step) else {
            return Ok(Progress::Done);
        };
        match name {
            "start" => {
                let m = mapping::lookup(cx.k, &mut cx.m.mem, self.va)?;
                let action = match self.kind {
                    UnmapKind::Migrate => "migrate",
                    _ => "reclaim",
                };
                let refuse = |what: String| {
                    mapping::refuse(
                        format!("{action} of {what}"),
                        self.va,
                        "reclaim or migrate a private small page that only this process maps, while it is mapped",
                    )
                };
                let Some((pte_pa, pfn)) = m.small_page(cx.k) else {
                    let why = match m {
                        Mapping::Huge { .. } => " (THP and hugetlb reclaim and migration)",
                        Mapping::Pte { .. } => " (never reclaimed or migrated)",
                        Mapping::Absent { .. } => " (nothing to unmap)",
                    };
                    return Err(refuse(format!("{}{why}", m.describe(cx.k))));
                };
                if cx.m.mem.refcount(pfn) != 1 {
                    return Err(refuse(
                        "a page another process maps too (COW or KSM: try_to_unmap walks every mapping)".into(),
                    ));
                }
                self.pte_pa = pte_pa;
                self.old = pfn;
                cx.m.mem.get(self.old)?; // isolate_lru_page / the caller's reference
                if self.kind == UnmapKind::Reclaim && cx.k.lazyfree.contains(&self.old) {
                    self.kind = UnmapKind::Discard;
                }
            }
            "lock" => {
                spin!(path::lock(cx, self.ptl()));
                let e = cx.m.mem.read(self.pte_pa)?.value;
                if !cx.pt().present(e) || cx.pt().pfn(e) != self.old {
                    // Unmapped meanwhile (a munmap): page_vma_mapped_walk
                    // finds no mapping to unmap; the caller goes on.
                    self.step = self
                        .checkpoints()
                        .iter()
                        .position(|c| *c == "unlock")
                        .unwrap_or(0);
                    return Ok(Progress::Reached("lock"));
                }
            }
            "clear_flush" => {
                if self.cleared == 0 {
                    self.cleared = path::set_entry(cx, self.pte_pa, self.va, 0)?;
                }
                spin!(self.notify.run(cx, Prim::ClearFlush, start, end)?);
            }
            "set_entry" => {
                let entry = match self.kind {
                    UnmapKind::Reclaim => (self.old << 12) | SWAP_ENTRY,
                    UnmapKind::Migrate => (self.old << 12) | MIGRATION_ENTRY,
                    UnmapKind::ReclaimFile | UnmapKind::Discard => 0,
                };
                path::set_entry(cx, self.pte_pa, self.va, entry)?;
            }
            "discard" => {
                if cx.pt().dirty(self.cleared) {
                    // Dirtied since MADV_FREE: set_page_dirty; the PTE goes
                    // back, SetPageSwapBacked, and the page is not discarded.
                    path::set_entry(cx, self.pte_pa, self.va, self.cleared)?;
                    cx.k.lazyfree.remove(&self.old);
                    self.step = CHECKPOINTS_DISCARD
                        .iter()
                        .position(|c| *c == "unlock")
                        .unwrap_or(0);
                    return Ok(Progress::Reached("discard"));
                }
                path::set_entry(cx, self.pte_pa, self.va, 0)?;
                cx.events.push(HostEvent::Discard {
                    va: self.va,
                    pfn: self.old,
                });
            }
            "remove_rmap" => path::put_page(cx, self.old)?,
            "notify" => {
                let prim = Prim::InvalidateRange {
                    seed_keeps: self.kind == UnmapKind::ReclaimFile,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
            }
            "unlock" => path::unlock(cx, self.ptl()),
            "end" => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
            }
            "pageout" => {
                let w = cx.m.mem.read((self.old << 12) | (self.va & 0xff8))?;
                cx.events.push(HostEvent::Io {
                    tid: cx.tid,
                    va: self.va,
                    value: w.value,
                    version: w.version,
                });
            }
            "copy" => {
                self.new = cx.m.mem.alloc()?;
                cx.m.mem.copy_frame(self.new, self.old)?;
            }
            "remap" => {
                spin!(path::lock(cx, self.ptl()));
                // remove_migration_pte: only where the migration entry still
                // is (a munmap since may have cleared it); otherwise the new
                // page is not mapped and goes back.
                let e = cx.m.mem.read(self.pte_pa)?.value;
                if e == (self.old << 12) | MIGRATION_ENTRY {
                    let f = cx.pt();
                    let e = f.entry(self.new, f.flags(self.cleared));
                    path::set_entry(cx, self.pte_pa, self.va, e)?;
                } else {
                    path::put_page(cx, self.new)?;
                }
                path::unlock(cx, self.ptl());
            }
            "free" => path::put_page(cx, self.old)?,
            _ => unreachable!("every checkpoint is handled"),
        }
        self.step += 1;
        Ok(Progress::Reached(name))
    }

    fn finished(&self) -> bool {
        self.step >= self.checkpoints().len()
    }
}
