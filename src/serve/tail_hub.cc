#include "serve/tail_hub.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/tab_escape.h"
#include "export/event_text.h"

namespace mailscope::serve {

net::LineConnection TailHub::NewConnection() {
  auto client = std::make_shared<Client>();
  net::LineConnection conn;
  conn.on_open = [client](net::Pusher out) { client->out = std::move(out); };
  conn.on_line = [this, client](std::span<char> line, std::string& reply) {
    if (std::find(clients_.begin(), clients_.end(), client) != clients_.end()) {
      return true;  // streaming: nothing more is expected from the client
    }
    // A client sends one request, so its filter's names are all its
    // connection ever adds.
    NameBudget names(NameInput::kTail, max_new_names_);
    auto request = query::ParseTailRequest(line, names);
    if (!request.ok()) {
      reply += "ERROR\t";
      AppendTabEscaped(reply, request.status().message());
      reply += '\n';
      return false;
    }
    client->request = std::move(*request);
    clients_.push_back(client);
    on_change_();  // Dovecot's processes must now send these events too
    reply += "OK\n";
    spdlog::debug("tail client: {} events matching {}",
                  query::TailFormatName(client->request.format),
                  client->request.filter_text.empty() ? "(all)" : client->request.filter_text);
    return true;
  };
  conn.on_close = [this, client] {
    if (std::erase(clients_, client) != 0) on_change_();
  };
  return conn;
}

std::string_view TailHub::Consume(const Event& event) {
  for (const auto& client : clients_) {
    const query::TailRequest& req = client->request;
    if (!req.filter.Matches(event)) continue;
    if (client->out.pending_bytes() > backlog_limit_) {
      ++client->dropped;
      ++dropped_;
      continue;
    }
    line_.clear();
    if (client->dropped != 0) {
      fmt::format_to(std::back_inserter(line_), "D\t{}\n", client->dropped);
      client->dropped = 0;
    }
    line_ += "E\t";
    if (req.format == query::TailFormat::kText) {
      exporter::AppendEventText(event, line_);
    } else {
      // Dovecot's exporter formats with every part, times in RFC 3339.
      exporter::FormatSpec spec;
      spec.format = req.format == query::TailFormat::kJson ? exporter::EventFormat::kJson
                                                           : exporter::EventFormat::kTabText;
      spec.time_format = exporter::TimeFormat::kRfc3339;
      spec.hostname = hostname_;
      formatter_.Format(event, spec, clock_.Now(), buf_);
      line_ += buf_;
    }
    line_ += '\n';
    client->out.Send(line_);
  }
  return {};
}

std::vector<const filter::Filter*> TailHub::Filters() const {
  std::vector<const filter::Filter*> out;
  out.reserve(clients_.size());
  for (const auto& client : clients_) out.push_back(&client->request.filter);
  return out;
}

}  // namespace mailscope::serve
