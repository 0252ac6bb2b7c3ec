// Claiming: one statement takes as many jobs as the free task threads plus the local queue's
// target (jobs claimed ahead), due jobs only, in creation order, FOR UPDATE SKIP LOCKED. The
// rows are read by column name into Runs and handed to the executor. When a claim comes back
// short the worker waits for a wake-up (a notification, the poll, the next due time) instead of
// asking again.
#include <fmt/format.h>

#include <algorithm>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "queuer/crypto.hpp"
#include "queuer/log.hpp"
#include "uv_check.hpp"

namespace queuer {

using namespace std::chrono_literals;
using detail::Action;
using detail::Completion;
using detail::Phase;
using detail::Run;
using steady = std::chrono::steady_clock;

namespace detail {

// Where kClaim's columns are in its result, looked up once per result.
struct ClaimColumns {
    int id, rid, task, options, parameters, keyed, parameters_enc, keyed_enc, scheduled_at,
        started_at, schedule_count, attempts, created_at;
    static ClaimColumns of(const db::Result& r) {
        return {r.column("id"),
                r.column("rid"),
                r.column("task_name"),
                r.column("options"),
                r.column("parameters"),
                r.column("parameters_keyed"),
                r.column("parameters_encrypted"),
                r.column("parameters_keyed_encrypted"),
                r.column("scheduled_at"),
                r.column("started_at"),
                r.column("schedule_count"),
                r.column("attempts"),
                r.column("created_at")};
    }
};

}  // namespace detail

// How many jobs to hold claimed ahead of the task threads: as many as the tasks are expected to
// start within about 100 ms (from their measured run time), at most worker.prefetch. Nothing is
// claimed ahead for slow tasks, so other workers get the rest of the queue.
int Queuer::Engine::prefetch_target() const {
    if (opts_.prefetch <= 0) return 0;
    if (prefetch_paused_until_ && steady::now() < *prefetch_paused_until_) return 0;
    if (ewma_run_s_ < 0) return std::min(opts_.prefetch, concurrency_);
    double n = concurrency_ * 0.1 / std::max(ewma_run_s_, 1e-6);
    return static_cast<int>(std::min<double>(opts_.prefetch, n));
}

// A worker never holds more than max_concurrency + the prefetch target jobs (RUNNING rows in
// the database): the tasks running, the jobs claimed ahead, and outcomes not yet written.
void Queuer::Engine::maybe_claim() {
    if (phase_ != Phase::Running || !claim_jobs_ || task_names_.empty()) return;
    if (claims_in_flight_ > 0 || drained_ || reconcile_needed_ || reconcile_in_flight_) return;
    if (!claim_pipe_ || !claim_pipe_->up()) return;
    int busy = exec_->busy();
    int queued = static_cast<int>(exec_->queued());
    int cap = concurrency_ + prefetch_target();
    int want = cap - unwritten_runs_;
    if (want <= 0) return;
    // Fewer, bigger claims: unless a task thread would sit idle, wait until half is free.
    bool thread_waits = queued == 0 && busy < concurrency_;
    if (!thread_waits && want < (cap + 1) / 2) return;
    int limit = std::min(want, 1000);
    db::Params p;
    p.add_array(task_names_)
        .add_array(nif_names_)
        .add(limit)
        .add(q_.worker_.id)
        .add(q_.worker_.rid);
    ++claims_in_flight_;
    woken_during_claim_ = false;
    claim_pipe_->send(detail::kClaim, p, [this, limit](db::Result* r, const Error* e) {
        --claims_in_flight_;
        if (e) {
            if (e->kind() == ErrorKind::Connection) {
                // The claim may have committed: rows may be RUNNING for us that we never saw.
                need_reconcile("a claim's reply was lost");
            } else {
                claim_sql_outage_.failed("claiming jobs", e->what());
                arm_due_timer(1s);
            }
            check_stop();
            return;
        }
        claim_sql_outage_.recovered("claiming jobs");
        claimed(*r, limit);
    });
}

Queuer::Engine::RunPtr Queuer::Engine::read_claimed_row(const db::Result& r, int i,
                                                        const detail::ClaimColumns& c) {
    auto run = std::make_shared<Run>();
    run->claimed_local = steady::now();
    run->id = r.i64(i, c.id);
    run->rid = r.str(i, c.rid);
    run->task = r.str(i, c.task);
    run->token = r.str(i, c.started_at);
    run->attempt = r.is_null(i, c.attempts) ? 1 : r.i32(i, c.attempts);
    run->schedule_count = r.is_null(i, c.schedule_count) ? 0 : r.i32(i, c.schedule_count);
    run->client = &q_;
    try {
        run->claimed_db = parse_time(run->token, "started_at");
        run->created_at = parse_time(r.get(i, c.created_at), "created_at");
        if (!r.is_null(i, c.scheduled_at)) {
            auto t = parse_time(r.get(i, c.scheduled_at), "scheduled_at");
            // The Go reference writes year 1 for "not scheduled".
            if (t >= TimePoint(std::chrono::seconds(0))) run->scheduled_at = t;
        }
    } catch (const Error& e) {
        run->unreadable = fmt::format("the job row cannot be read: {}", e.what());
    }
    if (!r.is_null(i, c.options)) {
        auto text = r.get(i, c.options);
        if (text != "{}" && text != "null") {
            try {
                run->options = Options::from_json(text);
            } catch (const Error& e) {
                // Written by another client in a shape we do not know: run without options.
                if (log::enabled(log::Level::Debug))
                    log::write(log::Level::Debug,
                               fmt::format("options not understood, ignored: {}", e.what()),
                               {run->rid, run->task, q_.worker_.rid});
            }
        }
    }
    run->on_error = run->options.on_error ? run->options.on_error : worker_on_error_;
    auto json_or = [&](int col, const char* fallback) {
        if (r.is_null(i, col)) return std::string(fallback);
        auto v = r.get(i, col);
        return v == "null" ? std::string(fallback) : std::string(v);
    };
    run->parameters = json_or(c.parameters, "[]");
    run->parameters_keyed = json_or(c.keyed, "{}");
    // Sealed parameters (bytea, "\x..." in text form; "\x" alone when empty).
    for (auto [col, out] : {std::pair{c.parameters_enc, &run->parameters},
                            std::pair{c.keyed_enc, &run->parameters_keyed}}) {
        if (r.is_null(i, col) || r.get(i, col).size() <= 2 || !run->unreadable.empty()) continue;
        if (!q_.cipher_) {
            run->unreadable =
                "the job's parameters cannot be decrypted: they are encrypted and this worker "
                "has no encryption key (QUEUER_ENCRYPTION_KEY or encryption.key_file)";
            continue;
        }
        try {
            *out = q_.cipher_->open(bytea_from_text(r.get(i, col)), "the job's parameters");
        } catch (const Error& e) {
            run->unreadable = fmt::format(
                "the job's parameters cannot be decrypted with this worker's key ({}); it "
                "was encrypted with another key or by another client",
                e.what());
        }
    }
    return run;
}

void Queuer::Engine::claimed(const db::Result& r, int limit) {
    std::vector<RunPtr> runs;
    if (r.rows() > 0) {
        auto cols = detail::ClaimColumns::of(r);
        runs.reserve(static_cast<size_t>(r.rows()));
        for (int i = 0; i < r.rows(); ++i) runs.push_back(read_claimed_row(r, i, cols));
        // RETURNING has no order: run them in creation order.
        std::sort(runs.begin(), runs.end(), [](const RunPtr& a, const RunPtr& b) {
            return a->created_at != b->created_at ? a->created_at < b->created_at : a->id < b->id;
        });
    }
    bool came_back_short = r.rows() < limit;
    std::vector<RunPtr> ready;
    ready.reserve(runs.size());
    for (auto& run : runs) {
        runs_[run->id] = run;
        by_rid_[run->rid] = run;
        ++unwritten_runs_;
        if (recent_cancels_.count(run->rid)) {
            // Cancelled while our claim was on its way back: the canceller archived it.
            run->state = Run::State::Returned;
            mark_written(*run);
            forget(run);
            log::write(log::Level::Info, "job cancelled before it started",
                       {run->rid, run->task, q_.worker_.rid});
            continue;
        }
        if (phase_ != Phase::Running) {
            // Stopping: never started, straight back to the queue.
            run->state = Run::State::Returned;
            Completion c;
            c.run = run;
            c.action = Action::Requeue;
            decide(std::move(c));
            continue;
        }
        if (!run->unreadable.empty()) {
            run->state = Run::State::Returned;
            decide_failure(run, run->unreadable, false);
            continue;
        }
        auto it = tasks_.find(run->task);
        if (it == tasks_.end()) {
            run->state = Run::State::Returned;
            decide_failure(
                run, fmt::format("task \"{}\" is not registered on this worker", run->task), false);
            continue;
        }
        run->fn = it->second;
        ready.push_back(run);
    }
    exec_->push(ready);
    if (came_back_short) {
        // Short: nothing more is due now, unless a wake-up came while the claim was out (a job
        // added meanwhile may have missed its snapshot).
        if (!woken_during_claim_) drained_ = true;
        query_next_due();
    }
    publish();
    maybe_claim();
    check_stop();
}

void Queuer::Engine::query_next_due() {
    if (!control_pipe_ || !control_pipe_->up()) return;
    db::Params p;
    p.add_array(task_names_).add_array(nif_names_);
    control_pipe_->send(detail::kNextDue, p, [this](db::Result* r, const Error* e) {
        if (e || r->rows() == 0 || r->is_null(0, 0)) return;
        double s = 0;
        try {
            s = std::stod(r->str(0, 0));
        } catch (const std::exception&) {
            return;
        }
        arm_due_timer(std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, s) * 1000.0)) +
                      1ms);
    });
}

void Queuer::Engine::arm_due_timer(std::chrono::milliseconds in) {
    if (phase_ != Phase::Running || !claim_jobs_) return;
    auto at = steady::now() + in;
    if (due_at_ && *due_at_ <= at && uv_is_active(reinterpret_cast<uv_handle_t*>(&due_timer_)))
        return;
    due_at_ = at;
    detail::uv_check(uv_timer_start(
                         &due_timer_,
                         [](uv_timer_t* t) {
                             auto* e = static_cast<Engine*>(t->data);
                             e->due_at_.reset();
                             e->wake();
                         },
                         static_cast<uint64_t>(std::max<int64_t>(in.count(), 0)), 0),
                     "uv_timer_start");
}

// Jobs claimed ahead wait behind tasks that run much longer than the prefetch expected (its
// estimate is an average): give them back, so that idle workers can take them, and claim
// nothing ahead for a while.
void Queuer::Engine::return_stale_prefetch() {
    auto age = std::max<std::chrono::duration<double>>(
        std::chrono::seconds(2), std::chrono::duration<double>(20 * std::max(0.0, ewma_run_s_)));
    auto back = exec_->withdraw_if_stalled(std::chrono::duration_cast<steady::duration>(age));
    if (back.empty()) return;
    for (auto& run : back) {
        run->state = Run::State::Returned;
        Completion c;
        c.run = run;
        c.action = Action::Requeue;
        decide(std::move(c));
    }
    prefetch_paused_until_ = steady::now() + 10s;
    log::write(log::Level::Info,
               fmt::format("{} jobs claimed ahead waited more than {:.1f} s behind long tasks; "
                           "they go back to the queue for other workers",
                           back.size(), age.count()));
}

}  // namespace queuer
