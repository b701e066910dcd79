#include "serve/records_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/sqlite_store.h"

namespace mailscope::serve {

RecordsOutput::~RecordsOutput() { Stop(); }

Status RecordsOutput::Apply(const RecordsConfig& config, const std::string& data_dir) {
  std::vector<filter::Filter> filters;
  for (const std::string& text : config.filters) {
    auto f = filter::Parse(text, filter::Dialect::kMailscope);
    if (!f.ok()) return InvalidArgument(fmt::format("[records] filter: {}", f.status().message()));
    filters.push_back(std::move(*f));
  }
  if (!filters.empty() && writer_ == nullptr) {
    path_ = data_dir + "/" + std::string(store::kSqliteFileName);
    auto db = store::SqliteStore::Open(path_, store::SqliteStore::Mode::kReadWrite);
    if (!db.ok()) return db.status();
    store::RecordsWriterOptions options;
    options.batch_size = config.batch_size;
    options.queue_bytes = config.queue_size;
    options.max_age = config.max_age;
    options.max_size = config.max_size;
    options.retention_interval = config.retention_interval;
    max_record_size_ = config.max_record_size;
    writer_ = std::make_unique<store::RecordsWriter>(std::move(*db), options, clock_);
    spdlog::info("records: {} filter{} into {}", filters.size(), filters.size() == 1 ? "" : "s",
                 path_);
  }
  filters_ = std::move(filters);
  return Status::Ok();
}

std::string_view RecordsOutput::Consume(const Event& event) {
  if (writer_ == nullptr) return {};
  bool match = false;
  for (const filter::Filter& f : filters_) {
    if (f.Matches(event)) {
      match = true;
      break;
    }
  }
  if (!match) return {};
  ++matched_;
  scratch_.clear();
  const std::size_t size = encoder_.Append(event, scratch_);
  if (size > max_record_size_) {
    ++too_large_;
    return {};
  }
  writer_->Push(scratch_);
  return {};
}

std::vector<const filter::Filter*> RecordsOutput::Filters() const {
  std::vector<const filter::Filter*> out;
  for (const filter::Filter& f : filters_) out.push_back(&f);
  return out;
}

RecordsOutputFigures RecordsOutput::figures() const {
  RecordsOutputFigures f;
  f.enabled = writer_ != nullptr;
  f.matched = matched_;
  f.too_large = too_large_;
  if (writer_ != nullptr) f.writer = writer_->figures();
  return f;
}

void RecordsOutput::Stop() {
  if (writer_ != nullptr) writer_->Stop();
}

}  // namespace mailscope::serve
