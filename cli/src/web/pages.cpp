// The web console's pages: see pages.hpp. Values from the database or the request are escaped
// where they are written (esc, url_encode); nothing here writes a script or a style attribute
// (the Content-Security-Policy allows neither).
#include "pages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "html.hpp"

namespace queuerctl::web {

namespace admin = queuer::admin;
using queuer::TimePoint;

namespace {

double seconds_between(TimePoint from, TimePoint to) {
    return std::chrono::duration<double>(to - from).count();
}

// A status as a badge; the class is derived from known statuses only.
std::string badge(std::string_view status) {
    static const std::set<std::string_view> known = {"QUEUED",    "SCHEDULED", "RUNNING",
                                                     "SUCCEEDED", "FAILED",    "CANCELLED",
                                                     "READY",     "STOPPING",  "STOPPED"};
    std::string cls = "other";
    if (known.count(status)) {
        cls.clear();
        for (char c : status) cls += static_cast<char>(c - 'A' + 'a');
    }
    return fmt::format("<span class=\"st st-{}\">{}</span>", cls, esc(status));
}

std::string job_link(std::string_view rid, bool short_text = true) {
    std::string text(rid);
    if (short_text && text.size() > 8) text = text.substr(0, 8) + "\u2026";
    return fmt::format("<a class=\"rid\" href=\"/job/{}\" title=\"{}\">{}</a>", esc(rid), esc(rid),
                       esc(text));
}

std::string cut(std::string_view s, size_t n) {
    std::string out;
    for (char c : s) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    if (out.size() <= n) return out;
    // Do not split a UTF-8 sequence.
    size_t k = n;
    while (k > 0 && (static_cast<unsigned char>(out[k]) & 0xC0) == 0x80) --k;
    return out.substr(0, k) + "\u2026";
}

std::string opt_time_cell(const std::optional<TimePoint>& t, TimePoint now,
                          std::string_view cls = {}) {
    std::string c(cls);
    if (!t) return "<td class=\"dim " + c + "\">\u2013</td>";
    double s = seconds_between(*t, now);
    if (s < 0)
        return fmt::format("<td class=\"{}\" title=\"{} UTC\">in {}</td>", c, esc(utc(*t)),
                           esc(age_text(-s)));
    return "<td class=\"" + c + "\">" + age_span(s, *t) + "</td>";
}

std::string duration_text(double s) {
    if (s < 0) s = 0;
    if (s < 1) return fmt::format("{:.0f} ms", s * 1000);
    if (s < 120) return fmt::format("{:.1f} s", s);
    return age_text(s);
}

std::string select(std::string_view name, std::string_view label, std::string_view value,
                   const std::vector<std::string_view>& options) {
    std::string out = fmt::format("<label>{}<select name=\"{}\"><option value=\"\">any</option>",
                                  esc(label), esc(name));
    for (auto o : options)
        out += fmt::format("<option{}>{}</option>", o == value ? " selected" : "", esc(o));
    return out + "</select></label>";
}

std::string input(std::string_view name, std::string_view label, std::string_view value,
                  std::string_view placeholder) {
    return fmt::format(
        "<label>{}<input name=\"{}\" value=\"{}\" placeholder=\"{}\" autocomplete=\"off\"></label>",
        esc(label), esc(name), esc(value), esc(placeholder));
}

std::string action_button(std::string_view cls, std::string_view url, std::string_view body,
                          std::string_view confirm, std::string_view label,
                          std::string_view bulk = {}) {
    std::string out = fmt::format(
        "<button type=\"button\" class=\"btn {}\" data-action=\"{}\" data-body=\"{}\" "
        "data-confirm=\"{}\"",
        esc(cls), esc(url), esc(body), esc(confirm));
    if (!bulk.empty()) out += fmt::format(" data-bulk=\"{}\"", esc(bulk));
    return out + ">" + esc(label) + "</button>";
}

std::string json_block(std::string_view label, const std::string& json, bool sealed,
                       const admin::JobDetail& d) {
    std::string out = "<section class=\"panel\"><h2>" + esc(label) + "</h2>";
    if (sealed && !d.opened)
        return out + "<p class=\"sealed\">\U0001F512 " + esc(d.seal_problem) + "</p></section>";
    if (sealed) out += "<p class=\"dim\">\U0001F513 decrypted with the console's key</p>";
    return out + "<pre class=\"json\">" + esc(pretty_json(json)) + "</pre></section>";
}

std::string nav_link(std::string_view href, std::string_view label, bool current) {
    return fmt::format("<a href=\"{}\"{}>{}</a>", href, current ? " aria-current=\"page\"" : "",
                       label);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ListQuery::filter_pairs() const {
    return {{"task", task},   {"status", status}, {"since", since},
            {"until", until}, {"search", search}, {"error", error}};
}

std::string message_box(std::string_view cls, std::string_view text) {
    return fmt::format("<p class=\"msg {}\" role=\"alert\">{}</p>", esc(cls), esc(text));
}

std::string page(const Site& site, std::string_view nav, std::string_view title,
                 std::string_view channels, std::string_view head, std::string_view live) {
    std::string out;
    out.reserve(head.size() + live.size() + 4096);
    out += fmt::format(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"referrer\" content=\"no-referrer\">"
        "<title>{} \u00b7 queuerd</title>"
        "<link rel=\"stylesheet\" href=\"/assets/style.css?v={}\">"
        "<link rel=\"icon\" type=\"image/svg+xml\" href=\"/assets/favicon.svg?v={}\">"
        "<script src=\"/assets/app.js?v={}\" defer></script></head>\n",
        esc(title), esc(site.asset_version), esc(site.asset_version), esc(site.asset_version));
    out += fmt::format("<body data-channels=\"{}\" data-readonly=\"{}\">\n", esc(channels),
                       site.read_only ? 1 : 0);
    out += "<header class=\"top\"><a class=\"brand\" href=\"/\">queuerd</a><nav>";
    out += nav_link("/", "Overview", nav == "overview");
    out += nav_link("/jobs", "Jobs", nav == "jobs");
    out += nav_link("/archive", "Archive", nav == "archive");
    out += nav_link("/workers", "Workers", nav == "workers");
    out +=
        "</nav><form class=\"goto\" method=\"get\" action=\"/job\">"
        "<input name=\"rid\" placeholder=\"Job RID\" aria-label=\"Go to job RID\" "
        "autocomplete=\"off\" spellcheck=\"false\"></form>";
    out += fmt::format(
        "<span class=\"conn\" id=\"conn\" data-state=\"connecting\" title=\"Live updates\">"
        "connecting</span>{}</header>\n",
        site.read_only ? "<span class=\"ro\" title=\"started with --read-only\">read-only</span>"
                       : "");
    out += "<div id=\"banner\" class=\"banner\" hidden></div>\n<main>";
    out += head;
    out += "<div id=\"live\" aria-live=\"polite\">";
    out += live;
    out += "</div></main>\n";
    out += "<footer>queuerctl web " + esc(site.version) + " \u00b7 " + esc(site.database) +
           "</footer>\n";
    // The dialog for confirmations and the token, filled in by the script.
    out +=
        "<dialog id=\"dlg\"><form method=\"dialog\"><p id=\"dlg-text\"></p>"
        "<label id=\"dlg-token\" hidden>Token (printed by queuerctl web at start)"
        "<input type=\"password\" id=\"dlg-token-input\" autocomplete=\"off\"></label>"
        "<p id=\"dlg-error\" class=\"msg error\" hidden></p>"
        "<div class=\"actions\"><button value=\"cancel\" class=\"btn\">Back</button>"
        "<button value=\"ok\" id=\"dlg-ok\" class=\"btn primary\">Confirm</button></div>"
        "</form></dialog>\n<div id=\"toast\" role=\"status\" aria-live=\"polite\"></div>\n"
        "</body></html>\n";
    return out;
}

// ---- overview ----

std::string chart_svg(const admin::Activity& a) {
    // Bars and grid in an SVG stretched to the box (preserveAspectRatio none: rectangles only,
    // so nothing looks distorted); the labels are HTML, so that they stay readable at any width.
    int64_t peak = 0, total = 0;
    for (const auto& m : a.per_minute) {
        peak = std::max(peak, m[0] + m[1] + m[2]);
        total += m[0] + m[1] + m[2];
    }
    // A round top for the scale: 1, 2, 5 x 10^k.
    int64_t top = 1;
    for (int64_t base = 1; top < peak; base *= 10) {
        for (int64_t f : {1, 2, 5}) {
            top = f * base;
            if (top >= peak) break;
        }
    }
    const size_t n = a.per_minute.size();
    const double slot = n ? 600.0 / static_cast<double>(n) : 600.0;
    std::string out = fmt::format(
        "<div class=\"chart-box\"><div class=\"yaxis\" aria-hidden=\"true\"><span>{}</span>"
        "<span>{}</span><span>0</span></div>",
        esc(num(top)),
        esc(top % 2 ? fmt::format("{:.1f}", static_cast<double>(top) / 2) : num(top / 2)));
    out += fmt::format(
        "<svg class=\"chart\" viewBox=\"0 0 600 100\" preserveAspectRatio=\"none\" role=\"img\" "
        "aria-label=\"Jobs ended per minute over the last {} minutes: {} in all, at most {} in "
        "one minute\">",
        a.minutes, total, peak);
    for (double y : {0.5, 50.0, 99.5})
        out += fmt::format(
            "<line class=\"grid\" x1=\"0\" y1=\"{0}\" x2=\"600\" y2=\"{0}\" "
            "vector-effect=\"non-scaling-stroke\"/>",
            y);
    for (size_t i = 0; i < n; ++i) {
        const auto& m = a.per_minute[i];
        int64_t sum = m[0] + m[1] + m[2];
        if (sum == 0) continue;
        TimePoint start = a.first_minute + std::chrono::minutes(static_cast<int64_t>(i));
        std::string when = utc(start).substr(11, 5);
        out += fmt::format("<g><title>{} UTC: {} succeeded, {} failed, {} cancelled</title>",
                           esc(when), m[0], m[1], m[2]);
        double y = 100;
        const char* cls[] = {"s", "f", "c"};
        for (size_t k = 0; k < 3; ++k) {
            if (m[k] == 0) continue;
            double h = 100.0 * static_cast<double>(m[k]) / static_cast<double>(top);
            h = std::max(h, 1.0);
            y -= h;
            out += fmt::format(
                "<rect class=\"{}\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\"/>",
                cls[k], slot * static_cast<double>(i) + slot * 0.1, y, slot * 0.8, h);
        }
        out += "</g>";
    }
    out += fmt::format(
        "</svg><div></div><div class=\"xaxis\" aria-hidden=\"true\"><span>\u2212{} min</span>"
        "<span>\u2212{} min</span><span>now</span></div></div>",
        a.minutes, a.minutes / 2);
    return out;
}

std::string overview_live(const OverviewData& d) {
    // Totals and per-task rows.
    struct TaskRow {
        int64_t queued = 0, scheduled = 0, running = 0, succeeded = 0, failed = 0, cancelled = 0;
        double oldest_queued = 0;
    };
    std::map<std::string, TaskRow> tasks;
    TaskRow all;
    for (const auto& l : d.live) {
        auto& t = tasks[l.task_name];
        if (l.status == "QUEUED") {
            t.queued += l.count;
            all.queued += l.count;
            t.oldest_queued = std::max(t.oldest_queued, l.oldest_age_s);
            all.oldest_queued = std::max(all.oldest_queued, l.oldest_age_s);
        } else if (l.status == "SCHEDULED") {
            t.scheduled += l.count;
            all.scheduled += l.count;
        } else if (l.status == "RUNNING") {
            t.running += l.count;
            all.running += l.count;
        }
    }
    for (const auto& e : d.activity.ended) {
        auto& t = tasks[e.task_name];
        if (e.status == "SUCCEEDED") {
            t.succeeded += e.count;
            all.succeeded += e.count;
        } else if (e.status == "FAILED") {
            t.failed += e.count;
            all.failed += e.count;
        } else if (e.status == "CANCELLED") {
            t.cancelled += e.count;
            all.cancelled += e.count;
        }
    }
    std::string out = "<section class=\"cards\">";
    auto card = [&](std::string_view label, std::string value, std::string_view cls,
                    std::string_view href, std::string note = {}) {
        out += fmt::format(
            "<a class=\"card {}\" href=\"{}\"><span class=\"label\">{}</span>"
            "<span class=\"value\">{}</span>",
            esc(cls), esc(href), esc(label), value);
        if (!note.empty()) out += "<span class=\"note\">" + note + "</span>";
        out += "</a>";
    };
    card("Queued", esc(num(all.queued)), "", "/jobs?status=QUEUED",
         all.queued ? "oldest " + age_span(all.oldest_queued, d.activity.now) : "");
    card("Scheduled", esc(num(all.scheduled)), "", "/jobs?status=SCHEDULED");
    card("Running", esc(num(all.running)), "", "/jobs?status=RUNNING");
    card("Succeeded", esc(num(all.succeeded)), "ok", "/archive?status=SUCCEEDED&since=1h",
         "last 60 min");
    card("Failed", esc(num(all.failed)), all.failed ? "bad" : "", "/archive?status=FAILED&since=1h",
         "last 60 min");
    std::string master = d.master.worker_rid.empty()
                             ? "none"
                             : esc(d.master.worker_name.empty() ? d.master.worker_rid.substr(0, 8)
                                                                : d.master.worker_name);
    card("Workers", esc(num(d.workers_active)), d.workers_stale ? "bad" : "", "/workers",
         (d.workers_stale ? esc(num(d.workers_stale)) + " stale \u00b7 " : std::string()) +
             "master " + master + (d.master.expired ? " (expired)" : ""));
    out += "</section>";

    out += "<section class=\"panel\"><h2>Throughput</h2>" + chart_svg(d.activity) +
           "<p class=\"legend\"><span class=\"key s\"></span>succeeded "
           "<span class=\"key f\"></span>failed <span class=\"key c\"></span>cancelled "
           "<span class=\"dim\">\u00b7 jobs ended per minute (UTC), newest on the right</span>"
           "</p></section>";

    out += "<section class=\"panel\"><h2>Tasks</h2>";
    if (tasks.empty()) {
        out += "<p class=\"dim\">No live jobs and none ended in the last 60 minutes.</p>";
    } else {
        out +=
            "<div class=\"scroll\"><table class=\"tasks\"><thead><tr><th>Task</th>"
            "<th class=\"n\">Queued</th><th class=\"n opt\">Scheduled</th><th "
            "class=\"n\">Running</th>"
            "<th class=\"n opt\">Oldest queued</th><th class=\"n\">Succeeded</th>"
            "<th class=\"n\">Failed</th><th class=\"n opt\">Cancelled</th></tr></thead><tbody>";
        for (const auto& [name, t] : tasks) {
            std::string q = url_encode(name);
            // `hot`: a class for a non-zero count; `always`: a class either way.
            auto cell = [&](int64_t v, std::string_view href, std::string_view hot = {},
                            std::string_view always = {}) {
                if (v == 0) return fmt::format("<td class=\"n dim {}\">0</td>", always);
                return fmt::format("<td class=\"n {} {}\"><a href=\"{}\">{}</a></td>", hot, always,
                                   esc(href), esc(num(v)));
            };
            out += fmt::format("<tr><td class=\"task\"><a href=\"/jobs?task={}\">{}</a></td>",
                               esc(q), esc(name));
            out += cell(t.queued, "/jobs?task=" + q + "&status=QUEUED");
            out += cell(t.scheduled, "/jobs?task=" + q + "&status=SCHEDULED", {}, "opt");
            out += cell(t.running, "/jobs?task=" + q + "&status=RUNNING");
            out += t.queued ? "<td class=\"n opt\">" + age_span(t.oldest_queued, d.activity.now) +
                                  "</td>"
                            : std::string("<td class=\"n opt dim\">\u2013</td>");
            out += cell(t.succeeded, "/archive?task=" + q + "&status=SUCCEEDED&since=1h");
            out += cell(t.failed, "/archive?task=" + q + "&status=FAILED&since=1h", "bad");
            out +=
                cell(t.cancelled, "/archive?task=" + q + "&status=CANCELLED&since=1h", {}, "opt");
            out += "</tr>";
        }
        out +=
            "</tbody></table></div><p class=\"dim small\">Succeeded, failed and cancelled: "
            "the last 60 minutes, in whole minutes.</p>";
    }
    out += "</section>";

    out += "<section class=\"panel\"><h2>Latest jobs</h2>";
    if (d.newest.empty()) {
        out += "<p class=\"dim\" id=\"no-jobs\">No queued, scheduled or running jobs.</p>";
    } else {
        out +=
            "<div class=\"scroll\"><table class=\"jobs\" id=\"latest\"><thead><tr><th>Job</th>"
            "<th>Task</th><th>Status</th><th>Created</th></tr></thead><tbody>";
        for (const auto& j : d.newest)
            out += fmt::format(
                "<tr data-rid=\"{}\"><td>{}</td><td class=\"task\">{}</td><td>{}</td>"
                "<td>{}</td></tr>",
                esc(j.rid), job_link(j.rid), esc(cut(j.task_name, 60)), badge(j.status),
                age_span(seconds_between(j.created_at, d.activity.now), j.created_at));
        out +=
            "</tbody></table></div><p class=\"small\"><a href=\"/jobs\">All live jobs "
            "\u2192</a></p>";
    }
    out += "</section>";
    return out;
}

// ---- jobs and archive ----

std::string list_head(bool archive, const ListQuery& q) {
    std::string out = archive ? "<h1>Archive</h1><p class=\"lede\">Ended jobs, newest first.</p>"
                              : "<h1>Jobs</h1><p class=\"lede\">Queued, scheduled and running "
                                "jobs, newest first.</p>";
    out += fmt::format("<form class=\"filters\" method=\"get\" action=\"{}\">",
                       archive ? "/archive" : "/jobs");
    out += input("task", "Task", q.task, "any task");
    out += archive ? select("status", "Status", q.status, {"SUCCEEDED", "FAILED", "CANCELLED"})
                   : select("status", "Status", q.status, {"QUEUED", "SCHEDULED", "RUNNING"});
    out += input("since", archive ? "Ended since" : "Created since", q.since,
                 "1h or 2026-01-31T12:00:00Z");
    out += input("until", "Until", q.until, "30m or a time");
    out += input("search", "Search", q.search, "parameters, errors");
    if (archive) out += input("error", "Error contains", q.error, "text");
    if (q.limit != 50)
        out += fmt::format("<input type=\"hidden\" name=\"limit\" value=\"{}\">", q.limit);
    out += fmt::format(
        "<div class=\"buttons\"><button class=\"btn primary\" type=\"submit\">Filter</button>"
        "<a class=\"btn\" href=\"{}\">Clear</a></div></form>",
        archive ? "/archive" : "/jobs");
    return out;
}

std::string list_live(const Site& site, bool archive, const ListQuery& q,
                      const admin::JobPage& page, TimePoint now) {
    std::string out;
    auto filters = q.filter_pairs();
    std::string filter_qs = query_string(filters);
    std::string body = filter_qs.empty() ? "" : filter_qs.substr(1);
    bool filtered = !body.empty();
    if (!site.read_only) {
        out += "<div class=\"bulk\">";
        if (archive) {
            std::string what = q.status.empty() ? "FAILED jobs" : q.status + " jobs";
            out += action_button(
                "warn", "/api/archive/retry", body,
                fmt::format("Queue again, as new jobs, every {} {}?", what,
                            filtered ? "matching these filters" : "in the archive"),
                filtered ? "Retry matching\u2026" : "Retry all failed\u2026", "retry");
        } else {
            out += action_button(
                "danger", "/api/jobs/cancel", body,
                fmt::format("Cancel every {}live job{}?", q.status.empty() ? "" : q.status + " ",
                            filtered ? " matching these filters" : ""),
                filtered ? "Cancel matching\u2026" : "Cancel all\u2026", "cancel");
        }
        out += "</div>";
    }
    if (page.rows.empty()) {
        out += fmt::format("<p class=\"empty dim\">{}</p>",
                           q.before   ? "No older jobs match."
                           : filtered ? "No jobs match these filters."
                           : archive  ? "The archive is empty."
                                      : "No queued, scheduled or running jobs.");
    } else {
        out +=
            "<div class=\"scroll\"><table class=\"jobs\"><thead><tr><th class=\"n opt\">Id</th>"
            "<th>Job</th><th>Task</th><th>Status</th>";
        out += archive
                   ? "<th>Ended</th><th class=\"opt\">Took</th><th class=\"n opt\">Attempts</th>"
                     "<th>Error</th>"
                   : "<th>Created</th><th class=\"opt\">Scheduled for</th><th class=\"opt\">"
                     "Started</th><th class=\"n opt\">Attempts</th>";
        out += "</tr></thead><tbody>";
        for (const auto& j : page.rows) {
            out += fmt::format(
                "<tr data-rid=\"{}\"><td class=\"n opt dim\">{}</td><td>{}</td>"
                "<td class=\"task\">{}{}</td><td>{}</td>",
                esc(j.rid), j.id, job_link(j.rid), esc(cut(j.task_name, 60)),
                j.sealed ? " <span class=\"dim\" title=\"encrypted parameters\">"
                           "\U0001F512</span>"
                         : "",
                badge(j.status));
            if (archive) {
                out +=
                    "<td>" + age_span(seconds_between(j.updated_at, now), j.updated_at) + "</td>";
                out += j.started_at
                           ? "<td class=\"opt\">" +
                                 esc(duration_text(seconds_between(*j.started_at, j.updated_at))) +
                                 "</td>"
                           : std::string("<td class=\"opt dim\">\u2013</td>");
                out += fmt::format("<td class=\"n opt\">{}</td>", j.attempts);
                out += "<td class=\"err\">" + esc(cut(j.error, 120)) + "</td>";
            } else {
                out +=
                    "<td>" + age_span(seconds_between(j.created_at, now), j.created_at) + "</td>";
                out += opt_time_cell(j.scheduled_at, now, "opt");
                out += opt_time_cell(j.started_at, now, "opt");
                out += fmt::format("<td class=\"n opt\">{}</td>", j.attempts);
            }
            out += "</tr>";
        }
        out += "</tbody></table></div>";
    }
    // Pages: newest, and older than the last row shown.
    std::vector<std::pair<std::string, std::string>> base = filters;
    if (q.limit != 50) base.emplace_back("limit", std::to_string(q.limit));
    const char* path = archive ? "/archive" : "/jobs";
    out += "<nav class=\"pager\">";
    if (q.before)
        out += fmt::format("<a class=\"btn\" href=\"{}{}\">\u2190 Newest</a>", path,
                           esc(query_string(base)));
    if (page.more && !page.rows.empty()) {
        auto older = base;
        older.emplace_back("before", std::to_string(page.rows.back().id));
        out += fmt::format("<a class=\"btn\" id=\"older\" href=\"{}{}\">Older \u2192</a>", path,
                           esc(query_string(older)));
    }
    out += "</nav>";
    return out;
}

// ---- job detail ----

std::string detail_live(const Site& site, const admin::JobDetail& d, TimePoint now) {
    const auto& j = d.job;
    std::string out = "<div class=\"detail-head\"><h1><span class=\"task\">" + esc(j.task_name) +
                      "</span> " + badge(j.status) + "</h1>";
    out += "<p class=\"rid-line\"><code>" + esc(j.rid) + "</code> \u00b7 " +
           (d.archived ? "in the archive" : "live") + "</p>";
    if (!site.read_only) {
        out += "<div class=\"actions\">";
        if (!d.archived)
            out += action_button("danger", "/api/job/" + j.rid + "/cancel", "",
                                 "Cancel job " + j.rid + "? A running task is told to stop.",
                                 "Cancel job");
        else
            out += action_button(
                "primary", "/api/job/" + j.rid + "/retry", "",
                "Queue a new job with the task, parameters and options of " + j.rid + "?",
                "Retry as a new job");
        out += "</div>";
    }
    out += "</div>";

    // Timeline and facts, side by side on wide screens.
    out += "<div class=\"two\"><section class=\"panel\"><h2>Timeline</h2><ol class=\"timeline\">";
    auto step = [&](std::string_view label, std::optional<TimePoint> t, std::string note = {}) {
        if (!t) {
            out += fmt::format(
                "<li class=\"todo\"><span class=\"what\">{}</span><span "
                "class=\"when dim\">\u2013</span></li>",
                esc(label));
            return;
        }
        double s = seconds_between(*t, now);
        out += fmt::format(
            "<li><span class=\"what\">{}</span><span class=\"when\">{} UTC "
            "<span class=\"dim\">({})</span></span>{}</li>",
            esc(label), esc(utc(*t)), s >= 0 ? age_span(s, *t) + " ago" : "in " + esc(age_text(-s)),
            note.empty() ? "" : "<span class=\"note\">" + note + "</span>");
    };
    step("Created", j.created_at);
    if (j.scheduled_at || j.options.schedule) step("Scheduled for", j.scheduled_at);
    std::string waited;
    if (j.started_at)
        waited = "waited " + esc(duration_text(seconds_between(j.created_at, *j.started_at)));
    step("Started", j.started_at, waited);
    if (d.archived) {
        std::string took;
        if (j.started_at)
            took = "ran " + esc(duration_text(seconds_between(*j.started_at, j.updated_at)));
        step(std::string("Ended ") + (j.status == "SUCCEEDED"   ? "(succeeded)"
                                      : j.status == "FAILED"    ? "(failed)"
                                      : j.status == "CANCELLED" ? "(cancelled)"
                                                                : ""),
             j.updated_at, took);
    } else {
        step("Last change", j.updated_at);
    }
    out += "</ol></section>";

    // Facts.
    out += "<section class=\"panel\"><h2>Job</h2><dl class=\"facts\">";
    auto fact = [&](std::string_view k, std::string v) {
        out += "<dt>" + esc(k) + "</dt><dd>" + v + "</dd>";
    };
    fact("Id", esc(std::to_string(j.id)));
    fact("RID", "<code>" + esc(j.rid) + "</code>");
    fact("Task", esc(j.task_name));
    fact("Status", badge(j.status));
    fact("Attempts", esc(std::to_string(j.attempts)));
    if (j.schedule_count) fact("Runs so far", esc(std::to_string(j.schedule_count)));
    fact("Worker", j.worker_rid.empty() ? std::string("<span class=\"dim\">not claimed</span>")
                                        : "<a href=\"/workers#w-" + esc(j.worker_rid) +
                                              "\"><code>" + esc(j.worker_rid) + "</code></a>");
    if (!d.parent_rid.empty()) {
        if (d.parent)
            fact("Parent", job_link(d.parent->rid, false) + " " + esc(d.parent->task_name) + " " +
                               badge(d.parent->status));
        else
            fact("Parent", "<code>" + esc(d.parent_rid) +
                               "</code> <span class=\"dim\">(no longer "
                               "in the database)</span>");
    }
    out += "</dl></section></div>";

    if (!j.error.empty())
        out += "<section class=\"panel\"><h2>Error</h2><pre class=\"error-text\">" + esc(j.error) +
               "</pre></section>";
    out += json_block("Parameters", j.parameters, d.parameters_sealed, d);
    if (d.keyed_sealed || (!j.parameters_keyed.empty() && j.parameters_keyed != "{}"))
        out += json_block("Keyed parameters", j.parameters_keyed, d.keyed_sealed, d);
    if (d.archived || j.results != "[]")
        out += json_block("Results", j.results, d.results_sealed, d);
    out += "<section class=\"panel\"><h2>Options</h2>";
    if (d.options_json.empty() || d.options_json == "{}" || d.options_json == "null")
        out += "<p class=\"dim\">None (the worker's defaults apply).</p>";
    else
        out += "<pre class=\"json\">" + esc(pretty_json(d.options_json)) + "</pre>";
    out += "</section>";

    out += "<section class=\"panel\"><h2>Children</h2>";
    if (d.children.empty()) {
        out += "<p class=\"dim\">No job names this one as its parent.</p>";
    } else {
        out +=
            "<div class=\"scroll\"><table class=\"jobs\"><thead><tr><th>Job</th><th>Task</th>"
            "<th>Status</th><th>Created</th></tr></thead><tbody>";
        for (const auto& c : d.children)
            out +=
                fmt::format("<tr><td>{}</td><td class=\"task\">{}</td><td>{}</td><td>{}</td></tr>",
                            job_link(c.rid), esc(cut(c.task_name, 60)), badge(c.status),
                            age_span(seconds_between(c.created_at, now), c.created_at));
        out += "</tbody></table></div>";
        if (d.more_children) out += "<p class=\"dim small\">The first 100 are shown.</p>";
    }
    if (d.children_until)
        out += "<p class=\"dim small\">Jobs added after " + esc(utc(*d.children_until)) +
               " UTC (ten minutes after this job ended) are not looked for.</p>";
    out += "</section>";
    return out;
}

// ---- workers ----

std::string workers_live(const Site& site, const admin::MasterInfo& m,
                         const std::vector<admin::WorkerRow>& workers) {
    std::string out = "<section class=\"panel\"><h2>Master</h2>";
    if (m.worker_rid.empty()) {
        out += "<p>No worker holds the master role.</p>";
    } else {
        out += fmt::format(
            "<p><a href=\"#w-{}\">{}</a> <code class=\"dim\">{}</code> \u00b7 renewed "
            "{} ago{}</p>",
            esc(m.worker_rid), esc(m.worker_name.empty() ? "(worker row gone)" : m.worker_name),
            esc(m.worker_rid),
            age_span(m.renewed_seconds_ago,
                     queuer::now() - std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::duration<double>(m.renewed_seconds_ago))),
            m.expired ? " \u00b7 <span class=\"st st-failed\">EXPIRED</span> (not renewed within "
                        "master_lock_timeout)"
                      : "");
    }
    auto secs = [](std::chrono::nanoseconds ns) {
        return age_text(std::chrono::duration<double>(ns).count());
    };
    const auto& s = m.settings;
    out += "<dl class=\"facts small\">";
    out += "<dt>Lock timeout</dt><dd>" + esc(secs(s.master_lock_timeout)) + "</dd>";
    out += "<dt>Poll interval</dt><dd>" + esc(secs(s.master_poll_interval)) + "</dd>";
    out += "<dt>Archive retention</dt><dd>" + esc(secs(s.retention_archive)) + "</dd>";
    out += "<dt>Worker stale after</dt><dd>" + esc(secs(s.worker_stale_threshold)) + "</dd>";
    out += "<dt>Worker deleted after</dt><dd>" + esc(secs(s.worker_delete_threshold)) + "</dd>";
    out += "<dt>Job stale after</dt><dd>" + esc(secs(s.job_stale_threshold)) + "</dd>";
    out += "</dl></section>";

    out += "<section class=\"panel\"><h2>Workers</h2>";
    if (workers.empty()) {
        out += "<p class=\"dim\">No workers.</p></section>";
        return out;
    }
    out +=
        "<div class=\"scroll\"><table class=\"workers\"><thead><tr><th>Name</th>"
        "<th>Status</th><th class=\"n\">Running</th><th>Heartbeat</th>"
        "<th class=\"opt\">Host</th><th class=\"opt\">Tasks</th>";
    if (!site.read_only) out += "<th>Stop</th>";
    out += "</tr></thead><tbody>";
    for (const auto& wr : workers) {
        const auto& w = wr.worker;
        bool active = w.status == "READY" || w.status == "RUNNING" || w.status == "STOPPING";
        bool master = !m.worker_rid.empty() && w.rid == m.worker_rid;
        out += fmt::format(
            "<tr id=\"w-{}\" data-rid=\"{}\"{}><td><strong>{}</strong>{}<br><code "
            "class=\"dim small\">{}</code></td><td>{}{}</td>",
            esc(w.rid), esc(w.rid), active ? "" : " class=\"ended\"", esc(w.name),
            master ? " <span class=\"tag\">master</span>" : "", esc(w.rid), badge(w.status),
            wr.stale ? " <span class=\"st st-failed\" title=\"no heartbeat within the stale "
                       "threshold\">stale</span>"
                     : "");
        out += fmt::format("<td class=\"n\">{} / {}</td>", wr.running_jobs, w.max_concurrency);
        out += "<td>" + age_span(wr.heartbeat_age_s, w.updated_at) + " ago</td>";
        std::string host = w.host.empty() ? "" : w.host;
        if (w.pid) host += (host.empty() ? "pid " : " \u00b7 pid ") + std::to_string(w.pid);
        if (!w.queuerd_version.empty()) host += " \u00b7 queuerd " + w.queuerd_version;
        out += "<td class=\"opt\">" +
               (host.empty() ? "<span class=\"dim\">\u2013</span>" : esc(host)) + "</td>";
        std::string tasks;
        for (size_t i = 0; i < w.available_tasks.size(); ++i)
            tasks += (i ? ", " : "") + w.available_tasks[i];
        out += "<td class=\"opt tasks-list\">" + esc(cut(tasks, 200)) + "</td>";
        if (!site.read_only) {
            out += "<td class=\"stop\">";
            if (w.status == "READY" || w.status == "RUNNING")
                out +=
                    action_button("warn small", "/api/worker/" + w.rid + "/stop", "mode=graceful",
                                  "Stop worker " + w.name +
                                      " gracefully? It takes no new jobs and stops once its "
                                      "running jobs have finished.",
                                  "Graceful");
            if (w.status != "STOPPED" && w.status != "FAILED")
                out += action_button(
                    "danger small", "/api/worker/" + w.rid + "/stop", "mode=now",
                    "Stop worker " + w.name + " now? Its running jobs are cancelled.", "Now");
            out += "</td>";
        }
        out += "</tr>";
    }
    out += "</tbody></table></div></section>";
    return out;
}

}  // namespace queuerctl::web
