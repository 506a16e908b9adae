#include "codec/rans.h"

#include <dlfcn.h>
#include <htscodecs/rANS_static4x16.h>
#include <htscodecs/varint.h>

#include <mutex>

namespace qatq {
namespace {

// htscodecs' encoders picked by its run-time dispatch: on AMD CPUs its
// AVX2 encoders measured 7-15% faster than its AVX-512 ones on exponent
// streams (same output; the decoders stay as detected, the AVX-512
// order-1 decoder being the faster there). rans_set_cpu only masks what the
// library's own CPU detection allows.
void PreferAvx2RansEncoders() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static std::once_flag once;
  std::call_once(once, [] {
    if (__builtin_cpu_is("amd")) rans_set_cpu(0xFFFF & ~RANS_CPU_ENC_AVX512);
  });
#endif
}

// libhtscodecs 1.3's rans_uncompress_to_4x16 runs CPUID three times on
// every call to choose its SIMD decoder. Under virtualisation CPUID traps
// to the hypervisor: 3.6 us each on the build machine, 11 us per stream,
// about a tenth of the time to decode a 128 KiB bf16 chunk. The library
// exports its per-CPU 32-way decoders, so for the plain frames our encoder
// writes (order byte with only RANS_ORDER_X32 and the order bit, then the
// size) the decoder is looked up once here, by the same rule the library
// applies on this machine (AVX-512, else AVX2, else SSE4.1, else portable
// C), and called directly. Any other frame (striped, RLE, bit-packed, CAT,
// 4-way), or a library without those symbols, goes through the wrapper.
using DecodeFn = unsigned char* (*)(unsigned char* in, unsigned int in_size, unsigned char* out,
                                    unsigned int out_size);

struct DirectDecoders {
  DecodeFn order0 = nullptr;
  DecodeFn order1 = nullptr;
};

DecodeFn Lookup(const char* name) {
  return reinterpret_cast<DecodeFn>(dlsym(RTLD_DEFAULT, name));
}

DirectDecoders FindDirectDecoders() {
  DirectDecoders d;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const char* variant = "";
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt")) {
    variant = "_avx512";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) {
    variant = "_avx2";
  } else if (__builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3") &&
             __builtin_cpu_supports("popcnt")) {
    variant = "_sse4";
  }
  d.order0 = Lookup((std::string("rans_uncompress_O0_32x16") + variant).c_str());
  d.order1 = Lookup((std::string("rans_uncompress_O1_32x16") + variant).c_str());
#endif
  if (d.order0 == nullptr || d.order1 == nullptr) d = DirectDecoders{};
  return d;
}

const DirectDecoders& Direct() {
  static const DirectDecoders d = FindDirectDecoders();
  return d;
}

}  // namespace

Status RansEncode(std::string_view in, int order, std::string* out) {
  PreferAvx2RansEncoders();
  unsigned int bound = rans_compress_bound_4x16(static_cast<unsigned>(in.size()), order);
  out->resize(bound);
  unsigned int out_size = bound;
  unsigned char* r = rans_compress_to_4x16(
      reinterpret_cast<unsigned char*>(const_cast<char*>(in.data())),
      static_cast<unsigned>(in.size()), reinterpret_cast<unsigned char*>(out->data()), &out_size,
      order);
  if (r == nullptr) return Status::IOError("rANS encoder failed");
  out->resize(out_size);
  return Status::OK();
}

Status RansDecodeViaLibrary(std::string_view frame, uint8_t* out, size_t n) {
  if (n == 0 || frame.empty()) return Status::Corruption("empty rANS stream");
  unsigned int out_size = static_cast<unsigned int>(n);
  unsigned char* r = rans_uncompress_to_4x16(
      reinterpret_cast<unsigned char*>(const_cast<char*>(frame.data())),
      static_cast<unsigned>(frame.size()), out, &out_size);
  if (r == nullptr || out_size != n) return Status::Corruption("rANS stream does not decode");
  return Status::OK();
}

bool RansDirectDecodeAvailable() { return Direct().order0 != nullptr; }

Status RansDecode(std::string_view frame, uint8_t* out, size_t n) {
  if (n == 0 || frame.empty()) return Status::Corruption("empty rANS stream");
  const DirectDecoders& d = Direct();
  const uint8_t order = static_cast<uint8_t>(frame[0]);
  if (d.order0 == nullptr || (order & ~(RANS_ORDER_X32 | 1)) != 0 || !(order & RANS_ORDER_X32))
    return RansDecodeViaLibrary(frame, out, n);
  auto* p = reinterpret_cast<uint8_t*>(const_cast<char*>(frame.data())) + 1;
  auto* end = reinterpret_cast<uint8_t*>(const_cast<char*>(frame.data())) + frame.size();
  uint32_t size = 0;
  const int used = var_get_u32(p, end, &size);
  if (used <= 0 || size != n) return Status::Corruption("rANS stream size does not match");
  p += used;
  if (p >= end) return Status::Corruption("rANS stream truncated");
  const DecodeFn fn = (order & 1) ? d.order1 : d.order0;
  if (fn(p, static_cast<unsigned int>(end - p), out, static_cast<unsigned int>(n)) == nullptr)
    return Status::Corruption("rANS stream does not decode");
  return Status::OK();
}

}  // namespace qatq
