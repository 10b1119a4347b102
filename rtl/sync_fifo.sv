// Synchronous FIFO with valid/ready on both sides (no fall-through: data
// pushed at an edge is visible after it). The storage array holds data only
// (no reset) and is written one slot per cycle, as a memory.

module sync_fifo #(
  parameter int unsigned Width = 8,
  parameter int unsigned Depth = 4  // power of two, >= 2
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  // push
  input  logic             in_valid_i,
  output logic             in_ready_o,
  input  logic [Width-1:0] in_data_i,
  // pop
  output logic             out_valid_o,
  input  logic             out_ready_i,
  output logic [Width-1:0] out_data_o
);

  localparam int unsigned PtrW = $clog2(Depth);
  typedef logic [PtrW-1:0] ptr_t;

  logic [Width-1:0] storage_q [Depth];
  ptr_t             wr_d, wr_q;
  ptr_t             rd_d, rd_q;
  logic [PtrW:0]    count_d, count_q;
  logic             push;
  logic             pop;

  assign in_ready_o  = (count_q != (PtrW + 1)'(Depth));
  assign out_valid_o = (count_q != '0);
  assign out_data_o  = storage_q[rd_q];
  assign push        = in_valid_i && in_ready_o;
  assign pop         = out_valid_o && out_ready_i;

  always_comb begin : comb_next
    wr_d    = push ? wr_q + ptr_t'(1) : wr_q;
    rd_d    = pop ? rd_q + ptr_t'(1) : rd_q;
    count_d = count_q + (PtrW + 1)'(push) - (PtrW + 1)'(pop);
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      wr_q    <= '0;
      rd_q    <= '0;
      count_q <= '0;
    end else begin
      wr_q    <= wr_d;
      rd_q    <= rd_d;
      count_q <= count_d;
    end
  end

  always_ff @(posedge clk_i) begin : ff_storage
    if (push) begin
      storage_q[wr_q] <= in_data_i;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  CountInRange_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    count_q <= (PtrW + 1)'(Depth));

endmodule
