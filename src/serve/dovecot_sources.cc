#include "serve/dovecot_sources.h"

#include <fmt/format.h>

#include <memory>

#include "ingest/dovecot_stats_writer.h"

namespace mailscope::serve {
Status DovecotOldStatsSource::Open(ListenerRegistry& listeners, const std::string& run_dir,
                                   const net::PathPerms& mail_perms,
                                   const net::PathPerms& user_perms) {
  auto overflow = [this](std::size_t bytes) {
    context_.Reject(
        Source::kDovecotOldStats,
        Rejected("line_too_long", fmt::format("line of {} bytes exceeds {} bytes, dropped", bytes,
                                              ingest::kOldStatsMaxLineBytes)));
  };
  // Like Dovecot's ioloop time, one timestamp serves every line of a read.
  auto on_read = [this] { read_time_ = context_.clock.Now(); };
  MS_RETURN_IF_ERROR(listeners.OpenFifo(
      run_dir + "/old-stats-mail", mail_perms, ingest::kOldStatsMaxLineBytes, on_read,
      [this](std::span<char> l) { OnLine(mail_decoder_, l); }, overflow));
  return listeners.OpenFifo(
      run_dir + "/old-stats-user", user_perms, ingest::kOldStatsMaxLineBytes, on_read,
      [this](std::span<char> l) { OnLine(user_decoder_, l); }, overflow);
}

void DovecotOldStatsSource::OnLine(ingest::DovecotOldStatsDecoder& decoder, std::span<char> line) {
  RunContainedInput(context_, Source::kDovecotOldStats, [&] {
    auto result = decoder.Decode(line, read_time_, event_);
    if (!result.status.ok()) context_.Reject(Source::kDovecotOldStats, result.status);
    if (result.emit) context_.Dispatch(event_);
  });
}

net::LineConnection DovecotStatsWriterSource::NewConnection() {
  auto decoder = std::make_shared<ingest::DovecotStatsWriterDecoder>(options_);
  net::LineConnection conn;
  // Writers block up to 5 s for the handshake, so it is sent at once.
  conn.greeting = std::string(ingest::kStatsServerVersionLine) + filter_line_();
  conn.on_line = [this, decoder](std::span<char> line, std::string&) {
    bool keep_open = true;
    RunContainedInput(context_, Source::kDovecot, [&] {
      auto result = decoder->Decode(line);
      if (!result.status.ok()) context_.Reject(Source::kDovecot, result.status);
      // A BEGIN declares a parent for later events and carries no name; the
      // stats process counts named EVENTs only.
      if (result.emit == ingest::StatsWriterResult::Emit::kEvent) {
        Event& event = decoder->mutable_event();
        if (event.name != kNoName) context_.Dispatch(event);
      }
      keep_open = !result.close;
    });
    return keep_open;
  };
  // A writer streams events and expects no reply: losing one line is better
  // than closing on a mail process, which would lose all it sends later.
  conn.keep_reading_after_fault = true;
  return conn;
}

net::HttpResponse DovecotEventPostSource::Handle(const net::HttpRequest& request) {
  Status st = decoder_.Decode(request.content_type, request.body, context_.clock.Now());
  if (!st.ok()) {
    context_.Reject(Source::kDovecot, st, "POST /ingest/dovecot");
    const std::string_view reason = st.reason();
    const unsigned code = reason == "unsupported_content_type" ? 415
                          : reason == "body_too_large"         ? 413
                                                               : 400;
    return request.Error(code, st.message());
  }
  Event& event = decoder_.mutable_event();
  if (event.name != kNoName) context_.Dispatch(event);  // format none carries nothing
  return {204, "text/plain; charset=utf-8", {}, {}};
}

}  // namespace mailscope::serve
