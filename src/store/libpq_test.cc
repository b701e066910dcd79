#include "store/libpq.h"

#include <gtest/gtest.h>

#include <string>

namespace mailscope::store {
namespace {

TEST(LibPqTest, LoadsOnceAndWorks) {
  auto pq = LoadLibPq();
  ASSERT_TRUE(pq.ok()) << pq.status().ToString();
  auto again = LoadLibPq();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*pq, *again);
  char* err = nullptr;
  PQconninfoOption* options = (*pq)->conninfoParse("host=db.example dbname=records", &err);
  ASSERT_NE(options, nullptr);
  std::string host;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o)
    if (std::string(o->keyword) == "host" && o->val != nullptr) host = o->val;
  (*pq)->conninfoFree(options);
  EXPECT_EQ(host, "db.example");
}

TEST(LibPqTest, AMissingLibraryIsNamed) {
  auto pq = LoadLibPqFrom("libmailscope-no-such-library.so.0");
  ASSERT_FALSE(pq.ok());
  EXPECT_EQ(pq.status().code(), StatusCode::kFailedPrecondition);
  const std::string message(pq.status().message());
  EXPECT_NE(message.find("cannot load libmailscope-no-such-library.so.0 (PostgreSQL's client "
                         "library, Debian package libpq5): "),
            std::string::npos)
      << message;
}

TEST(LibPqTest, ALibraryWithoutTheFunctionsIsRefused) {
  auto pq = LoadLibPqFrom("libz.so.1");
  ASSERT_FALSE(pq.ok());
  EXPECT_EQ(pq.status().message(), "libz.so.1 has no function PQconninfoParse");
}

}  // namespace
}  // namespace mailscope::store
