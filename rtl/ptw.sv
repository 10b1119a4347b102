// x86-64 4-level page-table walker (48-bit VA, 4 KiB pages, 2 MiB PD leaves
// and 1 GiB PDPT leaves).
//
// The root comes from the PASID table: entry `pasid` at
// cfg_pasid_table_i + pasid * 8 holds the PML4 PA in bits 51:12, a valid
// bit in bit 0 and SRE in bit 1 (supervisor requests: the PASID is bound to
// the kernel's address space, as VT-d's PASID entry with SRE for a
// supervisor-mode binding, and its requests are privileged: US is not
// asked for). Then one 8-byte read per level:
//   PML4 index VA[47:39], PDPT VA[38:30], PD VA[29:21], PT VA[20:12]
//   entry bits: P=0 RW=1 US=2 A=5 D=6 PS=7 NX=63, next table / page 51:12
// A PD entry with PS=1 is a 2 MiB leaf (PA bits 51:21), a PDPT entry with
// PS=1 a 1 GiB leaf (PA bits 51:30); the result's size says which (pgsz_e).
// PS in a PML4 entry is not looked at (reserved on x86-64).
//
// Result: R = P and (SRE, or US at every level); W = R and RW at every
// level (a supervisor write is checked as with CR0.WP set) AND the
// request is a write (PCIe ATS No-Write: a Translation Request with NW=1
// gets no W); NX is ignored (device accesses are reads and writes). An
// invalid PASID entry or a non-present entry gives R=W=0: "no translation",
// not an error.
//
// Accessed / Dirty (as SVA IOMMUs walking CPU tables do: VT-d, AMD v2,
// SMMUv3 HTTU, RISC-V): once a present leaf with R is found (4 KiB PTE,
// 2 MiB PDE or 1 GiB PDPTE with PS), the walker sets the leaf's A bit, and
// its D bit when it grants W, with one compare-and-swap of the leaf from the
// value it read to value | A | (W ? D : 0) (skipped when those bits are
// already set). The
// CAS returns the old word; if it differs from the value read, the CPU
// changed the entry meanwhile and the walk restarts from the PASID table.
// A and D of non-leaf entries are not set (a simplification: x86 hardware
// sets A in every entry it walks through; nothing in this model reads them).
//
// Paging-structure cache (PSC): PscEntries entries, fully associative, round
// robin replacement. An entry caches, for (PASID, VA bits 47:21), the PD-level
// entry's table pointer (the PT page) together with RW accumulated over the
// PML4, PDPT and PD entries: the result of the PASID-table / PML4 / PDPT / PD
// walk. A walk that hits goes straight to the PTE: one memory read instead of
// five. Every present non-leaf PD entry is cached, with US accumulated over
// the levels above and the PASID entry's SRE: a supervisor-only table (the
// kernel half of a process's page tables, which a user-mode request walks
// before it faults at the leaf) is cached as hardware caches it, and a hit
// still faults a user-mode request. A 2 MiB leaf (PD entry with PS=1) is not, and a walk that ends
// on a 1 GiB leaf (PDPT entry with PS=1) never reaches a PD entry, so it
// caches nothing either. As the RISC-V IOMMU has it for
// IOTINVAL.VMA, every IOTINVAL.VMA (address, range, PASID or all) drops every
// PSC entry of its PASID (every entry when PV=0): the CPU may have changed a
// non-leaf entry (THP split / COW fallback, a freed page table). A walk that
// sees an IOTINVAL.VMA of its PASID (or PV=0) while it runs does not fill the
// PSC ("do not fill", as the IOTLB), and neither does a walk that starts in
// the cycle of any IOTINVAL.VMA nor a PD read answered in such a cycle; a
// lookup in the cycle of an IOTINVAL.VMA misses. A walk restarted after a lost A/D CAS bypasses the PSC
// and walks from the PASID table. InjPscNotInvalidated (bug injection):
// IOTINVAL.VMA leaves the PSC alone.

module ptw
  import shootdown_pkg::*;
#(
  parameter int unsigned PscEntries = 4  // paging-structure cache entries (>= 1)
) (
  input  logic        clk_i,
  input  logic        rst_ni,
  input  logic [63:0] cfg_pasid_table_i,
  input  inject_t     inject_i,  // bug injection (shootdown_pkg Inj*)
  // IOTINVAL.VMA (one cycle): drops PSC entries of the PASID (all if !pv)
  input  logic        inval_valid_i,
  input  logic        inval_pv_i,
  input  pasid_t      inval_pasid_i,
  // walk request, taken when idle_o
  input  logic        start_i,
  input  pasid_t      pasid_i,
  input  vpn_t        vpn_i,
  input  logic        write_i,  // the request asks for write (NW=0)
  output logic        idle_o,
  // result, valid for the one cycle done_o is high
  output logic        done_o,
  output xlat_t       result_o,
  // memory reads and the leaf CAS (through the IOMMU memory arbiter)
  output logic        mem_req_valid_o,
  output logic [63:0] mem_req_addr_o,
  output logic        mem_req_cas_o,    // compare-and-swap of the leaf
  output logic [63:0] mem_req_cmp_o,    // CAS: expected old value
  output logic [63:0] mem_req_wdata_o,  // CAS: new value
  input  logic        mem_gnt_i,
  input  logic        mem_rsp_valid_i,
  input  logic [63:0] mem_rsp_rdata_i
);

  typedef enum logic [2:0] {
    StIdle,    // no walk
    StReq,     // read request for addr_q
    StRsp,     // waiting for the entry
    StCasReq,  // CAS request of the leaf at addr_q: cmp_q -> swap_q
    StCasRsp,  // waiting for the old value
    StDone     // result_q valid for one cycle
  } state_e;

  // Level of the entry being read: the PASID table, then PML4 (3) .. PT (0).
  typedef enum logic [2:0] {
    LvlPt    = 3'd0,
    LvlPd    = 3'd1,
    LvlPdpt  = 3'd2,
    LvlPml4  = 3'd3,
    LvlPasid = 3'd4
  } level_e;

  localparam int unsigned PteP  = 0;
  localparam int unsigned PasidSre = 1;  // PASID entry: supervisor requests
  localparam int unsigned PteRw = 1;
  localparam int unsigned PteUs = 2;
  localparam int unsigned PteA  = 5;
  localparam int unsigned PteD  = 6;
  localparam int unsigned PtePs = 7;

  state_e      state_d, state_q;
  level_e      level_d, level_q;
  logic [63:0] addr_d, addr_q;
  vpn_t        vpn_d, vpn_q;
  pasid_t      pasid_d, pasid_q;  // for a restart after a lost CAS
  logic        us_d, us_q;  // US at every level so far
  logic        sre_d, sre_q;  // the PASID entry's SRE: a supervisor request
  logic        rw_d, rw_q;  // RW at every level so far
  xlat_t       result_d, result_q;
  logic        write_d, write_q;  // the walk's request asks for write
  logic [63:0] cmp_d, cmp_q;      // the leaf as read (CAS expected value)
  logic [63:0] swap_d, swap_q;    // the leaf with A (and D) set
  logic        nofill_d, nofill_q;  // an IOTINVAL.VMA of the PASID came: no PSC fill

  // ---------------------------------------------------------------------------
  // Paging-structure cache
  // ---------------------------------------------------------------------------
  localparam int unsigned PscTagW = VpnW - Log2Pages2M;  // VA bits 47:21
  localparam int unsigned PscPtrW = (PscEntries > 1) ? $clog2(PscEntries) : 1;

  typedef struct packed {
    logic                 valid;
    pasid_t               pasid;
    logic [PscTagW-1:0]   tag;  // VA bits 47:21
    ppn_t                 pt;   // PA bits 51:12 of the PT page
    logic                 rw;   // RW of the PML4, PDPT and PD entries
    logic                 us;   // US of the PML4, PDPT and PD entries
    logic                 sre;  // the PASID entry's SRE
  } psc_entry_t;

  psc_entry_t [PscEntries-1:0] psc_q;
  logic [PscPtrW-1:0]          psc_rr_q;  // next victim

  logic                        psc_hit;   // start_i hits (pasid_i, vpn_i)
  logic [PscEntries-1:0]       psc_hit_vec;
  ppn_t                        psc_hit_pt;
  logic                        psc_hit_rw;
  logic                        psc_hit_us;
  logic                        psc_hit_sre;
  logic                        psc_fill;  // fill from the PD entry now
  logic [PscEntries-1:0]       psc_fill_match;  // entry already holding the fill's tag
  logic                        inval_mine;  // an IOTINVAL.VMA of the walk's PASID
  logic                        psc_inval;   // IOTINVAL.VMA reaches the PSC

  assign inval_mine = inval_valid_i && (!inval_pv_i || inval_pasid_i == pasid_q);
  assign psc_inval  = inval_valid_i && !inject_i[InjPscNotInvalidated];

  always_comb begin : comb_psc_lookup
    psc_hit_vec = '0;
    psc_hit_pt  = '0;
    psc_hit_rw  = 1'b0;
    psc_hit_us  = 1'b0;
    psc_hit_sre = 1'b0;
    for (int unsigned i = 0; i < PscEntries; i++) begin
      psc_hit_vec[i] = psc_q[i].valid && psc_q[i].pasid == pasid_i &&
                       psc_q[i].tag == vpn_i[VpnW-1:Log2Pages2M];
      if (psc_hit_vec[i]) begin
        psc_hit_pt = psc_q[i].pt;
        psc_hit_rw = psc_q[i].rw;
        psc_hit_us = psc_q[i].us;
        psc_hit_sre = psc_q[i].sre;
      end
    end
    // not in the cycle of an IOTINVAL.VMA (it may be dropping this entry)
    psc_hit = (|psc_hit_vec) && !inval_valid_i;
  end

  always_comb begin : comb_psc_fill_match
    for (int unsigned i = 0; i < PscEntries; i++) begin
      psc_fill_match[i] = psc_q[i].valid && psc_q[i].pasid == pasid_q &&
                          psc_q[i].tag == vpn_q[VpnW-1:Log2Pages2M];
    end
  end

  // Address of the entry for `vpn` at `level` in the table whose PA is in
  // bits 51:12 of `entry`.
  function automatic logic [63:0] entry_addr(logic [63:0] entry, vpn_t vpn, level_e level);
    logic [8:0] idx;
    idx = vpn[9*int'(level) +: 9];
    return {12'd0, entry[51:12], idx, 3'd0};
  endfunction

  assign idle_o          = (state_q == StIdle);
  assign done_o          = (state_q == StDone);
  assign result_o        = result_q;
  assign mem_req_valid_o = (state_q == StReq) || (state_q == StCasReq);
  assign mem_req_addr_o  = addr_q;
  assign mem_req_cas_o   = (state_q == StCasReq);
  assign mem_req_cmp_o   = cmp_q;
  assign mem_req_wdata_o = swap_q;

  logic [63:0] pte;
  logic        leaf_r;
  logic        leaf_w;
  logic [63:0] leaf_ad;

  always_comb begin : comb_next
    state_d  = state_q;
    level_d  = level_q;
    addr_d   = addr_q;
    vpn_d    = vpn_q;
    pasid_d  = pasid_q;
    us_d     = us_q;
    sre_d    = sre_q;
    rw_d     = rw_q;
    result_d = result_q;
    write_d  = write_q;
    cmp_d    = cmp_q;
    swap_d   = swap_q;
    nofill_d = nofill_q || inval_mine;
    psc_fill = 1'b0;
    pte      = mem_rsp_rdata_i;
    leaf_r   = sre_q || (us_q && pte[PteUs]);
    leaf_w   = leaf_r && rw_q && pte[PteRw] && write_q;
    leaf_ad  = pte;
    leaf_ad[PteA] = 1'b1;
    if (leaf_w) begin
      leaf_ad[PteD] = 1'b1;
    end

    unique case (state_q)
      StIdle: begin
        if (start_i) begin
          vpn_d   = vpn_i;
          write_d = write_i;
          pasid_d = pasid_i;
          // an IOTINVAL.VMA in this cycle: do not fill (whatever its PASID)
          nofill_d = inval_valid_i;
          us_d    = 1'b1;
          sre_d   = 1'b0;
          if (psc_hit) begin
            // PSC hit: straight to the PTE in the cached PT page
            addr_d  = {12'd0, psc_hit_pt, vpn_i[8:0], 3'd0};
            level_d = LvlPt;
            rw_d    = psc_hit_rw;
            us_d    = psc_hit_us;
            sre_d   = psc_hit_sre;
          end else begin
            addr_d  = cfg_pasid_table_i + {41'd0, pasid_i, 3'd0};
            level_d = LvlPasid;
            rw_d    = 1'b1;
          end
          state_d = StReq;
        end
      end
      StReq: begin
        if (mem_gnt_i) begin
          state_d = StRsp;
        end
      end
      StRsp: begin
        if (mem_rsp_valid_i) begin
          us_d = us_q && pte[PteUs];
          rw_d = rw_q && pte[PteRw];
          if (!pte[PteP]) begin
            // invalid PASID entry or not present: no translation
            result_d = '0;
            state_d  = StDone;
          end else if (level_q == LvlPasid) begin
            us_d    = 1'b1;
            sre_d   = pte[PasidSre];
            rw_d    = 1'b1;
            addr_d  = entry_addr(pte, vpn_q, LvlPml4);
            level_d = LvlPml4;
            state_d = StReq;
          end else if (((level_q == LvlPdpt || level_q == LvlPd) && pte[PtePs]) ||
                       level_q == LvlPt) begin
            // a leaf: 1 GiB (PDPT, PS), 2 MiB (PD, PS) or 4 KiB (PT)
            if (level_q == LvlPdpt) begin
              result_d.size = Pg1G;
              result_d.ppn  = {pte[51:30], 18'd0};
            end else if (level_q == LvlPd) begin
              result_d.size = Pg2M;
              result_d.ppn  = {pte[51:21], 9'd0};
            end else begin
              result_d.size = Pg4K;
              result_d.ppn  = pte[51:12];
            end
            result_d.r = leaf_r;
            result_d.w = leaf_w;
            if (leaf_r && leaf_ad != pte) begin
              // set A (and D) first: addr_q still points at the leaf
              cmp_d   = pte;
              swap_d  = leaf_ad;
              state_d = StCasReq;
            end else begin
              state_d = StDone;
            end
          end else begin
            // a present non-leaf PD entry: cache its table pointer, with
            // the upper levels' RW and US, unless an IOTINVAL.VMA came during
            // the walk. Supervisor-only tables too (the kernel half of a
            // process's page tables): a walk caches them as the hardware
            // does, and a user-mode request through the entry still faults
            // at the leaf.
            psc_fill = (level_q == LvlPd) && !nofill_q && !inval_valid_i;
            addr_d  = entry_addr(pte, vpn_q, level_e'(level_q - 3'd1));
            level_d = level_e'(level_q - 3'd1);
            state_d = StReq;
          end
        end
      end
      StCasReq: begin
        if (mem_gnt_i) begin
          state_d = StCasRsp;
        end
      end
      StCasRsp: begin
        if (mem_rsp_valid_i) begin
          if (mem_rsp_rdata_i == cmp_q) begin
            state_d = StDone;  // won: the leaf now has A (and D)
          end else begin
            // lost: the CPU changed the leaf since it was read; walk again
            // from the PASID table, bypassing the PSC
            addr_d  = cfg_pasid_table_i + {41'd0, pasid_q, 3'd0};
            level_d = LvlPasid;
            us_d    = 1'b1;
            rw_d    = 1'b1;
            state_d = StReq;
          end
        end
      end
      StDone: begin
        state_d = StIdle;
      end
      default: begin
        state_d = StIdle;
      end
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_state
    if (!rst_ni) begin
      state_q  <= StIdle;
      level_q  <= LvlPasid;
      addr_q   <= '0;
      vpn_q    <= '0;
      us_q     <= 1'b0;
      sre_q    <= 1'b0;
      rw_q     <= 1'b0;
      result_q <= '0;
      write_q  <= 1'b0;
      pasid_q  <= '0;
      cmp_q    <= '0;
      swap_q   <= '0;
      nofill_q <= 1'b0;
    end else begin
      state_q  <= state_d;
      level_q  <= level_d;
      addr_q   <= addr_d;
      vpn_q    <= vpn_d;
      us_q     <= us_d;
      sre_q    <= sre_d;
      rw_q     <= rw_d;
      result_q <= result_d;
      write_q  <= write_d;
      pasid_q  <= pasid_d;
      cmp_q    <= cmp_d;
      swap_q   <= swap_d;
      nofill_q <= nofill_d;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin : ff_psc
    if (!rst_ni) begin
      psc_q    <= '0;
      psc_rr_q <= '0;
    end else begin
      if (psc_fill) begin
        if (|psc_fill_match) begin
          // refresh the entry that holds this region
          for (int unsigned i = 0; i < PscEntries; i++) begin
            if (psc_fill_match[i]) begin
              psc_q[i].pt <= mem_rsp_rdata_i[51:12];
              psc_q[i].rw <= rw_d;
              psc_q[i].us <= us_d;
              psc_q[i].sre <= sre_q;
            end
          end
        end else begin
          psc_q[psc_rr_q].valid <= 1'b1;
          psc_q[psc_rr_q].pasid <= pasid_q;
          psc_q[psc_rr_q].tag   <= vpn_q[VpnW-1:Log2Pages2M];
          psc_q[psc_rr_q].pt    <= mem_rsp_rdata_i[51:12];
          psc_q[psc_rr_q].rw    <= rw_d;
          psc_q[psc_rr_q].us    <= us_d;
          psc_q[psc_rr_q].sre   <= sre_q;
          psc_rr_q <= (32'(psc_rr_q) == PscEntries - 1) ? '0 : psc_rr_q + 1'b1;
        end
      end
      // fill and invalidation never meet: psc_fill needs !inval_valid_i
      if (psc_inval) begin
        for (int unsigned i = 0; i < PscEntries; i++) begin
          if (!inval_pv_i || psc_q[i].pasid == inval_pasid_i) begin
            psc_q[i].valid <= 1'b0;
          end
        end
      end
    end
  end

  // ---------------------------------------------------------------------------
  // Assertions
  // ---------------------------------------------------------------------------
  // A response only arrives for an outstanding read.
  RspOnlyWhenWaiting_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    mem_rsp_valid_i |-> (state_q == StRsp || state_q == StCasRsp));

  // At most one PSC entry per (PASID, 2 MiB region).
  PscOneHit_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    $onehot0(psc_hit_vec));

  // A walk only starts when the walker is idle.
  StartWhenIdle_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    start_i |-> state_q == StIdle);

  // The PSC's valid bits and PASIDs, and its valid entries of a PASID (of
  // every PASID without pv).
  logic   [PscEntries-1:0] psc_valid;
  pasid_t [PscEntries-1:0] psc_pasid;

  always_comb begin : comb_psc_fields
    for (int unsigned i = 0; i < PscEntries; i++) begin
      psc_valid[i] = psc_q[i].valid;
      psc_pasid[i] = psc_q[i].pasid;
    end
  end

  function automatic logic [PscEntries-1:0] psc_valid_of(logic pv, pasid_t pasid);
    logic [PscEntries-1:0] of;
    for (int unsigned i = 0; i < PscEntries; i++) begin
      of[i] = psc_valid[i] && (!pv || psc_pasid[i] == pasid);
    end
    return of;
  endfunction

  // IOTINVAL.VMA empties the PSC of its PASID (all of it without PV),
  // whatever its address or range: after it no valid entry of that PASID is
  // left, since the CPU may have changed any non-leaf entry.
  PscInvalidated_A: assert property (@(posedge clk_i) disable iff (!rst_ni)
    inval_valid_i |=> !(|psc_valid_of($past(inval_pv_i), $past(inval_pasid_i))));

endmodule
