// Golden tests of the event exporter formats against real Dovecot 2.3.19.1
// output (tests/data/dovecot-2.3.19/event-exporter-*.txt):
//  - End to end: the stats-writer traffic of the same run (stats-writer-
//    wire.txt) is decoded, and each event a configured exporter sent is
//    rendered and compared byte for byte with what Dovecot sent. The one
//    allowed difference is the order of categories, which Dovecot takes from
//    a pointer hash table (see event_format.h).
//  - Round trip: every captured body decoded by DovecotEventExportDecoder
//    and rendered again gives the same bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "export/event_format.h"
#include "ingest/dovecot_captures_testing.h"
#include "ingest/dovecot_event_export.h"
#include "ingest/dovecot_stats_writer.h"

namespace mailscope::exporter {
namespace {

using ingest::DovecotEventExportDecoder;
using ingest::EventExportFormat;

constexpr TimePoint kReceived{std::chrono::seconds(1'800'000'000)};

// One body Dovecot sent, and how its exporter was configured (dovecot.conf).
struct Expected {
  std::string file;
  std::string body;
  EventFormat format;
  TimeFormat time_format;
  std::size_t max_field_bytes;
  ExporterInclude include;
  NameId name;
  TimePoint start;
  TimePoint end;
  bool found = false;  // its event is on the wire
  bool matched = false;
  bool matched_in_order = false;
};

ExporterInclude IncludeOf(const ingest::EventExportParts& p) {
  return {p.name, p.hostname, p.timestamps, p.categories, p.fields};
}

std::vector<Expected> LoadExpected() {
  std::vector<Expected> out;
  DovecotEventExportDecoder decoder;
  auto add = [&](std::string file, std::string body, EventFormat format, TimeFormat time,
                 std::size_t max) {
    const auto body_format =
        format == EventFormat::kJson ? EventExportFormat::kJson : EventExportFormat::kTabText;
    Status st = decoder.Decode(body_format, body, kReceived);
    EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << body;
    if (!st.ok()) return;
    // Bodies without timestamps do not depend on the export time.
    out.push_back({std::move(file), std::move(body), format, time, max, IncludeOf(decoder.parts()),
                   decoder.event().name, decoder.event().time,
                   decoder.end_time().value_or(kReceived)});
  };
  for (auto& r : ingest::ReadCapturedRequestsForTesting("event-exporter-json.txt")) {
    add("json #" + std::to_string(r.number), std::move(r.body), EventFormat::kJson,
        TimeFormat::kRfc3339, 0);
  }
  for (auto& r : ingest::ReadCapturedRequestsForTesting("event-exporter-tabtext.txt")) {
    add("tabtext #" + std::to_string(r.number), std::move(r.body), EventFormat::kTabText,
        TimeFormat::kUnix, 0);
  }
  for (auto& p : ingest::ReadCapturedLogPayloadsForTesting()) {
    const bool json = p.starts_with("{");
    // json_log: time-unix; tab_log: time-rfc3339. The log transport cuts at 1000.
    add("log", std::move(p), json ? EventFormat::kJson : EventFormat::kTabText,
        json ? TimeFormat::kUnix : TimeFormat::kRfc3339, kLogMaxFieldBytes);
  }
  return out;
}

// The body with its categories sorted: "categories":[...] in JSON, the run of
// category: items in tab-text.
std::string SortCategories(const std::string& body) {
  std::vector<std::string> cats;
  std::string out;
  if (body.starts_with("{")) {
    const std::size_t start = body.find("\"categories\":[");
    if (start == std::string::npos) return body;
    const std::size_t open = start + 14;
    const std::size_t close = body.find(']', open);
    std::stringstream in(body.substr(open, close - open));
    for (std::string c; std::getline(in, c, ',');) cats.push_back(c);
    std::sort(cats.begin(), cats.end());
    out = body.substr(0, open);
    for (std::size_t i = 0; i < cats.size(); ++i) out += (i ? "," : "") + cats[i];
    return out + body.substr(close);
  }
  std::stringstream in(body);
  std::vector<std::string> items;
  for (std::string item; std::getline(in, item, '\t');) items.push_back(item);
  auto first = std::find_if(items.begin(), items.end(),
                            [](const std::string& s) { return s.starts_with("category:"); });
  auto last = std::find_if(first, items.end(),
                           [](const std::string& s) { return !s.starts_with("category:"); });
  std::sort(first, last);
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "\t" : "") + items[i];
  return out;
}

// The metrics' `fields` settings in the capture's dovecot.conf.
const std::vector<std::vector<std::string>> kMetricFields = {
    {}, {"bytes_in", "bytes_out"}, {"message_size", "message_vsize"}};

// What each stats-writer connection sent, in order.
std::map<int, std::string> ClientStreams() {
  std::map<int, std::string> streams;
  for (const ingest::CapturedChunk& c : ingest::ReadStatsWriterChunksForTesting()) {
    streams[c.connection] += c.bytes;
  }
  return streams;
}

TEST(EventFormatGoldenTest, RendersWhatDovecotSentForTheSameEvents) {
  std::vector<Expected> expected = LoadExpected();
  ASSERT_EQ(expected.size(), 164u + 133u + 10u);
  std::multimap<std::pair<NameId, std::int64_t>, std::size_t> by_start;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    by_start.emplace(std::make_pair(expected[i].name, expected[i].start.time_since_epoch().count()),
                     i);
  }

  EventFormatter formatter;
  std::string out;
  std::size_t events = 0;
  for (const auto& [conn, stream] : ClientStreams()) {
    ingest::DovecotStatsWriterDecoder decoder;
    std::istringstream in(stream);
    for (std::string line; std::getline(in, line);) {
      auto r = decoder.Decode(line);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      if (r.emit != ingest::StatsWriterResult::Emit::kEvent) continue;
      const Event& e = decoder.event();
      if (e.name == kNoName) continue;
      ++events;
      auto [lo, hi] = by_start.equal_range({e.name, e.time.time_since_epoch().count()});
      for (auto it = lo; it != hi; ++it) {
        Expected& x = expected[it->second];
        x.found = true;
        std::string closest;
        for (const auto& fields : kMetricFields) {
          FormatSpec spec;
          spec.format = x.format;
          spec.time_format = x.time_format;
          spec.include = x.include;
          spec.fields = fields;
          spec.hostname = "vm";  // my_hostname of the capture machine
          spec.max_field_bytes = x.max_field_bytes;
          formatter.Format(e, spec, x.end, out);
          if (out == x.body) x.matched = x.matched_in_order = true;
          if (SortCategories(out) == SortCategories(x.body)) x.matched = true;
          if (fields.empty()) closest = out;
        }
        EXPECT_TRUE(x.matched) << x.file << "\nDovecot:   " << x.body << "\nmailscope: " << closest;
      }
    }
  }
  // The wire recording stops early in the 2000-command burst; the exporter
  // recordings go on. Every body whose event is on the wire must match.
  std::size_t found = 0, matched = 0, in_order = 0;
  for (const Expected& x : expected) {
    found += x.found;
    matched += x.matched;
    in_order += x.matched_in_order;
  }
  EXPECT_EQ(events, 190u);
  EXPECT_EQ(found, 281u);
  EXPECT_EQ(matched, found);
  // The rest differ in the order of categories only: Dovecot's hash order
  // put auth-client before service:imap-login and local-delivery first.
  EXPECT_EQ(in_order, 267u);
}

TEST(EventFormatGoldenTest, DecodedBodiesRenderTheSameBytes) {
  std::vector<Expected> expected = LoadExpected();
  ASSERT_EQ(expected.size(), 307u);
  DovecotEventExportDecoder decoder;
  EventFormatter formatter;
  std::string out;
  for (const Expected& x : expected) {
    const auto body_format =
        x.format == EventFormat::kJson ? EventExportFormat::kJson : EventExportFormat::kTabText;
    ASSERT_TRUE(decoder.Decode(body_format, x.body, kReceived).ok());
    FormatSpec spec;
    spec.format = x.format;
    spec.time_format = x.time_format;
    spec.include = x.include;
    spec.hostname = decoder.hostname();
    spec.max_field_bytes = x.max_field_bytes;
    formatter.Format(decoder.event(), spec, decoder.end_time().value_or(kReceived), out);
    EXPECT_EQ(out, x.body) << x.file;
  }
}

// JSON cannot carry bytes that are not UTF-8: each becomes U+FFFD, so such a
// name decodes again as another name, new to the name table. Tab-text keeps
// every byte and gives back the same names.
TEST(EventFormatGoldenTest, NamesWithBadUtf8ComeBackFromJsonAsNewNames) {
  Event e;
  e.source = Source::kDovecot;
  e.name = InternName("golden_bad\xff");
  e.time = kReceived;
  e.categories.push_back(InternName("golden_cat\xc3"));
  e.Add(InternName("golden_key\xfe"), Value::Uint(1));
  EventFormatter formatter;
  std::string out;
  FormatSpec spec;
  spec.hostname = "vm";

  spec.format = EventFormat::kJson;
  formatter.Format(e, spec, kReceived, out);
  DovecotEventExportDecoder json;
  ASSERT_TRUE(json.Decode(EventExportFormat::kJson, out, kReceived).ok()) << out;
  EXPECT_EQ(NameText(json.event().name), "golden_bad\xef\xbf\xbd");
  EXPECT_NE(json.event().name, e.name);
  ASSERT_EQ(json.event().categories.size(), 1u);
  EXPECT_EQ(NameText(*json.event().categories.begin()), "golden_cat\xef\xbf\xbd");
  ASSERT_EQ(json.event().fields.size(), 1u);
  EXPECT_EQ(NameText(json.event().fields[0].key), "golden_key\xef\xbf\xbd");

  spec.format = EventFormat::kTabText;
  formatter.Format(e, spec, kReceived, out);
  DovecotEventExportDecoder text;
  ASSERT_TRUE(text.Decode(EventExportFormat::kTabText, out, kReceived).ok()) << out;
  EXPECT_EQ(text.event().name, e.name);
  ASSERT_EQ(text.event().categories.size(), 1u);
  EXPECT_EQ(*text.event().categories.begin(), *e.categories.begin());
  ASSERT_EQ(text.event().fields.size(), 1u);
  EXPECT_EQ(text.event().fields[0].key, e.fields[0].key);
}

}  // namespace
}  // namespace mailscope::exporter
