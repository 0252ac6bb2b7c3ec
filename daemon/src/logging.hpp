// queuerd's log output (logging.format): text, json or journal, for spdlog lines and for the
// library's job lines (queuer::log::write with job_rid, task, worker_rid fields).
#pragma once

#include <string>
#include <string_view>

#include "queuer/app_config.hpp"

namespace queuerd {

// Installs the default logger and the queuer::log sink. Call once, before any engine runs.
//   text:    "2026-11-30 17:00:00.123 [info] msg (job RID, task T)" on stderr; under systemd
//            (JOURNAL_STREAM set) "<6>[info] msg ..." so that journald keeps the priority.
//   json:    {"ts":"...Z","level":"info","msg":"...","job_rid":"...","task":"...",
//            "worker_rid":"..."} one object per line on stderr.
//   journal: sd_journal_send with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=queuerd, JOB_RID, TASK,
//            WORKER_RID, QUEUERD_LEVEL; falls back to text on stderr if journald is not there.
void setup_logging(queuer::LogLevel level, queuer::LogFormat format);
void set_log_level(queuer::LogLevel level);
// Added to every line from now on (json: "worker_rid"; journal: WORKER_RID=).
void set_log_worker(std::string_view worker_rid);
// True when stderr lines should carry a <N> syslog prefix (text format under systemd).
bool syslog_prefix_on_stderr();

// Longest message written as it is; longer ones are cut (queuer::log::capped).
inline constexpr size_t kMaxLogMessage = 16 * 1024;

}  // namespace queuerd
