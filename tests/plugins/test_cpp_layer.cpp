// The C++ layer's on_unload(): callbacks run when the plugin is unloaded, newest first, once per
// successful init (a host loading the file twice unloads twice), at once after a failed setup,
// and an exception in one is logged without stopping the others.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "plugin_host.hpp"
#include "queuer/error.hpp"

namespace {

struct Captured {
    std::mutex mu;
    std::vector<std::string> lines;
};

class CppLayer : public ::testing::Test {
  protected:
    CppLayer() {
        auto c = captured_;
        queuerd::set_plugin_log_sink(
            [c](int, std::string_view, std::string_view, std::string_view text) {
                std::lock_guard lock(c->mu);
                c->lines.emplace_back(text);
            });
    }
    ~CppLayer() override {
        queuerd::set_plugin_log_sink(nullptr);
        ::unsetenv("QUEUER_TEST_UNLOAD_FAIL");
    }
    // Lines containing "unload" or "cleanup", with the plugin path prefix removed.
    std::vector<std::string> unload_lines() {
        std::lock_guard lock(captured_->mu);
        std::vector<std::string> out;
        for (const auto& l : captured_->lines) {
            auto pos = l.find(": ");
            std::string text = pos == std::string::npos ? l : l.substr(pos + 2);
            if (text.find("unload") != std::string::npos ||
                text.find("cleanup") != std::string::npos)
                out.push_back(text);
        }
        return out;
    }
    std::shared_ptr<Captured> captured_ = std::make_shared<Captured>();
};

const std::string kPlugin = QUEUER_CPP_UNLOAD_PLUGIN;

TEST_F(CppLayer, OnUnloadRunsNewestFirstOncePerInit) {
    auto a = std::make_unique<queuerd::PluginHost>();
    a->load(kPlugin);
    auto b = std::make_unique<queuerd::PluginHost>();
    b->load(kPlugin);  // same file, same globals: a second init
    EXPECT_TRUE(unload_lines().empty());
    b.reset();
    auto after_b = unload_lines();
    ASSERT_EQ(after_b.size(), 3u);
    EXPECT_NE(after_b[0].find("cleanup exploded"), std::string::npos) << after_b[0];
    EXPECT_EQ(after_b[1], "unload second-registered 2");
    EXPECT_EQ(after_b[2], "unload first-registered 2");
    // The first host's tasks still work: the second fini dropped nothing of its own.
    EXPECT_EQ(a->plugin_tasks().count("unload_probe"), 1u);
    a.reset();
    auto all = unload_lines();
    ASSERT_EQ(all.size(), 6u);
    EXPECT_EQ(all[4], "unload second-registered 1");
    EXPECT_EQ(all[5], "unload first-registered 1");
}

TEST_F(CppLayer, FailedSetupRunsItsCallbacksAtOnce) {
    ::setenv("QUEUER_TEST_UNLOAD_FAIL", "1", 1);
    queuerd::PluginHost host;
    EXPECT_THROW(host.load(kPlugin), queuer::Error);
    auto lines = unload_lines();
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_NE(lines[1].find("unload second-registered"), std::string::npos) << lines[1];
    EXPECT_NE(lines[2].find("unload first-registered"), std::string::npos) << lines[2];
}

}  // namespace
