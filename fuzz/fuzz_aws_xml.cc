// libFuzzer target over what EC2 and S3 answer (issue 14): the XML of DescribeInstances and
// RunInstances (parse_instances_xml), of ListObjectsV2 (parse_list_objects_xml), of an error
// (answer_error), and EC2's base64 user data. The first byte picks the parser; the rest is the
// answer. Parsing never throws nor crashes, stays within its bounds, and what it returns is what
// the header promises (an instance always has an id and a state; error text is printable and
// short).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fleet/aws.h"
#include "fleet/ec2.h"
#include "fleet/s3.h"

namespace fleet = testlooper::fleet;

namespace {

bool printable(const std::string& text) {
  for (char c : text)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void instances(const std::string& xml) {
  std::string token;
  auto parsed = fleet::parse_instances_xml(xml, &token);
  if (!parsed.ok()) return;
  for (const fleet::Instance& instance : *parsed) {
    if (instance.id.empty() || instance.id.size() > 64 || instance.state.empty()) abort();
    if (instance.tags.size() > 50) abort();
  }
  if (token.size() > 4096) abort();
}

void objects(const std::string& xml) {
  std::string token;
  auto parsed = fleet::parse_list_objects_xml(xml, &token);
  if (!parsed.ok()) return;
  for (const fleet::S3Object& object : *parsed)
    if (object.key.empty() || object.key.size() > 1024) abort();
  if (parsed->size() > 10000 || token.size() > 4096) abort();
}

void error(const std::string& body, uint8_t pick) {
  const fleet::AwsAnswer answer{.status = 400 + pick % 200, .body = body};
  const testlooper::Error e = fleet::answer_error(answer, "S3 GetObject b/k");
  if (e.message.size() > 450 || !printable(e.message)) abort();
}

void base64(const std::string& text) {
  auto decoded = fleet::base64_decode(text);
  if (!decoded.ok()) return;
  if (decoded->size() > text.size()) abort();
  auto again = fleet::base64_decode(fleet::base64_encode(*decoded));
  if (!again.ok() || *again != *decoded) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (pick % 4) {
    case 0:
      instances(body);
      break;
    case 1:
      objects(body);
      break;
    case 2:
      error(body, pick);
      break;
    default:
      base64(body);
  }
  return 0;
}
