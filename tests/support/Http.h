// Test support: a small HTTP(S) client so test files need not include httplib.h.
#pragma once

#include <map>
#include <string>

namespace dspy::test {

struct HttpResult {
  bool connected = false;
  int status = 0;
  std::string body;
  std::string content_type;
  std::string allow;  // the Allow header (405 answers)
};

struct HttpClientOptions {
  std::string token;             // sent as "Authorization: Bearer <token>" when set
  std::string ca_file;           // HTTPS: trust this CA; empty = plain HTTP
  std::string client_cert_file;  // HTTPS client certificate (mTLS)
  std::string client_key_file;
};

HttpResult httpRequest(const std::string& method, const std::string& host_port, const std::string& path,
                       const std::string& body = "", const HttpClientOptions& options = {});
// Opens a kept-alive HTTP/1.1 connection to 127.0.0.1:port, has one GET `path` answered
// on it and leaves it open and idle; returns the socket (the caller closes it).
int openIdleKeptAliveConnection(int port, const std::string& path = "/health");

inline HttpResult httpGet(const std::string& host_port, const std::string& path, const HttpClientOptions& o = {}) {
  return httpRequest("GET", host_port, path, "", o);
}

}  // namespace dspy::test
