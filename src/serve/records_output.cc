#include "serve/records_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>

#include "store/postgres_store.h"
#include "store/spool.h"
#include "store/sqlite_store.h"

namespace mailscope::serve {

RecordsOutput::RecordsOutput(const Clock& clock) : clock_(clock) {
  std::random_device random;
  stream_ = (static_cast<std::uint64_t>(random()) << 32) ^ random();
}

RecordsOutput::~RecordsOutput() { Stop(); }

Status RecordsOutput::Apply(const RecordsConfig& config, const std::string& data_dir, bool synced) {
  std::vector<filter::Filter> filters;
  for (const std::string& text : config.filters) {
    auto f = filter::Parse(text, filter::Dialect::kMailscope);
    if (!f.ok()) return InvalidArgument(fmt::format("[records] filter: {}", f.status().message()));
    filters.push_back(std::move(*f));
  }
  if (!filters.empty() && writer_ == nullptr) {
    std::unique_ptr<store::RecordStore> db;
    std::unique_ptr<store::Spool> spool;
    if (config.database.empty()) {
      path_ = store::SqlitePath(data_dir);
      auto sqlite = store::SqliteStore::Open(
          path_, store::SqliteStore::Mode::kReadWrite,
          synced ? store::SqliteStore::Commits::kSynced : store::SqliteStore::Commits::kNormal);
      if (!sqlite.ok()) return sqlite.status();
      db = std::move(*sqlite);
    } else {
      // The writer thread connects: a database that is away does not keep
      // mailscope from starting, its records wait in the spool.
      auto pg = store::PostgresStore::Open(config.database, false);
      if (!pg.ok()) return pg.status();
      path_ = "PostgreSQL " + (*pg)->display_name();
      remote_ = true;
      db = std::move(*pg);
      auto opened = store::Spool::Open(data_dir + "/records-spool", config.spool_size);
      if (!opened.ok()) return opened.status();
      spool = std::move(*opened);
    }
    store::RecordsWriterOptions options;
    options.batch_size = config.batch_size;
    options.queue_bytes = config.queue_size;
    options.max_age = config.max_age;
    options.max_size = config.max_size;
    options.retention_interval = config.retention_interval;
    max_record_size_ = config.max_record_size;
    writer_ =
        std::make_unique<store::RecordsWriter>(std::move(db), std::move(spool), options, clock_);
    settled_from_.store(writer_.get(), std::memory_order_release);
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
  // An event that knows where it was read is keyed by that place, kept once
  // however often it is read (store::kOriginStreamBit).
  const std::size_t size =
      event.origin_stream != 0
          ? encoder_.Capture(event, event.origin_stream | store::kOriginStreamBit, event.origin_seq,
                             scratch_)
          : encoder_.Capture(event, stream_, seq_++, scratch_);
  if (size > max_record_size_) {
    ++too_large_;
    return {};
  }
  if (writer_->Push(scratch_)) ++pushed_;
  return {};
}

std::uint64_t RecordsOutput::DurableSettled() const {
  const store::RecordsWriter* w = settled_from_.load(std::memory_order_acquire);
  return w != nullptr ? w->settled() : 0;
}

std::vector<const filter::Filter*> RecordsOutput::Filters() const {
  std::vector<const filter::Filter*> out;
  for (const filter::Filter& f : filters_) out.push_back(&f);
  return out;
}

RecordsOutputFigures RecordsOutput::figures() const {
  RecordsOutputFigures f;
  f.enabled = writer_ != nullptr;
  f.remote = remote_;
  f.matched = matched_;
  f.too_large = too_large_;
  if (writer_ != nullptr) f.writer = writer_->figures();
  return f;
}

void RecordsOutput::Stop() {
  if (writer_ != nullptr) writer_->Stop();
}

}  // namespace mailscope::serve
