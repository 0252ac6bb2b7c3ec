// A queuerd task plugin: one task, "hello", that greets its first parameter.
//   queuerctl add job --task hello --params '["world"]'   ->   results ["hello, world"]
#include <queuer/plugin.hpp>

namespace qp = queuer::plugin;

static std::string hello(qp::Job& job) {
    std::string who = job.params().get_or<std::string>(0, "stranger");
    job.info("greeting " + who);
    return qp::json_array({qp::json_string("hello, " + who)});
}

QUEUER_PLUGIN_CPP("hello", "1.0.0", reg) {
    reg.task("hello", hello);
}
