// Running: hand claimed jobs to the task pool, collect what tasks return, decide retry or
// failure, enforce timeouts, hold each slot until its outcome is written.
#include <fmt/format.h>

#include "engine_util.hpp"
#include "queuer/crypto.hpp"

namespace queuer {

void Queuer::Engine::dispatch(Job job) {
    ++slots_busy;
    Running r;
    r.run = ++next_run_id;
    r.on_error = job.options.on_error ? job.options.on_error : q.default_on_error_;
    JobContext::Init init;
    init.rid = job.rid;
    init.task_name = job.task_name;
    init.attempt = job.attempts;
    init.parameters = job.parameters;
    init.parameters_keyed = job.parameters_keyed;
    init.client = &q;
    if (r.on_error && r.on_error->timeout > 0) {
        r.deadline = steady::now() +
                     std::chrono::duration_cast<steady::duration>(Seconds(r.on_error->timeout));
        init.deadline = r.deadline;
    }
    r.ctx = std::make_shared<JobContext>(std::move(init));
    uint64_t run = r.run;
    std::string unreadable = job.status == "UNREADABLE" ? job.error : "";
    auto it = tasks.find(job.task_name);
    std::string task_name = job.task_name;
    r.job = std::move(job);
    auto ctx = r.ctx;
    bool has_deadline = r.deadline.has_value();
    running[run] = std::move(r);
    if (!unreadable.empty() || it == tasks.end()) {
        ++threads_running;  // handle_done counts it back
        TaskDone d;
        d.run = run;
        d.error = unreadable.empty()
                      ? fmt::format("task \"{}\" is not registered on this worker", task_name)
                      : unreadable;
        handle_done(std::move(d));
        return;
    }
    if (recent_cancels.count(ctx->rid())) {
        // Cancelled while our claim was on its way back: the archive has it already.
        ctx->cancel("cancelled");
        auto& cancelled = running[run];
        cancelled.abandoned = true;
        cancelled.persisted = true;
        ++threads_running;  // handle_done counts it back
        TaskDone d;
        d.run = run;
        handle_done(std::move(d));
        spdlog::info("job {}: cancelled before it started", ctx->rid());
        return;
    }
    spdlog::debug("job {}: started {} (attempt {})", ctx->rid(), ctx->task_name(), ctx->attempt());
    running[run].started = steady::now();
    if (opts.observer) {
        const Job& j = running[run].job;
        auto due = j.scheduled_at.value_or(j.created_at);
        opts.observer->job_started(
            j.task_name, std::max(0.0, std::chrono::duration<double>(now() - due).count()));
    }
    ++threads_running;
    pool.submit([sink = sink, ctx, fn = it->second, run] {
        TaskDone d;
        d.run = run;
        try {
            d.results = fn(*ctx);
            d.ok = true;
        } catch (const std::exception& e) {
            d.error = e.what();
            if (d.error.empty()) d.error = "task failed";
        } catch (...) {
            d.error = "task threw a non-standard exception";
        }
        sink->push(std::move(d));
    });
    if (has_deadline) arm_deadline_timer();
}

// By rid, never by id: ids repeat across schemas, and NOTIFY channels are database-wide.
Queuer::Engine::Running* Queuer::Engine::find_job(const std::string& rid) {
    for (auto& [run, r] : running)
        if (r.job.rid == rid && !r.abandoned) return &r;
    return nullptr;
}

void Queuer::Engine::remember_cancel(const std::string& rid) {
    auto now_t = steady::now();
    while (!recent_cancel_order.empty() &&
           (recent_cancel_order.size() >= 10000 ||
            now_t - recent_cancels[recent_cancel_order.front()] > 60s)) {
        recent_cancels.erase(recent_cancel_order.front());
        recent_cancel_order.pop_front();
    }
    if (recent_cancels.emplace(rid, now_t).second) recent_cancel_order.push_back(rid);
}

void Queuer::Engine::release_if_done(uint64_t run) {
    auto it = running.find(run);
    if (it == running.end() || !it->second.thread_done || !it->second.persisted) return;
    running.erase(it);
    --slots_busy;
    publish_state();
    request_claim();
}

void Queuer::Engine::handle_done(TaskDone d) {
    --threads_running;
    auto it = running.find(d.run);
    if (it == running.end()) return;
    Running& r = it->second;
    r.thread_done = true;
    if (r.abandoned) {
        if (r.warned)
            spdlog::warn("job {}: task {} returned long after it was told to stop", r.job.rid,
                         r.job.task_name);
        release_if_done(d.run);
        return;
    }
    if (d.ok) {
        std::string results = d.results.empty() ? "[]" : d.results;
        if (!json::is_valid(results)) {
            complete_failure(r, "task returned results that are not valid JSON");
        } else {
            Completion c;
            c.id = r.job.id;
            c.run = r.run;
            c.action = "SUCCEEDED";
            if (q.cipher_)
                c.sealed = bytea_to_text(q.cipher_->seal(results)).substr(2);
            else
                c.results = json::compact(results, "results");
            c.next_at = next_run(r.job);
            spdlog::debug("job {}: {} succeeded", r.job.rid, r.job.task_name);
            pending.push_back(std::move(c));
        }
    } else {
        complete_failure(r, d.error);
    }
    request_flush();
}

// Decides between a retry (back to the queue as SCHEDULED after the backoff) and FAILED.
void Queuer::Engine::complete_failure(Running& r, const std::string& error) {
    Completion c;
    c.id = r.job.id;
    c.run = r.run;
    c.error = error;
    int attempt = r.job.attempts;
    int max_retries = r.on_error ? r.on_error->max_retries : 0;
    if (attempt <= max_retries) {
        auto delay = r.on_error->delay_before_retry(attempt);
        c.action = "RETRY";
        c.delay_ms = delay.count();
        spdlog::info("job {}: {} failed (attempt {} of {}), retrying in {} ms: {}", r.job.rid,
                     r.job.task_name, attempt, max_retries + 1, delay.count(), error);
        arm_due_timer(delay + 5ms);
    } else {
        c.action = "FAILED";
        c.next_at = next_run(r.job);
        spdlog::info("job {}: {} failed: {}", r.job.rid, r.job.task_name, error);
    }
    pending.push_back(std::move(c));
}

void Queuer::Engine::arm_deadline_timer() {
    std::optional<steady::time_point> earliest;
    for (auto& [id, r] : running) {
        if (!r.deadline) continue;
        auto t = r.abandoned ? *r.deadline + 5s : *r.deadline;
        if (r.abandoned && r.warned) continue;
        if (!earliest || t < *earliest) earliest = t;
    }
    if (!earliest) {
        uv_timer_stop(&deadline_timer);
        return;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*earliest - steady::now());
    uv_timer_start(
        &deadline_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->check_deadlines(); },
        static_cast<uint64_t>(std::max<int64_t>(ms.count(), 0) + 1), 0);
}

void Queuer::Engine::check_deadlines() {
    auto now = steady::now();
    for (auto& [id, r] : running) {
        if (!r.deadline) continue;
        if (!r.abandoned && *r.deadline <= now) {
            r.ctx->cancel("timed out");
            r.abandoned = true;
            complete_failure(r, fmt::format("task timed out after {}s", r.on_error->timeout));
        } else if (r.abandoned && !r.warned && *r.deadline + 5s <= now) {
            r.warned = true;
            spdlog::warn(
                "job {}: task {} ignores cancellation; its thread stays busy until it "
                "returns",
                r.job.rid, r.job.task_name);
        }
    }
    request_flush();
    arm_deadline_timer();
}

}  // namespace queuer
