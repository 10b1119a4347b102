//! `madvise(MADV_FREE)`: `madvise_free_single_vma` / `madvise_free_pte_range`
//! (mm/madvise.c, Linux 4.14/4.15). The page stays mapped and writable; its
//! PTE is made old and clean and the page lazily freeable: reclaim may then
//! discard it instead of swapping it out, unless it is dirtied again (the
//! MADV_FREE branch of `try_to_unmap_one`, [`super::UnmapOp`]).
//!
//! ```text
//! start    tlb_gather_mmu; S
//! lock     pte_offset_map_lock
//! clean    ptep_get_and_clear_full; pte_mkold + pte_mkclean; set_pte_at;
//!          tlb_remove_tlb_entry; mark_page_lazyfree (ClearPageSwapBacked)
//! unlock   pte_unmap_unlock
//! end      E
//! finish   tlb_finish_mmu: the CPU TLB flush (and invalidate_range; 6.6+:
//!          the secondary flush inside it)
//! ```
//! `start` refuses, before any change, what is not a private anonymous
//! small page only this process maps: a file page, a huge page, the zero
//! page, a shared page, or no present page (a swap entry would be dropped:
//! not modelled).

use super::kernel::{Cx, HostEvent, MmError, Notify, Progress};
use super::mapping::{self, HugeKind, Mapping, Vmas};
use super::path::{self, spin, KernelPath};
use super::policy::Prim;
use crate::mem::PAGE_SIZE;

pub const CHECKPOINTS_MADV_FREE: &[&str] = &["start", "lock", "clean", "unlock", "end", "finish"];

#[derive(Debug)]
pub struct MadvFreeOp {
    va: u64,
    step: usize,
    pte_pa: u64,
    /// The gathered range still to flush.
    gathered: bool,
    vmas: Vmas,
    notify: Notify,
}

impl MadvFreeOp {
    pub fn new(va: u64, vmas: Vmas) -> Self {
        MadvFreeOp {
            va: va & !(PAGE_SIZE - 1),
            step: 0,
            pte_pa: 0,
            gathered: false,
            vmas,
            notify: Notify::default(),
        }
    }

    /// `start`: a private anonymous small page only this process maps;
    /// anything else is refused before any change.
    fn check(&mut self, cx: &mut Cx) -> Result<(), MmError> {
        let m = mapping::lookup(cx.k, &mut cx.m.mem, self.va)?;
        let why = match m.small_page(cx.k) {
            _ if self.vmas.is_file(self.va) => {
                "a page of a shared file mapping (MADV_FREE takes anonymous memory: EINVAL)"
                    .to_string()
            }
            Some((pte_pa, pfn)) if cx.m.mem.refcount(pfn) == 1 => {
                self.pte_pa = pte_pa;
                return Ok(());
            }
            Some(_) => "a page another process maps too (COW or KSM)".to_string(),
            None => {
                let linux = match m {
                    Mapping::Huge {
                        kind: HugeKind::Thp,
                        ..
                    } => "madvise_free_huge_pmd",
                    Mapping::Huge {
                        kind: HugeKind::Hugetlb,
                        ..
                    } => "EINVAL on a hugetlb VMA",
                    Mapping::Absent { entry: 0, .. } => "nothing to free",
                    Mapping::Absent { .. } => "free_swap_and_cache would drop the entry",
                    _ => "vm_normal_page: no page",
                };
                format!("{} ({linux})", m.describe(cx.k))
            }
        };
        Err(mapping::refuse(
            format!("madv-free of {why}"),
            self.va,
            "madv-free a private small page that only this process maps, while it is mapped",
        ))
    }
}

impl KernelPath for MadvFreeOp {
    fn step(&mut self, cx: &mut Cx) -> Result<Progress, MmError> {
        let (start, end) = (self.va, self.va + PAGE_SIZE);
        let Some(&name) = CHECKPOINTS_MADV_FREE.get(self.step) else {
            return Ok(Progress::Done);
        };
        match name {
            "start" => {
                self.check(cx)?;
                cx.events.push(HostEvent::MadvFree {
                    va: self.va,
                    returned: false,
                });
            }
            "lock" => spin!(path::lock(cx, self.pte_pa >> 12)),
            "clean" => {
                let e = cx.m.mem.read(self.pte_pa)?.value;
                let f = cx.pt();
                let pfn = f.pfn(e);
                // Only a page this process maps alone becomes lazily freeable.
                if f.present(e) && cx.m.mem.refcount(pfn) == 1 {
                    if f.young(e) || f.dirty(e) {
                        path::set_entry(cx, self.pte_pa, self.va, 0)?;
                        path::set_entry(cx, self.pte_pa, self.va, f.mkold(f.mkclean(e)))?;
                        self.gathered = true;
                    }
                    cx.k.lazyfree.insert(pfn);
                }
            }
            "unlock" => path::unlock(cx, self.pte_pa >> 12),
            "end" => {
                let prim = Prim::End {
                    seed_only_end: false,
                };
                spin!(self.notify.run(cx, prim, start, end)?);
            }
            "finish" => {
                if self.gathered {
                    spin!(self.notify.run(cx, Prim::TlbFlushMmu, start, end)?);
                }
                // The last step: madvise returns.
                cx.events.push(HostEvent::MadvFree {
                    va: self.va,
                    returned: true,
                });
            }
            _ => unreachable!("every checkpoint is handled"),
        }
        self.step += 1;
        Ok(Progress::Reached(name))
    }

    fn finished(&self) -> bool {
        self.step >= CHECKPOINTS_MADV_FREE.len()
    }
}
