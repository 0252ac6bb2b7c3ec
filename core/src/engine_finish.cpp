// Writing outcomes: every outcome decided since the last write goes out in one statement (at
// most 1,000 runs or 64 MB); one write is in flight at a time, and what is decided meanwhile
// waits for the next. A reply lost with the connection is written again (the statement only
// touches the claim it names, so a second write changes nothing). A batch the database refuses
// for its data is split and written run by run, so one bad row never blocks the others; a run
// whose own row is refused ends FAILED with the database's reason.
#include <fmt/format.h>

#include <algorithm>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "queuer/log.hpp"
#include "uv_check.hpp"

namespace queuer {

using namespace std::chrono_literals;
using detail::Action;
using detail::Completion;
using detail::Phase;
using detail::Run;
using steady = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxBatch = 1000;
constexpr size_t kMaxBatchBytes = 64u << 20;

// A refusal about the data of a row (invalid text or JSON, too large, a constraint) rather than
// about the statement or the database as a whole.
bool data_error(const Error& e) {
    const auto& s = e.sqlstate();
    return s.rfind("22", 0) == 0 || s.rfind("23", 0) == 0 || s.rfind("54", 0) == 0;
}

}  // namespace

namespace detail {

FinishRow finish_row(const Completion& c) {
    const Run& r = *c.run;
    FinishRow row;
    row.id = r.id;
    row.rid = r.rid;
    row.token = r.token;
    row.action = c.action;
    row.results = c.results;
    row.sealed = c.sealed;
    row.error = c.error;
    row.delay_ms = c.delay_ms;
    if (r.started != steady::time_point{}) row.started = format_time(r.started_db());
    if (c.next_at) row.next_at = format_time(*c.next_at);
    return row;
}

// kFinishArchive's or kFinishRequeue's parameters for these rows (all of one kind).
db::Params finish_params(const std::vector<FinishRow>& rows, const std::string& worker_rid) {
    std::vector<std::string> ids, tokens, actions, results, sealed, errors, delays, started, nexts;
    bool archive = rows.empty() || ends_job(rows.front().action);
    for (auto* v : {&ids, &tokens, &actions, &results, &sealed, &errors, &delays, &started, &nexts})
        v->reserve(rows.size());
    for (const auto& r : rows) {
        ids.push_back(std::to_string(r.id));
        tokens.push_back(r.token);
        actions.push_back(sql_name(r.action));
        errors.push_back(r.error);
        started.push_back(r.started);
        if (archive) {
            results.push_back(r.results);
            sealed.push_back(r.sealed);
            nexts.push_back(r.next_at);
        } else {
            delays.push_back(std::to_string(r.delay_ms));
        }
    }
    db::Params p;
    if (archive) {
        p.add_array(ids).add_array(tokens).add_array(actions).add_array(results).add_array(sealed);
        p.add_array(errors).add_array(started).add_array(nexts).add(worker_rid);
    } else {
        p.add_array(ids).add_array(tokens).add_array(actions).add_array(errors).add_array(delays);
        p.add_array(started).add(worker_rid);
    }
    return p;
}

}  // namespace detail

namespace {

db::Params finish_params(const std::vector<Completion>& batch, const std::string& worker_rid) {
    std::vector<detail::FinishRow> rows;
    rows.reserve(batch.size());
    for (const auto& c : batch) rows.push_back(detail::finish_row(c));
    return detail::finish_params(rows, worker_rid);
}

const db::Statement& finish_statement(const Completion& c) {
    return ends_job(c.action) ? detail::kFinishArchive : detail::kFinishRequeue;
}

}  // namespace

void Queuer::Engine::maybe_flush() {
    if (finish_in_flight_ || one_by_one_left_ > 0 || pending_.empty()) return;
    if (reconcile_needed_ || reconcile_in_flight_) return;
    if (!finish_pipe_ || !finish_pipe_->up()) return;
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(&retry_timer_))) return;  // backing off
    std::vector<Completion> batch;
    size_t bytes = 0;
    while (!pending_.empty() && batch.size() < kMaxBatch &&
           (batch.empty() || bytes + pending_.front().bytes() <= kMaxBatchBytes)) {
        bytes += pending_.front().bytes();
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
    }
    send_finish(std::move(batch));
}

// One write: the outcomes that end jobs and those that put jobs back, each kind in one
// statement, both in one round trip.
void Queuer::Engine::send_finish(std::vector<Completion> batch) {
    auto ends = std::make_shared<std::vector<Completion>>();
    auto back = std::make_shared<std::vector<Completion>>();
    for (auto& c : batch) (ends_job(c.action) ? ends : back)->push_back(std::move(c));
    std::vector<db::Params> params;
    std::vector<std::pair<const db::Statement*, const db::Params*>> sts;
    std::vector<detail::PgPipe::Done> dones;
    params.reserve(2);
    for (auto& part : {ends, back}) {
        if (part->empty()) continue;
        params.push_back(finish_params(*part, q_.worker_.rid));
        writing_.push_back(part);
        dones.push_back([this, part](db::Result* r, const Error* e) {
            if (--finish_parts_ == 0) finish_in_flight_ = false;
            std::erase(writing_, part);
            finished(std::move(*part), r, e);
        });
    }
    size_t i = 0;
    for (auto& part : {ends, back})
        if (!part->empty()) sts.emplace_back(&finish_statement(part->front()), &params[i++]);
    finish_in_flight_ = true;
    finish_parts_ = static_cast<int>(sts.size());
    finish_pipe_->send_all(sts, std::move(dones));
}

void Queuer::Engine::finished(std::vector<Completion> batch, db::Result* r, const Error* e) {
    (void)r;
    if (!e) {
        finish_sql_outage_.recovered("writing job outcomes");
        finish_backoff_ = 0ms;
        for (auto& c : batch) written(c);
    } else if (e->kind() == ErrorKind::Connection) {
        // The write may have committed. Write it again once the connection is back: rows
        // already changed are not matched again. Our view of what we hold is checked first.
        for (auto it = batch.rbegin(); it != batch.rend(); ++it)
            pending_.push_front(std::move(*it));
        need_reconcile("a finish reply was lost");
    } else if (data_error(*e)) {
        if (batch.size() > 1)
            write_one_by_one(std::move(batch));
        else
            refused(std::move(batch.front()), *e);
    } else {
        // The database refuses the statement as such (permissions, a missing table, ...):
        // keep every outcome and try again with backoff.
        finish_sql_outage_.failed("writing job outcomes", e->what());
        for (auto it = batch.rbegin(); it != batch.rend(); ++it)
            pending_.push_front(std::move(*it));
        finish_backoff_ = finish_backoff_.count() == 0
                              ? 250ms
                              : std::min<std::chrono::milliseconds>(finish_backoff_ * 2, 30s);
        detail::uv_check(
            uv_timer_start(
                &retry_timer_, [](uv_timer_t* t) { static_cast<Engine*>(t->data)->maybe_flush(); },
                static_cast<uint64_t>(finish_backoff_.count()), 0),
            "uv_timer_start");
    }
    maybe_flush();
    maybe_reconcile();
    maybe_claim();
    check_stop();
    publish();
}

// Every run of a refused batch in a statement of its own, all in one round trip.
void Queuer::Engine::write_one_by_one(std::vector<Completion> batch) {
    if (!finish_pipe_->up()) {
        // Gone between the refusal and now: keep them for the next write.
        for (auto it = batch.rbegin(); it != batch.rend(); ++it)
            pending_.push_front(std::move(*it));
        return;
    }
    std::vector<db::Params> params;
    params.reserve(batch.size());
    for (auto& c : batch) params.push_back(finish_params({c}, q_.worker_.rid));
    std::vector<std::pair<const db::Statement*, const db::Params*>> sts;
    std::vector<detail::PgPipe::Done> dones;
    for (size_t i = 0; i < batch.size(); ++i) {
        sts.emplace_back(&finish_statement(batch[i]), &params[i]);
        auto part = std::make_shared<std::vector<Completion>>();
        part->push_back(std::move(batch[i]));
        std::shared_ptr<Completion> c(part, &part->front());  // shares the part's ownership
        writing_.push_back(part);
        dones.push_back([this, c, part](db::Result*, const Error* e) {
            --one_by_one_left_;
            std::erase(writing_, part);
            if (!e) {
                written(*c);
            } else if (e->kind() == ErrorKind::Connection) {
                pending_.push_front(std::move(*c));
                need_reconcile("a finish reply was lost");
            } else if (data_error(*e)) {
                refused(std::move(*c), *e);
            } else {
                pending_.push_front(std::move(*c));
            }
            if (one_by_one_left_ == 0) {
                maybe_flush();
                maybe_reconcile();
                maybe_claim();
                check_stop();
            }
        });
    }
    one_by_one_left_ = static_cast<int>(sts.size());
    finish_pipe_->send_all(sts, std::move(dones));
}

// The database refused this run's own row. A result becomes a failure with the reason; a
// failure whose text was refused is written with the reason alone; past that, the outcome is
// dropped (logged) and reconciliation puts the job back in the queue.
void Queuer::Engine::refused(Completion c, const Error& e) {
    log::Fields f{c.run->rid, c.run->task, q_.worker_.rid};
    std::string why = log::capped(e.what(), 1000);
    if (c.action == Action::Succeeded || c.action == Action::Retry || c.action == Action::Failed) {
        if (c.results != "[]" || !c.sealed.empty() || c.action == Action::Succeeded) {
            c.results = "[]";
            c.sealed.clear();
            c.action = Action::Failed;
            c.delay_ms = 0;
            c.error = fmt::format("the database refused the result: {}", why);
            log::write(log::Level::Warn, c.error, f);
            pending_.push_front(std::move(c));
            return;
        }
        if (c.error.rfind("the database refused the outcome", 0) != 0) {
            c.action = Action::Failed;
            c.error = fmt::format("the database refused the outcome: {}", why);
            log::write(log::Level::Warn, c.error, f);
            pending_.push_front(std::move(c));
            return;
        }
    }
    log::write(log::Level::Error,
               fmt::format("the outcome of the job cannot be written ({}); it goes back to the "
                           "queue",
                           why),
               f);
    // Dropped here: reconciliation finds the row held but not run, and puts it back.
    mark_written(*c.run);
    if (c.run->state != Run::State::Running) forget(c.run);
    need_reconcile("an outcome could not be written");
}

void Queuer::Engine::written(Completion& c) {
    RunPtr run = c.run;
    bool first = !run->written;
    mark_written(*run);
    if (first && opts_.observer) {
        auto end = run->returned != steady::time_point{} ? run->returned : steady::now();
        opts_.observer->job_finished(run->task, detail::to_outcome(c.action),
                                     run->run_seconds(end));
    }
    if (run->state != Run::State::Running) forget(run);
    if (c.next_at) {
        auto in = std::chrono::duration_cast<std::chrono::milliseconds>(*c.next_at - now());
        arm_due_timer(std::max(in, 0ms) + 5ms);
    }
}

}  // namespace queuer
