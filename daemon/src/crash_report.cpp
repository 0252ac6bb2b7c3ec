// The crash report: see crash_report.hpp. The handler touches only the slot table and static
// buffers and calls only write(2), sigaction(2) and raise(3).
#include "crash_report.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace queuerd::crash {

namespace {

constexpr int kSlots = 1024;  // > worker.max_concurrency's limit (1000)
constexpr size_t kLine = 256;

struct Slot {
    // 0 free, 1 being written, 2 holds a job
    std::atomic<int> state{0};
    std::atomic<size_t> len{0};
    char line[kLine];
};

Slot g_slots[kSlots];
std::atomic<int> g_hint{0};
char g_prefix[8] = "";
size_t g_prefix_len = 0;
std::atomic<bool> g_installed{false};
volatile std::sig_atomic_t g_in_handler = 0;

const int kSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};

void put(const char* s, size_t n) {
    while (n > 0) {
        ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<size_t>(w);
    }
}
void put(const char* s) {
    put(s, std::strlen(s));
}

const char* signal_name(int sig) {
    switch (sig) {
        case SIGSEGV:
            return "SIGSEGV";
        case SIGBUS:
            return "SIGBUS";
        case SIGABRT:
            return "SIGABRT";
        case SIGFPE:
            return "SIGFPE";
        case SIGILL:
            return "SIGILL";
        default:
            return "a fatal signal";
    }
}

void handler(int sig) {
    if (g_in_handler == 0) {
        g_in_handler = 1;
        put(g_prefix, g_prefix_len);
        put("queuerd: fatal signal ");
        put(signal_name(sig));
        put(" in a task thread or the daemon; jobs running in this process:\n");
        int named = 0;
        for (auto& s : g_slots) {
            if (s.state.load(std::memory_order_acquire) != 2) continue;
            size_t n = s.len.load(std::memory_order_relaxed);
            if (n > kLine) n = kLine;
            put(g_prefix, g_prefix_len);
            put(s.line, n);
            ++named;
        }
        if (named == 0) {
            put(g_prefix, g_prefix_len);
            put("queuerd:   (none)\n");
        }
    }
    // The default action, then the same signal again: the process dies of it as it would have.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(sig, &dfl, nullptr);
    ::raise(sig);
}

size_t append(char* out, size_t at, std::string_view s) {
    size_t n = s.size();
    if (at + n > kLine - 1) n = kLine - 1 - at;
    std::memcpy(out + at, s.data(), n);
    return at + n;
}

}  // namespace

void install(bool syslog_prefix) {
    if (syslog_prefix) {
        std::strcpy(g_prefix, "<2>");
        g_prefix_len = 3;
    }
    if (g_installed.exchange(true)) return;
    for (int sig : kSignals) {
        struct sigaction sa {};
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_NODEFER;  // the re-raise inside the handler must not wait
        ::sigaction(sig, &sa, nullptr);
    }
}

JobSlot::JobSlot(std::string_view rid, std::string_view task) {
    int start = g_hint.fetch_add(1, std::memory_order_relaxed) & (kSlots - 1);
    for (int k = 0; k < kSlots; ++k) {
        int i = (start + k) & (kSlots - 1);
        int expected = 0;
        if (!g_slots[i].state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
            continue;
        Slot& s = g_slots[i];
        size_t n = append(s.line, 0, "queuerd:   job ");
        n = append(s.line, n, rid);
        n = append(s.line, n, " task ");
        n = append(s.line, n, task);
        s.line[n++] = '\n';
        s.len.store(n, std::memory_order_relaxed);
        s.state.store(2, std::memory_order_release);
        index_ = i;
        return;
    }
}

JobSlot::~JobSlot() {
    if (index_ >= 0) g_slots[index_].state.store(0, std::memory_order_release);
}

int recorded_jobs() {
    int n = 0;
    for (auto& s : g_slots)
        if (s.state.load(std::memory_order_acquire) == 2) ++n;
    return n;
}

}  // namespace queuerd::crash
