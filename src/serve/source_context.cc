#include "serve/source_context.h"

#include <fmt/format.h>

#include "net/spawn.h"

namespace mailscope::serve {

void SourceContext::Reject(Source source, const Status& status, std::string_view where) const {
  counters.CountRejected(source, status.reason());
  reject_log.Warn(SourceName(source), where.empty()
                                          ? status.message()
                                          : fmt::format("{}: {}", where, status.message()));
}

std::string_view SourceContext::Dispatch(Event& event) const {
  if (before_dispatch_for_testing) before_dispatch_for_testing(event);
  return dispatcher.Dispatch(event);
}

void RejectCurrentException(const SourceContext& context, Source source) {
  context.Reject(source,
                 Rejected("handler_error",
                          "line dropped: " + net::DescribeException(std::current_exception())));
}

}  // namespace mailscope::serve
