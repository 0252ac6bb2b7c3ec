// plugin_load_tool: loads plugins with queuerd's PluginHost and prints what they provide; with
// --run TASK PARAMS_JSON also runs one task in-process and prints "result: ..." or "error: ...".
// Used by the out-of-tree template test.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "plugin_host.hpp"

namespace {
class ToolBackend final : public queuerd::JobBackend {
  public:
    explicit ToolBackend(std::string task) : task_(std::move(task)) {}
    const std::string& rid() const override { return rid_; }
    const std::string& task_name() const override { return task_; }
    bool is_cancelled() override { return false; }
    int64_t deadline_ms() override { return -1; }
    std::string add_sub_job(std::string_view, std::string_view, std::string_view,
                            std::string_view) override {
        throw std::runtime_error("plugin_load_tool cannot add sub-jobs");
    }

  private:
    std::string rid_ = "00000000-0000-0000-0000-000000000000";
    std::string task_;
};
}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> paths;
    std::string task, params = "[]";
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--run" && i + 2 < argc) {
            task = argv[++i];
            params = argv[++i];
        } else {
            paths.push_back(a);
        }
    }
    try {
        queuerd::PluginHost host(paths);
        fmt::print("{}", host.listing());
        if (!task.empty()) {
            auto it = host.plugin_tasks().find(task);
            if (it == host.plugin_tasks().end()) {
                fmt::print(stderr, "no task {}\n", task);
                return 1;
            }
            ToolBackend backend(task);
            auto out = queuerd::invoke_task(it->second, backend, 1, params, "{}");
            if (!out.ok) {
                fmt::print("error: {}\n", out.error);
                return 1;
            }
            fmt::print("result: {}\n", out.result);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
    return 0;
}
