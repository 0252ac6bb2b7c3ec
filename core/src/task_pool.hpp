// A bounded pool of task threads. Threads are added on demand up to the current size; a thread
// whose task never returns is left behind (detached) at shutdown instead of blocking it forever,
// which is why every thread holds the shared state it needs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace queuer::detail {

class TaskPool {
  public:
    TaskPool() : s_(std::make_shared<Shared>()) {}
    ~TaskPool() { shutdown(std::chrono::seconds(5)); }
    TaskPool(const TaskPool&) = delete;
    TaskPool& operator=(const TaskPool&) = delete;

    // Runs `fn` on a pool thread, starting a new thread when all are busy.
    void submit(std::function<void()> fn) {
        std::unique_lock lk(s_->mu);
        s_->queue.push_back(std::move(fn));
        if (s_->idle == 0) {
            threads_.emplace_back([s = s_] { run(s); });
        } else {
            s_->cv.notify_one();
        }
    }

    // Waits up to `wait` for busy threads to return, then joins the idle ones and detaches the
    // rest (tasks that ignore cancellation).
    size_t shutdown(std::chrono::milliseconds wait) {
        {
            std::unique_lock lk(s_->mu);
            s_->stopping = true;
            s_->cv.notify_all();
            s_->done_cv.wait_for(lk, wait, [&] { return s_->busy == 0 && s_->queue.empty(); });
        }
        size_t stuck = 0;
        std::unique_lock lk(s_->mu);
        stuck = s_->busy;
        lk.unlock();
        for (auto& t : threads_) {
            if (!t.joinable()) continue;
            if (stuck == 0)
                t.join();
            else
                t.detach();
        }
        threads_.clear();
        return stuck;
    }

  private:
    struct Shared {
        std::mutex mu;
        std::condition_variable cv, done_cv;
        std::deque<std::function<void()>> queue;
        size_t idle = 0, busy = 0;
        bool stopping = false;
    };

    static void run(std::shared_ptr<Shared> s) {
        std::unique_lock lk(s->mu);
        for (;;) {
            if (s->queue.empty()) {
                if (s->stopping) return;
                ++s->idle;
                s->cv.wait(lk, [&] { return s->stopping || !s->queue.empty(); });
                --s->idle;
                continue;
            }
            auto fn = std::move(s->queue.front());
            s->queue.pop_front();
            ++s->busy;
            lk.unlock();
            fn();
            fn = nullptr;
            lk.lock();
            --s->busy;
            s->done_cv.notify_all();
        }
    }

    std::shared_ptr<Shared> s_;
    std::vector<std::thread> threads_;
};

}  // namespace queuer::detail
