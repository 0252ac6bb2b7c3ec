// queuerctl web: the web console for the whole cluster (docs/web.md). A queuer::http::Server
// serves pages rendered from queuer::admin's reads, a LISTEN connection of its own turns the
// job, job_archive and worker notifications into server-sent events (coalesced: at most two a
// second, whatever the rate of notifications), and POST /api/... carry the actions, each one
// statement of queuer::admin or queuer::Client.
#pragma once

#include <memory>
#include <string>

#include "queuer/app_config.hpp"

namespace queuerctl::web {

struct Options {
    std::string listen = "127.0.0.1:8080";
    bool read_only = false;
};

class Console {
  public:
    // Connects to the database (a small pool) and checks the schema; throws queuer::Error.
    // `token`: what a state-changing request must carry (ignored when read-only).
    Console(const queuer::AppConfig& cfg, Options options, std::string token, std::string version);
    ~Console();
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    // Binds (throws queuer::Error naming the address) and starts the notification listener.
    void start();
    void stop();
    std::string address() const;  // "HOST:PORT" as bound
    bool loopback() const;        // bound to a loopback address only

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// `queuerctl web`: serves until SIGINT or SIGTERM, then returns 0. Prints one line on stdout
// with the address (and the token when it was generated: the only place the token is ever
// written); messages go to stderr. Throws queuer::Error (configuration, database, bind).
int serve(const queuer::AppConfig& cfg, const Options& options, const std::string& version);

}  // namespace queuerctl::web
