// The task side of the engine: a Run (one claimed run of a job, from the claim until its outcome
// is written), and the Executor: max_concurrency task threads taking runs from one ready queue
// (the local queue of claimed-ahead jobs) and reporting back through an event list that wakes
// the loop. A thread builds the job's JobContext when it takes the run (that instant is the
// job's real start: started_at and the timeout count from it), calls the task, and reports
// what it returned as a value. Threads whose task never returns are left behind at shutdown;
// they hold the shared state they need.
#pragma once

#include <uv.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "queuer/queuer.hpp"

namespace queuer::detail {

struct Run {
    using steady = std::chrono::steady_clock;
    enum class State {
        Ready,     // in the executor's ready queue (claimed ahead)
        Running,   // a task thread took it
        Returned,  // the task returned (or never will be asked to: abandoned before start)
    };

    // Set from the claimed row (loop thread); read-only once the run is pushed.
    int64_t id = 0;
    std::string rid, task;
    std::string token;  // the claim's started_at, as text: identifies this claim of the row
    std::string parameters = "[]", parameters_keyed = "{}";  // moved into the JobContext
    std::string unreadable;  // why the row cannot be run (cannot be decrypted): it fails at once
    Options options;
    std::optional<OnError> on_error;  // the job's, else the worker's default
    int attempt = 0, schedule_count = 0;
    std::optional<TimePoint> scheduled_at;
    TimePoint created_at{};
    TimePoint claimed_db{};  // the claim's CURRENT_TIMESTAMP (the database's clock)
    steady::time_point claimed_local{};
    TaskFn fn;
    Client* client = nullptr;

    // Written by the task thread under the executor's mutex when it takes the run; read by the
    // loop after the Started event (the event list's mutex orders them).
    std::shared_ptr<JobContext> ctx;
    steady::time_point started{};
    std::optional<steady::time_point> deadline;
    steady::time_point returned{};  // loop: when the Returned event was handled

    // Loop thread only.
    State state = State::Ready;
    bool abandoned = false;  // the outcome was decided without the task (timeout, cancel,
                             // shutdown, lost ownership): what the task returns is ignored
    bool decided = false;    // an outcome was chosen (waiting to be written, or written)
    bool written = false;    // the outcome is in the database, or it is not ours to write
                             // (a canceller or the master wrote it): nothing left to do
    bool warned = false;     // told the log it ignores cancellation

    // started_at as the database should record it: the claim's time plus the local wait.
    TimePoint started_db() const;
    double run_seconds(steady::time_point end) const;
};

struct TaskEvent {
    enum class Kind { Started, Returned } kind;
    std::shared_ptr<Run> run;
    TaskResult result;  // Returned
};

class Executor {
  public:
    // `wake` is signalled (uv_async_send) when events are waiting; detach_wake() before the
    // loop closes it.
    explicit Executor(uv_async_t* wake);
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    // The number of task threads (max_concurrency); threads start on demand, extra ones end
    // after their current task.
    void set_threads(int n);
    // Appends runs to the ready queue (in order).
    void push(std::vector<std::shared_ptr<Run>>& runs);
    enum class Stop { Withdrawn, Signalled, Gone };
    // A run still queued is taken out (Withdrawn: it never started); a started one is told
    // through its context (Signalled); Gone when neither (it returned already).
    Stop cancel(Run& run, const std::string& reason);
    // Takes every queued run back (ownership lost).
    std::vector<std::shared_ptr<Run>> withdraw_all();
    // Takes back the queued runs beyond the first `keep` (the last claimed first): at a stop,
    // jobs claimed ahead go back while those free threads are about to take stay.
    std::vector<std::shared_ptr<Run>> withdraw_beyond(size_t keep);
    // Takes every queued run back when the first in line has waited longer than `age` (the
    // tasks ahead of them run longer than the prefetch expected: other workers may be idle).
    std::vector<std::shared_ptr<Run>> withdraw_if_stalled(std::chrono::steady_clock::duration age);
    std::vector<TaskEvent> take_events();

    int busy() const;       // threads inside a task
    size_t queued() const;  // runs waiting
    int idle() const;       // threads waiting for a run
    void detach_wake();
    // Ends the threads: waits up to `wait` for busy ones to return; returns how many were left
    // running (detached).
    size_t shutdown(std::chrono::milliseconds wait);

  private:
    struct Shared;
    static void thread_main(std::shared_ptr<Shared> s);
    std::shared_ptr<Shared> s_;
};

}  // namespace queuer::detail
