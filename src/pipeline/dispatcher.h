// Dispatcher: the one seam between decoding and consuming (DESIGN.md,
// "Dispatch"). Every source hands each decoded Event to Dispatch(), which
// counts it, routes it through the catalog with the configured event control
// (a disabled event reaches no output), and calls the consumers registered
// for it, each a named output, in registration order. A consumer may answer
// with a verdict; Dispatch() returns the first non-empty one to the source.
// Loop thread only. Owns the router; consumers and counters are borrowed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/event_router.h"
#include "core/event.h"
#include "stats/ingest_counters.h"

namespace mailscope::pipeline {

// One output of the pipeline: old-stats zoom levels, metrics, tail, ...
class Consumer {
 public:
  virtual ~Consumer() = default;
  // Takes one event. Returns a verdict for the source that sent it, or an
  // empty view; the text stays valid until the consumer is called again.
  virtual std::string_view Consume(const Event& event) = 0;
  // What gave the verdict Consume() returned last (a rule's name), for the
  // verdict's own event; empty by default.
  virtual std::string_view VerdictOrigin() const { return {}; }

  // Outputs that keep events beyond the process (the records store): the
  // events handed to keeping so far (loop thread), and how many of them have
  // reached their end, kept or given up and counted (any thread). Such an
  // output ends them in the order it took them. Others keep nothing: 0, 0.
  // DurableSettled() is read from other threads: it must be thread-safe.
  virtual std::uint64_t DurableTaken() const { return 0; }
  virtual std::uint64_t DurableSettled() const { return 0; }
  // Whether such an output is so far behind that events it takes now may be
  // dropped (its queue more than half full). Loop thread.
  virtual bool Backlogged() const { return false; }
};

// The name of the event every verdict becomes (see Dispatcher::Dispatch).
inline constexpr std::string_view kVerdictEventName = "mailscope:verdict";

// A set of sources, for consumers that only make sense for some of them.
class SourceSet {
 public:
  static SourceSet All() { return SourceSet((1u << kSourceCount) - 1); }
  static SourceSet Only(Source s) { return SourceSet(1u << static_cast<unsigned>(s)); }
  bool contains(Source s) const { return (bits_ >> static_cast<unsigned>(s)) & 1u; }

 private:
  explicit SourceSet(std::uint32_t bits) : bits_(bits) {}
  std::uint32_t bits_;
};

class Dispatcher {
 public:
  // Outputs per event are tracked in a 32-bit mask.
  static constexpr std::size_t kMaxOutputs = 32;

  Dispatcher(stats::IngestCounters& counters, std::unique_ptr<catalog::EventRouter> router);

  // Registers `consumer` as the output `name` (one of catalog::kOutputNames)
  // for events of `sources`. Consumers are called in registration order.
  // REQUIRES: the name is not registered yet; fewer than kMaxOutputs outputs.
  void Register(std::string_view name, Consumer& consumer, SourceSet sources = SourceSet::All());

  // Counts the event in mailscope_events_total and, when the catalog maps it
  // to a kind, in the taxonomy counters; sets its taxonomy; then hands it to
  // every output that takes it. Returns the first non-empty verdict, or an
  // empty view. Allocates nothing once every name has been seen.
  //
  // A verdict is an event too: mailscope:verdict, of the asking event's
  // source, with the fields `for_event` (the asking event's name), `rule` (the
  // giver's VerdictOrigin()), `verdict` and then the asking event's own
  // fields. It is counted and handed to every output but the one that gave
  // the verdict, at the default event level, after the asking event.
  // REQUIRES: event.name != kNoName.
  std::string_view Dispatch(Event& event);

  // During a Consume() call: whether the output `index` (registration order)
  // also takes the event being dispatched. Lets a consumer whose work feeds
  // another output (metrics feeding the exporters) honour that output's rules.
  bool CurrentEventTakenBy(std::size_t index) const { return (current_mask_ >> index) & 1u; }
  // Counts Dispatch() calls; during one, the number of that call. Lets one
  // output tell whether what another output left is about the current event.
  std::uint64_t sequence() const { return sequence_; }
  // Applies a reloaded event control: routing and every registered output's
  // choice of events follow `control` from the next Dispatch() on.
  void SetControl(catalog::EventControl control);

  // A point in the stream of dispatched events for the outputs that keep
  // events (Consumer::DurableTaken): reached once each has settled every
  // event dispatched before the mark was taken. Sources that must not lose
  // input across a crash (log files) save their read position only then.
  struct DurableMark {
    std::vector<std::uint64_t> taken;  // by output, registration order
  };
  DurableMark MarkDurable() const;
  // Any thread. REQUIRES: no output is registered meanwhile.
  bool Reached(const DurableMark& mark) const;
  // Whether an output that keeps events is backlogged: sources that can
  // wait (log files) hold back until it is not.
  bool Backlogged() const;

  // The registration index of output `name`, or -1.
  int OutputIndex(std::string_view name) const;

  // Whether the output `name` takes the catalog event: for the FILTER asked
  // of Dovecot's processes, which must not send what no output takes.
  // An unregistered output takes nothing.
  bool Takes(std::string_view name, const catalog::EventInfo& event) const;
  // The names of the catalog events of `system` that the output `name` does
  // not take (every one when it is not registered), in catalog order.
  std::vector<std::string> Refused(std::string_view name, catalog::System system) const;

  const catalog::EventRouter& router() const { return *router_; }

 private:
  struct Output {
    std::string name;
    Consumer* consumer;
    SourceSet sources;
    std::vector<bool> wanted;  // by catalog event index
    bool takes_unknown;        // events the catalog does not know, at the default level
  };
  // Settles `out`'s choice per catalog event from the router's control.
  void Settle(Output& out) const;
  // Dispatches the event of a verdict that output `giver` gave `asking`.
  void DispatchVerdict(const Event& asking, std::string_view verdict, std::size_t giver);

  stats::IngestCounters& counters_;
  std::unique_ptr<catalog::EventRouter> router_;
  std::vector<Output> outputs_;
  std::uint32_t current_mask_ = 0;
  std::uint64_t sequence_ = 0;
  Event verdict_event_;  // reused: dispatching a verdict allocates nothing
};

}  // namespace mailscope::pipeline
