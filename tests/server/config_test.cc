// Issue 17, "config.json": the original TestLooper's own configs (ufora/test-looper's
// test_looper_tests/system_test/config.json and deploy/config.json, keys and structure unchanged)
// load: the keys with a meaning here are honoured, the others are accepted with one warning line
// each on stderr, and unknown keys stay errors.
#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "server_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;

// The original's local system-test config, as it stands in its repository.
constexpr const char* kSystemTestConfig = R"({
    "server": {
        "path_to_local_repos": "$TEST_LOOPER_INSTALL/server/repos",
        "database": {"port": 1115}
        },
    "server_ports": {
        "server_address": "localhost",
        "server_https_port": 9081,
        "server_worker_port": 9000,
        "server_worker_port_use_ssl": false
        },
    "artifacts": {
        "path_to_test_artifacts": "$TEST_LOOPER_INSTALL/test_artifacts",
        "path_to_build_artifacts": "$TEST_LOOPER_INSTALL/build_storage"
        },
    "machine_management": {
        "local_storage_path": "$TEST_LOOPER_INSTALL/worker",
        "docker_scope": "test_looper_dev",
        "max_workers": 4
        },
    "source_control": {
        "path_to_repos": "$TEST_LOOPER_INSTALL/repos"
        }
})";

// The original's deploy config (GitLab, S3 artifacts, AWS workers), as it stands in its
// repository.
constexpr const char* kDeployConfig = R"({
    "server": {
        "path_to_local_repos": "$TEST_LOOPER_INSTALL/server/repos",
        "database": {"port": 1115},
        "path_to_keys": "$HOME/.ssh/id_rsa",
        "path_to_certs": {
            "cert": "$HOME/certs/cert.crt",
            "key": "$HOME/certs/cert.key",
            "chain": "$HOME/certs/gd_bundle-g2-g1.crt"
            }
        },
    "server_ports": {
        "server_address": "$HOSTNAME",
        "server_https_port": 443,
        "server_worker_port": 8080,
        "server_worker_port_use_ssl": true
        },
    "artifacts": {
        "bucket": "testlooper-COMPANYNAME",
        "region": "us-east-1",
        "build_artifact_key_prefix": "testlooper_build_artifacts",
        "test_artifact_key_prefix": "testlooper_test_artifacts"
        },
    "machine_management": {
        "worker_name": "test-looper-worker-dev",
        "region": "us-east-1",
        "vpc_id": "vcp-XXXX",
        "security_group": "sg-XXXX",
        "subnet":"subnet-XXXX",
        "keypair": "key-pair-name",
        "bootstrap_bucket": "testlooper-COMPANYNAME",
        "bootstrap_key_prefix": "testlooper_bootstraps",
        "worker_iam_role_name": "TestLooperIamRole",
        "path_to_keys": "$HOME/.ssh/id_rsa",
        "instance_types": [
            [{"cores": 2, "ram_gb": 4}, "t2.medium"],
            [{"cores": 4, "ram_gb": 16}, "m5.xlarge"],
            [{"cores": 32, "ram_gb": 244}, "r3.8xlarge"]
            ],
        "linux_ami": "ami-04c7777d0979422a2",
        "windows_ami": "ami-08910872",
        "host_ips": {
            "gitlab.COMPANYNAME.com": "...",
            "testlooper.COMPANYNAME.com": "..."
            },
        "max_workers": 8
        },
    "source_control": {
        "private_token": "$GITLAB_PRIVATE_TOKEN",
        "auth_disabled": true,
        "oauth_key": "$GITLAB_OAUTH_KEY",
        "oauth_secret": "$GITLAB_OAUTH_SECRET",
        "webhook_secret": "$GITLAB_WEBHOOK_SECRET",
        "group": "...",
        "gitlab_url": "https://gitlab.COMPANYNAME.com",
        "gitlab_login_url": "https://gitlab.COMPANYNAME.com",
        "gitlab_api_url": "https://gitlab.COMPANYNAME.com/api/v3",
        "gitlab_clone_url": "git@gitlab.COMPANYNAME.com"
        },
    "http_server": {
        }
}
)";

// The lines of `text` that say "<config>: <key> is ignored: ...", by key.
std::map<std::string, int> ignored_keys(const std::string& text, const std::string& config) {
  std::map<std::string, int> keys;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::string prefix = config + ": ";
    const size_t at = line.find(" is ignored: ");
    if (line.starts_with(prefix) && at != std::string::npos)
      ++keys[line.substr(prefix.size(), at - prefix.size())];
  }
  return keys;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ConfigCompat, OriginalSystemTestConfigServesWithItsWorkersAndBuildStore) {
  TempDir dir;
  const std::string install = dir.path() + "/install";
  setenv("TEST_LOOPER_INSTALL", install.c_str(), 1);
  GitFixtureRepo app(install + "/repos/app");
  app.write("testlooper.yml",
            "looper_version: 5\n"
            "environments: {linux: {platform: linux, image: {host: true}}}\n"
            "builds:\n"
            "  build/linux:\n"
            "    stages:\n"
            "      - command: 'mkdir -p $TEST_BUILD_OUTPUT_DIR/bin && echo built > "
            "$TEST_BUILD_OUTPUT_DIR/bin/out.txt'\n"
            "        artifacts: [{name: bin, directory: bin}]\n"
            "tests:\n"
            "  t/linux: {command: 'true', dependencies: {b: build/linux}}\n");
  app.commit("definitions");
  const std::string config = dir.path() + "/config.json";
  std::ofstream(config) << kSystemTestConfig;
  const std::string err = dir.path() + "/serve.err";
  // The file's port (9081) is the original's fixed one: a test listens on a free one.
  ServerProcess server(
      {"--config", config, "--port", "0", "--data", dir.path() + "/data", "--poll-seconds", "0.3"},
      err);
  const std::map<std::string, int> expected = {{"server.database", 1},
                                               {"server.path_to_local_repos", 1},
                                               {"server_ports.server_worker_port", 1},
                                               {"server_ports.server_worker_port_use_ssl", 1},
                                               {"artifacts.path_to_test_artifacts", 1},
                                               {"machine_management.local_storage_path", 1},
                                               {"machine_management.docker_scope", 1}};
  EXPECT_EQ(ignored_keys(read_file(err), config), expected) << read_file(err);
  // machine_management.max_workers: the server's own workers.
  ASSERT_TRUE(eventually([&] { return server.get("/api/workers").size() == 4; }, 60))
      << server.get("/api/workers").dump();
  ASSERT_TRUE(eventually([&] { return server.get("/api/repos").size() == 1; }, 30));
  ASSERT_EQ(server.post("/api/repos/app/branches/main/test", R"({"enabled": true})").first, 200);
  // artifacts.path_to_build_artifacts: the artifact store.
  ASSERT_TRUE(eventually(
      [&] {
        const nlohmann::json commit = server.get("/api/repos/app/commits/" + app.head());
        for (const auto& o : commit["objects"]) {
          if (o["name"] == "t/linux") return o["runs"] == 1 && o["failures"] == 0;
        }
        return false;
      },
      120))
      << server.get("/api/repos/app/commits/" + app.head()).dump();
  EXPECT_TRUE(std::filesystem::exists(install + "/build_storage"));
  EXPECT_FALSE(std::filesystem::is_empty(install + "/build_storage"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/data/artifacts"));
  EXPECT_FALSE(std::filesystem::exists(install + "/test_artifacts"));
}

void set_deploy_environment(const std::string& home) {
  setenv("HOME", home.c_str(), 1);
  setenv("TEST_LOOPER_INSTALL", (home + "/install").c_str(), 1);
  setenv("HOSTNAME", "ci.example.com", 1);
  setenv("GITLAB_PRIVATE_TOKEN", "glpat-token", 1);
  setenv("GITLAB_OAUTH_KEY", "key", 1);
  setenv("GITLAB_OAUTH_SECRET", "secret", 1);
  setenv("GITLAB_WEBHOOK_SECRET", "hook", 1);
}

const std::map<std::string, int> kDeployIgnored = {
    {"server.database", 1},
    {"server.path_to_local_repos", 1},
    {"server_ports.server_worker_port", 1},
    {"server_ports.server_worker_port_use_ssl", 1},
    {"artifacts.test_artifact_key_prefix", 1},                  // one prefix: the build one
    {"machine_management.host_ips.gitlab.COMPANYNAME.com", 1},  // "..." is no IP address
    {"machine_management.host_ips.testlooper.COMPANYNAME.com", 1},
    {"http_server", 1}};

TEST(ConfigCompat, OriginalDeployConfigLoadsItsGitLabSourceAndCertificates) {
  TempDir dir;
  set_deploy_environment(dir.path());
  const std::string config = dir.path() + "/config.json";
  std::ofstream(config) << kDeployConfig;
  ServerOptions o;
  std::vector<std::string> warnings;
  ASSERT_TRUE(load_config(config, o, &warnings).ok()) << load_config(config, o).error().to_string();
  std::string all;
  for (const auto& w : warnings) all += w + "\n";
  EXPECT_EQ(ignored_keys(all, config), kDeployIgnored) << all;
  EXPECT_NE(all.find(config + ": source_control.gitlab_api_url: GitLab removed its API v3; using "
                              "https://gitlab.COMPANYNAME.com/api/v4"),
            std::string::npos)
      << all;
  EXPECT_EQ(o.host.kind, hosting::Kind::kGitLab);
  EXPECT_EQ(o.host.token, "glpat-token");
  EXPECT_EQ(o.host.owner, "...");
  EXPECT_EQ(o.host.api_url, "https://gitlab.COMPANYNAME.com/api/v4");
  EXPECT_EQ(o.host.clone_url, "git@gitlab.COMPANYNAME.com");
  EXPECT_EQ(o.host.ssh_key, dir.path() + "/.ssh/id_rsa");  // server.path_to_keys
  EXPECT_EQ(o.webhook_secret, "hook");
  EXPECT_EQ(o.oauth_provider, "gitlab");
  EXPECT_EQ(o.oauth_key, "key");
  EXPECT_EQ(o.auth_mode, auth::Mode::kNone);  // auth_disabled
  EXPECT_EQ(o.tls_cert, dir.path() + "/certs/cert.crt");
  EXPECT_EQ(o.tls_key, dir.path() + "/certs/cert.key");
  EXPECT_EQ(o.tls_chain, dir.path() + "/certs/gd_bundle-g2-g1.crt");
  EXPECT_EQ(o.port, 443);                             // server_https_port
  EXPECT_EQ(o.public_url, "https://ci.example.com");  // a host name: where it is reached
  EXPECT_EQ(o.bind, "127.0.0.1");                     // ... not what it listens on
  EXPECT_EQ(o.local_workers, 0);   // the Aws form: no workers of the server's own
  EXPECT_TRUE(o.fleet.enabled);
  EXPECT_EQ(o.fleet.worker_name, "test-looper-worker-dev");
  EXPECT_EQ(o.fleet.max_workers, 8);
  EXPECT_EQ(o.fleet.max_cores, -1);
  ASSERT_EQ(o.fleet.instance_types.size(), 3u);
  EXPECT_EQ(o.fleet.instance_types[2].name, "r3.8xlarge");
  EXPECT_EQ(o.fleet.instance_types[2].cores, 32);
  EXPECT_EQ(o.fleet.instance_types[2].ram_gb, 244);
  EXPECT_EQ(o.fleet.windows_ami, "ami-08910872");
  EXPECT_TRUE(o.fleet.host_ips.empty());
  EXPECT_TRUE(o.s3.enabled);
  EXPECT_EQ(o.s3.bucket, "testlooper-COMPANYNAME");
  EXPECT_EQ(o.s3.key_prefix, "testlooper_build_artifacts/");
  EXPECT_EQ(o.artifacts_dir, "");  // the local store under the data dir
}

// The real `testlooper serve` with the deploy config: past the config (its warnings on stderr),
// it stops at the missing certificate file, naming it, before it touches the network.
TEST(ConfigCompat, OriginalDeployConfigServeWarnsAndNamesTheMissingCertificate) {
  TempDir dir;
  set_deploy_environment(dir.path());
  const std::string config = dir.path() + "/config.json";
  std::ofstream(config) << kDeployConfig;
  const std::string out = capture(std::string(TL_BINARY) + " serve --port 0 --data " +
                                  shell_quote(dir.path() + "/data") + " --config " +
                                  shell_quote(config) + " 2>&1; echo exit=$?");
  EXPECT_EQ(ignored_keys(out, config), kDeployIgnored) << out;
  EXPECT_NE(out.find("cert.crt"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
}

// server.path_to_certs as in the deploy config: the certificate, its key and a chain file with
// the intermediate authority, which the server sends: a client that trusts only the root
// verifies it. Without the chain the same client cannot.
TEST(ConfigCompat, PathToCertsChainIsSentAfterTheCertificate) {
  TempDir dir;
  const std::string d = shell_quote(dir.path());
  ASSERT_EQ(
      capture(
          "(set -e; cd " + d +
          "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=root -keyout root.key "
          "-out root.pem; openssl req -newkey rsa:2048 -nodes -subj /CN=intermediate -keyout "
          "int.key -out int.csr; printf 'basicConstraints=critical,CA:true\\nkeyUsage=critical,"
          "keyCertSign,cRLSign\\n' > int.cnf; openssl x509 -req -in int.csr -CA root.pem -CAkey "
          "root.key -CAcreateserial -days 2 -extfile int.cnf -out int.pem; openssl req -newkey "
          "rsa:2048 -nodes -subj /CN=localhost -keyout leaf.key -out leaf.csr; printf "
          "'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > leaf.cnf; openssl x509 -req -in "
          "leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 2 -extfile leaf.cnf -out "
          "leaf.pem) >/dev/null 2>&1 && echo ok"),
      "ok\n");
  GitFixtureRepo app(dir.path() + "/repos/app");
  app.write("README", "x\n");
  app.commit("first");
  setenv("TEST_LOOPER_INSTALL", dir.path().c_str(), 1);
  auto https_code = [&](bool chain) {
    const std::string config = dir.path() + "/config.json";
    std::ofstream(config) << R"({
    "server": {
        "path_to_certs": {
            "cert": "$TEST_LOOPER_INSTALL/leaf.pem",
            "key": "$TEST_LOOPER_INSTALL/leaf.key")"
                          << (chain ? R"(,
            "chain": "$TEST_LOOPER_INSTALL/int.pem")"
                                    : "")
                          << R"(
            }
        },
    "server_ports": {"server_address": "localhost", "server_https_port": 9081},
    "machine_management": {"max_workers": 0},
    "source_control": {"path_to_repos": "$TEST_LOOPER_INSTALL/repos"}
})";
    ServerProcess server({"--config", config, "--port", "0", "--data", dir.path() + "/data"});
    return capture("curl -s -o /dev/null -w '%{http_code}' --cacert " +
                   shell_quote(dir.path() + "/root.pem") +
                   " https://127.0.0.1:" + std::to_string(server.port()) + "/api/repos");
  };
  EXPECT_EQ(https_code(true), "200");
  EXPECT_EQ(https_code(false), "000");  // unable to get the local issuer certificate
}

TEST(ConfigCompat, UnknownKeysInTheOriginalsSectionsStayErrors) {
  TempDir dir;
  set_deploy_environment(dir.path());
  const std::string config = dir.path() + "/config.json";
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {R"({"source_control": {"path_to_repos": "/r"}, "artifacts": {"bucket_name": "b"}})",
            "artifacts.bucket_name"},
           {R"({"source_control": {"path_to_repos": "/r"},
                "server": {"path_to_certs": {"cert": "c", "key": "k", "pem": "p"}}})",
            "server.path_to_certs.pem"},
           {R"({"source_control": {"path_to_repos": "/r"}, "redis": {}})", "redis"},
           {R"({"source_control": {"path_to_repos": "/r"},
                "server_ports": {"server_https_port": 70000}})",
            "server_https_port"}}) {
    std::ofstream(config) << text;
    const std::string out = capture(std::string(TL_BINARY) + " serve --config " +
                                    shell_quote(config) + " 2>&1; echo exit=$?");
    EXPECT_NE(out.find(key), std::string::npos) << out;
    EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace testlooper::server
