// IOMMU: IOTLB + page-table walker (with a paging-structure cache) + command
// queue + ATS Translation Request server + PRI page-request queue writer,
// one memory port.
//
// Memory port arbitration (one outstanding request): IOFENCE.C write >
// page-request queue write > command fetch > walker (page-table reads and
// the leaf's A/D compare-and-swap). The queue writer takes the next Page
// Request from the up link only when its record is written, and a Page
// Request waiting there holds the Invalidate Completions behind it (which
// an IOFENCE.C may wait for), so its two writes go before the command
// fetch and the walker; it writes two words per Page Request and the device
// has one outstanding at a time, so it cannot starve them.
// ATS link towards the device: Invalidate Requests (command queue) first,
// then PRG Responses (the command queue's ATS.PRGR, then the queue writer's
// automatic one for a full queue), then Translation Completions (request
// server); all travel in one ordered stream (which a switch in the top may
// reorder: shootdown_top's completion delay lets Invalidate Requests and
// PRG Responses, posted Messages, pass Completions).
// ATS link from the device: Invalidate Completions are always taken; a
// Translation Request is taken when the request server is idle, a Page
// Request when the queue writer is idle.

module iommu
  import shootdown_pkg::*;
#(
  parameter int unsigned IotlbSets = 16,
  parameter int unsigned IotlbWays = 4,
  parameter int unsigned PscEntries = 4,  // walker's paging-structure cache
  parameter int unsigned AtsInvQDepth = 8 // the device's Invalidate Queue Depth (ITags in use)
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  // configuration
  input  logic [63:0]                 cfg_cq_base_i,
  input  logic [7:0]                  cfg_cq_log2n_i,
  input  logic [63:0]                 cfg_pasid_table_i,
  input  logic [31:0]                 cfg_ats_timeout_i,  // cycles, 0 = never
  input  logic [7:0]                  cfg_iotlb_ways_i,   // IOTLB ways in use, 0 = all
  input  logic [7:0]                  cfg_iotlb_sets_i,   // IOTLB sets in use, 0 = all
  input  logic [7:0]                  cfg_ats_itags_i,    // ITags in use (Invalidate Queue Depth), 0 = all
  input  logic [63:0]                 cfg_pq_base_i,      // page-request queue
  input  logic [7:0]                  cfg_pq_log2n_i,
  input  inject_t                     inject_i,  // bug injection (shootdown_pkg Inj*)
  // registers
  input  logic [31:0]                 cq_tail_i,
  output logic [31:0]                 cq_head_o,
  output logic [7:0]                  cq_err_o,
  input  logic                        cq_err_clear_i,
  input  logic [31:0]                 pq_head_i,
  output logic [31:0]                 pq_tail_o,
  output logic                        pq_ovf_o,
  // memory port
  output logic                        mem_req_valid_o,
  input  logic                        mem_req_ready_i,
  output logic                        mem_req_write_o,
  output logic [63:0]                 mem_req_addr_o,
  output logic [63:0]                 mem_req_wdata_o,
  output logic                        mem_req_cas_o,
  output logic [63:0]                 mem_req_cmp_o,
  input  logic                        mem_rsp_valid_i,
  input  logic [63:0]                 mem_rsp_rdata_i,
  // ATS link towards the device
  output logic                        dn_valid_o,
  input  logic                        dn_ready_i,
  output dn_msg_t                     dn_msg_o,
  // ATS link from the device
  input  logic                        up_valid_i,
  output logic                        up_ready_o,
  input  up_msg_t                     up_msg_i,
  // debug probes
  input  pasid_t [NumProbes-1:0]      probe_pasid_i,
  input  vpn_t   [NumProbes-1:0]      probe_vpn_i,
  output logic   [NumProbes-1:0][63:0] probe_iotlb_o,
  // translation in flight in the request server (walk result or IOTLB hit
  // not yet sent)
  output logic                        xlat_valid_o,
  output pasid_t                      xlat_pasid_o,
  output vpn_t                        xlat_vpn_o,
  output xlat_t                       xlat_o
);

  localparam int unsigned PortFence = 0;
  localparam int unsigned PortPq    = 1;
  localparam int unsigned PortFetch = 2;
  localparam int unsigned PortWalk  = 3;
  localparam int unsigned NumPorts  = 4;

  // memory arbiter
  logic [NumPorts-1:0]       arb_req_valid;
  logic [NumPorts-1:0]       arb_req_write;
  logic [NumPorts-1:0][63:0] arb_req_addr;
  logic [NumPorts-1:0][63:0] arb_req_wdata;
  logic [NumPorts-1:0]       arb_req_cas;
  logic [NumPorts-1:0][63:0] arb_req_cmp;
  logic [NumPorts-1:0]       arb_gnt;
  logic [NumPorts-1:0]       arb_rsp_valid;
  logic [63:0]               arb_rsp_rdata;

  // IOTINVAL.VMA
  logic   inval_valid;
  logic   inval_av;
  logic   inval_pv;
  pasid_t inval_pasid;
  vpn_t   inval_vpn;
  log2n_t inval_log2n;

  // ATS Invalidate Request / Completion
  logic   inv_req_valid;
  logic   inv_req_ready;
  itag_t  inv_req_itag;
  logic   inv_req_pv;
  pasid_t inv_req_pasid;
  vpn_t   inv_req_vpn;
  log2n_t inv_req_log2n;
  logic   inv_cpl_valid;

  // IOTLB
  pasid_t  lookup_pasid;
  vpn_t    lookup_vpn;
  lookup_t lookup;
  logic    fill_valid;
  pasid_t  fill_pasid;
  vpn_t    fill_vpn;
  xlat_t   fill_xlat;

  // walker
  logic   walk_start;
  pasid_t walk_pasid;
  vpn_t   walk_vpn;
  logic   walk_write;
  logic   walk_idle;
  logic   walk_done;
  xlat_t  walk_result;

  // Translation Request / Completion
  logic   tr_valid;
  logic   tr_ready;
  logic   cpl_valid;
  logic   cpl_ready;
  id_t    cpl_tag;
  pasid_t cpl_pasid;
  vpn_t   cpl_vpn;
  xlat_t  cpl_xlat;

  // PRI: Page Request, PRG Responses (ATS.PRGR; the queue writer's for a
  // full queue)
  logic      pr_valid;
  logic      pr_ready;
  logic      prgr_valid;
  logic      prgr_ready;
  id_t       prgr_tag;
  logic      prgr_pv;
  pasid_t    prgr_pasid;
  prg_code_t prgr_code;
  logic      pq_rsp_valid;
  logic      pq_rsp_ready;
  id_t       pq_rsp_tag;
  pasid_t    pq_rsp_pasid;

  cmdq #(
    .AtsInvQDepth (AtsInvQDepth)
  ) u_cmdq (
    .clk_i,
    .rst_ni,
    .cfg_cq_base_i,
    .cfg_cq_log2n_i,
    .cfg_ats_timeout_i,
    .cfg_ats_itags_i,
    .inject_i,
    .cq_tail_i,
    .cq_head_o,
    .cq_err_o,
    .cq_err_clear_i,
    .fetch_req_valid_o (arb_req_valid[PortFetch]),
    .fetch_req_addr_o  (arb_req_addr[PortFetch]),
    .fetch_gnt_i       (arb_gnt[PortFetch]),
    .fetch_rsp_valid_i (arb_rsp_valid[PortFetch]),
    .fetch_rsp_rdata_i (arb_rsp_rdata),
    .fence_req_valid_o (arb_req_valid[PortFence]),
    .fence_req_addr_o  (arb_req_addr[PortFence]),
    .fence_req_wdata_o (arb_req_wdata[PortFence]),
    .fence_gnt_i       (arb_gnt[PortFence]),
    .fence_rsp_valid_i (arb_rsp_valid[PortFence]),
    .inval_valid_o     (inval_valid),
    .inval_av_o        (inval_av),
    .inval_pv_o        (inval_pv),
    .inval_pasid_o     (inval_pasid),
    .inval_vpn_o       (inval_vpn),
    .inval_log2n_o     (inval_log2n),
    .inv_req_valid_o   (inv_req_valid),
    .inv_req_ready_i   (inv_req_ready),
    .inv_req_itag_o    (inv_req_itag),
    .inv_req_pv_o      (inv_req_pv),
    .inv_req_pasid_o   (inv_req_pasid),
    .inv_req_vpn_o     (inv_req_vpn),
    .inv_req_log2n_o   (inv_req_log2n),
    .inv_cpl_valid_i   (inv_cpl_valid),
    .inv_cpl_itag_i    (up_msg_i.itag),
    .prg_valid_o       (prgr_valid),
    .prg_ready_i       (prgr_ready),
    .prg_tag_o         (prgr_tag),
    .prg_pv_o          (prgr_pv),
    .prg_pasid_o       (prgr_pasid),
    .prg_code_o        (prgr_code)
  );

  prq u_prq (
    .clk_i,
    .rst_ni,
    .cfg_pq_base_i,
    .cfg_pq_log2n_i,
    .pq_head_i,
    .pq_tail_o,
    .pq_ovf_o,
    .pr_valid_i      (pr_valid),
    .pr_ready_o      (pr_ready),
    .pr_tag_i        (up_msg_i.tag),
    .pr_pasid_i      (up_msg_i.pasid),
    .pr_vpn_i        (up_msg_i.vpn),
    .pr_write_i      (up_msg_i.write),
    .mem_req_valid_o (arb_req_valid[PortPq]),
    .mem_req_addr_o  (arb_req_addr[PortPq]),
    .mem_req_wdata_o (arb_req_wdata[PortPq]),
    .mem_gnt_i       (arb_gnt[PortPq]),
    .mem_rsp_valid_i (arb_rsp_valid[PortPq]),
    .rsp_valid_o     (pq_rsp_valid),
    .rsp_ready_i     (pq_rsp_ready),
    .rsp_tag_o       (pq_rsp_tag),
    .rsp_pasid_o     (pq_rsp_pasid)
  );

  assign arb_req_write[PortFence] = 1'b1;
  assign arb_req_write[PortPq]    = 1'b1;
  assign arb_req_write[PortFetch] = 1'b0;
  assign arb_req_write[PortWalk]  = 1'b0;
  assign arb_req_wdata[PortFetch] = '0;
  assign arb_req_cas[PortFence]   = 1'b0;
  assign arb_req_cas[PortPq]      = 1'b0;
  assign arb_req_cas[PortFetch]   = 1'b0;
  assign arb_req_cmp[PortFence]   = '0;
  assign arb_req_cmp[PortPq]      = '0;
  assign arb_req_cmp[PortFetch]   = '0;

  mem_arb #(
    .N (NumPorts)
  ) u_mem_arb (
    .clk_i,
    .rst_ni,
    .req_valid_i     (arb_req_valid),
    .req_write_i     (arb_req_write),
    .req_addr_i      (arb_req_addr),
    .req_wdata_i     (arb_req_wdata),
    .req_cas_i       (arb_req_cas),
    .req_cmp_i       (arb_req_cmp),
    .gnt_o           (arb_gnt),
    .rsp_valid_o     (arb_rsp_valid),
    .rsp_rdata_o     (arb_rsp_rdata),
    .mem_req_valid_o,
    .mem_req_ready_i,
    .mem_req_write_o,
    .mem_req_addr_o,
    .mem_req_wdata_o,
    .mem_req_cas_o,
    .mem_req_cmp_o,
    .mem_rsp_valid_i,
    .mem_rsp_rdata_i
  );

  iotlb #(
    .Sets (IotlbSets),
    .Ways (IotlbWays)
  ) u_iotlb (
    .clk_i,
    .rst_ni,
    .inject_i,
    .cfg_ways_i     (cfg_iotlb_ways_i),
    .cfg_sets_i     (cfg_iotlb_sets_i),
    .lookup_pasid_i (lookup_pasid),
    .lookup_vpn_i   (lookup_vpn),
    .lookup_o       (lookup),
    .fill_valid_i   (fill_valid),
    .fill_pasid_i   (fill_pasid),
    .fill_vpn_i     (fill_vpn),
    .fill_xlat_i    (fill_xlat),
    .inval_valid_i  (inval_valid),
    .inval_av_i     (inval_av),
    .inval_pv_i     (inval_pv),
    .inval_pasid_i  (inval_pasid),
    .inval_vpn_i    (inval_vpn),
    .inval_log2n_i  (inval_log2n),
    .probe_pasid_i,
    .probe_vpn_i,
    .probe_o        (probe_iotlb_o)
  );

  ptw #(
    .PscEntries (PscEntries)
  ) u_ptw (
    .clk_i,
    .rst_ni,
    .cfg_pasid_table_i,
    .inject_i,
    .inval_valid_i   (inval_valid),
    .inval_pv_i      (inval_pv),
    .inval_pasid_i   (inval_pasid),
    .start_i         (walk_start),
    .pasid_i         (walk_pasid),
    .vpn_i           (walk_vpn),
    .write_i         (walk_write),
    .idle_o          (walk_idle),
    .done_o          (walk_done),
    .result_o        (walk_result),
    .mem_req_valid_o (arb_req_valid[PortWalk]),
    .mem_req_addr_o  (arb_req_addr[PortWalk]),
    .mem_req_cas_o   (arb_req_cas[PortWalk]),
    .mem_req_cmp_o   (arb_req_cmp[PortWalk]),
    .mem_req_wdata_o (arb_req_wdata[PortWalk]),
    .mem_gnt_i       (arb_gnt[PortWalk]),
    .mem_rsp_valid_i (arb_rsp_valid[PortWalk]),
    .mem_rsp_rdata_i (arb_rsp_rdata)
  );

  tr_server u_tr_server (
    .clk_i,
    .rst_ni,
    .inject_i,
    .tr_valid_i     (tr_valid),
    .tr_ready_o     (tr_ready),
    .tr_tag_i       (up_msg_i.tag),
    .tr_pasid_i     (up_msg_i.pasid),
    .tr_vpn_i       (up_msg_i.vpn),
    .tr_write_i     (up_msg_i.write),
    .lookup_pasid_o (lookup_pasid),
    .lookup_vpn_o   (lookup_vpn),
    .lookup_i       (lookup),
    .fill_valid_o   (fill_valid),
    .fill_pasid_o   (fill_pasid),
    .fill_vpn_o     (fill_vpn),
    .fill_xlat_o    (fill_xlat),
    .walk_start_o   (walk_start),
    .walk_pasid_o   (walk_pasid),
    .walk_vpn_o     (walk_vpn),
    .walk_write_o   (walk_write),
    .walk_idle_i    (walk_idle),
    .walk_done_i    (walk_done),
    .walk_result_i  (walk_result),
    .inval_valid_i  (inval_valid),
    .inval_av_i     (inval_av),
    .inval_pv_i     (inval_pv),
    .inval_pasid_i  (inval_pasid),
    .inval_vpn_i    (inval_vpn),
    .inval_log2n_i  (inval_log2n),
    .cpl_valid_o    (cpl_valid),
    .cpl_ready_i    (cpl_ready),
    .cpl_tag_o      (cpl_tag),
    .cpl_pasid_o    (cpl_pasid),
    .cpl_vpn_o      (cpl_vpn),
    .cpl_xlat_o     (cpl_xlat)
  );

  // ---------------------------------------------------------------------------
  // ATS link towards the device: Invalidate Requests first, then PRG
  // Responses (ATS.PRGR, then the queue writer's), then Translation
  // Completions
  // ---------------------------------------------------------------------------
  always_comb begin : comb_dn_mux
    dn_msg_o = '0;
    if (inv_req_valid) begin
      dn_msg_o.kind  = DnInvReq;
      dn_msg_o.itag  = inv_req_itag;
      dn_msg_o.pv    = inv_req_pv;
      dn_msg_o.pasid = inv_req_pasid;
      dn_msg_o.vpn   = inv_req_vpn;
      dn_msg_o.log2n = inv_req_log2n;
    end else if (prgr_valid) begin
      dn_msg_o.kind  = DnPrgResp;
      dn_msg_o.tag   = prgr_tag;
      dn_msg_o.pv    = prgr_pv;
      dn_msg_o.pasid = prgr_pasid;
      dn_msg_o.code  = prgr_code;
    end else if (pq_rsp_valid) begin
      dn_msg_o.kind  = DnPrgResp;
      dn_msg_o.tag   = pq_rsp_tag;
      dn_msg_o.pv    = 1'b1;
      dn_msg_o.pasid = pq_rsp_pasid;
      dn_msg_o.code  = PrgSuccess;
    end else begin
      dn_msg_o.kind  = DnTransCpl;
      dn_msg_o.tag   = cpl_tag;
      dn_msg_o.pasid = cpl_pasid;
      dn_msg_o.vpn   = cpl_vpn;
      dn_msg_o.xlat  = cpl_xlat;
    end
  end

  assign dn_valid_o    = inv_req_valid || prgr_valid || pq_rsp_valid || cpl_valid;
  assign inv_req_ready = dn_ready_i;
  // the command queue offers an Invalidate Request or a PRG Response, never
  // both (one command executes at a time)
  assign prgr_ready    = dn_ready_i;
  assign pq_rsp_ready  = dn_ready_i && !inv_req_valid && !prgr_valid;
  assign cpl_ready     = dn_ready_i && !inv_req_valid && !prgr_valid && !pq_rsp_valid;

  // ---------------------------------------------------------------------------
  // ATS link from the device
  // ---------------------------------------------------------------------------
  assign inv_cpl_valid = up_valid_i && (up_msg_i.kind == UpInvCpl);
  assign tr_valid      = up_valid_i && (up_msg_i.kind == UpTransReq);
  assign pr_valid      = up_valid_i && (up_msg_i.kind == UpPageReq);

  always_comb begin : comb_up_ready
    unique case (up_msg_i.kind)
      UpTransReq: up_ready_o = tr_ready;
      UpPageReq:  up_ready_o = pr_ready;
      default:    up_ready_o = 1'b1;  // Invalidate Completion
    endcase
  end

  // The command queue offers one message at a time (prgr_ready relies on it).
  CmdqOneDnMsg_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    !(inv_req_valid && prgr_valid));

  // the in-flight translation for the xlat probes
  assign xlat_valid_o = cpl_valid;
  assign xlat_pasid_o = cpl_pasid;
  assign xlat_vpn_o   = cpl_vpn;
  assign xlat_o       = cpl_xlat;

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage"): the step of a page-table walk
  // when a change of the walked translation by the CPU becomes visible to
  // the IOMMU, seen only through the ports of the walker and the request
  // server. The IOMMU does not see CPU stores: a store between the walker's
  // read of the leaf and its A/D compare-and-swap makes the CAS find another
  // value (and the walk restart); the kernel's IOTINVAL.VMA after a store
  // lands in some step of a walk of that page. The state is theirs only.
  // ---------------------------------------------------------------------------
  typedef enum logic [1:0] {
    CovWalkNone,
    CovWalkRead,  // a walker read (PASID entry .. leaf) granted, not answered
    CovWalkCas    // the walker's CAS granted, not answered
  } cov_walk_e;

  cov_walk_e cov_wpend_q;
  logic      cov_walked_q;  // the request being served started a walk
  logic      cov_walk_read;
  logic      cov_walk_cas;
  logic      cov_inval_walked;  // an IOTINVAL.VMA names the page being served

  assign cov_walk_read = (arb_req_valid[PortWalk] && !arb_req_cas[PortWalk]) ||
                         (cov_wpend_q == CovWalkRead);
  assign cov_walk_cas  = (arb_req_valid[PortWalk] && arb_req_cas[PortWalk]) ||
                         (cov_wpend_q == CovWalkCas);

  // as tr_server matches it for a 4 KiB or 2 MiB result: the range overlaps
  // the page's 2 MiB region (not the wider match of a 1 GiB result)
  always_comb begin : comb_cov_inval_walked
    cov_inval_walked = 1'b0;
    if (inval_valid && !tr_ready) begin
      cov_inval_walked = (!inval_pv || inval_pasid == cpl_pasid) &&
                         (!inval_av || blocks_overlap(inval_vpn, inval_log2n, cpl_vpn,
                                                      log2n_t'(Log2Pages2M)));
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_cov_state
    if (!rst_ni) begin
      cov_wpend_q  <= CovWalkNone;
      cov_walked_q <= 1'b0;
    end else begin
      if (arb_gnt[PortWalk]) begin
        cov_wpend_q <= arb_req_cas[PortWalk] ? CovWalkCas : CovWalkRead;
      end else if (arb_rsp_valid[PortWalk]) begin
        cov_wpend_q <= CovWalkNone;
      end
      if (walk_start) begin
        cov_walked_q <= 1'b1;
      end else if (tr_ready) begin
        cov_walked_q <= 1'b0;
      end
    end
  end

  // immediate covers under the group's event: a cycle without one costs a test
  always_ff @(posedge clk_i) begin : ff_cov_walk
    if (rst_ni && cov_inval_walked) begin
      // walk_race: walker step x an IOTINVAL.VMA naming the walked page: a
      // read or the A/D CAS outstanding, the cycle the result comes back
      // (the fill is dropped), after the fill with the Translation
      // Completion not yet sent
      WalkReadInval_C: cover (cov_walk_read);
      WalkCasInval_C: cover (cov_walk_cas);
      WalkFillInval_C: cover (walk_done);
      WalkSendInval_C: cover (cpl_valid && cov_walked_q);
    end
    if (rst_ni && arb_rsp_valid[PortWalk] && cov_wpend_q == CovWalkCas) begin
      // walk_race: the CAS finds another value: the CPU wrote the leaf
      // between the walker's read and its CAS (the walk restarts)
      WalkCasLost_C: cover (arb_rsp_rdata != arb_req_cmp[PortWalk]);
    end
  end

endmodule
