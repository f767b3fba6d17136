// The one Catch2 main shared by every test binary (compiled once). Test clients write to
// sockets that servers close on purpose (refused TLS handshakes), so SIGPIPE is ignored
// here as it is in the daemons.
#define CATCH_CONFIG_RUNNER
#include <csignal>

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char* argv[]) {
  std::signal(SIGPIPE, SIG_IGN);
  // spdlog's registry is created on first use; made here, before any test starts
  // threads, two threads logging first at once do not race to create it (TSan).
  spdlog::default_logger();
  return Catch::Session().run(argc, argv);
}
