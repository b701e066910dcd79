// `mailscope top`: a live view of connected sessions, refreshed every
// interval, in the spirit of doveadm oldstats top. Works over SSH: plain
// ncurses, no mouse, q quits; -b prints plain text for scripts.
#include <curses.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "cli/commands.h"
#include "cli/dump_format.h"
#include "cli/old_stats_client.h"

namespace mailscope::cli {
namespace {

struct TopFlags {
  std::string sort = "disk";
  std::string run_dir;
  std::string socket;
  bool batch = false;
  int iterations = 0;
  double interval = 1.0;
};

struct SessionRow {
  std::string id, user, service, ip;
  std::map<std::string, double> values;  // numeric columns, timevals in seconds
};

struct ViewRow {
  const SessionRow* row;
  double cpu, sys, disk_in, disk_out, cmds, read, write, sort_key;
};

std::map<std::string, SessionRow> Parse(const std::vector<std::string>& rows) {
  std::map<std::string, SessionRow> out;
  if (rows.empty()) return out;
  std::vector<std::string> header = SplitRow(rows[0]);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    std::vector<std::string> cols = SplitRow(rows[r]);
    SessionRow s;
    for (std::size_t i = 0; i < header.size() && i < cols.size(); ++i) {
      const std::string& h = header[i];
      if (h == "session")
        s.id = cols[i];
      else if (h == "user")
        s.user = cols[i];
      else if (h == "service")
        s.service = cols[i];
      else if (h == "ip")
        s.ip = cols[i];
      else if (h == "user_cpu" || h == "sys_cpu" || h == "clock_time")
        s.values[h] = DovecotTimevalSeconds(cols[i]);
      else
        s.values[h] = std::strtod(cols[i].c_str(), nullptr);
    }
    out[s.id] = std::move(s);
  }
  return out;
}

std::string Human(double bytes_per_s) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (bytes_per_s >= 1024 && u < 4) {
    bytes_per_s /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f}", bytes_per_s)
                : fmt::format("{:.1f}{}", bytes_per_s, units[u]);
}

std::vector<ViewRow> Compute(const std::map<std::string, SessionRow>& now,
                             const std::map<std::string, SessionRow>& prev, double dt,
                             const std::string& sort) {
  std::vector<ViewRow> view;
  for (const auto& [id, s] : now) {
    auto p = prev.find(id);
    auto delta = [&](const std::string& col) {
      auto a = s.values.find(col);
      if (a == s.values.end()) return 0.0;
      double before = 0;
      if (p != prev.end()) {
        auto b = p->second.values.find(col);
        if (b != p->second.values.end()) before = b->second;
      }
      return std::max(0.0, a->second - before) / dt;
    };
    ViewRow v{&s,
              delta("user_cpu") * 100,
              delta("sys_cpu") * 100,
              delta("disk_input"),
              delta("disk_output"),
              delta("num_cmds"),
              delta("read_bytes"),
              delta("write_bytes"),
              0};
    if (sort == "disk")
      v.sort_key = v.disk_in + v.disk_out;
    else if (sort == "cpu")
      v.sort_key = v.cpu + v.sys;
    else
      v.sort_key = delta(sort);
    view.push_back(v);
  }
  std::stable_sort(view.begin(), view.end(), [&](const ViewRow& a, const ViewRow& b) {
    if (sort == "user") return a.row->user < b.row->user;
    return a.sort_key > b.sort_key;
  });
  return view;
}

std::vector<std::string> Lines(const std::vector<ViewRow>& view) {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("{:<32} {:<7} {:<15} {:>6} {:>6} {:>8} {:>8} {:>7} {:>8} {:>8}",
                              "USER", "SERVICE", "IP", "%CPU", "%SYS", "DISKIN/s", "DISKOUT/s",
                              "CMDS/s", "READ/s", "WRITE/s"));
  for (const ViewRow& v : view) {
    lines.push_back(fmt::format(
        "{:<32} {:<7} {:<15} {:>6.1f} {:>6.1f} {:>8} {:>8} {:>7.1f} {:>8} {:>8}",
        v.row->user.substr(0, 32), v.row->service.substr(0, 7), v.row->ip.substr(0, 15), v.cpu,
        v.sys, Human(v.disk_in), Human(v.disk_out), v.cmds, Human(v.read), Human(v.write)));
  }
  return lines;
}

int RunTop(const TopFlags& f) {
  std::string target = f.socket.empty() ? DefaultSocket(f.run_dir) : f.socket;
  auto client = OldStatsClient::Connect(target);
  if (!client.ok()) {
    fmt::print(stderr, "mailscope top: {}\n", client.status().message());
    return 1;
  }
  const bool tty = !f.batch;
  if (tty) {
    initscr();
    cbreak();
    noecho();
    curs_set(0);
    keypad(stdscr, TRUE);
  }
  std::map<std::string, SessionRow> prev;
  auto prev_time = std::chrono::steady_clock::now();
  int rc = 0;
  for (int i = 0; f.iterations == 0 || i < f.iterations; ++i) {
    auto rows = client->Export("session", {"connected"});
    if (!rows.ok()) {
      if (tty) endwin();
      fmt::print(stderr, "mailscope top: {}\n", rows.status().message());
      return 1;
    }
    auto now_time = std::chrono::steady_clock::now();
    double dt = i == 0 ? f.interval : std::chrono::duration<double>(now_time - prev_time).count();
    auto now = Parse(*rows);
    auto lines = Lines(Compute(now, prev, std::max(dt, 1e-3), f.sort));
    std::string title = fmt::format("mailscope top - {} connected sessions - sort: {} - q quits",
                                    now.size(), f.sort);
    if (tty) {
      erase();
      mvaddnstr(0, 0, title.c_str(), COLS);
      attron(A_REVERSE);
      mvaddnstr(2, 0, fmt::format("{:<{}}", lines[0], COLS).c_str(), COLS);
      attroff(A_REVERSE);
      for (std::size_t l = 1; l < lines.size() && static_cast<int>(l) + 2 < LINES; ++l)
        mvaddnstr(static_cast<int>(l) + 2, 0, lines[l].c_str(), COLS);
      refresh();
      timeout(static_cast<int>(f.interval * 1000));
      int ch = getch();
      if (ch == 'q' || ch == 'Q') break;
    } else {
      fmt::print("{}\n", title);
      for (const auto& l : lines) fmt::print("{}\n", l);
      fmt::print("\n");
      std::fflush(stdout);
      if (f.iterations == 0 || i + 1 < f.iterations)
        std::this_thread::sleep_for(std::chrono::duration<double>(f.interval));
    }
    prev = std::move(now);
    prev_time = now_time;
  }
  if (tty) endwin();
  return rc;
}

}  // namespace

void AddTopCommand(CLI::App& app, int& exit_code) {
  auto f = std::make_shared<TopFlags>();
  CLI::App* cmd = app.add_subcommand(
      "top",
      "Live view of connected sessions with per-second CPU, disk and I/O rates,\n"
      "refreshed every interval (as doveadm oldstats top). Sort by disk\n"
      "(disk_input+disk_output, the default), cpu (user_cpu+sys_cpu), user, or any\n"
      "numeric column name such as num_cmds or read_bytes. Press q to quit.");
  cmd->add_option("sort", f->sort, "Sort field");
  cmd->add_option("--run-dir", f->run_dir, "Run directory of mailscope serve");
  cmd->add_option("-s,--socket", f->socket, "Query socket path, or tcp:ADDR:PORT");
  cmd->add_flag("-b,--batch", f->batch, "Plain text output instead of a full-screen view");
  cmd->add_option("-n,--iterations", f->iterations, "Stop after N refreshes (0: never)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-d,--interval", f->interval, "Seconds between refreshes")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->callback([f, &exit_code] { exit_code = RunTop(*f); });
}

}  // namespace mailscope::cli
