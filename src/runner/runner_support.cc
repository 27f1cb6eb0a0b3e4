// The small shared pieces of runner.h: clocks, cancellation, run ids, names.
#include <random>

#include "runner/runner.h"

namespace testlooper::runner {
namespace {

class SystemClock : public Clock {
 public:
  double now_seconds() override {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point steady_now() override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

void Cancellation::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  if (process_) process_->kill();
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void Cancellation::attach(environments::Process* process) {
  std::lock_guard lock(mutex_);
  process_ = process;
  if (process_ && cancelled_) process_->kill();
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess:
      return "success";
    case Outcome::kFailure:
      return "failure";
    case Outcome::kInfraError:
      return "infrastructure error";
    case Outcome::kCancelled:
      return "cancelled";
  }
  return "?";
}

std::string new_run_id() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (uint64_t bits = rng(); id.size() < 16; bits >>= 4) id += kHex[bits & 15];
  return id;
}

}  // namespace testlooper::runner
