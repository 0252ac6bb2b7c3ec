// The worker engine's loop: claim, dispatch, complete, retry, time out, cancel, schedule,
// heartbeat, listen. See engine.hpp for who owns what.
#include "engine.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine_sql.hpp"
#include "queuer/crypto.hpp"
#include "queuer/error.hpp"

namespace queuer {

using namespace std::chrono_literals;
using detail::Completion;
using detail::queue_work;
using detail::TaskDone;
using steady = std::chrono::steady_clock;

namespace {

template <class T>
T* self(uv_handle_t* h) {
    return static_cast<T*>(h->data);
}

std::chrono::milliseconds backoff(std::chrono::milliseconds prev) {
    if (prev.count() == 0) return 250ms;
    return std::min<std::chrono::milliseconds>(prev * 2, 30s);
}

db::Connection& ensure(std::unique_ptr<db::Connection>& c, const DatabaseConfig& cfg) {
    if (!c || !c->ok()) c = std::make_unique<db::Connection>(db::Connection::open(cfg));
    return *c;
}

void drop_if_broken(std::unique_ptr<db::Connection>& c, const Error& e) {
    if (e.kind() == ErrorKind::Connection || (c && !c->ok())) c.reset();
}

}  // namespace

Queuer::Engine::Engine(Queuer& q_, EngineOptions o) : q(q_), opts(o) {
    uv_loop_init(&loop);
    loop.data = this;
    uv_async_init(&loop, &async, [](uv_async_t* h) { self<Engine>((uv_handle_t*)h)->on_async(); });
    async.data = this;
    for (uv_timer_t* t : {&poll_timer, &due_timer, &deadline_timer, &heartbeat_timer, &retry_timer,
                          &listen_timer, &tick_timer, &master_timer, &flush_timer}) {
        uv_timer_init(&loop, t);
        t->data = this;
    }
    sink->async = &async;
}

Queuer::Engine::~Engine() {
    if (thread.joinable()) stop(0ms);
    if (!started) {
        // Never started: close the handles we initialised and release the loop.
        {
            std::lock_guard g(sink->mu);
            sink->async = nullptr;
        }
        close_handles();
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
}

void Queuer::Engine::post(std::function<void()> fn) {
    {
        std::lock_guard g(cmd_mu);
        commands.push_back(std::move(fn));
    }
    std::lock_guard g(sink->mu);
    if (sink->async) uv_async_send(sink->async);
}

void Queuer::Engine::start(bool claim) {
    claim_jobs = claim;
    accepting = claim;
    connect_listener();  // throws when the database cannot be reached: start() fails clearly
    uv_timer_start(
        &heartbeat_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->heartbeat(); },
        static_cast<uint64_t>(opts.heartbeat_interval.count()),
        static_cast<uint64_t>(opts.heartbeat_interval.count()));
    if (claim_jobs) {
        uv_timer_start(
            &poll_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->request_claim(); }, 0,
            static_cast<uint64_t>(opts.poll_interval.count()));
    }
    auto tick = [](uv_timer_t* t) {
        self<Engine>((uv_handle_t*)t)->last_tick_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
                .count();
    };
    tick(&tick_timer);
    uv_timer_start(&tick_timer, tick, 1000, 1000);
    if (opts.master && claim_jobs) {
        auto every =
            std::chrono::duration_cast<std::chrono::milliseconds>(opts.master->master_poll_interval)
                .count();
        uv_timer_start(
            &master_timer, [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->master_tick(); }, 0,
            static_cast<uint64_t>(std::max<int64_t>(every, 100)));
    }
    started = true;
    thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
}

// ---- commands and completions ----

void Queuer::Engine::on_async() {
    std::vector<std::function<void()>> cmds;
    {
        std::lock_guard g(cmd_mu);
        cmds.swap(commands);
    }
    for (auto& c : cmds) c();
    std::vector<TaskDone> done;
    {
        std::lock_guard g(sink->mu);
        done.swap(sink->done);
    }
    for (auto& d : done) handle_done(std::move(d));
}

void Queuer::Engine::publish_state() {
    busy_count = slots_busy;
    std::lock_guard g(state_mu);
    // A claim on its way back counts as busy: stop() must not decide before its jobs are in.
    published_busy = slots_busy + (claim_in_flight ? 1 : 0);
    published_flushed = pending.empty() && !finish_in_flight;
    state_cv.notify_all();
}

// ---- claiming ----

void Queuer::Engine::request_claim() {
    if (!claim_jobs || !accepting || task_names.empty()) return;
    int free = max_concurrency.load() - slots_busy;
    if (free <= 0) return;
    if (claim_in_flight) {
        claim_again = true;
        return;
    }
    start_claim(free);
}

void Queuer::Engine::start_claim(int limit) {
    claim_in_flight = true;
    claim_again = false;
    struct Out {
        std::vector<Job> jobs;
        std::optional<double> next_due_s;
        std::optional<Error> error;
    };
    auto out = std::make_shared<Out>();
    db::Params p;
    p.add_array(task_names).add_array(nif_names).add(limit).add(q.worker_.id).add(q.worker_.rid);
    db::Params pd;
    pd.add_array(task_names).add_array(nif_names);
    queue_work(
        &loop,
        [this, out, p = std::move(p), pd = std::move(pd), limit] {
            try {
                auto& c = ensure(claim_conn, q.cfg_);
                auto r = c.exec(detail::kClaim, p);
                read_claimed(r, out->jobs);
                if (static_cast<int>(out->jobs.size()) < limit) {
                    auto d = c.exec(detail::kNextDue, pd);
                    if (d.rows() > 0 && !d.is_null(0, 0))
                        out->next_due_s = std::stod(std::string(d.get(0, 0)));
                }
            } catch (const Error& e) {
                drop_if_broken(claim_conn, e);
                out->error = e;
            }
        },
        [this, out, limit] {
            claim_in_flight = false;
            if (out->error) {
                if (claim_failures++ % 10 == 0)
                    spdlog::warn("claiming jobs failed, will retry: {}", out->error->what());
                arm_due_timer(1s);
                publish_state();
                return;
            }
            claim_failures = 0;
            for (auto& j : out->jobs) dispatch(std::move(j));
            if (out->next_due_s) {
                auto ms = std::chrono::milliseconds(
                    static_cast<int64_t>(std::max(0.0, *out->next_due_s) * 1000.0) + 1);
                arm_due_timer(ms);
            }
            if (claim_again || static_cast<int>(out->jobs.size()) == limit) request_claim();
            publish_state();
        });
}

void Queuer::Engine::read_claimed(const db::Result& r, std::vector<Job>& out) {
    for (int i = 0; i < r.rows(); ++i) {
        try {
            out.push_back(q.row_to_job(r, i));
        } catch (const Error& e) {
            // Claimed but unreadable (e.g. sealed with another key): dispatch fails it.
            Job j;
            j.id = r.i64(i, 0);
            j.rid = r.str(i, 1);
            j.task_name = r.str(i, 5);
            j.error = e.what();
            j.status = "UNREADABLE";
            out.push_back(std::move(j));
        }
    }
}

void Queuer::Engine::arm_due_timer(std::chrono::milliseconds in) {
    auto at = steady::now() + in;
    if (due_at && *due_at <= at && uv_is_active((uv_handle_t*)&due_timer)) return;
    due_at = at;
    uv_timer_start(
        &due_timer,
        [](uv_timer_t* t) {
            auto* e = self<Engine>((uv_handle_t*)t);
            e->due_at.reset();
            e->request_claim();
        },
        static_cast<uint64_t>(std::max<int64_t>(in.count(), 0)), 0);
}

// ---- running ----

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

std::optional<TimePoint> Queuer::Engine::next_run(const Job& j) {
    if (!j.options.schedule) return std::nullopt;
    const auto& s = *j.options.schedule;
    if (s.max_count != 0 && j.schedule_count >= s.max_count) return std::nullopt;
    TimePoint base = j.scheduled_at.value_or(j.started_at.value_or(j.created_at));
    if (!s.next_interval.empty()) {
        auto it = nifs.find(s.next_interval);
        if (it == nifs.end()) {
            spdlog::error(
                "job {}: next-interval function \"{}\" is not registered here; the "
                "series ends",
                j.rid, s.next_interval);
            return std::nullopt;
        }
        try {
            return it->second(base, j.schedule_count);
        } catch (const std::exception& e) {
            spdlog::error("job {}: next-interval function \"{}\" failed, the series ends: {}",
                          j.rid, s.next_interval, e.what());
            return std::nullopt;
        }
    }
    if (s.interval.count() <= 0) return std::nullopt;
    // start + count * interval: evenly spaced, whatever retries did to scheduled_at.
    TimePoint start = s.start.value_or(base);
    return start +
           std::chrono::duration_cast<std::chrono::microseconds>(s.interval) * j.schedule_count;
}

// ---- timeouts ----

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

// ---- finishing ----

void Queuer::Engine::request_flush() {
    if (finish_in_flight || pending.empty()) {
        publish_state();
        return;
    }
    if (uv_is_active((uv_handle_t*)&retry_timer)) return;  // backing off after a failure
    // Tasks still running may finish within moments (short tasks dispatched together finish
    // together): wait up to finish_batch_delay so that one statement carries them all.
    if (threads_running > 0 && !flush_due && opts.finish_batch_delay.count() > 0 && accepting) {
        if (!uv_is_active((uv_handle_t*)&flush_timer))
            uv_timer_start(
                &flush_timer,
                [](uv_timer_t* t) {
                    auto* e = self<Engine>((uv_handle_t*)t);
                    e->flush_due = true;
                    e->request_flush();
                },
                static_cast<uint64_t>(opts.finish_batch_delay.count()), 0);
        return;
    }
    flush_due = false;
    uv_timer_stop(&flush_timer);
    finish_in_flight = true;
    auto batch = std::make_shared<std::vector<Completion>>();
    batch->swap(pending);
    std::vector<std::string> ids, actions, results, errors, delays, sealed, next_ids, next_ats;
    int freed = 0;
    for (const auto& c : *batch) {
        ids.push_back(std::to_string(c.id));
        actions.push_back(c.action);
        results.push_back(c.results);
        errors.push_back(c.error);
        delays.push_back(std::to_string(c.delay_ms));
        sealed.push_back(c.sealed);
        if (c.next_at) {
            next_ids.push_back(std::to_string(c.id));
            next_ats.push_back(format_time(*c.next_at));
        }
        if (auto it = running.find(c.run); it != running.end() && it->second.thread_done) ++freed;
    }
    // Refill the slots this batch frees in the same round trip, unless a claim is under way.
    int limit = 0;
    if (claim_jobs && accepting && !claim_in_flight && !task_names.empty())
        limit = std::max(0, max_concurrency.load() - slots_busy + freed);
    if (limit > 0) {
        claim_in_flight = true;
        claim_again = false;
    }
    db::Params p;
    p.add_array(ids).add_array(actions).add_array(results).add_array(errors).add_array(delays);
    p.add_array(sealed).add(q.worker_.rid).add_array(next_ids).add_array(next_ats);
    p.add_array(task_names).add_array(nif_names).add(limit).add(q.worker_.id);
    struct Out {
        std::vector<Job> claimed;
        std::optional<Error> error;
    };
    auto out = std::make_shared<Out>();
    queue_work(
        &loop,
        [this, p = std::move(p), out] {
            try {
                auto& c = ensure(finish_conn, q.cfg_);
                auto r = c.exec(detail::kFinish, p);
                read_claimed(r, out->claimed);
            } catch (const Error& e) {
                drop_if_broken(finish_conn, e);
                out->error = e;
            }
        },
        [this, batch, out, limit] {
            finish_in_flight = false;
            bool asked_meanwhile = claim_again;
            if (out->error) {
                // Keep every result; write them when the database answers again.
                finish_backoff = backoff(finish_backoff);
                if (finish_failures++ % 10 == 0)
                    spdlog::warn("writing {} job results failed, retrying in {} ms: {}",
                                 batch->size(), finish_backoff.count(), out->error->what());
                pending.insert(pending.begin(), batch->begin(), batch->end());
                uv_timer_start(
                    &retry_timer,
                    [](uv_timer_t* t) { self<Engine>((uv_handle_t*)t)->request_flush(); },
                    static_cast<uint64_t>(finish_backoff.count()), 0);
                if (limit > 0) {
                    claim_in_flight = false;
                    arm_due_timer(1s);
                }
            } else {
                finish_backoff = 0ms;
                finish_failures = 0;
                for (const auto& c : *batch) {
                    if (auto it = running.find(c.run); it != running.end()) {
                        it->second.persisted = true;
                        release_if_done(c.run);
                    }
                    if (c.next_at) {
                        auto in = std::chrono::duration_cast<std::chrono::milliseconds>(*c.next_at -
                                                                                        now());
                        arm_due_timer(std::max(in, 0ms) + 5ms);
                    }
                }
                if (limit > 0) {
                    claim_in_flight = false;
                    for (auto& j : out->claimed) dispatch(std::move(j));
                    // More may be waiting: the batch filled every slot, or someone asked.
                    if (asked_meanwhile || static_cast<int>(out->claimed.size()) == limit)
                        request_claim();
                }
            }
            request_flush();
            publish_state();
        });
}

// ---- heartbeat and worker status ----

void Queuer::Engine::heartbeat() {
    if (heartbeat_in_flight) return;
    heartbeat_in_flight = true;
    struct Out {
        std::optional<std::string> status;
        std::optional<Error> error;
    };
    auto out = std::make_shared<Out>();
    db::Params p;
    p.add(q.worker_.rid).add(slots_busy);
    queue_work(
        &loop,
        [this, out, p = std::move(p)] {
            try {
                auto& c = ensure(control_conn, q.cfg_);
                auto r = c.exec(detail::kHeartbeat, p);
                if (r.rows() > 0) out->status = r.str(0, 0);
            } catch (const Error& e) {
                drop_if_broken(control_conn, e);
                out->error = e;
            }
        },
        [this, out] {
            heartbeat_in_flight = false;
            if (out->error) {
                if (heartbeat_failures++ % 20 == 0)
                    spdlog::warn("heartbeat failed: {}", out->error->what());
                return;
            }
            heartbeat_failures = 0;
            if (!out->status) {
                spdlog::error("worker row {} is gone (deleted by the master?); stopping",
                              q.worker_.rid);
                apply_worker_status(std::string(worker_status::stopped));
                return;
            }
            apply_worker_status(*out->status);
        });
}

// Tells every running task to stop and decides its job's outcome now (`action`); returns how
// many. Their slots free up once the tasks return and the outcome is written.
int Queuer::Engine::abandon_running(const char* reason, const char* action, const char* error) {
    int n = 0;
    for (auto& [id, r] : running) {
        if (r.abandoned) continue;
        r.ctx->cancel(reason);
        r.abandoned = true;
        Completion c;
        c.id = r.job.id;
        c.run = r.run;
        c.action = action;
        c.error = error;
        pending.push_back(std::move(c));
        ++n;
    }
    return n;
}

void Queuer::Engine::apply_worker_status(const std::string& status) {
    if (status == worker_status::stopped) {
        if (stopped_notified) return;
        // Immediate stop from elsewhere: cancel what runs, end those jobs CANCELLED.
        accepting = false;
        abandon_running("cancelled", "CANCELLED", "worker stopped");
        request_flush();
        stopped_notified = true;
        spdlog::info("worker {} was stopped", q.worker_.rid);
        if (on_stopped) on_stopped();
    } else if (status == worker_status::stopping) {
        if (!graceful_stop_requested) {
            graceful_stop_requested = true;
            accepting = false;
            spdlog::info("worker {} is stopping gracefully: no new jobs, {} running", q.worker_.rid,
                         slots_busy);
        }
        if (slots_busy == 0 && !stopped_notified) {
            stopped_notified = true;
            if (on_stopped) on_stopped();
        }
    }
}

// ---- notifications ----

void Queuer::Engine::on_notification(const db::Notification& n) {
    rapidjson::Document d;
    d.Parse(n.payload.c_str());
    if (!d.IsObject()) return;
    JobEvent ev;
    if (d.HasMember("id") && d["id"].IsInt64()) ev.id = d["id"].GetInt64();
    if (d.HasMember("rid") && d["rid"].IsString()) ev.rid = d["rid"].GetString();
    if (d.HasMember("status") && d["status"].IsString()) ev.status = d["status"].GetString();
    if (n.channel == "job") {
        if (ev.status == status::queued || ev.status == status::scheduled) request_claim();
        if (on_update) on_update(ev);
    } else if (n.channel == "job_archive") {
        if (ev.status == status::cancelled) {
            if (Running* r = find_job(ev.rid)) {
                r->ctx->cancel("cancelled");
                r->abandoned = true;
                r->persisted = true;  // the canceller wrote the outcome
                release_if_done(r->run);
                spdlog::info("job {}: cancelled while running; the task was told", ev.rid);
            } else if (claim_jobs) {
                remember_cancel(ev.rid);  // a claim of it may still be on its way back
            }
        }
        if (on_ended) on_ended(ev);
    } else if (n.channel == "worker") {
        if (ev.rid == q.worker_.rid) heartbeat();
    }
}

void Queuer::Engine::connect_listener() {
    listen_conn = open_listener(q.cfg_);
    attach_listener();
}

std::unique_ptr<db::Connection> Queuer::Engine::open_listener(const DatabaseConfig& cfg) {
    auto c = std::make_unique<db::Connection>(db::Connection::open(cfg));
    for (const char* ch : {"job", "job_archive", "worker"}) c->listen(ch);
    return c;
}

void Queuer::Engine::attach_listener() {
    uv_poll_init(&loop, &listen_poll, listen_conn->socket());
    listen_poll.data = this;
    listen_poll_open = true;
    uv_poll_start(&listen_poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
        auto* e = self<Engine>((uv_handle_t*)h);
        std::vector<db::Notification> notes;
        bool broken = status < 0;
        if (!broken) {
            try {
                notes = e->listen_conn->drain_notifications();
            } catch (const Error& err) {
                spdlog::warn("lost the database listener: {}; reconnecting", err.what());
                broken = true;
            }
        }
        for (const auto& n : notes) e->on_notification(n);
        if (broken) e->schedule_listener_reconnect();
    });
}

// Reconnects off the loop thread (a connect may wait up to connect_timeout), with backoff;
// logs the outage once, then every tenth attempt.
void Queuer::Engine::schedule_listener_reconnect() {
    if (listen_poll_open) {
        listen_poll_open = false;
        uv_poll_stop(&listen_poll);
        uv_close((uv_handle_t*)&listen_poll, nullptr);
    }
    listen_backoff = backoff(listen_backoff);
    uv_timer_start(
        &listen_timer,
        [](uv_timer_t* t) {
            auto* e = self<Engine>((uv_handle_t*)t);
            struct Out {
                std::unique_ptr<db::Connection> conn;
                std::optional<Error> error;
            };
            auto out = std::make_shared<Out>();
            detail::queue_work(
                &e->loop,
                [out, cfg = e->q.cfg_] {
                    try {
                        out->conn = open_listener(cfg);
                    } catch (const Error& err) {
                        out->error = err;
                    }
                },
                [e, out] {
                    if (uv_is_closing((uv_handle_t*)&e->async)) return;  // shutting down
                    if (out->error) {
                        if (e->listen_failures++ % 10 == 0)
                            spdlog::warn("database still unreachable: {}", out->error->what());
                        e->schedule_listener_reconnect();
                        return;
                    }
                    e->listen_conn = std::move(out->conn);
                    e->attach_listener();
                    e->listen_backoff = 0ms;
                    e->listen_failures = 0;
                    spdlog::info("database listener reconnected");
                    e->request_claim();  // catch up on what we may have missed
                    e->request_flush();
                });
        },
        static_cast<uint64_t>(listen_backoff.count()), 0);
}

// ---- shutdown ----

void Queuer::Engine::close_handles() {
    auto close = [](auto* h) {
        if (!uv_is_closing((uv_handle_t*)h)) uv_close((uv_handle_t*)h, nullptr);
    };
    close(&async);
    for (uv_timer_t* t : {&poll_timer, &due_timer, &deadline_timer, &heartbeat_timer, &retry_timer,
                          &listen_timer, &tick_timer, &master_timer, &flush_timer})
        close(t);
    if (listen_poll_open) {
        listen_poll_open = false;
        close(&listen_poll);
    }
}

void Queuer::Engine::stop(std::chrono::milliseconds grace) {
    if (!thread.joinable()) return;
    // 1. No new claims.
    post([this] {
        accepting = false;
        uv_timer_stop(&poll_timer);
        uv_timer_stop(&due_timer);
        publish_state();
    });
    // 2. Let running tasks finish within the grace period.
    {
        std::unique_lock lk(state_mu);
        state_cv.wait_for(lk, grace, [&] { return published_busy == 0; });
    }
    // 3. Tell the rest to stop and put their jobs back in the queue for another worker.
    post([this] {
        int n = abandon_running("shutting down", "REQUEUE",
                                "worker shut down before the task finished");
        if (n) spdlog::info("shutdown: {} running jobs put back in the queue", n);
        uv_timer_stop(&retry_timer);
        request_flush();
        publish_state();
    });
    // 4. Wait (bounded) until every result is written.
    {
        std::unique_lock lk(state_mu);
        if (!state_cv.wait_for(lk, 15s, [&] { return published_flushed; }))
            spdlog::error(
                "shutdown: some job results could not be written; those jobs stay "
                "RUNNING until the master recovers them");
    }
    // 5. Close the loop.
    post([this] {
        {
            std::lock_guard g(sink->mu);
            sink->async = nullptr;
        }
        close_handles();
    });
    thread.join();
    if (master) {
        try {
            db::Params p;
            p.add(q.worker_.rid);
            q.pool().acquire()->exec(detail::kReleaseMaster, p);
            spdlog::info("released the master lock");
        } catch (const Error& e) {
            spdlog::warn("could not release the master lock (it expires by itself): {}", e.what());
        }
        master = false;
    }
    size_t stuck = pool.shutdown(5s);
    stuck_threads = stuck;
    if (stuck)
        spdlog::warn("shutdown: {} task threads ignore cancellation and were left running", stuck);
}

}  // namespace queuer
