// The logging facade: see queuer/log.hpp.
#include "queuer/log.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "queuer/observer.hpp"

namespace queuer {

const char* to_string(Outcome o) {
    switch (o) {
        case Outcome::Succeeded:
            return "SUCCEEDED";
        case Outcome::Failed:
            return "FAILED";
        case Outcome::Cancelled:
            return "CANCELLED";
        case Outcome::Retried:
            return "RETRIED";
        case Outcome::Requeued:
            return "REQUEUED";
    }
    return "?";
}

namespace log {

namespace {

spdlog::level::level_enum to_spdlog(Level l) {
    switch (l) {
        case Level::Trace:
            return spdlog::level::trace;
        case Level::Debug:
            return spdlog::level::debug;
        case Level::Info:
            return spdlog::level::info;
        case Level::Warn:
            return spdlog::level::warn;
        case Level::Error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

void default_sink(Level l, std::string_view msg, const Fields& f) {
    if (f.job_rid.empty() && f.task.empty()) {
        spdlog::log(to_spdlog(l), "{}", msg);
    } else if (f.task.empty()) {
        spdlog::log(to_spdlog(l), "{} (job {})", msg, f.job_rid);
    } else {
        spdlog::log(to_spdlog(l), "{} (job {}, task {})", msg, f.job_rid, f.task);
    }
}

Sink& sink() {
    static Sink s;
    return s;
}

}  // namespace

const char* to_string(Level l) {
    switch (l) {
        case Level::Trace:
            return "trace";
        case Level::Debug:
            return "debug";
        case Level::Info:
            return "info";
        case Level::Warn:
            return "warn";
        case Level::Error:
            return "error";
    }
    return "info";
}

void set_sink(Sink s) {
    sink() = std::move(s);
}

bool enabled(Level l) {
    return spdlog::should_log(to_spdlog(l));
}

void write(Level l, std::string_view msg, const Fields& fields) {
    if (!enabled(l)) return;
    if (auto& s = sink())
        s(l, msg, fields);
    else
        default_sink(l, msg, fields);
}

std::string capped(std::string_view text, size_t max) {
    if (text.size() <= max) return std::string(text);
    size_t cut = max;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return fmt::format("{} ... ({} bytes)", text.substr(0, cut), text.size());
}

}  // namespace log
}  // namespace queuer
