// The Verilator-only top of shootdown: fixes the parameters and flattens every
// port for the C ABI of ffi/shim.cpp. The port list is docs/socket.md.
//
//   iommu --dn link (TransCpl, InvReq, PrgResp)--+---------------------------> ats_dev
//                                                +--cpl delay link (TransCpl)-->
//   iommu <--up link (TransReq, InvCpl, PageReq)-- ats_dev
//
// The completion delay (cfg_ats_cpl_delay_i, 0 = off) models a PCIe switch
// between the IOMMU and the device that holds Translation Completions for
// extra cycles (short of completion credits) while Invalidate Requests and
// PRG Responses, posted Messages, pass them, as the PCIe ordering rules
// allow (a posted request may pass a completion). With the delay on, a
// Translation Completion leaving the dn link enters a second link of that
// latency; an Invalidate Request or a PRG Response goes straight to the
// device and, offered in the same cycle as a delayed Completion, goes first.
// With the delay 0 the dn link feeds the device directly: one ordered
// stream.
//
// Configuration and probe inputs are registered here, so no output depends
// combinationally on an input (docs/socket.md: outputs are Moore). The probe
// words read after rising edge c answer the probe inputs applied for cycle c
// (captured at that edge), looked up in the state after that edge: what a
// combinational probe sampled after the edge would show, evaluated once per
// cycle instead of at every input change.

module shootdown_top
  import shootdown_pkg::*;
#(
  parameter int unsigned IotlbSets  = 16,
  parameter int unsigned IotlbWays  = 4,
  parameter int unsigned AtcEntries = 8,
  // The device's ATS Invalidate Queue Depth: the IOMMU keeps at most this
  // many Invalidate Requests outstanding (its ITag pool), the device queues
  // as many.
  parameter int unsigned AtsInvQDepth = 8,
  parameter int unsigned LinkDepth  = 64  // >= 32 ITags + 1 Translation Completion
) (
  input  logic        clk_i,
  input  logic        rst_ni,
  // configuration (held constant after reset)
  input  logic [63:0] cfg_cq_base_i,
  input  logic [7:0]  cfg_cq_log2n_i,
  input  logic [63:0] cfg_pasid_table_i,
  input  logic [15:0] cfg_ats_latency_i,
  input  logic [15:0] cfg_inject_i,         // bug injection, 0 = correct (shootdown_pkg Inj*)
  input  logic [31:0] cfg_ats_timeout_i,    // ATS invalidation timeout, cycles; 0 = never
  input  logic [15:0] cfg_ats_cpl_delay_i,  // extra Translation Completion delay; 0 = none
  input  logic [7:0]  cfg_atc_entries_i,    // ATC entries in use; 0 or >= AtcEntries: all
  input  logic [7:0]  cfg_iotlb_ways_i,     // IOTLB ways per set in use; 0 or >= IotlbWays: all
  input  logic [7:0]  cfg_iotlb_sets_i,     // IOTLB sets in use (2^k); 0 or >= IotlbSets: all
  input  logic [7:0]  cfg_ats_itags_i,      // ITags in use; 0 or >= AtsInvQDepth: all
  input  logic [7:0]  cfg_pri_limit_i,      // the device's PRI: Page Requests per access; 0 = off
  input  logic [63:0] cfg_pq_base_i,        // page-request queue, 4 KiB aligned, 16-byte records
  input  logic [7:0]  cfg_pq_log2n_i,       // log2 of the number of records (<= 8)
  // registers
  input  logic [31:0] cq_tail_i,
  output logic [31:0] cq_head_o,
  output logic [7:0]  cq_err_o,
  input  logic        cq_err_clear_i,     // pulse: clear cq_err_o[1:0] (write 1 to clear)
  output logic [31:0] pq_tail_o,          // page-request queue tail (IOMMU-owned, pqt)
  input  logic [31:0] pq_head_i,          // page-request queue head (software-owned, pqh)
  output logic        pq_ovf_o,           // sticky: a Page Request found the queue full
  // IOMMU memory port
  output logic        iommu_mem_req_valid_o,
  input  logic        iommu_mem_req_ready_i,
  output logic        iommu_mem_req_write_o,
  output logic [63:0] iommu_mem_req_addr_o,
  output logic [63:0] iommu_mem_req_wdata_o,
  output logic        iommu_mem_req_cas_o,
  output logic [63:0] iommu_mem_req_cmp_o,
  input  logic        iommu_mem_rsp_valid_i,
  input  logic [63:0] iommu_mem_rsp_rdata_i,
  // device memory port
  output logic        dev_mem_req_valid_o,
  input  logic        dev_mem_req_ready_i,
  output logic        dev_mem_req_write_o,
  output logic [63:0] dev_mem_req_addr_o,
  output logic [63:0] dev_mem_req_wdata_o,
  output logic [7:0]  dev_mem_req_id_o,
  input  logic        dev_mem_rsp_valid_i,
  input  logic [63:0] dev_mem_rsp_rdata_i,
  // device request port
  input  logic        dev_req_valid_i,
  output logic        dev_req_ready_o,
  input  logic [7:0]  dev_req_id_i,
  input  logic        dev_req_write_i,
  input  logic [19:0] dev_req_pasid_i,
  input  logic [63:0] dev_req_va_i,
  input  logic [63:0] dev_req_wdata_i,
  output logic        dev_rsp_valid_o,
  output logic [7:0]  dev_rsp_id_o,
  output logic [1:0]  dev_rsp_status_o,
  output logic [63:0] dev_rsp_rdata_o,
  output logic [63:0] dev_rsp_pa_o,
  // debug probes
  input  logic [19:0] probe0_pasid_i,
  input  logic [35:0] probe0_vpn_i,
  output logic [63:0] probe0_iotlb_o,
  output logic [63:0] probe0_atc_o,
  output logic [63:0] probe0_xlat_o,
  input  logic [19:0] probe1_pasid_i,
  input  logic [35:0] probe1_vpn_i,
  output logic [63:0] probe1_iotlb_o,
  output logic [63:0] probe1_atc_o,
  output logic [63:0] probe1_xlat_o,
  input  logic [19:0] probe2_pasid_i,
  input  logic [35:0] probe2_vpn_i,
  output logic [63:0] probe2_iotlb_o,
  output logic [63:0] probe2_atc_o,
  output logic [63:0] probe2_xlat_o,
  input  logic [19:0] probe3_pasid_i,
  input  logic [35:0] probe3_vpn_i,
  output logic [63:0] probe3_iotlb_o,
  output logic [63:0] probe3_atc_o,
  output logic [63:0] probe3_xlat_o
);

  // ---------------------------------------------------------------------------
  // Registered configuration
  // ---------------------------------------------------------------------------
  typedef struct packed {
    logic [63:0] cq_base;
    logic [7:0]  cq_log2n;
    logic [63:0] pasid_table;
    logic [15:0] ats_latency;
    inject_t     inject;
    logic [31:0] ats_timeout;
    logic [15:0] ats_cpl_delay;
    logic [7:0]  atc_entries;
    logic [7:0]  iotlb_ways;
    logic [7:0]  iotlb_sets;
    logic [7:0]  ats_itags;
    logic [7:0]  pri_limit;
    logic [63:0] pq_base;
    logic [7:0]  pq_log2n;
  } cfg_t;

  cfg_t cfg_d, cfg_q;

  assign cfg_d = '{cq_base: cfg_cq_base_i, cq_log2n: cfg_cq_log2n_i,
                   pasid_table: cfg_pasid_table_i, ats_latency: cfg_ats_latency_i,
                   inject: cfg_inject_i, ats_timeout: cfg_ats_timeout_i,
                   ats_cpl_delay: cfg_ats_cpl_delay_i, atc_entries: cfg_atc_entries_i,
                   iotlb_ways: cfg_iotlb_ways_i, iotlb_sets: cfg_iotlb_sets_i,
                   ats_itags: cfg_ats_itags_i, pri_limit: cfg_pri_limit_i,
                   pq_base: cfg_pq_base_i, pq_log2n: cfg_pq_log2n_i};

  // ---------------------------------------------------------------------------
  // Probes
  // ---------------------------------------------------------------------------
  pasid_t [NumProbes-1:0]       probe_pasid_q;  // registered probe inputs
  vpn_t   [NumProbes-1:0]       probe_vpn_q;
  logic   [NumProbes-1:0][63:0] probe_iotlb;
  logic   [NumProbes-1:0][63:0] probe_atc;
  logic   [NumProbes-1:0][63:0] probe_xlat;

  pasid_t [NumProbes-1:0]       probe_pasid_d;
  vpn_t   [NumProbes-1:0]       probe_vpn_d;

  assign probe_pasid_d = {probe3_pasid_i, probe2_pasid_i, probe1_pasid_i, probe0_pasid_i};
  assign probe_vpn_d   = {probe3_vpn_i, probe2_vpn_i, probe1_vpn_i, probe0_vpn_i};

  assign probe0_iotlb_o = probe_iotlb[0];
  assign probe1_iotlb_o = probe_iotlb[1];
  assign probe2_iotlb_o = probe_iotlb[2];
  assign probe3_iotlb_o = probe_iotlb[3];
  assign probe0_atc_o   = probe_atc[0];
  assign probe1_atc_o   = probe_atc[1];
  assign probe2_atc_o   = probe_atc[2];
  assign probe3_atc_o   = probe_atc[3];
  assign probe0_xlat_o  = probe_xlat[0];
  assign probe1_xlat_o  = probe_xlat[1];
  assign probe2_xlat_o  = probe_xlat[2];
  assign probe3_xlat_o  = probe_xlat[3];

  // ---------------------------------------------------------------------------
  // IOMMU, links, device
  // ---------------------------------------------------------------------------
  logic    dn_in_valid, dn_in_ready, dn_out_valid, dn_out_ready;
  dn_msg_t dn_in_msg, dn_out_msg;
  logic    cpl_in_valid, cpl_in_ready, cpl_out_valid, cpl_out_ready;
  dn_msg_t cpl_out_msg;
  logic    dev_dn_valid, dev_dn_ready;
  dn_msg_t dev_dn_msg;
  logic    up_in_valid, up_in_ready, up_out_valid, up_out_ready;
  up_msg_t up_in_msg, up_out_msg;

  logic    srv_xlat_valid;
  pasid_t  srv_xlat_pasid;
  vpn_t    srv_xlat_vpn;
  xlat_t   srv_xlat;

  iommu #(
    .IotlbSets    (IotlbSets),
    .IotlbWays    (IotlbWays),
    .AtsInvQDepth (AtsInvQDepth)
  ) u_iommu (
    .clk_i,
    .rst_ni,
    .cfg_cq_base_i     (cfg_q.cq_base),
    .cfg_cq_log2n_i    (cfg_q.cq_log2n),
    .cfg_pasid_table_i (cfg_q.pasid_table),
    .cfg_ats_timeout_i (cfg_q.ats_timeout),
    .cfg_iotlb_ways_i  (cfg_q.iotlb_ways),
    .cfg_iotlb_sets_i  (cfg_q.iotlb_sets),
    .cfg_ats_itags_i   (cfg_q.ats_itags),
    .cfg_pq_base_i     (cfg_q.pq_base),
    .cfg_pq_log2n_i    (cfg_q.pq_log2n),
    .inject_i          (cfg_q.inject),
    .cq_tail_i,
    .cq_head_o,
    .cq_err_o,
    .cq_err_clear_i,
    .pq_head_i,
    .pq_tail_o,
    .pq_ovf_o,
    .mem_req_valid_o   (iommu_mem_req_valid_o),
    .mem_req_ready_i   (iommu_mem_req_ready_i),
    .mem_req_write_o   (iommu_mem_req_write_o),
    .mem_req_addr_o    (iommu_mem_req_addr_o),
    .mem_req_wdata_o   (iommu_mem_req_wdata_o),
    .mem_req_cas_o     (iommu_mem_req_cas_o),
    .mem_req_cmp_o     (iommu_mem_req_cmp_o),
    .mem_rsp_valid_i   (iommu_mem_rsp_valid_i),
    .mem_rsp_rdata_i   (iommu_mem_rsp_rdata_i),
    .dn_valid_o        (dn_in_valid),
    .dn_ready_i        (dn_in_ready),
    .dn_msg_o          (dn_in_msg),
    .up_valid_i        (up_out_valid),
    .up_ready_o        (up_out_ready),
    .up_msg_i          (up_out_msg),
    .probe_pasid_i     (probe_pasid_q),
    .probe_vpn_i       (probe_vpn_q),
    .probe_iotlb_o     (probe_iotlb),
    .xlat_valid_o      (srv_xlat_valid),
    .xlat_pasid_o      (srv_xlat_pasid),
    .xlat_vpn_o        (srv_xlat_vpn),
    .xlat_o            (srv_xlat)
  );

  ats_link #(
    .Width (DnMsgW),
    .Depth (LinkDepth)
  ) u_link_dn (
    .clk_i,
    .rst_ni,
    .latency_i   (cfg_q.ats_latency),
    .in_valid_i  (dn_in_valid),
    .in_ready_o  (dn_in_ready),
    .in_msg_i    (dn_in_msg),
    .out_valid_o (dn_out_valid),
    .out_ready_i (dn_out_ready),
    .out_msg_o   (dn_out_msg)
  );

  // ---------------------------------------------------------------------------
  // Completion delay: a switch that holds Translation Completions while
  // Invalidate Requests and PRG Responses (posted) pass them
  // ---------------------------------------------------------------------------
  logic cpl_delayed;  // Translation Completions take the delay link
  logic dn_out_inv;   // the dn link offers a posted Message (Invalidate Request, PRG Response)
  logic dn_out_cpl;   // the dn link offers a Translation Completion

  assign cpl_delayed = (cfg_q.ats_cpl_delay != '0);
  assign dn_out_inv  = dn_out_valid && (dn_out_msg.kind != DnTransCpl);
  assign dn_out_cpl  = dn_out_valid && (dn_out_msg.kind == DnTransCpl);

  ats_link #(
    .Width (DnMsgW),
    .Depth (LinkDepth)
  ) u_link_cpl (
    .clk_i,
    .rst_ni,
    .latency_i   (cfg_q.ats_cpl_delay),
    .in_valid_i  (cpl_in_valid),
    .in_ready_o  (cpl_in_ready),
    .in_msg_i    (dn_out_msg),
    .out_valid_o (cpl_out_valid),
    .out_ready_i (cpl_out_ready),
    .out_msg_o   (cpl_out_msg)
  );

  // Towards the device: a posted Message (Invalidate Request, PRG Response)
  // from the dn link first, then a
  // delayed Completion, then (delay off) a Completion from the dn link. The
  // delay link is empty while the delay is off (the configuration is held
  // after reset), so the device then sees the dn link unchanged.
  assign cpl_in_valid  = cpl_delayed && dn_out_cpl;
  assign dev_dn_valid  = dn_out_inv || cpl_out_valid || (!cpl_delayed && dn_out_cpl);
  assign dev_dn_msg    = (cpl_out_valid && !dn_out_inv) ? cpl_out_msg : dn_out_msg;
  assign cpl_out_ready = dev_dn_ready && !dn_out_inv;
  // A Completion waits in the dn link while the delay link is full, or
  // (delay off) while a delayed Completion still goes first.
  assign dn_out_ready  = dn_out_inv  ? dev_dn_ready :
                         cpl_delayed ? cpl_in_ready :
                                       (dev_dn_ready && !cpl_out_valid);

  ats_link #(
    .Width (UpMsgW),
    .Depth (LinkDepth)
  ) u_link_up (
    .clk_i,
    .rst_ni,
    .latency_i   (cfg_q.ats_latency),
    .in_valid_i  (up_in_valid),
    .in_ready_o  (up_in_ready),
    .in_msg_i    (up_in_msg),
    .out_valid_o (up_out_valid),
    .out_ready_i (up_out_ready),
    .out_msg_o   (up_out_msg)
  );

  ats_dev #(
    .AtcEntries (AtcEntries),
    .InvQDepth  (AtsInvQDepth)
  ) u_dev (
    .clk_i,
    .rst_ni,
    .inject_i          (cfg_q.inject),
    .cfg_atc_entries_i (cfg_q.atc_entries),
    .cfg_pri_limit_i   (cfg_q.pri_limit),
    .dev_req_valid_i,
    .dev_req_ready_o,
    .dev_req_id_i,
    .dev_req_write_i,
    .dev_req_pasid_i,
    .dev_req_va_i,
    .dev_req_wdata_i,
    .dev_rsp_valid_o,
    .dev_rsp_id_o,
    .dev_rsp_status_o,
    .dev_rsp_rdata_o,
    .dev_rsp_pa_o,
    .mem_req_valid_o   (dev_mem_req_valid_o),
    .mem_req_ready_i   (dev_mem_req_ready_i),
    .mem_req_write_o   (dev_mem_req_write_o),
    .mem_req_addr_o    (dev_mem_req_addr_o),
    .mem_req_wdata_o   (dev_mem_req_wdata_o),
    .mem_req_id_o      (dev_mem_req_id_o),
    .mem_rsp_valid_i   (dev_mem_rsp_valid_i),
    .mem_rsp_rdata_i   (dev_mem_rsp_rdata_i),
    .dn_valid_i        (dev_dn_valid),
    .dn_ready_o        (dev_dn_ready),
    .dn_msg_i          (dev_dn_msg),
    .up_valid_o        (up_in_valid),
    .up_ready_i        (up_in_ready),
    .up_msg_o          (up_in_msg),
    .probe_pasid_i     (probe_pasid_q),
    .probe_vpn_i       (probe_vpn_q),
    .probe_atc_o       (probe_atc)
  );

  // ---------------------------------------------------------------------------
  // Translation Completion in the links, the delay link included (the device
  // has at most one Translation Request outstanding, so at most one
  // Completion travels)
  // ---------------------------------------------------------------------------
  logic    cpl_sent;
  logic    cpl_taken;
  logic    link_cpl_valid_d, link_cpl_valid_q;
  dn_msg_t link_cpl_d, link_cpl_q;

  assign cpl_sent  = dn_in_valid && dn_in_ready && (dn_in_msg.kind == DnTransCpl);
  assign cpl_taken = dev_dn_valid && dev_dn_ready && (dev_dn_msg.kind == DnTransCpl);

  always_comb begin : comb_link_cpl
    link_cpl_valid_d = link_cpl_valid_q;
    link_cpl_d       = link_cpl_q;
    if (cpl_taken) begin
      link_cpl_valid_d = 1'b0;
    end
    if (cpl_sent) begin
      link_cpl_valid_d = 1'b1;
      link_cpl_d       = dn_in_msg;
    end
  end

  // xlat probe: the Completion in the link, else the request server's result
  for (genvar p = 0; p < NumProbes; p++) begin : gen_probe_xlat
    lookup_t hit;
    always_comb begin : comb_hit
      hit = '0;
      if (entry_hit(srv_xlat_valid, srv_xlat_pasid, srv_xlat_vpn, srv_xlat.size,
                    probe_pasid_q[p], probe_vpn_q[p])) begin
        hit = '{hit: 1'b1, xlat: srv_xlat};
      end
      if (entry_hit(link_cpl_valid_q, link_cpl_q.pasid, link_cpl_q.vpn, link_cpl_q.xlat.size,
                    probe_pasid_q[p], probe_vpn_q[p])) begin
        hit = '{hit: 1'b1, xlat: link_cpl_q.xlat};
      end
    end
    assign probe_xlat[p] = probe_word(hit, probe_vpn_q[p]);
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      cfg_q            <= '0;
      probe_pasid_q    <= '0;
      probe_vpn_q      <= '0;
      link_cpl_valid_q <= 1'b0;
      link_cpl_q       <= '0;
    end else begin
      cfg_q            <= cfg_d;
      probe_pasid_q    <= probe_pasid_d;
      probe_vpn_q      <= probe_vpn_d;
      link_cpl_valid_q <= link_cpl_valid_d;
      link_cpl_q       <= link_cpl_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // At most one Translation Completion in the link.
  OneCplInLink_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    cpl_sent |-> (!link_cpl_valid_q || cpl_taken));
  // The links are deep enough never to push back (32 ITags + 1 Completion).
  DnLinkNeverFull_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    dn_in_valid |-> dn_in_ready);
  UpLinkNeverFull_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    up_in_valid |-> up_in_ready);
  CplLinkNeverFull_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    cpl_in_valid |-> cpl_in_ready);
  // The delay link carries Translation Completions only, and only while
  // the delay is on.
  CplLinkOnlyCpl_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    cpl_out_valid |-> (cpl_out_msg.kind == DnTransCpl && cpl_delayed));
  // Posted passes completion: an Invalidate Request (or a PRG Response)
  // offered in the same cycle as a delayed Completion reaches the device
  // first.
  InvPassesCpl_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (dn_out_inv && cpl_out_valid) |-> (dev_dn_msg.kind != DnTransCpl && !cpl_out_ready));

  // ---------------------------------------------------------------------------
  // Cover points at the socket (docs/socket.md, "Coverage"): they look only
  // at this top's ports and at the links between the IOMMU and the device,
  // so any design in the socket that keeps this top keeps them. The state
  // below is theirs only.
  // ---------------------------------------------------------------------------
  logic [5:0]  cov_inv_out_q;      // Invalidate Requests sent, no Invalidate Completion yet
  logic        cov_cpl_delayed_q;  // the Completion in the links is in the delay link
  logic [31:0] cov_head_q;         // cq_head_o at the previous edge
  logic        cov_full_q;
  logic        cov_cmd_to_q;
  logic        cov_inv_sent;
  logic        cov_inv_cpl_back;
  logic        cov_inv_to_dev;
  logic        cov_inv_names_cpl;  // the Invalidate Request reaching the device names the Completion in the links
  logic        cov_full;
  logic        cov_fence_write;
  logic        cov_pq_write;  // the IOMMU's write is into the page-request queue
  logic [31:0] cov_cq_mask;

  assign cov_inv_sent     = dn_in_valid && dn_in_ready && (dn_in_msg.kind == DnInvReq);
  assign cov_inv_cpl_back = up_out_valid && up_out_ready && (up_out_msg.kind == UpInvCpl);
  assign cov_inv_to_dev   = dev_dn_valid && dev_dn_ready && (dev_dn_msg.kind == DnInvReq);
  assign cov_cq_mask      = (32'd1 << cfg_q.cq_log2n) - 32'd1;
  // (a ring of one entry holds no command; cfg_q is 0 in the first cycle
  // after reset)
  assign cov_full         = (cfg_q.cq_log2n != '0) &&
                            (((cq_tail_i + 32'd1) & cov_cq_mask) == cq_head_o);
  // the IOMMU's plain writes are IOFENCE.C completions and, with PRI on,
  // page-request queue records (docs/socket.md): those are in the ring
  assign cov_pq_write     = (cfg_q.pri_limit != '0) &&
                            (iommu_mem_req_addr_o >= cfg_q.pq_base) &&
                            (iommu_mem_req_addr_o - cfg_q.pq_base <
                             (64'd16 << cfg_q.pq_log2n));
  assign cov_fence_write  = iommu_mem_req_valid_o && iommu_mem_req_ready_i &&
                            iommu_mem_req_write_o && !cov_pq_write;

  always_comb begin : comb_cov_inv_names_cpl
    cov_inv_names_cpl = 1'b0;
    if (cov_inv_to_dev && link_cpl_valid_q) begin
      cov_inv_names_cpl = (!dev_dn_msg.pv || dev_dn_msg.pasid == link_cpl_q.pasid) &&
                          blocks_overlap(link_cpl_q.vpn, xlat_log2n(link_cpl_q.xlat.size),
                                         dev_dn_msg.vpn, dev_dn_msg.log2n);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_cov_state
    if (!rst_ni) begin
      cov_inv_out_q     <= '0;
      cov_cpl_delayed_q <= 1'b0;
      cov_head_q        <= '0;
      cov_full_q        <= 1'b0;
      cov_cmd_to_q      <= 1'b0;
    end else begin
      cov_inv_out_q <= cov_inv_out_q + {5'd0, cov_inv_sent} -
                       {5'd0, cov_inv_cpl_back && (cov_inv_out_q != '0)};
      if (cpl_taken) begin
        cov_cpl_delayed_q <= 1'b0;
      end else if (cpl_in_valid && cpl_in_ready) begin
        cov_cpl_delayed_q <= 1'b1;
      end
      cov_head_q   <= cq_head_o;
      cov_full_q   <= cov_full;
      cov_cmd_to_q <= cq_err_o[1];
    end
  end

  // immediate covers under their events: a cycle without one costs a test
  always_ff @(posedge clk_i) begin : ff_cov_points
    if (rst_ni && cov_fence_write) begin
      // fence_done: an IOFENCE.C completion write x Invalidate Requests the
      // device has not completed (1 or more: a timeout freed their ITags)
      FenceDoneOut0_C: cover (cov_inv_out_q == 6'd0);
      FenceDoneOut1_C: cover (cov_inv_out_q == 6'd1);
      FenceDoneOut2_C: cover (cov_inv_out_q >= 6'd2);
    end
    if (rst_ni && cov_inv_names_cpl) begin
      // link_race: an Invalidate Request reaches the device while a
      // Translation Completion it names is in the links: held in the delay
      // link (the switch let the Invalidate Request pass it), or behind it
      // in the dn link (the IOMMU sent the invalidation first)
      InvPassesCpl_C: cover (cov_cpl_delayed_q);
      InvAheadOfCpl_C: cover (!cov_cpl_delayed_q);
    end
    if (rst_ni) begin
      // queue: the head wraps around the ring; software fills the ring
      CqWrap_C: cover (cq_head_o != cov_head_q && cq_head_o == 32'd0);
      CqFull_C: cover (cov_full && !cov_full_q);
      // timeout: the IOMMU sets cmd_to (cq_err_o bit 1); software clears it
      CmdToSet_C: cover (cq_err_o[1] && !cov_cmd_to_q);
      CmdToCleared_C: cover (cq_err_clear_i && cq_err_o[1]);
    end
  end

endmodule
