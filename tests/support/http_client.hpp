// Test support: a minimal HTTP/1.1 client over a plain socket (GET with Connection: close) and a
// parser for the Prometheus text format, to check queuerd's endpoints from the outside.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace queuer::test {

struct HttpReply {
    int status = 0;                              // 0: no answer
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
};

// Sends `request_head` (the request line and headers, without the final blank line) and
// `request_body`, and reads until the server closes or `timeout`; `max_bytes` stops early.
inline HttpReply http_raw(int port, const std::string& request_head,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          size_t max_bytes = 64u << 20, const std::string& request_body = {}) {
    HttpReply r;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return r;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return r;
    }
    std::string req = request_head + "\r\n\r\n" + request_body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return r;
    }
    std::string raw;
    auto end = std::chrono::steady_clock::now() + timeout;
    while (raw.size() < max_bytes) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[65536];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return r;
    std::istringstream head(raw.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    r.status = std::atoi(line.substr(line.find(' ') + 1).c_str());
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string k = line.substr(0, colon);
        for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        r.headers[k] = v;
    }
    std::string body = raw.substr(head_end + 4);
    if (r.headers["transfer-encoding"] == "chunked") {
        std::string out;
        size_t pos = 0;
        while (pos < body.size()) {
            size_t eol = body.find("\r\n", pos);
            if (eol == std::string::npos) break;
            size_t n = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
            if (n == 0) break;
            out += body.substr(eol + 2, n);
            pos = eol + 2 + n + 2;
        }
        r.body = out;
    } else {
        r.body = body;
    }
    return r;
}

inline HttpReply http_get(int port, const std::string& path,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return http_raw(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close",
                    timeout);
}

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct Exposition {
    std::vector<Sample> samples;
    std::map<std::string, std::string> types;  // family name -> counter | gauge | histogram
    std::vector<std::string> errors;           // lines that do not parse

    // The value of the one sample with this name and these labels (a subset match); NaN if none.
    double value(const std::string& name,
                 const std::map<std::string, std::string>& labels = {}) const {
        for (const auto& s : samples) {
            if (s.name != name) continue;
            bool ok = true;
            for (const auto& [k, v] : labels) {
                auto it = s.labels.find(k);
                if (it == s.labels.end() || it->second != v) ok = false;
            }
            if (ok) return s.value;
        }
        return std::nan("");
    }
    // Every sample name the exposition can carry: the TYPE lines' families (with _bucket, _sum,
    // _count for histograms) and every sample seen.
    std::set<std::string> names() const {
        std::set<std::string> out;
        for (const auto& [n, t] : types) {
            out.insert(n);
            if (t == "histogram") {
                out.insert(n + "_bucket");
                out.insert(n + "_sum");
                out.insert(n + "_count");
            }
        }
        for (const auto& s : samples) out.insert(s.name);
        return out;
    }
};

// Parses the text format 0.0.4 strictly enough for tests: label values with \\, \" and \n.
inline Exposition parse_exposition(const std::string& text) {
    Exposition e;
    std::istringstream in(text);
    std::string line;
    static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream ls(line.substr(7));
            std::string n, t;
            ls >> n >> t;
            e.types[n] = t;
            continue;
        }
        if (line[0] == '#') continue;
        Sample s;
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        if (!std::regex_match(s.name, name_re)) {
            e.errors.push_back(line);
            continue;
        }
        bool bad = false;
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                size_t eq = line.find('=', i);
                if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
                    bad = true;
                    break;
                }
                std::string key = line.substr(i, eq - i);
                std::string val;
                size_t j = eq + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\' && j + 1 < line.size()) {
                        char c = line[++j];
                        val += c == 'n' ? '\n' : c;
                    } else {
                        val += line[j];
                    }
                }
                if (j >= line.size()) {
                    bad = true;
                    break;
                }
                s.labels[key] = val;
                i = j + 1;
                if (i < line.size() && line[i] == ',') ++i;
            }
            if (i >= line.size()) bad = true;
            ++i;
        }
        if (bad || i >= line.size() || line[i] != ' ') {
            e.errors.push_back(line);
            continue;
        }
        std::string v = line.substr(i + 1);
        if (v == "+Inf")
            s.value = INFINITY;
        else if (v == "-Inf")
            s.value = -INFINITY;
        else if (v == "NaN")
            s.value = std::nan("");
        else {
            char* endp = nullptr;
            s.value = std::strtod(v.c_str(), &endp);
            if (!endp || *endp != '\0') {
                e.errors.push_back(line);
                continue;
            }
        }
        e.samples.push_back(std::move(s));
    }
    return e;
}

}  // namespace queuer::test
