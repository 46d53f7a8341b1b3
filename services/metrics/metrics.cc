#include "services/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "services/http/utf8.h"

namespace coolify::metrics {
namespace {

void AddDouble(std::atomic<double>& target, double delta) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + delta, std::memory_order_relaxed)) {
  }
}

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "metrics: %s\n", what.c_str());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    if (!letter && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

// {a="x",b="y"} from names and values, with `extra` (le="...") last; "" for no labels.
std::string LabelText(const std::vector<std::string>& names, const LabelValues& values,
                      std::string_view extra = {}) {
  if (names.empty() && extra.empty()) return "";
  std::string text = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&text, i > 0 ? "," : "", names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&text, names.empty() ? "" : ",", std::string(extra));
  text += "}";
  return text;
}

void Header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(help), "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

void Gauge::Add(double delta) { AddDouble(value_, delta); }

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // The first bucket whose bound is >= value ("le"); past the last, +Inf.
  const size_t bucket = static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  AddDouble(sum_, value);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() { return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}; }

std::vector<double> BuildBuckets() { return {1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}; }

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string EscapeHelp(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(std::string_view value) {
  // The format is UTF-8: a value that is not (from an answer coold relays) must not
  // make the whole text unreadable.
  const std::string text = http::WellFormedUtf8(value);
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) return "NaN";
  return std::string(buffer, end);
}

// One registered family, whichever its kind.
struct Registry::Entry {
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::unique_ptr<CounterFamily> counters;
  std::unique_ptr<GaugeFamily> gauges;
  std::unique_ptr<HistogramFamily> histograms;
  std::shared_ptr<const std::vector<double>> bounds;
  Type collected_type = Type::kCounter;
  std::function<std::vector<Sample>()> collect;
};

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Check(const std::string& name, const std::vector<std::string>& label_names, bool histogram) {
  if (!ValidName(name, /*allow_colon=*/true)) Misuse(absl::StrCat("bad metric name \"", name, "\""));
  for (const std::string& label : label_names) {
    if (!ValidName(label, /*allow_colon=*/false) || label.rfind("__", 0) == 0 || (histogram && label == "le")) {
      Misuse(absl::StrCat("bad label name \"", label, "\" of ", name));
    }
  }
  for (const auto& entry : entries_) {
    if (entry->name == name) Misuse(absl::StrCat("metric ", name, " registered twice"));
  }
}

CounterFamily& Registry::AddCounter(std::string name, std::string help, std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  Check(name, label_names, false);
  auto entry = std::make_unique<Entry>();
  entry->counters.reset(new CounterFamily(name, help, label_names, [] { return std::make_unique<Counter>(); }));
  // A family without labels has its one series from the start: it reads 0, not nothing.
  if (label_names.empty()) entry->counters->With({});
  entry->name = std::move(name);
  entry->help = std::move(help);
  entry->label_names = std::move(label_names);
  entries_.push_back(std::move(entry));
  return *entries_.back()->counters;
}

GaugeFamily& Registry::AddGauge(std::string name, std::string help, std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  Check(name, label_names, false);
  auto entry = std::make_unique<Entry>();
  entry->gauges.reset(new GaugeFamily(name, help, label_names, [] { return std::make_unique<Gauge>(); }));
  if (label_names.empty()) entry->gauges->With({});
  entry->name = std::move(name);
  entry->help = std::move(help);
  entry->label_names = std::move(label_names);
  entries_.push_back(std::move(entry));
  return *entries_.back()->gauges;
}

HistogramFamily& Registry::AddHistogram(std::string name, std::string help, std::vector<std::string> label_names,
                                        std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  Check(name, label_names, true);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse(absl::StrCat("buckets of ", name, " are not finite and strictly increasing"));
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->bounds = std::make_shared<const std::vector<double>>(std::move(bounds));
  entry->histograms.reset(new HistogramFamily(name, help, label_names, [bounds = entry->bounds] {
    return std::make_unique<Histogram>(bounds);
  }));
  if (label_names.empty()) entry->histograms->With({});
  entry->name = std::move(name);
  entry->help = std::move(help);
  entry->label_names = std::move(label_names);
  entries_.push_back(std::move(entry));
  return *entries_.back()->histograms;
}

void Registry::AddCollector(std::string name, std::string help, Type type, std::vector<std::string> label_names,
                            std::function<std::vector<Sample>()> collect) {
  absl::MutexLock lock(&mu_);
  Check(name, label_names, false);
  auto entry = std::make_unique<Entry>();
  entry->name = std::move(name);
  entry->help = std::move(help);
  entry->label_names = std::move(label_names);
  entry->collected_type = type;
  entry->collect = std::move(collect);
  entries_.push_back(std::move(entry));
}

std::string Registry::Text() const {
  std::vector<const Entry*> entries;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& entry : entries_) entries.push_back(entry.get());
  }
  std::string out;
  for (const Entry* e : entries) {
    if (e->counters) {
      Header(out, e->name, e->help, "counter");
      absl::ReaderMutexLock lock(&e->counters->mu_);
      for (const auto& [values, series] : e->counters->series_) {
        absl::StrAppend(&out, e->name, LabelText(e->label_names, values), " ", series->value(), "\n");
      }
    } else if (e->gauges) {
      Header(out, e->name, e->help, "gauge");
      absl::ReaderMutexLock lock(&e->gauges->mu_);
      for (const auto& [values, series] : e->gauges->series_) {
        absl::StrAppend(&out, e->name, LabelText(e->label_names, values), " ", FormatValue(series->value()), "\n");
      }
    } else if (e->histograms) {
      Header(out, e->name, e->help, "histogram");
      absl::ReaderMutexLock lock(&e->histograms->mu_);
      for (const auto& [values, series] : e->histograms->series_) {
        const Histogram::Snapshot s = series->snapshot();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          const std::string le = i < e->bounds->size() ? FormatValue((*e->bounds)[i]) : "+Inf";
          absl::StrAppend(&out, e->name, "_bucket", LabelText(e->label_names, values, absl::StrCat("le=\"", le, "\"")),
                          " ", s.cumulative[i], "\n");
        }
        absl::StrAppend(&out, e->name, "_sum", LabelText(e->label_names, values), " ", FormatValue(s.sum), "\n");
        absl::StrAppend(&out, e->name, "_count", LabelText(e->label_names, values), " ", s.count, "\n");
      }
    } else {
      Header(out, e->name, e->help, e->collected_type == Type::kCounter ? "counter" : "gauge");
      for (const Sample& sample : e->collect()) {
        if (sample.labels.size() != e->label_names.size()) continue;
        absl::StrAppend(&out, e->name, LabelText(e->label_names, sample.labels), " ", FormatValue(sample.value), "\n");
      }
    }
  }
  return out;
}

}  // namespace coolify::metrics
