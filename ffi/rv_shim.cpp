// Thin C ABI over the second socket's model (see rv_shim.h). Compiled with
// SD_RV_PRESENT when model/build.rs verilated a design into it; without
// one every function reports the model absent.
//
// Verilator contract as in shim.cpp: one VerilatedContext per model,
// created before it and made the thread's context before every eval;
// traceEverOn(true) before the first eval; trace() before open();
// increasing dump times; fatalOnError(false).

#include "rv_shim.h"

#include <cstddef>

static_assert(sizeof(SdAxiM) == 48 && sizeof(SdAxiS) == 24, "AXI port layout changed: update rv_ffi.rs");
static_assert(sizeof(SdRvIn) == 224 && sizeof(SdRvOut) == 200, "port layout changed: update model.rs");
static_assert(offsetof(SdRvIn, rst_n) == 160, "SdRvIn layout changed");

extern "C" uint64_t sd_rv_in_size(void) { return sizeof(SdRvIn); }
extern "C" uint64_t sd_rv_out_size(void) { return sizeof(SdRvOut); }

#ifndef SD_RV_PRESENT

extern "C" int sd_rv_present(void) { return 0; }
extern "C" SdRvModel* sd_rv_new(void) { return nullptr; }
extern "C" void sd_rv_free(SdRvModel*) {}
extern "C" void sd_rv_settle(SdRvModel*, const SdRvIn*, SdRvOut*) {}
extern "C" void sd_rv_edge(SdRvModel*) {}
extern "C" uint64_t sd_rv_cycle(const SdRvModel*) { return 0; }
extern "C" int sd_rv_trace_open(SdRvModel*, const char*) { return -1; }
extern "C" void sd_rv_trace_close(SdRvModel*) {}
extern "C" int sd_rv_got_error(const SdRvModel*) { return 0; }
extern "C" int sd_rv_state_digest(const SdRvModel*, uint64_t*) { return -1; }

#else

#include <memory>
#include <new>

#include "Vshootdown_rv.h"
#include "Vshootdown_rv__Syms.h"
#include "Vshootdown_rv___024root.h"
#include "sd_digest.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

struct SdRvModel {
    // destroyed bottom-up: the trace, then the model, then its context
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vshootdown_rv> top;
    std::unique_ptr<VerilatedVcdC> vcd;
    uint64_t cycle = 0;
};

namespace {

constexpr uint64_t kPsPerCycle = 1000;
constexpr uint64_t kHalfCycle = 500;
constexpr uint32_t kMask24 = (1u << 24) - 1;
constexpr uint32_t kMask20 = (1u << 20) - 1;
constexpr uint64_t kMask27 = (uint64_t{1} << 27) - 1;

void make_current(const SdRvModel* m) {
    if (Verilated::threadContextp() != m->ctx.get()) Verilated::threadContextp(m->ctx.get());
}

}  // namespace

// The manager-driven signals of port `p` from `s` (an SdAxiM), each masked
// to its width (IDs: `idm`).
#define SD_RV_SET_M(t, p, s, idm)                 \
    do {                                          \
        t->p##_awid = (s).awid & (idm);           \
        t->p##_awaddr = (s).awaddr;               \
        t->p##_awlen = (s).awlen;                 \
        t->p##_awsize = (s).awsize & 7;           \
        t->p##_awburst = (s).awburst & 3;         \
        t->p##_awprot = (s).awprot & 7;           \
        t->p##_awvalid = (s).awvalid & 1;         \
        t->p##_wdata = (s).wdata;                 \
        t->p##_wstrb = (s).wstrb;                 \
        t->p##_wlast = (s).wlast & 1;             \
        t->p##_wvalid = (s).wvalid & 1;           \
        t->p##_bready = (s).bready & 1;           \
        t->p##_arid = (s).arid & (idm);           \
        t->p##_araddr = (s).araddr;               \
        t->p##_arlen = (s).arlen;                 \
        t->p##_arsize = (s).arsize & 7;           \
        t->p##_arburst = (s).arburst & 3;         \
        t->p##_arprot = (s).arprot & 7;           \
        t->p##_arvalid = (s).arvalid & 1;         \
        t->p##_rready = (s).rready & 1;           \
    } while (0)

// The subordinate-driven signals of port `p` from `s` (an SdAxiS).
#define SD_RV_SET_S(t, p, s, idm)                 \
    do {                                          \
        t->p##_awready = (s).awready & 1;         \
        t->p##_wready = (s).wready & 1;           \
        t->p##_bid = (s).bid & (idm);             \
        t->p##_bresp = (s).bresp & 3;             \
        t->p##_bvalid = (s).bvalid & 1;           \
        t->p##_arready = (s).arready & 1;         \
        t->p##_rid = (s).rid & (idm);             \
        t->p##_rdata = (s).rdata;                 \
        t->p##_rresp = (s).rresp & 3;             \
        t->p##_rlast = (s).rlast & 1;             \
        t->p##_rvalid = (s).rvalid & 1;           \
    } while (0)

#define SD_RV_GET_M(t, p, s)                      \
    do {                                          \
        (s).awid = t->p##_awid;                   \
        (s).awaddr = t->p##_awaddr;               \
        (s).awlen = t->p##_awlen;                 \
        (s).awsize = t->p##_awsize;               \
        (s).awburst = t->p##_awburst;             \
        (s).awprot = t->p##_awprot;               \
        (s).awvalid = t->p##_awvalid;             \
        (s).wdata = t->p##_wdata;                 \
        (s).wstrb = t->p##_wstrb;                 \
        (s).wlast = t->p##_wlast;                 \
        (s).wvalid = t->p##_wvalid;               \
        (s).bready = t->p##_bready;               \
        (s).arid = t->p##_arid;                   \
        (s).araddr = t->p##_araddr;               \
        (s).arlen = t->p##_arlen;                 \
        (s).arsize = t->p##_arsize;               \
        (s).arburst = t->p##_arburst;             \
        (s).arprot = t->p##_arprot;               \
        (s).arvalid = t->p##_arvalid;             \
        (s).rready = t->p##_rready;               \
    } while (0)

#define SD_RV_GET_S(t, p, s)                      \
    do {                                          \
        (s).awready = t->p##_awready;             \
        (s).wready = t->p##_wready;               \
        (s).bid = t->p##_bid;                     \
        (s).bresp = t->p##_bresp;                 \
        (s).bvalid = t->p##_bvalid;               \
        (s).arready = t->p##_arready;             \
        (s).rid = t->p##_rid;                     \
        (s).rdata = t->p##_rdata;                 \
        (s).rresp = t->p##_rresp;                 \
        (s).rlast = t->p##_rlast;                 \
        (s).rvalid = t->p##_rvalid;               \
    } while (0)

extern "C" int sd_rv_present(void) { return 1; }

extern "C" SdRvModel* sd_rv_new(void) {
    SdRvModel* m = new (std::nothrow) SdRvModel;
    if (!m) return nullptr;
    try {
        m->ctx.reset(new VerilatedContext);
        m->ctx->threads(1);
        m->ctx->randReset(0);
        m->ctx->fatalOnError(false);
        m->ctx->traceEverOn(true);
        make_current(m);
        m->top.reset(new Vshootdown_rv{m->ctx.get(), "TOP"});
        m->top->clk_i = 0;
        m->top->rst_ni = 0;
        m->top->eval();
    } catch (...) {
        delete m;
        return nullptr;
    }
    return m;
}

extern "C" void sd_rv_trace_close(SdRvModel* m) {
    if (!m || !m->vcd) return;
    m->vcd->close();
    m->vcd.reset();
}

extern "C" void sd_rv_free(SdRvModel* m) {
    if (!m) return;
    Verilated::threadContextp(m->ctx.get());
    sd_rv_trace_close(m);
    if (m->top) m->top->final();
    delete m;
    Verilated::threadContextp(nullptr);
}

extern "C" int sd_rv_trace_open(SdRvModel* m, const char* path) {
    if (!m || !path) return -1;
    make_current(m);
    sd_rv_trace_close(m);
    try {
        m->vcd.reset(new VerilatedVcdC);
        m->top->trace(m->vcd.get(), 99);
        m->vcd->open(path);
        if (!m->vcd->isOpen()) {
            m->vcd.reset();
            return -1;
        }
    } catch (...) {
        m->vcd.reset();
        return -1;
    }
    return 0;
}

extern "C" void sd_rv_settle(SdRvModel* m, const SdRvIn* in, SdRvOut* out) {
    if (!m || !in || !out) return;
    Vshootdown_rv* const t = m->top.get();
    make_current(m);
    t->rst_ni = in->rst_n & 1;
    SD_RV_SET_M(t, reg, in->reg, 0x3f);
    SD_RV_SET_S(t, mem, in->mem, 0xf);
    SD_RV_SET_M(t, tr, in->tr, 0xf);
    t->tr_awsid = in->tr_awsid & kMask24;
    t->tr_awssidv = in->tr_awssidv & 1;
    t->tr_awssid = in->tr_awssid & kMask20;
    t->tr_arsid = in->tr_arsid & kMask24;
    t->tr_arssidv = in->tr_arssidv & 1;
    t->tr_arssid = in->tr_arssid & kMask20;
    SD_RV_SET_S(t, tx, in->tx, 0xf);
    t->probe0_vpn_i = in->probe_vpn[0] & kMask27;
    t->probe1_vpn_i = in->probe_vpn[1] & kMask27;
    t->probe2_vpn_i = in->probe_vpn[2] & kMask27;
    t->probe3_vpn_i = in->probe_vpn[3] & kMask27;
    t->probe0_pscid_i = in->probe_pscid[0] & kMask20;
    t->probe1_pscid_i = in->probe_pscid[1] & kMask20;
    t->probe2_pscid_i = in->probe_pscid[2] & kMask20;
    t->probe3_pscid_i = in->probe_pscid[3] & kMask20;
    t->probe_did_i = in->probe_did & kMask24;
    t->probe_pid_i = in->probe_pid & kMask20;
    const uint64_t c = m->cycle + 1;
    t->clk_i = 0;
    m->ctx->time(c * kPsPerCycle - kHalfCycle);
    t->eval();
    if (m->vcd) m->vcd->dump(c * kPsPerCycle - kHalfCycle);
    SD_RV_GET_S(t, reg, out->reg);
    SD_RV_GET_M(t, mem, out->mem);
    SD_RV_GET_S(t, tr, out->tr);
    SD_RV_GET_M(t, tx, out->tx);
    out->wsi = t->wsi_o;
    out->probe_iotlb[0] = t->probe0_iotlb_o;
    out->probe_iotlb[1] = t->probe1_iotlb_o;
    out->probe_iotlb[2] = t->probe2_iotlb_o;
    out->probe_iotlb[3] = t->probe3_iotlb_o;
    out->probe_pdtc = t->probe_pdtc_o;
    out->probe_ddtc = t->probe_ddtc_o;
}

extern "C" void sd_rv_edge(SdRvModel* m) {
    if (!m) return;
    make_current(m);
    const uint64_t c = ++m->cycle;
    m->top->clk_i = 1;
    m->ctx->time(c * kPsPerCycle);
    m->top->eval();
    if (m->vcd) m->vcd->dump(c * kPsPerCycle);
}

extern "C" uint64_t sd_rv_cycle(const SdRvModel* m) { return m ? m->cycle : 0; }

extern "C" int sd_rv_got_error(const SdRvModel* m) { return m && m->ctx->gotError() ? 1 : 0; }

extern "C" int sd_rv_state_digest(const SdRvModel* m, uint64_t out[2]) {
#ifdef SD_RV_DIGEST
    if (!m || !out) return -1;
    const auto* syms = m->top->rootp->vlSymsp;
    SdDigest d;
    d.feed(reinterpret_cast<const unsigned char*>(syms), 0, sizeof(*syms));
    return d.put(out);
#else
    (void)m;
    (void)out;
    return -1;
#endif
}

#endif
