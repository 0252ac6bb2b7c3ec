// queuer/plugin.hpp: an optional header-only C++17 layer over queuer/plugin.h.
//
// It gives tasks typed access to their parameters (parsed with RapidJSON), turns exceptions into
// job errors (no exception ever crosses the C boundary), and registers tasks from ordinary
// callables:
//
//     #include <queuer/plugin.hpp>
//     static std::string hello(queuer::plugin::Job& job) {
//         return queuer::plugin::json_array(
//             {queuer::plugin::json_string("hello " + job.params().get<std::string>(0))});
//     }
//     QUEUER_PLUGIN_CPP("hello", "1.0.0", reg) { reg.task("hello", hello); }
//
// A task returns its results as JSON text ("" = no result) or throws; the exception's what()
// becomes the job's error. Everything here is per plugin (no globals shared between plugins).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "queuer/plugin.h"

namespace queuer::plugin {

// Thrown for a missing or mistyped parameter; becomes the job's error like any exception.
class ParamError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Thrown when a host call fails (e.g. add_sub_job); what() is the host's reason.
class HostError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// ---- JSON helpers -------------------------------------------------------------------------

// Serialises a RapidJSON value as compact JSON text.
inline std::string to_json(const rapidjson::Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return std::string(buf.GetString(), buf.GetSize());
}

// A JSON string literal (with quotes, escaped).
inline std::string json_string(std::string_view s) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return std::string(buf.GetString(), buf.GetSize());
}

// "[a,b,...]" from items that are already JSON text.
inline std::string json_array(std::initializer_list<std::string> items) {
    std::string out = "[";
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += ',';
        first = false;
        out += item;
    }
    out += ']';
    return out;
}

namespace detail {
template <class T>
T convert(const rapidjson::Value& v, const std::string& what) {
    if constexpr (std::is_same_v<T, bool>) {
        if (v.IsBool()) return v.GetBool();
        throw ParamError(what + " must be a boolean");
    } else if constexpr (std::is_integral_v<T>) {
        if (v.IsInt64()) {
            int64_t n = v.GetInt64();
            if constexpr (std::is_signed_v<T>) {
                if (n >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                    n <= static_cast<int64_t>(std::numeric_limits<T>::max()))
                    return static_cast<T>(n);
            } else {
                if (n >= 0 && static_cast<uint64_t>(n) <= std::numeric_limits<T>::max())
                    return static_cast<T>(n);
            }
        } else if (v.IsUint64() && std::is_unsigned_v<T> &&
                   v.GetUint64() <= static_cast<uint64_t>(std::numeric_limits<T>::max())) {
            return static_cast<T>(v.GetUint64());
        }
        throw ParamError(what + " must be an integer in range");
    } else if constexpr (std::is_floating_point_v<T>) {
        if (v.IsNumber()) return static_cast<T>(v.GetDouble());
        throw ParamError(what + " must be a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
        throw ParamError(what + " must be a string");
    } else {
        static_assert(sizeof(T) == 0, "unsupported parameter type");
    }
}
}  // namespace detail

// Positional (JSON array) and keyed (JSON object) parameters of a job, parsed once.
class Params {
  public:
    Params(std::string_view positional, std::string_view keyed) {
        positional_.Parse(positional.data(), positional.size());
        if (positional_.HasParseError() || !positional_.IsArray())
            throw ParamError("positional parameters are not a JSON array");
        if (keyed.empty()) keyed = "{}";
        keyed_.Parse(keyed.data(), keyed.size());
        if (keyed_.HasParseError() || !keyed_.IsObject())
            throw ParamError("keyed parameters are not a JSON object");
    }

    size_t size() const { return positional_.Size(); }
    bool has(size_t i) const { return i < size(); }
    // The raw value of parameter i; throws ParamError when there is none.
    const rapidjson::Value& at(size_t i) const {
        if (!has(i))
            throw ParamError("parameter " + std::to_string(i) + " is missing (got " +
                             std::to_string(size()) + ")");
        return positional_[static_cast<rapidjson::SizeType>(i)];
    }
    // Parameter i as T (bool, integers, floating point, std::string); throws ParamError.
    template <class T>
    T get(size_t i) const {
        return detail::convert<T>(at(i), "parameter " + std::to_string(i));
    }
    template <class T>
    T get_or(size_t i, T fallback) const {
        return has(i) ? get<T>(i) : fallback;
    }

    bool has_keyed(std::string_view key) const {
        return keyed_.HasMember(rapidjson::Value(
            rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size()))));
    }
    const rapidjson::Value& keyed_at(std::string_view key) const {
        auto it = keyed_.FindMember(rapidjson::Value(
            rapidjson::StringRef(key.data(), static_cast<rapidjson::SizeType>(key.size()))));
        if (it == keyed_.MemberEnd())
            throw ParamError("keyed parameter \"" + std::string(key) + "\" is missing");
        return it->value;
    }
    template <class T>
    T keyed(std::string_view key) const {
        return detail::convert<T>(keyed_at(key), "keyed parameter \"" + std::string(key) + "\"");
    }
    template <class T>
    T keyed_or(std::string_view key, T fallback) const {
        return has_keyed(key) ? keyed<T>(key) : fallback;
    }

    const rapidjson::Document& positional() const { return positional_; }
    const rapidjson::Document& keyed_object() const { return keyed_; }

  private:
    rapidjson::Document positional_;
    rapidjson::Document keyed_;
};

enum class Level {
    Debug = QUEUER_LOG_DEBUG,
    Info = QUEUER_LOG_INFO,
    Warn = QUEUER_LOG_WARN,
    Error = QUEUER_LOG_ERROR
};

// The running job: a thin view over the C handle and call. Valid only during the task call.
class Job {
  public:
    Job(queuer_job* handle, const queuer_task_call* call) : handle_(handle), call_(call) {}

    std::string_view rid() const { return {call_->rid, call_->rid_len}; }
    std::string_view task_name() const { return {call_->task_name, call_->task_name_len}; }
    int attempt() const { return call_->attempt; }
    std::string_view params_json() const { return {call_->params_json, call_->params_len}; }
    std::string_view keyed_json() const { return {call_->keyed_json, call_->keyed_len}; }
    // Parsed on first use.
    const Params& params() const {
        if (!params_) params_.emplace(params_json(), keyed_json());
        return *params_;
    }

    bool cancelled() const { return host().is_cancelled(handle_) != 0; }
    // Time left before the job's timeout; nullopt when it has none.
    std::optional<std::chrono::milliseconds> remaining() const {
        int64_t ms = host().deadline_ms(handle_);
        if (ms < 0) return std::nullopt;
        return std::chrono::milliseconds(ms);
    }

    void log(Level level, std::string_view text) const {
        host().log(handle_, static_cast<int>(level), text.data(), text.size());
    }
    void info(std::string_view text) const { log(Level::Info, text); }
    void warn(std::string_view text) const { log(Level::Warn, text); }

    // Adds a sub-job (this job is recorded as its parent) and returns its rid. Throws HostError.
    std::string add_sub_job(std::string_view task, std::string_view params_json = "[]",
                            std::string_view keyed_json = "{}",
                            std::string_view options_json = {}) const {
        char rid[QUEUER_RID_BUFSIZE] = {0};
        int rc = host().add_sub_job(handle_, task.data(), task.size(), params_json.data(),
                                    params_json.size(), keyed_json.data(), keyed_json.size(),
                                    options_json.empty() ? nullptr : options_json.data(),
                                    options_json.size(), rid, sizeof rid);
        if (rc != QUEUER_OK)
            throw HostError("add_sub_job(" + std::string(task) + "): " + last_error());
        return std::string(rid);
    }

    // The reason the last failed host call on this job failed.
    std::string last_error() const {
        char buf[512];
        size_t n = host().last_error(handle_, buf, sizeof buf);
        if (n == 0) return "unknown error";
        if (n < sizeof buf) return std::string(buf, n);
        std::string big(n + 1, '\0');
        host().last_error(handle_, big.data(), big.size());
        big.resize(n);
        return big;
    }

    const queuer_host_api& host() const { return *call_->host; }
    queuer_job* handle() const { return handle_; }

  private:
    queuer_job* handle_;
    const queuer_task_call* call_;
    mutable std::optional<Params> params_;
};

using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;
// A task: results as JSON text ("" = no result), or throw.
using TaskFunc = std::function<std::string(Job&)>;
// A next-interval function: next scheduled time from the previous one and the run count.
using NextIntervalFunc = std::function<TimePoint(TimePoint previous, int count)>;

// Collects a plugin's tasks and functions and registers them with the host during init. One
// instance per plugin (QUEUER_PLUGIN_CPP defines it); entries live until the plugin unloads.
class Registry {
  public:
    void task(std::string name, TaskFunc fn) {
        tasks_.push_back({std::move(name), std::move(fn)});
        auto& e = tasks_.back();
        check(host_->register_task(reg_, e.name.c_str(), &Registry::call_task, &e), e.name);
    }
    void next_interval(std::string name, NextIntervalFunc fn) {
        funcs_.push_back({std::move(name), std::move(fn)});
        auto& e = funcs_.back();
        check(host_->register_next_interval(reg_, e.name.c_str(), &Registry::call_next, &e),
              e.name);
    }
    // Runs `fn` when the plugin is unloaded (queuerd stopping), after every task has returned,
    // before the file is closed: release what the setup body acquired (threads, connections,
    // library handles). Callbacks run in reverse order of registration; the host table (log)
    // still works in them; an exception is logged and the next callback runs. A setup body that
    // fails (throws) has its callbacks run at once. Only valid during the setup body.
    void on_unload(std::function<void()> fn) {
        if (!reg_) throw std::logic_error("on_unload() is only valid during the setup body");
        unload_.back().push_back(std::move(fn));
    }
    const queuer_host_api& host() const { return *host_; }
    // Logs outside of any job (e.g. during setup).
    void log(Level level, std::string_view text) const {
        host_->log(nullptr, static_cast<int>(level), text.data(), text.size());
    }

    // Runs `setup` with the host table; never lets an exception out.
    // A host that loads the same file twice (or two hosts in one process) calls init twice and
    // fini twice: entries accumulate and are dropped only after the last fini; each fini runs
    // the on_unload callbacks of the most recent init still in effect.
    template <class Setup>
    int init(const queuer_host_api* host, queuer_plugin_reg* reg, Setup&& setup) noexcept {
        host_ = host;
        reg_ = reg;
        int rc = QUEUER_OK;
        try {
            unload_.emplace_back();
            setup(*this);
        } catch (const std::exception& e) {
            log(Level::Error, std::string("plugin init failed: ") + e.what());
            rc = QUEUER_ERROR;
        } catch (...) {
            log(Level::Error, "plugin init failed: unknown exception");
            rc = QUEUER_ERROR;
        }
        reg_ = nullptr;
        if (rc == QUEUER_OK) {
            ++inits_;
        } else if (!unload_.empty()) {
            run_unload();  // the host calls no fini after a failed init
        }
        return rc;
    }
    void fini() noexcept {
        if (!unload_.empty()) run_unload();
        if (inits_ > 0 && --inits_ == 0) {
            tasks_.clear();
            funcs_.clear();
        }
    }

  private:
    struct TaskEntry {
        std::string name;
        TaskFunc fn;
    };
    struct FuncEntry {
        std::string name;
        NextIntervalFunc fn;
    };

    // Runs and drops the newest generation of on_unload callbacks, newest first.
    void run_unload() noexcept {
        std::vector<std::function<void()>> fns;
        try {
            fns = std::move(unload_.back());
            unload_.pop_back();
        } catch (...) {
            return;
        }
        for (auto it = fns.rbegin(); it != fns.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception& e) {
                try {
                    log(Level::Error, std::string("on_unload callback failed: ") + e.what());
                } catch (...) {
                }
            } catch (...) {
                log(Level::Error, "on_unload callback failed: unknown exception");
            }
        }
    }

    static void check(int rc, const std::string& name) {
        if (rc != QUEUER_OK) throw std::runtime_error("host refused to register \"" + name + "\"");
    }
    static void set_error(queuer_job* job, const queuer_task_call* call, const char* text) {
        call->host->set_error(job, text, std::strlen(text));
    }
    static int call_task(queuer_job* job, const queuer_task_call* call) noexcept {
        auto* e = static_cast<TaskEntry*>(call->user_data);
        try {
            Job j(job, call);
            std::string result = e->fn(j);
            if (!result.empty() &&
                call->host->set_result(job, result.data(), result.size()) != QUEUER_OK) {
                set_error(job, call, "task returned results that are not valid JSON");
                return QUEUER_ERROR;
            }
            return QUEUER_OK;
        } catch (const std::exception& ex) {
            set_error(job, call, ex.what());
        } catch (...) {
            set_error(job, call, "unknown exception");
        }
        return QUEUER_ERROR;
    }
    static int call_next(int64_t prev_us, int32_t count, int64_t* out_next_us,
                         void* user_data) noexcept {
        auto* e = static_cast<FuncEntry*>(user_data);
        try {
            TimePoint next = e->fn(TimePoint(std::chrono::microseconds(prev_us)), count);
            *out_next_us = next.time_since_epoch().count();
            return QUEUER_OK;
        } catch (...) {
            return QUEUER_ERROR;
        }
    }

    const queuer_host_api* host_ = nullptr;
    queuer_plugin_reg* reg_ = nullptr;
    std::deque<TaskEntry> tasks_;  // deque: entries never move, the host keeps their address
    std::deque<FuncEntry> funcs_;
    std::vector<std::vector<std::function<void()>>> unload_;  // one generation per init
    int inits_ = 0;  // queuerd runs init and fini of all plugins one at a time
};

}  // namespace queuer::plugin

// Defines the plugin's entry point and a setup function that receives a Registry named REG:
//     QUEUER_PLUGIN_CPP("examples", "1.0.0", reg) { reg.task("echo", echo); }
// Use once, at file scope, in one source file of the plugin.
#define QUEUER_PLUGIN_CPP(NAME, VERSION, REG)                                             \
    static void queuer_plugin_setup_(::queuer::plugin::Registry& REG);                    \
    static ::queuer::plugin::Registry queuer_plugin_registry_;                            \
    static int queuer_plugin_init_(const queuer_host_api* host, queuer_plugin_reg* reg) { \
        return queuer_plugin_registry_.init(host, reg, queuer_plugin_setup_);             \
    }                                                                                     \
    static void queuer_plugin_fini_(void) {                                               \
        queuer_plugin_registry_.fini();                                                   \
    }                                                                                     \
    QUEUER_PLUGIN_DEFINE(NAME, VERSION, queuer_plugin_init_, queuer_plugin_fini_)         \
    static void queuer_plugin_setup_(::queuer::plugin::Registry& REG)
