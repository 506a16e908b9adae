#include "fs/worker_pool.h"

namespace qatq {

WorkerPool::WorkerPool(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Submit(std::function<void()> task, bool low_priority) {
  {
    std::lock_guard<std::mutex> l(mu_);
    (low_priority ? low_queue_ : queue_).push_back(std::move(task));
  }
  cv_.notify_one();
}

size_t WorkerPool::low_priority_backlog() {
  std::lock_guard<std::mutex> l(mu_);
  return low_queue_.size();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || !queue_.empty() || !low_queue_.empty(); });
      if (!queue_.empty()) {
        task = std::move(queue_.front());
        queue_.pop_front();
      } else if (!low_queue_.empty()) {
        task = std::move(low_queue_.front());
        low_queue_.pop_front();
      } else {
        return;  // stop_ and nothing left
      }
    }
    task();
  }
}

}  // namespace qatq
