// The spool: outcomes a stopping worker could not write because the database was away past the
// grace are saved in worker.spool_dir (one JSON object per line, file unwritten-<worker>.jsonl,
// mode 0600) and written by the next worker that starts with the same directory. The statements
// are the usual finish statements with the old worker's rid: they change a row only while it is
// still RUNNING for that worker's claim, so an outcome the master made moot (it recovered the job
// after the stale threshold) changes nothing.
#include <fcntl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "queuer/log.hpp"

namespace queuer {

using detail::Action;
using detail::Completion;
using detail::FinishRow;

namespace {

const char* kPrefix = "unwritten-";
const char* kSuffix = ".jsonl";

std::string to_line(const FinishRow& r, const std::string& worker_rid) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    auto str = [&](const char* k, const std::string& v) {
        w.Key(k);
        w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    };
    str("worker_rid", worker_rid);
    w.Key("id");
    w.Int64(r.id);
    str("rid", r.rid);
    str("token", r.token);
    str("action", detail::sql_name(r.action));
    str("results", r.results);
    str("sealed", r.sealed);
    str("error", r.error);
    w.Key("delay_ms");
    w.Int64(r.delay_ms);
    str("started", r.started);
    str("next_at", r.next_at);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<std::pair<std::string, FinishRow>> from_line(const std::string& line) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    if (!d.IsObject()) return std::nullopt;
    auto str = [&](const char* k) {
        return d.HasMember(k) && d[k].IsString()
                   ? std::string(d[k].GetString(), d[k].GetStringLength())
                   : std::string();
    };
    FinishRow r;
    if (!d.HasMember("id") || !d["id"].IsInt64()) return std::nullopt;
    r.id = d["id"].GetInt64();
    r.rid = str("rid");
    r.token = str("token");
    std::string a = str("action");
    if (a == "SUCCEEDED")
        r.action = Action::Succeeded;
    else if (a == "FAILED")
        r.action = Action::Failed;
    else if (a == "CANCELLED")
        r.action = Action::Cancelled;
    else if (a == "RETRY")
        r.action = Action::Retry;
    else if (a == "REQUEUE")
        r.action = Action::Requeue;
    else
        return std::nullopt;
    r.results = str("results");
    if (r.results.empty()) r.results = "[]";
    r.sealed = str("sealed");
    r.error = str("error");
    r.delay_ms = d.HasMember("delay_ms") && d["delay_ms"].IsInt64() ? d["delay_ms"].GetInt64() : 0;
    r.started = str("started");
    r.next_at = str("next_at");
    std::string worker = str("worker_rid");
    if (worker.empty() || r.token.empty()) return std::nullopt;
    return std::pair{worker, r};
}

}  // namespace

void Queuer::Engine::spool_unwritten() {
    if (opts_.spool_dir.empty()) return;
    std::vector<FinishRow> rows;
    for (const auto& c : pending_) rows.push_back(detail::finish_row(c));
    for (const auto& part : writing_)
        for (const auto& c : *part) rows.push_back(detail::finish_row(c));
    if (rows.empty()) return;
    namespace fs = std::filesystem;
    fs::path dir(opts_.spool_dir);
    fs::path file = dir / (kPrefix + q_.worker_.rid + kSuffix);
    fs::path tmp = file;
    tmp += ".tmp";
    std::string text;
    for (const auto& r : rows) text += to_line(r, q_.worker_.rid) + "\n";
    std::error_code ec;
    fs::create_directories(dir, ec);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    const char* p = text.data();
    size_t left = text.size();
    while (ok && left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = false;
            break;
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (ok) ok = ::fsync(fd) == 0;
    int err = errno;
    if (fd >= 0) ::close(fd);
    if (ok) {
        fs::rename(tmp, file, ec);
        ok = !ec;
        if (!ok) err = ec.value();
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    if (!ok) {
        log::write(log::Level::Error,
                   fmt::format("shutdown: could not save the unwritten outcomes in {}: {}",
                               file.string(), std::strerror(err)),
                   {{}, {}, q_.worker_.rid});
        return;
    }
    log::write(log::Level::Warn,
               fmt::format("shutdown: saved the {} unwritten outcomes in {}; the next queuerd "
                           "started with worker.spool_dir {} writes them",
                           rows.size(), file.string(), opts_.spool_dir),
               {{}, {}, q_.worker_.rid});
}

// At start: write what earlier workers saved. A file that cannot be written stays for the next
// start; one that is written (even where the master had already recovered the jobs) is removed.
void Queuer::Engine::replay_spool() {
    if (opts_.spool_dir.empty() || !claim_jobs_) return;
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(opts_.spool_dir, ec)) return;
    for (const auto& entry : fs::directory_iterator(opts_.spool_dir, ec)) {
        auto name = entry.path().filename().string();
        if (name.rfind(kPrefix, 0) != 0 || name.size() < std::strlen(kSuffix) ||
            name.compare(name.size() - std::strlen(kSuffix), std::string::npos, kSuffix) != 0)
            continue;
        std::ifstream in(entry.path());
        std::string line, worker;
        std::vector<FinishRow> ends, back;
        size_t bad = 0;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            auto parsed = from_line(line);
            if (!parsed || (!worker.empty() && parsed->first != worker)) {
                ++bad;
                continue;
            }
            worker = parsed->first;
            (detail::ends_job(parsed->second.action) ? ends : back).push_back(parsed->second);
        }
        if (bad)
            log::write(log::Level::Warn,
                       fmt::format("{}: {} lines are not outcomes and are skipped", name, bad));
        if (ends.empty() && back.empty()) {
            fs::remove(entry.path(), ec);
            continue;
        }
        std::vector<db::Params> params;
        std::vector<std::pair<const db::Statement*, const db::Params*>> sts;
        params.reserve(2);
        if (!ends.empty()) params.push_back(detail::finish_params(ends, worker));
        if (!back.empty()) params.push_back(detail::finish_params(back, worker));
        size_t i = 0;
        if (!ends.empty()) sts.emplace_back(&detail::kFinishArchive, &params[i++]);
        if (!back.empty()) sts.emplace_back(&detail::kFinishRequeue, &params[i++]);
        struct State {
            int left = 0;
            int64_t changed = 0;
            std::optional<std::string> error;
        };
        auto st = std::make_shared<State>();
        st->left = static_cast<int>(sts.size());
        size_t total = ends.size() + back.size();
        auto path = entry.path();
        std::vector<detail::PgPipe::Done> dones;
        for (size_t k = 0; k < sts.size(); ++k) {
            bool archive = sts[k].first == &detail::kFinishArchive;
            dones.push_back([this, st, total, path, worker, archive](db::Result* r,
                                                                     const Error* e) {
                if (e) {
                    if (!st->error) st->error = e->what();
                } else if (archive && r->rows() > 0) {
                    st->changed += r->i64(0, r->column("changed"));
                } else if (!archive) {
                    st->changed += r->rows();
                }
                if (--st->left > 0) return;
                std::error_code ec2;
                if (st->error) {
                    log::write(log::Level::Warn,
                               fmt::format("could not write the {} outcomes saved in {} ({}); "
                                           "they stay there for the next start",
                                           total, path.string(), *st->error),
                               {{}, {}, q_.worker_.rid});
                    return;
                }
                std::filesystem::remove(path, ec2);
                log::write(log::Level::Info,
                           fmt::format("wrote the {} outcomes worker {} saved at its last stop "
                                       "({} still applied; the master had recovered the others)",
                                       total, worker, st->changed),
                           {{}, {}, q_.worker_.rid});
            });
        }
        finish_pipe_->send_all(sts, std::move(dones));
    }
}

}  // namespace queuer
