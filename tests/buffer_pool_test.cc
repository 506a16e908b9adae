#include "fs/buffer_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace qatq {
namespace {

TEST(BufferPool, ReleasedBufferIsReusedWithoutReallocation) {
  auto pool = BufferPool::Create(4, 1 << 20);
  const char* first_data = nullptr;
  {
    auto b = pool->Acquire(1 << 20);
    ASSERT_EQ(b->size(), 1u << 20);
    (*b)[0] = 'x';
    first_data = b->data();
  }
  EXPECT_EQ(pool->free_count(), 1u);
  auto again = pool->Acquire(1 << 20);
  EXPECT_EQ(again->data(), first_data);
  EXPECT_EQ(again->size(), 1u << 20);
  EXPECT_EQ(pool->free_count(), 0u);
}

TEST(BufferPool, KeepsAtMostMaxFreeAndDropsOversizedBuffers) {
  auto pool = BufferPool::Create(2, 4096);
  {
    std::vector<std::shared_ptr<std::string>> held;
    for (int i = 0; i < 5; ++i) held.push_back(pool->Acquire(1000));
  }
  EXPECT_EQ(pool->free_count(), 2u);
  { auto big = pool->Acquire(100000); }
  EXPECT_EQ(pool->free_count(), 1u);  // the big one took a free buffer and was not kept
  auto small = pool->Acquire(10);
  EXPECT_EQ(small->size(), 10u);
}

TEST(BufferPool, BufferMayOutliveItsOwnersReference) {
  auto pool = BufferPool::Create(2, 4096);
  auto b = pool->Acquire(100);
  pool.reset();  // the buffer keeps the pool alive until it is released
  (*b)[99] = 'z';
  b.reset();
  SUCCEED();
}

}  // namespace
}  // namespace qatq
