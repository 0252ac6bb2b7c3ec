// Executor and Run: see executor.hpp.
#include "executor.hpp"

#include <algorithm>
#include <exception>

namespace queuer::detail {

using steady = std::chrono::steady_clock;

TimePoint Run::started_db() const {
    auto waited = started - claimed_local;
    if (started == steady::time_point{} || waited.count() < 0) return claimed_db;
    return claimed_db + std::chrono::duration_cast<std::chrono::microseconds>(waited);
}

double Run::run_seconds(steady::time_point end) const {
    if (started == steady::time_point{}) return 0.0;
    return std::max(0.0, std::chrono::duration<double>(end - started).count());
}

struct Executor::Shared {
    std::mutex mu;
    std::condition_variable cv;       // runs queued, or the thread count changed
    std::condition_variable done_cv;  // a task returned (shutdown waits on it)
    std::deque<std::shared_ptr<Run>> ready;
    std::vector<TaskEvent> events;
    uv_async_t* wake = nullptr;
    int target = 0, live = 0, idle = 0, busy = 0;
    bool stopping = false;
    std::vector<std::thread> threads;

    void signal() {
        // Thread-safe; coalesces while the loop is busy. It fails only for a handle that is not
        // an async handle, which cannot happen here.
        if (wake) (void)uv_async_send(wake);
    }
    // Starts threads while runs wait without an idle thread for them (under mu).
    void grow() {
        while (!stopping && live < target && static_cast<size_t>(idle) < ready.size()) {
            ++live;
            threads.emplace_back(thread_main, self.lock());
        }
    }
    std::weak_ptr<Shared> self;
};

Executor::Executor(uv_async_t* wake) : s_(std::make_shared<Shared>()) {
    s_->wake = wake;
    s_->self = s_;
}

Executor::~Executor() {
    shutdown(std::chrono::seconds(5));
}

void Executor::thread_main(std::shared_ptr<Shared> s) {
    std::unique_lock lk(s->mu);
    for (;;) {
        if (s->live > s->target || (s->stopping && s->ready.empty())) break;
        if (s->ready.empty()) {
            ++s->idle;
            s->cv.wait(lk, [&] { return !s->ready.empty() || s->stopping || s->live > s->target; });
            --s->idle;
            continue;
        }
        std::shared_ptr<Run> run = std::move(s->ready.front());
        s->ready.pop_front();
        // This instant is the job's start: its timeout counts from here.
        run->started = steady::now();
        JobContext::Init init;
        init.rid = run->rid;
        init.task_name = run->task;
        init.attempt = run->attempt;
        init.parameters = std::move(run->parameters);
        init.parameters_keyed = std::move(run->parameters_keyed);
        init.client = run->client;
        if (run->on_error && run->on_error->timeout > 0) {
            run->deadline =
                run->started + std::chrono::duration_cast<steady::duration>(
                                   std::chrono::duration<double>(run->on_error->timeout));
            init.deadline = run->deadline;
        }
        run->ctx = std::make_shared<JobContext>(std::move(init));
        ++s->busy;
        s->events.push_back({TaskEvent::Kind::Started, run, {}});
        // The loop needs to hear of a start at once only to arm the job's deadline; otherwise
        // the event waits for the next wake-up (usually the same task's return).
        if (run->deadline) s->signal();
        lk.unlock();

        TaskResult result;
        try {
            result = run->fn(*run->ctx);
        } catch (const std::exception& e) {
            result = TaskResult::failure(*e.what() ? e.what() : "task failed");
        } catch (...) {
            result = TaskResult::failure("task threw a non-standard exception");
        }

        lk.lock();
        --s->busy;
        s->events.push_back({TaskEvent::Kind::Returned, std::move(run), std::move(result)});
        s->signal();
        s->done_cv.notify_all();
    }
    --s->live;
    s->done_cv.notify_all();
}

void Executor::set_threads(int n) {
    std::lock_guard g(s_->mu);
    s_->target = std::max(0, n);
    s_->grow();
    s_->cv.notify_all();
}

void Executor::push(std::vector<std::shared_ptr<Run>>& runs) {
    if (runs.empty()) return;
    std::lock_guard g(s_->mu);
    for (auto& r : runs) s_->ready.push_back(std::move(r));
    runs.clear();
    s_->grow();
    if (s_->ready.size() > 1)
        s_->cv.notify_all();
    else
        s_->cv.notify_one();
}

Executor::Stop Executor::cancel(Run& run, const std::string& reason) {
    std::lock_guard g(s_->mu);
    auto it = std::find_if(s_->ready.begin(), s_->ready.end(),
                           [&](const std::shared_ptr<Run>& r) { return r.get() == &run; });
    if (it != s_->ready.end()) {
        s_->ready.erase(it);
        return Stop::Withdrawn;
    }
    if (run.ctx) {
        run.ctx->cancel(reason);
        return Stop::Signalled;
    }
    return Stop::Gone;
}

std::vector<std::shared_ptr<Run>> Executor::withdraw_all() {
    std::lock_guard g(s_->mu);
    std::vector<std::shared_ptr<Run>> out(std::make_move_iterator(s_->ready.begin()),
                                          std::make_move_iterator(s_->ready.end()));
    s_->ready.clear();
    return out;
}

std::vector<std::shared_ptr<Run>> Executor::withdraw_beyond(size_t keep) {
    std::vector<std::shared_ptr<Run>> out;
    std::lock_guard g(s_->mu);
    while (s_->ready.size() > keep) {
        out.push_back(std::move(s_->ready.back()));
        s_->ready.pop_back();
    }
    return out;
}

std::vector<std::shared_ptr<Run>> Executor::withdraw_if_stalled(steady::duration age) {
    std::lock_guard g(s_->mu);
    // In claim order: when even the first has waited this long, the queue is not moving.
    if (s_->ready.empty() || s_->ready.front()->claimed_local > steady::now() - age) return {};
    std::vector<std::shared_ptr<Run>> out(std::make_move_iterator(s_->ready.begin()),
                                          std::make_move_iterator(s_->ready.end()));
    s_->ready.clear();
    return out;
}

std::vector<TaskEvent> Executor::take_events() {
    std::vector<TaskEvent> out;
    std::lock_guard g(s_->mu);
    out.swap(s_->events);
    return out;
}

int Executor::busy() const {
    std::lock_guard g(s_->mu);
    return s_->busy;
}

size_t Executor::queued() const {
    std::lock_guard g(s_->mu);
    return s_->ready.size();
}

int Executor::idle() const {
    std::lock_guard g(s_->mu);
    return s_->idle;
}

void Executor::detach_wake() {
    std::lock_guard g(s_->mu);
    s_->wake = nullptr;
}

size_t Executor::shutdown(std::chrono::milliseconds wait) {
    std::vector<std::thread> threads;
    size_t stuck = 0;
    {
        std::unique_lock lk(s_->mu);
        s_->stopping = true;
        s_->wake = nullptr;
        s_->cv.notify_all();
        s_->done_cv.wait_for(lk, wait, [&] { return s_->busy == 0; });
        stuck = static_cast<size_t>(s_->busy);
        threads.swap(s_->threads);
    }
    for (auto& t : threads) {
        if (!t.joinable()) continue;
        if (stuck == 0)
            t.join();
        else
            t.detach();  // a task ignores cancellation; its thread holds what it needs
    }
    return stuck;
}

}  // namespace queuer::detail
