//! KSM (mm/ksm.c, Linux 4.14/4.15): `write_protect_page` (site f) and
//! `replace_page` (site g), as `cmp_and_merge_page` runs them.
//!
//! `ksm-wrprotect X` runs write_protect_page on X's page alone:
//! ```text
//! start        S (one page)
//! lock         page_vma_mapped_walk takes the PTL (a PTE already read-only
//!              and clean is left as it is: on to unlock)
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
//! put_old        the caller's put_page of Y's old page (try_to_merge_one_page), after E,
//!                and of X's page (the reference stable_tree_search took at start)
//! ```
//! `start` refuses, before any change, a page KSM does not scan or the model
//! does not merge: a file page, a huge page, the zero page, a page with no
//! present PTE; and for `ksm-merge`, an X that is writable (not yet a KSM
//! page: `ksm-wrprotect` it first) or already shares Y's frame.

use super::kernel::{Cx, MmError, Notify, Progress};
use super::mapping::{self, HugeKind, Mapping, Vmas};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{Pfn, PAGE_SIZE};

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
    /// write_protect_page failed: the PTE no longer maps the page.
    failed: bool,
    vmas: Vmas,
    notify: Notify,
}

impl KsmOp {
    pub fn wrprotect(va: u64, vmas: Vmas) -> Self {
        Self::new(va, None, vmas)
    }

    pub fn merge(va: u64, into: u64, vmas: Vmas) -> Self {
        Self::new(va, Some(into), vmas)
    }

    fn new(va: u64, into: Option<u64>, vmas: Vmas) -> Self {
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
            failed: false,
            vmas,
            notify: Notify::default(),
        }
    }

    fn range(&self) -> (u64, u64) {
        (self.va, self.va + PAGE_SIZE)
    }

    fn action(&self) -> &'static str {
        match self.into {
            None => "ksm-wrprotect",
            Some(_) => "ksm-merge",
        }
    }

    /// A page KSM scans: a private anonymous small page mapped by a PTE
    /// (`which`: "of " for the page, "into " for the KSM page). Its PTE's
    /// address and frame.
    fn mergeable(&self, cx: &mut Cx, va: u64, which: &str) -> Result<(u64, Pfn), MmError> {
        let m = mapping::lookup(cx.k, &mut cx.m.mem, va)?;
        let why = if self.vmas.is_file(va) {
            "a page of a shared file mapping (KSM merges private anonymous pages only)"
        } else {
            match m {
                Mapping::Pte { .. } => match m.small_page(cx.k) {
                    Some(p) => return Ok(p),
                    None => "the zero page (not an anonymous page: KSM skips it)",
                },
                Mapping::Huge {
                    kind: HugeKind::Thp,
                    ..
                } => "a transparent huge page (KSM splits it first: a THP split is not modelled)",
                Mapping::Huge {
                    kind: HugeKind::HugeZero,
                    ..
                } => "the huge zero page (not an anonymous page: KSM skips it)",
                Mapping::Huge {
                    kind: HugeKind::Hugetlb,
                    ..
                } => "a hugetlb page (KSM never scans hugetlb VMAs)",
                Mapping::Absent { .. } => "a page with no present PTE (KSM's scan skips it)",
            }
        };
        Err(mapping::refuse(
            format!("{} {which}{why}", self.action()),
            va,
            "ksm takes private small pages, mapped, and merges into a write-protected one ('ksm-wrprotect' it first)",
        ))
    }

    /// `start`: the page (and the KSM page to merge into) are pages KSM
    /// would scan; refused before any change otherwise.
    fn check(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        let (pte_pa, page) = self.mergeable(cx, self.va, "of ")?;
        if let Some(into) = self.into {
            let (kpte_pa, kpage) = self.mergeable(cx, into, "into ")?;
            let kpte = cx.m.mem.read(kpte_pa)?.value;
            let refuse = |what: &str| {
                Err(mapping::refuse(
                    format!("ksm-merge into {what}"),
                    into,
                    "merge into a page 'ksm-wrprotect' made the KSM page, other than the one merged",
                ))
            };
            if kpage == page {
                return refuse("the page's own frame (the two already share it: merged)");
            }
            if cx.pt().writable(kpte) {
                return refuse(
                    "a writable page (a KSM page is always mapped read-only; ksm-wrprotect it first)",
                );
            }
            // stable_tree_search: the KSM page's reference until the merge is over.
            cx.m.mem.get(kpage)?;
            self.kpage = kpage;
        }
        self.pte_pa = pte_pa;
        self.page = page;
        Ok(())
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
                self.check(cx)?;
                cx.m.mem.get(self.page)?;
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                spin!(path::lock(cx, self.pte_pa >> 12));
                let e = cx.m.mem.read(self.pte_pa)?.value;
                let f = cx.pt();
                self.pc = if !f.present(e) || f.pfn(e) != self.page {
                    // page_vma_mapped_walk finds the page no more: no merge.
                    self.failed = true;
                    Pc::Unlock
                } else if !f.writable(e) && !f.dirty(e) {
                    // Already read-only and clean: nothing to change.
                    self.orig_pte = e;
                    Pc::Unlock
                } else {
                    Pc::ClearFlush
                };
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
                let f = cx.pt();
                let e = f.mkclean(f.wrprotect(self.cleared));
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
                self.pc = if self.into.is_some() && !self.failed {
                    Pc::Identical
                } else {
                    Pc::PutOld
                };
                "end"
            }
            Pc::Identical => {
                let same = Self::frames_identical(cx, self.page, self.kpage)?;
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
                let f = cx.pt();
                let flags = f.flags(f.mkclean(f.wrprotect(self.orig_pte)));
                path::set_entry(cx, self.pte_pa, self.va, f.entry(self.kpage, flags))?;
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
                if self.kpage != 0 {
                    path::put_page(cx, self.kpage)?; // the KSM page's reference from start
                }
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
