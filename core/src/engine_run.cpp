// Running: what the task threads report (a start, a return), the outcome of each run (success,
// retry, failure) decided once, timeouts from the real start, cancellation of runs we hold, and
// when a schedule's next run is due.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine.hpp"
#include "queuer/crypto.hpp"
#include "queuer/json.hpp"
#include "queuer/log.hpp"
#include "uv_check.hpp"

namespace queuer {

using namespace std::chrono_literals;
using detail::Action;
using detail::Completion;
using detail::Phase;
using detail::Run;
using detail::TaskEvent;
using steady = std::chrono::steady_clock;

namespace {

// Text the database accepts in a TEXT column: no NUL bytes, valid UTF-8 (invalid bytes become
// U+FFFD), at most `max` bytes (with a note of the original size when cut).
std::string clean_text(std::string_view in, size_t max) {
    std::string out;
    out.reserve(std::min(in.size(), max) + 16);
    size_t i = 0;
    while (i < in.size() && out.size() < max) {
        auto c = static_cast<unsigned char>(in[i]);
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + static_cast<size_t>(len) <= in.size();
        for (int k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(in[i + static_cast<size_t>(k)]) & 0xC0) == 0x80;
        if (!ok) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else if (c == 0) {
            ++i;
        } else {
            out.append(in.substr(i, static_cast<size_t>(len)));
            i += static_cast<size_t>(len);
        }
    }
    if (i < in.size()) out += fmt::format(" ... (cut; {} bytes in all)", in.size());
    return out;
}

}  // namespace

void Queuer::Engine::handle_events(std::vector<TaskEvent>& events) {
    bool deadlines = false;
    auto now_t = steady::now();
    for (auto& ev : events) {
        RunPtr run = std::move(ev.run);
        auto it = runs_.find(run->id);
        bool held = it != runs_.end() && it->second == run;
        if (ev.kind == TaskEvent::Kind::Started) {
            if (!held) continue;
            run->state = Run::State::Running;
            task_started(*run);
            if (run->deadline) deadlines = true;
            continue;
        }
        run->returned = now_t;
        double secs = run->run_seconds(now_t);
        ewma_run_s_ = ewma_run_s_ < 0 ? secs : 0.9 * ewma_run_s_ + 0.1 * secs;
        if (!held) continue;
        run->state = Run::State::Returned;
        if (run->abandoned) {
            if (run->warned)
                log::write(log::Level::Warn, "task returned long after it was told to stop",
                           {run->rid, run->task, q_.worker_.rid});
            if (run->written) forget(run);
            continue;
        }
        if (ev.result.ok)
            decide_success(run, std::move(ev.result.text));
        else
            decide_failure(run, std::move(ev.result.text));
    }
    if (deadlines) arm_deadline_timer();
    maybe_claim();
    check_stop();
}

void Queuer::Engine::task_started(Run& run) {
    if (opts_.observer) {
        TimePoint due = run.scheduled_at.value_or(run.created_at);
        double wait = std::chrono::duration<double>(run.started_db() - due).count();
        opts_.observer->job_started(run.task, std::max(0.0, wait));
    }
    if (log::enabled(log::Level::Debug))
        log::write(log::Level::Debug, fmt::format("job started (attempt {})", run.attempt),
                   {run.rid, run.task, q_.worker_.rid});
}

void Queuer::Engine::decide_success(RunPtr run, std::string results) {
    if (results.empty()) results = "[]";
    std::string compact;
    try {
        compact = json::compact(results, "results");
    } catch (const Error&) {
        decide_failure(run, "task returned results that are not valid JSON");
        return;
    }
    if (opts_.max_result_bytes > 0 && compact.size() > opts_.max_result_bytes) {
        decide_failure(run,
                       fmt::format("the result of {} bytes is larger than worker.max_result_bytes "
                                   "({} bytes)",
                                   compact.size(), opts_.max_result_bytes),
                       false);
        return;
    }
    Completion c;
    c.run = run;
    c.action = Action::Succeeded;
    if (q_.cipher_) {
        c.sealed = bytea_to_text(q_.cipher_->seal(compact)).substr(2);
    } else {
        // jsonb has no room for NUL characters: say so now rather than fail the whole batch.
        if (compact.find("\\u0000") != std::string::npos) {
            decide_failure(run,
                           "the database refused the result: jsonb cannot store the character "
                           "\\u0000",
                           false);
            return;
        }
        c.results = std::move(compact);
    }
    c.next_at = next_run(*run);
    if (log::enabled(log::Level::Debug))
        log::write(log::Level::Debug, "job succeeded", {run->rid, run->task, q_.worker_.rid});
    decide(std::move(c));
}

// A retry (back to the queue as SCHEDULED after the backoff) while retries remain and the
// failure can change on another try; FAILED otherwise.
void Queuer::Engine::decide_failure(RunPtr run, std::string error, bool retryable) {
    size_t limit = opts_.max_result_bytes > 0 ? opts_.max_result_bytes : (1u << 30);
    Completion c;
    c.run = run;
    c.error = clean_text(error.empty() ? "task failed" : error, limit);
    int attempt = run->attempt;
    int max_retries = run->on_error ? run->on_error->max_retries : 0;
    log::Fields f{run->rid, run->task, q_.worker_.rid};
    if (retryable && attempt <= max_retries) {
        auto delay = run->on_error->delay_before_retry(attempt);
        c.action = Action::Retry;
        c.delay_ms = delay.count();
        log::write(log::Level::Info,
                   fmt::format("job failed (attempt {} of {}), retrying in {} ms: {}", attempt,
                               max_retries + 1, delay.count(), log::capped(c.error)),
                   f);
        arm_due_timer(delay + 5ms);
    } else {
        c.action = Action::Failed;
        c.next_at = next_run(*run);
        log::write(log::Level::Warn,
                   fmt::format("job failed (attempt {}): {}", attempt, log::capped(c.error)), f);
    }
    decide(std::move(c));
}

void Queuer::Engine::decide(Completion c) {
    c.run->decided = true;
    pending_.push_back(std::move(c));
    request_flush();
}

// The write goes out on the loop's next turn, with every outcome decided until then.
void Queuer::Engine::request_flush() {
    if (!handles_open_ || uv_is_active(reinterpret_cast<uv_handle_t*>(&flush_timer_))) return;
    detail::uv_check(uv_timer_start(
                         &flush_timer_,
                         [](uv_timer_t* t) { static_cast<Engine*>(t->data)->maybe_flush(); }, 0, 0),
                     "uv_timer_start");
}

// Stops a run we hold because its job was cancelled (the canceller wrote the outcome).
void Queuer::Engine::cancel_run(const RunPtr& run, const char* reason) {
    auto how = exec_->cancel(*run, reason);
    run->abandoned = true;
    mark_written(*run);  // not ours to write: the canceller archived the job
    if (how == detail::Executor::Stop::Withdrawn) {
        run->state = Run::State::Returned;
        log::write(log::Level::Info, "job cancelled before it started",
                   {run->rid, run->task, q_.worker_.rid});
    } else if (how == detail::Executor::Stop::Signalled) {
        log::write(log::Level::Info, "job cancelled while running; the task was told",
                   {run->rid, run->task, q_.worker_.rid});
    }
    if (run->state != Run::State::Running) forget(run);
}

void Queuer::Engine::forget(const RunPtr& run) {
    if (auto it = runs_.find(run->id); it != runs_.end() && it->second == run) runs_.erase(it);
    if (auto it = by_rid_.find(run->rid); it != by_rid_.end() && it->second == run)
        by_rid_.erase(it);
}

void Queuer::Engine::arm_deadline_timer() {
    std::optional<steady::time_point> earliest;
    for (auto& [id, run] : runs_) {
        if (run->state != Run::State::Running || !run->deadline || run->warned) continue;
        auto t = run->abandoned ? *run->deadline + 5s : *run->deadline;
        if (!earliest || t < *earliest) earliest = t;
    }
    if (!earliest) {
        detail::uv_check(uv_timer_stop(&deadline_timer_), "uv_timer_stop");
        return;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*earliest - steady::now());
    detail::uv_check(uv_timer_start(
                         &deadline_timer_,
                         [](uv_timer_t* t) { static_cast<Engine*>(t->data)->check_deadlines(); },
                         static_cast<uint64_t>(std::max<int64_t>(ms.count(), 0) + 1), 0),
                     "uv_timer_start");
}

void Queuer::Engine::check_deadlines() {
    auto now_t = steady::now();
    std::vector<RunPtr> overdue;
    for (auto& [id, run] : runs_) {
        if (run->state != Run::State::Running || !run->deadline) continue;
        if (!run->abandoned && !run->decided && *run->deadline <= now_t) {
            overdue.push_back(run);
        } else if (run->abandoned && !run->warned && *run->deadline + 5s <= now_t) {
            run->warned = true;
            log::write(log::Level::Warn,
                       "task ignores cancellation; its thread stays busy until it returns",
                       {run->rid, run->task, q_.worker_.rid});
        }
    }
    for (auto& run : overdue) {
        exec_->cancel(*run, "timed out");
        run->abandoned = true;
        decide_failure(run, fmt::format("task timed out after {}s", run->on_error->timeout));
    }
    arm_deadline_timer();
}

// When the next run of a schedule is due, or nothing when the series ends. Runs are spaced
// start + n * interval (or as the next-interval function says); when that time has passed
// already (the worker was away, the start lies in the past) the missed runs are skipped: the
// next run is the first one after now.
std::optional<TimePoint> Queuer::Engine::next_run(const Run& run) const {
    if (!run.options.schedule) return std::nullopt;
    const auto& s = *run.options.schedule;
    if (s.max_count != 0 && run.schedule_count >= s.max_count) return std::nullopt;
    TimePoint base = run.scheduled_at.value_or(run.started_db());
    TimePoint now_t = now();
    log::Fields f{run.rid, run.task, q_.worker_.rid};
    if (!s.next_interval.empty()) {
        auto it = nifs_.find(s.next_interval);
        if (it == nifs_.end()) {
            log::write(log::Level::Error,
                       fmt::format("next-interval function \"{}\" is not registered here; the "
                                   "series ends",
                                   s.next_interval),
                       f);
            return std::nullopt;
        }
        try {
            TimePoint t = it->second(base, run.schedule_count);
            for (int k = 1; t <= now_t && k <= 10000; ++k) {
                TimePoint next = it->second(t, run.schedule_count + k);
                if (next <= t) break;  // a function that does not move forward
                t = next;
            }
            return t > now_t ? t : now_t + std::chrono::milliseconds(1);
        } catch (const std::exception& e) {
            log::write(log::Level::Error,
                       fmt::format("next-interval function \"{}\" failed, the series ends: {}",
                                   s.next_interval, e.what()),
                       f);
            return std::nullopt;
        }
    }
    auto step = std::chrono::duration_cast<std::chrono::microseconds>(s.interval);
    if (step.count() <= 0) return std::nullopt;
    TimePoint start = s.start.value_or(base);
    int64_t n = run.schedule_count;
    if (start + step * n <= now_t) n = (now_t - start) / step + 1;  // skip what was missed
    return start + step * n;
}

}  // namespace queuer
