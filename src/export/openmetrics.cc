#include "export/openmetrics.h"

#include <fmt/format.h>

#include <cmath>

namespace mailscope::exporter {

MetricsFormat FormatFromAccept(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos
             ? MetricsFormat::kOpenMetrics
             : MetricsFormat::kPrometheus;
}

std::string_view ContentType(MetricsFormat format) {
  return format == MetricsFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

bool MetricsWriter::Family(std::string_view name, std::string_view type, std::string_view help,
                           std::string_view unit) {
  skip_ = !families_.emplace(name).second;
  if (skip_) return false;
  family_ = name;
  type_ = type;
  // The Prometheus text format has no info type: an info family is a gauge
  // whose samples carry the _info suffix.
  std::string_view shown_type = type;
  std::string shown_name(name);
  if (type == "info" && format_ == MetricsFormat::kPrometheus) {
    shown_type = "gauge";
    shown_name += "_info";
  }
  if (type == "counter" && format_ == MetricsFormat::kPrometheus) shown_name += "_total";
  out_ += fmt::format("# HELP {} ", shown_name);
  for (char c : help) {
    if (c == '\\')
      out_ += "\\\\";
    else if (c == '\n')
      out_ += "\\n";
    else
      out_ += c;
  }
  out_ += fmt::format("\n# TYPE {} {}\n", shown_name, shown_type);
  if (!unit.empty() && format_ == MetricsFormat::kOpenMetrics)
    out_ += fmt::format("# UNIT {} {}\n", name, unit);
  return true;
}

void MetricsWriter::SampleName(std::span<const Label> labels, std::string_view suffix) {
  out_ += family_;
  out_ += suffix;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    for (char c : v) {
      if (c == '\\')
        out_ += "\\\\";
      else if (c == '"')
        out_ += "\\\"";
      else if (c == '\n')
        out_ += "\\n";
      else
        out_ += c;
    }
    out_ += '"';
  }
  out_ += '}';
}

void MetricsWriter::Value(double value) {
  if (std::isnan(value))
    out_ += " NaN\n";
  else if (std::isinf(value))
    out_ += value > 0 ? " +Inf\n" : " -Inf\n";
  else
    out_ += fmt::format(" {}\n", value);
}

namespace {
std::string_view SuffixOf(std::string_view type) {
  if (type == "counter") return "_total";
  if (type == "info") return "_info";
  return {};
}
}  // namespace

void MetricsWriter::Sample(std::span<const Label> labels, double value) {
  if (skip_) return;
  SampleName(labels, SuffixOf(type_));
  Value(value);
}

void MetricsWriter::Sample(std::span<const Label> labels, std::uint64_t value) {
  if (skip_) return;
  SampleName(labels, SuffixOf(type_));
  out_ += fmt::format(" {}\n", value);
}

void MetricsWriter::Sample(std::initializer_list<Label> labels, double value) {
  Sample(std::span<const Label>(labels.begin(), labels.size()), value);
}

void MetricsWriter::Sample(std::initializer_list<Label> labels, std::uint64_t value) {
  Sample(std::span<const Label>(labels.begin(), labels.size()), value);
}

void MetricsWriter::Suffixed(std::string_view suffix, std::span<const Label> labels, double value) {
  if (skip_) return;
  SampleName(labels, suffix);
  Value(value);
}

std::string MetricsWriter::Finish() {
  if (format_ == MetricsFormat::kOpenMetrics) out_ += "# EOF\n";
  return std::move(out_);
}

}  // namespace mailscope::exporter
