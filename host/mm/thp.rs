//! A write fault on a COW-shared transparent huge page when no new huge
//! page can be allocated: `do_huge_pmd_wp_page` then
//! `do_huge_pmd_wp_page_fallback` (mm/huge_memory.c, site b). The seed keeps
//! its notify under the PTL: 512 new pages replace the huge page (case B).
//!
//! ```text
//! fault        pmd_lock; pmd_same; the huge page is shared: get_page; unlock
//! copy         alloc 512 small pages; copy_user_highpage each subpage
//! start        S (the 2 MiB range)
//! lock         pmd_lock
//! pmd_same     if !pmd_same(*pmd, orig_pmd): give up (free the copies)
//! clear_flush  pmdp_huge_clear_flush_notify (cfn, kept by the seed)
//! fill         pgtable_trans_huge_withdraw; 512 writable PTEs to the copies; pmd_populate
//! remove_rmap  page_remove_rmap(huge page)
//! unlock       spin_unlock
//! end          E (4.14) / _only_end (4.15)
//! put_old      put_page(huge page)
//! ```
//! The huge-page allocation is modelled as failing (memory pressure): that
//! is when the fallback runs. The store is then retried by [`super::StoreOp`].

use super::kernel::{Cx, MmError, Notify, Progress, WaitOn};
use super::mapping::{self, Mapping, Vmas};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::{Pfn, Prot, PAGE_SIZE};

pub const CHECKPOINTS_THP_FALLBACK: &[&str] = &[
    "fault",
    "copy",
    "start",
    "lock",
    "pmd_same",
    "clear_flush",
    "fill",
    "remove_rmap",
    "unlock",
    "end",
    "put_old",
];

const HPAGE_SIZE: u64 = 1 << 21;
const HPAGE_NR: u64 = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pc {
    Fault,
    Copy,
    Start,
    Lock,
    PmdSame,
    ClearFlush,
    Fill,
    RemoveRmap,
    Unlock,
    End,
    PutOld,
    Done,
}

#[derive(Debug)]
pub struct ThpFallback {
    haddr: u64,
    pmd_pa: u64,
    pc: Pc,
    orig_pmd: u64,
    head: Pfn,
    copies: Vec<Pfn>,
    same: bool,
    cleared: bool,
    notify: Notify,
}

impl ThpFallback {
    pub fn new(va: u64, pmd_pa: u64) -> Self {
        ThpFallback {
            haddr: va & !(HPAGE_SIZE - 1),
            pmd_pa,
            pc: Pc::Fault,
            orig_pmd: 0,
            head: 0,
            copies: Vec::new(),
            same: false,
            cleared: false,
            notify: Notify::default(),
        }
    }

    fn ptl(&self) -> u64 {
        self.pmd_pa >> 12
    }

    fn lock(&self, cx: &mut Cx) -> Option<WaitOn> {
        path::lock(cx, self.ptl())
    }
}

impl KernelPath for ThpFallback {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = (self.haddr, self.haddr + HPAGE_SIZE);
        let reached = match self.pc {
            Pc::Fault => {
                let e = cx.m.mem.read(self.pmd_pa)?.value;
                if !cx.pt().is_huge(e) || !cx.k.deposited.contains_key(&self.pmd_pa) {
                    // Only an anonymous THP (with its deposited table) falls back to 4 KiB copies.
                    let m = mapping::lookup(cx.k, &mut cx.m.mem, self.haddr)?;
                    return Err(mapping::refuse(
                        format!("a CPU write's THP COW fallback on {}", m.describe(cx.k)),
                        self.haddr,
                        "write to a 'thp: true, cow: true' page",
                    ));
                }
                spin!(self.lock(cx));
                self.orig_pmd = cx.m.mem.read(self.pmd_pa)?.value;
                self.head = cx.pt().pfn(self.orig_pmd) & !(HPAGE_NR - 1);
                cx.m.mem.get(self.head)?;
                path::unlock(cx, self.ptl());
                self.pc = Pc::Copy;
                "fault"
            }
            Pc::Copy => {
                for i in 0..HPAGE_NR {
                    let p = cx.m.mem.alloc()?;
                    cx.m.mem.copy_frame(p, self.head + i)?;
                    self.copies.push(p);
                }
                self.pc = Pc::Start;
                "copy"
            }
            Pc::Start => {
                self.pc = Pc::Lock;
                "start"
            }
            Pc::Lock => {
                spin!(self.lock(cx));
                self.pc = Pc::PmdSame;
                "lock"
            }
            Pc::PmdSame => {
                self.same = cx.m.mem.read(self.pmd_pa)?.value == self.orig_pmd;
                if !self.same {
                    for p in std::mem::take(&mut self.copies) {
                        path::put_page(cx, p)?;
                    }
                }
                self.pc = if self.same {
                    Pc::ClearFlush
                } else {
                    Pc::Unlock
                };
                "pmd_same"
            }
            Pc::ClearFlush => {
                if !self.cleared {
                    path::set_entry(cx, self.pmd_pa, self.haddr, 0)?;
                    self.cleared = true;
                }
                // pmdp_huge_clear_flush_notify: flush_pmd_tlb_range, one entry
                let prim = Prim::ClearFlushNotify { seed_keeps: true };
                spin!(self.notify.run(cx, prim, start, end, HPAGE_SIZE)?);
                self.pc = Pc::Fill;
                "clear_flush"
            }
            Pc::Fill => {
                let table = cx.k.withdraw(self.pmd_pa).ok_or_else(|| {
                    mapping::refuse(
                        "a CPU write's THP COW fallback on a huge page without a deposited page table".into(),
                        self.haddr,
                        "write to a 'thp: true, cow: true' page",
                    )
                })?;
                let f = cx.pt();
                for (i, p) in self.copies.iter().enumerate() {
                    let e = f.leaf(*p, Prot::USER_RW, false);
                    cx.m.mem.write((table << 12) + 8 * i as u64, e, 0)?;
                }
                path::set_entry(cx, self.pmd_pa, self.haddr, f.table(table))?;
                self.pc = Pc::RemoveRmap;
                "fill"
            }
            Pc::RemoveRmap => {
                if self.same {
                    path::put_page(cx, self.head)?; // the mapping's reference
                }
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
                spin!(self.notify.run(cx, prim, start, end, PAGE_SIZE)?);
                self.pc = Pc::PutOld;
                "end"
            }
            Pc::PutOld => {
                path::put_page(cx, self.head)?;
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

/// Checkpoints of `__split_huge_pmd` on the huge zero page.
pub const CHECKPOINTS_ZERO_SPLIT: &[&str] = &[
    "split_start",
    "split_lock",
    "split_clear_flush",
    "split_fill",
    "split_unlock",
    "split_end",
];

/// Checkpoints of khugepaged's `collapse_huge_page`.
pub const CHECKPOINTS_COLLAPSE: &[&str] = &[
    "alloc",
    "start",
    "lock",
    "clear_flush",
    "unlock",
    "end",
    "copy",
    "set_pmd",
];

/// khugepaged's `collapse_huge_page` (mm/khugepaged.c, Linux 4.14/4.15):
/// the 4 KiB pages of a 2 MiB region are copied into a new huge page that
/// replaces the page table. The PMD is cleared and flushed, and E runs,
/// *before* the copy; the old page table is deposited with the new PMD.
///
/// ```text
/// alloc        the new huge page
/// start        S (the 2 MiB range)
/// lock         pmd_lock, then the page table's lock (the region must be as
///              alloc found it)
/// clear_flush  pmdp_collapse_flush (the CPU flush; 6.6+: the secondary flush too)
/// unlock       both locks
/// end          E: the secondary flush in 4.x (IOTINVAL drops the walker's
///              paging-structure cache entry for the old page table too)
/// copy         __collapse_huge_page_copy: each small page copied, its PTE
///              cleared and the page freed
/// set_pmd      deposit the old page table; set_pmd_at(huge page, writable)
/// ```
///
/// What khugepaged would refuse (`__collapse_huge_page_isolate`), and what
/// the copy does not model, is refused at `alloc`, before anything changes:
/// a region already PMD-mapped or without a page table, a swap or migration
/// entry in it (the swap-in is not modelled), the zero page, a page shared
/// with another process (`page_count`), a file page (another VMA), a named
/// page unmapped since the start (a hole in the VMA), no page mapped at all,
/// or none writable.
#[derive(Debug)]
pub struct CollapseOp {
    haddr: u64,
    pmd_pa: u64,
    step: usize,
    huge: Pfn,
    table: u64,
    /// The region's PTEs as `alloc` found them (A and D masked).
    snapshot: Vec<u64>,
    vmas: Vmas,
    notify: Notify,
}

impl CollapseOp {
    pub fn new(va: u64, vmas: Vmas) -> Self {
        CollapseOp {
            haddr: va & !(HPAGE_SIZE - 1),
            pmd_pa: 0,
            step: 0,
            huge: 0,
            table: 0,
            snapshot: Vec::new(),
            vmas,
            notify: Notify::default(),
        }
    }

    /// `alloc`, before the allocation: the region is one anonymous VMA's,
    /// mapped by a page table whose present pages khugepaged would take.
    fn check(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        let refuse = |what: String, va: u64| {
            Err(mapping::refuse(
                format!("collapse of a region holding {what}"),
                va,
                "collapse a region of private small pages that only this process maps, at least one writable",
            ))
        };
        let m = mapping::lookup(cx.k, &mut cx.m.mem, self.haddr)?;
        let (pmd_pa, table) = match m {
            Mapping::Huge { .. } => {
                return refuse(
                    format!("{} (already PMD-mapped)", m.describe(cx.k)),
                    self.haddr,
                )
            }
            Mapping::Absent { level: 2.., .. } => {
                return refuse("no page table".into(), self.haddr)
            }
            Mapping::Pte { pte_pa, .. }
            | Mapping::Absent {
                entry_pa: pte_pa, ..
            } => (cx.k.mm().pmd_pa(&mut cx.m.mem, self.haddr)?, pte_pa >> 12),
        };
        if let Some(f) = self.vmas.file_in_region(self.haddr) {
            return refuse(
                "a page of a shared file mapping (another VMA; khugepaged collapses within one anonymous VMA)".into(),
                f,
            );
        }
        if let Some(p) = (self.vmas.in_region(self.haddr)).find(|&p| {
            cx.m.mem
                .read((table << 12) + 8 * ((p >> 12) & 0x1ff))
                .is_ok_and(|w| w.value == 0)
        }) {
            return refuse(
                "a page unmapped since the start (a munmap leaves a hole in the VMA, and khugepaged collapses within one VMA; the zero-fill of a discarded MADV_FREE page is not modelled)".into(),
                p,
            );
        }
        let (mut mapped, mut writable) = (0, false);
        for i in 0..HPAGE_NR {
            let va = self.haddr + (i << 12);
            let e = cx.m.mem.read((table << 12) + 8 * i)?.value;
            if e == 0 {
                continue;
            }
            if !cx.pt().present(e) {
                let m = mapping::lookup(cx.k, &mut cx.m.mem, va)?;
                return refuse(format!("{} (khugepaged's swap-in)", m.describe(cx.k)), va);
            }
            let pfn = cx.pt().pfn(e);
            if pfn == cx.k.zero_pfn {
                return refuse("the zero page".into(), va);
            }
            if cx.m.mem.refcount(pfn) != 1 {
                return refuse(
                    "a page shared with another process (COW or KSM: khugepaged gives up on page_count)".into(),
                    va,
                );
            }
            mapped += 1;
            writable |= cx.pt().writable(e);
        }
        if mapped == 0 {
            return refuse(
                "no mapped page (khugepaged needs at least one: max_ptes_none)".into(),
                self.haddr,
            );
        }
        if !writable {
            return refuse(
                "no writable page (khugepaged gives up: SCAN_PAGE_RO)".into(),
                self.haddr,
            );
        }
        self.pmd_pa = pmd_pa;
        self.table = table;
        self.snapshot = self.entries(cx)?;
        Ok(())
    }

    /// The PTEs of the region's page table, A and D masked.
    fn entries(&self, cx: &Cx) -> Result<Vec<u64>, MmError> {
        (0..HPAGE_NR)
            .map(|i| {
                let e = cx.m.mem.read((self.table << 12) + 8 * i)?.value;
                Ok(cx.pt().mkold(cx.pt().mkclean(e)))
            })
            .collect()
    }

    /// Under the locks (`lock`) and before the copy: the region is as
    /// `alloc` found it. Another path changing it in between (munmap,
    /// reclaim, migration, another collapse) is what khugepaged's mmap_sem
    /// and page locks exclude; refused rather than copied from.
    fn unchanged(&self, cx: &Cx, pmd_too: bool) -> Result<(), MmError> {
        let pmd = cx.m.mem.read(self.pmd_pa)?.value;
        let f = cx.pt();
        let pmd_ok = !pmd_too || (f.present(pmd) && !f.is_huge(pmd) && f.pfn(pmd) == self.table);
        if pmd_ok && self.entries(cx)? == self.snapshot {
            return Ok(());
        }
        Err(mapping::refuse(
            "collapse of a region another path changed after khugepaged looked at it (its mmap_sem and page locks exclude that)".into(),
            self.haddr,
            "let the collapse finish before changing its region, or start it afterwards",
        ))
    }
}

impl KernelPath for CollapseOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = (self.haddr, self.haddr + HPAGE_SIZE);
        let Some(&name) = CHECKPOINTS_COLLAPSE.get(self.step) else {
            return Ok(Progress::Done);
        };
        match name {
            "alloc" => {
                self.check(cx)?;
                self.huge = cx.m.mem.alloc_compound(HPAGE_NR, false)?;
            }
            "start" => {}
            "lock" => {
                // pmd_lock, then the page table's lock (__collapse_huge_page_isolate).
                spin!(path::lock(cx, self.pmd_pa >> 12));
                spin!(path::lock(cx, self.table));
                self.unchanged(cx, true)?;
            }
            "clear_flush" => {
                if cx.m.mem.read(self.pmd_pa)?.value != 0 {
                    path::set_entry(cx, self.pmd_pa, self.haddr, 0)?;
                }
                // pmdp_collapse_flush: "collapse entails shooting down ptes
                // not pmd", flush_tlb_range at 4 KiB (512 entries)
                spin!(self
                    .notify
                    .run(cx, Prim::ClearFlush, start, end, PAGE_SIZE)?);
            }
            "unlock" => {
                path::unlock(cx, self.table);
                path::unlock(cx, self.pmd_pa >> 12);
            }
            "end" => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end, PAGE_SIZE)?);
            }
            "copy" => {
                self.unchanged(cx, false)?;
                for i in 0..HPAGE_NR {
                    let pa = (self.table << 12) + 8 * i;
                    let e = cx.m.mem.read(pa)?.value;
                    let f = cx.pt();
                    if f.present(e) {
                        cx.m.mem.copy_frame(self.huge + i, f.pfn(e))?;
                        path::set_entry(cx, pa, self.haddr + (i << 12), 0)?;
                        path::put_page(cx, f.pfn(e))?;
                    }
                }
            }
            "set_pmd" => {
                spin!(path::lock(cx, self.pmd_pa >> 12));
                cx.k.deposited.insert(self.pmd_pa, self.table);
                let e = cx.pt().leaf(self.huge, Prot::USER_RW, true);
                path::set_entry(cx, self.pmd_pa, self.haddr, e)?;
                path::unlock(cx, self.pmd_pa >> 12);
            }
            _ => unreachable!("every checkpoint is handled"),
        }
        self.step += 1;
        Ok(Progress::Reached(name))
    }

    fn finished(&self) -> bool {
        self.step >= CHECKPOINTS_COLLAPSE.len()
    }
}
