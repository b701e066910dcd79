// Fuzzes the event filter language: both dialects parse any bytes without
// crashing, matching works on fixed events, and the Dovecot export of every
// filter parses again in Dovecot's dialect. Where the export avoids the two
// round-trip quirks of 2.3.19 (a '\'' gains a backslash; a file name ending in
// ":<digits>" turns into a line), the re-parsed filter matches the same events.
// The analyses for rewriting a filter hold too: the export with nothing
// relaxed is the export, and a relaxed query matches what the query matches.
// A client's filter (ParseClientFilter) stays within its name budget, adds
// all of its new names or none, and is otherwise the filter Parse() gives.
// A field RequiredFieldValues() names holds one of its strings on every event
// the filter matches.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/check.h"
#include "core/names.h"
#include "filter/analysis.h"
#include "filter/filter.h"

namespace {

using mailscope::Event;
using mailscope::FieldAlias;
using mailscope::InternName;
using mailscope::Level;
using mailscope::Value;
using mailscope::filter::Dialect;
using mailscope::filter::Filter;

struct Events {
  Event global, parent, named, unnamed;
  FieldAlias aliases[2] = {{InternName("remote_ip"), InternName("cmd_name")},
                           {InternName("size_alias"), InternName("size")}};
  Events() {
    global.categories.push_back(InternName("service:imap"));
    global.Add(InternName("user"), Value::String("global@example.com"));
    parent.categories.push_back(InternName("maildir"));
    parent.categories.push_back(InternName("storage"));
    parent.Add(InternName("user"), Value::String("Alice@Example.com"));
    parent.Add(InternName("size"), Value::Int(1500));
    named.name = InternName("imap_command_finished");
    named.level = Level::kDebug;
    named.parent = &parent;
    named.global = &global;
    named.source_file = "imap-client.c";
    named.source_line = 1016;
    named.Add(InternName("cmd_name"), Value::String("SELECT"));
    named.Add(InternName("duration"), Value::Int(5000));
    named.Add(InternName("bytes"), Value::Uint(1u << 20));
    named.Add(InternName("ok"), Value::Bool(true));
    named.Add(InternName("load"), Value::Double(0.5));
    named.Add(InternName("empty"), Value::String(""));
    named.Add(InternName("last_run_time"), Value::Tv({1795304655, 257107}));
    // The pipeline's keys: source, kind, outcome and normalized names.
    named.source = mailscope::Source::kExim;
    named.taxonomy = {InternName("auth"), InternName("failure"), aliases, 2};
    unnamed.level = Level::kWarn;
    unnamed.parent = &parent;
    unnamed.global = &global;
    unnamed.source_file = "a.c:5";
    unnamed.Add(InternName("duration"), Value::Int(0));
  }
};

void Check(const Filter& f) {
  static const Events events;
  const bool named = f.Matches(events.named), unnamed = f.Matches(events.unnamed);
  (void)f.Matches(events.parent);
  const std::string exported = f.ExportDovecot();
  auto again = mailscope::filter::Parse(exported, Dialect::kDovecot);
  MS_CHECK(again.ok());
  MS_CHECK(again->query_count() == (f.empty() ? 0u : 1u));
  MS_CHECK(again->RequiresEventName() == f.RequiresEventName());
  if (exported.find('\'') == std::string::npos &&
      exported.find("source_location") == std::string::npos) {
    MS_CHECK(again->Matches(events.named) == named);
    MS_CHECK(again->Matches(events.unnamed) == unnamed);
    MS_CHECK(again->ExportDovecot() == exported);
  }
  // A field the filter requires holds one of its strings wherever it
  // matches.
  if (const auto field = f.RequiredFieldValues()) {
    for (const Event* e : {&events.named, &events.unnamed, &events.parent}) {
      if (!f.Matches(*e)) continue;
      Value v;
      MS_CHECK(field->Lookup(*e, v) && v.type() == Value::Type::kString);
      std::string lower(v.as_string());
      for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      MS_CHECK(std::binary_search(field->values().begin(), field->values().end(), lower));
    }
  }
  using mailscope::filter::Leaf;
  using mailscope::filter::Truth;
  for (std::size_t q = 0; q < f.query_count(); ++q) {
    const auto same = mailscope::filter::ExportRelaxed(f, q, [](const Leaf&) { return false; });
    MS_CHECK(same.truth == Truth::kUnknown && "(" + same.text + ")" == exported);
    // Without its fields, the query asks for at least what it matched.
    const auto relaxed = mailscope::filter::ExportRelaxed(
        f, q, [](const Leaf& l) { return l.type() == Leaf::Type::kField; });
    if (relaxed.truth == Truth::kFalse) {
      MS_CHECK(!named && !unnamed);
    } else if (relaxed.truth == Truth::kUnknown) {
      auto loose = mailscope::filter::Parse(relaxed.text, Dialect::kDovecot);
      MS_CHECK(loose.ok());
      if (relaxed.text.find('\'') == std::string::npos &&
          relaxed.text.find("source_location") == std::string::npos) {
        // (Unnamed events: the relaxed query may require a name the query did not.)
        MS_CHECK(!named || loose->Matches(events.named));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (Dialect dialect : {Dialect::kDovecot, Dialect::kMailscope}) {
    // A client's filter first (Parse() interns every name): within its
    // budget, all of its new names or none, and the filter Parse() gives.
    const std::uint32_t before = mailscope::NameCount();
    mailscope::NameBudget budget(mailscope::NameInput::kTail, 4);
    auto client = mailscope::filter::ParseClientFilter(text, dialect, budget);
    const std::uint32_t added = mailscope::NameCount() - before;  // one thread: all its own
    MS_CHECK(added == budget.added() && added <= 4);
    MS_CHECK(client.ok() || added == 0);
    auto f = mailscope::filter::Parse(text, dialect);
    if (client.ok()) {
      MS_CHECK(f.ok() && client->ExportDovecot() == f->ExportDovecot());
    } else if (client.status().code() != mailscope::StatusCode::kResourceExhausted) {
      MS_CHECK(!f.ok() && f.status().message() == client.status().message());
    }
    if (f.ok()) Check(*f);
  }
  return 0;
}
