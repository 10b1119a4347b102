// Force-included (-include) when build.rs compiles the Verilator runtime:
// routes the runtime's console output (VL_PRINTF, verilated.h) through
// ffi/shim.cpp, which writes it to stderr and keeps the text of an
// assertion failure for sd_error_message.

#ifndef SHOOTDOWN_FFI_VL_PRINTF_H
#define SHOOTDOWN_FFI_VL_PRINTF_H

#ifdef __cplusplus
extern "C"
#endif
    int
    sd_vl_printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#define VL_PRINTF sd_vl_printf

#endif  // SHOOTDOWN_FFI_VL_PRINTF_H
