// Fuzzes the decoder of Stalwart's webhook bodies and the dedup table behind
// it. The input is a body; it lives in a heap buffer of its exact size (no
// padding, so the decoder must copy) that is freed before the events are
// read: a field pointing into the input would be read after free. Every
// event of a good body must decode, carry its name, and get the same dedup
// key when the body is parsed again from a padded buffer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/check.h"
#include "ingest/event_dedup.h"
#include "ingest/stalwart_webhook.h"

namespace {

using mailscope::Event;
using mailscope::Field;
using mailscope::Value;
using mailscope::ingest::EventDedup;
using mailscope::ingest::StalwartWebhookDecoder;
using mailscope::ingest::StalwartWebhookOptions;
using mailscope::ingest::StalwartWebhookPadding;

// Reads every string of `e`, so ASan sees a dangling one.
std::size_t Touch(const Event& e) {
  std::size_t sum = 0;
  for (const Field& f : e.fields) {
    if (f.value.type() != Value::Type::kString) continue;
    for (char c : f.value.as_string()) sum += static_cast<unsigned char>(c);
  }
  return sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The run makes up far more names than one route's budget: only the name
  // table's own budget applies.
  static StalwartWebhookDecoder* decoder =
      new StalwartWebhookDecoder(StalwartWebhookOptions{.max_new_names = UINT32_MAX});
  static StalwartWebhookDecoder* padded_decoder =
      new StalwartWebhookDecoder(StalwartWebhookOptions{.max_new_names = UINT32_MAX});
  static EventDedup* dedup = new EventDedup(std::chrono::seconds(300), 64);
  {
    auto copy = std::make_unique<char[]>(size);
    if (size > 0) std::memcpy(copy.get(), data, size);
    const mailscope::Status st = decoder->Parse(std::string_view(copy.get(), size), size);
    MS_CHECK(st.ok() || !st.reason().empty());
    if (!st.ok()) {
      MS_CHECK(decoder->size() == 0);
      return 0;
    }
  }
  std::string padded(reinterpret_cast<const char*>(data), size);
  padded.reserve(size + StalwartWebhookPadding());
  MS_CHECK(padded_decoder->Parse(padded, padded.capacity()).ok());
  MS_CHECK(padded_decoder->size() == decoder->size());
  Event e;
  const mailscope::TimePoint now{std::chrono::seconds(1'800'000'000)};
  Event again;
  for (std::size_t i = 0; i < decoder->size(); ++i) {
    const mailscope::Status st = decoder->Decode(i, e);
    MS_CHECK(st.ok() || st.reason() == "name_table_full");
    if (!st.ok()) continue;
    MS_CHECK(padded_decoder->Decode(i, again).ok());
    MS_CHECK(decoder->dedup_key() == padded_decoder->dedup_key());
    dedup->Seen(decoder->dedup_key(), now);
    MS_CHECK(dedup->Seen(decoder->dedup_key(), now));
    MS_CHECK(e.source == mailscope::Source::kStalwart);
    MS_CHECK(e.name != mailscope::kNoName);
    volatile std::size_t sink = Touch(e);
    (void)sink;
  }
  return 0;
}
