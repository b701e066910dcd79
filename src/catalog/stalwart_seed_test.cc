// Compares the compiled-in Stalwart catalog with the seed document it was
// generated from (../shared/seeds/stalwart-events.txt), read here with a parser
// of its own so that a row lost by the generator shows up as a difference.

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "core/skip_testing.h"

namespace mailscope::catalog {
namespace {

struct SeedEvent {
  std::string name, subsystem, level;
  int line = 0;
};

struct Seed {
  std::vector<SeedEvent> events;
  std::map<std::string, int> per_subsystem;  // kebab-case heading -> rows under it
  std::vector<std::string> keys;
  std::vector<std::string> problems;  // lines that fit no known shape
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The cells of a row `a | b | c |` (also with a leading `|`): {"a", "b", "c"}.
std::vector<std::string> Cells(std::string_view line) {
  line = Trim(line);
  if (!line.empty() && line.front() == '|') line.remove_prefix(1);
  if (!line.empty() && line.back() == '|') line.remove_suffix(1);
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (start <= line.size()) {
    std::size_t bar = line.find('|', start);
    if (bar == std::string_view::npos) bar = line.size();
    cells.emplace_back(Trim(line.substr(start, bar - start)));
    start = bar + 1;
  }
  return cells;
}

// "MessageIngest" -> "message-ingest", "Pop3" -> "pop3", "TlsRpt" -> "tls-rpt".
std::string Kebab(std::string_view heading) {
  std::string out;
  for (std::size_t i = 0; i < heading.size(); ++i) {
    const char c = heading[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (i > 0) out += '-';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

bool IsHeading(std::string_view line) {
  if (line.empty() || !std::isupper(static_cast<unsigned char>(line.front()))) return false;
  for (char c : line)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

bool IsSeparator(std::string_view line) {
  return line.size() > 2 && line.front() == '|' &&
         line.find_first_not_of("|-") == std::string_view::npos;
}

// The page lists each subsystem as a heading line, the table header, a
// separator and `name | level | short | long |` rows; the key table follows
// under its own header. Prose lines only occur before the first table and
// right after the "Keys" heading.
Seed ReadSeed(std::istream& in) {
  Seed seed;
  enum { kIntro, kEvents, kKeys } section = kIntro;
  std::string heading, previous, raw;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty()) continue;
    const std::vector<std::string> cells = Cells(line);
    if (line.front() == '|' && cells.size() == 4 && cells[0] == "Event") {
      section = kEvents;
      heading = previous;
      seed.per_subsystem[Kebab(heading)];  // a heading with no rows still counts
    } else if (line.front() == '|' && cells.size() == 2 && cells[0] == "Key") {
      section = kKeys;
    } else if (IsSeparator(line)) {
    } else if (section == kEvents && cells.size() >= 4 && cells[0].find('.') != std::string::npos &&
               cells[0].find(' ') == std::string::npos) {
      SeedEvent e{cells[0], cells[0].substr(0, cells[0].find('.')), cells[1], line_no};
      ++seed.per_subsystem[Kebab(heading)];
      if (e.subsystem != Kebab(heading)) {
        seed.problems.push_back("line " + std::to_string(line_no) + ": " + e.name + " under " +
                                heading);
      }
      seed.events.push_back(std::move(e));
    } else if (section == kKeys && cells.size() >= 2 && !cells[0].empty() &&
               cells[0].find(' ') == std::string::npos) {
      seed.keys.push_back(cells[0]);
    } else if (IsHeading(line) || section == kIntro || previous == "Keys") {
      // Headings, and the prose of the introduction and above the key table.
    } else {
      seed.problems.push_back("line " + std::to_string(line_no) + ": " +
                              std::string(line.substr(0, 80)));
    }
    previous = std::string(line);
  }
  return seed;
}

class StalwartSeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(MAILSCOPE_SHARED_DIR) + "/seeds/stalwart-events.txt";
    std::ifstream in(path);
    if (!in) MS_SKIP_UNLESS_REQUIRED() << path << " not found";
    seed_ = ReadSeed(in);
    ASSERT_TRUE(seed_.problems.empty()) << "unreadable seed lines, first: " << seed_.problems[0];
  }

  Seed seed_;
  const Catalog& catalog_ = Catalog::Get();
};

TEST_F(StalwartSeedTest, SeedHoldsTheKnownNumberOfEvents) {
  // The numbers the catalog was built for; a change means the seed changed.
  EXPECT_EQ(seed_.events.size(), 605u);
  EXPECT_EQ(seed_.per_subsystem.size(), 43u);
  EXPECT_EQ(seed_.keys.size(), 66u);
}

TEST_F(StalwartSeedTest, CatalogHasTheSameTotalAndCountPerSubsystem) {
  const std::vector<const EventInfo*> events = catalog_.OfSystem(System::kStalwart);
  EXPECT_EQ(events.size(), seed_.events.size());
  std::map<std::string, int> per_subsystem;
  for (const EventInfo* e : events) ++per_subsystem[e->subsystem];
  for (const auto& [subsystem, count] : seed_.per_subsystem) {
    const auto it = per_subsystem.find(subsystem);
    EXPECT_EQ(it == per_subsystem.end() ? 0 : it->second, count) << subsystem;
  }
  for (const auto& [subsystem, count] : per_subsystem) {
    EXPECT_TRUE(seed_.per_subsystem.count(subsystem)) << subsystem << " is not in the seed";
  }
}

TEST_F(StalwartSeedTest, EverySeedEventIsPresentWithItsLevelAndSubsystem) {
  std::set<std::string> seen;
  for (const SeedEvent& s : seed_.events) {
    SCOPED_TRACE("seed line " + std::to_string(s.line) + ": " + s.name);
    EXPECT_TRUE(seen.insert(s.name).second) << "listed twice in the seed";
    const std::optional<Level> level = ParseLevel(s.level);
    ASSERT_TRUE(level.has_value()) << "seed level " << s.level;
    const EventInfo* e = catalog_.Find(System::kStalwart, s.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->name, s.name) << "found only as an alias";
    EXPECT_EQ(e->subsystem, s.subsystem);
    EXPECT_EQ(e->level ? LevelName(*e->level) : "(none)", s.level);
  }
}

TEST_F(StalwartSeedTest, EveryAliasResolvesToItsEvent) {
  for (const EventInfo* e : catalog_.OfSystem(System::kStalwart)) {
    for (const std::string& alias : e->aliases) {
      EXPECT_EQ(catalog_.Find(System::kStalwart, alias), e) << alias << " -> " << e->name;
    }
  }
  // The renames of v0.16 (v0.12-v0.15 spelling first), so both spellings are accepted.
  const std::pair<std::string_view, std::string_view> renames[] = {
      {"queue.queue-message", "queue.message-queued"},
      {"queue.queue-message-authenticated", "queue.authenticated-message-queued"},
      {"queue.queue-dsn", "queue.dsn-queued"},
      {"queue.queue-report", "queue.report-queued"},
      {"queue.queue-autogenerated", "queue.autogenerated-queued"},
      {"message-ingest.fts-index", "message-ingest.search-index"},
      {"auth.missing-totp", "auth.mfa-required"},
  };
  for (const auto& [old_name, new_name] : renames) {
    const EventInfo* by_old = catalog_.Find(System::kStalwart, old_name);
    const EventInfo* by_new = catalog_.Find(System::kStalwart, new_name);
    ASSERT_NE(by_old, nullptr) << old_name;
    EXPECT_EQ(by_old, by_new) << old_name << " and " << new_name;
  }
}

TEST_F(StalwartSeedTest, KeyTableIsFullyPresent) {
  std::set<std::string> keys;
  for (const KeyInfo& k : catalog_.stalwart_keys()) keys.insert(k.key);
  EXPECT_EQ(catalog_.stalwart_keys().size(), seed_.keys.size());
  for (const std::string& key : seed_.keys) EXPECT_TRUE(keys.count(key)) << key;
}

}  // namespace
}  // namespace mailscope::catalog
