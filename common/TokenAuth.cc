// Constant-time bearer token comparison.
#include "common/TokenAuth.h"

namespace dspy {

void TokenAuth::setToken(std::string token) {
  auto next = std::make_shared<const std::string>(std::move(token));
  std::lock_guard lock(mu_);
  token_ = std::move(next);
}

bool TokenAuth::enabled() const {
  std::lock_guard lock(mu_);
  return !token_->empty();
}

bool TokenAuth::allows(std::string_view authorization) const {
  std::shared_ptr<const std::string> token;
  {
    std::lock_guard lock(mu_);
    token = token_;
  }
  if (token->empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size()) return false;
  // The scheme name is case-insensitive (RFC 9110).
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  const std::string_view given = authorization.substr(kScheme.size());
  // Compare in time that depends only on the lengths, not on where they differ.
  unsigned diff = given.size() == token->size() ? 0U : 1U;
  for (std::size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned>(given[i] ^ (*token)[i % token->size()]);
  }
  return diff == 0;
}

}  // namespace dspy
