// boot_script() and the EC2 provider (on Ec2Client and S3Client).
//
// The scripts set their parameters as plain assignments at the top (TL_SERVER='...', ...) and
// then use them, so that a reader (and the tests' instance harness) sees exactly what the
// machine will run.
#include "fleet/provider.h"

#include <fmt/format.h>

#include <set>

#include "fleet/ec2.h"
#include "fleet/s3.h"

namespace testlooper::fleet {

namespace {

// `text` in single quotes for bash ('\'' for a quote) or PowerShell ('' for a quote).
std::string bash_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
std::string ps_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

bool is_windows(const BootTicket& ticket) { return ticket.boot.platform == "windows"; }

// The comment lines every script starts with.
std::string header(const BootTicket& ticket) {
  std::string out = fmt::format(
      "# testlooper-server: {}\n# testlooper-machine: {}\n# testlooper-platform: {}\n"
      "# testlooper-ami: {}\n# testlooper-one-job: {}\n",
      ticket.server_url, ticket.machine_id, ticket.boot.platform, ticket.boot.ami,
      ticket.boot.one_job ? "true" : "false");
  return out;
}

std::string linux_script(const FleetOptions& options, const BootTicket& ticket) {
  std::string s = "#!/bin/bash\n" + header(ticket) + "set -euo pipefail\n";
  s += "TL_SERVER=" + bash_quote(ticket.server_url) + "\n";
  s += "TL_MACHINE=" + bash_quote(ticket.machine_id) + "\n";
  s += "TL_TOKEN=" + bash_quote(ticket.worker_token) + "\n";
  s += "TL_AMI=" + bash_quote(ticket.boot.one_job ? ticket.boot.ami : "") + "\n";
  s += "TL_DIR=/var/lib/testlooper\n";
  s += "TL_TOKEN_FILE=\"$TL_DIR/worker.token\"\n";
  for (const auto& [host, ip] : options.host_ips)
    s += "echo " + bash_quote(ip + " " + host) + " >> /etc/hosts\n";
  s += "install -d -m 0700 \"$TL_DIR\" \"$TL_DIR/work\"\n";
  s += "(umask 077 && printf '%s\\n' \"$TL_TOKEN\" > \"$TL_TOKEN_FILE\")\n";
  s += "chmod 0600 \"$TL_TOKEN_FILE\"\n";
  if (!ticket.boot.setup_script.empty()) {
    s += "cat > \"$TL_DIR/setup.sh\" <<'TESTLOOPER_SETUP_END'\n" + ticket.boot.setup_script;
    if (ticket.boot.setup_script.back() != '\n') s += "\n";
    s += "TESTLOOPER_SETUP_END\nbash \"$TL_DIR/setup.sh\"\n";
  }
  s += "exec testlooper worker --server \"$TL_SERVER\" --id \"$TL_MACHINE\" --token-file "
       "\"$TL_TOKEN_FILE\" --dir \"$TL_DIR/work\"${TL_AMI:+ --ami \"$TL_AMI\"}\n";
  return s;
}

// Without the <powershell> tags (as stored in the bootstrap bucket).
std::string windows_script(const FleetOptions& options, const BootTicket& ticket) {
  std::string s = header(ticket) + "$ErrorActionPreference = 'Stop'\n";
  s += "$TL_SERVER = " + ps_quote(ticket.server_url) + "\n";
  s += "$TL_MACHINE = " + ps_quote(ticket.machine_id) + "\n";
  s += "$TL_TOKEN = " + ps_quote(ticket.worker_token) + "\n";
  s += "$TL_AMI = " + ps_quote(ticket.boot.one_job ? ticket.boot.ami : "") + "\n";
  s += "$TL_DIR = 'C:\\testlooper'\n";
  s += "$TL_TOKEN_FILE = Join-Path $TL_DIR 'worker.token'\n";
  for (const auto& [host, ip] : options.host_ips)
    s += "Add-Content -Path \"$env:SystemRoot\\System32\\drivers\\etc\\hosts\" -Value " +
         ps_quote(ip + " " + host) + "\n";
  s += "New-Item -ItemType Directory -Force -Path (Join-Path $TL_DIR 'work') | Out-Null\n";
  s += "Set-Content -Path $TL_TOKEN_FILE -Value $TL_TOKEN -NoNewline\n";
  s += "icacls $TL_TOKEN_FILE /inheritance:r /grant:r 'SYSTEM:F' 'Administrators:F' | Out-Null\n";
  if (!ticket.boot.setup_script.empty()) {
    s += "# setup_script_contents, run before the worker starts\n" + ticket.boot.setup_script;
    if (ticket.boot.setup_script.back() != '\n') s += "\n";
  }
  s += "$TL_ARGS = @('worker', '--server', $TL_SERVER, '--id', $TL_MACHINE, '--token-file', "
       "$TL_TOKEN_FILE, '--dir', (Join-Path $TL_DIR 'work'))\n";
  s += "if ($TL_AMI) { $TL_ARGS += @('--ami', $TL_AMI) }\n";
  s += "& testlooper.exe @TL_ARGS\n";
  return s;
}

std::string bootstrap_key(const FleetOptions& options, const BootTicket& ticket) {
  std::string prefix = options.bootstrap_key_prefix;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  return prefix + ticket.machine_id + (is_windows(ticket) ? ".ps1" : ".sh");
}

// The user data that fetches the boot script from the bucket and runs it.
std::string fetching_stub(const FleetOptions& options, const BootTicket& ticket) {
  const std::string url = "s3://" + options.bootstrap_bucket + "/" + bootstrap_key(options, ticket);
  if (is_windows(ticket)) {
    return "<powershell>\n" + header(ticket) + "# testlooper-bootstrap: " + url + "\n" +
           "$ErrorActionPreference = 'Stop'\n$TL_BOOT = 'C:\\testlooper-boot.ps1'\n" +
           "Read-S3Object -BucketName " + ps_quote(options.bootstrap_bucket) + " -Key " +
           ps_quote(bootstrap_key(options, ticket)) + " -File $TL_BOOT -Region " +
           ps_quote(options.region) +
           " | Out-Null\n& powershell.exe -ExecutionPolicy Bypass -File $TL_BOOT\n" +
           "</powershell>\n";
  }
  return "#!/bin/bash\n" + header(ticket) + "# testlooper-bootstrap: " + url + "\n" +
         "set -euo pipefail\n" + "aws s3 cp " + bash_quote(url) +
         " /var/lib/testlooper-boot.sh --region " + bash_quote(options.region) + "\n" +
         "exec bash /var/lib/testlooper-boot.sh\n";
}

class Ec2Provider : public Provider {
 public:
  Ec2Provider(const FleetOptions& options, const Credentials& credentials)
      : options_(options),
        ec2_(Endpoint{"ec2", options.region, options.endpoint_url}, credentials),
        s3_(Endpoint{"s3", options.region, options.endpoint_url}, credentials) {}

  Result<ProvidedMachine> boot(const BootTicket& ticket) override {
    InstanceSpec spec;
    spec.image_id = ticket.boot.ami;
    spec.instance_type = ticket.boot.type.name;
    spec.subnet_id = options_.subnet;
    if (!options_.security_group.empty()) spec.security_group_ids = {options_.security_group};
    spec.key_name = options_.keypair;
    spec.iam_instance_profile = options_.worker_iam_role_name;
    if (options_.bootstrap_bucket.empty()) {
      spec.user_data = boot_script(options_, ticket);
    } else {
      const std::string script =
          is_windows(ticket) ? windows_script(options_, ticket) : linux_script(options_, ticket);
      if (Status put = s3_.put_object(options_.bootstrap_bucket, bootstrap_key(options_, ticket),
                                      script, "text/plain");
          !put.ok())
        return put.error();
      spec.user_data = fetching_stub(options_, ticket);
    }
    spec.tags = {{"testlooper-worker-name", options_.worker_name},
                 {"testlooper-machine", ticket.machine_id},
                 {"testlooper-platform", ticket.boot.platform},
                 {"testlooper-one-job", ticket.boot.one_job ? "true" : "false"},
                 {"Name", options_.worker_name + "-" + ticket.machine_id}};
    auto instance = ec2_.run_instance(spec);
    if (!instance.ok()) return instance.error();
    return provided(*instance);
  }

  Result<std::vector<ProvidedMachine>> list() override {
    auto instances = ec2_.describe_instances("testlooper-worker-name", options_.worker_name);
    if (!instances.ok()) return instances.error();
    std::vector<ProvidedMachine> out;
    for (const auto& i : *instances) {
      if (i.state == "terminated") continue;
      auto tag = i.tags.find("testlooper-worker-name");
      if (tag == i.tags.end() || tag->second != options_.worker_name) continue;
      out.push_back(provided(i));
    }
    return out;
  }

  Status terminate(const std::vector<std::string>& instance_ids) override {
    if (instance_ids.empty()) return {};
    auto ours = list();
    if (!ours.ok()) return ours.error();
    std::set<std::string> known;
    for (const auto& m : *ours) known.insert(m.instance_id);
    std::vector<std::string> ids;
    std::string refused;
    for (const auto& id : instance_ids) {
      if (known.count(id))
        ids.push_back(id);
      else
        refused += (refused.empty() ? "" : ", ") + id;
    }
    if (Status s = ec2_.terminate_instances(ids); !s.ok()) return s;
    if (!refused.empty())
      return Error{"terminate", "not terminated, not tagged testlooper-worker-name=" +
                                    options_.worker_name + ": " + refused};
    return {};
  }

 private:
  static ProvidedMachine provided(const Instance& i) {
    ProvidedMachine m;
    auto tag = [&](const char* key) {
      auto t = i.tags.find(key);
      return t == i.tags.end() ? std::string() : t->second;
    };
    m.machine_id = tag("testlooper-machine");
    m.instance_id = i.id;
    m.type = i.type;
    m.state = i.state;
    m.ami = i.image_id;
    m.platform = tag("testlooper-platform").empty() ? "linux" : tag("testlooper-platform");
    m.one_job = tag("testlooper-one-job") == "true";
    m.launched_at = static_cast<double>(i.launch_time);
    return m;
  }

  FleetOptions options_;
  Ec2Client ec2_;
  S3Client s3_;
};

}  // namespace

std::string boot_script(const FleetOptions& options, const BootTicket& ticket) {
  if (is_windows(ticket))
    return "<powershell>\n" + windows_script(options, ticket) + "</powershell>\n";
  return linux_script(options, ticket);
}

Result<std::unique_ptr<Provider>> make_ec2_provider(const FleetOptions& options) {
  auto credentials = load_credentials();
  if (!credentials.ok()) return credentials.error();
  return std::unique_ptr<Provider>(std::make_unique<Ec2Provider>(options, *credentials));
}

}  // namespace testlooper::fleet
