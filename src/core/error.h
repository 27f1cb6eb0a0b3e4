// Errors as values: what crosses a module boundary when something goes wrong.
//
// An Error names the place (`where`, e.g. "path:line:col" or a repo/commit) and says what
// happened and what was expected. Result<T> holds either a value or an Error. Both are plain
// values, cheap to move, with no hidden state; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace testlooper {

struct Error {
  std::string where;    // "path:line:col", "path", or empty when there is no place
  std::string message;  // human sentence: what is wrong and what was expected

  // "where: message", or just the message when there is no place.
  std::string to_string() const { return where.empty() ? message : where + ": " + message; }
};

// A value or an Error. REQUIRES: value() only when ok(), error() only when !ok().
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const Error& error() const { return std::get<1>(state_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> state_;
};

// Success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace testlooper

// Returns the error of a Status/Result expression from the enclosing function.
#define TL_RETURN_IF_ERROR(expr)                     \
  do {                                               \
    auto&& tl_status_ = (expr);                      \
    if (!tl_status_.ok()) return tl_status_.error(); \
  } while (0)
