//! The kernel's answer to a device's PCIe Page Request (PRI): the I/O page
//! fault handler. It follows `iommu_sva_handle_iopf` (drivers/iommu/
//! io-pgfault.c, Linux 6.x; intel-svm's `prq_event_thread` does the same in
//! 4.14): find the VMA, check its permissions, `handle_mm_fault` with
//! FAULT_FLAG_REMOTE (and FAULT_FLAG_WRITE for a write), then the PRG
//! Response, submitted and waited for (`qi_submit_sync` in 4.14).
//!
//! Its checkpoints:
//!
//! ```text
//! vma        mmap_read_lock (it waits while a writer holds it: munmap,
//!            mprotect, mremap, fork, collapse), then
//!            vma_lookup and the access check: no VMA (munmap, exit, an
//!            mremap's old address, an absent page before an mremap) or no
//!            VM_WRITE for a write -> Invalid Request
//! anonymous  an empty PTE in an anonymous VMA (MADV_DONTNEED dropped the
//!            page): do_anonymous_page, the zero page for a read, a new
//!            zeroed page for a write
//! numa       a NUMA hinting entry (numa-hint made it PROT_NONE):
//!            do_numa_page makes it present again (a misplaced page is
//!            then migrated: the migration path's checkpoints)
//! (fault)    a write to a read-only PTE: the store's write-protect fault
//!            (paths/wp_page_copy.yaml: fault, copy, start ... put_old, or
//!            reuse), without the store
//! migration a migration entry (4 KiB, or a hugetlb page's:
//!            migration_entry_wait_huge): it waits for the page lock the
//!            migration holds, then the fault returns (the device's retry
//!            finds the new page)
//! (cleared)  an entry another thread cleared under its page-table lock (a
//!            THP COW's PMD, a hugetlb migration's): the fault spins on
//!            that lock, looks again and returns
//! (spurious) a PTE that already grants the access: handle_pte_fault's
//!            tail (paths/ptep_set_access_flags.yaml: lock,
//!            set_access_flags, unlock), no flush; a THP's PMD:
//!            huge_pmd_set_accessed (paths/huge_pmd_set_accessed.yaml,
//!            the same checkpoints)
//! respond    ATS.PRGR (Success or Invalid Request) and its fence written
//! responded  the fence completed
//! ```
//!
//! A request whose PASID no process is bound to is answered Invalid
//! Request at once. A PTE or a THP's PMD that already grants the access
//! (the fault raced with a fix, or the IOMMU answered from a stale entry)
//! is made young (and dirty) under its lock, flushing nothing: Success; a
//! hugetlb page's (hugetlb_fault's tail) is answered at once. A page
//! that is not present otherwise (swapped out, a file page reclaim
//! dropped) would take do_swap_page or a read from the file: not modelled,
//! refused as a CPU access there is.

use super::cow::StoreOp;
use super::kernel::{Cx, MmError, Progress, WaitOn};
use super::lang::{CallOp, PathRef, Paths};
use super::path::{self, KernelPath, MinorFault};
use crate::iommu::FlushTicket;
use crate::mem::PageSize;
use crate::rtl::{PageRequest, PRG_INVALID, PRG_SUCCESS};

/// Checkpoint names of the handler, in order (the fault's own are
/// `CHECKPOINTS_WP_PAGE_COPY`'s).
pub const CHECKPOINTS_IOPF: &[&str] = &[
    "vma",
    "anonymous",
    "numa",
    "migration",
    IOPF_RESPOND,
    "responded",
];

/// The handler's checkpoint where it has written its PRG Response and owns
/// the IOMMU's command queue until the fence completes: a scheduled worker
/// does not stop there.
pub const IOPF_RESPOND: &str = "respond";

#[derive(Debug)]
enum Pc {
    Vma,
    /// do_anonymous_page of an empty PTE slot (an anonymous VMA whose page
    /// MADV_DONTNEED dropped), or do_numa_page of a NUMA hinting entry and
    /// a misplaced page's migration.
    Minor(Box<MinorFault>),
    Fault(Box<StoreOp>),
    /// The PTE already grants the access: `handle_pte_fault`'s tail for a
    /// present PTE (`paths/ptep_set_access_flags.yaml`).
    Spurious(Box<CallOp>),
    /// A migration entry: `migration_entry_wait` waits for the page lock
    /// of the frame being migrated (`wait_on_page_locked`), then the fault
    /// returns and the device's retry finds the new page.
    Migration,
    /// The entry is none under another thread's page-table lock (a huge
    /// entry cleared for a THP COW or a hugetlb migration): the fault
    /// spins on that lock, looks again and returns; the device's retry
    /// finds what is there then.
    Cleared,
    Respond,
    Wait(FlushTicket),
    Finished,
}

/// The I/O page fault handler for one Page Request.
#[derive(Debug)]
pub struct IopfOp {
    pub req: PageRequest,
    pc: Pc,
    /// The PRG Response code: Success unless the VMA check failed.
    code: u8,
    fault: Option<Box<StoreOp>>,
    minor: Option<Box<MinorFault>>,
    spurious: Option<PathRef>,
    spurious_huge: Option<PathRef>,
    /// It holds its process's mmap_lock for read (from `vma` until the
    /// fault returns, before the response).
    mmap: bool,
}

impl IopfOp {
    /// The handler of `req`; a write fault runs `paths`' `wp_page_copy`.
    pub fn new(req: PageRequest, paths: &Paths) -> Self {
        IopfOp {
            req,
            pc: Pc::Vma,
            code: PRG_SUCCESS,
            fault: Some(Box::new(StoreOp::fault_only(req.va, paths))),
            minor: Some(Box::new(MinorFault::new(paths))),
            spurious: Some(paths.spurious_fault()),
            spurious_huge: Some(paths.spurious_huge_fault()),
            mmap: false,
        }
    }

    /// The handler of a request whose PASID no process is bound to (a
    /// design that wrote the wrong one): no domain to fault in, Invalid
    /// Request (`iommu_report_device_fault` finds no handler).
    pub fn unknown_pasid(req: PageRequest) -> Self {
        IopfOp {
            req,
            pc: Pc::Respond,
            code: PRG_INVALID,
            fault: None,
            minor: None,
            spurious: None,
            spurious_huge: None,
            mmap: false,
        }
    }

    /// It is sending its PRG Response or waiting for its fence (a spin that
    /// is no invalidation's cost).
    pub fn responding(&self) -> bool {
        matches!(self.pc, Pc::Respond | Pc::Wait(_))
    }

    /// The response the handler sends (or sent): Success or Invalid Request.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The VMA check and `handle_mm_fault`'s first look: what runs next.
    fn classify(&mut self, cx: &mut Cx) -> Result<Pc, MmError> {
        let va = self.req.va;
        let vmas = &cx.k.proc().vmas;
        if cx.k.proc().unbound || !vmas.mapped(va) || (self.req.write && !vmas.writable(va)) {
            self.code = PRG_INVALID;
            return Ok(Pc::Respond);
        }
        // A NUMA hinting entry (do_numa_page), or an empty PTE slot in an
        // anonymous VMA (MADV_DONTNEED dropped the page: do_anonymous_page).
        if path::numa_hole(cx, va)?.is_some()
            || path::huge_numa_hole(cx, va)?
            || path::anonymous_hole(cx, va)?.is_some()
        {
            if let Some(m) = self.minor.take() {
                return Ok(Pc::Minor(m));
            }
        }
        if path::migration_entry(cx, va)?.is_some() {
            return Ok(Pc::Migration);
        }
        if path::cleared_wait(cx, va)?.is_some() {
            return Ok(Pc::Cleared);
        }
        let leaf = path::cpu_walk(cx, va, "a device's Page Request for")?;
        if self.req.write && !leaf.writable {
            if let Some(f) = self.fault.take() {
                return Ok(Pc::Fault(f));
            }
        }
        // Spurious: the leaf already grants the access. A 4 KiB PTE's fault
        // (handle_pte_fault's tail), or a THP's (huge_pmd_set_accessed),
        // takes the entry's lock and makes it young (and dirty), flushing
        // nothing; a hugetlb page's (hugetlb_fault) is answered at once.
        // is_vm_hugetlb_page: __handle_mm_fault's hugetlb_fault
        let hugetlb = cx.k.proc().vmas.huge_page_size(va) != 0;
        let def = match leaf.size {
            PageSize::Small => self.spurious.take(),
            PageSize::Huge2M if !hugetlb => self.spurious_huge.take(),
            _ => None,
        };
        let caller = match leaf.size {
            PageSize::Small => "handle_pte_fault",
            _ => "__handle_mm_fault",
        };
        Ok(match def {
            Some(def) => Pc::Spurious(Box::new(
                CallOp::new(def, va, 1)
                    .with_write(self.req.write)
                    .with_caller(caller),
            )),
            None => Pc::Respond,
        })
    }
}

impl KernelPath for IopfOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        match &mut self.pc {
            Pc::Vma => {
                // mmap_read_lock, for the VMA lookup and handle_mm_fault
                if let Some(w) = path::lock_read(cx, cx.k.mmap_lock_id()) {
                    return Ok(Progress::Wait(w));
                }
                self.mmap = true;
                self.pc = self.classify(cx)?;
                Ok(Progress::Reached("vma"))
            }
            Pc::Minor(m) => {
                let r = self.req;
                match m.step(cx, r.va, r.write, Some(r.prgi))? {
                    // a write to a read-only page faults again (the next
                    // record)
                    None => {
                        self.pc = Pc::Respond;
                        self.step(cx)
                    }
                    Some(p) => Ok(p),
                }
            }
            Pc::Fault(f) => {
                // The store's refusals name a CPU write; this one is the
                // device's.
                let p = f.step(cx).map_err(|e| match e {
                    MmError::Unsupported { what, va, instead } => MmError::Unsupported {
                        what: what.replacen(
                            "a CPU write to",
                            "the write fault a device's Page Request takes on",
                            1,
                        ),
                        va,
                        instead,
                    },
                    e => e,
                })?;
                if f.finished() {
                    self.pc = Pc::Respond;
                }
                match p {
                    Progress::Done => self.step(cx),
                    p => Ok(p),
                }
            }
            Pc::Spurious(run) => {
                let p = run.step(cx)?;
                if run.finished() {
                    self.pc = Pc::Respond;
                }
                match p {
                    Progress::Done => self.step(cx),
                    p => Ok(p),
                }
            }
            Pc::Migration => {
                if let Some(w) = path::migration_wait(cx, self.req.va)? {
                    return Ok(Progress::Wait(w));
                }
                self.pc = Pc::Respond;
                Ok(Progress::Reached("migration"))
            }
            Pc::Cleared => {
                if let Some(w) = path::cleared_wait(cx, self.req.va)? {
                    return Ok(Progress::Wait(w));
                }
                self.pc = Pc::Respond;
                self.step(cx)
            }
            Pc::Respond => {
                // mmap_read_unlock: the fault has returned
                if std::mem::take(&mut self.mmap) {
                    path::unlock(cx, cx.k.mmap_lock_id());
                }
                let r = cx.k.driver.try_begin_page_response(
                    cx.m,
                    cx.tid,
                    self.req.pasid,
                    self.req.prgi,
                    self.code,
                )?;
                match r {
                    Some(t) => {
                        self.pc = Pc::Wait(t);
                        Ok(Progress::Reached("respond"))
                    }
                    None => Ok(Progress::Wait(WaitOn::Queue)),
                }
            }
            Pc::Wait(t) => {
                if cx.k.driver.try_poll(cx.m, *t)? {
                    self.pc = Pc::Finished;
                    Ok(Progress::Reached("responded"))
                } else {
                    Ok(Progress::Wait(WaitOn::Fence))
                }
            }
            Pc::Finished => Ok(Progress::Done),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.pc, Pc::Finished)
    }
}
