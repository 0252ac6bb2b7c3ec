// See systemd.hpp.
#include "systemd.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace queuerd::systemd {
namespace {

// The address of a path ("/run/...") or abstract ("@name") AF_UNIX socket; false when `name`
// is neither or does not fit.
bool unix_address(std::string_view name, sockaddr_un& addr, socklen_t& len) {
    if (name.empty() || (name[0] != '/' && name[0] != '@')) return false;
    if (name.size() >= sizeof(addr.sun_path)) return false;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace: no trailing NUL counts
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                 (name[0] == '@' ? 0 : 1));
    return true;
}

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

int send_datagram(const char* path, const void* data, size_t size, int pass_fd) {
    sockaddr_un addr{};
    socklen_t len = 0;
    if (!unix_address(path, addr, len)) return -EINVAL;
    Fd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (s.fd < 0) return -errno;
    iovec iov{const_cast<void*>(data), size};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = len;
    msg.msg_iov = size ? &iov : nullptr;
    msg.msg_iovlen = size ? 1 : 0;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n;
    do {
        n = ::sendmsg(s.fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

}  // namespace

int notify(std::string_view state) {
    const char* name = std::getenv("NOTIFY_SOCKET");
    if (!name || !*name) return 0;
    sockaddr_un addr{};
    socklen_t len = 0;
    if (!unix_address(name, addr, len)) return 0;  // e.g. "vsock:...": not spoken here
    int rc = send_datagram(name, state.data(), state.size(), -1);
    return rc < 0 ? rc : 1;
}

std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}

uint64_t watchdog_usec() {
    const char* usec = std::getenv("WATCHDOG_USEC");
    if (!usec || !*usec) return 0;
    if (const char* pid = std::getenv("WATCHDOG_PID"); pid && *pid) {
        char* end = nullptr;
        errno = 0;
        long long p = std::strtoll(pid, &end, 10);
        if (errno || *end || p != static_cast<long long>(::getpid())) return 0;
    }
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(usec, &end, 10);
    if (errno || *end || usec[0] == '-') return 0;
    return static_cast<uint64_t>(v);
}

std::string journal_entry(const std::vector<JournalField>& fields) {
    std::string out;
    for (const auto& [name, value] : fields) {
        out.append(name);
        if (value.find('\n') == std::string_view::npos) {
            out.push_back('=');
            out.append(value);
        } else {
            out.push_back('\n');
            uint64_t n = value.size();
            for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
            out.append(value);
        }
        out.push_back('\n');
    }
    return out;
}

int journal_send(const std::vector<JournalField>& fields, const char* socket_path) {
    std::string entry = journal_entry(fields);
    int rc = send_datagram(socket_path, entry.data(), entry.size(), -1);
    if (rc != -EMSGSIZE && rc != -ENOBUFS) return rc;
    // Too large for one datagram: the entry goes in a sealed memfd, its descriptor alone in the
    // datagram (journald reads and closes it).
    Fd m(::memfd_create("queuerd-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (m.fd < 0) return -errno;
    for (size_t off = 0; off < entry.size();) {
        ssize_t n = ::write(m.fd, entry.data() + off, entry.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        off += static_cast<size_t>(n);
    }
    if (::fcntl(m.fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return -errno;
    return send_datagram(socket_path, nullptr, 0, m.fd);
}

}  // namespace queuerd::systemd
