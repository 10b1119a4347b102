// Pending Invalidate Requests of the ATS device, in arrival order.
//
// An entry is pushed once the device has dropped the matching ATC entries;
// `wait` says an access that used an invalidated translation is still in
// flight. The head's Invalidate Completion may leave once its wait bit is
// clear; clear_wait_i (the in-flight access finished) clears every wait bit:
// the device has one access in flight at a time.

module dev_invq
  import shootdown_pkg::*;
#(
  parameter int unsigned Depth = 4  // power of two, >= 2
) (
  input  logic  clk_i,
  input  logic  rst_ni,
  // push
  input  logic  push_i,
  output logic  ready_o,
  input  itag_t push_itag_i,
  input  logic  push_wait_i,
  // the in-flight access finished
  input  logic  clear_wait_i,
  // Invalidate Completion
  output logic  cpl_valid_o,
  input  logic  cpl_ready_i,
  output itag_t cpl_itag_o
);

  localparam int unsigned PtrW = $clog2(Depth);
  typedef logic [PtrW-1:0] ptr_t;

  itag_t            itag_d [Depth];
  itag_t            itag_q [Depth];
  logic [Depth-1:0] wait_d, wait_q;
  ptr_t             wr_d, wr_q;
  ptr_t             rd_d, rd_q;
  logic [PtrW:0]    count_d, count_q;
  logic             push;
  logic             pop;

  assign ready_o     = (count_q != (PtrW + 1)'(Depth));
  assign cpl_valid_o = (count_q != '0) && !wait_q[rd_q];
  assign cpl_itag_o  = itag_q[rd_q];
  assign push        = push_i && ready_o;
  assign pop         = cpl_valid_o && cpl_ready_i;

  always_comb begin : comb_next
    itag_d  = itag_q;
    wait_d  = clear_wait_i ? '0 : wait_q;
    wr_d    = wr_q;
    rd_d    = rd_q;
    count_d = count_q + (PtrW + 1)'(push) - (PtrW + 1)'(pop);
    if (push) begin
      itag_d[wr_q] = push_itag_i;
      wait_d[wr_q] = push_wait_i && !clear_wait_i;
      wr_d         = wr_q + ptr_t'(1);
    end
    if (pop) begin
      rd_d = rd_q + ptr_t'(1);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      itag_q  <= '{default: '0};
      wait_q  <= '0;
      wr_q    <= '0;
      rd_q    <= '0;
      count_q <= '0;
    end else begin
      itag_q  <= itag_d;
      wait_q  <= wait_d;
      wr_q    <= wr_d;
      rd_q    <= rd_d;
      count_q <= count_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  PushOnlyWhenReady_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    push_i |-> ready_o);

endmodule
