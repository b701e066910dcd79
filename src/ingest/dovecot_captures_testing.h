// Test-only: readers of the Dovecot 2.3.19.1 recordings in
// tests/data/dovecot-2.3.19: what the stats-writer clients sent
// (stats-writer-wire.txt) and what the event exporters produced
// (event-exporter-*.txt). Shared by the decoders' tests and the formatter's
// golden tests.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace mailscope::ingest {

// One POST as httpsink.py recorded it.
struct CapturedRequest {
  int number = 0;  // httpsink's request counter
  std::string path;
  std::string content_type;
  std::string body;  // exact bytes
};

// The file's text, found under the source tree ("" if missing).
inline std::string ReadTestDataForTesting(std::string_view name) {
  const std::filesystem::path rel = std::filesystem::path("tests/data/dovecot-2.3.19") / name;
  std::vector<std::filesystem::path> dirs;
#ifdef MAILSCOPE_SOURCE_DIR
  dirs.emplace_back(MAILSCOPE_SOURCE_DIR);
#endif
  dirs.push_back(std::filesystem::path(__FILE__).parent_path() / "../..");
  for (auto d = std::filesystem::current_path(); d != d.parent_path(); d = d.parent_path()) {
    dirs.push_back(d);
  }
  for (const auto& d : dirs) {
    if (std::ifstream in(d / rel, std::ios::binary); in) {
      return std::string(std::istreambuf_iterator<char>(in), {});
    }
  }
  return {};
}

// Undoes the socket proxy's escaping: \t \n \r \\ and \xNN.
inline std::string UnescapeProxyCaptureForTesting(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i] == '\\' && i + 1 < s.size() ? s[++i] : '\0';
    if (c == '\0') {
      out += s[i];
    } else if (c == 'x') {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    }
  }
  return out;
}

// One chunk a stats-writer client sent: "#<conn> <time> C>S len=<n> <escaped bytes>".
struct CapturedChunk {
  int connection = 0;
  std::size_t declared_length = 0;  // the proxy's len=, to check the unescaping against
  std::string bytes;
};

// The client chunks of stats-writer-wire.txt, in order.
inline std::vector<CapturedChunk> ReadStatsWriterChunksForTesting() {
  std::vector<CapturedChunk> out;
  std::istringstream in(ReadTestDataForTesting("stats-writer-wire.txt"));
  for (std::string line; std::getline(in, line);) {
    CapturedChunk c;
    int at = 0;
    if (std::sscanf(line.c_str(), "#%d %*s C>S len=%zu%n", &c.connection, &c.declared_length,
                    &at) != 2) {
      continue;
    }
    c.bytes = UnescapeProxyCaptureForTesting(std::string_view(line).substr(at + 1));
    out.push_back(std::move(c));
  }
  return out;
}

// Undoes Python's bytes repr(): b'...' or b"..." with \\ \' \" \t \n \r \xNN.
inline std::string DecodePythonBytesReprForTesting(std::string_view repr) {
  std::string out;
  if (repr.size() < 3 || repr[0] != 'b') return out;
  repr = repr.substr(2, repr.size() - 3);
  for (std::size_t i = 0; i < repr.size(); ++i) {
    if (repr[i] != '\\' || i + 1 == repr.size()) {
      out += repr[i];
      continue;
    }
    const char c = repr[++i];
    if (c == 'x' && i + 2 < repr.size()) {
      out += static_cast<char>(std::stoi(std::string(repr.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    }
  }
  return out;
}

// The requests of event-exporter-json.txt, -tabtext.txt or -none.txt.
inline std::vector<CapturedRequest> ReadCapturedRequestsForTesting(std::string_view name) {
  std::vector<CapturedRequest> out;
  std::istringstream in(ReadTestDataForTesting(name));
  bool want_body = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("=== request ")) {
      out.emplace_back();
      out.back().number = std::stoi(line.substr(12));
    } else if (out.empty()) {
      continue;
    } else if (line.starts_with("POST ")) {
      out.back().path = line.substr(5, line.find(' ', 5) - 5);
    } else if (line.starts_with("Content-Type: ")) {
      out.back().content_type = line.substr(14);
    } else if (line.starts_with("--- body (") && line.ends_with("repr) ---")) {
      want_body = true;
    } else if (want_body) {
      out.back().body = DecodePythonBytesReprForTesting(line);
      want_body = false;
    }
  }
  return out;
}

// The payloads of event-exporter-log.txt: what follows "stats: Info: ".
inline std::vector<std::string> ReadCapturedLogPayloadsForTesting() {
  std::vector<std::string> out;
  std::istringstream in(ReadTestDataForTesting("event-exporter-log.txt"));
  constexpr std::string_view kMark = " stats: Info: ";
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("#")) continue;
    if (const std::size_t at = line.find(kMark); at != std::string::npos) {
      out.push_back(line.substr(at + kMark.size()));
    }
  }
  return out;
}

}  // namespace mailscope::ingest
