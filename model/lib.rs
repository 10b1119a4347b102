//! The Verilated shootdown model as a native library, and nothing else.
//!
//! The build script (`build.rs`) verilates `rtl/`, overlaid with
//! `$SHOOTDOWN_RTL` and with the top-level parameters of
//! `$SHOOTDOWN_PARAMS`, and compiles it with `ffi/shim.cpp` and the
//! Verilator runtime. The `extern "C"` items are declared, and the
//! libraries named, in the `shootdown` library (`host/rtl/ffi.rs`), which
//! does not depend on this crate: cargo recompiles every dependent of a
//! package whose build script ran again, and an RTL edit should only
//! relink. Depend on this crate from whatever links an executable with
//! `shootdown` (its binary, tests and benches) so that the linker finds the
//! libraries.

/// The `SHOOTDOWN_RTL` overlay this model was verilated with, as an
/// absolute path; empty for the bundled `rtl/` (docs/socket.md, "Bring your
/// own RTL").
pub const RTL_OVERLAY: &str = env!("SHOOTDOWN_RTL_OVERLAY");

/// The `*.sv` / `*.vlt` file names the overlay supplied, space separated;
/// empty without an overlay.
pub const RTL_OVERLAY_FILES: &str = env!("SHOOTDOWN_RTL_OVERLAY_FILES");

/// The RISC-V IOMMU design verilated into the second socket
/// (docs/socket-riscv.md), as an absolute path; empty when this build has
/// none (`SHOOTDOWN_RTL_RISCV=off`, or no design found).
pub const RTL_RISCV: &str = env!("SHOOTDOWN_RTL_RISCV_DIR");
