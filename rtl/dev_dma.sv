// DMA engine of the ATS device: one request at a time.
//
//   ATC hit with permission  -> one memory access with the translated PA
//                               (dev_mem_req_id = request id) -> response ok
//   ATC miss                 -> Translation Request, wait for the Completion;
//                               if an Invalidate Request overlapping the page
//                               arrived meanwhile, discard the Completion and
//                               ask again (PCIe ATS device rule 3); else
//                               install it (only if R) and use it. The size
//                               of the Completion is unknown until it comes,
//                               so "the page" is conservative: the 2 MiB
//                               region of the requested page for a 4 KiB or
//                               2 MiB Completion, its 1 GiB region for a
//                               1 GiB one
//   write, ATC hit with R but no W -> Translation Request with write=1
//                               (NW=0), as for a miss; its Completion is
//                               installed over the read-only entry
//   no permission (R=0, or a write whose Completion has no W)
//                            -> PRI off (cfg_pri_limit_i = 0): response
//                               status 1, no access
//                            -> PRI on (N > 0): a PCIe Page Request (PRG
//                               Index = the request id, PASID, page, W =
//                               write; R and Last always) and wait for the
//                               PRG Response with that PRG Index (and the
//                               PASID, if it carries one): Success -> ask
//                               again (Translation Request); another code ->
//                               status 1. After N Page Requests answered
//                               Success, a Completion that still does not
//                               grant the access ends it with status 2 (gave
//                               up). The count starts at 0 for each access.
//
// Translation Requests carry the request's write flag: NW = !write, so a
// read never makes the IOMMU set the page's Dirty bit.
//
// For the invalidation drain (PCIe ATS device rule 2) inflight_hit_o says
// whether the Invalidate Request offered this cycle overlaps a translation
// used by the access in flight (lookup done, memory response not back), and
// acc_done_o marks the cycle that access finishes.

module dev_dma
  import shootdown_pkg::*;
(
  input  logic        clk_i,
  input  logic        rst_ni,
  input  inject_t     inject_i,  // bug injection (shootdown_pkg Inj*)
  input  logic [7:0]  cfg_pri_limit_i,  // Page Requests per access; 0 = PRI off
  // device request (head of the request FIFO)
  input  logic        req_valid_i,
  output logic        req_ready_o,
  input  id_t         req_id_i,
  input  logic        req_write_i,
  input  pasid_t      req_pasid_i,
  input  logic [63:0] req_va_i,
  input  logic [63:0] req_wdata_i,
  // ATC lookup and install
  output pasid_t      atc_pasid_o,
  output vpn_t        atc_vpn_o,
  input  lookup_t     atc_lookup_i,
  output logic        atc_fill_valid_o,
  output xlat_t       atc_fill_xlat_o,
  // ATS Translation Request
  output logic        tr_valid_o,
  input  logic        tr_ready_i,
  output id_t         tr_tag_o,
  output pasid_t      tr_pasid_o,
  output vpn_t        tr_vpn_o,
  output logic        tr_write_o,
  // PRI Page Request (the same tag, PASID, page and write as tr_*)
  output logic        pr_valid_o,
  input  logic        pr_ready_i,
  // ATS Translation Completion
  input  logic        cpl_valid_i,
  output logic        cpl_ready_o,
  input  id_t         cpl_tag_i,
  input  xlat_t       cpl_xlat_i,
  // PRI PRG Response taken this cycle (the device always takes one)
  input  logic        prg_valid_i,
  input  id_t         prg_tag_i,
  input  logic        prg_pv_i,
  input  pasid_t      prg_pasid_i,
  input  prg_code_t   prg_code_i,
  // ATS Invalidate Request taken this cycle
  input  logic        inv_valid_i,
  input  logic        inv_pv_i,
  input  pasid_t      inv_pasid_i,
  input  vpn_t        inv_vpn_i,
  input  log2n_t      inv_log2n_i,
  output logic        inflight_hit_o,
  output logic        acc_done_o,
  // memory port
  output logic        mem_req_valid_o,
  input  logic        mem_req_ready_i,
  output logic        mem_req_write_o,
  output logic [63:0] mem_req_addr_o,
  output logic [63:0] mem_req_wdata_o,
  output id_t         mem_req_id_o,
  input  logic        mem_rsp_valid_i,
  input  logic [63:0] mem_rsp_rdata_i,
  // response
  output logic        rsp_valid_o,
  output id_t         rsp_id_o,
  output logic [1:0]  rsp_status_o,
  output logic [63:0] rsp_rdata_o,
  output logic [63:0] rsp_pa_o
);

  typedef enum logic [3:0] {
    StIdle,     // waiting for a request
    StLookup,   // ATC lookup
    StTrReq,    // send the Translation Request
    StTrWait,   // wait for the Translation Completion
    StMemReq,   // memory request
    StMemRsp,   // wait for the memory response
    StResp,     // response to the host
    StPrReq,    // PRI: send the Page Request
    StPrWait    // PRI: wait for the PRG Response
  } state_e;

  localparam logic [1:0] StatusOk     = 2'd0;
  localparam logic [1:0] StatusFault  = 2'd1;
  localparam logic [1:0] StatusGaveUp = 2'd2;  // PRI: cfg_pri_limit_i Page Requests did not help

  state_e      state_d, state_q;
  id_t         id_d, id_q;
  logic        write_d, write_q;
  pasid_t      pasid_d, pasid_q;
  logic [63:0] va_d, va_q;
  logic [63:0] wdata_d, wdata_q;
  pgsz_e       size_d, size_q;      // size of the translation the access uses
  logic [63:0] pa_d, pa_q;
  logic [63:0] rdata_d, rdata_q;
  logic [1:0]  status_d, status_q;
  // an Invalidate Request overlapping the requested page's 2 MiB region
  // (retry) or 1 GiB region (retry_1g) overtook the Translation Request
  logic        retry_d, retry_q;
  logic        retry_1g_d, retry_1g_q;
  logic [7:0]  pri_cnt_d, pri_cnt_q;  // Page Requests sent for this access

  vpn_t        vpn;
  logic        inv_pasid_hit;
  logic        prg_match;  // the PRG Response answers the Page Request this access waits on
  logic        overtaken;  // the Completion offered was overtaken: discard it

  assign prg_match = prg_valid_i && (state_q == StPrWait) && (prg_tag_i == id_q) &&
                     (!prg_pv_i || prg_pasid_i == pasid_q);

  assign vpn           = va_q[12 +: VpnW];
  assign inv_pasid_hit = inv_valid_i && (!inv_pv_i || inv_pasid_i == pasid_q);
  // by the region the Completion may cover: its 1 GiB region for a 1 GiB
  // Completion, its 2 MiB region for the others
  assign overtaken     = (cpl_xlat_i.size == Pg1G) ? retry_1g_q : retry_q;

  // A 52-bit PA: the page's base PPN above the page offset (12, 21 or 30
  // bits of the VA).
  function automatic logic [63:0] phys_addr(xlat_t x, logic [63:0] va);
    if (x.size == Pg1G) begin
      return {12'd0, x.ppn[PpnW-1:Log2Pages1G], va[29:0]};
    end
    return (x.size == Pg2M) ? {12'd0, x.ppn[PpnW-1:Log2Pages2M], va[20:0]}
                            : {12'd0, x.ppn, va[11:0]};
  endfunction

  function automatic logic allowed(xlat_t x, logic write);
    return x.r && (!write || x.w);
  endfunction

  assign req_ready_o      = (state_q == StIdle);
  assign atc_pasid_o      = pasid_q;
  assign atc_vpn_o        = vpn;
  assign atc_fill_xlat_o  = cpl_xlat_i;
  assign tr_valid_o       = (state_q == StTrReq);
  assign tr_tag_o         = id_q;
  assign tr_pasid_o       = pasid_q;
  assign tr_vpn_o         = vpn;
  assign tr_write_o       = write_q;
  assign pr_valid_o       = (state_q == StPrReq);
  assign cpl_ready_o      = (state_q == StTrWait);
  assign mem_req_valid_o  = (state_q == StMemReq);
  assign mem_req_write_o  = write_q;
  assign mem_req_addr_o   = pa_q;
  assign mem_req_wdata_o  = wdata_q;
  assign mem_req_id_o     = id_q;
  assign rsp_valid_o      = (state_q == StResp);
  assign rsp_id_o         = id_q;
  assign rsp_status_o     = status_q;
  assign rsp_rdata_o      = rdata_q;
  assign rsp_pa_o         = pa_q;
  assign acc_done_o       = (state_q == StMemRsp) && mem_rsp_valid_i;

  // Does the Invalidate Request overlap the translation of the access in
  // flight? In StLookup an ATC hit with permission becomes an access at this
  // very edge (a hit without it becomes a fault or a Translation Request).
  always_comb begin : comb_inflight
    inflight_hit_o = 1'b0;
    if (state_q == StMemReq || state_q == StMemRsp) begin
      inflight_hit_o = inv_pasid_hit &&
                       blocks_overlap(vpn, xlat_log2n(size_q), inv_vpn_i, inv_log2n_i);
    end else if (state_q == StLookup && atc_lookup_i.hit && allowed(atc_lookup_i.xlat, write_q))
    begin
      inflight_hit_o = inv_pasid_hit &&
                       blocks_overlap(vpn, xlat_log2n(atc_lookup_i.xlat.size),
                                      inv_vpn_i, inv_log2n_i);
    end
  end

  always_comb begin : comb_next
    state_d          = state_q;
    id_d             = id_q;
    write_d          = write_q;
    pasid_d          = pasid_q;
    va_d             = va_q;
    wdata_d          = wdata_q;
    size_d           = size_q;
    pa_d             = pa_q;
    rdata_d          = rdata_q;
    status_d         = status_q;
    retry_d          = retry_q;
    retry_1g_d       = retry_1g_q;
    pri_cnt_d        = pri_cnt_q;
    atc_fill_valid_o = 1'b0;

    unique case (state_q)
      StIdle: begin
        if (req_valid_i) begin
          id_d      = req_id_i;
          write_d   = req_write_i;
          pasid_d   = req_pasid_i;
          va_d      = req_va_i;
          wdata_d   = req_wdata_i;
          pa_d      = '0;
          rdata_d   = '0;
          pri_cnt_d = '0;
          state_d   = StLookup;
        end
      end
      StLookup: begin
        if (!atc_lookup_i.hit || (write_q && atc_lookup_i.xlat.r && !atc_lookup_i.xlat.w)) begin
          state_d = StTrReq;  // miss, or a write to a read-only entry: ask with NW=0
        end else if (allowed(atc_lookup_i.xlat, write_q)) begin
          size_d  = atc_lookup_i.xlat.size;
          pa_d    = phys_addr(atc_lookup_i.xlat, va_q);
          state_d = StMemReq;
        end else begin
          status_d = StatusFault;
          state_d  = StResp;
        end
      end
      StTrReq: begin
        if (tr_ready_i) begin
          retry_d    = 1'b0;
          retry_1g_d = 1'b0;
          state_d    = StTrWait;
        end
      end
      StTrWait: begin
        // conservative: any page of the 2 MiB (1 GiB) region of the
        // requested page, which a 2 MiB (1 GiB) Completion may cover
        if (inv_pasid_hit &&
            blocks_overlap(vpn, log2n_t'(Log2Pages2M), inv_vpn_i, inv_log2n_i)) begin
          retry_d = 1'b1;
        end
        if (inv_pasid_hit &&
            blocks_overlap(vpn, log2n_t'(Log2Pages1G), inv_vpn_i, inv_log2n_i)) begin
          retry_1g_d = 1'b1;
        end
        if (cpl_valid_i) begin
          // InjCacheRacingCpl (bug injection): install and use the
          // overtaken Completion instead of discarding it.
          if (overtaken && !inject_i[InjCacheRacingCpl]) begin
            state_d = StTrReq;  // discard, ask again
          end else begin
            atc_fill_valid_o = cpl_xlat_i.r;
            if (allowed(cpl_xlat_i, write_q)) begin
              size_d  = cpl_xlat_i.size;
              pa_d    = phys_addr(cpl_xlat_i, va_q);
              state_d = StMemReq;
            end else if (cfg_pri_limit_i == '0) begin
              status_d = StatusFault;  // PRI off
              state_d  = StResp;
            end else if (pri_cnt_q < cfg_pri_limit_i) begin
              state_d = StPrReq;  // ask the host to make the page present
            end else begin
              status_d = StatusGaveUp;
              state_d  = StResp;
            end
          end
        end
      end
      StPrReq: begin
        if (pr_ready_i) begin
          pri_cnt_d = pri_cnt_q + 8'd1;
          state_d   = StPrWait;
        end
      end
      StPrWait: begin
        // an Invalidate Request needs nothing here: no translation is held
        if (prg_match) begin
          if (prg_code_i == PrgSuccess) begin
            state_d = StTrReq;  // ask for the translation again
          end else begin
            status_d = StatusFault;
            state_d  = StResp;
          end
        end
      end
      StMemReq: begin
        if (mem_req_ready_i) begin
          state_d = StMemRsp;
        end
      end
      StMemRsp: begin
        if (mem_rsp_valid_i) begin
          rdata_d  = write_q ? '0 : mem_rsp_rdata_i;
          status_d = StatusOk;
          state_d  = StResp;
        end
      end
      StResp: begin
        status_d = StatusOk;
        state_d  = StIdle;
      end
      default: begin
        state_d = StIdle;
      end
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      state_q    <= StIdle;
      id_q       <= '0;
      write_q    <= 1'b0;
      pasid_q    <= '0;
      va_q       <= '0;
      wdata_q    <= '0;
      size_q     <= Pg4K;
      pa_q       <= '0;
      rdata_q    <= '0;
      status_q   <= StatusOk;
      retry_q    <= 1'b0;
      retry_1g_q <= 1'b0;
      pri_cnt_q  <= '0;
    end else begin
      state_q    <= state_d;
      id_q       <= id_d;
      write_q    <= write_d;
      pasid_q    <= pasid_d;
      va_q       <= va_d;
      wdata_q    <= wdata_d;
      size_q     <= size_d;
      pa_q       <= pa_d;
      rdata_q    <= rdata_d;
      status_q   <= status_d;
      retry_q    <= retry_d;
      retry_1g_q <= retry_1g_d;
      pri_cnt_q  <= pri_cnt_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // A Translation Completion answers the outstanding Translation Request.
  CplMatchesReq_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    cpl_valid_i |-> (state_q == StTrWait && cpl_tag_i == id_q));
  // One outstanding memory request: a response only while waiting for one.
  MemRspExpected_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    mem_rsp_valid_i |-> state_q == StMemRsp);
  // PCIe ATS device rule 3: a Translation Completion that an overlapping
  // Invalidate Request overtook (overtaken: one of the page's 2 MiB region,
  // of its 1 GiB region for a 1 GiB Completion) is discarded: not installed
  // in the ATC, not used for the access (nor for a fault), and the page is
  // asked for again.
  RacingCplDiscarded_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (cpl_valid_i && overtaken) |-> (!atc_fill_valid_o && state_d == StTrReq));
  // PRI: only the PRG Response for the Page Request this access sent (its
  // PRG Index, and its PASID if the response carries one) ends the wait.
  PrgRspMatches_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (state_q == StPrWait && state_d != StPrWait) |-> prg_match);
  // PRI: at most cfg_pri_limit_i Page Requests per access, none with PRI off.
  PriBounded_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    pr_valid_o |-> (pri_cnt_q < cfg_pri_limit_i));

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage")
  // ---------------------------------------------------------------------------
  // dev_race: a Translation Completion that an overlapping Invalidate Request
  // overtook arrives (and is discarded: the page is asked for again), for a
  // read and for a write; an Invalidate Request for another page arrives
  // while a Translation Request is outstanding (a near miss: outside the
  // page's 2 MiB region, though a 1 GiB Completion may still be discarded
  // for it); an Invalidate Request overlaps a translation an access in
  // flight uses (its Invalidate Completion waits for the access: PCIe ATS
  // device rule 2).
  logic cov_tr_inv_other;

  always_comb begin : comb_cov_tr_inv_other
    cov_tr_inv_other = 1'b0;
    if (state_q == StTrWait && inv_valid_i) begin
      cov_tr_inv_other = !(inv_pasid_hit &&
                           blocks_overlap(vpn, log2n_t'(Log2Pages2M), inv_vpn_i, inv_log2n_i));
    end
  end

  // immediate covers under their events: a cycle without one costs a test
  always_ff @(posedge clk_i) begin : ff_cov
    if (rst_ni && cpl_valid_i && overtaken) begin
      CplOvertakenRead_C: cover (!write_q);
      CplOvertakenWrite_C: cover (write_q);
    end
    if (rst_ni && inv_valid_i) begin
      InvOtherDuringTr_C: cover (cov_tr_inv_other);
      InvDrainsAccess_C: cover (inflight_hit_o);
    end
    // pri: a PRG Response taken by the access waiting for it, Success or
    // another code (Invalid Request, Response Failure); an access that gave
    // up (status 2: its Page Requests were answered Success, the page still
    // not granted)
    if (rst_ni && prg_match) begin
      PrgRspSuccess_C: cover (prg_code_i == PrgSuccess);
      PrgRspFail_C: cover (prg_code_i != PrgSuccess);
    end
    if (rst_ni && rsp_valid_o) begin
      PriGaveUp_C: cover (rsp_status_o == StatusGaveUp);
    end
  end

endmodule
