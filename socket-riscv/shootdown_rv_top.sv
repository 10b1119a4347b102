// shootdown's second socket: a RISC-V IOMMU specification design behind
// four AXI4 ports and wired interrupts (docs/socket-riscv.md). This wrapper
// binds the third-party RISC-V IOMMU ($SHOOTDOWN_RTL_RISCV, e.g.
// ../shared/thirdparty/riscv-iommu) to the contract: each AXI4 channel as
// flat, standard-named signals (AxID, AxADDR, AxLEN, AxSIZE, AxBURST,
// AxPROT, ...), the device and process IDs of a translation request beside
// its address. Another team's design plugs in by writing its own wrapper
// with these ports.
//
// Port groups (prefix, role seen from the IOMMU):
//   reg_  AXI4 subordinate: register programming (spec chapter 5 offsets)
//   mem_  AXI4 manager: the IOMMU's own reads and writes (directories, page
//         tables, command and fault queues)
//   tr_   AXI4 subordinate: a device's untranslated requests, with
//         tr_{aw,ar}sid (device ID), tr_{aw,ar}ssidv/ssid (process ID)
//   tx_   AXI4 manager: the same requests, translated
//   probeN_ (optional, N = 0..3): what the IOTLB holds for a PSCID and a
//         VPN, in the first socket's probe-word format; this wrapper reads
//         the third-party design's IOTLB through hierarchical references
//   probe_pdtc_, probe_ddtc_ (optional): the process context the
//         process-directory cache holds for a device ID and a process ID,
//         and the device context the device-directory cache holds for it
// Signals the host leaves at their AXI defaults (lock, cache, qos, region,
// atop, user) are tied inside; the IOMMU's outputs for them are dropped.

`include "assertions.svh"
`include "register_interface/typedef.svh"
`include "riscv_pkg.sv"
`include "lint_wrapper_pkg.sv"
`include "rv_iommu_pkg.sv"
`include "rv_iommu_reg_pkg.sv"
`include "rv_iommu_field_pkg.sv"

// The ports of one AXI4 channel set. `IN`/`OUT` are the directions of the
// manager-driven signals (input for a subordinate port, output for a
// manager port) and of the subordinate-driven ones.
`define SD_AXI_PORTS(p, IN, OUT, IDW) \
  IN  logic [IDW-1:0] p``_awid, \
  IN  logic [63:0]    p``_awaddr, \
  IN  logic [7:0]     p``_awlen, \
  IN  logic [2:0]     p``_awsize, \
  IN  logic [1:0]     p``_awburst, \
  IN  logic [2:0]     p``_awprot, \
  IN  logic           p``_awvalid, \
  OUT logic           p``_awready, \
  IN  logic [63:0]    p``_wdata, \
  IN  logic [7:0]     p``_wstrb, \
  IN  logic           p``_wlast, \
  IN  logic           p``_wvalid, \
  OUT logic           p``_wready, \
  OUT logic [IDW-1:0] p``_bid, \
  OUT logic [1:0]     p``_bresp, \
  OUT logic           p``_bvalid, \
  IN  logic           p``_bready, \
  IN  logic [IDW-1:0] p``_arid, \
  IN  logic [63:0]    p``_araddr, \
  IN  logic [7:0]     p``_arlen, \
  IN  logic [2:0]     p``_arsize, \
  IN  logic [1:0]     p``_arburst, \
  IN  logic [2:0]     p``_arprot, \
  IN  logic           p``_arvalid, \
  OUT logic           p``_arready, \
  OUT logic [IDW-1:0] p``_rid, \
  OUT logic [63:0]    p``_rdata, \
  OUT logic [1:0]     p``_rresp, \
  OUT logic           p``_rlast, \
  OUT logic           p``_rvalid, \
  IN  logic           p``_rready

// A subordinate port's flat signals into the design's request struct `q`
// and out of its response struct `s`.
`define SD_AXI_SUB_BIND(p, q, s) \
  assign q.aw = '{id: p``_awid, addr: p``_awaddr, len: p``_awlen, size: p``_awsize, \
                  burst: p``_awburst, prot: p``_awprot, default: '0}; \
  assign q.aw_valid = p``_awvalid; \
  assign q.w = '{data: p``_wdata, strb: p``_wstrb, last: p``_wlast, default: '0}; \
  assign q.w_valid = p``_wvalid; \
  assign q.b_ready = p``_bready; \
  assign q.ar = '{id: p``_arid, addr: p``_araddr, len: p``_arlen, size: p``_arsize, \
                  burst: p``_arburst, prot: p``_arprot, default: '0}; \
  assign q.ar_valid = p``_arvalid; \
  assign q.r_ready = p``_rready; \
  assign p``_awready = s.aw_ready; \
  assign p``_wready = s.w_ready; \
  assign p``_bid = s.b.id; \
  assign p``_bresp = s.b.resp; \
  assign p``_bvalid = s.b_valid; \
  assign p``_arready = s.ar_ready; \
  assign p``_rid = s.r.id; \
  assign p``_rdata = s.r.data; \
  assign p``_rresp = s.r.resp; \
  assign p``_rlast = s.r.last; \
  assign p``_rvalid = s.r_valid

// A manager port: the design's request struct `q` out to the flat signals,
// the flat responses into its response struct `s`.
`define SD_AXI_MGR_BIND(p, q, s) \
  assign p``_awid = q.aw.id; \
  assign p``_awaddr = q.aw.addr; \
  assign p``_awlen = q.aw.len; \
  assign p``_awsize = q.aw.size; \
  assign p``_awburst = q.aw.burst; \
  assign p``_awprot = q.aw.prot; \
  assign p``_awvalid = q.aw_valid; \
  assign p``_wdata = q.w.data; \
  assign p``_wstrb = q.w.strb; \
  assign p``_wlast = q.w.last; \
  assign p``_wvalid = q.w_valid; \
  assign p``_bready = q.b_ready; \
  assign p``_arid = q.ar.id; \
  assign p``_araddr = q.ar.addr; \
  assign p``_arlen = q.ar.len; \
  assign p``_arsize = q.ar.size; \
  assign p``_arburst = q.ar.burst; \
  assign p``_arprot = q.ar.prot; \
  assign p``_arvalid = q.ar_valid; \
  assign p``_rready = q.r_ready; \
  assign s.aw_ready = p``_awready; \
  assign s.w_ready = p``_wready; \
  assign s.b = '{id: p``_bid, resp: p``_bresp, default: '0}; \
  assign s.b_valid = p``_bvalid; \
  assign s.ar_ready = p``_arready; \
  assign s.r = '{id: p``_rid, data: p``_rdata, resp: p``_rresp, last: p``_rlast, default: '0}; \
  assign s.r_valid = p``_rvalid

module shootdown_rv_top
  import lint_wrapper::*;
  import rv_iommu::*;
#(
  parameter int unsigned IotlbEntries = 16,
  parameter int unsigned DdtcEntries  = 8,
  parameter int unsigned PdtcEntries  = 8
) (
  input  logic clk_i,
  input  logic rst_ni,
  `SD_AXI_PORTS(reg, input, output, IdWidthSlv),
  `SD_AXI_PORTS(mem, output, input, IdWidth),
  `SD_AXI_PORTS(tr, input, output, IdWidth),
  input  logic [DevIDWidth-1:0]  tr_awsid,
  input  logic                   tr_awssidv,
  input  logic [ProcIDWidth-1:0] tr_awssid,
  input  logic [DevIDWidth-1:0]  tr_arsid,
  input  logic                   tr_arssidv,
  input  logic [ProcIDWidth-1:0] tr_arssid,
  `SD_AXI_PORTS(tx, output, input, IdWidth),
  output logic [NumIRQWires-1:0] wsi_o,
  input  logic [19:0]            probe0_pscid_i,
  input  logic [26:0]            probe0_vpn_i,
  output logic [63:0]            probe0_iotlb_o,
  input  logic [19:0]            probe1_pscid_i,
  input  logic [26:0]            probe1_vpn_i,
  output logic [63:0]            probe1_iotlb_o,
  input  logic [19:0]            probe2_pscid_i,
  input  logic [26:0]            probe2_vpn_i,
  output logic [63:0]            probe2_iotlb_o,
  input  logic [19:0]            probe3_pscid_i,
  input  logic [26:0]            probe3_vpn_i,
  output logic [63:0]            probe3_iotlb_o,
  input  logic [DevIDWidth-1:0]  probe_did_i,
  input  logic [ProcIDWidth-1:0] probe_pid_i,
  output logic [63:0]            probe_pdtc_o,
  output logic [63:0]            probe_ddtc_o
);

  typedef logic [63:0] reg_addr_t;
  typedef logic [31:0] reg_data_t;
  typedef logic [3:0]  reg_strb_t;
  `REG_BUS_TYPEDEF_ALL(iommu_reg, reg_addr_t, reg_data_t, reg_strb_t)

  req_slv_t   reg_req;
  resp_slv_t  reg_rsp;
  req_t       mem_req;
  resp_t      mem_rsp;
  req_iommu_t tr_req;
  resp_t      tr_rsp;
  req_t       tx_req;
  resp_t      tx_rsp;

  `SD_AXI_SUB_BIND(reg, reg_req, reg_rsp);
  `SD_AXI_MGR_BIND(mem, mem_req, mem_rsp);
  `SD_AXI_MGR_BIND(tx, tx_req, tx_rsp);

  // Translation requests: the AXI fields and the IDs beside them.
  assign tr_req.aw = '{id: tr_awid, addr: tr_awaddr, len: tr_awlen, size: tr_awsize,
                       burst: tr_awburst, prot: tr_awprot, stream_id: tr_awsid,
                       ss_id_valid: tr_awssidv, substream_id: tr_awssid, default: '0};
  assign tr_req.aw_valid = tr_awvalid;
  assign tr_req.w = '{data: tr_wdata, strb: tr_wstrb, last: tr_wlast, default: '0};
  assign tr_req.w_valid = tr_wvalid;
  assign tr_req.b_ready = tr_bready;
  assign tr_req.ar = '{id: tr_arid, addr: tr_araddr, len: tr_arlen, size: tr_arsize,
                       burst: tr_arburst, prot: tr_arprot, stream_id: tr_arsid,
                       ss_id_valid: tr_arssidv, substream_id: tr_arssid, default: '0};
  assign tr_req.ar_valid = tr_arvalid;
  assign tr_req.r_ready = tr_rready;
  assign tr_awready = tr_rsp.aw_ready;
  assign tr_wready = tr_rsp.w_ready;
  assign tr_bid = tr_rsp.b.id;
  assign tr_bresp = tr_rsp.b.resp;
  assign tr_bvalid = tr_rsp.b_valid;
  assign tr_arready = tr_rsp.ar_ready;
  assign tr_rid = tr_rsp.r.id;
  assign tr_rdata = tr_rsp.r.data;
  assign tr_rresp = tr_rsp.r.resp;
  assign tr_rlast = tr_rsp.r.last;
  assign tr_rvalid = tr_rsp.r_valid;

  // The design as the specification's base configuration asks: Sv39 first
  // stage, wired interrupts, no MSI translation, no counters.
  riscv_iommu #(
    .IOTLB_ENTRIES   (IotlbEntries),
    .DDTC_ENTRIES    (DdtcEntries),
    .PDTC_ENTRIES    (PdtcEntries),
    .MRIFC_ENTRIES   (4),
    .InclPC          (1'b1),
    .InclBC          (1'b1),
    .InclDBG         (1'b0),
    .MSITrans        (MSI_DISABLED),
    .IGS             (WSI_ONLY),
    .N_INT_VEC       (NumIRQWires),
    .N_IOHPMCTR      (0),
    .ADDR_WIDTH      (AddrWidth),
    .DATA_WIDTH      (DataWidth),
    .ID_WIDTH        (IdWidth),
    .ID_SLV_WIDTH    (IdWidthSlv),
    .USER_WIDTH      (UserWidth),
    .aw_chan_t       (aw_chan_t),
    .w_chan_t        (w_chan_t),
    .b_chan_t        (b_chan_t),
    .ar_chan_t       (ar_chan_t),
    .r_chan_t        (r_chan_t),
    .axi_req_t       (req_t),
    .axi_rsp_t       (resp_t),
    .axi_req_slv_t   (req_slv_t),
    .axi_rsp_slv_t   (resp_slv_t),
    .axi_req_iommu_t (req_iommu_t),
    .reg_req_t       (iommu_reg_req_t),
    .reg_rsp_t       (iommu_reg_rsp_t)
  ) u_iommu (
    .clk_i,
    .rst_ni,
    .dev_tr_req_i    (tr_req),
    .dev_tr_resp_o   (tr_rsp),
    .dev_comp_resp_i (tx_rsp),
    .dev_comp_req_o  (tx_req),
    .ds_resp_i       (mem_rsp),
    .ds_req_o        (mem_req),
    .prog_req_i      (reg_req),
    .prog_resp_o     (reg_rsp),
    .wsi_wires_o     (wsi_o)
  );

  // Probes: the IOTLB's first-stage entries (tags_q, content_q of the
  // design's rv_iommu_iotlb_sv39x4, its own anonymous structs, laid out
  // again here field for field: a different layout is a width mismatch the
  // lint of this wrapper reports) searched for each probe's PSCID and VPN
  // as the design's lookup does. The word: bit 63 valid, 62 W, 61 R, 60 a
  // 2 MiB entry, 59 a 1 GiB entry, 39:0 the 4 KiB frame that holds the VPN
  // (docs/socket.md).
  typedef struct packed {
    logic [19:0]            pscid;
    logic [15:0]            gscid;
    logic [riscv::GPPN2:0]  vpn2;
    logic [8:0]             vpn1;
    logic [8:0]             vpn0;
    logic                   is_1S_2M;
    logic                   is_1S_1G;
    logic                   is_2S_2M;
    logic                   is_2S_1G;
    logic                   is_msi;
    logic                   en_1S;
    logic                   en_2S;
    logic                   valid;
  } sd_iotlb_tag_t;
  typedef struct packed {
    riscv::pte_t pte_1S;
    riscv::pte_t pte_2S;
  } sd_iotlb_content_t;

  sd_iotlb_tag_t     [IotlbEntries-1:0] iotlb_tags;
  sd_iotlb_content_t [IotlbEntries-1:0] iotlb_content;
  assign iotlb_tags = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                      .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_iotlb_sv39x4.tags_q;
  assign iotlb_content = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                         .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_iotlb_sv39x4.content_q;

  logic [3:0][19:0] probe_pscid;
  logic [3:0][26:0] probe_vpn;
  logic [3:0][63:0] probe_iotlb;
  assign probe_pscid = {probe3_pscid_i, probe2_pscid_i, probe1_pscid_i, probe0_pscid_i};
  assign probe_vpn = {probe3_vpn_i, probe2_vpn_i, probe1_vpn_i, probe0_vpn_i};
  assign probe0_iotlb_o = probe_iotlb[0];
  assign probe1_iotlb_o = probe_iotlb[1];
  assign probe2_iotlb_o = probe_iotlb[2];
  assign probe3_iotlb_o = probe_iotlb[3];

  for (genvar p = 0; p < 4; p++) begin : gen_probe
    always_comb begin
      logic [43:0] ppn;
      probe_iotlb[p] = '0;
      ppn = '0;
      for (int unsigned i = 0; i < IotlbEntries; i++) begin
        if (iotlb_tags[i].valid && iotlb_tags[i].en_1S && !iotlb_tags[i].en_2S &&
            (iotlb_tags[i].pscid == probe_pscid[p] || iotlb_content[i].pte_1S.g) &&
            iotlb_tags[i].vpn2[8:0] == probe_vpn[p][26:18] &&
            (iotlb_tags[i].is_1S_1G || (iotlb_tags[i].vpn1 == probe_vpn[p][17:9] &&
             (iotlb_tags[i].is_1S_2M || iotlb_tags[i].vpn0 == probe_vpn[p][8:0])))) begin
          ppn = iotlb_content[i].pte_1S.ppn;
          if (iotlb_tags[i].is_1S_1G) begin
            ppn[17:0] = probe_vpn[p][17:0];
          end else if (iotlb_tags[i].is_1S_2M) begin
            ppn[8:0] = probe_vpn[p][8:0];
          end
          // (a frame above 2^40 does not fit the word: flagged by bit 58)
          probe_iotlb[p] = {1'b1, iotlb_content[i].pte_1S.w, iotlb_content[i].pte_1S.r,
                            iotlb_tags[i].is_1S_2M, iotlb_tags[i].is_1S_1G, |ppn[43:40],
                            18'b0, ppn[39:0]};
        end
      end
    end
  end

  // Probe: the process-directory cache's entry for (probe_did_i,
  // probe_pid_i) (tags_q, content_q of the design's rv_iommu_pdtc, laid out
  // again as above), matched as the design's lookup does. The word: bit 63
  // valid, 59:40 the context's PSCID, 39:0 its first-stage root PPN
  // (fsc.PPN; bits 58:56 flag a root above 2^40, as the IOTLB probe does).
  typedef struct packed {
    logic [23:0] device_id;
    logic [19:0] process_id;
    logic        valid;
  } sd_pdtc_tag_t;

  sd_pdtc_tag_t  [PdtcEntries-1:0] pdtc_tags;
  rv_iommu::pc_t [PdtcEntries-1:0] pdtc_content;
  assign pdtc_tags = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                     .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_pdtc.tags_q;
  assign pdtc_content = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                        .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_pdtc.content_q;

  always_comb begin
    probe_pdtc_o = '0;
    for (int unsigned i = 0; i < PdtcEntries; i++) begin
      if (pdtc_tags[i].valid && pdtc_tags[i].device_id == 24'(probe_did_i) &&
          pdtc_tags[i].process_id == 20'(probe_pid_i)) begin
        probe_pdtc_o = {1'b1, 3'b0, pdtc_content[i].ta.pscid,
                        pdtc_content[i].fsc.ppn[39:0]};
        probe_pdtc_o[58:56] = {|pdtc_content[i].fsc.ppn[43:40], 2'b0};
      end
    end
  end

  // Probe: the device-directory cache's entry for probe_did_i (the design's
  // rv_iommu_ddtc; this wrapper builds it without MSI translation, so an
  // entry is a base-format device context). The word: bit 63 valid, 62 the
  // cached context's tc.V, 39:0 its fsc.PPN (the process directory's root,
  // or the first-stage root without one).
  typedef struct packed {
    logic [23:0] device_id;
    logic        valid;
  } sd_ddtc_tag_t;

  sd_ddtc_tag_t      [DdtcEntries-1:0] ddtc_tags;
  rv_iommu::dc_base_t [DdtcEntries-1:0] ddtc_content;
  assign ddtc_tags = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                     .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_ddtc.tags_q;
  assign ddtc_content = u_iommu.i_rv_iommu_translation_wrapper.gen_pc_support
                        .i_rv_iommu_tw_sv39x4_pc.i_rv_iommu_ddtc.content_q;

  always_comb begin
    probe_ddtc_o = '0;
    for (int unsigned i = 0; i < DdtcEntries; i++) begin
      if (ddtc_tags[i].valid && ddtc_tags[i].device_id == 24'(probe_did_i)) begin
        probe_ddtc_o = {1'b1, ddtc_content[i].tc.v, 22'b0, ddtc_content[i].fsc.ppn[39:0]};
      end
    end
  end

endmodule
