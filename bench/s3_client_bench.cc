// S3 transfer figures (issue 14): a file of N MiB put (multipart above 16 MiB) and got back
// (streamed to a file) with fleet::S3Client against an S3 endpoint (moto_server in
// bench/s3_client_bench.sh), timed, and the peak RSS of this process.
// Usage: s3_client_bench URL BUCKET FILE   (credentials from the environment)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "fleet/s3.h"

using namespace testlooper::fleet;
using testlooper::Status;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: s3_client_bench URL BUCKET FILE\n");
    return 2;
  }
  auto credentials = load_credentials();
  if (!credentials.ok()) {
    std::fprintf(stderr, "%s\n", credentials.error().to_string().c_str());
    return 1;
  }
  S3Client s3(Endpoint{.service = "s3", .url = argv[1]}, *credentials);
  const std::string bucket = argv[2], path = argv[3], back = path + ".back";
  const double mib = static_cast<double>(std::filesystem::file_size(path)) / (1 << 20);
  if (Status made = s3.create_bucket(bucket); !made.ok()) {
    std::fprintf(stderr, "%s\n", made.error().to_string().c_str());
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  if (Status put = s3.put_file(bucket, "bench/file", path); !put.ok()) {
    std::fprintf(stderr, "%s\n", put.error().to_string().c_str());
    return 1;
  }
  const double put_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  if (Status got = s3.get_file(bucket, "bench/file", back); !got.ok()) {
    std::fprintf(stderr, "%s\n", got.error().to_string().c_str());
    return 1;
  }
  const double get_seconds = seconds_since(start);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "s3_client_bench: %.0f MiB put in %.2f s (%.0f MiB/s), got in %.2f s (%.0f MiB/s); "
      "peak RSS %ld MiB\n",
      mib, put_seconds, mib / put_seconds, get_seconds, mib / get_seconds, usage.ru_maxrss / 1024);
  return 0;
}
