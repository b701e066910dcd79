// Compares the compiled-in Exim, s/qmail and Dovecot catalogs with the documents they were
// generated from (../shared/seeds and ../shared/reference), read here with parsers of their own
// so that a row lost or changed by tools/catalog/{exim,qmail,dovecot}.py shows up as a
// difference. Skips when the documents are not beside the repository.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/catalog.h"
#include "core/skip_testing.h"

#ifndef MAILSCOPE_SHARED_DIR
#define MAILSCOPE_SHARED_DIR ""
#endif

namespace mailscope::catalog {
namespace {

std::optional<std::string> ReadShared(std::string_view relative) {
  std::ifstream in(std::string(MAILSCOPE_SHARED_DIR) + "/" + std::string(relative),
                   std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// `a | b | c |` -> {"a", "b", "c"}; a leading `|` is dropped too.
std::vector<std::string> Cells(std::string_view line) {
  line = Trim(line);
  if (line.starts_with('|')) line.remove_prefix(1);
  if (line.ends_with('|')) line.remove_suffix(1);
  std::vector<std::string> cells;
  for (std::string_view cell : Split(line, '|')) cells.emplace_back(Trim(cell));
  return cells;
}

// The lines strictly between the first line containing `after` and the next line starting
// with `before`.
std::vector<std::string_view> LinesBetween(std::string_view text, std::string_view after,
                                           std::string_view before) {
  std::vector<std::string_view> out;
  bool inside = false;
  for (std::string_view line : Split(text, '\n')) {
    if (!inside) {
      inside = line.find(after) != std::string_view::npos;
    } else if (line.starts_with(before)) {
      return out;
    } else {
      out.push_back(line);
    }
  }
  return {};  // `before` never came: the document changed shape
}

std::map<std::string, int> CountBySubsystem(System system) {
  std::map<std::string, int> counts;
  for (const EventInfo* e : Catalog::Get().OfSystem(system)) ++counts[e->subsystem];
  return counts;
}

// ---------------------------------------------------------------------------------------
// Exim: the seed's three tables, and the event table of the reference (§2).

struct EximSeedRow {
  std::string name, when, section, frequency;
};

struct EximDocs {
  std::vector<EximSeedRow> events;
  std::map<std::string, std::string> event_data, result;
  std::map<std::string, std::string> since;  // reference: event -> first version
};

// "≤4.87 (inbound since 4.85)" -> "4.87": the first dotted number.
std::string FirstVersion(std::string_view cell) {
  const std::size_t start = cell.find_first_of("0123456789");
  if (start == std::string_view::npos) return {};
  std::size_t end = start;
  while (end < cell.size() && (std::isdigit(static_cast<unsigned char>(cell[end])) ||
                               (cell[end] == '.' && end + 1 < cell.size() &&
                                std::isdigit(static_cast<unsigned char>(cell[end + 1])))))
    ++end;
  return std::string(cell.substr(start, end - start));
}

std::optional<EximDocs> ReadEximDocs() {
  auto seed = ReadShared("seeds/exim-events.txt");
  auto reference = ReadShared("reference/exim-events.md");
  if (!seed || !reference) return std::nullopt;
  EximDocs docs;
  for (std::string_view line :
       LinesBetween(*seed, "The current list of events is:", "New event types")) {
    auto cells = Cells(line);
    EXPECT_EQ(cells.size(), 4u) << line;
    if (cells.size() == 4) docs.events.push_back({cells[0], cells[1], cells[2], cells[3]});
  }
  for (std::string_view line :
       LinesBetween(*seed, "An additional variable, $event_data", "The :defer events")) {
    auto cells = Cells(line);
    EXPECT_EQ(cells.size(), 2u) << line;
    if (cells.size() == 2) docs.event_data[cells[0]] = cells[1];
  }
  for (std::string_view line :
       LinesBetween(*seed, "the following will be forced:", "All other message types")) {
    auto cells = Cells(line);
    EXPECT_EQ(cells.size(), 2u) << line;
    if (cells.size() == 2) docs.result[cells[0]] = cells[1];
  }
  // Reference rows: "| `name` | hook | fires | since | ...", several names in one cell possible.
  for (std::string_view line : Split(*reference, '\n')) {
    if (!line.starts_with("| `")) continue;
    auto cells = Cells(line);
    if (cells.size() < 6) continue;
    std::string_view names = cells[0];
    for (std::size_t open = names.find('`'); open != std::string_view::npos;) {
      const std::size_t close = names.find('`', open + 1);
      if (close == std::string_view::npos) break;
      docs.since[std::string(names.substr(open + 1, close - open - 1))] = FirstVersion(cells[3]);
      open = names.find('`', close + 1);
    }
  }
  return docs;
}

std::string SubsystemOfExim(std::string_view name) {
  return std::string(name.substr(0, name.find(':')));
}

TEST(EximSeedTest, EveryTableRowIsACatalogEventWithItsAttributes) {
  auto docs = ReadEximDocs();
  if (!docs) MS_SKIP_UNLESS_REQUIRED() << "no Exim documents under " << MAILSCOPE_SHARED_DIR;
  ASSERT_EQ(docs->events.size(), 17u) << "the seed's event table changed";
  for (const EximSeedRow& row : docs->events) {
    SCOPED_TRACE(row.name);
    const EventInfo* e = Catalog::Get().Find(System::kExim, row.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->name, row.name);
    EXPECT_EQ(e->subsystem, SubsystemOfExim(row.name));
    EXPECT_EQ(e->Attribute("when"), row.when);
    EXPECT_EQ(e->Attribute("section"), row.section);
    std::string frequency = row.frequency;  // `;` separates attributes in the data files
    std::replace(frequency.begin(), frequency.end(), ';', ',');
    EXPECT_EQ(e->Attribute("frequency"), frequency);
    auto data = docs->event_data.find(row.name);
    EXPECT_EQ(e->Attribute("event_data"), data == docs->event_data.end() ? "" : data->second);
    auto result = docs->result.find(row.name);
    EXPECT_EQ(e->Attribute("result"), result == docs->result.end() ? "" : result->second);
    ASSERT_TRUE(docs->since.contains(row.name)) << "not in the reference";
    EXPECT_EQ(e->Attribute("since"), docs->since.at(row.name));
    if (row.name.ends_with(":defer")) {
      EXPECT_NE(std::find(e->fields.begin(), e->fields.end(), "event_defer_errno"),
                e->fields.end());
    }
  }
}

TEST(EximSeedTest, ReferenceOnlyEventsCarryTheirVersion) {
  auto docs = ReadEximDocs();
  if (!docs) MS_SKIP_UNLESS_REQUIRED() << "no Exim documents under " << MAILSCOPE_SHARED_DIR;
  std::set<std::string> in_seed;
  for (const EximSeedRow& row : docs->events) in_seed.insert(row.name);
  int reference_only = 0;
  for (const auto& [name, since] : docs->since) {
    if (in_seed.contains(name)) continue;
    ++reference_only;
    SCOPED_TRACE(name);
    const EventInfo* e = Catalog::Get().Find(System::kExim, name);
    ASSERT_NE(e, nullptr);
    EXPECT_FALSE(since.empty());
    EXPECT_EQ(e->Attribute("since"), since);
    EXPECT_FALSE(e->Attribute("when").empty());
    EXPECT_FALSE(e->Attribute("section").empty());
  }
  EXPECT_EQ(reference_only, 2) << "smtp:fail:protocol and smtp:fail:syntax";
}

TEST(EximSeedTest, CountsPerSystemAndSubsystem) {
  auto docs = ReadEximDocs();
  if (!docs) MS_SKIP_UNLESS_REQUIRED() << "no Exim documents under " << MAILSCOPE_SHARED_DIR;
  std::set<std::string> names;
  for (const EximSeedRow& row : docs->events) names.insert(row.name);
  for (const auto& [name, since] : docs->since) names.insert(name);
  std::map<std::string, int> expected;
  for (const std::string& name : names) ++expected[SubsystemOfExim(name)];
  // Besides Exim's own events, the five reception steps mailscope defines (origin=mailscope).
  expected["acl"] = 5;
  EXPECT_EQ(Catalog::Get().OfSystem(System::kExim).size(), names.size() + 5);
  EXPECT_EQ(CountBySubsystem(System::kExim), expected);
  for (const EventInfo* e : Catalog::Get().OfSystem(System::kExim)) {
    EXPECT_EQ(e->Attribute("origin"), names.contains(e->name) ? "exim" : "mailscope") << e->name;
    if (e->Attribute("origin") == "mailscope") {
      EXPECT_EQ(e->subsystem, "acl");
      EXPECT_FALSE(e->Attribute("result").empty()) << e->name << " takes a verdict";
    }
  }
}

// ---------------------------------------------------------------------------------------
// s/qmail: the Action Type Condition table of the one-line seed.

struct Verdict {
  std::string action, type, condition;
  std::string Name() const { return action + "::" + type + "::" + condition; }
};

std::optional<std::vector<Verdict>> ReadQmailSeed() {
  auto seed = ReadShared("seeds/sqmail-smtpd-logging.txt");
  if (!seed) return std::nullopt;
  std::string_view text = *seed;
  const std::size_t head = text.find("Explanation");
  const std::size_t tail = text.find("SNDR (S) corresponds");
  if (head == std::string_view::npos || tail == std::string_view::npos || tail < head) {
    ADD_FAILURE() << "the seed's table was not found";
    return std::vector<Verdict>{};
  }
  std::vector<std::string_view> words;
  for (std::string_view w : Split(text.substr(head, tail - head), ' '))
    if (!w.empty()) words.push_back(w);
  // A row starts at an action word; the explanations are lower case or start with the Type.
  std::vector<Verdict> rows;
  for (std::size_t i = 0; i + 2 < words.size(); ++i) {
    if (words[i] == "Accept" || words[i] == "Reject" || words[i] == "Deferred")
      rows.push_back({std::string(words[i]), std::string(words[i + 1]), std::string(words[i + 2])});
  }
  return rows;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Lines of the other programs, one per line shape of reference/qmail-logs.md (§3-§6), as
// chosen in tools/catalog/qmail.py; a change there has to be made here on purpose.
const std::map<std::string, int> kOtherPrograms = {
    {"tcpserver", 7}, {"rblsmtpd", 4}, {"qmail-send", 14}, {"qmail-popup", 6}};

TEST(QmailSeedTest, EveryVerdictOfTheTableIsACatalogEvent) {
  auto rows = ReadQmailSeed();
  if (!rows) MS_SKIP_UNLESS_REQUIRED() << "no s/qmail seed under " << MAILSCOPE_SHARED_DIR;
  ASSERT_EQ(rows->size(), 39u) << "the seed's table changed";
  for (const Verdict& v : *rows) {
    SCOPED_TRACE(v.Name());
    const EventInfo* e = Catalog::Get().Find(System::kQmail, v.Name());
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->name, v.Name());
    EXPECT_EQ(e->subsystem, Upper(v.type));
    EXPECT_EQ(e->Attribute("program"), "qmail-smtpd");
    EXPECT_EQ(e->Attribute("action"), v.action);
    EXPECT_EQ(e->Attribute("type"), v.type);
    EXPECT_EQ(e->Attribute("condition"), v.condition);
    EXPECT_FALSE(e->Attribute("tags").empty());
  }
}

TEST(QmailSeedTest, CountsPerSystemAndSubsystem) {
  auto rows = ReadQmailSeed();
  if (!rows) MS_SKIP_UNLESS_REQUIRED() << "no s/qmail seed under " << MAILSCOPE_SHARED_DIR;
  std::map<std::string, int> expected = kOtherPrograms;
  for (const Verdict& v : *rows) ++expected[Upper(v.type)];
  int smtpd = 0, total = 0;
  for (const EventInfo* e : Catalog::Get().OfSystem(System::kQmail)) {
    ++total;
    if (e->Attribute("program") == "qmail-smtpd") {
      ++smtpd;
    } else {
      // Other programs: subsystem = program, and the name starts with it.
      EXPECT_EQ(e->subsystem, e->Attribute("program")) << e->name;
      EXPECT_TRUE(e->name.starts_with(e->subsystem + "::")) << e->name;
    }
  }
  EXPECT_EQ(smtpd, static_cast<int>(rows->size()));
  int others = 0;
  for (const auto& [program, n] : kOtherPrograms) others += n;
  EXPECT_EQ(total, smtpd + others);
  EXPECT_EQ(CountBySubsystem(System::kQmail), expected);
}

// ---------------------------------------------------------------------------------------
// Dovecot: reference/dovecot-events.tsv and the notes of §4 of dovecot-protocols.md.

struct DovecotRow {
  std::string name, category, since;
  std::vector<std::string> fields;
  bool pigeonhole = false;
};

std::optional<std::vector<DovecotRow>> ReadDovecotReference() {
  auto text = ReadShared("reference/dovecot-events.tsv");
  if (!text) return std::nullopt;
  std::vector<DovecotRow> rows;
  bool header = true;
  for (std::string_view line : Split(*text, '\n')) {
    if (line.empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    auto cols = Split(line, '\t');
    EXPECT_EQ(cols.size(), 4u) << line;
    if (cols.size() != 4) continue;
    DovecotRow row{std::string(cols[0]), std::string(cols[1]), {}, {}, false};
    if (!cols[2].empty())
      for (std::string_view f : Split(cols[2], ',')) row.fields.emplace_back(Trim(f));
    row.since = std::string(cols[3].substr(0, cols[3].find(' ')));
    row.pigeonhole = cols[3].find("Pigeonhole") != std::string_view::npos;
    rows.push_back(std::move(row));
  }
  return rows;
}

// The subsystem a reference category becomes: a single category name as it is; `sql (+
// driver: ...)` -> `sql`; forms that name no fixed category (owner's, root, per process or
// login protocol) -> empty.
std::string SubsystemOfCategory(std::string_view category) {
  const bool plain = !category.empty() && std::all_of(category.begin(), category.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '-';
  });
  if (plain) return std::string(category);
  const std::size_t driver = category.find(" (+ driver:");
  if (driver != std::string_view::npos) return std::string(category.substr(0, driver));
  return {};
}

TEST(DovecotReferenceTest, EveryEventIsPresentWithCategoryFieldsAndVersion) {
  auto rows = ReadDovecotReference();
  if (!rows) MS_SKIP_UNLESS_REQUIRED() << "no Dovecot reference under " << MAILSCOPE_SHARED_DIR;
  ASSERT_EQ(rows->size(), 100u) << "the reference list changed";
  int pigeonhole = 0;
  for (const DovecotRow& row : *rows) {
    SCOPED_TRACE(row.name);
    const EventInfo* e = Catalog::Get().Find(System::kDovecot, row.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->name, row.name);
    EXPECT_EQ(e->subsystem, SubsystemOfCategory(row.category)) << row.category;
    EXPECT_EQ(e->fields, row.fields);
    EXPECT_EQ(e->Attribute("since"), row.since);
    EXPECT_EQ(e->Attribute("origin"), row.pigeonhole ? "pigeonhole" : "core");
    pigeonhole += row.pigeonhole;
  }
  EXPECT_EQ(pigeonhole, 12);
}

TEST(DovecotReferenceTest, RenamedEventResolvesByItsOldName) {
  auto notes = ReadShared("reference/dovecot-protocols.md");
  if (!notes) MS_SKIP_UNLESS_REQUIRED() << "no Dovecot notes under " << MAILSCOPE_SHARED_DIR;
  // "`new_name` was called `old_name` in 2.3.7–2.3.10"
  constexpr std::string_view kMarker = "` was called `";
  const std::size_t at = notes->find(kMarker);
  ASSERT_NE(at, std::string::npos);
  const std::size_t new_start = notes->rfind('`', at - 1) + 1;
  const std::string new_name = notes->substr(new_start, at - new_start);
  const std::size_t old_start = at + kMarker.size();
  const std::string old_name = notes->substr(old_start, notes->find('`', old_start) - old_start);
  EXPECT_EQ(new_name, "auth_client_request_continued");
  const EventInfo* e = Catalog::Get().Find(System::kDovecot, old_name);
  ASSERT_NE(e, nullptr) << old_name;
  EXPECT_EQ(e, Catalog::Get().Find(System::kDovecot, new_name));
  EXPECT_EQ(e->name, new_name);
}

TEST(DovecotReferenceTest, CountsPerSystemAndCategory) {
  auto rows = ReadDovecotReference();
  if (!rows) MS_SKIP_UNLESS_REQUIRED() << "no Dovecot reference under " << MAILSCOPE_SHARED_DIR;
  std::map<std::string, int> expected;
  for (const DovecotRow& row : *rows) ++expected[SubsystemOfCategory(row.category)];
  EXPECT_EQ(Catalog::Get().OfSystem(System::kDovecot).size(), rows->size());
  EXPECT_EQ(CountBySubsystem(System::kDovecot), expected);
}

}  // namespace
}  // namespace mailscope::catalog
