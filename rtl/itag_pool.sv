// ITag pool of the ATS invalidation path (PCIe ATS: an ITag is busy from the
// Invalidate Request until its Invalidate Completion). Allocation takes the
// lowest free ITag. Size is the device's Invalidate Queue Depth (ATS
// capability): the IOMMU may have at most that many invalidations outstanding
// to the device, so the command queue stalls when they are all busy.

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
  output logic  all_free_o
);

  logic [NumItags-1:0] busy_d, busy_q;
  // The ITags this device accepts: 0 .. Size-1.
  localparam logic [NumItags-1:0] Usable = NumItags'((64'(1) << Size) - 64'(1));

  always_comb begin : comb_lowest_free
    alloc_itag_o = '0;
    for (int i = int'(Size) - 1; i >= 0; i--) begin
      if (!busy_q[i]) begin
        alloc_itag_o = itag_t'(i);
      end
    end
  end

  assign any_free_o = |(~busy_q & Usable);
  assign all_free_o = !(|busy_q);

  always_comb begin : comb_next
    busy_d = busy_q;
    if (free_i) begin
      busy_d[free_itag_i] = 1'b0;
    end
    if (alloc_i) begin
      busy_d[alloc_itag_o] = 1'b1;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      busy_q <= '0;
    end else begin
      busy_q <= busy_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // No Invalidate Completion for a free ITag.
  FreeOnlyBusy_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    free_i |-> busy_q[free_itag_i]);
  // No allocation when every ITag is busy.
  AllocOnlyFree_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    alloc_i |-> any_free_o);

endmodule
