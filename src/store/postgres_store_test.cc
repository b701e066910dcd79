// PostgresStore against a server is tested in tests/integration
// (records_postgres); these are the parts that need none.
#include "store/postgres_store.h"

#include <gtest/gtest.h>

namespace mailscope::store {
namespace {

TEST(PostgresStoreTest, MessagesNeverShowThePassword) {
  EXPECT_EQ(RedactConninfo("postgresql://ms:s3cret@db.example:5433/records"),
            "user=ms dbname=records host=db.example port=5433");
  EXPECT_EQ(RedactConninfo("host=127.0.0.1 dbname=mailscope password=s3cret user=ms"),
            "user=ms dbname=mailscope host=127.0.0.1");
  EXPECT_EQ(RedactConninfo("host='unterminated"), "(a database conninfo that does not parse)");
}

TEST(PostgresStoreTest, AConninfoThatDoesNotParseIsAnError) {
  auto store = PostgresStore::Open("host='unterminated", false);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("database:"), std::string::npos)
      << store.status().message();
  auto bad_key = PostgresStore::Open("colour=blue", false);
  EXPECT_FALSE(bad_key.ok());
}

TEST(PostgresStoreTest, AServerThatIsAwayIsUnavailableNotFatal) {
  // Nothing listens on port 1 of the loopback address.
  auto store = PostgresStore::Open("postgresql://nobody@127.0.0.1:1/none", true);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->Remote());
  const Status s = (*store)->Reconnect();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot connect"), std::string::npos) << s.message();
  EXPECT_EQ((*store)->Insert({}).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mailscope::store
