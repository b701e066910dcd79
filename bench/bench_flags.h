// What the ingest benchmarks' main() does with its own flags before Google
// Benchmark reads the rest of argv.
#pragma once

#include <fstream>
#include <optional>
#include <string>

namespace mailscope::bench {

// The whole file, or nullopt when it cannot be opened or read.
inline std::optional<std::string> ReadWholeFile(const char* path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::string s(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  if (!in) return std::nullopt;
  return s;
}

// Removes argv[i] and argv[i + 1], a flag and its value this program took.
inline void TakeFlag(int& argc, char** argv, int i) {
  for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
  argc -= 2;
}

}  // namespace mailscope::bench
