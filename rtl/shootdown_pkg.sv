// Shared types, command encodings and ATS message formats of shootdown.
//
// The port contract is docs/socket.md; the command encodings below are its
// "Command queue" table (modelled on the RISC-V IOMMU in-memory command queue,
// riscv-iommu src/iommu_in_memory_queues.adoc) and are mirrored in
// host/rtl/ports.rs.

package shootdown_pkg;

  // ---------------------------------------------------------------------------
  // Widths
  // ---------------------------------------------------------------------------
  localparam int unsigned PasidW    = 20;  // PCIe PASID
  localparam int unsigned VpnW      = 36;  // VA[47:12] (x86-64 4-level, 48-bit VA)
  localparam int unsigned PpnW      = 40;  // PA[51:12]
  localparam int unsigned ItagW     = 5;   // PCIe ATS ITag 0..31
  localparam int unsigned NumItags  = 32;
  localparam int unsigned Log2nW    = 6;   // log2 of a number of 4 KiB pages, 0..36
  localparam int unsigned IdW       = 8;   // device request tag
  localparam int unsigned NumProbes = 4;   // probe slots of docs/socket.md

  // log2 of the number of 4 KiB pages in a 2 MiB and in a 1 GiB page
  localparam int unsigned Log2Pages2M = 9;
  localparam int unsigned Log2Pages1G = 18;

  typedef logic [PasidW-1:0] pasid_t;
  typedef logic [VpnW-1:0]   vpn_t;
  typedef logic [PpnW-1:0]   ppn_t;
  typedef logic [ItagW-1:0]  itag_t;
  typedef logic [Log2nW-1:0] log2n_t;
  typedef logic [IdW-1:0]    id_t;

  // ---------------------------------------------------------------------------
  // Bug injection ("chicken bits", docs/socket.md "Bug injection")
  // ---------------------------------------------------------------------------
  // Bit numbers of cfg_inject_i (held constant after reset; 0 = the correct
  // design). Each bit turns on one deliberate invalidation bug so that a
  // checker can be shown to catch it; host/rtl/ports.rs mirrors the table.
  localparam int unsigned InjectW = 16;
  // The device sends the Invalidate Completion without waiting for an
  // in-flight access that used an invalidated translation (ats_dev).
  localparam int unsigned InjEarlyInvCpl = 0;
  // IOFENCE.C completes without waiting for earlier ATS.INVALs (cmdq).
  localparam int unsigned InjEarlyFence = 1;
  // A one-page (4 KiB) invalidation does not drop a larger entry (2 MiB or
  // 1 GiB) containing it (iotlb: IOTINVAL.VMA; atc: ATS Invalidate Request).
  // The name is from when 2 MiB was the only larger size.
  localparam int unsigned InjInvMisses2m = 2;
  // Invalidation matching compares entries against PASID 0 instead of the
  // command's PASID (iotlb: IOTINVAL.VMA with PV; atc: Invalidate Request
  // with PV).
  localparam int unsigned InjInvWrongPasid = 3;
  // The device installs and uses a Translation Completion that an
  // Invalidate Request overtook instead of discarding it (dev_dma).
  localparam int unsigned InjCacheRacingCpl = 4;
  // IOTINVAL.VMA leaves the walker's paging-structure cache alone: a walk
  // keeps using a cached PD table pointer the CPU replaced (ptw).
  localparam int unsigned InjPscNotInvalidated = 5;
  // The device never sends Invalidate Completions; it still drops its ATC
  // entries (ats_dev). Only the ATS invalidation timeout
  // (cfg_ats_timeout_i, cmdq) lets an IOFENCE.C after an ATS.INVAL finish.
  localparam int unsigned InjDropInvCpl = 6;
  // IOFENCE.C waits for the Invalidate Completion of the first ATS.INVAL
  // since the previous fence only, not for every busy ITag: right while each
  // ATS.INVAL is fenced before the next, early with several in one fence
  // group outstanding (cmdq).
  localparam int unsigned InjFenceOneItag = 7;
  // The request server answers a write request (NW=0) that hits an IOTLB
  // entry without W from that entry (a completion without W) instead of
  // walking again: an IOMMU that caches permissions and needs an
  // invalidation after a permission upgrade (tr_server).
  localparam int unsigned InjWriteHitsRo = 8;
  // ATS.PRGR retires without sending its PRG Response: the device that
  // asked waits for it forever (cmdq).
  localparam int unsigned InjPrgrDropped = 9;
  // The IOTLB's lookup for a Translation Request matches an entry of any
  // PASID with the request's page: a process's device access is answered
  // with another process's translation of the same address (iotlb; its
  // probes still compare the PASID).
  localparam int unsigned InjLookupAnyPasid = 10;

  typedef logic [InjectW-1:0] inject_t;

  // ---------------------------------------------------------------------------
  // Command queue (16-byte commands, dword0 at the lower address)
  // ---------------------------------------------------------------------------
  typedef enum logic [6:0] {
    OpIotinval = 7'd1,  // IOTINVAL
    OpIofence  = 7'd2,  // IOFENCE
    OpAts      = 7'd4   // ATS
  } cmd_op_e;

  // func3 of IOTINVAL.VMA, IOFENCE.C and ATS.INVAL
  localparam logic [2:0] Func3Zero = 3'd0;
  // func3 of ATS.PRGR (opcode OpAts; RISC-V IOMMU ATS.PRGR): send a PCIe PRG
  // Response. dword0: PV (11), PASID (31:12); dword1: PRGI (7:0), response
  // code (15:12).
  localparam logic [2:0] Func3AtsPrgr = 3'd1;
  localparam int unsigned PrgrCodeLsb = 12;  // dword1 bits 15:12 of ATS.PRGR

  // dword0; a packed struct lists its fields from the most significant bit down.
  typedef struct packed {
    logic [31:0] data;    // 63:32 IOFENCE.C completion data
    pasid_t      pasid;   // 31:12
    logic        pv;      // 11    PASID valid
    logic        av;      // 10    IOTINVAL: address valid; IOFENCE.C: write DATA to ADDR
    logic [2:0]  func3;   // 9:7
    logic [6:0]  opcode;  // 6:0
  } cmd_dw0_t;

  // ---------------------------------------------------------------------------
  // PCIe Page Request Interface (PRI)
  // ---------------------------------------------------------------------------
  // PRG Response codes (PCIe Response Code of a PRG Response Message).
  typedef logic [3:0] prg_code_t;
  localparam prg_code_t PrgSuccess = 4'h0;
  localparam prg_code_t PrgInvalid = 4'h1;  // Invalid Request
  localparam prg_code_t PrgFailure = 4'hF;  // Response Failure

  // Page-request queue record (16 bytes, dword0 at the lower address;
  // modelled on the RISC-V IOMMU page-request queue): dword0 [7:0] PRGI,
  // [8] L (last, always 1), [9] R (always 1), [10] W, [11] PV (always 1),
  // [31:12] PASID, [63:32] 0; dword1 the page address (VA bits 63:12, low
  // 12 bits 0).
  localparam int unsigned PqLBit  = 8;
  localparam int unsigned PqRBit  = 9;
  localparam int unsigned PqWBit  = 10;
  localparam int unsigned PqPvBit = 11;

  // dword1 bit 11 of ATS.INVAL: the PCIe Invalidate Request S (size) bit.
  // IOTINVAL.VMA uses the same bit and the same encoding for its range form
  // (VT-d's address mask, AMD's INVALIDATE_IOMMU_PAGES S bit): see ats_log2n.
  localparam int unsigned AtsSBit = 11;

  // ---------------------------------------------------------------------------
  // Translations
  // ---------------------------------------------------------------------------
  // Page size of a translation: the level of the leaf the walk ended on (a
  // PT entry, or a PD or PDPT entry with PS). 2'd3 is unused.
  typedef enum logic [1:0] {
    Pg4K = 2'd0,  // 4 KiB page: a PT entry
    Pg2M = 2'd1,  // 2 MiB page: a PD entry with PS
    Pg1G = 2'd2   // 1 GiB page: a PDPT entry with PS
  } pgsz_e;

  // A translation as cached in the IOTLB and the ATC and carried by a
  // Translation Completion. For a 2 MiB or 1 GiB page `ppn` is the page's
  // aligned base (low 9 or 18 bits clear).
  typedef struct packed {
    ppn_t  ppn;
    pgsz_e size;
    logic  r;
    logic  w;
  } xlat_t;

  typedef struct packed {
    logic  hit;
    xlat_t xlat;
  } lookup_t;

  // ---------------------------------------------------------------------------
  // ATS link messages
  // ---------------------------------------------------------------------------
  // IOMMU -> device: Translation Completions and Invalidate Requests leave the
  // IOMMU in one ordered stream. With shootdown_top's completion delay off
  // (cfg_ats_cpl_delay_i = 0) they also arrive in that order, so a completion
  // sent before an invalidation arrives first; with it on, Completions are
  // held longer and an Invalidate Request (posted) may pass one, as PCIe
  // ordering allows: the device must then discard the overtaken Completion.
  // A PRG Response (PRI) is a posted Message like an Invalidate Request: in
  // shootdown_top's completion delay it travels with Invalidate Requests.
  typedef enum logic [1:0] {
    DnTransCpl = 2'd0,  // PCIe ATS Translation Completion
    DnInvReq   = 2'd1,  // PCIe ATS Invalidate Request
    DnPrgResp  = 2'd2   // PCIe PRI PRG Response
  } dn_kind_e;

  typedef struct packed {
    dn_kind_e  kind;
    id_t       tag;    // TransCpl: tag of the Translation Request; PrgResp: PRG Index
    itag_t     itag;   // InvReq
    logic      pv;     // InvReq: PASID valid (0: every PASID); PrgResp: PASID present
    pasid_t    pasid;  // TransCpl: requested PASID (debug probes only); InvReq; PrgResp
    prg_code_t code;   // PrgResp: response code (PrgSuccess, PrgInvalid, PrgFailure)
    vpn_t      vpn;    // TransCpl: requested page (debug probes only); InvReq: base page
    log2n_t    log2n;  // InvReq: log2 of the number of 4 KiB pages
    xlat_t     xlat;   // TransCpl
  } dn_msg_t;

  // device -> IOMMU: Translation Requests, Invalidate Completions and Page
  // Requests.
  typedef enum logic [1:0] {
    UpTransReq = 2'd0,  // PCIe ATS Translation Request
    UpInvCpl   = 2'd1,  // PCIe ATS Invalidate Completion
    UpPageReq  = 2'd2   // PCIe PRI Page Request (R always, Last always 1)
  } up_kind_e;

  typedef struct packed {
    up_kind_e kind;
    id_t      tag;    // TransReq; PageReq: PRG Index (the device request id)
    pasid_t   pasid;  // TransReq, PageReq
    vpn_t     vpn;    // TransReq, PageReq
    logic     write;  // TransReq: the device wants to write; PageReq: W requested
    itag_t    itag;   // InvCpl
  } up_msg_t;

  localparam int unsigned DnMsgW = $bits(dn_msg_t);
  localparam int unsigned UpMsgW = $bits(up_msg_t);

  // ---------------------------------------------------------------------------
  // Functions
  // ---------------------------------------------------------------------------
  // Does a valid entry (valid, PASID, VPN, size) translate page `vpn` of
  // `pasid`? A 2 MiB entry covers the 512 pages that share VPN bits 35:9, a
  // 1 GiB entry the 262,144 that share VPN bits 35:18.
  function automatic logic entry_hit(logic e_valid, pasid_t e_pasid, vpn_t e_vpn, pgsz_e e_size,
                                     pasid_t pasid, vpn_t vpn);
    logic page_hit;
    if (e_size == Pg1G) begin
      page_hit = (e_vpn[VpnW-1:Log2Pages1G] == vpn[VpnW-1:Log2Pages1G]);
    end else if (e_size == Pg2M) begin
      page_hit = (e_vpn[VpnW-1:Log2Pages2M] == vpn[VpnW-1:Log2Pages2M]);
    end else begin
      page_hit = (e_vpn == vpn);
    end
    return e_valid && (e_pasid == pasid) && page_hit;
  endfunction

  // Mask that clears the low `log2n` bits of a VPN (all bits for log2n >= 36).
  // (A shift, not a loop over the bits: the caches call it for every entry
  // in every cycle.)
  function automatic vpn_t vpn_mask(log2n_t log2n);
    if (32'(log2n) >= VpnW) begin
      return '0;
    end
    return ~((vpn_t'(1) << log2n) - vpn_t'(1));
  endfunction

  // Do the naturally aligned blocks [a, a + 2^la) and [b, b + 2^lb) of pages
  // overlap? Two aligned power-of-two blocks overlap iff one contains the
  // other, i.e. iff they agree above the larger of the two sizes.
  function automatic logic blocks_overlap(vpn_t a, log2n_t la, vpn_t b, log2n_t lb);
    vpn_t mask;
    mask = vpn_mask((la > lb) ? la : lb);
    return (a & mask) == (b & mask);
  endfunction

  // log2 of the number of pages of a translation: 0 (4 KiB), 9 (2 MiB) or
  // 18 (1 GiB).
  function automatic log2n_t xlat_log2n(pgsz_e size);
    if (size == Pg1G) begin
      return log2n_t'(Log2Pages1G);
    end
    return (size == Pg2M) ? log2n_t'(Log2Pages2M) : '0;
  endfunction

  // The base page of the translation of size `size` that holds page `vpn`:
  // `vpn` with the page's low 0, 9 or 18 bits clear (the tag of a cache
  // entry).
  function automatic vpn_t xlat_base(vpn_t vpn, pgsz_e size);
    return vpn & vpn_mask(xlat_log2n(size));
  endfunction

  // The specification an invalidation is checked against (the caches'
  // InvalComplete_A / InvalOnlyNamed_A; the matching logic of the caches
  // does not use it): an IOTINVAL.VMA or Invalidate Request (pv, pasid, av,
  // range [vpn, vpn + 2^log2n)) names a cached translation (its PASID, base
  // page, size) when the PASIDs agree (any PASID without PV) and the two
  // overlap (any address without AV), a 2 MiB entry by all its 512 pages, a
  // 1 GiB entry by all its 262,144.
  function automatic logic inval_names_entry(logic pv, pasid_t pasid, logic av, vpn_t vpn,
                                             log2n_t log2n, pasid_t e_pasid, vpn_t e_vpn,
                                             pgsz_e e_size);
    return (!pv || e_pasid == pasid) &&
           (!av || blocks_overlap(e_vpn, xlat_log2n(e_size), vpn, log2n));
  endfunction

  // PCIe ATS Invalidate Request size decode (dword1 of ATS.INVAL holds the
  // untranslated address bits 63:12 and S in bit 11). S=0: one 4 KiB page.
  // S=1: 2^(13+t) bytes, t = number of consecutive one bits of the address
  // starting at bit 12, i.e. 2^(1+t) pages. Returns log2 of the page count,
  // saturated at 36 (the whole 48-bit VA space). dword1 of IOTINVAL.VMA
  // (AV=1) is decoded the same way.
  function automatic log2n_t ats_log2n(logic [63:0] dw1);
    int unsigned t;
    logic        stop;
    t    = 0;
    stop = 1'b0;
    for (int unsigned i = 12; i < 64; i++) begin
      if (!stop && dw1[i]) begin
        t = t + 1;
      end else begin
        stop = 1'b1;
      end
    end
    if (!dw1[AtsSBit]) begin
      return '0;
    end
    return (t + 1 >= VpnW) ? log2n_t'(VpnW) : log2n_t'(t + 1);
  endfunction

  // Probe word of docs/socket.md: bit 63 valid, 62 W, 61 R, 60 2 MiB,
  // 59 1 GiB, 39:0 the PPN of this 4 KiB page.
  function automatic logic [63:0] probe_word(lookup_t l, vpn_t vpn);
    ppn_t ppn;
    if (l.xlat.size == Pg1G) begin
      ppn = {l.xlat.ppn[PpnW-1:Log2Pages1G], vpn[Log2Pages1G-1:0]};
    end else if (l.xlat.size == Pg2M) begin
      ppn = {l.xlat.ppn[PpnW-1:Log2Pages2M], vpn[Log2Pages2M-1:0]};
    end else begin
      ppn = l.xlat.ppn;
    end
    if (!l.hit) begin
      return '0;
    end
    return {1'b1, l.xlat.w, l.xlat.r, l.xlat.size == Pg2M, l.xlat.size == Pg1G, 19'd0, ppn};
  endfunction

  // Cover points of the IOTLB and the ATC (docs/socket.md, "Coverage").
  // The size class of an invalidation range of 2^log2n pages: 0 one page,
  // 1 2..15 pages, 2 16..511 pages, 3 512 pages or more.
  function automatic logic [1:0] cov_range_size(log2n_t log2n);
    if (log2n == '0) begin
      return 2'd0;
    end
    if (log2n < log2n_t'(4)) begin
      return 2'd1;
    end
    return (log2n < log2n_t'(Log2Pages2M)) ? 2'd2 : 2'd3;
  endfunction

  // Where a cached block of 2^e_log2n pages at e_vpn (aligned) holds pages
  // of the aligned range of 2^log2n pages at vpn: bit 0 its first page,
  // bit 1 a page strictly between its first and last, bit 2 its last page.
  function automatic logic [2:0] cov_range_pos(vpn_t e_vpn, log2n_t e_log2n, vpn_t vpn,
                                               log2n_t log2n);
    vpn_t e_last;
    vpn_t r_last;
    e_last = e_vpn | ((vpn_t'(1) << e_log2n) - vpn_t'(1));
    r_last = vpn | ((vpn_t'(1) << log2n) - vpn_t'(1));
    return {e_vpn <= r_last && r_last <= e_last,
            log2n >= log2n_t'(2) && e_vpn < r_last && e_last > vpn,
            e_vpn <= vpn && vpn <= e_last};
  endfunction

endpackage
