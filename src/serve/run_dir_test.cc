#include "serve/run_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace mailscope::serve {
namespace {

class RunDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/mailscope-run-dir-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr) << std::strerror(errno);
    root_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  std::string root_;
};

TEST_F(RunDirTest, CreatesMissingRunDirectoryWithMode0755) {
  const std::string dir = root_ + "/a/b/run";
  mode_t old = ::umask(077);
  Status st = MakeRunDir(dir);
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(ModeOf(dir), 0755u);
}

TEST_F(RunDirTest, LeavesAnExistingRunDirectoryAsItsAdministratorSetIt) {
  const std::string dir = root_ + "/run";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0750), 0);
  ASSERT_TRUE(MakeRunDir(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0750u);
}

TEST_F(RunDirTest, RefusesARunDirectoryThatIsAFile) {
  const std::string file = root_ + "/run";
  std::ofstream(file) << "x";
  Status st = MakeRunDir(file);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(file + " exists and is not a directory"), std::string::npos)
      << st.message();
}

TEST_F(RunDirTest, CreatesAPrivateDirectoryWithMode0700) {
  const std::string dir = root_ + "/mailscope-1000";
  ASSERT_TRUE(MakePrivateDir(dir).ok());
  EXPECT_EQ(ModeOf(dir), 0700u);
  // A later start finds it as it left it.
  EXPECT_TRUE(MakePrivateDir(dir).ok());
}

TEST_F(RunDirTest, RefusesAPrivateDirectoryOthersCanEnter) {
  const std::string dir = root_ + "/mailscope-1000";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  Status st = MakePrivateDir(dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("refusing to use " + dir + ": its mode 0755"), std::string::npos)
      << st.message();
  EXPECT_EQ(ModeOf(dir), 0755u);  // refused, not repaired
}

TEST_F(RunDirTest, RefusesAPrivateDirectoryThatIsASymlink) {
  const std::string target = root_ + "/elsewhere";
  const std::string dir = root_ + "/mailscope-1000";
  ASSERT_EQ(::mkdir(target.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(target.c_str(), dir.c_str()), 0);
  Status st = MakePrivateDir(dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("refusing to use " + dir + ": it is a symlink"), std::string::npos)
      << st.message();
}

TEST_F(RunDirTest, RefusesAPrivateDirectoryThatIsAFile) {
  const std::string dir = root_ + "/mailscope-1000";
  std::ofstream(dir) << "x";
  Status st = MakePrivateDir(dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("it is not a directory"), std::string::npos) << st.message();
}

// Another local user made the directory first: its owner decides what is in
// it, whatever the mode.
TEST_F(RunDirTest, RefusesAPrivateDirectoryOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another uid";
  const std::string dir = root_ + "/mailscope-0";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const uid_t other = 65534;
  ASSERT_EQ(::chown(dir.c_str(), other, static_cast<gid_t>(-1)), 0) << std::strerror(errno);
  Status st = MakePrivateDir(dir);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(
      st.message().find("refusing to use " + dir + ": it is owned by uid 65534, not by uid 0"),
      std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace mailscope::serve
