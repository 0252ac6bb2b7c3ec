// The systemd protocols queuerd speaks without libsystemd (daemon/src/systemd.hpp), checked
// against sockets the test binds where systemd's would be: what arrives is what a service
// manager or journald would read.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "systemd.hpp"

namespace {

using queuerd::systemd::JournalField;

// A datagram socket bound at `name` ("/path" or "@abstract"), as systemd's would be.
class Listener {
  public:
    explicit Listener(std::string name) : name_(std::move(name)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, name_.data(), name_.size());
        if (name_[0] == '@') a.sun_path[0] = '\0';
        auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() +
                                          (name_[0] == '@' ? 0 : 1));
        if (name_[0] == '/') ::unlink(name_.c_str());
        ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) == 0;
        // journald and systemd raise their receive buffers; so does the test, for the big entry.
        int size = 8 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
    }
    ~Listener() {
        if (fd_ >= 0) ::close(fd_);
        if (name_[0] == '/') ::unlink(name_.c_str());
    }
    bool ok() const { return ok_; }

    // One datagram (and the descriptor passed with it, if any), or nothing within 5 s.
    struct Message {
        std::string data;
        int fd = -1;
    };
    std::optional<Message> receive() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return std::nullopt;
        std::string buf(16 << 20, '\0');
        iovec iov{buf.data(), buf.size()};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) return std::nullopt;
        Message m;
        m.data.assign(buf.data(), static_cast<size_t>(n));
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                std::memcpy(&m.fd, CMSG_DATA(c), sizeof(int));
        return m;
    }

  private:
    std::string name_;
    int fd_ = -1;
    bool ok_ = false;
};

std::string temp_socket(const char* what) {
    return "/tmp/queuerd-test-" + std::to_string(::getpid()) + "-" + what + ".sock";
}

// Restores an environment variable when the test ends.
class EnvVar {
  public:
    EnvVar(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~EnvVar() {
        if (old_)
            ::setenv(name_.c_str(), old_->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }

  private:
    std::string name_;
    std::optional<std::string> old_;
};

TEST(SystemdNotify, SendsTheStateToThePathInNotifySocket) {
    auto path = temp_socket("notify");
    Listener l(path);
    ASSERT_TRUE(l.ok()) << std::strerror(errno);
    EnvVar v("NOTIFY_SOCKET", path.c_str());
    EXPECT_EQ(queuerd::systemd::notify("READY=1\nSTATUS=running"), 1);
    auto m = l.receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->data, "READY=1\nSTATUS=running");
    EXPECT_EQ(m->fd, -1);
}

TEST(SystemdNotify, SpeaksTheAbstractNamespace) {
    std::string name = "@queuerd-test-" + std::to_string(::getpid());
    Listener l(name);
    ASSERT_TRUE(l.ok()) << std::strerror(errno);
    EnvVar v("NOTIFY_SOCKET", name.c_str());
    EXPECT_EQ(queuerd::systemd::notify("WATCHDOG=1"), 1);
    auto m = l.receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->data, "WATCHDOG=1");
}

TEST(SystemdNotify, NothingToTellWithoutAServiceManager) {
    {
        EnvVar v("NOTIFY_SOCKET", nullptr);
        EXPECT_EQ(queuerd::systemd::notify("READY=1"), 0);
    }
    {
        EnvVar v("NOTIFY_SOCKET", "");
        EXPECT_EQ(queuerd::systemd::notify("READY=1"), 0);
    }
    {
        EnvVar v("NOTIFY_SOCKET", "vsock:2:1234");  // newer systemd; not spoken here
        EXPECT_EQ(queuerd::systemd::notify("READY=1"), 0);
    }
    {
        auto path = temp_socket("nobody");  // nobody listens: an error, not a crash or a hang
        ::unlink(path.c_str());
        EnvVar v("NOTIFY_SOCKET", path.c_str());
        EXPECT_EQ(queuerd::systemd::notify("READY=1"), -ENOENT);
    }
}

TEST(SystemdNotify, StatusTextCannotAddAssignments) {
    EXPECT_EQ(queuerd::systemd::one_line("bad\nREADY=1\r\nMAINPID=1"), "bad READY=1  MAINPID=1");
    EXPECT_EQ(queuerd::systemd::one_line("plain"), "plain");
}

TEST(SystemdNotify, WatchdogIntervalIsForThisProcessOnly) {
    std::string me = std::to_string(::getpid());
    {
        EnvVar u("WATCHDOG_USEC", "30000000"), p("WATCHDOG_PID", nullptr);
        EXPECT_EQ(queuerd::systemd::watchdog_usec(), 30000000u);
    }
    {
        EnvVar u("WATCHDOG_USEC", "30000000"), p("WATCHDOG_PID", me.c_str());
        EXPECT_EQ(queuerd::systemd::watchdog_usec(), 30000000u);
    }
    {
        std::string other = std::to_string(::getpid() + 1);
        EnvVar u("WATCHDOG_USEC", "30000000"), p("WATCHDOG_PID", other.c_str());
        EXPECT_EQ(queuerd::systemd::watchdog_usec(), 0u);
    }
    for (const char* bad : {"", "abc", "-5", "12x", "99999999999999999999999"}) {
        EnvVar u("WATCHDOG_USEC", bad), p("WATCHDOG_PID", nullptr);
        EXPECT_EQ(queuerd::systemd::watchdog_usec(), 0u) << bad;
    }
    {
        EnvVar u("WATCHDOG_USEC", nullptr), p("WATCHDOG_PID", nullptr);
        EXPECT_EQ(queuerd::systemd::watchdog_usec(), 0u);
    }
}

TEST(SystemdJournal, EntryIsNameEqualsValueOrLengthPrefixedWhenMultiLine) {
    EXPECT_EQ(queuerd::systemd::journal_entry({{"MESSAGE", "hello"}, {"PRIORITY", "6"}}),
              "MESSAGE=hello\nPRIORITY=6\n");
    std::string two = "line one\nline two";
    std::string expect = "MESSAGE\n";
    expect += std::string("\x11\0\0\0\0\0\0\0", 8);  // 17 bytes, little-endian
    expect += two + "\nTASK=echo\n";
    EXPECT_EQ(queuerd::systemd::journal_entry({{"MESSAGE", two}, {"TASK", "echo"}}), expect);
    EXPECT_EQ(queuerd::systemd::journal_entry({{"MESSAGE", ""}}), "MESSAGE=\n");
}

TEST(SystemdJournal, SendsOneDatagramPerEntry) {
    auto path = temp_socket("journal");
    Listener l(path);
    ASSERT_TRUE(l.ok()) << std::strerror(errno);
    std::vector<JournalField> f{
        {"MESSAGE", "job failed:\nstack"}, {"PRIORITY", "4"}, {"JOB_RID", "abc"}};
    ASSERT_EQ(queuerd::systemd::journal_send(f, path.c_str()), 0);
    auto m = l.receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->data, queuerd::systemd::journal_entry(f));
    EXPECT_EQ(m->fd, -1);
}

TEST(SystemdJournal, AnEntryTooLargeForADatagramTravelsInASealedMemfd) {
    auto path = temp_socket("journal-big");
    Listener l(path);
    ASSERT_TRUE(l.ok()) << std::strerror(errno);
    std::string big(12 << 20, 'x');  // above any datagram size the kernel accepts
    std::vector<JournalField> f{{"MESSAGE", big}, {"PRIORITY", "6"}};
    ASSERT_EQ(queuerd::systemd::journal_send(f, path.c_str()), 0);
    auto m = l.receive();
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->data.empty());
    ASSERT_GE(m->fd, 0);
    int seals = ::fcntl(m->fd, F_GET_SEALS);
    EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::pread(m->fd, buf, sizeof(buf), static_cast<off_t>(got.size()))) > 0)
        got.append(buf, static_cast<size_t>(n));
    ::close(m->fd);
    EXPECT_EQ(got, queuerd::systemd::journal_entry(f));
}

TEST(SystemdJournal, NoJournaldIsAnErrorTheCallerCanReport) {
    auto path = temp_socket("no-journald");
    ::unlink(path.c_str());
    EXPECT_EQ(queuerd::systemd::journal_send({{"MESSAGE", "x"}}, path.c_str()), -ENOENT);
}

}  // namespace
