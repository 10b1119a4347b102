// One direction of the PCIe link carrying ATS messages: an in-order delay
// line. A message accepted in cycle c is delivered (out_valid_o) from cycle
// c + latency_i on (latency 0 behaves as 1). Entries are {message, due time}
// in a FIFO; the latency is constant, so the head is always due first.
//
// The time base only runs while the link carries something: a push into an
// empty link restarts it at 0, and it holds while the link is empty, so an
// idle link has no toggling state (a quiet waveform). Every entry in the
// FIFO was pushed during the current busy period, so their due times share
// one continuous time base.

module ats_link #(
  parameter int unsigned Width = 8,
  parameter int unsigned Depth = 64  // power of two
) (
  input  logic             clk_i,
  input  logic             rst_ni,
  input  logic [15:0]      latency_i,
  // sender
  input  logic             in_valid_i,
  output logic             in_ready_o,
  input  logic [Width-1:0] in_msg_i,
  // receiver
  output logic             out_valid_o,
  input  logic             out_ready_i,
  output logic [Width-1:0] out_msg_o
);

  logic [31:0]       now_d, now_q;  // cycles since the current busy period began
  logic [31:0]       now;           // time of a push in this cycle
  logic [31:0]       head_due;
  logic              head_valid;
  logic              head_ready;
  logic [Width-1:0]  head_msg;

  // head_valid: the link is not empty
  assign now   = head_valid ? now_q : 32'd0;
  assign now_d = (head_valid || in_valid_i) ? now + 32'd1 : now_q;

  sync_fifo #(
    .Width (Width + 32),
    .Depth (Depth)
  ) u_fifo (
    .clk_i,
    .rst_ni,
    .in_valid_i  (in_valid_i),
    .in_ready_o  (in_ready_o),
    .in_data_i   ({in_msg_i, now + {16'd0, latency_i}}),
    .out_valid_o (head_valid),
    .out_ready_i (head_ready),
    .out_data_o  ({head_msg, head_due})
  );

  // due when now >= due, modulo 2^32
  assign out_valid_o = head_valid && ($signed(now_q - head_due) >= 0);
  assign out_msg_o   = head_msg;
  assign head_ready  = out_ready_i && out_valid_o;

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      now_q <= '0;
    end else begin
      now_q <= now_d;
    end
  end

endmodule
