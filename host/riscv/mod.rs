//! The RISC-V IOMMU specification (v1.0) as the host needs it to drive a
//! design built to it: register offsets and fields (chapter 5), the
//! device and process contexts and how device and process IDs index their
//! directories (chapter 2), the command queue's commands bit for bit
//! (chapter 3.1), and the Sv39/Sv48 page tables the IOMMU walks for a
//! process (the privileged architecture's virtual-memory chapter); and the
//! Linux driver's invalidation sequence in those commands (`linux`).
//!
//! Written from the specification; `tests/riscv_spec.rs` checks the
//! opcodes, command layouts and register offsets against a design built to
//! it (the third-party RISC-V IOMMU in `../shared/thirdparty/riscv-iommu`).
//!
//! The second socket (docs/socket-riscv.md) drives a design through these:
//! `model` (the Verilated design), `axi` (the AXI4 memory subordinate with
//! its protocol assertions), `machine` (the design and the host's side of
//! its ports: register manager, DMA device), `driver` (bring-up, attach,
//! Linux's flush); `crate::sim::machine` runs it as a scenario's machine.

pub mod axi;
pub mod cmd;
pub mod ctx;
pub mod driver;
pub mod linux;
pub mod machine;
pub mod model;
pub mod regs;
pub mod sv;

/// A 64-bit field `[hi:lo]` of a register or structure word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub hi: u32,
    pub lo: u32,
}

impl Field {
    pub const fn new(hi: u32, lo: u32) -> Field {
        Field { hi, lo }
    }

    /// The field's bits in place.
    pub const fn mask(self) -> u64 {
        let width = self.hi - self.lo + 1;
        let ones = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        ones << self.lo
    }

    /// `value` placed in the field; None when it does not fit.
    pub fn put(self, value: u64) -> Option<u64> {
        let shifted = value.checked_shl(self.lo)?;
        (shifted >> self.lo == value && shifted & !self.mask() == 0).then_some(shifted)
    }

    /// The field's value in `word`.
    pub const fn get(self, word: u64) -> u64 {
        (word & self.mask()) >> self.lo
    }
}

/// `PPN[53:10]`: where registers and directory entries keep a page number.
pub const PPN: Field = Field::new(53, 10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_place_check_and_read() {
        let f = Field::new(31, 12);
        assert_eq!(f.mask(), 0xffff_f000);
        assert_eq!(f.put(5), Some(5 << 12));
        assert_eq!(f.put(1 << 20), None, "21 bits in a 20-bit field");
        assert_eq!(f.get(0x1234_5678_9abc_def0), 0x9abcd);
        assert_eq!(Field::new(63, 0).mask(), u64::MAX);
        assert_eq!(Field::new(63, 60).put(0xf), Some(0xf << 60));
        assert_eq!(Field::new(63, 60).put(0x10), None);
        assert_eq!(PPN.put(1 << 43), Some(1 << 53));
        assert_eq!(PPN.put(1 << 44), None);
    }
}
