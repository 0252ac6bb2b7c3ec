// The web console's pages, rendered on the server from queuer::admin's reads. Every page is a
// layout around one live region (<div id="live">); the page's script replaces that region with
// the same URL's fragment (header X-Partial: 1) when the server says something changed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "queuer/admin.hpp"

namespace queuerctl::web {

struct Site {
    bool read_only = false;
    std::string schema;
    std::string database;  // DatabaseConfig::describe(): no password
    std::string version;
    std::string asset_version;  // appended to asset URLs
};

// The filters of the jobs and archive pages, as given in the query string.
struct ListQuery {
    std::string task, status, since, until, search, error;
    int64_t before = 0;
    int limit = 50;
    // The filter part (no paging) as query pairs, for links and bulk actions.
    std::vector<std::pair<std::string, std::string>> filter_pairs() const;
};

struct OverviewData {
    std::vector<queuer::admin::LiveStat> live;
    queuer::admin::Activity activity;
    std::vector<queuer::admin::JobRow> newest;
    queuer::admin::MasterInfo master;
    int64_t workers_active = 0, workers_stale = 0;
};

// A whole page. `nav`: "overview", "jobs", "archive", "workers" or "" (detail); `channels`: the
// notification channels whose changes refresh the live region ("job job_archive worker").
std::string page(const Site& site, std::string_view nav, std::string_view title,
                 std::string_view channels, std::string_view head, std::string_view live);

std::string overview_live(const OverviewData& d);
std::string chart_svg(const queuer::admin::Activity& a);
std::string list_head(bool archive, const ListQuery& q);
std::string list_live(const Site& site, bool archive, const ListQuery& q,
                      const queuer::admin::JobPage& page, queuer::TimePoint now);
std::string detail_live(const Site& site, const queuer::admin::JobDetail& d, queuer::TimePoint now);
std::string workers_live(const Site& site, const queuer::admin::MasterInfo& master,
                         const std::vector<queuer::admin::WorkerRow>& workers);
// A message box (class "error" or "note"); `text` is escaped.
std::string message_box(std::string_view cls, std::string_view text);

}  // namespace queuerctl::web
