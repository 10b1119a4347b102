//! Kernel state shared by all CPU threads, and the step protocol of a path.

use super::arch::Cpu;
use super::policy::{Policy, Prim};
use crate::iommu::{DriverError, FlushTicket, SvaDriver};
use crate::mem::{AddressSpace, MemError, PtFormat, WalkError};
use crate::sim::machine::Machine;
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MmError {
    #[error(transparent)]
    Mem(#[from] MemError),
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// A path met a page it does not model (or that its Linux counterpart
    /// would refuse or skip): `what` names the action and what it found,
    /// `instead` what to write in the scenario.
    #[error("[mm] {what} at {va:#x} is not modelled: {instead}")]
    Unsupported {
        what: String,
        va: u64,
        instead: &'static str,
    },
    /// A primitive of a path written in the path language failed: `at` is
    /// its file and line.
    #[error("[path] {at}: path '{path}', step '{step}': {msg}")]
    Path {
        at: String,
        path: String,
        step: &'static str,
        msg: String,
    },
    /// An expression of a path could not be evaluated (wrapped in
    /// [`MmError::Path`] with its line).
    #[error("{0}")]
    Eval(String),
}

/// The lock id bit of an rmap lock ([`rmap_lock_id`]): below it, a lock id
/// is the PFN of the page-table page whose split PTL it is.
pub const RMAP_LOCK: u64 = 1 << 63;

/// The lock id bit of a page lock (`lock_page`, [`page_lock_id`]).
pub const PAGE_LOCK: u64 = 1 << 61;

/// The lock id of the page lock of frame `pfn` (a compound page's is its
/// first frame's).
pub fn page_lock_id(pfn: u64) -> u64 {
    PAGE_LOCK | pfn
}

/// The lock id bit of a kernel mutex ([`kernel_mutex_id`]).
pub const KERNEL_MUTEX: u64 = 1 << 60;

/// The kernel-wide mutexes a path can take (`mutex_lock <name>`): each
/// name, and where Linux holds it.
pub const KERNEL_MUTEXES: &[(&str, &str)] = &[(
    "ksm_thread_mutex",
    "mm/ksm.c: ksmd holds it over each scan pass (ksm_scan_thread), so one merge runs at a time",
)];

/// The lock id of the kernel mutex named `name`, if the model has it.
pub fn kernel_mutex_id(name: &str) -> Option<u64> {
    (KERNEL_MUTEXES.iter())
        .position(|(n, _)| *n == name)
        .map(|i| KERNEL_MUTEX | i as u64)
}

/// What lock `id` is, for a wait in an error or the waves: its kind (a
/// kernel mutex: its name) and whether a thread spins on it (a page-table
/// lock) rather than sleeps.
pub fn lock_kind(id: u64) -> (&'static str, bool) {
    if id & RMAP_LOCK != 0 {
        ("an rmap lock", false)
    } else if id & super::mmap::MMAP_LOCK != 0 {
        ("its process's mmap_lock", false)
    } else if id & PAGE_LOCK != 0 {
        ("a page lock", false)
    } else if id & KERNEL_MUTEX != 0 {
        let i = (id & !KERNEL_MUTEX) as usize;
        (
            KERNEL_MUTEXES.get(i).map_or("a kernel mutex", |m| m.0),
            false,
        )
    } else {
        ("a page-table lock", true)
    }
}

/// The lock id of process `process`'s mmap_lock ([`super::mmap`]).
pub fn mmap_lock_of(process: usize) -> u64 {
    super::mmap::MMAP_LOCK | process as u64
}

/// Split page-table locks, one per page-table page (its PFN is the id),
/// and the rmap locks (`anon_vma->root->rwsem`, `mapping->i_mmap_rwsem`),
/// which are read-write: an rmap walk holds one for read, mremap's
/// `take_rmap_locks` for write.
#[derive(Default, Debug)]
pub struct LockTable {
    held: BTreeMap<u64, usize>,
    /// The threads that hold a lock for read.
    readers: BTreeMap<u64, Vec<usize>>,
}

impl LockTable {
    /// `spin_lock` (or `down_write`): true if `tid` now holds `id`.
    pub fn try_lock(&mut self, id: u64, tid: usize) -> bool {
        if self
            .readers
            .get(&id)
            .is_some_and(|r| r.iter().any(|&t| t != tid))
        {
            return false;
        }
        match self.held.get(&id) {
            Some(&h) => h == tid,
            None => {
                self.held.insert(id, tid);
                true
            }
        }
    }

    /// `down_read`: true if `tid` now holds `id` for read (no other
    /// thread holds it for write).
    pub fn try_read(&mut self, id: u64, tid: usize) -> bool {
        if self.held.get(&id).is_some_and(|&h| h != tid) {
            return false;
        }
        let r = self.readers.entry(id).or_default();
        if !r.contains(&tid) {
            r.push(tid);
        }
        true
    }

    /// Releases `tid`'s hold of `id`, for write or for read.
    pub fn unlock(&mut self, id: u64, tid: usize) {
        if self.held.get(&id) == Some(&tid) {
            self.held.remove(&id);
        } else if let Some(r) = self.readers.get_mut(&id) {
            r.retain(|&t| t != tid);
            if r.is_empty() {
                self.readers.remove(&id);
            }
        }
    }

    /// A lock other than an mmap_lock that `tid` holds, for write or for
    /// read (the lowest id): what a kernel path that returned still holds.
    pub fn kept_by(&self, tid: usize) -> Option<u64> {
        let mine = (self
            .held
            .iter()
            .filter(|(_, &h)| h == tid)
            .map(|(&id, _)| id))
        .chain(
            (self.readers.iter())
                .filter(|(_, r)| r.contains(&tid))
                .map(|(&id, _)| id),
        );
        mine.filter(|id| id & super::mmap::MMAP_LOCK == 0).min()
    }

    /// The thread that holds `id` (for write; else its first reader).
    pub fn holder(&self, id: u64) -> Option<usize> {
        (self.held.get(&id).copied())
            .or_else(|| self.readers.get(&id).and_then(|r| r.first().copied()))
    }

    /// A thread other than `tid` holds a lock that could block `tid`: any
    /// PTL or rmap lock; of the mmap_locks, only `mmap` (its process's),
    /// and only while `tid` does not hold it itself (a path takes it before
    /// its first step, so another process's, or readers beside its own
    /// hold, never block it).
    pub fn held_by_others(&self, tid: usize, mmap: u64) -> bool {
        let mine = self.held.get(&mmap) == Some(&tid)
            || self.readers.get(&mmap).is_some_and(|r| r.contains(&tid));
        let counts = |id: u64| id & super::mmap::MMAP_LOCK == 0 || (id == mmap && !mine);
        self.held.iter().any(|(&id, &h)| h != tid && counts(id))
            || (self.readers.iter()).any(|(&id, r)| counts(id) && r.iter().any(|&h| h != tid))
    }
}

/// One process bound to the device: its address space (bound to PASID
/// `mm.pasid`), the parent it forked from (which shares its COW pages),
/// its VMAs, its pending mmu_gathers and whether its binding was taken away.
#[derive(Debug)]
pub struct Process {
    pub mm: AddressSpace,
    pub parent: AddressSpace,
    /// `mm->tlb_flush_pending`: mmu_gathers begun and not finished
    /// (`inc_tlb_flush_pending` in `tlb_gather_mmu`).
    pub tlb_flush_pending: u32,
    /// The VMAs of the process's named pages (which are a shared file
    /// mapping's).
    pub vmas: super::mapping::Vmas,
    /// The device's binding of the process was taken away
    /// (`paths/iommu_sva_unbind_device.yaml`): its `mmu_notifier` is
    /// unregistered, so no path reaches the IOMMU driver any more.
    pub unbound: bool,
}

impl Process {
    /// A process bound to the device, with nothing pending and no VMA.
    pub fn new(mm: AddressSpace, parent: AddressSpace) -> Self {
        Process {
            mm,
            parent,
            tlb_flush_pending: 0,
            vmas: Default::default(),
            unbound: false,
        }
    }
}

/// The kernel: the processes bound to the device, the PTLs, the notifier
/// policy and the IOMMU driver. A thread's step runs in one process
/// (`cur`, as `current->mm`): the scheduler switches to it first.
#[derive(Debug)]
pub struct Kernel {
    pub procs: Vec<Process>,
    /// The process the running step acts on (an index into `procs`).
    pub cur: usize,
    pub policy: Policy,
    pub ptl: LockTable,
    pub driver: SvaDriver,
    /// Page tables deposited with each huge PMD (`pgtable_trans_huge_deposit`),
    /// by the PMD entry's physical address.
    pub deposited: BTreeMap<u64, u64>,
    /// The 4 KiB zero page and the first frame of the huge zero page (0: none).
    pub zero_pfn: u64,
    pub huge_zero_pfn: u64,
    /// Pages made lazily freeable by MADV_FREE (PageSwapBacked clear).
    pub lazyfree: std::collections::BTreeSet<u64>,
    /// (process, page address) of each page NUMA balancing's scan found on
    /// the wrong node (`numa-hint <page> misplaced`): its hinting fault
    /// migrates it.
    pub misplaced: std::collections::BTreeSet<(usize, u64)>,
    /// (process, page address) of each named page of a shared file
    /// mapping, to the page-cache page it maps (the index of the scenario's
    /// page that `shares:` names, or its own): what `rmap_walk_file` finds
    /// through `mapping->i_mmap`.
    pub files: BTreeMap<(usize, u64), usize>,
    /// The kernel's own address space (init_mm), when the scenario has
    /// kernel pages: the kernel half every process's top level copies.
    pub init_mm: Option<AddressSpace>,
    /// The PASID bound to init_mm for supervisor requests (`kernel:
    /// supervisor` pages), if any.
    pub supervisor_pasid: Option<u32>,
}

impl Kernel {
    /// A kernel with no lock held, nothing deposited, no zero pages yet,
    /// and the processes bound to the device, the first one current.
    pub fn new(procs: Vec<Process>, policy: Policy, driver: SvaDriver) -> Self {
        Kernel {
            procs,
            cur: 0,
            policy,
            ptl: LockTable::default(),
            driver,
            deposited: BTreeMap::new(),
            zero_pfn: 0,
            huge_zero_pfn: 0,
            lazyfree: Default::default(),
            misplaced: Default::default(),
            init_mm: None,
            supervisor_pasid: None,
            files: BTreeMap::new(),
        }
    }

    /// The running process's page at `va` was misplaced: its hinting fault
    /// migrates it (once).
    pub fn take_misplaced(&mut self, va: u64) -> bool {
        self.misplaced.remove(&(self.cur, va & !0xfff))
    }

    /// The running process's mmap_lock ([`super::mmap`]).
    pub fn mmap_lock_id(&self) -> u64 {
        mmap_lock_of(self.cur)
    }

    /// The rmap lock of the running process's page at `va`: a shared file
    /// mapping's `i_mmap_rwsem` (one per page-cache page's file, whichever
    /// process maps it), else the process's `anon_vma` root.
    pub fn rmap_lock_id(&self, va: u64) -> u64 {
        match self.files.get(&(self.cur, va & !0xfff)) {
            Some(&file) => RMAP_LOCK | 1 << 32 | file as u64,
            None => RMAP_LOCK | self.cur as u64,
        }
    }

    /// The VMAs `rmap_walk_file` visits for the page-cache page process
    /// `home` maps at `page`, but `home`'s: every other process's named
    /// page of the same file page whose VMA still covers it, in process
    /// order (process, page address). The model's file pages are mapped
    /// only at named pages.
    pub fn file_mappings(&self, home: usize, page: u64) -> Vec<(usize, u64)> {
        let Some(&file) = self.files.get(&(home, page)) else {
            return Vec::new();
        };
        (self.files.iter())
            .filter(|&(&(p, v), &f)| f == file && p != home && self.procs[p].vmas.mapped(v))
            .map(|(&at, _)| at)
            .collect()
    }

    /// `page_mapcount`: how many page-table entries map frame `pfn` at the
    /// processes' named pages (an entry two processes share through a
    /// shared page table counts once, as Linux counts it).
    pub fn mapcount(&self, mem: &crate::mem::PhysMem, pfn: u64) -> u64 {
        let mut entries = std::collections::BTreeSet::new();
        for p in &self.procs {
            for page in p.vmas.pages() {
                // a huge entry maps the page whose head `pfn` names
                let same = |l: &crate::mem::Leaf| {
                    let head = !(l.size.frames() - 1);
                    l.pfn & head == pfn & head
                };
                if let Some(l) = p.mm.walk(mem, page).ok().filter(same) {
                    entries.insert(l.entry_pa);
                }
            }
        }
        entries.len() as u64
    }

    /// The process the running step acts on.
    pub fn proc(&self) -> &Process {
        &self.procs[self.cur]
    }

    pub fn proc_mut(&mut self) -> &mut Process {
        &mut self.procs[self.cur]
    }

    /// The running step's address space (`current->mm`).
    pub fn mm(&self) -> &AddressSpace {
        &self.procs[self.cur].mm
    }

    /// `pgtable_trans_huge_withdraw`.
    pub fn withdraw(&mut self, pmd_pa: u64) -> Option<u64> {
        self.deposited.remove(&pmd_pa)
    }
}

/// What a step did, for the checker, the report and the waves; the
/// scheduler stamps the cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    Store {
        tid: usize,
        va: u64,
        pa: u64,
        value: u64,
        version: u64,
    },
    Load {
        tid: usize,
        va: u64,
        pa: u64,
        value: u64,
        version: u64,
    },
    /// A PTE of the device's address space changed (by CPU thread `tid`).
    Pte {
        tid: usize,
        va: u64,
        old: u64,
        new: u64,
    },
    /// A secondary-TLB flush reached the driver (`prim` is the caller).
    FlushBegin {
        tid: usize,
        prim: Prim,
        start: u64,
        end: u64,
    },
    FlushDone {
        tid: usize,
    },
    FrameFreed {
        pfn: u64,
    },
    /// CPU thread `tid`'s operation returned (its last step is done).
    Returned {
        tid: usize,
    },
    /// madvise(MADV_FREE) of the page at `va` began (it passed its
    /// checks), or returned (`returned`).
    MadvFree {
        va: u64,
        returned: bool,
    },
    /// A call that throws away what `[start, end)` holds (munmap,
    /// madvise(MADV_DONTNEED), exit) began, once it holds its mmap_lock,
    /// or returned (`returned`).
    Discarding {
        start: u64,
        end: u64,
        returned: bool,
    },
    /// Reclaim discarded frame `pfn`, mapped at `va`, as lazily freeable
    /// (the MADV_FREE branch of `try_to_unmap_one`): its data is dropped.
    Discard {
        va: u64,
        pfn: u64,
    },
    /// do_anonymous_page mapped frame `pfn` of zeros (or the zero page)
    /// at `va`'s page, for thread `tid` (a CPU, or the I/O page fault
    /// worker for device `dev`): the zeros of the page's named words are
    /// stores in the global order.
    ZeroFill {
        tid: usize,
        dev: Option<u8>,
        va: u64,
        pfn: u64,
    },
    /// Writeback I/O read the page: what reached the disk.
    Io {
        tid: usize,
        va: u64,
        value: u64,
        version: u64,
    },
}

impl HostEvent {
    /// Apply `f` to each virtual address the event names (not a flush's
    /// range): the scheduler names each process's addresses its own way.
    pub fn map_va(&mut self, f: impl Fn(u64) -> u64) {
        match self {
            HostEvent::Store { va, .. }
            | HostEvent::Load { va, .. }
            | HostEvent::Pte { va, .. }
            | HostEvent::MadvFree { va, .. }
            | HostEvent::Discard { va, .. }
            | HostEvent::ZeroFill { va, .. }
            | HostEvent::Io { va, .. } => *va = f(*va),
            HostEvent::Discarding { start, end, .. } => {
                *start = f(*start);
                *end = f(*end);
            }
            HostEvent::FlushBegin { .. }
            | HostEvent::FlushDone { .. }
            | HostEvent::FrameFreed { .. }
            | HostEvent::Returned { .. } => {}
        }
    }
}

/// Everything a step may touch.
pub struct Cx<'a> {
    pub m: &'a mut Machine,
    pub k: &'a mut Kernel,
    pub tid: usize,
    pub events: &'a mut Vec<HostEvent>,
    /// The run's paths (what a path's `call` finds).
    pub paths: &'a crate::mm::lang::Paths,
    /// The events before this one name their addresses as the checker
    /// knows them ([`crate::checker::key`]); the rest are the running
    /// process's plain VAs.
    keyed: usize,
}

impl<'a> Cx<'a> {
    /// A step of thread `tid`: the events it pushes from now on are its
    /// own.
    pub fn new(
        m: &'a mut Machine,
        k: &'a mut Kernel,
        tid: usize,
        events: &'a mut Vec<HostEvent>,
        paths: &'a crate::mm::lang::Paths,
    ) -> Self {
        let keyed = events.len();
        Cx {
            m,
            k,
            tid,
            events,
            paths,
            keyed,
        }
    }

    /// Name the addresses of the events pushed since the last switch as
    /// the running process's ([`crate::checker::key`]).
    pub fn key_events(&mut self) {
        let process = self.k.cur as u8;
        for e in &mut self.events[self.keyed..] {
            e.map_va(|va| crate::checker::key(process, va));
        }
        self.keyed = self.events.len();
    }

    /// The thread goes on in process `p`'s address space (an rmap walk's
    /// next mapping of a page): what it did so far stays the old one's.
    pub fn switch_process(&mut self, p: usize) {
        self.key_events();
        self.k.cur = p;
    }
    /// The page-table format of the process's address space: what every
    /// entry a path reads or writes is in.
    pub fn pt(&self) -> PtFormat {
        self.k.mm().format
    }
}

/// Why a thread could not take its next step this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOn {
    /// Spinning on a page-table lock (or waiting for an rmap lock) held by
    /// another thread.
    Lock { id: u64, holder: usize },
    /// Another CPU owns the IOMMU command queue.
    Queue,
    /// Spinning on the fence completion word.
    Fence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Completed the named checkpoint.
    Reached(&'static str),
    /// Spinning; try again next round.
    Wait(WaitOn),
    /// The operation finished (its last checkpoint was reported before).
    Done,
}

/// A secondary-TLB flush a step must complete before it is done. Polled
/// once per scheduler round; a policy that does not flush at `prim`
/// completes at once.
#[derive(Default, Debug)]
pub struct Notify {
    ticket: Option<FlushTicket>,
    /// [`Notify::kva_range`]'s next process.
    next: usize,
}

impl Notify {
    /// Ok(None) when done, Ok(Some(wait)) while the flush is in progress.
    /// `stride` is the size of one entry a CPU flush covers (4 KiB, or a
    /// huge entry's size): under [`Policy::Arch`] the secondary TLBs get
    /// the range the CPU's architecture passes on, which may be the whole
    /// address space ([`Cpu::secondary_range`]). Notifier calls ignore it.
    pub fn run(
        &mut self,
        cx: &mut Cx,
        prim: Prim,
        start: u64,
        end: u64,
        stride: u64,
    ) -> Result<Option<WaitOn>, MmError> {
        if cx.k.proc().unbound || !cx.k.policy.flushes(prim) {
            return Ok(None);
        }
        // 6.6+: every flush that reaches the driver is the CPU's
        let cpu = Cpu::of(cx.k.driver.kind());
        let (start, end) = match (cx.k.policy, prim) {
            (Policy::Arch, Prim::TlbBatch) => cpu.batched_range(start, end),
            (Policy::Arch, _) => cpu.secondary_range(start, end, stride),
            _ => (start, end),
        };
        let pasid = cx.k.mm().pasid;
        self.submit(cx, prim, start, end, |cx| {
            cx.k.driver.try_begin(cx.m, cx.tid, pasid, start, end)
        })
    }

    /// The driver's commands of an unbind of the process's PASID
    /// ([`SvaDriver::try_begin_unbind`]), waited for as a flush is.
    pub fn unbind(&mut self, cx: &mut Cx) -> Result<Option<WaitOn>, MmError> {
        let pasid = cx.k.mm().pasid;
        self.submit(cx, Prim::Unbind, 0, 0, |cx| {
            cx.k.driver.try_begin_unbind(cx.m, cx.tid, pasid)
        })
    }

    /// The driver's release callback of the process's PASID
    /// ([`SvaDriver::try_begin_release`]), waited for as a flush is.
    pub fn release(&mut self, cx: &mut Cx) -> Result<Option<WaitOn>, MmError> {
        let pasid = cx.k.mm().pasid;
        self.submit(cx, Prim::Release, 0, u64::MAX, |cx| {
            cx.k.driver.try_begin_release(cx.m, cx.tid, pasid)
        })
    }

    /// `iommu_sva_invalidate_kva_range(start, end)`: every bound process's
    /// PASID flushed over the range, one after another, then the
    /// supervisor PASID when one is bound, under every policy (the driver's
    /// `arch_invalidate_secondary_tlbs`, called with the range as it is).
    pub fn kva_range(
        &mut self,
        cx: &mut Cx,
        start: u64,
        end: u64,
    ) -> Result<Option<WaitOn>, MmError> {
        loop {
            let n = cx.k.procs.len();
            while self.next < n && cx.k.procs[self.next].unbound {
                self.next += 1;
            }
            let pasid = match cx.k.procs.get(self.next) {
                Some(p) => p.mm.pasid,
                None => match cx.k.supervisor_pasid.filter(|_| self.next == n) {
                    Some(pasid) => pasid,
                    None => {
                        self.next = 0;
                        return Ok(None);
                    }
                },
            };
            let wait = self.submit(cx, Prim::KvaRange, start, end, |cx| {
                cx.k.driver.try_begin(cx.m, cx.tid, pasid, start, end)
            })?;
            if wait.is_some() {
                return Ok(wait);
            }
            self.next += 1;
        }
    }

    /// Begin with `begin` (None while another thread owns the queue), then
    /// poll the ticket until the driver says the fence completed.
    fn submit(
        &mut self,
        cx: &mut Cx,
        prim: Prim,
        start: u64,
        end: u64,
        begin: impl FnOnce(&mut Cx) -> Result<Option<FlushTicket>, DriverError>,
    ) -> Result<Option<WaitOn>, MmError> {
        match self.ticket {
            None => match begin(cx)? {
                None => Ok(Some(WaitOn::Queue)),
                Some(t) => {
                    cx.events.push(HostEvent::FlushBegin {
                        tid: cx.tid,
                        prim,
                        start,
                        end,
                    });
                    self.ticket = Some(t);
                    Ok(Some(WaitOn::Fence))
                }
            },
            Some(t) => {
                if cx.k.driver.poll(cx.m, t) {
                    self.ticket = None;
                    cx.events.push(HostEvent::FlushDone { tid: cx.tid });
                    Ok(None)
                } else {
                    Ok(Some(WaitOn::Fence))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page-table lock is exclusive; an rmap lock is read-write: walks
    /// share it, mremap's `take_rmap_locks` excludes them.
    #[test]
    fn locks_exclude_and_rmap_walks_share() {
        let mut t = LockTable::default();
        assert!(
            t.try_lock(7, 0) && t.try_lock(7, 0),
            "a holder takes it again"
        );
        assert!(!t.try_lock(7, 1) && t.holder(7) == Some(0));
        t.unlock(7, 1);
        assert_eq!(t.holder(7), Some(0), "only the holder unlocks");
        t.unlock(7, 0);
        assert!(t.try_lock(7, 1));

        let r = RMAP_LOCK | 3;
        assert!(t.try_read(r, 0) && t.try_read(r, 2), "two walks at once");
        assert!(!t.try_lock(r, 1), "a writer waits for the readers");
        assert!(t.held_by_others(1, super::super::mmap::MMAP_LOCK));
        t.unlock(r, 0);
        assert!(!t.try_lock(r, 1));
        t.unlock(r, 2);
        assert!(t.try_lock(r, 1), "the last reader gone");
        assert!(!t.try_read(r, 0), "a walk waits for the writer");
        assert_eq!(t.holder(r), Some(1));
        t.unlock(r, 1);
        t.unlock(7, 1);
        assert!(!t.held_by_others(0, super::super::mmap::MMAP_LOCK));
    }
}
