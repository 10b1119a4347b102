//! A user store, and the write-protect fault it takes on a COW page:
//! `do_wp_page` then `wp_page_copy` (mm/memory.c, Linux 4.14/4.15), one
//! checkpoint per point where the thread can be preempted.
//!
//! ```text
//! fault        take PTL, read orig_pte, get_page(old), drop PTL (do_wp_page)
//! copy         alloc new page, copy_user_highpage(new, old)
//! start        mmu_notifier_invalidate_range_start (S)
//! lock         pte_offset_map_lock
//! pte_same     if !pte_same(*pte, orig_pte): give up (no copy installed)
//! clear_flush  ptep_clear_flush_notify (cfn: the seed keeps this notify)
//! set_pte      page_add_new_anon_rmap(new); set_pte_at_notify(new, writable)
//! remove_rmap  page_remove_rmap(old); put_page(old)  (the mapping's reference)
//! unlock       pte_unmap_unlock
//! end          mmu_notifier_invalidate_range_end (4.14) / _only_end (4.15)
//! put_old      put_page(old)  (do_wp_page's reference)
//! store        the store retried, now through the new PTE
//! ```
//! A page only this process maps is reused instead (`wp_page_reuse`:
//! checkpoint `reuse`, the PTE made writable in place, no copy, no flush).

use super::kernel::{Cx, HostEvent, MmError, Notify, Progress, WaitOn};
use super::mapping::{self, HugeKind, Mapping};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use super::thp::{ThpFallback, ZeroSplit};
use crate::mem::{Pfn, Prot, PAGE_SIZE};

/// Checkpoint names of the COW path, in order (the scheduler's `until`).
pub const CHECKPOINTS_WP_PAGE_COPY: &[&str] = &[
    "fault",
    "copy",
    "start",
    "lock",
    "pte_same",
    "clear_flush",
    "set_pte",
    "remove_rmap",
    "unlock",
    "end",
    "put_old",
    "store",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Access,
    Fault,
    Copy,
    Start,
    Lock,
    PteSame,
    ClearFlush,
    SetPte,
    RemoveRmap,
    Unlock,
    End,
    PutOld,
    /// In do_huge_pmd_wp_page_fallback.
    Huge,
    Finished,
}

/// `*va = value` by a CPU thread, faulting into COW if the PTE is
/// write-protected.
#[derive(Debug)]
pub struct StoreOp {
    pub va: u64,
    pub value: u64,
    pc: Pc,
    pte_pa: u64,
    orig_pte: u64,
    old: Pfn,
    new: Pfn,
    same: bool,
    acted: bool,
    notify: Notify,
    thp: Option<Box<dyn KernelPath>>,
}

impl StoreOp {
    pub fn new(va: u64, value: u64) -> Self {
        StoreOp {
            va,
            value,
            pc: Pc::Access,
            pte_pa: 0,
            orig_pte: 0,
            old: 0,
            new: 0,
            same: false,
            acted: false,
            notify: Notify::default(),
            thp: None,
        }
    }

    fn page(&self) -> (u64, u64) {
        let s = self.va & !(PAGE_SIZE - 1);
        (s, s + PAGE_SIZE)
    }

    fn ptl(&self) -> u64 {
        self.pte_pa >> 12
    }

    fn set_pte(&self, cx: &mut Cx, new: u64) -> Result<(), MmError> {
        path::set_entry(cx, self.pte_pa, self.va, new).map(|_| ())
    }

    fn lock(&self, cx: &mut Cx) -> Option<WaitOn> {
        path::lock(cx, self.ptl())
    }
}

impl KernelPath for StoreOp {
    /// One step: at most one checkpoint.
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = self.page();
        let reached = match self.pc {
            Pc::Access => {
                let leaf = match path::cpu_walk_or_wait(cx, self.va, "a CPU write to")? {
                    Ok(l) => l,
                    Err(w) => return Ok(Progress::Wait(w)),
                };
                if leaf.writable {
                    path::touch(cx, &leaf, true)?;
                    let pa = (leaf.pfn << 12) | (self.va & 0xff8);
                    let version = cx.m.store(pa, self.value)?;
                    cx.events.push(HostEvent::Store {
                        tid: cx.tid,
                        va: self.va,
                        pa,
                        value: self.value,
                        version,
                    });
                    self.pc = Pc::Finished;
                    return Ok(Progress::Reached("store"));
                }
                self.pte_pa = leaf.entry_pa;
                if leaf.size != crate::mem::PageSize::Small {
                    // do_huge_pmd_wp_page: the huge zero page is split (and
                    // the fault retried on its PTE); a shared THP is copied
                    // by the fallback (no huge page can be allocated).
                    let head = cx.pt().pfn(leaf.entry) & !0x1ff;
                    let kind = match mapping::lookup(cx.k, &mut cx.m.mem, self.va)? {
                        Mapping::Huge { kind, .. } => kind,
                        m => {
                            return Err(mapping::refuse(
                                format!("a CPU write to {}", m.describe(cx.k)),
                                self.va,
                                "report this: the CPU walk and the page table disagree",
                            ))
                        }
                    };
                    self.thp = Some(match kind {
                        HugeKind::HugeZero => Box::new(ZeroSplit::new(self.va)),
                        HugeKind::Thp if cx.m.mem.refcount(head) > 1 => {
                            Box::new(ThpFallback::new(self.va, leaf.entry_pa))
                        }
                        HugeKind::Thp => {
                            return Err(mapping::refuse(
                                "a CPU write to a read-only transparent huge page that only this process maps (do_huge_pmd_wp_page reuses it in place)".into(),
                                self.va,
                                "write to a 'thp: true, cow: true' page (shared with the parent)",
                            ))
                        }
                        HugeKind::Hugetlb => {
                            return Err(mapping::refuse(
                                "a CPU write to a read-only hugetlb page (hugetlb_cow after fork; SIGSEGV after mprotect)".into(),
                                self.va,
                                "write to a hugetlb page before it is write-protected (a device write gets a fault)",
                            ))
                        }
                    });
                    self.pc = Pc::Huge;
                } else {
                    self.pc = Pc::Fault;
                }
                return self.step(cx);
            }
            Pc::Fault => {
                spin!(self.lock(cx));
                self.orig_pte = cx.m.mem.read(self.pte_pa)?.value;
                let f = cx.pt();
                self.old = f.pfn(self.orig_pte);
                if cx.m.mem.refcount(self.old) == 1 {
                    // wp_page_reuse: nobody else maps it; upgrade in place.
                    let e = f.mkyoung(f.mkdirty(f.mkwrite(self.orig_pte)));
                    self.set_pte(cx, e)?;
                    path::unlock(cx, self.ptl());
                    self.pc = Pc::Access;
                    return Ok(Progress::Reached("reuse"));
                }
                cx.m.mem.get(self.old)?;
                path::unlock(cx, self.ptl());
                self.pc = Pc::Copy;
                "fault"
            }
            Pc::Copy => {
                self.new = cx.m.mem.alloc()?;
                cx.m.mem.copy_frame(self.new, self.old)?;
                self.pc = Pc::Start;
                "copy"
            }
            Pc::Start => {
                // S: the IOMMU SVA drivers have no invalidate_range_start.
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                spin!(self.lock(cx));
                self.pc = Pc::PteSame;
                "lock"
            }
            Pc::PteSame => {
                self.same = cx.m.mem.read(self.pte_pa)?.value == self.orig_pte;
                self.pc = if self.same {
                    Pc::ClearFlush
                } else {
                    Pc::RemoveRmap
                };
                "pte_same"
            }
            Pc::ClearFlush => {
                if !self.acted {
                    self.set_pte(cx, 0)?; // ptep_clear_flush: CPU TLB flushed with it
                    self.acted = true;
                }
                let prim = Prim::ClearFlushNotify { seed_keeps: true };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.acted = false;
                self.pc = Pc::SetPte;
                "clear_flush"
            }
            Pc::SetPte => {
                let e = cx.pt().leaf(self.new, Prot::USER_RW, false);
                self.set_pte(cx, e)?;
                self.pc = Pc::RemoveRmap;
                "set_pte"
            }
            Pc::RemoveRmap => {
                // `new_page = old_page` when the copy was installed, so this
                // put drops the old mapping's reference; otherwise it frees
                // the unused copy.
                let victim = if self.same { self.old } else { self.new };
                path::put_page(cx, victim)?;
                self.pc = Pc::Unlock;
                "remove_rmap"
            }
            Pc::Unlock => {
                path::unlock(cx, self.ptl());
                self.pc = Pc::End;
                "unlock"
            }
            Pc::End => {
                let prim = Prim::End {
                    seed_only_end: true,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = Pc::PutOld;
                "end"
            }
            Pc::PutOld => {
                path::put_page(cx, self.old)?;
                self.pc = Pc::Access;
                "put_old"
            }
            Pc::Huge => {
                let Some(t) = self.thp.as_mut() else {
                    self.pc = Pc::Access;
                    return self.step(cx);
                };
                let p = t.step(cx)?;
                if t.finished() {
                    self.thp = None;
                    self.pc = Pc::Access;
                }
                return Ok(p);
            }
            Pc::Finished => return Ok(Progress::Done),
        };
        Ok(Progress::Reached(reached))
    }

    fn finished(&self) -> bool {
        self.pc == Pc::Finished
    }
}
