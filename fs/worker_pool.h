// A small fixed pool of threads running queued tasks in FIFO order. The
// filesystem encodes chunks and decodes readahead on it, off the FUSE
// threads.
//
// Thread-safety: Submit may be called from any thread. The destructor runs
// every task already queued, then joins.
#ifndef QATQ_FS_WORKER_POOL_H_
#define QATQ_FS_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qatq {

class WorkerPool {
 public:
  // REQUIRES: threads >= 1.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. Tasks must not throw. Low-priority tasks (readahead) run
  // only when no normal task is queued.
  void Submit(std::function<void()> task, bool low_priority = false);

  // Number of low-priority tasks queued but not started.
  size_t low_priority_backlog();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::deque<std::function<void()>> low_queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// A one-shot completion flag with a result, shared between a submitter and
// the task.
class Completion {
 public:
  void Done() {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return done_; });
  }
  bool done() {
    std::lock_guard<std::mutex> l(mu_);
    return done_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace qatq

#endif  // QATQ_FS_WORKER_POOL_H_
