// Workers that read and write the S3 bucket themselves (issue 14: "Workers on EC2 read and write S3
// directly when they can (IAM role), else through the server"; docs/configuration.md "Artifacts
// in S3"), end to end against moto_server behind the signature-checking proxy: a real `testlooper
// serve` with its artifacts in S3 and no local workers, remote `testlooper worker`s with their own
// data dirs (credentials from the environment, from a fake EC2 instance metadata service, or
// none), FakeWorkers that name objects they may not, and boto3 reading back what the workers put.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_worker.h"
#include "s3_fixture.h"

namespace testlooper::server {
namespace {

using fixtures::FakeWorker;
using fixtures::ScopedEnv;

// An EC2 instance metadata service (IMDSv2) on loopback, as the real one answers: PUT
// /latest/api/token gives a session token, which every GET must carry; the role's name, then its
// credentials (moto's fake ones, which the proxy checks signatures with). Every request is logged
// in dir/imds.log. Killed and waited for on destruction.
class FakeImds {
 public:
  explicit FakeImds(const std::string& dir) : log_(dir + "/imds.log") {
    const std::string script = dir + "/imds.py", port_file = dir + "/imds.port";
    std::ofstream(script) << R"(import datetime, http.server, json, os, sys
port_file, log = sys.argv[1], sys.argv[2]
TOKEN = 'imds-session-token'
ROLES = '/latest/meta-data/iam/security-credentials/'
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def answer(self, code, body):
        with open(log, 'a') as f: f.write('%s %s %d\n' % (self.command, self.path, code))
        data = body.encode()
        self.send_response(code)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_PUT(self):
        if self.path == '/latest/api/token' and self.headers.get('X-aws-ec2-metadata-token-ttl-seconds'):
            return self.answer(200, TOKEN)
        self.answer(400, '')
    def do_GET(self):
        if self.headers.get('X-aws-ec2-metadata-token') != TOKEN: return self.answer(401, '')
        if self.path == ROLES: return self.answer(200, 'tl-worker-role')
        if self.path == ROLES + 'tl-worker-role':
            expires = datetime.datetime.utcnow() + datetime.timedelta(hours=6)
            return self.answer(200, json.dumps({'Code': 'Success', 'Type': 'AWS-HMAC',
                'AccessKeyId': 'testing', 'SecretAccessKey': 'testing', 'Token': 'testing',
                'Expiration': expires.strftime('%Y-%m-%dT%H:%M:%SZ')}))
        self.answer(404, '')
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
with open(port_file + '.tmp', 'w') as f: f.write(str(server.server_port))
os.rename(port_file + '.tmp', port_file)
server.serve_forever()
)";
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execlp("python3", "python3", script.c_str(), port_file.c_str(), log_.c_str(), nullptr);
      _exit(127);
    }
    if (!fixtures::eventually([&] { return fs::exists(port_file); }, 60))
      throw std::runtime_error("the fake instance metadata service did not start");
    std::ifstream(port_file) >> port_;
  }
  ~FakeImds() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  FakeImds(const FakeImds&) = delete;
  FakeImds& operator=(const FakeImds&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string requests() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class S3DirectTest : public S3ArtifactsTest {
 protected:
  // A remote worker (its own data dir, stderr in worker.err) started in the current environment.
  std::unique_ptr<WorkerProcess> start_worker(const std::string& id) {
    return std::make_unique<WorkerProcess>(
        std::vector<std::string>{"--server", server_->url(""), "--dir", worker_dir_.path(),
                                 "--cores", "2", "--ram-gb", "2", "--id", id, "--token-file",
                                 worker_token_file()},
        SIGTERM, worker_err());
  }
  // A remote worker without AWS credentials of its own: none in its environment nor in a file,
  // and the instance metadata service at `imds` (a dead loopback port by default: off EC2).
  std::unique_ptr<WorkerProcess> start_worker_without_credentials(const std::string& id,
                                                                  std::string imds = "") {
    if (imds.empty()) imds = "http://127.0.0.1:" + std::to_string(fixtures::free_port());
    ScopedEnv key("AWS_ACCESS_KEY_ID", std::nullopt), secret("AWS_SECRET_ACCESS_KEY", std::nullopt),
        token("AWS_SESSION_TOKEN", std::nullopt), profile("AWS_PROFILE", std::nullopt),
        file("AWS_SHARED_CREDENTIALS_FILE", worker_dir_.path() + "/no-such-credentials"),
        metadata("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds);
    return start_worker(id);
  }
  std::string worker_err() const { return dir_.path() + "/worker.err"; }
  std::string worker_log() const {
    std::ifstream in(worker_err());
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Whether the server logged that it verified what worker 'direct' put in S3 for run `id`.
  bool verified(const std::string& id) const {
    return server_log().find("s3_direct_put worker=direct run=" + id) != std::string::npos;
  }

  TempDir worker_dir_;
};

TEST_F(S3DirectTest, WorkerWithCredentials_ReadsAndWritesTheBucketItself) {
  start_app("0");
  auto worker = start_worker("direct");  // moto's credentials are in the environment
  const json build = ended("build/linux");
  const json test = ended("uses-build/linux");
  ASSERT_EQ(build["state"], "succeeded") << build.dump(2) << server_log() << worker_log();
  ASSERT_EQ(test["state"], "succeeded") << test.dump(2) << server_log() << worker_log();
  const std::string hash = build["hash"], build_id = build["id"], test_id = test["id"];

  // The worker put them (boto3 reads them back), and the server verified each before recording.
  expect_build_and_test_keys(hash, build_id, test_id);
  EXPECT_EQ(json::parse(object("runs/" + test_id + "/test_result.json"))["id"], test_id);
  EXPECT_NE(object("runs/" + test_id + "/log.txt").find("read-the-build"), std::string::npos);
  EXPECT_TRUE(verified(build_id)) << server_log();
  EXPECT_TRUE(verified(test_id)) << server_log();
  // Nothing went through the server: it never held the build (an upload would have stored it
  // there, and the test's download would have fetched it there from S3), and the worker logged
  // no fallback.
  EXPECT_FALSE(fs::exists(data() + "/artifacts/builds/" + hash));
  EXPECT_EQ(worker_log().find("through the server"), std::string::npos) << worker_log();
  EXPECT_EQ(worker_log().find("from the server"), std::string::npos) << worker_log();
  // The server fetched the records it reads: the run's artifacts are listed as if uploaded.
  EXPECT_TRUE(fs::exists(data() + "/artifacts/runs/" + test_id + "/test_result.json"));
  EXPECT_EQ(server_->get("/api/runs/" + test_id + "/artifacts")[0]["name"], "report.tar");
  // Every request the worker made was signed as AWS wants it.
  EXPECT_EQ(proxy_->refused().find("mismatch"), std::string::npos) << proxy_->refused();
}

TEST_F(S3DirectTest, WorkerWithoutCredentials_GoesThroughTheServer) {
  start_app("0");
  auto worker = start_worker_without_credentials("direct");
  const json build = ended("build/linux");
  const json test = ended("uses-build/linux");
  EXPECT_EQ(build["state"], "succeeded") << build.dump(2) << server_log() << worker_log();
  EXPECT_EQ(test["state"], "succeeded") << test.dump(2) << server_log() << worker_log();
  // It said why, and its files went through the server (which put them in S3).
  EXPECT_NE(worker_log().find("not reading or writing S3 directly (no AWS credentials"),
            std::string::npos)
      << worker_log();
  EXPECT_NE(worker_log().find("through the server"), std::string::npos) << worker_log();
  const std::string hash = build["hash"];
  EXPECT_TRUE(fs::exists(data() + "/artifacts/builds/" + hash + "/complete.json"));
  EXPECT_FALSE(verified(build["id"])) << server_log();
  EXPECT_NE(keys().find("runs/" + test["id"].get<std::string>() + "/test_result.json\n"),
            std::string::npos);
}

TEST_F(S3DirectTest, InstanceRoleCredentials_FromTheMetadataService) {
  app_.write("testlooper.yml", kQuickTest);
  sha_ = app_.commit("first");
  create_bucket();
  start_server("0");
  test_branch();
  TempDir imds_dir;
  FakeImds imds(imds_dir.path());
  auto worker = start_worker_without_credentials("direct", imds.url());
  const json run = ended("quick/linux");
  ASSERT_EQ(run["state"], "succeeded") << run.dump(2) << server_log() << worker_log();
  const std::string id = run["id"];
  EXPECT_TRUE(verified(id)) << server_log() << worker_log();
  EXPECT_NE(keys().find("runs/" + id + "/test_result.json\n"), std::string::npos);
  // IMDSv2: a session token first, then the role and its credentials, each with the token.
  const std::string asked = imds.requests();
  EXPECT_NE(asked.find("PUT /latest/api/token 200"), std::string::npos) << asked;
  EXPECT_NE(asked.find("GET /latest/meta-data/iam/security-credentials/ 200"), std::string::npos)
      << asked;
  EXPECT_NE(asked.find("GET /latest/meta-data/iam/security-credentials/tl-worker-role 200"),
            std::string::npos)
      << asked;
  EXPECT_EQ(asked.find(" 401"), std::string::npos) << asked;
  EXPECT_EQ(proxy_->refused().find("mismatch"), std::string::npos) << proxy_->refused();
}

// A worker (the strongest attacker: it has the worker token and real jobs) names objects that are
// not its run's, or that are not in the bucket: refused, logged, and the run is an infrastructure
// failure, never a success nor the test's failure.
TEST_F(S3DirectTest, KeysOutsideTheRunOrNotInTheBucket_AreRefused) {
  app_.write("testlooper.yml", kQuickTest);
  sha_ = app_.commit("first");
  create_bucket();
  start_server("0");
  test_branch();
  {
    FakeWorker fake(server_->port(), fixtures::worker_token(data()), "rogue", 1, 1);
    const std::optional<fixtures::FakeJob> job = fake.job("quick/linux");
    ASSERT_TRUE(job.has_value()) << server_log();
    // The job names the bucket (never credentials).
    const json s3 = job->message.value("s3", json());
    ASSERT_TRUE(s3.is_object()) << job->message.dump(2);
    EXPECT_EQ(s3["bucket"], bucket_);
    EXPECT_EQ(s3["key_prefix"], kPrefix);
    EXPECT_EQ(s3["endpoint_url"], proxy_->url());
    EXPECT_EQ(job->message.dump().find("testing"), std::string::npos) << job->message.dump(2);
    const json outside = {{"key", "runs/0123456789abcdef/test_result.json"}, {"size", 2}};
    ASSERT_TRUE(fake.report(job->run_id, "success", 60, {{"s3_keys", json::array({outside})}}));
    const json run = ended("quick/linux");
    EXPECT_EQ(run["state"], "infra_failed") << run.dump(2);
    EXPECT_NE(server_log().find("s3_keys_refused worker=rogue run=" + job->run_id +
                                " refused=\"'runs/0123456789abcdef/test_result.json' is "
                                "not under runs/" +
                                job->run_id + "/"),
              std::string::npos)
        << server_log();
  }
  // Its own run's key, but nothing was put there: the server's HEAD finds no such object.
  FakeWorker fake(server_->port(), fixtures::worker_token(data()), "liar", 1, 1);
  const std::optional<fixtures::FakeJob> job = fake.job("quick/linux", 180);
  ASSERT_TRUE(job.has_value()) << server_log();
  const json missing = {{"key", "runs/" + job->run_id + "/test_result.json"}, {"size", 2}};
  ASSERT_TRUE(fake.report(job->run_id, "success", 60, {{"s3_keys", json::array({missing})}}));
  const json runs = server_->get("/api/repos/app/commits/" + sha_ + "/runs?name=quick/linux");
  bool found = false;
  for (const json& r : runs) {
    if (r["id"] != job->run_id) continue;
    found = true;
    EXPECT_EQ(r["state"], "infra_failed") << r.dump(2);
  }
  EXPECT_TRUE(found) << runs.dump(2);
  EXPECT_NE(server_log().find("s3_keys_unverified worker=liar run=" + job->run_id),
            std::string::npos)
      << server_log();
}

}  // namespace
}  // namespace testlooper::server
