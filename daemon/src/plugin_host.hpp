// queuerd::PluginHost: loads task plugins (queuer/plugin.h ABI), checks their version block,
// collects the tasks and next-interval functions they register, and adapts them to the engine's
// queuer::TaskFunc / queuer::NextIntervalFunc. Also the host side of the C function table.
#pragma once

#include <queuer/plugin.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "queuer/queuer.hpp"

namespace queuerd {

// What one loaded plugin provides (for logs and `queuerd --check`).
struct PluginInfo {
    std::string path;
    std::string name;     // the plugin's own name (queuer_plugin_def.name)
    std::string version;  // the plugin's own version text
    int abi_major = 0;
    int abi_minor = 0;
    std::vector<std::string> tasks;                // sorted
    std::vector<std::string> next_interval_funcs;  // sorted
};

// A task as a plugin registered it.
struct PluginTask {
    std::string name;
    std::string plugin_path;
    queuer_task_fn fn = nullptr;
    void* user_data = nullptr;
};

struct PluginNextInterval {
    std::string name;
    std::string plugin_path;
    queuer_next_interval_fn fn = nullptr;
    void* user_data = nullptr;
};

// The host side of one running job: what the table functions (is_cancelled, add_sub_job, ...)
// act on. Thread mode wraps a queuer::JobContext; the process-isolation runner forwards to the
// parent over its channel.
class JobBackend {
  public:
    virtual ~JobBackend() = default;
    virtual const std::string& rid() const = 0;
    virtual const std::string& task_name() const = 0;
    virtual bool is_cancelled() = 0;
    // Milliseconds left until the deadline (0 once passed), -1 without one.
    virtual int64_t deadline_ms() = 0;
    // Returns the new job's rid; throws with the reason.
    virtual std::string add_sub_job(std::string_view task, std::string_view params,
                                    std::string_view keyed, std::string_view options) = 0;
    // Default: the process-wide log sink (spdlog unless replaced).
    virtual void log(int level, std::string_view text);
};

// What a plugin task call produced.
struct TaskOutcome {
    bool ok = false;
    std::string result;  // JSON text, "[]" when the task set none
    std::string error;   // when !ok; "task failed" when the task set none
};

// Calls a plugin task for `job`. Never throws on task failure (see TaskOutcome).
TaskOutcome invoke_task(const PluginTask& task, JobBackend& job, int attempt,
                        std::string_view params, std::string_view keyed);

// Where plugin log lines go: level (QUEUER_LOG_*), rid and task ("" outside a job), text.
// Defaults to spdlog; the task runner child replaces it to send lines to its parent.
using PluginLogSink =
    std::function<void(int level, std::string_view rid, std::string_view task, std::string_view)>;
void set_plugin_log_sink(PluginLogSink sink);
// Sends one line to the current sink.
void emit_plugin_log(int level, std::string_view rid, std::string_view task, std::string_view text);
// The default sink: spdlog at the matching level, "plugin task T job R: text".
void log_to_spdlog(int level, std::string_view rid, std::string_view task, std::string_view text);

class PluginHost {
  public:
    PluginHost();
    // Loads every path in order; throws like load().
    explicit PluginHost(const std::vector<std::string>& paths);
    // Calls each plugin's fini and dlclose()s it. No task of this host may still be running.
    ~PluginHost();
    PluginHost(const PluginHost&) = delete;
    PluginHost& operator=(const PluginHost&) = delete;

    // dlopen()s `path` (RTLD_NOW | RTLD_LOCAL), checks the version block, runs init and adds the
    // plugin's tasks and functions. Throws queuer::Error(ErrorKind::Plugin) naming the file: it
    // is not a complete ELF shared object for this machine (check_elf_plugin, before dlopen),
    // cannot be opened (dlerror), has no entry point, was built for another ABI major (expected
    // and found) or a newer minor, its init fails, or it registers a name another loaded plugin
    // (named too) already has. A refused plugin leaves the host unchanged.
    void load(const std::string& path);

    const std::vector<PluginInfo>& plugins() const { return infos_; }
    const std::map<std::string, PluginTask>& plugin_tasks() const { return tasks_; }
    const std::map<std::string, PluginNextInterval>& plugin_next_interval_funcs() const {
        return funcs_;
    }
    std::vector<std::string> paths() const;

    // Engine adapters, by name. They refer to this host, which must outlive them. A TaskFunc runs
    // the plugin task in this process and returns its results, or throws std::runtime_error with
    // the task's error text ("task failed" when it set none).
    std::map<std::string, queuer::TaskFn> tasks() const;
    std::map<std::string, queuer::NextIntervalFunc> next_interval_funcs() const;
    // add_task / add_next_interval_func for every entry above.
    void register_into(queuer::Queuer& queuer) const;

    // Human-readable listing for `queuerd --check`: one block per plugin with path, name,
    // version, ABI, tasks and next-interval functions.
    std::string listing() const;

  private:
    struct Loaded;
    std::vector<std::unique_ptr<Loaded>> loaded_;
    std::vector<PluginInfo> infos_;
    std::map<std::string, PluginTask> tasks_;
    std::map<std::string, PluginNextInterval> funcs_;
};

// The TaskFunc / NextIntervalFunc adapters for one entry (used by PluginHost and isolation).
queuer::TaskFn make_task_func(const PluginTask& task);
queuer::NextIntervalFunc make_next_interval_func(const PluginNextInterval& func);

}  // namespace queuerd
