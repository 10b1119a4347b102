// C ABI of the Verilated shootdown model (rtl/shootdown_top.sv).
//
// One sd_step call is one clock cycle (docs/socket.md, "Clocking and time
// base"). SdIn / SdOut mirror every port of shootdown_top except clk_i, with
// the _i / _o suffix dropped (except rst_ni, which keeps its active-low
// name) and the four probe slots as arrays of SdProbeIn / SdProbeOut. Fields are ordered by size (8, 4, 2, 1 bytes) so the layout has
// no interior padding (SdProbeIn has 4 bytes of trailing padding, SdIn 2 and SdOut 4); host/rtl/ffi.rs declares the identical #[repr(C)]
// structs and both sides check the sizes at compile time.
//
// Values wider than their port are masked to the port width by sd_step.

#ifndef SHOOTDOWN_FFI_SHIM_H
#define SHOOTDOWN_FFI_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SD_NUM_PROBES 4

typedef struct SdProbeIn {
  uint64_t vpn;    // probeN_vpn_i, 36 bits
  uint32_t pasid;  // probeN_pasid_i, 20 bits
} SdProbeIn;       // 16 bytes (4 of them trailing padding)

typedef struct SdProbeOut {
  uint64_t iotlb;  // probeN_iotlb_o
  uint64_t atc;    // probeN_atc_o
  uint64_t xlat;   // probeN_xlat_o
} SdProbeOut;

typedef struct SdIn {
  uint64_t cfg_cq_base;
  uint64_t cfg_pasid_table;
  uint64_t iommu_mem_rsp_rdata;
  uint64_t dev_mem_rsp_rdata;
  uint64_t dev_req_va;
  uint64_t dev_req_wdata;
  uint64_t cfg_pq_base;  // page-request queue (PRI), 4 KiB aligned
  SdProbeIn probes[SD_NUM_PROBES];
  uint32_t cq_tail;
  uint32_t dev_req_pasid;  // 20 bits
  uint32_t cfg_ats_timeout;  // ATS invalidation timeout in cycles, 0 = never
  uint32_t pq_head;  // page-request queue head (software-owned)
  uint16_t cfg_ats_latency;
  uint16_t cfg_inject;  // bug injection bits (docs/socket.md), 0 = correct
  uint16_t cfg_ats_cpl_delay;  // extra Translation Completion delay, cycles; 0 = none
  uint8_t rst_ni;
  uint8_t cfg_cq_log2n;
  uint8_t iommu_mem_req_ready;
  uint8_t iommu_mem_rsp_valid;
  uint8_t dev_mem_req_ready;
  uint8_t dev_mem_rsp_valid;
  uint8_t dev_req_valid;
  uint8_t dev_req_id;
  uint8_t dev_req_write;
  uint8_t cq_err_clear;  // pulse: clear cq_err bits 1:0
  uint8_t cfg_atc_entries;  // ATC entries in use; 0 = all
  uint8_t cfg_iotlb_ways;   // IOTLB ways in use per set; 0 = all
  uint8_t cfg_iotlb_sets;   // IOTLB sets in use (rounded down to 2^k); 0 = all
  uint8_t cfg_ats_itags;    // ITags in use (Invalidate Queue Depth); 0 = all
  uint8_t cfg_pri_limit;    // the device's PRI: Page Requests per access; 0 = off
  uint8_t cfg_pq_log2n;     // log2 of the page-request queue's records (<= 8)
} SdIn;

typedef struct SdOut {
  uint64_t iommu_mem_req_addr;
  uint64_t iommu_mem_req_wdata;
  uint64_t iommu_mem_req_cmp;  // CAS expected value
  uint64_t dev_mem_req_addr;
  uint64_t dev_mem_req_wdata;
  uint64_t dev_rsp_rdata;
  uint64_t dev_rsp_pa;
  SdProbeOut probes[SD_NUM_PROBES];
  uint32_t cq_head;
  uint32_t pq_tail;  // page-request queue tail (IOMMU-owned)
  uint8_t cq_err;
  uint8_t pq_ovf;  // sticky: a Page Request found the page-request queue full
  uint8_t iommu_mem_req_valid;
  uint8_t iommu_mem_req_write;
  uint8_t iommu_mem_req_cas;
  uint8_t dev_mem_req_valid;
  uint8_t dev_mem_req_write;
  uint8_t dev_mem_req_id;
  uint8_t dev_req_ready;
  uint8_t dev_rsp_valid;
  uint8_t dev_rsp_id;
  uint8_t dev_rsp_status;
} SdOut;

// Sizes the Rust side checks against (host/rtl/ffi.rs).
#define SD_IN_SIZE 160
#define SD_OUT_SIZE 176

typedef struct SdModel SdModel;

// New model with its own VerilatedContext (random reset off: every register
// starts at zero; an assertion failure is recorded, not fatal). NULL if out
// of memory.
SdModel* sd_new(void);
// Close the trace if open, then free. NULL is ignored.
void sd_free(SdModel* m);
// One clock cycle: apply *in, clk_i=0, eval (not traced), clk_i=1, eval the
// rising edge (trace at c*1000 ps), copy the outputs into *out, where
// c = sd_cycle(m) + 1. Then sd_cycle(m) == c. With the assertions off and an
// RTL that uses clk_i only as posedge (build.rs checks), the eval at clk_i=0
// is skipped (sd_evals_per_cycle(m) is then 1).
void sd_step(SdModel* m, const SdIn* in, SdOut* out);
// Up to max clock cycles with the inputs *in held: one sd_step; when the
// model's whole state is the same after it as before, no error fired, no
// trace is open and the step's outputs ask nothing of the host (no memory
// request, no device response), the model is at a fixed point under these
// inputs and the other max - 1 cycles are counted without evaluating.
// Returns the cycles done (1 or max; 0 on null arguments).
uint64_t sd_step_idle(SdModel* m, const SdIn* in, SdOut* out, uint64_t max);
// 1 when sd_step_idle may skip cycles (build.rs found no model state on the
// heap), 0 when it always evaluates one cycle.
int sd_idle_skip(void);
// A 128-bit digest of the model's whole state (the symbol table's object),
// its cover counters left out, into out[0..2]: 0; -1 when the state is not
// all in that object (as for sd_idle_skip) and nothing can be digested.
int sd_state_digest(const SdModel* m, uint64_t out[2]);
// Rising edges done so far (0 after sd_new).
uint64_t sd_cycle(const SdModel* m);
// Open a VCD file (closing any open one); 0 on success, -1 on failure.
int sd_trace_open(SdModel* m, const char* path);
// Flush and close the VCD file; nothing if none is open.
void sd_trace_close(SdModel* m);
// Check the SystemVerilog assertions (on after sd_new) or not: off, a run
// goes on past a broken invariant (to see what the host's checker finds).
void sd_set_assertions(SdModel* m, int on);
// Non-zero once an assertion (or $stop / $error) fired.
int sd_got_error(const SdModel* m);
// Cycle in which the first error fired (0 if none).
uint64_t sd_error_cycle(const SdModel* m);
// Copy the runtime's messages printed during the erroring cycle into buf
// (NUL-terminated, truncated to len); returns the full length.
uint64_t sd_error_message(const SdModel* m, char* buf, uint64_t len);
// 1 when sd_step evaluates once per cycle, 2 when it evaluates the falling
// edge too.
uint32_t sd_evals_per_cycle(const SdModel* m);
// sizeof(SdIn), sizeof(SdOut) as compiled.
uint64_t sd_in_size(void);
uint64_t sd_out_size(void);

// Cover points (docs/socket.md, "Coverage"): the RTL's `cover` statements,
// each counting the cycles its condition held, in the model's own counters
// (one set per model). The list is the same for every model of a build
// (model/build.rs reads it from the generated code).
typedef struct SdCoverInfo {
  const char* hier;  // instance path from the top: "shootdown_top.u_iommu.u_cmdq.X_C"
  const char* name;  // the statement's label: "X_C"
  const char* file;  // the source file, as verilated
  uint32_t line;     // its line there
} SdCoverInfo;       // strings are static

// Number of cover points of this build (0: the RTL has none).
uint32_t sd_cover_len(void);
// Point i (0 .. sd_cover_len()-1) into *out; 0 on success, -1 out of range.
int sd_cover_info(uint32_t i, SdCoverInfo* out);
// Copy the counts of the first min(len, sd_cover_len()) points into counts
// (by index); returns sd_cover_len().
uint32_t sd_cover_counts(const SdModel* m, uint64_t* counts, uint32_t len);
// Zero every count of the model.
void sd_cover_zero(SdModel* m);

#ifdef __cplusplus
}
#endif

#endif  // SHOOTDOWN_FFI_SHIM_H
