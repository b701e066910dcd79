// TailHub: the `tail` output. Holds the `mailscope tail` clients of the tail
// socket (query/tail.h), sends each the events that match its filter, and
// drops (and counts) events for a client that falls more than
// the backlog limit behind ([listeners.tail] output_limit). Its clients' filters join the FILTER
// asked of Dovecot's processes; `on_change` is called whenever that set changes. Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "export/event_format.h"
#include "filter/filter.h"
#include "net/listeners.h"
#include "pipeline/dispatcher.h"
#include "query/tail.h"

namespace mailscope::serve {

class TailHub : public pipeline::Consumer {
 public:
  // Each client's filter may add `max_new_names` names new to the name table.
  TailHub(const Clock& clock, std::string hostname, std::function<void()> on_change,
          std::uint32_t max_new_names = kDefaultMaxNewNamesPerClient)
      : clock_(clock),
        hostname_(std::move(hostname)),
        on_change_(std::move(on_change)),
        max_new_names_(max_new_names) {}

  // Bytes a client may have unread before events matching its filter are
  // dropped for it (counted, and announced in a D line once it catches up).
  void set_backlog_limit(std::size_t bytes) { backlog_limit_ = bytes; }

  // The handler of one connection of the tail socket.
  net::LineConnection NewConnection();

  std::string_view Consume(const Event& event) override;

  // The filters of the streaming clients.
  std::vector<const filter::Filter*> Filters() const;
  std::size_t client_count() const { return clients_.size(); }
  // Events not sent to a client that had fallen behind, since start.
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Client {
    query::TailRequest request;
    net::Pusher out;
    std::uint64_t dropped = 0;  // since its last D line
  };

  const Clock& clock_;
  std::string hostname_;
  std::function<void()> on_change_;
  std::uint32_t max_new_names_;
  std::vector<std::shared_ptr<Client>> clients_;
  std::uint64_t dropped_ = 0;
  std::size_t backlog_limit_ = 1u << 20;
  exporter::EventFormatter formatter_;
  std::string line_, buf_;  // scratch
};

}  // namespace mailscope::serve
