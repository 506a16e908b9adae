// The two run-length byte codes of QATC v2 exact payloads (spec 1.3):
//   RUN3: runs of [tag u8][length u16 BE] (tag 0 zeros, 1 literal + bytes,
//         2 repeat + one byte), 1 <= length <= 65535.
//   PACK: runs of one byte: tag in the top 2 bits (00 zeros, 01 literal +
//         bytes, 10 repeat + one byte), length - 1 in the low 6 bits.
// Encoders are greedy; decoders accept any valid run sequence.
//
// Thread-safety: pure functions.
#ifndef QATQ_CODEC_V2_RUNS_H_
#define QATQ_CODEC_V2_RUNS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace qatq {

// Number of maximal runs of equal bytes in in[0, n): a lower bound on the
// encoded size of both codes. Cheap (vectorisable).
size_t CountByteRuns(const unsigned char* in, size_t n);

// Exact size the encoder below would produce, without writing it.
size_t Run3EncodedSize(const unsigned char* in, size_t n);
size_t PackEncodedSize(const unsigned char* in, size_t n);

// Appends the encoding of in[0, n) to *out.
void Run3Encode(const unsigned char* in, size_t n, std::string* out);
void PackEncode(const unsigned char* in, size_t n, std::string* out);

// Largest output a body of `body_len` bytes can describe; decoders compare
// this with the expected size before allocating.
inline constexpr size_t Run3MaxOutput(size_t body_len) { return body_len / 3 * 65535; }
inline constexpr size_t PackMaxOutput(size_t body_len) { return body_len * 64; }

// Decodes `body` into out[0, out_len). The body must produce exactly out_len
// bytes and be consumed completely; anything else is Corruption.
Status Run3Decode(std::string_view body, char* out, size_t out_len);
Status PackDecode(std::string_view body, char* out, size_t out_len);

}  // namespace qatq

#endif  // QATQ_CODEC_V2_RUNS_H_
