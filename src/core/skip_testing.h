// Test-only: a skip for a test whose input is missing here (a peer tool, the
// ../shared documents). CI sets MAILSCOPE_REQUIRE_INTEGRATION=1, where all of
// them are present, and there the skip is a failure instead: a test that CI is
// meant to run never passes by not running.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace mailscope {

// True when MAILSCOPE_REQUIRE_INTEGRATION is "1".
inline bool IntegrationRequiredForTesting() {
  const char* value = std::getenv("MAILSCOPE_REQUIRE_INTEGRATION");
  return value != nullptr && std::string_view(value) == "1";
}

}  // namespace mailscope

// Used like GTEST_SKIP(): `if (!found) MS_SKIP_UNLESS_REQUIRED() << path << " not found";`.
// Built the way GTEST_SKIP() is, with a fatal failure in place of the skip when required.
#define MS_SKIP_UNLESS_REQUIRED()                                                       \
  return GTEST_MESSAGE_(::mailscope::IntegrationRequiredForTesting()                    \
                            ? "MAILSCOPE_REQUIRE_INTEGRATION=1: this test may not skip" \
                            : "",                                                       \
                        ::mailscope::IntegrationRequiredForTesting()                    \
                            ? ::testing::TestPartResult::kFatalFailure                  \
                            : ::testing::TestPartResult::kSkip)
