// The http-post event transport (see event_transports.h): Boost.Beast
// HTTP/1.1 client, one POST per event over one keep-alive connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "net/event_transports.h"

namespace mailscope::net {

// REQUIRES: settings.transport is kHttpPost, settings.url parsed.
std::unique_ptr<EventTransport> MakeHttpPostTransport(boost::asio::io_context& io,
                                                      const exporter::ExporterSettings& settings,
                                                      const EventTransportOptions& options);

}  // namespace mailscope::net
