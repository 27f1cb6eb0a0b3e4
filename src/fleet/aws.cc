// AWS calls through libcurl. hosting/rest.h also makes HTTP calls with libcurl, but for JSON
// REST APIs: these are signed (SigV4), send and receive file regions streamed, canonicalize the
// query the way SigV4 wants it, and fleet uses core only, so they are not built on it.
#include "fleet/aws.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <pugixml.hpp>

#include "core/hash.h"
#include "core/hmac.h"
#include "core/http_header.h"

namespace testlooper::fleet {
namespace {

constexpr long kStallSeconds = 120;

// "k=v&k2=v2" in SigV4's canonical order (sorted by name, then value; a name without '=' gets
// one). curl 7.88 signs the query exactly as it is sent, so it is sent in this form.
std::string canonical_query(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t at = 0;
  while (at <= query.size() && !query.empty()) {
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(at, end - at);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      if (eq == std::string::npos)
        params.emplace_back(part, "");
      else
        params.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    }
    at = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) out += (out.empty() ? "" : "&") + name + "=" + value;
  return out;
}

// Text from the network made safe for an error message: printable ASCII, at most `limit` bytes.
std::string printable(std::string_view text, size_t limit) {
  std::string out;
  for (char c : text.substr(0, limit)) out += (c > 0x20 && c < 0x7f) ? c : ' ';
  const size_t begin = out.find_first_not_of(' ');
  return begin == std::string::npos ? "" : out.substr(begin, out.find_last_not_of(' ') + 1 - begin);
}

struct Transfer {
  CURL* curl = nullptr;
  AwsAnswer answer;
  const AwsRequest* request = nullptr;
  int upload_fd = -1;
  uint64_t uploaded = 0;
  int download_fd = -1;
  bool download_failed = false;
  bool upload_failed = false;
  bool too_large = false;
};

bool is_2xx(CURL* curl) {
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return status >= 200 && status < 300;
}

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t written = ::write(fd, data, n);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    data += written;
    n -= static_cast<size_t>(written);
  }
  return true;
}

int open_download(Transfer* t) {
  if (t->download_fd < 0)
    t->download_fd =
        ::open(t->request->download_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  return t->download_fd;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->request->download_file.empty() && is_2xx(t->curl)) {
    if (open_download(t) < 0 || !write_all(t->download_fd, data, n)) {
      t->download_failed = true;
      return 0;
    }
    return n;
  }
  if (t->answer.body.size() + n > t->request->max_answer_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->answer.body.append(data, n);
  return n;
}

size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const uint64_t left = t->request->upload_length - t->uploaded;
  const size_t want = static_cast<size_t>(std::min<uint64_t>(left, size * count));
  if (want == 0) return 0;
  const ssize_t got = ::pread(t->upload_fd, buffer, want,
                              static_cast<off_t>(t->request->upload_offset + t->uploaded));
  if (got <= 0) {  // the file shrank or cannot be read: never send a short body as complete
    t->upload_failed = true;
    return CURL_READFUNC_ABORT;
  }
  t->uploaded += static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

// curl rewinds the body when it must send it again (a connection lost before the answer).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->request->upload_length)
    return CURL_SEEKFUNC_CANTSEEK;
  t->uploaded = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  const size_t n = size * count;
  add_header_line(std::string_view(data, n), &static_cast<Transfer*>(user)->answer.headers);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<Transfer*>(user)->request->stop;
  return stop != nullptr && stop->load() ? 1 : 0;
}

// The headers every call sends: the caller's, the session token, and for S3 the payload hash
// (S3 requires x-amz-content-sha256; curl 7.88 signs it as the payload hash when it is given).
curl_slist* request_headers(const Endpoint& endpoint, const Credentials& credentials,
                            const AwsRequest& request) {
  curl_slist* list = nullptr;
  bool has_payload_hash = false;
  for (const auto& h : request.headers) {
    list = curl_slist_append(list, h.c_str());
    has_payload_hash = has_payload_hash || strncasecmp(h.c_str(), "x-amz-content-sha256:", 21) == 0;
  }
  if (!credentials.session_token.empty() && !endpoint.service.empty())
    list = curl_slist_append(list, ("X-Amz-Security-Token: " + credentials.session_token).c_str());
  if (endpoint.service == "s3" && !has_payload_hash) {
    const std::string hash =
        request.upload_file.empty() ? sha256_hex(request.body) : "UNSIGNED-PAYLOAD";
    list = curl_slist_append(list, ("x-amz-content-sha256: " + hash).c_str());
  }
  // Nothing else: curl 7.88 signs every header of this list, even a removal like "Expect:"
  // that is never sent (AWS then refuses the signature). The user agent is set apart.
  return list;
}

void set_method_and_body(CURL* curl, const AwsRequest& request, Transfer* transfer) {
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    return;
  }
  if (!request.upload_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(curl, CURLOPT_READDATA, transfer);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, transfer);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.upload_length));
  } else if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
}

Result<AwsAnswer> finish(CURLcode code, Transfer& transfer, const AwsRequest& request,
                         const std::string& where) {
  if (transfer.upload_failed)
    return Error{where, "cannot read the file to send (it changed while it was sent?)"};
  if (transfer.download_failed) return Error{where, "cannot write the downloaded file"};
  if (transfer.too_large || code == CURLE_FILESIZE_EXCEEDED)
    return Error{where, fmt::format("answered more than {} bytes", request.max_answer_bytes)};
  if (code == CURLE_OPERATION_TIMEDOUT)
    return Error{where, fmt::format("no answer within {} s (or nothing moved for {} s)",
                                    request.timeout_seconds, kStallSeconds)};
  if (code == CURLE_ABORTED_BY_CALLBACK) return Error{where, "stopped"};
  if (code != CURLE_OK)
    return Error{where, std::string("cannot be reached: ") + curl_easy_strerror(code)};
  if (!request.download_file.empty() && transfer.answer.ok() && open_download(&transfer) < 0)
    return Error{where, "cannot write the downloaded file"};
  return std::move(transfer.answer);
}

// "http://host:port/base" → {"http://host:port", "host:port", "/base"}.
struct UrlParts {
  std::string origin, host, path;
};
UrlParts split_url(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t host_at = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t slash = url.find('/', host_at);
  if (slash == std::string::npos) return {url, url.substr(host_at), ""};
  return {url.substr(0, slash), url.substr(host_at, slash - host_at), url.substr(slash)};
}

}  // namespace

std::string base_url(const Endpoint& endpoint) {
  if (endpoint.url.empty())
    return fmt::format("https://{}.{}.amazonaws.com", endpoint.service, endpoint.region);
  std::string url = endpoint.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::optional<std::string> AwsAnswer::header(const std::string& name) const {
  return find_header(headers, name);
}

Result<AwsAnswer> aws_call(const Endpoint& endpoint, const Credentials& credentials,
                           const AwsRequest& request, const std::string& where) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Transfer transfer;
  transfer.request = &request;
  if (!request.upload_file.empty()) {
    transfer.upload_fd = ::open(request.upload_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (transfer.upload_fd < 0) return Error{where, "cannot read the file to send"};
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    if (transfer.upload_fd >= 0) ::close(transfer.upload_fd);
    return Error{where, "cannot make an HTTP client"};
  }
  transfer.curl = curl;
  const std::string query = canonical_query(request.query);
  const std::string url = base_url(endpoint) + request.path + (query.empty() ? "" : "?" + query);
  const std::string sigv4 = fmt::format("aws:amz:{}:{}", endpoint.region, endpoint.service);
  curl_slist* list = request_headers(endpoint, credentials, request);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  if (!endpoint.service.empty()) {
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(curl, CURLOPT_USERNAME, credentials.access_key_id.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, credentials.secret_access_key.c_str());
  }
  if (request.timeout_seconds > 0)
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_seconds * 1000));
  // A transfer that stalls ends even without a whole-call timeout (large downloads).
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, kStallSeconds);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // the path is sent as it is signed
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "testlooper");
  set_method_and_body(curl, request, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  // A HEAD's Content-Length is the object's size, not an answer kept here: curl would refuse it.
  if (request.download_file.empty() && request.method != "HEAD")
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.max_answer_bytes));
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &transfer.answer.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  Result<AwsAnswer> result = finish(code, transfer, request, where);
  if (transfer.upload_fd >= 0) ::close(transfer.upload_fd);
  if (transfer.download_fd >= 0 && ::close(transfer.download_fd) != 0 && result.ok())
    return Error{where, "cannot write the downloaded file"};
  return result;
}

Error answer_error(const AwsAnswer& answer, const std::string& where) {
  pugi::xml_document doc;
  std::string code, message;
  if (doc.load_buffer(answer.body.data(), answer.body.size())) {
    // EC2: Response/Errors/Error; S3: Error; other Query APIs: ErrorResponse/Error.
    for (const char* path : {"/Response/Errors/Error", "/Error", "/ErrorResponse/Error"}) {
      const pugi::xml_node error = doc.first_element_by_path(path);
      if (!error) continue;
      code = printable(error.child_value("Code"), 100);
      message = printable(error.child_value("Message"), 300);
      break;
    }
  }
  std::string text = fmt::format("HTTP {}", answer.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (code.empty() && message.empty() && !answer.body.empty())
    text += ": " + printable(answer.body, 200);
  return Error{where, text};
}

std::string aws_uri_encode(const std::string& text, bool encode_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (c == '/' && !encode_slash))
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string presign_url(const Endpoint& endpoint, const Credentials& credentials,
                        const std::string& method, const std::string& path,
                        const std::string& query, int expires_seconds, int64_t now) {
  const UrlParts url = split_url(base_url(endpoint));
  const time_t seconds = static_cast<time_t>(now);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  const std::string date(stamp, 8);
  const std::string scope =
      fmt::format("{}/{}/{}/aws4_request", date, endpoint.region, endpoint.service);
  std::string all = query.empty() ? "" : query + "&";
  all += "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" +
         aws_uri_encode(credentials.access_key_id + "/" + scope, true) + "&X-Amz-Date=" + stamp +
         fmt::format("&X-Amz-Expires={}", std::clamp(expires_seconds, 1, 604800)) +
         "&X-Amz-SignedHeaders=host";
  if (!credentials.session_token.empty() && !endpoint.service.empty())
    all += "&X-Amz-Security-Token=" + aws_uri_encode(credentials.session_token, true);
  const std::string canonical = canonical_query(all);
  const std::string request = fmt::format("{}\n{}\n{}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD", method,
                                          url.path + path, canonical, url.host);
  const std::string to_sign =
      fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", stamp, scope, sha256_hex(request));
  std::string key = hmac_sha256("AWS4" + credentials.secret_access_key, date);
  for (const std::string& part : {endpoint.region, endpoint.service, std::string("aws4_request")})
    key = hmac_sha256(key, part);
  return url.origin + url.path + path + "?" + canonical +
         "&X-Amz-Signature=" + hmac_sha256_hex(key, to_sign);
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string clean;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 4 != 0) return Error{"", "base64 of a length that is not a multiple of 4"};
  std::string out(clean.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0) return Error{"", "not base64"};
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t length = static_cast<size_t>(n);
  for (size_t i = clean.size(); i > 0 && clean[i - 1] == '=' && length > 0; --i) --length;
  out.resize(length);
  return out;
}

}  // namespace testlooper::fleet
