// queuerd's log sinks: see logging.hpp. One spdlog sink formats every line; the library's job
// lines (queuer::log::write) reach it through spdlog too, with their fields passed along in a
// thread-local (spdlog calls a synchronous logger's sinks on the calling thread).
#include "logging.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "queuer/json.hpp"
#include "queuer/log.hpp"
#include "systemd.hpp"

namespace queuerd {

namespace {

thread_local const queuer::log::Fields* t_fields = nullptr;

std::mutex g_worker_mu;
std::string g_worker_rid;

std::string worker_rid() {
    std::lock_guard g(g_worker_mu);
    return g_worker_rid;
}

int syslog_priority(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace:
        case spdlog::level::debug:
            return 7;
        case spdlog::level::info:
            return 6;
        case spdlog::level::warn:
            return 4;
        case spdlog::level::err:
            return 3;
        case spdlog::level::critical:
            return 2;
        default:
            return 6;
    }
}

const char* level_name(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace:
            return "trace";
        case spdlog::level::debug:
            return "debug";
        case spdlog::level::info:
            return "info";
        case spdlog::level::warn:
            return "warn";
        case spdlog::level::err:
            return "error";
        case spdlog::level::critical:
            return "critical";
        default:
            return "info";
    }
}

spdlog::level::level_enum to_spdlog(queuer::LogLevel l) {
    switch (l) {
        case queuer::LogLevel::Trace:
            return spdlog::level::trace;
        case queuer::LogLevel::Debug:
            return spdlog::level::debug;
        case queuer::LogLevel::Info:
            return spdlog::level::info;
        case queuer::LogLevel::Warn:
            return spdlog::level::warn;
        case queuer::LogLevel::Error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

spdlog::level::level_enum to_spdlog(queuer::log::Level l) {
    switch (l) {
        case queuer::log::Level::Trace:
            return spdlog::level::trace;
        case queuer::log::Level::Debug:
            return spdlog::level::debug;
        case queuer::log::Level::Info:
            return spdlog::level::info;
        case queuer::log::Level::Warn:
            return spdlog::level::warn;
        case queuer::log::Level::Error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

class Sink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit Sink(queuer::LogFormat format)
        : format_(format), prefix_(std::getenv("JOURNAL_STREAM") != nullptr) {
        // Say so at start when journald is not there (not only at the first line).
        struct stat st;
        if (format_ == queuer::LogFormat::Journal &&
            ::stat("/run/systemd/journal/socket", &st) != 0) {
            journal_ok_ = false;
            std::string note =
                "[warn] logging.format journal: journald cannot be reached "
                "(/run/systemd/journal/socket: " +
                std::string(std::strerror(errno)) + "); logging text to stderr\n";
            std::fwrite(note.data(), 1, note.size(), stderr);
        }
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& m) override {
        std::string_view msg(m.payload.data(), m.payload.size());
        std::string cut;
        if (msg.size() > kMaxLogMessage) {
            cut = queuer::log::capped(msg, kMaxLogMessage);
            msg = cut;
        }
        const queuer::log::Fields* f = t_fields;
        std::string wrid = f && !f->worker_rid.empty() ? std::string(f->worker_rid) : worker_rid();
        if (format_ == queuer::LogFormat::Journal && journal(m, msg, f, wrid)) return;
        std::string line =
            format_ == queuer::LogFormat::Json ? json(m, msg, f, wrid) : text(m, msg, f);
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stderr);
        std::fflush(stderr);
    }
    void flush_() override { std::fflush(stderr); }

  private:
    std::string text(const spdlog::details::log_msg& m, std::string_view msg,
                     const queuer::log::Fields* f) const {
        std::string out;
        if (prefix_) {
            // journald keeps the priority from the <N> prefix and adds its own timestamp.
            out = fmt::format("<{}>[{}] ", syslog_priority(m.level), level_name(m.level));
        } else {
            auto t = std::chrono::system_clock::to_time_t(m.time);
            auto ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(m.time.time_since_epoch())
                    .count() %
                1000;
            out = fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03} [{}] ", fmt::localtime(t), ms,
                              level_name(m.level));
        }
        out.append(msg);
        if (f && !f->job_rid.empty()) {
            if (f->task.empty())
                out += fmt::format(" (job {})", f->job_rid);
            else
                out += fmt::format(" (job {}, task {})", f->job_rid, f->task);
        }
        return out;
    }

    static std::string json(const spdlog::details::log_msg& m, std::string_view msg,
                            const queuer::log::Fields* f, const std::string& wrid) {
        auto t = std::chrono::system_clock::to_time_t(m.time);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(m.time.time_since_epoch())
                      .count() %
                  1000;
        std::string out = fmt::format("{{\"ts\":\"{:%Y-%m-%dT%H:%M:%S}.{:03}Z\",\"level\":\"{}\",",
                                      fmt::gmtime(t), ms, level_name(m.level));
        out += "\"msg\":" + queuer::json::quote(msg);
        if (f && !f->job_rid.empty()) out += ",\"job_rid\":" + queuer::json::quote(f->job_rid);
        if (f && !f->task.empty()) out += ",\"task\":" + queuer::json::quote(f->task);
        if (!wrid.empty()) out += ",\"worker_rid\":" + queuer::json::quote(wrid);
        out += "}";
        return out;
    }

    // Native journald fields; false when journald cannot be reached (then the line goes to
    // stderr as text, and we say so once).
    bool journal(const spdlog::details::log_msg& m, std::string_view msg,
                 const queuer::log::Fields* f, const std::string& wrid) {
        if (!journal_ok_) return false;
        std::string prio = std::to_string(syslog_priority(m.level));
        std::vector<queuerd::systemd::JournalField> fields{{"MESSAGE", msg},
                                                           {"PRIORITY", prio},
                                                           {"SYSLOG_IDENTIFIER", "queuerd"},
                                                           {"QUEUERD_LEVEL", level_name(m.level)}};
        if (f && !f->job_rid.empty()) fields.emplace_back("JOB_RID", f->job_rid);
        if (f && !f->task.empty()) fields.emplace_back("TASK", f->task);
        if (!wrid.empty()) fields.emplace_back("WORKER_RID", wrid);
        int rc = queuerd::systemd::journal_send(fields);
        if (rc >= 0) return true;
        journal_ok_ = false;
        std::string note = fmt::format(
            "[warn] logging.format journal: journald cannot be reached ({}); logging text to "
            "stderr\n",
            std::strerror(-rc));
        std::fwrite(note.data(), 1, note.size(), stderr);
        return false;
    }

    queuer::LogFormat format_;
    bool prefix_;
    bool journal_ok_ = true;
};

bool g_prefix = false;

}  // namespace

void setup_logging(queuer::LogLevel level, queuer::LogFormat format) {
    g_prefix = format == queuer::LogFormat::Text && std::getenv("JOURNAL_STREAM") != nullptr;
    auto sink = std::make_shared<Sink>(format);
    auto logger = std::make_shared<spdlog::logger>("queuerd", sink);
    spdlog::set_default_logger(logger);
    spdlog::flush_on(spdlog::level::trace);
    set_log_level(level);
    queuer::log::set_sink(
        [](queuer::log::Level l, std::string_view msg, const queuer::log::Fields& fields) {
            t_fields = &fields;
            try {
                spdlog::log(to_spdlog(l), "{}", msg);
            } catch (...) {
            }
            t_fields = nullptr;
        });
}

void set_log_level(queuer::LogLevel level) {
    spdlog::set_level(to_spdlog(level));
}

void set_log_worker(std::string_view rid) {
    std::lock_guard g(g_worker_mu);
    g_worker_rid = std::string(rid);
}

bool syslog_prefix_on_stderr() {
    return g_prefix;
}

}  // namespace queuerd
