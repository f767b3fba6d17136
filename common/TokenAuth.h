// TokenAuth: the bearer token that guards every gRPC call and HTTP route except health.
// The token can change on reload; readers always see a whole token.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace dspy {

class TokenAuth {
 public:
  // Empty token = auth disabled.
  void setToken(std::string token);
  bool enabled() const;
  // `authorization` is the header or metadata value, expected "Bearer <token>".
  bool allows(std::string_view authorization) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> token_ = std::make_shared<const std::string>();
};

}  // namespace dspy
