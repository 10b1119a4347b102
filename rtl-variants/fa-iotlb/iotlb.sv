// IOTLB, fully-associative variant: a drop-in replacement for rtl/iotlb.sv
// (same module name, parameters and ports), built through shootdown's RTL
// socket: SHOOTDOWN_RTL=rtl-variants/fa-iotlb (docs/socket.md, "Bring your
// own RTL").
//
// Sets * Ways entries, each able to hold any page (4 KiB, 2 MiB or 1 GiB): a
// lookup compares every entry in the same cycle (the smallest page that hits
// wins: 4 KiB over 2 MiB over 1 GiB). Sets and Ways only size the array;
// there is no index. IOTINVAL.VMA invalidates by (PASID, address range), by
// PASID, by address range or everything, in one cycle; the range is a
// naturally aligned block of 2^inval_log2n_i pages and every entry (4 KiB,
// 2 MiB or 1 GiB) that overlaps it is dropped, so an address inside a 2 MiB
// or 1 GiB entry hits it. Replacement: an entry with the same tag is
// overwritten, else the lowest invalid entry, else the entry under the one
// round-robin pointer (which then advances). cfg_ways_i (held after reset;
// the port of rtl/iotlb.sv, which limits the ways per set) limits the entries
// in use to [0, n) here: fills take only those and the pointer wraps at n
// (0 or >= Sets * Ways: all); lookups and invalidations search every entry
// (the others stay invalid). cfg_sets_i (the sets in use of rtl/iotlb.sv,
// s = cfg_sets_i rounded down to a power of two; 0 or >= Sets: all) indexes
// nothing here: it only scales the entries in use to the sets in use,
// sets_in_use * ways_in_use with ways_in_use = (entries cfg_ways_i gives) /
// Sets, at least 1 entry. With cfg_ways_i = 0 that is s * Ways entries, the
// capacity of rtl/iotlb.sv with s sets in use; with cfg_sets_i = 0 it is
// what cfg_ways_i gives alone.
//
// Same-cycle fill and invalidation: the invalidation is applied after the
// fill, so a fill that the invalidation covers does not survive.
//
// Storage: the valid bits and the round-robin pointer are registers; the tag
// and translation fields are a memory written only on a fill (no reset: the
// valid bit says whether they mean anything).

module iotlb
  import shootdown_pkg::*;
#(
  parameter int unsigned Sets = 16,  // Sets * Ways entries: a power of two, >= 4
  parameter int unsigned Ways = 4
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  input  inject_t                     inject_i,  // bug injection (shootdown_pkg Inj*)
  input  logic [7:0]                  cfg_ways_i,  // entries in use; 0 or >= Sets * Ways: all
  input  logic [7:0]                  cfg_sets_i,  // scales them to s of Sets sets; 0 or >= Sets: all
  // lookup (ATS Translation Request server), combinational
  input  pasid_t                      lookup_pasid_i,
  input  vpn_t                        lookup_vpn_i,
  output lookup_t                     lookup_o,
  // fill with a walk result
  input  logic                        fill_valid_i,
  input  pasid_t                      fill_pasid_i,
  input  vpn_t                        fill_vpn_i,
  input  xlat_t                       fill_xlat_i,
  // IOTINVAL.VMA
  input  logic                        inval_valid_i,
  input  logic                        inval_av_i,     // address valid
  input  logic                        inval_pv_i,     // PASID valid
  input  pasid_t                      inval_pasid_i,
  input  vpn_t                        inval_vpn_i,    // base page of the range
  input  log2n_t                      inval_log2n_i,  // log2 of its page count
  // debug probes (docs/socket.md), combinational
  input  pasid_t [NumProbes-1:0]      probe_pasid_i,
  input  vpn_t   [NumProbes-1:0]      probe_vpn_i,
  output logic   [NumProbes-1:0][63:0] probe_o
);

  localparam int unsigned N = Sets * Ways;

  typedef logic [$clog2(N)-1:0] slot_t;

  logic [N-1:0] valid_d, valid_q;
  slot_t        rr_d, rr_q;
  pasid_t       pasid_q [N];
  vpn_t         vpn_q [N];    // 2 MiB / 1 GiB entries: low 9 / 18 bits clear
  xlat_t        xlat_q [N];

  // Every entry at once; the smallest page that hits wins (4 KiB over 2 MiB
  // over 1 GiB). any_pasid: match entries of every PASID
  // (InjLookupAnyPasid).
  function automatic lookup_t lookup(pasid_t pasid, vpn_t vpn, logic any_pasid);
    lookup_t hit_4k;
    lookup_t hit_2m;
    lookup_t hit_1g;
    hit_4k = '0;
    hit_2m = '0;
    hit_1g = '0;
    for (int unsigned i = 0; i < N; i++) begin
      if (entry_hit(valid_q[i], any_pasid ? pasid : pasid_q[i], vpn_q[i], xlat_q[i].size, pasid,
                    vpn)) begin
        if (xlat_q[i].size == Pg1G) begin
          hit_1g = '{hit: 1'b1, xlat: xlat_q[i]};
        end else if (xlat_q[i].size == Pg2M) begin
          hit_2m = '{hit: 1'b1, xlat: xlat_q[i]};
        end else begin
          hit_4k = '{hit: 1'b1, xlat: xlat_q[i]};
        end
      end
    end
    return hit_4k.hit ? hit_4k : (hit_2m.hit ? hit_2m : hit_1g);
  endfunction

  assign lookup_o = lookup(lookup_pasid_i, lookup_vpn_i, inject_i[InjLookupAnyPasid]);

  for (genvar p = 0; p < NumProbes; p++) begin : gen_probe
    assign probe_o[p] = probe_word(lookup(probe_pasid_i[p], probe_vpn_i[p], 1'b0),
                                       probe_vpn_i[p]);
  end

  // ---------------------------------------------------------------------------
  // Next state: fill, then invalidate
  // ---------------------------------------------------------------------------
  // Sets in use as rtl/iotlb.sv counts them: the largest power of two <=
  // cfg_sets_i (0 or >= Sets: all).
  function automatic int unsigned sets_in_use(logic [7:0] n);
    int unsigned s;
    if (n == '0 || 32'(n) >= Sets) begin
      return Sets;
    end
    s = 1;
    for (int unsigned b = 1; b < 8; b++) begin
      if (n[b]) begin
        s = 32'd1 << b;
      end
    end
    return s;
  endfunction

  // Entries in use: fills and the round-robin pointer stay below it. The
  // entries cfg_ways_i gives, scaled by the sets in use (at least 1).
  int unsigned ways_used;
  int unsigned scaled;
  int unsigned used;
  assign ways_used = (cfg_ways_i == '0 || 32'(cfg_ways_i) >= N) ? N : 32'(cfg_ways_i);
  assign scaled    = ways_used * sets_in_use(cfg_sets_i) / Sets;
  assign used      = (scaled == 0) ? 1 : scaled;

  logic  fill_found;
  vpn_t  fill_tag;
  slot_t fill_slot;

  always_comb begin : comb_fill_slot
    fill_tag   = xlat_base(fill_vpn_i, fill_xlat_i.size);
    fill_slot  = (32'(rr_q) < used) ? rr_q : '0;
    fill_found = 1'b0;
    // 1. an entry with the same tag
    for (int unsigned i = 0; i < N; i++) begin
      if (!fill_found && valid_q[i] && pasid_q[i] == fill_pasid_i && vpn_q[i] == fill_tag &&
          xlat_q[i].size == fill_xlat_i.size) begin
        fill_slot  = slot_t'(i);
        fill_found = 1'b1;
      end
    end
    // 2. the lowest invalid entry in use
    for (int unsigned i = 0; i < N; i++) begin
      if (!fill_found && !valid_q[i] && i < used) begin
        fill_slot  = slot_t'(i);
        fill_found = 1'b1;
      end
    end
  end

  // Bug injection. InjInvWrongPasid: match entries against PASID 0 instead
  // of the command's PASID. InjInvMisses2m: a one-page invalidation does not
  // drop an entry larger than 4 KiB, 2 MiB or 1 GiB (size: the entry's size
  // after this cycle's fill).
  pasid_t inval_pasid;
  assign inval_pasid = inject_i[InjInvWrongPasid] ? '0 : inval_pasid_i;

  function automatic logic inval_skips_large(pgsz_e size);
    return inject_i[InjInvMisses2m] && inval_av_i && (size != Pg4K) && (inval_log2n_i == '0);
  endfunction

  // Does the invalidation drop an entry (PASID, tag, size)?
  function automatic logic inval_hits(pasid_t e_pasid, vpn_t e_vpn, pgsz_e e_size);
    return (!inval_pv_i || e_pasid == inval_pasid) && !inval_skips_large(e_size) &&
           (!inval_av_i || blocks_overlap(e_vpn, xlat_log2n(e_size), inval_vpn_i, inval_log2n_i));
  endfunction

  always_comb begin : comb_next
    valid_d = valid_q;
    rr_d    = rr_q;
    if (fill_valid_i) begin
      valid_d[fill_slot] = 1'b1;
      if (!fill_found) begin
        // 3. round robin over the entries in use
        rr_d = (32'(fill_slot) + 1 >= used) ? '0 : fill_slot + slot_t'(1);
      end
    end
    if (inval_valid_i) begin
      for (int unsigned i = 0; i < N; i++) begin
        // the entry as it is after this cycle's fill
        if ((fill_valid_i && slot_t'(i) == fill_slot)
              ? inval_hits(fill_pasid_i, fill_tag, fill_xlat_i.size)
              : inval_hits(pasid_q[i], vpn_q[i], xlat_q[i].size)) begin
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
      pasid_q[fill_slot] <= fill_pasid_i;
      vpn_q[fill_slot]   <= fill_tag;
      xlat_q[fill_slot]  <= fill_xlat_i;
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions (those of rtl/iotlb.sv: the same contract)
  // ---------------------------------------------------------------------------
  // The entries, valid or not, that an IOTINVAL.VMA (pv, pasid, av, range)
  // names, by the specification shootdown_pkg::inval_names_entry (docs/
  // socket.md, "Command queue"), not by inval_hits; none when `inval` is 0
  // (which keeps the checks cheap).
  function automatic logic [N-1:0] inval_names(logic inval, logic pv, pasid_t pasid, logic av,
                                               vpn_t vpn, log2n_t log2n);
    logic [N-1:0] names;
    names = '0;
    if (inval) begin
      for (int unsigned i = 0; i < N; i++) begin
        names[i] = inval_names_entry(pv, pasid, av, vpn, log2n,
                                     pasid_q[i], vpn_q[i], xlat_q[i].size);
      end
    end
    return names;
  endfunction

  // IOTINVAL.VMA is complete: after it no valid entry it names is left, so a
  // one-page invalidation drops a 2 MiB or 1 GiB entry containing the page
  // and a PASID-specific one every entry of that PASID in the range.
  InvalComplete_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    inval_valid_i |=> !(|(valid_q & inval_names($past(inval_valid_i), $past(inval_pv_i),
                                                   $past(inval_pasid_i), $past(inval_av_i),
                                                   $past(inval_vpn_i), $past(inval_log2n_i)))));
  // ... and exact: an entry only goes invalid through an IOTINVAL.VMA that
  // names it (so a PASID-specific invalidation keeps other PASIDs' entries).
  InvalOnlyNamed_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    !(|($past(valid_q) & ~valid_q & ~inval_names($past(inval_valid_i), $past(inval_pv_i),
                                                   $past(inval_pasid_i), $past(inval_av_i),
                                                   $past(inval_vpn_i), $past(inval_log2n_i)))));
  // A lookup answers only from an entry of the request's PASID: what the
  // entries of that PASID hold for the page, nothing another PASID cached.
  LookupOwnPasid_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    lookup_o == lookup(lookup_pasid_i, lookup_vpn_i, 1'b0));

endmodule
