// MetricsWriter: renders metric families in the Prometheus text format 0.0.4
// or OpenMetrics 1.0 (what a scraper asks for with its Accept header). Pure;
// thread-compatible. Counter families are named without "_total"; the writer
// adds it to samples as both formats require.
#pragma once

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "core/hash.h"

namespace mailscope::exporter {

enum class MetricsFormat { kPrometheus, kOpenMetrics };

// Picks the format from an HTTP Accept header.
MetricsFormat FormatFromAccept(std::string_view accept);
std::string_view ContentType(MetricsFormat format);

using Label = std::pair<std::string_view, std::string_view>;

class MetricsWriter {
 public:
  explicit MetricsWriter(MetricsFormat format) : format_(format) {}

  // Starts a family. `type` is "counter", "gauge", "info" or "histogram".
  // A name already started makes the family and its samples go unwritten
  // (a repeated family invalidates the whole exposition): false then.
  bool Family(std::string_view name, std::string_view type, std::string_view help,
              std::string_view unit = {});
  // A sample of the current family. Label values are escaped.
  void Sample(std::initializer_list<Label> labels, double value);
  void Sample(std::initializer_list<Label> labels, std::uint64_t value);
  void Sample(std::span<const Label> labels, double value);
  void Sample(std::span<const Label> labels, std::uint64_t value);
  // A sample named family + suffix ("_bucket", "_sum", "_count"), for histograms.
  void Suffixed(std::string_view suffix, std::span<const Label> labels, double value);

  // Finishes (OpenMetrics: "# EOF") and returns the body.
  std::string Finish();

 private:
  void SampleName(std::span<const Label> labels, std::string_view suffix);
  void Value(double value);

  MetricsFormat format_;
  std::string out_;
  std::string family_;
  std::string type_;
  bool skip_ = false;  // the current family repeats an earlier one
  // Family names include those of metrics that doveadm adds (METRICS-ADD),
  // chosen by the client: seeded.
  std::unordered_set<std::string, SeededStringHash, std::equal_to<>> families_;
};

}  // namespace mailscope::exporter
