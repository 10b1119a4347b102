//! KSM (mm/ksm.c, Linux 4.14/4.15): `write_protect_page` (site f) and
//! `replace_page` (site g), as `cmp_and_merge_page` runs them.
//!
//! `ksm-wrprotect X` runs write_protect_page on X's page alone:
//! ```text
//! start        S (one page)
//! lock         page_vma_mapped_walk takes the PTL
//! clear_flush  ptep_clear_flush_notify (4.14) / ptep_clear_flush (4.15: "downgrading to read only")
//! set_pte      the page count check passed (no GUP pin); set_pte_at_notify(wrprotect + clean)
//! unlock       page_vma_mapped_walk_done
//! end          E
//! ```
//! `ksm-merge Y X` merges Y into X's page (the KSM page): write_protect_page
//! on Y with the checkpoints above, then `identical` (pages_identical: if Y
//! no longer equals X, the merge stops here), then replace_page:
//! ```text
//! rp_start       S
//! rp_lock        pte_offset_map_lock
//! rp_pte_same    pte_same(*ptep, orig_pte), else give up
//! rp_clear_flush get_page(kpage); ptep_clear_flush_notify (4.14) / ptep_clear_flush (4.15)
//! rp_set_pte     set_pte_at_notify(kpage, read-only); page_remove_rmap(old); put_page(old)
//! rp_unlock      pte_unmap_unlock
//! rp_end         E
//! put_old        the caller's put_page of Y's old page (try_to_merge_one_page), after E
//! ```

use super::kernel::{Cx, MmError, Notify, Progress};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{pte, Pfn, PAGE_SIZE};

pub const CHECKPOINTS_KSM: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_pte",
    "unlock",
    "end",
    "identical",
    "rp_start",
    "rp_lock",
    "rp_pte_same",
    "rp_clear_flush",
    "rp_set_pte",
    "rp_unlock",
    "rp_end",
    "put_old",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Start,
    Lock,
    ClearFlush,
    SetPte,
    Unlock,
    End,
    Identical,
    RpStart,
    RpLock,
    RpPteSame,
    RpClearFlush,
    RpSetPte,
    RpUnlock,
    RpEnd,
    PutOld,
    Done,
}

#[derive(Debug)]
pub struct KsmOp {
    va: u64,
    /// The KSM page to merge into (`ksm-merge`), None for `ksm-wrprotect`.
    into: Option<u64>,
    pc: Pc,
    pte_pa: u64,
    page: Pfn,
    kpage: Pfn,
    orig_pte: u64,
    cleared: u64,
    acted: bool,
    notify: Notify,
}

impl KsmOp {
    pub fn wrprotect(va: u64) -> Self {
        Self::new(va, None)
    }

    pub fn merge(va: u64, into: u64) -> Self {
        Self::new(va, Some(into))
    }

    fn new(va: u64, into: Option<u64>) -> Self {
        KsmOp {
            va: va & !(PAGE_SIZE - 1),
            into,
            pc: Pc::Start,
            pte_pa: 0,
            page: 0,
            kpage: 0,
            orig_pte: 0,
            cleared: 0,
            acted: false,
            notify: Notify::default(),
        }
    }

    fn range(&self) -> (u64, u64) {
        (self.va, self.va + PAGE_SIZE)
    }

    fn frames_identical(cx: &Cx, a: Pfn, b: Pfn) -> Result<bool, MmError> {
        for i in 0..512u64 {
            if cx.m.mem.read((a << 12) + 8 * i)?.value != cx.m.mem.read((b << 12) + 8 * i)?.value {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl KernelPath for KsmOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = self.range();
        let reached = match self.pc {
            Pc::Start => {
                // get_mergeable_page: the caller holds a reference until the end.
                let leaf = cx.k.mm.walk(&cx.m.mem, self.va)?;
                self.pte_pa = leaf.entry_pa;
                self.page = leaf.pfn;
                cx.m.mem.get(self.page)?;
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                spin!(path::lock(cx, self.pte_pa >> 12));
                self.pc = Pc::ClearFlush;
                "lock"
            }
            Pc::ClearFlush => {
                if !self.acted {
                    self.cleared = path::set_entry(cx, self.pte_pa, self.va, 0)?;
                    self.acted = true;
                }
                let prim = Prim::ClearFlushNotify { seed_keeps: false };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.acted = false;
                self.pc = Pc::SetPte;
                "clear_flush"
            }
            Pc::SetPte => {
                let e = self.cleared & !(pte::RW | pte::D);
                path::set_entry(cx, self.pte_pa, self.va, e)?;
                self.orig_pte = e;
                self.pc = Pc::Unlock;
                "set_pte"
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
                self.pc = if self.into.is_some() {
                    Pc::Identical
                } else {
                    Pc::PutOld
                };
                "end"
            }
            Pc::Identical => {
                let into = self.into.unwrap_or_default();
                self.kpage = cx.k.mm.walk(&cx.m.mem, into)?.pfn;
                let same =
                    self.kpage != self.page && Self::frames_identical(cx, self.page, self.kpage)?;
                self.pc = if same { Pc::RpStart } else { Pc::PutOld };
                "identical"
            }
            Pc::RpStart => {
                self.pc = Pc::RpLock;
                "rp_start"
            }
            Pc::RpLock => {
                spin!(path::lock(cx, self.pte_pa >> 12));
                self.pc = Pc::RpPteSame;
                "rp_lock"
            }
            Pc::RpPteSame => {
                let same = cx.m.mem.read(self.pte_pa)?.value == self.orig_pte;
                self.pc = if same { Pc::RpClearFlush } else { Pc::RpUnlock };
                "rp_pte_same"
            }
            Pc::RpClearFlush => {
                if !self.acted {
                    cx.m.mem.get(self.kpage)?;
                    path::set_entry(cx, self.pte_pa, self.va, 0)?;
                    self.acted = true;
                }
                let prim = Prim::ClearFlushNotify { seed_keeps: false };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.acted = false;
                self.pc = Pc::RpSetPte;
                "rp_clear_flush"
            }
            Pc::RpSetPte => {
                let flags = self.orig_pte & !pte::ADDR & !(pte::RW | pte::D);
                path::set_entry(cx, self.pte_pa, self.va, pte::make(self.kpage, flags))?;
                path::put_page(cx, self.page)?; // page_remove_rmap + put_page: the mapping's reference
                self.pc = Pc::RpUnlock;
                "rp_set_pte"
            }
            Pc::RpUnlock => {
                path::unlock(cx, self.pte_pa >> 12);
                self.pc = Pc::RpEnd;
                "rp_unlock"
            }
            Pc::RpEnd => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = Pc::PutOld;
                "rp_end"
            }
            Pc::PutOld => {
                path::put_page(cx, self.page)?;
                self.pc = Pc::Done;
                "put_old"
            }
            Pc::Done => return Ok(Progress::Done),
        };
        Ok(Progress::Reached(reached))
    }

    fn finished(&self) -> bool {
        self.pc == Pc::Done
    }
}
