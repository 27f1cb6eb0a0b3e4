// Issue 15, a deployment's exposed ports through the real server and its real local worker: a
// deployment runs a small web app (python3's standard library: it answers each request with what
// it received, and echoes WebSocket messages), reached at /api/deployments/{id}/ports/{name}/...
// with every method a web app uses and with WebSockets bridged both ways; TestLooper's own
// credentials and the hop-by-hop headers never reach it, it cannot set TestLooper's cookies, a
// viewer may not use it, and each use is in the operator log.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "server_fixture.h"
#include "ws_client.h"

namespace testlooper::server {
namespace {

using fixtures::capture;
using fixtures::eventually;
using fixtures::GitFixtureRepo;
using fixtures::ServerProcess;
using fixtures::shell_quote;
using fixtures::TempDir;
using fixtures::WsClient;
using nlohmann::json;

// Answers every request with JSON of its method, path, headers and body (and two cookies, one
// named like TestLooper's session); a WebSocket echoes each message in a frame of its kind, and
// answers "headers?" with its upgrade request's path and headers.
constexpr const char* kApp = R"PY(import base64, hashlib, json, struct, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class App(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *args):
        pass
    def seen(self):
        return {'method': self.command, 'path': self.path,
                'headers': {k.lower(): v for k, v in self.headers.items()}}
    def answer(self):
        n = int(self.headers.get('Content-Length') or 0)
        out = dict(self.seen(), body=self.rfile.read(n).decode('latin-1'))
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Set-Cookie', 'app=1; Path=/')
        self.send_header('Set-Cookie', 'testlooper_session=planted; Path=/')
        self.send_header('X-App', 'yes')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)
    def do_GET(self):
        if self.headers.get('Upgrade', '').lower() == 'websocket':
            return self.websocket()
        self.answer()
    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer
    def frame(self, opcode, data):
        n = len(data)
        if n < 126:
            head = bytes([0x80 | opcode, n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 126]) + struct.pack('>H', n)
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack('>Q', n)
        self.wfile.write(head + data)
        self.wfile.flush()
    def websocket(self):
        key = self.headers['Sec-WebSocket-Key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
        self.send_response(101)
        self.send_header('Upgrade', 'websocket')
        self.send_header('Connection', 'Upgrade')
        self.send_header('Sec-WebSocket-Accept',
                         base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        message, kind = b'', 0
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0f, head[1] & 0x7f
            if n == 126:
                n = struct.unpack('>H', self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b'\0\0\0\0'
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:
                self.frame(8, data[:2])
                return
            if opcode == 9:
                self.frame(10, data)
                continue
            if opcode in (1, 2):
                message, kind = b'', opcode
            message += data
            if not head[0] & 0x80:
                continue
            if message == b'headers?':
                self.frame(1, json.dumps(self.seen()).encode())
            elif message == b'bye':
                self.frame(8, struct.pack('>H', 1000))
                return
            else:
                self.frame(kind, message)

ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), App).serve_forever()
)PY";

class DeployProxyTest : public ::testing::Test {
 protected:
  DeployProxyTest() : app_(dir_.path() + "/repos/app"), port_(fixtures::free_port()) {
    app_.write("echo.py", kApp);
    app_.write("testlooper.yml", R"(looper_version: 5
environments: {linux: {platform: linux, image: {host: true}}}
deployments:
  web/linux:
    dependencies: {src: HEAD}
    portExpose: {http: )" + std::to_string(port_) +
                                     R"(}
    command: 'exec python3 src/echo.py )" +
                                     std::to_string(port_) + R"('
)");
    sha_ = app_.commit("a deployment serving an app");
  }

  std::string data() const { return dir_.path() + "/data"; }

  void start() {
    server_ = std::make_unique<ServerProcess>(
        std::vector<std::string>{"--repos", dir_.path() + "/repos", "--data", data(), "--port", "0",
                                 "--workers", "1", "--worker-cores", "2", "--worker-ram-gb", "2",
                                 "--poll-seconds", "0.3", "--auth", "token"},
        dir_.path() + "/serve.err");
    editor_ = token("ed", "editor");
    viewer_ = token("vi", "viewer");
    ASSERT_FALSE(editor_.empty());
    ASSERT_FALSE(viewer_.empty());
    ASSERT_TRUE(
        eventually([&] { return get("/api/repos/app/commits/" + sha_).contains("objects"); }, 60));
  }

  std::string token(const std::string& name, const std::string& role) const {
    const std::string out =
        capture(std::string(TL_BINARY) + " token create --data " + shell_quote(data()) +
                " --name " + name + " --role " + role + " 2>/dev/null");
    return out.substr(0, out.find('\n'));
  }

  json get(const std::string& path) const {
    return json::parse(capture("curl -s -H " + shell_quote("Authorization: Bearer " + editor_) +
                               " " + shell_quote(server_->url(path))),
                       nullptr, false);
  }

  struct Reply {
    int status = 0;
    std::string headers;
    std::string body;
  };
  // `curl ARGS URL` of the server's `path`: its status, response headers and body.
  Reply curl(const std::string& args, const std::string& path) const {
    const std::string head = dir_.path() + "/head.txt";
    const std::string out = capture("curl -s -D " + shell_quote(head) + " -w '\\n%{http_code}' " +
                                    args + " " + shell_quote(server_->url(path)));
    const size_t nl = out.rfind('\n');
    std::ifstream in(head);
    return {std::stoi(out.substr(nl + 1)),
            std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
            out.substr(0, nl)};
  }

  std::string operator_log() const {
    std::ifstream in(dir_.path() + "/serve.err");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  TempDir dir_;
  GitFixtureRepo app_;
  int port_;
  std::string sha_;
  std::unique_ptr<ServerProcess> server_;
  std::string editor_, viewer_;
};

TEST_F(DeployProxyTest, EveryMethodAndWebSocketsReachTheAppWithoutTestLoopersCredentials) {
  start();
  const std::string auth = "-H " + shell_quote("Authorization: Bearer " + editor_) + " ";
  const Reply booted = curl(auth + "-X POST -H 'Content-Type: application/json' -d '{}'",
                            "/api/repos/app/commits/" + sha_ + "/deployments/web%2Flinux/boot");
  ASSERT_EQ(booted.status, 200) << booted.body;
  const std::string id = json::parse(booted.body)["id"];
  ASSERT_TRUE(eventually([&] { return get("/api/deployments/" + id)["state"] == "running"; }, 120))
      << get("/api/deployments/" + id).dump();
  const std::string base = "/api/deployments/" + id + "/ports/http";
  ASSERT_TRUE(eventually([&] { return curl(auth, base + "/ready").status == 200; }, 60))
      << curl(auth, base + "/ready").body;

  // A PUT with a body arrives whole, at the path asked for (its escapes kept); TestLooper's
  // token and cookies and the hop-by-hop headers do not, the app's own cookie does.
  const Reply put = curl(auth +
                             "-X PUT -H 'Content-Type: text/plain' -H 'Cookie: testlooper_session="
                             "secret; app=1' -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: 1' "
                             "-H 'X-End: 2' -H 'X-CSRF-Token: csrf' --data-binary 'the body'",
                         base + "/items/a%20b?x=1");
  ASSERT_EQ(put.status, 200) << put.body;
  const json seen = json::parse(put.body, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << put.body;
  EXPECT_EQ(seen["method"], "PUT");
  EXPECT_EQ(seen["path"], "/items/a%20b?x=1");
  EXPECT_EQ(seen["body"], "the body");
  const json& headers = seen["headers"];
  EXPECT_FALSE(headers.contains("authorization")) << headers.dump();
  EXPECT_FALSE(headers.contains("x-csrf-token")) << headers.dump();
  EXPECT_FALSE(headers.contains("x-hop")) << headers.dump();
  EXPECT_EQ(headers.value("cookie", ""), "app=1") << headers.dump();
  EXPECT_EQ(headers.value("x-end", ""), "2") << headers.dump();
  EXPECT_EQ(headers.value("content-type", ""), "text/plain") << headers.dump();
  EXPECT_EQ(headers.value("x-forwarded-for", ""), "127.0.0.1") << headers.dump();
  EXPECT_EQ(headers.value("x-forwarded-prefix", ""), base) << headers.dump();
  // Its answer's own headers come back; a cookie named like TestLooper's does not.
  EXPECT_NE(put.headers.find("X-App: yes"), std::string::npos) << put.headers;
  EXPECT_NE(put.headers.find("app=1"), std::string::npos) << put.headers;
  EXPECT_EQ(put.headers.find("planted"), std::string::npos) << put.headers;
  for (const std::string method : {"PATCH", "DELETE", "OPTIONS", "POST"}) {
    const Reply r = curl(auth + "-X " + method + " --data-binary 'x'", base + "/m");
    ASSERT_EQ(r.status, 200) << method << " " << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false)["method"], method) << r.body;
  }
  EXPECT_EQ(curl(auth + "-I", base + "/m").status, 200);
  EXPECT_EQ(curl(auth + "-X TRACE", base + "/m").status, 405);

  // A viewer may not reach it, by HTTP or WebSocket; nor may anyone without a token.
  const std::string as_viewer = "-H " + shell_quote("Authorization: Bearer " + viewer_) + " ";
  EXPECT_EQ(curl(as_viewer, base + "/m").status, 403);
  EXPECT_EQ(curl("", base + "/m").status, 401);
  EXPECT_FALSE(WsClient(server_->port(), base + "/ws", viewer_).connected());
  EXPECT_FALSE(WsClient(server_->port(), base + "/ws").connected());

  // A WebSocket is bridged both ways: text and binary frames keep their kind, a large message
  // arrives whole, and the app sees neither TestLooper's token nor its cookie.
  WsClient ws(server_->port(), base + "/ws?room=1", editor_);
  ASSERT_TRUE(ws.connected());
  ASSERT_TRUE(ws.send("hello"));
  auto answer = ws.read(60);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(*answer, "hello");
  EXPECT_FALSE(ws.got_binary());
  const std::string bytes = std::string("\0\1\2\xff", 4) + std::string(300000, 'b');
  ASSERT_TRUE(ws.send_binary(bytes));
  answer = ws.read(60);
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(*answer == bytes) << answer->size();
  EXPECT_TRUE(ws.got_binary());
  ASSERT_TRUE(ws.send("headers?"));
  answer = ws.read(60);
  ASSERT_TRUE(answer.has_value());
  const json upgrade = json::parse(*answer, nullptr, false);
  EXPECT_EQ(upgrade["path"], "/ws?room=1") << *answer;
  EXPECT_FALSE(upgrade["headers"].contains("authorization")) << *answer;
  // The app closing closes the client's end, normally.
  ASSERT_TRUE(ws.send("bye"));
  EXPECT_EQ(ws.read_until_closed(60), boost::beast::websocket::error::closed);
  EXPECT_EQ(ws.close_code(), 1000) << ws.close_reason(1).value_or("");

  // A client that goes first closes the app's end; another one works meanwhile.
  {
    WsClient first(server_->port(), base + "/ws", editor_);
    ASSERT_TRUE(first.connected());
    ASSERT_TRUE(first.send("one"));
    EXPECT_EQ(first.read(60).value_or(""), "one");
  }
  WsClient second(server_->port(), base + "/ws", editor_);
  ASSERT_TRUE(second.connected());
  ASSERT_TRUE(second.send("two"));
  EXPECT_EQ(second.read(60).value_or(""), "two");

  // A port it does not expose is no WebSocket either; after the shutdown, none is.
  EXPECT_FALSE(
      WsClient(server_->port(), "/api/deployments/" + id + "/ports/nope/ws", editor_).connected());
  ASSERT_EQ(curl(auth + "-X POST -H 'Content-Type: application/json' -d '{}'",
                 "/api/deployments/" + id + "/shutdown")
                .status,
            200);
  EXPECT_FALSE(second.read(60).has_value());
  EXPECT_FALSE(WsClient(server_->port(), base + "/ws", editor_).connected());

  // Each use is in the operator log: who, which deployment and port, the method, path and status.
  const std::string log = operator_log();
  EXPECT_NE(log.find("deployment_port who=token:ed deployment=" + id +
                     " port=http method=PUT path=\"/items/a b\" status=200"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("deployment_port who=token:vi deployment=" + id +
                     " port=http method=GET path=/m status=403"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("deployment_port who=token:ed deployment=" + id +
                     " port=http method=WEBSOCKET path=/ws status=101"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("deployment_port who=token:vi deployment=" + id +
                     " port=http method=WEBSOCKET path=/ws status=403"),
            std::string::npos)
      << log;
}

// Each terminal opened (or refused) is in the operator log.
TEST_F(DeployProxyTest, TerminalsOpenedAreInTheOperatorLog) {
  start();
  const std::string auth = "-H " + shell_quote("Authorization: Bearer " + editor_) + " ";
  const Reply booted = curl(auth + "-X POST -H 'Content-Type: application/json' -d '{}'",
                            "/api/repos/app/commits/" + sha_ + "/deployments/web%2Flinux/boot");
  ASSERT_EQ(booted.status, 200) << booted.body;
  const std::string id = json::parse(booted.body)["id"];
  ASSERT_TRUE(eventually([&] { return get("/api/deployments/" + id)["state"] == "running"; }, 120));
  {
    WsClient terminal(server_->port(), "/api/deployments/" + id + "/terminal", editor_);
    ASSERT_TRUE(terminal.connected());
    EXPECT_FALSE(
        WsClient(server_->port(), "/api/deployments/" + id + "/terminal", viewer_).connected());
    ASSERT_TRUE(eventually([&] { return get("/api/deployments/" + id)["viewers"] == 1; }, 30));
  }
  const std::string log = operator_log();
  EXPECT_NE(log.find("terminal_opened who=token:ed deployment=" + id + " status=101"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("terminal_opened who=token:vi deployment=" + id + " status=403"),
            std::string::npos)
      << log;
  curl(auth + "-X POST -H 'Content-Type: application/json' -d '{}'",
       "/api/deployments/" + id + "/shutdown");
}

}  // namespace
}  // namespace testlooper::server
