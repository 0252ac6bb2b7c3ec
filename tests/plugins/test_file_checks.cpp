// file_checks: a truncated or foreign plugin is a one-line error before dlopen (never a SIGBUS),
// and insecure_file() refuses files and directories that other users could change (or read,
// for secrets). Real files in a throwaway directory; no mocks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "file_checks.hpp"
#include "plugin_host.hpp"
#include "queuer/error.hpp"

namespace fs = std::filesystem;
using queuerd::FileKind;
using queuerd::insecure_file;

namespace {

const std::string kExamples = QUEUER_EXAMPLES_PLUGIN;

class FileChecks : public ::testing::Test {
  protected:
    FileChecks() {
        char tmpl[] = "/tmp/queuer-files.XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    ~FileChecks() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string& name, const std::string& content, mode_t mode = 0644) {
        std::string p = dir_ + "/" + name;
        std::ofstream(p, std::ios::binary) << content;
        ::chmod(p.c_str(), mode);
        return p;
    }
    std::string copy_prefix(const std::string& name, uintmax_t bytes) {
        std::ifstream in(kExamples, std::ios::binary);
        std::string data(bytes, '\0');
        in.read(data.data(), static_cast<std::streamsize>(bytes));
        return write(name, data.substr(0, static_cast<size_t>(in.gcount())), 0755);
    }
    std::string load_error(const std::string& path) {
        queuerd::PluginHost host;
        try {
            host.load(path);
        } catch (const queuer::Error& e) {
            EXPECT_EQ(e.kind(), queuer::ErrorKind::Plugin);
            return e.what();
        }
        return "";
    }
    std::string dir_;
};

TEST_F(FileChecks, TruncatedPluginIsRefusedBeforeDlopen) {
    const uintmax_t size = fs::file_size(kExamples);
    ASSERT_GT(size, 8192u);
    for (uintmax_t n : {uintmax_t{0}, uintmax_t{3}, uintmax_t{16}, uintmax_t{63}, uintmax_t{64},
                        uintmax_t{300}, uintmax_t{4096}, size / 4, size / 2, size - 1}) {
        std::string p = copy_prefix("trunc-" + std::to_string(n) + ".so", n);
        std::string msg = load_error(p);
        EXPECT_NE(msg.find("cannot load plugin " + p), std::string::npos) << n << ": " << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
        if (n >= 64) {
            EXPECT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
        }
    }
    // The whole file still loads.
    std::string whole = copy_prefix("whole.so", size);
    EXPECT_EQ(load_error(whole), "");
}

TEST_F(FileChecks, NonElfFilesAreRefusedWithTheReason) {
    std::string text = write("libtext.so", "this is not a shared object\n", 0755);
    std::string msg = load_error(text);
    EXPECT_NE(msg.find("not an ELF shared object"), std::string::npos) << msg;

    // An ELF file that is not a shared object: a relocatable object (ET_REL).
    std::string obj = dir_ + "/rel.o";
    std::string src = write("rel.c", "int f(void) { return 1; }\n");
    if (std::system(("cc -c -o " + obj + " " + src + " 2>/dev/null").c_str()) == 0) {
        msg = load_error(obj);
        EXPECT_NE(msg.find("not a shared object"), std::string::npos) << msg;
    }

    fs::create_directory(dir_ + "/dir.so");
    msg = load_error(dir_ + "/dir.so");
    EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;

    // A missing file still gets dlopen's own reason.
    msg = load_error(dir_ + "/missing.so");
    EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST_F(FileChecks, OwnFilesInPrivateDirectoriesAreTrusted) {
    std::string cfg = write("queuerd.yaml", "worker: {}\n", 0644);
    EXPECT_EQ(insecure_file(cfg, FileKind::Config), std::nullopt);
    EXPECT_EQ(insecure_file(kExamples, FileKind::Plugin), std::nullopt);
    std::string key = write("key", "k\n", 0600);
    EXPECT_EQ(insecure_file(key, FileKind::Secret), std::nullopt);
    std::string group_key = write("gkey", "k\n", 0640);
    EXPECT_EQ(insecure_file(group_key, FileKind::Secret), std::nullopt);
    // Missing files are left to the caller's own error.
    EXPECT_EQ(insecure_file(dir_ + "/missing", FileKind::Config), std::nullopt);
}

TEST_F(FileChecks, WritableByOthersIsRefused) {
    std::string cfg = write("queuerd.yaml", "worker: {}\n", 0666);
    auto why = insecure_file(cfg, FileKind::Config);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("writable by others"), std::string::npos) << *why;
    EXPECT_NE(why->find("0666"), std::string::npos) << *why;

    std::string plugin = write("libp.so", "x", 0775);
    why = insecure_file(plugin, FileKind::Plugin);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("writable by its group"), std::string::npos) << *why;
}

TEST_F(FileChecks, WritableDirectoryOnThePathIsRefused) {
    fs::create_directory(dir_ + "/open");
    std::string p = write("open/libp.so", "x", 0755);
    ::chmod((dir_ + "/open").c_str(), 0777);
    auto why = insecure_file(p, FileKind::Plugin);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("directory " + dir_ + "/open is writable by others"), std::string::npos)
        << *why;
    // A sticky directory (like /tmp) is fine as long as the entry in it is ours.
    ::chmod((dir_ + "/open").c_str(), 01777);
    EXPECT_EQ(insecure_file(p, FileKind::Plugin), std::nullopt);
}

TEST_F(FileChecks, SymlinkIntoAWritableDirectoryIsRefused) {
    fs::create_directory(dir_ + "/open");
    std::string target = write("open/libreal.so", "x", 0755);
    ::chmod((dir_ + "/open").c_str(), 0777);
    std::string link = dir_ + "/liblink.so";
    fs::create_symlink(target, link);
    auto why = insecure_file(link, FileKind::Plugin);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find(dir_ + "/open"), std::string::npos) << *why;
}

TEST_F(FileChecks, SecretReadableByOthersIsRefused) {
    std::string key = write("encryption.key", "k\n", 0644);
    auto why = insecure_file(key, FileKind::Secret);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("readable by others"), std::string::npos) << *why;
    // The same mode is fine for a configuration file.
    EXPECT_EQ(insecure_file(key, FileKind::Config), std::nullopt);
}

TEST_F(FileChecks, FileOfAnotherUserIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
    std::string p = write("libp.so", "x", 0755);
    ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
    auto why = insecure_file(p, FileKind::Plugin);
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("is owned by"), std::string::npos) << *why;
    EXPECT_NE(why->find("65534"), std::string::npos) << *why;
}

}  // namespace
