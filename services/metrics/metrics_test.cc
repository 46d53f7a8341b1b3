#include "services/metrics/metrics.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/metrics/exposition_parse.h"

namespace coolify::metrics {
namespace {

TEST(MetricsTest, CountersByLabelsReadBackExactly) {
  Registry registry;
  CounterFamily& dispatches = registry.AddCounter("test_dispatches_total", "Dispatches.", {"verb", "status"});
  dispatches.With({"containers.create", "201"}).Add();
  dispatches.With({"containers.create", "201"}).Add(2);
  dispatches.With({"firewall.allow", "403"}).Add();
  absl::StatusOr<Exposition> parsed = ParseExposition(registry.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << registry.Text();
  EXPECT_EQ(parsed->types.at("test_dispatches_total"), "counter");
  EXPECT_EQ(parsed->helps.at("test_dispatches_total"), "Dispatches.");
  EXPECT_EQ(parsed->Sum("test_dispatches_total", {{"verb", "containers.create"}, {"status", "201"}}), 3);
  EXPECT_EQ(parsed->Sum("test_dispatches_total", {{"verb", "firewall.allow"}}), 1);
  EXPECT_EQ(parsed->Sum("test_dispatches_total"), 4);
}

TEST(MetricsTest, TheTextIsTheFormatExactly) {
  Registry registry;
  registry.AddCounter("a_total", "Plain.").With({}).Add(7);
  registry.AddGauge("b", "Level.", {"x"}).With({"y"}).Set(2.5);
  EXPECT_EQ(registry.Text(),
            "# HELP a_total Plain.\n# TYPE a_total counter\na_total 7\n"
            "# HELP b Level.\n# TYPE b gauge\nb{x=\"y\"} 2.5\n");
}

TEST(MetricsTest, AFamilyWithoutLabelsReadsZeroBeforeItsFirstCount) {
  Registry registry;
  registry.AddCounter("c_total", "Nothing yet.");
  registry.AddCounter("d_total", "Labelled, nothing yet.", {"k"});
  EXPECT_EQ(registry.Text(),
            "# HELP c_total Nothing yet.\n# TYPE c_total counter\nc_total 0\n"
            "# HELP d_total Labelled, nothing yet.\n# TYPE d_total counter\n");
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  registry.AddCounter("e_total", "Back\\slash and\nnewline.", {"v"}).With({"a\"b\\c\nd"}).Add();
  const std::string text = registry.Text();
  EXPECT_NE(text.find("# HELP e_total Back\\\\slash and\\nnewline.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
  absl::StatusOr<Exposition> parsed = ParseExposition(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->helps.at("e_total"), "Back\\slash and\nnewline.");
  EXPECT_EQ(parsed->Sum("e_total", {{"v", "a\"b\\c\nd"}}), 1);
}

TEST(MetricsTest, LabelValuesThatAreNotUtf8AreMadeUtf8) {
  EXPECT_EQ(EscapeLabelValue("ok\xff"), "ok\xef\xbf\xbd");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  HistogramFamily& latency = registry.AddHistogram("h_seconds", "Latency.", {"verb"}, {0.1, 1, 10});
  Histogram& h = latency.With({"x"});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.5);
  h.Observe(20);
  const std::string text = registry.Text();
  EXPECT_EQ(text,
            "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
            "h_seconds_bucket{verb=\"x\",le=\"0.1\"} 2\n"
            "h_seconds_bucket{verb=\"x\",le=\"1\"} 3\n"
            "h_seconds_bucket{verb=\"x\",le=\"10\"} 3\n"
            "h_seconds_bucket{verb=\"x\",le=\"+Inf\"} 4\n"
            "h_seconds_sum{verb=\"x\"} 20.65\n"
            "h_seconds_count{verb=\"x\"} 4\n");
  absl::StatusOr<Exposition> parsed = ParseExposition(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Sum("h_seconds_bucket", {{"le", "+Inf"}}), parsed->Sum("h_seconds_count"));
}

TEST(MetricsTest, AHistogramWithoutLabelsStillNamesLe) {
  Registry registry;
  registry.AddHistogram("i_seconds", "Plain.", {}, {1}).With({}).Observe(3);
  EXPECT_NE(registry.Text().find("i_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << registry.Text();
  EXPECT_NE(registry.Text().find("i_seconds_bucket{le=\"1\"} 0\n"), std::string::npos) << registry.Text();
}

TEST(MetricsTest, SeriesBeyondTheCapAreCountedUnderOneOverflowSet) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("j_total", "Many.", {"k"});
  for (size_t i = 0; i < kMaxSeriesPerFamily + 50; ++i) family.With({std::to_string(i)}).Add();
  absl::StatusOr<Exposition> parsed = ParseExposition(registry.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->samples.size(), kMaxSeriesPerFamily + 1);
  EXPECT_EQ(parsed->Sum("j_total", {{"k", kOverflowLabel}}), 50);
  EXPECT_EQ(parsed->Sum("j_total"), kMaxSeriesPerFamily + 50);
  // A wrong number of values is counted there too, never as an ill-formed series.
  family.With({"a", "b"}).Add();
  EXPECT_EQ(ParseExposition(registry.Text())->Sum("j_total", {{"k", kOverflowLabel}}), 51);
}

TEST(MetricsTest, CollectorsReportAtScrapeTime) {
  Registry registry;
  int hosts = 3;
  registry.AddCollector("hosts", "Connected hosts.", Type::kGauge, {}, [&hosts] {
    return std::vector<Sample>{{{}, static_cast<double>(hosts)}};
  });
  registry.AddCollector("queries_total", "Queries.", Type::kCounter, {"rcode"}, [] {
    return std::vector<Sample>{{{"NOERROR"}, 5}, {{"NXDOMAIN"}, 1}};
  });
  EXPECT_EQ(ParseExposition(registry.Text())->Sum("hosts"), 3);
  hosts = 4;
  absl::StatusOr<Exposition> parsed = ParseExposition(registry.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Sum("hosts"), 4);
  EXPECT_EQ(parsed->types.at("queries_total"), "counter");
  EXPECT_EQ(parsed->Sum("queries_total", {{"rcode", "NXDOMAIN"}}), 1);
}

TEST(MetricsTest, CountsFromManyThreadsAddUp) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("k_total", "Concurrent.", {"t"});
  HistogramFamily& histogram = registry.AddHistogram("k_seconds", "Concurrent.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&family, &histogram, t] {
      for (int i = 0; i < 10000; ++i) {
        family.With({std::to_string(i % 3)}).Add();
        family.With({"all"}).Add();
        histogram.With({}).Observe(t % 2 == 0 ? 0.5 : 2);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::StatusOr<Exposition> parsed = ParseExposition(registry.Text());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Sum("k_total", {{"t", "all"}}), 40000);
  EXPECT_EQ(parsed->Sum("k_seconds_count"), 40000);
  EXPECT_EQ(parsed->Sum("k_seconds_bucket", {{"le", "1"}}), 20000);
  EXPECT_EQ(parsed->Sum("k_seconds_sum"), 50000);
}

TEST(MetricsTest, ValuesAreFormattedExactly) {
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e-9), "1e-09");
  EXPECT_EQ(FormatValue(HUGE_VAL), "+Inf");
  EXPECT_EQ(FormatValue(-HUGE_VAL), "-Inf");
}

TEST(MetricsTest, TheParserRefusesWhatIsNotTheFormat) {
  EXPECT_FALSE(ParseExposition("x 1\n").ok());  // no TYPE
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx{a=\"b} 1\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx{a=\"\\q\"} 1\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx 1\nx 2\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx one\n").ok());
}

TEST(MetricsDeathTest, BadNamesAreAProgrammingError) {
  Registry registry;
  EXPECT_DEATH(registry.AddCounter("9bad", "x"), "bad metric name");
  EXPECT_DEATH(registry.AddCounter("ok_total", "x", {"__reserved"}), "bad label name");
  EXPECT_DEATH(registry.AddHistogram("ok_seconds", "x", {"le"}, {1}), "bad label name");
  EXPECT_DEATH(registry.AddHistogram("ok_seconds", "x", {}, {2, 1}), "strictly increasing");
  registry.AddCounter("twice_total", "x");
  EXPECT_DEATH(registry.AddCounter("twice_total", "x"), "registered twice");
}

}  // namespace
}  // namespace coolify::metrics
