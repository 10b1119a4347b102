//! What every kernel path shares: the step protocol ([`KernelPath`]) and
//! the small operations paths are made of (take a PTL, write an entry,
//! drop a page reference), each reporting what it did as a [`HostEvent`].

use super::kernel::{Cx, HostEvent, MmError, Progress, WaitOn};
use super::mapping::{self, Mapping};
use crate::mem::{Leaf, Pfn, WalkError};
use crate::scenario::USER_END;

/// A kernel path run step by step. Each call to `step` does at most one
/// checkpoint's work (or one spin) and says which checkpoint it completed.
pub trait KernelPath: std::fmt::Debug {
    /// One step.
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError>;
    /// The path has returned.
    fn finished(&self) -> bool;
    /// How the path says its caller holds the process's mmap_lock (its
    /// `mmap_lock:` key), if it says.
    fn declared_mmap_lock(&self) -> Option<super::mmap::Hold> {
        None
    }
}

/// `spin_lock(ptl)` (or `down_write`): take lock `id`, or say who holds it.
pub fn lock(cx: &mut Cx, id: u64) -> Option<WaitOn> {
    let taken = cx.k.ptl.try_lock(id, cx.tid);
    held_by(cx, id, taken)
}

/// `down_read` of the rmap lock `id`, or say who holds it for write.
pub fn lock_read(cx: &mut Cx, id: u64) -> Option<WaitOn> {
    let taken = cx.k.ptl.try_read(id, cx.tid);
    held_by(cx, id, taken)
}

/// Nothing to wait for when the lock was `taken`, else who holds it.
fn held_by(cx: &Cx, id: u64, taken: bool) -> Option<WaitOn> {
    (!taken).then(|| WaitOn::Lock {
        id,
        holder: cx.k.ptl.holder(id).unwrap_or(usize::MAX),
    })
}

pub fn unlock(cx: &mut Cx, id: u64) {
    cx.k.ptl.unlock(id, cx.tid);
}

/// Write the page-table entry at `entry_pa` (which maps `va`'s page).
pub fn set_entry(cx: &mut Cx, entry_pa: u64, va: u64, new: u64) -> Result<u64, MmError> {
    let old = cx.m.mem.read(entry_pa)?.value;
    cx.m.mem.write(entry_pa, new, 0)?;
    cx.events.push(HostEvent::Pte {
        tid: cx.tid,
        va: va & !0xfff,
        old,
        new,
    });
    Ok(old)
}

/// `huge_pmd_unshare`: when the page table mapping `addr`'s 2 MiB is
/// shared with another process (its reference count above 1), the running
/// process's PUD entry is cleared (a PTE event of `addr`'s page) and the
/// table's reference dropped: 1. Otherwise nothing changes: 0.
pub fn huge_pmd_unshare(cx: &mut Cx, addr: u64) -> Result<u64, MmError> {
    let mm = cx.k.mm();
    let Ok(pud) = mm.pud_pa(&mut cx.m.mem, addr) else {
        return Ok(0);
    };
    let e = cx.m.mem.read(pud)?.value;
    let table = mm.format.pfn(e);
    if !mm.format.is_table(e, 3) || cx.m.mem.refcount(table) < 2 {
        return Ok(0);
    }
    set_entry(cx, pud, addr, 0)?;
    cx.m.mem.put(table)?;
    Ok(1)
}

/// `put_page`: drop a reference; the frame goes back to the free list at zero.
pub fn put_page(cx: &mut Cx, pfn: Pfn) -> Result<(), MmError> {
    if cx.m.mem.put(pfn)? {
        cx.k.lazyfree.remove(&pfn);
        cx.events.push(HostEvent::FrameFreed { pfn });
    }
    Ok(())
}

/// What the CPU's own page walk does on an access: set the leaf's accessed
/// bit, and its dirty bit on a write, in memory (hardware, not under the
/// PTL, no PTE event: as the IOMMU's compare-and-swap does). Reclaim of a
/// MADV_FREE page reads the dirty bit a CPU store sets here.
pub fn touch(cx: &mut Cx, leaf: &Leaf, write: bool) -> Result<(), MmError> {
    let f = cx.pt();
    let young = f.mkyoung(leaf.entry);
    let new = if write { f.mkdirty(young) } else { young };
    if new != leaf.entry {
        cx.m.mem.write(leaf.entry_pa, new, 0)?;
    }
    Ok(())
}

/// A CPU access as the hardware and the fault handler see it: the leaf, or
/// a wait when the entry the walk ends at (a PTE, or a huge page's PMD or
/// PUD) is none because another CPU cleared it under its page-table lock
/// (`ptep_clear_flush` in a COW, a KSM merge, a writeback's mkclean; a THP
/// COW's or a hugetlb migration's huge entry): the fault handler takes the
/// same lock and looks again (`handle_pte_fault`'s `pte_offset_map_lock`,
/// `hugetlb_no_page`'s backout under `huge_pte_lock`), so it spins until
/// that CPU unlocks, then the access is retried. A migration entry's fault
/// waits for the page lock the migration holds (`migration_entry_wait`,
/// `migration_entry_wait_huge`), then the access is retried. Anything else
/// not mapped is [`cpu_walk`]'s refusal.
pub fn cpu_walk_or_wait(cx: &mut Cx, va: u64, who: &str) -> Result<Result<Leaf, WaitOn>, MmError> {
    if let Some(w) = cleared_wait(cx, va)? {
        return Ok(Err(w));
    }
    if let Some(w) = migration_wait(cx, va)? {
        return Ok(Err(w));
    }
    cpu_walk(cx, va, who).map(Ok)
}

/// The entry the walk of `va` ends at is none and another thread holds the
/// lock of its table (it cleared the entry and will set it again): the
/// wait for that lock.
pub fn cleared_wait(cx: &mut Cx, va: u64) -> Result<Option<WaitOn>, MmError> {
    let Some((_, entry_pa, e)) = absent_entry(cx, va)? else {
        return Ok(None);
    };
    let id = entry_pa >> 12;
    let none = e == 0;
    Ok((cx.k.ptl.holder(id))
        .filter(|h| none && *h != cx.tid)
        .map(|holder| WaitOn::Lock { id, holder }))
}

/// `migration_entry_wait`: at a 4 KiB migration entry, the wait for the
/// page lock of the frame being migrated (none when no other thread holds
/// it).
pub fn migration_wait(cx: &mut Cx, va: u64) -> Result<Option<WaitOn>, MmError> {
    let Some(pfn) = migration_entry(cx, va)? else {
        return Ok(None);
    };
    let id = crate::mm::page_lock_id(pfn);
    Ok(cx
        .k
        .ptl
        .holder(id)
        .filter(|&h| h != cx.tid)
        .map(|holder| WaitOn::Lock { id, holder }))
}

/// The frame a migration entry at `va` stands for (a page being migrated:
/// `migration_entry_wait`'s), if that is what the walk of `va` ends at: a
/// 4 KiB PTE, or a hugetlb page's PMD (`migration_entry_wait_huge`; its
/// head frame, whose lock the migration holds).
pub fn migration_entry(cx: &mut Cx, va: u64) -> Result<Option<u64>, MmError> {
    Ok(absent_entry(cx, va)?
        .and_then(|(_, _, e)| (e & mapping::MIGRATION_ENTRY != 0).then_some(e >> 12)))
}

/// The CPU's walk for a load or store, `who` ("a CPU read of"): a page with no
/// present translation would take a page fault (swap-in, migration wait,
/// SIGSEGV after munmap), which is not modelled.
pub fn cpu_walk(cx: &mut Cx, va: u64, who: &str) -> Result<Leaf, MmError> {
    match cx.k.mm().walk(&cx.m.mem, va) {
        Ok(l) => Ok(l),
        Err(WalkError::NotPresent { .. }) if va < USER_END && !cx.k.proc().vmas.mapped(va) => {
            Err(mapping::refuse(
                format!("{who} an address no VMA covers (the page fault it takes: SIGSEGV)"),
                va,
                "access a page while a VMA covers it: not after munmap or exit, at mremap's old address, or at an absent page before mremap moves one there",
            ))
        }
        Err(WalkError::NotPresent { .. }) => {
            let m = mapping::lookup(cx.k, &mut cx.m.mem, va)?;
            let what = match m {
                Mapping::Absent {
                    entry, level: 1, ..
                } if entry & mapping::SWAP_ENTRY != 0 => "do_swap_page",
                Mapping::Absent {
                    entry, level: 1, ..
                } if entry & mapping::MIGRATION_ENTRY != 0 => "migration_entry_wait",
                Mapping::Absent { level: 2.., .. } => "it waits for the PMD to be set again",
                _ => "SIGSEGV after munmap, a refault after reclaim",
            };
            Err(mapping::refuse(
                format!(
                    "{who} {} (the page fault it takes: {what})",
                    m.describe(cx.k)
                ),
                va,
                "access a page while it is mapped (a device access gets a fault instead)",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The entry the walk of `va` ends at when it finds no present leaf: (its
/// level, 1 for a PTE; its address; what it holds).
fn absent_entry(cx: &mut Cx, va: u64) -> Result<Option<(u8, u64, u64)>, MmError> {
    let Err(WalkError::NotPresent {
        level, entry_pa, ..
    }) = cx.k.mm().walk(&cx.m.mem, va)
    else {
        return Ok(None);
    };
    Ok(Some((level, entry_pa, cx.m.mem.read(entry_pa)?.value)))
}

/// `va`'s PTE slot when a page table holds it but no walker finds a present
/// leaf there: (the slot's address, what it holds).
fn absent_pte(cx: &mut Cx, va: u64) -> Result<Option<(u64, u64)>, MmError> {
    Ok(absent_entry(cx, va)?.and_then(|(level, pa, e)| (level == 1).then_some((pa, e))))
}

/// `va` is an empty PTE slot (`Some(its address)`) in an anonymous VMA:
/// the page MADV_DONTNEED dropped, which a fault maps again with zeros.
pub fn anonymous_hole(cx: &mut Cx, va: u64) -> Result<Option<u64>, MmError> {
    let Some((pte, e)) = absent_pte(cx, va)? else {
        return Ok(None);
    };
    let vmas = &cx.k.proc().vmas;
    let anon = !cx.k.proc().unbound && vmas.mapped(va) && !vmas.is_file(va);
    Ok((anon && e == 0).then_some(pte))
}

/// do_anonymous_page (mm/memory.c) at the empty PTE slot `pte` of `va`,
/// in one step under the PTL: a read maps the zero page read-only, a write
/// a new zeroed page, writable and dirty; an entry another fault set
/// meanwhile wins. `dev`: the device whose Page Request this serves.
pub fn do_anonymous_page(
    cx: &mut Cx,
    va: u64,
    pte: u64,
    write: bool,
    dev: Option<u8>,
) -> Result<Option<WaitOn>, MmError> {
    let id = pte >> 12;
    if let Some(w) = lock(cx, id) {
        return Ok(Some(w));
    }
    if cx.m.mem.read(pte)?.value == 0 {
        let pt = cx.pt();
        let (pfn, entry) = if write || cx.k.zero_pfn == 0 {
            let new = cx.m.mem.alloc()?;
            let e = pt.leaf(new, crate::mem::Prot::USER_RW, false);
            (new, pt.mkdirty(pt.mkyoung(e)))
        } else {
            let z = cx.k.zero_pfn;
            (z, pt.leaf(z, crate::mem::Prot::USER_RO, false))
        };
        set_entry(cx, pte, va, entry)?;
        cx.events.push(HostEvent::ZeroFill {
            tid: cx.tid,
            dev,
            va: va & !0xfff,
            pfn,
        });
    }
    unlock(cx, id);
    Ok(None)
}

/// `va`'s PTE is a NUMA hinting entry (`Some(its address)`, `change_prot_numa`
/// made it PROT_NONE): an access takes do_numa_page first.
pub fn numa_hole(cx: &mut Cx, va: u64) -> Result<Option<u64>, MmError> {
    Ok(absent_pte(cx, va)?.and_then(|(pte, e)| mapping::is_protnone(e).then_some(pte)))
}

/// `va`'s PMD is a NUMA hinting entry of a transparent huge page
/// (`change_huge_pmd` with prot_numa made it PROT_NONE): an access takes
/// do_huge_pmd_numa_page first.
pub fn huge_numa_hole(cx: &mut Cx, va: u64) -> Result<bool, MmError> {
    let Err(WalkError::NotPresent {
        level: 2, entry_pa, ..
    }) = cx.k.mm().walk(&cx.m.mem, va)
    else {
        return Ok(false);
    };
    let e = cx.m.mem.read(entry_pa)?.value;
    Ok(mapping::is_protnone(e) && cx.k.deposited.contains_key(&entry_pa))
}

/// do_numa_page (mm/memory.c, Linux 4.14) at the hinting entry `pte` of
/// `va`, in one step under the PTL: the entry made present again with its
/// own permissions and young (an upgrade: nothing to flush). A misplaced
/// page's migration follows after the unlock ([`MinorFault`]). An entry
/// another fault restored meanwhile wins (`pte_same`).
pub fn do_numa_page(cx: &mut Cx, va: u64, pte: u64) -> Result<Option<WaitOn>, MmError> {
    let id = pte >> 12;
    if let Some(w) = lock(cx, id) {
        return Ok(Some(w));
    }
    let e = cx.m.mem.read(pte)?.value;
    if mapping::is_protnone(e) {
        let restored = mapping::unprotnone(cx.pt(), e);
        set_entry(cx, pte, va, restored)?;
    }
    unlock(cx, id);
    Ok(None)
}

/// The minor faults an access takes before it can go on: at an empty PTE
/// in an anonymous VMA, do_anonymous_page; at a NUMA hinting entry,
/// do_numa_page, then, when the scan found the page misplaced
/// (`numa-hint <page> misplaced`), `migrate_misplaced_page`: the migration
/// path (`paths/migrate_page.yaml`, as `migrate_pages` runs it), after the
/// PTL is dropped; at a THP's hinting PMD, `paths/do_huge_pmd_numa_page.yaml`
/// (with its `migrate_misplaced_transhuge_page` when misplaced).
#[derive(Debug)]
pub struct MinorFault {
    migrate: crate::mm::lang::PathRef,
    huge_numa: crate::mm::lang::PathRef,
    run: Option<Box<crate::mm::lang::CallOp>>,
}

impl MinorFault {
    /// Migrations run `paths`' migration path.
    pub fn new(paths: &crate::mm::lang::Paths) -> Self {
        MinorFault {
            migrate: paths.migrate(),
            huge_numa: paths.huge_numa_fault(),
            run: None,
        }
    }

    /// One step of the fault at `va` (`dev`: the device whose Page Request
    /// this serves): `Some` the step's progress (checkpoint `anonymous`,
    /// `numa`, the migration's, or a wait); `None`: nothing (left) to do,
    /// the access goes on.
    pub fn step(
        &mut self,
        cx: &mut Cx,
        va: u64,
        write: bool,
        dev: Option<u8>,
    ) -> Result<Option<Progress>, MmError> {
        use crate::mm::KernelPath as _;
        let reached = |w: Option<WaitOn>, cp| match w {
            Some(w) => Progress::Wait(w),
            None => Progress::Reached(cp),
        };
        if let Some(run) = &mut self.run {
            let p = run.step(cx)?;
            if run.finished() {
                self.run = None;
            }
            return Ok(Some(p));
        }
        if huge_numa_hole(cx, va)? {
            // do_huge_pmd_numa_page, and the THP's migration when misplaced
            let run = crate::mm::lang::CallOp::new(self.huge_numa.clone(), va, 1)
                .with_caller("do_huge_pmd_numa_page");
            let run = if cx.k.take_misplaced(va) {
                run.misplaced()
            } else {
                run
            };
            let mut run = Box::new(run);
            let p = run.step(cx)?;
            if !run.finished() {
                self.run = Some(run);
            }
            return Ok(Some(p));
        }
        if let Some(pte) = numa_hole(cx, va)? {
            let w = do_numa_page(cx, va, pte)?;
            if w.is_none() && cx.k.take_misplaced(va) {
                let run = crate::mm::lang::CallOp::new(self.migrate.clone(), va, 1)
                    .with_caller("migrate_misplaced_page");
                self.run = Some(Box::new(run));
            }
            return Ok(Some(reached(w, "numa")));
        }
        let Some(pte) = anonymous_hole(cx, va)? else {
            return Ok(None);
        };
        Ok(Some(reached(
            do_anonymous_page(cx, va, pte, write, dev)?,
            "anonymous",
        )))
    }
}
