// Page-request queue writer of the IOMMU (PCIe PRI; modelled on the RISC-V
// IOMMU page-request queue, riscv-iommu src/iommu_in_memory_queues.adoc).
//
// A ring of 2^cfg_pq_log2n_i 16-byte records at cfg_pq_base_i; the IOMMU
// owns the tail (pq_tail_o, RISC-V pqt), software the head (pq_head_i,
// pqh). One Page Request at a time, taken from the up link while idle:
//   queue full ((tail + 1) mod N == head): nothing is written, pq_ovf_o is
//                 set (sticky until reset) and the IOMMU answers the device
//                 itself with a PRG Response Success (as the RISC-V IOMMU
//                 does on a page-request queue overflow: the device retries
//                 its access and may ask again);
//   otherwise     write the record at base + 16 * tail, dword0 then dword1
//                 (dword0: [7:0] PRGI, [8] L=1, [9] R=1, [10] W, [11] PV=1,
//                 [31:12] PASID, [63:32] 0; dword1: the page address, VA
//                 bits 63:12 with the low 12 bits 0), then move the tail on,
//                 only once both writes were answered. Software answers the
//                 request with ATS.PRGR (cmdq).
//
// pq_head_i is registered (no input-to-output path); a ring of one record
// (cfg_pq_log2n_i = 0) is always full.

module prq
  import shootdown_pkg::*;
(
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic [63:0] cfg_pq_base_i,
  input  logic [7:0]  cfg_pq_log2n_i,
  // registers (pqh / pqt / overflow)
  input  logic [31:0] pq_head_i,
  output logic [31:0] pq_tail_o,
  output logic        pq_ovf_o,
  // Page Request from the up link
  input  logic        pr_valid_i,
  output logic        pr_ready_o,
  input  id_t         pr_tag_i,
  input  pasid_t      pr_pasid_i,
  input  vpn_t        pr_vpn_i,
  input  logic        pr_write_i,
  // record writes
  output logic        mem_req_valid_o,
  output logic [63:0] mem_req_addr_o,
  output logic [63:0] mem_req_wdata_o,
  input  logic        mem_gnt_i,
  input  logic        mem_rsp_valid_i,
  // PRG Response of a full queue (Success)
  output logic        rsp_valid_o,
  input  logic        rsp_ready_i,
  output id_t         rsp_tag_o,
  output pasid_t      rsp_pasid_o
);

  typedef enum logic [2:0] {
    StIdle,     // waiting for a Page Request
    StWrLo,     // write dword0
    StWrLoRsp,
    StWrHi,     // write dword1
    StWrHiRsp,
    StRsp       // queue full: PRG Response Success
  } state_e;

  state_e      state_d, state_q;
  logic [31:0] tail_d, tail_q;
  logic [31:0] head_q;  // pq_head_i registered
  logic        ovf_d, ovf_q;
  id_t         tag_d, tag_q;
  pasid_t      pasid_d, pasid_q;
  vpn_t        vpn_d, vpn_q;
  logic        write_d, write_q;

  logic [31:0] index_mask;
  logic [31:0] tail_next;
  logic        full;
  logic [63:0] dw0;
  logic [63:0] dw1;

  assign index_mask = (32'd1 << cfg_pq_log2n_i) - 32'd1;
  assign tail_next  = (tail_q + 32'd1) & index_mask;
  assign full       = (tail_next == head_q);

  always_comb begin : comb_record
    dw0          = '0;
    dw0[IdW-1:0] = tag_q;
    dw0[PqLBit]  = 1'b1;
    dw0[PqRBit]  = 1'b1;
    dw0[PqWBit]  = write_q;
    dw0[PqPvBit] = 1'b1;
    dw0[12 +: PasidW] = pasid_q;
    dw1          = {16'd0, vpn_q, 12'd0};
  end

  assign pq_tail_o       = tail_q;
  assign pq_ovf_o        = ovf_q;
  assign pr_ready_o      = (state_q == StIdle);
  assign mem_req_valid_o = (state_q == StWrLo) || (state_q == StWrHi);
  assign mem_req_addr_o  = cfg_pq_base_i + {28'd0, tail_q, 4'd0} +
                           ((state_q == StWrHi) ? 64'd8 : 64'd0);
  assign mem_req_wdata_o = (state_q == StWrHi) ? dw1 : dw0;
  assign rsp_valid_o     = (state_q == StRsp);
  assign rsp_tag_o       = tag_q;
  assign rsp_pasid_o     = pasid_q;

  always_comb begin : comb_next
    state_d = state_q;
    tail_d  = tail_q;
    ovf_d   = ovf_q;
    tag_d   = tag_q;
    pasid_d = pasid_q;
    vpn_d   = vpn_q;
    write_d = write_q;

    unique case (state_q)
      StIdle: begin
        if (pr_valid_i) begin
          tag_d   = pr_tag_i;
          pasid_d = pr_pasid_i;
          vpn_d   = pr_vpn_i;
          write_d = pr_write_i;
          if (full) begin
            ovf_d   = 1'b1;
            state_d = StRsp;
          end else begin
            state_d = StWrLo;
          end
        end
      end
      StWrLo: begin
        if (mem_gnt_i) begin
          state_d = StWrLoRsp;
        end
      end
      StWrLoRsp: begin
        if (mem_rsp_valid_i) begin
          state_d = StWrHi;
        end
      end
      StWrHi: begin
        if (mem_gnt_i) begin
          state_d = StWrHiRsp;
        end
      end
      StWrHiRsp: begin
        if (mem_rsp_valid_i) begin
          tail_d  = tail_next;
          state_d = StIdle;
        end
      end
      StRsp: begin
        if (rsp_ready_i) begin
          state_d = StIdle;
        end
      end
      default: begin
        state_d = StIdle;
      end
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      state_q <= StIdle;
      tail_q  <= '0;
      head_q  <= '0;
      ovf_q   <= 1'b0;
      tag_q   <= '0;
      pasid_q <= '0;
      vpn_q   <= '0;
      write_q <= 1'b0;
    end else begin
      state_q <= state_d;
      tail_q  <= tail_d;
      head_q  <= pq_head_i & index_mask;
      ovf_q   <= ovf_d;
      tag_q   <= tag_d;
      pasid_q <= pasid_d;
      vpn_q   <= vpn_d;
      write_q <= write_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // The tail never passes the head: a record is written only into a queue
  // that was not full (software only moves the head towards the tail), so
  // moving the tail on never makes it meet the head.
  PqTailNotPastHead_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (tail_d != tail_q) |-> (tail_d != head_q));
  // Responses only for this block's own outstanding writes.
  PqRspExpected_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    mem_rsp_valid_i |-> (state_q == StWrLoRsp || state_q == StWrHiRsp));

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage"): pri, a Page Request taken
  // into the queue (its record written) or into a full queue (the automatic
  // PRG Response)
  // ---------------------------------------------------------------------------
  always_ff @(posedge clk_i) begin : ff_cov
    if (rst_ni && pr_valid_i && pr_ready_o) begin
      PqWrite_C: cover (!full);
      PqFullRsp_C: cover (full);
    end
  end

endmodule
