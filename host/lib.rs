//! shootdown: Linux mm paths in Rust against a Verilated IOMMU and ATS device.
pub mod checker;
pub mod coverage;
pub mod explore;
pub mod iommu;
pub mod mem;
pub mod mm;
pub mod mutants;
pub mod report;
pub mod riscv;
pub mod rtl;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod waves;
