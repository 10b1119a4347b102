//! The checkpoint lists of the transparent-huge-page paths, which are
//! path files under `paths/`: the THP COW fallback, the huge zero page's
//! split and khugepaged's collapse.

/// Checkpoints of `paths/do_huge_pmd_wp_page_fallback.yaml` (the THP COW
/// fallback: a write to a THP shared after fork, no huge page to copy to).
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

/// Checkpoints of `__split_huge_pmd` on the huge zero page.
pub const CHECKPOINTS_ZERO_SPLIT: &[&str] = &[
    "split_start",
    "split_lock",
    "split_clear_flush",
    "split_fill",
    "split_unlock",
    "split_end",
];

/// Checkpoints of `paths/collapse_huge_page.yaml` (khugepaged's
/// `collapse_huge_page`).
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
