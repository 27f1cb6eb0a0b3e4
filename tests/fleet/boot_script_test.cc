// boot_script(): the user data of a booted machine (Linux bash, Windows PowerShell).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fleet/provider.h"

namespace testlooper::fleet {
namespace {

BootTicket ticket(const std::string& platform) {
  BootTicket t;
  t.machine_id = "m-0123abcd";
  t.server_url = "http://10.0.0.1:9081";
  t.worker_token = "tl_secret'quote";
  t.boot.platform = platform;
  t.boot.ami = platform == "windows" ? "ami-win" : "ami-linux";
  t.boot.type = {"c.large", 2, 4};
  return t;
}

FleetOptions options() {
  FleetOptions o;
  o.host_ips = {{"git.internal", "10.1.2.3"}};
  return o;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(BootScript, LinuxSetsHostsTokenFileAndExecsTheWorker) {
  auto t = ticket("linux");
  t.boot.one_job = true;
  t.boot.setup_script = "echo setting up";
  const std::string s = boot_script(options(), t);
  EXPECT_TRUE(s.starts_with("#!/bin/bash\n# testlooper-server: http://10.0.0.1:9081\n"));
  EXPECT_TRUE(has(s, "TL_TOKEN='tl_secret'\\''quote'\n"));
  EXPECT_TRUE(has(s, "echo '10.1.2.3 git.internal' >> /etc/hosts\n"));
  EXPECT_TRUE(has(s, "umask 077"));
  EXPECT_TRUE(has(s, "TL_AMI='ami-linux'\n"));
  EXPECT_LT(s.find("echo setting up"), s.find("exec testlooper worker"));
  // It is valid bash.
  const auto path = std::filesystem::temp_directory_path() / "tl_boot_script_test.sh";
  std::ofstream(path) << s;
  EXPECT_EQ(std::system(("bash -n " + path.string()).c_str()), 0);
  std::filesystem::remove(path);
}

TEST(BootScript, WindowsIsPowerShellWithTheSetupScriptBeforeTheWorker) {
  auto t = ticket("windows");
  t.boot.setup_script = "Install-WindowsFeature Foo";
  const std::string s = boot_script(options(), t);
  EXPECT_TRUE(s.starts_with("<powershell>\n"));
  EXPECT_TRUE(s.ends_with("</powershell>\n"));
  EXPECT_TRUE(has(s, "$TL_TOKEN = 'tl_secret''quote'\n"));
  EXPECT_TRUE(has(s, "drivers\\etc\\hosts\" -Value '10.1.2.3 git.internal'"));
  EXPECT_LT(s.find("Install-WindowsFeature Foo"), s.find("& testlooper.exe @TL_ARGS"));
  EXPECT_TRUE(has(s, "$TL_AMI = ''\n"));  // not a one-job machine
}

}  // namespace
}  // namespace testlooper::fleet
