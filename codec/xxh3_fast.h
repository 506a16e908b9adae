// XXH3-64 for the codec's checksums, through libxxhash's run-time dispatch
// where the library has it (QATQ_XXH3_DISPATCH, set by codec/CMakeLists.txt
// when XXH3_64bits_dispatch links): AVX2/AVX-512 on CPUs that have them,
// about twice the speed of the SSE2 code the plain entry points use, with
// the same hash values. The project itself stays built without -march flags.
//
// Thread-safety: as libxxhash (pure functions; a state per caller).
#ifndef QATQ_CODEC_XXH3_FAST_H_
#define QATQ_CODEC_XXH3_FAST_H_

#include <xxhash.h>

#include <cstddef>
#include <cstdint>

#if defined(QATQ_XXH3_DISPATCH)
#include <xxh_x86dispatch.h>  // replaces XXH3_64bits and XXH3_64bits_update
#endif

namespace qatq {

inline uint64_t Xxh3(const void* data, size_t len) { return XXH3_64bits(data, len); }

inline void Xxh3Update(XXH3_state_t* state, const void* data, size_t len) {
  XXH3_64bits_update(state, data, len);
}

}  // namespace qatq

#endif  // QATQ_CODEC_XXH3_FAST_H_
