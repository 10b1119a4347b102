//! Physical memory and the page tables that live in it (x86-64, or RISC-V
//! Sv39/Sv48: the address space's [`PtFormat`]).
//!
//! Both the CPU side (Rust) and the RTL (through its memory ports) read and
//! write the same [`PhysMem`], so a walk by the IOMMU sees exactly what the
//! CPU wrote at that cycle.

mod pagetable;
mod phys;

pub use pagetable::{pte, sv_pte, AddressSpace, Leaf, PageSize, Prot, PtFormat, WalkError};
pub use phys::{FrameState, MemError, Pfn, PhysMem, Word, PAGE_SHIFT, PAGE_SIZE, WORDS_PER_PAGE};
