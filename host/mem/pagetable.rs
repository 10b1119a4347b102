//! Page tables kept in [`PhysMem`], in the format of their address space
//! ([`PtFormat`]): x86-64 4-level (48-bit VA), or RISC-V Sv39 (3 levels,
//! 39-bit VA) or Sv48 (4 levels, 48-bit VA).
//!
//! All three have 4 KiB tables of 512 eight-byte entries and 9 VA bits a
//! level, so levels are numbered alike, 1 = PTE (VA 20:12), 2 = PMD (29:21),
//! 3 (38:30), 4 (47:39, absent in Sv39), and a 2 MiB leaf sits at level 2.
//! x86-64: a PD (or PDPT) entry with PS set is a leaf; the bundled IOMMU's
//! walker (rtl/ptw.sv) reads these entries through its memory port. Sv39 and
//! Sv48 (RISC-V privileged architecture): an entry with R or X set is a leaf
//! at any level, one with V alone points at the next table.
//!
//! The mm paths build and change entries only through [`PtFormat`]'s
//! operations, so the same paths run on either format.

use super::phys::{MemError, Pfn, PhysMem, PAGE_SHIFT};
use crate::riscv::PPN;
use thiserror::Error;

/// x86-64 page-table entry bits (Intel SDM vol. 3, 4.5).
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
    /// A kernel page table's entry (`_KERNPG_TABLE`): no US, so nothing
    /// below it is reachable by a user-mode access.
    pub const KERNEL_TABLE: u64 = P | RW | A | D;

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

/// Sv39/Sv48 page-table entry bits (RISC-V privileged architecture, "Sv39"):
/// V R W X U G A D in bits 7:0, the page number in 53:10 ([`PPN`]).
pub mod sv_pte {
    pub const V: u64 = 1 << 0;
    pub const R: u64 = 1 << 1;
    pub const W: u64 = 1 << 2;
    pub const X: u64 = 1 << 3;
    pub const U: u64 = 1 << 4;
    pub const G: u64 = 1 << 5;
    pub const A: u64 = 1 << 6;
    pub const D: u64 = 1 << 7;
}

/// The page-table format of an address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PtFormat {
    /// x86-64 4-level paging.
    #[default]
    X86_64,
    /// RISC-V Sv39: 3 levels, VA sign-extended from bit 38.
    Sv39,
    /// RISC-V Sv48: 4 levels, VA sign-extended from bit 47.
    Sv48,
}

/// A leaf's permissions and state, as the mm paths ask for them; the format
/// turns it into bits ([`PtFormat::leaf`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    /// Writable (x86 RW; RISC-V W).
    pub write: bool,
    /// User-accessible (x86 US; RISC-V U).
    pub user: bool,
    /// Accessed (A).
    pub young: bool,
    /// Dirty (D).
    pub dirty: bool,
}

impl Prot {
    /// A user data page, writable, accessed and dirty (a fresh anonymous
    /// page after a fault, a named page that is not COW).
    pub const USER_RW: Prot = Prot {
        write: true,
        user: true,
        young: true,
        dirty: true,
    };
    /// A read-only user page, accessed and clean (a COW page, the zero page).
    pub const USER_RO: Prot = Prot {
        write: false,
        user: true,
        young: true,
        dirty: false,
    };
    /// A kernel data page (`PAGE_KERNEL`: a vmalloc page), supervisor-only.
    pub const KERNEL_RW: Prot = Prot {
        write: true,
        user: false,
        young: true,
        dirty: true,
    };
}

/// What an entry is at its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Not present (x86: P clear; RISC-V: V clear, or W without R, reserved).
    Invalid,
    /// A pointer to the next table.
    Table,
    /// A translation (a page, or a huge page above level 1).
    Leaf,
}

impl PtFormat {
    /// Page-table levels (the top one is the root the address space's
    /// `pgd` names).
    pub fn levels(self) -> u8 {
        match self {
            PtFormat::Sv39 => 3,
            PtFormat::X86_64 | PtFormat::Sv48 => 4,
        }
    }

    /// VA bits translated: 39 or 48.
    pub fn va_bits(self) -> u32 {
        12 + 9 * u32::from(self.levels())
    }

    /// Bits 63 down to the top VA bit all equal it.
    pub fn canonical(self, va: u64) -> bool {
        let top = va >> (self.va_bits() - 1);
        top == 0 || top == u64::MAX >> (self.va_bits() - 1)
    }

    fn riscv(self) -> bool {
        self != PtFormat::X86_64
    }

    /// The address field: x86 bits 51:12; RISC-V PPN, bits 53:10.
    fn addr_mask(self) -> u64 {
        if self.riscv() {
            PPN.mask()
        } else {
            pte::ADDR
        }
    }

    /// The present, write, accessed and dirty bits, in that order.
    fn bits(self) -> [u64; 4] {
        if self.riscv() {
            [sv_pte::V, sv_pte::W, sv_pte::A, sv_pte::D]
        } else {
            [pte::P, pte::RW, pte::A, pte::D]
        }
    }

    fn present_bit(self) -> u64 {
        self.bits()[0]
    }

    fn write_bit(self) -> u64 {
        self.bits()[1]
    }

    fn young_bit(self) -> u64 {
        self.bits()[2]
    }

    fn dirty_bit(self) -> u64 {
        self.bits()[3]
    }

    /// The entry pointing at frame `pfn` with `flags` (the format's own bits,
    /// taken as they are: nothing added).
    pub fn entry(self, pfn: Pfn, flags: u64) -> u64 {
        let shift = if self.riscv() { PPN.lo } else { PAGE_SHIFT };
        ((pfn << shift) & self.addr_mask()) | flags
    }

    /// The entry's flags, its frame number masked out: `entry(pfn,
    /// flags(e))` is `e` moved to another frame.
    pub fn flags(self, e: u64) -> u64 {
        e & !self.addr_mask()
    }

    /// The frame an entry points at (a leaf's page, a table).
    pub fn pfn(self, e: u64) -> Pfn {
        if self.riscv() {
            PPN.get(e)
        } else {
            pte::pfn(e)
        }
    }

    /// `pte_present`: P (x86) or V (RISC-V).
    pub fn present(self, e: u64) -> bool {
        e & self.present_bit() != 0
    }

    /// `pte_write` of a present entry.
    pub fn writable(self, e: u64) -> bool {
        let bits = self.present_bit() | self.write_bit();
        e & bits == bits
    }

    /// `pte_young`: A set.
    pub fn young(self, e: u64) -> bool {
        e & self.young_bit() != 0
    }

    /// `pte_dirty`: D set.
    pub fn dirty(self, e: u64) -> bool {
        e & self.dirty_bit() != 0
    }

    /// A present leaf mapping `pfn` with `prot`; `huge`: a 2 MiB leaf in a
    /// PMD or a 1 GiB one in a PUD (x86 sets PS; a RISC-V leaf is the same
    /// bits at any level). A
    /// RISC-V leaf is always readable (R): W without R is reserved.
    pub fn leaf(self, pfn: Pfn, prot: Prot, huge: bool) -> u64 {
        let bit = |on: bool, b: u64| if on { b } else { 0 };
        let flags = if self.riscv() {
            sv_pte::V
                | sv_pte::R
                | bit(prot.write, sv_pte::W)
                | bit(prot.user, sv_pte::U)
                | bit(prot.young, sv_pte::A)
                | bit(prot.dirty, sv_pte::D)
        } else {
            pte::P
                | bit(prot.write, pte::RW)
                | bit(prot.user, pte::US)
                | bit(prot.young, pte::A)
                | bit(prot.dirty, pte::D)
                | bit(huge, pte::PS)
        };
        self.entry(pfn, flags)
    }

    /// A non-leaf entry pointing at the table in frame `pfn` (x86: P, RW and
    /// US, the leaves below deciding; RISC-V: V alone).
    pub fn table(self, pfn: Pfn) -> u64 {
        let flags = if self.riscv() { sv_pte::V } else { pte::TABLE };
        self.entry(pfn, flags)
    }

    /// A kernel page table's non-leaf entry (x86 `_KERNPG_TABLE`: P, RW, A
    /// and D, no US; RISC-V: V alone, as any table).
    pub fn kernel_table(self, pfn: Pfn) -> u64 {
        let flags = if self.riscv() {
            sv_pte::V
        } else {
            pte::KERNEL_TABLE
        };
        self.entry(pfn, flags)
    }

    /// `pmd_trans_huge`/`pmd_huge`: this PMD entry is a present 2 MiB leaf
    /// (x86: PS; RISC-V: R or X), not a table pointer.
    pub fn is_huge(self, pmd: u64) -> bool {
        self.kind(pmd, 2) == Kind::Leaf
    }

    /// `pte_wrprotect`: write permission cleared.
    pub fn wrprotect(self, e: u64) -> u64 {
        e & !self.write_bit()
    }

    /// `pte_mkwrite`.
    pub fn mkwrite(self, e: u64) -> u64 {
        e | self.write_bit()
    }

    /// `pte_mkdirty`.
    pub fn mkdirty(self, e: u64) -> u64 {
        e | self.dirty_bit()
    }

    /// `pte_mkyoung`.
    pub fn mkyoung(self, e: u64) -> u64 {
        e | self.young_bit()
    }

    /// `pte_mkclean`: D cleared.
    pub fn mkclean(self, e: u64) -> u64 {
        e & !self.dirty_bit()
    }

    /// `pte_mkold`: A cleared.
    pub fn mkold(self, e: u64) -> u64 {
        e & !self.young_bit()
    }

    /// `e`, at `level`, points at a page table.
    pub fn is_table(self, e: u64, level: u8) -> bool {
        self.kind(e, level) == Kind::Table
    }

    /// What entry `e` is at `level` (1 = PTE).
    fn kind(self, e: u64, level: u8) -> Kind {
        use sv_pte::{R, V, W, X};
        match self {
            PtFormat::X86_64 if !pte::present(e) => Kind::Invalid,
            // PS makes a leaf in a PD or PDPT entry only (bit 7 of a PTE
            // is PAT, of a PML4 entry reserved).
            PtFormat::X86_64 if level == 1 || (level <= 3 && e & pte::PS != 0) => Kind::Leaf,
            PtFormat::X86_64 => Kind::Table,
            _ if e & V == 0 || (e & R == 0 && e & W != 0) => Kind::Invalid,
            _ if e & (R | X) != 0 => Kind::Leaf,
            _ => Kind::Table,
        }
    }

    /// The CPU's user-mode access may go through `e`: x86 US at every
    /// level; RISC-V U on the leaf (a pointer's U is reserved).
    fn user_ok(self, e: u64, kind: Kind) -> bool {
        match self {
            PtFormat::X86_64 => e & pte::US != 0,
            _ => kind != Kind::Leaf || e & sv_pte::U != 0,
        }
    }

    /// `e` lets a write through: x86 RW at every level; RISC-V W on the leaf.
    fn write_ok(self, e: u64, kind: Kind) -> bool {
        match self {
            PtFormat::X86_64 => e & pte::RW != 0,
            _ => kind != Kind::Leaf || e & sv_pte::W != 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Small,
    Huge2M,
    /// A 1 GiB leaf in a PUD (x86-64 PDPT entry with PS; a RISC-V leaf at
    /// level 3, Sv39's root): a hugetlbfs page of `hugepagesz=1G`.
    Huge1G,
}

impl PageSize {
    pub fn bytes(self) -> u64 {
        match self {
            PageSize::Small => 1 << 12,
            PageSize::Huge2M => 1 << 21,
            PageSize::Huge1G => 1 << 30,
        }
    }

    /// The level of its leaf entry (1 = PTE, 2 = PMD, 3 = PUD).
    pub fn level(self) -> u8 {
        match self {
            PageSize::Small => 1,
            PageSize::Huge2M => 2,
            PageSize::Huge1G => 3,
        }
    }

    /// The size whose leaf is at `level` (1, 2 or 3).
    pub fn at_level(level: u8) -> Option<PageSize> {
        match level {
            1 => Some(PageSize::Small),
            2 => Some(PageSize::Huge2M),
            3 => Some(PageSize::Huge1G),
            _ => None,
        }
    }

    /// How many 4 KiB frames it spans.
    pub fn frames(self) -> u64 {
        self.bytes() >> PAGE_SHIFT
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
    /// Not present at `level` (RISC-V: V clear, or W without R, reserved),
    /// or not reachable from user mode (x86 US, RISC-V U clear).
    #[error("[pt] {va:#x} is not mapped (level {level} entry at {entry_pa:#x} is not present)")]
    NotPresent { va: u64, level: u8, entry_pa: u64 },
    #[error("[pt] {va:#x} is not a canonical {bits}-bit address")]
    NonCanonical { va: u64, bits: u32 },
    /// The walk down to a table met a present leaf at `level`: a 2 MiB page
    /// (level 2) or a 1 GiB page (level 3) maps `va`, and the frame it
    /// points at holds data, not entries.
    #[error("[pt] {va:#x} is mapped by a {} page (level {level} entry at {entry_pa:#x} is a leaf), not through a page table", leaf_size(*level))]
    HugeLeaf { va: u64, level: u8, entry_pa: u64 },
    /// RISC-V: a superpage leaf whose page number is not aligned to its size.
    #[error("[pt] {va:#x} is mapped by a misaligned {} page (level {level} entry at {entry_pa:#x})", leaf_size(*level))]
    Misaligned { va: u64, level: u8, entry_pa: u64 },
    /// RISC-V: a pointer to a next table in a PTE (level 1).
    #[error("[pt] {va:#x} has a table pointer where its PTE must be (entry at {entry_pa:#x})")]
    NoLeaf { va: u64, entry_pa: u64 },
    #[error(transparent)]
    Mem(#[from] MemError),
}

/// What [`AddressSpace::entry_pa`] does with a missing table on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alloc {
    /// Nothing: the walk stops there.
    No,
    /// A user page table (x86: US set).
    User,
    /// A kernel page table (x86: no US).
    Kernel,
}

/// One process address space: its root table (`pgd`: the PML4, or the
/// Sv39/Sv48 root), the PASID it is bound to, and the format of its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub pgd: Pfn,
    pub pasid: u32,
    pub format: PtFormat,
}

/// A walk's end: the leaf at any level (a raw walk: no user-mode checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Translation {
    /// 1 = PTE, 2 = PMD, ...
    pub level: u8,
    /// The 4 KiB frame holding the VA (inside a huge page: base + offset).
    pub pfn: Pfn,
    /// Every level lets a write through.
    pub writable: bool,
    pub entry_pa: u64,
    pub entry: u64,
}

fn leaf_size(level: u8) -> &'static str {
    match level {
        2 => "2 MiB",
        3 => "1 GiB",
        4 => "512 GiB",
        _ => "huge",
    }
}

fn index(va: u64, level: u8) -> u64 {
    // level 4 = PML4 ... level 1 = PT
    (va >> (12 + 9 * (level as u32 - 1))) & 0x1ff
}

impl AddressSpace {
    /// An empty x86-64 address space.
    pub fn new(mem: &mut PhysMem, pasid: u32) -> Result<Self, MemError> {
        Self::with_format(mem, pasid, PtFormat::X86_64)
    }

    /// An empty address space whose tables are in `format`.
    pub fn with_format(mem: &mut PhysMem, pasid: u32, format: PtFormat) -> Result<Self, MemError> {
        Ok(AddressSpace {
            pgd: mem.alloc_table()?,
            pasid,
            format,
        })
    }

    fn check(&self, va: u64) -> Result<(), WalkError> {
        if !self.format.canonical(va) {
            return Err(WalkError::NonCanonical {
                va,
                bits: self.format.va_bits(),
            });
        }
        Ok(())
    }

    /// Physical address of the entry for `va` at `level` (1 = PTE, 2 = PMD),
    /// allocating missing tables on the way when `alloc` is set. A present
    /// leaf above `level` (a 2 MiB or 1 GiB page) is an error,
    /// [`WalkError::HugeLeaf`]: the frame it maps is data, never a table.
    fn entry_pa(
        &self,
        mem: &mut PhysMem,
        va: u64,
        level: u8,
        alloc: Alloc,
    ) -> Result<u64, WalkError> {
        self.check(va)?;
        let f = self.format;
        let mut table = self.pgd;
        for l in (level + 1..=f.levels()).rev() {
            let pa = (table << PAGE_SHIFT) + index(va, l) * 8;
            let e = mem.read(pa)?.value;
            match f.kind(e, l) {
                Kind::Leaf => {
                    return Err(WalkError::HugeLeaf {
                        va,
                        level: l,
                        entry_pa: pa,
                    })
                }
                Kind::Table => table = f.pfn(e),
                // A reserved RISC-V entry (V set) is not overwritten.
                Kind::Invalid if alloc != Alloc::No && !f.present(e) => {
                    let t = mem.alloc_table()?;
                    let entry = match alloc {
                        Alloc::Kernel => f.kernel_table(t),
                        _ => f.table(t),
                    };
                    mem.write(pa, entry, 0)?;
                    table = t;
                }
                Kind::Invalid => {
                    return Err(WalkError::NotPresent {
                        va,
                        level: l,
                        entry_pa: pa,
                    })
                }
            }
        }
        Ok((table << PAGE_SHIFT) + index(va, level) * 8)
    }

    /// Write `entry` as `va`'s entry at `level`, allocating the tables above
    /// it. Returns the physical address of the entry.
    pub(crate) fn map_entry(
        &self,
        mem: &mut PhysMem,
        va: u64,
        level: u8,
        entry: u64,
    ) -> Result<u64, WalkError> {
        let pa = self.entry_pa(mem, va, level, Alloc::User)?;
        mem.write(pa, entry, 0)?;
        Ok(pa)
    }

    /// Map `va` to `pfn` with leaf `flags`, the format's own bits (present,
    /// P or V, is added; on x86 PS too for 2 MiB). Returns the physical
    /// address of the leaf entry. [`AddressSpace::map_prot`] says the same
    /// in any format.
    pub fn map(
        &self,
        mem: &mut PhysMem,
        va: u64,
        pfn: Pfn,
        size: PageSize,
        flags: u64,
    ) -> Result<u64, WalkError> {
        let f = self.format;
        let extra = match (f, size) {
            (PtFormat::X86_64, PageSize::Huge2M | PageSize::Huge1G) => pte::PS,
            _ => 0,
        };
        let entry = f.entry(pfn, flags | f.present_bit() | extra);
        self.map_entry(mem, va, size.level(), entry)
    }

    /// Map the kernel page `va` to `pfn` (a vmalloc page, `PAGE_KERNEL`),
    /// allocating the tables above it as kernel tables (no US). Returns the
    /// physical address of the PTE.
    pub fn map_kernel(&self, mem: &mut PhysMem, va: u64, pfn: Pfn) -> Result<u64, WalkError> {
        let entry = self.format.leaf(pfn, Prot::KERNEL_RW, false);
        let pa = self.entry_pa(mem, va, 1, Alloc::Kernel)?;
        mem.write(pa, entry, 0)?;
        Ok(pa)
    }

    /// Point this address space's top-level entry for `va` where `kernel`'s
    /// does (`pgd_alloc`'s copy of init_mm's kernel half): every process
    /// shares the kernel's tables below it.
    pub fn share_top(
        &self,
        mem: &mut PhysMem,
        kernel: &AddressSpace,
        va: u64,
    ) -> Result<(), WalkError> {
        self.check(va)?;
        let l = self.format.levels();
        let at = |pgd: Pfn| (pgd << PAGE_SHIFT) + index(va, l) * 8;
        let e = mem.read(at(kernel.pgd))?.value;
        mem.write(at(self.pgd), e, 0)?;
        Ok(())
    }

    /// Map `va` to `pfn` as a leaf with `prot` ([`PtFormat::leaf`]).
    /// Returns the physical address of the leaf entry.
    pub fn map_prot(
        &self,
        mem: &mut PhysMem,
        va: u64,
        pfn: Pfn,
        size: PageSize,
        prot: Prot,
    ) -> Result<u64, WalkError> {
        let entry = self.format.leaf(pfn, prot, size != PageSize::Small);
        self.map_entry(mem, va, size.level(), entry)
    }

    /// The physical address of the 4 KiB PTE for `va` (its page-table page
    /// must exist). The PFN of that page identifies its split PTL. A `va`
    /// mapped by a huge PMD has no PTE: [`WalkError::HugeLeaf`] (level 2).
    pub fn pte_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 1, Alloc::No)
    }

    /// `pte_alloc` (`level` 1), `alloc_new_pmd` (2), `alloc_new_pud` (3):
    /// the physical address of `va`'s slot at `level`, the page tables
    /// above it allocated where missing (a huge leaf above it is an error;
    /// what the slot holds, the caller reads).
    pub fn alloc_slot(&self, mem: &mut PhysMem, va: u64, level: u8) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, level, Alloc::User)
    }

    /// The physical address of the PUD entry for `va`, the tables above it
    /// allocated where missing (a table pointer or empty: the caller reads
    /// it).
    pub fn pud_alloc(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.alloc_slot(mem, va, 3)
    }

    /// The physical address of `va`'s entry at `level` (1 = PTE, 2 = PMD,
    /// 3 = PUD), if the tables above it exist.
    pub fn slot_pa(&self, mem: &mut PhysMem, va: u64, level: u8) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, level, Alloc::No)
    }

    /// The physical address of the PUD entry for `va`, if the tables above
    /// it exist.
    pub fn pud_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 3, Alloc::No)
    }

    /// The physical address of the PMD entry for `va` (a table pointer, a
    /// 2 MiB leaf or empty: the caller reads it).
    pub fn pmd_pa(&self, mem: &mut PhysMem, va: u64) -> Result<u64, WalkError> {
        self.entry_pa(mem, va, 2, Alloc::No)
    }

    /// The walk of `va` down to its leaf at whatever level. `cpu`: as a
    /// user-mode access sees it (every level user-accessible, no leaf above
    /// 1 GiB); otherwise the raw walk the RISC-V
    /// specification's translation process does, permissions left to the
    /// caller. A misaligned RISC-V superpage and a pointer in a PTE fault.
    pub(crate) fn translate(
        &self,
        mem: &PhysMem,
        va: u64,
        cpu: bool,
    ) -> Result<Translation, WalkError> {
        self.check(va)?;
        let f = self.format;
        let mut table = self.pgd;
        let mut writable = true;
        // the CPU reaches the kernel half in kernel mode (a kernel path):
        // no user-mode check there
        let user = cpu && va >> 63 == 0;
        for level in (1..=f.levels()).rev() {
            let entry_pa = (table << PAGE_SHIFT) + index(va, level) * 8;
            let e = mem.read(entry_pa)?.value;
            let kind = f.kind(e, level);
            if kind == Kind::Invalid || (user && !f.user_ok(e, kind)) {
                return Err(WalkError::NotPresent {
                    va,
                    level,
                    entry_pa,
                });
            }
            writable &= f.write_ok(e, kind);
            if kind == Kind::Table {
                if level == 1 {
                    return Err(WalkError::NoLeaf { va, entry_pa });
                }
                table = f.pfn(e);
                continue;
            }
            if cpu && level >= 4 {
                // A 512 GiB page: no CPU has one.
                return Err(WalkError::HugeLeaf {
                    va,
                    level,
                    entry_pa,
                });
            }
            let span = 1u64 << (9 * u32::from(level - 1));
            if f.riscv() && f.pfn(e) % span != 0 {
                return Err(WalkError::Misaligned {
                    va,
                    level,
                    entry_pa,
                });
            }
            return Ok(Translation {
                level,
                pfn: (f.pfn(e) & !(span - 1)) + ((va >> PAGE_SHIFT) & (span - 1)),
                writable,
                entry_pa,
                entry: e,
            });
        }
        unreachable!("level 1 always returns")
    }

    /// The CPU's own walk: what a load or store to `va` uses now. The CPU
    /// TLB is modelled as flushed synchronously (`ptep_clear_flush`), so
    /// this walk is the CPU's view at every instant.
    pub fn walk(&self, mem: &PhysMem, va: u64) -> Result<Leaf, WalkError> {
        let t = self.translate(mem, va, true)?;
        Ok(Leaf {
            pfn: t.pfn,
            size: PageSize::at_level(t.level).expect("the walk refuses leaves above level 3"),
            writable: t.writable,
            entry_pa: t.entry_pa,
            entry: t.entry,
        })
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
                va: 0x8000_0000_0000,
                bits: 48
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
        // A PDPT entry with PS set written over a table pointer: it must not
        // be followed.
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
        // The CPU's walk stops at it: the 1 GiB frame f lies in (x86 ignores
        // the low bits of a PDPT leaf's address), the VA's offset added.
        let leaf = a.walk(&m, va).unwrap();
        assert_eq!(leaf.size, PageSize::Huge1G);
        assert_eq!(leaf.pfn, (f & !0x3_ffff) + ((va >> PAGE_SHIFT) & 0x3_ffff));
        assert_eq!(leaf.entry_pa, pdpt_entry);
    }

    #[test]
    fn map_and_walk_1g_in_every_format() {
        for format in [PtFormat::X86_64, PtFormat::Sv39, PtFormat::Sv48] {
            let mut m = PhysMem::new(3 * 262_144);
            let a = AddressSpace::with_format(&mut m, 1, format).unwrap();
            let base = m.alloc_compound(262_144, true).unwrap();
            assert_eq!(base % 262_144, 0, "{format:?}: aligned to 1 GiB");
            let va = 0x3f_4000_0000 & ((1u64 << (format.va_bits() - 1)) - 1);
            let pud = a
                .map_prot(&mut m, va, base, PageSize::Huge1G, Prot::USER_RW)
                .unwrap();
            assert_eq!(a.pud_pa(&mut m, va).unwrap(), pud, "{format:?}");
            let leaf = a.walk(&m, va + 0x2345_6789).unwrap();
            assert_eq!(leaf.size, PageSize::Huge1G, "{format:?}");
            assert_eq!(leaf.pfn, base + 0x23456, "{format:?}");
            assert!(leaf.writable, "{format:?}");
            // Nothing below it is a table.
            assert!(matches!(
                a.pmd_pa(&mut m, va),
                Err(WalkError::HugeLeaf { level: 3, .. })
            ));
        }
        assert_eq!(PageSize::Huge1G.frames(), 262_144);
        assert_eq!(PageSize::at_level(3), Some(PageSize::Huge1G));
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

    // ---- the format-neutral entry operations, and Sv39/Sv48 tables ----

    use sv_pte::{A as SA, D as SD, R as SR, U as SU, V as SV, W as SW, X as SX};

    const SV_FORMATS: [PtFormat; 2] = [PtFormat::Sv39, PtFormat::Sv48];

    /// The x86-64 words are exactly what the paths wrote before the
    /// formats: P|RW|US|A|D for a fresh page (PS too for 2 MiB), P|US|A for
    /// the zero page, P|RW|US for a table.
    #[test]
    fn x86_entries_are_the_intel_bits() {
        let f = PtFormat::default();
        assert_eq!(f, PtFormat::X86_64);
        let rw = pte::P | pte::RW | pte::US | pte::A | pte::D;
        assert_eq!(f.leaf(0x1234, Prot::USER_RW, false), (0x1234 << 12) | rw);
        assert_eq!(
            f.leaf(0x1200, Prot::USER_RW, true),
            (0x1200 << 12) | rw | pte::PS
        );
        assert_eq!(
            f.leaf(7, Prot::USER_RO, false),
            0x7000 | pte::P | pte::US | pte::A
        );
        assert_eq!(f.leaf(0, Prot::default(), true), pte::P | pte::PS);
        assert_eq!(f.table(9), 0x9000 | pte::TABLE);
        let e = f.leaf(0x42, Prot::USER_RW, false);
        assert_eq!(f.wrprotect(e), e & !pte::RW);
        assert_eq!(f.mkclean(e), e & !pte::D);
        assert_eq!(f.mkold(e), e & !pte::A);
        assert_eq!(
            f.mkold(f.mkclean(e)),
            (0x42 << 12) | pte::P | pte::RW | pte::US
        );
        let ro = f.leaf(0x42, Prot::USER_RO, false);
        assert_eq!(f.mkyoung(f.mkdirty(f.mkwrite(ro))), e);
        assert_eq!(f.flags(e | pte::NX), rw | pte::NX);
        assert_eq!(
            f.entry(0x99, f.flags(e | pte::NX)),
            (0x99 << 12) | rw | pte::NX
        );
        assert_eq!(f.pfn(e | pte::NX), 0x42);
        assert!(f.present(e) && f.writable(e) && f.young(e) && f.dirty(e));
        assert!(!f.writable(ro) && f.young(ro) && !f.dirty(ro));
        assert!(!f.writable(pte::RW), "RW without P");
        assert!(f.is_huge(f.leaf(0x200, Prot::USER_RW, true)));
        assert!(!f.is_huge(f.table(3)));
        assert!(!f.is_huge(pte::PS), "not present");
    }

    #[test]
    fn sv_entries_are_the_riscv_bits() {
        for f in SV_FORMATS {
            // A writable user leaf: V|R|W|U|A|D, the page number at bit 10;
            // a 2 MiB one is the same bits (its level makes it huge).
            assert_eq!(
                f.leaf(0x1234, Prot::USER_RW, false),
                (0x1234 << 10) | SV | SR | SW | SU | SA | SD,
                "{f:?}"
            );
            assert_eq!(
                f.leaf(0x1200, Prot::USER_RW, true),
                (0x1200 << 10) | SV | SR | SW | SU | SA | SD
            );
            // The zero page: a readable user leaf, never W.
            assert_eq!(
                f.leaf(7, Prot::USER_RO, false),
                (7 << 10) | SV | SR | SU | SA
            );
            // A table pointer: V and the page number only.
            assert_eq!(f.table(9), (9 << 10) | SV);
            assert_eq!(f.pfn(f.table(9)), 9);
            let e = f.leaf(0x42, Prot::USER_RW, false);
            let p = 0x42 << 10;
            assert_eq!(f.wrprotect(e), p | SV | SR | SU | SA | SD);
            assert_eq!(f.mkclean(e), p | SV | SR | SW | SU | SA);
            assert_eq!(f.mkold(e), p | SV | SR | SW | SU | SD);
            assert_eq!(f.mkclean(f.wrprotect(e)), p | SV | SR | SU | SA);
            let ro = f.leaf(0x42, Prot::USER_RO, false);
            assert_eq!(f.mkyoung(f.mkdirty(f.mkwrite(ro))), e);
            assert!(f.present(e) && f.writable(e) && f.young(e) && f.dirty(e));
            assert!(!f.writable(ro) && f.young(ro) && !f.dirty(ro));
            assert!(!f.young(f.mkold(e)) && !f.dirty(f.mkclean(e)));
            assert!(!f.writable(SW), "W without V");
            // The page number is bits 53:10: nothing of it in the flags,
            // bits 63:54 kept with them.
            let high = 1 << 63;
            assert_eq!(f.flags(e | high), SV | SR | SW | SU | SA | SD | high);
            assert_eq!(f.pfn((((1u64 << 44) - 1) << 10) | SV), (1 << 44) - 1);
            // A 2 MiB leaf is huge; a pointer and an empty entry are not.
            assert!(f.is_huge(f.leaf(0x200, Prot::USER_RO, true)));
            assert!(f.is_huge((0x200 << 10) | SV | SX));
            assert!(!f.is_huge(f.table(3)));
            assert!(!f.is_huge(0));
            // x86's PS bit means nothing here: it is D.
            assert!(!f.is_huge((3 << 10) | SV | pte::PS));
        }
    }

    #[test]
    fn flags_and_a_new_pfn_keep_the_permissions() {
        for f in [PtFormat::X86_64, PtFormat::Sv39, PtFormat::Sv48] {
            for prot in [Prot::USER_RW, Prot::USER_RO, Prot::default()] {
                for huge in [false, true] {
                    let old = f.leaf(0x1_2345, prot, huge);
                    let moved = f.entry(0x6_7800, f.flags(old));
                    assert_eq!(moved, f.leaf(0x6_7800, prot, huge), "{f:?} {prot:?}");
                    assert_eq!(f.pfn(moved), 0x6_7800);
                    assert_eq!(f.flags(moved), f.flags(old));
                    assert_eq!(f.writable(moved), prot.write);
                    assert_eq!((f.young(moved), f.dirty(moved)), (prot.young, prot.dirty));
                }
            }
            // The KSM rebuild: write-protected and clean at the KSM page.
            let old = f.leaf(5, Prot::USER_RW, false);
            let k = f.entry(6, f.flags(f.mkclean(f.wrprotect(old))));
            let want = Prot {
                write: false,
                dirty: false,
                ..Prot::USER_RW
            };
            assert_eq!(k, f.leaf(6, want, false), "{f:?}");
        }
    }

    #[test]
    fn sv_map_and_walk_4k() {
        for f in SV_FORMATS {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            assert_eq!(a.format, f);
            let fr = m.alloc().unwrap();
            let va = 0x12_3456_7000;
            let pa = a
                .map_prot(&mut m, va, fr, PageSize::Small, Prot::USER_RW)
                .unwrap();
            assert_eq!(
                m.read(pa).unwrap().value,
                (fr << 10) | SV | SR | SW | SU | SA | SD
            );
            let leaf = a.walk(&m, va + 0x123).unwrap();
            assert_eq!(
                (leaf.pfn, leaf.size, leaf.writable, leaf.entry_pa),
                (fr, PageSize::Small, true, pa),
                "{f:?}"
            );
            assert_eq!(a.pte_pa(&mut m, va).unwrap(), pa);
            // Exactly f.levels() levels, each above the leaf a pointer: V
            // and a page number, nothing else.
            let mut table = a.pgd;
            for level in (2..=f.levels()).rev() {
                let e = m.read((table << 12) + index(va, level) * 8).unwrap().value;
                assert_eq!(e & 0x3ff, SV, "{f:?} level {level}");
                assert_eq!(e >> 54, 0);
                table = f.pfn(e);
            }
            assert_eq!((table << 12) + index(va, 1) * 8, pa);
            // The PMD is the pointer to the PTE's table.
            let pmd = a.pmd_pa(&mut m, va).unwrap();
            assert_eq!(f.pfn(m.read(pmd).unwrap().value), pa >> 12);
            // read-only, then supervisor-only
            m.write(pa, f.leaf(fr, Prot::USER_RO, false), 0).unwrap();
            assert!(!a.walk(&m, va).unwrap().writable);
            m.write(pa, (fr << 10) | SV | SR | SW | SA | SD, 0).unwrap();
            assert_eq!(
                a.walk(&m, va),
                Err(WalkError::NotPresent {
                    va,
                    level: 1,
                    entry_pa: pa
                })
            );
            // raw map with the format's own bits: V added
            let pa2 = a
                .map(&mut m, va + 0x1000, fr, PageSize::Small, SR | SU)
                .unwrap();
            assert_eq!(m.read(pa2).unwrap().value, (fr << 10) | SV | SR | SU);
        }
    }

    #[test]
    fn sv_map_and_walk_2m() {
        for f in SV_FORMATS {
            let mut m = PhysMem::new(2048);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let base = m.alloc_contiguous(512).unwrap();
            let va = 0x3f_0020_0000 & !0x1f_ffff;
            let pa = a
                .map_prot(&mut m, va, base, PageSize::Huge2M, Prot::USER_RW)
                .unwrap();
            assert_eq!(a.pmd_pa(&mut m, va).unwrap(), pa);
            let e = m.read(pa).unwrap().value;
            assert_eq!(e, (base << 10) | SV | SR | SW | SU | SA | SD, "{f:?}");
            assert!(f.is_huge(e));
            let leaf = a.walk(&m, va + 5 * 4096 + 8).unwrap();
            assert_eq!(
                (leaf.pfn, leaf.size, leaf.entry_pa),
                (base + 5, PageSize::Huge2M, pa)
            );
            assert!(leaf.writable);
            // A misaligned superpage faults.
            m.write(pa, f.leaf(base + 1, Prot::USER_RW, true), 0)
                .unwrap();
            assert_eq!(
                a.walk(&m, va),
                Err(WalkError::Misaligned {
                    va,
                    level: 2,
                    entry_pa: pa
                })
            );
        }
    }

    #[test]
    fn sv_noncanonical_addresses_are_refused() {
        let cases = [
            (PtFormat::Sv39, 0x40_0000_0000u64, 39u32),
            (PtFormat::Sv39, 0x7fff_ffff_f000, 39),
            (PtFormat::Sv39, 0xffff_ff80_0000_0000, 39),
            (PtFormat::Sv48, 0x8000_0000_0000, 48),
            (PtFormat::Sv48, 0xfff0_0000_0000_0000, 48),
        ];
        for (f, va, bits) in cases {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let err = || WalkError::NonCanonical { va, bits };
            assert_eq!(a.walk(&m, va), Err(err()), "{f:?} {va:#x}");
            let fr = m.alloc().unwrap();
            let r = a.map_prot(&mut m, va, fr, PageSize::Small, Prot::USER_RW);
            assert_eq!(r, Err(err()));
            assert_eq!(a.pte_pa(&mut m, va), Err(err()));
            assert!(
                (0..512).all(|i| m.read((a.pgd << 12) + 8 * i).unwrap().value == 0),
                "nothing mapped"
            );
        }
        // The sign-extended top halves are canonical, and walk from the top
        // level (3 for Sv39, 4 for Sv48).
        for (f, va) in [
            (PtFormat::Sv39, 0xffff_ffc0_0000_0000u64),
            (PtFormat::Sv39, 0x3f_ffff_f000),
            (PtFormat::Sv48, 0xffff_8000_0000_0000),
            (PtFormat::Sv48, 0x7fff_ffff_f000),
        ] {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            assert!(matches!(
                a.walk(&m, va),
                Err(WalkError::NotPresent { level, .. }) if level == f.levels()
            ));
            let fr = m.alloc().unwrap();
            a.map_prot(&mut m, va, fr, PageSize::Small, Prot::USER_RW)
                .unwrap();
            assert_eq!(a.walk(&m, va).unwrap().pfn, fr);
        }
        // Sv48 and x86-64 take 48 bits, Sv39 39.
        let msg = WalkError::NonCanonical {
            va: 1 << 38,
            bits: 39,
        }
        .to_string();
        assert!(msg.contains("canonical 39-bit"), "{msg}");
    }

    #[test]
    fn sv_a_huge_leaf_is_never_walked_as_a_table() {
        for f in SV_FORMATS {
            let mut m = PhysMem::new(2048);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let va = 0x3f_0020_3000;
            let base = m.alloc_contiguous(512).unwrap();
            let pmd = a
                .map_prot(
                    &mut m,
                    va & !0x1f_ffff,
                    base,
                    PageSize::Huge2M,
                    Prot::USER_RW,
                )
                .unwrap();
            // Data a walk through the frame would take for table pointers.
            let fake = f.table(3);
            for i in 0..512u64 {
                m.write((base << PAGE_SHIFT) + 8 * i, fake, 1).unwrap();
            }
            assert_eq!(
                a.pte_pa(&mut m, va),
                Err(WalkError::HugeLeaf {
                    va,
                    level: 2,
                    entry_pa: pmd
                }),
                "{f:?}"
            );
            assert_eq!(a.pmd_pa(&mut m, va).unwrap(), pmd);
            let fr = m.alloc().unwrap();
            let e = a
                .map_prot(&mut m, va, fr, PageSize::Small, Prot::USER_RW)
                .unwrap_err();
            assert!(matches!(e, WalkError::HugeLeaf { level: 2, .. }), "{e}");
            assert!(f.is_huge(m.read(pmd).unwrap().value));
            for i in 0..512u64 {
                assert_eq!(m.read((base << PAGE_SHIFT) + 8 * i).unwrap().value, fake);
            }
            assert_eq!(a.walk(&m, va).unwrap().pfn, base + 3);
        }
    }

    #[test]
    fn sv_a_1g_leaf_is_never_walked_as_a_table() {
        for f in SV_FORMATS {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let va = 0x3f_4000_5000;
            // A 1 GiB leaf at level 3 (Sv39's root, a table below Sv48's).
            let pa = a
                .map_entry(&mut m, va, 3, f.leaf(0x4_0000, Prot::USER_RW, true))
                .unwrap();
            if f == PtFormat::Sv39 {
                assert_eq!(pa, (a.pgd << 12) + index(va, 3) * 8);
            }
            for r in [a.pmd_pa(&mut m, va), a.pte_pa(&mut m, va)] {
                assert_eq!(
                    r,
                    Err(WalkError::HugeLeaf {
                        va,
                        level: 3,
                        entry_pa: pa
                    }),
                    "{f:?}"
                );
            }
            assert_eq!(a.walk(&m, va).unwrap().size, PageSize::Huge1G, "{f:?}");
            // The raw walk takes it: frame base + offset in the gigabyte.
            let t = a.translate(&m, va, false).unwrap();
            assert_eq!((t.level, t.pfn), (3, 0x4_0000 + ((va >> 12) & 0x3_ffff)));
        }
    }

    #[test]
    fn sv_reserved_and_pointer_entries_fault() {
        for f in SV_FORMATS {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let va = 0x4000_0000;
            let pa = a
                .map_prot(&mut m, va, 5, PageSize::Small, Prot::USER_RW)
                .unwrap();
            // W without R is reserved: not a translation.
            m.write(pa, (5 << 10) | SV | SW | SU, 0).unwrap();
            assert!(matches!(
                a.walk(&m, va),
                Err(WalkError::NotPresent { level: 1, .. })
            ));
            // An execute-only leaf is a leaf.
            m.write(pa, (5 << 10) | SV | SX | SU, 0).unwrap();
            assert_eq!(a.walk(&m, va).unwrap().pfn, 5);
            // A pointer where the PTE must be.
            m.write(pa, f.table(6), 0).unwrap();
            assert_eq!(a.walk(&m, va), Err(WalkError::NoLeaf { va, entry_pa: pa }));
        }
    }

    #[test]
    fn sv_entry_operations_in_a_table() {
        // What the mm paths do to an entry, on each format: write-protect,
        // clean, age, and the CPU's own A/D update, read back through walk.
        for f in [PtFormat::X86_64, PtFormat::Sv39, PtFormat::Sv48] {
            let mut m = PhysMem::new(64);
            let a = AddressSpace::with_format(&mut m, 1, f).unwrap();
            let va = 0x5000_1000;
            let fr = m.alloc().unwrap();
            let pa = a
                .map_prot(&mut m, va, fr, PageSize::Small, Prot::USER_RW)
                .unwrap();
            let e = m.read(pa).unwrap().value;
            m.write(pa, f.mkclean(f.wrprotect(e)), 0).unwrap();
            let leaf = a.walk(&m, va).unwrap();
            assert!(!leaf.writable, "{f:?}");
            assert!(!f.dirty(leaf.entry) && f.young(leaf.entry));
            assert_eq!(leaf.entry, f.leaf(fr, Prot::USER_RO, false));
            m.write(pa, f.mkold(leaf.entry), 0).unwrap();
            assert!(!f.young(a.walk(&m, va).unwrap().entry));
            m.write(pa, f.mkyoung(f.mkdirty(f.mkwrite(f.mkold(e)))), 0)
                .unwrap();
            assert_eq!(a.walk(&m, va).unwrap().entry, e);
            assert!(a.walk(&m, va).unwrap().writable);
        }
    }
}
