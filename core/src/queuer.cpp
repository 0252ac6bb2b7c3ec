// Queuer: worker registration, task registry, lifecycle; JobContext.
#include "queuer/queuer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "engine.hpp"
#include "queuer/error.hpp"

namespace queuer {

// ---- JobContext ----

std::string JobContext::cancel_reason() const {
    std::lock_guard g(mu_);
    return reason_;
}

void JobContext::cancel(std::string reason) {
    {
        std::lock_guard g(mu_);
        if (reason_.empty()) reason_ = std::move(reason);
    }
    cancelled_.store(true, std::memory_order_relaxed);
}

Job JobContext::add_job_json(std::string_view task, std::string_view parameters,
                             std::string_view parameters_keyed, std::optional<Options> options) {
    if (!init_.client) throw Error(ErrorKind::Invalid, "this job context cannot add jobs");
    Options o = options.value_or(Options{});
    o.parent_rid = init_.rid;
    return init_.client->add_job_json(task, parameters, parameters_keyed, std::move(o));
}

// ---- Queuer ----

Queuer::Queuer(std::string name, int max_concurrency, std::string_view encryption_key,
               DatabaseConfig cfg, std::optional<OnError> on_error, EngineOptions engine)
    : Client(std::move(cfg), encryption_key, true, 4) {
    validate_task_name(name, "worker name");
    if (max_concurrency < 1 || max_concurrency > 1000)
        throw Error(ErrorKind::Invalid,
                    fmt::format("max_concurrency must be 1..1000, not {}", max_concurrency));
    if (on_error) on_error->validate();
    if (engine.prefetch < 0)
        throw Error(ErrorKind::Invalid,
                    fmt::format("prefetch must be 0 or more, not {}", engine.prefetch));
    set_default_on_error(on_error);
    std::string rid;
    {
        auto c = pool_->acquire();
        db::Params p;
        p.add(name).add(on_error ? on_error->to_json() : std::string("{}")).add(max_concurrency);
        auto r = c->exec(
            "INSERT INTO worker (name, options, max_concurrency, status) "
            "VALUES ($1, $2::jsonb, $3::int, 'READY') RETURNING rid",
            p);
        rid = r.str(0, 0);
    }
    worker_ = get_worker(rid);
    engine_ = std::make_unique<Engine>(*this, std::move(engine));
    engine_->set_max_concurrency(max_concurrency);
}

Queuer::~Queuer() {
    try {
        stop();
    } catch (const std::exception& e) {
        spdlog::error("stopping the worker failed: {}", e.what());
    }
}

void Queuer::update_worker_row() {
    auto c = pool_->acquire();
    db::Params p;
    p.add(worker_.rid)
        .add(worker_.options ? worker_.options->to_json() : std::string("{}"))
        .add_array(worker_.available_tasks)
        .add_array(worker_.available_next_interval)
        .add(worker_.max_concurrency);
    // Only the fields we own; the status is changed by compare-and-set elsewhere. queuerd keeps
    // its host and pid under options.queuerd (the reference clients ignore the key): kept.
    c->exec(
        "UPDATE worker SET options = CASE WHEN jsonb_typeof(options -> 'queuerd') = 'object' "
        "THEN $2::jsonb || jsonb_build_object('queuerd', options -> 'queuerd') ELSE $2::jsonb END, "
        "available_tasks = $3::varchar[], "
        "available_next_interval = $4::varchar[], max_concurrency = $5::int, "
        "updated_at = CURRENT_TIMESTAMP WHERE rid = $1::uuid",
        p);
}

Task Queuer::add_task(std::string name, TaskFunc func) {
    if (!func) throw Error(ErrorKind::Invalid, fmt::format("task \"{}\" has no function", name));
    // A task that throws fails its job with the exception's text (the executor turns it into a
    // failure value).
    return add_task(std::move(name), TaskFn([f = std::move(func)](JobContext& ctx) {
                        return TaskResult::success(f(ctx));
                    }));
}

Task Queuer::add_task(std::string name, TaskFn func) {
    validate_task_name(name);
    if (!func) throw Error(ErrorKind::Invalid, fmt::format("task \"{}\" has no function", name));
    for (const auto& t : worker_.available_tasks)
        if (t == name)
            throw Error(ErrorKind::Invalid, fmt::format("task already exists: {}", name));
    worker_.available_tasks.push_back(name);
    update_worker_row();
    engine_->add_task(name, std::move(func));
    return Task{name};
}

void Queuer::add_next_interval_func(std::string name, NextIntervalFunc func) {
    validate_task_name(name, "next-interval function name");
    if (!func)
        throw Error(ErrorKind::Invalid,
                    fmt::format("next-interval function \"{}\" has no function", name));
    for (const auto& t : worker_.available_next_interval)
        if (t == name)
            throw Error(ErrorKind::Invalid,
                        fmt::format("next-interval function already exists: {}", name));
    worker_.available_next_interval.push_back(name);
    update_worker_row();
    engine_->add_next_interval(name, std::move(func));
}

void Queuer::start() {
    if (engine_->started()) throw Error(ErrorKind::Invalid, "the queuer is already running");
    db::Params p;
    p.add(worker_.rid);
    auto r = pool_->acquire()->exec(
        "UPDATE worker SET status = 'RUNNING', updated_at = CURRENT_TIMESTAMP "
        "WHERE rid = $1::uuid AND status IN ('READY', 'RUNNING') RETURNING status",
        p);
    if (r.rows() == 0)
        throw Error(ErrorKind::Invalid,
                    fmt::format("worker {} cannot start: it was stopped", worker_.rid));
    worker_.status = worker_status::running;
    engine_->start(true);
    spdlog::info("worker {} ({}) running with max concurrency {}, tasks: {}", worker_.name,
                 worker_.rid, engine_->max_concurrency(), fmt::join(worker_.available_tasks, ", "));
}

void Queuer::start_without_worker() {
    if (engine_->started()) throw Error(ErrorKind::Invalid, "the queuer is already running");
    engine_->start(false);
}

void Queuer::stop(std::chrono::milliseconds grace) {
    bool ran = engine_->loop_running();
    engine_->stop(grace);
    if (worker_.status == worker_status::stopped) return;
    if (ran && engine_->marked_stopped()) {
        worker_.status = worker_status::stopped;
        return;
    }
    if (ran && engine_->unwritten_jobs() > 0) {
        // The database did not answer at the end; do not wait for it once more.
        spdlog::warn("could not mark worker {} STOPPED; the master will", worker_.rid);
        return;
    }
    try {
        db::Params p;
        p.add(worker_.rid);
        pool_->acquire()->exec(
            "UPDATE worker SET status = 'STOPPED', current_concurrency = 0, "
            "updated_at = CURRENT_TIMESTAMP WHERE rid = $1::uuid",
            p);
        worker_.status = worker_status::stopped;
    } catch (const Error& e) {
        spdlog::warn("could not mark worker {} STOPPED: {}", worker_.rid, e.what());
    }
}

bool Queuer::running() const {
    return engine_->loop_running();
}

void Queuer::set_max_concurrency(int n) {
    if (n < 1 || n > 1000)
        throw Error(ErrorKind::Invalid, fmt::format("max_concurrency must be 1..1000, not {}", n));
    worker_.max_concurrency = n;
    update_worker_row();
    engine_->set_max_concurrency(n);
}

void Queuer::set_worker_on_error(std::optional<OnError> e) {
    if (e) e->validate();
    worker_.options = e;
    set_default_on_error(e);
    update_worker_row();
    engine_->set_worker_on_error(e);
}

void Queuer::on_job_update(std::function<void(const JobEvent&)> cb) {
    engine_->on_update(std::move(cb));
}
void Queuer::on_job_ended(std::function<void(const JobEvent&)> cb) {
    engine_->on_ended(std::move(cb));
}
void Queuer::on_stopped(std::function<void()> cb) {
    engine_->on_stopped(std::move(cb));
}

bool Queuer::loop_healthy(std::chrono::milliseconds max_age) const {
    return engine_->loop_healthy(max_age);
}

size_t Queuer::stuck_tasks() const {
    return engine_->stuck_tasks();
}

bool Queuer::is_master() const {
    return engine_->is_master();
}

int Queuer::running_jobs() const {
    return engine_->running_jobs();
}

const char* to_string(StopCause c) {
    switch (c) {
        case StopCause::None:
            return "running";
        case StopCause::Local:
            return "stopped locally";
        case StopCause::Requested:
            return "stop requested";
        case StopCause::Immediate:
            return "stopped from elsewhere";
        case StopCause::Stale:
            return "declared stale by the master";
    }
    return "?";
}

StopCause Queuer::stop_cause() const {
    return engine_->stop_cause();
}

size_t Queuer::unwritten_jobs() const {
    return engine_->unwritten_jobs();
}

std::string Queuer::not_ready_reason() const {
    return engine_->not_ready_reason();
}

int Queuer::max_concurrency() const {
    return engine_->max_concurrency();
}

std::unique_ptr<Queuer> new_queuer(std::string name, int max_concurrency,
                                   std::optional<OnError> on_error) {
    const char* key = std::getenv("QUEUER_ENCRYPTION_KEY");
    return new_queuer_with_db(std::move(name), max_concurrency, key ? key : "",
                              DatabaseConfig::from_env(), std::move(on_error));
}

std::unique_ptr<Queuer> new_queuer_with_db(std::string name, int max_concurrency,
                                           std::string_view encryption_key, DatabaseConfig cfg,
                                           std::optional<OnError> on_error) {
    return std::make_unique<Queuer>(std::move(name), max_concurrency, encryption_key,
                                    std::move(cfg), std::move(on_error));
}

}  // namespace queuer
