// Opening the records store for the commands that read or migrate it.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "store/record_store.h"

namespace mailscope::cli {

// DATA_DIR/records.sqlite of `data_dir`, or of serve's default data
// directory when it is empty.
std::string RecordsFileOf(const std::string& data_dir);

// PostgreSQL when `database` is not empty (connected, schema checked but
// not changed), else the SQLite file at `sqlite_path`, read-only.
Result<std::unique_ptr<store::RecordStore>> OpenStore(const std::string& database,
                                                      const std::string& sqlite_path);

}  // namespace mailscope::cli
