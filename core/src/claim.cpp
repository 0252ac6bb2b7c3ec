// Claiming: one statement takes up to the free slots, due jobs only, in creation order, with
// FOR UPDATE SKIP LOCKED; a timer wakes the worker at the next due time.
#include "engine_util.hpp"

namespace queuer {

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

}  // namespace queuer
