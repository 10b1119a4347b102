// Thin C ABI over the second socket's model, Vshootdown_rv
// (socket-riscv/shootdown_rv_top.sv, docs/socket-riscv.md). Mirrored by
// host/rtl/rv_ffi.rs: keep the two identical.
//
// One clock cycle is two calls: sd_rv_settle applies the host's inputs
// while the clock is low and returns the outputs they settle to (an AXI
// ready or valid may depend on the other side's signals in the same
// cycle), then sd_rv_edge runs the rising edge, at which every handshake
// the host saw in the settled outputs takes place.
#ifndef SHOOTDOWN_RV_SHIM_H
#define SHOOTDOWN_RV_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// An AXI4 port's manager-driven signals (AW, W, AR, and B/R ready).
typedef struct SdAxiM {
    uint64_t awaddr;
    uint64_t wdata;
    uint64_t araddr;
    uint8_t awid, awlen, awsize, awburst, awprot, awvalid;
    uint8_t wstrb, wlast, wvalid, bready;
    uint8_t arid, arlen, arsize, arburst, arprot, arvalid, rready;
    uint8_t pad[7];
} SdAxiM;

// An AXI4 port's subordinate-driven signals (AW/W/AR ready, B, R).
typedef struct SdAxiS {
    uint64_t rdata;
    uint8_t awready, wready, bid, bresp, bvalid, arready, rid, rresp, rlast, rvalid;
    uint8_t pad[6];
} SdAxiS;

// The inputs of shootdown_rv_top but clk_i.
typedef struct SdRvIn {
    SdAxiM reg;  // the host programs registers (subordinate port)
    SdAxiS mem;  // the host's memory answers the IOMMU (manager port)
    SdAxiM tr;   // the device's untranslated requests
    SdAxiS tx;   // the host's memory answers translated requests
    uint32_t tr_awsid, tr_awssid, tr_arsid, tr_arssid;
    uint8_t rst_n, tr_awssidv, tr_arssidv;
    uint8_t pad[5];
    uint64_t probe_vpn[4];     // probeN_vpn_i (27 bits)
    uint32_t probe_pscid[4];   // probeN_pscid_i (20 bits)
    uint32_t probe_did;        // probe_did_i (the design's device-ID width)
    uint32_t probe_pid;        // probe_pid_i (20 bits)
} SdRvIn;

// The outputs of shootdown_rv_top.
typedef struct SdRvOut {
    SdAxiS reg;
    SdAxiM mem;
    SdAxiS tr;
    SdAxiM tx;
    uint8_t wsi;
    uint8_t pad[7];
    uint64_t probe_iotlb[4];   // probeN_iotlb_o
    uint64_t probe_pdtc;       // probe_pdtc_o
    uint64_t probe_ddtc;       // probe_ddtc_o
} SdRvOut;

typedef struct SdRvModel SdRvModel;

// 1 when this build has a design in the socket, else 0 (then sd_rv_new
// returns null).
int sd_rv_present(void);
// New model with its own context, clock low, reset asserted; null without
// a design or out of memory.
SdRvModel* sd_rv_new(void);
// Closes the trace if open, runs `final`, frees. Null is ignored.
void sd_rv_free(SdRvModel* m);
// Apply `in` with the clock low and evaluate; `out` gets the settled
// outputs. Dumped at c*1000-500 ps, c = sd_rv_cycle(m) + 1.
void sd_rv_settle(SdRvModel* m, const SdRvIn* in, SdRvOut* out);
// Rising edge c = sd_rv_cycle(m) + 1 (dumped at c*1000 ps).
void sd_rv_edge(SdRvModel* m);
// Rising edges done so far.
uint64_t sd_rv_cycle(const SdRvModel* m);
// Open a VCD file (closing any open one): 0, or -1 on failure.
int sd_rv_trace_open(SdRvModel* m, const char* path);
// Flush and close the VCD file, if any.
void sd_rv_trace_close(SdRvModel* m);
// Non-zero once `$error`, `$fatal` or `$stop` ran in the design.
int sd_rv_got_error(const SdRvModel* m);
// The digest of the design's whole state (ffi/sd_digest.h) into out[0..2]:
// 0, or -1 when this build cannot digest it (no design, or state on the
// heap).
int sd_rv_state_digest(const SdRvModel* m, uint64_t out[2]);
// sizeof(SdRvIn), sizeof(SdRvOut) as compiled.
uint64_t sd_rv_in_size(void);
uint64_t sd_rv_out_size(void);

#ifdef __cplusplus
}
#endif

#endif
