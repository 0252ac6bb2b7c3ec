// The example plugin (libqueuer_examples.so): the tasks tests, benches and users rely on, written
// with the C++ layer of the plugin SDK. See docs/plugin-guide.md for what each one does.
#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include <queuer/plugin.hpp>

namespace {

using queuer::plugin::Job;
using queuer::plugin::TimePoint;
using namespace std::chrono_literals;

// echo: results = the positional parameters as a JSON array when there are no keyed parameters,
// else that array with the keyed object appended as its last element:
//   [1,"a"] {}        -> [1,"a"]
//   [1,"a"] {"k":2}   -> [1,"a",{"k":2}]
std::string echo(Job& job) {
    const auto& p = job.params();
    if (p.keyed_object().ObjectEmpty()) return queuer::plugin::to_json(p.positional());
    std::string out = queuer::plugin::to_json(p.positional());
    std::string keyed = queuer::plugin::to_json(p.keyed_object());
    out.pop_back();  // ']'
    if (!p.positional().Empty()) out += ',';
    out += keyed;
    out += ']';
    return out;
}

// noop: nothing, no result (results []).
std::string noop(Job&) {
    return {};
}

// sleep: sleeps parameter 0 milliseconds, checking for cancellation every 5 ms; fails with
// "cancelled" when the job is cancelled (or times out) meanwhile. No result.
std::string sleep_task(Job& job) {
    auto ms = job.params().get<int64_t>(0);
    if (ms < 0) throw queuer::plugin::ParamError("parameter 0 (milliseconds) must be >= 0");
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (true) {
        if (job.cancelled()) throw std::runtime_error("cancelled");
        auto now = std::chrono::steady_clock::now();
        if (now >= until) break;
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(5ms, until - now));
    }
    return {};
}

// fail: always fails; the error is parameter 0 (a string as is, anything else as JSON text).
std::string fail(Job& job) {
    const auto& p = job.params();
    if (!p.has(0)) throw std::runtime_error("fail: no error text given");
    const auto& v = p.at(0);
    if (v.IsString()) throw std::runtime_error(std::string(v.GetString(), v.GetStringLength()));
    throw std::runtime_error(queuer::plugin::to_json(v));
}

// spawn: adds one child echo job with parameters ["child", <this job's rid>]; results = [child
// rid].
std::string spawn(Job& job) {
    std::string params = queuer::plugin::json_array(
        {queuer::plugin::json_string("child"), queuer::plugin::json_string(job.rid())});
    std::string child = job.add_sub_job("echo", params);
    job.info("spawned child job " + child);
    return queuer::plugin::json_array({queuer::plugin::json_string(child)});
}

// crash: dies on purpose, for crash-isolation tests: parameter 0 = "segv" (SIGSEGV), "abort"
// (SIGABRT) or "exit" (exit status 3). Never use it with `isolation: thread`.
std::string crash(Job& job) {
    std::string how = job.params().get_or<std::string>(0, "segv");
    if (how == "segv") {
        // raise() rather than a null dereference: the sanitizers would turn that into a report
        // and an exit status instead of the signal a real crash gives.
        std::signal(SIGSEGV, SIG_DFL);
        std::raise(SIGSEGV);
    } else if (how == "abort") {
        std::abort();
    } else if (how == "exit") {
        std::_Exit(3);
    }
    throw queuer::plugin::ParamError("crash: parameter 0 must be \"segv\", \"abort\" or \"exit\"");
}

// ignore_cancel: sleeps parameter 0 milliseconds without ever checking for cancellation (timeout
// tests: only process isolation can stop it early).
std::string ignore_cancel(Job& job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(job.params().get<int64_t>(0)));
    return {};
}

// The next time strictly after `prev` at which the wall clock in `zone` shows `time_of_day`.
// In a DST gap the time that does not exist moves to the end of the gap; in an overlap the
// earlier of the two instants is used.
TimePoint next_wall_clock_after(TimePoint prev, const date::time_zone* zone,
                                std::chrono::minutes time_of_day) {
    auto local = zone->to_local(prev);
    auto day = date::floor<date::days>(local);
    for (int i = 0; i < 3; ++i, day += date::days(1)) {
        auto candidate = zone->to_sys(day + time_of_day, date::choose::earliest);
        auto next = std::chrono::time_point_cast<std::chrono::microseconds>(candidate);
        if (next > prev) return next;
    }
    throw std::runtime_error("no next wall-clock time found");
}

struct WallClock {
    const date::time_zone* zone = nullptr;
    std::chrono::minutes time_of_day{0};
};

// "HH:MM Area/City" (e.g. "09:00 Europe/Berlin"); throws naming the variable.
WallClock parse_wall_clock(const std::string& text, const char* var) {
    WallClock wc;
    int h = 0, m = 0;
    char zone[128] = {0};
    if (std::sscanf(text.c_str(), "%d:%d %127s", &h, &m, zone) != 3 || h < 0 || h > 23 || m < 0 ||
        m > 59)
        throw std::runtime_error(std::string(var) + "=\"" + text +
                                 "\" is not \"HH:MM Area/City\" (e.g. \"09:00 Europe/Berlin\")");
    wc.time_of_day = std::chrono::hours(h) + std::chrono::minutes(m);
    try {
        wc.zone = date::locate_zone(zone);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string(var) + ": unknown time zone \"" + zone +
                                 "\": " + e.what());
    }
    return wc;
}

}  // namespace

QUEUER_PLUGIN_CPP("examples", "1.0.0", reg) {
    reg.task("echo", echo);
    reg.task("noop", noop);
    reg.task("sleep", sleep_task);
    reg.task("fail", fail);
    reg.task("spawn", spawn);
    reg.task("crash", crash);
    reg.task("ignore_cancel", ignore_cancel);

    // Every day at 09:00 Berlin time (CET/CEST).
    const date::time_zone* berlin = date::locate_zone("Europe/Berlin");
    reg.next_interval("daily_0900_europe_berlin", [berlin](TimePoint prev, int) {
        return next_wall_clock_after(prev, berlin, std::chrono::hours(9));
    });

    // Every day at the wall-clock time and zone in QUEUER_EXAMPLES_WALL_CLOCK, read once at load
    // ("HH:MM Area/City"; default "00:00 UTC"). A malformed value refuses the plugin.
    const char* var = "QUEUER_EXAMPLES_WALL_CLOCK";
    const char* env = std::getenv(var);
    WallClock wc = parse_wall_clock(env && *env ? env : "00:00 UTC", var);
    reg.next_interval("next_wall_clock", [wc](TimePoint prev, int) {
        return next_wall_clock_after(prev, wc.zone, wc.time_of_day);
    });
}
