// In-memory command queue (RISC-V IOMMU command queue, riscv-iommu
// src/iommu_in_memory_queues.adoc, reduced to IOTINVAL.VMA, IOFENCE.C,
// ATS.INVAL and ATS.PRGR).
//
// A ring of 2^cfg_cq_log2n_i 16-byte commands at cfg_cq_base_i; software owns
// the tail, the IOMMU the head. While head != tail: read dword0 then dword1
// at base + head * 16, then execute, in order:
//   IOTINVAL.VMA  invalidate the IOTLB (and mark a matching walk "do not
//                 fill") in one cycle; head moves on. With AV, dword1 names
//                 the 4 KiB page of ADDR (S=0) or the naturally aligned
//                 range of 2^(13+t) bytes (S=1), encoded as in ATS.INVAL.
//   ATS.INVAL     allocate the lowest free ITag (stall while none is free),
//                 send the Invalidate Request; head moves on without waiting
//                 for the Invalidate Completion.
//   ATS.PRGR      (opcode ATS, func3 1) send one PCIe PRG Response (PRG
//                 Index dword1[7:0], response code dword1[15:12], PV and
//                 PASID of dword0) down the link, after the Invalidate
//                 Requests of earlier commands; head moves on when it is
//                 sent. No ITag; IOFENCE.C does not wait for it.
//   IOFENCE.C     wait until no ITag is busy, then (AV) write DATA
//                 zero-extended to ADDR; head moves on after the write.
//                 While cq_err_o[1] (cmd_to) is set the fence does not
//                 complete: head stays on it until cq_err_clear_i.
//   other         cq_err_o[0] (illegal command); head stays on it; after
//                 cq_err_clear_i the command at head is fetched again.
//
// ATS invalidation timeout (RISC-V cqcsr.cmd_to): an ITag still busy
// cfg_ats_timeout_i cycles (0 = never) after its Invalidate Request is freed
// and cq_err_o[1] is set (sticky); its late Invalidate Completion is dropped.
// cq_err_clear_i (one-cycle pulse; software's write-1-to-clear) clears
// cq_err_o[1:0].
//
// ITags in use (cfg_ats_itags_i, held after reset; 0 or >= AtsInvQDepth:
// all): the device's Invalidate Queue Depth as software programmed it. Only
// ITags 0 .. n-1 are allocated, so the queue stalls on an ATS.INVAL while n
// invalidations are outstanding.

module cmdq
  import shootdown_pkg::*;
#(
  parameter int unsigned AtsInvQDepth = NumItags  // the device's Invalidate Queue Depth
) (
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic [63:0] cfg_cq_base_i,
  input  logic [7:0]  cfg_cq_log2n_i,
  input  logic [31:0] cfg_ats_timeout_i,  // cycles, 0 = never
  input  logic [7:0]  cfg_ats_itags_i,    // ITags in use; 0 or >= AtsInvQDepth: all
  input  inject_t     inject_i,  // bug injection (shootdown_pkg Inj*)
  // registers (cqt / cqh / error flags)
  input  logic [31:0] cq_tail_i,
  output logic [31:0] cq_head_o,
  output logic [7:0]  cq_err_o,
  input  logic        cq_err_clear_i,  // clear cq_err_o[1:0]
  // command fetch reads
  output logic        fetch_req_valid_o,
  output logic [63:0] fetch_req_addr_o,
  input  logic        fetch_gnt_i,
  input  logic        fetch_rsp_valid_i,
  input  logic [63:0] fetch_rsp_rdata_i,
  // IOFENCE.C completion write
  output logic        fence_req_valid_o,
  output logic [63:0] fence_req_addr_o,
  output logic [63:0] fence_req_wdata_o,
  input  logic        fence_gnt_i,
  input  logic        fence_rsp_valid_i,
  // IOTINVAL.VMA, one cycle
  output logic        inval_valid_o,
  output logic        inval_av_o,
  output logic        inval_pv_o,
  output pasid_t      inval_pasid_o,
  output vpn_t        inval_vpn_o,      // base page of the range
  output log2n_t      inval_log2n_o,    // log2 of the number of pages
  // ATS Invalidate Request
  output logic        inv_req_valid_o,
  input  logic        inv_req_ready_i,
  output itag_t       inv_req_itag_o,
  output logic        inv_req_pv_o,
  output pasid_t      inv_req_pasid_o,
  output vpn_t        inv_req_vpn_o,    // base page of the range
  output log2n_t      inv_req_log2n_o,  // log2 of the number of pages
  // ATS Invalidate Completion
  input  logic        inv_cpl_valid_i,
  input  itag_t       inv_cpl_itag_i,
  // PRI PRG Response (ATS.PRGR)
  output logic        prg_valid_o,
  input  logic        prg_ready_i,
  output id_t         prg_tag_o,
  output logic        prg_pv_o,
  output pasid_t      prg_pasid_o,
  output prg_code_t   prg_code_o
);

  typedef enum logic [3:0] {
    StIdle,      // head == tail
    StReqLo,     // read dword0
    StRspLo,
    StReqHi,     // read dword1
    StRspHi,
    StExec,      // execute the command in dw0_q / dw1_q
    StWrite,     // IOFENCE.C: write DATA to ADDR
    StWriteRsp,
    StError      // illegal command: stop
  } state_e;

  state_e      state_d, state_q;
  logic [31:0] head_d, head_q;
  logic [31:0] tail_d, tail_q;  // cq_tail_i registered: no input-to-output path
  logic [63:0] dw0_d, dw0_q;
  logic [63:0] dw1_d, dw1_q;
  logic [7:0]  err_d, err_q;

  logic [31:0] index_mask;
  logic [31:0] head_next;
  cmd_dw0_t    cmd;
  logic        itag_alloc;
  logic        itag_any_free;
  logic        itag_all_free;
  logic        itag_timed_out;
  logic        cmd_to;  // cq_err bit 1 as of this cycle's end (fence blocked)

  assign index_mask = (32'd1 << cfg_cq_log2n_i) - 32'd1;
  assign head_next  = (head_q + 32'd1) & index_mask;
  assign cmd        = cmd_dw0_t'(dw0_q);
  assign tail_d     = cq_tail_i & index_mask;

  assign cq_head_o = head_q;
  assign cq_err_o  = err_q;

  assign fetch_req_valid_o = (state_q == StReqLo) || (state_q == StReqHi);
  assign fetch_req_addr_o  = cfg_cq_base_i + {28'd0, head_q, 4'd0} +
                             ((state_q == StReqHi) ? 64'd8 : 64'd0);

  assign fence_req_valid_o = (state_q == StWrite);
  assign fence_req_addr_o  = {dw1_q[63:3], 3'd0};
  assign fence_req_wdata_o = {32'd0, cmd.data};

  assign inval_av_o    = cmd.av;
  assign inval_pv_o    = cmd.pv;
  assign inval_pasid_o = cmd.pasid;
  assign inval_log2n_o = ats_log2n(dw1_q);
  assign inval_vpn_o   = dw1_q[12 +: VpnW] & vpn_mask(inval_log2n_o);

  assign inv_req_pv_o    = cmd.pv;
  assign inv_req_pasid_o = cmd.pasid;
  assign inv_req_log2n_o = ats_log2n(dw1_q);
  assign inv_req_vpn_o   = dw1_q[12 +: VpnW] & vpn_mask(inv_req_log2n_o);

  assign prg_tag_o   = dw1_q[IdW-1:0];
  assign prg_pv_o    = cmd.pv;
  assign prg_pasid_o = cmd.pasid;
  assign prg_code_o  = dw1_q[PrgrCodeLsb +: 4];

  itag_pool #(
    .Size (AtsInvQDepth)
  ) u_itag_pool (
    .clk_i,
    .rst_ni,
    .alloc_i      (itag_alloc),
    .alloc_itag_o (inv_req_itag_o),
    .any_free_o   (itag_any_free),
    .free_i       (inv_cpl_valid_i),
    .free_itag_i  (inv_cpl_itag_i),
    .all_free_o   (itag_all_free),
    .timeout_i    (cfg_ats_timeout_i),
    .cfg_itags_i  (cfg_ats_itags_i),
    .timed_out_o  (itag_timed_out)
  );

  assign cmd_to = err_q[1] || itag_timed_out;

  // InjFenceOneItag (bug injection): IOFENCE.C waits for one ITag, not for
  // the pool to empty. One register per fence group holds the ITag of the
  // first ATS.INVAL issued since the last IOFENCE.C completed and notes its
  // Invalidate Completion (or an ATS timeout); with the bug the fence waits
  // for that alone. The same thing while each ATS.INVAL is fenced before
  // the next one is sent; with several in one group the fence completes at
  // the first one's Invalidate Completion, the later ones still on their
  // way to the device or back.
  logic  grp_q;       // an ATS.INVAL was issued since the last fence
  logic  grp_done_q;  // the first one's Invalidate Completion came (or a timeout)
  itag_t grp_itag_q;  // the first one's ITag
  logic  fence_exec;  // the IOFENCE.C at the head is executing
  logic  inv_done;    // the fence's wait for earlier ATS.INVALs is over

  assign fence_exec = (state_q == StExec) && (cmd.func3 == Func3Zero) &&
                      (cmd.opcode == OpIofence);

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_grp
    if (!rst_ni) begin
      grp_q      <= 1'b0;
      grp_done_q <= 1'b0;
      grp_itag_q <= '0;
    end else if (fence_exec && state_d != StExec) begin
      grp_q      <= 1'b0;
      grp_done_q <= 1'b0;
    end else if (!grp_q) begin
      if (itag_alloc) begin
        grp_q      <= 1'b1;
        grp_itag_q <= inv_req_itag_o;
      end
    end else if ((inv_cpl_valid_i && inv_cpl_itag_i == grp_itag_q) || itag_timed_out) begin
      grp_done_q <= 1'b1;
    end
  end

  assign inv_done = inject_i[InjFenceOneItag] ? (!grp_q || grp_done_q) : itag_all_free;

  always_comb begin : comb_next
    state_d         = state_q;
    head_d          = head_q;
    dw0_d           = dw0_q;
    dw1_d           = dw1_q;
    err_d           = err_q;
    inval_valid_o   = 1'b0;
    inv_req_valid_o = 1'b0;
    prg_valid_o     = 1'b0;
    itag_alloc      = 1'b0;
    if (cq_err_clear_i) begin
      err_d[1:0] = 2'b00;
    end
    if (itag_timed_out) begin
      err_d[1] = 1'b1;
    end

    unique case (state_q)
      StIdle: begin
        if (head_q != tail_q) begin
          state_d = StReqLo;
        end
      end
      StReqLo: begin
        if (fetch_gnt_i) begin
          state_d = StRspLo;
        end
      end
      StRspLo: begin
        if (fetch_rsp_valid_i) begin
          dw0_d   = fetch_rsp_rdata_i;
          state_d = StReqHi;
        end
      end
      StReqHi: begin
        if (fetch_gnt_i) begin
          state_d = StRspHi;
        end
      end
      StRspHi: begin
        if (fetch_rsp_valid_i) begin
          dw1_d   = fetch_rsp_rdata_i;
          state_d = StExec;
        end
      end
      StExec: begin
        if (cmd.opcode == OpAts && cmd.func3 == Func3AtsPrgr) begin  // ATS.PRGR
          // InjPrgrDropped (bug injection): retire it without sending the
          // PRG Response.
          prg_valid_o = !inject_i[InjPrgrDropped];
          if (prg_ready_i || inject_i[InjPrgrDropped]) begin
            head_d  = head_next;
            state_d = StIdle;
          end
        end else if (cmd.func3 != Func3Zero) begin
          err_d[0] = 1'b1;
          state_d  = StError;
        end else begin
          unique case (cmd.opcode)
            OpIotinval: begin  // IOTINVAL.VMA
              inval_valid_o = 1'b1;
              head_d        = head_next;
              state_d       = StIdle;
            end
            OpAts: begin  // ATS.INVAL
              inv_req_valid_o = itag_any_free;
              if (itag_any_free && inv_req_ready_i) begin
                itag_alloc = 1'b1;
                head_d     = head_next;
                state_d    = StIdle;
              end
            end
            OpIofence: begin  // IOFENCE.C
              // InjEarlyFence (bug injection): complete without waiting for
              // the Invalidate Completions of earlier ATS.INVALs;
              // InjFenceOneItag: wait for the first of them only.
              // cmd_to: an earlier ATS.INVAL timed out; the fence waits for
              // software to clear the error.
              if ((inv_done || inject_i[InjEarlyFence]) && !cmd_to) begin
                if (cmd.av) begin
                  state_d = StWrite;
                end else begin
                  head_d  = head_next;
                  state_d = StIdle;
                end
              end
            end
            default: begin
              err_d[0] = 1'b1;
              state_d  = StError;
            end
          endcase
        end
      end
      StWrite: begin
        if (fence_gnt_i) begin
          state_d = StWriteRsp;
        end
      end
      StWriteRsp: begin
        if (fence_rsp_valid_i) begin
          head_d  = head_next;
          state_d = StIdle;
        end
      end
      StError: begin
        if (cq_err_clear_i) begin
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
      head_q  <= '0;
      tail_q  <= '0;
      dw0_q   <= '0;
      dw1_q   <= '0;
      err_q   <= '0;
    end else begin
      state_q <= state_d;
      head_q  <= head_d;
      tail_q  <= tail_d;
      dw0_q   <= dw0_d;
      dw1_q   <= dw1_d;
      err_q   <= err_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // The head never passes the tail: it only moves while a command is pending.
  HeadNotPastTail_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (head_d != head_q) |-> (head_q != tail_q));
  // Responses only for this block's own outstanding requests.
  FetchRspExpected_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    fetch_rsp_valid_i |-> (state_q == StRspLo || state_q == StRspHi));
  FenceRspExpected_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    fence_rsp_valid_i |-> state_q == StWriteRsp);

  // An ATS.PRGR leaves the queue only with its PRG Response sent: the
  // device that asked waits for nothing else.
  logic prgr_retires;
  assign prgr_retires = (state_q == StExec) && (cmd.opcode == OpAts) &&
                        (cmd.func3 == Func3AtsPrgr) && (head_d != head_q);
  PrgrSent_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    prgr_retires |-> (prg_valid_o && prg_ready_i));

  // The IOFENCE.C at the head completes now: it starts its DATA write (AV)
  // or the head moves past it (no AV).
  logic fence_completes;
  assign fence_completes = (state_q == StExec) && (cmd.func3 == Func3Zero) &&
                           (cmd.opcode == OpIofence) && (state_d != StExec);

  // Fence ordering: an IOFENCE.C completes only when no ATS.INVAL issued
  // before it is outstanding: every ITag is free again (its Invalidate
  // Completion came back, or it timed out). Nothing is issued after the
  // fence until it has completed, so "every ITag" is "every earlier one".
  FenceAfterInvCpl_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    fence_completes |-> itag_all_free);

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage"); the state below is theirs only
  // ---------------------------------------------------------------------------
  // ATS invalidations outstanding: ITags busy, the invalidations an
  // IOFENCE.C waits for. Counted from this block's own signals: Invalidate
  // Requests sent whose Invalidate Completion has not come back, less those
  // that timed out (their ITags are free for the fence, reserved until the
  // late completion). The bundled device completes in order, so a
  // completion while a timed-out one is pending is that one's. Also: has
  // the command at the head just started to execute (its first cycle in
  // StExec)?
  logic [5:0] cov_inv_out_q;   // sent, no completion yet
  logic [5:0] cov_inv_late_q;  // of those, timed out
  logic       cov_exec_q;
  logic       cov_fence_held_q;
  logic       cov_exec_first;
  logic [5:0] cov_busy;
  logic [1:0] cov_out;  // cov_busy as 0, 1, 2, 3 or more
  logic       cov_fence_held;

  assign cov_exec_first = (state_q == StExec) && !cov_exec_q && (cmd.func3 == Func3Zero);
  assign cov_busy       = cov_inv_out_q - cov_inv_late_q;
  assign cov_out        = (cov_busy > 6'd3) ? 2'd3 : cov_busy[1:0];
  // an IOFENCE.C that would complete (no ITag busy) waits for cmd_to
  assign cov_fence_held = (state_q == StExec) && (cmd.func3 == Func3Zero) &&
                          (cmd.opcode == OpIofence) && itag_all_free && cmd_to;

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_cov_state
    if (!rst_ni) begin
      cov_inv_out_q    <= '0;
      cov_inv_late_q   <= '0;
      cov_exec_q       <= 1'b0;
      cov_fence_held_q <= 1'b0;
    end else begin
      cov_inv_out_q    <= cov_inv_out_q + {5'd0, itag_alloc} -
                          {5'd0, inv_cpl_valid_i && (cov_inv_out_q != '0)};
      cov_inv_late_q   <= cov_inv_late_q + {5'd0, itag_timed_out} -
                          {5'd0, inv_cpl_valid_i && (cov_inv_late_q != '0)};
      cov_exec_q       <= (state_q == StExec);
      cov_fence_held_q <= cov_fence_held;
    end
  end

  // Each group's covers are immediate covers under the group's event, so
  // that a cycle without it costs one test (the simulation's speed).
  always_ff @(posedge clk_i) begin : ff_cov_cmd
    if (rst_ni && cov_exec_first) begin
      // cmd_issue: a command starts to execute x ATS invalidations
      // outstanding, ITags busy (0, 1, 2, 3 or more)
      CmdIotinvalOut0_C: cover (cmd.opcode == OpIotinval && cov_out == 2'd0);
      CmdIotinvalOut1_C: cover (cmd.opcode == OpIotinval && cov_out == 2'd1);
      CmdIotinvalOut2_C: cover (cmd.opcode == OpIotinval && cov_out == 2'd2);
      CmdIotinvalOut3_C: cover (cmd.opcode == OpIotinval && cov_out == 2'd3);
      CmdAtsInvalOut0_C: cover (cmd.opcode == OpAts && cov_out == 2'd0);
      CmdAtsInvalOut1_C: cover (cmd.opcode == OpAts && cov_out == 2'd1);
      CmdAtsInvalOut2_C: cover (cmd.opcode == OpAts && cov_out == 2'd2);
      CmdAtsInvalOut3_C: cover (cmd.opcode == OpAts && cov_out == 2'd3);
      CmdIofenceOut0_C: cover (cmd.opcode == OpIofence && cov_out == 2'd0);
      CmdIofenceOut1_C: cover (cmd.opcode == OpIofence && cov_out == 2'd1);
      CmdIofenceOut2_C: cover (cmd.opcode == OpIofence && cov_out == 2'd2);
      CmdIofenceOut3_C: cover (cmd.opcode == OpIofence && cov_out == 2'd3);
      // queue: an ATS.INVAL finds no usable ITag free (tag exhaustion: it
      // waits)
      ItagsExhausted_C: cover (cmd.opcode == OpAts && !itag_any_free);
    end
    if (rst_ni) begin
      // timeout: an IOFENCE.C with no ITag busy is held by cmd_to
      FenceHeldCmdTo_C: cover (cov_fence_held && !cov_fence_held_q);
    end
  end

endmodule
