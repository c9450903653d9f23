// The gateway's channel controls: the pattern set, its file (parsing, atomic writes), the admin
// endpoint's answers, and the per-topic counters of /metrics.
#include "gateway/channel_controls.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/channel_admin.h"
#include "gateway/channel_stats.h"
#include "gateway/metrics.h"

using namespace aegis::gateway;
using aegis::ExitCode;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-controls-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
};

std::string read_text(const std::filesystem::path& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

aegis::net::HttpRequest request(std::string method, std::string path, std::string body = {}, bool local = true) {
    aegis::net::HttpRequest out;
    out.method = std::move(method);
    out.path = std::move(path);
    out.body = std::move(body);
    out.peer = "127.0.0.1:40000";
    out.local = local;
    return out;
}

}  // namespace

TEST_CASE("channel controls: patterns disable the channels they match, and only those", "[gateway][controls]") {
    ChannelControls controls;
    CHECK(controls.disable("agent.*.logs"));
    CHECK_FALSE(controls.disable("agent.*.logs"));  // once
    CHECK(controls.disable("backend.all.tests"));
    REQUIRE(controls.disabled_by("agent.host1.logs") != nullptr);
    CHECK(*controls.disabled_by("agent.host1.logs") == "agent.*.logs");
    CHECK(*controls.disabled_by("backend.all.tests") == "backend.all.tests");
    CHECK(controls.disabled_by("agent.host1.status") == nullptr);
    CHECK(controls.disabled_by("agent.host1.logs.extra") == nullptr);
    CHECK(controls.disabled_by("backend.host1.tests") == nullptr);
    CHECK(controls.enable("agent.*.logs"));
    CHECK_FALSE(controls.enable("agent.*.logs"));
    CHECK(controls.disabled_by("agent.host1.logs") == nullptr);
    CHECK(controls.patterns() == std::vector<std::string>{"backend.all.tests"});
}

TEST_CASE("channel controls: the file is one pattern a line, and one bad line refuses it whole",
          "[gateway][controls]") {
    auto parsed = parse_channel_controls("# incident 42\n\n  agent.*.logs  \nbackend.>\nagent.*.logs\n", "f");
    REQUIRE(parsed);
    CHECK(parsed->patterns() == std::vector<std::string>{"agent.*.logs", "backend.>"});

    auto bad = parse_channel_controls("agent.*.logs\nagent..logs\n", "controls");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().exit == ExitCode::bad_input);
    CHECK(bad.error().message.rfind("controls:2: ", 0) == 0);
    CHECK_FALSE(parse_channel_controls("agent.>.x\n", "f"));  // '>' only last
    CHECK_FALSE(parse_channel_controls("agent.a b.logs\n", "f"));

    std::string many;
    for (std::size_t i = 0; i <= kMaxChannelControls; ++i) many += "agent.*.t" + std::to_string(i) + "\n";
    auto over = parse_channel_controls(many, "f");
    REQUIRE_FALSE(over);
    CHECK(over.error().message.find("more than 1024 patterns") != std::string::npos);
}

TEST_CASE("channel controls: saved atomically with mode 0600, read back the same; a missing file is empty",
          "[gateway][controls]") {
    TempDir dir;
    const auto file = dir.path / "channel-controls";
    auto missing = load_channel_controls(file);
    REQUIRE(missing);
    CHECK(missing->empty());
    ChannelControls controls;
    controls.disable("agent.*.logs");
    controls.disable("backend.all.tests");
    REQUIRE(save_channel_controls(file, controls));
    struct stat info {};
    REQUIRE(::stat(file.c_str(), &info) == 0);
    CHECK((info.st_mode & 0777) == 0600);
    CHECK_FALSE(std::filesystem::exists(dir.path / "channel-controls.tmp"));
    CHECK(read_text(file) == format_channel_controls(controls));
    auto loaded = load_channel_controls(file);
    REQUIRE(loaded);
    CHECK(*loaded == controls);
    auto not_a_file = load_channel_controls(dir.path);
    REQUIRE_FALSE(not_a_file);
    CHECK(not_a_file.error().exit == ExitCode::bad_input);
}

TEST_CASE("channel admin: GET lists, POST disables and enables on loopback only, each change on file",
          "[gateway][controls]") {
    TempDir dir;
    const auto file = dir.path / "channel-controls";
    GatewayMetrics metrics;
    std::vector<std::string> lines;
    auto admin = ChannelAdmin::open(file, metrics, [&](std::string_view line) { lines.emplace_back(line); });
    REQUIRE(admin);

    CHECK_FALSE(admin->answer(request("GET", "/metrics")).has_value());  // not its path
    auto listed = admin->answer(request("GET", "/channels"));
    REQUIRE(listed);
    CHECK(listed->status == 200);
    CHECK(listed->body.empty());

    auto disabled = admin->answer(request("POST", "/channels/disable", "agent.*.logs\n"));
    REQUIRE(disabled);
    CHECK(disabled->status == 200);
    CHECK(disabled->body == "disabled agent.*.logs\n");
    CHECK(read_text(file).find("\nagent.*.logs\n") != std::string::npos);
    CHECK(metrics.channels_disabled == 1);
    CHECK(metrics.channel_control_count("disable", "admin") == 1);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "channel control: disabled agent.*.logs by admin 127.0.0.1:40000");
    REQUIRE(admin->disabled_by("agent.h1.logs") != nullptr);

    auto again = admin->answer(request("POST", "/channels/disable", "agent.*.logs"));
    CHECK(again->status == 200);
    CHECK(again->body == "agent.*.logs was already disabled\n");
    CHECK(metrics.channel_control_count("disable", "admin") == 1);

    CHECK(admin->answer(request("GET", "/channels"))->body == "agent.*.logs\n");
    CHECK(admin->answer(request("POST", "/channels/disable", "agent..logs"))->status == 400);
    CHECK(admin->answer(request("POST", "/channels/enable", "agent.*.status"))->status == 404);
    auto wrong_method = admin->answer(request("DELETE", "/channels/disable", "agent.*.logs"));
    CHECK(wrong_method->status == 405);
    CHECK(wrong_method->allow == "POST");
    CHECK(admin->answer(request("POST", "/channels"))->status == 405);

    auto remote = admin->answer(request("POST", "/channels/enable", "agent.*.logs", false));
    CHECK(remote->status == 403);
    CHECK(admin->disabled_by("agent.h1.logs") != nullptr);  // unchanged

    auto enabled = admin->answer(request("POST", "/channels/enable", "agent.*.logs"));
    CHECK(enabled->status == 200);
    CHECK(enabled->body == "enabled agent.*.logs\n");
    CHECK(admin->disabled_by("agent.h1.logs") == nullptr);
    CHECK(metrics.channels_disabled == 0);
    CHECK(metrics.channel_control_count("enable", "admin") == 1);
    auto reread = load_channel_controls(file);
    REQUIRE(reread);
    CHECK(reread->empty());
}

TEST_CASE("channel admin: a change that cannot be written is not applied", "[gateway][controls]") {
    TempDir dir;
    GatewayMetrics metrics;
    auto admin = ChannelAdmin::open(dir.path / "missing-dir" / "channel-controls", metrics, nullptr);
    REQUIRE(admin);
    auto refused = admin->answer(request("POST", "/channels/disable", "agent.*.logs"));
    CHECK(refused->status == 500);
    CHECK(admin->disabled_by("agent.h1.logs") == nullptr);
    CHECK(metrics.channel_control_count("disable", "admin") == 0);
}

TEST_CASE("channel admin: a reload logs and counts each pattern added or removed", "[gateway][controls]") {
    TempDir dir;
    const auto file = dir.path / "channel-controls";
    {
        std::ofstream out(file);
        out << "agent.*.logs\nagent.*.status\n";
    }
    GatewayMetrics metrics;
    std::vector<std::string> lines;
    auto admin = ChannelAdmin::open(file, metrics, [&](std::string_view line) { lines.emplace_back(line); });
    REQUIRE(admin);
    CHECK(metrics.channels_disabled == 2);
    {
        std::ofstream out(file);
        out << "agent.*.status\nbackend.all.tests\n";
    }
    auto read = admin->read();
    REQUIRE(read);
    admin->adopt(std::move(*read), "SIGHUP reload");
    CHECK(lines == std::vector<std::string>{"channel control: disabled backend.all.tests by SIGHUP reload",
                                            "channel control: enabled agent.*.logs by SIGHUP reload"});
    CHECK(metrics.channel_control_count("disable", "reload") == 1);
    CHECK(metrics.channel_control_count("enable", "reload") == 1);
    CHECK(metrics.channels_disabled == 2);
}

TEST_CASE("topic stats: labels name the topic, never the host, and are capped", "[gateway][metrics]") {
    CHECK(topic_label("agent.host42.logs") == "agent.*.logs");
    CHECK(topic_label("agent.host42.a.b") == "agent.*.a.b");
    CHECK(topic_label("backend.host42.policies") == "backend.*.policies");
    CHECK(topic_label("backend.all.tests") == "backend.all.tests");
    CHECK(topic_label("agent.host42") == "other");
    CHECK(topic_label("other.x.y") == "other");

    TopicStats stats;
    for (std::size_t i = 0; i < kMaxTopicLabels + 10; ++i) {
        auto& counts = stats.of("agent.h" + std::to_string(i) + ".t" + std::to_string(i));
        counts.messages_in += 1;
    }
    CHECK(stats.topics().size() == kMaxTopicLabels + 1);
    CHECK(stats.counts("other").messages_in == 10);
    CHECK(stats.counts("agent.*.t0").messages_in == 1);
    stats.of("agent.h9.t0").messages_in += 2;  // a known label still counts under its name
    CHECK(stats.counts("agent.*.t0").messages_in == 3);

    GatewayMetrics metrics;
    auto& logs = metrics.topics.of("agent.h1.logs");
    logs.messages_in = 5;
    logs.bytes_in = 700;
    logs.refused["channel_disabled"] = 3;
    metrics.topics.of("agent.h2.logs").messages_out = 4;
    const auto text = render_prometheus(metrics);
    CHECK(text.find("aegis_gateway_topic_messages_in_total{topic=\"agent.*.logs\"} 5\n") != std::string::npos);
    CHECK(text.find("aegis_gateway_topic_bytes_in_total{topic=\"agent.*.logs\"} 700\n") != std::string::npos);
    CHECK(text.find("aegis_gateway_topic_messages_out_total{topic=\"agent.*.logs\"} 4\n") != std::string::npos);
    CHECK(text.find("aegis_gateway_topic_refusals_total{topic=\"agent.*.logs\",reason=\"channel_disabled\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("aegis_gateway_channel_control_changes_total{action=\"disable\",source=\"admin\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("agent.h1") == std::string::npos);
    CHECK(text.find("agent.h2") == std::string::npos);
}
