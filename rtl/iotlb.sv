// IOTLB: set-associative cache of leaf translations, tagged by PASID.
//
// A 4 KiB entry lives in the set indexed by VPN[IdxW-1:0], a 2 MiB entry in
// the set indexed by VPN[9+IdxW-1:9], a 1 GiB entry in the set indexed by
// VPN[18+IdxW-1:18]; a lookup reads the three sets in the same cycle (the
// smallest page that hits wins: 4 KiB over 2 MiB over 1 GiB). IOTINVAL.VMA
// invalidates by (PASID, address range), by PASID, by address range or
// everything, in one cycle; the range is a naturally aligned block of
// 2^inval_log2n_i pages and every entry (4 KiB, 2 MiB or 1 GiB) that
// overlaps it is dropped, so an address inside a 2 MiB or 1 GiB entry hits
// it. Replacement: an entry with the same
// tag is overwritten, else the lowest invalid way, else the set's round-robin
// pointer (which then advances). cfg_ways_i (held after reset) limits the
// ways in use per set to [0, n): fills take only those and the pointers wrap
// at n (0 or >= Ways: all); lookups and invalidations search every way (the
// others stay invalid). cfg_sets_i (held after reset) limits the sets in use
// to [0, s), s = cfg_sets_i rounded down to a power of two (0 or >= Sets:
// all): the set index is masked to s sets for lookups, probes and fills
// alike, so pages of different sets of the whole IOTLB compete in one, and
// the other sets are never filled. Invalidation compares every entry's own
// tag and uses no index, so it is the same whatever the limit.
//
// Same-cycle fill and invalidation: the invalidation is applied after the
// fill, so a fill that the invalidation covers does not survive.
//
// Storage: the valid bits and round-robin pointers are registers; the tag
// and translation fields are a memory written only on a fill (no reset: the
// valid bit says whether they mean anything). Entry (set s, way w) is at
// index s * Ways + w.

module iotlb
  import shootdown_pkg::*;
#(
  parameter int unsigned Sets = 16,  // power of two, 2 .. 2^18 (1 GiB entries: VPN bits 35:18)
  parameter int unsigned Ways = 4    // power of two, >= 2
) (
  input  logic                        clk_i,
  input  logic                        rst_ni,
  input  inject_t                     inject_i,  // bug injection (shootdown_pkg Inj*)
  input  logic [7:0]                  cfg_ways_i,  // ways in use per set; 0 or >= Ways: all
  input  logic [7:0]                  cfg_sets_i,  // sets in use (rounded down to 2^k); 0 or >= Sets: all
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

  localparam int unsigned IdxW = $clog2(Sets);
  localparam int unsigned WayW = $clog2(Ways);
  localparam int unsigned N    = Sets * Ways;

  typedef logic [IdxW-1:0] idx_t;
  typedef logic [WayW-1:0] way_t;
  typedef logic [$clog2(N)-1:0] slot_t;

  logic [N-1:0] valid_d, valid_q;
  way_t         rr_d [Sets];
  way_t         rr_q [Sets];
  pasid_t       pasid_q [N];
  vpn_t         vpn_q [N];    // 2 MiB / 1 GiB entries: low 9 / 18 bits clear
  xlat_t        xlat_q [N];

  // Sets in use: the largest power of two <= cfg_sets_i (0 or >= Sets: all);
  // the set index keeps only its low bits.
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

  idx_t set_mask;
  assign set_mask = idx_t'(sets_in_use(cfg_sets_i) - 1);

  // The set of an entry of size `size` holding page `vpn`: indexed by the
  // VPN bits just above the page's own.
  function automatic idx_t set_of(vpn_t vpn, pgsz_e size);
    idx_t idx;
    if (size == Pg1G) begin
      idx = vpn[Log2Pages1G +: IdxW];
    end else if (size == Pg2M) begin
      idx = vpn[Log2Pages2M +: IdxW];
    end else begin
      idx = vpn[IdxW-1:0];
    end
    return idx & set_mask;
  endfunction

  function automatic slot_t slot(idx_t set, int unsigned way);
    return slot_t'(int'(set) * Ways + way);
  endfunction

  // The `size` entry of `vpn`'s set for that size that translates `vpn`
  // (the last way that does). any_pasid: match entries of every PASID
  // (InjLookupAnyPasid).
  function automatic lookup_t lookup_size(pgsz_e size, pasid_t pasid, vpn_t vpn,
                                          logic any_pasid);
    lookup_t res;
    slot_t   base;
    vpn_t    mask;
    res  = '0;
    base = slot(set_of(vpn, size), 0);
    mask = vpn_mask(xlat_log2n(size));
    for (int unsigned w = 0; w < Ways; w++) begin
      if (valid_q[base + slot_t'(w)] && xlat_q[base + slot_t'(w)].size == size &&
          (any_pasid || pasid_q[base + slot_t'(w)] == pasid) &&
          (vpn_q[base + slot_t'(w)] & mask) == (vpn & mask)) begin
        res = '{hit: 1'b1, xlat: xlat_q[base + slot_t'(w)]};
      end
    end
    return res;
  endfunction

  // The three sets in one cycle; the smallest page that hits wins.
  function automatic lookup_t lookup(pasid_t pasid, vpn_t vpn, logic any_pasid);
    lookup_t res;
    res = lookup_size(Pg4K, pasid, vpn, any_pasid);
    if (!res.hit) begin
      res = lookup_size(Pg2M, pasid, vpn, any_pasid);
    end
    if (!res.hit) begin
      res = lookup_size(Pg1G, pasid, vpn, any_pasid);
    end
    return res;
  endfunction

  assign lookup_o = lookup(lookup_pasid_i, lookup_vpn_i, inject_i[InjLookupAnyPasid]);

  for (genvar p = 0; p < NumProbes; p++) begin : gen_probe
    assign probe_o[p] = probe_word(lookup(probe_pasid_i[p], probe_vpn_i[p], 1'b0),
                                       probe_vpn_i[p]);
  end

  // ---------------------------------------------------------------------------
  // Next state: fill, then invalidate
  // ---------------------------------------------------------------------------
  // Ways in use: fills and the round-robin pointers stay below it.
  int unsigned used;
  assign used = (cfg_ways_i == '0 || 32'(cfg_ways_i) >= Ways) ? Ways : 32'(cfg_ways_i);

  idx_t        fill_set;
  way_t        fill_way;
  logic        fill_found;
  vpn_t        fill_tag;
  slot_t       fill_slot;

  always_comb begin : comb_fill_slot
    fill_set   = set_of(fill_vpn_i, fill_xlat_i.size);
    fill_tag   = xlat_base(fill_vpn_i, fill_xlat_i.size);
    fill_way   = (32'(rr_q[fill_set]) < used) ? rr_q[fill_set] : '0;
    fill_found = 1'b0;
    // 1. an entry with the same tag
    for (int unsigned w = 0; w < Ways; w++) begin
      if (!fill_found && valid_q[slot(fill_set, w)] && pasid_q[slot(fill_set, w)] == fill_pasid_i &&
          vpn_q[slot(fill_set, w)] == fill_tag &&
          xlat_q[slot(fill_set, w)].size == fill_xlat_i.size) begin
        fill_way   = way_t'(w);
        fill_found = 1'b1;
      end
    end
    // 2. the lowest invalid way in use
    for (int unsigned w = 0; w < Ways; w++) begin
      if (!fill_found && !valid_q[slot(fill_set, w)] && w < used) begin
        fill_way   = way_t'(w);
        fill_found = 1'b1;
      end
    end
    fill_slot = slot(fill_set, int'(fill_way));
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

  always_comb begin : comb_next
    valid_d = valid_q;
    rr_d    = rr_q;
    if (fill_valid_i) begin
      valid_d[fill_slot] = 1'b1;
      if (!fill_found) begin
        // 3. round robin over the ways in use
        rr_d[fill_set] = (32'(fill_way) + 1 >= used) ? '0 : fill_way + way_t'(1);
      end
    end
    if (inval_valid_i) begin
      for (int unsigned i = 0; i < N; i++) begin
        // the entry as it is after this cycle's fill
        if ((!inval_pv_i ||
             ((fill_valid_i && slot_t'(i) == fill_slot) ? fill_pasid_i : pasid_q[i]) == inval_pasid) &&
            !inval_skips_large((fill_valid_i && slot_t'(i) == fill_slot) ? fill_xlat_i.size
                                                                         : xlat_q[i].size) &&
            (!inval_av_i ||
             ((fill_valid_i && slot_t'(i) == fill_slot)
                ? blocks_overlap(fill_tag, xlat_log2n(fill_xlat_i.size), inval_vpn_i,
                                  inval_log2n_i)
                : blocks_overlap(vpn_q[i], xlat_log2n(xlat_q[i].size), inval_vpn_i,
                                  inval_log2n_i)))) begin
          valid_d[i] = 1'b0;
        end
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      valid_q <= '0;
      rr_q    <= '{default: '0};
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
  // Assertions
  // ---------------------------------------------------------------------------
  // The entries, valid or not, that an IOTINVAL.VMA (pv, pasid, av, range)
  // names, by the specification shootdown_pkg::inval_names_entry (docs/
  // socket.md, "Command queue"), not by the logic above; none when `inval`
  // is 0 (which keeps the checks cheap).
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

  // ---------------------------------------------------------------------------
  // Cover points (docs/socket.md, "Coverage")
  // ---------------------------------------------------------------------------
  // iotlb_inval: an IOTINVAL.VMA by range size (one page, 2..15, 16..511,
  // 512+ pages, no address: the whole PASID or everything) x where the IOTLB
  // held a translation it names: the range's first page, a page strictly
  // inside, its last page (a 2 MiB or 1 GiB entry holds each page it
  // covers), or none. inval_1g: an IOTINVAL.VMA (any form) names a valid
  // 1 GiB entry. The entries as they are before the edge; computed only in
  // the cycle of an invalidation.
  logic [1:0] cov_size;
  logic [2:0] cov_pos;      // {last, inside, first}
  logic       cov_held;     // any valid entry the invalidation names
  logic       cov_held_1g;  // ... a 1 GiB one

  always_comb begin : comb_cov_inval
    cov_size    = '0;
    cov_pos     = '0;
    cov_held    = 1'b0;
    cov_held_1g = 1'b0;
    if (inval_valid_i) begin
      cov_size = cov_range_size(inval_log2n_i);
      for (int unsigned i = 0; i < N; i++) begin
        if (valid_q[i] && inval_names_entry(inval_pv_i, inval_pasid_i, inval_av_i, inval_vpn_i,
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
    if (rst_ni && inval_valid_i && inval_av_i) begin
      IotlbInvPageHeld_C: cover (cov_size == 2'd0 && cov_held);
      IotlbInvPageEmpty_C: cover (cov_size == 2'd0 && !cov_held);
      IotlbInvSmallStart_C: cover (cov_size == 2'd1 && cov_pos[0]);
      IotlbInvSmallMiddle_C: cover (cov_size == 2'd1 && cov_pos[1]);
      IotlbInvSmallEnd_C: cover (cov_size == 2'd1 && cov_pos[2]);
      IotlbInvSmallEmpty_C: cover (cov_size == 2'd1 && !cov_held);
      IotlbInvMediumStart_C: cover (cov_size == 2'd2 && cov_pos[0]);
      IotlbInvMediumMiddle_C: cover (cov_size == 2'd2 && cov_pos[1]);
      IotlbInvMediumEnd_C: cover (cov_size == 2'd2 && cov_pos[2]);
      IotlbInvMediumEmpty_C: cover (cov_size == 2'd2 && !cov_held);
      IotlbInvLargeStart_C: cover (cov_size == 2'd3 && cov_pos[0]);
      IotlbInvLargeMiddle_C: cover (cov_size == 2'd3 && cov_pos[1]);
      IotlbInvLargeEnd_C: cover (cov_size == 2'd3 && cov_pos[2]);
      IotlbInvLargeEmpty_C: cover (cov_size == 2'd3 && !cov_held);
    end
    if (rst_ni && inval_valid_i && !inval_av_i) begin
      IotlbInvPasidHeld_C: cover (cov_held);
      IotlbInvPasidEmpty_C: cover (!cov_held);
    end
    if (rst_ni && inval_valid_i) begin
      IotlbInv1gHeld_C: cover (cov_held_1g);
    end
  end

endmodule
