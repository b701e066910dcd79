// One event as one line of text for people (`mailscope tail`), in the
// logfmt style that grep, awk and log shippers read:
//
//   2026-11-22T00:00:44.195092Z dovecot imap_command_finished categories=service:imap,imap
//     cmd_name=SELECT tagged_reply_state=OK duration=3350 tagged_reply="OK [READ-WRITE] ..."
//
// (one line; wrapped here). The time is the event's, in UTC with
// microseconds; then the source and the event name ("-" when unnamed); then
// `categories=` when there are any; then every field: the event's own first,
// then those its parents and the global event add (a key printed once, the
// nearest value winning, as Dovecot's lookup finds it). Record fields
// (old-stats payloads) print one key per column. Values are bare when they
// are made of printable characters other than space, '"' and '='; otherwise
// quoted with \" \\ \n \r \t and \xNN escapes. Timevals print as
// <sec>.<usec>, booleans as true/false.
#pragma once

#include <string>

#include "core/event.h"

namespace mailscope::exporter {

// Appends the line, without a newline.
void AppendEventText(const Event& event, std::string& out);

}  // namespace mailscope::exporter
