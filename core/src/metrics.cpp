// The metrics registry and its Prometheus text rendering: see queuer/metrics.hpp.
#include "queuer/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace queuer::metrics {

// ---- Histogram ----

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
    for (size_t i = 0; i < bounds_.size(); ++i) {
        if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
            throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
    counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double v) {
    // The first bucket whose upper bound is >= v ("le" is inclusive).
    size_t i =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    std::lock_guard g(mu_);
    ++counts_[i];
    sum_ += v;
    ++count_;
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.bounds = bounds_;
    std::lock_guard g(mu_);
    uint64_t acc = 0;
    for (uint64_t c : counts_) {
        acc += c;
        s.cumulative.push_back(acc);
    }
    s.sum = sum_;
    s.count = count_;
    return s;
}

std::vector<double> duration_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
            2.5,   5,      10,    30,   60,    120,  300, 900,  3600};
}

// ---- Family ----

template <class T>
T& Family<T>::with(const LabelValues& values) {
    if (values.size() != labels_.size())
        throw std::invalid_argument(
            fmt::format("{} label values given, {} expected", values.size(), labels_.size()));
    std::lock_guard g(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return *it->second;
    auto& slot = series_[values];
    slot = make_();
    return *slot;
}

template <class T>
std::vector<std::pair<LabelValues, const T*>> Family<T>::series() const {
    std::lock_guard g(mu_);
    std::vector<std::pair<LabelValues, const T*>> out;
    out.reserve(series_.size());
    for (const auto& [k, v] : series_) out.emplace_back(k, v.get());
    return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- text helpers ----

bool valid_metric_name(std::string_view n) {
    if (n.empty()) return false;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

bool valid_label_name(std::string_view n) {
    if (n.empty() || n.substr(0, 2) == "__") return false;
    for (size_t i = 0; i < n.size(); ++i) {
        char c = n[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string escape_help(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::floor(v) && std::fabs(v) < 1e15)
        return fmt::format("{}", static_cast<int64_t>(v));
    return fmt::format("{}", v);
}

namespace {

void labels_text(std::string& out, const std::vector<std::string>& names, const LabelValues& values,
                 const char* extra_name = nullptr, const std::string& extra_value = {}) {
    if (names.empty() && !extra_name) return;
    out += '{';
    bool first = true;
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
        if (!first) out += ',';
        first = false;
        out += names[i];
        out += "=\"";
        out += escape_label_value(values[i]);
        out += '"';
    }
    if (extra_name) {
        if (!first) out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value;
        out += '"';
    }
    out += '}';
}

const char* type_name(Type t) {
    switch (t) {
        case Type::Counter:
            return "counter";
        case Type::Gauge:
            return "gauge";
        case Type::Histogram:
            return "histogram";
    }
    return "untyped";
}

}  // namespace

// ---- Registry ----

Registry::Entry& Registry::add(const std::string& name, const std::string& help, Type type,
                               const std::vector<std::string>& labels) {
    if (!valid_metric_name(name))
        throw std::invalid_argument(fmt::format("invalid metric name \"{}\"", name));
    for (const auto& l : labels) {
        if (!valid_label_name(l) || (type == Type::Histogram && l == "le"))
            throw std::invalid_argument(fmt::format("invalid label name \"{}\" of {}", l, name));
    }
    std::lock_guard g(mu_);
    for (const auto& e : entries_)
        if (e->name == name)
            throw std::invalid_argument(fmt::format("metric {} registered twice", name));
    auto e = std::make_unique<Entry>();
    e->name = name;
    e->help = help;
    e->type = type;
    e->labels = labels;
    entries_.push_back(std::move(e));
    return *entries_.back();
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels) {
    auto& e = add(name, help, Type::Counter, labels);
    e.counters = std::make_unique<Family<Counter>>(std::move(labels),
                                                   [] { return std::make_unique<Counter>(); });
    return *e.counters;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels) {
    auto& e = add(name, help, Type::Gauge, labels);
    e.gauges = std::make_unique<Family<Gauge>>(std::move(labels),
                                               [] { return std::make_unique<Gauge>(); });
    return *e.gauges;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels,
                                       std::vector<double> bounds) {
    Histogram probe(bounds);  // validates the bounds before anything is registered
    auto& e = add(name, help, Type::Histogram, labels);
    e.histograms = std::make_unique<Family<Histogram>>(
        std::move(labels), [bounds] { return std::make_unique<Histogram>(bounds); });
    return *e.histograms;
}

void Registry::gauge_func(const std::string& name, const std::string& help,
                          std::vector<std::string> labels, Collect collect) {
    auto& e = add(name, help, Type::Gauge, labels);
    e.collect = std::move(collect);
}

std::string Registry::render() const {
    std::vector<const Entry*> entries;
    {
        std::lock_guard g(mu_);
        for (const auto& e : entries_) entries.push_back(e.get());
    }
    std::string out;
    out.reserve(4096);
    for (const Entry* e : entries) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", e->name, escape_help(e->help), e->name,
                           type_name(e->type));
        auto sample = [&](const std::string& name, const LabelValues& values, double v,
                          const char* extra = nullptr, const std::string& extra_value = {}) {
            out += name;
            labels_text(out, e->labels, values, extra, extra_value);
            out += ' ';
            out += format_value(v);
            out += '\n';
        };
        if (e->counters) {
            for (const auto& [lv, c] : e->counters->series()) sample(e->name, lv, c->value());
        } else if (e->gauges) {
            for (const auto& [lv, gg] : e->gauges->series()) sample(e->name, lv, gg->value());
        } else if (e->histograms) {
            for (const auto& [lv, h] : e->histograms->series()) {
                auto s = h->snapshot();
                for (size_t i = 0; i < s.bounds.size(); ++i)
                    sample(e->name + "_bucket", lv, static_cast<double>(s.cumulative[i]), "le",
                           format_value(s.bounds[i]));
                sample(e->name + "_bucket", lv, static_cast<double>(s.count), "le", "+Inf");
                sample(e->name + "_sum", lv, s.sum);
                sample(e->name + "_count", lv, static_cast<double>(s.count));
            }
        } else if (e->collect) {
            auto values = e->collect();
            std::sort(values.begin(), values.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
            for (const auto& [lv, v] : values) {
                if (lv.size() != e->labels.size()) continue;  // a bug in the collector: skip
                sample(e->name, lv, v);
            }
        }
    }
    return out;
}

std::vector<std::string> Registry::sample_names() const {
    std::lock_guard g(mu_);
    std::vector<std::string> out;
    for (const auto& e : entries_) {
        out.push_back(e->name);
        if (e->type == Type::Histogram) {
            out.push_back(e->name + "_bucket");
            out.push_back(e->name + "_sum");
            out.push_back(e->name + "_count");
        }
    }
    return out;
}

}  // namespace queuer::metrics
