#include "core/names.h"

#include <gtest/gtest.h>

#include <string>

namespace mailscope {
namespace {

TEST(NamesTest, InternIsStableAndDense) {
  NameId a = InternName("names_test_a");
  NameId b = InternName("names_test_b");
  EXPECT_NE(a, b);
  EXPECT_EQ(InternName("names_test_a"), a);
  EXPECT_EQ(NameText(a), "names_test_a");
  EXPECT_EQ(FindName("names_test_b"), b);
  EXPECT_EQ(FindName("names_test_never"), kNoName);
  EXPECT_EQ(InternName(""), kNoName);
  EXPECT_LT(b, NameCount());
}

TEST(NamesTest, TryInternKeepsTheGlobalBudget) {
  NameBudget client(NameInput::kStatsWriter, 1000);
  NameId known = InternName("names_test_known");
  SetNameBudget(NameCount() + 1, kDefaultMaxNameBytes);
  EXPECT_NE(TryInternName("names_test_fits", client), kNoName);  // the one left
  const std::uint64_t refused = NamesRefused(NameInput::kStatsWriter, NameRefusal::kTableFull);
  EXPECT_EQ(TryInternName("names_test_over", client), kNoName);
  EXPECT_EQ(NamesRefused(NameInput::kStatsWriter, NameRefusal::kTableFull), refused + 1);
  EXPECT_EQ(client.last_refusal(), NameRefusal::kTableFull);
  EXPECT_EQ(TryInternName("names_test_known", client), known);  // known names still resolve
  EXPECT_NE(InternName("names_test_config"), kNoName);          // InternName is not limited
  SetNameBudget(kDefaultMaxNames, 0);                           // a byte budget, too
  EXPECT_EQ(TryInternName("names_test_bytes", client), kNoName);
  SetNameBudget(kDefaultMaxNames, kDefaultMaxNameBytes);
  EXPECT_NE(TryInternName("names_test_bytes", client), kNoName);
  EXPECT_EQ(client.added(), 2u);
  EXPECT_EQ(client.refused(), 2u);
}

// One client spending its budget is refused; another still adds its names,
// and names either of them already knows cost nothing.
TEST(NamesTest, AClientPastItsBudgetDoesNotStopOthers) {
  NameBudget greedy(NameInput::kTail, 3);
  NameBudget other(NameInput::kTail, 3);
  const NameId shared = InternName("names_test_shared");
  const std::uint64_t total = NamesRefused();
  const std::uint64_t by_budget = NamesRefused(NameInput::kTail, NameRefusal::kClientBudget);
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(TryInternName("names_test_greedy" + std::to_string(i), greedy), kNoName);
  EXPECT_EQ(greedy.remaining(), 0u);
  EXPECT_EQ(TryInternName("names_test_greedy3", greedy), kNoName);
  EXPECT_EQ(TryInternName("names_test_greedy4", greedy), kNoName);
  EXPECT_EQ(FindName("names_test_greedy3"), kNoName);
  EXPECT_EQ(greedy.refused(), 2u);
  EXPECT_EQ(greedy.last_refusal(), NameRefusal::kClientBudget);
  EXPECT_EQ(NamesRefused(NameInput::kTail, NameRefusal::kClientBudget), by_budget + 2);
  EXPECT_EQ(NamesRefused(), total + 2);
  // Known names: free for the spent client, and no charge for the other.
  EXPECT_EQ(TryInternName("names_test_shared", greedy), shared);
  EXPECT_EQ(TryInternName("names_test_greedy0", other), FindName("names_test_greedy0"));
  EXPECT_EQ(other.added(), 0u);
  // The other client's new names, among them one the greedy one was refused.
  EXPECT_NE(TryInternName("names_test_greedy3", other), kNoName);
  EXPECT_NE(TryInternName("names_test_other", other), kNoName);
  EXPECT_EQ(other.added(), 2u);
  EXPECT_EQ(other.refused(), 0u);
}

// A client's names needed together (a filter's) are added all or none.
TEST(NamesTest, TryInternNamesAddsAllOrNone) {
  NameBudget client(NameInput::kStatsReader, 2);
  const NameId known = InternName("names_test_all_known");
  const std::string_view too_many[] = {
      "names_test_all_a", "names_test_all_known", "names_test_all_a", "names_test_all_b", "",
      "names_test_all_c"};
  NameId ids[6] = {};
  const std::uint64_t refused = NamesRefused(NameInput::kStatsReader, NameRefusal::kClientBudget);
  auto shortfall = TryInternNames(too_many, client, ids);
  ASSERT_TRUE(shortfall.has_value());
  EXPECT_EQ(shortfall->reason, NameRefusal::kClientBudget);
  EXPECT_EQ(shortfall->new_names, 3u);
  EXPECT_EQ(shortfall->first_past, 5u);  // _c, the third new name
  EXPECT_EQ(FindName("names_test_all_a"), kNoName);
  EXPECT_EQ(FindName("names_test_all_b"), kNoName);
  EXPECT_EQ(client.added(), 0u);
  EXPECT_EQ(client.refused(), 3u);
  EXPECT_EQ(NamesRefused(NameInput::kStatsReader, NameRefusal::kClientBudget), refused + 3);

  const std::string_view fits[] = {"names_test_all_a", "names_test_all_known", "",
                                   "names_test_all_a", "names_test_all_b"};
  ASSERT_FALSE(TryInternNames(fits, client, std::span(ids, 5)).has_value());
  EXPECT_NE(ids[0], kNoName);
  EXPECT_EQ(ids[0], ids[3]);
  EXPECT_EQ(ids[1], known);
  EXPECT_EQ(ids[2], kNoName);
  EXPECT_EQ(NameText(ids[4]), "names_test_all_b");
  EXPECT_EQ(client.added(), 2u);

  // The table's budget likewise.
  NameBudget roomy(NameInput::kStatsReader, 100);
  SetNameBudget(NameCount() + 1, kDefaultMaxNameBytes);
  const std::string_view two[] = {"names_test_all_d", "names_test_all_e"};
  shortfall = TryInternNames(two, roomy, std::span(ids, 2));
  SetNameBudget(kDefaultMaxNames, kDefaultMaxNameBytes);
  ASSERT_TRUE(shortfall.has_value());
  EXPECT_EQ(shortfall->reason, NameRefusal::kTableFull);
  EXPECT_EQ(shortfall->first_past, 1u);
  EXPECT_EQ(FindName("names_test_all_d"), kNoName);
}

TEST(NamesTest, InputsAndRefusalsHaveLabels) {
  EXPECT_EQ(NameInputName(NameInput::kStatsWriter), "stats_writer");
  EXPECT_EQ(NameInputName(NameInput::kDovecotPost), "dovecot_post");
  EXPECT_EQ(NameInputName(NameInput::kExim), "exim");
  EXPECT_EQ(NameInputName(NameInput::kTail), "tail");
  EXPECT_EQ(NameInputName(NameInput::kStatsReader), "stats_reader");
  EXPECT_EQ(NameRefusalName(NameRefusal::kClientBudget), "client_budget");
  EXPECT_EQ(NameRefusalName(NameRefusal::kTableFull), "table_full");
  const NameBudget budget(NameInput::kTail, 4096);
  EXPECT_EQ(DescribeNameRefusal(budget, NameRefusal::kClientBudget),
            "names new to mailscope per client: at most 4096, 4096 left");
  EXPECT_EQ(DescribeNameRefusal(budget, NameRefusal::kTableFull), "mailscope's name table is full");
}

}  // namespace
}  // namespace mailscope
