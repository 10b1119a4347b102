// Thin C ABI over the Verilated model Vshootdown (see shim.h).
//
// Verilator contract followed here (Verilator 5.006, verilated.h):
// - each model gets its own VerilatedContext, created before the model and
//   destroyed after it; traceEverOn(true) must be set before the first eval
//   for a trace to be opened later;
// - Vshootdown::trace() must be called before VerilatedVcdC::open(), once per
//   VerilatedVcdC; dump times must increase;
// - runtime errors ($stop, failed assertions) go through
//   Verilated::threadContextp(); with fatalOnError(false) they set gotError()
//   instead of calling std::abort().

#include "shim.h"

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "Vshootdown.h"
#ifdef SD_CLK_PREV
#include "Vshootdown___024root.h"
#endif
#include "verilated.h"
#include "verilated_vcd_c.h"

static_assert(sizeof(SdIn) == SD_IN_SIZE, "SdIn layout changed: update SD_IN_SIZE and ffi.rs");
static_assert(sizeof(SdOut) == SD_OUT_SIZE, "SdOut layout changed: update SD_OUT_SIZE and ffi.rs");
static_assert(sizeof(SdProbeIn) == 16 && sizeof(SdProbeOut) == 24, "probe layout changed");
static_assert(offsetof(SdIn, cfg_inject) == 126, "SdIn layout changed");
static_assert(offsetof(SdIn, cfg_ats_cpl_delay) == 128, "SdIn layout changed");
static_assert(offsetof(SdIn, dev_req_write) == 138, "SdIn layout changed");
static_assert(offsetof(SdIn, cq_err_clear) == 139, "SdIn layout changed");
static_assert(offsetof(SdIn, cfg_iotlb_ways) == 141, "SdIn layout changed");
static_assert(offsetof(SdIn, cfg_iotlb_sets) == 142, "SdIn layout changed");
static_assert(offsetof(SdIn, cfg_ats_itags) == 143, "SdIn layout changed");
static_assert(offsetof(SdOut, dev_rsp_status) == 166, "SdOut layout changed");

struct SdModel {
    // Declaration order matters: members are destroyed bottom-up, so the
    // trace goes before the model and the model before its context.
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vshootdown> top;
    std::unique_ptr<VerilatedVcdC> vcd;
    uint64_t cycle = 0;
    uint64_t error_cycle = 0;
    bool two_evals = true;      // evaluate the falling edge too (see sd_step)
    bool error = false;
    std::string step_messages;  // runtime output during the current step
    std::string error_message;  // runtime output of the first erroring step
};

namespace {

// Buffer of the model being stepped on this thread, for sd_vl_printf.
thread_local std::string* t_capture = nullptr;
constexpr size_t kMaxCapture = 4096;

constexpr uint64_t kPsPerCycle = 1000;
constexpr uint64_t kHalfCycle = 500;
constexpr uint32_t kMask20 = (1u << 20) - 1;
constexpr uint64_t kMask36 = (uint64_t{1} << 36) - 1;

}  // namespace

extern "C" int sd_vl_printf(const char* fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    const int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    std::string text;
    if (n >= 0 && static_cast<size_t>(n) >= sizeof(small)) {
        text.resize(static_cast<size_t>(n) + 1);
        vsnprintf(&text[0], text.size(), fmt, ap2);
        text.resize(static_cast<size_t>(n));
    } else if (n >= 0) {
        text = small;
    }
    va_end(ap2);
    // Inside sd_step the text goes to the model's buffer only: an error
    // reaches the host through sd_error_message (and from there its error
    // report), so a sweep of failing runs does not flood stderr.
    if (!t_capture) {
        fputs(text.c_str(), stderr);
    } else if (t_capture->size() < kMaxCapture) {
        t_capture->append(text);
    }
    return n;
}

extern "C" SdModel* sd_new(void) {
    SdModel* m = new (std::nothrow) SdModel;
    if (!m) return nullptr;
    try {
        m->ctx.reset(new VerilatedContext);
        // The model is single-threaded: no thread pool (Verilator 5 makes
        // one with a worker per extra hardware thread otherwise), so a
        // process running it is single-threaded and may fork (explore).
        m->ctx->threads(1);
        m->ctx->randReset(0);          // every register starts at zero
        m->ctx->fatalOnError(false);   // an assertion sets gotError, no abort
        m->ctx->traceEverOn(true);     // allow sd_trace_open later
        m->top.reset(new Vshootdown{m->ctx.get(), "TOP"});
        m->top->clk_i = 0;
        m->top->rst_ni = 0;
        m->top->eval();
    } catch (...) {
        delete m;
        return nullptr;
    }
    return m;
}

extern "C" void sd_trace_close(SdModel* m) {
    if (!m || !m->vcd) return;
    m->vcd->close();
    m->vcd.reset();
}

extern "C" void sd_free(SdModel* m) {
    if (!m) return;
    // Verilator 5.006 erases a model's scopes through the *thread's* context
    // (VerilatedScope::~VerilatedScope), so it must be this model's: with
    // several models per thread, or a model dropped on another thread, the
    // thread's context may be another model's or one already deleted.
    Verilated::threadContextp(m->ctx.get());
    sd_trace_close(m);
    if (m->top) m->top->final();
    delete m;
    // Leave no dangling context behind; the next call sets its own.
    Verilated::threadContextp(nullptr);
}

extern "C" void sd_set_assertions(SdModel* m, int on) {
    if (!m) return;
    m->ctx->assertOn(on != 0);
#ifdef SD_CLK_PREV
    m->two_evals = on != 0;
#endif
}

extern "C" int sd_trace_open(SdModel* m, const char* path) {
    if (!m || !path) return -1;
    Verilated::threadContextp(m->ctx.get());
    sd_trace_close(m);
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

extern "C" void sd_step(SdModel* m, const SdIn* in, SdOut* out) {
    if (!m || !in || !out) return;
    Vshootdown* const t = m->top.get();
    VerilatedContext* const ctx = m->ctx.get();
    const uint64_t c = m->cycle + 1;

    // Errors are reported through the thread's context: make it this model's.
    if (Verilated::threadContextp() != ctx) Verilated::threadContextp(ctx);
    if (!m->step_messages.empty()) m->step_messages.clear();
    t_capture = &m->step_messages;

    t->rst_ni = in->rst_ni & 1;
    t->cfg_cq_base_i = in->cfg_cq_base;
    t->cfg_cq_log2n_i = in->cfg_cq_log2n;
    t->cfg_pasid_table_i = in->cfg_pasid_table;
    t->cfg_ats_latency_i = in->cfg_ats_latency;
    t->cfg_inject_i = in->cfg_inject;
    t->cfg_ats_timeout_i = in->cfg_ats_timeout;
    t->cfg_ats_cpl_delay_i = in->cfg_ats_cpl_delay;
    t->cfg_atc_entries_i = in->cfg_atc_entries;
    t->cfg_iotlb_ways_i = in->cfg_iotlb_ways;
    t->cfg_iotlb_sets_i = in->cfg_iotlb_sets;
    t->cfg_ats_itags_i = in->cfg_ats_itags;
    t->cq_err_clear_i = in->cq_err_clear & 1;
    t->cq_tail_i = in->cq_tail;
    t->iommu_mem_req_ready_i = in->iommu_mem_req_ready & 1;
    t->iommu_mem_rsp_valid_i = in->iommu_mem_rsp_valid & 1;
    t->iommu_mem_rsp_rdata_i = in->iommu_mem_rsp_rdata;
    t->dev_mem_req_ready_i = in->dev_mem_req_ready & 1;
    t->dev_mem_rsp_valid_i = in->dev_mem_rsp_valid & 1;
    t->dev_mem_rsp_rdata_i = in->dev_mem_rsp_rdata;
    t->dev_req_valid_i = in->dev_req_valid & 1;
    t->dev_req_id_i = in->dev_req_id;
    t->dev_req_write_i = in->dev_req_write & 1;
    t->dev_req_pasid_i = in->dev_req_pasid & kMask20;
    t->dev_req_va_i = in->dev_req_va;
    t->dev_req_wdata_i = in->dev_req_wdata;
    t->probe0_pasid_i = in->probes[0].pasid & kMask20;
    t->probe0_vpn_i = in->probes[0].vpn & kMask36;
    t->probe1_pasid_i = in->probes[1].pasid & kMask20;
    t->probe1_vpn_i = in->probes[1].vpn & kMask36;
    t->probe2_pasid_i = in->probes[2].pasid & kMask20;
    t->probe2_vpn_i = in->probes[2].vpn & kMask36;
    t->probe3_pasid_i = in->probes[3].pasid & kMask20;
    t->probe3_vpn_i = in->probes[3].vpn & kMask36;

    // Rising edge c. A Verilator 5 model sees a rising edge when clk_i is 1
    // and was 0 at its previous eval (the trigger's "previous value", kept in
    // the model), so the classic loop evaluates clk_i = 0 first. That eval
    // runs no edge-triggered logic; it settles the logic fed by the new
    // inputs, which only matters for the assertions: they sample the values
    // before the edge. So with the assertions off, and when build.rs found
    // that the RTL uses clk_i only as `posedge clk_i` (no falling-edge logic,
    // no clock read as data), the previous value is set to 0 instead: one
    // eval per cycle. Either way one dump per cycle, at the rising edge.
#ifdef SD_CLK_PREV
    if (!m->two_evals) {
        t->rootp->SD_CLK_PREV = 0;
    } else
#endif
    {
        t->clk_i = 0;
        ctx->time(c * kPsPerCycle - kHalfCycle);
        t->eval();
    }
    t->clk_i = 1;
    ctx->time(c * kPsPerCycle);
    t->eval();
    if (m->vcd) m->vcd->dump(c * kPsPerCycle);

    out->cq_head = t->cq_head_o;
    out->cq_err = t->cq_err_o;
    out->iommu_mem_req_valid = t->iommu_mem_req_valid_o;
    out->iommu_mem_req_write = t->iommu_mem_req_write_o;
    out->iommu_mem_req_addr = t->iommu_mem_req_addr_o;
    out->iommu_mem_req_wdata = t->iommu_mem_req_wdata_o;
    out->iommu_mem_req_cas = t->iommu_mem_req_cas_o;
    out->iommu_mem_req_cmp = t->iommu_mem_req_cmp_o;
    out->dev_mem_req_valid = t->dev_mem_req_valid_o;
    out->dev_mem_req_write = t->dev_mem_req_write_o;
    out->dev_mem_req_addr = t->dev_mem_req_addr_o;
    out->dev_mem_req_wdata = t->dev_mem_req_wdata_o;
    out->dev_mem_req_id = t->dev_mem_req_id_o;
    out->dev_req_ready = t->dev_req_ready_o;
    out->dev_rsp_valid = t->dev_rsp_valid_o;
    out->dev_rsp_id = t->dev_rsp_id_o;
    out->dev_rsp_status = t->dev_rsp_status_o;
    out->dev_rsp_rdata = t->dev_rsp_rdata_o;
    out->dev_rsp_pa = t->dev_rsp_pa_o;
    out->probes[0].iotlb = t->probe0_iotlb_o;
    out->probes[1].iotlb = t->probe1_iotlb_o;
    out->probes[2].iotlb = t->probe2_iotlb_o;
    out->probes[3].iotlb = t->probe3_iotlb_o;
    out->probes[0].atc = t->probe0_atc_o;
    out->probes[1].atc = t->probe1_atc_o;
    out->probes[2].atc = t->probe2_atc_o;
    out->probes[3].atc = t->probe3_atc_o;
    out->probes[0].xlat = t->probe0_xlat_o;
    out->probes[1].xlat = t->probe1_xlat_o;
    out->probes[2].xlat = t->probe2_xlat_o;
    out->probes[3].xlat = t->probe3_xlat_o;

    t_capture = nullptr;
    m->cycle = c;
    if (!m->error && ctx->gotError()) {
        m->error = true;
        m->error_cycle = c;
        m->error_message = m->step_messages;
    }
}

extern "C" uint64_t sd_cycle(const SdModel* m) { return m ? m->cycle : 0; }

extern "C" int sd_got_error(const SdModel* m) { return (m && m->error) ? 1 : 0; }

extern "C" uint64_t sd_error_cycle(const SdModel* m) { return m ? m->error_cycle : 0; }

extern "C" uint64_t sd_error_message(const SdModel* m, char* buf, uint64_t len) {
    if (!m) return 0;
    const std::string& msg = m->error_message;
    if (buf && len > 0) {
        const size_t n = msg.size() < len - 1 ? msg.size() : static_cast<size_t>(len - 1);
        msg.copy(buf, n);
        buf[n] = '\0';
    }
    return msg.size();
}

extern "C" uint32_t sd_evals_per_cycle(const SdModel* m) {
    return (m && !m->two_evals) ? 1 : 2;
}

extern "C" uint64_t sd_in_size(void) { return sizeof(SdIn); }

extern "C" uint64_t sd_out_size(void) { return sizeof(SdOut); }
