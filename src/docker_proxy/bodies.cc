// Create bodies of the scoped docker: what a test may ask the engine to create, and how it is
// rewritten. Inside this file a refusal is a Refused exception; each rewrite_* turns it into an
// Error.
#include "docker_proxy/bodies.h"

#include <nlohmann/json.hpp>
#include <set>

namespace testlooper::docker_proxy {
namespace {

using nlohmann::json;

struct Refused {
  std::string message;
};

constexpr int kMaxDepth = 32;

[[noreturn]] void refuse(std::string message) { throw Refused{std::move(message)}; }

// Nesting depth of JSON text (brackets outside strings), so that parsing stays shallow.
bool shallow(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

json parse_object(const std::string& body, bool empty_is_object) {
  if (body.empty() && empty_is_object) return json::object();
  if (!shallow(body)) refuse("request body nested too deeply");
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) refuse("request body is not a JSON object");
  return parsed;
}

bool is_zero(const json& value) {
  return value.is_null() || (value.is_boolean() && !value.get<bool>()) ||
         (value.is_number() && value == 0) ||
         (value.is_string() && value.get_ref<const std::string&>().empty()) ||
         ((value.is_array() || value.is_object()) && value.empty());
}

void check_keys(const json& object, const std::set<std::string>& allowed,
                const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (!allowed.count(key))
      refuse(where + "." + key + " is not allowed through the scoped docker");
  }
}

void require_zero(const json& object, const std::vector<std::string>& keys,
                  const std::string& where) {
  for (const std::string& key : keys) {
    const auto it = object.find(key);
    if (it != object.end() && !is_zero(*it)) {
      refuse(where + "." + key + " is not allowed through the scoped docker");
    }
  }
}

// object[key] as a string: "" when absent or null; refused when of another type.
std::string string_field(const json& object, const std::string& key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  if (!it->is_string()) refuse(where + "." + key + " must be a string");
  return it->get<std::string>();
}

void require_one_of(const json& object, const std::string& key, const std::set<std::string>& values,
                    const std::string& where) {
  const std::string value = string_field(object, key, where);
  if (!values.count(value)) refuse(where + "." + key + " '" + value + "' is not allowed");
}

// Labels: the test's own (strings; none under "testlooper.") plus the scope's.
void set_labels(const Scope& scope, json& object, const std::string& key) {
  json labels = json::object();
  const auto it = object.find(key);
  if (it != object.end() && !it->is_null()) {
    if (!it->is_object()) refuse(key + " must be an object");
    for (const auto& [name, value] : it->items()) {
      if (!value.is_string()) refuse(key + "." + name + " must be a string");
      if (name.rfind("testlooper.", 0) != 0) labels[name] = value;
    }
  }
  for (const auto& [name, value] : scope_labels(scope)) labels[name] = value;
  object[key] = std::move(labels);
}

std::string prefixed(const Scope& scope, const std::string& name) {
  std::optional<std::string> full = scoped_name(scope, name);
  if (!full) refuse("invalid name '" + name + "'");
  return *full;
}

// A bind source: it must lead (symlinks resolved) into one of the scope's roots; it becomes the
// resolved path so that the engine mounts what was checked.
std::string checked_bind_source(const Scope& scope, const std::string& source, Engine& engine) {
  const std::string refusal = "bind mount of '" + source +
                              "' refused: only paths inside the run's directories may be mounted";
  if (source.empty() || source[0] != '/') refuse(refusal);
  const std::optional<std::string> real = engine.real_path(source);
  if (!real) refuse(refusal + " (and it must exist)");
  if (!bind_source_allowed(scope, *real, engine)) refuse(refusal);
  return *real;
}

std::string owned_volume(const Scope& scope, const std::string& name, Engine& engine) {
  const std::string full = prefixed(scope, name);
  Status ensured = engine.ensure_volume(full);
  if (!ensured.ok()) refuse("volume '" + name + "': " + ensured.error().message);
  return full;
}

// "src:dst[:options]" of HostConfig.Binds.
std::string rewrite_bind(const Scope& scope, const std::string& bind, Engine& engine) {
  const size_t first = bind.find(':');
  if (first == std::string::npos || first == 0) refuse("bind '" + bind + "' needs source:target");
  const std::string source = bind.substr(0, first);
  const std::string rest = bind.substr(first + 1);
  const size_t second = rest.find(':');
  if (second != std::string::npos) {
    static const std::set<std::string> kOptions = {
        "ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "slave", "rslave"};
    std::string options = rest.substr(second + 1);
    size_t start = 0;
    while (start <= options.size()) {
      size_t comma = options.find(',', start);
      if (comma == std::string::npos) comma = options.size();
      if (!kOptions.count(options.substr(start, comma - start))) {
        refuse("bind option '" + options.substr(start, comma - start) + "' is not allowed");
      }
      start = comma + 1;
    }
  }
  if (source[0] == '/') return checked_bind_source(scope, source, engine) + ":" + rest;
  return owned_volume(scope, source, engine) + ":" + rest;
}

void rewrite_mount(const Scope& scope, json& mount, Engine& engine) {
  if (!mount.is_object()) refuse("HostConfig.Mounts entries must be objects");
  check_keys(mount,
             {"Target", "Source", "Type", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions",
              "TmpfsOptions"},
             "Mounts[]");
  const std::string type = string_field(mount, "Type", "Mounts[]");
  const std::string source = string_field(mount, "Source", "Mounts[]");
  if (type == "bind") {
    mount["Source"] = checked_bind_source(scope, source, engine);
    if (mount.contains("BindOptions") && !mount["BindOptions"].is_null()) {
      json& options = mount["BindOptions"];
      if (!options.is_object()) refuse("Mounts[].BindOptions must be an object");
      check_keys(options,
                 {"Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
                  "ReadOnlyForceRecursive"},
                 "BindOptions");
      require_one_of(options, "Propagation", {"", "private", "rprivate", "slave", "rslave"},
                     "BindOptions");
    }
    require_zero(mount, {"VolumeOptions"}, "Mounts[]");
  } else if (type == "volume") {
    if (!source.empty()) mount["Source"] = owned_volume(scope, source, engine);
    json options = mount.value("VolumeOptions", json::object());
    if (options.is_null()) options = json::object();
    if (!options.is_object()) refuse("Mounts[].VolumeOptions must be an object");
    check_keys(options, {"NoCopy", "Labels", "DriverConfig", "Subpath"}, "VolumeOptions");
    require_zero(options, {"DriverConfig"}, "VolumeOptions");
    set_labels(scope, options, "Labels");
    mount["VolumeOptions"] = std::move(options);
    require_zero(mount, {"BindOptions"}, "Mounts[]");
  } else if (type == "tmpfs") {
    require_zero(mount, {"BindOptions", "VolumeOptions"}, "Mounts[]");
  } else {
    refuse("mount type '" + type + "' is not allowed through the scoped docker");
  }
}

bool predefined_network(const std::string& name) {
  return name.empty() || name == "default" || name == "bridge" || name == "none";
}

// A network as a container names it: a predefined one or one of the scope's (by its name).
std::string owned_network(const std::string& ref, Engine& engine) {
  if (ref == "host") refuse("the host network is not allowed through the scoped docker");
  if (predefined_network(ref)) return ref;
  const std::optional<Owned> owned = engine.find_owned(Kind::kNetwork, ref);
  if (!owned) refuse("No such network: " + ref);
  return owned->name;
}

std::string owned_container(const std::string& ref, Engine& engine) {
  const std::optional<Owned> owned = engine.find_owned(Kind::kContainer, ref);
  if (!owned) refuse("No such container: " + ref);
  return owned->id;
}

void check_endpoint(const json& endpoint) {
  if (!endpoint.is_null() && !endpoint.is_object()) refuse("EndpointConfig must be an object");
  if (endpoint.is_object()) require_zero(endpoint, {"Links"}, "EndpointConfig");
}

void rewrite_host_config(const Scope& scope, json& host, Engine& engine) {
  if (!host.is_object()) refuse("HostConfig must be an object");
  static const std::set<std::string> kAllowed = {"Binds",
                                                 "ContainerIDFile",
                                                 "LogConfig",
                                                 "NetworkMode",
                                                 "PortBindings",
                                                 "RestartPolicy",
                                                 "AutoRemove",
                                                 "VolumeDriver",
                                                 "VolumesFrom",
                                                 "ConsoleSize",
                                                 "Annotations",
                                                 "CapAdd",
                                                 "CapDrop",
                                                 "CgroupnsMode",
                                                 "Dns",
                                                 "DnsOptions",
                                                 "DnsSearch",
                                                 "ExtraHosts",
                                                 "GroupAdd",
                                                 "IpcMode",
                                                 "Cgroup",
                                                 "Links",
                                                 "OomScoreAdj",
                                                 "PidMode",
                                                 "Privileged",
                                                 "PublishAllPorts",
                                                 "ReadonlyRootfs",
                                                 "SecurityOpt",
                                                 "StorageOpt",
                                                 "Tmpfs",
                                                 "UTSMode",
                                                 "UsernsMode",
                                                 "ShmSize",
                                                 "Sysctls",
                                                 "Runtime",
                                                 "Isolation",
                                                 "CpuShares",
                                                 "Memory",
                                                 "NanoCpus",
                                                 "CgroupParent",
                                                 "BlkioWeight",
                                                 "BlkioWeightDevice",
                                                 "BlkioDeviceReadBps",
                                                 "BlkioDeviceWriteBps",
                                                 "BlkioDeviceReadIOps",
                                                 "BlkioDeviceWriteIOps",
                                                 "CpuPeriod",
                                                 "CpuQuota",
                                                 "CpuRealtimePeriod",
                                                 "CpuRealtimeRuntime",
                                                 "CpusetCpus",
                                                 "CpusetMems",
                                                 "Devices",
                                                 "DeviceCgroupRules",
                                                 "DeviceRequests",
                                                 "KernelMemory",
                                                 "KernelMemoryTCP",
                                                 "MemoryReservation",
                                                 "MemorySwap",
                                                 "MemorySwappiness",
                                                 "OomKillDisable",
                                                 "PidsLimit",
                                                 "Ulimits",
                                                 "CpuCount",
                                                 "CpuPercent",
                                                 "IOMaximumIOps",
                                                 "IOMaximumBandwidth",
                                                 "Mounts",
                                                 "MaskedPaths",
                                                 "ReadonlyPaths",
                                                 "Init"};
  check_keys(host, kAllowed, "HostConfig");
  require_zero(host,
               {"Privileged",
                "CapAdd",
                "Devices",
                "DeviceRequests",
                "DeviceCgroupRules",
                "VolumeDriver",
                "VolumesFrom",
                "Links",
                "CgroupParent",
                "Runtime",
                "Annotations",
                "StorageOpt",
                "BlkioWeightDevice",
                "BlkioDeviceReadBps",
                "BlkioDeviceWriteBps",
                "BlkioDeviceReadIOps",
                "BlkioDeviceWriteIOps",
                "CpuRealtimePeriod",
                "CpuRealtimeRuntime",
                "Cgroup",
                "PidMode",
                "UTSMode",
                "UsernsMode"},
               "HostConfig");
  for (const char* key : {"MaskedPaths", "ReadonlyPaths"}) {
    if (host.contains(key) && !host[key].is_null()) {
      refuse(std::string("HostConfig.") + key + " is not allowed through the scoped docker");
    }
  }
  require_one_of(host, "IpcMode", {"", "private", "shareable", "none"}, "HostConfig");
  require_one_of(host, "CgroupnsMode", {"", "private"}, "HostConfig");
  require_one_of(host, "Isolation", {"", "default"}, "HostConfig");
  if (host.contains("OomScoreAdj") &&
      !(host["OomScoreAdj"].is_number_integer() && host["OomScoreAdj"].get<int64_t>() >= 0)) {
    refuse("HostConfig.OomScoreAdj must be a non-negative integer");
  }
  if (host.contains("SecurityOpt") && !host["SecurityOpt"].is_null()) {
    static const std::set<std::string> kSafe = {"no-new-privileges", "no-new-privileges:true",
                                                "no-new-privileges=true"};
    if (!host["SecurityOpt"].is_array()) refuse("HostConfig.SecurityOpt must be an array");
    for (const json& option : host["SecurityOpt"]) {
      if (!option.is_string() || !kSafe.count(option.get<std::string>())) {
        refuse("HostConfig.SecurityOpt " + option.dump() + " is not allowed");
      }
    }
  }
  if (host.contains("Sysctls") && !host["Sysctls"].is_null()) {
    if (!host["Sysctls"].is_object()) refuse("HostConfig.Sysctls must be an object");
    for (const auto& [name, value] : host["Sysctls"].items()) {
      bool ok = false;
      for (const char* prefix : {"net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}) {
        ok = ok || name.rfind(prefix, 0) == 0;
      }
      if (!ok) refuse("sysctl '" + name + "' is not allowed (only namespaced ones)");
    }
  }
  if (host.contains("LogConfig") && host["LogConfig"].is_object()) {
    require_one_of(host["LogConfig"], "Type", {"", "json-file", "local", "none"}, "LogConfig");
  } else if (host.contains("LogConfig") && !host["LogConfig"].is_null()) {
    refuse("HostConfig.LogConfig must be an object");
  }
  // The engine would restart the container by itself, re-mounting bind sources unchecked.
  if (host.contains("RestartPolicy") && host["RestartPolicy"].is_object()) {
    require_one_of(host["RestartPolicy"], "Name", {"", "no"}, "RestartPolicy");
  } else if (host.contains("RestartPolicy") && !host["RestartPolicy"].is_null()) {
    refuse("HostConfig.RestartPolicy must be an object");
  }
  const std::string mode = string_field(host, "NetworkMode", "HostConfig");
  if (mode.rfind("container:", 0) == 0) {
    host["NetworkMode"] = "container:" + owned_container(mode.substr(10), engine);
  } else if (!mode.empty()) {
    host["NetworkMode"] = owned_network(mode, engine);
  }
  if (host.contains("Binds") && !host["Binds"].is_null()) {
    if (!host["Binds"].is_array()) refuse("HostConfig.Binds must be an array");
    for (json& bind : host["Binds"]) {
      if (!bind.is_string()) refuse("HostConfig.Binds entries must be strings");
      bind = rewrite_bind(scope, bind.get<std::string>(), engine);
    }
  }
  if (host.contains("Mounts") && !host["Mounts"].is_null()) {
    if (!host["Mounts"].is_array()) refuse("HostConfig.Mounts must be an array");
    for (json& mount : host["Mounts"]) rewrite_mount(scope, mount, engine);
  }
}

void rewrite_networking(json& networking, Engine& engine) {
  if (networking.is_null()) return;
  if (!networking.is_object()) refuse("NetworkingConfig must be an object");
  check_keys(networking, {"EndpointsConfig"}, "NetworkingConfig");
  if (!networking.contains("EndpointsConfig") || networking["EndpointsConfig"].is_null()) return;
  const json& endpoints = networking["EndpointsConfig"];
  if (!endpoints.is_object()) refuse("NetworkingConfig.EndpointsConfig must be an object");
  json rewritten = json::object();
  for (const auto& [name, endpoint] : endpoints.items()) {
    check_endpoint(endpoint);
    rewritten[owned_network(name, engine)] = endpoint;
  }
  networking["EndpointsConfig"] = std::move(rewritten);
}

template <class F>
Result<std::string> refusing(F&& rewrite) {
  try {
    return rewrite();
  } catch (const Refused& refused) {
    return Error{"", refused.message};
  } catch (const json::exception& error) {
    return Error{"", std::string("request body rejected: ") + error.what()};
  }
}

}  // namespace

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || !isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (const char c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool bind_source_allowed(const Scope& scope, const std::string& source, Engine& engine) {
  if (engine.real_path(source) != source) return false;  // gone, or a symlink now
  for (const std::string& root : scope.roots) {
    const std::optional<std::string> real_root = engine.real_path(root);
    if (!real_root || *real_root == "/") continue;
    if (source == *real_root || source.rfind(*real_root + "/", 0) == 0) return true;
  }
  return false;
}

std::optional<std::string> scoped_name(const Scope& scope, const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::string full = name.rfind(scope.name_prefix(), 0) == 0 ? name : scope.name_prefix() + name;
  if (!valid_name(full)) return std::nullopt;
  return full;
}

Result<std::string> rewrite_container_create(const Scope& scope, const std::string& body,
                                             Engine& engine) {
  return refusing([&] {
    json create = parse_object(body, false);
    check_keys(create, {"Hostname",        "Domainname",   "User",
                        "AttachStdin",     "AttachStdout", "AttachStderr",
                        "ExposedPorts",    "Tty",          "OpenStdin",
                        "StdinOnce",       "Env",          "Cmd",
                        "Healthcheck",     "ArgsEscaped",  "Image",
                        "Volumes",         "WorkingDir",   "Entrypoint",
                        "NetworkDisabled", "MacAddress",   "OnBuild",
                        "Labels",          "StopSignal",   "StopTimeout",
                        "Shell",           "HostConfig",   "NetworkingConfig"},
               "");
    set_labels(scope, create, "Labels");
    if (create.contains("HostConfig") && !create["HostConfig"].is_null()) {
      rewrite_host_config(scope, create["HostConfig"], engine);
    }
    if (create.contains("NetworkingConfig")) rewrite_networking(create["NetworkingConfig"], engine);
    return create.dump();
  });
}

Result<std::string> rewrite_exec_create(const std::string& body) {
  return refusing([&] {
    json exec = parse_object(body, false);
    check_keys(exec,
               {"AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "Detach",
                "DetachKeys", "Tty", "Env", "Cmd", "Privileged", "User", "WorkingDir"},
               "exec");
    require_zero(exec, {"Privileged"}, "exec");
    return exec.dump();
  });
}

Result<std::string> rewrite_network_create(const Scope& scope, const std::string& body) {
  return refusing([&] {
    json network = parse_object(body, false);
    check_keys(
        network,
        {"Name", "CheckDuplicate", "Driver", "Scope", "Internal", "Attachable", "Ingress", "IPAM",
         "EnableIPv6", "EnableIPv4", "Options", "Labels", "ConfigOnly", "ConfigFrom"},
        "network");
    network["Name"] = prefixed(scope, string_field(network, "Name", "network"));
    require_one_of(network, "Driver", {"", "bridge"}, "network");
    require_one_of(network, "Scope", {"", "local"}, "network");
    require_zero(network, {"Ingress", "ConfigOnly", "ConfigFrom"}, "network");
    if (network.contains("Options") && !network["Options"].is_null()) {
      if (!network["Options"].is_object()) refuse("network.Options must be an object");
      check_keys(
          network["Options"],
          {"com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
           "com.docker.network.driver.mtu"},
          "network.Options");
    }
    if (network.contains("IPAM") && !network["IPAM"].is_null()) {
      json& ipam = network["IPAM"];
      if (!ipam.is_object()) refuse("network.IPAM must be an object");
      check_keys(ipam, {"Driver", "Config", "Options"}, "IPAM");
      require_one_of(ipam, "Driver", {"", "default"}, "IPAM");
      require_zero(ipam, {"Options"}, "IPAM");
    }
    set_labels(scope, network, "Labels");
    return network.dump();
  });
}

Result<std::string> rewrite_network_connect(const std::string& body, Engine& engine) {
  return refusing([&] {
    json connect = parse_object(body, false);
    check_keys(connect, {"Container", "EndpointConfig", "Force"}, "network connect");
    connect["Container"] =
        owned_container(string_field(connect, "Container", "network connect"), engine);
    if (connect.contains("EndpointConfig")) check_endpoint(connect["EndpointConfig"]);
    return connect.dump();
  });
}

Result<std::string> rewrite_volume_create(const Scope& scope, const std::string& body) {
  return refusing([&] {
    json volume = parse_object(body, true);
    check_keys(volume, {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"}, "volume");
    const std::string name = string_field(volume, "Name", "volume");
    if (!name.empty()) volume["Name"] = prefixed(scope, name);
    require_one_of(volume, "Driver", {"", "local"}, "volume");
    require_zero(volume, {"DriverOpts", "ClusterVolumeSpec"}, "volume");
    set_labels(scope, volume, "Labels");
    return volume.dump();
  });
}

}  // namespace testlooper::docker_proxy
