// Plugin loading (dlopen, version block, init), the host function table handed to plugins, and
// the adapters from plugin tasks to queuer::TaskFunc. No exception ever crosses into plugin code:
// every table function catches everything and reports through its return value.
#include "plugin_host.hpp"

#include "crash_report.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "file_checks.hpp"
#include "queuer/error.hpp"
#include "queuer/json.hpp"
#include "queuer/log.hpp"
#include "queuer/model.hpp"

// The definition behind the opaque handle plugins see. One per task call, on the caller's stack.
struct queuer_job {
    queuerd::JobBackend* backend = nullptr;
    std::optional<std::string> result;
    std::optional<std::string> error;
    std::string last_error;
};

// The registration context behind queuer_plugin_reg, valid during one plugin's init.
struct queuer_plugin_reg {
    std::string path;
    const std::map<std::string, queuerd::PluginTask>* existing_tasks = nullptr;
    const std::map<std::string, queuerd::PluginNextInterval>* existing_funcs = nullptr;
    std::map<std::string, queuerd::PluginTask> tasks;
    std::map<std::string, queuerd::PluginNextInterval> funcs;
    std::string error;  // the first registration refusal
};

namespace queuerd {
namespace {

std::mutex g_sink_mu;
// The file whose init or fini runs on this thread, to name it in log lines outside any job.
thread_local const std::string* t_current_plugin = nullptr;
// Serialises every plugin's init and fini (recursive: a refused load unloads under it).
std::recursive_mutex g_load_mu;
PluginLogSink g_sink;  // empty: spdlog

void emit_log(int level, std::string_view rid, std::string_view task, std::string_view text) {
    PluginLogSink sink;
    {
        std::lock_guard lock(g_sink_mu);
        sink = g_sink;
    }
    if (sink) {
        sink(level, rid, task, text);
    } else {
        log_to_spdlog(level, rid, task, text);
    }
}

std::string_view view(const char* p, size_t n, std::string_view fallback) {
    return p ? std::string_view(p, n) : fallback;
}

// Refuses a name that is invalid or already taken (by this plugin or an earlier one).
bool check_name(queuer_plugin_reg* reg, const char* name, const char* kind, bool task) {
    if (!name) {
        if (reg->error.empty())
            reg->error = fmt::format("plugin {} registered a {} with no name", reg->path, kind);
        return false;
    }
    std::string n(name);
    try {
        queuer::validate_task_name(n, kind);
    } catch (const std::exception& e) {
        if (reg->error.empty())
            reg->error = fmt::format("plugin {} registered a bad {} name \"{}\": {}", reg->path,
                                     kind, n, e.what());
        return false;
    }
    std::string other;
    if (task) {
        if (auto it = reg->existing_tasks->find(n); it != reg->existing_tasks->end())
            other = it->second.plugin_path;
        else if (reg->tasks.count(n))
            other = reg->path;
    } else {
        if (auto it = reg->existing_funcs->find(n); it != reg->existing_funcs->end())
            other = it->second.plugin_path;
        else if (reg->funcs.count(n))
            other = reg->path;
    }
    if (!other.empty()) {
        if (reg->error.empty())
            reg->error = fmt::format(
                "duplicate {} \"{}\": plugin {} registers it, but it is already registered by "
                "plugin {}; remove one of them from the plugins list or rename the {}",
                kind, n, reg->path, other, kind);
        return false;
    }
    return true;
}

// ---- the host function table --------------------------------------------------------------

int host_register_task(queuer_plugin_reg* reg, const char* name, queuer_task_fn fn,
                       void* user_data) noexcept {
    try {
        if (!reg) return QUEUER_ERROR;
        if (!fn) {
            if (reg->error.empty())
                reg->error = fmt::format("plugin {} registered task \"{}\" with no function",
                                         reg->path, name ? name : "");
            return QUEUER_ERROR;
        }
        if (!check_name(reg, name, "task", true)) return QUEUER_ERROR;
        reg->tasks.emplace(name, PluginTask{name, reg->path, fn, user_data});
        return QUEUER_OK;
    } catch (...) {
        return QUEUER_ERROR;
    }
}

int host_register_next_interval(queuer_plugin_reg* reg, const char* name,
                                queuer_next_interval_fn fn, void* user_data) noexcept {
    try {
        if (!reg) return QUEUER_ERROR;
        if (!fn) {
            if (reg->error.empty())
                reg->error = fmt::format(
                    "plugin {} registered next-interval function \"{}\" with no "
                    "function",
                    reg->path, name ? name : "");
            return QUEUER_ERROR;
        }
        if (!check_name(reg, name, "next-interval function", false)) return QUEUER_ERROR;
        reg->funcs.emplace(name, PluginNextInterval{name, reg->path, fn, user_data});
        return QUEUER_OK;
    } catch (...) {
        return QUEUER_ERROR;
    }
}

void host_log(queuer_job* job, int level, const char* text, size_t len) noexcept {
    try {
        std::string_view t = view(text, len, "");
        if (job && job->backend) {
            job->backend->log(level, t);
        } else if (t_current_plugin) {
            emit_log(level, "", "", fmt::format("{}: {}", *t_current_plugin, t));
        } else {
            emit_log(level, "", "", t);
        }
    } catch (...) {
    }
}

int host_add_sub_job(queuer_job* job, const char* task, size_t task_len, const char* params_json,
                     size_t params_len, const char* keyed_json, size_t keyed_len,
                     const char* options_json, size_t options_len, char* out_rid,
                     size_t out_rid_size) noexcept {
    if (!job || !job->backend) return QUEUER_ERROR;
    try {
        if (!task) throw std::invalid_argument("no task name given");
        std::string rid = job->backend->add_sub_job(
            std::string_view(task, task_len), view(params_json, params_len, "[]"),
            view(keyed_json, keyed_len, "{}"), view(options_json, options_len, ""));
        if (out_rid && out_rid_size > 0) {
            size_t n = std::min(rid.size(), out_rid_size - 1);
            std::memcpy(out_rid, rid.data(), n);
            out_rid[n] = '\0';
        }
        return QUEUER_OK;
    } catch (const std::exception& e) {
        try {
            job->last_error = e.what();
        } catch (...) {
        }
    } catch (...) {
        job->last_error.clear();
    }
    return QUEUER_ERROR;
}

int host_is_cancelled(queuer_job* job) noexcept {
    try {
        return job && job->backend && job->backend->is_cancelled() ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

int64_t host_deadline_ms(queuer_job* job) noexcept {
    try {
        return job && job->backend ? job->backend->deadline_ms() : -1;
    } catch (...) {
        return -1;
    }
}

int host_set_result(queuer_job* job, const char* json, size_t len) noexcept {
    if (!job) return QUEUER_ERROR;
    try {
        std::string_view text = view(json, len, "");
        if (!queuer::json::is_valid(text)) {
            job->last_error = "set_result: the results are not valid JSON";
            return QUEUER_ERROR;
        }
        job->result = std::string(text);
        return QUEUER_OK;
    } catch (...) {
        return QUEUER_ERROR;
    }
}

int host_set_error(queuer_job* job, const char* text, size_t len) noexcept {
    if (!job) return QUEUER_ERROR;
    try {
        job->error = std::string(view(text, len, ""));
        return QUEUER_OK;
    } catch (...) {
        return QUEUER_ERROR;
    }
}

size_t host_last_error(queuer_job* job, char* buf, size_t buf_size) noexcept {
    if (!job) return 0;
    const std::string& e = job->last_error;
    if (buf && buf_size > 0) {
        size_t n = std::min(e.size(), buf_size - 1);
        std::memcpy(buf, e.data(), n);
        buf[n] = '\0';
    }
    return e.size();
}

const queuer_host_api kHostApi = {
    sizeof(queuer_host_api),
    QUEUER_PLUGIN_ABI_MAJOR,
    QUEUER_PLUGIN_ABI_MINOR,
    host_register_task,
    host_register_next_interval,
    host_log,
    host_add_sub_job,
    host_is_cancelled,
    host_deadline_ms,
    host_set_result,
    host_set_error,
    host_last_error,
};

// A JobBackend over the engine's JobContext (thread isolation).
class ContextBackend final : public JobBackend {
  public:
    explicit ContextBackend(queuer::JobContext& ctx) : ctx_(ctx) {}
    const std::string& rid() const override { return ctx_.rid(); }
    const std::string& task_name() const override { return ctx_.task_name(); }
    bool is_cancelled() override { return ctx_.is_cancelled(); }
    int64_t deadline_ms() override {
        const auto& d = ctx_.deadline();
        if (!d) return -1;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            *d - std::chrono::steady_clock::now());
        return std::max<int64_t>(0, left.count());
    }
    std::string add_sub_job(std::string_view task, std::string_view params, std::string_view keyed,
                            std::string_view options) override {
        std::optional<queuer::Options> opts;
        if (!options.empty()) opts = queuer::Options::from_json(options);
        return ctx_.add_job_json(task, params, keyed, std::move(opts)).rid;
    }

  private:
    queuer::JobContext& ctx_;
};

}  // namespace

// ---- logging --------------------------------------------------------------------------------

void JobBackend::log(int level, std::string_view text) {
    emit_log(level, rid(), task_name(), text);
}

void emit_plugin_log(int level, std::string_view rid, std::string_view task,
                     std::string_view text) {
    emit_log(level, rid, task, text);
}

void set_plugin_log_sink(PluginLogSink sink) {
    std::lock_guard lock(g_sink_mu);
    g_sink = std::move(sink);
}

void log_to_spdlog(int level, std::string_view rid, std::string_view task, std::string_view text) {
    queuer::log::Level lvl = queuer::log::Level::Info;
    switch (level) {
        case QUEUER_LOG_DEBUG:
            lvl = queuer::log::Level::Debug;
            break;
        case QUEUER_LOG_INFO:
            lvl = queuer::log::Level::Info;
            break;
        case QUEUER_LOG_WARN:
            lvl = queuer::log::Level::Warn;
            break;
        default:
            lvl = queuer::log::Level::Error;
            break;
    }
    if (!queuer::log::enabled(lvl)) return;
    // Through the library's facade, so that structured formats carry the job's rid and task;
    // a plugin's line is capped like a task's error text.
    queuer::log::Fields fields;
    fields.job_rid = rid;
    fields.task = task;
    queuer::log::write(lvl, "plugin: " + queuer::log::capped(text, 4096), fields);
}

// ---- calling tasks --------------------------------------------------------------------------

TaskOutcome invoke_task(const PluginTask& task, JobBackend& backend, int attempt,
                        std::string_view params, std::string_view keyed) {
    // NUL-terminated copies, as the ABI promises.
    const std::string rid = backend.rid();
    const std::string params_s(params.empty() ? std::string_view("[]") : params);
    const std::string keyed_s(keyed.empty() ? std::string_view("{}") : keyed);

    queuer_job job;
    job.backend = &backend;
    queuer_task_call call{};
    call.size = sizeof(queuer_task_call);
    call.host = &kHostApi;
    call.rid = rid.c_str();
    call.rid_len = rid.size();
    call.task_name = task.name.c_str();
    call.task_name_len = task.name.size();
    call.attempt = attempt;
    call.params_json = params_s.c_str();
    call.params_len = params_s.size();
    call.keyed_json = keyed_s.c_str();
    call.keyed_len = keyed_s.size();
    call.user_data = task.user_data;

    int rc = task.fn(&job, &call);

    TaskOutcome out;
    if (rc == QUEUER_OK) {
        out.ok = true;
        out.result = job.result ? std::move(*job.result) : std::string("[]");
    } else {
        out.ok = false;
        out.error =
            job.error && !job.error->empty() ? std::move(*job.error) : std::string("task failed");
    }
    return out;
}

queuer::TaskFn make_task_func(const PluginTask& task) {
    const PluginTask* t = &task;
    return [t](queuer::JobContext& ctx) -> queuer::TaskResult {
        // Named in queuerd's crash report should this task bring the process down.
        crash::JobSlot crash_slot(ctx.rid(), t->name);
        ContextBackend backend(ctx);
        TaskOutcome out =
            invoke_task(*t, backend, ctx.attempt(), ctx.parameters(), ctx.parameters_keyed());
        return out.ok ? queuer::TaskResult::success(std::move(out.result))
                      : queuer::TaskResult::failure(std::move(out.error));
    };
}

queuer::NextIntervalFunc make_next_interval_func(const PluginNextInterval& func) {
    const PluginNextInterval* f = &func;
    return [f](queuer::TimePoint scheduled_at, int count) -> queuer::TimePoint {
        int64_t prev = scheduled_at.time_since_epoch().count();
        int64_t next = 0;
        if (f->fn(prev, static_cast<int32_t>(count), &next, f->user_data) != QUEUER_OK)
            throw std::runtime_error(
                fmt::format("next-interval function \"{}\" ({}) failed for {} (count {})", f->name,
                            f->plugin_path, queuer::format_time(scheduled_at), count));
        return queuer::TimePoint(std::chrono::microseconds(next));
    };
}

// ---- loading --------------------------------------------------------------------------------

struct PluginHost::Loaded {
    std::string path;
    void* handle = nullptr;
    void (*fini)(void) = nullptr;

    ~Loaded() {
        if (fini) {
            std::lock_guard lock(g_load_mu);
            t_current_plugin = &path;
            fini();
            t_current_plugin = nullptr;
        }
        if (handle) dlclose(handle);
    }
};

PluginHost::PluginHost() = default;

PluginHost::PluginHost(const std::vector<std::string>& paths) {
    for (const auto& p : paths) load(p);
}

PluginHost::~PluginHost() {
    // Unload in reverse order of loading.
    while (!loaded_.empty()) loaded_.pop_back();
}

namespace {
[[noreturn]] void refuse(std::string message) {
    throw queuer::Error(queuer::ErrorKind::Plugin, std::move(message));
}
template <class T>
bool has_field(const queuer_plugin_def* def, size_t offset) {
    return def->size >= offset + sizeof(T);
}
}  // namespace

void PluginHost::load(const std::string& path) {
    // Plugins' init and fini never run concurrently, even across hosts (the ABI promises it).
    std::lock_guard load_lock(g_load_mu);
    auto loaded = std::make_unique<Loaded>();
    loaded->path = path;

    // A truncated or foreign file must never reach dlopen (a truncated one dies of SIGBUS there).
    check_elf_plugin(path);
    dlerror();
    loaded->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!loaded->handle) {
        const char* err = dlerror();
        refuse(fmt::format("cannot load plugin {}: {}", path, err ? err : "unknown dlopen error"));
    }

    dlerror();
    void* sym = dlsym(loaded->handle, QUEUER_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        refuse(
            fmt::format("plugin {} has no entry point {}: not a queuerd plugin, or built without "
                        "QUEUER_PLUGIN_DEFINE / QUEUER_PLUGIN_CPP",
                        path, QUEUER_PLUGIN_ENTRY_SYMBOL));
    }
    queuer_plugin_entry_fn entry;
    static_assert(sizeof entry == sizeof sym);
    std::memcpy(&entry, &sym, sizeof entry);  // dlsym's object pointer to a function pointer

    const queuer_plugin_def* def = entry();
    if (!def) refuse(fmt::format("plugin {}: {} returned NULL", path, QUEUER_PLUGIN_ENTRY_SYMBOL));

    // The version block, before anything else.
    if (def->size < offsetof(queuer_plugin_def, name)) {
        refuse(
            fmt::format("plugin {} reports a {}-byte descriptor, too small for the version "
                        "block; it was not built with queuer/plugin.h",
                        path, def->size));
    }
    if (def->abi_major != QUEUER_PLUGIN_ABI_MAJOR) {
        refuse(fmt::format(
            "plugin {} was built for plugin ABI {}.{}, but this queuerd provides ABI {}.{} "
            "(expected major {}, found {}); rebuild the plugin against queuer-plugin-sdk {}.x",
            path, def->abi_major, def->abi_minor, QUEUER_PLUGIN_ABI_MAJOR, QUEUER_PLUGIN_ABI_MINOR,
            QUEUER_PLUGIN_ABI_MAJOR, def->abi_major, QUEUER_PLUGIN_ABI_MAJOR));
    }
    if (def->abi_minor > QUEUER_PLUGIN_ABI_MINOR) {
        refuse(fmt::format(
            "plugin {} was built for plugin ABI {}.{}, newer than this queuerd's ABI {}.{} "
            "(expected minor <= {}, found {}); upgrade queuerd or rebuild the plugin against an "
            "older SDK",
            path, def->abi_major, def->abi_minor, QUEUER_PLUGIN_ABI_MAJOR, QUEUER_PLUGIN_ABI_MINOR,
            QUEUER_PLUGIN_ABI_MINOR, def->abi_minor));
    }

    // Only fields that fit within the size the plugin reports.
    PluginInfo info;
    info.path = path;
    info.abi_major = def->abi_major;
    info.abi_minor = def->abi_minor;
    if (has_field<const char*>(def, offsetof(queuer_plugin_def, name)) && def->name)
        info.name = def->name;
    if (has_field<const char*>(def, offsetof(queuer_plugin_def, version)) && def->version)
        info.version = def->version;
    decltype(def->init) init = nullptr;
    if (has_field<decltype(def->init)>(def, offsetof(queuer_plugin_def, init))) init = def->init;
    decltype(def->fini) fini = nullptr;
    if (has_field<decltype(def->fini)>(def, offsetof(queuer_plugin_def, fini))) fini = def->fini;
    if (!init) refuse(fmt::format("plugin {} has no init function", path));

    queuer_plugin_reg reg;
    reg.path = path;
    reg.existing_tasks = &tasks_;
    reg.existing_funcs = &funcs_;
    int rc = QUEUER_ERROR;
    t_current_plugin = &path;
    try {
        rc = init(&kHostApi, &reg);
    } catch (...) {
        // A C++ plugin that let an exception escape init: refuse it like a failed init.
        rc = QUEUER_ERROR;
    }
    t_current_plugin = nullptr;
    if (rc == QUEUER_OK) loaded->fini = fini;  // fini only after a successful init
    if (!reg.error.empty()) refuse(reg.error);
    if (rc != QUEUER_OK)
        refuse(
            fmt::format("plugin {} ({}) failed to initialise (init returned {}); see the log "
                        "lines above for its reason",
                        path, info.name.empty() ? "unnamed" : info.name, rc));

    for (const auto& [name, t] : reg.tasks) info.tasks.push_back(name);
    for (const auto& [name, f] : reg.funcs) info.next_interval_funcs.push_back(name);
    tasks_.merge(reg.tasks);
    funcs_.merge(reg.funcs);
    infos_.push_back(std::move(info));
    loaded_.push_back(std::move(loaded));
}

std::vector<std::string> PluginHost::paths() const {
    std::vector<std::string> out;
    for (const auto& i : infos_) out.push_back(i.path);
    return out;
}

std::map<std::string, queuer::TaskFn> PluginHost::tasks() const {
    std::map<std::string, queuer::TaskFn> out;
    for (const auto& [name, t] : tasks_) out.emplace(name, make_task_func(t));
    return out;
}

std::map<std::string, queuer::NextIntervalFunc> PluginHost::next_interval_funcs() const {
    std::map<std::string, queuer::NextIntervalFunc> out;
    for (const auto& [name, f] : funcs_) out.emplace(name, make_next_interval_func(f));
    return out;
}

void PluginHost::register_into(queuer::Queuer& queuer) const {
    for (auto& [name, fn] : tasks()) queuer.add_task(name, std::move(fn));
    for (auto& [name, fn] : next_interval_funcs())
        queuer.add_next_interval_func(name, std::move(fn));
}

std::string PluginHost::listing() const {
    std::string out;
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) {
            if (!s.empty()) s += ", ";
            s += x;
        }
        return s.empty() ? std::string("(none)") : s;
    };
    for (const auto& i : infos_) {
        out += fmt::format("plugin {}\n  name: {}\n  version: {}\n  abi: {}.{}\n", i.path,
                           i.name.empty() ? "(unnamed)" : i.name,
                           i.version.empty() ? "(none)" : i.version, i.abi_major, i.abi_minor);
        out += fmt::format("  tasks: {}\n  next-interval functions: {}\n", join(i.tasks),
                           join(i.next_interval_funcs));
    }
    return out;
}

}  // namespace queuerd
