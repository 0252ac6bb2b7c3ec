// Test plugin for the C++ layer's on_unload(): logs when each callback runs, in order, and
// can fail its setup on demand (QUEUER_TEST_UNLOAD_FAIL=1) after registering a callback.
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <queuer/plugin.hpp>

namespace qp = queuer::plugin;

namespace {
int g_inits = 0;
}

QUEUER_PLUGIN_CPP("cpp_unload", "1.0.0", reg) {
    int n = ++g_inits;
    reg.task("unload_probe", [](qp::Job&) { return std::string("[]"); });
    const queuer_host_api* host = &reg.host();
    auto say = [host](const std::string& text) {
        host->log(nullptr, QUEUER_LOG_INFO, text.data(), text.size());
    };
    reg.on_unload([say, n] { say("unload first-registered " + std::to_string(n)); });
    reg.on_unload([say, n] { say("unload second-registered " + std::to_string(n)); });
    reg.on_unload([] { throw std::runtime_error("cleanup exploded"); });
    const char* fail = std::getenv("QUEUER_TEST_UNLOAD_FAIL");
    if (fail && std::string(fail) == "1") throw std::runtime_error("setup failed on purpose");
}
