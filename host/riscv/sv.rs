//! Sv39 and Sv48 page tables (RISC-V privileged architecture, "Sv39" and
//! "Sv48"), in [`PhysMem`]: what a RISC-V IOMMU walks for a process whose
//! `iosatp` names them. 4 KiB pages of 512 eight-byte entries; a VA's
//! virtual page number is 9 bits a level (3 levels for Sv39, 4 for Sv48)
//! and bits above the top one repeat it. An entry: V R W X U G A D in bits
//! 7:0, the page number in 53:10. R = W = X = 0 points at the next table;
//! any of R, X makes a leaf (a superpage above level 0, whose page number
//! must be aligned to its size).

use super::PPN;
use crate::mem::{MemError, Pfn, PhysMem, PAGE_SHIFT};

pub mod pte {
    pub const V: u64 = 1 << 0;
    pub const R: u64 = 1 << 1;
    pub const W: u64 = 1 << 2;
    pub const X: u64 = 1 << 3;
    pub const U: u64 = 1 << 4;
    pub const G: u64 = 1 << 5;
    pub const A: u64 = 1 << 6;
    pub const D: u64 = 1 << 7;
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

impl Sv {
    pub fn levels(self) -> u8 {
        match self {
            Sv::Sv39 => 3,
            Sv::Sv48 => 4,
        }
    }

    fn va_bits(self) -> u32 {
        12 + 9 * u32::from(self.levels())
    }

    /// Bits 63 down to the top VA bit all equal it.
    pub fn canonical(self, va: u64) -> bool {
        let top = va >> (self.va_bits() - 1);
        top == 0 || top == u64::MAX >> (self.va_bits() - 1)
    }
}

/// A leaf's size: level 0 is 4 KiB, each level above 512 times more.
pub fn level_bytes(level: u8) -> u64 {
    1 << (12 + 9 * u32::from(level))
}

fn index(va: u64, level: u8) -> u64 {
    (va >> (12 + 9 * u32::from(level))) & 0x1ff
}

/// An entry pointing at `ppn` with `flags` (V added).
pub fn make(ppn: u64, flags: u64) -> u64 {
    PPN.put(ppn).unwrap_or(0) | flags | pte::V
}

pub fn ppn(entry: u64) -> u64 {
    PPN.get(entry)
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
    Mem(MemError),
}

impl From<MemError> for SvFault {
    fn from(e: MemError) -> Self {
        SvFault::Mem(e)
    }
}

/// Map `va` to the frame `pfn` as a leaf of `level` with `flags` in the
/// table rooted at `root`, allocating the tables on the way (in memory a
/// frame at a time). Returns the physical address of the leaf entry.
pub fn map(
    mem: &mut PhysMem,
    root: Pfn,
    sv: Sv,
    va: u64,
    pfn: Pfn,
    level: u8,
    flags: u64,
) -> Result<u64, SvFault> {
    if !sv.canonical(va) {
        return Err(SvFault::NonCanonical { va });
    }
    let mut table = root;
    for l in (level + 1..sv.levels()).rev() {
        let pa = (table << PAGE_SHIFT) + index(va, l) * 8;
        let e = mem.read(pa)?.value;
        if e & pte::V == 0 {
            let t = mem.alloc()?;
            mem.write(pa, make(t, 0), 0)?;
            table = t;
        } else if e & (pte::R | pte::X) != 0 {
            // a leaf above: its frame is data, not a table
            return Err(SvFault::Misaligned {
                va,
                level: l,
                entry_pa: pa,
            });
        } else {
            table = ppn(e);
        }
    }
    let pa = (table << PAGE_SHIFT) + index(va, level) * 8;
    mem.write(pa, make(pfn, flags), 0)?;
    Ok(pa)
}

/// The walk of `va` through the table rooted at `root`, as the
/// specification's translation process does it (A/D and permissions are
/// the caller's to judge from the leaf's bits).
pub fn walk(mem: &PhysMem, root: Pfn, sv: Sv, va: u64) -> Result<SvLeaf, SvFault> {
    if !sv.canonical(va) {
        return Err(SvFault::NonCanonical { va });
    }
    let mut table = root;
    for level in (0..sv.levels()).rev() {
        let entry_pa = (table << PAGE_SHIFT) + index(va, level) * 8;
        let e = mem.read(entry_pa)?.value;
        if e & pte::V == 0 || (e & pte::R == 0 && e & pte::W != 0) {
            return Err(SvFault::Invalid {
                va,
                level,
                entry_pa,
            });
        }
        if e & (pte::R | pte::X) == 0 {
            if level == 0 {
                return Err(SvFault::NoLeaf { va, entry_pa });
            }
            table = ppn(e);
            continue;
        }
        let span = level_bytes(level) >> PAGE_SHIFT;
        if ppn(e) % span != 0 {
            return Err(SvFault::Misaligned {
                va,
                level,
                entry_pa,
            });
        }
        return Ok(SvLeaf {
            pfn: ppn(e) + ((va >> PAGE_SHIFT) & (span - 1)),
            level,
            entry_pa,
            entry: e,
        });
    }
    unreachable!("level 0 always returns")
}

#[cfg(test)]
mod tests {
    use super::*;

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
