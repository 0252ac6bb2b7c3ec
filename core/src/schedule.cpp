// Schedules: when the next run of a periodic job is due.
#include "engine_util.hpp"

namespace queuer {

std::optional<TimePoint> Queuer::Engine::next_run(const Job& j) {
    if (!j.options.schedule) return std::nullopt;
    const auto& s = *j.options.schedule;
    if (s.max_count != 0 && j.schedule_count >= s.max_count) return std::nullopt;
    TimePoint base = j.scheduled_at.value_or(j.started_at.value_or(j.created_at));
    if (!s.next_interval.empty()) {
        auto it = nifs.find(s.next_interval);
        if (it == nifs.end()) {
            spdlog::error(
                "job {}: next-interval function \"{}\" is not registered here; the "
                "series ends",
                j.rid, s.next_interval);
            return std::nullopt;
        }
        try {
            return it->second(base, j.schedule_count);
        } catch (const std::exception& e) {
            spdlog::error("job {}: next-interval function \"{}\" failed, the series ends: {}",
                          j.rid, s.next_interval, e.what());
            return std::nullopt;
        }
    }
    if (s.interval.count() <= 0) return std::nullopt;
    // start + count * interval: evenly spaced, whatever retries did to scheduled_at.
    TimePoint start = s.start.value_or(base);
    return start +
           std::chrono::duration_cast<std::chrono::microseconds>(s.interval) * j.schedule_count;
}

}  // namespace queuer
