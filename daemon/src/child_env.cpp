// The scrubbed environment of task-runner children (child_env.hpp).
#include "child_env.hpp"

#include <array>

namespace queuerd {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool default_task_variable(std::string_view name) {
    static constexpr std::array<std::string_view, 17> kNames = {
        "PATH",           "HOME",         "USER",          "LOGNAME",      "LANG",
        "LANGUAGE",       "TZ",           "TZDIR",         "TMPDIR",       "LD_LIBRARY_PATH",
        "JOURNAL_STREAM", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS",
        "MSAN_OPTIONS",   "LC_ALL"};
    for (auto n : kNames)
        if (name == n) return true;
    return starts_with(name, "LC_");
}

bool secret_variable(std::string_view name) {
    static constexpr std::array<std::string_view, 9> kNames = {"QUEUER_ENCRYPTION_KEY",
                                                               "QUEUERD_WEB_TOKEN",
                                                               "CREDENTIALS_DIRECTORY",
                                                               "NOTIFY_SOCKET",
                                                               "WATCHDOG_PID",
                                                               "WATCHDOG_USEC",
                                                               "LISTEN_PID",
                                                               "LISTEN_FDS",
                                                               "LISTEN_FDNAMES"};
    for (auto n : kNames)
        if (name == n) return true;
    return starts_with(name, "QUEUER_DB_");
}

bool matches_pattern(std::string_view name, const std::vector<std::string>& patterns) {
    for (const auto& p : patterns) {
        if (!p.empty() && p.back() == '*') {
            if (starts_with(name, std::string_view(p).substr(0, p.size() - 1))) return true;
        } else if (name == p) {
            return true;
        }
    }
    return false;
}

std::vector<std::string> task_runner_environment(const std::vector<std::string>& extra,
                                                 const char* const* envp) {
    std::vector<std::string> out;
    if (!envp) return out;
    for (const char* const* e = envp; *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        std::string_view name = kv.substr(0, eq);
        if (secret_variable(name)) continue;
        // Without a list: queuerd's whole environment but its secrets (as tasks see it in thread
        // isolation). With worker.task_environment: the basic variables and the listed ones.
        if (extra.empty() || default_task_variable(name) || matches_pattern(name, extra))
            out.emplace_back(kv);
    }
    return out;
}

}  // namespace queuerd
