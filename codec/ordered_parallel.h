// An ordered chunk pipeline: chunks are produced (encoded or decoded) on
// worker threads and consumed in order on the calling thread, with a bounded
// number of chunk buffers in flight.
//
// Thread-safety: `produce` runs concurrently on several threads for
// distinct k; `consume` runs on the calling thread only.
#ifndef QATQ_CODEC_ORDERED_PARALLEL_H_
#define QATQ_CODEC_ORDERED_PARALLEL_H_

#include <cstddef>
#include <functional>
#include <string>

#include "base/status.h"

namespace qatq {

// Number of worker threads for a `threads` option: 0 = all cores.
int ResolveThreads(int threads);

// Calls produce(k, buf) for every k in [0, count) and consume(k, buf) in
// increasing k. At most `window` buffers are in flight, so memory is
// O(window * chunk). The first failure (lowest k for production failures
// seen by the consumer) stops the pipeline and is returned; chunks after it
// are not consumed.
Status OrderedParallel(size_t count, int threads, size_t window,
                       const std::function<Status(size_t k, std::string* buf)>& produce,
                       const std::function<Status(size_t k, std::string* buf)>& consume);

}  // namespace qatq

#endif  // QATQ_CODEC_ORDERED_PARALLEL_H_
