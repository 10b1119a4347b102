// Address Translation Cache of the ATS device: fully associative, 4 KiB,
// 2 MiB and 1 GiB entries tagged by PASID (a lookup's hit: the lowest
// matching entry, whatever its size).
//
// Install overwrites an entry with the same tag, else takes the lowest
// invalid entry, else the round-robin victim (the pointer then advances).
// cfg_entries_i (held after reset) limits the entries in use to [0, n):
// installs take only those, the pointer wraps at n (0 or >= Entries: all).
// Lookups and invalidations search every entry (the others stay invalid).
// Invalidate (PCIe ATS Invalidate Request) drops, in one cycle, every entry
// of the PASID (or of every PASID when pv_i=0) that overlaps the range of
// 2^log2n pages at base. Same-cycle install and invalidate: the invalidation
// is applied last.
//
// Storage: valid bits and the round-robin pointer are registers; tags and
// translations are a memory written only on install (no reset).

module atc
  import shootdown_pkg::*;
#(
  parameter int unsigned Entries = 8  // power of two, >= 2
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  input  inject_t                     inject_i,  // bug injection (shootdown_pkg Inj*)
  input  logic [7:0]                  cfg_entries_i,  // entries in use; 0 or >= Entries: all
  // lookup (DMA engine), combinational
  input  pasid_t                      lookup_pasid_i,
  input  vpn_t                        lookup_vpn_i,
  output lookup_t                     lookup_o,
  // install a Translation Completion
  input  logic                        fill_valid_i,
  input  pasid_t                      fill_pasid_i,
  input  vpn_t                        fill_vpn_i,
  input  xlat_t                       fill_xlat_i,
  // Invalidate Request
  input  logic                        inval_valid_i,
  input  logic                        inval_pv_i,
  input  pasid_t                      inval_pasid_i,
  input  vpn_t                        inval_vpn_i,
  input  log2n_t                      inval_log2n_i,
  // debug probes (docs/socket.md), combinational
  input  pasid_t [NumProbes-1:0]      probe_pasid_i,
  input  vpn_t   [NumProbes-1:0]      probe_vpn_i,
  output logic   [NumProbes-1:0][63:0] probe_o
);

  localparam int unsigned IdxW = $clog2(Entries);
  typedef logic [IdxW-1:0] idx_t;

  logic [Entries-1:0] valid_d, valid_q;
  idx_t               rr_d, rr_q;
  pasid_t             pasid_q [Entries];
  vpn_t               vpn_q [Entries];   // 2 MiB / 1 GiB entries: low 9 / 18 bits clear
  xlat_t              xlat_q [Entries];

  // Lowest matching entry wins.
  function automatic lookup_t lookup(pasid_t pasid, vpn_t vpn);
    lookup_t res;
    res = '0;
    for (int i = int'(Entries) - 1; i >= 0; i--) begin
      if (entry_hit(valid_q[i], pasid_q[i], vpn_q[i], xlat_q[i].size, pasid, vpn)) begin
        res = '{hit: 1'b1, xlat: xlat_q[i]};
      end
    end
    return res;
  endfunction

  assign lookup_o = lookup(lookup_pasid_i, lookup_vpn_i);

  for (genvar p = 0; p < NumProbes; p++) begin : gen_probe
    assign probe_o[p] = probe_word(lookup(probe_pasid_i[p], probe_vpn_i[p]), probe_vpn_i[p]);
  end

  // Entries in use: installs and the round-robin pointer stay below it.
  int unsigned used;
  assign used = (cfg_entries_i == '0 || 32'(cfg_entries_i) >= Entries) ? Entries
                                                                         : 32'(cfg_entries_i);

  idx_t fill_idx;
  logic fill_found;
  vpn_t fill_tag;

  always_comb begin : comb_fill_slot
    fill_tag   = xlat_base(fill_vpn_i, fill_xlat_i.size);
    fill_idx   = (32'(rr_q) < used) ? rr_q : '0;
    fill_found = 1'b0;
    for (int unsigned i = 0; i < Entries; i++) begin
      if (!fill_found && valid_q[i] && pasid_q[i] == fill_pasid_i && vpn_q[i] == fill_tag &&
          xlat_q[i].size == fill_xlat_i.size) begin
        fill_idx   = idx_t'(i);
        fill_found = 1'b1;
      end
    end
    for (int unsigned i = 0; i < Entries; i++) begin
      if (!fill_found && !valid_q[i] && i < used) begin
        fill_idx   = idx_t'(i);
        fill_found = 1'b1;
      end
    end
  end

  // Bug injection. InjInvWrongPasid: match entries against PASID 0 instead
  // of the request's PASID. InjInvMisses2m: a one-page Invalidate Request
  // does not drop an entry larger than 4 KiB (2 MiB or 1 GiB).
  pasid_t inval_pasid;
  assign inval_pasid = inject_i[InjInvWrongPasid] ? '0 : inval_pasid_i;

  function automatic logic inval_skips_large(pgsz_e size);
    return inject_i[InjInvMisses2m] && (size != Pg4K) && (inval_log2n_i == '0);
  endfunction

  always_comb begin : comb_next
    valid_d = valid_q;
    rr_d    = rr_q;
    if (fill_valid_i) begin
      valid_d[fill_idx] = 1'b1;
      if (!fill_found) begin
        rr_d = (32'(fill_idx) + 1 >= used) ? '0 : fill_idx + idx_t'(1);
      end
    end
    if (inval_valid_i) begin
      for (int unsigned i = 0; i < Entries; i++) begin
        // the entry as it is after this cycle's install
        if (fill_valid_i && idx_t'(i) == fill_idx) begin
          if ((!inval_pv_i || fill_pasid_i == inval_pasid) &&
              !inval_skips_large(fill_xlat_i.size) &&
              blocks_overlap(fill_tag, xlat_log2n(fill_xlat_i.size), inval_vpn_i, inval_log2n_i)) begin
            valid_d[i] = 1'b0;
          end
        end else if ((!inval_pv_i || pasid_q[i] == inval_pasid) &&
                     !inval_skips_large(xlat_q[i].size) &&
                     blocks_overlap(vpn_q[i], xlat_log2n(xlat_q[i].size), inval_vpn_i,
                                    inval_log2n_i)) begin
          valid_d[i] = 1'b0;
        end
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      valid_q <= '0;
      rr_q    <= '0;
    end else begin
      valid_q <= valid_d;
      rr_q    <= rr_d;
    end
  end

  always_ff @(posedge clk_i) begin : ff_storage
    if (fill_valid_i) begin
      pasid_q[fill_idx] <= fill_pasid_i;
      vpn_q[fill_idx]   <= fill_tag;
      xlat_q[fill_idx]  <= fill_xlat_i;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // The ATC only holds translations with read permission.
  FillOnlyReadable_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    fill_valid_i |-> fill_xlat_i.r);

  // The entries, valid or not, that an Invalidate Request (pv, pasid, range)
  // names (PCIe ATS: the device drops every translation that overlaps the
  // request), by the specification shootdown_pkg::inval_names_entry with an
  // address always given, not by the logic above; none when `inval` is 0
  // (which keeps the checks cheap).
  function automatic logic [Entries-1:0] inval_names(logic inval, logic pv, pasid_t pasid,
                                                     vpn_t vpn, log2n_t log2n);
    logic [Entries-1:0] names;
    names = '0;
    if (inval) begin
      for (int unsigned i = 0; i < Entries; i++) begin
        names[i] = inval_names_entry(pv, pasid, 1'b1, vpn, log2n,
                                     pasid_q[i], vpn_q[i], xlat_q[i].size);
      end
    end
    return names;
  endfunction

  // An Invalidate Request is complete: after it no valid entry it names is
  // left, so a one-page request drops a 2 MiB or 1 GiB entry containing the
  // page and a PASID-specific one every entry of that PASID in the range.
  InvalComplete_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    inval_valid_i |=> !(|(valid_q & inval_names($past(inval_valid_i), $past(inval_pv_i),
                                                   $past(inval_pasid_i), $past(inval_vpn_i),
                                                   $past(inval_log2n_i)))));
  // ... and exact: an entry only goes invalid through an Invalidate Request
  // that names it (so a PASID-specific request keeps other PASIDs' entries).
  InvalOnlyNamed_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    !(|($past(valid_q) & ~valid_q & ~inval_names($past(inval_valid_i), $past(inval_pv_i),
                                                   $past(inval_pasid_i), $past(inval_vpn_i),
                                                   $past(inval_log2n_i)))));

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage")
  // ---------------------------------------------------------------------------
  // atc_inval: an Invalidate Request by range size (one page, 2..15, 16..511,
  // 512+ pages) x where the ATC held a translation it names: the range's
  // first page, a page strictly inside, its last page (a 2 MiB or 1 GiB
  // entry holds each page it covers), or none. inval_1g: an Invalidate
  // Request names a valid 1 GiB entry. The entries as they are before the
  // edge; computed only in the cycle of an Invalidate Request.
  logic [1:0] cov_size;
  logic [2:0] cov_pos;      // {last, inside, first}
  logic       cov_held;     // any valid entry the request names
  logic       cov_held_1g;  // ... a 1 GiB one

  always_comb begin : comb_cov_inval
    cov_size    = '0;
    cov_pos     = '0;
    cov_held    = 1'b0;
    cov_held_1g = 1'b0;
    if (inval_valid_i) begin
      cov_size = cov_range_size(inval_log2n_i);
      for (int unsigned i = 0; i < Entries; i++) begin
        if (valid_q[i] && inval_names_entry(inval_pv_i, inval_pasid_i, 1'b1, inval_vpn_i,
                                            inval_log2n_i, pasid_q[i], vpn_q[i],
                                            xlat_q[i].size)) begin
          cov_held    = 1'b1;
          cov_held_1g = cov_held_1g || (xlat_q[i].size == Pg1G);
          cov_pos     = cov_pos | cov_range_pos(vpn_q[i], xlat_log2n(xlat_q[i].size),
                                                inval_vpn_i, inval_log2n_i);
        end
      end
    end
  end

  // immediate covers under the invalidation: a cycle without one costs a test
  always_ff @(posedge clk_i) begin : ff_cov_inval
    if (rst_ni && inval_valid_i) begin
      AtcInvPageHeld_C: cover (cov_size == 2'd0 && cov_held);
      AtcInvPageEmpty_C: cover (cov_size == 2'd0 && !cov_held);
      AtcInvSmallStart_C: cover (cov_size == 2'd1 && cov_pos[0]);
      AtcInvSmallMiddle_C: cover (cov_size == 2'd1 && cov_pos[1]);
      AtcInvSmallEnd_C: cover (cov_size == 2'd1 && cov_pos[2]);
      AtcInvSmallEmpty_C: cover (cov_size == 2'd1 && !cov_held);
      AtcInvMediumStart_C: cover (cov_size == 2'd2 && cov_pos[0]);
      AtcInvMediumMiddle_C: cover (cov_size == 2'd2 && cov_pos[1]);
      AtcInvMediumEnd_C: cover (cov_size == 2'd2 && cov_pos[2]);
      AtcInvMediumEmpty_C: cover (cov_size == 2'd2 && !cov_held);
      AtcInvLargeStart_C: cover (cov_size == 2'd3 && cov_pos[0]);
      AtcInvLargeMiddle_C: cover (cov_size == 2'd3 && cov_pos[1]);
      AtcInvLargeEnd_C: cover (cov_size == 2'd3 && cov_pos[2]);
      AtcInvLargeEmpty_C: cover (cov_size == 2'd3 && !cov_held);
      AtcInv1gHeld_C: cover (cov_held_1g);
    end
  end

endmodule
