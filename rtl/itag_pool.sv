// ITag pool of the ATS invalidation path (PCIe ATS: an ITag is busy from the
// Invalidate Request until its Invalidate Completion). Allocation takes the
// lowest free ITag. Size is the device's Invalidate Queue Depth (ATS
// capability): the IOMMU may have at most that many invalidations outstanding
// to the device, so the command queue stalls when they are all busy.
//
// ATS invalidation timeout (timeout_i, cycles; 0 = never): a busy ITag whose
// Invalidate Completion has not arrived timeout_i cycles after its
// allocation is freed and timed_out_o pulses. The ITag is then remembered
// as timed out and is not allocated again until its late completion arrives
// (and is dropped): reused earlier, that late completion would be taken for
// the new request's and complete it (and its fence) too soon. A device that
// never answers thus keeps its ITags; once all are, the queue stalls (the
// device must be reset, which is not modelled).
//
// ITags in use (cfg_itags_i, held after reset): the Invalidate Queue Depth
// software programmed, n; only ITags 0 .. n-1 are allocated (0 or >= Size:
// all Size of them, as without the input).

module itag_pool
  import shootdown_pkg::*;
#(
  parameter int unsigned Size = NumItags  // 1 .. NumItags
) (
  input  logic  clk_i,
  input  logic  rst_ni,
  // allocate alloc_itag_o (only when any_free_o)
  input  logic  alloc_i,
  output itag_t alloc_itag_o,
  output logic  any_free_o,
  // Invalidate Completion: free the ITag
  input  logic  free_i,
  input  itag_t free_itag_i,
  // no ITag busy (IOFENCE.C may complete)
  output logic  all_free_o,
  // invalidation timeout in cycles (0 = never) and its expiry pulse
  input  logic [31:0] timeout_i,
  output logic  timed_out_o,
  // ITags in use: 0 .. n-1 (0 or >= Size: Size)
  input  logic [7:0]  cfg_itags_i
);

  logic [NumItags-1:0] busy_d, busy_q;
  logic [NumItags-1:0] stale_d, stale_q;  // timed out, completion not yet seen
  logic [NumItags-1:0] expire;            // busy and timing out this cycle
  logic [31:0]         age_d [NumItags];  // cycles since allocation
  logic [31:0]         age_q [NumItags];
  // The ITags this device accepts: 0 .. used-1 (at most 0 .. Size-1).
  int unsigned         used;
  logic [NumItags-1:0] usable;
  assign used   = (cfg_itags_i == '0 || 32'(cfg_itags_i) >= Size) ? Size : 32'(cfg_itags_i);
  assign usable = NumItags'((64'(1) << used) - 64'(1));

  always_comb begin : comb_lowest_free
    alloc_itag_o = '0;
    for (int i = int'(Size) - 1; i >= 0; i--) begin
      if (!busy_q[i] && !stale_q[i] && usable[i]) begin
        alloc_itag_o = itag_t'(i);
      end
    end
  end

  assign any_free_o = |(~busy_q & ~stale_q & usable);
  assign all_free_o  = !(|busy_q);
  assign timed_out_o = |expire;

  always_comb begin : comb_expire
    for (int unsigned i = 0; i < NumItags; i++) begin
      expire[i] = busy_q[i] && (timeout_i != '0) && (age_q[i] >= timeout_i - 32'd1) &&
                  !(free_i && (free_itag_i == itag_t'(i)));
    end
  end

  always_comb begin : comb_next
    busy_d  = busy_q & ~expire;
    stale_d = stale_q | expire;
    for (int unsigned i = 0; i < NumItags; i++) begin
      age_d[i] = busy_q[i] ? age_q[i] + 32'd1 : '0;
    end
    if (free_i) begin
      busy_d[free_itag_i]  = 1'b0;
      stale_d[free_itag_i] = 1'b0;
    end
    if (alloc_i) begin
      busy_d[alloc_itag_o]  = 1'b1;
      stale_d[alloc_itag_o] = 1'b0;
      age_d[alloc_itag_o]   = '0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      busy_q  <= '0;
      stale_q <= '0;
      age_q   <= '{default: '0};
    end else begin
      busy_q  <= busy_d;
      stale_q <= stale_d;
      age_q   <= age_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // No Invalidate Completion for a free ITag (a timed-out ITag's late
  // completion is expected and dropped; the ITag is not reused before).
  FreeOnlyBusy_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    free_i |-> (busy_q[free_itag_i] || stale_q[free_itag_i]));
  // No allocation when every ITag is busy.
  AllocOnlyFree_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    alloc_i |-> any_free_o);

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage")
  // ---------------------------------------------------------------------------
  // timeout: the late Invalidate Completion of a timed-out ITag arrives (and
  // is dropped; the ITag can be allocated again)
  always_ff @(posedge clk_i) begin : ff_cov
    if (rst_ni) begin
      LateCpl_C: cover (free_i && stale_q[free_itag_i]);
    end
  end

endmodule
