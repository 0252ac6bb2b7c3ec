// Control: the heartbeat and the worker status set from elsewhere (STOPPING, STOPPED, a stale
// verdict of the master), notifications (wake-ups, cancellations, listeners), reconciliation of
// what we hold after a lost reply, the master's pass, and the last words of a stopping worker.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "master_sql.hpp"
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

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

const db::Statement kHasTimescale{
    "queuer_has_timescale",
    "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"};
const db::Statement kArchiveIsHypertable{
    "queuer_archive_is_hypertable",
    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
    " WHERE hypertable_name = 'job_archive' AND hypertable_schema = current_schema())"};
const db::Statement kRetentionPolicy{
    "queuer_retention_policy",
    "SELECT remove_retention_policy('job_archive', if_exists => TRUE),"
    " add_retention_policy('job_archive', drop_after => $1::interval)"};

}  // namespace

// ---- heartbeat and worker status ----

void Queuer::Engine::heartbeat() {
    if (heartbeat_in_flight_ || phase_ >= Phase::Closing || !control_pipe_ || !control_pipe_->up())
        return;
    heartbeat_in_flight_ = true;
    db::Params p;
    p.add(q_.worker_.rid).add(exec_->busy());
    auto sent = steady::now();
    control_pipe_->send(detail::kHeartbeat, p, [this, sent](db::Result* r, const Error* e) {
        heartbeat_in_flight_ = false;
        if (e) {
            // A lost connection is logged by its pipe; anything else here.
            if (e->kind() != ErrorKind::Connection) hb_outage_.failed("the heartbeat", e->what());
            return;
        }
        hb_outage_.recovered("the heartbeat");
        if (r->rows() == 0) {
            log::write(log::Level::Error,
                       "the worker row is gone (deleted by the master after it was stopped); "
                       "stopping",
                       {{}, {}, q_.worker_.rid});
            apply_worker_status(std::string(worker_status::stopped));
        } else {
            // NULL: no master has recorded a threshold (or a Python one, which does not).
            int col = r->column("stale_seconds");
            double s = r->is_null(0, col) ? 0 : std::strtod(r->str(0, col).c_str(), nullptr);
            if (s > 0)
                master_stale_threshold_ = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
            else
                master_stale_threshold_.reset();
            apply_worker_status(r->str(0, 0));
        }
        // The send time, not now: this reply may be read long after the row was written (a
        // heartbeat in flight when the process froze must not reset the silence).
        last_heartbeat_ok_ = std::max(last_heartbeat_ok_, sent);
    });
}

void Queuer::Engine::apply_worker_status(const std::string& status) {
    // finalizing_: the STOPPED we wrote ourselves.
    if (phase_ >= Phase::Closing || phase_ < Phase::Running || finalizing_) return;
    log::Fields f{{}, {}, q_.worker_.rid};
    if (status == worker_status::stopped) {
        if (stopped_notified_) return;
        // The master's threshold judged us (ours when its row has none). 5 % slack:
        // the master measures with the database's clock from the row's updated_at, we from
        // the send of our last heartbeat that reached it; a worker that silent would be swept
        // in a moment anyway.
        auto threshold = std::chrono::duration_cast<std::chrono::milliseconds>(
            opts_.master ? opts_.master->worker_stale_threshold
                         : MasterSettings{}.worker_stale_threshold);
        if (master_stale_threshold_) threshold = *master_stale_threshold_;
        auto silent = steady::now() - last_heartbeat_ok_;
        if (claim_jobs_ && silent > threshold - threshold / 20) {
            // The master took us for dead (we were frozen, or cut off for longer than its stale
            // threshold) and has recovered our jobs: nothing we hold is ours any more.
            if (stop_cause_ == StopCause::None) stop_cause_ = StopCause::Stale;
            log::write(
                log::Level::Warn,
                fmt::format("the master declared this worker stale (no heartbeat for {} s) "
                            "and recovered its jobs; stopping without writing anything",
                            std::chrono::duration_cast<std::chrono::seconds>(silent).count()),
                f);
            disown_all("the worker was declared stale");
            begin_stop(0ms, StopCause::Stale);
        } else {
            // Stopped from elsewhere (queuerctl stop worker): running jobs end CANCELLED; jobs
            // claimed ahead go back to the queue (begin_stop).
            if (stop_cause_ == StopCause::None) stop_cause_ = StopCause::Immediate;
            int n = 0;
            for (auto& [id, run] : runs_) {
                if (run->state == Run::State::Returned || run->abandoned || run->decided) continue;
                auto how = exec_->cancel(*run, "cancelled");
                if (how == detail::Executor::Stop::Gone) continue;  // its return decides it
                if (how == detail::Executor::Stop::Withdrawn) {
                    // Claimed ahead, never started: back to the queue.
                    run->state = Run::State::Returned;
                    Completion c;
                    c.run = run;
                    c.action = Action::Requeue;
                    decide(std::move(c));
                    continue;
                }
                run->abandoned = true;
                Completion c;
                c.run = run;
                c.action = Action::Cancelled;
                c.error = "the worker was stopped";
                decide(std::move(c));
                ++n;
            }
            log::write(log::Level::Info,
                       fmt::format("the worker was stopped from elsewhere: {} running jobs "
                                   "cancelled",
                                   n),
                       f);
            begin_stop(0ms, StopCause::Immediate);
        }
        stopped_notified_ = true;
        if (on_stopped_) on_stopped_();
    } else if (status == worker_status::stopping && !graceful_requested_) {
        graceful_requested_ = true;
        if (stop_cause_ == StopCause::None) stop_cause_ = StopCause::Requested;
        log::write(log::Level::Info,
                   fmt::format("the worker is asked to stop gracefully: no new jobs, {} running",
                               exec_->busy()),
                   f);
        begin_stop(std::chrono::milliseconds::max(), StopCause::Requested);
    }
}

// Everything we hold is someone else's now (the master recovered it): tasks are told to stop,
// nothing is written, and rows claimed after the recovery are put back.
void Queuer::Engine::disown_all(const char* why) {
    std::vector<std::string> ids, tokens;
    std::vector<RunPtr> all;
    for (auto& [id, run] : runs_) all.push_back(run);
    for (auto& run : all) {
        if (!run->written) {
            ids.push_back(std::to_string(run->id));
            tokens.push_back(run->token);
        }
        if (exec_->cancel(*run, why) == detail::Executor::Stop::Withdrawn)
            run->state = Run::State::Returned;
        run->abandoned = true;
        run->decided = true;
        mark_written(*run);
        if (run->state != Run::State::Running) forget(run);
    }
    pending_.clear();
    if (ids.empty() || !control_pipe_ || !control_pipe_->up()) return;
    db::Params p;
    p.add_array(ids).add_array(tokens).add(q_.worker_.rid);
    control_pipe_->send(detail::kPutBack, p, [this](db::Result* r, const Error*) {
        if (r && r->rows() > 0)
            log::write(
                log::Level::Info,
                fmt::format("{} jobs claimed after the master's recovery were put back", r->rows()),
                {{}, {}, q_.worker_.rid});
    });
}

// ---- notifications ----

void Queuer::Engine::on_notification(db::Notification&& n) {
    const std::string& pl = n.payload;
    bool is_job = n.channel == "job", is_archive = n.channel == "job_archive";
    bool work = is_job && (pl.find("\"QUEUED\"") != std::string::npos ||
                           pl.find("\"SCHEDULED\"") != std::string::npos);
    bool cancel = is_archive && pl.find("\"CANCELLED\"") != std::string::npos;
    bool callback = (is_job && on_update_) || (is_archive && on_ended_);
    bool worker = n.channel == "worker";
    if (work) wake();
    if (!cancel && !callback && !worker) return;
    rapidjson::Document d;
    d.Parse(pl.c_str());
    if (!d.IsObject()) return;
    JobEvent ev;
    if (d.HasMember("id") && d["id"].IsInt64()) ev.id = d["id"].GetInt64();
    if (d.HasMember("rid") && d["rid"].IsString()) ev.rid = d["rid"].GetString();
    if (d.HasMember("status") && d["status"].IsString()) ev.status = d["status"].GetString();
    if (cancel && ev.status == status::cancelled && claim_jobs_) {
        // By rid, never by id: ids repeat across schemas and channels are database-wide.
        auto it = by_rid_.find(ev.rid);
        if (it != by_rid_.end() && !it->second->written)
            cancel_run(it->second, "cancelled");
        else if (it == by_rid_.end())
            remember_cancel(ev.rid);  // a claim of it may be on its way back
    }
    if (worker && ev.rid == q_.worker_.rid) heartbeat();
    if (is_job && on_update_) on_update_(ev);
    if (is_archive && on_ended_) on_ended_(ev);
}

void Queuer::Engine::remember_cancel(const std::string& rid) {
    auto now_t = steady::now();
    while (!recent_cancel_order_.empty() &&
           (recent_cancel_order_.size() >= 10000 ||
            now_t - recent_cancels_[recent_cancel_order_.front()] > 60s)) {
        recent_cancels_.erase(recent_cancel_order_.front());
        recent_cancel_order_.pop_front();
    }
    if (recent_cancels_.emplace(rid, now_t).second) recent_cancel_order_.push_back(rid);
}

// ---- reconciliation ----

// After a lost reply or a reconnect, what the database says we hold is compared with what we
// run. Claims and writes pause until that is done, so the answer cannot race with them.
void Queuer::Engine::need_reconcile(const char* why) {
    if (!claim_jobs_ || phase_ >= Phase::Closing) return;
    if (!reconcile_needed_ && log::enabled(log::Level::Debug))
        log::write(log::Level::Debug, fmt::format("reconciling what this worker holds: {}", why));
    reconcile_needed_ = true;
    maybe_reconcile();
}

void Queuer::Engine::maybe_reconcile() {
    if (!reconcile_needed_ || reconcile_in_flight_ || claims_in_flight_ > 0 || finish_in_flight_ ||
        one_by_one_left_ > 0)
        return;
    if (!control_pipe_ || !control_pipe_->up() || phase_ >= Phase::Closing) return;
    reconcile_needed_ = false;
    reconcile_in_flight_ = true;
    db::Params p;
    p.add(q_.worker_.rid);
    control_pipe_->send(detail::kHeld, p, [this](db::Result* r, const Error* e) {
        reconcile_in_flight_ = false;
        if (e) {
            reconcile_needed_ = true;  // again once the connection is back (tick retries)
            if (e->kind() != ErrorKind::Connection)
                reconcile_outage_.failed("reconciling the jobs this worker holds", e->what());
        } else {
            reconcile_outage_.recovered("reconciling the jobs this worker holds");
            reconciled(*r);
        }
        maybe_reconcile();  // asked again while this one was on its way
        maybe_claim();
        maybe_flush();
        check_stop();
    });
}

void Queuer::Engine::reconciled(const db::Result& r) {
    std::unordered_map<int64_t, std::string> held;
    if (r.rows() > 0) {
        int cid = r.column("id"), ctok = r.column("token");
        for (int i = 0; i < r.rows(); ++i) held.emplace(r.i64(i, cid), r.str(i, ctok));
    }
    // Held in the database but not run here (a claim whose reply was lost): put back.
    std::vector<std::string> ids, tokens;
    for (auto& [id, token] : held) {
        auto it = runs_.find(id);
        if (it == runs_.end() || it->second->token != token || it->second->written) {
            ids.push_back(std::to_string(id));
            tokens.push_back(token);
        }
    }
    // Run here but no longer ours in the database (cancelled or recovered while we could not
    // hear it): stop it, write nothing.
    std::vector<RunPtr> lost;
    for (auto& [id, run] : runs_) {
        if (run->written || run->decided) continue;
        auto it = held.find(id);
        if (it == held.end() || it->second != run->token) lost.push_back(run);
    }
    for (auto& run : lost) {
        log::write(log::Level::Info,
                   "job no longer held by this worker (cancelled or recovered meanwhile); "
                   "stopped here",
                   {run->rid, run->task, q_.worker_.rid});
        cancel_run(run, "the job is no longer held by this worker");
    }
    if (ids.empty()) return;
    db::Params p;
    p.add_array(ids).add_array(tokens).add(q_.worker_.rid);
    reconcile_in_flight_ = true;
    control_pipe_->send(detail::kPutBack, p, [this](db::Result* res, const Error* e) {
        reconcile_in_flight_ = false;
        if (e) {
            need_reconcile("putting jobs back failed");
        } else if (res->rows() > 0) {
            std::vector<std::string> rids;
            int crid = res->column("rid");
            for (int i = 0; i < res->rows(); ++i) rids.push_back(res->str(i, crid));
            log::write(log::Level::Warn,
                       fmt::format("{} jobs this worker held without running them (a claim's "
                                   "reply was lost) are back in the queue: {}",
                                   rids.size(), fmt::join(rids, ", ")),
                       {{}, {}, q_.worker_.rid});
            wake();
        }
        maybe_reconcile();
        maybe_claim();
        maybe_flush();
        check_stop();
    });
}

// ---- the master ----

void Queuer::Engine::master_pass() {
    if (master_in_flight_ || !opts_.master || phase_ != Phase::Running || !control_pipe_ ||
        !control_pipe_->up())
        return;
    master_in_flight_ = true;
    const MasterSettings& s = *opts_.master;
    db::Params take;
    take.add(q_.worker_.id).add(q_.worker_.rid).add(s.to_json());
    take.add(fmt::format("{}", seconds(s.master_lock_timeout)));
    control_pipe_->send(detail::kTakeMaster, take, [this](db::Result* r, const Error* e) {
        if (e) {
            master_in_flight_ = false;
            if (e->kind() != ErrorKind::Connection)
                master_outage_.failed("the master pass", e->what());
            return;
        }
        bool is = r->rows() > 0;
        if (is != master_.load()) {
            master_ = is;
            log::write(log::Level::Info,
                       is ? "this worker is now the master" : "this worker is no longer the master",
                       {{}, {}, q_.worker_.rid});
            if (opts_.observer) opts_.observer->master_changed(is);
        }
        if (!is) {
            master_in_flight_ = false;
            master_outage_.recovered("the master pass");
            return;
        }
        master_step(1);
    });
}

// 1: the sweep (stale workers, their jobs, old workers); 2: is job_archive a hypertable;
// 3..: retention in bounded batches.
void Queuer::Engine::master_step(int step) {
    const MasterSettings& s = *opts_.master;
    auto fail = [this](const Error& e) {
        master_in_flight_ = false;
        if (e.kind() != ErrorKind::Connection) master_outage_.failed("the master pass", e.what());
    };
    if (!control_pipe_->up() || phase_ != Phase::Running) {
        master_in_flight_ = false;
        return;
    }
    if (step == 1) {
        db::Params sweep;
        sweep.add(fmt::format("{}", seconds(s.worker_stale_threshold)));
        sweep.add(fmt::format("{}", seconds(s.worker_delete_threshold)));
        sweep.add(q_.worker_.rid);
        control_pipe_->send(
            detail::kMasterSweep, sweep, [this, fail](db::Result* r, const Error* e) {
                if (e) return fail(*e);
                log::Fields f{{}, {}, q_.worker_.rid};
                auto count = [&](const char* col) { return r->i64(0, r->column(col)); };
                int64_t stale = count("stale_workers"), requeued = count("requeued_jobs"),
                        failed = count("failed_jobs"), deleted = count("deleted_workers"),
                        leftovers = count("archived_leftovers");
                // The first 20 of each, named: an operator sees which jobs a dead worker left.
                auto named = [&](const char* col) {
                    rapidjson::Document d;
                    auto text = r->str(0, r->column(col));
                    d.Parse(text.c_str());
                    std::vector<std::string> out;
                    if (!d.IsArray()) return out;
                    for (const auto& v : d.GetArray()) {
                        if (!v.IsObject()) continue;
                        auto str = [&](const char* k) {
                            return v.HasMember(k) && v[k].IsString() ? std::string(v[k].GetString())
                                                                     : std::string();
                        };
                        std::string item = str("rid").empty() ? str("name") : str("rid");
                        if (!str("task_name").empty()) item += " (" + str("task_name") + ")";
                        if (!str("error").empty()) item += ": " + log::capped(str("error"), 200);
                        out.push_back(item);
                    }
                    return out;
                };
                if (stale)
                    log::write(log::Level::Warn,
                               fmt::format("master: {} stale workers marked STOPPED: {}", stale,
                                           fmt::join(named("stale"), ", ")),
                               f);
                if (requeued)
                    log::write(log::Level::Warn,
                               fmt::format("master: {} jobs of dead workers back in the queue: {}",
                                           requeued, fmt::join(named("requeued"), ", ")),
                               f);
                if (failed)
                    log::write(log::Level::Error,
                               fmt::format("master: {} jobs of dead workers ended FAILED: {}",
                                           failed, fmt::join(named("failed"), "; ")),
                               f);
                if (deleted || leftovers)
                    log::write(log::Level::Info,
                               fmt::format("master: {} old workers deleted, {} cancelled rows left "
                                           "in the live table by another client archived",
                                           deleted, leftovers),
                               f);
                if (requeued) {
                    wake();
                }
                master_step(2);
            });
        return;
    }
    if (s.retention_archive.count() <= 0) {
        master_in_flight_ = false;
        master_outage_.recovered("the master pass");
        return;
    }
    if (step == 2 && !archive_is_hypertable_) {
        control_pipe_->send(kHasTimescale, {}, [this, fail](db::Result* r, const Error* e) {
            if (e) return fail(*e);
            if (r->boolean(0, 0)) {
                control_pipe_->send(kArchiveIsHypertable, {},
                                    [this, fail](db::Result* r2, const Error* e2) {
                                        if (e2) return fail(*e2);
                                        archive_is_hypertable_ = r2->boolean(0, 0);
                                        master_step(3);
                                    });
            } else {
                archive_is_hypertable_ = false;
                master_step(3);
            }
        });
        return;
    }
    if (*archive_is_hypertable_) {
        // TimescaleDB drops whole chunks itself; (re)install the policy once.
        if (retention_applied_) {
            master_in_flight_ = false;
            return;
        }
        db::Params p;
        p.add(fmt::format("{} seconds", seconds(s.retention_archive)));
        control_pipe_->send(kRetentionPolicy, p, [this, fail](db::Result*, const Error* e) {
            if (e) return fail(*e);
            retention_applied_ = true;
            master_in_flight_ = false;
        });
        return;
    }
    // Without TimescaleDB: at most 20 batches of 5,000 rows per pass.
    db::Params ret;
    ret.add(fmt::format("{}", seconds(s.retention_archive)));
    control_pipe_->send(
        detail::kRetentionBatch, ret, [this, step, fail](db::Result* r, const Error* e) {
            if (e) return fail(*e);
            int64_t n = r->affected();
            if (n > 0)
                log::write(log::Level::Info,
                           fmt::format("master: {} expired archive rows deleted", n),
                           {{}, {}, q_.worker_.rid});
            if (n >= 5000 && step < 22) return master_step(step + 1);
            master_in_flight_ = false;
            master_outage_.recovered("the master pass");
        });
}

// ---- the end ----

// The worker's last words: STOPPED in its row, the master lock released; then the loop closes
// (at most 2 s later when the database does not answer).
void Queuer::Engine::finalize() {
    if (finalizing_) return;
    finalizing_ = true;
    if (!control_pipe_ || !control_pipe_->up()) {
        set_phase(Phase::Closing);
        close_everything();
        return;
    }
    auto left = std::make_shared<int>(1);
    auto done = [this, left] {
        if (--*left > 0 || phase_ >= Phase::Closing) return;
        set_phase(Phase::Closing);
        close_everything();
    };
    db::Params p;
    p.add(q_.worker_.rid);
    if (master_) {
        ++*left;
        control_pipe_->send(detail::kReleaseMaster, p, [this, done](db::Result*, const Error* e) {
            if (!e) {
                master_ = false;
                log::write(log::Level::Info, "released the master lock", {{}, {}, q_.worker_.rid});
            }
            done();
        });
    }
    control_pipe_->send(detail::kWorkerStopped, p, [this, done](db::Result*, const Error* e) {
        if (!e) worker_marked_stopped_ = true;
        done();
    });
    detail::uv_check(uv_timer_start(
                         &stop_timer_,
                         [](uv_timer_t* t) {
                             auto* self = static_cast<Engine*>(t->data);
                             if (self->phase_ >= Phase::Closing) return;
                             self->set_phase(Phase::Closing);
                             self->close_everything();
                         },
                         2000, 0),
                     "uv_timer_start");
}

}  // namespace queuer
