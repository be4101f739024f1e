#pragma once
// Memoisation of pure functions (issue 13: a DeepSeek-V3 evaluation reuses what does not
// change between steps and between sweep points).
//
// A Memo maps a key that holds the *full* inputs of a deterministic computation to its result,
// so a hit returns exactly what the computation would have returned: no approximation, and the
// same output bytes whatever was evaluated before (the caches only change the speed). Keys are
// compared for equality (a hash only picks the bucket); doubles in keys are compared by their
// bit patterns (key_bits), so -0.0 and 0.0 are different keys and NaN equals itself.
//
// Thread safety: every Memo holds one mutex; the computation of a miss runs outside it (two
// threads that miss the same key both compute it, and the first result stored is kept: the two
// are equal by purity). A computation that throws stores nothing and rethrows.
// Memory: at most `capacity` entries; an insert into a full memo first evicts the oldest entry
// (first in, first out; counted). Values are held by shared_ptr, so an evicted value stays valid
// for its holders.
// Counters: hits, misses, entries, evictions per memo; memo_stats() sums them over every live
// memo of one name (a per-cost-model memo exists once per model), for benchmarks and tests.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace trainsim {

struct MemoStats {
  std::string name;
  std::uint64_t hits = 0, misses = 0, evictions = 0;
  std::size_t entries = 0;
  double hit_rate() const { return hits + misses > 0 ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0; }
};

class MemoBase;

namespace memo_detail {
struct Registry {
  std::mutex mu;
  std::vector<MemoBase*> memos;
};
inline Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace memo_detail

// Lock order: the registry's mutex, then a memo's own. Entries are destroyed with neither held
// (a value may own a memo, e.g. a kept cost model its op-cost memo, whose destruction
// unregisters it).
class MemoBase {
 public:
  explicit MemoBase(std::string name) : name_(std::move(name)) {
    auto& r = memo_detail::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.memos.push_back(this);
  }
  virtual ~MemoBase() { unregister(); }
  MemoBase(const MemoBase&) = delete;
  MemoBase& operator=(const MemoBase&) = delete;

  const std::string& name() const { return name_; }
  virtual MemoStats stats() const = 0;
  // Moves the entries out, for the caller to destroy once it holds no lock (counters kept).
  virtual std::shared_ptr<void> take_entries() = 0;
  virtual void reset_counters() = 0;  // zeroes hits, misses, evictions
  void clear() { take_entries().reset(); }  // drops the entries (counters kept)

 protected:
  // Final classes call it first in their destructor, so that memo_stats() never reaches a memo
  // whose members are being destroyed. Idempotent.
  void unregister() {
    auto& r = memo_detail::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.memos.erase(std::remove(r.memos.begin(), r.memos.end(), this), r.memos.end());
  }

 private:
  std::string name_;
};

// Every live memo's counters, summed by name, sorted by name.
inline std::vector<MemoStats> memo_stats() {
  auto& r = memo_detail::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<MemoStats> out;
  for (const MemoBase* m : r.memos) {
    const MemoStats s = m->stats();
    auto it = std::find_if(out.begin(), out.end(), [&](const MemoStats& o) { return o.name == s.name; });
    if (it == out.end()) {
      out.push_back(s);
    } else {
      it->hits += s.hits;
      it->misses += s.misses;
      it->evictions += s.evictions;
      it->entries += s.entries;
    }
  }
  std::sort(out.begin(), out.end(), [](const MemoStats& a, const MemoStats& b) { return a.name < b.name; });
  return out;
}

// The counters of one memo name (zeros when no memo of that name lives).
inline MemoStats memo_stats(std::string_view name) {
  for (const MemoStats& s : memo_stats())
    if (s.name == name) return s;
  MemoStats s;
  s.name = std::string(name);
  return s;
}

// Empties every memo (a cold start) and, with `counters`, zeroes their counters too.
inline void clear_memos(bool counters = true) {
  std::vector<std::shared_ptr<void>> garbage;
  {
    auto& r = memo_detail::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    for (MemoBase* m : r.memos) {
      garbage.push_back(m->take_entries());
      if (counters) m->reset_counters();
    }
  }
  garbage.clear();  // with no lock held: may destroy (and unregister) memos owned by the entries
}

// Zeroes every memo's counters and keeps the entries (a warm start whose reuse is counted anew).
inline void reset_memo_counters() {
  auto& r = memo_detail::registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (MemoBase* m : r.memos) m->reset_counters();
}

// --- building keys ----------------------------------------------------------------------------
// A key is a byte string: append every input, each in a fixed width or with its length, so two
// different input lists never give the same bytes.
class KeyWriter {
 public:
  KeyWriter& add(std::int64_t v) { return raw(&v, sizeof v); }
  KeyWriter& add(std::uint64_t v) { return raw(&v, sizeof v); }
  KeyWriter& add(int v) { return add(static_cast<std::int64_t>(v)); }
  KeyWriter& add(bool v) { return add(static_cast<std::int64_t>(v ? 1 : 0)); }
  KeyWriter& add(double v) { return add(std::bit_cast<std::uint64_t>(v)); }  // bit pattern
  KeyWriter& add(std::string_view s) {
    add(static_cast<std::uint64_t>(s.size()));
    out_.append(s.data(), s.size());
    return *this;
  }
  KeyWriter& add(const std::string& s) { return add(std::string_view(s)); }
  KeyWriter& add(const char* s) { return add(std::string_view(s)); }
  template <class T>
  KeyWriter& add(const std::vector<T>& v) {
    add(static_cast<std::uint64_t>(v.size()));
    for (const T& x : v) add(x);
    return *this;
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }
  void clear() { out_.clear(); }  // keeps the buffer: a reused writer does not allocate

 private:
  KeyWriter& raw(const void* p, std::size_t n) {
    out_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string out_;
};

// --- the memo ---------------------------------------------------------------------------------
// Hashes std::string and std::string_view alike, so a string-keyed memo is searched with a view
// of a reused buffer (no key string built per lookup).
struct StringKeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
};

template <class Key, class Value, class Hash = std::hash<Key>, class Eq = std::equal_to<Key>>
class Memo final : public MemoBase {
  using Map = std::unordered_map<Key, std::shared_ptr<const Value>, Hash, Eq>;

 public:
  Memo(std::string name, std::size_t capacity) : MemoBase(std::move(name)), capacity_(std::max<std::size_t>(capacity, 1)) {}
  ~Memo() override { unregister(); }

  // The value of `key`: stored, or compute() (returning a Value) stored and returned. `K` is Key,
  // or with a transparent Hash and Eq anything they compare with Key (a string_view).
  template <class K, class F>
  std::shared_ptr<const Value> get(const K& key, F&& compute) {
    return get_valid(key, [](const Value&) { return true; }, std::forward<F>(compute));
  }

  // As get(), for values that can go stale (a model read from files that may have changed): a
  // stored value for which valid(value) is false is computed again and replaces it. valid() is
  // called without the lock held.
  template <class K, class V, class F>
  std::shared_ptr<const Value> get_valid(const K& key, V&& valid, F&& compute) {
    std::shared_ptr<const Value> stale;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = map_.find(key);
      if (it != map_.end()) {
        std::shared_ptr<const Value> found = it->second;
        lock.unlock();
        if (valid(*found)) {
          lock.lock();
          ++hits_;
          return found;
        }
        stale = std::move(found);
      }
    }
    Key owned(key);  // `key` may view a buffer that compute() reuses
    auto value = std::make_shared<const Value>(std::forward<F>(compute)());
    std::shared_ptr<const Value> evicted;  // destroyed after the lock below is released
    std::lock_guard<std::mutex> lock(mu_);
    ++misses_;
    auto it = map_.find(owned);
    if (it != map_.end()) {
      if (it->second != stale) return it->second;  // another thread stored it meanwhile (equal)
      evicted = std::exchange(it->second, value);   // the stale value, replaced in place
      return value;
    }
    if (map_.size() >= capacity_) {
      auto oldest = map_.find(order_.front());
      evicted = std::move(oldest->second);
      map_.erase(oldest);
      order_.pop_front();
      ++evictions_;
    }
    order_.push_back(owned);
    map_.emplace(std::move(owned), value);
    return value;
  }

  // The stored value of `key`, or null (counts nothing).
  std::shared_ptr<const Value> peek(const Key& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : it->second;
  }

  MemoStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    MemoStats s;
    s.name = name();
    s.hits = hits_;
    s.misses = misses_;
    s.evictions = evictions_;
    s.entries = map_.size();
    return s;
  }
  std::shared_ptr<void> take_entries() override {
    auto out = std::make_shared<Map>();
    std::lock_guard<std::mutex> lock(mu_);
    out->swap(map_);
    order_.clear();
    return out;
  }
  void reset_counters() override {
    std::lock_guard<std::mutex> lock(mu_);
    hits_ = misses_ = evictions_ = 0;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  mutable std::mutex mu_;
  Map map_;
  std::deque<Key> order_;  // keys in insertion order (eviction order)
  std::size_t capacity_;
  std::uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

// The common case: keys built with KeyWriter.
template <class Value>
using StringMemo = Memo<std::string, Value, StringKeyHash, std::equal_to<>>;

}  // namespace trainsim
