// The FILTER mailscope sends to Dovecot's processes: the events it wants
// from them, in Dovecot 2.3.19's filter language. Dovecot knows nothing of
// the keys the pipeline adds (`source`, `kind`, `outcome`, the taxonomy's
// normalized names), so queries that use them are replaced by the Dovecot
// catalog events that can match them; the filters themselves still decide
// on mailscope's side. Pure function; thread-safe.
#pragma once

#include <span>
#include <string>

#include "catalog/catalog.h"
#include "filter/filter.h"

namespace mailscope::catalog {

// The FILTER text (without "FILTER\t"): every query of `filters`, in order,
// wrapped in "(...)" and joined by " OR "; empty when nothing is wanted.
//  - A query on Dovecot's keys only (event, category, log types,
//    source_location, fields Dovecot events carry) is written as
//    Filter::ExportDovecot() writes it.
//  - A query that tests `source`, `kind`, `outcome` or a normalized name no
//    Dovecot event carries as its own field becomes the Dovecot catalog
//    events (names and older names) for which it is not definitely false,
//    knowing per event its name, source, kind, constant outcome and aliases
//    (an outcome read from a field, an aliased field, categories and plain
//    fields are unknown): (event="a" OR event="b") AND the rest of the query
//    on Dovecot's keys, relaxed so that it asks for at least what the query
//    matches. When an event the catalog does not know could match (as with
//    `NOT kind=auth`), the query keeps its Dovecot keys with every event
//    name, or becomes event="*". A query no Dovecot event can match
//    (`source=exim`) gives nothing.
//  - `excluded_events` (names or older names of Dovecot events disabled in
//    the configuration; unknown names are excluded as written) are never
//    asked for: candidates drop them, and a query that can match one gets
//    AND (NOT event="x") per such name (a query left with none is dropped).
// The result parses in Dovecot 2.3.19 (filter::Parse(text, kDovecot)).
// REQUIRES: no nullptr in `filters`.
std::string ExportDovecotFilter(std::span<const filter::Filter* const> filters,
                                const Catalog& catalog,
                                std::span<const std::string> excluded_events);

// Fields every Dovecot event may carry beyond those the catalog lists:
// `duration` (added by the stats server), `reason_code`, `user_cpu_usecs`.
inline constexpr std::string_view kDovecotCommonFields[] = {"duration", "reason_code",
                                                            "user_cpu_usecs"};

}  // namespace mailscope::catalog
