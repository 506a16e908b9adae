// Deterministic randomness for the reliability tools and tests: the same
// seed gives the same operations on every platform (std:: distributions do
// not), so a failing run can be replayed from its seed.
#ifndef QATQ_TESTS_RELIABILITY_RNG_H_
#define QATQ_TESTS_RELIABILITY_RNG_H_

#include <cstdint>
#include <cstdlib>

namespace qatq::test {

// splitmix64: small, fast, good enough for choosing operations and data.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n == 0.
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Uniform in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

// The numeric value of environment variable `name`, or `def` if unset/empty.
inline uint64_t EnvOr(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : def;
}

}  // namespace qatq::test

#endif  // QATQ_TESTS_RELIABILITY_RNG_H_
