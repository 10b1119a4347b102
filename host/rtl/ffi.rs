//! Every `extern "C"` symbol of `ffi/shim.cpp`, and the `#[repr(C)]` port
//! structs it exchanges. The only other foreign items are libfst's, in
//! `host/waves/fst.rs`, which links through the same library.
//!
//! The Verilator contract the shim follows (Verilator 5.006, `verilated.h`):
//! "Construct context. Also sets Verilated::threadContextp to the created
//! context"; one `VerilatedContext` per model, created before the model and
//! destroyed after it; `traceEverOn(true)` before the first `eval` so a trace
//! can be opened later ("Turning on wave traces requires
//! Verilated::traceEverOn(true) call before time 0"); `trace()` before
//! `VerilatedVcdC::open()` ("shall not be called after
//! 'VerilatedVcdC::open()'"); increasing dump times. With
//! `fatalOnError(false)` a failed assertion sets `gotError()` instead of
//! calling `std::abort()`.
//!
//! A model may be used from one thread at a time; `sd_step` makes the
//! model's context the calling thread's context before evaluating.

use std::ffi::{c_char, c_int};
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{offset_of, size_of};

/// Number of probe slots (`probe0_*` .. `probe3_*`, docs/socket.md).
pub const NUM_PROBES: usize = 4;

/// One probe slot's inputs: `probeN_vpn_i` (36 bits), `probeN_pasid_i` (20 bits).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdProbeIn {
    pub vpn: u64,
    pub pasid: u32,
}

/// One probe slot's outputs: `probeN_iotlb_o`, `probeN_atc_o`, `probeN_xlat_o`
/// (decode with [`super::decode_probe`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdProbeOut {
    pub iotlb: u64,
    pub atc: u64,
    pub xlat: u64,
}

/// Every input port of `shootdown_top` but `clk_i`, suffix `_i` dropped
/// (`rst_ni` keeps its name). Identical to `SdIn` in `ffi/shim.h`. Values
/// wider than a port are masked to its width by `sd_step`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdIn {
    pub cfg_cq_base: u64,
    pub cfg_pasid_table: u64,
    pub iommu_mem_rsp_rdata: u64,
    pub dev_mem_rsp_rdata: u64,
    pub dev_req_va: u64,
    pub dev_req_wdata: u64,
    /// `cfg_pq_base_i`: PA of the page-request queue ring (PRI), 4 KiB
    /// aligned, 16-byte records.
    pub cfg_pq_base: u64,
    pub probes: [SdProbeIn; NUM_PROBES],
    pub cq_tail: u32,
    /// 20 bits.
    pub dev_req_pasid: u32,
    /// `cfg_ats_timeout_i`: ATS invalidation timeout in cycles; 0 = never.
    pub cfg_ats_timeout: u32,
    /// `pq_head_i`: the software-owned page-request queue head (RISC-V `pqh`).
    pub pq_head: u32,
    pub cfg_ats_latency: u16,
    /// `cfg_inject_i`: bug-injection bits (docs/socket.md, [`super::INJECT_NAMES`]);
    /// 0 is the correct design.
    pub cfg_inject: u16,
    /// `cfg_ats_cpl_delay_i`: extra cycles a switch holds Translation
    /// Completions while Invalidate Requests pass them; 0 = none.
    pub cfg_ats_cpl_delay: u16,
    pub rst_ni: u8,
    pub cfg_cq_log2n: u8,
    pub iommu_mem_req_ready: u8,
    pub iommu_mem_rsp_valid: u8,
    pub dev_mem_req_ready: u8,
    pub dev_mem_rsp_valid: u8,
    pub dev_req_valid: u8,
    pub dev_req_id: u8,
    pub dev_req_write: u8,
    /// `cq_err_clear_i`: one-cycle pulse clearing `cq_err` bits 1:0.
    pub cq_err_clear: u8,
    /// `cfg_atc_entries_i`: ATC entries in use; 0 (or at least the ATC's
    /// size) = all.
    pub cfg_atc_entries: u8,
    /// `cfg_iotlb_ways_i`: IOTLB ways in use per set; 0 (or at least the
    /// IOTLB's ways) = all.
    pub cfg_iotlb_ways: u8,
    /// `cfg_iotlb_sets_i`: IOTLB sets in use, rounded down to a power of
    /// two; 0 (or at least the IOTLB's sets) = all.
    pub cfg_iotlb_sets: u8,
    /// `cfg_ats_itags_i`: ITags in use, the device's Invalidate Queue Depth
    /// as software programmed it; 0 (or at least the build's) = all.
    pub cfg_ats_itags: u8,
    /// `cfg_pri_limit_i`: the device's PRI, the Page Requests it sends at
    /// most for one access; 0 = PRI off.
    pub cfg_pri_limit: u8,
    /// `cfg_pq_log2n_i`: log2 of the number of page-request queue records
    /// (<= 8).
    pub cfg_pq_log2n: u8,
}

/// Every output port of `shootdown_top`, suffix `_o` dropped. Identical to
/// `SdOut` in `ffi/shim.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdOut {
    pub iommu_mem_req_addr: u64,
    pub iommu_mem_req_wdata: u64,
    /// Compare-and-swap: the expected old value (`iommu_mem_req_cmp_o`).
    pub iommu_mem_req_cmp: u64,
    pub dev_mem_req_addr: u64,
    pub dev_mem_req_wdata: u64,
    pub dev_rsp_rdata: u64,
    pub dev_rsp_pa: u64,
    pub probes: [SdProbeOut; NUM_PROBES],
    pub cq_head: u32,
    /// `pq_tail_o`: the IOMMU-owned page-request queue tail (RISC-V `pqt`).
    pub pq_tail: u32,
    pub cq_err: u8,
    /// `pq_ovf_o`: sticky (until reset), a Page Request found the
    /// page-request queue full.
    pub pq_ovf: u8,
    pub iommu_mem_req_valid: u8,
    pub iommu_mem_req_write: u8,
    /// 1: compare-and-swap (`iommu_mem_req_cas_o`; write is 0 then).
    pub iommu_mem_req_cas: u8,
    pub dev_mem_req_valid: u8,
    pub dev_mem_req_write: u8,
    pub dev_mem_req_id: u8,
    pub dev_req_ready: u8,
    pub dev_rsp_valid: u8,
    pub dev_rsp_id: u8,
    pub dev_rsp_status: u8,
}

// The same numbers are static_asserts in ffi/shim.cpp (SD_IN_SIZE, ...).
const _: () = assert!(size_of::<SdProbeIn>() == 16 && size_of::<SdProbeOut>() == 24);
const _: () = assert!(size_of::<SdIn>() == 160 && offset_of!(SdIn, dev_req_write) == 150);
const _: () = assert!(offset_of!(SdIn, cfg_inject) == 138 && offset_of!(SdIn, cq_err_clear) == 151);
const _: () =
    assert!(offset_of!(SdIn, cfg_ats_cpl_delay) == 140 && offset_of!(SdIn, cfg_iotlb_ways) == 153);
const _: () =
    assert!(offset_of!(SdIn, cfg_iotlb_sets) == 154 && offset_of!(SdIn, cfg_ats_itags) == 155);
const _: () = assert!(offset_of!(SdIn, cfg_pq_base) == 48 && offset_of!(SdIn, pq_head) == 132);
const _: () =
    assert!(offset_of!(SdIn, cfg_pri_limit) == 156 && offset_of!(SdIn, cfg_pq_log2n) == 157);
const _: () = assert!(size_of::<SdOut>() == 176 && offset_of!(SdOut, dev_rsp_status) == 171);
const _: () = assert!(offset_of!(SdOut, pq_tail) == 156 && offset_of!(SdOut, pq_ovf) == 161);

/// One cover point of the build (`SdCoverInfo` in `ffi/shim.h`): static
/// NUL-terminated strings and a line number.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SdCoverInfo {
    pub hier: *const c_char,
    pub name: *const c_char,
    pub file: *const c_char,
    pub line: u32,
}

/// Opaque model handle (`struct SdModel` in the shim).
#[repr(C)]
pub struct SdModel {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// The library is built by the shootdown-model-sys crate (model/build.rs),
// which this crate does not depend on, so that an RTL edit does not
// recompile it. `-bundle`: the rlib only records the name, and the linker
// takes the library, right after this crate's code, from the search path
// that shootdown-model-sys gives whatever links an executable (its
// dependents). It holds the model, the shim, the Verilator runtime and
// libfst; the C++ standard library and zlib (for libfst) come after it.
#[link(name = "shootdown_model", kind = "static", modifiers = "-bundle")]
#[link(name = "stdc++")]
#[link(name = "pthread")]
#[link(name = "atomic")]
#[link(name = "z")]
extern "C" {
    /// New model with its own context; null if out of memory.
    pub fn sd_new() -> *mut SdModel;
    /// Closes the trace if open, runs `final`, frees. Null is ignored.
    pub fn sd_free(m: *mut SdModel);
    /// One clock cycle: inputs, rising edge (dump at c*1000 ps), outputs;
    /// c = `sd_cycle(m) + 1`.
    pub fn sd_step(m: *mut SdModel, inp: *const SdIn, out: *mut SdOut);
    /// Up to `max` cycles with `inp` held: one `sd_step`, and the other
    /// `max - 1` counted without evaluating when the model's state did not
    /// change in it and its outputs ask nothing of the host. Returns the
    /// cycles done (1 or `max`).
    pub fn sd_step_idle(m: *mut SdModel, inp: *const SdIn, out: *mut SdOut, max: u64) -> u64;
    /// 1 when `sd_step_idle` may skip cycles (the build found no model state
    /// on the heap), else 0.
    pub fn sd_idle_skip() -> c_int;
    /// A 128-bit digest of the model's whole state (cover counters left
    /// out) into `out`: 0; -1 when its state is not all in one object.
    pub fn sd_state_digest(m: *const SdModel, out: *mut u64) -> c_int;
    /// Rising edges done so far.
    pub fn sd_cycle(m: *const SdModel) -> u64;
    /// Open a VCD file (closing any open one): 0 on success, -1 on failure.
    pub fn sd_trace_open(m: *mut SdModel, path: *const c_char) -> c_int;
    /// Flush and close the VCD file, if any.
    pub fn sd_trace_close(m: *mut SdModel);
    /// Check the SystemVerilog assertions (`on` != 0, the default) or not.
    pub fn sd_set_assertions(m: *mut SdModel, on: c_int);
    /// Non-zero once an assertion, `$stop` or `$error` fired.
    pub fn sd_got_error(m: *const SdModel) -> c_int;
    /// Cycle of the first error (0 if none).
    pub fn sd_error_cycle(m: *const SdModel) -> u64;
    /// Copies the runtime's messages of the erroring cycle into `buf`
    /// (NUL-terminated, truncated to `len`); returns their full length.
    pub fn sd_error_message(m: *const SdModel, buf: *mut c_char, len: u64) -> u64;
    /// Evaluations per cycle: 1 with the assertions off when the RTL uses
    /// its clock only as `posedge clk_i` (build.rs checks), else 2 (the
    /// falling edge too).
    pub fn sd_evals_per_cycle(m: *const SdModel) -> u32;
    /// `sizeof(SdIn)` as the shim was compiled.
    pub fn sd_in_size() -> u64;
    /// `sizeof(SdOut)` as the shim was compiled.
    pub fn sd_out_size() -> u64;
    /// Number of cover points of this build (0: the RTL has none).
    pub fn sd_cover_len() -> u32;
    /// Point `i` into `*out` (static strings): 0, or -1 out of range.
    pub fn sd_cover_info(i: u32, out: *mut SdCoverInfo) -> c_int;
    /// Copies the counts of the first `min(len, sd_cover_len())` points into
    /// `counts`; returns `sd_cover_len()`.
    pub fn sd_cover_counts(m: *const SdModel, counts: *mut u64, len: u32) -> u32;
    /// Zeroes every count of the model.
    pub fn sd_cover_zero(m: *mut SdModel);
}
