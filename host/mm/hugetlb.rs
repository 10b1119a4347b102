//! hugetlbfs (mm/hugetlb.c, Linux 4.14/4.15): `hugetlb_change_protection`
//! (mprotect, site e) and `copy_hugetlb_page_range` (fork, site d), for 2 MiB
//! huge pages mapped by PMD entries. Both refuse at `start`, before any
//! change, a page that is not a hugetlb page (a small page: change_pte_range
//! / copy_pte_range; a THP or the huge zero page: change_huge_pmd /
//! copy_huge_pmd), or no page at all.
//!
//! `mprotect X ro`:
//! ```text
//! start    S (the VMA range); i_mmap_lock_write
//! lock     huge_pte_lock
//! change   huge_ptep_get_and_clear; huge_pte_modify(read-only); set_huge_pte_at
//! unlock   spin_unlock
//! flush    flush_hugetlb_tlb_range (the CPU flush; 6.6+: the secondary flush too)
//! notify   mmu_notifier_invalidate_range (4.14; the seed drops it: a downgrade)
//! end      i_mmap_unlock_write; E
//! ```
//! `fork X` (the VMA holding X is copied to a child; `cow`: a private mapping):
//! ```text
//! start    S (the VMA range)
//! lock     huge_pte_lock of the child's entry, then the parent's (nested)
//! wrprotect huge_ptep_set_wrprotect on the parent's entry (no CPU flush here)
//! notify   mmu_notifier_invalidate_range(vma range) (4.14; dropped by the seed)
//! copy     get_page; page_dup_rmap; set_huge_pte_at in the child
//! unlock   both locks
//! end      E
//! flush    dup_mmap's flush_tlb_mm(oldmm) after every VMA is copied (the CPU
//!          flush of the write-protect; 6.6+: the secondary flush too)
//! ```

use super::kernel::{Cx, MmError, Notify, Progress};
use super::mapping::{self, HugeKind, Mapping};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{AddressSpace, PageSize, Prot};

pub const CHECKPOINTS_HUGETLB: &[&str] = &[
    "start",
    "lock",
    "change",
    "wrprotect",
    "notify",
    "copy",
    "unlock",
    "flush",
    "end",
];

const HPAGE: u64 = 1 << 21;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Start,
    Lock,
    Change,
    Wrprotect,
    Notify,
    Copy,
    Unlock,
    Flush,
    End,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mprotect,
    Fork,
}

#[derive(Debug)]
pub struct HugetlbOp {
    kind: Kind,
    haddr: u64,
    pc: Pc,
    pmd_pa: u64,
    child: Option<(AddressSpace, u64)>,
    notify: Notify,
}

impl HugetlbOp {
    pub fn mprotect_ro(va: u64) -> Self {
        Self::new(Kind::Mprotect, va)
    }

    pub fn fork(va: u64) -> Self {
        Self::new(Kind::Fork, va)
    }

    fn new(kind: Kind, va: u64) -> Self {
        HugetlbOp {
            kind,
            haddr: va & !(HPAGE - 1),
            pc: Pc::Start,
            pmd_pa: 0,
            child: None,
            notify: Notify::default(),
        }
    }

    fn range(&self) -> (u64, u64) {
        (self.haddr, self.haddr + HPAGE)
    }

    /// `start`: the region must be a hugetlb page's (its PMD entry, a leaf
    /// without a deposited table); anything else is refused before any change.
    fn check(&self, cx: &mut Cx) -> Result<u64, MmError> {
        let m = mapping::lookup(cx.k, &mut cx.m.mem, self.haddr)?;
        let (action, instead) = match self.kind {
            Kind::Mprotect => (
                "mprotect",
                "mprotect takes a hugetlb page ('hugetlb: true')",
            ),
            Kind::Fork => ("fork", "fork takes a hugetlb page ('hugetlb: true')"),
        };
        let linux = match (self.kind, m) {
            (
                _,
                Mapping::Huge {
                    pmd_pa,
                    kind: HugeKind::Hugetlb,
                    ..
                },
            ) => return Ok(pmd_pa),
            (Kind::Mprotect, Mapping::Huge { .. }) => "change_huge_pmd",
            (Kind::Fork, Mapping::Huge { .. }) => "copy_huge_pmd",
            (Kind::Mprotect, Mapping::Pte { .. }) => "change_pte_range",
            (Kind::Fork, Mapping::Pte { .. }) => "copy_pte_range",
            (_, Mapping::Absent { .. }) => "nothing to change",
        };
        Err(mapping::refuse(
            format!("{action} of {} ({linux})", m.describe(cx.k)),
            self.haddr,
            instead,
        ))
    }
}

impl KernelPath for HugetlbOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = self.range();
        let reached = match self.pc {
            Pc::Start => {
                self.pmd_pa = self.check(cx)?;
                if self.kind == Kind::Fork {
                    // The child's address space, with its page tables down to the PMD.
                    let format = cx.pt();
                    let child = AddressSpace::with_format(&mut cx.m.mem, 0, format)?;
                    let none = Prot::default();
                    let dst =
                        child.map_prot(&mut cx.m.mem, self.haddr, 0, PageSize::Huge2M, none)?;
                    cx.m.mem.write(dst, 0, 0)?;
                    self.child = Some((child, dst));
                }
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                if let Some((_, dst)) = self.child {
                    spin!(path::lock(cx, dst >> 12));
                }
                spin!(path::lock(cx, self.pmd_pa >> 12));
                self.pc = if self.kind == Kind::Fork {
                    Pc::Wrprotect
                } else {
                    Pc::Change
                };
                "lock"
            }
            Pc::Change => {
                let old = path::set_entry(cx, self.pmd_pa, self.haddr, 0)?;
                path::set_entry(cx, self.pmd_pa, self.haddr, cx.pt().wrprotect(old))?;
                self.pc = Pc::Unlock;
                "change"
            }
            Pc::Wrprotect => {
                let old = cx.m.mem.read(self.pmd_pa)?.value;
                path::set_entry(cx, self.pmd_pa, self.haddr, cx.pt().wrprotect(old))?;
                self.pc = Pc::Notify;
                "wrprotect"
            }
            Pc::Notify => {
                let prim = Prim::InvalidateRange { seed_keeps: false };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = if self.kind == Kind::Fork {
                    Pc::Copy
                } else {
                    Pc::End
                };
                "notify"
            }
            Pc::Copy => {
                let e = cx.m.mem.read(self.pmd_pa)?.value;
                cx.m.mem.get(cx.pt().pfn(e) & !0x1ff)?;
                if let Some((_, dst)) = self.child {
                    cx.m.mem.write(dst, e, 0)?;
                }
                self.pc = Pc::Unlock;
                "copy"
            }
            Pc::Unlock => {
                path::unlock(cx, self.pmd_pa >> 12);
                if let Some((_, dst)) = self.child {
                    path::unlock(cx, dst >> 12);
                }
                self.pc = if self.kind == Kind::Fork {
                    Pc::End
                } else {
                    Pc::Flush
                };
                "unlock"
            }
            Pc::Flush => {
                spin!(self.notify.run(cx, Prim::FlushTlbRange, start, end)?);
                self.pc = if self.kind == Kind::Fork {
                    Pc::Done
                } else {
                    Pc::Notify
                };
                "flush"
            }
            Pc::End => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
                self.pc = if self.kind == Kind::Fork {
                    Pc::Flush
                } else {
                    Pc::Done
                };
                "end"
            }
            Pc::Done => return Ok(Progress::Done),
        };
        Ok(Progress::Reached(reached))
    }

    fn finished(&self) -> bool {
        self.pc == Pc::Done
    }
}
