// httplib-backed test client.
#include "tests/support/Http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

namespace dspy::test {

HttpResult httpRequest(const std::string& method, const std::string& host_port, const std::string& path,
                       const std::string& body, const HttpClientOptions& o) {
  const bool tls = !o.ca_file.empty();
  std::unique_ptr<httplib::Client> client;
  if (tls) {
    client = std::make_unique<httplib::Client>("https://" + host_port, o.client_cert_file, o.client_key_file);
    client->set_ca_cert_path(o.ca_file.c_str());
    client->enable_server_certificate_verification(true);
  } else {
    client = std::make_unique<httplib::Client>("http://" + host_port);
  }
  client->set_connection_timeout(2, 0);
  client->set_read_timeout(5, 0);
  httplib::Headers headers;
  if (!o.token.empty()) headers.emplace("Authorization", "Bearer " + o.token);
  httplib::Result res = method == "POST"     ? client->Post(path.c_str(), headers, body, "application/json")
                        : method == "PUT"    ? client->Put(path.c_str(), headers, body, "application/json")
                        : method == "DELETE" ? client->Delete(path.c_str(), headers)
                                             : client->Get(path.c_str(), headers);
  HttpResult out;
  if (!res) return out;
  out.connected = true;
  out.status = res->status;
  out.body = res->body;
  out.content_type = res->get_header_value("Content-Type");
  out.allow = res->get_header_value("Allow");
  return out;
}

int openIdleKeptAliveConnection(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  // Read the whole answer (it may come in several pieces), so that nothing of it is
  // left for the caller to mistake for later traffic.
  std::string got;
  char buf[2048];
  std::size_t need = std::string::npos;
  while (need == std::string::npos || got.size() < need) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return -1;
    }
    got.append(buf, static_cast<std::size_t>(n));
    const auto head = got.find("\r\n\r\n");
    if (need == std::string::npos && head != std::string::npos) {
      const auto cl = got.find("Content-Length: ");
      need = head + 4 + (cl != std::string::npos && cl < head ? std::stoul(got.substr(cl + 16)) : 0);
    }
  }
  return fd;
}

}  // namespace dspy::test
