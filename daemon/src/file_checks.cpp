// ELF sanity checks for plugins and ownership/permission checks for trusted files.
#include "file_checks.hpp"

#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <link.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "queuer/error.hpp"

namespace queuerd {

namespace {

[[noreturn]] void refuse(const std::string& msg) {
    throw queuer::Error(queuer::ErrorKind::Plugin, msg);
}

// The ELF machine this process runs on (0 = unknown: not checked).
constexpr uint16_t host_machine() {
#if defined(__x86_64__)
    return EM_X86_64;
#elif defined(__aarch64__)
    return EM_AARCH64;
#elif defined(__i386__)
    return EM_386;
#elif defined(__arm__)
    return EM_ARM;
#elif defined(__riscv)
    return EM_RISCV;
#elif defined(__powerpc64__)
    return EM_PPC64;
#elif defined(__s390x__)
    return EM_S390;
#else
    return 0;
#endif
}

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

bool read_at(int fd, void* buf, size_t n, uint64_t off) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
        ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
        off += static_cast<uint64_t>(r);
    }
    return true;
}

// a + b * c without overflow; UINT64_MAX when it would overflow.
uint64_t end_of(uint64_t a, uint64_t b, uint64_t c) {
    if (c != 0 && b > (UINT64_MAX - a) / c) return UINT64_MAX;
    return a + b * c;
}

std::string mode_text(mode_t m) {
    return fmt::format("{:04o}", m & 07777);
}

std::string user_name(uid_t uid) {
    struct passwd pw {};
    struct passwd* res = nullptr;
    char buf[1024];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        return fmt::format("{} (uid {})", res->pw_name, uid);
    return fmt::format("uid {}", uid);
}

bool trusted_owner(uid_t uid) {
    return uid == 0 || uid == ::geteuid();
}

// The prefixes of an absolute, normalised path: "/", "/a", "/a/b", ..., the path itself.
std::vector<std::filesystem::path> prefixes(const std::filesystem::path& p) {
    std::vector<std::filesystem::path> out;
    std::filesystem::path cur;
    for (const auto& part : p) {
        cur /= part;
        out.push_back(cur);
    }
    return out;
}

// Checks the chain of `p` (absolute, normalised); nullopt when every element may be trusted.
std::optional<std::string> check_chain(const std::filesystem::path& p, FileKind kind) {
    auto chain = prefixes(p);
    for (size_t i = 0; i < chain.size(); ++i) {
        const std::string name = chain[i].string();
        const bool last = i + 1 == chain.size();
        struct stat st {};
        if (::stat(name.c_str(), &st) != 0) return std::nullopt;  // the caller reports it
        if (!trusted_owner(st.st_uid))
            return fmt::format("{} {} is owned by {}, not by root or the user queuerd runs as",
                               last ? "the file" : "directory", name, user_name(st.st_uid));
        if (!last) {
            if ((st.st_mode & (S_IWGRP | S_IWOTH)) == 0) continue;
            if (st.st_mode & S_ISVTX) {
                // Sticky (like /tmp): others may add entries but not replace ours. The entry
                // below must be ours (lstat: a symlink there is what others could swap).
                struct stat below {};
                if (::lstat(chain[i + 1].c_str(), &below) != 0) return std::nullopt;
                if (!trusted_owner(below.st_uid))
                    return fmt::format(
                        "{} is owned by {} in the shared directory {}, not by root or the user "
                        "queuerd runs as",
                        chain[i + 1].string(), user_name(below.st_uid), name);
                continue;
            }
            return fmt::format("directory {} is writable by {} (mode {})", name,
                               (st.st_mode & S_IWOTH) ? "others" : "its group",
                               mode_text(st.st_mode));
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH))
            return fmt::format("it is writable by {} (mode {})",
                               (st.st_mode & S_IWOTH) ? "others" : "its group",
                               mode_text(st.st_mode));
        if (kind == FileKind::Secret && (st.st_mode & S_IROTH))
            return fmt::format("it is readable by others (mode {})", mode_text(st.st_mode));
    }
    return std::nullopt;
}

}  // namespace

const char* to_string(FileKind kind) {
    switch (kind) {
        case FileKind::Config:
            return "configuration file";
        case FileKind::Plugin:
            return "plugin";
        case FileKind::Secret:
            return "secret file";
    }
    return "file";
}

std::optional<std::string> insecure_file(const std::string& path, FileKind kind) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (ec) return std::nullopt;
    abs = abs.lexically_normal();
    if (auto why = check_chain(abs, kind)) return why;
    auto real = std::filesystem::canonical(abs, ec);
    if (!ec && real != abs) return check_chain(real, kind);
    return std::nullopt;
}

void check_elf_plugin(const std::string& path) {
    if (path.find('/') == std::string::npos) return;
    Fd f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return;
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) return;
    if (!S_ISREG(st.st_mode))
        refuse(fmt::format("cannot load plugin {}: not a regular file", path));
    const uint64_t size = static_cast<uint64_t>(st.st_size);

    ElfW(Ehdr) eh{};
    unsigned char ident[EI_NIDENT] = {};
    if (size < EI_NIDENT || !read_at(f.fd, ident, EI_NIDENT, 0) ||
        std::memcmp(ident, ELFMAG, SELFMAG) != 0)
        refuse(
            fmt::format("cannot load plugin {}: not an ELF shared object ({} bytes, no ELF "
                        "header); give the path of the built .so",
                        path, size));
    const unsigned char want_class = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
    if (ident[EI_CLASS] != want_class)
        refuse(
            fmt::format("cannot load plugin {}: it is a {}-bit ELF file, this queuerd is "
                        "{}-bit",
                        path, ident[EI_CLASS] == ELFCLASS64 ? 64 : 32, sizeof(void*) * 8));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const unsigned char want_data = ELFDATA2LSB;
#else
    const unsigned char want_data = ELFDATA2MSB;
#endif
    if (ident[EI_DATA] != want_data)
        refuse(fmt::format("cannot load plugin {}: it is built for the other byte order", path));
    if (size < sizeof eh || !read_at(f.fd, &eh, sizeof eh, 0))
        refuse(fmt::format(
            "cannot load plugin {}: truncated: {} bytes, shorter than its ELF header ({} bytes)",
            path, size, sizeof eh));
    if (eh.e_type != ET_DYN)
        refuse(
            fmt::format("cannot load plugin {}: not a shared object (ELF type {}); build it "
                        "with -shared (CMake: add_library(NAME MODULE ...))",
                        path,
                        eh.e_type == ET_EXEC  ? "executable"
                        : eh.e_type == ET_REL ? "relocatable object"
                                              : std::to_string(eh.e_type)));
    if (host_machine() != 0 && eh.e_machine != host_machine())
        refuse(
            fmt::format("cannot load plugin {}: built for another machine (ELF machine {}, "
                        "this queuerd runs on {})",
                        path, eh.e_machine, host_machine()));

    // The header tables and every segment's bytes must lie within the file.
    uint64_t need = sizeof eh;
    auto want = [&](uint64_t end) {
        if (end > need) need = end;
    };
    if (eh.e_phnum > 0) {
        if (eh.e_phentsize != sizeof(ElfW(Phdr)))
            refuse(
                fmt::format("cannot load plugin {}: malformed ELF header (program header "
                            "size {})",
                            path, eh.e_phentsize));
        want(end_of(eh.e_phoff, eh.e_phnum, eh.e_phentsize));
    }
    if (eh.e_shoff != 0) want(end_of(eh.e_shoff, eh.e_shnum ? eh.e_shnum : 1, eh.e_shentsize));
    if (need <= size && eh.e_phnum > 0) {
        std::vector<ElfW(Phdr)> ph(eh.e_phnum);
        if (!read_at(f.fd, ph.data(), ph.size() * sizeof(ElfW(Phdr)), eh.e_phoff))
            refuse(fmt::format("cannot load plugin {}: cannot read its program headers", path));
        for (const auto& p : ph)
            if (p.p_type == PT_LOAD || p.p_type == PT_DYNAMIC)
                want(end_of(p.p_offset, 1, p.p_filesz));
    }
    if (need > size)
        refuse(fmt::format(
            "cannot load plugin {}: truncated: the file has {} bytes but its ELF "
            "headers describe {} (an interrupted copy or build?)",
            path, size, need == UINT64_MAX ? std::string("more") : std::to_string(need)));
}

}  // namespace queuerd
