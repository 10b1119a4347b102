//! A user store, and the write-protect fault it takes on a COW page. The
//! fault handler of a small page is a path in the path language:
//! `paths/wp_page_copy.yaml` (`do_wp_page` then `wp_page_copy`,
//! mm/memory.c, Linux 4.14/4.15), or the scenario's own `wp_page_copy`.
//! Its checkpoints, then the store's:
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
//! A store to an empty PTE in an anonymous VMA (after MADV_DONTNEED) first
//! takes do_anonymous_page (checkpoint `anonymous`: a new zeroed page); one
//! to a NUMA hinting entry do_numa_page (checkpoint `numa`).
//! A page only this process maps is reused instead (`wp_page_reuse`:
//! checkpoint `reuse`, the PTE made writable in place, no copy, no flush).
//! A write to the huge zero page splits it first (the path
//! `paths/split_huge_zero_page_pmd.yaml`); a write to a THP shared after
//! fork runs `paths/do_huge_pmd_wp_page_fallback.yaml` (the scenario's own
//! when it overrides it).

use super::kernel::{Cx, HostEvent, MmError, Progress};
use super::lang::CallOp;
use super::lang::{Flow, PathRef, PathRun, Paths};
use super::mapping::{self, HugeKind, Mapping};
use super::mmap::FaultLock;
use super::path::{self, KernelPath};

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
    /// In the fault handler (the `wp_page_copy` path).
    Fault,
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
    /// false: only the fault (`handle_mm_fault` for a device's Page
    /// Request): done once the PTE grants the write, nothing stored.
    store: bool,
    pc: Pc,
    pte_pa: u64,
    /// The fault handler a small page runs, and its run in progress.
    def: PathRef,
    /// The huge zero page's split, run before the fault is retried, and a
    /// shared THP's COW fallback.
    split: PathRef,
    thp_fallback: PathRef,
    fault: Option<PathRun>,
    thp: Option<Box<dyn KernelPath>>,
    /// do_anonymous_page, do_numa_page (and a misplaced page's migration).
    minor: path::MinorFault,
    /// The fault's mmap_lock, held for read while it runs.
    mmap: FaultLock,
}

impl StoreOp {
    /// A store whose write-protect fault runs the bundled `wp_page_copy`.
    pub fn new(va: u64, value: u64) -> Self {
        Self::with_paths(va, value, Paths::bundled())
    }

    /// A store whose faults run `paths`' `wp_page_copy` (a small page) and
    /// `split_huge_zero_page_pmd` (the huge zero page).
    pub fn with_paths(va: u64, value: u64, paths: &Paths) -> Self {
        StoreOp {
            va,
            value,
            store: true,
            pc: Pc::Access,
            pte_pa: 0,
            def: paths.wp_page_copy(),
            split: paths.zero_split(),
            thp_fallback: paths.thp_fallback(),
            fault: None,
            thp: None,
            minor: path::MinorFault::new(paths),
            mmap: FaultLock::default(),
        }
    }
}

impl StoreOp {
    /// The write fault at `va` without the store: what `handle_mm_fault`
    /// with FAULT_FLAG_WRITE does for a device's Page Request. Done (no
    /// checkpoint of its own) once the PTE grants the write.
    pub fn fault_only(va: u64, paths: &Paths) -> Self {
        StoreOp {
            store: false,
            mmap: FaultLock::caller_holds(),
            ..Self::with_paths(va, 0, paths)
        }
    }
}

impl KernelPath for StoreOp {
    /// One step: at most one checkpoint.
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let reached = match self.pc {
            Pc::Access => {
                // a fault holds the mmap_lock for read
                if let Some(w) = self.mmap.enter(cx, self.va, true) {
                    return Ok(Progress::Wait(w));
                }
                // its minor faults first (do_anonymous_page, do_numa_page),
                // then the store
                if let Some(p) = self.minor.step(cx, self.va, true, None)? {
                    return Ok(p);
                }
                let leaf = match path::cpu_walk_or_wait(cx, self.va, "a CPU write to")? {
                    Ok(l) => l,
                    Err(w) => return Ok(Progress::Wait(w)),
                };
                if leaf.writable && !self.store {
                    self.mmap.leave(cx);
                    self.pc = Pc::Finished;
                    return Ok(Progress::Done);
                }
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
                    self.mmap.leave(cx);
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
                        HugeKind::HugeZero => Box::new(
                            CallOp::new(self.split.clone(), self.va, 1).with_caller("write"),
                        ),
                        HugeKind::Thp if cx.m.mem.refcount(head) > 1 => Box::new(
                            CallOp::new(self.thp_fallback.clone(), self.va, 1).with_caller("write"),
                        ),
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
                let run = self.fault.get_or_insert_with(|| {
                    PathRun::new(
                        self.def.0.clone(),
                        PathRun::page_inputs(self.va, self.pte_pa),
                    )
                });
                match run.step(cx)? {
                    Flow::Wait(w) => return Ok(Progress::Wait(w)),
                    Flow::Reached(c) => c,
                    Flow::Retry(c) | Flow::Return(c) => {
                        self.fault = None;
                        self.mmap.leave(cx);
                        self.pc = Pc::Access;
                        c
                    }
                }
            }
            Pc::Huge => {
                let Some(t) = self.thp.as_mut() else {
                    self.pc = Pc::Access;
                    return self.step(cx);
                };
                let p = t.step(cx)?;
                if t.finished() {
                    self.thp = None;
                    self.mmap.leave(cx);
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
