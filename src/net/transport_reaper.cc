#include "net/transport_reaper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "net/queued_writer.h"

namespace mailscope::net {

TransportReaper::TransportReaper() : thread_([this] { Run(); }) {}

TransportReaper::~TransportReaper() { Finish(TimePoint::min()); }

void TransportReaper::Retire(std::unique_ptr<EventTransport> transport) {
  transport->Close();
  QueuedWriter* writer = transport->writer();
  if (writer == nullptr) return;
  {
    std::lock_guard lock(mu_);
    if (finishing_) return;  // aborted by the transport's destructor, here
    retired_.push_back(std::move(transport));
  }
  // Outside the lock: when the writer has already ended this runs here.
  writer->OnEnded([this] {
    {
      std::lock_guard lock(mu_);
      ++ended_;
    }
    changed_.notify_all();
  });
}

void TransportReaper::Finish(TimePoint deadline) {
  {
    std::unique_lock lock(mu_);
    finishing_ = true;
    changed_.notify_all();
    if (!changed_.wait_until(lock, deadline, [this] { return retired_.empty(); })) {
      for (const auto& t : retired_) {
        spdlog::warn("event_exporter {}: {} events not written in time at shutdown, dropped",
                     t->name(), t->queued());
        t->writer()->Abort();
      }
    }
  }
  if (thread_.joinable()) thread_.join();
}

std::size_t TransportReaper::size() const {
  std::lock_guard lock(mu_);
  return retired_.size();
}

void TransportReaper::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [this] { return ended_ > 0 || (finishing_ && retired_.empty()); });
    if (ended_ == 0) return;  // finishing, and every transport gone
    ended_ = 0;
    auto alive = std::stable_partition(retired_.begin(), retired_.end(),
                                       [](const auto& t) { return !t->writer()->ended(); });
    std::vector<std::unique_ptr<EventTransport>> dead(std::make_move_iterator(alive),
                                                      std::make_move_iterator(retired_.end()));
    retired_.erase(alive, retired_.end());
    lock.unlock();
    dead.clear();  // joins threads that have ended
    lock.lock();
    changed_.notify_all();
  }
}

}  // namespace mailscope::net
