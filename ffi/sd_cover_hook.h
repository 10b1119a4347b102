// Force-included (-include) into every unit of the Verilated model and the
// shim by model/build.rs.
//
// The model's cover points count into its own counters
// (Vshootdown__Syms::__Vcoverage, zeroed as the model is made), which the
// shim reads by index through sd_cover_points.h. Verilator also registers
// each point, by its strings, in the model's VerilatedCovContext, for
// VerilatedCovContext::write (coverage.dat): about 25,000 instructions per
// point and model (string maps), some 1.6 M for the bundled RTL, a few per
// cent of a short run. Nothing here uses that context, so the registration
// is left out: VL_COVER_INSERT, which the generated code calls once per
// point at construction, does nothing. (Should a Verilator release stop
// using the macro, the points are registered again: slower, the same
// counts.)

#ifndef SHOOTDOWN_SD_COVER_HOOK_H
#define SHOOTDOWN_SD_COVER_HOOK_H

#include "verilated_cov.h"  // its include guard makes the model's own include a no-op

#undef VL_COVER_INSERT
#define VL_COVER_INSERT(covcontextp, countp, ...) \
    do { \
    } while (false)

#endif  // SHOOTDOWN_SD_COVER_HOOK_H
