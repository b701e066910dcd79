#include "ingest/line_assembler.h"

namespace mailscope::ingest {

void LineAssembler::Clear() {
  if (held_.capacity() > kKeepCapacity) {
    std::string().swap(held_);
  } else {
    held_.clear();
  }
}

}  // namespace mailscope::ingest
