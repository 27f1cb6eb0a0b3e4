#include "fleet/ec2.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <pugixml.hpp>

namespace testlooper::fleet {
namespace {

constexpr size_t kMaxInstances = 20000;     // in one answer
constexpr size_t kMaxTags = 50;             // EC2's own limit per resource
constexpr size_t kMaxTagText = 1024;        // EC2 allows 128 (key) and 256 (value)
constexpr size_t kMaxDescribePages = 1000;  // x 1000 instances
constexpr size_t kTerminateBatch = 1000;    // EC2's limit per call

std::string param(const std::string& name, const std::string& value) {
  return "&" + name + "=" + aws_uri_encode(value, true);
}

// An id, type, state or image from EC2: 1..64 of [A-Za-z0-9._-].
bool is_token(const std::string& text) {
  return !text.empty() && text.size() <= 64 &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}

Result<Instance> parse_instance(const pugi::xml_node& item, size_t index) {
  const std::string where = fmt::format("instance {}", index);
  Instance instance;
  instance.id = item.child_value("instanceId");
  if (!is_token(instance.id)) return Error{where, "instanceId is missing or malformed"};
  instance.state = item.child("instanceState").child_value("name");
  if (!is_token(instance.state))
    return Error{instance.id, "instanceState/name is missing or malformed"};
  instance.type = item.child_value("instanceType");
  instance.image_id = item.child_value("imageId");
  instance.private_ip = item.child_value("privateIpAddress");
  for (const std::string* field : {&instance.type, &instance.image_id, &instance.private_ip})
    if (!field->empty() && !is_token(*field))
      return Error{instance.id, "instanceType, imageId or privateIpAddress is malformed"};
  const std::string launch = item.child_value("launchTime");
  if (!launch.empty()) {
    const auto seconds = parse_aws_time(launch);
    if (!seconds) return Error{instance.id, "launchTime is not an ISO 8601 UTC time"};
    instance.launch_time = *seconds;
  }
  for (const pugi::xml_node& tag : item.child("tagSet").children("item")) {
    if (instance.tags.size() >= kMaxTags)
      return Error{instance.id, fmt::format("has more than {} tags", kMaxTags)};
    std::string key = tag.child_value("key"), value = tag.child_value("value");
    if (key.empty() || key.size() > kMaxTagText || value.size() > kMaxTagText)
      return Error{instance.id, "a tag's key is empty or a key or value is too long"};
    instance.tags[std::move(key)] = std::move(value);
  }
  return instance;
}

}  // namespace

Result<std::vector<Instance>> parse_instances_xml(const std::string& xml, std::string* next_token) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return Error{"EC2 answer", "is not XML"};
  const pugi::xml_node root = doc.document_element();
  // DescribeInstances: reservationSet/item/instancesSet/item; RunInstances: instancesSet/item.
  std::vector<pugi::xml_node> items;
  for (const pugi::xml_node& item : root.child("instancesSet").children("item"))
    items.push_back(item);
  for (const pugi::xml_node& reservation : root.child("reservationSet").children("item")) {
    for (const pugi::xml_node& item : reservation.child("instancesSet").children("item")) {
      if (items.size() >= kMaxInstances) break;
      items.push_back(item);
    }
  }
  if (items.size() > kMaxInstances)
    return Error{"EC2 answer", fmt::format("has more than {} instances", kMaxInstances)};
  std::vector<Instance> instances;
  for (const pugi::xml_node& item : items) {
    auto instance = parse_instance(item, instances.size());
    if (!instance.ok()) return instance.error();
    instances.push_back(std::move(instance.value()));
  }
  if (next_token != nullptr) {
    *next_token = root.child_value("nextToken");
    if (next_token->size() > 4096) return Error{"EC2 answer", "nextToken is too long"};
  }
  return instances;
}

Ec2Client::Ec2Client(Endpoint endpoint, Credentials credentials)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)) {}

Result<AwsAnswer> Ec2Client::call(const std::string& action_and_params) const {
  const size_t end = action_and_params.find('&');
  const std::string where = "EC2 " + action_and_params.substr(0, end).substr(7);  // "Action="
  AwsRequest request;
  request.method = "POST";
  request.headers = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"};
  request.body = action_and_params + "&Version=2016-11-15";
  auto answer = aws_call(endpoint_, credentials_, request, where);
  if (!answer.ok()) return answer.error();
  if (!answer->ok()) return answer_error(*answer, where);
  return answer;
}

Result<Instance> Ec2Client::run_instance(const InstanceSpec& spec) const {
  std::string params = "Action=RunInstances&MinCount=1&MaxCount=1" +
                       param("ImageId", spec.image_id) + param("InstanceType", spec.instance_type);
  if (!spec.subnet_id.empty()) params += param("SubnetId", spec.subnet_id);
  for (size_t i = 0; i < spec.security_group_ids.size(); ++i)
    params += param(fmt::format("SecurityGroupId.{}", i + 1), spec.security_group_ids[i]);
  if (!spec.key_name.empty()) params += param("KeyName", spec.key_name);
  if (!spec.iam_instance_profile.empty())
    params += param("IamInstanceProfile.Name", spec.iam_instance_profile);
  if (!spec.user_data.empty()) params += param("UserData", base64_encode(spec.user_data));
  if (!spec.client_token.empty()) params += param("ClientToken", spec.client_token);
  if (!spec.tags.empty()) params += "&TagSpecification.1.ResourceType=instance";
  int n = 0;
  for (const auto& [key, value] : spec.tags) {
    ++n;
    params += param(fmt::format("TagSpecification.1.Tag.{}.Key", n), key);
    params += param(fmt::format("TagSpecification.1.Tag.{}.Value", n), value);
  }
  auto answer = call(params);
  if (!answer.ok()) return answer.error();
  auto instances = parse_instances_xml(answer->body, nullptr);
  if (!instances.ok()) return Error{"EC2 RunInstances", instances.error().to_string()};
  if (instances->size() != 1)
    return Error{"EC2 RunInstances",
                 fmt::format("answered {} instances instead of 1", instances->size())};
  return std::move(instances->front());
}

Result<std::vector<Instance>> Ec2Client::describe_instances(const std::string& tag_key,
                                                            const std::string& tag_value) const {
  std::string filter = fmt::format("Action=DescribeInstances&MaxResults={}", page_size_) +
                       param("Filter.1.Name", "tag:" + tag_key) +
                       param("Filter.1.Value.1", tag_value) + "&Filter.2.Name=instance-state-name";
  int n = 0;
  for (const char* state : {"pending", "running", "shutting-down", "stopping", "stopped"})
    filter += param(fmt::format("Filter.2.Value.{}", ++n), state);
  std::vector<Instance> all;
  std::string token;
  for (size_t page = 0; page < kMaxDescribePages; ++page) {
    auto answer = call(filter + (token.empty() ? "" : param("NextToken", token)));
    if (!answer.ok()) return answer.error();
    auto instances = parse_instances_xml(answer->body, &token);
    if (!instances.ok()) return Error{"EC2 DescribeInstances", instances.error().to_string()};
    for (Instance& instance : *instances) all.push_back(std::move(instance));
    if (token.empty()) return all;
  }
  return Error{"EC2 DescribeInstances", fmt::format("more than {} pages", kMaxDescribePages)};
}

Status Ec2Client::terminate_instances(const std::vector<std::string>& ids) const {
  for (size_t first = 0; first < ids.size(); first += kTerminateBatch) {
    std::string params = "Action=TerminateInstances";
    const size_t last = std::min(ids.size(), first + kTerminateBatch);
    for (size_t i = first; i < last; ++i)
      params += param(fmt::format("InstanceId.{}", i - first + 1), ids[i]);
    auto answer = call(params);
    if (!answer.ok()) return answer.error();
  }
  return {};
}

Result<std::string> Ec2Client::user_data(const std::string& instance_id) const {
  auto answer = call("Action=DescribeInstanceAttribute&Attribute=userData" +
                     param("InstanceId", instance_id));
  if (!answer.ok()) return answer.error();
  pugi::xml_document doc;
  if (!doc.load_buffer(answer->body.data(), answer->body.size()))
    return Error{"EC2 DescribeInstanceAttribute", "the answer is not XML"};
  const std::string encoded = doc.document_element().child("userData").child_value("value");
  auto decoded = base64_decode(encoded);
  if (!decoded.ok()) return Error{"EC2 DescribeInstanceAttribute", "userData is not base64"};
  return decoded;
}

}  // namespace testlooper::fleet
