#include "codec/ordered_parallel.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace qatq {

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

Status OrderedParallel(size_t count, int threads, size_t window,
                       const std::function<Status(size_t, std::string*)>& produce,
                       const std::function<Status(size_t, std::string*)>& consume) {
  threads = ResolveThreads(threads);
  if (threads <= 1 || count <= 1) {
    std::string buf;
    for (size_t k = 0; k < count; ++k) {
      QATQ_RETURN_IF_ERROR(produce(k, &buf));
      QATQ_RETURN_IF_ERROR(consume(k, &buf));
    }
    return Status::OK();
  }
  if (window < static_cast<size_t>(threads)) window = threads;
  struct Slot {
    std::string buf;
    Status status;
    bool ready = false;
  };
  std::vector<Slot> slots(window);
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0;      // next chunk to hand to a worker; guarded by mu
  size_t consumed = 0;  // chunks consumed so far; guarded by mu
  bool stop = false;    // guarded by mu

  auto worker = [&] {
    for (;;) {
      size_t k;
      {
        std::unique_lock<std::mutex> l(mu);
        // Slot k % window is free once chunk k - window has been consumed.
        cv.wait(l, [&] { return stop || next >= count || next < consumed + window; });
        if (stop || next >= count) return;
        k = next++;
      }
      Slot& s = slots[k % window];
      Status st = produce(k, &s.buf);
      {
        std::lock_guard<std::mutex> l(mu);
        s.status = std::move(st);
        s.ready = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  size_t nworkers = std::min<size_t>(threads, count);
  for (size_t i = 0; i < nworkers; ++i) pool.emplace_back(worker);

  Status result;
  for (size_t k = 0; k < count; ++k) {
    Slot& s = slots[k % window];
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return s.ready; });
    }
    result = s.status;
    if (result.ok()) result = consume(k, &s.buf);
    {
      std::lock_guard<std::mutex> l(mu);
      s.ready = false;
      ++consumed;
      if (!result.ok()) stop = true;
    }
    cv.notify_all();
    if (!result.ok()) break;
  }
  for (auto& t : pool) t.join();
  return result;
}

}  // namespace qatq
