// Documentation held in step with the binaries. Each failure names what is missing and where:
//  - docs/configuration.md documents exactly the keys the YAML loader accepts;
//  - every flag of `queuerd --help`, `queuerctl --help` and every queuerctl subcommand's --help
//    appears in the man page's sources, and every queuerctl subcommand has a heading in
//    docs/queuerctl.md;
//  - the bash completion offers every queuerctl verb, noun and flag;
//  - docs/queuerctl.md shows the current schema version;
//  - every complete plugin in docs/plugin-guide.md compiles (-Wall -Wextra -Werror) and loads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "plugin_host.hpp"
#include "queuer/app_config.hpp"
#include "queuer/error.hpp"
#include "queuer/schema.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace queuer::test;

namespace {

const std::string kSource = QUEUER_SOURCE_DIR;

std::string source(const std::string& rel) {
    return read_file(kSource + "/" + rel);
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string line;
    while (std::getline(ss, line)) out.push_back(line);
    return out;
}

// The concatenated sources of a man page (the lists of cmake/QueuerInstall.cmake).
std::string man_sources(const char* list, std::string& names) {
    std::string text;
    for (const auto& f : split(list, ',')) {
        text += source(f) + "\n";
        names += (names.empty() ? "" : " + ") + f;
    }
    return text;
}

// Lines outside fenced code blocks that are Markdown headings.
std::vector<std::string> headings(const std::string& text) {
    std::vector<std::string> out;
    bool fenced = false;
    for (const auto& l : lines_of(text)) {
        if (l.rfind("```", 0) == 0) fenced = !fenced;
        if (!fenced && l.rfind("#", 0) == 0) out.push_back(l);
    }
    return out;
}

bool has_word(const std::string& text, const std::string& word) {
    size_t pos = 0;
    auto part = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    };
    while ((pos = text.find(word, pos)) != std::string::npos) {
        bool left = pos == 0 || !part(text[pos - 1]);
        size_t end = pos + word.size();
        bool right = end >= text.size() || !part(text[end]);
        if (left && right) return true;
        pos = end;
    }
    return false;
}

// ---- CLI11 help parsing -----------------------------------------------------------------

struct Help {
    std::vector<std::string> flags;        // "-r", "--rid", ...
    std::vector<std::string> subcommands;  // names
};

Help parse_help(const std::string& text) {
    Help h;
    std::string section;
    for (const auto& l : lines_of(text)) {
        if (!l.empty() && l[0] != ' ') {
            section = l;
            continue;
        }
        if (l.size() < 3 || l[0] != ' ' || l[1] != ' ' || l[2] == ' ') continue;
        std::string first = l.substr(
            2, l.find(' ', 2) == std::string::npos ? std::string::npos : l.find(' ', 2) - 2);
        if (section == "Options:") {
            for (const auto& f : split(first, ','))
                if (f.rfind("-", 0) == 0) h.flags.push_back(f);
        } else if (section == "Subcommands:") {
            h.subcommands.push_back(first);
        }
    }
    return h;
}

struct Command {
    std::vector<std::string> path;  // {"list", "job"}
    Help help;
    std::string name() const {
        std::string s = "queuerctl";
        for (const auto& p : path) s += " " + p;
        return s;
    }
};

// queuerctl and every subcommand, from their --help.
std::vector<Command> queuerctl_commands() {
    std::vector<Command> out;
    std::vector<std::vector<std::string>> todo{{}};
    while (!todo.empty()) {
        auto path = todo.back();
        todo.pop_back();
        std::vector<std::string> argv{queuerctl_bin()};
        argv.insert(argv.end(), path.begin(), path.end());
        argv.push_back("--help");
        auto r = run(argv, {});
        EXPECT_EQ(r.code, 0) << "queuerctl --help failed for " << ::testing::PrintToString(path);
        Command c{path, parse_help(r.out)};
        for (const auto& s : c.help.subcommands) {
            auto p = path;
            p.push_back(s);
            todo.push_back(p);
        }
        out.push_back(std::move(c));
    }
    return out;
}

// ---- configuration keys ------------------------------------------------------------------

// The keys the loader accepts, found by asking it: an unknown key's error lists the known ones.
class ParserKeys {
  public:
    ParserKeys() {
        char tmpl[] = "/tmp/queuer-docs.XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    ~ParserKeys() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::set<std::string> all() {
        std::set<std::string> out;
        // A list entry's keys sit two columns right of "- ", hence the deeper indent.
        for (const auto& root : known(kProbe + ": 1\n", ""))
            collect(root, root == "plugins" ? "plugins:\n  - " : root + ":\n  ",
                    root == "plugins" ? "    " : "  ", out);
        return out;
    }

  private:
    static inline const std::string kProbe = "zzzzzzzzzzzzzz";

    // The "known keys" of the error for `yaml`; empty when the error is about something else.
    std::vector<std::string> known(const std::string& yaml, const std::string& prefix) {
        std::string path = dir_ + "/probe.yaml";
        std::ofstream(path) << yaml;
        std::string msg;
        try {
            queuer::load_app_config(path, false);
            return {};
        } catch (const queuer::Error& e) {
            msg = e.what();
        }
        std::string unknown = "unknown key " + prefix + kProbe + " (known keys: ";
        auto pos = msg.find(unknown);
        if (pos == std::string::npos) return {};
        std::string list = msg.substr(pos + unknown.size());
        list = list.substr(0, list.find(')'));
        std::vector<std::string> out;
        for (auto k : split(list, ',')) {
            while (!k.empty() && k.front() == ' ') k.erase(0, 1);
            out.push_back(k.substr(prefix.size()));
        }
        return out;
    }

    // `key` (a full path like "worker.on_error") is a mapping when an unknown key under it is
    // reported as one; then its keys are collected, else it is a leaf.
    void collect(const std::string& key, const std::string& yaml_prefix, const std::string& indent,
                 std::set<std::string>& out) {
        std::string prefix = key == "plugins" ? "plugins[0]." : key + ".";
        auto sub = known(yaml_prefix + kProbe + ": 1\n", prefix);
        if (sub.empty()) {
            out.insert(key);
            return;
        }
        for (const auto& k : sub) {
            std::string full = (key == "plugins" ? std::string("plugins") : key) + "." + k;
            collect(full, yaml_prefix + k + ":\n" + indent + "  ", indent + "  ", out);
        }
    }

    std::string dir_;
};

// The keys docs/configuration.md documents: the rows "| `key` |" of the key tables (those whose
// header's first column is "key") under "## `section`". Other tables of a section (the paths and
// metrics of `http`) name no keys.
std::set<std::string> documented_keys() {
    std::set<std::string> out;
    std::string section;
    bool fenced = false, in_table = false, key_table = false;
    static const std::regex heading(R"(^## `([a-z_]+)`\s*$)");
    static const std::regex header(R"(^\|\s*key\s*\|)");
    static const std::regex row(R"(^\| `([a-z_.]+)` \|)");
    for (const auto& l : lines_of(source("docs/configuration.md"))) {
        if (l.rfind("```", 0) == 0) fenced = !fenced;
        if (fenced) continue;
        std::smatch m;
        bool table_line = l.rfind("|", 0) == 0;
        if (table_line && !in_table) key_table = std::regex_search(l, header);
        in_table = table_line;
        if (l.rfind("## ", 0) == 0) {
            section = std::regex_match(l, m, heading) ? m[1].str() : "";
        } else if (!section.empty() && key_table && std::regex_search(l, m, row)) {
            out.insert(section + "." + m[1].str());
        }
    }
    return out;
}

TEST(docs, ConfigurationReferenceDocumentsExactlyTheAcceptedKeys) {
    auto parser = ParserKeys().all();
    auto docs = documented_keys();
    ASSERT_GT(parser.size(), 20u) << "the loader's keys could not be found";
    for (const auto& k : parser)
        EXPECT_TRUE(docs.count(k))
            << "the loader accepts " << k << ", but docs/configuration.md has no table row for it";
    for (const auto& k : docs)
        EXPECT_TRUE(parser.count(k))
            << "docs/configuration.md documents " << k << ", but the loader does not accept it";
}

TEST(docs, QueuerdManPageNamesEveryFlag) {
    std::string names;
    std::string man = man_sources(QUEUER_MAN_SOURCES_QUEUERD, names);
    auto r = run({queuerd_bin(), "--help"}, {});
    ASSERT_EQ(r.code, 0);
    auto help = parse_help(r.out);
    ASSERT_GE(help.flags.size(), 5u) << r.out;
    for (const auto& f : help.flags)
        EXPECT_TRUE(has_word(man, f)) << "queuerd --help lists " << f << ", but the man page ("
                                      << names << ") does not mention it";
}

TEST(docs, QueuerctlManPageCoversEverySubcommandAndFlag) {
    std::string names;
    std::string man = man_sources(QUEUER_MAN_SOURCES_QUEUERCTL, names);
    auto heads = headings(man);
    auto commands = queuerctl_commands();
    ASSERT_GE(commands.size(), 10u);
    for (const auto& c : commands) {
        for (const auto& f : c.help.flags)
            EXPECT_TRUE(has_word(man, f))
                << c.name() << " --help lists " << f << ", but the man page (" << names
                << ") does not mention it";
        if (c.path.empty() || !c.help.subcommands.empty()) continue;
        // A leaf: some heading names its verb and its noun ("### get job | jobArchive").
        bool found = std::any_of(heads.begin(), heads.end(), [&](const std::string& h) {
            return std::all_of(c.path.begin(), c.path.end(),
                               [&](const std::string& w) { return has_word(h, w); });
        });
        EXPECT_TRUE(found) << "'" << c.name() << "' has no heading in " << names
                           << " (add e.g. \"### " << c.path.front()
                           << (c.path.size() > 1 ? " " + c.path.back() : std::string()) << "\")";
    }
}

// Runs the completion function for the words of a command line (the last one being completed).
std::set<std::string> complete(const std::vector<std::string>& words) {
    std::string script =
        "source \"$1\"; shift; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); "
        "_queuerctl; printf '%s\\n' \"${COMPREPLY[@]}\"";
    std::vector<std::string> argv{"/bin/bash", "-c", script, "bash",
                                  kSource + "/cli/completion/queuerctl.bash"};
    argv.insert(argv.end(), words.begin(), words.end());
    auto r = run(argv, {});
    EXPECT_EQ(r.code, 0) << r.err;
    auto l = lines_of(r.out);
    return std::set<std::string>(l.begin(), l.end());
}

// Both ways: every verb, noun and flag of the help is offered, and nothing else is (but the
// global flags of `queuerctl --help`, which queuerctl accepts anywhere on the line).
TEST(docs, BashCompletionKnowsEveryVerbNounAndFlag) {
    auto commands = queuerctl_commands();
    ASSERT_FALSE(commands.empty());
    ASSERT_TRUE(commands.front().path.empty());
    const auto& root_flags = commands.front().help.flags;
    for (const auto& c : commands) {
        std::vector<std::string> words{"queuerctl"};
        words.insert(words.end(), c.path.begin(), c.path.end());
        if (!c.help.subcommands.empty()) {
            words.push_back("");
            auto offered = complete(words);
            for (const auto& s : c.help.subcommands)
                EXPECT_TRUE(offered.count(s)) << "cli/completion/queuerctl.bash does not offer '"
                                              << s << "' after '" << c.name() << "'";
            std::set<std::string> known(c.help.subcommands.begin(), c.help.subcommands.end());
            if (c.path.empty()) known.insert(root_flags.begin(), root_flags.end());
            for (const auto& o : offered)
                EXPECT_TRUE(known.count(o))
                    << "cli/completion/queuerctl.bash offers '" << o << "' after '" << c.name()
                    << "', which " << c.name() << " --help does not list";
            continue;
        }
        words.push_back("-");
        auto offered = complete(words);
        for (const auto& f : c.help.flags)
            EXPECT_TRUE(offered.count(f)) << "cli/completion/queuerctl.bash does not offer " << f
                                          << " for '" << c.name() << "'";
        std::set<std::string> known(c.help.flags.begin(), c.help.flags.end());
        known.insert(root_flags.begin(), root_flags.end());
        for (const auto& o : offered)
            EXPECT_TRUE(known.count(o))
                << "cli/completion/queuerctl.bash offers " << o << " for '" << c.name()
                << "', which neither " << c.name() << " --help nor queuerctl --help lists";
    }
}

TEST(docs, QueuerctlReferenceShowsTheCurrentSchemaVersion) {
    std::string doc = source("docs/queuerctl.md");
    static const std::regex re(
        R"((version \d+ -> (\d+)|version (\d+)\b|"(?:from_|to_|schema_)version":(\d+)))");
    int seen = 0;
    for (auto it = std::sregex_iterator(doc.begin(), doc.end(), re); it != std::sregex_iterator();
         ++it) {
        std::string n = (*it)[2].matched   ? (*it)[2].str()
                        : (*it)[3].matched ? (*it)[3].str()
                                           : (*it)[4].str();
        if (n.empty()) continue;
        ++seen;
        EXPECT_EQ(std::stoi(n), queuer::schema_version())
            << "docs/queuerctl.md shows \"" << (*it)[0] << "\"; the schema version is "
            << queuer::schema_version();
    }
    EXPECT_GE(seen, 4) << "no schema version found in docs/queuerctl.md's examples";
}

// Complete plugins among the guide's code blocks: C (```c) or C++ (```cpp) blocks that define
// the entry point.
struct Snippet {
    std::string lang, code;
    int line = 0;
};

std::vector<Snippet> guide_plugins() {
    std::vector<Snippet> out;
    auto lines = lines_of(source("docs/plugin-guide.md"));
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i] != "```c" && lines[i] != "```cpp") continue;
        Snippet s{lines[i].substr(3), "", static_cast<int>(i + 2)};
        for (++i; i < lines.size() && lines[i] != "```"; ++i) s.code += lines[i] + "\n";
        if (s.code.find("QUEUER_PLUGIN_DEFINE(") != std::string::npos ||
            s.code.find("QUEUER_PLUGIN_CPP(") != std::string::npos)
            out.push_back(s);
    }
    return out;
}

TEST(docs, PluginGuideExamplesCompileAndLoad) {
    auto snippets = guide_plugins();
    ASSERT_GE(snippets.size(), 3u) << "expected the guide's quick start, C and C++ plugins";
    char tmpl[] = "/tmp/queuer-guide.XXXXXX";
    std::string dir = mkdtemp(tmpl);
    for (const auto& s : snippets) {
        std::string base = dir + "/guide_" + std::to_string(s.line);
        std::string src = base + (s.lang == "c" ? ".c" : ".cpp");
        std::ofstream(src) << s.code;
        std::string cmd = (s.lang == "c" ? std::string(QUEUER_C_COMPILER) + " -std=c11"
                                         : std::string(QUEUER_CXX_COMPILER) + " -std=c++17") +
                          " -shared -fPIC -Wall -Wextra -Werror -I" + kSource +
                          "/plugin-sdk/include -o " + base + ".so " + src + " 2>" + base + ".log";
        int rc = std::system(cmd.c_str());
        EXPECT_EQ(rc, 0) << "docs/plugin-guide.md:" << s.line << ": the " << s.lang
                         << " plugin does not compile:\n"
                         << read_file(base + ".log");
        if (rc != 0) continue;
        queuerd::PluginHost host;
        try {
            host.load(base + ".so");
        } catch (const std::exception& e) {
            ADD_FAILURE() << "docs/plugin-guide.md:" << s.line
                          << ": the plugin does not load: " << e.what();
            continue;
        }
        EXPECT_FALSE(host.plugin_tasks().empty()) << "docs/plugin-guide.md:" << s.line;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
