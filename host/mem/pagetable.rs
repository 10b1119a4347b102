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
    #[error(transparent)]
    Mem(#[from] MemError),
}

/// One process address space: its PGD and the PASID it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub pgd: Pfn,
    pub pasid: u32,
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
    /// allocating missing tables on the way when `alloc` is set.
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
    /// must exist). The PFN of that page identifies its split PTL.
    pub fn pte_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 1, false)
    }

    /// The physical address of the PMD entry for `va`.
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
