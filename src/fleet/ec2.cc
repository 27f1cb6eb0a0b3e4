// Stub: helper A implements (issue 14).
#include "fleet/ec2.h"

namespace testlooper::fleet {
namespace {
Error todo(const std::string& what) { return Error{"", what + ": not implemented yet"}; }
}  // namespace

Result<std::vector<Instance>> parse_instances_xml(const std::string&, std::string*) {
  return todo("parse_instances_xml");
}
Ec2Client::Ec2Client(Endpoint endpoint, Credentials credentials)
    : endpoint_(std::move(endpoint)), credentials_(std::move(credentials)) {}
Result<Instance> Ec2Client::run_instance(const InstanceSpec&) { return todo("RunInstances"); }
Result<std::vector<Instance>> Ec2Client::describe_instances(const std::string&,
                                                            const std::string&) {
  return todo("DescribeInstances");
}
Status Ec2Client::terminate_instances(const std::vector<std::string>&) {
  return todo("TerminateInstances");
}
Result<std::string> Ec2Client::user_data(const std::string&) {
  return todo("DescribeInstanceAttribute");
}
Result<AwsAnswer> Ec2Client::call(const std::string&) { return todo("ec2"); }

}  // namespace testlooper::fleet
