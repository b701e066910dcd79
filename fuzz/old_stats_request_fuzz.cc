// Fuzzes the old-stats query socket: request parsing and answering against a
// store with a few objects of every level (including sessions without IP).
#include <cstddef>
#include <cstdint>
#include <string>

#include "ingest/dovecot_old_stats.h"
#include "query/old_stats_query.h"
#include "stats/old_stats_store.h"

namespace {

struct Fixture {
  mailscope::FakeClock clock;
  mailscope::stats::OldStatsStore store{mailscope::stats::OldStatsOptions{}, clock};
  Fixture() {
    mailscope::ingest::DovecotOldStatsDecoder decoder;
    mailscope::Event e;
    for (std::string line : {
             std::string("CONNECT\ta\talice@example.com\timap\t1\trip=10.0.0.1"),
             std::string("CONNECT\tb\tbob@example.org\tpop3\t2\trip=2001:db8::1"),
             std::string("CONNECT\tc\tcarol\tlmtp\t3\tlip=\trip="),
             std::string("UPDATE-CMD\ta\t1\t\tSELECT\tINBOX\tbWFpbAA="),
             std::string("DISCONNECT\tb"),
         }) {
      if (decoder.Decode(line, clock.Now(), e).emit) (void)store.Apply(e);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  std::string line(reinterpret_cast<const char*>(data), size);
  auto req = mailscope::query::ParseOldStatsRequest(line);
  if (req.ok() && req->kind == mailscope::query::OldStatsRequest::Kind::kExport) {
    std::string out;
    mailscope::query::AnswerExport(fx.store, *req, out);
  }
  return 0;
}
