//! The mmap_lock (`mm->mmap_sem` before 5.8): each process's read-write
//! semaphore over its VMAs, taken by the callers of the paths, never by a
//! path itself.
//!
//! - **For write**, for the whole call: mprotect, mremap, fork (`dup_mmap`)
//!   and khugepaged's `collapse_huge_page`.
//! - **munmap** takes it for write to detach the VMAs, then downgrades it
//!   and zaps under read (`downgrade_write`, dd2283f2605e, 4.20; 4.15 held
//!   it for write throughout). Faults on other pages of the process can run
//!   beside its zap: the seed's case A.
//! - **For read**: madvise (MADV_DONTNEED, MADV_FREE), KSM's merge
//!   (`try_to_merge_with_ksm_page`), NUMA balancing's scan
//!   (`task_numa_work`), and every page fault: a CPU's that does not hit
//!   (`do_user_addr_fault`) and the I/O page fault handler's for a device
//!   (`iommu_sva_handle_iopf`; intel-svm's `prq_event_thread` in 4.14),
//!   released before the fault is retried or answered.
//! - **Not at all**: the rmap walks (reclaim, migration, writeback, a
//!   THP's split by `split`), `exit_mmap` (4.15: no other user is left),
//!   unbind, the kernel half's paths (init_mm) and `call` of a scenario's
//!   own path.
//!
//! A waiter is a thread that spins ([`WaitOn::Lock`]), as for a PTL; a
//! reader does not queue behind a waiting writer (Linux's rwsem does).

use super::kernel::{Cx, HostEvent, Kernel, MmError, Progress, WaitOn};
use super::path::{self, KernelPath};

/// The lock id bit of a process's mmap_lock ([`Kernel::mmap_lock_id`]).
pub const MMAP_LOCK: u64 = 1 << 62;

/// How a call holds its process's mmap_lock (a path's `mmap_lock:` key
/// says it for the action that runs the path, or for `call`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    None,
    Read,
    Write,
    /// For write while the VMAs change, then for read (munmap from 4.20).
    Downgrade,
}

impl Hold {
    pub const ALL: [Hold; 4] = [Hold::None, Hold::Read, Hold::Write, Hold::Downgrade];

    /// Its word in a path file.
    pub fn name(self) -> &'static str {
        match self {
            Hold::None => "none",
            Hold::Read => "read",
            Hold::Write => "write",
            Hold::Downgrade => "downgrade",
        }
    }
}

impl std::str::FromStr for Hold {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Hold::ALL.into_iter().find(|h| h.name() == s).ok_or_else(|| {
            "write none, read, write or downgrade (write, then read for the path: munmap from 4.20)".to_string()
        })
    }
}

/// What a call does to its process's VMAs once it holds the mmap_lock,
/// before its path runs: what a device's Page Request finds from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaChange {
    /// munmap: `[start, start + pages * 4 KiB)` leaves its VMA.
    Unmap { start: u64, pages: u64 },
    /// mprotect(PROT_READ): the page's VMA loses VM_WRITE.
    Protect { va: u64 },
    /// mremap (`move_vma`): the VMA leaves `from` for `to`, a file page's
    /// mapping with it.
    Move { from: u64, to: u64, pages: u64 },
    /// exit_mmap: no VMA is left.
    Exit,
}

impl VmaChange {
    /// Apply it to the running process's VMAs.
    pub fn apply(self, k: &mut Kernel) {
        let p = k.cur;
        let own = &mut k.procs[p].vmas;
        match self {
            VmaChange::Unmap { start, pages } => own.unmap(start, pages),
            VmaChange::Protect { va } => own.protect(va),
            VmaChange::Exit => own.exit(),
            VmaChange::Move { from, to, pages } => {
                own.move_range(from, to, pages);
                if let Some(file) = k.files.remove(&(p, from & !0xfff)) {
                    k.files.insert((p, to & !0xfff), file);
                }
            }
        }
    }
}

/// A syscall (or kernel thread) around a path: it takes its process's
/// mmap_lock as [`Hold`] says, changes the VMAs, runs the path and lets the
/// lock go when the path returns. Taking the lock is no checkpoint of its
/// own: the path's first step runs in the same round.
#[derive(Debug)]
pub struct Syscall {
    hold: Hold,
    change: Option<VmaChange>,
    /// The range whose contents the call throws away (munmap,
    /// MADV_DONTNEED, exit): told to the checker when the call begins and
    /// returns.
    discards: Option<(u64, u64)>,
    started: bool,
    held: bool,
    inner: Box<dyn KernelPath>,
}

impl Syscall {
    pub fn new(hold: Hold, change: Option<VmaChange>, inner: Box<dyn KernelPath>) -> Self {
        Syscall {
            hold,
            change,
            discards: None,
            started: false,
            held: false,
            inner,
        }
    }

    /// The call throws away what `[start, end)` holds: a device write that
    /// lands there while it runs may be lost (the program raced its own
    /// munmap or madvise).
    pub fn discarding(mut self, range: Option<(u64, u64)>) -> Self {
        self.discards = range;
        self
    }

    fn tell(&self, cx: &mut Cx, returned: bool) {
        if let Some((start, end)) = self.discards {
            cx.events.push(HostEvent::Discarding {
                start,
                end,
                returned,
            });
        }
    }
}

impl KernelPath for Syscall {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        if !self.started {
            let id = cx.k.mmap_lock_id();
            let wait = match self.hold {
                Hold::None => None,
                Hold::Read => path::lock_read(cx, id),
                Hold::Write | Hold::Downgrade => path::lock(cx, id),
            };
            if let Some(w) = wait {
                return Ok(Progress::Wait(w));
            }
            self.held = self.hold != Hold::None;
            if let Some(c) = self.change.take() {
                c.apply(cx.k);
            }
            if self.hold == Hold::Downgrade {
                // downgrade_write: no one else can hold it in between
                path::unlock(cx, id);
                let again = path::lock_read(cx, id);
                debug_assert!(again.is_none(), "downgrade_write of a lock held for write");
            }
            self.started = true;
            self.tell(cx, false);
        }
        let p = self.inner.step(cx)?;
        if self.inner.finished() {
            if self.held {
                let id = cx.k.mmap_lock_id();
                path::unlock(cx, id);
                self.held = false;
            }
            if self.discards.is_some() {
                self.tell(cx, true);
                self.discards = None;
            }
        }
        Ok(p)
    }

    fn finished(&self) -> bool {
        self.inner.finished()
    }
}

/// The mmap_lock of a page fault: taken for read when an access at a page
/// will fault (its walk finds no leaf that grants it), let go when the
/// fault returns. `caller_holds`: the I/O page fault handler holds it for
/// the fault it runs.
#[derive(Debug, Default)]
pub struct FaultLock {
    held: bool,
    caller_holds: bool,
}

impl FaultLock {
    /// A fault whose caller holds the lock already.
    pub fn caller_holds() -> Self {
        FaultLock {
            held: false,
            caller_holds: true,
        }
    }

    /// Before the access at `va` (a write if `write`): when it will fault,
    /// `down_read`, or who holds the lock for write.
    pub fn enter(&mut self, cx: &mut Cx, va: u64, write: bool) -> Option<WaitOn> {
        if self.caller_holds || self.held {
            return None;
        }
        let faults = match cx.k.mm().walk(&cx.m.mem, va) {
            Ok(leaf) => write && !leaf.writable,
            Err(_) => true,
        };
        if !faults {
            return None;
        }
        let wait = path::lock_read(cx, cx.k.mmap_lock_id());
        self.held = wait.is_none();
        wait
    }

    /// The fault returned (`up_read`).
    pub fn leave(&mut self, cx: &mut Cx) {
        if self.held {
            path::unlock(cx, cx.k.mmap_lock_id());
            self.held = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::LockTable;

    #[test]
    fn mmap_lock_ids_are_neither_ptls_nor_rmap_locks() {
        let a = MMAP_LOCK;
        assert_eq!(a & crate::mm::RMAP_LOCK, 0);
        // a PTL's id is a PFN: far below bit 62
        assert!(a > (1 << 52));
    }

    #[test]
    fn readers_share_a_writer_excludes() {
        let mut t = LockTable::default();
        let id = MMAP_LOCK | 1;
        assert!(t.try_read(id, 0));
        assert!(t.try_read(id, 1), "two faults hold it together");
        assert!(!t.try_lock(id, 2), "mprotect waits for both");
        t.unlock(id, 0);
        assert!(!t.try_lock(id, 2));
        t.unlock(id, 1);
        assert!(t.try_lock(id, 2));
        assert!(!t.try_read(id, 0), "a fault waits for mprotect");
        assert_eq!(t.holder(id), Some(2));
    }

    #[test]
    fn only_a_lock_that_could_block_counts_as_held_by_others() {
        let mut t = LockTable::default();
        let (mine, theirs) = (MMAP_LOCK, MMAP_LOCK | 1);
        assert!(t.try_read(theirs, 1));
        assert!(!t.held_by_others(0, mine), "another process's mmap_lock");
        assert!(t.try_read(mine, 1));
        assert!(t.held_by_others(0, mine), "its own, which it does not hold");
        assert!(t.try_read(mine, 0));
        assert!(!t.held_by_others(0, mine), "a reader beside its own hold");
        assert!(t.try_lock(7, 1));
        assert!(t.held_by_others(0, mine), "a page-table lock");
    }
}
