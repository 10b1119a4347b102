// Memory-port arbiter: N requesters share one port with one outstanding
// request (a read, a write or a compare-and-swap). Fixed priority, requester 0 highest. A requester holds its request
// until gnt_o; the response goes to the requester that owns the outstanding
// request. The port's request outputs depend on requester state only (Moore,
// as docs/socket.md requires of every output).

module mem_arb #(
  parameter int unsigned N = 3
) (
  input  logic                clk_i,
  input  logic                rst_ni,
  // requesters
  input  logic [N-1:0]        req_valid_i,
  input  logic [N-1:0]        req_write_i,
  input  logic [N-1:0][63:0]  req_addr_i,
  input  logic [N-1:0][63:0]  req_wdata_i,
  input  logic [N-1:0]        req_cas_i,   // compare-and-swap (docs/socket.md)
  input  logic [N-1:0][63:0]  req_cmp_i,   // CAS: expected old value
  output logic [N-1:0]        gnt_o,
  output logic [N-1:0]        rsp_valid_o,
  output logic [63:0]         rsp_rdata_o,
  // memory port
  output logic                mem_req_valid_o,
  input  logic                mem_req_ready_i,
  output logic                mem_req_write_o,
  output logic [63:0]         mem_req_addr_o,
  output logic [63:0]         mem_req_wdata_o,
  output logic                mem_req_cas_o,
  output logic [63:0]         mem_req_cmp_o,
  input  logic                mem_rsp_valid_i,
  input  logic [63:0]         mem_rsp_rdata_i
);

  localparam int unsigned SelW = (N > 1) ? $clog2(N) : 1;
  typedef logic [SelW-1:0] sel_t;

  logic busy_d, busy_q;    // a request is outstanding
  sel_t owner_d, owner_q;  // the requester it belongs to
  sel_t winner;

  always_comb begin : comb_winner
    winner = '0;
    for (int i = int'(N) - 1; i >= 0; i--) begin
      if (req_valid_i[i]) begin
        winner = sel_t'(i);
      end
    end
  end

  assign mem_req_valid_o = !busy_q && (|req_valid_i);
  assign mem_req_write_o = req_write_i[winner];
  assign mem_req_addr_o  = req_addr_i[winner];
  assign mem_req_wdata_o = req_wdata_i[winner];
  assign mem_req_cas_o   = req_cas_i[winner];
  assign mem_req_cmp_o   = req_cmp_i[winner];
  assign rsp_rdata_o     = mem_rsp_rdata_i;

  always_comb begin : comb_next
    busy_d      = busy_q;
    owner_d     = owner_q;
    gnt_o       = '0;
    rsp_valid_o = '0;
    if (mem_req_valid_o && mem_req_ready_i) begin
      gnt_o[winner] = 1'b1;
      busy_d        = 1'b1;
      owner_d       = winner;
    end
    if (mem_rsp_valid_i) begin
      rsp_valid_o[owner_q] = 1'b1;
      busy_d               = 1'b0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      busy_q  <= 1'b0;
      owner_q <= '0;
    end else begin
      busy_q  <= busy_d;
      owner_q <= owner_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // One outstanding request per port: a response only for an outstanding
  // request, and no new request before it.
  RspOnlyWhenBusy_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    mem_rsp_valid_i |-> busy_q);
  OneOutstanding_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    mem_req_valid_o |-> !busy_q);

endmodule
