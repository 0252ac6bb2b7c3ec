// A crash in thread isolation names its jobs: queuerd records (rid, task) of every plugin task
// it runs in this process in a fixed-size, lock-free slot table; on SIGSEGV, SIGBUS, SIGABRT,
// SIGFPE or SIGILL its handler writes them to stderr with write(2) only (async-signal-safe,
// preformatted fixed buffers), then restores the default action and re-raises the signal, so
// the process still dies with it (and dumps core where that is enabled).
#pragma once

#include <string_view>

namespace queuerd::crash {

// Installs the handlers (idempotent). `syslog_prefix`: start each line with "<2>" (text logs
// under systemd, so that journald files them as critical).
void install(bool syslog_prefix);

// Records a running job for the crash report while it lives (cheap: one CAS and a copy).
class JobSlot {
  public:
    JobSlot(std::string_view rid, std::string_view task);
    ~JobSlot();
    JobSlot(const JobSlot&) = delete;
    JobSlot& operator=(const JobSlot&) = delete;

  private:
    int index_ = -1;  // -1: the table was full; the job is not named in a crash report
};

// For tests: the number of jobs currently recorded.
int recorded_jobs();

}  // namespace queuerd::crash
