// Logging facade of the library. Every line the engine writes about a job carries the job's rid,
// its task and the worker's rid as fields, so that a structured sink (queuerd's logging.format:
// json | journal) can emit them as fields and a text sink can append them. The default sink
// writes through spdlog's default logger as "msg (job RID, task T)".
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace queuer::log {

enum class Level { Trace, Debug, Info, Warn, Error };
const char* to_string(Level l);  // "trace", "debug", "info", "warn", "error"

struct Fields {
    std::string_view job_rid;     // empty when the line is not about one job
    std::string_view task;        // empty when unknown
    std::string_view worker_rid;  // empty when the line is not about a worker
};

using Sink = std::function<void(Level, std::string_view msg, const Fields&)>;
// Replaces the sink (nullptr restores the default). Not thread-safe against concurrent write():
// set it once at start-up, before any engine runs.
void set_sink(Sink sink);

// True when a line at `l` would be written (spdlog's level); check before formatting debug lines.
bool enabled(Level l);
void write(Level l, std::string_view msg, const Fields& fields = {});

// `text` cut to `max` bytes (at a UTF-8 boundary) with " ... (N bytes)" appended when longer.
// Task error texts go through it before they reach a log line.
std::string capped(std::string_view text, size_t max = 512);

}  // namespace queuer::log
