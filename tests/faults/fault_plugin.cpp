// libqueuer_fault_tasks.so: tasks for the fault suite (tests/faults). Built with the tests only,
// never installed.
//
//   count [path, ms]   appends "<rid> <pid> <attempt>\n" to the file `path` (O_APPEND, one
//                      write(), so lines from several processes never interleave), then sleeps
//                      `ms` milliseconds (default 0), checking for cancellation every 5 ms. The
//                      file counts executions across every worker of a test.
//   poison [kind, path] records its execution like count (when `path` is given), then returns
//                      something the database or the worker must refuse:
//                        "nul"        results ["a\u0000b"]: valid JSON, refused by jsonb
//                        "big:N"      results ["xxx…"] of about N bytes
//                        "badutf8"    results holding the bytes FF FE (not UTF-8)
//                        "errbadutf8" fails with an error text holding the bytes FF FE
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include <queuer/plugin.hpp>

namespace {

using queuer::plugin::Job;
using namespace std::chrono_literals;

void record(Job& job, const std::string& path) {
    std::string line = std::string(job.rid()) + " " + std::to_string(::getpid()) + " " +
                       std::to_string(job.attempt()) + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("count: cannot open " + path);
    ssize_t n = ::write(fd, line.data(), line.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size())) throw std::runtime_error("count: short write");
}

void pause(Job& job, int64_t ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (job.cancelled()) throw std::runtime_error("cancelled");
        std::this_thread::sleep_for(5ms);
    }
}

std::string count(Job& job) {
    record(job, job.params().get<std::string>(0));
    pause(job, job.params().get_or<int64_t>(1, 0));
    return {};
}

std::string poison(Job& job) {
    auto kind = job.params().get<std::string>(0);
    if (job.params().has(1)) record(job, job.params().get<std::string>(1));
    if (kind == "nul") return "[\"a\\u0000b\"]";
    if (kind == "badutf8") return "[\"bad \xff\xfe utf-8\"]";
    if (kind == "errbadutf8") throw std::runtime_error("bad \xff\xfe utf-8 in an error text");
    if (kind.rfind("big:", 0) == 0) {
        size_t n = std::stoull(kind.substr(4));
        return "[\"" + std::string(n, 'x') + "\"]";
    }
    throw queuer::plugin::ParamError("poison: unknown kind \"" + kind + "\"");
}

}  // namespace

QUEUER_PLUGIN_CPP("fault_tasks", "1.0.0", reg) {
    reg.task("count", count);
    reg.task("poison", poison);
}
