//! x86-64 4-level page tables (48-bit VA) kept in [`PhysMem`].
//!
//! Index bits: PML4 47:39, PDPT 38:30, PD 29:21, PT 20:12. A PD entry with
//! PS set is a 2 MiB leaf. The IOMMU's walker (rtl/ptw.sv) reads the same
//! entries through its memory port.

use super::phys::{MemError, Pfn, PhysMem, PAGE_SHIFT};
use thiserror::Error;

/// Page-table entry bits (Intel SDM vol. 3, 4.5).
pub mod pte {
    pub const P: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const US: u64 = 1 << 2;
    pub const A: u64 = 1 << 5;
    pub const D: u64 = 1 << 6;
    pub const PS: u64 = 1 << 7;
    pub const NX: u64 = 1 << 63;
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
    /// Flags of a non-leaf entry: present, writable, user.
    pub const TABLE: u64 = P | RW | US;

    pub fn make(pfn: u64, flags: u64) -> u64 {
        ((pfn << 12) & ADDR) | flags
    }
    pub fn pfn(entry: u64) -> u64 {
        (entry & ADDR) >> 12
    }
    pub fn present(entry: u64) -> bool {
        entry & P != 0
    }
    pub fn writable(entry: u64) -> bool {
        entry & (P | RW) == P | RW
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Small,
    Huge2M,
}

impl PageSize {
    pub fn bytes(self) -> u64 {
        match self {
            PageSize::Small => 1 << 12,
            PageSize::Huge2M => 1 << 21,
        }
    }
}

/// The translation the CPU page table gives for one VA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The 4 KiB frame that holds this VA (inside a 2 MiB page: base + offset).
    pub pfn: Pfn,
    pub size: PageSize,
    pub writable: bool,
    /// Where the leaf entry lives, and its value.
    pub entry_pa: u64,
    pub entry: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WalkError {
    #[error("[pt] {va:#x} is not mapped (level {level} entry at {entry_pa:#x} is not present)")]
    NotPresent { va: u64, level: u8, entry_pa: u64 },
    #[error("[pt] {va:#x} is not a canonical 48-bit address")]
    NonCanonical { va: u64 },
    /// The walk down to a table met a present leaf (PS set) at `level`: a
    /// 2 MiB page (level 2) or a 1 GiB page (level 3) maps `va`, and the
    /// frame it points at holds data, not entries.
    #[error("[pt] {va:#x} is mapped by a {} page (level {level} entry at {entry_pa:#x} is a leaf), not through a page table", leaf_size(*level))]
    HugeLeaf { va: u64, level: u8, entry_pa: u64 },
    #[error(transparent)]
    Mem(#[from] MemError),
}

/// One process address space: its PGD and the PASID it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub pgd: Pfn,
    pub pasid: u32,
}

fn leaf_size(level: u8) -> &'static str {
    match level {
        2 => "2 MiB",
        3 => "1 GiB",
        _ => "huge",
    }
}

fn index(va: u64, level: u8) -> u64 {
    // level 4 = PML4 ... level 1 = PT
    (va >> (12 + 9 * (level as u32 - 1))) & 0x1ff
}

impl AddressSpace {
    pub fn new(mem: &mut PhysMem, pasid: u32) -> Result<Self, MemError> {
        Ok(AddressSpace {
            pgd: mem.alloc()?,
            pasid,
        })
    }

    fn check(va: u64) -> Result<(), WalkError> {
        let top = va >> 47;
        if top != 0 && top != (1 << 17) - 1 {
            return Err(WalkError::NonCanonical { va });
        }
        Ok(())
    }

    /// Physical address of the entry for `va` at `level` (1 = PTE, 2 = PMD),
    /// allocating missing tables on the way when `alloc` is set. A present
    /// leaf above `level` (a PS entry in the PD or the PDPT) is an error,
    /// [`WalkError::HugeLeaf`]: the frame it maps is data, never a table.
    fn entry_pa(
        &self,
        mem: &mut PhysMem,
        va: u64,
        level: u8,
        alloc: bool,
    ) -> Result<u64, WalkError> {
        Self::check(va)?;
        let mut table = self.pgd;
        for l in (level + 1..=4).rev() {
            let pa = (table << PAGE_SHIFT) + index(va, l) * 8;
            let e = mem.read(pa)?.value;
            if pte::present(e) && l <= 3 && e & pte::PS != 0 {
                return Err(WalkError::HugeLeaf {
                    va,
                    level: l,
                    entry_pa: pa,
                });
            }
            if pte::present(e) {
                table = pte::pfn(e);
            } else if alloc {
                let t = mem.alloc()?;
                mem.write(pa, pte::make(t, pte::TABLE), 0)?;
                table = t;
            } else {
                return Err(WalkError::NotPresent {
                    va,
                    level: l,
                    entry_pa: pa,
                });
            }
        }
        Ok((table << PAGE_SHIFT) + index(va, level) * 8)
    }

    /// Map `va` to `pfn` with leaf `flags` (P is added; PS too for 2 MiB).
    /// Returns the physical address of the leaf entry.
    pub fn map(
        &self,
        mem: &mut PhysMem,
        va: u64,
        pfn: Pfn,
        size: PageSize,
        flags: u64,
    ) -> Result<u64, WalkError> {
        let (level, extra) = match size {
            PageSize::Small => (1, 0),
            PageSize::Huge2M => (2, pte::PS),
        };
        let pa = self.entry_pa(mem, va, level, true)?;
        mem.write(pa, pte::make(pfn, flags | pte::P | extra), 0)?;
        Ok(pa)
    }

    /// The physical address of the 4 KiB PTE for `va` (its page-table page
    /// must exist). The PFN of that page identifies its split PTL. A `va`
    /// mapped by a huge PMD has no PTE: [`WalkError::HugeLeaf`] (level 2).
    pub fn pte_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 1, false)
    }

    /// The physical address of the PMD entry for `va` (a table pointer, a
    /// 2 MiB leaf or empty: the caller reads it).
    pub fn pmd_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 2, false)
    }

    /// The CPU's own walk: what a load or store to `va` uses now. The CPU
    /// TLB is modelled as flushed synchronously (`ptep_clear_flush`), so
    /// this walk is the CPU's view at every instant.
    pub fn walk(&self, mem: &PhysMem, va: u64) -> Result<Leaf, WalkError> {
        Self::check(va)?;
        let mut table = self.pgd;
        let mut writable = true;
        for level in (1..=4u8).rev() {
            let pa = (table << PAGE_SHIFT) + index(va, level) * 8;
            let e = mem.read(pa)?.value;
            if !pte::present(e) || e & pte::US == 0 {
                return Err(WalkError::NotPresent {
                    va,
                    level,
                    entry_pa: pa,
                });
            }
            writable &= e & pte::RW != 0;
            if level == 3 && e & pte::PS != 0 {
                // A 1 GiB page: the model never maps one.
                return Err(WalkError::HugeLeaf {
                    va,
                    level,
                    entry_pa: pa,
                });
            }
            if level == 1 || (level == 2 && e & pte::PS != 0) {
                let (size, pfn) = if level == 1 {
                    (PageSize::Small, pte::pfn(e))
                } else {
                    (
                        PageSize::Huge2M,
                        (pte::pfn(e) & !0x1ff) + ((va >> 12) & 0x1ff),
                    )
                };
                return Ok(Leaf {
                    pfn,
                    size,
                    writable,
                    entry_pa: pa,
                    entry: e,
                });
            }
            table = pte::pfn(e);
        }
        unreachable!("level 1 always returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_RW: u64 = pte::RW | pte::US;

    #[test]
    fn map_and_walk_4k() {
        let mut m = PhysMem::new(64);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let f = m.alloc().unwrap();
        let va = 0x7f00_0000_1000;
        let pa = a.map(&mut m, va, f, PageSize::Small, USER_RW).unwrap();
        let leaf = a.walk(&m, va + 0x123).unwrap();
        assert_eq!(leaf.pfn, f);
        assert!(leaf.writable);
        assert_eq!(leaf.entry_pa, pa);
        assert_eq!(a.pte_pa(&mut m, va).unwrap(), pa);
        // read-only mapping
        m.write(pa, pte::make(f, pte::US | pte::P), 0).unwrap();
        assert!(!a.walk(&m, va).unwrap().writable);
    }

    #[test]
    fn map_and_walk_2m() {
        let mut m = PhysMem::new(2048);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let base = m.alloc_contiguous(512).unwrap();
        let va = 0x7f00_0020_0000;
        a.map(&mut m, va, base, PageSize::Huge2M, USER_RW).unwrap();
        let leaf = a.walk(&m, va + 5 * 4096 + 8).unwrap();
        assert_eq!(leaf.size, PageSize::Huge2M);
        assert_eq!(leaf.pfn, base + 5);
    }

    #[test]
    fn unmapped_and_noncanonical() {
        let mut m = PhysMem::new(64);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        assert!(matches!(
            a.walk(&m, 0x1000),
            Err(WalkError::NotPresent { level: 4, .. })
        ));
        assert_eq!(
            a.walk(&m, 0x8000_0000_0000),
            Err(WalkError::NonCanonical {
                va: 0x8000_0000_0000
            })
        );
    }

    /// A THP or hugetlb page: PMD leaf at `va`'s 2 MiB region whose first
    /// data frame holds words that look like present PTEs.
    fn huge_page_with_pte_like_data(m: &mut PhysMem, a: &AddressSpace, va: u64) -> (u64, Pfn) {
        let base = m.alloc_contiguous(512).unwrap();
        let pmd = a
            .map(m, va & !0x1f_ffff, base, PageSize::Huge2M, USER_RW)
            .unwrap();
        // Data that a walk treating the frame as a table would take for
        // present PTEs (0x3003: frame 3, P|RW).
        for i in 0..512u64 {
            m.write((base << PAGE_SHIFT) + 8 * i, 0x3003, 1).unwrap();
        }
        (pmd, base)
    }

    #[test]
    fn a_huge_leaf_is_never_walked_as_a_table() {
        let mut m = PhysMem::new(2048);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let va = 0x7f00_0020_3000;
        let (pmd, base) = huge_page_with_pte_like_data(&mut m, &a, va);
        assert_eq!(
            a.pte_pa(&mut m, va),
            Err(WalkError::HugeLeaf {
                va,
                level: 2,
                entry_pa: pmd
            })
        );
        // The PMD itself is reachable: paths that handle huge pages start there.
        assert_eq!(a.pmd_pa(&mut m, va).unwrap(), pmd);
        // Mapping a 4 KiB page inside the huge page must not allocate a table
        // through the leaf or write into the data frame.
        let f = m.alloc().unwrap();
        let e = a.map(&mut m, va, f, PageSize::Small, USER_RW).unwrap_err();
        assert!(matches!(e, WalkError::HugeLeaf { level: 2, .. }), "{e}");
        assert_eq!(m.read(pmd).unwrap().value & pte::PS, pte::PS);
        for i in 0..512u64 {
            assert_eq!(m.read((base << PAGE_SHIFT) + 8 * i).unwrap().value, 0x3003);
        }
        let msg = e.to_string();
        assert!(
            msg.contains("2 MiB page") && msg.contains("not through a page table"),
            "{msg}"
        );
    }

    #[test]
    fn a_1g_leaf_is_never_walked_as_a_table() {
        let mut m = PhysMem::new(64);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let va = 0x7f00_4000_5000;
        // A PDPT entry with PS set (the model never maps one; it must still
        // not be followed).
        let f = m.alloc().unwrap();
        let pmd = a.map(&mut m, va, f, PageSize::Huge2M, USER_RW).unwrap();
        let pdpt_entry = {
            let pml4 = (a.pgd << PAGE_SHIFT) + index(va, 4) * 8;
            let pdpt = pte::pfn(m.read(pml4).unwrap().value);
            (pdpt << PAGE_SHIFT) + index(va, 3) * 8
        };
        assert_ne!(pmd, pdpt_entry);
        m.write(pdpt_entry, pte::make(f, USER_RW | pte::P | pte::PS), 0)
            .unwrap();
        for r in [a.pmd_pa(&mut m, va), a.pte_pa(&mut m, va)] {
            assert_eq!(
                r,
                Err(WalkError::HugeLeaf {
                    va,
                    level: 3,
                    entry_pa: pdpt_entry
                })
            );
        }
        assert!(matches!(
            a.walk(&m, va),
            Err(WalkError::HugeLeaf { level: 3, .. })
        ));
    }

    #[test]
    fn the_lowest_page_maps_like_any_other() {
        // VA 0 (below Linux's mmap_min_addr; the parser refuses it) still
        // gets its own tables and entries: index 0 at every level is an
        // ordinary slot, and nothing treats a zero VA or entry as "none".
        let mut m = PhysMem::new(2048);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let f = m.alloc().unwrap();
        let pa = a.map(&mut m, 0, f, PageSize::Small, USER_RW).unwrap();
        assert_eq!(a.pte_pa(&mut m, 0).unwrap(), pa);
        assert_eq!(a.walk(&m, 0x8).unwrap().pfn, f);
        assert!(matches!(
            a.walk(&m, 0x1000),
            Err(WalkError::NotPresent { level: 1, .. })
        ));
        let base = m.alloc_contiguous(512).unwrap();
        a.map(&mut m, 0x20_0000, base, PageSize::Huge2M, USER_RW)
            .unwrap();
        assert_eq!(a.walk(&m, 0x20_1008).unwrap().pfn, base + 1);
        assert!(matches!(
            a.pte_pa(&mut m, 0x20_0000),
            Err(WalkError::HugeLeaf { level: 2, .. })
        ));
        // The small page at 0 is untouched by its neighbour region's leaf.
        assert_eq!(a.walk(&m, 0).unwrap().pfn, f);
    }

    #[test]
    fn supervisor_page_is_not_user_visible() {
        let mut m = PhysMem::new(64);
        let a = AddressSpace::new(&mut m, 1).unwrap();
        let f = m.alloc().unwrap();
        a.map(&mut m, 0x4000, f, PageSize::Small, pte::RW).unwrap();
        assert!(matches!(
            a.walk(&m, 0x4000),
            Err(WalkError::NotPresent { level: 1, .. })
        ));
    }
}
