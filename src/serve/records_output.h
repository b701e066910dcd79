// RecordsOutput: the pipeline's output "records" (issue "Event records").
// It keeps the events that match any `[records] filter` in the records store
// under the data directory: the loop thread copies each into a capture
// (store/record.h) and hands it to the store's writer thread
// (store/records_writer.h), which makes the record and writes it, so the
// loop never waits for the database nor writes JSON. Loop thread only, but figures() may be
// read from it while the writer works.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "filter/filter.h"
#include "pipeline/dispatcher.h"
#include "serve/config.h"
#include "store/record.h"
#include "store/records_writer.h"

namespace mailscope::serve {

struct RecordsOutputFigures {
  bool enabled = false;          // a store is open
  bool remote = false;           // PostgreSQL: the spool and connection figures apply
  std::uint64_t matched = 0;     // events a filter chose
  std::uint64_t too_large = 0;   // chosen but over max_record_size
  store::RecordsFigures writer;  // what the writer thread did
};

class RecordsOutput : public pipeline::Consumer {
 public:
  explicit RecordsOutput(const Clock& clock);
  ~RecordsOutput() override;

  // Takes `config`'s filters. The first time there are any, opens
  // DATA_DIR/records.sqlite (made and migrated when needed) and starts the
  // writer with the other settings, which stay until a restart.
  // `synced`: SQLite commits reach the disk before they count as settled
  // (log sources save their positions after them).
  Status Apply(const RecordsConfig& config, const std::string& data_dir, bool synced = false);

  std::string_view Consume(const Event& event) override;

  // Records pushed to the writer, and of them those it is done with.
  std::uint64_t DurableTaken() const override { return pushed_; }
  std::uint64_t DurableSettled() const override;
  bool Backlogged() const override { return writer_ != nullptr && writer_->backlogged(); }

  // The filters, for the FILTER Dovecot's processes get.
  std::vector<const filter::Filter*> Filters() const;
  RecordsOutputFigures figures() const;
  // The SQLite file, or "PostgreSQL <conninfo without password>".
  const std::string& path() const { return path_; }
  bool remote() const { return remote_; }

  // Writes what is queued and stops the writer (shutdown).
  void Stop();

 private:
  const Clock& clock_;
  std::vector<filter::Filter> filters_;
  std::uint64_t max_record_size_ = 0;
  std::unique_ptr<store::RecordsWriter> writer_;
  // writer_ for DurableSettled(), which other threads call: set once, when
  // the writer starts.
  std::atomic<const store::RecordsWriter*> settled_from_{nullptr};
  store::RecordEncoder encoder_;
  std::string scratch_;
  std::string path_;
  bool remote_ = false;
  // The records' keys: a random stream per run, numbered from 0.
  std::uint64_t stream_;
  std::uint64_t seq_ = 0;
  std::uint64_t pushed_ = 0;
  std::uint64_t matched_ = 0;
  std::uint64_t too_large_ = 0;
};

}  // namespace mailscope::serve
