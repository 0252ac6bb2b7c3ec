// A small metrics registry rendered in the Prometheus text exposition format 0.0.4: counters,
// gauges, histograms (cumulative buckets, _sum, _count) and gauges computed at scrape time.
// Thread-safe: series are updated from any thread while another renders. No dependency beyond
// the standard library, so queuer_core can carry it (queuerd's /metrics, the web console).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace queuer::metrics {

// Label values in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
  public:
    void inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

class Gauge {
  public:
    void set(double v) { value_.store(v, std::memory_order_relaxed); }
    void inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
    void dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> value_{0};
};

class Histogram {
  public:
    // `bounds`: upper bounds, strictly increasing, without +Inf (added on rendering).
    explicit Histogram(std::vector<double> bounds);
    void observe(double v);
    struct Snapshot {
        std::vector<double> bounds;
        std::vector<uint64_t> cumulative;  // one per bound, then one for +Inf (== count)
        double sum = 0;
        uint64_t count = 0;
    };
    Snapshot snapshot() const;

  private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<uint64_t> counts_;  // per bucket, not cumulative; last = above every bound
    double sum_ = 0;
    uint64_t count_ = 0;
};

// Default buckets for durations in seconds: 1 ms .. 1 h.
std::vector<double> duration_buckets();

// One metric name with its label names; series are created on first use and live as long as
// the registry (references stay valid).
template <class T>
class Family {
  public:
    Family(std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make)
        : labels_(std::move(label_names)), make_(std::move(make)) {}
    // The series for these label values (as many as label names; throws std::invalid_argument
    // otherwise).
    T& with(const LabelValues& values);
    T& with() { return with(LabelValues{}); }
    const std::vector<std::string>& label_names() const { return labels_; }
    // A stable copy of the series, sorted by label values.
    std::vector<std::pair<LabelValues, const T*>> series() const;

  private:
    std::vector<std::string> labels_;
    std::function<std::unique_ptr<T>()> make_;
    mutable std::mutex mu_;
    std::map<LabelValues, std::unique_ptr<T>> series_;
};

enum class Type { Counter, Gauge, Histogram };

class Registry {
  public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels [a-zA-Z_][a-zA-Z0-9_]* (not "le" for a
    // histogram); a name registered twice throws std::invalid_argument.
    Family<Counter>& counter(const std::string& name, const std::string& help,
                             std::vector<std::string> labels = {});
    Family<Gauge>& gauge(const std::string& name, const std::string& help,
                         std::vector<std::string> labels = {});
    Family<Histogram>& histogram(const std::string& name, const std::string& help,
                                 std::vector<std::string> labels, std::vector<double> bounds);
    // A gauge computed when rendered: `collect` returns (label values, value) pairs. It runs on
    // the rendering thread; keep it cheap (read cached state, never query a database).
    using Collect = std::function<std::vector<std::pair<LabelValues, double>>()>;
    void gauge_func(const std::string& name, const std::string& help,
                    std::vector<std::string> labels, Collect collect);

    // The whole registry in the text format 0.0.4, families in registration order.
    std::string render() const;
    // Every sample name the registry can emit: family names, and for histograms
    // name_bucket, name_sum and name_count (for checking dashboards and alert rules).
    std::vector<std::string> sample_names() const;

  private:
    struct Entry {
        std::string name, help;
        Type type;
        std::vector<std::string> labels;
        std::unique_ptr<Family<Counter>> counters;
        std::unique_ptr<Family<Gauge>> gauges;
        std::unique_ptr<Family<Histogram>> histograms;
        Collect collect;
    };
    Entry& add(const std::string& name, const std::string& help, Type type,
               const std::vector<std::string>& labels);
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<Entry>> entries_;
};

// Text-format helpers (exposed for tests).
std::string escape_label_value(std::string_view v);  // \ " and newline escaped
std::string escape_help(std::string_view v);         // \ and newline escaped
std::string format_value(double v);                  // shortest exact form; +Inf, -Inf, NaN
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

// The content type of render()'s output.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace queuer::metrics
