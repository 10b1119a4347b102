//! Sv39 and Sv48 page tables (RISC-V privileged architecture, "Sv39" and
//! "Sv48"), in [`PhysMem`]: what a RISC-V IOMMU walks for a process whose
//! `iosatp` names them. 4 KiB pages of 512 eight-byte entries; a VA's
//! virtual page number is 9 bits a level (3 levels for Sv39, 4 for Sv48)
//! and bits above the top one repeat it. An entry: V R W X U G A D in bits
//! 7:0, the page number in 53:10. R = W = X = 0 points at the next table;
//! any of R, X makes a leaf (a superpage above level 0, whose page number
//! must be aligned to its size).
//!
//! The tables themselves are an [`AddressSpace`] in format
//! [`PtFormat::Sv39`] or [`PtFormat::Sv48`] (`crate::mem`, where the mm
//! paths build them): this is the specification's view of them, levels
//! numbered from 0 at the leaf as the specification does, and a walk's
//! faults named as a RISC-V walker raises them. One walk serves both.

use crate::mem::{AddressSpace, MemError, Pfn, PhysMem, PtFormat, WalkError};

pub mod pte {
    pub use crate::mem::sv_pte::{A, D, G, R, U, V, W, X};
    /// A user data page, read-write, accessed and dirty set (a walker that
    /// does not update A/D faults on a clear one).
    pub const USER_RW: u64 = V | R | W | U | A | D;
    /// Read-only (a COW page, a write-protected one): D as it was.
    pub const USER_RO: u64 = V | R | U | A;
}

/// The page-table format of an address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sv {
    Sv39,
    Sv48,
}

impl From<Sv> for PtFormat {
    fn from(sv: Sv) -> PtFormat {
        match sv {
            Sv::Sv39 => PtFormat::Sv39,
            Sv::Sv48 => PtFormat::Sv48,
        }
    }
}

impl Sv {
    pub fn levels(self) -> u8 {
        PtFormat::from(self).levels()
    }

    /// Bits 63 down to the top VA bit all equal it.
    pub fn canonical(self, va: u64) -> bool {
        PtFormat::from(self).canonical(va)
    }

    /// The tables rooted at `root`, as an address space of this format.
    fn space(self, root: Pfn) -> AddressSpace {
        AddressSpace {
            pgd: root,
            pasid: 0,
            format: self.into(),
        }
    }
}

/// A leaf's size: level 0 is 4 KiB, each level above 512 times more.
pub fn level_bytes(level: u8) -> u64 {
    1 << (12 + 9 * u32::from(level))
}

/// An entry pointing at `ppn` with `flags` (V added).
pub fn make(ppn: u64, flags: u64) -> u64 {
    PtFormat::Sv39.entry(ppn, flags | pte::V)
}

pub fn ppn(entry: u64) -> u64 {
    PtFormat::Sv39.pfn(entry)
}

/// What a walk found for a VA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SvLeaf {
    /// The 4 KiB frame holding the VA (inside a superpage: base + offset).
    pub pfn: Pfn,
    /// 0 for 4 KiB, 1 for 2 MiB, 2 for 1 GiB, 3 for 512 GiB.
    pub level: u8,
    pub entry_pa: u64,
    pub entry: u64,
}

impl SvLeaf {
    pub fn writable(&self) -> bool {
        self.entry & pte::W != 0
    }
}

/// Why a walk stopped: the page fault a RISC-V walker raises, or memory.
#[derive(Debug, PartialEq, Eq)]
pub enum SvFault {
    NonCanonical {
        va: u64,
    },
    /// V clear, or W set without R (reserved), at `level`.
    Invalid {
        va: u64,
        level: u8,
        entry_pa: u64,
    },
    /// A superpage whose page number is not aligned to its size.
    Misaligned {
        va: u64,
        level: u8,
        entry_pa: u64,
    },
    /// A pointer to a next table at level 0.
    NoLeaf {
        va: u64,
        entry_pa: u64,
    },
    /// [`map`] below a superpage (a leaf at `level`): its frame is data,
    /// not a table.
    Superpage {
        va: u64,
        level: u8,
        entry_pa: u64,
    },
    Mem(MemError),
}

impl From<MemError> for SvFault {
    fn from(e: MemError) -> Self {
        SvFault::Mem(e)
    }
}

impl From<WalkError> for SvFault {
    /// `crate::mem` counts levels from 1 at the PTE, the specification from 0.
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::NonCanonical { va, .. } => SvFault::NonCanonical { va },
            WalkError::NotPresent {
                va,
                level,
                entry_pa,
            } => SvFault::Invalid {
                va,
                level: level - 1,
                entry_pa,
            },
            WalkError::Misaligned {
                va,
                level,
                entry_pa,
            } => SvFault::Misaligned {
                va,
                level: level - 1,
                entry_pa,
            },
            WalkError::NoLeaf { va, entry_pa } => SvFault::NoLeaf { va, entry_pa },
            WalkError::HugeLeaf {
                va,
                level,
                entry_pa,
            } => SvFault::Superpage {
                va,
                level: level - 1,
                entry_pa,
            },
            WalkError::Mem(e) => SvFault::Mem(e),
        }
    }
}

/// Map `va` to the frame `pfn` as a leaf of `level` with `flags` (V added)
/// in the table rooted at `root`, allocating the tables on the way (in
/// memory a frame at a time). Returns the physical address of the leaf entry.
pub fn map(
    mem: &mut PhysMem,
    root: Pfn,
    sv: Sv,
    va: u64,
    pfn: Pfn,
    level: u8,
    flags: u64,
) -> Result<u64, SvFault> {
    Ok(sv
        .space(root)
        .map_entry(mem, va, level + 1, make(pfn, flags))?)
}

/// The walk of `va` through the table rooted at `root`, as the
/// specification's translation process does it (A/D and permissions are
/// the caller's to judge from the leaf's bits).
pub fn walk(mem: &PhysMem, root: Pfn, sv: Sv, va: u64) -> Result<SvLeaf, SvFault> {
    let t = sv.space(root).translate(mem, va, false)?;
    Ok(SvLeaf {
        pfn: t.pfn,
        level: t.level - 1,
        entry_pa: t.entry_pa,
        entry: t.entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::PAGE_SHIFT;

    fn index(va: u64, level: u8) -> u64 {
        (va >> (PAGE_SHIFT + 9 * u32::from(level))) & 0x1ff
    }

    #[test]
    fn canonical_addresses() {
        assert!(Sv::Sv39.canonical(0x3f_ffff_ffff));
        assert!(!Sv::Sv39.canonical(0x40_0000_0000));
        assert!(Sv::Sv39.canonical(0xffff_ffc0_0000_0000));
        assert!(Sv::Sv48.canonical(0x7fff_ffff_f000));
        assert!(!Sv::Sv48.canonical(0x8000_0000_0000));
        assert!(Sv::Sv48.canonical(0xffff_8000_0000_0000));
    }

    #[test]
    fn map_and_walk_pages_and_superpages_in_both_formats() {
        for sv in [Sv::Sv39, Sv::Sv48] {
            let mut m = PhysMem::new(4096);
            let root = m.alloc().unwrap();
            // 4 KiB
            let f = m.alloc().unwrap();
            let va = 0x12_3456_7000;
            let pa = map(&mut m, root, sv, va, f, 0, pte::USER_RW).unwrap();
            let leaf = walk(&m, root, sv, va + 0x10).unwrap();
            assert_eq!((leaf.pfn, leaf.level, leaf.entry_pa), (f, 0, pa), "{sv:?}");
            assert!(leaf.writable());
            // the table entries above are pointers: V only
            let top = m
                .read((root << 12) + index(va, sv.levels() - 1) * 8)
                .unwrap();
            assert_eq!(top.value & 0x3ff, pte::V);
            // 2 MiB: a leaf at level 1, its frame number aligned to 512
            let big = m.alloc_contiguous(512).unwrap();
            let va2 = 0x20_0000_0000;
            map(&mut m, root, sv, va2, big, 1, pte::USER_RO).unwrap();
            let leaf = walk(&m, root, sv, va2 + 0x5_3000).unwrap();
            assert_eq!((leaf.pfn, leaf.level), (big + 0x53, 1));
            assert!(!leaf.writable());
            // 1 GiB: frames past memory are fine to point at, not to touch
            let va3 = 0x10_0000_0000;
            map(&mut m, root, sv, va3, 0x40000, 2, pte::USER_RW).unwrap();
            let leaf = walk(&m, root, sv, va3 + 0x1234_5000).unwrap();
            assert_eq!((leaf.pfn, leaf.level), (0x40000 + 0x12345, 2));
        }
    }

    #[test]
    fn invalid_misaligned_and_unmapped_entries_fault() {
        let sv = Sv::Sv39;
        let mut m = PhysMem::new(64);
        let root = m.alloc().unwrap();
        let va = 0x4000_0000;
        assert!(matches!(
            walk(&m, root, sv, va),
            Err(SvFault::Invalid { level: 2, .. })
        ));
        let pa = map(&mut m, root, sv, va, 5, 0, pte::USER_RW).unwrap();
        // W without R is reserved
        m.write(pa, make(5, pte::W | pte::U), 0).unwrap();
        assert!(matches!(
            walk(&m, root, sv, va),
            Err(SvFault::Invalid { level: 0, .. })
        ));
        // a pointer where a leaf must be
        m.write(pa, make(6, 0), 0).unwrap();
        assert!(matches!(
            walk(&m, root, sv, va),
            Err(SvFault::NoLeaf { .. })
        ));
        // a 2 MiB leaf at an odd frame
        map(&mut m, root, sv, 0x8000_0000, 0x201, 1, pte::USER_RW).unwrap();
        assert!(matches!(
            walk(&m, root, sv, 0x8000_0000),
            Err(SvFault::Misaligned { level: 1, .. })
        ));
        assert_eq!(
            walk(&m, root, sv, 1 << 40),
            Err(SvFault::NonCanonical { va: 1 << 40 })
        );
        // mapping under a superpage is refused: its frame is data
        assert!(map(&mut m, root, sv, 0x8000_1000, 7, 0, pte::USER_RW).is_err());
    }
}
