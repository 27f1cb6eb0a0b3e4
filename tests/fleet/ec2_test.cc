// The EC2 client against moto_server, read back with boto3.
#include "fleet/ec2.h"

#include <gtest/gtest.h>

#include <sstream>

#include "fleet/aws_fixture.h"

namespace testlooper::fleet {
namespace {

using fixtures::moto_credentials;
using fixtures::moto_endpoint;
using fixtures::shared_moto;

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The ids of `instances`, sorted.
std::vector<std::string> ids(const std::vector<Instance>& instances) {
  std::vector<std::string> out;
  for (const Instance& i : instances) out.push_back(i.id);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Ec2Client, RunsAnInstanceAsSpecified) {
  const auto made = words(shared_moto().boto3(R"(
iam = boto3.client('iam', region_name='us-east-1', endpoint_url=ec2.meta.endpoint_url)
iam.create_instance_profile(InstanceProfileName='tl-worker')
ec2.create_key_pair(KeyName='tl-key')
vpc = ec2.create_vpc(CidrBlock='10.9.0.0/16')['Vpc']['VpcId']
sn = ec2.create_subnet(VpcId=vpc, CidrBlock='10.9.1.0/24')['Subnet']['SubnetId']
sg = ec2.create_security_group(GroupName='tl-run', Description='t', VpcId=vpc)['GroupId']
print(sn, sg))"));
  ASSERT_EQ(made.size(), 2u);
  Ec2Client ec2(moto_endpoint("ec2"), moto_credentials());
  const std::string user_data = "#!/bin/bash\necho 'a & b = c' > /tmp/x\n\xc3\xa9\n";
  auto instance = ec2.run_instance(
      InstanceSpec{.image_id = "ami-0123456789abcdef0",
                   .instance_type = "m5.xlarge",
                   .subnet_id = made[0],
                   .security_group_ids = {made[1]},
                   .key_name = "tl-key",
                   .iam_instance_profile = "tl-worker",
                   .user_data = user_data,
                   .tags = {{"testlooper-worker-name", "run-test"}, {"Name", "tl machine & co"}}});
  ASSERT_TRUE(instance.ok()) << instance.error().to_string();
  EXPECT_TRUE(instance->id.starts_with("i-"));
  EXPECT_EQ(instance->type, "m5.xlarge");
  EXPECT_EQ(instance->image_id, "ami-0123456789abcdef0");
  EXPECT_GT(instance->launch_time, 0);

  const std::string seen = shared_moto().boto3(R"(
import base64
i = ec2.describe_instances(InstanceIds=[')" + instance->id +
                                               R"('])['Reservations'][0]['Instances'][0]
print(json.dumps([i['InstanceType'], i['ImageId'], i['SubnetId'], [g['GroupId'] for g in i['SecurityGroups']],
                  i['KeyName'], i['IamInstanceProfile']['Arn'].split('/')[-1],
                  sorted((t['Key'], t['Value']) for t in i['Tags'])]))
u = ec2.describe_instance_attribute(InstanceId=')" +
                                               instance->id + R"(', Attribute='userData')
sys.stdout.write(base64.b64decode(u['UserData']['Value']).decode('utf-8')))");
  const std::string expected =
      R"(["m5.xlarge", "ami-0123456789abcdef0", ")" + made[0] + R"(", [")" + made[1] +
      R"("], "tl-key", "tl-worker", [["Name", "tl machine & co"], ["testlooper-worker-name", "run-test"]]])" +
      "\n" + user_data;
  EXPECT_EQ(seen, expected);

  auto read_back = ec2.user_data(instance->id);
  ASSERT_TRUE(read_back.ok()) << read_back.error().to_string();
  EXPECT_EQ(*read_back, user_data);
}

TEST(Ec2Client, DescribesByTagThroughEveryPageAndTerminates) {
  Ec2Client ec2(moto_endpoint("ec2"), moto_credentials());
  ec2.set_describe_page_size(5);
  std::vector<std::string> ours;
  for (int i = 0; i < 7; ++i) {
    auto instance = ec2.run_instance(InstanceSpec{
        .image_id = "ami-1", .instance_type = "t3.micro", .tags = {{"tl-fleet", "ours"}}});
    ASSERT_TRUE(instance.ok()) << instance.error().to_string();
    ours.push_back(instance->id);
  }
  for (int i = 0; i < 4; ++i) {
    auto other = ec2.run_instance(InstanceSpec{
        .image_id = "ami-1", .instance_type = "t3.micro", .tags = {{"tl-fleet", "theirs"}}});
    ASSERT_TRUE(other.ok()) << other.error().to_string();
  }
  std::sort(ours.begin(), ours.end());
  auto found = ec2.describe_instances("tl-fleet", "ours");
  ASSERT_TRUE(found.ok()) << found.error().to_string();
  EXPECT_EQ(ids(*found), ours);
  for (const Instance& i : *found) EXPECT_EQ(i.tags.at("tl-fleet"), "ours");

  ASSERT_TRUE(ec2.terminate_instances({ours[0], ours[1]}).ok());
  const std::string states = shared_moto().boto3(
      "r = ec2.describe_instances(InstanceIds=['" + ours[0] + "', '" + ours[1] + "', '" + ours[2] +
      "'])\nprint(sorted(i['State']['Name'] for x in r['Reservations'] for i in x['Instances']))");
  EXPECT_EQ(states, "['running', 'terminated', 'terminated']\n");
  auto left = ec2.describe_instances("tl-fleet", "ours");
  ASSERT_TRUE(left.ok()) << left.error().to_string();
  EXPECT_EQ(ids(*left), std::vector<std::string>(ours.begin() + 2, ours.end()));

  EXPECT_TRUE(ec2.terminate_instances({}).ok());
  auto none = ec2.describe_instances("tl-fleet", "nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// EC2 launches once per ClientToken (moto keeps the token without acting on it: boto3 reads it).
TEST(Ec2Client, RunInstancesCarriesTheClientToken) {
  Ec2Client ec2(moto_endpoint("ec2"), moto_credentials());
  auto instance = ec2.run_instance(InstanceSpec{
      .image_id = "ami-1", .instance_type = "t3.micro", .client_token = "tl-machine-0001"});
  ASSERT_TRUE(instance.ok()) << instance.error().to_string();
  EXPECT_EQ(shared_moto().boto3("print(ec2.describe_instances(InstanceIds=['" + instance->id +
                                "'])['Reservations'][0]['Instances'][0]['ClientToken'])"),
            "tl-machine-0001\n");
}

TEST(Ec2Client, AnswersErrorsWithCodeAndMessage) {
  Ec2Client ec2(moto_endpoint("ec2"), moto_credentials());
  Status done = ec2.terminate_instances({"i-doesnotexist0000"});
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().where, "EC2 TerminateInstances");
  EXPECT_NE(done.error().message.find("InvalidInstanceID.NotFound"), std::string::npos)
      << done.error().message;
  EXPECT_NE(done.error().message.find("i-doesnotexist0000"), std::string::npos)
      << done.error().message;
}

}  // namespace
}  // namespace testlooper::fleet
