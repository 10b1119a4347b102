//! The path language: a kernel path as data. A path is a list of steps;
//! each step is a checkpoint (a point where the thread can be preempted)
//! and does a few primitives, one per line:
//!
//! ```yaml
//! wp_page_copy:
//!   follows: mm/memory.c do_wp_page, wp_page_copy (Linux 4.14 and 4.15)
//!   steps:
//!     - fault:
//!         - lock pte
//!         - orig = read(pte)
//!         - if refcount(pfn(orig)) == 1 goto reuse
//!         - get pfn(orig)
//!         - unlock pte
//!     - copy: [new = alloc(), copy new, pfn(orig)]
//!     - start: start start, end
//! ```
//!
//! docs/paths.md is the reference: every primitive, expression and
//! notifier call, and how the policy decides what a notifier call does.
//! [`parse`] reads a path file (or a scenario's `paths:`) into a
//! [`PathDef`] and checks it whole (an unknown primitive, variable or step
//! is an error with its line); [`exec::PathRun`] runs it one checkpoint
//! per scheduler step. The bundled paths are files under `paths/`, compiled
//! in, with later releases' versions of some under `paths/<release>/`
//! ([`release`]); a scenario can override one by name or define its own.

pub mod exec;
pub mod parse;
pub mod release;

use super::policy::Prim;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use exec::{CallOp, Flow, PathRun};
pub use parse::{parse_file, parse_paths, RawPath};
pub use release::Release;

/// The variables every path is given by its caller, in slot order.
pub const INPUTS: &[&str] = &[
    "va",
    "start",
    "end",
    "pte",
    "to",
    "keep_tables",
    "prot_numa",
    "misplaced",
    "write",
];
/// Slot of each input.
pub const VA: usize = 0;
pub const START: usize = 1;
pub const END: usize = 2;
pub const PTE: usize = 3;
pub const TO: usize = 4;
/// Set (1) by a zap whose caller keeps the page tables it empties
/// (madvise(MADV_DONTNEED)'s `zap_page_range`; munmap frees them).
pub const KEEP_TABLES: usize = 5;
/// Set (1) by a change_protection whose caller is NUMA balancing
/// (`change_prot_numa`: the entries become PROT_NONE hinting entries).
pub const PROT_NUMA: usize = 6;
/// Set (1) for a NUMA hinting fault whose page the scan found on the wrong
/// node (`numa-hint <page> misplaced`): the fault migrates it.
pub const MISPLACED: usize = 7;
/// A fault's access: 1 for a write, 0 for a read (a store's fault and the
/// I/O page fault handler's spurious fault set it).
pub const WRITE: usize = 8;

/// The caller's values of [`INPUTS`] (`None`: it gives none, and reading
/// it is an error).
pub type Inputs = [Option<u64>; 9];

/// The most variables a path may name (inputs included).
pub const MAX_VARS: usize = 64;
/// An array's indices: 0 to `MAX_INDEX - 1` (a page table's 512 entries, a
/// huge page's 512 subpages, with room).
pub const MAX_INDEX: u64 = 4096;
/// The most steps of one path, and primitives of one step.
pub const MAX_STEPS: usize = 128;
pub const MAX_OPS: usize = 64;
/// The most primitives one scheduler step may run before it reaches a
/// checkpoint (a scan of a whole page table is 512 rounds of a loop of a
/// few): more is a loop that never yields.
pub const MAX_OPS_PER_STEP: usize = 1 << 16;

/// A path a caller holds: its `Debug` is the name alone (a caller's state
/// is hashed by `explore` at every node; the text does not change in a run).
#[derive(Clone, PartialEq, Eq)]
pub struct PathRef(pub Arc<PathDef>);

impl std::fmt::Debug for PathRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// A parsed, checked path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathDef {
    pub name: String,
    /// The kernel function(s) and release(s) it follows.
    pub follows: String,
    /// Where it was written (a bundled `paths/` file, or the scenario).
    pub file: String,
    pub steps: Vec<Step>,
    /// Variable names by slot; the first [`INPUTS`] are the inputs.
    pub vars: Vec<String>,
    /// Which slots are arrays (`x[i] = ...`), by slot.
    pub arrays: Vec<bool>,
    /// `mmap_lock:` how its caller holds the process's mmap_lock, when the
    /// path says (else the action's Linux caller's; `call`: none).
    pub mmap_lock: Option<crate::mm::mmap::Hold>,
}

impl PathDef {
    /// Its checkpoint names, in the order written.
    pub fn checkpoints(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|s| !s.label())
            .map(|s| s.name)
            .collect()
    }

    /// A fault handler: it ends with `retry` somewhere (only an access
    /// can run it).
    pub fn retries(&self) -> bool {
        self.steps
            .iter()
            .any(|s| s.ops.iter().any(|o| o.kind == OpKind::Retry))
    }

    /// The path as YAML, each line after `indent` spaces (a scenario's
    /// `paths:` entry, or a path file's): it parses back to the same steps.
    pub fn to_yaml(&self, indent: usize) -> String {
        use std::fmt::Write;
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let pad = " ".repeat(indent);
        let mut y = String::new();
        let _ = writeln!(y, "{pad}{}:", self.name);
        let _ = writeln!(y, "{pad}  follows: {}", q(&self.follows));
        if let Some(h) = self.mmap_lock {
            let _ = writeln!(y, "{pad}  mmap_lock: {}", h.name());
        }
        let _ = writeln!(y, "{pad}  steps:");
        for s in &self.steps {
            let _ = writeln!(y, "{pad}    - {}:", s.name);
            for o in &s.ops {
                let _ = writeln!(y, "{pad}        - {}", q(&o.text));
            }
        }
        y
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The checkpoint name (interned: see [`intern`]).
    pub name: &'static str,
    pub line: usize,
    pub ops: Vec<Op>,
}

impl Step {
    /// A label (`_scan`): a place to `goto`, not a checkpoint. Its end
    /// runs on into the next step in the same scheduler step.
    pub fn label(&self) -> bool {
        self.name.starts_with('_')
    }
}

/// One primitive, with the line it was written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub line: usize,
    /// As written (what a scenario written back gives again).
    pub text: String,
    pub kind: OpKind,
}

/// What `rmap_lock`, `rmap_lock_read` and `rmap_unlock` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmapHold {
    Write,
    Read,
    Release,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `x = <expr>`.
    Let(usize, Expr),
    /// `x[<index>] = <expr>`: an element of an array (a local array of the
    /// kernel function: `pages[]` of the THP COW fallback).
    LetIndex(usize, Expr, Expr),
    /// `x = alloc()`: a fresh frame (refcount 1).
    Alloc(usize),
    /// `x = pte_alloc(<addr>)`, `x = pmd_alloc(<addr>)`, `x =
    /// pud_alloc(<addr>)`: the physical address of `addr`'s slot at that
    /// level (1, 2, 3), the page tables above it allocated where missing
    /// (`pte_alloc`, `alloc_new_pmd`, `alloc_new_pud`).
    SlotAlloc(usize, Expr, u8),
    /// `x = withdraw(<pmd>)`: `pgtable_trans_huge_withdraw`: the page table
    /// deposited with the huge PMD at that address, taken (0: none).
    Withdraw(usize, Expr),
    /// `x = child_pmd(<addr>)` (level 2), `x = child_huge_pte(<addr>)`
    /// (level 0: the level of the huge entry of `addr`'s hugetlb VMA, a PMD,
    /// or a PUD for 1 GiB pages): fork's child address space, with its page
    /// tables down to that level for `addr`: that slot's physical address
    /// (empty; copy_hugetlb_page_range's `huge_pte_alloc` in the child).
    ChildSlot(usize, Expr, u8),
    /// `lock <entry>` / `unlock <entry>`: the split PTL of the page-table
    /// page holding the entry at that physical address.
    Lock(Expr),
    Unlock(Expr),
    /// `rmap_lock <va>` (`take_rmap_locks`: for write), `rmap_lock_read
    /// <va>` (an rmap walk's `anon_vma_lock_read` or `i_mmap_lock_read`),
    /// `rmap_unlock <va>`: the rmap lock of the page at `va`
    /// ([`crate::mm::Kernel::rmap_lock_id`]).
    RmapLock(Expr, RmapHold),
    /// `lock_page <pfn>` (true) / `unlock_page <pfn>`: the page lock of
    /// that frame ([`crate::mm::page_lock_id`]), which a migration holds
    /// from before its unmap to after its remap (`migration_entry_wait`
    /// waits for it).
    PageLock(Expr, bool),
    /// `mutex_lock <name>` (true) / `mutex_unlock <name>`: a kernel-wide
    /// mutex ([`crate::mm::KERNEL_MUTEXES`]), its lock id.
    Mutex(u64, bool),
    /// `set_pte <entry>, <value> [, <va>]`: write a page-table entry (the
    /// PTE event, for the checker and the waves, of `<va>`'s page; default
    /// the path's `va`).
    SetPte(Expr, Expr, Option<Expr>),
    /// `get <pfn>` / `put <pfn>`: a page reference; the last put frees.
    Get(Expr),
    Put(Expr),
    /// `copy <dst pfn>, <src pfn> [, <pages>]`: copy_user_highpage (of
    /// `pages` frames from each: a huge page's `copy_huge_page`).
    Copy(Expr, Expr, Option<Expr>),
    /// `x = alloc_huge()`: a hugetlb page from the pool (512 frames, one
    /// reference): its first frame. `x = alloc_thp()`: a transparent huge
    /// page (freed to the free list).
    AllocHuge(usize, bool),
    /// `x = huge_pmd_unshare(<addr>)`: when the page table that maps
    /// `addr`'s 2 MiB is shared with another process, this process's PUD
    /// entry is cleared and the table's reference dropped (1); otherwise
    /// nothing (0).
    Unshare(usize, Expr),
    /// A notifier or TLB-flush call over `[start, end)`; with `clear`, the
    /// entry at that address is cleared first (`*_clear_flush*`).
    Notify {
        call: Call,
        clear: Option<Expr>,
        start: Expr,
        end: Expr,
        /// `flush_tlb_range`'s optional third argument: the size of one
        /// flushed entry (4 KiB when absent; a hugetlb VMA's is its huge
        /// page size), which 6.6's architecture code counts entries by.
        stride: Option<Expr>,
    },
    /// `tlb_gather_mmu <start>, <end>`: begin an mmu_gather over the range
    /// (the caller sets its batch size); `inc_tlb_flush_pending`.
    Gather(Expr, Expr),
    /// `tlb_adjust_range <start>, <end>`: the next flush covers the range
    /// too (`__tlb_adjust_range`).
    AdjustRange(Expr, Expr),
    /// `lazyfree <pfn>`: the page becomes lazily freeable
    /// (`mark_page_lazyfree`: reclaim may discard it while it is clean).
    Lazyfree(Expr),
    /// `unlazy <pfn>`: the page is no longer lazily freeable
    /// (SetPageSwapBacked: dirtied again since MADV_FREE).
    Unlazy(Expr),
    /// `discard <pfn>`: reclaim drops the lazily freeable page's data (for
    /// the checker: writes to it are gone).
    Discard(Expr),
    /// `madvise_free_begin` / `madvise_free_return`: madvise(MADV_FREE) of
    /// the path's page passed its checks / returns (for the checker: a
    /// write after the return must survive).
    MadvFree {
        returned: bool,
    },
    /// `inc_tlb_flush_pending` / `dec_tlb_flush_pending`: a page-table
    /// change whose CPU flush is still to come, outside an mmu_gather
    /// (change_protection_range's): `mm->tlb_flush_pending`, which another
    /// thread's `tlb_finish_mmu` reads (`tlb_flush_nested()`).
    FlushPending {
        inc: bool,
    },
    /// `tlb_remove_tlb_entry <va>`: the next TLB flush covers `va`'s page
    /// (`tlb->cleared_ptes`); `tlb_remove_pmd_tlb_entry <va>`: its 2 MiB
    /// region (`tlb->cleared_pmds`: zap_huge_pmd's, and hugetlb's
    /// `tlb_remove_huge_tlb_entry` of a 2 MiB page);
    /// `tlb_remove_pud_tlb_entry <va>`: its 1 GiB region
    /// (`tlb->cleared_puds`: hugetlb's of a 1 GiB page). `size` is the
    /// entry's.
    RemoveTlbEntry {
        va: Expr,
        size: crate::mem::PageSize,
    },
    /// `tlb_remove_page <pfn>`: the page goes into the batch, freed after
    /// the flush.
    RemovePage(Expr),
    /// `tlb_remove_table <pfn>, <va>` (`pte_free_tlb`): the page table in
    /// frame `pfn`, which mapped `va`'s region, is freed after the flush,
    /// which covers `va`'s page.
    RemoveTable(Expr, Expr),
    /// `pte_free_kernel <pfn>`: the kernel page table in frame `pfn`
    /// (unhooked by the path first) freed now, with no mmu_gather (x86
    /// `pmd_free_pte_page`'s `free_page`).
    FreeTable(Expr),
    /// `tlb_flush_mmu_tlbonly`: flush the gathered range (the
    /// [`Prim::TlbFlushMmu`] call) if there is one.
    FlushTlbOnly,
    /// `tlb_flush_mmu_free`: free the batch.
    FlushFree,
    /// `tlb_finish_mmu`: both, and the gather ends
    /// (`dec_tlb_flush_pending`).
    Finish,
    /// `io <pa>`: the writeback I/O reads the word at `pa` (what reaches
    /// the disk, for the checker: a later read must not find older data).
    Io(Expr),
    /// `store <pa>, <value>`: a plain store to memory (a driver's write to
    /// a structure the IOMMU reads; not a page-table entry).
    Store(Expr, Expr),
    /// `deposit <pmd>, <table>`: `pgtable_trans_huge_deposit`: the page
    /// table in frame `table` is kept with the huge PMD at `pmd` (for its
    /// split; `withdraw` takes it back).
    Deposit(Expr, Expr),
    /// `iommu_sva_unbind`: the IOMMU driver's commands of an unbind of the
    /// process's PASID, waited for as a flush is.
    SvaUnbind,
    /// `mmu_notifier_release`: the driver's release callback (the whole
    /// PASID flushed, under every policy; the caller clears the PASID's
    /// entry first), waited for; then every notifier is unlinked, as
    /// `mmu_notifier_put` does.
    Release,
    /// `mmu_notifier_put`: the mm's notifier unregistered: no later path
    /// reaches the IOMMU driver.
    NotifierPut,
    /// `refuse "<what>", "<instead>"`: the path does not model what it
    /// found; the run stops before anything changes (not a verdict).
    Refuse(String, &'static str),
    /// `if <expr> then <primitive>`: the primitive when the condition holds
    /// (evaluated again when a waiting primitive resumes).
    When(Expr, Box<OpKind>),
    /// `goto <step>` (with a condition: `if <expr> goto <step>`).
    Goto(Option<Expr>, usize),
    /// `rmap_next <step>`: the rmap walk of the path's page-cache page
    /// (`rmap_walk_file`): the thread moves to the next VMA of another
    /// process that maps the page (its address space; `va`, `start`, `end`
    /// and `pte` of its page) and continues at the step; with none left,
    /// back in the process and at the page it started from, it goes on.
    RmapNext(usize),
    /// `rmap_end`: the walk stops here (its `done()`), back where it
    /// started; nothing when no walk is in progress.
    RmapEnd,
    /// `call <path> <va>, <start>, <end>`: the named path runs here as a
    /// function of this one (its checkpoints are the thread's), with those
    /// inputs (`pte`: `va`'s PTE slot, as a `call` action's); this path
    /// goes on when it returns.
    Call(String, Expr, Expr, Expr),
    /// The faulting access is retried (a fault handler's return).
    Retry,
    /// The path returns.
    Return,
}

/// What a notifier line calls: the primitive the policy is asked about
/// ([`Prim`]), or `start` (no IOMMU driver implements
/// `invalidate_range_start`: it flushes nothing under any policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Start,
    Prim(Prim),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Num(u64),
    Var(usize),
    /// `x[i]`: an element of array `x`.
    Index(usize, Box<Expr>),
    Not(Box<Expr>),
    Inv(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Func(Func, Vec<Expr>),
    /// `defined(x)`: 1 when this run has set variable `x` (an input the
    /// caller may not give, like `to`).
    Defined(usize),
    /// `( e )`: kept so the parser can tell `(a == b) | c` from the
    /// unparenthesized form it refuses.
    Group(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
}

/// The functions an expression can call: reads of memory and frame state,
/// and the page-table entry helpers of the process's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `read(pa)`: the 64-bit word at a physical address.
    Read,
    /// `refcount(pfn)`: page_count.
    Refcount,
    /// `mapcount(pfn)`: page_mapcount: the page-table entries of every
    /// process that map the frame (one a shared page table holds counts
    /// once).
    Mapcount,
    Pfn,
    Present,
    Writable,
    Young,
    Dirty,
    Mkwrite,
    Wrprotect,
    Mkdirty,
    Mkclean,
    Mkyoung,
    Mkold,
    /// `leaf_rw(pfn)`, `leaf_ro(pfn)`: a user 4 KiB leaf.
    LeafRw,
    LeafRo,
    /// `huge_leaf_rw(pfn)`: a user 2 MiB leaf (a PMD), writable and dirty
    /// (`mk_huge_pmd`, `maybe_pmd_mkwrite(pmd_mkdirty())`).
    HugeLeafRw,
    /// `kernel_huge_leaf(pfn)`: a kernel 2 MiB leaf (`pmd_set_huge` with
    /// `PAGE_KERNEL`: supervisor-only, writable).
    KernelHugeLeaf,
    /// `named(addr)`: one of the process's named pages (a page of its VMAs
    /// at the start) is `addr`'s 4 KiB page.
    Named,
    /// `select(c, a, b)`: `a` if `c` is not 0, else `b` (only the chosen
    /// one is evaluated, as C's `c ? a : b`).
    Select,
    /// `table(addr)`: the frame of the page table of 4 KiB entries that
    /// covers `addr`, 0 when there is none (`pmd_none`); a huge page there
    /// is refused (the path walks 4 KiB entries).
    Table,
    /// `pte_in(table, addr)`: the physical address of `addr`'s entry in
    /// that page table.
    PteIn,
    /// `batch_full()`: the mmu_gather's batch is full (`__tlb_remove_page`
    /// returned true: force_flush).
    BatchFull,
    /// `zero_pfn()`: the 4 KiB zero page's frame (no reference is dropped
    /// for it: it is not a normal page).
    ZeroPfn,
    /// `tlb_flush_nested()`: another thread has an mmu_gather in progress
    /// on this mm (`mm_tlb_flush_nested`: the pending count is over 1).
    TlbFlushNested,
    /// `tlb_flush_pending()`: a page-table change of this mm waits for its
    /// CPU flush (`mm_tlb_flush_pending`: the pending count is above 0).
    TlbFlushPending,
    /// `mapped(addr)`: the CPU's walk of `addr` finds a present leaf.
    Mapped,
    /// `frame_of(addr)`: the 4 KiB frame the CPU's walk of `addr` finds
    /// (inside a huge page: its frame); an error when nothing is mapped.
    FrameOf,
    /// `file_vma(addr)`: `addr` lies in a shared file mapping.
    FileVma,
    /// `huge(addr)`: a huge page (THP, hugetlb, the huge zero page) maps
    /// `addr`.
    Huge,
    /// `is_lazyfree(pfn)`: MADV_FREE made the page lazily freeable.
    IsLazyfree,
    /// `page_locked(pfn)`: a thread holds the page's lock (`PageLocked`:
    /// `trylock_page` would fail).
    PageLocked,
    /// `has_vma(addr)`: a VMA of the running process covers `addr`
    /// (`find_vma`).
    HasVma,
    /// `set_pfn(entry, pfn)`: the entry with its flags, pointing at `pfn`.
    SetPfn,
    /// `identical(pfn, pfn)`: the two frames hold the same 4 KiB
    /// (`pages_identical`).
    Identical,
    /// `huge_zero(addr)`: the huge zero page maps `addr`.
    HugeZero,
    /// `deposited(pmd)`: a page table is deposited with the huge PMD at
    /// that address.
    Deposited,
    /// `is_huge(entry)`: the PMD entry is a huge leaf.
    IsHuge,
    /// `protnone(entry)`: the entry made a NUMA hinting entry (PROT_NONE:
    /// not present to the hardware, [`PROTNONE`] set, the rest kept).
    Protnone,
    /// `is_protnone(entry)`: a NUMA hinting entry (`pte_protnone`).
    IsProtnone,
    /// `mkpresent(entry)`: a hinting entry made present again with its own
    /// permissions (any other entry as it is): what a fresh entry from the
    /// VMA's protection gives (`pte_modify`, `mk_pte(.., vm_page_prot)`).
    Mkpresent,
    /// `table_entry(pfn)`: a non-leaf entry pointing at the page table in
    /// that frame.
    TableEntry,
    /// `hugetlb(addr)`: a hugetlbfs page maps `addr`.
    Hugetlb,
    /// `pmd_of(addr)`: the physical address of `addr`'s PMD entry.
    PmdOf,
    /// `pud_of(addr)`: the physical address of `addr`'s PUD entry.
    PudOf,
    /// `huge_hinting(addr)`: a transparent huge page's PMD that NUMA
    /// balancing made PROT_NONE maps `addr`'s 2 MiB (present to the
    /// kernel, to no walker).
    HugeHinting,
    /// `huge_pte_offset(addr)`: the physical address of `addr`'s PMD
    /// entry (its PUD entry in a 1 GiB hugetlb VMA), 0 when a table above
    /// it is missing (a PUD that `huge_pmd_unshare` cleared).
    HugePteOffset,
    /// `huge_page_size(addr)`: the page size of the hugetlb VMA holding
    /// `addr` (2 MiB or 1 GiB), 0 outside one.
    HugePageSize,
    /// `unbound()`: the process's binding to the device was taken away.
    Unbound,
    /// `next_vma(addr)`: the start of the first 2 MiB region at or after
    /// `addr`'s that holds one of the scenario's pages (a VMA), `~0` when
    /// there is none.
    NextVma,
    /// `table_empty(pfn)`: every entry of the page table in that frame is
    /// none (a split THP's other pages keep its table).
    TableEmpty,
    /// `region_within(addr, start, end)`: every one of the scenario's pages
    /// in `addr`'s 2 MiB region lies in `[start, end)` (free_pgtables'
    /// floor and ceiling: no other VMA keeps the region's page table).
    RegionWithin,
    /// `pasid_entry()`: the physical address of the word that makes the
    /// bound PASID translate (the bundled IOMMU's PASID-table entry, the
    /// RISC-V socket's process context), 0 when there is none.
    PasidEntry,
    /// `process_context()`: the physical address of the bound PASID's
    /// process context in the IOMMU's directory, 0 when the IOMMU has none
    /// (the first socket's PASID table is not cached).
    ProcessContext,
}

impl Func {
    pub const ALL: &'static [(&'static str, Func)] = &[
        ("read", Func::Read),
        ("refcount", Func::Refcount),
        ("mapcount", Func::Mapcount),
        ("pfn", Func::Pfn),
        ("present", Func::Present),
        ("writable", Func::Writable),
        ("young", Func::Young),
        ("dirty", Func::Dirty),
        ("mkwrite", Func::Mkwrite),
        ("wrprotect", Func::Wrprotect),
        ("mkdirty", Func::Mkdirty),
        ("mkclean", Func::Mkclean),
        ("mkyoung", Func::Mkyoung),
        ("mkold", Func::Mkold),
        ("leaf_rw", Func::LeafRw),
        ("huge_leaf_rw", Func::HugeLeafRw),
        ("kernel_huge_leaf", Func::KernelHugeLeaf),
        ("named", Func::Named),
        ("leaf_ro", Func::LeafRo),
        ("table", Func::Table),
        ("pte_in", Func::PteIn),
        ("batch_full", Func::BatchFull),
        ("zero_pfn", Func::ZeroPfn),
        ("tlb_flush_nested", Func::TlbFlushNested),
        ("tlb_flush_pending", Func::TlbFlushPending),
        ("mapped", Func::Mapped),
        ("frame_of", Func::FrameOf),
        ("file_vma", Func::FileVma),
        ("huge", Func::Huge),
        ("hugetlb", Func::Hugetlb),
        ("huge_zero", Func::HugeZero),
        ("deposited", Func::Deposited),
        ("is_huge", Func::IsHuge),
        ("protnone", Func::Protnone),
        ("is_protnone", Func::IsProtnone),
        ("mkpresent", Func::Mkpresent),
        ("table_entry", Func::TableEntry),
        ("is_lazyfree", Func::IsLazyfree),
        ("page_locked", Func::PageLocked),
        ("has_vma", Func::HasVma),
        ("set_pfn", Func::SetPfn),
        ("identical", Func::Identical),
        ("pmd_of", Func::PmdOf),
        ("pud_of", Func::PudOf),
        ("huge_pte_offset", Func::HugePteOffset),
        ("huge_page_size", Func::HugePageSize),
        ("huge_hinting", Func::HugeHinting),
        ("unbound", Func::Unbound),
        ("process_context", Func::ProcessContext),
        ("next_vma", Func::NextVma),
        ("region_within", Func::RegionWithin),
        ("table_empty", Func::TableEmpty),
        ("pasid_entry", Func::PasidEntry),
    ];

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Func::BatchFull
            | Func::ZeroPfn
            | Func::Unbound
            | Func::ProcessContext
            | Func::PasidEntry
            | Func::TlbFlushNested
            | Func::TlbFlushPending => 0,
            Func::PteIn | Func::SetPfn | Func::Identical => 2,
            Func::Select | Func::RegionWithin => 3,
            _ => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Select => "select",
            f => Func::ALL
                .iter()
                .find(|(_, g)| *g == f)
                .map_or("?", |(n, _)| n),
        }
    }
}

/// A checkpoint name as `&'static str` (what [`super::Progress`] carries):
/// each distinct name is kept once for the life of the process.
pub fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeMap<String, &'static str>> = Mutex::new(BTreeMap::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(name.to_string(), leaked);
    leaked
}

/// The bundled path files: (repository path, text).
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "paths/wp_page_copy.yaml",
        include_str!("../../../paths/wp_page_copy.yaml"),
    ),
    (
        "paths/zap_pte_range.yaml",
        include_str!("../../../paths/zap_pte_range.yaml"),
    ),
    (
        "paths/unmap_hugepage_range.yaml",
        include_str!("../../../paths/unmap_hugepage_range.yaml"),
    ),
    (
        "paths/exit_mmap.yaml",
        include_str!("../../../paths/exit_mmap.yaml"),
    ),
    (
        "paths/move_ptes.yaml",
        include_str!("../../../paths/move_ptes.yaml"),
    ),
    (
        "paths/move_normal_pmd.yaml",
        include_str!("../../../paths/move_normal_pmd.yaml"),
    ),
    (
        "paths/move_normal_pud.yaml",
        include_str!("../../../paths/move_normal_pud.yaml"),
    ),
    (
        "paths/move_hugetlb_page_tables.yaml",
        include_str!("../../../paths/move_hugetlb_page_tables.yaml"),
    ),
    (
        "paths/ptep_set_access_flags.yaml",
        include_str!("../../../paths/ptep_set_access_flags.yaml"),
    ),
    (
        "paths/huge_pmd_set_accessed.yaml",
        include_str!("../../../paths/huge_pmd_set_accessed.yaml"),
    ),
    (
        "paths/move_huge_pmd.yaml",
        include_str!("../../../paths/move_huge_pmd.yaml"),
    ),
    (
        "paths/split_huge_zero_page_pmd.yaml",
        include_str!("../../../paths/split_huge_zero_page_pmd.yaml"),
    ),
    (
        "paths/split_huge_pmd.yaml",
        include_str!("../../../paths/split_huge_pmd.yaml"),
    ),
    (
        "paths/do_huge_pmd_wp_page_fallback.yaml",
        include_str!("../../../paths/do_huge_pmd_wp_page_fallback.yaml"),
    ),
    (
        "paths/collapse_huge_page.yaml",
        include_str!("../../../paths/collapse_huge_page.yaml"),
    ),
    (
        "paths/try_to_merge_one_page.yaml",
        include_str!("../../../paths/try_to_merge_one_page.yaml"),
    ),
    (
        "paths/try_to_unmap_one.yaml",
        include_str!("../../../paths/try_to_unmap_one.yaml"),
    ),
    (
        "paths/migrate_page.yaml",
        include_str!("../../../paths/migrate_page.yaml"),
    ),
    (
        "paths/migrate_huge_page.yaml",
        include_str!("../../../paths/migrate_huge_page.yaml"),
    ),
    (
        "paths/do_huge_pmd_numa_page.yaml",
        include_str!("../../../paths/do_huge_pmd_numa_page.yaml"),
    ),
    (
        "paths/change_protection.yaml",
        include_str!("../../../paths/change_protection.yaml"),
    ),
    (
        "paths/hugetlb_change_protection.yaml",
        include_str!("../../../paths/hugetlb_change_protection.yaml"),
    ),
    (
        "paths/copy_hugetlb_page_range.yaml",
        include_str!("../../../paths/copy_hugetlb_page_range.yaml"),
    ),
    (
        "paths/page_mkclean_one.yaml",
        include_str!("../../../paths/page_mkclean_one.yaml"),
    ),
    (
        "paths/madvise_free_pte_range.yaml",
        include_str!("../../../paths/madvise_free_pte_range.yaml"),
    ),
    (
        "paths/iommu_sva_unbind_device.yaml",
        include_str!("../../../paths/iommu_sva_unbind_device.yaml"),
    ),
    (
        "paths/vfree.yaml",
        include_str!("../../../paths/vfree.yaml"),
    ),
    (
        "paths/vmap_try_huge_pmd.yaml",
        include_str!("../../../paths/vmap_try_huge_pmd.yaml"),
    ),
];

/// The paths a run uses: the bundled ones, with a scenario's overrides and
/// additions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    by_name: BTreeMap<String, Arc<PathDef>>,
    /// Names the scenario defined (overrides included), in order.
    pub from_scenario: Vec<String>,
    /// The release whose versions of the bundled functions these are
    /// (`--kernel`); None: the files under `paths/` alone.
    pub kernel: Option<Release>,
}

impl Paths {
    /// The bundled paths alone.
    pub fn bundled() -> &'static Paths {
        static B: std::sync::OnceLock<Paths> = std::sync::OnceLock::new();
        B.get_or_init(|| {
            let mut by_name = BTreeMap::new();
            for (file, text) in BUNDLED {
                // A bundled file that does not parse is caught by the unit
                // test `bundled_paths_parse`.
                match parse_file(file, text) {
                    Ok(defs) => {
                        for d in defs {
                            by_name.insert(d.name.clone(), Arc::new(d));
                        }
                    }
                    Err(e) => panic!("bundled path {e}"),
                }
            }
            Paths {
                by_name,
                from_scenario: Vec::new(),
                kernel: None,
            }
        })
    }

    /// The bundled paths as release `kernel` has them: each function's
    /// newest version at or before it (None: the files under `paths/`).
    pub fn bundled_at(kernel: Option<Release>) -> Paths {
        let mut p = Paths::bundled().clone();
        let Some(k) = kernel else {
            return p;
        };
        p.kernel = Some(k);
        for (rel, file, text) in release::VERSIONS {
            if rel.parse::<Release>().is_ok_and(|r| r > k) {
                continue;
            }
            // caught by the unit test `every_version_parses_and_replaces`
            match parse_file(file, text) {
                Ok(defs) => {
                    for d in defs {
                        p.by_name.insert(d.name.clone(), Arc::new(d));
                    }
                }
                Err(e) => panic!("bundled path {e}"),
            }
        }
        p
    }

    /// The bundled paths with `defs` over them.
    pub fn with(defs: Vec<PathDef>) -> Paths {
        Paths::with_at(None, defs)
    }

    /// The bundled paths of release `kernel` with `defs` over them.
    pub fn with_at(kernel: Option<Release>, defs: Vec<PathDef>) -> Paths {
        let mut p = Paths::bundled_at(kernel);
        for d in defs {
            p.from_scenario.push(d.name.clone());
            p.by_name.insert(d.name.clone(), Arc::new(d));
        }
        p
    }

    /// The same scenario paths over release `kernel`'s bundled ones.
    pub fn at_kernel(&self, kernel: Option<Release>) -> Paths {
        let defs = self.scenario_defs().cloned().collect();
        Paths::with_at(kernel, defs)
    }

    /// Bundled function `name` is a later release's than `kernel`: that
    /// release, its commit and what older releases do instead. None when
    /// no release is chosen or the scenario defines `name` itself.
    pub fn introduced_after_kernel(
        &self,
        name: &str,
    ) -> Option<(Release, &'static str, &'static str)> {
        let k = self.kernel?;
        if self.from_scenario.iter().any(|n| n == name) {
            return None;
        }
        let (_, rel, commit, instead) = release::INTRODUCED.iter().find(|e| e.0 == name)?;
        let rel: Release = rel.parse().ok()?;
        (rel > k).then_some((rel, *commit, *instead))
    }

    /// The bundled functions that run in a later release's version here,
    /// with their files (`paths/4.19/move_ptes.yaml`), by name.
    pub fn later_versions(&self) -> Vec<(&str, &str)> {
        self.by_name
            .iter()
            .filter(|(n, d)| {
                !self.from_scenario.contains(n)
                    && release::VERSIONS.iter().any(|(_, f, _)| *f == d.file)
            })
            .map(|(n, d)| (n.as_str(), d.file.as_str()))
            .collect()
    }

    /// Every `call` names a path there is, which is not a fault handler:
    /// the first that does not, as (file, line, message).
    pub fn check_calls(&self) -> Result<(), (String, usize, String)> {
        for d in self.by_name.values() {
            for op in d.steps.iter().flat_map(|s| &s.ops) {
                let OpKind::Call(name, ..) = &op.kind else {
                    continue;
                };
                let msg = match self.by_name.get(name) {
                    None => format!("'call {name}': no path '{name}' (the paths are {})", self.names()),
                    Some(c) if c.retries() => format!("'call {name}': '{name}' is a fault handler (it ends in 'retry'): only an access runs it"),
                    Some(_) => continue,
                };
                return Err((d.file.clone(), op.line, msg));
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<PathRef> {
        self.by_name.get(name).map(|d| PathRef(d.clone()))
    }

    /// The path an action runs by its bundled name. Every `Paths` starts
    /// from the bundled set and a scenario can only override a name, so
    /// the lookup cannot miss (`every_bundled_path_parses` keeps the files
    /// there).
    fn caller_path(&self, name: &'static str) -> PathRef {
        PathRef(self.by_name[name].clone())
    }

    /// The paths the scenario defined, in the order written.
    pub fn scenario_defs(&self) -> impl Iterator<Item = &PathDef> {
        self.from_scenario
            .iter()
            .filter_map(|n| self.by_name.get(n).map(|d| &**d))
    }

    /// Every path name, for a message.
    pub fn names(&self) -> String {
        self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The path a bundled caller runs by name (bundled, so always there).
    pub fn wp_page_copy(&self) -> PathRef {
        self.caller_path("wp_page_copy")
    }

    /// munmap's path.
    pub fn zap_pte_range(&self) -> PathRef {
        self.caller_path("zap_pte_range")
    }

    /// munmap's path of a hugetlb page.
    pub fn unmap_hugepage_range(&self) -> PathRef {
        self.caller_path("unmap_hugepage_range")
    }

    /// exit's path.
    pub fn exit_mmap(&self) -> PathRef {
        self.caller_path("exit_mmap")
    }

    /// mremap's path of one small page.
    pub fn move_ptes(&self) -> PathRef {
        self.caller_path("move_ptes")
    }

    /// mremap's path of a whole 2 MiB region of small pages.
    pub fn move_normal_pmd(&self) -> PathRef {
        self.caller_path("move_normal_pmd")
    }

    /// mremap's path of a whole 1 GiB region.
    pub fn move_normal_pud(&self) -> PathRef {
        self.caller_path("move_normal_pud")
    }

    /// The fault of a page whose PTE already grants the access (the I/O
    /// page fault handler's spurious Page Request).
    pub fn spurious_fault(&self) -> PathRef {
        self.caller_path("ptep_set_access_flags")
    }

    /// The same for a transparent huge page's PMD.
    pub fn spurious_huge_fault(&self) -> PathRef {
        self.caller_path("huge_pmd_set_accessed")
    }

    /// mremap's path of a hugetlb page.
    pub fn move_hugetlb_page_tables(&self) -> PathRef {
        self.caller_path("move_hugetlb_page_tables")
    }

    /// mremap's path of a transparent huge page.
    pub fn move_huge_pmd(&self) -> PathRef {
        self.caller_path("move_huge_pmd")
    }

    /// `mprotect <page> ro`'s path of a hugetlb page.
    pub fn hugetlb_mprotect(&self) -> PathRef {
        self.caller_path("hugetlb_change_protection")
    }

    /// `mprotect <page> ro`'s path of any other page (a small one; it
    /// refuses the rest).
    pub fn mprotect(&self) -> PathRef {
        self.caller_path("change_protection")
    }

    /// `fork <page>`'s path (hugetlb).
    pub fn hugetlb_fork(&self) -> PathRef {
        self.caller_path("copy_hugetlb_page_range")
    }

    /// split's path (and a write fault's on the huge zero page).
    pub fn zero_split(&self) -> PathRef {
        self.caller_path("split_huge_zero_page_pmd")
    }

    /// A write fault's path on a transparent huge page shared after fork.
    pub fn thp_fallback(&self) -> PathRef {
        self.caller_path("do_huge_pmd_wp_page_fallback")
    }

    /// collapse's path (khugepaged).
    pub fn collapse(&self) -> PathRef {
        self.caller_path("collapse_huge_page")
    }

    /// ksm-wrprotect's and ksm-merge's path.
    pub fn ksm(&self) -> PathRef {
        self.caller_path("try_to_merge_one_page")
    }

    /// reclaim's path.
    pub fn reclaim(&self) -> PathRef {
        self.caller_path("try_to_unmap_one")
    }

    /// migrate's path.
    pub fn migrate(&self) -> PathRef {
        self.caller_path("migrate_page")
    }

    /// split's path for an anonymous THP.
    pub fn thp_split(&self) -> PathRef {
        self.caller_path("split_huge_pmd")
    }

    /// The NUMA hinting fault of a THP.
    pub fn huge_numa_fault(&self) -> PathRef {
        self.caller_path("do_huge_pmd_numa_page")
    }

    /// migrate's path for a hugetlb page.
    pub fn migrate_huge(&self) -> PathRef {
        self.caller_path("migrate_huge_page")
    }

    /// writeback's and dax-writeback's path.
    pub fn mkclean(&self) -> PathRef {
        self.caller_path("page_mkclean_one")
    }

    /// madv-free's path.
    pub fn madvise_free(&self) -> PathRef {
        self.caller_path("madvise_free_pte_range")
    }

    /// vfree's path (a kernel page).
    pub fn vfree(&self) -> PathRef {
        self.caller_path("vfree")
    }

    /// vmap-huge's path (a kernel page's 2 MiB region).
    pub fn vmap_huge(&self) -> PathRef {
        self.caller_path("vmap_try_huge_pmd")
    }

    /// unbind's path.
    pub fn sva_unbind(&self) -> PathRef {
        self.caller_path("iommu_sva_unbind_device")
    }

    /// Is `name` a bundled path's name?
    pub fn is_bundled(name: &str) -> bool {
        Paths::bundled().by_name.contains_key(name)
    }

    /// Every checkpoint name of every path here.
    pub fn checkpoints(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for d in self.by_name.values() {
            for c in d.checkpoints() {
                if !v.contains(&c) {
                    v.push(c);
                }
            }
        }
        v
    }
}

impl Default for Paths {
    fn default() -> Self {
        Paths::bundled().clone()
    }
}
