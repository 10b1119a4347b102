//! The Linux side: processes' address spaces, the page-table lock, the
//! `mmu_notifier` policies and the mm paths, each written step by step so
//! that every point where a thread can be preempted is a named checkpoint.

mod access;
pub mod arch;
mod cow;
mod iopf;
mod kernel;
pub mod lang;
mod mapping;
pub mod mmap;
mod path;
mod policy;
mod thp;

pub use access::LoadOp;
pub use cow::{StoreOp, CHECKPOINTS_WP_PAGE_COPY};
pub use iopf::{IopfOp, CHECKPOINTS_IOPF, IOPF_RESPOND};
pub use kernel::{
    kernel_mutex_id, lock_kind, mmap_lock_of, page_lock_id, Cx, HostEvent, Kernel, LockTable,
    MmError, Notify, Process, Progress, WaitOn, KERNEL_MUTEX, KERNEL_MUTEXES, PAGE_LOCK, RMAP_LOCK,
};
pub use mapping::{lookup, HugeKind, Mapping, Vmas};
pub use path::KernelPath;
pub use policy::{Policy, Prim};
pub use thp::{CHECKPOINTS_COLLAPSE, CHECKPOINTS_THP_FALLBACK, CHECKPOINTS_ZERO_SPLIT};

/// The checkpoints of munmap's path, `paths/zap_pte_range.yaml`
/// (tests/paths.rs checks that the file keeps them); `huge_*`: those of its
/// zap_huge_pmd.
pub const CHECKPOINTS_ZAP: &[&str] = &[
    "start",
    "lock",
    "clear",
    "flush",
    "unlock",
    "huge_lock",
    "huge_clear",
    "huge_unlock",
    "split_start",
    "split_lock",
    "split_fill",
    "split_populate",
    "split_unlock",
    "split_end",
    "huge_flush",
    "free",
    "end",
    "free_pgtables",
    "finish",
];

/// The checkpoints of munmap's path of a hugetlb page,
/// `paths/unmap_hugepage_range.yaml`.
pub const CHECKPOINTS_UNMAP_HUGETLB: &[&str] = &[
    "start", "hstart", "lock", "clear", "unlock", "flush", "free", "hend", "end", "finish",
];

/// The checkpoints of the hugetlb paths (`mprotect`:
/// `paths/hugetlb_change_protection.yaml`, `fork`:
/// `paths/copy_hugetlb_page_range.yaml`), together.
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

/// The checkpoints of exit's path, `paths/exit_mmap.yaml`.
pub const CHECKPOINTS_EXIT: &[&str] = &[
    "release",
    "start",
    "lock",
    "clear",
    "flush",
    "unlock",
    "huge_lock",
    "huge_clear",
    "huge_unlock",
    "huge_flush",
    "free",
    "end",
    "free_pgtables",
    "finish",
];

/// Checkpoints of `reclaim` (`paths/try_to_unmap_one.yaml`).
pub const CHECKPOINTS_RECLAIM: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_entry",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "pageout",
    "free",
];

/// Checkpoints of `reclaim` of a page MADV_FREE made lazily freeable.
pub const CHECKPOINTS_DISCARD: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "discard",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "free",
];

/// Checkpoints of `migrate` (`paths/migrate_page.yaml`).
pub const CHECKPOINTS_MIGRATE: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_entry",
    "remove_rmap",
    "notify",
    "unlock",
    "end",
    "copy",
    "remap",
    "free",
];

/// The checkpoints of KSM's path, `paths/try_to_merge_one_page.yaml`
/// (`ksm-wrprotect` stops at `end`, then `put_old`).
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

/// The checkpoints of writeback's path, `paths/page_mkclean_one.yaml`.
pub const CHECKPOINTS_MKCLEAN: &[&str] = &[
    "start",
    "lock",
    "clear_flush",
    "set_pte",
    "notify",
    "unlock",
    "end",
    "io",
];

/// The checkpoints of madv-free's path, `paths/madvise_free_pte_range.yaml`.
pub const CHECKPOINTS_MADV_FREE: &[&str] = &["start", "lock", "clean", "unlock", "end", "finish"];

/// The checkpoints of unbind's path, `paths/iommu_sva_unbind_device.yaml`.
pub const CHECKPOINTS_UNBIND: &[&str] = &["start", "detach", "clear", "invalidate", "unregister"];

/// Every path's checkpoints, for the scenario's `until`.
pub const ALL_CHECKPOINTS: &[&[&str]] = &[
    CHECKPOINTS_WP_PAGE_COPY,
    CHECKPOINTS_THP_FALLBACK,
    CHECKPOINTS_ZERO_SPLIT,
    CHECKPOINTS_ZAP,
    CHECKPOINTS_UNMAP_HUGETLB,
    CHECKPOINTS_EXIT,
    CHECKPOINTS_KSM,
    CHECKPOINTS_MKCLEAN,
    CHECKPOINTS_HUGETLB,
    CHECKPOINTS_RECLAIM,
    CHECKPOINTS_MIGRATE,
    CHECKPOINTS_DISCARD,
    CHECKPOINTS_MADV_FREE,
    CHECKPOINTS_COLLAPSE,
    CHECKPOINTS_UNBIND,
];
