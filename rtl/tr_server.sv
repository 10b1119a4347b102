// ATS Translation Request server of the IOMMU.
//
// One request at a time (the device has at most one Translation Request
// outstanding): look the page up in the IOTLB; on a hit answer with the
// cached translation; on a miss walk the page table, fill the IOTLB with the
// result and answer. A result with R=0 is never cached. An IOTINVAL.VMA that
// matches the page while the walk runs makes the result uncacheable ("do not
// fill"); the result is still sent to the device, which must discard it if an
// ATS invalidation for the page overtook it (PCIe ATS device rule).
//
// No-Write (PCIe ATS NW = !tr_write_i): a completion grants W only to a
// write request, and the walker sets the leaf's D bit exactly when it grants
// W, so an IOTLB entry holds W only if D was set. A read request that hits
// an entry with W is answered without W; a write request that hits an entry
// without W walks again (the walk sets D, or finds the page read-only).
//
// InjWriteHitsRo (bug injection): a write request that hits an entry
// without W is answered from that entry (without W) instead of walking
// again, as an IOMMU that caches permissions and needs an invalidation after
// a permission upgrade would.
//
// The match during a walk is conservative, since the walk may return a
// larger leaf: a 4 KiB or 2 MiB result is not cached after an invalidation
// range that overlaps the 2 MiB region of the requested page, a 1 GiB result
// after one that overlaps its 1 GiB region.

module tr_server
  import shootdown_pkg::*;
(
  input  logic   clk_i,
  input  logic   rst_ni,
  input  inject_t inject_i,  // bug injection (shootdown_pkg Inj*)
  // Translation Request
  input  logic   tr_valid_i,
  output logic   tr_ready_o,
  input  id_t    tr_tag_i,
  input  pasid_t tr_pasid_i,
  input  vpn_t   tr_vpn_i,
  input  logic   tr_write_i,  // NW=0
  // IOTLB lookup and fill
  output pasid_t lookup_pasid_o,
  output vpn_t   lookup_vpn_o,
  input  lookup_t lookup_i,
  output logic   fill_valid_o,
  output pasid_t fill_pasid_o,
  output vpn_t   fill_vpn_o,
  output xlat_t  fill_xlat_o,
  // page-table walker
  output logic   walk_start_o,
  output pasid_t walk_pasid_o,
  output vpn_t   walk_vpn_o,
  output logic   walk_write_o,
  input  logic   walk_idle_i,
  input  logic   walk_done_i,
  input  xlat_t  walk_result_i,
  // IOTINVAL.VMA
  input  logic   inval_valid_i,
  input  logic   inval_av_i,
  input  logic   inval_pv_i,
  input  pasid_t inval_pasid_i,
  input  vpn_t   inval_vpn_i,
  input  log2n_t inval_log2n_i,
  // Translation Completion (also the in-flight result for the xlat probes)
  output logic   cpl_valid_o,
  input  logic   cpl_ready_i,
  output id_t    cpl_tag_o,
  output pasid_t cpl_pasid_o,
  output vpn_t   cpl_vpn_o,
  output xlat_t  cpl_xlat_o
);

  typedef enum logic [1:0] {
    StIdle,    // waiting for a Translation Request
    StLookup,  // IOTLB lookup
    StWalk,    // page-table walk
    StSend     // Translation Completion
  } state_e;

  state_e state_d, state_q;
  id_t    tag_d, tag_q;
  pasid_t pasid_d, pasid_q;
  vpn_t   vpn_d, vpn_q;
  logic   write_d, write_q;
  xlat_t  xlat_d, xlat_q;
  // an IOTINVAL.VMA hit the page's 2 MiB (nofill) or 1 GiB (nofill_1g)
  // region during the walk
  logic   nofill_d, nofill_q;
  logic   nofill_1g_d, nofill_1g_q;

  logic   inval_hit;     // this cycle's IOTINVAL.VMA hits the page's 2 MiB region
  logic   inval_hit_1g;  // ... its 1 GiB region
  logic   walk_fill_ok;  // no IOTINVAL.VMA hit the region of the walk result's size

  assign inval_hit    = inval_valid_i && (!inval_pv_i || inval_pasid_i == pasid_q) &&
                        (!inval_av_i || blocks_overlap(inval_vpn_i, inval_log2n_i, vpn_q,
                                                       log2n_t'(Log2Pages2M)));
  assign inval_hit_1g = inval_valid_i && (!inval_pv_i || inval_pasid_i == pasid_q) &&
                        (!inval_av_i || blocks_overlap(inval_vpn_i, inval_log2n_i, vpn_q,
                                                       log2n_t'(Log2Pages1G)));
  assign walk_fill_ok = (walk_result_i.size == Pg1G) ? !nofill_1g_q && !inval_hit_1g
                                                     : !nofill_q && !inval_hit;

  assign tr_ready_o     = (state_q == StIdle);
  assign lookup_pasid_o = pasid_q;
  assign lookup_vpn_o   = vpn_q;
  assign walk_pasid_o   = pasid_q;
  assign walk_vpn_o     = vpn_q;
  assign walk_write_o   = write_q;
  assign fill_pasid_o   = pasid_q;
  assign fill_vpn_o     = vpn_q;
  assign fill_xlat_o    = walk_result_i;
  assign cpl_valid_o    = (state_q == StSend);
  assign cpl_tag_o      = tag_q;
  assign cpl_pasid_o    = pasid_q;
  assign cpl_vpn_o      = vpn_q;
  assign cpl_xlat_o     = xlat_q;

  always_comb begin : comb_next
    state_d      = state_q;
    tag_d        = tag_q;
    pasid_d      = pasid_q;
    vpn_d        = vpn_q;
    write_d      = write_q;
    xlat_d       = xlat_q;
    nofill_d     = nofill_q;
    nofill_1g_d  = nofill_1g_q;
    walk_start_o = 1'b0;
    fill_valid_o = 1'b0;

    unique case (state_q)
      StIdle: begin
        if (tr_valid_i) begin
          tag_d   = tr_tag_i;
          pasid_d = tr_pasid_i;
          vpn_d   = tr_vpn_i;
          write_d = tr_write_i;
          state_d = StLookup;
        end
      end
      StLookup: begin
        if (lookup_i.hit && (!write_q || lookup_i.xlat.w || inject_i[InjWriteHitsRo])) begin
          xlat_d   = lookup_i.xlat;
          xlat_d.w = lookup_i.xlat.w && write_q;  // NW=1: no W
          state_d  = StSend;
        end else begin
          walk_start_o = 1'b1;
          nofill_d     = 1'b0;
          nofill_1g_d  = 1'b0;
          state_d      = StWalk;
        end
      end
      StWalk: begin
        if (inval_hit) begin
          nofill_d = 1'b1;
        end
        if (inval_hit_1g) begin
          nofill_1g_d = 1'b1;
        end
        if (walk_done_i) begin
          fill_valid_o = walk_result_i.r && walk_fill_ok;
          xlat_d       = walk_result_i;
          state_d      = StSend;
        end
      end
      StSend: begin
        if (cpl_ready_i) begin
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
      state_q     <= StIdle;
      tag_q       <= '0;
      pasid_q     <= '0;
      vpn_q       <= '0;
      write_q     <= 1'b0;
      xlat_q      <= '0;
      nofill_q    <= 1'b0;
      nofill_1g_q <= 1'b0;
    end else begin
      state_q     <= state_d;
      tag_q       <= tag_d;
      pasid_q     <= pasid_d;
      vpn_q       <= vpn_d;
      write_q     <= write_d;
      xlat_q      <= xlat_d;
      nofill_q    <= nofill_d;
      nofill_1g_q <= nofill_1g_d;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // The walker is free whenever a walk starts.
  WalkerFree_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    walk_start_o |-> walk_idle_i);
  // No W for a No-Write request.
  NoWriteHonoured_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    cpl_valid_o |-> (write_q || !cpl_xlat_o.w));
  // A write request (NW=0) that hits an entry without W walks again: the
  // cached entry lacks W because D was clear (or the page was read-only)
  // when it was filled, and only a walk can grant W now.
  WriteHitRoWalks_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    (state_q == StLookup && write_q && lookup_i.hit && !lookup_i.xlat.w) |-> walk_start_o);
  // Never cache a translation without read permission.
  NoFillWithoutR_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    fill_valid_o |-> fill_xlat_o.r);
  // Walker results only arrive during a walk.
  DoneOnlyInWalk_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    walk_done_i |-> state_q == StWalk);

endmodule
