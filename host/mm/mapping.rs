//! What maps a page when a kernel path starts, seen the way the path itself
//! would look (`pmd_trans_huge`, `pte_present`, `is_swap_pte`, ...), so that
//! each path can refuse, naming what it found, a page its Linux counterpart
//! would treat differently from what the model implements. A page's kind can
//! change during a run (a COW write turns a THP into 512 PTEs, `collapse`
//! turns small pages into a THP, `reclaim` leaves a swap entry, `munmap` none),
//! so the paths look at the page table, not at the scenario's `pages:`.

use super::kernel::{Kernel, MmError};
use crate::mem::{PhysMem, WalkError};

/// Non-present PTE markers (P clear): a swap entry (reclaim) and a migration
/// entry (migration, until `remove_migration_ptes`). The frame number stays
/// at bit 12. The model's own encoding, the same in every page-table format:
/// bit 0 (x86 P, RISC-V V) is clear, so no walker reads the rest.
pub(crate) const SWAP_ENTRY: u64 = 0x200;
pub(crate) const MIGRATION_ENTRY: u64 = 0x400;
/// A NUMA hinting entry (PROT_NONE, `change_prot_numa`): the present entry
/// with P (V) clear and this bit set, x86's `_PAGE_PROTNONE` (the global
/// bit, which no user leaf sets; on RISC-V a software bit, as Linux's
/// `_PAGE_PROT_NONE`). The kernel counts it present (`pte_present`); no
/// walker does.
pub(crate) const PROTNONE: u64 = 0x100;

/// The NUMA hinting entry of the present entry `e` ([`PROTNONE`]).
pub fn protnone(e: u64) -> u64 {
    (e & !1) | PROTNONE
}

/// The present entry a NUMA hinting entry came from, as it was.
pub fn present_again(e: u64) -> u64 {
    (e & !PROTNONE) | 1
}

/// `e` is a NUMA hinting entry (`pte_protnone`).
pub fn is_protnone(e: u64) -> bool {
    e & 1 == 0 && e & PROTNONE != 0
}

/// The present entry a NUMA hinting entry came from, made young
/// (`do_numa_page`'s `pte_modify(vma->vm_page_prot)`, `pte_mkyoung`).
pub fn unprotnone(pt: crate::mem::PtFormat, e: u64) -> u64 {
    pt.mkyoung(present_again(e))
}

/// Which 2 MiB page a PMD leaf maps. A THP always has a page table deposited
/// with its PMD (`pgtable_trans_huge_deposit`); a hugetlb page never has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HugeKind {
    Thp,
    HugeZero,
    Hugetlb,
}

/// The translation of one VA in the process's page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// A present 4 KiB PTE.
    Pte { pte_pa: u64, entry: u64 },
    /// A present 2 MiB leaf in the PMD (`pmd_pa`), or a 1 GiB hugetlb
    /// page's in the PUD (`pmd_pa` is then the PUD entry's address).
    Huge {
        pmd_pa: u64,
        entry: u64,
        kind: HugeKind,
    },
    /// Nothing present: `entry` is what the entry at `entry_pa` holds (0:
    /// none; a swap or migration entry), at `level` (1: the PTE; 2 and up:
    /// no page table reaches the VA).
    Absent {
        entry_pa: u64,
        entry: u64,
        level: u8,
    },
}

impl Mapping {
    /// What maps the page, for an error message ("munmap of {this}").
    pub fn describe(&self, k: &Kernel) -> &'static str {
        match *self {
            Mapping::Pte { entry, .. }
                if k.zero_pfn != 0 && k.mm().format.pfn(entry) == k.zero_pfn =>
            {
                "the zero page"
            }
            Mapping::Pte { .. } => "a small page",
            Mapping::Huge { kind, .. } => match kind {
                HugeKind::Thp => "a transparent huge page",
                HugeKind::HugeZero => "the huge zero page",
                HugeKind::Hugetlb => "a hugetlb page",
            },
            Mapping::Absent {
                entry, level: 1, ..
            } if is_protnone(entry) => "a NUMA-hinted page (PROT_NONE)",
            Mapping::Absent {
                entry, level: 1, ..
            } if entry & MIGRATION_ENTRY != 0 => "a page under migration",
            Mapping::Absent {
                entry, level: 1, ..
            } if entry & SWAP_ENTRY != 0 => "a swapped-out page",
            Mapping::Absent { level: 1, .. } => "an unmapped page",
            // The model maps every named page at the start and frees no
            // page table: a missing PMD is one a path has cleared for now.
            Mapping::Absent { .. } => {
                "a page whose PMD is cleared (a collapse, split or THP COW in progress)"
            }
        }
    }

    /// A present 4 KiB PTE of an ordinary page (not the zero page): its
    /// entry's address and the frame.
    pub fn small_page(&self, k: &Kernel) -> Option<(u64, u64)> {
        match *self {
            Mapping::Pte { pte_pa, entry } => {
                let pfn = k.mm().format.pfn(entry);
                (pfn != k.zero_pfn || k.zero_pfn == 0).then_some((pte_pa, pfn))
            }
            _ => None,
        }
    }
}

/// What maps `va` now.
pub fn lookup(k: &Kernel, mem: &mut PhysMem, va: u64) -> Result<Mapping, MmError> {
    let pmd_pa = match k.mm().pmd_pa(mem, va) {
        Ok(pa) => pa,
        Err(WalkError::NotPresent {
            level, entry_pa, ..
        }) => {
            return Ok(Mapping::Absent {
                entry_pa,
                entry: 0,
                level,
            })
        }
        // A 1 GiB leaf: only a hugetlb page is one.
        Err(WalkError::HugeLeaf {
            level: 3, entry_pa, ..
        }) => {
            return Ok(Mapping::Huge {
                pmd_pa: entry_pa,
                entry: mem.read(entry_pa)?.value,
                kind: HugeKind::Hugetlb,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let f = k.mm().format;
    let pmd = mem.read(pmd_pa)?.value;
    if !f.present(pmd) {
        return Ok(Mapping::Absent {
            entry_pa: pmd_pa,
            entry: pmd,
            level: 2,
        });
    }
    if f.is_huge(pmd) {
        let head = f.pfn(pmd) & !0x1ff;
        let kind = if k.huge_zero_pfn != 0 && head == k.huge_zero_pfn {
            HugeKind::HugeZero
        } else if k.deposited.contains_key(&pmd_pa) {
            HugeKind::Thp
        } else {
            HugeKind::Hugetlb
        };
        return Ok(Mapping::Huge {
            pmd_pa,
            entry: pmd,
            kind,
        });
    }
    let pte_pa = k.mm().pte_pa(mem, va)?;
    let entry = mem.read(pte_pa)?.value;
    Ok(if f.present(entry) {
        Mapping::Pte { pte_pa, entry }
    } else {
        Mapping::Absent {
            entry_pa: pte_pa,
            entry,
            level: 1,
        }
    })
}

/// What a path knows of the VMAs around a page (Linux hands every path its
/// `vma`): where the scenario's pages are, and which of them are page-cache
/// pages of a shared file mapping (`file: true`); every other page is
/// private anonymous memory. Every named page is mapped when the run starts,
/// so a named page without a PTE was unmapped since (a munmap leaves a hole
/// in its VMA) or discarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vmas {
    /// (page address, a file page)
    pages: Vec<(u64, bool)>,
    /// Ranges `[start, end)` munmap took out of their VMA, and whether the
    /// whole address space went (exit_mmap).
    holes: Vec<(u64, u64)>,
    gone: bool,
    /// Pages an mprotect made read-only (the VMA lost VM_WRITE).
    readonly: Vec<u64>,
    /// The hugetlb VMAs: (start, huge page size), one huge page each.
    hugetlb: Vec<(u64, u64)>,
}

impl Vmas {
    /// The scenario's pages: (any address inside the page, a file page).
    pub fn new(pages: impl IntoIterator<Item = (u64, bool)>) -> Self {
        Vmas {
            pages: pages.into_iter().map(|(va, f)| (va & !0xfff, f)).collect(),
            ..Vmas::default()
        }
    }

    /// munmap took `[start, start + pages * 4 KiB)` out of its VMA (Linux
    /// detaches the VMAs before it zaps their pages).
    pub fn unmap(&mut self, start: u64, pages: u64) {
        let start = start & !0xfff;
        self.holes
            .push((start, start.saturating_add(pages.saturating_mul(4096))));
    }

    /// mremap moved `pages` pages from `from`'s page to `to`'s (move_vma):
    /// the old range is a hole, the new one is covered (the holes inside
    /// it go), and `to` is a file page when `from` was, a hugetlb VMA when
    /// `from`'s was.
    pub fn move_range(&mut self, from: u64, to: u64, pages: u64) {
        let (from, to) = (from & !0xfff, to & !0xfff);
        for h in self.hugetlb.iter_mut().filter(|h| h.0 == from & !(h.1 - 1)) {
            h.0 = to & !(h.1 - 1);
        }
        let file = self.is_file(from);
        self.unmap(from, pages);
        let end = to.saturating_add(pages.saturating_mul(4096));
        self.holes.retain(|&(s, e)| s < to || e > end);
        for p in self.pages.iter_mut().filter(|p| p.0 == to) {
            p.1 = file;
        }
    }

    /// The huge page holding `va` is a hugetlbfs VMA of `size`-byte pages
    /// (2 MiB or 1 GiB).
    pub fn hugetlb(&mut self, va: u64, size: u64) {
        self.hugetlb.push((va & !(size - 1), size));
    }

    /// `huge_page_size(hstate_vma(vma))`: the page size of the hugetlb VMA
    /// holding `va`, 0 when `va` is in none.
    pub fn huge_page_size(&self, va: u64) -> u64 {
        (self.hugetlb.iter())
            .find(|&&(s, size)| va & !(size - 1) == s)
            .map_or(0, |&(_, size)| size)
    }

    /// The size of a hugetlb VMA's huge entry at `va`: a PUD's 1 GiB in a
    /// VMA of 1 GiB pages, else a PMD's 2 MiB (`huge_pte_offset`'s and
    /// `huge_pte_alloc`'s level).
    pub fn huge_entry_size(&self, va: u64) -> crate::mem::PageSize {
        use crate::mem::PageSize;
        if self.huge_page_size(va) == PageSize::Huge1G.bytes() {
            PageSize::Huge1G
        } else {
            PageSize::Huge2M
        }
    }

    /// exit_mmap: no VMA is left.
    pub fn exit(&mut self) {
        self.gone = true;
    }

    /// mprotect(PROT_READ) of `va`'s page: its VMA lost VM_WRITE.
    pub fn protect(&mut self, va: u64) {
        self.readonly.push(va & !0xfff);
    }

    /// A VMA covers `va` (a named page's region, not unmapped since).
    pub fn mapped(&self, va: u64) -> bool {
        !self.gone
            && self.in_region(va).next().is_some()
            && !self.holes.iter().any(|&(s, e)| (s..e).contains(&va))
    }

    /// `va`'s VMA allows writes (VM_WRITE).
    pub fn writable(&self, va: u64) -> bool {
        !self.readonly.contains(&(va & !0xfff))
    }

    /// The named pages' addresses.
    pub fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|p| p.0)
    }

    /// `va`'s page lies in a shared file mapping.
    pub fn is_file(&self, va: u64) -> bool {
        self.pages.contains(&(va & !0xfff, true))
    }

    /// The start of the first 2 MiB region at or after `va`'s that holds a
    /// named page.
    pub fn next_region(&self, va: u64) -> Option<u64> {
        (self.pages.iter())
            .map(|p| p.0 & !0x1f_ffff)
            .filter(|r| *r >= va & !0x1f_ffff)
            .min()
    }

    /// The named pages inside the 2 MiB region holding `va`.
    pub fn in_region(&self, va: u64) -> impl Iterator<Item = u64> + '_ {
        (self.pages.iter())
            .map(|p| p.0)
            .filter(move |p| p >> 21 == va >> 21)
    }
}

/// `what` (an action on the page it names) is not modelled; `instead` says
/// what to write.
pub fn refuse(what: String, va: u64, instead: &'static str) -> MmError {
    MmError::Unsupported { what, va, instead }
}
