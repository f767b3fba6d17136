// Bearer token checks.
#include <catch2/catch.hpp>

#include "common/TokenAuth.h"

TEST_CASE("without a token every request is allowed", "[auth]") {
  dspy::TokenAuth auth;
  CHECK_FALSE(auth.enabled());
  CHECK(auth.allows(""));
  CHECK(auth.allows("Bearer whatever"));
}

TEST_CASE("with a token only the exact bearer token is allowed", "[auth]") {
  dspy::TokenAuth auth;
  auth.setToken("s3cret");
  CHECK(auth.enabled());
  CHECK(auth.allows("Bearer s3cret"));
  CHECK(auth.allows("bearer s3cret"));
  CHECK_FALSE(auth.allows(""));
  CHECK_FALSE(auth.allows("s3cret"));
  CHECK_FALSE(auth.allows("Bearer s3cre"));
  CHECK_FALSE(auth.allows("Bearer s3cret2"));
  CHECK_FALSE(auth.allows("Bearer S3cret"));
  CHECK_FALSE(auth.allows("Basic s3cret"));
}

TEST_CASE("a new token replaces the old one at once", "[auth]") {
  dspy::TokenAuth auth;
  auth.setToken("old");
  auth.setToken("new");
  CHECK(auth.allows("Bearer new"));
  CHECK_FALSE(auth.allows("Bearer old"));
  auth.setToken("");
  CHECK(auth.allows(""));
}
