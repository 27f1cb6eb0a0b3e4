// EC2's Query API (Version 2016-11-15): the calls the fleet makes, answers parsed from XML
// (pugixml) field by field. Thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleet/aws.h"

namespace testlooper::fleet {

struct InstanceSpec {
  std::string image_id;       // ami-...
  std::string instance_type;  // m5.xlarge
  std::string subnet_id;      // "" = the default
  std::vector<std::string> security_group_ids;
  std::string key_name;                     // "" = none
  std::string iam_instance_profile;         // a profile name ("" = none)
  std::string user_data;                    // the raw text (the client base64-encodes it)
  std::map<std::string, std::string> tags;  // put on the instance at launch (TagSpecification)
  // "" = none; else RunInstances' ClientToken (up to 64 ASCII characters): a call repeated with
  // the same token (after a timeout) launches no second instance.
  std::string client_token;
};

struct Instance {
  std::string id;     // i-...
  std::string type;   // m5.xlarge
  std::string state;  // pending | running | shutting-down | terminated | stopping | stopped
  std::string image_id;
  std::string private_ip;   // "" until known
  int64_t launch_time = 0;  // Unix seconds
  std::map<std::string, std::string> tags;
};

// Parses a DescribeInstances or RunInstances answer (every reservation's instances) and its
// nextToken (into `next_token` when not null). Error naming the field that is missing or bad.
// Faces the network: fuzzed (fuzz/fuzz_aws_xml.cc).
Result<std::vector<Instance>> parse_instances_xml(const std::string& xml, std::string* next_token);

class Ec2Client {
 public:
  Ec2Client(Endpoint endpoint, Credentials credentials);

  // RunInstances of one instance. The instance as EC2 answered (state "pending").
  Result<Instance> run_instance(const InstanceSpec& spec) const;
  // DescribeInstances of every instance whose tag `tag_key` is `tag_value` (all pages), in any
  // state but terminated.
  Result<std::vector<Instance>> describe_instances(const std::string& tag_key,
                                                   const std::string& tag_value) const;
  // TerminateInstances (an empty list does nothing).
  Status terminate_instances(const std::vector<std::string>& ids) const;
  // The user data an instance was launched with (DescribeInstanceAttribute userData), decoded.
  Result<std::string> user_data(const std::string& instance_id) const;

  // The page size of describe_instances (MaxResults, 5..1000; default 1000): small pages let the
  // tests go through nextToken.
  void set_describe_page_size(int n) { page_size_ = n < 5 ? 5 : n > 1000 ? 1000 : n; }

 private:
  Result<AwsAnswer> call(const std::string& action_and_params) const;
  Endpoint endpoint_;
  Credentials credentials_;
  int page_size_ = 1000;
};

}  // namespace testlooper::fleet
