// Finishing: every completion gathered since the last write goes to the database in one
// statement, which also claims jobs for the slots it frees.
#include "engine_util.hpp"

namespace queuer {

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
                        if (opts.observer) {
                            Outcome o = c.action == "SUCCEEDED"   ? Outcome::Succeeded
                                        : c.action == "FAILED"    ? Outcome::Failed
                                        : c.action == "CANCELLED" ? Outcome::Cancelled
                                        : c.action == "RETRY"     ? Outcome::Retried
                                                                  : Outcome::Requeued;
                            auto st = it->second.started;
                            double secs = st == steady::time_point{}
                                              ? 0.0
                                              : std::chrono::duration<double>(steady::now() - st)
                                                    .count();
                            opts.observer->job_finished(it->second.job.task_name, o, secs);
                        }
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

}  // namespace queuer
