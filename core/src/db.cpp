// libpq RAII layer: see queuer/db.hpp.
#include "queuer/db.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <cstring>

#include "queuer/error.hpp"

namespace queuer::db {

// ---- Result ----

Result& Result::operator=(Result&& o) noexcept {
    if (this != &o) {
        if (r_) PQclear(r_);
        r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
}

Result::~Result() {
    if (r_) PQclear(r_);
}

int Result::rows() const {
    return r_ ? PQntuples(r_) : 0;
}

int Result::column(const char* name) const {
    int c = r_ ? PQfnumber(r_, name) : -1;
    if (c < 0) throw Error(ErrorKind::Database, fmt::format("result has no column \"{}\"", name));
    return c;
}

bool Result::is_null(int row, int col) const {
    return PQgetisnull(r_, row, col) != 0;
}

std::string_view Result::get(int row, int col) const {
    return std::string_view(PQgetvalue(r_, row, col),
                            static_cast<size_t>(PQgetlength(r_, row, col)));
}

int64_t Result::i64(int row, int col) const {
    auto s = get(row, col);
    int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

int64_t Result::affected() const {
    const char* s = r_ ? PQcmdTuples(r_) : "";
    int64_t v = 0;
    std::from_chars(s, s + std::strlen(s), v);
    return v;
}

// ---- Params ----

Params& Params::add_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    out += '}';
    values_.emplace_back(std::move(out));
    return *this;
}

std::vector<const char*> Params::pointers() const {
    std::vector<const char*> p;
    p.reserve(values_.size());
    for (const auto& v : values_) p.push_back(v ? v->c_str() : nullptr);
    return p;
}

// ---- Connection ----

namespace {
void quiet_notice(void*, const PGresult*) {}

// libpq's messages span lines ("...\n\tIs the server running..."): one line per log event.
std::string trim_message(const char* m) {
    std::string s;
    for (const char* p = m ? m : ""; *p; ++p) {
        if (*p == '\n' || *p == '\t') {
            if (!s.empty() && s.back() != ' ') s += ' ';
        } else {
            s += *p;
        }
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}
}  // namespace

Connection Connection::open(const DatabaseConfig& cfg) {
    cfg.validate();
    auto params = cfg.libpq_params();
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : params) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* c = PQconnectdbParams(keys.data(), values.data(), 0);
    if (!c) throw Error(ErrorKind::Connection, "out of memory creating a database connection");
    if (PQstatus(c) != CONNECTION_OK) {
        // libpq's message names host and port and the server's reason, never the password.
        std::string msg = trim_message(PQerrorMessage(c));
        PQfinish(c);
        throw Error(ErrorKind::Connection,
                    fmt::format("cannot connect to PostgreSQL at {}: {}", cfg.describe(), msg));
    }
    PQsetNoticeReceiver(c, quiet_notice, nullptr);
    return Connection(c, cfg.schema);
}

Connection::Connection(Connection&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)),
      schema_(std::move(o.schema_)),
      prepared_(std::move(o.prepared_)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
    if (this != &o) {
        if (conn_) PQfinish(conn_);
        conn_ = std::exchange(o.conn_, nullptr);
        schema_ = std::move(o.schema_);
        prepared_ = std::move(o.prepared_);
    }
    return *this;
}

Connection::~Connection() {
    if (conn_) PQfinish(conn_);
}

bool Connection::ok() const {
    return conn_ && PQstatus(conn_) == CONNECTION_OK;
}

int Connection::socket() const {
    return conn_ ? PQsocket(conn_) : -1;
}

Error result_error(pg_conn* conn, const pg_result* r, std::string_view what) {
    if (!r) {
        return Error(ErrorKind::Connection,
                     fmt::format("{}: {}", what, trim_message(PQerrorMessage(conn))));
    }
    const char* sqlstate = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    std::string state = sqlstate ? sqlstate : "";
    std::string msg = primary ? primary : trim_message(PQresultErrorMessage(r));
    if (detail) msg += fmt::format(" ({})", detail);
    bool broken = PQstatus(conn) != CONNECTION_OK || state.rfind("08", 0) == 0 ||
                  state == "57P01" || state == "57P02" || state == "57P03";
    return Error(broken ? ErrorKind::Connection : ErrorKind::Database,
                 state.empty() ? fmt::format("{}: {}", what, msg)
                               : fmt::format("{}: {} [SQLSTATE {}]", what, msg, state),
                 state);
}

std::string connection_message(pg_conn* conn) {
    return trim_message(conn ? PQerrorMessage(conn) : "no connection");
}

Result Connection::check(PGresult* r, std::string_view what) {
    if (r) {
        auto st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
            return Result(r);
    }
    Error e = result_error(conn_, r, what);
    if (r) PQclear(r);
    throw e;
}

Result Connection::exec(std::string_view sql) {
    std::string s(sql);
    return check(PQexec(conn_, s.c_str()), "query failed");
}

Result Connection::exec(std::string_view sql, const Params& params) {
    std::string s(sql);
    auto ptrs = params.pointers();
    return check(PQexecParams(conn_, s.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(),
                              nullptr, nullptr, 0),
                 "query failed");
}

Result Connection::exec(const Statement& stmt, const Params& params) {
    if (!prepared_.count(stmt.name)) {
        check(PQprepare(conn_, stmt.name, stmt.sql, 0, nullptr),
              fmt::format("preparing statement {}", stmt.name));
        prepared_.insert(stmt.name);
    }
    auto ptrs = params.pointers();
    return check(PQexecPrepared(conn_, stmt.name, static_cast<int>(ptrs.size()), ptrs.data(),
                                nullptr, nullptr, 0),
                 fmt::format("statement {} failed", stmt.name));
}

void Connection::copy_in(std::string_view copy_sql, std::string_view data) {
    exec(copy_sql);  // PGRES_COPY_IN
    if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1 ||
        PQputCopyEnd(conn_, nullptr) != 1) {
        throw Error(ErrorKind::Connection,
                    fmt::format("COPY failed: {}", trim_message(PQerrorMessage(conn_))));
    }
    // Collect the COPY's final status, then drain to the idle state.
    PGresult* r;
    std::optional<Error> err;
    while ((r = PQgetResult(conn_)) != nullptr) {
        try {
            check(r, "COPY failed");
        } catch (const Error& e) {
            if (!err) err = e;
        }
    }
    if (err) throw *err;
}

void Connection::listen(std::string_view channel) {
    char* ident = PQescapeIdentifier(conn_, channel.data(), channel.size());
    std::string sql = fmt::format("LISTEN {}", ident);
    PQfreemem(ident);
    exec(sql);
}

std::vector<Notification> Connection::drain_notifications() {
    std::vector<Notification> out;
    if (PQconsumeInput(conn_) == 0) {
        throw Error(ErrorKind::Connection, fmt::format("lost the listening connection: {}",
                                                       trim_message(PQerrorMessage(conn_))));
    }
    while (PGnotify* n = PQnotifies(conn_)) {
        out.push_back({n->relname, n->extra ? n->extra : ""});
        PQfreemem(n);
    }
    return out;
}

// ---- Transaction ----

Transaction::Transaction(Connection& c) : c_(c) {
    c_.exec("BEGIN");
}

Transaction::~Transaction() {
    if (!done_ && c_.ok()) {
        try {
            c_.exec("ROLLBACK");
        } catch (...) {
        }
    }
}

void Transaction::commit() {
    done_ = true;
    c_.exec("COMMIT");
}

// ---- Pool ----

Pool::Pool(DatabaseConfig cfg, size_t max_size) : cfg_(std::move(cfg)), max_size_(max_size) {}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
    if (pool_ && c_) pool_->release(std::move(c_));
}

Pool::Lease Pool::acquire() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !idle_.empty() || open_ < max_size_; });
    if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(c));
    }
    ++open_;
    lk.unlock();
    try {
        return Lease(this, std::make_unique<Connection>(Connection::open(cfg_)));
    } catch (...) {
        std::lock_guard g(mu_);
        --open_;
        cv_.notify_one();
        throw;
    }
}

void Pool::release(std::unique_ptr<Connection> c) {
    std::lock_guard g(mu_);
    // A connection left broken or inside a failed transaction is dropped, not reused.
    if (c->ok() && PQtransactionStatus(c->raw()) == PQTRANS_IDLE) {
        idle_.push_back(std::move(c));
    } else {
        --open_;
    }
    cv_.notify_one();
}

std::string quote_ident(std::string_view ident) {
    std::string out = "\"";
    for (char c : ident) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

}  // namespace queuer::db
