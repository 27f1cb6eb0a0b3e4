#include "core/http_header.h"

#include <gtest/gtest.h>

namespace testlooper {
namespace {

TEST(HttpHeaders, KeepsTheFinalAnswersHeadersLowerCasedAndTrimmed) {
  HttpHeaders headers;
  for (const char* line :
       {"HTTP/1.1 100 Continue\r\n", "X-Early: 1\r\n", "\r\n", "HTTP/1.1 200 OK\r\n",
        "ETag:  \"abc-2\" \r\n", "Content-Length: 12\r\n", "x-amz-id: a:b\r\n", "\r\n"})
    add_header_line(line, &headers);
  EXPECT_EQ(headers,
            (HttpHeaders{{"etag", "\"abc-2\""}, {"content-length", "12"}, {"x-amz-id", "a:b"}}));
  EXPECT_EQ(find_header(headers, "etag"), "\"abc-2\"");
  EXPECT_EQ(find_header(headers, "x-early"), std::nullopt);
}

}  // namespace
}  // namespace testlooper
