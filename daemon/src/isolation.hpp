// Process isolation (`worker.isolation: process`): plugin tasks run in a pool of child processes,
// one job at a time each, so a task that crashes, aborts or exits fails only its job.
//
// Each child is the task runner executable (queuerd-task-runner, daemon/runner/runner_main.cpp),
// started with fork+exec from one long-lived spawner thread (so PR_SET_PDEATHSIG, which fires
// when the *thread* that forked exits, is tied to the pool's lifetime) and handed one end of a
// socketpair as fd 3. It loads the same plugins and then serves jobs. Messages are frames of
// [u32 length][u8 type][fields as u32 length + bytes]; the parent sends RUN and CANCEL, the child
// answers DONE and may send LOG lines and SUBJOB requests, which the parent executes through the
// job's JobContext (so the parent is recorded) and answers.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plugin_host.hpp"
#include "queuer/queuer.hpp"

namespace queuerd {

struct IsolationOptions {
    // The task runner executable and any leading arguments (e.g. a hidden-mode flag); the pool
    // appends "--fd 3" and "--plugin PATH" per plugin.
    std::string runner_path;
    std::vector<std::string> runner_args;
    std::vector<std::string> plugin_paths;
    // Variables (names or PREFIX_*) passed to the children beyond the default allow-list
    // (worker.task_environment; child_env.hpp). Secrets are never passed.
    std::vector<std::string> task_environment;
    // After a job is cancelled or passes its deadline, how long the child may take to return
    // before it is killed (SIGKILL) and replaced.
    std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
    // How long a new child may take to load the plugins and report ready.
    std::chrono::milliseconds start_timeout{std::chrono::seconds(30)};
};

// $QUEUERD_TASK_RUNNER when set, else "queuerd-task-runner" in the directory of the running
// executable (/proc/self/exe): build/daemon/ in the build tree, bin/ when installed.
std::string default_runner_path();

class ProcessPool {
  public:
    explicit ProcessPool(IsolationOptions options);
    // Closes every idle child's channel, waits briefly, then SIGKILLs and reaps what is left.
    // Children still busy with a job are killed when that job returns.
    ~ProcessPool();
    ProcessPool(const ProcessPool&) = delete;
    ProcessPool& operator=(const ProcessPool&) = delete;

    // Runs ctx.task_name() in an idle child (starting one when none is idle). Returns the results
    // JSON, or a failure: the task's error text; "task crashed: signal N (SIG...)"; "task exited
    // with status N"; "task killed: ..." after a cancellation or deadline it did not honour
    // within kill_grace; or why a child cannot be started.
    queuer::TaskResult run(queuer::JobContext& ctx);

    // A TaskFunc running in this pool for every task of `host` (they keep the pool's internals
    // alive, so they may outlive this object).
    std::map<std::string, queuer::TaskFn> tasks(const PluginHost& host) const;
    // add_task for every task through the pool; next-interval functions stay in-process (they are
    // pure and fast, and the engine calls them outside any job).
    void register_into(const PluginHost& host, queuer::Queuer& queuer) const;

    // Starts children until `n` are idle; throws queuer::Error(Plugin) when one fails to start
    // (e.g. the runner is missing or a plugin does not load in it). Good for failing fast.
    void prestart(size_t n);

    size_t children() const;  // live children, idle or busy
    size_t idle() const;

  private:
    struct State;
    std::shared_ptr<State> state_;
};

// The child side: serves jobs on `fd` until the parent closes it. Returns the exit status.
int run_task_runner(int fd, const std::vector<std::string>& plugin_paths);
// main() of queuerd-task-runner: "--fd N [--plugin PATH]...".
int task_runner_main(int argc, char** argv);

}  // namespace queuerd
