// The environment of the task-runner children of `worker.isolation: process`. They run plugin
// code that may not be fully trusted, so they never get the database settings and password
// (QUEUER_DB_*), the encryption key (QUEUER_ENCRYPTION_KEY), the web console token, the systemd
// credentials directory or systemd's notification and socket-activation variables; everything
// else is passed unless worker.task_environment restricts it to an allow-list. See
// docs/plugin-guide.md, "Isolation modes".
#pragma once

#include <unistd.h>  // environ (_GNU_SOURCE)

#include <string>
#include <string_view>
#include <vector>

namespace queuerd {

// The variables a task gets by default: PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ,
// TZDIR, TMPDIR, LD_LIBRARY_PATH (plugins must find the libraries queuerd found),
// JOURNAL_STREAM (the children share queuerd's stderr) and the sanitizer options
// (ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS, TSAN_OPTIONS, MSAN_OPTIONS).
bool default_task_variable(std::string_view name);

// Variables never given to a task, even when `worker.task_environment` names them:
// QUEUER_DB_*, QUEUER_ENCRYPTION_KEY, QUEUERD_WEB_TOKEN, CREDENTIALS_DIRECTORY, NOTIFY_SOCKET,
// WATCHDOG_PID, WATCHDOG_USEC, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES.
bool secret_variable(std::string_view name);

// True when `name` matches one of `patterns`: an exact variable name, or a prefix ending in '*'
// ("ACME_*" matches ACME_URL).
bool matches_pattern(std::string_view name, const std::vector<std::string>& patterns);

// "NAME=value" strings for execve(), in envp's order, never a secret one: with `extra` empty
// (no worker.task_environment) every other variable of `envp`, as tasks see it in thread
// isolation; otherwise only the default task variables and those matching `extra` (an
// allow-list, for operators who want one).
std::vector<std::string> task_runner_environment(const std::vector<std::string>& extra = {},
                                                 const char* const* envp = environ);

}  // namespace queuerd
