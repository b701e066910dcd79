#include "filter/filter.h"

#include "filter/program.h"

namespace mailscope::filter {

Filter::Filter(std::shared_ptr<const internal::Program> program) : program_(std::move(program)) {}

bool Filter::empty() const { return program_ == nullptr; }

std::size_t Filter::query_count() const {
  return program_ == nullptr ? 0 : program_->queries.size();
}

bool Filter::RequiresEventName() const { return program_ == nullptr || program_->requires_name; }

Filter Filter::Merge(const std::vector<const Filter*>& filters) {
  internal::Program merged;
  for (const Filter* f : filters) {
    MS_CHECK(f != nullptr);
    if (f->program_ == nullptr) continue;
    const auto offset = static_cast<std::uint32_t>(merged.nodes.size());
    for (internal::Node n : f->program_->nodes) {
      for (std::uint32_t& c : n.children) c += offset;
      merged.nodes.push_back(std::move(n));
    }
    for (internal::Query q : f->program_->queries) {
      q.root += offset;
      merged.queries.push_back(q);
      merged.requires_name = merged.requires_name && q.requires_name;
    }
  }
  if (merged.queries.empty()) return Filter();
  return Filter(std::make_shared<const internal::Program>(std::move(merged)));
}

}  // namespace mailscope::filter
