// Prometheus metrics for coold's front end and the broker: counters, gauges and
// histograms with fixed buckets, each a family of series told apart by label values, and
// the text exposition format 0.0.4 (GET /metrics).
//
// Thread-safe and cheap on the counting path: a series is a few atomics; finding the
// series of a label set takes a reader lock on its family (a writer lock only the first
// time that set is seen). A caller that counts one fixed label set keeps the series it
// got. Values already counted elsewhere (the DNS servers' atomics, the broker's hub) are
// read when the text is made, through a collector, so their hot paths stay as they are.
//
// Label values come from requests and answers, so a family holds at most
// kMaxSeriesPerFamily label sets: past that, every new set is counted under the one
// series whose values are all kOverflowLabel, so memory stays bounded and nothing counted
// is lost.
#ifndef COOLD_SERVICES_METRICS_METRICS_H_
#define COOLD_SERVICES_METRICS_METRICS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace coolify::metrics {

inline constexpr size_t kMaxSeriesPerFamily = 1000;
inline constexpr char kOverflowLabel[] = "_other";
// The Content-Type of the exposition.
inline constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, strictly increasing; +Inf is implied.
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bound, then +Inf; not cumulative
  std::atomic<double> sum_{0};
};

// Upper bounds for request latencies in seconds: 5 ms to 30 s.
std::vector<double> LatencyBuckets();
// Upper bounds for build durations in seconds: 1 s to 2 h.
std::vector<double> BuildBuckets();

// The seconds since `start`, for a histogram.
double SecondsSince(std::chrono::steady_clock::time_point start);

// One family: a name, a help text, label names and a series per label set.
template <typename Series>
class Family {
 public:
  // The series of `values` (one per label name), made on first use.
  Series& With(const LabelValues& values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Series>()> make)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), make_(std::move(make)) {}

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Series>()> make_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<Series>> series_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// A sample a collector reports at scrape time.
struct Sample {
  LabelValues labels;
  double value = 0;
};

enum class Type { kCounter, kGauge };

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and not
  // start with "__" (nor be "le" for a histogram); a name is registered once. A violation
  // is a programming error and aborts. The family lives as long as the registry.
  CounterFamily& AddCounter(std::string name, std::string help, std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                                std::vector<double> bounds);
  // A family whose samples `collect` reports when the text is made (called without any
  // lock of the registry held, on the scraping thread).
  void AddCollector(std::string name, std::string help, Type type, std::vector<std::string> label_names,
                    std::function<std::vector<Sample>()> collect);

  // Every family in registration order, in the text exposition format 0.0.4.
  std::string Text() const;

 private:
  struct Entry;
  void Check(const std::string& name, const std::vector<std::string>& label_names, bool histogram)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// "\\" and "\n" escaped, as a HELP text must be.
std::string EscapeHelp(std::string_view text);
// "\\", "\"" and "\n" escaped, as a label value must be; bytes that are not UTF-8
// become U+FFFD.
std::string EscapeLabelValue(std::string_view value);
// A sample value: integers without a fraction, others in the shortest form that reads
// back as the same double, "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

// ---------------------------------------------------------------------------------------

template <typename Series>
Series& Family<Series>::With(const LabelValues& values) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  auto it = series_.find(values);
  if (it != series_.end()) return *it->second;
  LabelValues key = values;
  // A wrong label count is the caller's mistake; it is counted, not lost, under
  // the overflow set rather than making an ill-formed series.
  if (values.size() != label_names_.size() || series_.size() >= kMaxSeriesPerFamily) {
    key.assign(label_names_.size(), kOverflowLabel);
    it = series_.find(key);
    if (it != series_.end()) return *it->second;
  }
  return *series_.emplace(std::move(key), make_()).first->second;
}

}  // namespace coolify::metrics

#endif  // COOLD_SERVICES_METRICS_METRICS_H_
