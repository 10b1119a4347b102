// The ATS device: request FIFO, DMA engine, ATC and the Invalidate Request
// handling of PCIe ATS.
//
// An Invalidate Request, when taken from the link, (1) drops the matching ATC
// entries in that cycle, (2) is queued with a wait bit if the access in
// flight used a translation in the range, and (3) makes an outstanding
// Translation Request for the range re-request (dev_dma). Its Invalidate
// Completion leaves when it reaches the queue head with the wait bit clear.
//
// PRI (cfg_pri_limit_i > 0): a Translation Completion that does not grant
// the access makes the DMA engine send a Page Request and wait for its PRG
// Response (dev_dma). A PRG Response is always taken from the link; one that
// answers no waiting access (another PRG Index, or no access waiting) is
// dropped.
//
// Link arbitration towards the IOMMU: Invalidate Completions first, then the
// DMA engine's Translation Request or Page Request (at most one of them).

module ats_dev
  import shootdown_pkg::*;
#(
  parameter int unsigned AtcEntries = 8,
  parameter int unsigned ReqDepth   = 4,
  parameter int unsigned InvQDepth  = 4
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  input  inject_t                     inject_i,  // bug injection (shootdown_pkg Inj*)
  input  logic [7:0]                  cfg_atc_entries_i,  // ATC entries in use, 0 = all
  input  logic [7:0]                  cfg_pri_limit_i,    // Page Requests per access, 0 = PRI off
  // device request port
  input  logic                        dev_req_valid_i,
  output logic                        dev_req_ready_o,
  input  id_t                         dev_req_id_i,
  input  logic                        dev_req_write_i,
  input  pasid_t                      dev_req_pasid_i,
  input  logic [63:0]                 dev_req_va_i,
  input  logic [63:0]                 dev_req_wdata_i,
  output logic                        dev_rsp_valid_o,
  output id_t                         dev_rsp_id_o,
  output logic [1:0]                  dev_rsp_status_o,
  output logic [63:0]                 dev_rsp_rdata_o,
  output logic [63:0]                 dev_rsp_pa_o,
  // memory port
  output logic                        mem_req_valid_o,
  input  logic                        mem_req_ready_i,
  output logic                        mem_req_write_o,
  output logic [63:0]                 mem_req_addr_o,
  output logic [63:0]                 mem_req_wdata_o,
  output id_t                         mem_req_id_o,
  input  logic                        mem_rsp_valid_i,
  input  logic [63:0]                 mem_rsp_rdata_i,
  // ATS link from the IOMMU
  input  logic                        dn_valid_i,
  output logic                        dn_ready_o,
  input  dn_msg_t                     dn_msg_i,
  // ATS link towards the IOMMU
  output logic                        up_valid_o,
  input  logic                        up_ready_i,
  output up_msg_t                     up_msg_o,
  // debug probes
  input  pasid_t [NumProbes-1:0]      probe_pasid_i,
  input  vpn_t   [NumProbes-1:0]      probe_vpn_i,
  output logic   [NumProbes-1:0][63:0] probe_atc_o
);

  typedef struct packed {
    id_t         id;
    logic        write;
    pasid_t      pasid;
    logic [63:0] va;
    logic [63:0] wdata;
  } dev_req_t;

  // request FIFO
  logic     req_valid;
  logic     req_ready;
  dev_req_t req;

  // ATC
  pasid_t  atc_pasid;
  vpn_t    atc_vpn;
  lookup_t atc_lookup;
  logic    atc_fill_valid;
  xlat_t   atc_fill_xlat;

  // Translation Request / Completion
  logic    tr_valid;
  logic    tr_ready;
  id_t     tr_tag;
  pasid_t  tr_pasid;
  vpn_t    tr_vpn;
  logic    tr_write;
  logic    cpl_valid;
  logic    cpl_ready;

  // PRI Page Request / PRG Response
  logic    pr_valid;
  logic    pr_ready;
  logic    prg_valid;

  // Invalidate Request / Completion
  logic    inv_valid;
  logic    invq_ready;
  logic    inflight_hit;
  logic    acc_done;
  logic    inv_cpl_valid;
  logic    inv_cpl_ready;
  itag_t   inv_cpl_itag;

  sync_fifo #(
    .Width ($bits(dev_req_t)),
    .Depth (ReqDepth)
  ) u_req_fifo (
    .clk_i,
    .rst_ni,
    .in_valid_i  (dev_req_valid_i),
    .in_ready_o  (dev_req_ready_o),
    .in_data_i   ({dev_req_id_i, dev_req_write_i, dev_req_pasid_i, dev_req_va_i,
                   dev_req_wdata_i}),
    .out_valid_o (req_valid),
    .out_ready_i (req_ready),
    .out_data_o  (req)
  );

  atc #(
    .Entries (AtcEntries)
  ) u_atc (
    .clk_i,
    .rst_ni,
    .inject_i,
    .cfg_entries_i  (cfg_atc_entries_i),
    .lookup_pasid_i (atc_pasid),
    .lookup_vpn_i   (atc_vpn),
    .lookup_o       (atc_lookup),
    .fill_valid_i   (atc_fill_valid),
    .fill_pasid_i   (atc_pasid),
    .fill_vpn_i     (atc_vpn),
    .fill_xlat_i    (atc_fill_xlat),
    .inval_valid_i  (inv_valid),
    .inval_pv_i     (dn_msg_i.pv),
    .inval_pasid_i  (dn_msg_i.pasid),
    .inval_vpn_i    (dn_msg_i.vpn),
    .inval_log2n_i  (dn_msg_i.log2n),
    .probe_pasid_i,
    .probe_vpn_i,
    .probe_o        (probe_atc_o)
  );

  dev_dma u_dma (
    .clk_i,
    .rst_ni,
    .inject_i,
    .cfg_pri_limit_i,
    .req_valid_i      (req_valid),
    .req_ready_o      (req_ready),
    .req_id_i         (req.id),
    .req_write_i      (req.write),
    .req_pasid_i      (req.pasid),
    .req_va_i         (req.va),
    .req_wdata_i      (req.wdata),
    .atc_pasid_o      (atc_pasid),
    .atc_vpn_o        (atc_vpn),
    .atc_lookup_i     (atc_lookup),
    .atc_fill_valid_o (atc_fill_valid),
    .atc_fill_xlat_o  (atc_fill_xlat),
    .tr_valid_o       (tr_valid),
    .tr_ready_i       (tr_ready),
    .tr_tag_o         (tr_tag),
    .tr_pasid_o       (tr_pasid),
    .tr_vpn_o         (tr_vpn),
    .tr_write_o       (tr_write),
    .pr_valid_o       (pr_valid),
    .pr_ready_i       (pr_ready),
    .cpl_valid_i      (cpl_valid),
    .cpl_ready_o      (cpl_ready),
    .cpl_tag_i        (dn_msg_i.tag),
    .cpl_xlat_i       (dn_msg_i.xlat),
    .prg_valid_i      (prg_valid),
    .prg_tag_i        (dn_msg_i.tag),
    .prg_pv_i         (dn_msg_i.pv),
    .prg_pasid_i      (dn_msg_i.pasid),
    .prg_code_i       (dn_msg_i.code),
    .inv_valid_i      (inv_valid),
    .inv_pv_i         (dn_msg_i.pv),
    .inv_pasid_i      (dn_msg_i.pasid),
    .inv_vpn_i        (dn_msg_i.vpn),
    .inv_log2n_i      (dn_msg_i.log2n),
    .inflight_hit_o   (inflight_hit),
    .acc_done_o       (acc_done),
    .mem_req_valid_o,
    .mem_req_ready_i,
    .mem_req_write_o,
    .mem_req_addr_o,
    .mem_req_wdata_o,
    .mem_req_id_o,
    .mem_rsp_valid_i,
    .mem_rsp_rdata_i,
    .rsp_valid_o      (dev_rsp_valid_o),
    .rsp_id_o         (dev_rsp_id_o),
    .rsp_status_o     (dev_rsp_status_o),
    .rsp_rdata_o      (dev_rsp_rdata_o),
    .rsp_pa_o         (dev_rsp_pa_o)
  );

  // InjEarlyInvCpl (bug injection): never hold the Invalidate Completion for
  // the in-flight access that used an invalidated translation.
  logic push_wait;
  assign push_wait = inflight_hit && !inject_i[InjEarlyInvCpl];

  dev_invq #(
    .Depth (InvQDepth)
  ) u_invq (
    .clk_i,
    .rst_ni,
    .push_i       (inv_valid),
    .ready_o      (invq_ready),
    .push_itag_i  (dn_msg_i.itag),
    .push_wait_i  (push_wait),
    .clear_wait_i (acc_done),
    .cpl_valid_o  (inv_cpl_valid),
    .cpl_ready_i  (inv_cpl_ready),
    .cpl_itag_o   (inv_cpl_itag)
  );

  // ---------------------------------------------------------------------------
  // ATS link from the IOMMU: an Invalidate Request is taken when the queue
  // has room, a Translation Completion when the DMA engine waits for it, a
  // PRG Response always (the DMA engine drops one it does not wait for).
  // ---------------------------------------------------------------------------
  assign inv_valid  = dn_valid_i && (dn_msg_i.kind == DnInvReq) && invq_ready;
  assign cpl_valid  = dn_valid_i && (dn_msg_i.kind == DnTransCpl);
  assign prg_valid  = dn_valid_i && (dn_msg_i.kind == DnPrgResp);

  always_comb begin : comb_dn_ready
    unique case (dn_msg_i.kind)
      DnInvReq:   dn_ready_o = invq_ready;
      DnTransCpl: dn_ready_o = cpl_ready;
      default:    dn_ready_o = 1'b1;  // PRG Response
    endcase
  end

  // ---------------------------------------------------------------------------
  // ATS link towards the IOMMU: Invalidate Completions first, then the DMA
  // engine's Translation Request or Page Request
  // ---------------------------------------------------------------------------
  // InjDropInvCpl (bug injection): the completion leaves the queue but is
  // never sent.
  logic inv_cpl_send;
  assign inv_cpl_send = inv_cpl_valid && !inject_i[InjDropInvCpl];

  always_comb begin : comb_up_mux
    up_msg_o = '0;
    if (inv_cpl_send) begin
      up_msg_o.kind = UpInvCpl;
      up_msg_o.itag = inv_cpl_itag;
    end else begin
      up_msg_o.kind  = pr_valid ? UpPageReq : UpTransReq;
      up_msg_o.tag   = tr_tag;
      up_msg_o.pasid = tr_pasid;
      up_msg_o.vpn   = tr_vpn;
      up_msg_o.write = tr_write;
    end
  end

  assign up_valid_o    = inv_cpl_send || tr_valid || pr_valid;
  assign inv_cpl_ready = up_ready_i || inject_i[InjDropInvCpl];
  assign tr_ready      = up_ready_i && !inv_cpl_send;
  assign pr_ready      = up_ready_i && !inv_cpl_send;

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // Drain rule bookkeeping. Invalidate Requests taken and Invalidate
  // Completions leaving the queue are numbered in order (the queue is in
  // order); drain_seq_q is the number of the first Invalidate Request that
  // overlapped a translation of the access in flight (drain_q), kept until
  // that access finishes (the DMA engine has one access in flight).
  logic [7:0] inv_in_seq_q, inv_out_seq_q, drain_seq_q;
  logic       drain_q;
  logic       inv_cpl_sent;

  assign inv_cpl_sent = up_valid_o && up_ready_i && (up_msg_o.kind == UpInvCpl);

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_drain
    if (!rst_ni) begin
      inv_in_seq_q  <= '0;
      inv_out_seq_q <= '0;
      drain_seq_q   <= '0;
      drain_q       <= 1'b0;
    end else begin
      if (inv_valid) begin
        inv_in_seq_q <= inv_in_seq_q + 8'd1;
      end
      if (inv_cpl_valid && inv_cpl_ready) begin
        inv_out_seq_q <= inv_out_seq_q + 8'd1;
      end
      if (acc_done) begin
        drain_q <= 1'b0;
      end else if (inv_valid && inflight_hit && !drain_q) begin
        drain_q     <= 1'b1;
        drain_seq_q <= inv_in_seq_q;
      end
    end
  end

  // Drain rule (PCIe ATS device rule 2): the Invalidate Completion of a
  // request that overlaps a translation the access in flight uses (and so
  // every later one) is sent only once that access has finished.
  InvCplAfterDrain_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    inv_cpl_sent |-> !(drain_q && inv_out_seq_q == drain_seq_q));

endmodule
