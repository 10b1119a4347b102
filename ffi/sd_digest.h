// The state digest of a Verilated model (ffi/shim.cpp, ffi/rv_shim.cpp):
// the bytes of its symbol table's object, which holds every module
// instance. Within one process (explore forks from one model) the pointers
// in that object are the same for equal states, so the bytes are the state;
// model/build.rs enables the digest only when none of it lives on the heap.
// Two 64-bit lanes with different multipliers, as host/sim/digest.rs.
#ifndef SHOOTDOWN_SD_DIGEST_H
#define SHOOTDOWN_SD_DIGEST_H

#include <cstddef>
#include <cstdint>
#include <cstring>

struct SdDigest {
    uint64_t a = 0x243f6a8885a308d3ull;
    uint64_t b = 0x13198a2e03707344ull;

    // Feed bytes [from, to) of `bytes`, eight at a time (the last word
    // zero-padded).
    void feed(const unsigned char* bytes, size_t from, size_t to) {
        for (size_t i = from; i < to; i += 8) {
            uint64_t w = 0;
            std::memcpy(&w, bytes + i, (to - i < 8) ? to - i : 8);
            a = (a ^ w) * 0x9e3779b97f4a7c15ull;
            a = (a << 29) | (a >> 35);
            b = (((b << 23) | (b >> 41)) ^ w) * 0xc2b2ae3d27d4eb4full ^ (b >> 31);
        }
    }

    // The digest so far into out[0..2]; 0 (the shims' success).
    int put(uint64_t out[2]) const {
        out[0] = a;
        out[1] = b;
        return 0;
    }
};

#endif
