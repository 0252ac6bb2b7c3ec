// A thin RAII layer over libpq: connections, results, bound parameters, prepared statements,
// transactions, COPY, LISTEN/NOTIFY and a small connection pool. SQL never has values spliced
// in; everything goes through bound parameters.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "queuer/config.hpp"
#include "queuer/error.hpp"

struct pg_conn;
struct pg_result;

namespace queuer::db {

class Result {
  public:
    Result() = default;
    explicit Result(pg_result* r) : r_(r) {}
    Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
    Result& operator=(Result&& o) noexcept;
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    ~Result();

    int rows() const;
    int column(const char* name) const;  // throws Error(Database) when absent
    bool is_null(int row, int col) const;
    std::string_view get(int row, int col) const;
    std::string str(int row, int col) const { return std::string(get(row, col)); }
    int64_t i64(int row, int col) const;
    int i32(int row, int col) const { return static_cast<int>(i64(row, col)); }
    bool boolean(int row, int col) const { return get(row, col) == "t"; }
    int64_t affected() const;  // rows affected by INSERT/UPDATE/DELETE

  private:
    pg_result* r_ = nullptr;
};

// Bound parameters, all sent as text. std::nullopt is SQL NULL.
class Params {
  public:
    Params& add(std::string_view v) {
        values_.emplace_back(std::string(v));
        return *this;
    }
    Params& add(const std::string& v) { return add(std::string_view(v)); }
    Params& add(const char* v) { return add(std::string_view(v)); }
    Params& add(int64_t v) {
        values_.emplace_back(std::to_string(v));
        return *this;
    }
    Params& add(int v) { return add(static_cast<int64_t>(v)); }
    Params& add(bool v) { return add(std::string_view(v ? "t" : "f")); }
    Params& add_null() {
        values_.emplace_back(std::nullopt);
        return *this;
    }
    Params& add(const std::optional<std::string>& v) {
        values_.push_back(v);
        return *this;
    }
    // A PostgreSQL array literal from strings: {"a","b"}
    Params& add_array(const std::vector<std::string>& items);
    size_t size() const { return values_.size(); }
    std::vector<const char*> pointers() const;

  private:
    std::vector<std::optional<std::string>> values_;
};

// A statement prepared once per connection on first use, by name.
struct Statement {
    const char* name;
    const char* sql;
};

struct Notification {
    std::string channel;
    std::string payload;
};

class Connection {
  public:
    // Connects with connect_timeout, statement_timeout, search_path = schema, TimeZone = UTC.
    // Throws Error(Connection) with libpq's reason and where it tried (never the password).
    static Connection open(const DatabaseConfig& cfg);

    Connection() = default;
    Connection(Connection&& o) noexcept;
    Connection& operator=(Connection&& o) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    // Runs SQL with no parameters (may hold several statements). Throws Error(Database).
    Result exec(std::string_view sql);
    Result exec(std::string_view sql, const Params& params);
    Result exec(const Statement& stmt, const Params& params);

    // COPY ... FROM STDIN with the whole payload in one round trip.
    void copy_in(std::string_view copy_sql, std::string_view data);

    void listen(std::string_view channel);
    // Reads whatever arrived on the socket without blocking; returns the notifications.
    std::vector<Notification> drain_notifications();
    int socket() const;
    bool ok() const;  // false once the connection is broken
    pg_conn* raw() { return conn_; }
    // Gives up ownership of the libpq connection (the caller PQfinish()es it).
    pg_conn* release() { return std::exchange(conn_, nullptr); }
    const std::string& schema() const { return schema_; }

  private:
    explicit Connection(pg_conn* c, std::string schema) : conn_(c), schema_(std::move(schema)) {}
    Result check(pg_result* r, std::string_view what);
    pg_conn* conn_ = nullptr;
    std::string schema_;
    std::unordered_set<std::string> prepared_;
};

// BEGIN on construction; ROLLBACK on destruction unless commit() ran.
class Transaction {
  public:
    explicit Transaction(Connection& c);
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();
    void commit();
    Connection& connection() { return c_; }

  private:
    Connection& c_;
    bool done_ = false;
};

// A bounded pool. acquire() blocks while all connections are in use. A connection returned
// broken is dropped and replaced on the next acquire.
class Pool {
  public:
    Pool(DatabaseConfig cfg, size_t max_size);
    ~Pool();

    class Lease {
      public:
        Lease(Pool* p, std::unique_ptr<Connection> c) : pool_(p), c_(std::move(c)) {}
        Lease(Lease&&) = default;
        Lease& operator=(Lease&&) = default;
        ~Lease();
        Connection& operator*() { return *c_; }
        Connection* operator->() { return c_.get(); }

      private:
        Pool* pool_;
        std::unique_ptr<Connection> c_;
    };

    Lease acquire();
    const DatabaseConfig& config() const { return cfg_; }

  private:
    void release(std::unique_ptr<Connection> c);
    DatabaseConfig cfg_;
    size_t max_size_;
    size_t open_ = 0;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::mutex mu_;
    std::condition_variable cv_;
};

// The Error for a failed result (r may be null: then libpq's connection message): the server's
// message with its SQLSTATE; ErrorKind::Connection when the connection is broken (class 08,
// admin shutdown 57P0x), else ErrorKind::Database. Does not free r.
Error result_error(pg_conn* conn, const pg_result* r, std::string_view what);
// libpq's last message for the connection, on one line.
std::string connection_message(pg_conn* conn);

// Quotes an identifier we have validated already (schema names).
std::string quote_ident(std::string_view ident);

}  // namespace queuer::db
